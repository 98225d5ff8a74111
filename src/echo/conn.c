/* One echo connection: an HTTP/1.1 server state machine over a
 * non-blocking socket, driven by the worker's level-triggered loop.
 *
 *   HEAD --head parsed--> BODY --body consumed--> [WAIT: latency timer]
 *        --> response queued --> HEAD (keep-alive) or DONE
 *   DONE --output written--> closed, or LINGER when input may be unread
 *   LINGER --EOF, error or ECHO_LINGER_MS--> closed
 *
 * Input: a read goes into the worker's scratch when the connection has no
 * leftover, so an idle connection owns no buffer; only bytes that cannot
 * be processed yet (a partial head, requests pipelined behind a response
 * that is waiting) are copied into c->in. Bodies are consumed as they
 * arrive (counted, never stored), so an upload of any size runs in
 * bounded memory.
 *
 * Output: responses produced during one callback are appended to the
 * worker's output scratch and written with one writev() at the end,
 * together with the large body of the last one if it has one. Whatever the
 * socket does not take is copied into c->out, and the connection stops
 * parsing new requests until it is written (one outstanding response at a
 * time when a latency timer or a slow reader holds it back).
 *
 * Closing: echo__conn_close() closes the fd at once but the struct stays
 * valid until the worker's before-poll hook frees it, because callers up
 * the stack may still hold it.
 *
 * Capacity model (--max-concurrency N): the latency (+ jitter) becomes a
 * service time, and a worker serves at most N requests at once, like a
 * pool of N threads; a request that finds every slot taken waits in the
 * worker's FIFO (WAIT, no timer), which has no bound. So the worker's
 * capacity is N / latency, and past it latency grows without bound, as a
 * real service's does. A request whose connection closes while it waits
 * or is served (the client gave up) is not taken back: it becomes a ghost
 * that still takes its slot for its service time, so a client's timeouts
 * do not relieve an overloaded server, they waste its work. */
#include "echo/echo.h"

#include "core/httpd.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ECHO_SPARE_MAX 256 /* freed connection structs a worker keeps for reuse */
#define ECHO_BIG_IOV 8     /* block-sized iovecs per writev for a large body */

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_on_io(struct ev_loop *loop, int fd, void *ud, int events);
static void conn_on_timer(struct ev_loop *loop, struct ev_timer *t);

/* Output that a previous write left over. */
static bool conn_pending(const struct echo_conn *c) { return buf_len(&c->out) || c->big_left; }

static void count_payload(void *ud, const char *p, size_t n)
{
    struct echo_conn *c = ud;
    FG_UNUSED(p);
    c->received += n;
}

/* Queues the current request's response; the connection then waits for
 * the next request or closes once the output is written. */
static void conn_reply(struct echo_conn *c)
{
    echo__reply(c, &c->w->wout);
    c->state = c->keep_alive ? ECHO_HEAD : ECHO_DONE;
}

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
    c->state = ECHO_WAIT;
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
    if (c->prev)
        c->prev->next = c->next;
    else
        w->ghosts = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* The request (head and body) has been read: answer now, after the
 * configured latency, or, with a concurrency limit, after its service
 * time in the capacity model. */
static void conn_request_done(struct echo_conn *c)
{
    uint32_t d = echo__delay(c);
    if (d && c->w->cfg->max_concurrency) {
        job_submit(c, d);
        return;
    }
    if (d) {
        c->state = ECHO_WAIT;
        ev_timer_start(c->w->loop, &c->timer, d);
        return;
    }
    conn_reply(c);
}

/* Queues a closing error response for a request that cannot be parsed. */
static void conn_fail(struct echo_conn *c, int err)
{
    int status = http_error_status(err);
    echo__reply_error(c, status);
    echo__reply(c, &c->w->wout);
    c->state = ECHO_DONE;
    c->linger = true;
}

/* Runs the request state machine over p[0..len), which is either the
 * worker's read scratch or c->in (not modified here). Returns the bytes
 * consumed; the caller keeps the rest. Stops early at an incomplete head,
 * on a latency wait, when queued output must be written first (setting
 * c->stalled), or after the last response (the rest is discarded). */
