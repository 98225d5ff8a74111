/* echo on core/httpd: the hooks and limits of a worker's server.
 *
 * httpd owns the connection (accepting, reading, framing, pipelining,
 * keep-alive, lingering close, buffers that an idle connection does not
 * own); echo decides what to answer and when:
 *   - bodies are counted, never stored: on_head passes every body to a
 *     body sink that adds up its payload bytes, so an upload of any size
 *     runs in bounded memory (and there is no 413);
 *   - a request with latency is held (httpd_hold) and answered from the
 *     connection's timer; nothing behind it is parsed meanwhile;
 *   - a --size body above ECHO_INLINE_BODY is streamed from the shared
 *     block (httpd_stream), never copied into the output.
 * echo has no timeouts of its own (they are 0, none, in echo__limits).
 *
 * Capacity model (--max-concurrency N): the latency (+ jitter) becomes a
 * service time, and a worker serves at most N requests at once, like a
 * pool of N threads; a request that finds every slot taken waits in the
 * worker's FIFO (held, no timer), which has no bound. So the worker's
 * capacity is N / latency, and past it latency grows without bound, as a
 * real service's does. A request whose connection closes while it waits
 * or is served (the client gave up) is not taken back: it becomes a ghost
 * that still takes its slot for its service time (on_close keeps the
 * struct with httpd_ref), so a client's timeouts do not relieve an
 * overloaded server, they waste its work. */
#include "echo/echo.h"

#include <string.h>

/* ---- capacity model (--max-concurrency) ---- */

static void job_start(struct echo_conn *c)
{
    struct echo_worker *w = c->w;
    w->busy++;
    c->job = ECHO_JOB_SERVING;
    ev_timer_start(w->loop, &c->timer, c->service_ms);
}

/* Hands freed slots to the oldest waiters, ghosts included. */
static void job_start_next(struct echo_worker *w)
{
    while (w->busy < w->cfg->max_concurrency && w->q_head) {
        struct echo_conn *c = w->q_head;
        w->q_head = c->qnext;
        if (!w->q_head)
            w->q_tail = NULL;
        c->qnext = NULL;
        w->queued--;
        job_start(c);
    }
}

/* The request enters the model: a slot if one is free, else the tail of
 * the FIFO, which has no bound, like a thread pool's queue, so that an
 * overloaded server answers later and later. */
static void job_submit(struct echo_conn *c, uint32_t service_ms)
{
    struct echo_worker *w = c->w;
    c->service_ms = service_ms;
    if (w->busy < w->cfg->max_concurrency && !w->q_head) {
        job_start(c);
        return;
    }
    c->job = ECHO_JOB_QUEUED;
    c->qnext = NULL;
    if (w->q_tail)
        w->q_tail->qnext = c;
    else
        w->q_head = c;
    w->q_tail = c;
    w->queued++;
}

/* A service time ended: frees the slot. */
static void job_done(struct echo_conn *c)
{
    ASSERT(c->job == ECHO_JOB_SERVING && c->w->busy > 0);
    c->job = ECHO_JOB_NONE;
    c->w->busy--;
}

static void ghost_unlink(struct echo_conn *c)
{
    struct echo_worker *w = c->w;
    if (c->gprev)
        c->gprev->gnext = c->gnext;
    else
        w->ghosts = c->gnext;
    if (c->gnext)
        c->gnext->gprev = c->gprev;
    c->gprev = c->gnext = NULL;
}

void echo__ghosts_free(struct echo_worker *w)
{
    while (w->ghosts) {
        struct echo_conn *c = w->ghosts;
        ev_timer_stop(w->loop, &c->timer);
        ghost_unlink(c);
        httpd_unref(&c->h);
    }
    w->q_head = w->q_tail = NULL;
    w->queued = 0;
    w->busy = 0;
}

/* ---- answers ---- */

/* The large --size body, the ECHO_BLOCK_SIZE pattern repeated: up to
 * ECHO_BLOCK_REPEAT of it at a time from the shared block. */
