/* The broker's listener and client connections.
 *
 * A connection reads into c->in, parses a request head with the strict
 * core parser (400 on malformed input, 431 over the head limits, 505, 501),
 * copies the head into c->head so its views stay valid, and collects the
 * body (Content-Length or chunked, decoded) into c->body up to
 * limits.max_request_bytes (413 above). A complete request goes to
 * bk_dispatch(). Its answer is either appended to c->out at once, or
 * parked (BK_CS_WAIT): held until its records are durable, or a long
 * poll. While a connection waits it parses nothing more, so pipelined
 * requests are answered strictly in order; it still reads (up to a bound)
 * to notice a client that hangs up.
 *
 * Timeouts: a request head must arrive within header_timeout of its first
 * byte and its body within body_timeout of the head (else 408 and close);
 * an idle keep-alive connection closes after idle_timeout. A closing
 * connection flushes, shuts down its write side and drains the peer for a
 * moment (lingering close) so an early answer (413) is not lost to a
 * reset. Connections are never freed inside their own callbacks: killed
 * ones go on a dead list freed before the next poll, and a connection a
 * commit group still points at stays until the group is done. */
#include "broker/broker.h"

#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024)
#define IN_WAIT_MAX (64u * 1024)    /* input buffered while an answer is pending */
#define OUT_HIGH (1u << 20)         /* stop answering while c->out holds this much */
#define LINGER_MS 2000
#define ACCEPT_BATCH 64
#define BACKLOG 4096

static void conn_run(struct bk_conn *c);

void bk_server_date(struct bk_server *s)
{
    time_t now = time(NULL);
    if (now == s->date_sec)
        return;
    s->date_sec = now;
    http_date(s->date, now);
}

/* ---- lifetime ---- */

void bk_conn_kill(struct bk_conn *c)
{
    if (c->dead)
        return;
    struct bk_server *s = c->srv;
    c->dead = true;
    bk_poll_cancel(c);
    ev_io_stop(s->loop, c->fd);
    ev_timer_stop(s->loop, &c->timer);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    c->prev = NULL;
    c->next = s->dead;
    s->dead = c;
}

static void conn_free(struct bk_conn *c)
{
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->head);
    buf_free(&c->body);
    buf_free(&c->held);
    cJSON_Delete(c->poll_params);
    free(c->poll_base);
    free(c->hdrs);
    free(c);
}

void bk_conn_unref(struct bk_conn *c)
{
    ASSERT(c->refs > 0);
    c->refs--;
}

void bk_server_free_dead(struct bk_server *s)
{
    struct bk_conn **pp = &s->dead;
    while (*pp) {
        struct bk_conn *c = *pp;
        if (c->refs) {
            pp = &c->next; /* a commit group still points at it */
            continue;
        }
        *pp = c->next;
        conn_free(c);
    }
}

void bk_server_close_all(struct bk_server *s)
{
    while (s->conns)
        bk_conn_kill(s->conns);
}

/* ---- errors that end a connection ---- */

/* Answers with a JSON error and closes afterwards: the request stream can
 * no longer be trusted (bad framing, limits, timeouts). */
static void conn_fail(struct bk_conn *c, int status, const char *msg)
{
    c->closing = true;
    c->keep_alive = false;
    c->head_only = false;
    bk_respond_error(c, status, status == 413 ? "RequestTooLarge" : "BadRequest", msg);
    buf_reset(&c->in);
}

/* ---- requests ---- */

static void body_chunk(void *ud, const char *p, size_t n)
{
    struct bk_conn *c = ud;
    if (c->body_too_big || buf_len(&c->body) + n > c->srv->cfg->limits.max_request_bytes) {
        c->body_too_big = true;
        return;
    }
    buf_append(&c->body, p, n);
}

/* Starts a request whose head is the first n bytes of c->in. Returns
 * false when the connection must stop (an error answer was queued). */
static bool begin_request(struct bk_conn *c, size_t n)
{
    const struct bk_limits *l = &c->srv->cfg->limits;
    buf_reset(&c->head);
    buf_reset(&c->body);
    buf_append(&c->head, buf_rptr(&c->in), n);
    buf_consume(&c->in, n);
    int rc = http_parse_request(buf_rptr(&c->head), buf_len(&c->head), &c->req, c->hdrs, l->max_headers,
                                l->max_header_bytes);
    ASSERT(rc == (int)n);
    const struct http_request *h = &c->req;
    c->body_kind = http_request_body(h);
    c->body_left = 0;
    c->body_too_big = false;
    if (c->body_kind == HTTP_BODY_LENGTH) {
        if ((uint64_t)h->content_length > l->max_request_bytes) {
            conn_fail(c, 413, "request body too large");
            return false;
        }
        c->body_left = (uint64_t)h->content_length;
        /* Room for a typical body now; larger ones grow as bytes arrive,
         * so a declared length alone costs no memory. */
        buf_reserve(&c->body, (size_t)FG_MIN(c->body_left + 1, 64u * 1024));
    } else if (c->body_kind == HTTP_BODY_CHUNKED) {
        http_chunked_init(&c->chunked, BK_MAX_TRAILER);
    } else if (c->body_kind != HTTP_BODY_NONE) {
        conn_fail(c, 400, "request body without length");
        return false;
    }
    bool has_body = c->body_kind == HTTP_BODY_CHUNKED || c->body_left > 0;
    if ((h->flags & HTTP_F_EXPECT_CONTINUE) && h->minor == 1 && has_body && !buf_len(&c->in))
        buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = BK_CS_BODY;
    ev_timer_start(c->srv->loop, &c->timer, l->body_timeout_ms);
    return true;
}