static size_t conn_process(struct echo_conn *c, const char *p, size_t len)
{
    struct echo_worker *w = c->w;
    size_t off = 0;
    for (;;) {
        switch (c->state) {
        case ECHO_HEAD: {
            if (off == len)
                return off;
            if (conn_pending(c) || buf_len(&w->wout) >= ECHO_OUT_HIGH) {
                c->stalled = true;
                return off;
            }
            struct http_header hdrs[ECHO_MAX_HEADERS];
            struct http_request req;
            int n = http_parse_request(p + off, len - off, &req, hdrs, ECHO_MAX_HEADERS, ECHO_MAX_HEAD);
            if (n == HTTP_INCOMPLETE)
                return off;
            if (n < 0) {
                conn_fail(c, n);
                return len;
            }
            echo__route(c, &req, p + off, (size_t)n);
            off += (size_t)n;
            if (c->body_mode == HTTP_BODY_CHUNKED || c->body_left) {
                c->state = ECHO_BODY;
                /* Only when the client is actually holding the body back. */
                if ((req.flags & HTTP_F_EXPECT_CONTINUE) && req.minor >= 1 && off == len)
                    buf_append(&w->wout, continue_100, sizeof continue_100 - 1);
            } else {
                conn_request_done(c);
            }
            break;
        }
        case ECHO_BODY: {
            if (off == len)
                return off;
            bool done;
            ssize_t r = httpd_body_feed((enum http_body)c->body_mode, &c->body_left, &c->chunked, p + off,
                                        len - off, count_payload, c, &done);
            if (r < 0) {
                conn_fail(c, HTTP_EBAD);
                return len;
            }
            off += (size_t)r;
            if (!done)
                return off;
            conn_request_done(c);
            break;
        }
        case ECHO_DONE:
            if (off < len)
                c->linger = true; /* pipelined requests after the last one */
            return len;
        default: /* WAIT, LINGER, CLOSED */
            return off;
        }
    }
}

/* Writes the queued output with one writev(). Returns false when the
 * connection was closed on a write error. Leaves the worker's output
 * scratch empty. */
static bool conn_flush(struct echo_conn *c)
{
    struct echo_worker *w = c->w;
    struct buf *src = &w->wout;
    if (buf_len(&c->out)) {
        if (buf_len(&w->wout)) {
            /* New output (an error response) behind an unwritten rest;
             * a large body is never followed by more output. */
            ASSERT(!c->big_left);
            buf_append(&c->out, buf_rptr(&w->wout), buf_len(&w->wout));
            buf_reset(&w->wout);
        }
        src = &c->out;
    }
    if (!buf_len(src) && !c->big_left)
        return true;

    struct iovec iov[1 + ECHO_BIG_IOV];
    int cnt = 0;
    if (buf_len(src))
        iov[cnt++] = (struct iovec){.iov_base = buf_rptr(src), .iov_len = buf_len(src)};
    uint64_t boff = c->big_off % ECHO_BLOCK_SIZE, left = c->big_left;
    while (left && cnt < (int)ARRAY_SIZE(iov)) {
        size_t n = (size_t)FG_MIN(left, (uint64_t)(ECHO_BLOCK_SIZE - boff));
        iov[cnt++] = (struct iovec){.iov_base = w->cfg->block + boff, .iov_len = n};
        left -= n;
        boff = 0;
    }
    ssize_t n = writev(c->fd, iov, cnt);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            buf_reset(&w->wout);
            echo__conn_close(c);
            return false;
        }
        n = 0;
    }
    size_t head = FG_MIN((size_t)n, buf_len(src));
    buf_consume(src, head);
    c->big_off += (size_t)n - head;
    c->big_left -= (size_t)n - head;
    if (src == &w->wout && buf_len(&w->wout))
        buf_append(&c->out, buf_rptr(&w->wout), buf_len(&w->wout));
    buf_reset(&w->wout);
    buf_shrink_if_empty(&w->wout, ECHO_OUT_KEEP);
    if (!buf_len(&c->out))
        buf_free(&c->out);
    return true;
}

static void conn_update_mask(struct echo_conn *c)
{
    bool pending = conn_pending(c);
    int m = pending ? EV_WRITE : EV_NONE;
    switch (c->state) {
    case ECHO_HEAD: /* no new requests while responses wait to be written */
        if (!pending)
            m |= EV_READ;
        break;
    case ECHO_BODY:
    case ECHO_LINGER:
        m |= EV_READ;
        break;
    default: /* WAIT and DONE read nothing; errors and hang-ups still report */
        break;
    }
    if (ev_io_set(c->w->loop, c->fd, m) != 0)
        echo__conn_close(c);
}

/* The last response is written: close, or shut down the write side and
 * discard input for a while so that unread bytes do not turn the close
 * into a reset that could destroy the response before the client reads
 * it. */
