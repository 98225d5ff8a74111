/* The HTTP/1 client connection: accept, read and parse requests, hand
 * each to the pipeline (pipeline.h: route ... send), stream the request
 * body up and the response down, answers, keep-alive and pipelining,
 * timeouts, retries after upstream failures. One state machine per
 * connection on its worker's loop (see conn.h for the data flow).
 *
 * Pipelining: the next request's bytes may arrive while one is proxied;
 * they wait in c->in (reading stops at GW_BUF_HIGH) and are parsed once
 * the current response is fully written, so responses keep their order.
 *
 * Retries: a request is sent again to another server when nothing of it
 * can have been processed: the connect failed, or a reused keep-alive
 * connection closed before any response byte and no body byte had been
 * sent. Anything else fails with 502/504. */
#include "gateway/proxy/conn.h"
#include "gateway/proxy/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void client_io(struct ev_loop *loop, int fd, void *ud, int events);
static void conn_timer(struct ev_loop *loop, struct ev_timer *t);
static void process(struct gw_conn *c);

#define CFG WCFG(c->w)

/* ---- connection lifetime ---- */

void gw_conn_accept(struct gw_worker *w, int fd, const struct net_addr *peer, bool guard_counted)
{
    struct gw_conn *c = xcalloc(1, sizeof *c);
    c->w = w;
    c->guard_counted = guard_counted;
    c->fd = fd;
    c->r.c = c;
    c->r.w = w;
    c->peer = *peer;
    net_addr_host(peer, c->ip, sizeof c->ip);
    /* IPv4-mapped IPv6 peers are logged and forwarded as plain IPv4. */
    if (strncmp(c->ip, "::ffff:", 7) == 0 && strchr(c->ip + 7, '.'))
        memmove(c->ip, c->ip + 7, strlen(c->ip + 7) + 1);
    c->ip_len = (uint8_t)strlen(c->ip);
    ev_timer_init(&c->timer, conn_timer, c);
    net_set_nodelay(fd);
    if (ev_io_start(w->loop, fd, EV_READ, client_io, c) != 0) {
        close(fd);
        if (guard_counted)
            gw_guard_conn_closed(w->gw, peer);
        free(c);
        atomic_fetch_sub(&w->gw->conns, 1);
        return;
    }
    c->reading = true;
    c->next = NULL;
    c->prev = NULL;
    gw_worker_link_conn(w, c);
    gw_ctr_inc(&w->st.accepted);
    gw_ctr_inc(&w->st.active);
    gw__conn_set_timeout(c, TMO_HEADER, CFG->timeouts.client_header_ms);
}

/* Gives back the server of the current attempt: its in-flight place and
 * the request's reference. */
void gw__req_drop_server(struct gw_req *r)
{
    if (r->srv) {
        atomic_fetch_sub_explicit(&r->srv->inflight, 1, memory_order_relaxed);
        gw_server_unref(r->srv);
        r->srv = NULL;
    }
}

void gw__req_server_settle(struct gw_req *r, enum gw_srvbrk_verdict v)
{
    /* Most requests hold no server breaker: no clock read for them. */
    if (r->sbrk.b)
        gw_srvbrk_settle(&r->sbrk, v, ev_now_ns(r->w->loop) / 1000, ev_clock_ns());
}

/* Ends the current request's claims (resilience, server, snapshot) and
 * clears it for the next one, keeping its buffers and owner. */
static void req_reset(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    gw__resil_settle(r);
    gw__req_server_settle(r, GW_SRVBRK_RELEASE);
    if (r->up) {
        gw__up_close(r->up);
        r->up = NULL;
    }
    gw__req_drop_server(r);
    if (r->snap) {
        gw_snapshot_unref(r->snap);
        r->snap = NULL;
    }
    struct buf head = r->head, rlhdr = r->rlhdr;
    buf_reset(&head);
    buf_reset(&rlhdr);
    memset(r, 0, sizeof *r);
    r->c = c;
    r->w = c->w;
    r->head = head;
    r->rlhdr = rlhdr;
    c->in_req = false;
}

