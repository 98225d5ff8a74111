/* The typed message calls of the engine (see engine.h, "message calls").
 *
 * Send runs in three steps: check (everything the queue decides: the
 * body's characters (XML 1.0's, as SQS), size,
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

/* ---- message bodies ---- */

/* Decodes one UTF-8 character at s[0..n): its code point, or -1 for an
 * invalid sequence (overlong, surrogate, above U+10FFFF, truncated). */
int32_t bk_utf8_next(const char *str, size_t n, size_t *used)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    int32_t cp;
    size_t k;
    if (c < 0x80) {
        *used = 1;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        k = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 3;
        cp = c & 0x07;
    } else {
        return -1;
    }
    if (n < k + 1)
        return -1;
    for (size_t i = 1; i <= k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *used = k + 1;
    return cp;
}

static bool xml_char_ok(int32_t cp)
{
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

bool bk_body_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t used;
        int32_t cp = bk_utf8_next(s + i, n - i, &used);
        if (cp < 0 || !xml_char_ok(cp))
            return false;
        i += used;
    }
    return true;
}

/* ---- send ---- */

/* The FIFO rules: no delay of its own, a valid group id, a valid or
 * content-based deduplication id. */
static enum bk_err check_fifo(const struct bk_queue *q, bool own_delay, int64_t delay,
                              const struct bk_send_args *a, struct bk_error *err)
{
    if (own_delay && delay != q->a.delay_s)
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
    if (!bk_body_valid(a->body, a->body_len))
        return bk_fail(err, BK_E_CONTENTS,
                       "Invalid binary character was found in the message body, the set of allowed "
                       "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
                       "#x10FFFF");
    if (a->body_len + a->attrs_size > q->a.max_size)
        return bk_fail(err, BK_E_INVALID,
                       "One or more parameters are invalid. Reason: Message must be shorter than %u bytes.",
                       q->a.max_size);
    /* A FIFO queue takes no per-message delay, but DelaySeconds=0 is
     * accepted as no delay of its own, as SQS accepts it: the queue's
     * delay applies. */
    bool own_delay = a->has_delay && !(q->a.fifo && a->delay_s == 0);
    *delay = own_delay ? a->delay_s : q->a.delay_s;
    if (*delay < 0 || *delay > BK_MAX_DELAY_S)
        return bk_fail(err, BK_E_INVALID,
                       "Value for parameter DelaySeconds is invalid. Reason: must be between 0 and %d.",
                       BK_MAX_DELAY_S);
    if (q->a.fifo)
        return check_fifo(q, own_delay, *delay, a, err);
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

/* ---- receive ---- */

/* v within [min, max], else the error an out-of-range parameter gets. */
static enum bk_err in_range(const char *name, int64_t v, int64_t min, int64_t max, struct bk_error *err)
{
    if (v >= min && v <= max)
        return BK_OK;
    return bk_fail(err, BK_E_INVALID,
                   "Value for parameter %s is invalid. Reason: must be between %" PRId64 " and %" PRId64 ".",
                   name, min, max);
}

/* The receive's limits, the queue's defaults filled in. */
static enum bk_err receive_check(struct bk_engine *e, const struct bk_queue *q,
                                 const struct bk_receive_args *a, int64_t *vis, int64_t *wait,
                                 struct bk_error *err)
{
    *vis = a->has_visibility ? a->visibility_s : q->a.visibility_s;
    *wait = a->has_wait ? a->wait_s : q->a.wait_s;
    enum bk_err rc;
    if ((rc = in_range("MaxNumberOfMessages", a->max, 1, BK_MAX_BATCH, err)) != BK_OK ||
        (rc = in_range("VisibilityTimeout", *vis, 0, BK_MAX_VISIBILITY_S, err)) != BK_OK ||
        (rc = in_range("WaitTimeSeconds", *wait, 0, BK_MAX_WAIT_S, err)) != BK_OK)
        return rc;
    if (!q->a.fifo && q->n_inflight >= e->o.max_inflight)
        return bk_fail(err, BK_E_OVER_LIMIT, "Too many messages in flight (limit %u).", e->o.max_inflight);
    return BK_OK;
}

/* One pass over the receivable messages: delivers, dead-letters those
 * received maxReceiveCount times already. Returns true when another pass
 * may find more. */
static bool receive_pass(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, struct bk_queue *dlq,
                         int64_t max, int64_t vis, struct bk_receive_result *r)
{
    struct bk_msg *pick[BK_MAX_BATCH];
    size_t n = bk__queue_pick(e, q, pick, (size_t)max - r->n, ctx->now);
    bool again = false;
    for (size_t i = 0; i < n; i++) {
        struct bk_msg *m = pick[i];
        if (dlq && m->recv_count >= q->a.max_receive) {
            q->st.redriven++;
            bk__msg_move(e, m, dlq, false, ctx->now);
            again = vis > 0;
            continue;
        }
        char *tmp;
        const char *data = bk__msg_data(e, m, &tmp);
        if (!data) {
            q->st.expired++;
            bk__msg_delete(e, m, true);
            continue;
        }
        bk__msg_received(e, m, (uint32_t)vis, ctx->now);
        r->msgs[r->n++] = (struct bk_received){m, data, tmp};
    }
    return again;
}

enum bk_err bk_receive(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                       const struct bk_receive_args *a, struct bk_receive_result *r,
                       struct bk_error *err)
{
    r->n = 0;
    int64_t vis, wait;
    enum bk_err rc = receive_check(e, q, a, &vis, &wait, err);
    if (rc != BK_OK)
        return rc;
    struct bk_queue *dlq = bk__dlq_of(e, q);
    /* Another pass only when messages went to the DLQ instead; a message
     * received with a zero timeout stays receivable and must not come
     * twice in one answer, so such receives make one pass. */
    while ((int64_t)r->n < a->max && receive_pass(e, ctx, q, dlq, a->max, vis, r))
        ;
    if (!r->n && wait > 0 && !ctx->no_wait) {
        ctx->wait_ms = (uint32_t)wait * 1000;
        ctx->wait_q = q;
    }
    return BK_OK;
}

void bk_receive_done(struct bk_receive_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->msgs[i].tmp);
    r->n = 0;
}

