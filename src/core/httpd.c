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
 * before the next poll unless referenced.
 *
 * With idle_release, the buffers a request needs (input, output, head,
 * header array) are lent from the server's spares when the connection
 * needs one and given back when it is idle again; as only one connection
 * runs at a time, one spare of each serves the common case. */
#include "core/httpd.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100 /* accepting rests this long when descriptors run out */
#define SPARE_KEEP (256u * 1024) /* a larger buffer is freed, not kept as the spare */

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
    struct ev_timer accept_timer; /* resumes accepting after EMFILE */
    struct buf spare_in, spare_out, spare_head, spare_body; /* idle_release: lent to the running connection */
    struct http_header *spare_hdrs;
    struct httpd_stats st;
    time_t date_sec;              /* second date was formatted for */
    char date[HTTP_DATE_SIZE];
};

static void conn_run(struct httpd_conn *c);

/* Output still to write: c->out, then a streamed answer. */
static bool out_pending(const struct httpd_conn *c) { return buf_len(&c->out) || c->view_len || c->refill; }

/* Starts the timer for ms, or stops it when that timeout is off (0). */
static void conn_timer(struct httpd_conn *c, uint64_t ms)
{
    if (ms)
        ev_timer_start(c->srv->loop, &c->timer, ms);
    else
        ev_timer_stop(c->srv->loop, &c->timer);
}

/* ---- idle release: buffers lent from the server's spares ---- */

static void buf_lend(struct buf *spare, struct buf *b)
{
    if (!b->data && spare->data) {
        *b = *spare;
        buf_init(spare);
    }
}

static void buf_give_back(struct buf *spare, struct buf *b)
{
    if (!b->data || buf_len(b))
        return;
    if (spare->data || b->cap > SPARE_KEEP) {
        buf_free(b);
        return;
    }
    buf_reset(b);
    *spare = *b;
    buf_init(b);
}

/* Gives back what a connection between requests does not need. */
static void conn_give_back(struct httpd_conn *c)
{
    struct httpd *h = c->srv;
    if (!h->lim.idle_release || c->dead)
        return;
    if (!out_pending(c))
        buf_give_back(&h->spare_out, &c->out);
    if (c->state != HTTPD_HEAD)
        return;
    buf_give_back(&h->spare_in, &c->in);
    buf_reset(&c->head);
    buf_give_back(&h->spare_head, &c->head);
    buf_reset(&c->body);
    buf_give_back(&h->spare_body, &c->body);
    if (h->spare_hdrs)
        free(c->hdrs);
    else
        h->spare_hdrs = c->hdrs;
    c->hdrs = NULL;
}

/* The header array, lent or allocated, before a head is parsed. */
static struct http_header *conn_hdrs(struct httpd_conn *c)
{
    struct httpd *h = c->srv;
    if (!c->hdrs) {
        c->hdrs = h->spare_hdrs ? h->spare_hdrs : xcalloc(h->lim.max_headers, sizeof *c->hdrs);
        h->spare_hdrs = NULL;
    }
    return c->hdrs;
}

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
        if (c->state == HTTPD_HEAD && !buf_len(&c->in) && !out_pending(c))
            httpd_kill(c);
    }
}

/* ---- requests ---- */

void httpd_fail(struct httpd_conn *c, int status, const char *msg)
{
    c->closing = true;
    c->keep_alive = false;
    c->failed = true;
    c->srv->hooks.on_error(c, status, msg);
    buf_reset(&c->in);
}

