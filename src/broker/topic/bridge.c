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
