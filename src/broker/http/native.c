/* The native HTTP/JSON API, made for curl and small scripts. Every route
 * maps onto the engine's actions (the same code the SQS API runs), with
 * plain names in and out:
 *
 *   GET    /v1/queues[?prefix=P]                 list, with message counts
 *   PUT    /v1/queues/NAME                       create {"attributes":{..},"tags":{..}}
 *   GET    /v1/queues/NAME                       attributes and counts
 *   PATCH  /v1/queues/NAME                       set {"attributes":{..}}
 *   DELETE /v1/queues/NAME                       delete with its messages
 *   POST   /v1/queues/NAME/messages              send: a JSON object {"body":..,
 *          "delay":s,"attributes":{..},"group":..,"dedup":..}, {"messages":[..]}
 *          for a batch, or any other content type: the raw body is the message
 *          (query: delay, group, dedup)
 *   POST   /v1/queues/NAME/receive               ?max=&wait=&visibility= (or JSON)
 *   DELETE /v1/queues/NAME/messages/RECEIPT      delete one
 *   POST   /v1/queues/NAME/delete                {"receipts":[..]}
 *   POST   /v1/queues/NAME/messages/RECEIPT/visibility   ?timeout=s (or JSON)
 *   POST   /v1/queues/NAME/purge
 *   POST   /v1/queues/NAME/redrive               move a DLQ's messages back
 *          ({"destination":NAME,"rate":N}); GET lists its move tasks
 *
 * Errors are {"error": message, "code": SQS error name} with the SQS
 * status, except that a missing queue is 404. With an auth key pair set,
 * requests must be signed with SigV4 (curl --aws-sigv4). */
#include "broker/http/http.h"

#include "core/admin.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 81

static void respond_json(struct bk_conn *c, int status, cJSON *j, bool hold)
{
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    size_t n = strlen(t);
    t = realloc(t, n + 2);
    t[n] = '\n';
    t[n + 1] = '\0';
    bk_respond(c, status, "application/json", t, n + 1, NULL, hold);
    free(t);
}

void bk_native_error(struct bk_conn *c, const struct sqs_error *err, bool hold)
{
    /* 507 Insufficient Storage: refused while the broker's disk is low. */
    int status = err->code == SQS_E_NONEXISTENT_QUEUE ? 404
                 : err->code == SQS_E_THROTTLED      ? 507
                                                     : sqs_err_status(err->code);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", err->message);
    cJSON_AddStringToObject(j, "code", sqs_err_name(err->code));
    respond_json(c, status, j, hold);
}

static void fail(struct bk_conn *c, enum sqs_err code, const char *msg)
{
    struct sqs_error e;
    sqs_fail(&e, code, "%s", msg);
    bk_native_error(c, &e, false);
}

/* ---- rendering canonical results ---- */

static void copy_str(cJSON *dst, const char *name, const cJSON *src, const char *from)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, from);
    if (cJSON_IsString(v))
        cJSON_AddStringToObject(dst, name, v->valuestring);
}

static void copy_num(cJSON *dst, const char *name, const cJSON *src, const char *from)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, from);
    if (cJSON_IsString(v))
        cJSON_AddNumberToObject(dst, name, strtod(v->valuestring, NULL));
}

/* Message attributes: a String stays a plain string; other types keep
 * their full form. */
static cJSON *native_attrs(const cJSON *ma)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *a;
    cJSON_ArrayForEach(a, ma)
    {
        const char *dt = bk__param_str(a, "DataType");
        const char *sv = bk__param_str(a, "StringValue");
        if (dt && sv && !strcmp(dt, "String"))
            cJSON_AddStringToObject(o, a->string, sv);
        else
            cJSON_AddItemToObject(o, a->string, cJSON_Duplicate(a, true));
    }
    return o;
}

