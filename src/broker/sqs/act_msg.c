/* The actions of the API, part two: sending, receiving, deleting and
 * changing the visibility of one message. The batch actions (act_batch.c)
 * run the same per-entry functions.
 *
 * Send checks here what is SQS syntax (the body's XML characters, the
 * attributes: sqs_check_attributes), encodes the attributes and computes
 * the MD5 digests SQS shows; the engine's bk_send checks the rest (size
 * limit, delay, FIFO ids) before it writes anything.
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

/* MD5OfBody: the digest the sender gave, or (a message sent in process,
 * by topics or push, carries none: all zero) computed now. */
static void add_body_md5(cJSON *o, const struct bk_msg *m, const char *body)
{
    static const uint8_t none[16];
    char hex[33];
    if (memcmp(m->md5_body, none, 16) != 0)
        bytes_to_hex(m->md5_body, hex);
    else
        sqs_md5_hex(body, m->body_len, hex);
    cJSON_AddStringToObject(o, "MD5OfBody", hex);
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

/* Reads MessageSystemAttributes and MessageAttributes: checked, encoded
 * as canonical JSON (*at, *st: the caller frees), their digests and size
 * into a. */
static enum sqs_err send_attrs(const cJSON *p, struct bk_send_args *a, char **at, char **st,
                               struct sqs_error *err)
{
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(p, "MessageAttributes");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(p, "MessageSystemAttributes");
    if (attrs && !cJSON_GetArraySize(attrs))
        attrs = NULL;
    if (sys && !cJSON_GetArraySize(sys))
        sys = NULL;
    enum sqs_err rc;
    if (attrs && (rc = sqs_check_attributes(attrs, &a->attrs_size, err)) != SQS_OK)
        return rc;
    if (sys && (rc = check_sys(sys, &a->attrs_size, err)) != SQS_OK)
        return rc;
    char md5[33];
    if (attrs && sqs_md5_attributes(attrs, md5)) {
        hex_to_bytes(md5, a->md5_attrs);
        a->has_attrs_md5 = true;
    }
    if (sys && sqs_md5_attributes(sys, md5)) {
        hex_to_bytes(md5, a->md5_sys);
        a->has_sys_md5 = true;
    }
    *at = attrs ? cJSON_PrintUnformatted(attrs) : NULL;
    *st = sys ? cJSON_PrintUnformatted(sys) : NULL;
    a->attrs = *at;
    a->attrs_len = *at ? strlen(*at) : 0;
    a->sys = *st;
    a->sys_len = *st ? strlen(*st) : 0;
    return SQS_OK;
}

/* SendMessage parameters (or a batch entry) to typed arguments: what the
 * SQS API checks before the queue is asked (body characters, attribute
 * syntax) and the digests SQS shows. */
static enum sqs_err send_args(const cJSON *p, struct bk_send_args *a, char **at, char **st,
                              struct sqs_error *err)
{
    memset(a, 0, sizeof *a);
    *at = *st = NULL;
    const char *body = bk__param_str(p, "MessageBody");
    if (!body || !*body)
        return sqs_fail(err, SQS_E_MISSING_PARAMETER, "The request must contain the parameter MessageBody.");
    size_t blen = strlen(body);
    if (!sqs_valid_chars(body, blen))
        return sqs_fail(err, SQS_E_INVALID_MESSAGE_CONTENTS,
                        "Invalid binary character was found in the message body, the set of allowed "
                        "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
                        "#x10FFFF");
    enum sqs_err rc = send_attrs(p, a, at, st, err);
    if (rc != SQS_OK)
        return rc;
    a->body = body;
    a->body_len = blen;
    char md5[33];
    sqs_md5_hex(body, blen, md5);
    hex_to_bytes(md5, a->md5_body);
    a->has_md5 = true;
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(p, "DelaySeconds");
    if (dv && !cJSON_IsNull(dv)) {
        /* Not a number: out of range, which the queue reports. */
        struct sqs_error ignore;
        a->has_delay = true;
        if (bk__param_int(p, "DelaySeconds", INT64_MIN + 1, INT64_MAX, 0, &a->delay_s, &ignore) != SQS_OK)
            a->delay_s = INT64_MIN;
    }
    a->group = bk__param_str(p, "MessageGroupId");
    a->dedup = bk__param_str(p, "MessageDeduplicationId");
    return SQS_OK;
}

static void send_render(const struct bk_queue *q, const struct bk_send_args *a,
                        const struct bk_send_result *r, cJSON *out)
{
    cJSON_AddStringToObject(out, "MessageId", r->message_id);
    add_md5(out, "MD5OfMessageBody", a->md5_body);
    if (a->has_attrs_md5)
        add_md5(out, "MD5OfMessageAttributes", a->md5_attrs);
    if (a->has_sys_md5 && !r->duplicate)
        add_md5(out, "MD5OfMessageSystemAttributes", a->md5_sys);
    if (q->a.fifo)
        add_seq(out, r->mid);
}

enum sqs_err bk__send_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *p,
                          cJSON *out, struct sqs_error *err)
{
    struct bk_send_args a;
    char *at, *st;
    enum sqs_err rc = send_args(p, &a, &at, &st, err);
    if (rc == SQS_OK) {
        struct bk_send_result r;
        struct bk_error be;
        if (bk_send(e, ctx, q, &a, &r, &be) == BK_OK)
            send_render(q, &a, &r, out);
        else
            rc = bk__sqs_error(&be, err);
    }
    free(at);
    free(st);
    return rc;
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
    add_body_md5(o, m, data + m->attrs_len + m->sys_len);
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
