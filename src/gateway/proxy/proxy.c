/* The client side of the proxy: accept, read and parse requests, route,
 * pick a server, stream the request up and the response down, keep-alive
 * and pipelining, timeouts, errors. One state machine per connection on
 * its worker's loop (see conn.h for the data flow).
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

_Static_assert(GW_MAX_TRIES <= GW_PICK_MAX_TRIED, "the balancer bounds tried[]");

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
            gw_guard_release(peer);
        free(c);
        atomic_fetch_sub(&gw_g->conns, 1);
        return;
    }
    c->reading = true;
    c->next = NULL;
    c->prev = NULL;
    gw_worker_link_conn(w, c);
    gw_ctr_inc(&w->st.accepted);
    gw_ctr_inc(&w->st.active);
    gw_conn_set_timeout(c, TMO_HEADER, CFG->timeouts.client_header_ms);
}

static void req_reset(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    gw_conn_resil_settle(c);
    gw_conn_server_settle(c, GW_SRVBRK_RELEASE);
    if (r->up) {
        gw_up_close(r->up);
        r->up = NULL;
    }
    if (r->srv) {
        atomic_fetch_sub_explicit(&r->srv->inflight, 1, memory_order_relaxed);
        gw_server_unref(r->srv);
        r->srv = NULL;
    }
    if (r->snap) {
        gw_snapshot_unref(r->snap);
        r->snap = NULL;
    }
    struct buf head = r->head, rlhdr = r->rlhdr;
    buf_reset(&head);
    buf_reset(&rlhdr);
    memset(r, 0, sizeof *r);
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
        gw_guard_release(&c->peer);
    gw_worker_unlink_conn(w, c);
    gw_ctr_dec(&w->st.active);
    atomic_fetch_sub_explicit(&gw_g->conns, 1, memory_order_relaxed);
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
    gw_conn_want_read(c, true);
    gw_conn_set_timeout(c, TMO_LINGER, 2000);
}

void gw_conn_want_read(struct gw_conn *c, bool on)
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

void gw_conn_set_timeout(struct gw_conn *c, enum gw_tmo kind, uint64_t ms)
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
int gw_conn_flush(struct gw_conn *c)
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
                    gw_conn_set_timeout(c, TMO_SEND, CFG->timeouts.client_idle_ms);
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
                gw_up_want(u, true, ev_io_mask(c->w->loop, u->fd) & EV_WRITE);
        }
    }
}

/* Sends a gateway-generated response; the connection closes afterwards
 * unless keep is allowed (no unread request body in the way). */
void gw_conn_respond(struct gw_conn *c, int status, bool keep, const char *extra)
{
    struct gw_req *r = &c->r;
    if (r->resp_started) {
        gw_conn_close(c);
        return;
    }
    if (r->up) {
        gw_up_close(r->up);
        r->up = NULL;
    }
    if (!keep || !r->keepalive || atomic_load(&gw_g->stopping))
        c->close_after = true;
    r->status = status;
    buf_reset(&c->out);
    gw_buf_prepare(c->w, &c->out);
    gw_error_page(&c->out, status, c->close_after, extra);
    c->state = CS_RESPOND;
    int rc = gw_conn_flush(c);
    if (rc == 0)
        gw_conn_finished(c);
    else if (rc == 1)
        gw_conn_set_timeout(c, TMO_SEND, CFG->timeouts.client_idle_ms);
}

