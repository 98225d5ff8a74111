/* A request on its way through the gateway (pipeline.h lists the way):
 * what was routed, limited, admitted and sent for it, and the state of
 * its response. It is an object of its own, not part of the connection
 * it came on, so that any front end can carry one through the same
 * stages; today the front end is the HTTP/1 client connection (conn.h),
 * which embeds its current request (no allocation per request) and
 * reaches it as c->r. r->c points back to that connection, for what the
 * stages still ask of it: the client's address, its input buffer and the
 * answer. Worker thread of the connection. */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include "gateway/gw.h"
#include "gateway/balance/pick.h"

_Static_assert(GW_MAX_TRIES <= GW_PICK_MAX_TRIED, "the balancer bounds tried[]");

struct gw_req {
    struct gw_conn *c;          /* the client connection it came on (kept across requests) */
    struct gw_worker *w;        /* the worker it runs on (kept across requests) */
    /* The parsed head: valid from the pipeline's start until the rewrite
     * stage consumes it (views into the client's buffer). */
    const struct http_request *hreq;
    const char *path;           /* target path (absolute-form resolved), in the head */
    size_t path_len;
    size_t head_len;            /* head bytes still at the front of c->in */
    uint64_t delay_us;          /* the hold stage keeps the request this long first */
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
    struct gw_adm_entry ent;    /* admission queue entry (data = the request) */
    uint8_t prio;               /* enum gw_prio */
    bool queued;                /* waiting in this worker's admission queue */
    bool adm_held;              /* holds an admission slot */
    bool breaker_allowed;       /* the service breaker let it through: record the outcome */
    bool in_fallback;           /* rerouted to the fallback service */
    char method[16];
    char target[256];           /* truncated copy for the access log */
};

#endif
