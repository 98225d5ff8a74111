/* The typed queue-level calls of the engine: create, set attributes,
 * delete, purge, tags, and message move tasks. Attributes arrive parsed (struct
 * bk_qattrs: bk_qattrs_defaults, then bk_qattrs_apply or plain fields);
 * what is checked here is what depends on the other queues (the broker's
 * queue limit, dead-letter queues and their RedriveAllowPolicy). Every
 * change is logged before it is answered (ctx->need_sync). */
#include "broker/queue/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 50

static enum bk_err log_failed(struct bk_error *err)
{
    return bk_fail(err, BK_E_LOG, "The broker could not write its log.");
}

enum bk_err bk_tags_check(const cJSON *tags, const cJSON *existing, struct bk_error *err)
{
    if (!cJSON_IsObject(tags))
        return bk_fail(err, BK_E_INVALID, "Tags must be a map of strings.");
    int n = existing ? cJSON_GetArraySize(existing) : 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tags)
    {
        size_t kl = strlen(t->string);
        if (!cJSON_IsString(t) || kl < 1 || kl > 128 || strlen(t->valuestring) > 256)
            return bk_fail(err, BK_E_INVALID, "Tag %.128s is invalid.", t->string);
        if (!existing || !cJSON_GetObjectItemCaseSensitive(existing, t->string))
            n++;
    }
    if (n > MAX_TAGS)
        return bk_fail(err, BK_E_INVALID, "Too many tags (at most %d).", MAX_TAGS);
    return BK_OK;
}

/* The dead-letter queue named by a's policy must let src_name send to it. */
static enum bk_err check_redrive(struct bk_engine *e, const struct bk_qattrs *a, const char *src_name,
                                 struct bk_error *err)
{
    if (!a->dlq_name)
        return BK_OK;
    struct bk_queue *dlq = bk_engine_find(e, a->dlq_name, strlen(a->dlq_name));
    struct bk_queue probe;
    memset(&probe, 0, sizeof probe);
    snprintf(probe.name, sizeof probe.name, "%s", src_name);
    if (dlq && !strcmp(dlq->name, src_name))
        return bk_fail(err, BK_E_ATTR_VALUE, "A queue cannot be its own dead-letter queue.");
    if (dlq && !bk__redrive_allowed(dlq, &probe))
        return bk_fail(err, BK_E_ATTR_VALUE,
                       "The RedriveAllowPolicy of %s does not allow this queue as a source.", dlq->name);
    return BK_OK;
}

static enum bk_err create_check(struct bk_engine *e, const char *name, const struct bk_qattrs *a,
                                const cJSON *tags, struct bk_error *err)
{
    bool fifo;
    if (!name || !*name)
        return bk_fail(err, BK_E_MISSING, "The request must contain the parameter QueueName.");
    if (!bk_qname_valid(name, &fifo))
        return bk_fail(err, BK_E_INVALID,
                       "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 "
                       "in length (FIFO queues: ending in .fifo).");
    if (e->nqueues >= e->o.max_queues)
        return bk_fail(err, BK_E_OVER_LIMIT, "The broker holds its limit of %u queues.", e->o.max_queues);
    enum bk_err rc;
    if (tags && (rc = bk_tags_check(tags, NULL, err)) != BK_OK)
        return rc;
    return check_redrive(e, a, name, err);
}

enum bk_err bk_queue_create(struct bk_engine *e, struct bk_ctx *ctx, const char *name, struct bk_qattrs *a,
                            const cJSON *tags, struct bk_queue **out, struct bk_error *err)
{
    struct bk_queue *q = name ? bk_engine_find(e, name, strlen(name)) : NULL;
    enum bk_err rc = q ? BK_OK : create_check(e, name, a, tags, err);
    if (q || rc != BK_OK) {
        bk_qattrs_free(a);
        *out = q;
        return rc;
    }
    q = bk_engine_create(e, name, a, tags ? cJSON_Duplicate(tags, true) : NULL, 0, ctx->now);
    if (!bk__log_queue(e, q)) {
        bk_engine_delete(e, q, ctx->now);
        *out = NULL;
        return log_failed(err);
    }
    ctx->need_sync = true;
    *out = q;
    return BK_OK;
}

