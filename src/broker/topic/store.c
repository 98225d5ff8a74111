/* The topic snapshot: every topic and subscription as one JSON document in
 * the data directory, rewritten whole after each change (temporary file,
 * fsync, rename over the old one, fsync of the directory), so a crash
 * leaves either the old or the new snapshot, never a mix. Loading
 * re-applies each attribute through the same checks the API uses. */
#include "broker/topic/topic.h"

#include "core/json.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TP_SNAPSHOT_MAX (256u << 20)

static cJSON *sub_json(const struct tp_sub *s)
{
    cJSON *o = cJSON_CreateObject();
    char n[32];
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "protocol", s->proto == TP_SQS ? "sqs" : "http");
    cJSON_AddStringToObject(o, "endpoint", s->endpoint);
    cJSON_AddBoolToObject(o, "confirmed", s->confirmed);
    if (s->token[0])
        cJSON_AddStringToObject(o, "token", s->token);
    snprintf(n, sizeof n, "%llu", (unsigned long long)s->created_ms);
    cJSON_AddStringToObject(o, "created", n);
    cJSON_AddBoolToObject(o, "raw", s->raw);
    cJSON_AddStringToObject(o, "scope", filter_scope_name((enum filter_scope)s->scope));
    if (s->filter_json)
        cJSON_AddStringToObject(o, "filter", s->filter_json);
    if (s->delivery_json)
        cJSON_AddStringToObject(o, "delivery", s->delivery_json);
    if (s->redrive_json)
        cJSON_AddStringToObject(o, "redrive", s->redrive_json);
    return o;
}

static cJSON *topic_json(const struct tp_topic *tp)
{
    cJSON *o = cJSON_CreateObject();
    char n[32];
    cJSON_AddStringToObject(o, "name", tp->name);
    cJSON_AddBoolToObject(o, "fifo", tp->fifo);
    snprintf(n, sizeof n, "%llu", (unsigned long long)tp->created_ms);
    cJSON_AddStringToObject(o, "created", n);
    snprintf(n, sizeof n, "%llu", (unsigned long long)tp->last_seq);
    cJSON_AddStringToObject(o, "last_seq", n);
    snprintf(n, sizeof n, "%llu", (unsigned long long)tp->subs_deleted);
    cJSON_AddStringToObject(o, "subs_deleted", n);
    cJSON_AddItemToObject(o, "attrs", cJSON_Duplicate(tp->attrs, true));
    cJSON_AddItemToObject(o, "tags", cJSON_Duplicate(tp->tags, true));
    cJSON *subs = cJSON_AddArrayToObject(o, "subs");
    for (const struct tp_sub *s = tp->subs; s; s = s->next)
        cJSON_AddItemToArray(subs, sub_json(s));
    return o;
}

