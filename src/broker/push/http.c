/* The non-blocking HTTP/1.1 client of push delivery (push.h): POSTs to one
 * endpoint over a few keep-alive connections, on the broker's loop.
 *
 * A connection goes connecting -> writing -> reading -> idle (kept for the
 * next request when the answer allows keep-alive) or closed. The answer
 * is parsed with core/http1 and its body is read and thrown away (Content-
 * Length, chunked, or until close), so memory stays at one small buffer per
 * connection whatever the endpoint sends. One timer per request bounds
 * everything from the start of the request to the end of the answer. An
 * idle connection the endpoint closed in the meantime is noticed when the
 * request on it fails before any answer byte: the request is then tried
 * once more on a fresh connection. */
#include "broker/push/push.h"

#include "core/ev.h"
#include "core/http1.h"
#include "core/httpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUSH_MAX_HEAD 16384
#define PUSH_READ_CHUNK 16384

enum pc_state { PC_IDLE = 0, PC_CONNECTING, PC_WRITING, PC_READING, PC_FAILED };

struct push_conn {
    struct push_client *c;
    int fd;
    uint8_t st;                 /* enum pc_state */
    bool reused;                /* the request runs on a kept-alive connection */
    bool got_bytes;             /* some answer byte arrived */
    bool head_done;
    bool keepalive;
    int status;
    int fail;                   /* PC_FAILED: the error to report */
    uint8_t body;               /* enum http_body */
    uint64_t left;              /* HTTP_BODY_LENGTH: bytes still to read */
    struct http_chunked ch;
    struct buf out, in;
    struct ev_timer timer;
    push_done_cb cb;
    void *ud;
    struct push_conn *next;
};

struct push_client {
    struct ev_loop *loop;
    struct net_addr addr;
    char *hostport, *path;
    unsigned max_conns, nconns, inflight;
    uint32_t timeout_ms;
    struct push_conn *conns;
};

/* ---- endpoints ---- */

int push_endpoint_parse(struct push_endpoint *ep, const char *url, char *err, size_t errlen)
{
    memset(ep, 0, sizeof *ep);
    char *e = NULL;
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "only http:// endpoints are supported");
        return -1;
    }
    if (httpc_split_url(url, &ep->hostport, &ep->path, &e) < 0 ||
        net_parse_addr(ep->hostport, &ep->addr, &e) < 0) {
        snprintf(err, errlen, "%s", e ? e : "bad URL");
        free(e);
        push_endpoint_free(ep);
        return -1;
    }
    /* The request target goes into the request line verbatim. */
    for (const char *p = ep->path; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            snprintf(err, errlen, "the endpoint's path holds a space or a control character");
            push_endpoint_free(ep);
            return -1;
        }
    return 0;
}

void push_endpoint_free(struct push_endpoint *ep)
{
    free(ep->hostport);
    free(ep->path);
    ep->hostport = ep->path = NULL;
}

/* ---- connections ---- */

static void conn_io(struct ev_loop *loop, int fd, void *ud, int events);
static void conn_timeout(struct ev_loop *loop, struct ev_timer *t);

