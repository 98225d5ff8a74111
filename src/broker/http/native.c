/* The native HTTP/JSON API, made for curl and small scripts. The routes
 * call the engine's typed calls (the same ones the SQS actions run), with
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
 *          (query: delay, group, dedup)  [the message routes: native_msg.c]
 *   POST   /v1/queues/NAME/receive               ?max=&wait=&visibility= (or JSON)
 *          [a long poll parks as the SQS API's does: bk_recv_start]
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
#include "broker/http/native.h"

#include "core/admin.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 81

void bk__native_json(struct bk_conn *c, int status, cJSON *j, bool hold)
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
    bk__native_json(c, status, j, hold);
}

void bk__native_fail(struct bk_conn *c, enum sqs_err code, const char *msg)
{
    struct sqs_error e;
    sqs_fail(&e, code, "%s", msg);
    bk_native_error(c, &e, false);
}

void bk_native_render(struct bk_conn *c, bool hold)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", true);
    bk__native_json(c, 200, o, hold);
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

/* ---- typed engine calls ---- */

/* Starts an engine call for c: false (and the error answered) when the
 * server refuses it now: a call that adds messages while the disk is low,
 * any call that writes while the log fails. */
bool bk__native_call_begin(struct bk_conn *c, bool grows, bool reads_only, struct bk_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now = ev_wall_ms();
    ctx->no_wait = true;
    char msg[256];
    switch (bk_refuse_write(c, grows, reads_only, msg, sizeof msg)) {
    case BK_REFUSE_NONE:
        return true;
    case BK_REFUSE_DISK_LOW:
        bk__native_fail(c, SQS_E_THROTTLED, msg);
        return false;
    case BK_REFUSE_LOG_FAILED:
        bk__native_fail(c, SQS_E_SERVICE_UNAVAILABLE, msg);
        return false;
    }
    return false;
}

/* Answers a finished call: o (taken; NULL: {"ok":true}) or the engine's
 * error, held until durable when the call wrote records. */
void bk__native_call_end(struct bk_conn *c, const struct bk_ctx *ctx, enum bk_err rc, const struct bk_error *be,
                     cJSON *o)
{
    if (rc != BK_OK) {
        struct sqs_error err;
        bk__sqs_error(be, &err);
        cJSON_Delete(o);
        bk_native_error(c, &err, ctx->need_sync);
    } else if (!o) {
        bk_native_render(c, ctx->need_sync);
    } else {
        bk__native_json(c, 200, o, ctx->need_sync);
    }
    if (ctx->need_sync)
        bk_commit_join(c);
}

/* The queue of the path, or NULL with the 404 answered. */
struct bk_queue *bk__native_queue(struct bk_conn *c, const char *name)
{
    struct bk_queue *q = bk_engine_find(c->srv->engine, name, strlen(name));
    if (!q)
        bk__native_fail(c, SQS_E_NONEXISTENT_QUEUE, "The specified queue does not exist.");
    return q;
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
    bk__native_json(c, 200, o, false);
}

/* PUT /v1/queues/NAME {"attributes":{..},"tags":{..}} */
static void create_queue(struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    if (bad) {
        bk__native_fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object {\"attributes\": {...}, \"tags\": {...}}");
        return;
    }
    struct bk_ctx ctx;
    if (bk__native_call_begin(c, false, false, &ctx)) {
        struct bk_queue *q;
        struct bk_error be;
        enum bk_err rc = bk_queue_ensure(c->srv->engine, &ctx, name, cJSON_GetObjectItemCaseSensitive(j, "attributes"),
                                         cJSON_GetObjectItemCaseSensitive(j, "tags"), &q, &be);
        cJSON *o = NULL;
        if (rc == BK_OK) {
            char *base = bk_base_url(c);
            char *url = xasprintf("%s/%s/%s", base, BK_ACCOUNT, q->name);
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "url", url);
            free(url);
            free(base);
        }
        bk__native_call_end(c, &ctx, rc, &be, o);
    }
    cJSON_Delete(j);
}