enum bk_err bk_queue_ensure(struct bk_engine *e, struct bk_ctx *ctx, const char *name, const cJSON *attrs,
                            const cJSON *tags, struct bk_queue **out, struct bk_error *err)
{
    struct bk_queue *q = name ? bk_engine_find(e, name, strlen(name)) : NULL;
    if (q && attrs && bk_qattrs_differ(&q->a, attrs))
        return bk_fail(err, BK_E_QUEUE_EXISTS,
                       "A queue already exists with the same name and a different value for "
                       "attribute(s).");
    struct bk_qattrs a;
    bool fifo = false;
    bool valid = name && bk_qname_valid(name, &fifo);
    bk_qattrs_defaults(&a, &e->o, fifo);
    enum bk_err rc;
    if (!q && valid && (rc = bk_qattrs_apply(e, &a, attrs, name, true, err)) != BK_OK) {
        bk_qattrs_free(&a);
        return rc;
    }
    return bk_queue_create(e, ctx, name, &a, tags, out, err);
}

enum bk_err bk_queue_set_attrs(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                               struct bk_qattrs *a, struct bk_error *err)
{
    enum bk_err rc = check_redrive(e, a, q->name, err);
    if (rc != BK_OK) {
        bk_qattrs_free(a);
        return rc;
    }
    struct bk_qattrs old = q->a;
    uint64_t old_mod = q->modified_ms;
    q->a = *a;
    q->modified_ms = ctx->now;
    if (!bk__log_queue(e, q)) {
        bk_qattrs_free(&q->a);
        q->a = old;
        q->modified_ms = old_mod;
        return log_failed(err);
    }
    bk_qattrs_free(&old);
    ctx->need_sync = true;
    return BK_OK;
}

enum bk_err bk_queue_delete(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                            struct bk_error *err)
{
    if (!bk__log_queue_del(e, q))
        return log_failed(err);
    bk_engine_delete(e, q, ctx->now);
    ctx->need_sync = true;
    return BK_OK;
}

enum bk_err bk_queue_purge(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                           struct bk_error *err)
{
    if (!bk__log_purge(e, q))
        return log_failed(err);
    q->st.purged += q->nmsgs;
    bk__queue_clear(e, q);
    ctx->need_sync = true;
    return BK_OK;
}

enum bk_err bk_queue_tag(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *tags,
                         struct bk_error *err)
{
    enum bk_err rc = bk_tags_check(tags, q->tags, err);
    if (rc != BK_OK)
        return rc;
    const cJSON *t;
    cJSON_ArrayForEach(t, tags)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(q->tags, t->string);
        cJSON_AddStringToObject(q->tags, t->string, t->valuestring);
    }
    if (!bk__log_queue(e, q))
        return log_failed(err);
    ctx->need_sync = true;
    return BK_OK;
}

/* ---- message move tasks ---- */

static bool is_dlq(struct bk_engine *e, const struct bk_queue *q)
{
    for (const struct bk_queue *s = e->qhead; s; s = s->lnext)
        if (s->a.dlq_name && !strcmp(s->a.dlq_name, q->name))
            return true;
    return false;
}

enum bk_err bk_move_start(struct bk_engine *e, struct bk_ctx *ctx, const struct bk_move_args *a,
                          struct bk_move_task **out, struct bk_error *err)
{
    struct bk_queue *src = a->src, *dst = a->dst;
    if (!src)
        return bk_fail(err, BK_E_NOT_FOUND, "The resource that you specified for the SourceArn parameter "
                                            "doesn't exist.");
    if (a->has_dst && !dst)
        return bk_fail(err, BK_E_NOT_FOUND, "The resource that you specified for the DestinationArn "
                                            "parameter doesn't exist.");
    if (dst == src || (dst && dst->a.fifo != src->a.fifo))
        return bk_fail(err, BK_E_INVALID, "The destination must be another queue of the same type.");
    if (!is_dlq(e, src))
        return bk_fail(err, BK_E_INVALID, "Source queue must be configured as a Dead Letter Queue.");
    if (a->has_rate && (a->rate < 1 || a->rate > 500))
        return bk_fail(err, BK_E_INVALID, "Value for parameter MaxNumberOfMessagesPerSecond is invalid. "
                                          "Reason: must be between 1 and 500.");
    for (struct bk_move_task *t = e->tasks; t; t = t->next)
        if (t->src_qid == src->qid && t->status == BK_TASK_RUNNING)
            return bk_fail(err, BK_E_UNSUPPORTED, "There is already a running message move task for this source.");
    *out = bk__task_start(e, src, dst, a->has_rate ? (uint32_t)a->rate : 0, ctx->now);
    ctx->need_sync = true;
    return BK_OK;
}
