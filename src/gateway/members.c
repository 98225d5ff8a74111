/* Dynamic membership: servers and services added, removed or drained
 * through the admin API. Each change is recorded as an operation and a
 * new snapshot is built from the current config plus every recorded
 * operation, in order; a reload replays them on top of the new config, so
 * run-time registrations survive it. The log stays small: an operation
 * replaces earlier ones on the same server (or the same service), so it
 * holds at most one entry per live registration.
 *
 * The log is also what the state file (state_file:) holds: each change is
 * written there before the call returns (a temporary file, fsync, rename,
 * fsync of the directory, so a crash leaves the old or the new file, never
 * a mix), and gw_members_restore() reads it back at start, before the
 * first snapshot, so the config file stays the base and the state the
 * overlay on it, at start as on every reload.
 *
 * A server added with a TTL is a registration lease (Consul's TTL check):
 * its owner renews it by registering again before it runs out, and
 * gw_members_expire() removes it when it does not, so a backend that died
 * without deregistering leaves the pool by itself. A restored lease starts
 * a fresh TTL: a live backend renews it, a dead one expires. Servers added
 * without a TTL (an operator's) never expire.
 *
 * Thread context: any thread (the admin thread in practice); ctl_lock
 * serializes changes, expiry and reloads. */
#include "gateway/gw.h"
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

enum op_kind {
    OP_ADD_SERVER, OP_REMOVE_SERVER, OP_DRAIN, OP_UNDRAIN, OP_ADD_SERVICE, OP_REMOVE_SERVICE,
    OP_CIDR,       /* global allow/deny list change; svc holds the CIDR text */
    OP_ROUTE_CIDR, /* a route's allow/deny list change; svc holds the CIDR text */
};

struct gw_member_op {
    enum op_kind kind;
    char *svc;
    struct net_addr addr;   /* server ops */
    int weight;
    char *balance;          /* OP_ADD_SERVICE */
    char *prefix;           /* OP_ADD_SERVICE: optional route */
    bool strip;
    bool deny, add;         /* OP_CIDR, OP_ROUTE_CIDR: which list, add or remove */
    char *route;            /* OP_ROUTE_CIDR: route name or prefix */
    char *host;             /* OP_ROUTE_CIDR: the route's host, NULL: any */
    uint64_t ttl_ms;        /* OP_ADD_SERVER: a lease's TTL; 0: an operator's, never expires */
    uint64_t expires_ms;    /* a lease's end, on the monotonic clock */
    struct gw_member_op *next;
};

static uint64_t now_ms(void) { return ev_clock_ns() / 1000000ull; }
static int save_state(struct gw_members *m, char **err);

static bool is_server_op(enum op_kind k) { return k <= OP_UNDRAIN; }

static void op_free(struct gw_member_op *o)
{
    free(o->svc);
    free(o->balance);
    free(o->prefix);
    free(o->route);
    free(o->host);
    free(o);
}

/* Drops earlier operations that the new one makes irrelevant. */
static void compact(struct gw_members *m, const struct gw_member_op *n)
{
    struct gw_member_op **pp = &m->ops;
    while (*pp) {
        struct gw_member_op *o = *pp;
        bool same_svc = !strcmp(o->svc, n->svc);
        bool drop = false;
        if (o->kind == OP_ROUTE_CIDR || n->kind == OP_ROUTE_CIDR) {
            /* only the same CIDR on the same list of the same route */
            drop = o->kind == n->kind && same_svc && o->deny == n->deny && !strcmp(o->route, n->route) &&
                   (o->host ? n->host && !strcmp(o->host, n->host) : !n->host);
        } else if ((o->kind == OP_CIDR) != (n->kind == OP_CIDR)) {
            /* a CIDR op never replaces a membership op, nor the reverse */
        } else if (n->kind == OP_CIDR) {
            drop = same_svc && o->deny == n->deny;
        } else if (same_svc) {
            if (n->kind == OP_ADD_SERVICE || n->kind == OP_REMOVE_SERVICE)
                drop = true;
            else if (is_server_op(o->kind) && net_addr_equal(&o->addr, &n->addr))
                drop = (n->kind == OP_ADD_SERVER || n->kind == OP_REMOVE_SERVER) ||
                       o->kind == OP_DRAIN || o->kind == OP_UNDRAIN;
        }
        if (drop) {
            *pp = o->next;
            op_free(o);
        } else {
            pp = &o->next;
        }
    }
}

