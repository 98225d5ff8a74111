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
 * Its parameters decode into typed form (bk__receive_args: the engine's
 * arguments and the attribute selection) and its messages render from
 * that form (bk__receive_render), so that the server can park a long poll
 * (ctx->wait_ms) with typed arguments and run bk_receive again when the
 * queue wakes or the time is up.
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

/* Does pattern w ("All", ".*", "prefix.*", exact) take name? */
static bool pattern_takes(const char *w, const char *name)
{
    size_t wl = strlen(w);
    if (!strcmp(w, "All") || !strcmp(w, ".*") || !strcmp(w, name))
        return true;
    return wl >= 2 && !strcmp(w + wl - 2, ".*") && !strncmp(name, w, wl - 1);
}

/* The system attributes a receive may show, in the order it shows them:
 * bit i of a selection mask is sys_attr_names[i]. */
enum { SA_SENDER, SA_SENT, SA_COUNT, SA_FIRST, SA_GROUP, SA_DEDUP, SA_SEQ, SA_DLQ, SA_TRACE, SA_N };
static const char *const sys_attr_names[SA_N] = {
    "SenderId",       "SentTimestamp",          "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp", "MessageGroupId", "MessageDeduplicationId",
    "SequenceNumber", "DeadLetterQueueSourceArn", "AWSTraceHeader"};

/* The system attributes a list of names asks for (strings only count). */
static uint32_t sys_mask(const cJSON *names)
{
    uint32_t mask = 0;
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        for (int i = 0; cJSON_IsString(n) && i < SA_N; i++)
            if (pattern_takes(n->valuestring, sys_attr_names[i]))
                mask |= 1u << i;
    }
    return mask;
}

enum sqs_err bk__receive_args(struct bk_engine *e, const cJSON *p, struct bk_queue **q, struct bk_receive_args *a,
                              struct bk_recv_select *sel, struct sqs_error *err)
{
    memset(a, 0, sizeof *a);
    memset(sel, 0, sizeof *sel);
    if (!(*q = bk__param_queue(e, p, err)))
        return err->code;
    bool has_max;
    bk__param_loose(p, "MaxNumberOfMessages", &has_max, &a->max);
    if (!has_max)
        a->max = 1;
    bk__param_loose(p, "VisibilityTimeout", &a->has_visibility, &a->visibility_s);
    bk__param_loose(p, "WaitTimeSeconds", &a->has_wait, &a->wait_s);
    sel->sys[0] = sys_mask(cJSON_GetObjectItemCaseSensitive(p, "AttributeNames"));
    sel->sys[1] = sys_mask(cJSON_GetObjectItemCaseSensitive(p, "MessageSystemAttributeNames"));
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(p, "MessageAttributeNames"))
    {
        if (!cJSON_IsString(n))
            continue;
        sel->mnames = xrealloc(sel->mnames, (sel->nmnames + 1) * sizeof *sel->mnames);
        sel->mnames[sel->nmnames++] = xstrdup(n->valuestring);
    }
    return SQS_OK;
}

void bk__recv_select_free(struct bk_recv_select *sel)
{
    for (size_t i = 0; i < sel->nmnames; i++)
        free(sel->mnames[i]);
    free(sel->mnames);
    memset(sel, 0, sizeof *sel);
}

void bk__msg_view(struct bk_engine *e, const struct bk_received *rm, struct bk_msg_view *v)
{
    static const uint8_t none[16];
    const struct bk_msg *m = rm->m;
    memset(v, 0, sizeof *v);
    v->m = m;
    v->attrs = rm->data;
    v->sys = rm->data + m->attrs_len;
    v->body = v->sys + m->sys_len;
    bk_message_id(e, m->mid, v->id);
    bk_handle_make(e, m, v->handle);
    /* The digest the sender gave, or (a message sent in process, by
     * topics or push, carries none: all zero) computed now. */
    if (memcmp(m->md5_body, none, 16) != 0)
        bytes_to_hex(m->md5_body, v->md5);
    else
        sqs_md5_hex(v->body, m->body_len, v->md5);
    if (m->grp)
        snprintf(v->seq, sizeof v->seq, "%020" PRIu64, m->mid);
    struct bk_queue *src = m->origin_qid ? bk_engine_find_id(e, m->origin_qid) : NULL;
    if (src)
        snprintf(v->dlq_arn, sizeof v->dlq_arn, "%s%s", BK_ARN_PREFIX, src->name);
}

