/* What a complete request does, and when its answer goes out.
 *
 * Routing: /healthz and /metrics; /v1/... is the native API (native.c);
 * everything else must be an SQS request (either AWS protocol: the SQS
 * layer recognises and decodes it into an action and canonical
 * parameters). Both APIs run the same engine actions.
 *
 * Group commit: an action that wrote records has its answer rendered into
 * c->held and the connection joins the iteration's commit group. Before
 * the loop polls, bk_before_poll() asks the store for one commit for the
 * whole group and flushes; when the store reports it durable, every
 * answer of the group is released in order. A failed commit turns each
 * held answer into a 503 with Retry-After (the client retries; nothing
 * was acknowledged).
 *
 * Disk space: while the store reports its disk low (under
 * disk_free_limit), actions that add messages are refused up front with
 * a throttling error and Retry-After (SQS RequestThrottled, which the AWS
 * SDKs retry with backoff; native 507); receives, deletes and visibility
 * changes go on. While a write of the log fails (and is being retried)
 * every action that writes is refused with ServiceUnavailable.
 *
 * Browser requests: before routing, every request is checked as
 * core/xsite.h describes: a Host naming neither an IP, localhost nor one
 * of allowed_hosts is refused (DNS rebinding), and so is a request that a
 * page of another site sent (foreign Origin, Sec-Fetch-Site cross-site or
 * same-site), whatever its method, since the SQS query API takes actions
 * on GET too. Origins listed in cors.allow_origins are let through and get
 * CORS answers: preflights (OPTIONS with Access-Control-Request-Method)
 * here, and Access-Control-Allow-Origin on every response (bk_respond).
 * Refusals are 403 in the shape of the API the path belongs to.
 *
 * Long polls: a receive with nothing to hand out parks the connection's
 * bk_waiter on the queue. bk_before_poll() serves queues the engine put
 * on its wake list (a message became receivable) and the orphans of
 * deleted queues; the connection's timer ends the wait with an empty
 * answer. */
#include "broker/http/http.h"
#include "broker/topic/topic.h"

#include "core/log.h"
#include "core/xsite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- responses ---- */

/* Headers a browser page may read from an answer: the AWS SDK for
 * JavaScript reads the request id, the query error code and the CRC. */
#define BK_CORS_EXPOSE "x-amzn-RequestId, x-amzn-query-error, x-amz-crc32, Date"

void bk_respond(struct bk_conn *c, int status, const char *ctype, const char *body, size_t len,
                const char *extra, bool hold)
{
    struct bk_server *s = c->srv;
    struct buf *o = hold ? &c->held : &c->h.out;
    buf_printf(o, "HTTP/1.1 %d %s\r\nServer: floodgate\r\nDate: %s\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\nx-amzn-RequestId: %s\r\n",
               status, http_reason(status), httpd_date(s->httpd), ctype, len, c->reqid[0] ? c->reqid : "-");
    if (extra) {
        buf_append_str(o, extra);
        buf_append(o, "\r\n", 2);
    }
    if (c->retry_after) {
        buf_append_str(o, "Retry-After: 1\r\n");
        c->retry_after = false;
    }
    if (c->cors_allow)
        buf_printf(o, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                      "Access-Control-Expose-Headers: " BK_CORS_EXPOSE "\r\n",
                   c->cors_allow);
    if (!c->h.keep_alive)
        buf_append_str(o, "Connection: close\r\n");
    else if (c->h.req.minor == 0)
        buf_append_str(o, "Connection: keep-alive\r\n");
    buf_append(o, "\r\n", 2);
    if (!c->head_only)
        buf_append(o, body, len);
    if (status >= 500)
        s->st.errors_5xx++;
    else if (status >= 400)
        s->st.errors_4xx++;
}

void bk_respond_error(struct bk_conn *c, int status, const char *code, const char *msg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    cJSON_AddStringToObject(j, "code", code);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    bk_respond(c, status, "application/json", t, strlen(t), NULL, false);
    free(t);
}

void bk_sqs_error_respond(struct bk_conn *c, const struct sqs_error *err, bool hold)
{
    struct buf b;
    buf_init(&b);
    const char *ctype = "text/xml", *extra = NULL;
    int status = 400;
    sqs_encode_error((enum sqs_proto)c->proto, err, c->reqid, &b, &ctype, &status, &extra);
    char *line = extra ? xasprintf("x-amzn-query-error: %s", extra) : NULL;
    bk_respond(c, status, ctype, buf_rptr(&b), buf_len(&b), line, hold);
    free(line);
    buf_free(&b);
}