static void conn_close(struct push_conn *k)
{
    struct push_client *c = k->c;
    ev_timer_stop(c->loop, &k->timer);
    if (k->fd >= 0) {
        ev_io_stop(c->loop, k->fd);
        close(k->fd);
    }
    for (struct push_conn **pp = &c->conns; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    c->nconns--;
    buf_free(&k->out);
    buf_free(&k->in);
    free(k);
}

static void conn_reset(struct push_conn *k)
{
    buf_reset(&k->out);
    buf_reset(&k->in);
    k->got_bytes = k->head_done = k->keepalive = false;
    k->status = k->fail = 0;
    k->left = 0;
}

static int conn_open(struct push_conn *k)
{
    bool in_progress = false;
    int fd = net_connect(&k->c->addr, NULL, &in_progress);
    if (fd < 0)
        return fd;
    net_set_nodelay(fd);
    k->fd = fd;
    k->reused = false;
    k->st = in_progress ? PC_CONNECTING : PC_WRITING;
    int r = ev_io_start(k->c->loop, fd, EV_WRITE, conn_io, k);
    if (r < 0) {
        close(fd);
        k->fd = -1;
    }
    return r;
}

/* Ends the request on k with status (or -errno) and calls back; the
 * connection is kept idle when the answer allows it. */
static void finish(struct push_conn *k, int status)
{
    struct push_client *c = k->c;
    push_done_cb cb = k->cb;
    void *ud = k->ud;
    k->cb = NULL;
    c->inflight--;
    ev_timer_stop(c->loop, &k->timer);
    if (status >= 200 && k->keepalive) {
        k->st = PC_IDLE;
        conn_reset(k);
        buf_shrink_if_empty(&k->in, 0);
        buf_shrink_if_empty(&k->out, 0);
        ev_io_set(c->loop, k->fd, EV_READ); /* EOF or stray bytes close it */
    } else {
        conn_close(k);
    }
    if (cb)
        cb(ud, status);
}

/* A failure before any answer byte on a reused connection: try once on a
 * fresh connection. */
static void fail(struct push_conn *k, int err)
{
    if (k->reused && !k->got_bytes && err != -ETIMEDOUT) {
        ev_io_stop(k->c->loop, k->fd);
        close(k->fd);
        k->fd = -1;
        buf_reset(&k->in);
        k->out.rpos = 0; /* the whole request again */
        int r = conn_open(k);
        if (r == 0)
            return;
        err = r;
    }
    finish(k, err);
}

static int do_write(struct push_conn *k)
{
    while (buf_len(&k->out)) {
        ssize_t n = send(k->fd, buf_rptr(&k->out), buf_len(&k->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -errno;
        }
        k->out.rpos += (size_t)n; /* keep the bytes: a retry sends them again */
    }
    k->st = PC_READING;
    ev_io_set(k->c->loop, k->fd, EV_READ);
    return 0;
}

/* Consumes answer bytes in k->in; 1 when the answer is complete, 0 for
 * more, or -EPROTO. */
static int parse(struct push_conn *k, bool eof)
{
    while (!k->head_done) {
        struct http_header h[64];
        struct http_response r;
        int n = http_parse_response(buf_rptr(&k->in), buf_len(&k->in), &r, h, ARRAY_SIZE(h),
                                    PUSH_MAX_HEAD);
        if (n == HTTP_INCOMPLETE)
            return eof ? -EPROTO : 0;
        if (n < 0)
            return -EPROTO;
        buf_consume(&k->in, (size_t)n);
        if (r.status < 200)
            continue; /* 100 Continue and friends: the real answer follows */
        k->head_done = true;
        k->status = r.status;
        k->body = (uint8_t)http_response_body(&r, HTTP_M_POST);
        k->left = r.content_length > 0 ? (uint64_t)r.content_length : 0;
        k->keepalive = r.minor == 1 && !(r.flags & HTTP_F_CONN_CLOSE) && k->body != HTTP_BODY_EOF;
        if (k->body == HTTP_BODY_CHUNKED)
            http_chunked_init(&k->ch, 4096);
    }
    size_t avail = buf_len(&k->in);
    switch (k->body) {
    case HTTP_BODY_NONE:
        return 1;
    case HTTP_BODY_LENGTH: {
        size_t take = (size_t)FG_MIN((uint64_t)avail, k->left);
        buf_consume(&k->in, take);
        k->left -= take;
        if (k->left == 0)
            return 1;
        return eof ? -EPROTO : 0;
    }
    case HTTP_BODY_CHUNKED: {
        ssize_t used = http_chunked_feed(&k->ch, buf_rptr(&k->in), avail, NULL, NULL);
        if (used < 0)
            return -EPROTO;
        buf_consume(&k->in, (size_t)used);
        if (k->ch.done)
            return 1;
        return eof ? -EPROTO : 0;
    }
    default: /* until close */
        buf_consume(&k->in, avail);
        return eof ? 1 : 0;
    }
}

static void do_read(struct push_conn *k)
{
    for (;;) {
        char *w = buf_reserve(&k->in, PUSH_READ_CHUNK);
        ssize_t n = read(k->fd, w, PUSH_READ_CHUNK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            fail(k, -errno);
            return;
        }
        if (n == 0 && !k->got_bytes) {
            fail(k, -ECONNRESET);
            return;
        }
        if (n > 0) {
            k->got_bytes = true;
            buf_commit(&k->in, (size_t)n);
        }
        int r = parse(k, n == 0);
        if (r < 0) {
            k->keepalive = false;
            finish(k, r);
            return;
        }
        if (r == 1) {
            if (buf_len(&k->in))
                k->keepalive = false; /* bytes past the answer: do not trust the connection */
            finish(k, k->status);
            return;
        }
        if (n == 0)
            return;
    }
}

static void conn_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct push_conn *k = ud;
    FG_UNUSED(loop);
    FG_UNUSED(fd);
    switch (k->st) {
    case PC_IDLE:
        conn_close(k); /* the endpoint closed it, or sent something unasked */
        return;
    case PC_CONNECTING: {
        int r = net_connect_result(k->fd);
        if (r < 0) {
            fail(k, r);
            return;
        }
        k->st = PC_WRITING;
    }
        /* fall through */
    case PC_WRITING: {
        int r = do_write(k);
        if (r < 0)
            fail(k, r);
        return;
    }
    case PC_READING:
        if (events & (EV_READ | EV_ERROR))
            do_read(k);
        return;
    default:
        return;
    }
}

static void conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct push_conn *k = t->ud;
    FG_UNUSED(loop);
    if (k->st == PC_FAILED) {
        finish(k, k->fail); /* an error found when the request started */
        return;
    }
    k->keepalive = false;
    finish(k, -ETIMEDOUT);
}

