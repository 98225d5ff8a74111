/* Implementation of httpd.h.
 *
 * A connection reads into c->in, parses a request head with
 * http_parse_request(), copies the head into c->head (so the parsed views
 * stay valid while more bytes arrive and while an answer is held) and
 * collects the body, decoded, into c->body. A complete request goes to
 * hooks.on_request. Parsing stops while an answer is held, while c->out
 * is above out_high, and once the connection is closing; a closing
 * connection flushes c->out, shuts down its write side and drains the
 * peer (lingering close). Killed connections wait on a dead list, freed
 * before the next poll unless referenced. */
#include "core/httpd.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 64

struct httpd {
    struct ev_loop *loop;
    struct httpd_limits lim;
    struct httpd_hooks hooks;
    void *ud;
    int *lfds;                    /* listeners */
    size_t nlfds;
    struct httpd_conn *conns;     /* open connections */
    struct httpd_conn *dead;      /* killed, freed before the next poll */
    uint32_t nconns;
    bool draining;
    struct httpd_stats st;
    time_t date_sec;              /* second date was formatted for */
    char date[HTTP_DATE_SIZE];
};

static void conn_run(struct httpd_conn *c);

/* ---- lifetime ---- */

void httpd_kill(struct httpd_conn *c)
{
    if (c->dead)
        return;
    struct httpd *h = c->srv;
    c->dead = true;
    if (h->hooks.on_close)
        h->hooks.on_close(c);
    ev_io_stop(h->loop, c->fd);
    ev_timer_stop(h->loop, &c->timer);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    c->prev = NULL;
    c->next = h->dead;
    h->dead = c;
}

static void conn_free(struct httpd_conn *c)
{
    if (c->srv->hooks.on_free)
        c->srv->hooks.on_free(c);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->head);
    buf_free(&c->body);
    free(c->hdrs);
    free(c);
}

void httpd_ref(struct httpd_conn *c) { c->refs++; }

void httpd_unref(struct httpd_conn *c)
{
    ASSERT(c->refs > 0);
    c->refs--;
}

void httpd_free_dead(struct httpd *h)
{
    struct httpd_conn **pp = &h->dead;
    while (*pp) {
        struct httpd_conn *c = *pp;
        if (c->refs) {
            pp = &c->next; /* still referenced: stays for a later round */
            continue;
        }
        *pp = c->next;
        conn_free(c);
    }
}

void httpd_close_all(struct httpd *h)
{
    while (h->conns)
        httpd_kill(h->conns);
}

void httpd_close_idle(struct httpd *h)
{
    for (struct httpd_conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == HTTPD_HEAD && !buf_len(&c->in) && !buf_len(&c->out))
            httpd_kill(c);
    }
}

/* ---- requests ---- */

void httpd_fail(struct httpd_conn *c, int status, const char *msg)
{
    c->closing = true;
    c->keep_alive = false;
    c->srv->hooks.on_error(c, status, msg);
    buf_reset(&c->in);
}

static void body_chunk(void *ud, const char *p, size_t n)
{
    struct httpd_conn *c = ud;
    if (c->body_too_big || buf_len(&c->body) + n > c->srv->lim.max_body) {
        c->body_too_big = true;
        return;
    }
    buf_append(&c->body, p, n);
}

static bool wants_keep_alive(const struct http_request *r)
{
    if (r->minor == 0)
        return (r->flags & HTTP_F_CONN_KEEPALIVE) && !(r->flags & HTTP_F_CONN_CLOSE);
    return !(r->flags & HTTP_F_CONN_CLOSE);
}

/* Starts a request whose head is the first n bytes of c->in. Returns
 * false when the connection must stop (an error answer was queued). */
