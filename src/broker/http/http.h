/* floodgate broker: the HTTP side of the server, private to broker/http
 * and broker.c.
 *
 *   server.c  the broker's hooks on the core connection layer
 *             (core/httpd.h): its limits, its error answers, the
 *             listener, stopping;
 *   router.c  which handler a complete request goes to (health, metrics,
 *             topics, the native API, the SQS API) after the browser
 *             checks (core/xsite.h) and CORS preflights;
 *   reply.c   the services handlers call: answers in the API of the
 *             request, actions, group commits that hold answers until
 *             they are durable, long polls parked and woken;
 *   native.c  the native HTTP/JSON API on the engine's typed calls
 *             (native_msg.c: sending, receiving, deleting, visibility).
 *
 * A held answer (commit or long poll) uses the layer's hold/release
 * contract: the connection parses nothing more until reply.c appends the
 * answer and calls httpd_release(). */
#ifndef FG_BROKER_HTTP_HTTP_H
#define FG_BROKER_HTTP_HTTP_H

#include "broker/broker.h"

enum bk_wait { BK_WAIT_NONE, BK_WAIT_COMMIT, BK_WAIT_POLL };
enum bk_api { BK_API_SQS, BK_API_NATIVE };

struct bk_conn;
struct bk_recv;
/* Answers a receive's messages (r, then freed by the caller) in the API
 * of the request: the front end that starts the receive picks it (the
 * SQS protocols in reply.c, native JSON in native_msg.c). */
typedef void (*bk_recv_render_fn)(struct bk_conn *c, const struct bk_recv *rv, const struct bk_receive_result *r,
                                  bool hold);

/* A receive in typed form: what a parked long poll keeps to run again. */
struct bk_recv {
    uint32_t qid;                 /* looked up on each run: the queue may go */
    struct bk_receive_args args;
    struct bk_recv_select sel;    /* SQS attribute selection (native shows all) */
    bk_recv_render_fn render;
};

/* One client connection: the layer's part first (c->h.req, c->h.body,
 * c->h.out), then the broker's. */
struct bk_conn {
    struct httpd_conn h;
    struct bk_server *srv;
    struct bk_conn *cnext;        /* commit group this connection waits in */
    uint8_t wait;                 /* enum bk_wait */
    uint8_t api;                  /* enum bk_api of the request in progress */
    uint8_t proto;                /* enum sqs_proto of an SQS request */
    bool head_only;               /* HEAD request */
    bool retry_after;             /* the next answer says Retry-After (refused for now) */
    struct buf held;              /* the response waiting for its commit */
    char reqid[40];
    const char *cors_allow;       /* Access-Control-Allow-Origin of this request's answer, or NULL */
    /* long poll */
    struct bk_waiter waiter;
    struct bk_recv poll;          /* the parked receive */
    uint64_t poll_deadline;       /* loop clock, ms */
    struct ev_timer poll_timer;   /* the poll's deadline (while wait is BK_WAIT_POLL) */
};

/* One store commit: the connections whose answers wait for it. */
struct bk_commit {
    struct bk_server *srv;
    struct bk_conn *head, *tail;
    uint64_t started_ns;
    uint32_t n;
};

/* server.c */
int bk_server_listen(struct bk_server *s, char **err);
/* SIGTERM: stop accepting, close each connection after its next answer,
 * end the long polls now and close the idle connections. */
void bk_server_begin_stop(struct bk_server *s);
/* Closes every connection (shutdown, or the stop deadline passed). */
void bk_server_close_all(struct bk_server *s);
/* Frees the listener and every connection; none may still be held by a
 * commit group. */
void bk_server_free(struct bk_server *s);
uint32_t bk_server_nconns(const struct bk_server *s);

/* router.c */
/* Handles the complete request in c (head in c->h.req, body in c->h.body):
 * the layer's on_request hook. */
void bk_dispatch(struct httpd_conn *hc);