void gw_conn_close(struct gw_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    struct gw_worker *w = c->w;
    req_reset(c);
    ev_io_stop(w->loop, c->fd);
    ev_timer_stop(w->loop, &c->timer);
    close(c->fd);
    if (c->guard_counted)
        gw_guard_conn_closed(w->gw, &c->peer);
    gw_worker_unlink_conn(w, c);
    gw_ctr_dec(&w->st.active);
    atomic_fetch_sub_explicit(&w->gw->conns, 1, memory_order_relaxed);
    /* Freed before the next poll, never inside a callback that may still
     * hold the pointer. */
    c->next_closed = w->closing;
    w->closing = c;
}

void gw_worker_free_closed(struct gw_worker *w)
{
    while (w->closing) {
        struct gw_conn *c = w->closing;
        w->closing = c->next_closed;
        buf_reset(&c->in);
        buf_reset(&c->out);
        buf_reset(&c->r.head);
        buf_free(&c->r.rlhdr);
        gw_buf_release(w, &c->in);
        gw_buf_release(w, &c->out);
        gw_buf_release(w, &c->r.head);
        free(c);
    }
}

/* Shuts the write side and discards input for a moment, so the peer reads
 * our last response before it sees a reset (the lingering close of nginx). */
static void conn_linger(struct gw_conn *c)
{
    if (c->closed)
        return;
    req_reset(c);
    if (c->peer_eof) {
        gw_conn_close(c);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CS_LINGER;
    buf_reset(&c->in);
    gw__conn_want_read(c, true);
    gw__conn_set_timeout(c, TMO_LINGER, 2000);
}

void gw__conn_want_read(struct gw_conn *c, bool on)
{
    if (c->closed || c->reading == on)
        return;
    c->reading = on;
    int m = ev_io_mask(c->w->loop, c->fd);
    ev_io_set(c->w->loop, c->fd, on ? (m | EV_READ) : (m & ~EV_READ));
}

static void want_write(struct gw_conn *c, bool on)
{
    int m = ev_io_mask(c->w->loop, c->fd);
    ev_io_set(c->w->loop, c->fd, on ? (m | EV_WRITE) : (m & ~EV_WRITE));
}

void gw__conn_set_timeout(struct gw_conn *c, enum gw_tmo kind, uint64_t ms)
{
    c->tmo = kind;
    c->deadline = ev_now(c->w->loop) + ms;
    /* Lazy re-arm: moving a deadline later leaves the timer where it is;
     * when it fires early it is re-armed for the real deadline. */
    if (!ev_timer_active(&c->timer) || c->timer.when > c->deadline)
        ev_timer_start_at(c->w->loop, &c->timer, c->deadline);
}

/* ---- writing to the client ---- */

/* Writes c->out then the validated response body bytes in the upstream's
 * buffer. Returns 0 when everything pending was written, 1 when the
 * socket is full (EV_WRITE armed), -1 when the connection was closed. */
int gw__conn_flush(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_upconn *u = c->in_req ? r->up : NULL;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        size_t ol = buf_len(&c->out);
        if (ol) {
            iov[n].iov_base = buf_rptr(&c->out);
            iov[n++].iov_len = ol;
        }
        if (u && r->rfwd) {
            iov[n].iov_base = buf_rptr(&u->in);
            iov[n++].iov_len = r->rfwd;
        }
        if (n == 0) {
            want_write(c, false);
            return 0;
        }
        ssize_t wr = writev(c->fd, iov, n);
        if (wr < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                want_write(c, true);
                if (c->tmo != TMO_SEND && c->state != CS_PROXY)
                    gw__conn_set_timeout(c, TMO_SEND, CFG->timeouts.client_idle_ms);
                return 1;
            }
            gw_conn_close(c);
            return -1;
        }
        size_t done = (size_t)wr;
        r->resp_started = true;
        r->resp_bytes += done;
        size_t o = FG_MIN(done, ol);
        buf_consume(&c->out, o);
        done -= o;
        if (done) {
            buf_consume(&u->in, done);
            r->rfwd -= done;
            /* Room again in the upstream buffer: resume reading it. */
            if (buf_len(&u->in) < GW_BUF_HIGH && !r->resp_done)
                gw__up_want(u, true, ev_io_mask(c->w->loop, u->fd) & EV_WRITE);
        }
    }
}