static cJSON *native_message(const cJSON *m)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(m, "Attributes");
    copy_str(o, "id", m, "MessageId");
    copy_str(o, "receipt", m, "ReceiptHandle");
    copy_str(o, "body", m, "Body");
    copy_str(o, "md5", m, "MD5OfBody");
    copy_num(o, "receive_count", sa, "ApproximateReceiveCount");
    copy_num(o, "sent_at", sa, "SentTimestamp");
    copy_num(o, "first_received_at", sa, "ApproximateFirstReceiveTimestamp");
    copy_str(o, "group", sa, "MessageGroupId");
    copy_str(o, "dedup", sa, "MessageDeduplicationId");
    copy_str(o, "sequence", sa, "SequenceNumber");
    copy_str(o, "dead_letter_source", sa, "DeadLetterQueueSourceArn");
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(m, "MessageAttributes");
    if (ma)
        cJSON_AddItemToObject(o, "attributes", native_attrs(ma));
    return o;
}

static cJSON *native_sent(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    copy_str(o, "id", r, "MessageId");
    copy_str(o, "md5", r, "MD5OfMessageBody");
    copy_str(o, "sequence", r, "SequenceNumber");
    return o;
}

static cJSON *native_failed(const cJSON *failed)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *f;
    cJSON_ArrayForEach(f, failed)
    {
        cJSON *o = cJSON_CreateObject();
        copy_str(o, "entry", f, "Id");
        copy_str(o, "code", f, "Code");
        copy_str(o, "error", f, "Message");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

void bk_native_render(struct bk_conn *c, const char *action, const cJSON *r, bool hold)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *it;
    if (!strcmp(action, "ReceiveMessage")) {
        cJSON *arr = cJSON_AddArrayToObject(o, "messages");
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "Messages"))
            cJSON_AddItemToArray(arr, native_message(it));
    } else if (!strcmp(action, "SendMessage")) {
        cJSON_Delete(o);
        o = native_sent(r);
    } else if (!strcmp(action, "SendMessageBatch")) {
        cJSON *arr = cJSON_AddArrayToObject(o, "sent");
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "Successful"))
        {
            cJSON *s = native_sent(it);
            copy_str(s, "entry", it, "Id");
            cJSON_AddItemToArray(arr, s);
        }
        cJSON_AddItemToObject(o, "failed", native_failed(cJSON_GetObjectItemCaseSensitive(r, "Failed")));
    } else if (!strcmp(action, "DeleteMessageBatch")) {
        cJSON_AddNumberToObject(o, "deleted",
                                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "Successful")));
        cJSON_AddItemToObject(o, "failed", native_failed(cJSON_GetObjectItemCaseSensitive(r, "Failed")));
    } else if (!strcmp(action, "StartMessageMoveTask")) {
        copy_str(o, "task", r, "TaskHandle");
    } else if (!strcmp(action, "ListMessageMoveTasks")) {
        cJSON_AddItemToObject(o, "tasks", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "Results"), true));
    } else {
        cJSON_AddBoolToObject(o, "ok", true);
    }
    respond_json(c, 200, o, hold);
}

/* ---- running actions ---- */

/* Runs action; parks a receive with nothing to hand out; renders the
 * answer otherwise (held when it must be durable first). Takes params. */
static void run(struct bk_conn *c, const char *action, cJSON *params, cJSON *(*shape)(const cJSON *))
{
    char *base = bk_base_url(c);
    struct bk_ctx ctx;
    struct sqs_error err = {SQS_OK, ""};
    cJSON *res = NULL;
    enum sqs_err rc = bk_run_action(c, action, params, base, false, &res, &err, &ctx);
    if (rc == SQS_OK && ctx.wait_ms) {
        if (c->srv->nwaiters < c->srv->cfg->limits.max_waiters) {
            bk_poll_park(c, &ctx, action, params, base);
            return;
        }
        rc = bk_run_action(c, action, params, base, true, &res, &err, &ctx);
    }
    if (rc != SQS_OK) {
        bk_native_error(c, &err, ctx.need_sync);
    } else if (shape) {
        respond_json(c, 200, shape(res), ctx.need_sync);
    } else {
        bk_native_render(c, action, res, ctx.need_sync);
    }
    if (ctx.need_sync)
        bk_commit_join(c);
    cJSON_Delete(res);
    cJSON_Delete(params);
    free(base);
}