/* Moves body bytes from c->in to c->body: 1 complete, 0 more needed,
 * -1 the connection must stop. */
static int read_body(struct bk_conn *c)
{
    if (c->body_kind == HTTP_BODY_LENGTH) {
        size_t take = (size_t)FG_MIN((uint64_t)buf_len(&c->in), c->body_left);
        buf_append(&c->body, buf_rptr(&c->in), take);
        buf_consume(&c->in, take);
        c->body_left -= take;
        return c->body_left == 0;
    }
    if (c->body_kind == HTTP_BODY_CHUNKED) {
        ssize_t n = http_chunked_feed(&c->chunked, buf_rptr(&c->in), buf_len(&c->in), body_chunk, c);
        if (n < 0) {
            conn_fail(c, 400, "bad chunked encoding");
            return -1;
        }
        buf_consume(&c->in, (size_t)n);
        if (c->body_too_big) {
            conn_fail(c, 413, "request body too large");
            return -1;
        }
        return c->chunked.done;
    }
    return 1;
}

/* Answers the complete requests in c->in, in order, until one has to
 * wait, output backs up, or input runs out. */
static void conn_process(struct bk_conn *c)
{
    const struct bk_limits *l = &c->srv->cfg->limits;
    while (!c->closing && !c->dead && c->state != BK_CS_WAIT && buf_len(&c->out) < OUT_HIGH) {
        if (c->state == BK_CS_HEAD) {
            if (!buf_len(&c->in))
                break;
            struct http_request req;
            int n = http_parse_request(buf_rptr(&c->in), buf_len(&c->in), &req, c->hdrs, l->max_headers,
                                       l->max_header_bytes);
            if (n == HTTP_INCOMPLETE)
                break;
            if (n < 0) {
                conn_fail(c, http_error_status(n), http_error_text(n));
                break;
            }
            if (!begin_request(c, (size_t)n))
                break;
        }
        int rc = read_body(c);
        if (rc <= 0)
            break;
        /* NUL after the body (outside its length) for parsers that want
         * a C string. */
        buf_reserve(&c->body, 1)[0] = '\0';
        c->state = BK_CS_HEAD;
        c->srv->st.requests++;
        bk_dispatch(c);
        if (c->state != BK_CS_WAIT) {
            buf_shrink_if_empty(&c->head, 4096);
            buf_shrink_if_empty(&c->body, 64 * 1024);
            if (buf_len(&c->in) && !c->dead) /* a pipelined request already started */
                ev_timer_start(c->srv->loop, &c->timer, l->header_timeout_ms);
        }
    }
    /* A client that has finished sending gets answers to what it sent in
     * full; a request cut off by EOF is dropped. */
    if (c->peer_eof && c->state != BK_CS_WAIT && !c->closing && buf_len(&c->out) < OUT_HIGH)
        c->closing = true;
}

/* ---- I/O ---- */