/* ---- the client ---- */

struct push_client *push_client_new(struct ev_loop *loop, const struct push_endpoint *ep,
                                    unsigned max_conns, uint32_t timeout_ms)
{
    struct push_client *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->addr = ep->addr;
    c->hostport = xstrdup(ep->hostport);
    c->path = xstrdup(ep->path);
    c->max_conns = max_conns ? max_conns : 1;
    c->timeout_ms = timeout_ms ? timeout_ms : 15000;
    return c;
}

void push_client_free(struct push_client *c)
{
    if (!c)
        return;
    while (c->conns) {
        struct push_conn *k = c->conns;
        if (k->cb) {
            k->keepalive = false;
            finish(k, -ECANCELED);
        } else {
            conn_close(k);
        }
    }
    free(c->hostport);
    free(c->path);
    free(c);
}

unsigned push_client_inflight(const struct push_client *c) { return c->inflight; }

int push_post(struct push_client *c, const char *headers, const char *body, size_t len,
              push_done_cb cb, void *ud)
{
    struct push_conn *k = NULL;
    for (struct push_conn *i = c->conns; i && !k; i = i->next)
        if (i->st == PC_IDLE && !i->cb)
            k = i;
    if (!k) {
        if (c->nconns >= c->max_conns)
            return -EBUSY;
        k = xcalloc(1, sizeof *k);
        k->c = c;
        k->fd = -1;
        buf_init(&k->out);
        buf_init(&k->in);
        ev_timer_init(&k->timer, conn_timeout, k);
        k->next = c->conns;
        c->conns = k;
        c->nconns++;
    }
    conn_reset(k);
    k->cb = cb;
    k->ud = ud;
    c->inflight++;
    buf_printf(&k->out, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n", c->path,
               c->hostport, len);
    if (headers)
        buf_append_str(&k->out, headers);
    buf_append_str(&k->out, "\r\n");
    buf_append(&k->out, body, len);
    ev_timer_start(c->loop, &k->timer, c->timeout_ms);
    if (k->fd >= 0) {
        k->reused = true;
        k->st = PC_WRITING;
        ev_io_set(c->loop, k->fd, EV_WRITE);
        return 0;
    }
    int r = conn_open(k);
    if (r < 0) {
        /* Report on the loop, not from inside this call. */
        k->st = PC_FAILED;
        k->fail = r;
        ev_timer_start(c->loop, &k->timer, 0);
    }
    return 0;
}