void gw_conn_error(struct gw_conn *c, int status, enum gw_err_kind kind)
{
    gw_ctr_inc(&c->w->st.errors[kind]);
    /* A request whose body was not read to the end leaves the stream
     * unsynchronized: close after answering. */
    bool keep = !c->in_req || c->r.body_done;
    if (c->in_req && c->r.fwd) {
        buf_consume(&c->in, c->r.fwd);
        c->r.fwd = 0;
    }
    gw_conn_respond(c, status, keep, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

/* ---- accounting ---- */

static void account(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_worker *w = c->w;
    int cls = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;
    uint64_t ns = ev_clock_ns() - r->t_start_ns;
    /* All into this worker's own entries (counters.h): no locked adds.
     * The request totals are the sums of the classes. */
    gw_ctr_inc(&w->st.requests);
    metrics_hist_observe_owned_ns(&w->latency, ns);
    if (r->svc)
        gw_svc_count(r->svc->stats, w->id, cls, ns);
    if (r->srv)
        gw_server_count_resp(r->srv, w->id, cls);
    gw_access_log(c);
}

/* The response is fully written: account, then go on with the next
 * request or close. */
void gw_conn_finished(struct gw_conn *c)
{
    if (c->closed)
        return;
    if (c->in_req)
        account(c);
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
    if (atomic_load_explicit(&gw_g->stopping, memory_order_relaxed) && buf_len(&c->in) == 0) {
        gw_conn_close(c);
        return;
    }
    gw_conn_want_read(c, true);
    if (buf_len(&c->in))
        gw_conn_set_timeout(c, TMO_HEADER, CFG->timeouts.client_header_ms);
    else
        gw_conn_set_timeout(c, TMO_IDLE, CFG->timeouts.client_idle_ms);
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
void gw_conn_up_failed(struct gw_conn *c, enum gw_err_kind kind, bool server_fault)
{
    struct gw_req *r = &c->r;
    struct gw_server *srv = r->srv;
    uint64_t now = ev_now(c->w->loop);
    bool unsent = (kind == GW_ERR_UP_CONNECT && !r->connect_timeout) ||
                  (kind == GW_ERR_UP_RESET && r->head_sent == 0 && !r->body_started);
    gw_ctr_inc(&c->w->st.errors[kind]);
    gw_conn_server_settle(c, server_fault ? GW_SRVBRK_FAILURE : GW_SRVBRK_RELEASE);
    if (srv && server_fault) {
        GW_SERVER_COUNT(srv, c->w->id, failures);
        if (r->svc && r->svc->passive_max_failures > 0 &&
            gw_passive_failure(srv, r->svc->passive_max_failures, r->svc->passive_eject_ms, now))
            log_warn("server %s/%s ejected after %d consecutive failures", srv->service,
                     srv->addr_str, r->svc->passive_max_failures);
    }
    if (r->up) {
        gw_up_close(r->up);
        r->up = NULL;
    }
    bool safe = kind == GW_ERR_UP_CONNECT || !server_fault || unsent ||
                (kind == GW_ERR_UP_RESET && idempotent(r->m));
    bool retry = safe && !r->body_started && !r->resp_started && !r->resp_head &&
                 r->ntried < GW_MAX_TRIES && !atomic_load(&gw_g->stopping);
    if (!retry) {
        if (!r->resp_started)
            c->r.up_reusable = false;
        /* Nothing of an answer reached the client: the fallback (if the
         * service has one) answers instead of a bare 502/504. */
        gw_conn_fallback(c, kind == GW_ERR_UP_TIMEOUT || r->connect_timeout ? 504 : 502, kind);
        return;
    }
    if (server_fault && !unsent && r->rt && !gw_rb_try_retry(r->rt->rb, ev_now_ns(c->w->loop) / 1000)) {
        /* The budget keeps retries from multiplying a flood. */
        gw_ctr_inc(&c->w->st.retries_denied);
        gw_conn_fallback(c, kind == GW_ERR_UP_TIMEOUT || r->connect_timeout ? 504 : 502, kind);
        return;
    }
    if (server_fault)
        gw_ctr_inc(&c->w->st.retries);
    if (!server_fault)
        r->ntried--; /* same server may be picked again, on a fresh connection */
    r->head_sent = 0;
    r->sent = false;
    if (r->srv) {
        atomic_fetch_sub_explicit(&r->srv->inflight, 1, memory_order_relaxed);
        gw_server_unref(r->srv);
        r->srv = NULL;
    }
    gw_conn_pick_and_send(c);
}

void gw_conn_server_settle(struct gw_conn *c, enum gw_srvbrk_verdict v)
{
    gw_srvbrk_settle(&c->r.sbrk, v, ev_now_ns(c->w->loop) / 1000, ev_clock_ns());
}

/* Chooses a server not tried yet and sends the request to it. */
void gw_conn_pick_and_send(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_worker *w = c->w;
    uint64_t now = ev_now(w->loop);
    gw_conn_server_settle(c, GW_SRVBRK_RELEASE);
    struct gw_server *srv = gw_pick_server(r->svc->lb, r->hash, r->tried, (size_t)r->ntried, &r->sbrk, now,
                                           ev_now_ns(w->loop) / 1000);
    if (!srv) {
        gw_conn_fallback(c, 503, GW_ERR_NO_SERVER);
        return;
    }
    /* The balancer returns an already-tried server only when no other is
     * usable: give up rather than hammer it again. */
    for (int i = 0; i < r->ntried; i++) {
        if (r->tried[i] == srv) {
            gw_conn_fallback(c, r->connect_timeout ? 504 : 502, GW_ERR_UP_CONNECT);
            return;
        }
    }
    r->tried[r->ntried++] = srv;
    gw_server_ref(srv);
    r->srv = srv; /* gw_pick_server took its in-flight place */
    r->up = gw_up_acquire(w, srv, c);
    if (!r->up) {
        gw_conn_up_failed(c, GW_ERR_UP_CONNECT, true);
        return;
    }
    if (r->up->connecting) {
        gw_conn_set_timeout(c, TMO_CONNECT, CFG->timeouts.upstream_connect_ms);
        return;
    }
    if (!r->body_done)
        gw_conn_set_timeout(c, TMO_BODY, CFG->timeouts.client_body_ms);
    gw_up_send(r->up);
}

/* ---- request intake ---- */

static uint64_t request_hash(struct gw_conn *c, const struct http_request *req, const char *path,
                             size_t path_len)
{
    struct gw_service *svc = c->r.svc;
    switch (svc->hash_key) {
    case GW_HASH_CLIENT_IP:
        return gw_lb_hash(c->ip, c->ip_len);
    case GW_HASH_PATH:
        return gw_lb_hash(path, path_len);
    case GW_HASH_HEADER: {
        for (size_t i = 0; i < req->nheaders; i++)
            if (req->headers[i].name_len == svc->hash_name_len &&
                fg_strieq(req->headers[i].name, req->headers[i].name_len, svc->hash_name))
                return gw_lb_hash(req->headers[i].value, req->headers[i].value_len);
        return gw_lb_hash(c->ip, c->ip_len);
    }
    case GW_HASH_COOKIE:
        for (size_t i = 0; i < req->nheaders; i++) {
            const struct http_header *h = &req->headers[i];
            if (!fg_strieq(h->name, h->name_len, "cookie"))
                continue;
            const char *p = h->value, *end = h->value + h->value_len;
            while (p < end) {
                while (p < end && (*p == ' ' || *p == ';'))
                    p++;
                const char *eq = memchr(p, '=', (size_t)(end - p));
                if (!eq)
                    break;
                const char *semi = memchr(eq, ';', (size_t)(end - eq));
                if (!semi)
                    semi = end;
                if ((size_t)(eq - p) == svc->hash_name_len && !memcmp(p, svc->hash_name, svc->hash_name_len))
                    return gw_lb_hash(eq + 1, (size_t)(semi - eq - 1));
                p = semi;
            }
        }
        return gw_lb_hash(c->ip, c->ip_len);
    }
    return 0;
}

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
        gw_conn_error(c, 400, GW_ERR_BAD_REQUEST);
        return false;
    }
    r->fwd += (size_t)n;
    if (CFG->limits.max_body_bytes && r->body_bytes > CFG->limits.max_body_bytes) {
        /* Only bytes before the limit were validated for forwarding; the
         * request is answered 413 if nothing of the response went out. */
        gw_conn_error(c, 413, GW_ERR_BAD_REQUEST);
        return false;
    }
    if (r->ch.done)
        r->body_done = true;
    return true;
}

static void host_only(const char **h, size_t *len)
{
    /* Strips ":port", keeping IPv6 literals "[::1]" whole. */
    const char *p = *h;
    size_t n = *len;
    if (n && p[0] == '[') {
        const char *e = memchr(p, ']', n);
        if (e)
            *len = (size_t)(e - p + 1);
        return;
    }
    const char *colon = memchr(p, ':', n);
    if (colon)
        *len = (size_t)(colon - p);
}

static void start_request(struct gw_conn *c, const struct http_request *req, int head_len)
{
    struct gw_req *r = &c->r;
    struct gw_worker *w = c->w;
    c->in_req = true;
    r->t_start_ns = ev_clock_ns();
    r->m = req->m;
    r->minor = req->minor;
    r->keepalive = req->minor == 1 ? !(req->flags & HTTP_F_CONN_CLOSE)
                                   : (req->flags & HTTP_F_CONN_KEEPALIVE) != 0;
    if (!r->keepalive)
        c->close_after = true;
    if (gw_g->access_log) {
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
    if (__atomic_load_n(&gw_g->snap, __ATOMIC_ACQUIRE) != w->snap)
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
            buf_consume(&c->in, (size_t)head_len);
            r->body_done = false;
            gw_conn_error(c, 413, GW_ERR_BAD_REQUEST);
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
        buf_consume(&c->in, (size_t)head_len);
        gw_conn_error(c, 405, GW_ERR_BAD_REQUEST);
        return;
    }

    /* Target: origin-form, absolute-form (host taken from it) or '*'. */
    const char *path = req->target;
    size_t path_len = req->target_len;
    const char *host = req->host;
    size_t host_len = req->host ? req->host_len : 0;
    if (path_len > 7 && (fg_strieq(path, 7, "http://") || (path_len > 8 && fg_strieq(path, 8, "https://")))) {
        size_t skip = path[4] == ':' ? 7 : 8;
        const char *auth = path + skip;
        const char *slash = memchr(auth, '/', path_len - skip);
        host = auth;
        host_len = slash ? (size_t)(slash - auth) : path_len - skip;
        path = slash ? slash : "/";
        path_len = slash ? (size_t)(req->target + req->target_len - slash) : 1;
    } else if (path[0] != '/' && !(path_len == 1 && path[0] == '*')) {
        buf_consume(&c->in, (size_t)head_len);
        gw_conn_error(c, 400, GW_ERR_BAD_REQUEST);
        return;
    }
    if (host)
        host_only(&host, &host_len);
    const char *q = memchr(path, '?', path_len);
    size_t route_len = q ? (size_t)(q - path) : path_len;
    const struct gw_route *rt = gw_route_match(r->snap, host, host_len, path, route_len);
    if (!rt) {
        buf_consume(&c->in, (size_t)head_len);
        gw_conn_error(c, 404, GW_ERR_NO_ROUTE);
        return;
    }
    r->route = rt;
    r->svc = rt->svc;
    if (rt->allow.n || rt->deny.n) {
        uint8_t a16[16];
        if (cidr_sa16((const struct sockaddr *)&c->peer.ss, a16) && gw_route_refuses(rt, a16)) {
            atomic_fetch_add_explicit(&gw_g->refused_ip[GW_REFUSE_ROUTE], 1, memory_order_relaxed);
            buf_consume(&c->in, (size_t)head_len);
            gw_conn_respond(c, 403, r->body_done, NULL);
            return;
        }
    }
    uint64_t delay_us = 0;
    bool rl_wait = false;
    if (rt->nrl) {
        int rl = gw_conn_rate_limit(c, req, rt, &delay_us, head_len);
        if (rl == GW_RL_ANSWERED)
            return;
        rl_wait = rl == GW_RL_WAIT;
    }
    r->rt = rt->svc->rt;
    r->prio = (uint8_t)rt->prio;
    if (rt->svc->resil && rt->svc->resil->priority_header) {
        const struct http_header *ph = http_find_header(req->headers, req->nheaders,
                                                        rt->svc->resil->priority_header);
        int p = ph ? gw_prio_parse(ph->value, ph->value_len) : -1;
        if (p >= 0)
            r->prio = (uint8_t)p;
    }
    if (r->rt)
        gw_rb_request(r->rt->rb, ev_now_ns(w->loop) / 1000);
    /* Prefix strip: "/auth/login" under "/auth" becomes "/login". */
    if (rt->strip && rt->prefix_len > 1 && path_len >= rt->prefix_len) {
        path += rt->prefix_len;
        path_len -= rt->prefix_len;
        if (path_len == 0 || path[0] != '/') {
            /* Keep the result origin-form: rebuild with a leading slash. */
            char *tmp = xmalloc(path_len + 1);
            tmp[0] = '/';
            memcpy(tmp + 1, path, path_len);
            const char *tq = memchr(tmp, '?', path_len + 1);
            r->hash = request_hash(c, req, tmp, tq ? (size_t)(tq - tmp) : path_len + 1);
            gw_rewrite_request(c, req, tmp, path_len + 1);
            free(tmp);
            goto rewritten;
        }
    }
    {
        const char *pq = memchr(path, '?', path_len);
        r->hash = request_hash(c, req, path, pq ? (size_t)(pq - path) : path_len);
    }
    gw_rewrite_request(c, req, path, path_len);
rewritten:
    buf_consume(&c->in, (size_t)head_len);
    if (!scan_body(c))
        return;
    if (rl_wait) {
        /* The shared rate-limit store decides; gw_conn_rl_resume() or a
         * refusal follows its answer, or its deadline. */
        gw_conn_set_timeout(c, TMO_RLWAIT, CFG->rl_redis.timeout_ms);
        return;
    }
    gw_conn_rl_resume(c, delay_us);
}

void gw_conn_rl_resume(struct gw_conn *c, uint64_t delay_us)
{
    if (delay_us) {
        /* limit_req-style smoothing: hold the request, then go on. */
        gw_ctr_inc(&c->w->st.delayed);
        gw_conn_set_timeout(c, TMO_DELAY, (delay_us + 999) / 1000);
        return;
    }
    gw_conn_admit_and_send(c);
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
            gw_conn_set_timeout(c, TMO_HEADER, CFG->timeouts.client_header_ms);
        return;
    }
    if (n < 0) {
        c->in_req = false;
        c->r.keepalive = false;
        c->r.t_start_ns = ev_clock_ns();
        int status = http_error_status(n);
        buf_reset(&c->in);
        gw_ctr_inc(&c->w->st.errors[GW_ERR_BAD_REQUEST]);
        gw_conn_respond(c, status, false, NULL);
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
            gw_up_send(r->up);
        if (!c->closed && c->state == CS_PROXY && !r->body_done && r->up && !r->up->connecting)
            gw_conn_set_timeout(c, TMO_BODY, CFG->timeouts.client_body_ms);
        break;
    }
    default:
        break;
    }
}