/* ---- delete and visibility ---- */

/* The message a receipt handle names in q: *m NULL when it is gone. */
static enum bk_err find_handle(struct bk_engine *e, struct bk_queue *q, const char *h, struct bk_msg **m,
                               uint32_t *gen, struct bk_error *err)
{
    uint32_t qid;
    uint64_t mid;
    if (!h || !*h)
        return bk_fail(err, BK_E_MISSING, "The request must contain the parameter ReceiptHandle.");
    if (!bk_handle_parse(e, h, &qid, &mid, gen) || qid != q->qid)
        return bk_fail(err, BK_E_RECEIPT, "The input receipt handle \"%.64s\" is not a valid receipt handle.",
                       h);
    *m = bk_queue_lookup(q, mid);
    return BK_OK;
}

enum bk_err bk_delete(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const char *receipt,
                      struct bk_error *err)
{
    struct bk_msg *m;
    uint32_t gen;
    enum bk_err rc = find_handle(e, q, receipt, &m, &gen, err);
    if (rc != BK_OK)
        return rc;
    /* Gone already, or a stale handle (the message was delivered again
     * since): success, nothing deleted. A generation above the count is
     * a delivery whose record a crash lost before it was durable: that
     * holder is the latest receiver the broker knows of. */
    if (!m || gen < m->recv_count || !gen)
        return BK_OK;
    if (!bk__log_delete(e, q->qid, m->mid))
        return log_failed(err);
    if (m->last_recv_ms && ctx->now >= m->last_recv_ms)
        metrics_hist_observe_ns(&q->st.receive_to_delete, (ctx->now - m->last_recv_ms) * 1000000ull);
    q->st.deleted++;
    bk__msg_delete(e, m, false);
    ctx->need_sync = true;
    return BK_OK;
}

enum bk_err bk_change_visibility(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                 const struct bk_visibility_args *a, struct bk_error *err)
{
    struct bk_msg *m;
    uint32_t gen;
    enum bk_err rc = find_handle(e, q, a->receipt, &m, &gen, err);
    if (rc != BK_OK)
        return rc;
    if (!a->has_timeout)
        return bk_fail(err, BK_E_MISSING, "The request must contain the parameter VisibilityTimeout.");
    if ((rc = in_range("VisibilityTimeout", a->timeout_s, 0, BK_MAX_VISIBILITY_S, err)) != BK_OK)
        return rc;
    if (!m || gen < m->recv_count)
        return bk_fail(err, BK_E_INVALID,
                       "Value %.64s for parameter ReceiptHandle is invalid. Reason: Message does not "
                       "exist or is not available for visibility timeout change.", a->receipt);
    if (m->state != BK_MS_INFLIGHT)
        return bk_fail(err, BK_E_NOT_INFLIGHT, "The message is not in flight.");
    uint64_t until = ctx->now + (uint64_t)a->timeout_s * 1000;
    if (until > m->last_recv_ms + (uint64_t)BK_MAX_VISIBILITY_S * 1000)
        return bk_fail(err, BK_E_INVALID,
                       "Value %" PRId64 " for parameter VisibilityTimeout is invalid. Reason: Total "
                       "VisibilityTimeout for the message is beyond the limit [43200 seconds]", a->timeout_s);
    bk__msg_set_visible(e, m, until, ctx->now);
    if (!bk__log_state(e, m))
        return log_failed(err);
    q->st.changed_vis++;
    ctx->need_sync = true;
    return BK_OK;
}