static int fsync_dir(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int tp__save(struct tp_engine *t)
{
    if (!t->meta_path)
        return 0;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON *topics = cJSON_AddArrayToObject(root, "topics");
    for (const struct tp_topic *tp = t->topics; tp; tp = tp->next)
        cJSON_AddItemToArray(topics, topic_json(tp));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *tmp = xasprintf("%s.tmp", t->meta_path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
    } else {
        size_t len = strlen(text), off = 0;
        while (off < len && rc == 0) {
            ssize_t n = write(fd, text + off, len - off);
            if (n < 0 && errno != EINTR)
                rc = -errno;
            else if (n > 0)
                off += (size_t)n;
        }
        if (rc == 0 && fsync(fd) < 0)
            rc = -errno;
        close(fd);
        if (rc == 0 && rename(tmp, t->meta_path) < 0)
            rc = -errno;
        if (rc == 0)
            rc = fsync_dir(t->meta_path);
        if (rc < 0)
            unlink(tmp);
    }
    free(tmp);
    free(text);
    return rc;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint64_t jnum(const cJSON *o, const char *name)
{
    const char *s = jstr(o, name);
    return s ? strtoull(s, NULL, 10) : 0;
}

static int load_sub(struct tp_engine *t, struct tp_topic *tp, const cJSON *j, char *err,
                    size_t errlen)
{
    const char *id = jstr(j, "id"), *proto = jstr(j, "protocol"), *ep = jstr(j, "endpoint");
    if (!id || strlen(id) >= 40 || !proto || !ep) {
        snprintf(err, errlen, "topic %s: a subscription lacks id, protocol or endpoint", tp->name);
        return -1;
    }
    struct tp_sub *s = tp__sub_new(tp, strcmp(proto, "http") == 0 ? TP_HTTP : TP_SQS, ep,
                                   jnum(j, "created"));
    snprintf(s->id, sizeof s->id, "%s", id);
    free(s->arn);
    s->arn = xasprintf("%s:%s", tp->arn, s->id);
    snprintf(s->push_queue, sizeof s->push_queue, TP_PUSH_PREFIX "%s", s->id);
    s->confirmed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "confirmed"));
    if (!s->confirmed)
        tp->npending++;
    const char *token = jstr(j, "token");
    if (token)
        snprintf(s->token, sizeof s->token, "%s", token);
    s->raw = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "raw"));
    struct sns_error e;
    const char *v;
    enum sns_err rc = SNS_OK;
    if ((v = jstr(j, "scope")))
        rc = tp__sub_set_attr(t, s, "FilterPolicyScope", v, false, &e);
    if (rc == SNS_OK && (v = jstr(j, "filter")))
        rc = tp__sub_set_attr(t, s, "FilterPolicy", v, false, &e);
    if (rc == SNS_OK && (v = jstr(j, "delivery")))
        rc = tp__sub_set_attr(t, s, "DeliveryPolicy", v, false, &e);
    if (rc == SNS_OK && (v = jstr(j, "redrive")))
        rc = tp__sub_set_attr(t, s, "RedrivePolicy", v, false, &e);
    if (rc != SNS_OK) {
        snprintf(err, errlen, "subscription %s: %s", s->arn, e.message);
        return -1;
    }
    return 0;
}

static int load_topic(struct tp_engine *t, const cJSON *j, char *err, size_t errlen)
{
    const char *name = jstr(j, "name");
    bool fifo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "fifo"));
    if (!name || !tp__topic_name_valid(name, fifo) || tp_find_topic(t, name)) {
        snprintf(err, errlen, "a topic has a missing, invalid or repeated name");
        return -1;
    }
    struct tp_topic *tp = tp__topic_new(t, name, fifo, jnum(j, "created"));
    tp->last_seq = jnum(j, "last_seq");
    tp->subs_deleted = jnum(j, "subs_deleted");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attrs");
    for (const cJSON *a = attrs ? attrs->child : NULL; a; a = a->next) {
        struct sns_error e;
        if (!cJSON_IsString(a) ||
            tp__topic_set_attr(t, tp, a->string, a->valuestring, false, &e) != SNS_OK) {
            snprintf(err, errlen, "topic %s: attribute %s: %s", name, a->string,
                     cJSON_IsString(a) ? e.message : "not a string");
            return -1;
        }
    }
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
    for (const cJSON *tg = tags ? tags->child : NULL; tg; tg = tg->next)
        if (cJSON_IsString(tg))
            cJSON_AddStringToObject(tp->tags, tg->string, tg->valuestring);
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(j, "subs");
    for (const cJSON *s = subs ? subs->child : NULL; s; s = s->next)
        if (load_sub(t, tp, s, err, errlen) < 0)
            return -1;
    return 0;
}

int tp__load_file(struct tp_engine *t, uint64_t now, char *err, size_t errlen)
{
    FG_UNUSED(now);
    if (!t->meta_path)
        return 0;
    FILE *f = fopen(t->meta_path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", t->meta_path, strerror(errno));
        return -1;
    }
    struct buf b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && buf_len(&b) < TP_SNAPSHOT_MAX)
        buf_append(&b, chunk, n);
    fclose(f);
    cJSON *root = json_parse_strict(buf_rptr(&b), buf_len(&b));
    buf_free(&b);
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    int rc = 0;
    if (!cJSON_IsObject(root) || !cJSON_IsArray(topics)) {
        snprintf(err, errlen, "%s: not a topic snapshot", t->meta_path);
        rc = -1;
    }
    for (const cJSON *tj = rc == 0 ? topics->child : NULL; tj && rc == 0; tj = tj->next)
        rc = load_topic(t, tj, err, errlen);
    cJSON_Delete(root);
    if (rc < 0) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s: %s", t->meta_path, err);
        snprintf(err, errlen, "%s", tmp);
    }
    return rc;
}