static bool begin_request(struct httpd_conn *c, size_t n)
{
    const struct httpd_limits *l = &c->srv->lim;
    buf_reset(&c->head);
    buf_reset(&c->body);
    buf_append(&c->head, buf_rptr(&c->in), n);
    buf_consume(&c->in, n);
    int rc = http_parse_request(buf_rptr(&c->head), buf_len(&c->head), &c->req, c->hdrs, l->max_headers,
                                l->max_head);
    ASSERT(rc == (int)n);
    const struct http_request *r = &c->req;
    c->keep_alive = wants_keep_alive(r) && !c->srv->draining;
    c->body_kind = http_request_body(r);
    c->body_left = 0;
    c->body_too_big = false;
    if (c->body_kind == HTTP_BODY_LENGTH) {
        if ((uint64_t)r->content_length > l->max_body) {
            httpd_fail(c, 413, "request body too large");
            return false;
        }
        c->body_left = (uint64_t)r->content_length;
        /* Room for a typical body now; larger ones grow as bytes arrive,
         * so a declared length alone costs no memory. */
        buf_reserve(&c->body, (size_t)FG_MIN(c->body_left + 1, 64u * 1024));
    } else if (c->body_kind == HTTP_BODY_CHUNKED) {
        http_chunked_init(&c->chunked, l->max_trailer);
    } else if (c->body_kind != HTTP_BODY_NONE) {
        httpd_fail(c, 400, "request body without length");
        return false;
    }
    bool has_body = c->body_kind == HTTP_BODY_CHUNKED || c->body_left > 0;
    if ((r->flags & HTTP_F_EXPECT_CONTINUE) && r->minor == 1 && has_body && !buf_len(&c->in))
        buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = HTTPD_BODY;
    ev_timer_start(c->srv->loop, &c->timer, l->body_ms);
    return true;
}

ssize_t httpd_body_feed(enum http_body kind, uint64_t *left, struct http_chunked *ch, const char *p, size_t n,
                        http_data_cb cb, void *ud, bool *done)
{
    if (kind == HTTP_BODY_LENGTH) {
        size_t take = (size_t)FG_MIN((uint64_t)n, *left);
        if (take)
            cb(ud, p, take);
        *left -= take;
        *done = *left == 0;
        return (ssize_t)take;
    }
    if (kind == HTTP_BODY_CHUNKED) {
        ssize_t r = http_chunked_feed(ch, p, n, cb, ud);
        *done = r >= 0 && ch->done;
        return r;
    }
    *done = true;
    return 0;
}

/* Moves body bytes from c->in to c->body: 1 complete, 0 more needed,
 * -1 the connection must stop. */
static int read_body(struct httpd_conn *c)
{
    bool done;
    ssize_t n = httpd_body_feed(c->body_kind, &c->body_left, &c->chunked, buf_rptr(&c->in), buf_len(&c->in),
                                body_chunk, c, &done);
    if (n < 0) {
        httpd_fail(c, 400, "bad chunked encoding");
        return -1;
    }
    buf_consume(&c->in, (size_t)n);
    if (c->body_too_big) {
        httpd_fail(c, 413, "request body too large");
        return -1;
    }
    return done;
}

/* A request is answered (now, or released after a hold): close after it
 * when it said so, and time the next one if it already started. */
static void end_request(struct httpd_conn *c)
{
    if (!c->keep_alive)
        c->closing = true;
    buf_shrink_if_empty(&c->head, 4096);
    buf_shrink_if_empty(&c->body, 64 * 1024);
    ev_timer_stop(c->srv->loop, &c->timer);
    if (buf_len(&c->in)) /* a pipelined request already started */
        ev_timer_start(c->srv->loop, &c->timer, c->srv->lim.header_ms);
}

/* Parses the head at the start of c->in, if complete. Returns true when
 * a request began (its body may still be on its way). */
static bool parse_head(struct httpd_conn *c)
{
    const struct httpd_limits *l = &c->srv->lim;
    if (!buf_len(&c->in))
        return false;
    struct http_request req;
    int n = http_parse_request(buf_rptr(&c->in), buf_len(&c->in), &req, c->hdrs, l->max_headers, l->max_head);
    if (n == HTTP_INCOMPLETE)
        return false;
    if (n < 0) {
        httpd_fail(c, http_error_status(n), http_error_text(n));
        return false;
    }
    return begin_request(c, (size_t)n);
}

/* Answers the complete requests in c->in, in order, until one is held,
 * output backs up, or input runs out. */
static void conn_process(struct httpd_conn *c)
{
    struct httpd *h = c->srv;
    while (!c->closing && !c->dead && c->state != HTTPD_HELD && buf_len(&c->out) < h->lim.out_high) {
        if (c->state == HTTPD_HEAD && !parse_head(c))
            break;
        if (read_body(c) <= 0)
            break;
        /* NUL after the body (outside its length) for handlers that use
         * C string functions on it. */
        buf_reserve(&c->body, 1)[0] = '\0';
        c->state = HTTPD_HEAD;
        h->st.requests++;
        h->hooks.on_request(c);
        if (!c->dead && c->state != HTTPD_HELD)
            end_request(c);
    }
    /* A peer that has finished sending gets answers to what it sent in
     * full; a request cut off by EOF is dropped. */
    if (c->peer_eof && c->state != HTTPD_HELD && !c->closing && buf_len(&c->out) < h->lim.out_high)
        c->closing = true;
}

