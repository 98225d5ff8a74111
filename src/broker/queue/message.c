/* The typed message calls of the engine (see engine.h, "message calls").
 *
 * Send runs in three steps: check (everything the queue decides: size,
 * delay, FIFO group and deduplication ids, the broker's message limit),
 * deduplicate (a FIFO resend within five minutes is accepted and not
 * enqueued), enqueue (the SEND record first, then the message becomes
 * receivable). Nothing is written before every check has passed. */
#include "broker/queue/engine.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum bk_err log_failed(struct bk_error *err)
{
    return bk_fail(err, BK_E_LOG, "The broker could not write its log.");
}

static void sha256_hex(const char *s, size_t len, char out[65])
{
    uint8_t md[32];
    unsigned int n = 0;
    EVP_Digest(s, len, md, &n, EVP_sha256(), NULL);
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = d[md[i] >> 4];
        out[2 * i + 1] = d[md[i] & 15];
    }
    out[64] = '\0';
}

/* FIFO ids: 1..128 characters of alphanumerics and punctuation. */
static bool fifo_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

/* ---- send ---- */

/* The FIFO rules: no delay of its own, a valid group id, a valid or
 * content-based deduplication id. */
static enum bk_err check_fifo(const struct bk_queue *q, const struct bk_send_args *a, int64_t delay,
                              struct bk_error *err)
{
    if (a->has_delay && delay != q->a.delay_s)
        return bk_fail(err, BK_E_INVALID,
                       "Value %" PRId64 " for parameter DelaySeconds is invalid. Reason: The request "
                       "include parameter that is not valid for this queue type.", delay);
    if (!a->group)
        return bk_fail(err, BK_E_MISSING, "The request must contain the parameter MessageGroupId.");
    if (!fifo_id_valid(a->group))
        return bk_fail(err, BK_E_INVALID, "Value %.128s for parameter MessageGroupId is invalid.",
                       a->group);
    if (a->dedup && !fifo_id_valid(a->dedup))
        return bk_fail(err, BK_E_INVALID,
                       "Value %.128s for parameter MessageDeduplicationId is invalid.", a->dedup);
    if (!a->dedup && !q->a.content_dedup)
        return bk_fail(err, BK_E_INVALID,
                       "The queue should either have ContentBasedDeduplication enabled or "
                       "MessageDeduplicationId provided explicitly");
    return BK_OK;
}

/* Step one: may this message go to q? Sets *delay. */
static enum bk_err send_check(const struct bk_queue *q, const struct bk_send_args *a, int64_t *delay,
                              struct bk_error *err)
{
    if (!a->body || !a->body_len)
        return bk_fail(err, BK_E_MISSING, "The request must contain the parameter MessageBody.");
    if (a->body_len + a->attrs_size > q->a.max_size)
        return bk_fail(err, BK_E_INVALID,
                       "One or more parameters are invalid. Reason: Message must be shorter than %u bytes.",
                       q->a.max_size);
    *delay = a->has_delay ? a->delay_s : q->a.delay_s;
    if (*delay < 0 || *delay > BK_MAX_DELAY_S)
        return bk_fail(err, BK_E_INVALID,
                       "Value for parameter DelaySeconds is invalid. Reason: must be between 0 and %d.",
                       BK_MAX_DELAY_S);
    if (q->a.fifo)
        return check_fifo(q, a, *delay, err);
    if (a->dedup)
        return bk_fail(err, BK_E_INVALID,
                       "The request include parameter MessageDeduplicationId that is not valid for "
                       "this queue type.");
    return BK_OK;
}

/* Step two (FIFO): the deduplication id (given, or the body's SHA-256)
 * into id and its key into key; an earlier send of it within the window
 * when there is one. */
