/* The native API's message routes (see native.c for the whole API):
 *
 *   POST   /v1/queues/NAME/messages              send: a JSON object {"body":..,
 *          "delay":s,"attributes":{..},"group":..,"dedup":..}, {"messages":[..]}
 *          for a batch, or any other content type: the raw body is the message
 *          (query: delay, group, dedup)
 *   DELETE /v1/queues/NAME/messages/RECEIPT      delete one
 *   POST   /v1/queues/NAME/delete                {"receipts":[..]}
 *   POST   /v1/queues/NAME/messages/RECEIPT/visibility   ?timeout=s (or JSON)
 *
 * Each maps the native fields onto the engine's typed calls (bk_send,
 * bk_delete, bk_change_visibility); message attributes are checked and
 * digested as SQS does (bk__send_body), since receiving them through the
 * SQS API must show the same MD5s. A batch is checked as a whole (1 to 10
 * entries, the queue's size limit for all of them) and then every entry
 * succeeds or fails on its own. */
#include "broker/http/native.h"

#include "core/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Native message attributes ({"k":"v"} or full SQS form) to canonical. */
static cJSON *canonical_attrs(const cJSON *a)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (cJSON_IsString(it)) {
            cJSON *v = cJSON_AddObjectToObject(o, it->string);
            cJSON_AddStringToObject(v, "DataType", "String");
            cJSON_AddStringToObject(v, "StringValue", it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            char n[64];
            snprintf(n, sizeof n, "%.17g", it->valuedouble);
            cJSON *v = cJSON_AddObjectToObject(o, it->string);
            cJSON_AddStringToObject(v, "DataType", "Number");
            cJSON_AddStringToObject(v, "StringValue", n);
        } else {
            cJSON_AddItemToObject(o, it->string, cJSON_Duplicate(it, true));
        }
    }
    return o;
}

/* A native message object ({"body", "delay", "group", "dedup",
 * "attributes"}) to send arguments; *at and *st are the encoded
 * attributes (the caller frees them). *size: what the message counts
 * against a batch's size limit. */
static enum sqs_err message_args(const cJSON *m, struct bk_send_args *a, char **at, char **st, size_t *size,
                                 struct sqs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "attributes");
    cJSON *attrs = cJSON_IsObject(v) ? canonical_attrs(v) : NULL;
    const char *body = bk__param_str(m, "body");
    if (size) {
        struct sqs_error ignore;
        *size += body ? strlen(body) : 0;
        sqs_check_attributes(attrs, size, &ignore);
    }
    enum sqs_err rc = bk__send_body(body, attrs, NULL, a, at, st, err);
    cJSON_Delete(attrs);
    if (rc != SQS_OK)
        return rc;
    bk__param_loose(m, "delay", &a->has_delay, &a->delay_s);
    a->group = bk__param_str(m, "group");
    a->dedup = bk__param_str(m, "dedup");
    return SQS_OK;
}

/* {"id", "md5", "sequence"} of a sent message. */
static cJSON *sent_json(const struct bk_queue *q, const struct bk_send_args *a, const struct bk_send_result *r)
{
    static const char d[] = "0123456789abcdef";
    char md5[33], seq[32];
    for (int i = 0; i < 16; i++) {
        md5[2 * i] = d[a->md5_body[i] >> 4];
        md5[2 * i + 1] = d[a->md5_body[i] & 15];
    }
    md5[32] = '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->message_id);
    cJSON_AddStringToObject(o, "md5", md5);
    if (q->a.fifo) {
        snprintf(seq, sizeof seq, "%020" PRIu64, r->mid);
        cJSON_AddStringToObject(o, "sequence", seq);
    }
    return o;
}

/* Sends one message; its answer object, or NULL with err. */
static cJSON *send_one(struct bk_conn *c, struct bk_ctx *ctx, struct bk_queue *q, const struct bk_send_args *a,
                       struct sqs_error *err)
{
    struct bk_send_result r;
    struct bk_error be;
    if (bk_send(c->srv->engine, ctx, q, a, &r, &be) != BK_OK) {
        bk__sqs_error(&be, err);
        return NULL;
    }
    return sent_json(q, a, &r);
}

/* The failure of batch entry i. */
static void add_failed(cJSON *failed, int i, const struct sqs_error *err)
{
    char id[16];
    snprintf(id, sizeof id, "%d", i);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "entry", id);
    cJSON_AddStringToObject(f, "code", sqs_err_name(err->code));
    cJSON_AddStringToObject(f, "error", err->message);
    cJSON_AddItemToArray(failed, f);
}

