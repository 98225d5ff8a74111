/* Client connections (HTTP/1), the request each carries (request.h) and
 * upstream connections. Included by the proxy's files (proxy.c,
 * upstream.c, rewrite.c, pipeline.c, limit.c, resil.c, response.c), by
 * worker.c (the connection list, closing), resilience/registry.c (the
 * admission queue's grant) and guard/guard.c.
 *
 * Data flow, each direction through one buffer:
 *   client -> c->in  -> (head rewritten into r->head) -> upstream fd
 *                       (body bytes written straight from c->in)
 *   upstream -> u->in -> (head rewritten into c->out) -> client fd
 *                       (body bytes written straight from u->in)
 * r->fwd / r->rfwd count the validated body bytes at the front of c->in /
 * u->in that may be written to the other side. A side whose buffer holds
 * GW_BUF_HIGH bytes stops being read until the other side drains it, so
 * memory per connection is bounded whatever the body size. */
#ifndef GW_CONN_H
#define GW_CONN_H

#include "gateway/proxy/request.h"
#include "gateway/balance/health.h"
#include "core/log.h"

#include <arpa/inet.h>

enum gw_cstate {
    CS_HEAD,     /* reading a request head (or idle between requests) */
    CS_PROXY,    /* a request is being proxied */
    CS_RESPOND,  /* writing a gateway-generated response */
    CS_LINGER,   /* write side shut, discarding input until EOF or timeout */
};

enum gw_tmo {
    TMO_NONE, TMO_IDLE, TMO_HEADER, TMO_BODY, TMO_CONNECT, TMO_RESPONSE, TMO_SEND,
    TMO_LINGER, TMO_DRAIN, TMO_DELAY, TMO_QUEUE, TMO_RLWAIT,
};

struct gw_upconn {
    int fd;
    struct gw_server *srv;   /* reference held */
    struct gw_worker *w;
    struct gw_conn *c;       /* owner while a request uses it, else NULL (pooled) */
    struct buf in;
    struct ev_timer timer;   /* pooled idle timeout */
    bool connecting;
    bool reused;             /* taken from the pool for the current request */
    struct gw_upconn *next, *prev; /* pool list (per server slot) */
};

struct gw_conn {
    struct gw_worker *w;
    int fd;
    enum gw_cstate state;
    enum gw_tmo tmo;
    struct net_addr peer;
    char ip[INET6_ADDRSTRLEN];
    uint8_t ip_len;
    struct buf in;
    struct buf out;
    struct ev_timer timer;
    uint64_t deadline;          /* ms; when tmo fires */
    uint32_t nreq;              /* requests served on this connection */
    bool in_req;                /* r holds a request */
    bool close_after;           /* close once the current response is out */
    bool peer_eof;              /* client sent FIN */
    bool reading;               /* EV_READ wanted */
    bool closed;
    bool guard_counted;         /* counted in the per-client connection table */
    struct gw_req r;            /* the current request, embedded: no allocation per request */
    struct gw_conn *next, *prev; /* worker's list of live connections */
    struct gw_conn *next_closed;
};

/* proxy.c: the connection */
void gw_conn_close(struct gw_conn *c);   /* also worker.c */
void gw__conn_set_timeout(struct gw_conn *c, enum gw_tmo kind, uint64_t ms);
void gw__conn_want_read(struct gw_conn *c, bool on);
/* Writes c->out, then the validated response body bytes: 0 all written,
 * 1 the socket is full (EV_WRITE armed), -1 the connection was closed. */
int gw__conn_flush(struct gw_conn *c);
/* Answers with a gateway-generated page (after dropping what is left of
 * the request's input); keep false closes the connection afterwards. */
void gw__conn_respond(struct gw_conn *c, int status, bool keep, const char *extra);
/* gw__conn_respond for a failure: counts it, keeps the connection only
 * when the request's body was read to its end. */
void gw__conn_error(struct gw_conn *c, int status, enum gw_err_kind kind);
void gw__conn_drop_input(struct gw_conn *c);
/* Writes the response built in c->out, then the connection goes on. */
void gw__conn_send_out(struct gw_conn *c);
/* The response is fully written: account, then the next request or close. */
void gw__conn_finished(struct gw_conn *c);
/* Consumes the request's head, scans the body bytes already read; false
 * when the body is invalid (answered). The rewrite stage's end. */
bool gw__conn_take_head(struct gw_conn *c);
/* The exchange with the current server failed: retry elsewhere (resumes
 * the pipeline at balance), fall back, or answer 502/504. */
void gw__conn_up_failed(struct gw_conn *c, enum gw_err_kind kind, bool server_fault);
void gw__req_drop_server(struct gw_req *r);
/* Settles the current attempt with its server's breaker
 * (resilience/server_breaker.h); nothing when none is held. */
void gw__req_server_settle(struct gw_req *r, enum gw_srvbrk_verdict v);
/* One read into b from fd (a worker's cached buffer block). */
enum { GW_RD_DRAINED, GW_RD_MORE, GW_RD_EOF, GW_RD_ERROR };
int gw__io_read(struct gw_worker *w, int fd, struct buf *b);

/* resil.c */
/* The service cannot answer: reroute to its fallback service (GW_NEXT:
 * pick a server there), or answer (GW_ANSWERED). */
int gw__fallback(struct gw_req *r, int status, enum gw_err_kind kind);
void gw__shed(struct gw_req *r);                 /* 503, counted as shed */
void gw__resil_settle(struct gw_req *r);
/* The admission queue let a waiting request go (resilience/registry.c). */
void gw__admission_done(struct gw_req *r, bool admitted);

/* limit.c */
void gw__rl_cancel(struct gw_req *r);
void gw__rl_timeout(struct gw_req *r);           /* the Redis answer's deadline */

/* upstream.c */
/* Gets a pooled connection to srv or starts a new one; NULL with errno. */
struct gw_upconn *gw__up_acquire(struct gw_worker *w, struct gw_server *srv, struct gw_conn *c);
/* Back to the pool when reusable, else closed. */
void gw__up_release(struct gw_upconn *u, bool reusable);
void gw__up_close(struct gw_upconn *u);
/* Writes what the request has ready (head, body bytes); arms EV_WRITE as needed. */
void gw__up_send(struct gw_upconn *u);
void gw__up_want(struct gw_upconn *u, bool rd, bool wr);

/* rewrite.c */
void gw__rewrite_request(struct gw_conn *c, const struct http_request *req,
                        const char *path, size_t path_len);
/* Builds the client response head into c->out; returns false when the
 * response cannot be forwarded (caller answers 502). */
bool gw__rewrite_response(struct gw_conn *c, const struct http_response *resp);
void gw__error_page(struct buf *out, int status, bool close, const char *extra_headers);
/* A configured response (fallback): status, content type and body. */
void gw__custom_page(struct buf *out, int status, bool close, const char *extra_headers, const char *type,
                    const char *body);
void gw__access_log(struct gw_conn *c);

#endif