static struct bk_dedup *send_dedup(struct bk_queue *q, const struct bk_send_args *a, uint64_t now,
                                   char id[129], char *key, size_t cap)
{
    if (a->dedup)
        snprintf(id, 129, "%s", a->dedup);
    else
        sha256_hex(a->body, a->body_len, id);
    bk__dedup_key(q, a->group, strlen(a->group), id, key, cap);
    return bk__dedup_find(q, key, now);
}

/* The message as it will be stored: attrs + sys + body in *data. */
static struct bk_msg *msg_build(struct bk_queue *q, const struct bk_send_args *a, char **data)
{
    struct bk_msg *m = xcalloc(1, sizeof *m);
    m->q = q;
    m->attrs_len = a->attrs ? (uint32_t)a->attrs_len : 0;
    m->sys_len = a->sys ? (uint32_t)a->sys_len : 0;
    m->body_len = (uint32_t)a->body_len;
    if (a->has_md5)
        memcpy(m->md5_body, a->md5_body, 16);
    if ((m->has_attrs_md5 = a->has_attrs_md5))
        memcpy(m->md5_attrs, a->md5_attrs, 16);
    if ((m->has_sys_md5 = a->has_sys_md5))
        memcpy(m->md5_sys, a->md5_sys, 16);
    size_t dlen = (size_t)m->attrs_len + m->sys_len + m->body_len;
    char *d = xmalloc(dlen ? dlen : 1);
    if (m->attrs_len)
        memcpy(d, a->attrs, m->attrs_len);
    if (m->sys_len)
        memcpy(d + m->attrs_len, a->sys, m->sys_len);
    memcpy(d + m->attrs_len + m->sys_len, a->body, m->body_len);
    *data = d;
    m->theap = m->xheap = SIZE_MAX;
    return m;
}

/* Step three: SEND record, then the message joins the queue. id and key:
 * the FIFO deduplication id and key. */
static enum bk_err send_enqueue(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                const struct bk_send_args *a, int64_t delay, const char *id,
                                const char *key, struct bk_send_result *r, struct bk_error *err)
{
    char *data;
    struct bk_msg *m = msg_build(q, a, &data);
    m->mid = bk__next_mid(e);
    m->sent_ms = ctx->now;
    m->visible_at = ctx->now + (uint64_t)delay * 1000;
    if (q->a.fifo) {
        m->grp = bk__group_get(q, a->group, strlen(a->group), true);
        m->dedup_id = xstrdup(id);
    }
    if (!bk__log_send(e, m, data, q->a.fifo)) {
        if (m->grp)
            bk__group_update(q, m->grp); /* frees a group created for nothing */
        m->grp = NULL;
        free(data);
        bk__msg_free(e, m);
        return log_failed(err);
    }
    bk__msg_cache(e, m, data);
    free(data);
    bk__queue_insert(e, q, m, ctx->now);
    if (q->a.fifo)
        bk__dedup_add(q, key, ctx->now, m->mid, m->pos);
    q->st.sent++;
    ctx->need_sync = true;
    r->mid = m->mid;
    bk_message_id(e, m->mid, r->message_id);
    return BK_OK;
}

enum bk_err bk_send(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                    const struct bk_send_args *a, struct bk_send_result *r, struct bk_error *err)
{
    memset(r, 0, sizeof *r);
    int64_t delay = 0;
    enum bk_err rc = send_check(q, a, &delay, err);
    if (rc != BK_OK)
        return rc;
    char id[129] = "", key[300] = "";
    if (q->a.fifo) {
        struct bk_dedup *d = send_dedup(q, a, ctx->now, id, key, sizeof key);
        if (d) {
            r->mid = d->mid;
            r->duplicate = true;
            bk_message_id(e, d->mid, r->message_id);
            q->st.dedup_hits++;
            ctx->need_sync = true; /* the first send may still be on its way to disk */
            return BK_OK;
        }
    }
    if (e->nmsgs >= e->o.max_messages)
        return bk_fail(err, BK_E_OVER_LIMIT, "The broker holds its limit of messages.");
    return send_enqueue(e, ctx, q, a, delay, id, key, r, err);
}
