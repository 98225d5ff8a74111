/* The topic registry: topics and their subscriptions, lookups by name and
 * ARN, creation and removal, identifiers, and loading at start. Topics are
 * few (thousands at most) and looked up once per request, so a list is
 * enough; a publish walks its topic's subscription list. */
#include "broker/topic/topic.h"

#include "broker/sns/sns_sign.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tp_engine *tp_engine_new(struct bk_engine *e, const char *meta_dir)
{
    struct tp_engine *t = xcalloc(1, sizeof *t);
    t->e = e;
    t->max_topics = TP_MAX_TOPICS;
    if (meta_dir)
        t->meta_path = xasprintf("%s/%s", meta_dir, TP_META_FILE);
    return t;
}

void tp_engine_free(struct tp_engine *t)
{
    if (!t)
        return;
    tp_push_stop(t);
    while (t->topics) {
        struct tp_topic *tp = t->topics;
        t->topics = tp->next;
        while (tp->subs) {
            struct tp_sub *s = tp->subs;
            tp->subs = s->next;
            tp__push_sub_release(t, s, false);
            tp__sub_free(t, s);
        }
        tp__topic_free(t, tp);
    }
    free(t->meta_path);
    free(t);
}

int tp_engine_load(struct tp_engine *t, uint64_t now, char *err, size_t errlen)
{
    if (tp__load_file(t, now, err, errlen) < 0)
        return -1;
    for (struct tp_topic *tp = t->topics; tp; tp = tp->next)
        for (struct tp_sub *s = tp->subs; s; s = s->next) {
            if (s->proto != TP_HTTP)
                continue;
            struct sns_error e;
            if (tp__push_queue_ensure(t, s, now, &e) != SNS_OK) {
                snprintf(err, errlen, "subscription %s: push queue: %s", s->arn, e.message);
                return -1;
            }
        }
    return 0;
}

/* ---- lookups ---- */

struct tp_topic *tp_find_topic(struct tp_engine *t, const char *name)
{
    for (struct tp_topic *tp = t->topics; tp; tp = tp->next)
        if (strcmp(tp->name, name) == 0)
            return tp;
    return NULL;
}

struct tp_topic *tp_find_topic_arn(struct tp_engine *t, const char *arn)
{
    static const char prefix[] = TP_ARN_PREFIX;
    if (!arn || strncmp(arn, prefix, sizeof prefix - 1) != 0)
        return NULL;
    return tp_find_topic(t, arn + sizeof prefix - 1);
}

struct tp_sub *tp_find_sub_arn(struct tp_engine *t, const char *arn)
{
    static const char prefix[] = TP_ARN_PREFIX;
    if (!arn || strncmp(arn, prefix, sizeof prefix - 1) != 0)
        return NULL;
    const char *name = arn + sizeof prefix - 1;
    const char *colon = strrchr(name, ':');
    if (!colon || (size_t)(colon - name) > TP_MAX_NAME)
        return NULL;
    char tname[TP_MAX_NAME + 1];
    memcpy(tname, name, (size_t)(colon - name));
    tname[colon - name] = '\0';
    struct tp_topic *tp = tp_find_topic(t, tname);
    if (!tp)
        return NULL;
    for (struct tp_sub *s = tp->subs; s; s = s->next)
        if (strcmp(s->id, colon + 1) == 0)
            return s;
    return NULL;
}

/* ---- identifiers and names ---- */

void tp__uuid(char out[40])
{
    uint8_t b[16];
    bk_random_bytes(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

bool tp__topic_name_valid(const char *name, bool fifo)
{
    size_t n = strlen(name);
    if (n == 0 || n > TP_MAX_NAME)
        return false;
    size_t body = n;
    if (fifo) {
        if (n <= 5 || strcmp(name + n - 5, ".fifo") != 0)
            return false;
        body = n - 5;
    }
    for (size_t i = 0; i < body; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- topics ---- */

struct tp_topic *tp__topic_new(struct tp_engine *t, const char *name, bool fifo, uint64_t now)
{
    struct tp_topic *tp = xcalloc(1, sizeof *tp);
    snprintf(tp->name, sizeof tp->name, "%s", name);
    tp->arn = xasprintf(TP_ARN_PREFIX "%s", name);
    tp->fifo = fifo;
    tp->attrs = cJSON_CreateObject();
    tp->tags = cJSON_CreateObject();
    push_policy_default(&tp->http_defaults);
    tp->created_ms = now;
    if (t->tail)
        t->tail->next = tp;
    else
        t->topics = tp;
    t->tail = tp;
    t->ntopics++;
    return tp;
}

void tp__topic_free(struct tp_engine *t, struct tp_topic *tp)
{
    FG_UNUSED(t);
    while (tp->dedup) {
        struct tp_dedup *d = tp->dedup;
        tp->dedup = d->next;
        free(d->id);
        free(d);
    }
    cJSON_Delete(tp->attrs);
    cJSON_Delete(tp->tags);
    free(tp->arn);
    free(tp);
}

/* ---- subscriptions ---- */

void tp__sub_policy(struct tp_sub *s)
{
    s->policy = s->t->http_defaults;
    if (s->delivery_json && !s->t->no_overrides) {
        char err[256];
        if (push_policy_apply_sub(&s->policy, s->delivery_json, err, sizeof err) < 0)
            s->policy = s->t->http_defaults; /* validated when set: cannot happen */
    }
}

struct tp_sub *tp__sub_new(struct tp_topic *tp, uint8_t proto, const char *endpoint, uint64_t now)
{
    struct tp_sub *s = xcalloc(1, sizeof *s);
    s->t = tp;
    tp__uuid(s->id);
    s->arn = xasprintf("%s:%s", tp->arn, s->id);
    s->proto = proto;
    s->endpoint = xstrdup(endpoint);
    s->created_ms = now;
    s->scope = FILTER_SCOPE_ATTRIBUTES;
    snprintf(s->push_queue, sizeof s->push_queue, TP_PUSH_PREFIX "%s", s->id);
    tp__sub_policy(s);
    struct tp_sub **pp = &tp->subs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    tp->nsubs++;
    return s;
}

void tp__sub_free(struct tp_engine *t, struct tp_sub *s)
{
    FG_UNUSED(t);
    free(s->arn);
    free(s->endpoint);
    free(s->filter_json);
    filter_free(s->filter);
    free(s->delivery_json);
    free(s->redrive_json);
    free(s->dlq_arn);
    push_endpoint_free(&s->ep);
    free(s);
}

void tp__sub_remove(struct tp_engine *t, struct tp_sub *s)
{
    struct tp_topic *tp = s->t;
    for (struct tp_sub **pp = &tp->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    tp->nsubs--;
    if (!s->confirmed && tp->npending)
        tp->npending--;
    tp->subs_deleted++;
    s->next = NULL;
    tp__push_sub_release(t, s, true);
    if (s->inflight) {
        s->deleted = true; /* deliver.c frees it when its last POST ends */
        return;
    }
    tp__sub_free(t, s);
}