static size_t big_refill(struct httpd_conn *hc, const char **p)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    uint64_t off = c->big_off % ECHO_BLOCK_SIZE;
    size_t n = (size_t)FG_MIN(c->big_left, (uint64_t)ECHO_BLOCK_SIZE * ECHO_BLOCK_REPEAT - off);
    *p = c->w->cfg->block + off;
    c->big_off += n;
    c->big_left -= n;
    return n;
}

static void conn_reply(struct echo_conn *c)
{
    c->big_left = 0;
    echo__reply(c, &c->h.out);
    if (c->big_left)
        httpd_stream(&c->h, big_refill);
}

static void count_payload(void *ud, const char *p, size_t n)
{
    struct echo_conn *c = ud;
    FG_UNUSED(p);
    c->received += n;
}

static void on_head(struct httpd_conn *hc)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    c->received = 0;
    httpd_body_sink(hc, count_payload, c);
}

/* The request (head and body) has been read: answer now, after the
 * configured latency, or, with a concurrency limit, after its service
 * time in the capacity model. */
static void on_request(struct httpd_conn *hc)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    echo__route(c, &hc->req, buf_rptr(&hc->head), buf_len(&hc->head));
    uint32_t d = echo__delay(c);
    if (!d) {
        conn_reply(c);
        return;
    }
    httpd_hold(hc, false);
    if (c->w->cfg->max_concurrency)
        job_submit(c, d);
    else
        ev_timer_start(c->w->loop, &c->timer, d);
}

/* Latency or service time over: answer, or, for a ghost, free the slot. */
static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct echo_conn *c = t->ud;
    struct echo_worker *w = c->w;
    FG_UNUSED(loop);
    bool job = c->job == ECHO_JOB_SERVING;
    if (job)
        job_done(c);
    if (c->h.dead) {
        ghost_unlink(c);
        httpd_unref(&c->h); /* freed before the next poll */
    } else {
        conn_reply(c);
        httpd_release(&c->h);
    }
    if (job)
        job_start_next(w);
}

/* A request that could not be parsed (400, 431, 501, 505): a closing
 * error answer in echo's format. */
static void on_error(struct httpd_conn *hc, int status, const char *msg)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    FG_UNUSED(msg);
    echo__reply_error(c, status);
    conn_reply(c);
}

static void on_open(struct httpd_conn *hc)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    c->w = httpd_ud(hc->srv);
    ev_timer_init(&c->timer, on_timer, c);
}

/* A request still queued or in service keeps its place (see the top). */
static void on_close(struct httpd_conn *hc)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    struct echo_worker *w = c->w;
    if (c->job == ECHO_JOB_NONE) {
        ev_timer_stop(w->loop, &c->timer);
        return;
    }
    httpd_ref(hc);
    c->gprev = NULL;
    c->gnext = w->ghosts;
    if (w->ghosts)
        w->ghosts->gprev = c;
    w->ghosts = c;
}

static void on_free(struct httpd_conn *hc)
{
    struct echo_conn *c = (struct echo_conn *)hc;
    buf_free(&c->stash);
}

const struct httpd_limits echo__limits = {
    .max_conns = UINT32_MAX,
    .max_head = ECHO_MAX_HEAD,
    .max_headers = ECHO_MAX_HEADERS,
    .max_body = 0, /* every body goes to the sink */
    .max_trailer = ECHO_MAX_TRAILER,
    .linger_ms = ECHO_LINGER_MS,
    .read_chunk = ECHO_READ_CHUNK,
    .in_max = ECHO_MAX_HEAD + ECHO_READ_CHUNK,
    .held_in_max = ECHO_MAX_HEAD + ECHO_READ_CHUNK,
    .out_high = ECHO_OUT_HIGH,
    .idle_release = true,
    .quick_close = true, /* linger only after errors, as echo always did */
};

const struct httpd_hooks echo__hooks = {
    .conn_size = sizeof(struct echo_conn),
    .on_request = on_request,
    .on_error = on_error,
    .on_head = on_head,
    .on_open = on_open,
    .on_close = on_close,
    .on_free = on_free,
};