static cJSON *queue_params(struct bk_conn *c, const char *name)
{
    cJSON *p = cJSON_CreateObject();
    char *base = bk_base_url(c);
    char *url = xasprintf("%s/%s/%s", base, BK_ACCOUNT, name);
    cJSON_AddStringToObject(p, "QueueUrl", url);
    free(url);
    free(base);
    return p;
}

/* A query parameter as a number into p[name] (when present). */
static bool query_int(const struct admin_req *ar, const char *key, cJSON *p, const char *name)
{
    char v[32];
    if (!admin_query_param(ar, key, v, sizeof v))
        return true;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end)
        return false;
    cJSON_AddNumberToObject(p, name, (double)n);
    return true;
}

static bool query_str(const struct admin_req *ar, const char *key, cJSON *p, const char *name)
{
    char v[256];
    if (admin_query_param(ar, key, v, sizeof v))
        cJSON_AddStringToObject(p, name, v);
    return true;
}

bool bk_native_json_body(const struct bk_conn *c)
{
    const struct http_header *ct = http_find_header(c->h.req.headers, c->h.req.nheaders, "content-type");
    return ct && ct->value_len >= 16 && fg_strieq(ct->value, 16, "application/json");
}

cJSON *bk_native_body_object(struct bk_conn *c, bool *bad)
{
    *bad = false;
    if (!buf_len(&c->h.body))
        return NULL;
    cJSON *j = json_parse_strict(buf_rptr(&c->h.body), buf_len(&c->h.body));
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *bad = true;
        return NULL;
    }
    return j;
}

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

/* One native message object into canonical SendMessage fields of p. */
static void message_fields(const cJSON *m, cJSON *p)
{
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "body")))
        cJSON_AddItemToObject(p, "MessageBody", cJSON_Duplicate(v, true));
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "delay")))
        cJSON_AddItemToObject(p, "DelaySeconds", cJSON_Duplicate(v, true));
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "group")))
        cJSON_AddItemToObject(p, "MessageGroupId", cJSON_Duplicate(v, true));
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "dedup")))
        cJSON_AddItemToObject(p, "MessageDeduplicationId", cJSON_Duplicate(v, true));
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "attributes")) && cJSON_IsObject(v))
        cJSON_AddItemToObject(p, "MessageAttributes", canonical_attrs(v));
}