static void conn_finish(struct echo_conn *c)
{
    if (!c->linger && !buf_len(&c->in)) {
        echo__conn_close(c);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = ECHO_LINGER;
    buf_free(&c->in);
    ev_timer_start(c->w->loop, &c->timer, ECHO_LINGER_MS);
}

/* Writes queued output and, each time it drains completely, answers the
 * requests left waiting in c->in; then sets the watcher's mask. */
static void conn_pump(struct echo_conn *c)
{
    for (;;) {
        if (!conn_flush(c))
            return;
        if (conn_pending(c))
            break;
        if (c->state == ECHO_DONE) {
            conn_finish(c);
            if (c->state == ECHO_CLOSED)
                return;
            break;
        }
        if (!c->stalled || !buf_len(&c->in))
            break;
        c->stalled = false;
        size_t used = conn_process(c, buf_rptr(&c->in), buf_len(&c->in));
        buf_consume(&c->in, used);
        if (!used)
            break;
    }
    if (!buf_len(&c->in))
        buf_free(&c->in);
    conn_update_mask(c);
}

static void conn_read(struct echo_conn *c)
{
    struct echo_worker *w = c->w;
    if (c->state == ECHO_LINGER) {
        ssize_t n = read(c->fd, w->rbuf, sizeof w->rbuf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            echo__conn_close(c);
        return;
    }
    bool scratch = buf_len(&c->in) == 0;
    char *p;
    size_t cap;
    if (scratch) {
        p = w->rbuf;
        cap = sizeof w->rbuf;
    } else {
        p = buf_reserve(&c->in, ECHO_READ_MORE);
        cap = buf_room(&c->in);
    }
    ssize_t n = read(c->fd, p, cap);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        /* EOF or error: a partial request cannot complete any more. */
        echo__conn_close(c);
        return;
    }
    if (scratch) {
        size_t used = conn_process(c, p, (size_t)n);
        if (used < (size_t)n)
            buf_append(&c->in, p + used, (size_t)n - used);
    } else {
        buf_commit(&c->in, (size_t)n);
        size_t used = conn_process(c, buf_rptr(&c->in), buf_len(&c->in));
        buf_consume(&c->in, used);
    }
    conn_pump(c);
}

static void conn_on_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct echo_conn *c = ud;
    if (events & EV_ERROR) {
        /* Reset or hang-up: nothing more can be delivered. */
        echo__conn_close(c);
        return;
    }
    if (events & EV_WRITE) {
        conn_pump(c);
        if (c->state == ECHO_CLOSED)
            return;
    }
    if ((events & EV_READ) && (ev_io_mask(loop, fd) & EV_READ))
        conn_read(c);
}

static void conn_on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct echo_conn *c = t->ud;
    struct echo_worker *w = c->w;
    FG_UNUSED(loop);
    if (c->state == ECHO_CLOSED) {
        /* A ghost's service time is over: its slot goes to the next. */
        job_done(c);
        ghost_unlink(c);
        c->next = w->closing;
        w->closing = c;
        job_start_next(w);
        return;
    }
    if (c->state == ECHO_LINGER) {
        echo__conn_close(c);
        return;
    }
    if (c->state != ECHO_WAIT)
        return;
    bool job = c->job == ECHO_JOB_SERVING;
    if (job)
        job_done(c);
    conn_reply(c);
    if (buf_len(&c->in)) {
        size_t used = conn_process(c, buf_rptr(&c->in), buf_len(&c->in));
        buf_consume(&c->in, used);
    }
    conn_pump(c);
    if (job)
        job_start_next(w);
}

/* See echo.h. Runs on the worker's thread. */
void echo__conn_open(struct echo_worker *w, int fd)
{
    struct echo_conn *c = w->spare;
    struct buf stash;
    if (c) {
        w->spare = c->next;
        w->nspare--;
        stash = c->stash; /* keep its small allocation */
    } else {
        c = xmalloc(sizeof *c);
        buf_init(&stash);
    }
    memset(c, 0, sizeof *c);
    c->stash = stash;
    buf_reset(&c->stash);
    c->w = w;
    c->fd = fd;
    c->state = ECHO_HEAD;
    ev_timer_init(&c->timer, conn_on_timer, c);
    net_set_nodelay(fd);
    int rc = ev_io_start(w->loop, fd, EV_READ, conn_on_io, c);
    if (rc != 0) {
        log_warn("echo: cannot watch fd %d: %s", fd, strerror(-rc));
        close(fd);
        buf_free(&c->stash);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
}

void echo__conn_close(struct echo_conn *c)
{
    if (c->state == ECHO_CLOSED)
        return;
    struct echo_worker *w = c->w;
    ev_io_stop(w->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    bool ghost = c->job != ECHO_JOB_NONE;
    if (c->job != ECHO_JOB_SERVING)
        ev_timer_stop(w->loop, &c->timer);
    c->state = ECHO_CLOSED;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    c->prev = NULL;
    if (ghost) {
        /* Its work was handed over: it keeps its place in the queue or
         * its slot, and is freed when its service time ends. */
        c->next = w->ghosts;
        if (w->ghosts)
            w->ghosts->prev = c;
        w->ghosts = c;
        return;
    }
    c->next = w->closing;
    w->closing = c;
}

void echo__ghosts_free(struct echo_worker *w)
{
    while (w->ghosts) {
        struct echo_conn *c = w->ghosts;
        w->ghosts = c->next;
        ev_timer_stop(w->loop, &c->timer);
        buf_free(&c->in);
        buf_free(&c->out);
        buf_free(&c->stash);
        free(c);
    }
    w->q_head = w->q_tail = NULL;
    w->queued = 0;
    w->busy = 0;
}

void echo__conn_free(struct echo_conn *c)
{
    struct echo_worker *w = c->w;
    ASSERT(c->state == ECHO_CLOSED);
    buf_free(&c->in);
    buf_free(&c->out);
    if (!w->stopping && w->nspare < ECHO_SPARE_MAX) {
        c->next = w->spare;
        w->spare = c;
        w->nspare++;
        return;
    }
    buf_free(&c->stash);
    free(c);
}

void echo__conn_drain(struct echo_conn *c)
{
    if (c->state == ECHO_HEAD && !buf_len(&c->in) && !conn_pending(c))
        echo__conn_close(c);
}