/* Drops what the request left in c->in before it is answered: the rest
 * of its head (an answer before the rewrite stage) and the body bytes
 * validated for forwarding. */
void gw__conn_drop_input(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    buf_consume(&c->in, r->head_len + r->fwd);
    r->head_len = 0;
    r->fwd = 0;
}

/* Writes the gateway-generated response built in c->out; the connection
 * goes on when it is out. */
void gw__conn_send_out(struct gw_conn *c)
{
    c->state = CS_RESPOND;
    int rc = gw__conn_flush(c);
    if (rc == 0)
        gw__conn_finished(c);
    else if (rc == 1)
        gw__conn_set_timeout(c, TMO_SEND, CFG->timeouts.client_idle_ms);
}

/* Sends a gateway-generated response; the connection closes afterwards
 * unless keep is allowed (no unread request body in the way). */
void gw__conn_respond(struct gw_conn *c, int status, bool keep, const char *extra)
{
    struct gw_req *r = &c->r;
    if (r->resp_started) {
        gw_conn_close(c);
        return;
    }
    gw__conn_drop_input(c);
    if (r->up) {
        gw__up_close(r->up);
        r->up = NULL;
    }
    if (!keep || !r->keepalive || atomic_load(&c->w->gw->stopping))
        c->close_after = true;
    r->status = status;
    buf_reset(&c->out);
    gw_buf_prepare(c->w, &c->out);
    gw__error_page(&c->out, status, c->close_after, extra);
    gw__conn_send_out(c);
}