static void send_messages(struct bk_conn *c, const char *name, const struct admin_req *ar)
{
    cJSON *p = queue_params(c, name);
    if (!bk_native_json_body(c)) {
        if (!buf_len(&c->h.body)) {
            cJSON_Delete(p);
            fail(c, SQS_E_MISSING_PARAMETER, "empty message: send a body");
            return;
        }
        cJSON_AddItemToObject(p, "MessageBody", cJSON_CreateString(buf_rptr(&c->h.body)));
        if (strlen(buf_rptr(&c->h.body)) != buf_len(&c->h.body)) {
            cJSON_Delete(p);
            fail(c, SQS_E_INVALID_MESSAGE_CONTENTS, "message bodies cannot hold NUL bytes");
            return;
        }
        if (!query_int(ar, "delay", p, "DelaySeconds")) {
            cJSON_Delete(p);
            fail(c, SQS_E_INVALID_PARAMETER_VALUE, "delay must be a number of seconds");
            return;
        }
        query_str(ar, "group", p, "MessageGroupId");
        query_str(ar, "dedup", p, "MessageDeduplicationId");
        run(c, "SendMessage", p, NULL);
        return;
    }
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    if (!j) {
        cJSON_Delete(p);
        fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object: {\"body\": ...} or {\"messages\": [...]}");
        return;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (cJSON_IsArray(list)) {
        cJSON *entries = cJSON_AddArrayToObject(p, "Entries");
        const cJSON *m;
        int i = 0;
        cJSON_ArrayForEach(m, list)
        {
            cJSON *e = cJSON_CreateObject();
            char id[16];
            snprintf(id, sizeof id, "%d", i++);
            cJSON_AddStringToObject(e, "Id", id);
            message_fields(m, e);
            cJSON_AddItemToArray(entries, e);
        }
        cJSON_Delete(j);
        run(c, "SendMessageBatch", p, NULL);
        return;
    }
    message_fields(j, p);
    cJSON_Delete(j);
    run(c, "SendMessage", p, NULL);
}

static void receive_messages(struct bk_conn *c, const char *name, const struct admin_req *ar)
{
    cJSON *p = queue_params(c, name);
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    if (bad || !query_int(ar, "max", p, "MaxNumberOfMessages") || !query_int(ar, "wait", p, "WaitTimeSeconds") ||
        !query_int(ar, "visibility", p, "VisibilityTimeout")) {
        cJSON_Delete(j);
        cJSON_Delete(p);
        fail(c, SQS_E_INVALID_PARAMETER_VALUE, "max, wait and visibility are numbers");
        return;
    }
    static const char *const map[][2] = {{"max", "MaxNumberOfMessages"},
                                         {"wait", "WaitTimeSeconds"},
                                         {"visibility", "VisibilityTimeout"}};
    for (size_t i = 0; j && i < ARRAY_SIZE(map); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, map[i][0]);
        if (v) {
            cJSON_DeleteItemFromObjectCaseSensitive(p, map[i][1]);
            cJSON_AddItemToObject(p, map[i][1], cJSON_Duplicate(v, true));
        }
    }
    cJSON_Delete(j);
    cJSON *all = cJSON_CreateStringArray((const char *const[]){"All"}, 1);
    cJSON_AddItemToObject(p, "AttributeNames", all);
    cJSON_AddItemToObject(p, "MessageAttributeNames", cJSON_Duplicate(all, true));
    run(c, "ReceiveMessage", p, NULL);
}

static cJSON *shape_queue(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    copy_str(o, "url", r, "QueueUrl");
    return o;
}

static cJSON *shape_attrs(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "Attributes");
    cJSON_AddItemToObject(o, "attributes", a ? cJSON_Duplicate(a, true) : cJSON_CreateObject());
    return o;
}

static void list_queues(struct bk_conn *c, const struct admin_req *ar)
{
    char prefix[MAX_NAME] = "";
    admin_query_param(ar, "prefix", prefix, sizeof prefix);
    size_t pl = strlen(prefix);
    char *base = bk_base_url(c);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "queues");
    for (const struct bk_queue *q = c->srv->engine->qhead; q; q = q->lnext) {
        if (pl && strncmp(q->name, prefix, pl) != 0)
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", q->name);
        char *url = xasprintf("%s/%s/%s", base, BK_ACCOUNT, q->name);
        cJSON_AddStringToObject(e, "url", url);
        free(url);
        cJSON_AddBoolToObject(e, "fifo", q->a.fifo);
        cJSON_AddNumberToObject(e, "messages", (double)q->n_ready);
        cJSON_AddNumberToObject(e, "in_flight", (double)q->n_inflight);
        cJSON_AddNumberToObject(e, "delayed", (double)q->n_delayed);
        cJSON_AddItemToArray(arr, e);
    }
    free(base);
    respond_json(c, 200, o, false);
}

/* PUT /v1/queues/NAME */
static void create_queue(struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    if (bad) {
        fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object {\"attributes\": {...}, \"tags\": {...}}");
        return;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "QueueName", name);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attributes");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tags");
    if (a)
        cJSON_AddItemToObject(p, "Attributes", cJSON_Duplicate(a, true));
    if (t)
        cJSON_AddItemToObject(p, "tags", cJSON_Duplicate(t, true));
    cJSON_Delete(j);
    run(c, "CreateQueue", p, shape_queue);
}