/* GET /v1/queues/NAME: every attribute. */
static void get_attributes(struct bk_conn *c, const char *name)
{
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (!bk__native_call_begin(c, false, true, &ctx) || !(q = bk__native_queue(c, name)))
        return;
    cJSON *all = cJSON_CreateStringArray((const char *const[]){"All"}, 1);
    cJSON *o = cJSON_CreateObject();
    struct bk_error be;
    enum bk_err rc = bk_qattrs_render(q, all, cJSON_AddObjectToObject(o, "attributes"), &be);
    cJSON_Delete(all);
    bk__native_call_end(c, &ctx, rc, &be, o);
}

/* PATCH /v1/queues/NAME {"attributes":{..}} */
static void set_attributes(struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *j = bk_native_body_object(c, &bad);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attributes");
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (!j || !cJSON_IsObject(a)) {
        bk__native_fail(c, SQS_E_MALFORMED_QUERY, "expected a JSON object {\"attributes\": {...}}");
    } else if (bk__native_call_begin(c, false, false, &ctx) && (q = bk__native_queue(c, name))) {
        struct bk_qattrs qa;
        struct bk_error be;
        bk_qattrs_copy(&qa, &q->a);
        enum bk_err rc = bk_qattrs_apply(c->srv->engine, &qa, a, q->name, false, &be);
        if (rc != BK_OK)
            bk_qattrs_free(&qa);
        else
            rc = bk_queue_set_attrs(c->srv->engine, &ctx, q, &qa, &be);
        bk__native_call_end(c, &ctx, rc, &be, NULL);
    }
    cJSON_Delete(j);
}

/* DELETE /v1/queues/NAME, POST /v1/queues/NAME/purge */
static void drop_queue(struct bk_conn *c, const char *name, bool purge)
{
    struct bk_ctx ctx;
    struct bk_queue *q;
    if (!bk__native_call_begin(c, false, false, &ctx) || !(q = bk__native_queue(c, name)))
        return;
    struct bk_error be;
    enum bk_err rc = purge ? bk_queue_purge(c->srv->engine, &ctx, q, &be)
                           : bk_queue_delete(c->srv->engine, &ctx, q, &be);
    bk__native_call_end(c, &ctx, rc, &be, NULL);
}

/* POST /v1/queues/NAME/redrive {"destination":NAME,"rate":N} starts a
 * move task; GET lists the queue's tasks. */
static void redrive(struct bk_conn *c, const char *name, bool start)
{
    struct bk_engine *e = c->srv->engine;
    struct bk_ctx ctx;
    bool bad;
    cJSON *j = start ? bk_native_body_object(c, &bad) : NULL;
    if (!bk__native_call_begin(c, false, !start, &ctx)) {
        cJSON_Delete(j);
        return;
    }
    struct bk_move_args a = {.src = bk_engine_find(e, name, strlen(name))};
    cJSON *o = cJSON_CreateObject();
    struct bk_error be;
    enum bk_err rc = BK_OK;
    if (start) {
        const char *dst = bk__param_str(j, "destination");
        struct bk_move_task *t;
        a.has_dst = dst != NULL;
        a.dst = dst ? bk_engine_find(e, dst, strlen(dst)) : NULL;
        bk__param_loose(j, "rate", &a.has_rate, &a.rate);
        if ((rc = bk_move_start(e, &ctx, &a, &t, &be)) == BK_OK)
            cJSON_AddStringToObject(o, "task", t->handle);
    } else if (!a.src) {
        rc = bk_fail(&be, BK_E_NOT_FOUND, "The resource that you specified for the SourceArn parameter "
                                          "doesn't exist.");
    } else {
        char arn[160];
        snprintf(arn, sizeof arn, "%s%s", BK_ARN_PREFIX, name);
        cJSON_AddItemToObject(o, "tasks", bk__moves_json(e, arn, 10));
    }
    cJSON_Delete(j);
    bk__native_call_end(c, &ctx, rc, &be, o);
}

bool bk__native_segment(const char **p, const char *end, char *out, size_t cap)
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
    return strpbrk(out, "%?#") == NULL;
}

bool bk__native_signed(struct bk_conn *c, struct sqs_error *err)
{
    struct bk_server *s = c->srv;
    if (!s->cfg->access_key)
        return true;
    const char *body = buf_len(&c->h.body) ? buf_rptr(&c->h.body) : "";
    return sqs_sigv4_check(&c->h.req, body, buf_len(&c->h.body), s->cfg->access_key, s->cfg->secret_key,
                           (int64_t)(ev_wall_ms() / 1000), err) == SQS_OK;
}

