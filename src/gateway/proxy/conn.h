/* Client connections, the request in progress on each, and upstream
 * connections. Private to proxy.c, upstream.c and rewrite.c.
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

#include "gateway/gw.h"
#include "gateway/balance/health.h"
#include "gateway/balance/pick.h"
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

struct gw_req {
    struct gw_snapshot *snap;   /* reference held while the request lives */
    const struct gw_route *route;
    struct gw_service *svc;
    struct gw_server *srv;      /* reference held; inflight counted */
    struct gw_server *tried[GW_MAX_TRIES];
    int ntried;
    struct gw_srvbrk_hold sbrk; /* srv's breaker admitted this attempt: settle it (resilience/server_breaker.h) */
    struct gw_upconn *up;
    struct buf head;            /* rewritten request head for the upstream */
    size_t head_sent;
    enum http_method m;
    int minor;                  /* client's HTTP minor version */
    bool keepalive;             /* client wants to keep the connection */
    uint64_t hash;
    uint64_t t_start_ns;
    uint64_t t_sent_ns;
    /* request body */
    enum http_body body;
    uint64_t body_left;         /* Content-Length bytes not yet scanned */
    uint64_t body_bytes;        /* payload bytes seen (limit check) */
    struct http_chunked ch;
    bool body_done;             /* all body bytes scanned */
    bool body_started;          /* some body byte reached an upstream: no retry */
    bool sent;                  /* head and body fully written upstream */
    size_t fwd;                 /* validated body bytes at the front of c->in */
    /* response */
    bool resp_started;          /* some response byte went to the client */
    bool resp_head;             /* final response head parsed */
    int status;
    enum http_body rbody;
    uint64_t rleft;
    struct http_chunked rch;
    bool dechunk;               /* chunked upstream, HTTP/1.0 client */
    bool resp_done;
    bool up_reusable;
    bool connect_timeout;       /* a connect timed out: final failure is 504 */
    size_t rfwd;                /* validated body bytes at the front of u->in */
    uint64_t resp_bytes;        /* bytes sent to the client, for the log */
    struct buf rlhdr;           /* RateLimit fields for the response, when a rule applied */
    struct gw_rlwait *rlw;      /* waiting for the shared (Redis) rate-limit store */
    struct gw_svc_rt *rt;       /* resilience state of the service routed to */
    struct gw_adm_entry ent;    /* admission queue entry (data = the connection) */
    uint8_t prio;               /* enum gw_prio */
    bool queued;                /* waiting in this worker's admission queue */
    bool adm_held;              /* holds an admission slot */
    bool breaker_allowed;       /* the service breaker let it through: record the outcome */
    bool in_fallback;           /* rerouted to the fallback service */
    char method[16];
    char target[256];           /* truncated copy for the access log */
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
    struct gw_req r;
    struct gw_conn *next, *prev; /* worker's list of live connections */
    struct gw_conn *next_closed;
};

/* proxy.c */
void gw_conn_close(struct gw_conn *c);
void gw_conn_set_timeout(struct gw_conn *c, enum gw_tmo kind, uint64_t ms);
void gw_conn_error(struct gw_conn *c, int status, enum gw_err_kind kind);
void gw_conn_resp_progress(struct gw_conn *c);
void gw_conn_up_failed(struct gw_conn *c, enum gw_err_kind kind, bool server_fault);
void gw_conn_want_read(struct gw_conn *c, bool on);
int gw_conn_flush(struct gw_conn *c);

/* Admission finished for a queued request: go on, or answer 503. */
void gw_conn_admission_done(struct gw_conn *c, bool admitted);
/* proxy.c, used by admit.c */
void gw_conn_respond(struct gw_conn *c, int status, bool keep, const char *extra);
void gw_conn_finished(struct gw_conn *c);
void gw_conn_pick_and_send(struct gw_conn *c);
/* admit.c */
enum { GW_RL_PASS, GW_RL_ANSWERED, GW_RL_WAIT };
int gw_conn_rate_limit(struct gw_conn *c, const struct http_request *req, const struct gw_route *rt,
                        uint64_t *delay_us, int head_len);
void gw_conn_admit_and_send(struct gw_conn *c);
void gw_conn_rl_cancel(struct gw_conn *c);
void gw_conn_rl_timeout(struct gw_conn *c);
/* proxy.c: a request Redis admitted goes on (after delay_us). */
void gw_conn_rl_resume(struct gw_conn *c, uint64_t delay_us);
void gw_conn_fallback(struct gw_conn *c, int status, enum gw_err_kind kind);
void gw_conn_shed(struct gw_conn *c);
void gw_conn_resil_settle(struct gw_conn *c);

/* proxy.c: settles the current attempt with its server's breaker
 * (resilience/server_breaker.h); nothing when none is held. */
void gw_conn_server_settle(struct gw_conn *c, enum gw_srvbrk_verdict v);

/* upstream.c */
/* Gets a pooled connection to srv or starts a new one; NULL with errno. */
struct gw_upconn *gw_up_acquire(struct gw_worker *w, struct gw_server *srv, struct gw_conn *c);
/* Back to the pool when reusable, else closed. */
void gw_up_release(struct gw_upconn *u, bool reusable);
void gw_up_close(struct gw_upconn *u);
/* Writes what the request has ready (head, body bytes); arms EV_WRITE as needed. */
void gw_up_send(struct gw_upconn *u);
void gw_up_want(struct gw_upconn *u, bool rd, bool wr);

/* rewrite.c */
void gw_rewrite_request(struct gw_conn *c, const struct http_request *req,
                        const char *path, size_t path_len);
/* Builds the client response head into c->out; returns false when the
 * response cannot be forwarded (caller answers 502). */
bool gw_rewrite_response(struct gw_conn *c, const struct http_response *resp);
void gw_error_page(struct buf *out, int status, bool close, const char *extra_headers);
/* A configured response (fallback): status, content type and body. */
void gw_custom_page(struct buf *out, int status, bool close, const char *extra_headers, const char *type,
                    const char *body);
void gw_access_log(struct gw_conn *c);

#endif
