/* The request's way through the gateway, in one place (pipeline.c has
 * the tables; docs/internals/gateway.md the list with its reasons).
 *
 * Request stages, in order:
 *   route    host + path -> route and service           400, 404
 *   acl      the route's allow/deny lists               403
 *   limit    the route's rate-limit rules               429, 503; may ask Redis
 *   prio     priority class, retry budget's request count
 *   rewrite  prefix strip, balancer hash, upstream head; the head is consumed
 *   hold     waits for the Redis answer, then for a limit's delay
 *   shed     admission: concurrency limit, priority queue   503
 *   breaker  the service's circuit breaker                  fallback
 *   balance  a server by algorithm, skipping open breakers  fallback
 *   send     an upstream connection; the exchange starts
 * Response stages (each time the upstream delivers): head, body, deliver.
 * Finish stages (the response is written): account, log.
 *
 * The stage contract: a stage returns
 *   GW_NEXT      go on with the next stage;
 *   GW_ANSWERED  the request was answered (or the connection closed), or
 *                handed on by the stage (a retry resumed it): stop, and
 *                touch it no more: the connection may already be on its
 *                next request;
 *   GW_WAIT      it waits for an event (Redis answer, admission queue
 *                grant, delay timer, upstream I/O); whoever delivers the
 *                event calls gw_pipeline_resume(r, stage) to go on.
 * A stage that answers uses the connection's answer functions, which
 * drop what is left of the head first. Worker thread of the request. */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include "gateway/proxy/request.h"

enum gw_stage_rc { GW_NEXT, GW_ANSWERED, GW_WAIT };

enum gw_stage_id {
    GW_ST_ROUTE, GW_ST_ACL, GW_ST_LIMIT, GW_ST_PRIO, GW_ST_REWRITE, GW_ST_HOLD,
    GW_ST_SHED, GW_ST_BREAKER, GW_ST_BALANCE, GW_ST_SEND, GW_NSTAGES,
};

typedef int gw_stage_cb(struct gw_req *r);

struct gw_stage {
    const char *name;
    gw_stage_cb *run;
};

/* Runs a new request from the first stage. hreq is its parsed head,
 * whose r->head_len bytes are still at the front of the connection's
 * buffer. Returns the last stage's result. */
int gw_pipeline_start(struct gw_req *r, const struct http_request *hreq);
/* Goes on from stage from (a waiting stage's event arrived, or a retry
 * or fallback needs a server again). Returns the last stage's result. */
int gw_pipeline_resume(struct gw_req *r, enum gw_stage_id from);
/* The upstream delivered bytes (or closed): head, body, deliver. */
int gw_pipeline_response(struct gw_req *r);
/* The response is fully written: account, log. */
void gw_pipeline_finish(struct gw_req *r);
/* A stage's name ("route" ...), NULL out of range: for logs and tests. */
const char *gw_pipeline_stage_name(enum gw_stage_id id);

/* The driver over any table: runs t[from..n) until a stage returns
 * other than GW_NEXT. Exposed for tests. */
int gw__pipeline_run(const struct gw_stage *t, size_t n, struct gw_req *r, size_t from);

/* ---- stage bodies, in the files named for what they do ---- */
/* limit.c: rate limiting (limit) and waiting for its answer (hold) */
int gw__stage_limit(struct gw_req *r);
int gw__stage_hold(struct gw_req *r);
/* resil.c: admission (shed), the service breaker (breaker) */
int gw__stage_shed(struct gw_req *r);
int gw__stage_breaker(struct gw_req *r);
/* response.c: the upstream's response, and the request's accounting */
int gw__resp_head(struct gw_req *r);
int gw__resp_body(struct gw_req *r);
int gw__resp_deliver(struct gw_req *r);
int gw__resp_account(struct gw_req *r);

#endif
