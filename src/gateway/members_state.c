/* The state file of the admin-made changes (state_file:): the change log
 * of members.c written out after each change and read back at start.
 *
 * Each change is written there before the admin call returns (a
 * temporary file, fsync, rename, fsync of the directory, so a crash
 * leaves the old or the new file, never a mix); gw_members_restore()
 * reads it back at start, before the first snapshot, checking each change
 * as the admin API checks it, so a corrupt file stops the start instead
 * of being half applied.
 *
 * Thread context: the main thread at start; then whichever thread holds
 * ctl_lock (gw__members_save). */
#include "gateway/members_int.h"
#include "core/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAX_BYTES (64u << 20) /* a state file larger than this is refused as corrupt */

/* The format:
 * {"version":1,"changes":[{"op":"add_server","service":"app",
 *   "address":"127.0.0.1:9001","weight":1,"ttl_ms":10000}, ...]}
 * One object per recorded change, in order; what each holds follows its
 * struct gw_member_op. */

static const char *const op_names[] = {
    [OP_ADD_SERVER] = "add_server", [OP_REMOVE_SERVER] = "remove_server", [OP_DRAIN] = "drain",
    [OP_UNDRAIN] = "undrain",       [OP_ADD_SERVICE] = "add_service",     [OP_REMOVE_SERVICE] = "remove_service",
    [OP_CIDR] = "cidr",             [OP_ROUTE_CIDR] = "route_cidr",
};

static cJSON *op_json(const struct gw_member_op *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "op", op_names[o->kind]);
    char a[64];
    switch (o->kind) {
    case OP_ADD_SERVER:
    case OP_REMOVE_SERVER:
    case OP_DRAIN:
    case OP_UNDRAIN:
        net_addr_str(&o->addr, a, sizeof a);
        cJSON_AddStringToObject(j, "service", o->svc);
        cJSON_AddStringToObject(j, "address", a);
        if (o->kind == OP_ADD_SERVER) {
            cJSON_AddNumberToObject(j, "weight", o->weight);
            if (o->ttl_ms)
                cJSON_AddNumberToObject(j, "ttl_ms", (double)o->ttl_ms);
        }
        break;
    case OP_ADD_SERVICE:
        cJSON_AddStringToObject(j, "service", o->svc);
        cJSON_AddStringToObject(j, "balance", o->balance);
        if (o->prefix)
            cJSON_AddStringToObject(j, "prefix", o->prefix);
        cJSON_AddBoolToObject(j, "strip_prefix", o->strip);
        break;
    case OP_REMOVE_SERVICE:
        cJSON_AddStringToObject(j, "service", o->svc);
        break;
    case OP_ROUTE_CIDR:
        cJSON_AddStringToObject(j, "route", o->route);
        if (o->host)
            cJSON_AddStringToObject(j, "host", o->host);
        /* fall through */
    case OP_CIDR:
        cJSON_AddStringToObject(j, "list", o->deny ? "deny" : "allow");
        cJSON_AddBoolToObject(j, "add", o->add);
        cJSON_AddStringToObject(j, "cidr", o->svc);
        break;
    }
    return j;
}

/* Writes all of buf to fd; 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Replaces the state file with the log: PATH.tmp written and fsynced,
 * renamed over PATH, then the directory fsynced so the rename itself is
 * durable. Returns 0 (also when there is no state file), or -1 with *err.
 * ctl_lock held (or the only thread). */
int gw__members_save(struct gw_members *m, char **err)
{
    const char *state_path = m->state_path;
    if (!state_path)
        return 0;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON *a = cJSON_AddArrayToObject(root, "changes");
    for (struct gw_member_op *o = m->ops; o; o = o->next)
        cJSON_AddItemToArray(a, op_json(o));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *tmp = xasprintf("%s.tmp", state_path);
    int rc = 0;
    const char *step = "open";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
    } else {
        step = "write";
        rc = write_all(fd, text, strlen(text));
        if (rc == 0) {
            step = "write";
            rc = write_all(fd, "\n", 1);
        }
        if (rc == 0 && fsync(fd) != 0) {
            step = "fsync";
            rc = -errno;
        }
        if (close(fd) != 0 && rc == 0) {
            step = "close";
            rc = -errno;
        }
        if (rc == 0 && rename(tmp, state_path) != 0) {
            step = "rename";
            rc = -errno;
        }
        if (rc != 0)
            unlink(tmp);
    }
    if (rc == 0) {
        char *dcopy = xstrdup(state_path);
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dcopy);
        step = "fsync the directory of";
        if (dfd < 0 || fsync(dfd) != 0)
            rc = -errno;
        if (dfd >= 0)
            close(dfd);
    }
    if (rc != 0)
        *err = xasprintf("cannot %s %s: %s", step, rc != 0 && !strcmp(step, "open") ? tmp : state_path,
                         strerror(-rc));
    free(tmp);
    cJSON_free(text);
    return rc == 0 ? 0 : -1;
}

