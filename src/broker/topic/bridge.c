/* Where topics talk to the queue engine: the fan-out's sends, push
 * queues (create, drop) and push delivery's receive, delete and
 * visibility changes, all through the engine's typed calls. A queue is
 * named by its name, a QueueUrl or an SQS ARN of this account.
 *
 * Messages sent from here carry no digests (the engine keeps what the
 * sender gives; the SQS edge computes MD5s of such messages when it shows
 * them). Attributes are stored in the canonical JSON form that SNS and
 * SQS share. */
#include "broker/topic/topic.h"

#include "core/ev.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine's context for a call on behalf of ctx (NULL: the push
 * scheduler, outside any request). */
static struct bk_ctx engine_ctx(const struct tp_ctx *ctx)
{
    struct bk_ctx bc = {0};
    bc.now = ctx ? ctx->now : ev_wall_ms();
    bc.base_url = ctx ? ctx->base_url : NULL;
    bc.no_wait = true;
    return bc;
}

static void done(struct tp_ctx *ctx, const struct bk_ctx *bc)
{
    if (bc->need_sync && ctx)
        ctx->need_sync = true;
}

struct bk_queue *tp__queue(struct tp_engine *t, const char *queue, struct bk_error *err)
{
    static const char prefix[] = BK_ARN_PREFIX;
    if (!strncmp(queue, prefix, sizeof prefix - 1))
        queue += sizeof prefix - 1;
    struct bk_queue *q = bk_engine_find_url(t->e, queue);
    if (!q)
        bk_fail(err, BK_E_NO_QUEUE, "The specified queue does not exist.");
    return q;
}

enum bk_err tp__queue_send(struct tp_engine *t, struct tp_ctx *ctx, const char *queue,
                           const char *body, size_t len, const cJSON *attrs, const char *group,
                           const char *dedup, struct bk_error *err)
{
    struct bk_queue *q = tp__queue(t, queue, err);
    if (!q)
        return err->code;
    struct bk_send_args a = {.body = body, .body_len = len, .group = group, .dedup = dedup};
    char *at = NULL;
    if (attrs && attrs->child) {
        struct sns_error ignore; /* checked at publish: only the size is wanted */
        tp__check_attrs(attrs, &a.attrs_size, &ignore);
        at = cJSON_PrintUnformatted(attrs);
        a.attrs = at;
        a.attrs_len = strlen(at);
    }
    struct bk_ctx bc = engine_ctx(ctx);
    struct bk_send_result r;
    enum bk_err rc = bk_send(t->e, &bc, q, &a, &r, err);
    done(ctx, &bc);
    free(at);
    return rc;
}

bool tp__queue_receive(struct tp_engine *t, const char *queue, uint32_t visibility_s,
                       struct tp_received *out)
{
    struct bk_error err;
    struct bk_queue *q = tp__queue(t, queue, &err);
    if (!q)
        return false;
    struct bk_receive_args a = {.max = 1, .has_visibility = true, .visibility_s = visibility_s};
    struct bk_ctx bc = engine_ctx(NULL);
    struct bk_receive_result r;
    if (bk_receive(t->e, &bc, q, &a, &r, &err) != BK_OK || !r.n)
        return false;
    const struct bk_msg *m = r.msgs[0].m;
    const char *data = r.msgs[0].data;
    bk_handle_make(t->e, m, out->receipt);
    out->body = xstrndup(data + m->attrs_len + m->sys_len, m->body_len);
    out->len = m->body_len;
    out->count = m->recv_count;
    out->attrs = m->attrs_len ? cJSON_ParseWithLength(data, m->attrs_len) : NULL;
    bk_receive_done(&r);
    return true;
}

void tp__queue_ack(struct tp_engine *t, const char *queue, const char *receipt, int visibility_s)
{
    struct bk_error err;
    struct bk_queue *q = tp__queue(t, queue, &err);
    struct bk_ctx bc = engine_ctx(NULL);
    enum bk_err rc = BK_E_NO_QUEUE;
    if (q && visibility_s < 0) {
        rc = bk_delete(t->e, &bc, q, receipt, &err);
    } else if (q) {
        struct bk_visibility_args a = {.receipt = receipt, .has_timeout = true, .timeout_s = visibility_s};
        rc = bk_change_visibility(t->e, &bc, q, &a, &err);
    }
    if (rc != BK_OK)
        log_at(LOG_DEBUG, "sns push: %s on %s: %s", visibility_s < 0 ? "delete" : "visibility change",
               queue, err.message);
}

/* ---- push queues ---- */

enum sns_err tp__push_queue_ensure(struct tp_engine *t, struct tp_sub *s, uint64_t now,
                                   struct sns_error *err)
{
    if (bk_engine_find(t->e, s->push_queue, strlen(s->push_queue)))
        return SNS_OK;
    /* Two weeks of retention; a visibility timeout that covers a POST. */
    struct bk_qattrs a;
    bk_qattrs_defaults(&a, &t->e->o, false);
    a.retention_s = 1209600;
    a.visibility_s = 60;
    struct tp_ctx ctx = {.now = now};
    struct bk_ctx bc = engine_ctx(&ctx);
    struct bk_queue *q;
    struct bk_error qe;
    enum bk_err rc = bk_queue_create(t->e, &bc, s->push_queue, &a, NULL, &q, &qe);
    if (rc != BK_OK)
        return sns_fail(err, SNS_E_INTERNAL, "Cannot create the push queue of the subscription: %s",
                        qe.message);
    return SNS_OK;
}

void tp__queue_drop(struct tp_engine *t, struct tp_ctx *ctx, const char *queue)
{
    struct bk_error err;
    struct bk_queue *q = tp__queue(t, queue, &err);
    struct bk_ctx bc = engine_ctx(ctx);
    if (q && bk_queue_delete(t->e, &bc, q, &err) != BK_OK)
        log_at(LOG_WARN, "sns: cannot drop queue %s: %s", queue, err.message);
    done(ctx, &bc);
}