static void append(struct gw_members *m, struct gw_member_op *n)
{
    compact(m, n);
    struct gw_member_op **pp = &m->ops;
    while (*pp)
        pp = &(*pp)->next;
    *pp = n;
}

static struct gw_server *find_server(struct gw_service *svc, const struct net_addr *a, size_t *idx)
{
    for (size_t i = 0; i < svc->nservers; i++)
        if (net_addr_equal(&svc->servers[i]->addr, a)) {
            if (idx)
                *idx = i;
            return svc->servers[i];
        }
    return NULL;
}

static void remove_service(struct gw_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nservices; i++) {
        if (strcmp(s->services[i]->name, name))
            continue;
        struct gw_service *svc = s->services[i];
        for (size_t r = 0; r < s->nroutes;) {
            if (s->routes[r].svc == svc) {
                gw_route_clear(&s->routes[r]);
                s->routes[r] = s->routes[--s->nroutes];
            } else {
                r++;
            }
        }
        memmove(&s->services[i], &s->services[i + 1], (s->nservices - i - 1) * sizeof *s->services);
        s->nservices--;
        gw_service_free(svc);
        return;
    }
}

/* Adds text to (or removes it from) a CIDR text list. */
static void cidr_list_apply(char ***list, size_t *n, const char *text, bool add)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i], text) != 0)
            continue;
        if (!add) {
            free((*list)[i]);
            (*list)[i] = (*list)[--*n];
        }
        return;
    }
    if (add) {
        *list = xrealloc(*list, (*n + 1) * sizeof **list);
        (*list)[(*n)++] = xstrdup(text);
    }
}

int gw_members_apply(struct gw *g, struct gw_snapshot *s, struct gw_snapshot *prev, char **err)
{
    for (struct gw_member_op *o = g->members.ops; o; o = o->next) {
        if (o->kind == OP_CIDR) {
            if (o->deny)
                cidr_list_apply(&s->deny_txt, &s->ndeny_txt, o->svc, o->add);
            else
                cidr_list_apply(&s->allow_txt, &s->nallow_txt, o->svc, o->add);
            continue;
        }
        if (o->kind == OP_ROUTE_CIDR) {
            /* A route that is gone (reloaded away) keeps its op: it applies
             * again if the route comes back. */
            struct gw_route *r = gw_snapshot_route(s, o->route, o->host);
            if (r && o->deny)
                cidr_list_apply(&r->deny_txt, &r->ndeny_txt, o->svc, o->add);
            else if (r)
                cidr_list_apply(&r->allow_txt, &r->nallow_txt, o->svc, o->add);
            continue;
        }
        struct gw_service *svc = gw_snapshot_service(s, o->svc);
        switch (o->kind) {
        case OP_CIDR:
        case OP_ROUTE_CIDR:
            break;
        case OP_ADD_SERVICE:
            if (!svc) {
                svc = gw_service_new(g, o->svc, o->balance);
                svc->dynamic = true;
                svc->rt = gw_svc_rt_for(g, svc->stats, NULL);
                s->services = xrealloc(s->services, (s->nservices + 1) * sizeof *s->services);
                s->services[s->nservices++] = svc;
                if (o->prefix)
                    gw_snapshot_add_route(s, NULL, o->prefix, o->strip, svc);
            }
            break;
        case OP_REMOVE_SERVICE:
            if (svc)
                remove_service(s, o->svc);
            break;
        case OP_ADD_SERVER:
            if (svc && !find_server(svc, &o->addr, NULL)) {
                struct gw_server *srv = gw_snapshot_server_for(g, prev, o->svc, &o->addr, o->weight);
                atomic_store(&srv->dynamic, true);
                gw_service_add_server(svc, srv);
            }
            break;
        case OP_REMOVE_SERVER: {
            size_t i;
            if (svc && find_server(svc, &o->addr, &i)) {
                gw_server_unref(svc->servers[i]);
                memmove(&svc->servers[i], &svc->servers[i + 1],
                        (svc->nservers - i - 1) * sizeof *svc->servers);
                svc->nservers--;
            }
            break;
        }
        case OP_DRAIN:
        case OP_UNDRAIN: {
            struct gw_server *srv = svc ? find_server(svc, &o->addr, NULL) : NULL;
            if (srv)
                atomic_store(&srv->draining, o->kind == OP_DRAIN);
            break;
        }
        }
    }
    (void)err;
    return 0;
}