/* Member key of j as a string, or NULL (with *bad set) when absent and
 * required, or not a string. */
static const char *jstr(const cJSON *j, const char *key, bool required, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v && !required)
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad = true;
        return NULL;
    }
    return v->valuestring;
}

/* The members of a CIDR change (OP_CIDR, OP_ROUTE_CIDR) into o. Returns
 * NULL or why it is refused. */
static char *parse_cidr_op(const cJSON *j, struct gw_member_op *o)
{
    bool bad = false;
    const char *cidr = jstr(j, "cidr", true, &bad), *list = jstr(j, "list", true, &bad);
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(j, "add");
    if (bad || !cJSON_IsBool(add) || (strcmp(list, "allow") && strcmp(list, "deny")))
        return xstrdup("expected \"cidr\", \"list\" (allow or deny) and \"add\" (true or false)");
    o->svc = xstrdup(cidr);
    o->deny = !strcmp(list, "deny");
    o->add = cJSON_IsTrue(add);
    char *why = gw_check_cidr(cidr);
    if (why || o->kind != OP_ROUTE_CIDR)
        return why;
    const char *route = jstr(j, "route", true, &bad), *host = jstr(j, "host", false, &bad);
    if (bad || !route[0])
        return xstrdup("expected \"route\" (and an optional \"host\")");
    o->route = xstrdup(route);
    o->host = host ? xstrdup(host) : NULL;
    return o->host ? gw_check_host(o->host) : NULL;
}

/* The service every other change names. */
static char *parse_svc(const cJSON *j, struct gw_member_op *o)
{
    bool bad = false;
    const char *svc = jstr(j, "service", true, &bad);
    if (bad)
        return xstrdup("expected \"service\"");
    o->svc = xstrdup(svc);
    return gw_check_service_name(svc);
}

/* The members of a server change (address; weight and ttl_ms for
 * OP_ADD_SERVER) into o; a lease starts at now. */
static char *parse_server_op(const cJSON *j, struct gw_member_op *o, uint64_t now)
{
    bool bad = false;
    const char *addr = jstr(j, "address", true, &bad);
    if (bad)
        return xstrdup("expected \"address\"");
    char *why = gw_check_server_address(addr, &o->addr);
    if (why || o->kind != OP_ADD_SERVER)
        return why;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "weight");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "ttl_ms");
    char text[32];
    snprintf(text, sizeof text, "%.17g", cJSON_IsNumber(w) ? w->valuedouble : -1.0);
    if ((why = gw_check_weight(text, &o->weight)) != NULL)
        return why;
    if (t && (!cJSON_IsNumber(t) || t->valuedouble < (double)GW_TTL_MIN_MS ||
              t->valuedouble > (double)GW_TTL_MAX_MS))
        return xstrdup("\"ttl_ms\" must be a number of milliseconds between 1s and 1h");
    o->ttl_ms = t ? (uint64_t)t->valuedouble : 0;
    o->expires_ms = now + o->ttl_ms;
    return NULL;
}

/* The members of OP_ADD_SERVICE (balance, optional prefix and
 * strip_prefix) into o. */