static void sqs_result_respond(struct bk_conn *c, const char *action, const cJSON *res, bool hold)
{
    struct buf b;
    buf_init(&b);
    const char *ctype = "text/xml";
    sqs_encode_result((enum sqs_proto)c->proto, action, res, c->reqid, &b, &ctype);
    bk_respond(c, 200, ctype, buf_rptr(&b), buf_len(&b), NULL, hold);
    buf_free(&b);
}

/* Renders an action's outcome in the API of the request. */
void bk_render(struct bk_conn *c, const char *action, enum sqs_err rc, const cJSON *res,
                   const struct sqs_error *err, bool hold)
{
    if (c->api == BK_API_NATIVE) {
        if (rc == SQS_OK)
            bk_native_render(c, action, res, hold);
        else
            bk_native_error(c, err, hold);
    } else if (rc == SQS_OK) {
        sqs_result_respond(c, action, res, hold);
    } else {
        bk_sqs_error_respond(c, err, hold);
    }
}

/* ---- requests from browsers ---- */

/* Headers a preflight may ask for: what the AWS SDKs for JavaScript send
 * (SigV4 and their own x-amz-*, amz-sdk-* fields) and what the native
 * API needs. */
static bool cors_header_allowed(const char *n, size_t len)
{
    return fg_strieq(n, len, "authorization") || fg_strieq(n, len, "content-type") ||
           fg_strieq(n, len, "content-md5") || (len > 6 && strncasecmp(n, "x-amz-", 6) == 0) ||
           (len > 7 && strncasecmp(n, "x-amzn-", 7) == 0) || (len > 8 && strncasecmp(n, "amz-sdk-", 8) == 0);
}

#define BK_CORS_HEADERS \
    "authorization, content-type, x-amz-target, x-amz-date, x-amz-security-token, x-amz-user-agent, " \
    "x-amz-content-sha256, x-amzn-query-mode, amz-sdk-invocation-id, amz-sdk-request"

/* True when every name in the Access-Control-Request-Headers list v is
 * one cors_header_allowed() takes. */
static bool cors_headers_ok(const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == ','))
            i++;
        size_t b = i;
        while (i < len && v[i] != ',' && v[i] != ' ')
            i++;
        if (i > b && !cors_header_allowed(v + b, i - b))
            return false;
    }
    return true;
}

/* Answers a CORS preflight from an allowed origin. */
static void cors_preflight(struct bk_conn *c)
{
    const struct http_request *h = &c->h.req;
    const struct http_header *rh = http_find_header(h->headers, h->nheaders, "Access-Control-Request-Headers");
    char *allow;
    if (rh && rh->value_len <= 2048 && cors_headers_ok(rh->value, rh->value_len))
        allow = xasprintf("%.*s", (int)rh->value_len, rh->value);
    else
        allow = xstrdup(BK_CORS_HEADERS);
    char *extra = xasprintf("Access-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE\r\n"
                            "Access-Control-Allow-Headers: %s\r\n"
                            "Access-Control-Max-Age: 600\r\n"
                            "Vary: Access-Control-Request-Method, Access-Control-Request-Headers",
                            allow);
    bk_respond(c, 200, "text/plain", "", 0, extra, false);
    free(extra);
    free(allow);
}

/* Refuses a request with 403 in the shape of the API its path is for:
 * native JSON for /v1 and the plain endpoints, SNS XML for an SNS
 * request, SQS (XML or JSON, as the request spoke) for the rest. */
static void xsite_refuse(struct bk_conn *c, const char *path, size_t plen, const char *msg)
{
    struct bk_server *s = c->srv;
    bool v1 = (plen == 3 && !memcmp(path, "/v1", 3)) || (plen > 3 && !memcmp(path, "/v1/", 4));
    bool plain = (plen == 8 && (!memcmp(path, "/healthz", 8) || !memcmp(path, "/metrics", 8)));
    if (v1 || plain) {
        bk_respond_error(c, 403, "AccessDenied", msg);
    } else if (s->topics && tp_server_wants(c, path, plen)) {
        struct sns_error e;
        sns_fail(&e, SNS_E_AUTHORIZATION, "%s", msg);
        struct buf b;
        buf_init(&b);
        int status = 403;
        sns_encode_error(&e, c->reqid, &b, &status);
        bk_respond(c, status, "text/xml", buf_rptr(&b), buf_len(&b), NULL, false);
        buf_free(&b);
    } else {
        const struct http_request *h = &c->h.req;
        const struct http_header *ct = http_find_header(h->headers, h->nheaders, "Content-Type");
        static const char amzjson[] = "application/x-amz-json-1.0";
        bool json = http_find_header(h->headers, h->nheaders, "X-Amz-Target") ||
                    (ct && ct->value_len >= sizeof amzjson - 1 &&
                     strncasecmp(ct->value, amzjson, sizeof amzjson - 1) == 0);
        c->proto = json ? SQS_PROTO_JSON : SQS_PROTO_QUERY;
        struct sqs_error e;
        sqs_fail(&e, SQS_E_ACCESS_DENIED, "%s", msg);
        bk_sqs_error_respond(c, &e, false);
    }
}

