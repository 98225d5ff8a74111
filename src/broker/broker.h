/* floodgate broker: private definitions of the server around the queue
 * engine (engine.h).
 *
 * One event-loop thread owns everything: the listener, every client
 * connection, the engine and the store's loop side (the store has its own
 * sync thread for writing and fsyncing). No locks on the data path, as in
 * Redis. The files split the work as follows:
 *   broker.c    flags, configuration, startup (store, replay), signals,
 *               shutdown (broker_main);
 *   config.c    the YAML configuration and its embedded default;
 *   server.c    the listener and connections: reading, HTTP/1.1 parsing
 *               with limits and timeouts, writing, keep-alive, closing;
 *   dispatch.c  what a complete request does: the SQS API (both AWS
 *               protocols), the native API, /metrics, /healthz; holding
 *               answers until their records are durable (group commit);
 *               long polls;
 *   native.c    the native HTTP/JSON API, mapped onto the same actions;
 *   http/metrics.c /metrics;
 *   http/admin.c the optional admin listener (--admin), served by asking
 *               the loop thread.
 *
 * Acknowledgement: an action that wrote records (ctx.need_sync) has its
 * response rendered at once but held on the connection; before each poll
 * the server asks the store for one commit covering everything appended
 * in the iteration and, when it completes, releases every held response
 * of that group in order. */
#ifndef FG_BROKER_BROKER_H
#define FG_BROKER_BROKER_H

#include "broker/queue/engine.h"
#include "broker/sqs/actions.h"
#include "broker/sqs/sqs_proto.h"
#include "broker/store/store.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/ev.h"
#include "core/http1.h"
#include "core/metrics.h"
#include "core/net.h"

#include <pthread.h>

#define BK_DEFAULT_LISTEN "127.0.0.1:9324"
#define BK_DEFAULT_DATA "./floodgate-broker-data"
#define BK_MAX_TRAILER 4096u

struct bk_limits {
    uint32_t max_connections;
    uint64_t max_request_bytes;  /* request body, decoded */
    uint32_t max_header_bytes;
    uint32_t max_headers;
    uint64_t header_timeout_ms;  /* a request head must arrive within this */
    uint64_t body_timeout_ms;    /* and its body within this after the head */
    uint64_t idle_timeout_ms;    /* keep-alive connection with nothing pending */
    uint32_t max_queues;
    uint64_t max_messages;
    uint32_t max_inflight;
    uint32_t max_waiters;        /* long polls parked at once */
};

struct bk_config {
    char *listen;
    char *admin;                 /* NULL: no admin listener */
    struct cfg_access admin_access; /* admin: token_file, allowed_hosts */
    char **allowed_hosts;        /* names the API accepts in Host (core/xsite.h) */
    size_t nallowed_hosts;
    char **cors_origins;         /* cors.allow_origins: foreign origins allowed, with CORS */
    size_t ncors_origins;
    char *data;
    enum store_fsync fsync;
    uint32_t fsync_batch_us;
    uint32_t fsync_interval_ms;
    uint64_t segment_bytes;
    uint32_t max_message_bytes;
    uint64_t body_cache_bytes;
    double compact_ratio;        /* compact the oldest segment under this live share */
    uint64_t disk_free_limit;    /* refuse new messages under this many free bytes (0: never) */
    char *access_key, *secret_key; /* both set: SigV4 required */
    int log_level;
    struct bk_limits limits;
};

extern const char bk_default_config[];

/* config.c */
struct bk_config *bk_config_load(const char *path, char **err);
struct bk_config *bk_config_parse(const char *yaml, size_t len, const char *name, char **err);
void bk_config_free(struct bk_config *c);

enum bk_conn_state {
    BK_CS_HEAD,   /* waiting for a request head */
    BK_CS_BODY,   /* collecting its body */
    BK_CS_WAIT,   /* answered later: durable commit or long poll */
    BK_CS_LINGER, /* write side shut, draining input until EOF */
};

enum bk_wait { BK_WAIT_NONE, BK_WAIT_COMMIT, BK_WAIT_POLL };
enum bk_api { BK_API_SQS, BK_API_NATIVE };

struct bk_server;

struct bk_conn {
    struct bk_server *srv;
    struct bk_conn *prev, *next;  /* server's open list, then its dead list */
    struct bk_conn *cnext;        /* commit group this connection waits in */
    int fd;
    uint8_t state;                /* enum bk_conn_state */
    uint8_t wait;                 /* enum bk_wait */
    uint8_t api;                  /* enum bk_api of the request in progress */
    uint8_t proto;                /* enum sqs_proto of an SQS request */
    bool closing;                 /* no more requests; close once out is written */
    bool peer_eof;
    bool dead;                    /* closed, waiting to be freed */
    bool keep_alive;              /* the current request allows another */
    bool head_only;               /* HEAD request */
    bool body_too_big;
    bool retry_after;             /* the next answer says Retry-After (refused for now) */
    uint32_t refs;                /* commit groups holding this struct */
    enum http_body body_kind;
    uint64_t body_left;
    struct http_chunked chunked;
    struct buf in, out, head, body;
    struct buf held;              /* the response waiting for its commit */
    struct http_request req;      /* views into head */
    struct http_header *hdrs;
    char reqid[40];
    const char *cors_allow;       /* Access-Control-Allow-Origin of this request's answer, or NULL */
    /* long poll */
    struct bk_waiter waiter;
    cJSON *poll_params;
    char poll_action[64];
    char *poll_base;              /* base URL for the answer */
    uint64_t poll_deadline;       /* loop clock, ms */
    struct ev_timer timer;        /* header/body/idle timeouts, linger, poll deadline */
};