/* ---- the response from upstream ---- */

static void dechunk_cb(void *ud, const char *p, size_t n)
{
    buf_append((struct buf *)ud, p, n);
}

/* Parses the response head (forwarding interim 1xx), then validates body
 * bytes and writes what it can to the client. Called whenever the
 * upstream delivered bytes or closed. */
void gw_conn_resp_progress(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_upconn *u = r->up;
    while (!r->resp_head) {
        struct http_header hdrs[GW_MAX_HEADERS_CAP];
        struct http_response resp;
        int n = http_parse_response(buf_rptr(&u->in), buf_len(&u->in), &resp, hdrs, GW_MAX_HEADERS_CAP,
                                    CFG->limits.max_header_bytes);
        if (n == HTTP_INCOMPLETE) {
            /* An interim response (100 Continue) goes out now: the client
             * may be waiting for it before sending the body. */
            if (buf_len(&c->out))
                gw_conn_flush(c);
            return;
        }
        if (n < 0) {
            gw_conn_up_failed(c, GW_ERR_UP_BAD_RESPONSE, true);
            return;
        }
        if (resp.status == 101 || (resp.status >= 100 && resp.status < 200 && r->minor == 0)) {
            /* We never forward Upgrade, so 101 is a protocol error; 1xx
             * to an HTTP/1.0 client is dropped (RFC 9110 15.2). */
            if (resp.status == 101) {
                gw_conn_up_failed(c, GW_ERR_UP_BAD_RESPONSE, true);
                return;
            }
            buf_consume(&u->in, (size_t)n);
            continue;
        }
        r->status = resp.status;
        if (resp.status < 200) {
            gw_rewrite_response(c, &resp);
            buf_consume(&u->in, (size_t)n);
            continue;
        }
        r->resp_head = true;
        r->rbody = http_response_body(&resp, r->m);
        r->up_reusable = resp.minor == 1 ? !(resp.flags & HTTP_F_CONN_CLOSE)
                                         : (resp.flags & HTTP_F_CONN_KEEPALIVE) != 0;
        if (r->rbody == HTTP_BODY_EOF)
            r->up_reusable = false;
        if (r->rbody == HTTP_BODY_CHUNKED) {
            http_chunked_init(&r->rch, 65536);
            r->dechunk = r->minor == 0;
        } else if (r->rbody == HTTP_BODY_LENGTH) {
            r->rleft = (uint64_t)resp.content_length;
        }
        if (atomic_load_explicit(&gw_g->stopping, memory_order_relaxed))
            c->close_after = true;
        gw_rewrite_response(c, &resp);
        buf_consume(&u->in, (size_t)n);
        if (r->rbody == HTTP_BODY_NONE || (r->rbody == HTTP_BODY_LENGTH && r->rleft == 0))
            r->resp_done = true;
        gw_passive_success(r->srv);
        gw_conn_server_settle(c, resp.status < 500 ? GW_SRVBRK_SUCCESS : GW_SRVBRK_FAILURE);
    }
    /* Body bytes. */
    size_t avail = buf_len(&u->in) - r->rfwd;
    if (!r->resp_done && avail) {
        switch (r->rbody) {
        case HTTP_BODY_LENGTH: {
            size_t take = (size_t)FG_MIN((uint64_t)avail, r->rleft);
            r->rfwd += take;
            r->rleft -= take;
            if (r->rleft == 0)
                r->resp_done = true;
            break;
        }
        case HTTP_BODY_CHUNKED: {
            ssize_t n;
            if (r->dechunk) {
                n = http_chunked_feed(&r->rch, buf_rptr(&u->in), avail, dechunk_cb, &c->out);
                if (n > 0)
                    buf_consume(&u->in, (size_t)n);
            } else {
                n = http_chunked_feed(&r->rch, buf_rptr(&u->in) + r->rfwd, avail, NULL, NULL);
                if (n > 0)
                    r->rfwd += (size_t)n;
            }
            if (n < 0) {
                r->up_reusable = false;
                gw_conn_up_failed(c, GW_ERR_UP_BAD_RESPONSE, true);
                return;
            }
            if (r->rch.done)
                r->resp_done = true;
            break;
        }
        case HTTP_BODY_EOF:
            r->rfwd = buf_len(&u->in);
            break;
        case HTTP_BODY_NONE:
            break;
        }
    }
    if (!r->resp_done)
        gw_conn_set_timeout(c, TMO_RESPONSE, CFG->timeouts.upstream_response_ms);
    int rc = gw_conn_flush(c);
    if (rc < 0)
        return;
    if (!r->resp_done)
        return;
    /* Response complete upstream. Bytes the client has not taken yet move
     * to c->out so the upstream connection can go back to the pool now. */
    if (r->rfwd) {
        buf_append(&c->out, buf_rptr(&u->in), r->rfwd);
        buf_consume(&u->in, r->rfwd);
        r->rfwd = 0;
    }
    if (buf_len(&u->in))
        r->up_reusable = false; /* bytes past the response: not trustworthy */
    bool reusable = r->up_reusable && r->sent;
    if (!r->sent)
        c->close_after = true; /* the server answered before the body ended */
    r->up = NULL;
    gw_up_release(u, reusable);
    if (buf_len(&c->out) == 0) {
        gw_conn_finished(c);
    } else {
        c->state = CS_RESPOND;
        gw_conn_set_timeout(c, TMO_SEND, CFG->timeouts.client_idle_ms);
    }
}