/* Runs the browser checks on c's request for path. Returns true when it
 * may go on (with c->cors_allow set for an allowed foreign origin), false
 * when it was answered: refused, or a preflight. */
static bool xsite_pass(struct bk_conn *c, const char *path, size_t plen)
{
    const struct bk_config *cfg = c->srv->cfg;
    const struct http_request *h = &c->h.req;
    struct xsite_policy pol = {cfg->allowed_hosts, cfg->nallowed_hosts, cfg->cors_origins, cfg->ncors_origins};
    const struct http_header *origin = http_find_header(h->headers, h->nheaders, "Origin");
    bool preflight = h->m == HTTP_M_OPTIONS && origin &&
                     http_find_header(h->headers, h->nheaders, "Access-Control-Request-Method");
    enum xsite_verdict v = xsite_check(&pol, h->headers, h->nheaders, buf_len(&c->h.body),
                                       preflight ? 0 : XSITE_CHECK_ORIGIN);
    const char *allow = origin ? xsite_origin_listed(&pol, origin->value, origin->value_len) : NULL;
    if (v == XSITE_OK && preflight && !allow)
        v = XSITE_FOREIGN_ORIGIN;
    /* One loop thread serves every connection: the limiter needs no lock. */
    static struct xsite_loglimit refusals;
    uint32_t dropped;
    if (v != XSITE_OK && xsite_log_allowed(&refusals, ev_now(c->srv->loop), &dropped)) {
        char more[48] = "";
        if (dropped)
            snprintf(more, sizeof more, " (and %u more not logged)", dropped);
        const struct http_header *host = http_find_header(h->headers, h->nheaders, "Host");
        log_at(LOG_WARN, "broker: refused %.*s %.*s (Host '%.*s', Origin '%.*s'): %s%s", (int)h->method_len,
               h->method, (int)FG_MIN(plen, 200), path, host ? (int)FG_MIN(host->value_len, 200) : 0,
               host ? host->value : "", origin ? (int)FG_MIN(origin->value_len, 200) : 0,
               origin ? origin->value : "", xsite_reason(v), more);
    }
    if (v != XSITE_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s%s", xsite_reason(v),
                 v == XSITE_BAD_HOST ? "; see allowed_hosts" : "; see cors.allow_origins");
        xsite_refuse(c, path, plen, msg);
        return false;
    }
    /* "*" answers "*": no credentials are involved (SigV4 travels in
     * headers the preflight allowed, not cookies). */
    c->cors_allow = allow;
    if (preflight) {
        cors_preflight(c);
        return false;
    }
    return true;
}

/* ---- actions, commit groups, long polls ---- */

char *bk_base_url(const struct bk_conn *c)
{
    if (c->h.req.host && c->h.req.host_len)
        return xasprintf("http://%.*s", (int)c->h.req.host_len, c->h.req.host);
    return xasprintf("http://%s", c->srv->addr_str);
}

enum bk_refusal bk_refuse_write(struct bk_conn *c, bool grows, bool reads_only, char *msg, size_t cap)
{
    struct bk_server *s = c->srv;
    int serr = store_error(s->store);
    if (serr && !reads_only) {
        s->st.refused_log_failed++;
        c->retry_after = true;
        snprintf(msg, cap, "The broker cannot write its log (%s); it retries the write and takes "
                           "changes again once it succeeds.", strerror(-serr));
        return BK_REFUSE_LOG_FAILED;
    }
    if (grows && store_disk_low(s->store)) {
        struct store_stats st;
        store_get_stats(s->store, &st);
        s->st.refused_disk_low++;
        c->retry_after = true;
        snprintf(msg, cap, "The broker's disk is low on free space (%llu bytes free, disk_free_limit "
                           "%llu): new messages are refused until space returns.",
                 (unsigned long long)st.disk_free, (unsigned long long)st.disk_free_limit);
        return BK_REFUSE_DISK_LOW;
    }
    return BK_REFUSE_NONE;
}