static void body_chunk(void *ud, const char *p, size_t n)
{
    struct httpd_conn *c = ud;
    if (c->sink) {
        c->sink(c->sink_ud, p, n);
        return;
    }
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

/* Points the views of r, parsed from from[], to the same bytes copied
 * to to[] (offsets, so that no pointers into different objects are
 * compared). */
static void req_rebase(struct http_request *r, const char *from, char *to)
{
#define REBASE(p) ((p) = (p) ? to + ((p)-from) : NULL)
    REBASE(r->method);
    REBASE(r->target);
    REBASE(r->host);
    for (size_t i = 0; i < r->nheaders; i++) {
        REBASE(r->headers[i].name);
        REBASE(r->headers[i].value);
    }
#undef REBASE
}

/* Starts a request whose head, parsed into c->req, is the first n bytes
 * of c->in. Returns false when the connection must stop (an error answer
 * was queued). */
static bool begin_request(struct httpd_conn *c, size_t n)
{
    const struct httpd_limits *l = &c->srv->lim;
    buf_reset(&c->head);
    buf_reset(&c->body);
    if (l->idle_release) {
        buf_lend(&c->srv->spare_head, &c->head);
        buf_lend(&c->srv->spare_body, &c->body);
    }
    /* The head is copied so that its views outlive c->in's changes. */
    buf_append(&c->head, buf_rptr(&c->in), n);
    req_rebase(&c->req, buf_rptr(&c->in), buf_rptr(&c->head));
    buf_consume(&c->in, n);
    const struct http_request *r = &c->req;
    c->keep_alive = wants_keep_alive(r) && !c->srv->draining;
    c->body_kind = http_request_body(r);
    c->body_left = 0;
    c->body_too_big = false;
    c->sink = NULL;
    if (c->srv->hooks.on_head)
        c->srv->hooks.on_head(c);
    if (c->body_kind == HTTP_BODY_LENGTH) {
        if ((uint64_t)r->content_length > l->max_body && !c->sink) {
            httpd_fail(c, 413, "request body too large");
            return false;
        }
        c->body_left = (uint64_t)r->content_length;
        /* Room for a typical body now; larger ones grow as bytes arrive,
         * so a declared length alone costs no memory. */
        if (!c->sink)
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
    conn_timer(c, l->body_ms);
    return true;
}

void httpd_body_sink(struct httpd_conn *c, http_data_cb cb, void *ud)
{
    c->sink = cb;
    c->sink_ud = ud;
}

void httpd_stream(struct httpd_conn *c, httpd_refill_cb cb)
{
    ASSERT(!c->refill && !c->view_len);
    c->refill = cb;
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
        conn_timer(c, c->srv->lim.header_ms);
}

/* Parses the head at the start of c->in, if complete. Returns true when
 * a request began (its body may still be on its way). */
static bool parse_head(struct httpd_conn *c)
{
    const struct httpd_limits *l = &c->srv->lim;
    if (!buf_len(&c->in))
        return false;
    int n = http_parse_request(buf_rptr(&c->in), buf_len(&c->in), &c->req, conn_hdrs(c), l->max_headers,
                               l->max_head);
    if (n == HTTP_INCOMPLETE)
        return false;
    if (n < 0) {
        httpd_fail(c, http_error_status(n), http_error_text(n));
        return false;
    }
    return begin_request(c, (size_t)n);
}

/* Whether output holds back the next answer: c->out above out_high, or
 * a streamed answer not yet complete. */
static bool out_backed_up(const struct httpd_conn *c)
{
    return buf_len(&c->out) >= c->srv->lim.out_high || c->view_len || c->refill;
}

/* Answers the complete requests in c->in, in order, until one is held,
 * output backs up, or input runs out. Returns true when it stopped for
 * output with input still waiting. */
static bool conn_process(struct httpd_conn *c)
{
    struct httpd *h = c->srv;
    while (!c->closing && !c->dead && c->state != HTTPD_HELD && !out_backed_up(c)) {
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
    bool paused = !c->closing && !c->dead && c->state == HTTPD_HEAD && out_backed_up(c) && buf_len(&c->in);
    if (c->peer_eof && c->state != HTTPD_HELD && !c->closing && !out_backed_up(c))
        c->closing = true;
    return paused;
}

/* ---- I/O ---- */

/* Writes what c->out holds. Once everything is written on a closing
 * connection, shuts down the write side and starts lingering. */
static void conn_flush(struct httpd_conn *c)
{
    for (;;) {
        if (!c->view_len && c->refill && (c->view_len = c->refill(c, &c->view)) == 0)
            c->refill = NULL; /* the streamed answer is complete */
        size_t olen = buf_len(&c->out);
        if (!olen && !c->view_len)
            break;
        struct iovec iov[2];
        struct msghdr m = {.msg_iov = iov};
        if (olen)
            iov[m.msg_iovlen++] = (struct iovec){.iov_base = buf_rptr(&c->out), .iov_len = olen};
        if (c->view_len)
            iov[m.msg_iovlen++] = (struct iovec){.iov_base = (void *)c->view, .iov_len = c->view_len};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            httpd_kill(c);
            return;
        }
        size_t from_out = FG_MIN((size_t)n, olen);
        buf_consume(&c->out, from_out);
        c->view += (size_t)n - from_out;
        c->view_len -= (size_t)n - from_out;
    }
    buf_shrink_if_empty(&c->out, 64 * 1024);
    if (c->closing && c->state != HTTPD_LINGER && c->state != HTTPD_HELD) {
        if (c->peer_eof || (c->srv->lim.quick_close && !c->failed && !buf_len(&c->in))) {
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
    if (c->srv->lim.idle_release)
        buf_lend(&c->srv->spare_in, &c->in);
    ssize_t n = read(c->fd, buf_reserve(&c->in, chunk), chunk);
    if (n > 0) {
        buf_commit(&c->in, (size_t)n);
        if (was_empty && c->state == HTTPD_HEAD)
            conn_timer(c, c->srv->lim.header_ms);
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
        if (out_pending(c))
            mask |= EV_WRITE;
    }
    if (ev_io_set(loop, c->fd, mask) != 0) {
        httpd_kill(c);
        return;
    }
    if (c->state != HTTPD_HEAD || buf_len(&c->in))
        return; /* linger, hold and request deadlines are set when they begin */
    if (out_pending(c))
        conn_timer(c, l->write_ms);
    else if (!c->closing)
        conn_timer(c, l->idle_ms);
}

static void conn_run(struct httpd_conn *c)
{
    bool paused;
    if (c->srv->lim.idle_release)
        buf_lend(&c->srv->spare_out, &c->out);
    do {
        paused = conn_process(c);
        conn_flush(c);
        if (c->dead)
            return;
        /* Parsing paused for output that the socket then took in whole
         * (this time or, on a write event, before): answer the requests
         * still waiting. */
    } while (paused && !out_pending(c) && !c->closing);
    conn_give_back(c);
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
    if (!h->lim.idle_release) /* else lent while a request is parsed */
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
    conn_timer(c, h->lim.idle_ms);
    if (h->hooks.on_open)
        h->hooks.on_open(c);
}

static void accept_cb(struct ev_loop *loop, int lfd, void *ud, int events);

/* Out of descriptors (or memory): the listener stays readable, so without
 * a rest the loop would spin until a descriptor frees up. */
static void accept_pause(struct httpd *h, int err)
{
    log_warn("httpd: accept: %s; pausing accepts for %d ms", strerror(err), ACCEPT_PAUSE_MS);
    for (size_t i = 0; i < h->nlfds; i++)
        ev_io_stop(h->loop, h->lfds[i]);
    ev_timer_start(h->loop, &h->accept_timer, ACCEPT_PAUSE_MS);
}

static void accept_resume(struct ev_loop *loop, struct ev_timer *t)
{
    struct httpd *h = t->ud;
    for (size_t i = 0; i < h->nlfds; i++) {
        int rc = ev_io_start(loop, h->lfds[i], EV_READ, accept_cb, h);
        if (rc != 0)
            log_error("httpd: cannot watch a listener: %s", strerror(-rc));
    }
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
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            accept_pause(h, -fd);
            return;
        }
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

int httpd_adopt(struct httpd *h, int lfd)
{
    int rc = ev_io_start(h->loop, lfd, EV_READ, accept_cb, h);
    if (rc != 0) {
        close(lfd);
        return rc;
    }
    h->lfds = xrealloc(h->lfds, (h->nlfds + 1) * sizeof *h->lfds);
    h->lfds[h->nlfds++] = lfd;
    return 0;
}

int httpd_listen(struct httpd *h, const struct net_addr *addr, int backlog, struct net_addr *bound)
{
    int fd = net_listen(addr, false, backlog);
    if (fd < 0)
        return fd;
    int rc = bound ? net_local_addr(fd, bound) : 0;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return httpd_adopt(h, fd);
}

void httpd_unlisten(struct httpd *h)
{
    for (size_t i = 0; i < h->nlfds; i++) {
        ev_io_stop(h->loop, h->lfds[i]);
        close(h->lfds[i]);
    }
    h->nlfds = 0;
    ev_timer_stop(h->loop, &h->accept_timer);
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
    ev_timer_init(&h->accept_timer, accept_resume, h);
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
    buf_free(&h->spare_in);
    buf_free(&h->spare_out);
    buf_free(&h->spare_head);
    buf_free(&h->spare_body);
    free(h->spare_hdrs);
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