/* ---- I/O and timers ---- */

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
            gw_conn_want_read(c, false);
            break;
        }
        char *p = gw_buf_prepare(c->w, &c->in);
        ssize_t n = read(c->fd, p, GW_IO_CHUNK);
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
            if ((size_t)n < GW_IO_CHUNK)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        /* EOF or error from the client. After a complete request (or
         * during our own response) a FIN is a half-close: answer, then
         * close. Anywhere else the exchange is over. */
        bool complete = (c->state == CS_PROXY && c->r.body_done) || c->state == CS_RESPOND;
        if (n < 0 || !complete) {
            gw_conn_close(c);
            return;
        }
        c->peer_eof = true;
        gw_conn_want_read(c, false);
        break;
    }
    process(c);
}

static void client_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct gw_conn *c = ud;
    if (events & EV_WRITE) {
        int rc = gw_conn_flush(c);
        if (rc < 0)
            return;
        if (rc == 0 && c->state == CS_RESPOND)
            gw_conn_finished(c);
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
        gw_conn_respond(c, 408, false, NULL);
        break;
    case TMO_BODY:
        gw_conn_error(c, 408, GW_ERR_TIMEOUT_CLIENT);
        break;
    case TMO_CONNECT:
        /* Retried like a refused connect, but a final failure is 504. */
        c->r.connect_timeout = true;
        gw_conn_up_failed(c, GW_ERR_UP_CONNECT, true);
        break;
    case TMO_RESPONSE:
        gw_conn_up_failed(c, GW_ERR_UP_TIMEOUT, true);
        break;
    case TMO_DELAY:
        gw_conn_admit_and_send(c);
        break;
    case TMO_RLWAIT:
        gw_conn_rl_timeout(c);
        break;
    case TMO_QUEUE:
        /* The queue's own deadline should have answered first. */
        if (c->r.queued) {
            gw_adm_queue_remove(gw_worker_admq(c->w, c->r.rt), &c->r.ent);
            c->r.queued = false;
            gw_conn_shed(c);
        }
        break;
    }
}