static char *parse_service_op(const cJSON *j, struct gw_member_op *o)
{
    bool bad = false;
    const char *balance = jstr(j, "balance", true, &bad), *prefix = jstr(j, "prefix", false, &bad);
    const cJSON *strip = cJSON_GetObjectItemCaseSensitive(j, "strip_prefix");
    if (bad || (strip && !cJSON_IsBool(strip)))
        return xstrdup("expected \"balance\", an optional \"prefix\" and \"strip_prefix\"");
    int algo = 0;
    char *why = gw_check_balance(balance, &algo);
    if (why)
        return why;
    o->balance = xstrdup(gw_lb_algo_name((enum gw_lb_algo)algo));
    if (prefix && (why = gw_check_path(prefix)) != NULL)
        return why;
    o->prefix = prefix ? xstrdup(prefix) : NULL;
    o->strip = cJSON_IsTrue(strip);
    return NULL;
}

/* One change from the state file into a new op, checked as the admin API
 * checks it. Returns the op, or NULL with *err. */
static struct gw_member_op *op_parse(const cJSON *j, uint64_t now, char **err)
{
    bool bad = false;
    const char *kind = cJSON_IsObject(j) ? jstr(j, "op", true, &bad) : NULL;
    int k = -1;
    for (int i = 0; kind && i < (int)ARRAY_SIZE(op_names); i++)
        if (!strcmp(kind, op_names[i]))
            k = i;
    if (k < 0) {
        *err = xstrdup("expected an object with a known \"op\"");
        return NULL;
    }
    struct gw_member_op *o = xcalloc(1, sizeof *o);
    o->kind = (enum gw_member_op_kind)k;
    char *why;
    if (k == OP_CIDR || k == OP_ROUTE_CIDR)
        why = parse_cidr_op(j, o);
    else if ((why = parse_svc(j, o)) == NULL && gw__is_server_op(o->kind))
        why = parse_server_op(j, o, now);
    else if (!why && o->kind == OP_ADD_SERVICE)
        why = parse_service_op(j, o);
    if (why) {
        *err = why;
        gw__member_op_free(o);
        return NULL;
    }
    return o;
}

int gw_members_restore(struct gw_members *m, const char *path, char **err)
{
    ASSERT(!m->ops && !m->state_path);
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) {
        /* Written now, empty: a path that cannot be written fails the
         * start, not the first change an operator makes. */
        m->state_path = xstrdup(path);
        char *why = NULL;
        if (gw__members_save(m, &why) != 0) {
            *err = xasprintf("state file %s: %s", path, why);
            free(why);
            free(m->state_path);
            m->state_path = NULL;
            return -1;
        }
        log_info("state file %s did not exist: starting from the config alone", path);
        return 0;
    }
    if (!f) {
        *err = xasprintf("state file %s: %s", path, strerror(errno));
        return -1;
    }
    struct buf b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.wpos - b.rpos <= STATE_MAX_BYTES)
        buf_append(&b, chunk, n);
    bool rerr = ferror(f);
    fclose(f);
    int count = -1, leases = 0;
    cJSON *root = NULL;
    if (rerr) {
        *err = xasprintf("state file %s: cannot read it", path);
        goto out;
    }
    size_t len = b.wpos - b.rpos;
    if (len > STATE_MAX_BYTES) {
        *err = xasprintf("state file %s: larger than %u bytes", path, STATE_MAX_BYTES);
        goto out;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(len ? b.data + b.rpos : "", len, &end, false);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *changes = cJSON_GetObjectItemCaseSensitive(root, "changes");
    if (!cJSON_IsObject(root) || !cJSON_IsNumber(ver) || ver->valuedouble != 1 || !cJSON_IsArray(changes)) {
        *err = xasprintf("state file %s is corrupt: expected {\"version\": 1, \"changes\": [...]}; fix or "
                         "remove it (the config file alone is then the whole state)", path);
        goto out;
    }
    uint64_t now = ev_clock_ns() / 1000000ull;
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, changes)
    {
        char *why = NULL;
        struct gw_member_op *o = op_parse(c, now, &why);
        if (!o) {
            *err = xasprintf("state file %s is corrupt: change %d: %s; fix or remove it", path, i, why);
            free(why);
            gw_members_free(m);
            goto out;
        }
        leases += o->kind == OP_ADD_SERVER && o->ttl_ms;
        gw__members_append(m, o);
        i++;
    }
    count = i;
    m->state_path = xstrdup(path);
    log_info("restored %d admin changes (%d registration leases) from the state file %s", count, leases, path);
out:
    cJSON_Delete(root);
    buf_free(&b);
    return count;
}
