/* The actions of the API, part two: sending, receiving, deleting and
 * changing the visibility of one message. The batch actions (act_batch.c)
 * run the same per-entry functions.
 *
 * Send validates everything before it writes anything: the body (XML
 * characters only), attributes (sqs_check_attributes), the size limit of
 * the queue, FIFO group and deduplication ids. Then it writes the SEND
 * record and only then makes the message receivable.
 *
 * Receive hands out up to MaxNumberOfMessages messages; a message already
 * received maxReceiveCount times goes to the dead-letter queue instead.
 * With nothing to hand out and a wait time, it asks the server to park
 * the request (ctx->wait_ms); the server calls it again when the queue
 * wakes or the time is up.
 *
 * Delete and ChangeMessageVisibility act only on the latest delivery: a
 * receipt handle from an earlier receive of a message received again
 * deletes nothing (DeleteMessage still succeeds, as SQS documents) and
 * cannot change its visibility. */
#include "broker/queue/engine.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static void hex_to_bytes(const char hex[33], uint8_t out[16])
{
    for (int i = 0; i < 16; i++) {
        int hi = hex[2 * i], lo = hex[2 * i + 1];
        hi = hi <= '9' ? hi - '0' : (hi | 0x20) - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : (lo | 0x20) - 'a' + 10;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

static void bytes_to_hex(const uint8_t in[16], char out[33])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[32] = '\0';
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

static cJSON *owned_string(const char *s, size_t len)
{
    /* One copy for a possibly large body: cJSON frees valuestring with
     * the default hooks (free), which xmalloc's memory matches. */
    cJSON *item = cJSON_CreateNull();
    item->type = cJSON_String;
    item->valuestring = xstrndup(s, len);
    return item;
}

static void add_md5(cJSON *o, const char *name, const uint8_t md5[16])
{
    char hex[33];
    bytes_to_hex(md5, hex);
    cJSON_AddStringToObject(o, name, hex);
}

static void add_seq(cJSON *o, uint64_t mid)
{
    char n[32];
    snprintf(n, sizeof n, "%020" PRIu64, mid);
    cJSON_AddStringToObject(o, "SequenceNumber", n);
}

static enum sqs_err log_failed(struct sqs_error *err)
{
    return sqs_fail(err, SQS_E_INTERNAL, "The broker could not write its log.");
}

/* ---- send ---- */

/* Checks MessageSystemAttributes: only AWSTraceHeader, a String. */
static enum sqs_err check_sys(const cJSON *sys, size_t *bytes, struct sqs_error *err)
{
    enum sqs_err rc = sqs_check_attributes(sys, bytes, err);
    if (rc != SQS_OK)
        return rc;
    const cJSON *a;
    cJSON_ArrayForEach(a, sys)
    {
        const char *dt = bk__param_str(a, "DataType");
        if (strcmp(a->string, "AWSTraceHeader") != 0 || !dt || strcmp(dt, "String") != 0)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Message system attribute name '%.64s' is invalid.", a->string);
    }
    return SQS_OK;
}

enum sqs_err bk__send_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *p,
                          cJSON *out, struct sqs_error *err)
{
    const char *body = bk__param_str(p, "MessageBody");
    if (!body || !*body)
        return sqs_fail(err, SQS_E_MISSING_PARAMETER, "The request must contain the parameter MessageBody.");
    size_t blen = strlen(body);
    if (!sqs_valid_chars(body, blen))
        return sqs_fail(err, SQS_E_INVALID_MESSAGE_CONTENTS,
                        "Invalid binary character was found in the message body, the set of allowed "
                        "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
                        "#x10FFFF");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(p, "MessageAttributes");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(p, "MessageSystemAttributes");
    if (attrs && !cJSON_GetArraySize(attrs))
        attrs = NULL;
    if (sys && !cJSON_GetArraySize(sys))
        sys = NULL;
    size_t bytes = blen;
    enum sqs_err rc;
    if (attrs && (rc = sqs_check_attributes(attrs, &bytes, err)) != SQS_OK)
        return rc;
    if (sys && (rc = check_sys(sys, &bytes, err)) != SQS_OK)
        return rc;
    if (bytes > q->a.max_size)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "One or more parameters are invalid. Reason: Message must be shorter than %u bytes.",
                        q->a.max_size);
    int64_t delay;
    if ((rc = bk__param_int(p, "DelaySeconds", 0, BK_MAX_DELAY_S, q->a.delay_s, &delay, err)) != SQS_OK)
        return rc;
    const char *group = bk__param_str(p, "MessageGroupId");
    const char *dedup = bk__param_str(p, "MessageDeduplicationId");
    char hash[65], key[300];
    if (q->a.fifo) {
        if (cJSON_GetObjectItemCaseSensitive(p, "DelaySeconds") && delay != q->a.delay_s)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Value %" PRId64 " for parameter DelaySeconds is invalid. Reason: The request "
                            "include parameter that is not valid for this queue type.", delay);
        if (!group)
            return sqs_fail(err, SQS_E_MISSING_PARAMETER,
                            "The request must contain the parameter MessageGroupId.");
        if (!fifo_id_valid(group))
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Value %.128s for parameter MessageGroupId is invalid.", group);
        if (dedup && !fifo_id_valid(dedup))
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Value %.128s for parameter MessageDeduplicationId is invalid.", dedup);
        if (!dedup && !q->a.content_dedup)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "The queue should either have ContentBasedDeduplication enabled or "
                            "MessageDeduplicationId provided explicitly");
        if (!dedup) {
            sha256_hex(body, blen, hash);
            dedup = hash;
        }
        bk__dedup_key(q, group, strlen(group), dedup, key, sizeof key);
        struct bk_dedup *d = bk__dedup_find(q, key, ctx->now);
        if (d) {
            /* A duplicate within five minutes: accepted, not enqueued. */
            char id[40], md5[33];
            bk_message_id(e, d->mid, id);
            cJSON_AddStringToObject(out, "MessageId", id);
            sqs_md5_hex(body, blen, md5);
            cJSON_AddStringToObject(out, "MD5OfMessageBody", md5);
            if (attrs && sqs_md5_attributes(attrs, md5))
                cJSON_AddStringToObject(out, "MD5OfMessageAttributes", md5);
            add_seq(out, d->mid);
            q->st.dedup_hits++;
            ctx->need_sync = true; /* the first send may still be on its way to disk */
            return SQS_OK;
        }
    } else if (dedup) {
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "The request include parameter MessageDeduplicationId that is not valid for "
                        "this queue type.");
    }
    if (e->nmsgs >= e->o.max_messages)
        return sqs_fail(err, SQS_E_OVER_LIMIT, "The broker holds its limit of messages.");

    char *at = attrs ? cJSON_PrintUnformatted(attrs) : NULL;
    char *st = sys ? cJSON_PrintUnformatted(sys) : NULL;
    struct bk_msg *m = xcalloc(1, sizeof *m);
    m->q = q;
    m->attrs_len = at ? (uint32_t)strlen(at) : 0;
    m->sys_len = st ? (uint32_t)strlen(st) : 0;
    m->body_len = (uint32_t)blen;
    char md5[33];
    sqs_md5_hex(body, blen, md5);
    hex_to_bytes(md5, m->md5_body);
    if (attrs && sqs_md5_attributes(attrs, md5)) {
        hex_to_bytes(md5, m->md5_attrs);
        m->has_attrs_md5 = true;
    }
    if (sys && sqs_md5_attributes(sys, md5)) {
        hex_to_bytes(md5, m->md5_sys);
        m->has_sys_md5 = true;
    }
    size_t dlen = (size_t)m->attrs_len + m->sys_len + blen;
    char *data = xmalloc(dlen);
    if (at)
        memcpy(data, at, m->attrs_len);
    if (st)
        memcpy(data + m->attrs_len, st, m->sys_len);
    memcpy(data + m->attrs_len + m->sys_len, body, blen);
    free(at);
    free(st);
    m->mid = bk__next_mid(e);
    m->sent_ms = ctx->now;
    m->visible_at = ctx->now + (uint64_t)delay * 1000;
    m->theap = m->xheap = SIZE_MAX;
    if (q->a.fifo) {
        m->grp = bk__group_get(q, group, strlen(group), true);
        m->dedup_id = xstrdup(dedup);
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

    char id[40];
    bk_message_id(e, m->mid, id);
    cJSON_AddStringToObject(out, "MessageId", id);
    add_md5(out, "MD5OfMessageBody", m->md5_body);
    if (m->has_attrs_md5)
        add_md5(out, "MD5OfMessageAttributes", m->md5_attrs);
    if (m->has_sys_md5)
        add_md5(out, "MD5OfMessageSystemAttributes", m->md5_sys);
    if (q->a.fifo)
        add_seq(out, m->mid);
    return SQS_OK;
}