static void conn_flush(struct bk_conn *c)
{
    while (buf_len(&c->out)) {
        ssize_t n = send(c->fd, buf_rptr(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            bk_conn_kill(c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    buf_shrink_if_empty(&c->out, 64 * 1024);
    if (c->closing && c->state != BK_CS_LINGER && c->state != BK_CS_WAIT) {
        if (c->peer_eof) {
            bk_conn_kill(c);
            return;
        }
        shutdown(c->fd, SHUT_WR);
        c->state = BK_CS_LINGER;
        buf_free(&c->in);
        ev_timer_start(c->srv->loop, &c->timer, LINGER_MS);
    }
}

/* Reads once. Returns false when the connection was killed. */
static bool conn_read(struct bk_conn *c)
{
    if (c->state == BK_CS_LINGER) {
        char sink[4096];
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            bk_conn_kill(c);
            return false;
        }
        return true;
    }
    bool was_empty = !buf_len(&c->in);
    ssize_t n = read(c->fd, buf_reserve(&c->in, READ_CHUNK), READ_CHUNK);
    if (n > 0) {
        buf_commit(&c->in, (size_t)n);
        if (was_empty && c->state == BK_CS_HEAD)
            ev_timer_start(c->srv->loop, &c->timer, c->srv->cfg->limits.header_timeout_ms);
    } else if (n == 0) {
        c->peer_eof = true;
        if (c->state == BK_CS_WAIT && c->wait == BK_WAIT_POLL) {
            /* Nobody left to answer. */
            bk_conn_kill(c);
            return false;
        }
    } else if (errno != EAGAIN && errno != EINTR) {
        bk_conn_kill(c);
        return false;
    }
    return true;
}

/* Sets the watcher's mask (and the idle timer) from the state. */
static void conn_update(struct bk_conn *c)
{
    struct ev_loop *loop = c->srv->loop;
    int mask = 0;
    if (c->state == BK_CS_LINGER) {
        mask = EV_READ;
    } else {
        size_t cap = c->state == BK_CS_WAIT ? IN_WAIT_MAX : c->srv->cfg->limits.max_header_bytes + READ_CHUNK;
        if (!c->closing && !c->peer_eof && (buf_len(&c->in) < cap || c->state == BK_CS_BODY))
            mask |= EV_READ;
        if (buf_len(&c->out))
            mask |= EV_WRITE;
    }
    if (ev_io_set(loop, c->fd, mask) != 0) {
        bk_conn_kill(c);
        return;
    }
    if (c->state == BK_CS_HEAD && !buf_len(&c->in) && !buf_len(&c->out) && !c->closing)
        ev_timer_start(loop, &c->timer, c->srv->cfg->limits.idle_timeout_ms);
}

static void conn_run(struct bk_conn *c)
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
    } while (!buf_len(&c->out) && c->state == BK_CS_HEAD && buf_len(&c->in) && buf_len(&c->in) != before &&
             !c->closing);
    conn_update(c);
}

void bk_conn_resume(struct bk_conn *c)
{
    if (c->dead)
        return;
    /* The timer served the wait; the next state sets its own. */
    ev_timer_stop(c->srv->loop, &c->timer);
    if (buf_len(&c->in))
        ev_timer_start(c->srv->loop, &c->timer, c->srv->cfg->limits.header_timeout_ms);
    conn_run(c);
}

static void conn_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct bk_conn *c = ud;
    FG_UNUSED(loop);
    FG_UNUSED(fd);
    if ((events & (EV_READ | EV_ERROR)) && !conn_read(c))
        return;
    if (c->state == BK_CS_LINGER) {
        conn_update(c);
        return;
    }
    conn_run(c);
}

static void conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct bk_conn *c = t->ud;
    FG_UNUSED(loop);
    switch (c->state) {
    case BK_CS_WAIT:
        if (c->wait == BK_WAIT_POLL)
            bk_poll_timeout(c);
        return;
    case BK_CS_HEAD:
        if (!buf_len(&c->in)) {
            bk_conn_kill(c); /* idle */
            return;
        }
        /* a head that did not finish in time */
        __attribute__((fallthrough));
    case BK_CS_BODY:
        conn_fail(c, 408, "request timeout");
        conn_flush(c);
        if (!c->dead)
            conn_update(c);
        return;
    default:
        bk_conn_kill(c);
        return;
    }
}

static void accept_cb(struct ev_loop *loop, int lfd, void *ud, int events)
{
    struct bk_server *s = ud;
    FG_UNUSED(events);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = net_accept(lfd, NULL);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            if (fd != -EINTR && fd != -ECONNABORTED)
                log_warn("broker: accept: %s", strerror(-fd));
            return;
        }
        if (s->nconns >= s->cfg->limits.max_connections || s->stopping) {
            s->st.connections_refused++;
            close(fd);
            continue;
        }
        net_set_nodelay(fd);
        struct bk_conn *c = xcalloc(1, sizeof *c);
        c->srv = s;
        c->fd = fd;
        c->state = BK_CS_HEAD;
        c->hdrs = xcalloc(s->cfg->limits.max_headers, sizeof *c->hdrs);
        ev_timer_init(&c->timer, conn_timeout, c);
        if (ev_io_start(loop, fd, EV_READ, conn_io, c) != 0) {
            close(fd);
            free(c->hdrs);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        s->st.connections_total++;
        ev_timer_start(loop, &c->timer, s->cfg->limits.idle_timeout_ms);
    }
}

int bk_server_listen(struct bk_server *s, char **err)
{
    if (net_parse_addr(s->cfg->listen, &s->addr, err) != 0)
        return -1;
    int fd = net_listen(&s->addr, false, BACKLOG);
    if (fd < 0) {
        *err = xasprintf("cannot listen on %s: %s", s->cfg->listen, strerror(-fd));
        return -1;
    }
    if (net_addr_port(&s->addr) == 0)
        net_local_addr(fd, &s->addr);
    net_addr_str(&s->addr, s->addr_str, sizeof s->addr_str);
    int rc = ev_io_start(s->loop, fd, EV_READ, accept_cb, s);
    if (rc != 0) {
        close(fd);
        *err = xasprintf("cannot watch the listener: %s", strerror(-rc));
        return -1;
    }
    s->lfd = fd;
    return 0;
}
