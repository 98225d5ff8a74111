/* One client connection: an HTTP/1.1 request/response state machine over
 * a non-blocking socket, driven by the worker's level-triggered loop.
 *
 *   CLOSED --request--> CONNECTING --connected--> SENDING --written--> HEAD
 *   HEAD --head parsed--> BODY --body read--> IDLE (keep-alive) or CLOSED
 *   IDLE --request--> SENDING
 * One request at a time per connection (no pipelining), as browsers and
 * wrk do. The request bytes come from the template's rendered buffer,
 * written as is. A response is parsed with the core's strict parser and
 * its body is counted and dropped: Content-Length, chunked, or until
 * close. Reads go into the worker's scratch buffer; only an incomplete
 * head is copied into the connection's own buffer, so idle connections
 * hold no memory.
 *
 * Connection structs live in the worker's array for the whole run and are
 * never freed, so closing one from inside its own callback is safe: the
 * socket is closed and its watcher stopped, the struct stays. Errors are
 * reported to the worker, which defers the connection's next use (see
 * worker.c), so a failing connect never recurses. */
#include "flood/flood.h"

#include "core/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FL_IN_KEEP 4096 /* a connection's input buffer kept between responses */

static void conn_on_io(struct ev_loop *loop, int fd, void *ud, int events);

bool fl__conn_source(const struct fl_conn *c, uint64_t n, struct net_addr *src)
{
    const struct fl_config *cfg = c->w->cfg;
    const struct fl_sources *s = c->group == FL_ATTACKERS ? &cfg->attacker_sources : &cfg->sources;
    if (!s->total)
        return false;
    /* Connection j of a group with C connections uses addresses j, j+C,
     * j+2C... on successive connects: all distinct at any moment while
     * there are enough, and the whole range is walked over time. */
    uint64_t i = (uint64_t)c->id + n * (uint64_t)cfg->group_conns[c->group];
    struct sockaddr_in *in = (struct sockaddr_in *)&src->ss;
    memset(src, 0, sizeof *src);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(fl_sources_at(s, i));
    in->sin_port = 0;
    src->len = sizeof *in;
    return true;
}