/* A batch holds 1 to BK_MAX_BATCH entries. */
static bool batch_size_ok(struct bk_conn *c, int n)
{
    struct sqs_error err;
    if (n == 0)
        sqs_fail(&err, SQS_E_EMPTY_BATCH, "There should be at least one entry in the request.");
    else if (n > BK_MAX_BATCH)
        sqs_fail(&err, SQS_E_TOO_MANY_ENTRIES, "Maximum number of entries per request are %d. You have sent %d.",
                 BK_MAX_BATCH, n);
    else
        return true;
    bk_native_error(c, &err, false);
    return false;
}

/* {"messages": [...]}: every message sent or failed on its own, once the
 * whole batch fits the queue's size limit. */
static void send_batch(struct bk_conn *c, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *list)
{
    int n = cJSON_GetArraySize(list);
    if (!batch_size_ok(c, n))
        return;
    struct bk_send_args args[BK_MAX_BATCH];
    char *at[BK_MAX_BATCH], *st[BK_MAX_BATCH];
    struct sqs_error errs[BK_MAX_BATCH];
    enum sqs_err rcs[BK_MAX_BATCH];
    size_t total = 0;
    for (int i = 0; i < n; i++)
        rcs[i] = message_args(cJSON_GetArrayItem(list, i), &args[i], &at[i], &st[i], &total, &errs[i]);
    cJSON *o = NULL;
    if (total > q->a.max_size) {
        sqs_fail(&errs[0], SQS_E_BATCH_TOO_LONG, "Batch requests cannot be longer than %u bytes. You have sent %zu bytes.",
                 q->a.max_size, total);
        bk_native_error(c, &errs[0], false);
    } else {
        o = cJSON_CreateObject();
        cJSON *sent = cJSON_AddArrayToObject(o, "sent"), *failed = cJSON_AddArrayToObject(o, "failed");
        for (int i = 0; i < n; i++) {
            cJSON *s = rcs[i] == SQS_OK ? send_one(c, ctx, q, &args[i], &errs[i]) : NULL;
            char id[16];
            snprintf(id, sizeof id, "%d", i);
            if (s) {
                cJSON_AddStringToObject(s, "entry", id);
                cJSON_AddItemToArray(sent, s);
            } else {
                add_failed(failed, i, &errs[i]);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        free(at[i]);
        free(st[i]);
    }
    if (o)
        bk__native_call_end(c, ctx, BK_OK, NULL, o);
}

/* A raw body (any content type but JSON) is the message itself: no NUL
 * bytes; the delay, if any, from the query. false: answered. */
static bool raw_check(struct bk_conn *c, const struct admin_req *ar, bool *has_delay, int64_t *delay)
{
    if (strlen(buf_rptr(&c->h.body)) != buf_len(&c->h.body)) {
        bk__native_fail(c, SQS_E_INVALID_MESSAGE_CONTENTS, "message bodies cannot hold NUL bytes");
        return false;
    }
    char v[32], *end;
    *has_delay = admin_query_param(ar, "delay", v, sizeof v);
    *delay = *has_delay ? strtoll(v, &end, 10) : 0;
    if (*has_delay && (!*v || *end)) {
        bk__native_fail(c, SQS_E_INVALID_PARAMETER_VALUE, "delay must be a number of seconds");
        return false;
    }
    return true;
}

/* Sends a raw body; group and dedup from the query. */
static void send_raw(struct bk_conn *c, struct bk_ctx *ctx, struct bk_queue *q, const struct admin_req *ar,
                     bool has_delay, int64_t delay)
{
    char group[256], dedup[256];
    struct bk_send_args a;
    char *at, *st;
    struct sqs_error err;
    cJSON *o = NULL;
    if (bk__send_body(buf_rptr(&c->h.body), NULL, NULL, &a, &at, &st, &err) == SQS_OK) {
        a.has_delay = has_delay;
        a.delay_s = delay;
        a.group = admin_query_param(ar, "group", group, sizeof group) ? group : NULL;
        a.dedup = admin_query_param(ar, "dedup", dedup, sizeof dedup) ? dedup : NULL;
        o = send_one(c, ctx, q, &a, &err);
    }
    free(at);
    free(st);
    if (o)
        bk__native_call_end(c, ctx, BK_OK, NULL, o);
    else
        bk_native_error(c, &err, false);
}

/* POST /v1/queues/NAME/messages */
void bk__native_send(struct bk_conn *c, const char *name, const struct admin_req *ar)
{
    bool json = bk_native_json_body(c);
    if (!json && !buf_len(&c->h.body)) {
        bk__native_fail(c, SQS_E_MISSING_PARAMETER, "empty message: send a body");
        return;
    }
    bool bad, has_delay = false;
    int64_t delay = 0;
    if (!json && !raw_check(c, ar, &has_delay, &delay))
        return;
    cJSON *j = json ? bk_native_body_object(c, &bad) : NULL;
    if (json && !j) {
        bk__native_fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object: {\"body\": ...} or {\"messages\": [...]}");
        return;
    }
    struct bk_ctx ctx;
    struct bk_queue *q = NULL;
    if (bk__native_call_begin(c, true, false, &ctx) && (q = bk__native_queue(c, name)) && !json) {
        send_raw(c, &ctx, q, ar, has_delay, delay);
    } else if (q && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "messages"))) {
        send_batch(c, &ctx, q, cJSON_GetObjectItemCaseSensitive(j, "messages"));
    } else if (q) {
        struct bk_send_args a;
        char *at, *st;
        struct sqs_error err;
        cJSON *o = message_args(j, &a, &at, &st, NULL, &err) == SQS_OK ? send_one(c, &ctx, q, &a, &err) : NULL;
        free(at);
        free(st);
        if (o)
            bk__native_call_end(c, &ctx, BK_OK, NULL, o);
        else
            bk_native_error(c, &err, false);
    }
    cJSON_Delete(j);
}