enum sqs_err bk__act_send(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                          struct sqs_error *err)
{
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    *res = cJSON_CreateObject();
    return bk__send_one(e, ctx, q, p, *res, err);
}

/* ---- receive ---- */

/* Is name among the requested names ("All", ".*", "prefix.*", exact)? */
static bool name_wanted(const cJSON *names, const char *name)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        if (!cJSON_IsString(n))
            continue;
        const char *w = n->valuestring;
        size_t wl = strlen(w);
        if (!strcmp(w, "All") || !strcmp(w, ".*") || !strcmp(w, name))
            return true;
        if (wl >= 2 && !strcmp(w + wl - 2, ".*") && !strncmp(name, w, wl - 1))
            return true;
    }
    return false;
}

static void add_sys_attr(cJSON *o, const cJSON *names, const char *name, const char *v)
{
    if (v && name_wanted(names, name))
        cJSON_AddStringToObject(o, name, v);
}

/* Renders one delivered message. data: its attrs + sys + body. */
static void render_msg(struct bk_engine *e, const struct bk_msg *m, const char *data,
                       const cJSON *anames, const cJSON *snames, const cJSON *mnames, cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    char id[40], handle[64], n1[24], n2[24], n3[24];
    bk_message_id(e, m->mid, id);
    bk_handle_make(e, m, handle);
    cJSON_AddStringToObject(o, "MessageId", id);
    cJSON_AddStringToObject(o, "ReceiptHandle", handle);
    add_md5(o, "MD5OfBody", m->md5_body);
    cJSON_AddItemToObject(o, "Body", owned_string(data + m->attrs_len + m->sys_len, m->body_len));

    cJSON *sa = cJSON_CreateObject();
    const cJSON *names[2] = {anames, snames};
    for (int i = 0; i < 2; i++) {
        if (!names[i])
            continue;
        snprintf(n1, sizeof n1, "%" PRIu64, m->sent_ms);
        snprintf(n2, sizeof n2, "%u", m->recv_count);
        snprintf(n3, sizeof n3, "%" PRIu64, m->first_recv_ms);
        add_sys_attr(sa, names[i], "SenderId", BK_ACCOUNT);
        add_sys_attr(sa, names[i], "SentTimestamp", n1);
        add_sys_attr(sa, names[i], "ApproximateReceiveCount", n2);
        add_sys_attr(sa, names[i], "ApproximateFirstReceiveTimestamp", n3);
        if (m->grp) {
            add_sys_attr(sa, names[i], "MessageGroupId", m->grp->id);
            add_sys_attr(sa, names[i], "MessageDeduplicationId", m->dedup_id);
            char seq[32];
            snprintf(seq, sizeof seq, "%020" PRIu64, m->mid);
            add_sys_attr(sa, names[i], "SequenceNumber", seq);
        }
        if (m->origin_qid) {
            struct bk_queue *src = bk_engine_find_id(e, m->origin_qid);
            if (src) {
                char arn[160];
                snprintf(arn, sizeof arn, "%s%s", BK_ARN_PREFIX, src->name);
                add_sys_attr(sa, names[i], "DeadLetterQueueSourceArn", arn);
            }
        }
        if (m->sys_len) {
            cJSON *sys = cJSON_ParseWithLength(data + m->attrs_len, m->sys_len);
            const cJSON *th = cJSON_GetObjectItemCaseSensitive(sys, "AWSTraceHeader");
            add_sys_attr(sa, names[i], "AWSTraceHeader", bk__param_str(th, "StringValue"));
            cJSON_Delete(sys);
        }
    }
    if (cJSON_GetArraySize(sa))
        cJSON_AddItemToObject(o, "Attributes", sa);
    else
        cJSON_Delete(sa);

    if (m->attrs_len && mnames) {
        cJSON *all = cJSON_ParseWithLength(data, m->attrs_len);
        cJSON *keep = cJSON_CreateObject();
        int total = cJSON_GetArraySize(all);
        cJSON *a = all ? all->child : NULL;
        while (a) {
            cJSON *next = a->next;
            if (name_wanted(mnames, a->string))
                cJSON_AddItemToObject(keep, a->string, cJSON_DetachItemViaPointer(all, a));
            a = next;
        }
        int kept = cJSON_GetArraySize(keep);
        if (kept) {
            char md5[33];
            if (kept == total && m->has_attrs_md5)
                add_md5(o, "MD5OfMessageAttributes", m->md5_attrs);
            else if (sqs_md5_attributes(keep, md5))
                cJSON_AddStringToObject(o, "MD5OfMessageAttributes", md5);
            cJSON_AddItemToObject(o, "MessageAttributes", keep);
        } else {
            cJSON_Delete(keep);
        }
        cJSON_Delete(all);
    }
    cJSON_AddItemToArray(arr, o);
}