/* ---- I/O ---- */

/* Writes what c->out holds. Once everything is written on a closing
 * connection, shuts down the write side and starts lingering. */
static void conn_flush(struct httpd_conn *c)
{
    while (buf_len(&c->out)) {
        ssize_t n = send(c->fd, buf_rptr(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            httpd_kill(c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    buf_shrink_if_empty(&c->out, 64 * 1024);
    if (c->closing && c->state != HTTPD_LINGER && c->state != HTTPD_HELD) {
        if (c->peer_eof) {
            httpd_kill(c);
            return;
        }
        shutdown(c->fd, SHUT_WR);
        c->state = HTTPD_LINGER;
        buf_free(&c->in);
        ev_timer_start(c->srv->loop, &c->timer, c->srv->lim.linger_ms);
    }
}

/* Reads once. Returns false when the connection was killed. */
static bool conn_read(struct httpd_conn *c)
{
    if (c->state == HTTPD_LINGER) {
        char sink[4096];
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            httpd_kill(c);
            return false;
        }
        return true;
    }
    size_t chunk = c->srv->lim.read_chunk;
    bool was_empty = !buf_len(&c->in);
    ssize_t n = read(c->fd, buf_reserve(&c->in, chunk), chunk);
    if (n > 0) {
        buf_commit(&c->in, (size_t)n);
        if (was_empty && c->state == HTTPD_HEAD)
            ev_timer_start(c->srv->loop, &c->timer, c->srv->lim.header_ms);
    } else if (n == 0) {
        c->peer_eof = true;
        if (c->state == HTTPD_HELD && c->drop_on_eof) {
            httpd_kill(c); /* nobody left to answer */
            return false;
        }
    } else if (errno != EAGAIN && errno != EINTR) {
        httpd_kill(c);
        return false;
    }
    return true;
}

/* Sets the watcher's mask, and the idle or write timer, from the state. */
static void conn_update(struct httpd_conn *c)
{
    const struct httpd_limits *l = &c->srv->lim;
    struct ev_loop *loop = c->srv->loop;
    int mask = EV_READ;
    if (c->state != HTTPD_LINGER) {
        size_t cap = c->state == HTTPD_HELD ? l->held_in_max : l->in_max;
        bool room = buf_len(&c->in) < cap || c->state == HTTPD_BODY;
        mask = !c->closing && !c->peer_eof && room ? EV_READ : 0;
        if (buf_len(&c->out))
            mask |= EV_WRITE;
    }
    if (ev_io_set(loop, c->fd, mask) != 0) {
        httpd_kill(c);
        return;
    }
    if (c->state != HTTPD_HEAD || buf_len(&c->in))
        return; /* linger, hold and request deadlines are set when they begin */
    if (buf_len(&c->out))
        ev_timer_start(loop, &c->timer, l->write_ms);
    else if (!c->closing)
        ev_timer_start(loop, &c->timer, l->idle_ms);
}

static void conn_run(struct httpd_conn *c)
{
    size_t before;
    do {
        before = buf_len(&c->in);
        conn_process(c);
        conn_flush(c);
        if (c->dead)
            return;
        /* Parsing paused for a full c->out that the socket then took in
         * whole: answer the requests still waiting. */
    } while (!buf_len(&c->out) && c->state == HTTPD_HEAD && buf_len(&c->in) && buf_len(&c->in) != before &&
             !c->closing);
    conn_update(c);
}

void httpd_hold(struct httpd_conn *c, bool drop_on_eof)
{
    ASSERT(c->state == HTTPD_HEAD && !c->dead);
    c->state = HTTPD_HELD;
    c->drop_on_eof = drop_on_eof;
    ev_timer_stop(c->srv->loop, &c->timer); /* the holder times its own wait */
}

void httpd_release(struct httpd_conn *c)
{
    ASSERT(c->state == HTTPD_HELD);
    c->state = HTTPD_HEAD;
    c->drop_on_eof = false;
    if (c->dead)
        return;
    end_request(c);
    conn_run(c);
}

static void conn_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct httpd_conn *c = ud;
    FG_UNUSED(loop);
    FG_UNUSED(fd);
    if ((events & (EV_READ | EV_ERROR)) && !conn_read(c))
        return;
    if (c->state == HTTPD_LINGER) {
        conn_update(c);
        return;
    }
    conn_run(c);
}

static void conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct httpd_conn *c = t->ud;
    FG_UNUSED(loop);
    if (c->state == HTTPD_BODY || (c->state == HTTPD_HEAD && buf_len(&c->in))) {
        /* a head or body that did not arrive in time */
        httpd_fail(c, 408, "request timeout");
        conn_flush(c);
        if (!c->dead)
            conn_update(c);
        return;
    }
    if (c->state != HTTPD_HELD)
        httpd_kill(c); /* idle, stalled output, or linger over */
}

/* ---- listeners ---- */

static void conn_open(struct httpd *h, int fd)
{
    net_set_nodelay(fd);
    struct httpd_conn *c = xcalloc(1, h->hooks.conn_size);
    c->srv = h;
    c->fd = fd;
    c->state = HTTPD_HEAD;
    c->hdrs = xcalloc(h->lim.max_headers, sizeof *c->hdrs);
    ev_timer_init(&c->timer, conn_timeout, c);
    if (ev_io_start(h->loop, fd, EV_READ, conn_io, c) != 0) {
        close(fd);
        free(c->hdrs);
        free(c);
        return;
    }
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    h->st.accepted++;
    ev_timer_start(h->loop, &c->timer, h->lim.idle_ms);
    if (h->hooks.on_open)
        h->hooks.on_open(c);
}

static void accept_cb(struct ev_loop *loop, int lfd, void *ud, int events)
{
    struct httpd *h = ud;
    FG_UNUSED(loop);
    FG_UNUSED(events);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = net_accept(lfd, NULL);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            if (fd != -EINTR && fd != -ECONNABORTED)
                log_warn("httpd: accept: %s", strerror(-fd));
            return;
        }
        if (h->nconns >= h->lim.max_conns || h->draining) {
            h->st.refused++;
            close(fd);
            continue;
        }
        conn_open(h, fd);
    }
}

