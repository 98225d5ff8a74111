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
 *   http/       the HTTP side: connections on core/httpd.h, routing,
 *               answers, group commit, long polls, the native API
 *               (http/http.h says which file does what);
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
#include "core/httpd.h"
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

struct bk_commit;

struct bk_stats {
    uint64_t sqs_requests, native_requests, errors_4xx, errors_5xx;
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
    struct httpd *httpd;          /* listener and client connections (http/server.c) */
    struct net_addr addr;
    char addr_str[64];
    uint32_t nwaiters;
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
    int sigfd;
    struct bk_stats st;
    /* admin thread calls (http/admin.c) */
    pthread_mutex_t xlock;
    pthread_cond_t xcond;
    struct bk_xcall *xcall;
};

/* http/metrics.c */
void bk_metrics_render(struct bk_server *s, struct buf *b);

/* http/admin.c */
struct admin;
struct admin *bk_admin_start(struct bk_server *s, const char *addr, char **err);
/* Serves admin-thread calls waiting for the loop (async callback). */
void bk_admin_serve(struct ev_loop *loop, void *ud);

int broker_main(int argc, char **argv);

#endif