/* One store commit: the connections whose answers wait for it. */
struct bk_commit {
    struct bk_server *srv;
    struct bk_conn *head, *tail;
    uint64_t started_ns;
    uint32_t n;
};

struct bk_stats {
    uint64_t requests, sqs_requests, native_requests, errors_4xx, errors_5xx;
    uint64_t connections_total, connections_refused;
    uint64_t commits, commit_acked, last_group;
    uint64_t polls, polls_woken, polls_timed_out;
    uint64_t compactions, dropped_segments;
    uint64_t refused_disk_low, refused_log_failed; /* writes refused up front */
    struct metrics_hist commit_latency;
};

struct bk_server {
    const struct bk_config *cfg;
    struct ev_loop *loop;
    struct bk_engine *engine;
    struct tp_engine *topics;     /* SNS topics (topic.h), NULL until started */
    struct store *store;
    int lfd;
    struct net_addr addr;
    char addr_str[64];
    struct bk_conn *conns, *dead;
    uint32_t nconns, nwaiters;
    struct bk_commit *batch;      /* the group being filled this iteration */
    uint32_t commits_pending;
    bool stopping;
    bool compacting;              /* a compaction's records await their commit */
    uint64_t compact_seg;
    struct ev_timer tick_timer;   /* engine timers (visibility, delay) */
    uint64_t tick_at;             /* wall ms the tick timer is set for */
    struct ev_timer house_timer;  /* once a second: retention, tasks, compaction */
    struct ev_timer stop_timer;   /* deadline for a clean stop */
    uint64_t req_seq;
    time_t date_sec;
    char date[40];
    int sigfd;
    struct bk_stats st;
    /* admin thread calls (http/admin.c) */
    pthread_mutex_t xlock;
    pthread_cond_t xcond;
    struct bk_xcall *xcall;
};

/* server.c */
int bk_server_listen(struct bk_server *s, char **err);
/* Refreshes the cached Date header value when the second changed. */
void bk_server_date(struct bk_server *s);
/* Writes what c->out holds and resumes parsing; used after an answer was
 * released (commit, long poll). */
void bk_conn_resume(struct bk_conn *c);
void bk_conn_kill(struct bk_conn *c);
void bk_conn_unref(struct bk_conn *c);
void bk_server_close_all(struct bk_server *s);
void bk_server_free_dead(struct bk_server *s);

/* dispatch.c */
/* Handles the complete request in c (head in c->req, body in c->body). */
void bk_dispatch(struct bk_conn *c);
/* Appends a response: status, content type, body, optional extra header
 * line ("Name: value", no CRLF). To c->held when hold, else c->out. */
void bk_respond(struct bk_conn *c, int status, const char *ctype, const char *body, size_t len,
                const char *extra, bool hold);
/* A JSON error body {"error": msg, "code": code} with status. */
void bk_respond_error(struct bk_conn *c, int status, const char *code, const char *msg);
/* Before each poll: wake long polls, hand the iteration's commit group to
 * the store, flush it. */
void bk_before_poll(struct bk_server *s);
/* A long poll's deadline passed (timer callback). */
void bk_poll_timeout(struct bk_conn *c);
/* Forgets a closing connection's long poll. */
void bk_poll_cancel(struct bk_conn *c);
/* Joins the current commit group (answer held in c->held). */
void bk_commit_join(struct bk_conn *c);
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
/* Runs an action for c with the engine (the wall clock is read here). */
enum sqs_err bk_run_action(struct bk_conn *c, const char *action, const cJSON *params,
                           const char *base, bool no_wait, cJSON **result, struct sqs_error *err,
                           struct bk_ctx *ctx);
/* Parks c's long poll (params are taken over). */
void bk_poll_park(struct bk_conn *c, struct bk_ctx *ctx, const char *action, cJSON *params, char *base);

/* native.c */
void bk_native(struct bk_conn *c, const char *path, size_t plen, const char *query, size_t qlen);
/* Renders the result of action for the native API. */
void bk_native_render(struct bk_conn *c, const char *action, const cJSON *result, bool hold);
void bk_native_error(struct bk_conn *c, const struct sqs_error *err, bool hold);
/* The request says Content-Type: application/json. */
bool bk_native_json_body(const struct bk_conn *c);
/* The body as a JSON object (strict: one value, nothing after it; NULL
 * for an empty body); *bad when it is not one. */
cJSON *bk_native_body_object(struct bk_conn *c, bool *bad);

/* http/metrics.c */
void bk_metrics_render(struct bk_server *s, struct buf *b);

/* http/admin.c */
struct admin;
struct admin *bk_admin_start(struct bk_server *s, const char *addr, char **err);
/* Serves admin-thread calls waiting for the loop (async callback). */
void bk_admin_serve(struct ev_loop *loop, void *ud);

int broker_main(int argc, char **argv);

#endif