int httpd_listen(struct httpd *h, const struct net_addr *addr, int backlog, struct net_addr *bound)
{
    int fd = net_listen(addr, false, backlog);
    if (fd < 0)
        return fd;
    int rc = bound ? net_local_addr(fd, bound) : 0;
    if (rc == 0)
        rc = ev_io_start(h->loop, fd, EV_READ, accept_cb, h);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    h->lfds = xrealloc(h->lfds, (h->nlfds + 1) * sizeof *h->lfds);
    h->lfds[h->nlfds++] = fd;
    return 0;
}

void httpd_unlisten(struct httpd *h)
{
    for (size_t i = 0; i < h->nlfds; i++) {
        ev_io_stop(h->loop, h->lfds[i]);
        close(h->lfds[i]);
    }
    h->nlfds = 0;
}

void httpd_drain(struct httpd *h)
{
    h->draining = true;
    for (struct httpd_conn *c = h->conns; c; c = c->next)
        c->keep_alive = false;
}

/* ---- the server ---- */

struct httpd *httpd_new(struct ev_loop *loop, const struct httpd_limits *l, const struct httpd_hooks *hooks,
                        void *ud)
{
    ASSERT(hooks->conn_size >= sizeof(struct httpd_conn) && hooks->on_request && hooks->on_error);
    struct httpd *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    h->lim = *l;
    h->hooks = *hooks;
    h->ud = ud;
    return h;
}

void httpd_free(struct httpd *h)
{
    if (!h)
        return;
    httpd_unlisten(h);
    httpd_close_all(h);
    httpd_free_dead(h);
    ASSERT(!h->dead); /* nothing may still hold a reference */
    free(h->lfds);
    free(h);
}

void *httpd_ud(const struct httpd *h) { return h->ud; }
struct ev_loop *httpd_loop(const struct httpd *h) { return h->loop; }
struct httpd_conn *httpd_conns(const struct httpd *h) { return h->conns; }
uint32_t httpd_nconns(const struct httpd *h) { return h->nconns; }
const struct httpd_stats *httpd_stats(const struct httpd *h) { return &h->st; }

const char *httpd_date(struct httpd *h)
{
    time_t now = time(NULL);
    if (now != h->date_sec) {
        h->date_sec = now;
        http_date(h->date, now);
    }
    return h->date;
}
