/* The broker's listener and client connections, on the core HTTP/1
 * connection layer (core/httpd.h), which reads each request with the
 * strict core parser (400 on malformed input, 431 over the head limits,
 * 505, 501), collects its body (Content-Length or chunked, decoded) up to
 * limits.max_request_bytes (413 above), keeps connections alive, writes,
 * and closes with a lingering close. This file gives it the broker's
 * limits and hooks: complete requests go to bk_dispatch() (router.c); the
 * layer's error answers are JSON errors in the broker's shape.
 *
 * An answer may be held (reply.c): until its records are durable, or a
 * long poll. While a connection waits it parses nothing more, so
 * pipelined requests are answered strictly in order; it still reads (up
 * to a bound) to notice a client that hangs up, which ends a long poll.
 *
 * Timeouts: a request head must arrive within header_timeout of its first
 * byte and its body within body_timeout of the head (else 408 and close);
 * an idle keep-alive connection closes after idle_timeout. A connection a
 * commit group still points at is freed only once the group is done. */
#include "broker/http/http.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (64u * 1024)
#define IN_WAIT_MAX (64u * 1024)    /* input buffered while an answer is pending */
#define OUT_HIGH (1u << 20)         /* stop answering while the output holds this much */
#define LINGER_MS 2000
#define BACKLOG 4096

/* The layer's own error answers (framing, limits, timeouts). */
static void on_error(struct httpd_conn *hc, int status, const char *msg)
{
    struct bk_conn *c = (struct bk_conn *)hc;
    c->head_only = false;
    bk_respond_error(c, status, status == 413 ? "RequestTooLarge" : "BadRequest", msg);
}

static void on_open(struct httpd_conn *hc)
{
    struct bk_conn *c = (struct bk_conn *)hc;
    c->srv = httpd_ud(hc->srv);
    ev_timer_init(&c->poll_timer, bk_poll_timer_cb, c);
}

static void on_close(struct httpd_conn *hc)
{
    bk_poll_cancel((struct bk_conn *)hc);
}

static void on_free(struct httpd_conn *hc)
{
    struct bk_conn *c = (struct bk_conn *)hc;
    buf_free(&c->held);
    bk__recv_select_free(&c->poll.sel);
}

int bk_server_listen(struct bk_server *s, char **err)
{
    const struct bk_limits *l = &s->cfg->limits;
    const struct httpd_limits lim = {
        .max_conns = l->max_connections,
        .max_head = l->max_header_bytes,
        .max_headers = l->max_headers,
        .max_body = l->max_request_bytes,
        .max_trailer = BK_MAX_TRAILER,
        .header_ms = l->header_timeout_ms,
        .body_ms = l->body_timeout_ms,
        .idle_ms = l->idle_timeout_ms,
        .write_ms = l->body_timeout_ms,
        .linger_ms = LINGER_MS,
        .read_chunk = READ_CHUNK,
        .in_max = l->max_header_bytes + READ_CHUNK,
        .held_in_max = IN_WAIT_MAX,
        .out_high = OUT_HIGH,
    };
    static const struct httpd_hooks hooks = {
        .conn_size = sizeof(struct bk_conn),
        .on_request = bk_dispatch,
        .on_error = on_error,
        .on_open = on_open,
        .on_close = on_close,
        .on_free = on_free,
    };
    if (net_parse_addr(s->cfg->listen, &s->addr, err) != 0)
        return -1;
    s->httpd = httpd_new(s->loop, &lim, &hooks, s);
    struct net_addr bound;
    int rc = httpd_listen(s->httpd, &s->addr, BACKLOG, &bound);
    if (rc != 0) {
        *err = xasprintf("cannot listen on %s: %s", s->cfg->listen, strerror(-rc));
        return -1;
    }
    if (net_addr_port(&s->addr) == 0)
        s->addr = bound;
    net_addr_str(&s->addr, s->addr_str, sizeof s->addr_str);
    return 0;
}

void bk_server_begin_stop(struct bk_server *s)
{
    /* Every answer from now on closes its connection; waiting long polls
     * are answered now; idle connections go at once, busy ones once
     * their answer is out. */
    httpd_unlisten(s->httpd);
    httpd_drain(s->httpd);
    bk_polls_finish(s);
    httpd_close_idle(s->httpd);
}

void bk_server_close_all(struct bk_server *s)
{
    if (s->httpd)
        httpd_close_all(s->httpd);
}

void bk_server_free(struct bk_server *s)
{
    httpd_free(s->httpd);
    s->httpd = NULL;
}

uint32_t bk_server_nconns(const struct bk_server *s) { return httpd_nconns(s->httpd); }