enum sqs_err bk_run_action(struct bk_conn *c, const char *action, const cJSON *params,
                           const char *base, bool no_wait, cJSON **result, struct sqs_error *err,
                           struct bk_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now = ev_wall_ms();
    ctx->base_url = base;
    ctx->no_wait = no_wait || c->srv->stopping;
    static const char *const readers[] = {"GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags",
                                          "ListDeadLetterSourceQueues", "ListMessageMoveTasks"};
    bool reader = false;
    for (size_t i = 0; i < ARRAY_SIZE(readers); i++)
        reader |= !strcmp(action, readers[i]);
    bool grows = !strcmp(action, "SendMessage") || !strcmp(action, "SendMessageBatch");
    char msg[256];
    switch (bk_refuse_write(c, grows, reader, msg, sizeof msg)) {
    case BK_REFUSE_NONE:
        break;
    case BK_REFUSE_DISK_LOW:
        *result = NULL;
        return sqs_fail(err, SQS_E_THROTTLED, "%s", msg);
    case BK_REFUSE_LOG_FAILED:
        *result = NULL;
        return sqs_fail(err, SQS_E_SERVICE_UNAVAILABLE, "%s", msg);
    }
    return bk_action(c->srv->engine, ctx, action, params, result, err);
}

void bk_commit_join(struct bk_conn *c)
{
    struct bk_server *s = c->srv;
    if (!s->batch) {
        s->batch = xcalloc(1, sizeof *s->batch);
        s->batch->srv = s;
        s->batch->started_ns = ev_clock_ns();
    }
    struct bk_commit *b = s->batch;
    c->wait = BK_WAIT_COMMIT;
    httpd_hold(&c->h, false);
    httpd_ref(&c->h);
    c->cnext = NULL;
    if (b->tail)
        b->tail->cnext = c;
    else
        b->head = c;
    b->tail = c;
    b->n++;
}

void bk_commit_abandon(struct bk_server *s)
{
    if (!s->batch)
        return;
    for (struct bk_conn *c = s->batch->head; c; c = c->cnext)
        httpd_unref(&c->h);
    free(s->batch);
    s->batch = NULL;
}

static void on_commit(void *ud, int err)
{
    struct bk_commit *b = ud;
    struct bk_server *s = b->srv;
    s->commits_pending--;
    s->st.commits++;
    s->st.commit_acked += b->n;
    s->st.last_group = b->n;
    metrics_hist_observe_ns(&s->st.commit_latency, ev_clock_ns() - b->started_ns);
    if (err)
        log_at(LOG_ERROR, "broker: log commit failed: %s; %u answers become errors", strerror(-err), b->n);
    struct bk_conn *c = b->head, *next;
    for (; c; c = next) {
        next = c->cnext;
        c->cnext = NULL;
        if (!c->h.dead) {
            if (err) {
                /* Not acknowledged: the client retries (the records may
                 * still become durable when the store's retry succeeds,
                 * as after any timeout). */
                struct sqs_error e;
                sqs_fail(&e, SQS_E_SERVICE_UNAVAILABLE, "The broker could not make the change durable: %s.",
                         strerror(-err));
                buf_reset(&c->held);
                c->retry_after = true;
                bk_render(c, "", SQS_E_SERVICE_UNAVAILABLE, NULL, &e, false);
            } else {
                buf_append(&c->h.out, buf_rptr(&c->held), buf_len(&c->held));
            }
            buf_reset(&c->held);
            buf_shrink_if_empty(&c->held, 4096);
            c->wait = BK_WAIT_NONE;
            httpd_release(&c->h);
        }
        httpd_unref(&c->h);
    }
    free(b);
}

void bk_poll_park(struct bk_conn *c, struct bk_ctx *ctx, const char *action, cJSON *params, char *base)
{
    struct bk_server *s = c->srv;
    c->poll_params = params;
    snprintf(c->poll_action, sizeof c->poll_action, "%s", action);
    c->poll_base = base;
    c->wait = BK_WAIT_POLL;
    httpd_hold(&c->h, true); /* a client that hangs up ends its poll */
    c->poll_deadline = ev_now(s->loop) + ctx->wait_ms;
    bk_waiter_add(ctx->wait_q, &c->waiter);
    s->nwaiters++;
    s->st.polls++;
    ev_timer_start_at(s->loop, &c->poll_timer, c->poll_deadline);
}