/* Publishes a snapshot of the config plus the log, then saves the log.
 * Returns 0, -EINVAL when the build fails, or -EIO when the change is
 * live but could not be saved to the state file. ctl_lock held. */
static int publish(struct gw *g, char **err)
{
    struct gw_snapshot *cur = gw_snapshot_get(g);
    struct gw_snapshot *s = gw_snapshot_build(g, gw_cfgref_get(cur->cfgref), cur, err);
    gw_snapshot_unref(cur);
    if (!s)
        return -EINVAL;
    gw_snapshot_publish(g, s);
    const char *state_path = g->members.state_path;
    char *why = NULL;
    if (save_state(&g->members, &why) != 0) {
        log_error("state file %s: %s", state_path, why);
        *err = xasprintf("the change is in effect but was not saved to the state file %s: %s", state_path, why);
        free(why);
        return -EIO;
    }
    return 0;
}

/* Records n and publishes a snapshot with it. Inputs are validated
 * before, so the build cannot fail on them. ctl_lock held. */
static int commit(struct gw *g, struct gw_member_op *n, char **err)
{
    append(&g->members, n);
    return publish(g, err);
}

/* The lease op of server a in service svc, or NULL. ctl_lock held. */
static struct gw_member_op *find_lease(struct gw_members *m, const char *svc, const struct net_addr *a)
{
    for (struct gw_member_op *o = m->ops; o; o = o->next)
        if (o->kind == OP_ADD_SERVER && o->ttl_ms && !strcmp(o->svc, svc) && net_addr_equal(&o->addr, a))
            return o;
    return NULL;
}

static struct gw_member_op *op_new(enum op_kind k, const char *svc)
{
    struct gw_member_op *o = xcalloc(1, sizeof *o);
    o->kind = k;
    o->svc = xstrdup(svc);
    return o;
}

/* Validates svc/addr against the current snapshot. Returns 0, or with
 * *err set -EINVAL (bad address), -ENOENT (no such service or server) or
 * -EEXIST (the server is there already). */
static int lookup(struct gw *g, const char *svcname, const char *addr, struct net_addr *na, bool want_server,
                  bool must_exist, char **err)
{
    if (addr && net_parse_addr(addr, na, err) != 0)
        return -EINVAL;
    struct gw_snapshot *cur = gw_snapshot_get(g);
    struct gw_service *svc = gw_snapshot_service(cur, svcname);
    int rc = 0;
    if (!svc) {
        *err = xasprintf("no service '%s'", svcname);
        rc = -ENOENT;
    } else if (want_server) {
        bool exists = find_server(svc, na, NULL) != NULL;
        char shown[64];
        net_addr_str(na, shown, sizeof shown);
        if (must_exist && !exists) {
            *err = xasprintf("service '%s' has no server %s", svcname, addr ? addr : shown);
            rc = -ENOENT;
        } else if (!must_exist && exists) {
            *err = xasprintf("service '%s' already has server %s", svcname, addr ? addr : shown);
            rc = -EEXIST;
        }
    }
    gw_snapshot_unref(cur);
    return rc;
}

/* why (a message from a gw_check_* function, freed) with the name of the
 * admin API's field in front, as the config loader puts the key path. */
static int refuse(const char *field, char *why, char **err)
{
    *err = xasprintf("%s: %s", field, why);
    free(why);
    return -EINVAL;
}