/* /v1/queues/NAME */
static void route_queue(struct bk_conn *c, const char *name)
{
    switch (c->h.req.m) {
    case HTTP_M_PUT:
        create_queue(c, name);
        return;
    case HTTP_M_GET:
    case HTTP_M_HEAD:
        get_attributes(c, name);
        return;
    case HTTP_M_PATCH:
        set_attributes(c, name);
        return;
    case HTTP_M_DELETE:
        drop_queue(c, name, false);
        return;
    default:
        bk_respond_error(c, 405, "MethodNotAllowed", "use PUT, GET, PATCH or DELETE on a queue");
        return;
    }
}

/* /v1/queues/NAME/SUB */
static void route_sub(struct bk_conn *c, const char *name, const char *sub, const struct admin_req *ar)
{
    bool post = c->h.req.m == HTTP_M_POST;
    if (!strcmp(sub, "messages") && post)
        bk__native_send(c, name, ar);
    else if (!strcmp(sub, "receive") && post)
        bk__native_receive(c, name, ar);
    else if (!strcmp(sub, "delete") && post)
        bk__native_delete_batch(c, name);
    else if (!strcmp(sub, "purge") && post)
        drop_queue(c, name, true);
    else if (!strcmp(sub, "redrive") && (post || c->h.req.m == HTTP_M_GET))
        redrive(c, name, post);
    else if (!strcmp(sub, "messages") || !strcmp(sub, "receive") || !strcmp(sub, "delete") ||
             !strcmp(sub, "purge") || !strcmp(sub, "redrive"))
        bk_respond_error(c, 405, "MethodNotAllowed", "method not allowed here");
    else
        bk_respond_error(c, 404, "NotFound", "no such resource");
}

/* /v1/queues/NAME/messages/RECEIPT[/visibility]; p: after RECEIPT. */
static void route_receipt(struct bk_conn *c, const char *name, const char *receipt, const char *p,
                          const char *end, const struct admin_req *ar)
{
    char tail[MAX_NAME];
    if (p == end) {
        if (c->h.req.m == HTTP_M_DELETE)
            bk__native_delete(c, name, receipt);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use DELETE on a receipt");
    } else if (bk__native_segment(&p, end, tail, sizeof tail) && p == end && !strcmp(tail, "visibility")) {
        if (c->h.req.m == HTTP_M_POST)
            bk__native_visibility(c, name, receipt, ar);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use POST on visibility");
    } else {
        bk_respond_error(c, 404, "NotFound", "no such resource");
    }
}

void bk_native(struct bk_conn *c, const char *path, size_t plen, const char *query, size_t qlen)
{
    struct sqs_error err;
    if (!bk__native_signed(c, &err)) {
        bk_native_error(c, &err, false);
        return;
    }
    struct admin_req ar;
    memset(&ar, 0, sizeof ar);
    ar.query = query;
    ar.query_len = qlen;
    const char *p = path + 3, *end = path + plen; /* after "/v1" */
    char seg[MAX_NAME], name[MAX_NAME], sub[MAX_NAME], receipt[128];
    if (!bk__native_segment(&p, end, seg, sizeof seg) || strcmp(seg, "queues") != 0) {
        bk_respond_error(c, 404, "NotFound", "no such resource: see /v1/queues");
    } else if (p == end || (p + 1 == end && *p == '/')) {
        if (c->h.req.m == HTTP_M_GET || c->h.req.m == HTTP_M_HEAD)
            list_queues(c, &ar);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use GET /v1/queues");
    } else if (!bk__native_segment(&p, end, name, sizeof name)) {
        bk__native_fail(c, SQS_E_INVALID_PARAMETER_VALUE, "bad queue name in the path");
    } else if (p == end) {
        route_queue(c, name);
    } else if (!bk__native_segment(&p, end, sub, sizeof sub)) {
        bk_respond_error(c, 404, "NotFound", "no such resource");
    } else if (p == end) {
        route_sub(c, name, sub, &ar);
    } else if (strcmp(sub, "messages") != 0 || !bk__native_segment(&p, end, receipt, sizeof receipt)) {
        bk_respond_error(c, 404, "NotFound", "no such resource");
    } else {
        route_receipt(c, name, receipt, p, end, &ar);
    }
}