/* reply.c */
/* Appends a response: status, content type, body, optional extra header
 * line ("Name: value", no CRLF). To c->held when hold, else c->h.out. */
void bk_respond(struct bk_conn *c, int status, const char *ctype, const char *body, size_t len,
                const char *extra, bool hold);
/* A JSON error body {"error": msg, "code": code} with status. */
void bk_respond_error(struct bk_conn *c, int status, const char *code, const char *msg);
/* An SQS error in the protocol of c's request (c->proto). */
void bk_sqs_error_respond(struct bk_conn *c, const struct sqs_error *err, bool hold);
/* Renders an action's outcome in the API of the request. */
void bk_render(struct bk_conn *c, const char *action, enum sqs_err rc, const cJSON *res,
               const struct sqs_error *err, bool hold);
/* Before each poll: wake long polls, hand the iteration's commit group to
 * the store, flush it, free dead connections. */
void bk_before_poll(struct bk_server *s);
/* A long poll's deadline passed (c->poll_timer). */
void bk_poll_timer_cb(struct ev_loop *loop, struct ev_timer *t);
/* Forgets a closing connection's long poll. */
void bk_poll_cancel(struct bk_conn *c);
/* Joins the current commit group (answer held in c->held). */
void bk_commit_join(struct bk_conn *c);
/* Shutdown: lets go of the group never handed to the store. */
void bk_commit_abandon(struct bk_server *s);
/* Ends every long poll now with an empty answer (shutdown). */
void bk_polls_finish(struct bk_server *s);
/* The base URL ("http://host:port") for queue URLs in answers to c. */
char *bk_base_url(const struct bk_conn *c);
/* Decides whether an action of c may run now. BK_REFUSE_LOG_FAILED: a
 * log write is failing and the action is not reads_only; BK_REFUSE_DISK_LOW:
 * the disk is under disk_free_limit and the action grows the log (adds
 * messages). A refusal fills msg (the reason, for the caller's API error),
 * counts it and sets c->retry_after. */
enum bk_refusal { BK_REFUSE_NONE, BK_REFUSE_DISK_LOW, BK_REFUSE_LOG_FAILED };
enum bk_refusal bk_refuse_write(struct bk_conn *c, bool grows, bool reads_only, char *msg, size_t cap);
/* The refusal of bk_refuse_write as an SQS error (SQS_OK: none). */
enum sqs_err bk_refused(struct bk_conn *c, bool grows, bool reads_only, struct sqs_error *err);
/* Runs an action for c with the engine (the wall clock is read here).
 * ReceiveMessage never waits here: the SQS API receives with
 * bk_recv_sqs. */
enum sqs_err bk_run_action(struct bk_conn *c, const char *action, const cJSON *params,
                           const char *base, cJSON **result, struct sqs_error *err, struct bk_ctx *ctx);
/* Runs a receive (rv's selection is taken over): answers it, or parks it
 * as a long poll when nothing is receivable and it may wait. The caller
 * checked the refusals and found the queue. */
void bk_recv_start(struct bk_conn *c, struct bk_recv *rv);
/* SQS ReceiveMessage with canonical params, in any SQS protocol. */
void bk_recv_sqs(struct bk_conn *c, const cJSON *params);

/* native.c */
void bk_native(struct bk_conn *c, const char *path, size_t plen, const char *query, size_t qlen);
/* A successful action's answer in the native API: {"ok":true}. */
void bk_native_render(struct bk_conn *c, bool hold);
void bk_native_error(struct bk_conn *c, const struct sqs_error *err, bool hold);
/* The request says Content-Type: application/json. */
bool bk_native_json_body(const struct bk_conn *c);
/* The body as a JSON object (strict: one value, nothing after it; NULL
 * for an empty body); *bad when it is not one. */
cJSON *bk_native_body_object(struct bk_conn *c, bool *bad);

#endif