void gw__conn_error(struct gw_conn *c, int status, enum gw_err_kind kind)
{
    gw_ctr_inc(&c->w->st.errors[kind]);
    /* A request whose body was not read to the end leaves the stream
     * unsynchronized: close after answering. */
    bool keep = !c->in_req || c->r.body_done;
    gw__conn_respond(c, status, keep, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

/* The response is fully written: account, then go on with the next
 * request or close. */
void gw__conn_finished(struct gw_conn *c)
{
    if (c->closed)
        return;
    if (c->in_req)
        gw_pipeline_finish(&c->r);
    c->nreq++;
    bool close = c->close_after || c->peer_eof;
    req_reset(c);
    if (close) {
        conn_linger(c);
        return;
    }
    c->state = CS_HEAD;
    gw_buf_release(c->w, &c->in);
    gw_buf_release(c->w, &c->out);
    gw_buf_release(c->w, &c->r.head);
    if (atomic_load_explicit(&c->w->gw->stopping, memory_order_relaxed) && buf_len(&c->in) == 0) {
        gw_conn_close(c);
        return;
    }
    gw__conn_want_read(c, true);
    if (buf_len(&c->in))
        gw__conn_set_timeout(c, TMO_HEADER, CFG->timeouts.client_header_ms);
    else
        gw__conn_set_timeout(c, TMO_IDLE, CFG->timeouts.client_idle_ms);
    if (buf_len(&c->in))
        process(c);
}

/* ---- upstream failures and retries ---- */

static bool idempotent(enum http_method m)
{
    return m == HTTP_M_GET || m == HTTP_M_HEAD || m == HTTP_M_OPTIONS || m == HTTP_M_TRACE ||
           m == HTTP_M_PUT || m == HTTP_M_DELETE;
}

/* The exchange with the current server failed. server_fault is false for
 * a reused keep-alive connection that the server had closed (not the
 * server's fault, and certainly not processed). Retries go to another
 * server when the request cannot have been processed (the connect failed,
 * or not one byte of it was written), or is idempotent and was only reset
 * (RFC 9110 9.2.2); timeouts and malformed responses are never retried.
 *
 * The retry budget bounds the work retries add to the servers. A connect
 * that failed at once (refused: nothing listens, the server was killed)
 * or a request of which no byte was written put no work on any server, so
 * its retry is not counted against the budget; GW_MAX_TRIES still bounds
 * it. Counting them let a killed server, in the moments before the health
 * checks take it out, spend the budget of the whole service on its own
 * share of the traffic and turn healthy requests into 502s. */
void gw__conn_up_failed(struct gw_conn *c, enum gw_err_kind kind, bool server_fault)
{
    struct gw_req *r = &c->r;
    struct gw_server *srv = r->srv;
    uint64_t now = ev_now(c->w->loop);
    bool unsent = (kind == GW_ERR_UP_CONNECT && !r->connect_timeout) ||
                  (kind == GW_ERR_UP_RESET && r->head_sent == 0 && !r->body_started);
    gw_ctr_inc(&c->w->st.errors[kind]);
    gw__req_server_settle(r, server_fault ? GW_SRVBRK_FAILURE : GW_SRVBRK_RELEASE);
    if (srv && server_fault) {
        GW_SERVER_COUNT(srv, c->w->id, failures);
        if (r->svc && r->svc->passive_max_failures > 0 &&
            gw_passive_failure(srv, r->svc->passive_max_failures, r->svc->passive_eject_ms, now))
            log_warn("server %s/%s ejected after %d consecutive failures", srv->service,
                     srv->addr_str, r->svc->passive_max_failures);
    }
    if (r->up) {
        gw__up_close(r->up);
        r->up = NULL;
    }
    bool safe = kind == GW_ERR_UP_CONNECT || !server_fault || unsent ||
                (kind == GW_ERR_UP_RESET && idempotent(r->m));
    bool retry = safe && !r->body_started && !r->resp_started && !r->resp_head &&
                 r->ntried < GW_MAX_TRIES && !atomic_load(&c->w->gw->stopping);
    if (!retry && !r->resp_started)
        r->up_reusable = false;
    if (retry && server_fault && !unsent && r->rt && !gw_rb_try_retry(r->rt->rb, ev_now_ns(c->w->loop) / 1000)) {
        /* The budget keeps retries from multiplying a flood. */
        gw_ctr_inc(&c->w->st.retries_denied);
        retry = false;
    }
    if (!retry) {
        /* Nothing of an answer reached the client: the fallback (if the
         * service has one) answers instead of a bare 502/504. */
        if (gw__fallback(r, kind == GW_ERR_UP_TIMEOUT || r->connect_timeout ? 504 : 502, kind) == GW_NEXT)
            gw_pipeline_resume(r, GW_ST_BALANCE);
        return;
    }
    if (server_fault)
        gw_ctr_inc(&c->w->st.retries);
    if (!server_fault)
        r->ntried--; /* same server may be picked again, on a fresh connection */
    r->head_sent = 0;
    r->sent = false;
    gw__req_drop_server(r);
    gw_pipeline_resume(r, GW_ST_BALANCE);
}

/* ---- request intake ---- */

static void count_cb(void *ud, const char *p, size_t n)
{
    *(uint64_t *)ud += n;
}

/* Scans newly arrived request body bytes (after r->fwd) and validates
 * their framing. Returns false when the body is invalid or too large
 * (the connection has been answered). */
static bool scan_body(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    if (r->body_done)
        return true;
    size_t avail = buf_len(&c->in) - r->fwd;
    if (!avail)
        return true;
    if (r->body == HTTP_BODY_LENGTH) {
        size_t take = (size_t)FG_MIN((uint64_t)avail, r->body_left);
        r->fwd += take;
        r->body_left -= take;
        if (r->body_left == 0)
            r->body_done = true;
        return true;
    }
    ssize_t n = http_chunked_feed(&r->ch, buf_rptr(&c->in) + r->fwd, avail, count_cb, &r->body_bytes);
    if (n < 0) {
        gw__conn_error(c, 400, GW_ERR_BAD_REQUEST);
        return false;
    }
    r->fwd += (size_t)n;
    if (CFG->limits.max_body_bytes && r->body_bytes > CFG->limits.max_body_bytes) {
        /* Only bytes before the limit were validated for forwarding; the
         * request is answered 413 if nothing of the response went out. */
        gw__conn_error(c, 413, GW_ERR_BAD_REQUEST);
        return false;
    }
    if (r->ch.done)
        r->body_done = true;
    return true;
}

/* Consumes the request's head from c->in (it was rewritten for the
 * upstream) and scans the body bytes already there. Returns false when
 * the body is invalid (answered). */
bool gw__conn_take_head(struct gw_conn *c)
{
    buf_consume(&c->in, c->r.head_len);
    c->r.head_len = 0;
    c->r.hreq = NULL;
    return scan_body(c);
}

/* Sets up the request parsed from the head at the front of c->in
 * (head_len bytes): keep-alive, log copies, snapshot, body framing; then
 * hands it to the pipeline. */
static void start_request(struct gw_conn *c, const struct http_request *req, int head_len)
{
    struct gw_req *r = &c->r;
    struct gw_worker *w = c->w;
    c->in_req = true;
    r->head_len = (size_t)head_len;
    r->t_start_ns = ev_clock_ns();
    r->m = req->m;
    r->minor = req->minor;
    r->keepalive = req->minor == 1 ? !(req->flags & HTTP_F_CONN_CLOSE)
                                   : (req->flags & HTTP_F_CONN_KEEPALIVE) != 0;
    if (!r->keepalive)
        c->close_after = true;
    if (w->gw->access_log) {
        /* Copies for the log line: the head is gone when the line is written. */
        size_t ml = FG_MIN(req->method_len, sizeof r->method - 1);
        size_t tl = FG_MIN(req->target_len, sizeof r->target - 1);
        memcpy(r->method, req->method, ml);
        r->method[ml] = '\0';
        memcpy(r->target, req->target, tl);
        r->target[tl] = '\0';
    }
    /* A membership change acknowledged by the admin API applies to the
     * very next request, even one read in the same loop iteration. */
    if (gw_snapshot_newer(w))
        gw_worker_refresh_snapshot(w);
    r->snap = w->snap;
    gw_snapshot_ref(r->snap);
    /* Read interest stays on while the request is proxied: bytes that
     * arrive (body, or the next pipelined request) are buffered up to
     * GW_BUF_HIGH, and the common request costs no epoll_ctl at all. */
    c->state = CS_PROXY;

    /* Body framing and its limit. */
    r->body = http_request_body(req);
    if (r->body == HTTP_BODY_LENGTH) {
        r->body_left = (uint64_t)req->content_length;
        if (CFG->limits.max_body_bytes && r->body_left > CFG->limits.max_body_bytes) {
            r->body_done = false;
            gw__conn_error(c, 413, GW_ERR_BAD_REQUEST);
            return;
        }
        if (r->body_left == 0)
            r->body_done = true;
    } else if (r->body == HTTP_BODY_CHUNKED) {
        http_chunked_init(&r->ch, 16384);
    } else {
        r->body_done = true;
    }
    if (req->m == HTTP_M_CONNECT) {
        gw__conn_error(c, 405, GW_ERR_BAD_REQUEST);
        return;
    }
    gw_pipeline_start(r, req);
}

/* Parses and starts the next request in c->in, if complete. */
static void process_head(struct gw_conn *c)
{
    struct http_header hdrs[GW_MAX_HEADERS_CAP];
    struct http_request req;
    size_t maxh = FG_MIN((size_t)CFG->limits.max_headers, (size_t)GW_MAX_HEADERS_CAP);
    int n = http_parse_request(buf_rptr(&c->in), buf_len(&c->in), &req, hdrs, maxh,
                               CFG->limits.max_header_bytes);
    if (n == HTTP_INCOMPLETE) {
        if (c->tmo == TMO_IDLE)
            gw__conn_set_timeout(c, TMO_HEADER, CFG->timeouts.client_header_ms);
        return;
    }
    if (n < 0) {
        c->in_req = false;
        c->r.keepalive = false;
        c->r.t_start_ns = ev_clock_ns();
        int status = http_error_status(n);
        buf_reset(&c->in);
        gw_ctr_inc(&c->w->st.errors[GW_ERR_BAD_REQUEST]);
        gw__conn_respond(c, status, false, NULL);
        return;
    }
    start_request(c, &req, n);
}

static void process(struct gw_conn *c)
{
    if (c->closed)
        return;
    switch (c->state) {
    case CS_HEAD:
        process_head(c);
        break;
    case CS_PROXY: {
        struct gw_req *r = &c->r;
        if (!scan_body(c))
            return;
        if (r->up && !r->up->connecting)
            gw__up_send(r->up);
        if (!c->closed && c->state == CS_PROXY && !r->body_done && r->up && !r->up->connecting)
            gw__conn_set_timeout(c, TMO_BODY, CFG->timeouts.client_body_ms);
        break;
    }
    default:
        break;
    }
}

/* ---- I/O and timers ---- */

int gw__io_read(struct gw_worker *w, int fd, struct buf *b)
{
    for (;;) {
        char *p = gw_buf_prepare(w, b);
        ssize_t n = read(fd, p, GW_IO_CHUNK);
        if (n > 0) {
            buf_commit(b, (size_t)n);
            return (size_t)n < GW_IO_CHUNK ? GW_RD_DRAINED : GW_RD_MORE;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return GW_RD_DRAINED;
        return n == 0 ? GW_RD_EOF : GW_RD_ERROR;
    }
}

static void client_read(struct gw_conn *c)
{
    for (;;) {
        if (c->state == CS_LINGER) {
            char tmp[4096];
            ssize_t n = read(c->fd, tmp, sizeof tmp);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            gw_conn_close(c);
            return;
        }
        size_t limit = c->state == CS_HEAD ? CFG->limits.max_header_bytes + 1 : GW_BUF_HIGH;
        if (buf_len(&c->in) >= limit) {
            gw__conn_want_read(c, false);
            break;
        }
        int rc = gw__io_read(c->w, c->fd, &c->in);
        if (rc == GW_RD_MORE)
            continue;
        if (rc == GW_RD_DRAINED)
            break;
        /* EOF or error from the client. After a complete request (or
         * during our own response) a FIN is a half-close: answer, then
         * close. Anywhere else the exchange is over. */
        bool complete = (c->state == CS_PROXY && c->r.body_done) || c->state == CS_RESPOND;
        if (rc == GW_RD_ERROR || !complete) {
            gw_conn_close(c);
            return;
        }
        c->peer_eof = true;
        gw__conn_want_read(c, false);
        break;
    }
    process(c);
}

static void client_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct gw_conn *c = ud;
    if (events & EV_WRITE) {
        int rc = gw__conn_flush(c);
        if (rc < 0)
            return;
        if (rc == 0 && c->state == CS_RESPOND)
            gw__conn_finished(c);
        if (c->closed)
            return;
    }
    if ((events & EV_ERROR) && c->peer_eof) {
        gw_conn_close(c); /* both directions gone */
        return;
    }
    if (events & (EV_READ | EV_ERROR)) {
        if (c->reading || (events & EV_ERROR))
            client_read(c);
    }
}

static void conn_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct gw_conn *c = t->ud;
    if (ev_now(loop) < c->deadline) {
        ev_timer_start_at(loop, t, c->deadline);
        return;
    }
    switch (c->tmo) {
    case TMO_IDLE:
    case TMO_SEND:
    case TMO_LINGER:
    case TMO_DRAIN:
    case TMO_NONE:
        gw_conn_close(c);
        break;
    case TMO_HEADER:
        if (buf_len(&c->in) == 0 && c->nreq > 0) {
            gw_conn_close(c);
            break;
        }
        c->r.t_start_ns = ev_clock_ns();
        gw_ctr_inc(&c->w->st.errors[GW_ERR_TIMEOUT_CLIENT]);
        gw__conn_respond(c, 408, false, NULL);
        break;
    case TMO_BODY:
        gw__conn_error(c, 408, GW_ERR_TIMEOUT_CLIENT);
        break;
    case TMO_CONNECT:
        /* Retried like a refused connect, but a final failure is 504. */
        c->r.connect_timeout = true;
        gw__conn_up_failed(c, GW_ERR_UP_CONNECT, true);
        break;
    case TMO_RESPONSE:
        gw__conn_up_failed(c, GW_ERR_UP_TIMEOUT, true);
        break;
    case TMO_DELAY:
        gw_pipeline_resume(&c->r, GW_ST_SHED);
        break;
    case TMO_RLWAIT:
        gw__rl_timeout(&c->r);
        break;
    case TMO_QUEUE:
        /* The queue's own deadline should have answered first. */
        if (c->r.queued) {
            gw_adm_queue_remove(gw_worker_admq(c->w, c->r.rt), &c->r.ent);
            c->r.queued = false;
            gw__shed(&c->r);
        }
        break;
    }
}