static void set_attributes(struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attributes");
    if (!j || !cJSON_IsObject(a)) {
        cJSON_Delete(j);
        fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object {\"attributes\": {...}}");
        return;
    }
    cJSON *p = queue_params(c, name);
    cJSON_AddItemToObject(p, "Attributes", cJSON_Duplicate(a, true));
    cJSON_Delete(j);
    run(c, "SetQueueAttributes", p, NULL);
}

static void delete_batch(struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "receipts");
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(j);
        fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object {\"receipts\": [...]}");
        return;
    }
    cJSON *p = queue_params(c, name);
    cJSON *entries = cJSON_AddArrayToObject(p, "Entries");
    const cJSON *r;
    int i = 0;
    cJSON_ArrayForEach(r, list)
    {
        cJSON *e = cJSON_CreateObject();
        char id[16];
        snprintf(id, sizeof id, "%d", i++);
        cJSON_AddStringToObject(e, "Id", id);
        cJSON_AddItemToObject(e, "ReceiptHandle", cJSON_Duplicate(r, true));
        cJSON_AddItemToArray(entries, e);
    }
    cJSON_Delete(j);
    run(c, "DeleteMessageBatch", p, NULL);
}

static void change_visibility(struct bk_conn *c, const char *name, const char *receipt,
                              const struct admin_req *ar)
{
    cJSON *p = queue_params(c, name);
    cJSON_AddStringToObject(p, "ReceiptHandle", receipt);
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "timeout");
    if (t)
        cJSON_AddItemToObject(p, "VisibilityTimeout", cJSON_Duplicate(t, true));
    cJSON_Delete(j);
    if (bad || (!t && !query_int(ar, "timeout", p, "VisibilityTimeout"))) {
        cJSON_Delete(p);
        fail(c, SQS_E_INVALID_PARAMETER_VALUE, "timeout must be a number of seconds");
        return;
    }
    run(c, "ChangeMessageVisibility", p, NULL);
}

static void redrive(struct bk_conn *c, const char *name, bool start)
{
    cJSON *p = cJSON_CreateObject();
    char arn[160];
    snprintf(arn, sizeof arn, "%s%s", BK_ARN_PREFIX, name);
    cJSON_AddStringToObject(p, "SourceArn", arn);
    if (!start) {
        cJSON_AddNumberToObject(p, "MaxResults", 10);
        run(c, "ListMessageMoveTasks", p, NULL);
        return;
    }
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    const char *dst = bk__param_str(j, "destination");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(j, "rate");
    if (dst) {
        snprintf(arn, sizeof arn, "%s%s", BK_ARN_PREFIX, dst);
        cJSON_AddStringToObject(p, "DestinationArn", arn);
    }
    if (rate)
        cJSON_AddItemToObject(p, "MaxNumberOfMessagesPerSecond", cJSON_Duplicate(rate, true));
    cJSON_Delete(j);
    run(c, "StartMessageMoveTask", p, NULL);
}

/* Splits "/v1/queues/NAME/rest..." into segments; false if malformed. */
static bool segment(const char **p, const char *end, char *out, size_t cap)
{
    if (*p >= end || **p != '/')
        return false;
    const char *s = ++*p;
    while (*p < end && **p != '/')
        (*p)++;
    size_t n = (size_t)(*p - s);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] == '%' || out[i] == '?' || out[i] == '#')
            return false;
    return true;
}

