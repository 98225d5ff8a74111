/* The actions of the API, part two: sending, receiving, deleting and
 * changing the visibility of one message. The batch actions (act_batch.c)
 * run the same per-entry functions.
 *
 * Send checks here what is SQS syntax (the attributes:
 * sqs_check_attributes), encodes the attributes and computes the MD5
 * digests SQS shows; the engine's bk_send checks the rest (the body's
 * characters, size limit, delay, FIFO ids) before it writes anything.
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
#include "broker/sqs/actions.h"

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

/* Message and system attributes: checked, encoded as canonical JSON
 * (*at, *st: the caller frees), their digests and size into a. */
static enum sqs_err send_attrs(const cJSON *attrs, const cJSON *sys, struct bk_send_args *a, char **at,
                               char **st, struct sqs_error *err)
{
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

enum sqs_err bk__send_body(const char *body, const cJSON *attrs, const cJSON *sys, struct bk_send_args *a,
                           char **at, char **st, struct sqs_error *err)
{
    memset(a, 0, sizeof *a);
    *at = *st = NULL;
    if (!body || !*body)
        return sqs_fail(err, SQS_E_MISSING_PARAMETER, "The request must contain the parameter MessageBody.");
    size_t blen = strlen(body);
    enum sqs_err rc = send_attrs(attrs, sys, a, at, st, err);
    if (rc != SQS_OK)
        return rc;
    a->body = body;
    a->body_len = blen;
    char md5[33];
    sqs_md5_hex(body, blen, md5);
    hex_to_bytes(md5, a->md5_body);
    a->has_md5 = true;
    return SQS_OK;
}

/* SendMessage parameters (or a batch entry) to typed arguments. */
static enum sqs_err send_args(const cJSON *p, struct bk_send_args *a, char **at, char **st,
                              struct sqs_error *err)
{
    enum sqs_err rc = bk__send_body(bk__param_str(p, "MessageBody"),
                                    cJSON_GetObjectItemCaseSensitive(p, "MessageAttributes"),
                                    cJSON_GetObjectItemCaseSensitive(p, "MessageSystemAttributes"), a, at, st,
                                    err);
    if (rc != SQS_OK)
        return rc;
    bk__param_loose(p, "DelaySeconds", &a->has_delay, &a->delay_s);
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
    struct bk_receive_args a = {0};
    bool has_max;
    bk__param_loose(p, "MaxNumberOfMessages", &has_max, &a.max);
    if (!has_max)
        a.max = 1;
    bk__param_loose(p, "VisibilityTimeout", &a.has_visibility, &a.visibility_s);
    bk__param_loose(p, "WaitTimeSeconds", &a.has_wait, &a.wait_s);
    struct bk_receive_result r;
    struct bk_error be;
    if (bk_receive(e, ctx, q, &a, &r, &be) != BK_OK)
        return bk__sqs_error(&be, err);
    if (ctx->wait_ms)
        return SQS_OK;
    const cJSON *anames = cJSON_GetObjectItemCaseSensitive(p, "AttributeNames");
    const cJSON *snames = cJSON_GetObjectItemCaseSensitive(p, "MessageSystemAttributeNames");
    const cJSON *mnames = cJSON_GetObjectItemCaseSensitive(p, "MessageAttributeNames");
    *res = cJSON_CreateObject();
    if (r.n) {
        cJSON *arr = cJSON_AddArrayToObject(*res, "Messages");
        for (size_t i = 0; i < r.n; i++)
            render_msg(e, r.msgs[i].m, r.msgs[i].data, anames, snames, mnames, arr);
    }
    bk_receive_done(&r);
    return SQS_OK;
}

/* ---- delete and visibility ---- */

enum sqs_err bk__delete_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *p,
                            struct sqs_error *err)
{
    struct bk_error be;
    if (bk_delete(e, ctx, q, bk__param_str(p, "ReceiptHandle"), &be) != BK_OK)
        return bk__sqs_error(&be, err);
    return SQS_OK;
}

enum sqs_err bk__visibility_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                const cJSON *p, struct sqs_error *err)
{
    struct bk_visibility_args a = {.receipt = bk__param_str(p, "ReceiptHandle")};
    /* Present, even as null (which counts as 0). */
    a.has_timeout = cJSON_GetObjectItemCaseSensitive(p, "VisibilityTimeout") != NULL;
    bool given;
    bk__param_loose(p, "VisibilityTimeout", &given, &a.timeout_s);
    struct bk_error be;
    if (bk_change_visibility(e, ctx, q, &a, &be) != BK_OK)
        return bk__sqs_error(&be, err);
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
