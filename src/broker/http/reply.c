/* The services request handlers call: answers in the API of the request,
 * running actions, and when an answer goes out.
 *
 * Group commit: an action that wrote records has its answer rendered into
 * c->held, the connection is held (core/httpd.h) and joins the
 * iteration's commit group. Before the loop polls, bk_before_poll() asks
 * the store for one commit for the whole group and flushes; when the
 * store reports it durable, every answer of the group is released in
 * order. A failed commit turns each held answer into a 503 with
 * Retry-After (the client retries; nothing was acknowledged).
 *
 * Disk space: while the store reports its disk low (under
 * disk_free_limit), actions that add messages are refused up front with
 * a throttling error and Retry-After (SQS RequestThrottled, which the AWS
 * SDKs retry with backoff; native 507); receives, deletes and visibility
 * changes go on. While a write of the log fails (and is being retried)
 * every action that writes is refused with ServiceUnavailable.
 *
 * Receives and long polls: both APIs decode a receive into a typed
 * struct bk_recv (queue id, bk_receive_args, the SQS attribute selection,
 * and the render callback of the API: SQS protocols here, native JSON in
 * native_msg.c); bk_recv_start runs bk_receive. One with nothing to hand
 * out parks the connection's bk_waiter on the queue, keeps the bk_recv
 * and holds the connection; each later run finds the queue by its id. bk_before_poll()
 * serves queues the engine put on its wake list (a message became
 * receivable) and the orphans of deleted queues; the poll's timer ends
 * the wait with an empty answer. */
#include "broker/http/http.h"

#include "core/log.h"

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
            bk_native_render(c, hold);
        else
            bk_native_error(c, err, hold);
    } else if (rc == SQS_OK) {
        sqs_result_respond(c, action, res, hold);
    } else {
        bk_sqs_error_respond(c, err, hold);
    }
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

enum sqs_err bk_refused(struct bk_conn *c, bool grows, bool reads_only, struct sqs_error *err)
{
    char msg[256];
    switch (bk_refuse_write(c, grows, reads_only, msg, sizeof msg)) {
    case BK_REFUSE_DISK_LOW:
        return sqs_fail(err, SQS_E_THROTTLED, "%s", msg);
    case BK_REFUSE_LOG_FAILED:
        return sqs_fail(err, SQS_E_SERVICE_UNAVAILABLE, "%s", msg);
    case BK_REFUSE_NONE:
        break;
    }
    return SQS_OK;
}

enum sqs_err bk_run_action(struct bk_conn *c, const char *action, const cJSON *params,
                           const char *base, cJSON **result, struct sqs_error *err, struct bk_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now = ev_wall_ms();
    ctx->base_url = base;
    ctx->no_wait = true;
    *result = NULL;
    static const char *const readers[] = {"GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags",
                                          "ListDeadLetterSourceQueues", "ListMessageMoveTasks"};
    bool reader = false;
    for (size_t i = 0; i < ARRAY_SIZE(readers); i++)
        reader |= !strcmp(action, readers[i]);
    bool grows = !strcmp(action, "SendMessage") || !strcmp(action, "SendMessageBatch");
    enum sqs_err rc = bk_refused(c, grows, reader, err);
    if (rc != SQS_OK)
        return rc;
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

/* Parks c's receive rv (taken over) on the queue ctx names. */
static void poll_park(struct bk_conn *c, const struct bk_ctx *ctx, struct bk_recv *rv)
{
    struct bk_server *s = c->srv;
    c->poll = *rv;
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
    bk__recv_select_free(&c->poll.sel);
}

/* One run of a receive (no_wait: it may not ask to wait): refused while
 * the log fails, the queue gone, the engine's error, or its messages in
 * r (freed by the caller) or ctx->wait_ms set. */
static enum sqs_err recv_run(struct bk_conn *c, const struct bk_recv *rv, bool no_wait, struct bk_ctx *ctx,
                             struct bk_receive_result *r, struct sqs_error *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now = ev_wall_ms();
    ctx->no_wait = no_wait || c->srv->stopping;
    r->n = 0;
    enum sqs_err rc = bk_refused(c, false, false, err);
    if (rc != SQS_OK)
        return rc;
    struct bk_queue *q = bk_engine_find_id(c->srv->engine, rv->qid);
    if (!q)
        return sqs_fail(err, SQS_E_NONEXISTENT_QUEUE, "The specified queue does not exist.");
    struct bk_error be;
    if (bk_receive(c->srv->engine, ctx, q, &rv->args, r, &be) != BK_OK)
        return bk__sqs_error(&be, err);
    return SQS_OK;
}

/* Answers a finished receive in the API of the request. */
static void recv_answer(struct bk_conn *c, const struct bk_recv *rv, enum sqs_err rc,
                        struct bk_receive_result *r, const struct sqs_error *err, bool hold)
{
    if (rc == SQS_OK)
        rv->render(c, rv, r, hold);
    else
        bk_render(c, "", rc, NULL, err, hold);
    bk_receive_done(r);
}

void bk_recv_start(struct bk_conn *c, struct bk_recv *rv)
{
    struct bk_ctx ctx;
    struct bk_receive_result r;
    struct sqs_error err;
    enum sqs_err rc = recv_run(c, rv, false, &ctx, &r, &err);
    if (rc == SQS_OK && ctx.wait_ms) {
        if (c->srv->nwaiters < c->srv->cfg->limits.max_waiters) {
            poll_park(c, &ctx, rv);
            return;
        }
        rc = recv_run(c, rv, true, &ctx, &r, &err);
    }
    recv_answer(c, rv, rc, &r, &err, ctx.need_sync);
    if (ctx.need_sync)
        bk_commit_join(c);
    bk__recv_select_free(&rv->sel);
}

/* SQS ReceiveMessage: its result in the protocol of the request. */
static void sqs_recv_render(struct bk_conn *c, const struct bk_recv *rv, const struct bk_receive_result *r,
                            bool hold)
{
    cJSON *res = bk__receive_render(c->srv->engine, r, &rv->sel);
    sqs_result_respond(c, "ReceiveMessage", res, hold);
    cJSON_Delete(res);
}

void bk_recv_sqs(struct bk_conn *c, const cJSON *params)
{
    struct bk_recv rv = {.render = sqs_recv_render};
    struct bk_queue *q;
    struct sqs_error err;
    if (bk_refused(c, false, false, &err) != SQS_OK ||
        bk__receive_args(c->srv->engine, params, &q, &rv.args, &rv.sel, &err) != SQS_OK) {
        bk_sqs_error_respond(c, &err, false);
        return;
    }
    rv.qid = q->qid;
    bk_recv_start(c, &rv);
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
    struct bk_receive_result r;
    struct sqs_error err;
    enum sqs_err rc = recv_run(c, &c->poll, no_wait, &ctx, &r, &err);
    if (rc == SQS_OK && ctx.wait_ms) {
        /* Woken, but the message went elsewhere first: wait on. */
        bk_waiter_add(ctx.wait_q, &c->waiter);
        return;
    }
    s->nwaiters--;
    ev_timer_stop(s->loop, &c->poll_timer);
    c->wait = BK_WAIT_NONE;
    recv_answer(c, &c->poll, rc, &r, &err, false);
    bk__recv_select_free(&c->poll.sel);
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