/* The system attributes one mask asks for into sa. */
static void render_sys_attrs(const struct bk_msg_view *v, uint32_t mask, cJSON *sa)
{
    const struct bk_msg *m = v->m;
    char n[SA_N][24] = {{0}};
    const char *val[SA_N] = {[SA_SENDER] = BK_ACCOUNT, [SA_SENT] = n[SA_SENT], [SA_COUNT] = n[SA_COUNT],
                             [SA_FIRST] = n[SA_FIRST]};
    snprintf(n[SA_SENT], sizeof n[0], "%" PRIu64, m->sent_ms);
    snprintf(n[SA_COUNT], sizeof n[0], "%u", m->recv_count);
    snprintf(n[SA_FIRST], sizeof n[0], "%" PRIu64, m->first_recv_ms);
    if (m->grp) {
        val[SA_GROUP] = m->grp->id;
        val[SA_DEDUP] = m->dedup_id;
        val[SA_SEQ] = v->seq;
    }
    val[SA_DLQ] = v->dlq_arn[0] ? v->dlq_arn : NULL;
    cJSON *sys = NULL;
    if (m->sys_len && (mask & 1u << SA_TRACE)) {
        sys = cJSON_ParseWithLength(v->sys, m->sys_len);
        val[SA_TRACE] = bk__param_str(cJSON_GetObjectItemCaseSensitive(sys, "AWSTraceHeader"), "StringValue");
    }
    for (int i = 0; i < SA_N; i++)
        if (val[i] && (mask & 1u << i))
            cJSON_AddStringToObject(sa, sys_attr_names[i], val[i]);
    cJSON_Delete(sys);
}

/* The message attributes the patterns ask for, with their digest. */
static void render_msg_attrs(const struct bk_msg_view *v, const struct bk_recv_select *sel, cJSON *o)
{
    const struct bk_msg *m = v->m;
    if (!m->attrs_len || !sel->nmnames)
        return;
    cJSON *all = cJSON_ParseWithLength(v->attrs, m->attrs_len);
    cJSON *keep = cJSON_CreateObject();
    int total = cJSON_GetArraySize(all);
    cJSON *a = all ? all->child : NULL;
    while (a) {
        cJSON *next = a->next;
        bool take = false;
        for (size_t i = 0; !take && i < sel->nmnames; i++)
            take = pattern_takes(sel->mnames[i], a->string);
        if (take)
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

/* Renders one delivered message as ReceiveMessage shows it. */
static void render_msg(struct bk_engine *e, const struct bk_received *rm, const struct bk_recv_select *sel,
                       cJSON *arr)
{
    struct bk_msg_view v;
    bk__msg_view(e, rm, &v);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "MessageId", v.id);
    cJSON_AddStringToObject(o, "ReceiptHandle", v.handle);
    cJSON_AddStringToObject(o, "MD5OfBody", v.md5);
    cJSON_AddItemToObject(o, "Body", owned_string(v.body, rm->m->body_len));
    cJSON *sa = cJSON_CreateObject();
    for (int i = 0; i < 2; i++)
        render_sys_attrs(&v, sel->sys[i], sa);
    if (cJSON_GetArraySize(sa))
        cJSON_AddItemToObject(o, "Attributes", sa);
    else
        cJSON_Delete(sa);
    render_msg_attrs(&v, sel, o);
    cJSON_AddItemToArray(arr, o);
}

cJSON *bk__receive_render(struct bk_engine *e, const struct bk_receive_result *r, const struct bk_recv_select *sel)
{
    cJSON *res = cJSON_CreateObject();
    if (r->n) {
        cJSON *arr = cJSON_AddArrayToObject(res, "Messages");
        for (size_t i = 0; i < r->n; i++)
            render_msg(e, &r->msgs[i], sel, arr);
    }
    return res;
}

enum sqs_err bk__act_receive(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                             struct sqs_error *err)
{
    struct bk_queue *q;
    struct bk_receive_args a;
    struct bk_recv_select sel;
    enum sqs_err rc = bk__receive_args(e, p, &q, &a, &sel, err);
    if (rc != SQS_OK)
        return rc;
    struct bk_receive_result r;
    struct bk_error be;
    if (bk_receive(e, ctx, q, &a, &r, &be) != BK_OK)
        rc = bk__sqs_error(&be, err);
    else if (!ctx->wait_ms)
        *res = bk__receive_render(e, &r, &sel);
    bk_receive_done(&r);
    bk__recv_select_free(&sel);
    return rc;
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