enum sqs_err bk__act_receive(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                             struct sqs_error *err)
{
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    int64_t max, vis, wait;
    enum sqs_err rc;
    if ((rc = bk__param_int(p, "MaxNumberOfMessages", 1, BK_MAX_BATCH, 1, &max, err)) != SQS_OK ||
        (rc = bk__param_int(p, "VisibilityTimeout", 0, BK_MAX_VISIBILITY_S, q->a.visibility_s, &vis,
                            err)) != SQS_OK ||
        (rc = bk__param_int(p, "WaitTimeSeconds", 0, BK_MAX_WAIT_S, q->a.wait_s, &wait, err)) != SQS_OK)
        return rc;
    const cJSON *anames = cJSON_GetObjectItemCaseSensitive(p, "AttributeNames");
    const cJSON *snames = cJSON_GetObjectItemCaseSensitive(p, "MessageSystemAttributeNames");
    const cJSON *mnames = cJSON_GetObjectItemCaseSensitive(p, "MessageAttributeNames");
    if (!q->a.fifo && q->n_inflight >= e->o.max_inflight)
        return sqs_fail(err, SQS_E_OVER_LIMIT, "Too many messages in flight (limit %u).",
                        e->o.max_inflight);

    struct bk_queue *dlq = bk__dlq_of(e, q);
    cJSON *arr = cJSON_CreateArray();
    int64_t got = 0;
    /* Another pass only when messages went to the DLQ instead; a message
     * received with a zero timeout stays receivable and must not come
     * twice in one answer, so such receives make one pass. */
    bool again = true;
    while (got < max && again) {
        struct bk_msg *pick[BK_MAX_BATCH];
        size_t n = bk__queue_pick(e, q, pick, (size_t)(max - got), ctx->now);
        if (!n)
            break;
        again = false;
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
            render_msg(e, m, data, anames, snames, mnames, arr);
            free(tmp);
            got++;
        }
    }
    if (!got && wait > 0 && !ctx->no_wait) {
        cJSON_Delete(arr);
        ctx->wait_ms = (uint32_t)wait * 1000;
        ctx->wait_q = q;
        return SQS_OK;
    }
    *res = cJSON_CreateObject();
    if (got)
        cJSON_AddItemToObject(*res, "Messages", arr);
    else
        cJSON_Delete(arr);
    return SQS_OK;
}