int gw_members_add_server(struct gw *g, const char *svc, const char *addr, int weight, uint64_t ttl_ms, char **err)
{
    char wtext[24], *why;
    snprintf(wtext, sizeof wtext, "%d", weight);
    if ((why = gw_check_weight(wtext, NULL)) != NULL)
        return refuse("weight", why, err);
    struct net_addr na;
    if ((why = gw_check_server_address(addr, &na)) != NULL)
        return refuse("address", why, err);
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_member_op *lease = ttl_ms ? find_lease(&g->members, svc, &na) : NULL;
    int rc = lookup(g, svc, NULL, &na, true, false, err);
    if (rc == -EEXIST && lease) {
        /* A renewal: a new end, and the weight it asks for now. */
        free(*err);
        *err = NULL;
        lease->ttl_ms = ttl_ms;
        lease->expires_ms = now_ms() + ttl_ms;
        rc = 1;
        if (lease->weight != weight) {
            lease->weight = weight;
            rc = publish(g, err);
            rc = rc == 0 ? 1 : rc;
        }
        log_debug("renewed the lease of server %s in service %s (%llu ms)", addr, svc, (unsigned long long)ttl_ms);
    } else if (rc == 0) {
        struct gw_member_op *o = op_new(OP_ADD_SERVER, svc);
        o->addr = na;
        o->weight = weight;
        o->ttl_ms = ttl_ms;
        o->expires_ms = now_ms() + ttl_ms;
        rc = commit(g, o, err);
        if (rc == 0 && ttl_ms)
            log_info("registered server %s in service %s (weight %d, lease %llu ms)", addr, svc, weight,
                     (unsigned long long)ttl_ms);
        else if (rc == 0)
            log_info("registered server %s in service %s (weight %d)", addr, svc, weight);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

bool gw_members_lease(struct gw *g, const char *svc, const struct net_addr *a, uint64_t *ttl_ms, uint64_t *left_ms)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_member_op *o = find_lease(&g->members, svc, a);
    if (o) {
        uint64_t now = now_ms();
        *ttl_ms = o->ttl_ms;
        *left_ms = o->expires_ms > now ? o->expires_ms - now : 0;
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return o != NULL;
}

int gw_members_expire(struct gw *g)
{
    pthread_mutex_lock(&g->ctl_lock);
    uint64_t now = now_ms();
    int n = 0;
    for (struct gw_member_op **pp = &g->members.ops; *pp;) {
        struct gw_member_op *o = *pp;
        if (o->kind != OP_ADD_SERVER || !o->ttl_ms || o->expires_ms > now) {
            pp = &o->next;
            continue;
        }
        char a[64];
        net_addr_str(&o->addr, a, sizeof a);
        log_warn("lease of server %s in service %s expired (not renewed within %llu ms): removed", a, o->svc,
                 (unsigned long long)o->ttl_ms);
        /* Its drains go with it: they would outlive the server otherwise. */
        for (struct gw_member_op **qq = &o->next; *qq;) {
            struct gw_member_op *q = *qq;
            if ((q->kind == OP_DRAIN || q->kind == OP_UNDRAIN) && !strcmp(q->svc, o->svc) &&
                net_addr_equal(&q->addr, &o->addr)) {
                *qq = q->next;
                op_free(q);
            } else {
                qq = &q->next;
            }
        }
        *pp = o->next;
        op_free(o);
        atomic_fetch_add_explicit(&g->members.leases_expired, 1, memory_order_relaxed);
        n++;
    }
    if (n) {
        char *err = NULL;
        if (publish(g, &err) != 0) {
            log_error("after expired leases: %s", err);
            free(err);
        }
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return n;
}

void gw_members_metrics_render(struct gw *g, struct buf *b)
{
    metrics_family(b, "floodgate_gateway_leases_expired_total", "counter",
                   "Registered servers removed because their lease ran out without a renewal.");
    metrics_sample_u64(b, "floodgate_gateway_leases_expired_total", NULL,
                       atomic_load_explicit(&g->members.leases_expired, memory_order_relaxed));
    uint64_t live = 0;
    pthread_mutex_lock(&g->ctl_lock);
    for (struct gw_member_op *o = g->members.ops; o; o = o->next)
        live += o->kind == OP_ADD_SERVER && o->ttl_ms;
    pthread_mutex_unlock(&g->ctl_lock);
    metrics_family(b, "floodgate_gateway_leases", "gauge", "Registration leases held (servers that renew).");
    metrics_sample_u64(b, "floodgate_gateway_leases", NULL, live);
}

int gw_members_remove_server(struct gw *g, const char *svc, const char *addr, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct net_addr na;
    int rc = lookup(g, svc, addr, &na, true, true, err);
    if (rc == 0) {
        struct gw_member_op *o = op_new(OP_REMOVE_SERVER, svc);
        o->addr = na;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("deregistered server %s from service %s", addr, svc);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_drain_server(struct gw *g, const char *svc, const char *addr, bool drain, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct net_addr na;
    int rc = lookup(g, svc, addr, &na, true, true, err);
    if (rc == 0) {
        struct gw_member_op *o = op_new(drain ? OP_DRAIN : OP_UNDRAIN, svc);
        o->addr = na;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("%s server %s in service %s", drain ? "draining" : "undrained", addr, svc);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_add_service(struct gw *g, const char *svc, const char *balance, const char *prefix,
                           bool strip_prefix, char **err)
{
    char *why;
    int algo = 0;
    if ((why = gw_check_service_name(svc)) != NULL)
        return refuse("name", why, err);
    if (balance && (why = gw_check_balance(balance, &algo)) != NULL)
        return refuse("balance", why, err);
    if (prefix && (why = gw_check_path(prefix)) != NULL)
        return refuse("prefix", why, err);
    pthread_mutex_lock(&g->ctl_lock);
    int rc = 0;
    struct gw_snapshot *cur = gw_snapshot_get(g);
    if (gw_snapshot_service(cur, svc)) {
        *err = xasprintf("service '%s' already exists", svc);
        rc = -EEXIST;
    } else if (prefix && gw_snapshot_route(cur, prefix, NULL)) {
        /* The config refuses two routes with the same host and prefix. */
        *err = xasprintf("prefix: duplicate route: a route for any host at '%s' already exists", prefix);
        rc = -EEXIST;
    }
    gw_snapshot_unref(cur);
    if (rc == 0) {
        struct gw_member_op *o = op_new(OP_ADD_SERVICE, svc);
        o->balance = xstrdup(gw_lb_algo_name((enum gw_lb_algo)algo));
        o->prefix = prefix ? xstrdup(prefix) : NULL;
        o->strip = strip_prefix;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("created service %s (%s)%s%s", svc, o->balance, prefix ? " at " : "",
                     prefix ? prefix : "");
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_remove_service(struct gw *g, const char *svc, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    int rc = lookup(g, svc, NULL, NULL, false, true, err);
    if (rc == 0) {
        rc = commit(g, op_new(OP_REMOVE_SERVICE, svc), err);
        if (rc == 0)
            log_info("removed service %s", svc);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_cidr(struct gw *g, bool deny, bool add, const char *cidr, char **err)
{
    char *why = gw_check_cidr(cidr);
    if (why)
        return refuse("cidr", why, err);
    int rc;
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_member_op *o = op_new(OP_CIDR, cidr);
    o->deny = deny;
    o->add = add;
    rc = commit(g, o, err);
    if (rc == 0)
        log_info("%s %s %s the %s list", add ? "added" : "removed", cidr, add ? "to" : "from",
                 deny ? "deny" : "allow");
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_route_cidr(struct gw *g, const char *route, const char *host, bool deny, bool add, const char *cidr,
                          char **err)
{
    char *why = gw_check_cidr(cidr);
    if (why)
        return refuse("cidr", why, err);
    int rc = 0;
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_snapshot *cur = gw_snapshot_get(g);
    if (!gw_snapshot_route(cur, route, host)) {
        *err = host ? xasprintf("no route '%s' for host '%s'", route, host) : xasprintf("no route '%s'", route);
        rc = -ENOENT;
    }
    gw_snapshot_unref(cur);
    if (rc == 0) {
        struct gw_member_op *o = op_new(OP_ROUTE_CIDR, cidr);
        o->route = xstrdup(route);
        o->host = host ? xstrdup(host) : NULL;
        o->deny = deny;
        o->add = add;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("route %s%s%s: %s %s %s its %s list", host ? host : "", host ? " " : "", route,
                     add ? "added" : "removed", cidr, add ? "to" : "from", deny ? "deny" : "allow");
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

void gw_members_free(struct gw_members *m)
{
    while (m->ops) {
        struct gw_member_op *o = m->ops;
        m->ops = o->next;
        op_free(o);
    }
    free(m->state_path);
    m->state_path = NULL;
}

/* ---- the state file ----
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
static int save_state(struct gw_members *m, char **err)
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
    o->kind = (enum op_kind)k;
    char *why = NULL;
    if (k == OP_CIDR || k == OP_ROUTE_CIDR) {
        const char *cidr = jstr(j, "cidr", true, &bad), *list = jstr(j, "list", true, &bad);
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(j, "add");
        if (bad || !cJSON_IsBool(add) || (strcmp(list, "allow") && strcmp(list, "deny"))) {
            why = xstrdup("expected \"cidr\", \"list\" (allow or deny) and \"add\" (true or false)");
            goto out;
        }
        o->svc = xstrdup(cidr);
        o->deny = !strcmp(list, "deny");
        o->add = cJSON_IsTrue(add);
        if ((why = gw_check_cidr(cidr)) != NULL)
            goto out;
        if (k == OP_ROUTE_CIDR) {
            const char *route = jstr(j, "route", true, &bad), *host = jstr(j, "host", false, &bad);
            if (bad || !route[0]) {
                why = xstrdup("expected \"route\" (and an optional \"host\")");
                goto out;
            }
            o->route = xstrdup(route);
            o->host = host ? xstrdup(host) : NULL;
            if (o->host && (why = gw_check_host(o->host)) != NULL)
                goto out;
        }
        goto out;
    }
    const char *svc = jstr(j, "service", true, &bad);
    if (bad) {
        why = xstrdup("expected \"service\"");
        goto out;
    }
    o->svc = xstrdup(svc);
    if ((why = gw_check_service_name(svc)) != NULL)
        goto out;
    if (is_server_op(o->kind)) {
        const char *addr = jstr(j, "address", true, &bad);
        if (bad) {
            why = xstrdup("expected \"address\"");
            goto out;
        }
        if ((why = gw_check_server_address(addr, &o->addr)) != NULL)
            goto out;
        if (o->kind == OP_ADD_SERVER) {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "weight");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "ttl_ms");
            char text[32];
            snprintf(text, sizeof text, "%.17g", cJSON_IsNumber(w) ? w->valuedouble : -1.0);
            if ((why = gw_check_weight(text, &o->weight)) != NULL)
                goto out;
            if (t && (!cJSON_IsNumber(t) || t->valuedouble < (double)GW_TTL_MIN_MS ||
                      t->valuedouble > (double)GW_TTL_MAX_MS)) {
                why = xstrdup("\"ttl_ms\" must be a number of milliseconds between 1s and 1h");
                goto out;
            }
            o->ttl_ms = t ? (uint64_t)t->valuedouble : 0;
            o->expires_ms = now + o->ttl_ms;
        }
    } else if (o->kind == OP_ADD_SERVICE) {
        const char *balance = jstr(j, "balance", true, &bad), *prefix = jstr(j, "prefix", false, &bad);
        const cJSON *strip = cJSON_GetObjectItemCaseSensitive(j, "strip_prefix");
        if (bad || (strip && !cJSON_IsBool(strip))) {
            why = xstrdup("expected \"balance\", an optional \"prefix\" and \"strip_prefix\"");
            goto out;
        }
        int algo = 0;
        if ((why = gw_check_balance(balance, &algo)) != NULL)
            goto out;
        o->balance = xstrdup(gw_lb_algo_name((enum gw_lb_algo)algo));
        if (prefix && (why = gw_check_path(prefix)) != NULL)
            goto out;
        o->prefix = prefix ? xstrdup(prefix) : NULL;
        o->strip = cJSON_IsTrue(strip);
    }
out:
    if (why) {
        *err = why;
        op_free(o);
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
        if (save_state(m, &why) != 0) {
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
    uint64_t now = now_ms();
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
        append(m, o);
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