void bk_poll_cancel(struct bk_conn *c)
{
    if (c->wait != BK_WAIT_POLL)
        return;
    bk_waiter_remove(c->srv->engine, &c->waiter);
    ev_timer_stop(c->srv->loop, &c->poll_timer);
    c->srv->nwaiters--;
    c->wait = BK_WAIT_NONE;
    cJSON_Delete(c->poll_params);
    c->poll_params = NULL;
    free(c->poll_base);
    c->poll_base = NULL;
}

/* Runs a parked receive again: woken (no_wait false: may park again for
 * the rest of its time) or at its deadline. */
static void poll_run(struct bk_conn *c, bool no_wait)
{
    struct bk_server *s = c->srv;
    ASSERT(c->wait == BK_WAIT_POLL);
    bk_waiter_remove(s->engine, &c->waiter);
    uint64_t now = ev_now(s->loop);
    if (c->poll_deadline <= now)
        no_wait = true;
    struct bk_ctx ctx;
    struct sqs_error err;
    cJSON *res = NULL;
    enum sqs_err rc = bk_run_action(c, c->poll_action, c->poll_params, c->poll_base, no_wait, &res, &err, &ctx);
    if (rc == SQS_OK && ctx.wait_ms) {
        /* Woken, but the message went elsewhere first: wait on. */
        bk_waiter_add(ctx.wait_q, &c->waiter);
        return;
    }
    s->nwaiters--;
    ev_timer_stop(s->loop, &c->poll_timer);
    c->wait = BK_WAIT_NONE;
    bk_render(c, c->poll_action, rc, res, &err, false);
    cJSON_Delete(res);
    cJSON_Delete(c->poll_params);
    c->poll_params = NULL;
    free(c->poll_base);
    c->poll_base = NULL;
    httpd_release(&c->h);
}

void bk_poll_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct bk_conn *c = t->ud;
    FG_UNUSED(loop);
    c->srv->st.polls_timed_out++;
    poll_run(c, true);
}

void bk_polls_finish(struct bk_server *s)
{
    for (struct httpd_conn *hc = httpd_conns(s->httpd), *next; hc; hc = next) {
        next = hc->next;
        struct bk_conn *c = (struct bk_conn *)hc;
        if (c->wait == BK_WAIT_POLL)
            poll_run(c, true);
    }
}

/* Serves the long polls the engine woke: while a woken queue has both a
 * waiter and something to receive, the first waiter receives. */
static void serve_wakes(struct bk_server *s)
{
    struct bk_engine *e = s->engine;
    struct bk_queue *q;
    while ((q = bk_engine_pop_wake(e))) {
        while (q->whead && bk_queue_receivable(q)) {
            struct bk_conn *c = container_of(q->whead, struct bk_conn, waiter);
            s->st.polls_woken++;
            poll_run(c, false);
        }
    }
    struct bk_waiter *w;
    while ((w = bk_engine_pop_orphan(e))) {
        struct bk_conn *c = container_of(w, struct bk_conn, waiter);
        poll_run(c, true);
    }
}

void bk_before_poll(struct bk_server *s)
{
    /* store_flush() runs the callbacks already due, which release answers
     * and let their connections go on with pipelined requests: those may
     * append and wait too, so go round until nothing new is waiting (a
     * group left without its commit request would wait for an unrelated
     * wakeup). Each round needs new requests already buffered, so this
     * ends quickly; the bound is a guard. */
    for (int round = 0; round < 64; round++) {
        serve_wakes(s);
        if (s->batch) {
            struct bk_commit *b = s->batch;
            s->batch = NULL;
            s->commits_pending++;
            store_commit(s->store, on_commit, b);
        }
        store_flush(s->store);
        if (!s->batch && !s->engine->wake_head && !s->engine->orphans)
            break;
    }
    httpd_free_dead(s->httpd);
}

/* ---- routing ---- */