/* ---- delete and visibility ---- */

/* The message a receipt handle names in q: *m NULL when it is gone. */
static enum sqs_err find_handle(struct bk_engine *e, struct bk_queue *q, const char *h,
                                struct bk_msg **m, uint32_t *gen, struct sqs_error *err)
{
    uint32_t qid;
    uint64_t mid;
    if (!h || !*h)
        return sqs_fail(err, SQS_E_MISSING_PARAMETER, "The request must contain the parameter ReceiptHandle.");
    if (!bk_handle_parse(e, h, &qid, &mid, gen) || qid != q->qid)
        return sqs_fail(err, SQS_E_RECEIPT_HANDLE_INVALID,
                        "The input receipt handle \"%.64s\" is not a valid receipt handle.", h);
    *m = bk_queue_lookup(q, mid);
    return SQS_OK;
}

enum sqs_err bk__delete_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *p,
                            struct sqs_error *err)
{
    struct bk_msg *m;
    uint32_t gen;
    enum sqs_err rc = find_handle(e, q, bk__param_str(p, "ReceiptHandle"), &m, &gen, err);
    if (rc != SQS_OK)
        return rc;
    /* Gone already, or a stale handle (the message was delivered again
     * since): success, nothing deleted. A generation above the count is
     * a delivery whose record a crash lost before it was durable: that
     * holder is the latest receiver the broker knows of. */
    if (!m || gen < m->recv_count || !gen)
        return SQS_OK;
    if (!bk__log_delete(e, q->qid, m->mid))
        return log_failed(err);
    if (m->last_recv_ms && ctx->now >= m->last_recv_ms)
        metrics_hist_observe_ns(&q->st.receive_to_delete, (ctx->now - m->last_recv_ms) * 1000000ull);
    q->st.deleted++;
    bk__msg_delete(e, m, false);
    ctx->need_sync = true;
    return SQS_OK;
}