void bk_native(struct bk_conn *c, const char *path, size_t plen, const char *query, size_t qlen)
{
    struct bk_server *s = c->srv;
    if (s->cfg->access_key) {
        struct sqs_error err;
        const char *body = buf_len(&c->h.body) ? buf_rptr(&c->h.body) : "";
        if (sqs_sigv4_check(&c->h.req, body, buf_len(&c->h.body), s->cfg->access_key, s->cfg->secret_key,
                            (int64_t)(ev_wall_ms() / 1000), &err) != SQS_OK) {
            bk_native_error(c, &err, false);
            return;
        }
    }
    struct admin_req ar;
    memset(&ar, 0, sizeof ar);
    ar.query = query;
    ar.query_len = qlen;
    const char *p = path + 3, *end = path + plen; /* after "/v1" */
    char seg[MAX_NAME], name[MAX_NAME], sub[MAX_NAME], receipt[128], tail[MAX_NAME];
    enum http_method m = c->h.req.m;
    if (!segment(&p, end, seg, sizeof seg) || strcmp(seg, "queues") != 0) {
        bk_respond_error(c, 404, "NotFound", "no such resource: see /v1/queues");
        return;
    }
    if (p == end || (p + 1 == end && *p == '/')) {
        if (m == HTTP_M_GET || m == HTTP_M_HEAD)
            list_queues(c, &ar);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use GET /v1/queues");
        return;
    }
    if (!segment(&p, end, name, sizeof name)) {
        fail(c, SQS_E_INVALID_PARAMETER_VALUE, "bad queue name in the path");
        return;
    }
    if (p == end) {
        cJSON *q;
        switch (m) {
        case HTTP_M_PUT:
            create_queue(c, name);
            return;
        case HTTP_M_GET:
        case HTTP_M_HEAD:
            q = queue_params(c, name);
            cJSON_AddItemToObject(q, "AttributeNames", cJSON_CreateStringArray((const char *const[]){"All"}, 1));
            run(c, "GetQueueAttributes", q, shape_attrs);
            return;
        case HTTP_M_PATCH:
            set_attributes(c, name);
            return;
        case HTTP_M_DELETE:
            run(c, "DeleteQueue", queue_params(c, name), NULL);
            return;
        default:
            bk_respond_error(c, 405, "MethodNotAllowed", "use PUT, GET, PATCH or DELETE on a queue");
            return;
        }
    }
    if (!segment(&p, end, sub, sizeof sub)) {
        bk_respond_error(c, 404, "NotFound", "no such resource");
        return;
    }
    bool post = m == HTTP_M_POST;
    if (p == end) {
        if (!strcmp(sub, "messages") && post)
            send_messages(c, name, &ar);
        else if (!strcmp(sub, "receive") && post)
            receive_messages(c, name, &ar);
        else if (!strcmp(sub, "delete") && post)
            delete_batch(c, name);
        else if (!strcmp(sub, "purge") && post)
            run(c, "PurgeQueue", queue_params(c, name), NULL);
        else if (!strcmp(sub, "redrive") && (post || m == HTTP_M_GET))
            redrive(c, name, post);
        else if (!strcmp(sub, "messages") || !strcmp(sub, "receive") || !strcmp(sub, "delete") ||
                 !strcmp(sub, "purge") || !strcmp(sub, "redrive"))
            bk_respond_error(c, 405, "MethodNotAllowed", "method not allowed here");
        else
            bk_respond_error(c, 404, "NotFound", "no such resource");
        return;
    }
    if (strcmp(sub, "messages") != 0 || !segment(&p, end, receipt, sizeof receipt)) {
        bk_respond_error(c, 404, "NotFound", "no such resource");
        return;
    }
    if (p == end) {
        if (m != HTTP_M_DELETE) {
            bk_respond_error(c, 405, "MethodNotAllowed", "use DELETE on a receipt");
            return;
        }
        cJSON *q = queue_params(c, name);
        cJSON_AddStringToObject(q, "ReceiptHandle", receipt);
        run(c, "DeleteMessage", q, NULL);
        return;
    }
    if (segment(&p, end, tail, sizeof tail) && p == end && !strcmp(tail, "visibility")) {
        if (post)
            change_visibility(c, name, receipt, &ar);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use POST on visibility");
        return;
    }
    bk_respond_error(c, 404, "NotFound", "no such resource");
}