/* DELETE /v1/queues/NAME/messages/RECEIPT */
void bk__native_delete(struct bk_conn *c, const char *name, const char *receipt)
{
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (!bk__native_call_begin(c, false, false, &ctx) || !(q = bk__native_queue(c, name)))
        return;
    struct bk_error be;
    enum bk_err rc = bk_delete(c->srv->engine, &ctx, q, receipt, &be);
    bk__native_call_end(c, &ctx, rc, &be, NULL);
}

/* POST /v1/queues/NAME/delete {"receipts":[..]} */
void bk__native_delete_batch(struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "receipts");
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (!cJSON_IsArray(list)) {
        bk__native_fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object {\"receipts\": [...]}");
    } else if (bk__native_call_begin(c, false, false, &ctx) && (q = bk__native_queue(c, name)) &&
               batch_size_ok(c, cJSON_GetArraySize(list))) {
        cJSON *o = cJSON_CreateObject();
        cJSON *failed = cJSON_CreateArray();
        int i = 0, deleted = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, list)
        {
            struct bk_error be;
            struct sqs_error err;
            if (bk_delete(c->srv->engine, &ctx, q, cJSON_GetStringValue(r), &be) == BK_OK) {
                deleted++;
            } else {
                bk__sqs_error(&be, &err);
                add_failed(failed, i, &err);
            }
            i++;
        }
        cJSON_AddNumberToObject(o, "deleted", deleted);
        cJSON_AddItemToObject(o, "failed", failed);
        bk__native_call_end(c, &ctx, BK_OK, NULL, o);
    }
    cJSON_Delete(j);
}

/* POST /v1/queues/NAME/messages/RECEIPT/visibility ?timeout=s or
 * {"timeout": s} */
void bk__native_visibility(struct bk_conn *c, const char *name, const char *receipt,
                              const struct admin_req *ar)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    struct bk_visibility_args a = {.receipt = receipt};
    char v[32], *end;
    if (cJSON_GetObjectItemCaseSensitive(j, "timeout")) {
        bool given; /* null counts as 0 */
        a.has_timeout = true;
        bk__param_loose(j, "timeout", &given, &a.timeout_s);
    } else if (!bad && admin_query_param(ar, "timeout", v, sizeof v)) {
        a.has_timeout = true;
        a.timeout_s = strtoll(v, &end, 10);
        bad = !*v || *end;
    }
    cJSON_Delete(j);
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (bad) {
        bk__native_fail(c, SQS_E_INVALID_PARAMETER_VALUE, "timeout must be a number of seconds");
    } else if (bk__native_call_begin(c, false, false, &ctx) && (q = bk__native_queue(c, name))) {
        struct bk_error be;
        enum bk_err rc = bk_change_visibility(c->srv->engine, &ctx, q, &a, &be);
        bk__native_call_end(c, &ctx, rc, &be, NULL);
    }
}