enum sqs_err bk__visibility_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                const cJSON *p, struct sqs_error *err)
{
    struct bk_msg *m;
    uint32_t gen;
    const char *h = bk__param_str(p, "ReceiptHandle");
    enum sqs_err rc = find_handle(e, q, h, &m, &gen, err);
    if (rc != SQS_OK)
        return rc;
    if (!cJSON_GetObjectItemCaseSensitive(p, "VisibilityTimeout"))
        return sqs_fail(err, SQS_E_MISSING_PARAMETER,
                        "The request must contain the parameter VisibilityTimeout.");
    int64_t vis;
    if ((rc = bk__param_int(p, "VisibilityTimeout", 0, BK_MAX_VISIBILITY_S, 0, &vis, err)) != SQS_OK)
        return rc;
    if (!m || gen < m->recv_count)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "Value %.64s for parameter ReceiptHandle is invalid. Reason: Message does not "
                        "exist or is not available for visibility timeout change.", h);
    if (m->state != BK_MS_INFLIGHT)
        return sqs_fail(err, SQS_E_MESSAGE_NOT_INFLIGHT, "The message is not in flight.");
    uint64_t until = ctx->now + (uint64_t)vis * 1000;
    if (until > m->last_recv_ms + (uint64_t)BK_MAX_VISIBILITY_S * 1000)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "Value %" PRId64 " for parameter VisibilityTimeout is invalid. Reason: Total "
                        "VisibilityTimeout for the message is beyond the limit [43200 seconds]", vis);
    bk__msg_set_visible(e, m, until, ctx->now);
    if (!bk__log_state(e, m))
        return log_failed(err);
    q->st.changed_vis++;
    ctx->need_sync = true;
    return SQS_OK;
}

enum sqs_err bk__act_delete(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                            struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    return bk__delete_one(e, ctx, q, p, err);
}

enum sqs_err bk__act_visibility(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    return bk__visibility_one(e, ctx, q, p, err);
}