static void dispatch_sqs(struct bk_conn *c)
{
    struct bk_server *s = c->srv;
    const char *body = buf_len(&c->h.body) ? buf_rptr(&c->h.body) : "";
    size_t blen = buf_len(&c->h.body);
    c->api = BK_API_SQS;
    c->proto = SQS_PROTO_QUERY;
    if (!sqs_is_sqs_request(&c->h.req, body, blen)) {
        if (c->h.req.m == HTTP_M_GET || c->h.req.m == HTTP_M_HEAD)
            bk_respond_error(c, 404, "NotFound", "no such resource: try /v1/queues, /metrics or the SQS API");
        else
            bk_respond_error(c, 400, "MissingAction",
                             "not an SQS request (no Action parameter or X-Amz-Target header)");
        return;
    }
    s->st.sqs_requests++;
    enum sqs_proto proto = 0;
    char action[64] = "";
    cJSON *params = NULL;
    struct sqs_error err = {SQS_OK, ""};
    enum sqs_err rc = sqs_decode(&c->h.req, body, blen, &proto, action, &params, &err);
    if (proto)
        c->proto = proto;
    if (rc == SQS_OK && s->cfg->access_key)
        rc = sqs_sigv4_check(&c->h.req, body, blen, s->cfg->access_key, s->cfg->secret_key,
                             (int64_t)(ev_wall_ms() / 1000), &err);
    if (rc != SQS_OK) {
        cJSON_Delete(params);
        bk_sqs_error_respond(c, &err, false);
        return;
    }
    char *base = bk_base_url(c);
    struct bk_ctx ctx;
    cJSON *res = NULL;
    rc = bk_run_action(c, action, params, base, false, &res, &err, &ctx);
    if (rc == SQS_OK && ctx.wait_ms) {
        if (s->nwaiters < s->cfg->limits.max_waiters) {
            bk_poll_park(c, &ctx, action, params, base);
            return;
        }
        rc = bk_run_action(c, action, params, base, true, &res, &err, &ctx);
    }
    bk_render(c, action, rc, res, &err, ctx.need_sync);
    if (ctx.need_sync)
        bk_commit_join(c);
    cJSON_Delete(res);
    cJSON_Delete(params);
    free(base);
}

static void dispatch_health(struct bk_conn *c)
{
    struct bk_server *s = c->srv;
    int err = store_error(s->store);
    char body[160];
    int n;
    if (err)
        n = snprintf(body, sizeof body, "{\"status\":\"failing\",\"error\":\"log: %s\"}\n", strerror(-err));
    else
        n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"queues\":%zu,\"messages\":%llu}\n",
                     s->engine->nqueues, (unsigned long long)s->engine->nmsgs);
    bk_respond(c, err ? 503 : 200, "application/json", body, (size_t)n, NULL, false);
}

void bk_dispatch(struct httpd_conn *hc)
{
    struct bk_conn *c = (struct bk_conn *)hc;
    struct bk_server *s = c->srv;
    const struct http_request *h = &c->h.req;
    c->head_only = h->m == HTTP_M_HEAD;
    bk_request_id(++s->req_seq, c->reqid);
    c->cors_allow = NULL;

    /* Path and query of the target (origin form; absolute form too). */
    const char *t = h->target;
    size_t tl = h->target_len, i = 0;
    if (tl >= 7 && fg_strieq(t, 7, "http://")) {
        i = 7;
        while (i < tl && t[i] != '/' && t[i] != '?')
            i++;
    }
    size_t q = i;
    while (q < tl && t[q] != '?')
        q++;
    const char *path = q > i ? t + i : "/";
    size_t plen = q > i ? q - i : 1;
    const char *query = q < tl ? t + q + 1 : "";
    size_t qlen = q < tl ? tl - q - 1 : 0;
    bool get = h->m == HTTP_M_GET || h->m == HTTP_M_HEAD;

    if (!xsite_pass(c, path, plen))
        return;
    if (plen == 8 && !memcmp(path, "/healthz", 8) && get) {
        dispatch_health(c);
    } else if (plen == 8 && !memcmp(path, "/metrics", 8) && get) {
        struct buf b;
        buf_init(&b);
        bk_metrics_render(s, &b);
        bk_respond(c, 200, METRICS_CONTENT_TYPE, buf_rptr(&b), buf_len(&b), NULL, false);
        buf_free(&b);
    } else if (s->topics && tp_server_wants(c, path, plen)) {
        tp_server_dispatch(s->topics, c, path, plen, query, qlen);
    } else if ((plen == 3 && !memcmp(path, "/v1", 3)) || (plen > 3 && !memcmp(path, "/v1/", 4))) {
        c->api = BK_API_NATIVE;
        s->st.native_requests++;
        bk_native(c, path, plen, query, qlen);
    } else {
        dispatch_sqs(c);
    }
}