/* ---- receive ---- */

/* A number of the receive: the query's, then the JSON body's over it
 * (null: absent). false: the query's is no number. */
static bool recv_num(const struct admin_req *ar, const cJSON *j, const char *key, bool *has, int64_t *v)
{
    char s[32], *end;
    if (admin_query_param(ar, key, s, sizeof s)) {
        *has = true;
        *v = strtoll(s, &end, 10);
        if (!*s || *end)
            return false;
    }
    if (cJSON_GetObjectItemCaseSensitive(j, key))
        bk__param_loose(j, key, has, v);
    return true;
}

/* Message attributes (canonical JSON): a String becomes a plain string,
 * other types keep their full form. NULL when there are none. */
static cJSON *native_attrs(const char *data, size_t len)
{
    cJSON *all = len ? cJSON_ParseWithLength(data, len) : NULL;
    if (!cJSON_GetArraySize(all)) {
        cJSON_Delete(all);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    const cJSON *a;
    cJSON_ArrayForEach(a, all)
    {
        const char *dt = bk__param_str(a, "DataType");
        const char *sv = bk__param_str(a, "StringValue");
        if (dt && sv && !strcmp(dt, "String"))
            cJSON_AddStringToObject(o, a->string, sv);
        else
            cJSON_AddItemToObject(o, a->string, cJSON_Duplicate(a, true));
    }
    cJSON_Delete(all);
    return o;
}

static cJSON *native_message(struct bk_engine *e, const struct bk_received *rm)
{
    struct bk_msg_view v;
    bk__msg_view(e, rm, &v);
    const struct bk_msg *m = rm->m;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v.id);
    cJSON_AddStringToObject(o, "receipt", v.handle);
    char *body = xstrndup(v.body, m->body_len);
    cJSON_AddStringToObject(o, "body", body);
    free(body);
    cJSON_AddStringToObject(o, "md5", v.md5);
    cJSON_AddNumberToObject(o, "receive_count", (double)m->recv_count);
    cJSON_AddNumberToObject(o, "sent_at", (double)m->sent_ms);
    cJSON_AddNumberToObject(o, "first_received_at", (double)m->first_recv_ms);
    if (m->grp) {
        cJSON_AddStringToObject(o, "group", m->grp->id);
        if (m->dedup_id)
            cJSON_AddStringToObject(o, "dedup", m->dedup_id);
        cJSON_AddStringToObject(o, "sequence", v.seq);
    }
    if (v.dlq_arn[0])
        cJSON_AddStringToObject(o, "dead_letter_source", v.dlq_arn);
    cJSON *attrs = native_attrs(v.attrs, m->attrs_len);
    if (attrs)
        cJSON_AddItemToObject(o, "attributes", attrs);
    return o;
}

/* The native answer to a receive: {"messages": [..]}. */
static void native_recv_render(struct bk_conn *c, const struct bk_recv *rv, const struct bk_receive_result *r,
                               bool hold)
{
    FG_UNUSED(rv);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "messages");
    for (size_t i = 0; i < r->n; i++)
        cJSON_AddItemToArray(arr, native_message(c->srv->engine, &r->msgs[i]));
    bk__native_json(c, 200, o, hold);
}

/* POST /v1/queues/NAME/receive ?max=&wait=&visibility= or the same in a
 * JSON object (which wins): bk_receive, parked as a long poll when it
 * may wait. Every attribute is shown. */
void bk__native_receive(struct bk_conn *c, const char *name, const struct admin_req *ar)
{
    bool bad, has_max = false;
    cJSON *j = bk_native_body_object(c, &bad);
    struct bk_recv rv = {.render = native_recv_render};
    struct bk_receive_args *a = &rv.args;
    bad = bad || !recv_num(ar, j, "max", &has_max, &a->max) || !recv_num(ar, j, "wait", &a->has_wait, &a->wait_s) ||
          !recv_num(ar, j, "visibility", &a->has_visibility, &a->visibility_s);
    cJSON_Delete(j);
    if (bad) {
        bk__native_fail(c, SQS_E_INVALID_PARAMETER_VALUE, "max, wait and visibility are numbers");
        return;
    }
    if (!has_max)
        a->max = 1;
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (!bk__native_call_begin(c, false, false, &ctx) || !(q = bk__native_queue(c, name)))
        return;
    rv.qid = q->qid;
    bk_recv_start(c, &rv);
}