void fl__conn_close(struct fl_conn *c)
{
    if (c->fd >= 0) {
        ev_io_stop(c->w->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->state = FL_CS_CLOSED;
    buf_reset(&c->in);
    buf_shrink_if_empty(&c->in, 0);
}

static void conn_fail(struct fl_conn *c, enum fl_err e)
{
    fl__worker_error(c->w, c, e, ev_clock_ns());
}

/* Says why the first connect of a worker failed (the counts alone do not
 * tell a refused port from a source address that is not local). */
static void connect_failed(struct fl_conn *c, uint64_t n, int err)
{
    struct fl_worker *w = c->w;
    if (w->warned_connect || w->cfg->quiet)
        return;
    w->warned_connect = true;
    struct net_addr src;
    char s[64] = "";
    if (fl__conn_source(c, n, &src)) {
        strcpy(s, " from ");
        net_addr_host(&src, s + 6, sizeof s - 6);
    }
    log_warn("flood: connect to %s%s: %s (counted as connect errors from here on)", w->cfg->target_str, s,
             strerror(err));
}

/* Opens the socket; the request (if any) is sent once connected. Returns
 * false after reporting a connect error. */
static bool conn_connect(struct fl_conn *c)
{
    struct fl_worker *w = c->w;
    struct net_addr src;
    bool has_src = fl__conn_source(c, c->nconnects, &src);
    bool in_progress = false;
    c->nconnects++;
    w->gs[c->group].connects++;
    int fd = net_connect(&w->cfg->target, has_src ? &src : NULL, &in_progress);
    if (fd < 0) {
        connect_failed(c, c->nconnects - 1, -fd);
        if (c->busy)
            conn_fail(c, FL_E_CONNECT);
        else
            atomic_fetch_add_explicit(&w->connected, 1, memory_order_relaxed);
        return false;
    }
    net_set_nodelay(fd);
    c->fd = fd;
    c->state = FL_CS_CONNECTING;
    int rc = ev_io_start(w->loop, fd, EV_WRITE, conn_on_io, c);
    if (rc != 0) {
        fl__conn_close(c);
        if (c->busy)
            conn_fail(c, FL_E_CONNECT);
        return false;
    }
    return true;
}

void fl__conn_preconnect(struct fl_conn *c)
{
    if (c->fd < 0)
        conn_connect(c);
}

/* Writes what is left of the request. */
static void conn_send(struct fl_conn *c)
{
    struct fl_worker *w = c->w;
    const struct buf *req = &w->cfg->mix.t[c->tpl].req;
    size_t len = buf_len(req);
    while (c->wpos < len) {
        ssize_t n = write(c->fd, buf_rptr(req) + c->wpos, len - c->wpos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == ENOTCONN) {
                ev_io_set(w->loop, c->fd, EV_READ | EV_WRITE);
                return;
            }
            conn_fail(c, FL_E_WRITE);
            return;
        }
        if (c->wpos == 0) {
            c->write_ns = ev_clock_ns();
            fl__worker_sent(w, c, c->write_ns);
        }
        c->wpos += (size_t)n;
    }
    w->gs[c->group].bytes_out += len;
    c->state = FL_CS_HEAD;
    if (ev_io_mask(w->loop, c->fd) != EV_READ)
        ev_io_set(w->loop, c->fd, EV_READ);
}

void fl__conn_request(struct fl_conn *c, uint16_t tpl, uint64_t start_ns)
{
    struct fl_worker *w = c->w;
    c->busy = true;
    c->tpl = tpl;
    c->start_ns = start_ns;
    c->write_ns = 0;
    c->wpos = 0;
    c->status = 0;
    c->resp_bytes = 0;
    c->close_after = false;
    uint64_t now = ev_now_ns(w->loop);
    c->deadline_ns = (start_ns > now ? start_ns : now) + w->cfg->timeout_ms * 1000000ull;
    if (c->fd < 0) {
        conn_connect(c);
        return;
    }
    if (c->state == FL_CS_CONNECTING)
        return; /* sent when the connect completes */
    c->state = FL_CS_SENDING;
    conn_send(c);
}

/* The current response ended at now. extra: bytes followed it, which a
 * server must not send unasked: the connection is dropped. */
static void conn_complete(struct fl_conn *c, bool extra)
{
    struct fl_worker *w = c->w;
    uint64_t now = ev_clock_ns();
    c->busy = false;
    c->state = FL_CS_IDLE;
    fl__worker_done(w, c, now);
    if (c->close_after || extra || !w->running)
        fl__conn_close(c);
    fl__worker_conn_free(w, c);
}

/* Results of the steps of conn_process. */
enum { CONN_MORE = 0, CONN_WAIT = 1, CONN_ENDED = -1 };

/* Parses a response head at p[*off..len). Returns CONN_MORE when the body
 * (or the final head after an interim one) follows, CONN_WAIT when more
 * bytes are needed, CONN_ENDED when the request ended. */
static int conn_head(struct fl_conn *c, const char *p, size_t len, size_t *off)
{
    struct fl_worker *w = c->w;
    if (*off == len)
        return CONN_WAIT;
    struct http_header hdrs[FL_MAX_HEADERS];
    struct http_response resp;
    int n = http_parse_response(p + *off, len - *off, &resp, hdrs, FL_MAX_HEADERS, FL_MAX_HEAD);
    if (n == HTTP_INCOMPLETE)
        return CONN_WAIT;
    if (n < 0) {
        conn_fail(c, FL_E_PARSE);
        return CONN_ENDED;
    }
    *off += (size_t)n;
    c->resp_bytes += (uint64_t)n;
    if (resp.status < 200 && resp.status != 101)
        return CONN_MORE; /* interim response: the final one follows */
    c->status = resp.status;
    const struct fl_template *t = &w->cfg->mix.t[c->tpl];
    enum http_body b = resp.status == 101 ? HTTP_BODY_EOF : http_response_body(&resp, t->m);
    c->body_mode = (uint8_t)b;
    /* An answer before the whole request was written (an early
     * 413, say) leaves the connection unusable. */
    c->close_after = w->cfg->conn_per_request || (resp.flags & HTTP_F_CONN_CLOSE) ||
                     (resp.minor == 0 && !(resp.flags & HTTP_F_CONN_KEEPALIVE)) || b == HTTP_BODY_EOF ||
                     c->state == FL_CS_SENDING;
    if (c->state == FL_CS_SENDING)
        ev_io_set(w->loop, c->fd, EV_READ);
    if (b == HTTP_BODY_NONE) {
        conn_complete(c, *off < len);
        return CONN_ENDED;
    }
    if (b == HTTP_BODY_LENGTH)
        c->body_left = (uint64_t)resp.content_length;
    else if (b == HTTP_BODY_CHUNKED)
        http_chunked_init(&c->chunked, FL_MAX_TRAILER);
    c->state = FL_CS_BODY;
    return CONN_MORE;
}

/* Counts the body bytes at p[off..len) off. Returns the bytes consumed in
 * all, or -1 when the request ended. */
static ssize_t conn_body(struct fl_conn *c, const char *p, size_t len, size_t off)
{
    size_t avail = len - off;
    if (c->body_mode == HTTP_BODY_LENGTH) {
        size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
        c->body_left -= take;
        off += take;
        c->resp_bytes += take;
        if (c->body_left == 0) {
            conn_complete(c, off < len);
            return -1;
        }
        return (ssize_t)off;
    }
    if (c->body_mode == HTTP_BODY_CHUNKED) {
        ssize_t r = http_chunked_feed(&c->chunked, p + off, avail, NULL, NULL);
        if (r < 0) {
            conn_fail(c, FL_E_PARSE);
            return -1;
        }
        off += (size_t)r;
        c->resp_bytes += (uint64_t)r;
        if (c->chunked.done) {
            conn_complete(c, off < len);
            return -1;
        }
        return (ssize_t)off;
    }
    /* Until close. */
    c->resp_bytes += avail;
    return (ssize_t)len;
}

/* Runs the response parser over p[0..len). Returns the bytes consumed,
 * or -1 when the request ended (completed or failed): the caller must not
 * touch c's buffer then. */
static ssize_t conn_process(struct fl_conn *c, const char *p, size_t len)
{
    size_t off = 0;
    for (;;) {
        switch (c->state) {
        case FL_CS_SENDING:
        case FL_CS_HEAD: {
            int r = conn_head(c, p, len, &off);
            if (r == CONN_WAIT)
                return (ssize_t)off;
            if (r == CONN_ENDED)
                return -1;
            break;
        }
        case FL_CS_BODY:
            return conn_body(c, p, len, off);
        default:
            /* Bytes on an idle connection: nothing was asked. */
            fl__conn_close(c);
            return -1;
        }
    }
}

/* Readable: one read (more while the scratch fills up), then parse. */
static void conn_read(struct fl_conn *c)
{
    struct fl_worker *w = c->w;
    for (int round = 0; round < 4; round++) {
        bool stash = buf_len(&c->in) > 0;
        char *dst;
        size_t room;
        if (stash) {
            dst = buf_reserve(&c->in, 16384);
            room = buf_room(&c->in);
        } else {
            dst = w->rbuf;
            room = sizeof w->rbuf;
        }
        ssize_t n = read(c->fd, dst, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            if (c->busy)
                conn_fail(c, FL_E_READ);
            else
                fl__conn_close(c);
            return;
        }
        if (n == 0) {
            if (c->busy && c->state == FL_CS_BODY && c->body_mode == HTTP_BODY_EOF) {
                c->close_after = true;
                conn_complete(c, false);
            } else if (c->busy) {
                conn_fail(c, FL_E_CLOSED);
            } else {
                fl__conn_close(c); /* the server closed an idle keep-alive connection */
            }
            return;
        }
        w->gs[c->group].bytes_in += (uint64_t)n;
        w->cur.bytes_in += (uint64_t)n;
        if (!c->busy) {
            fl__conn_close(c);
            return;
        }
        ssize_t used;
        if (stash) {
            buf_commit(&c->in, (size_t)n);
            used = conn_process(c, buf_rptr(&c->in), buf_len(&c->in));
            if (used < 0)
                return;
            buf_consume(&c->in, (size_t)used);
        } else {
            used = conn_process(c, dst, (size_t)n);
            if (used < 0)
                return;
            if ((size_t)used < (size_t)n)
                buf_append(&c->in, dst + used, (size_t)n - (size_t)used);
        }
        if (buf_len(&c->in) > FL_MAX_HEAD + 16384) {
            conn_fail(c, FL_E_PARSE);
            return;
        }
        if ((size_t)n < room)
            return;
    }
}

static void conn_on_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct fl_conn *c = ud;
    FG_UNUSED(fd);
    switch (c->state) {
    case FL_CS_CONNECTING: {
        int r = net_connect_result(c->fd);
        if (r != 0) {
            connect_failed(c, c->nconnects - 1, -r);
            fl__conn_close(c);
            if (c->busy)
                conn_fail(c, FL_E_CONNECT);
            else
                atomic_fetch_add_explicit(&c->w->connected, 1, memory_order_relaxed);
            return;
        }
        if (!c->busy) {
            c->state = FL_CS_IDLE;
            ev_io_set(loop, c->fd, EV_READ);
            atomic_fetch_add_explicit(&c->w->connected, 1, memory_order_relaxed);
            return;
        }
        c->state = FL_CS_SENDING;
        ev_io_set(loop, c->fd, EV_READ);
        conn_send(c);
        return;
    }
    case FL_CS_SENDING:
        if (events & EV_WRITE) {
            conn_send(c);
            if (c->state != FL_CS_HEAD)
                return;
        }
        if (events & (EV_READ | EV_ERROR))
            conn_read(c);
        return;
    case FL_CS_IDLE:
    case FL_CS_HEAD:
    case FL_CS_BODY:
        conn_read(c);
        return;
    default:
        return;
    }
}
