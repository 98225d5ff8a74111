/* The broker's queue engine: every queue's messages, their timers, FIFO
 * groups, deduplication, redrive and the log records that make all of it
 * durable. Pure logic over a controlled clock: every entry point takes
 * `now` (wall-clock milliseconds since the Unix epoch, the unit SQS uses
 * for its timestamps and the one that survives a restart), nothing here
 * reads a clock, sleeps or touches a socket, so the unit tests drive it
 * step by step.
 *
 * The files split the work as follows:
 *   engine.c   the queue registry, the engine-wide timer heap, ticking and
 *              housekeeping (retention, dedup windows, move tasks);
 *   queue.c    one queue's messages: lookup, the ready list, state changes
 *              (ready, delayed, in flight), receive, delete, visibility;
 *   fifo.c     FIFO queues: message groups and deduplication;
 *   redrive.c  dead-letter moves and message move tasks;
 *   record.c   log records: encoding, decoding, live-record accounting and
 *              compaction;
 *   replay.c   the engine rebuilt from its records at start;
 *   message.c  the typed message calls (bk_send, ...): what every front
 *              end runs;
 *   qcalls.c   the typed queue calls (bk_queue_create, ...);
 *   error.c    the engine's errors (enum bk_err);
 *   qattrs.c   queue attributes: validation, defaults, rendering;
 *   handle.c   receipt handles, message and request ids.
 *
 * Durability: the engine writes records through a struct bk_journal (the
 * store in the server, an in-memory log in tests) before it changes
 * anything a client is told about; the server acknowledges an action only
 * once its records are durable (ctx->need_sync). State is rebuilt at start
 * by replaying the records in order (bk_engine_replay()).
 *
 * Thread context: one thread (the server's loop) owns an engine. */
#ifndef FG_BROKER_ENGINE_H
#define FG_BROKER_ENGINE_H

#include "broker/store/store.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/metrics.h"

#include <cjson/cJSON.h>

#define BK_ACCOUNT "000000000000"
#define BK_REGION "us-east-1"
#define BK_ARN_PREFIX "arn:aws:sqs:" BK_REGION ":" BK_ACCOUNT ":"
#define BK_MAX_QNAME 80
#define BK_MAX_BATCH 10
#define BK_DEDUP_WINDOW_MS (5 * 60 * 1000)
#define BK_MAX_VISIBILITY_S 43200
#define BK_MAX_DELAY_S 900
#define BK_MAX_WAIT_S 20
#define BK_MIN_MESSAGE_BYTES 1024
#define BK_HARD_MAX_MESSAGE_BYTES (1u << 20)

/* ---- errors ---- */

/* What the engine refuses, in its own terms; each front end maps these to
 * its protocol's codes (sqs/actions.c for SQS, the native API for its
 * JSON answers). The message is for the client and names the offending
 * parameter as the API calls it. */
enum bk_err {
    BK_OK = 0,
    BK_E_MISSING,          /* a required argument is absent */
    BK_E_INVALID,          /* an argument is out of range or malformed */
    BK_E_CONTENTS,         /* a message body holds a character queues refuse */
    BK_E_ATTR_NAME,        /* unknown queue attribute name */
    BK_E_ATTR_VALUE,       /* bad queue attribute value */
    BK_E_NO_QUEUE,         /* the queue does not exist */
    BK_E_QUEUE_EXISTS,     /* a queue of that name exists with other attributes */
    BK_E_RECEIPT,          /* not a receipt handle of this queue */
    BK_E_NOT_INFLIGHT,     /* the message is not in flight */
    BK_E_OVER_LIMIT,       /* a broker limit (messages, queues, in flight) is reached */
    BK_E_UNSUPPORTED,      /* not possible in the current state */
    BK_E_NOT_FOUND,        /* a named resource (move task, ARN) does not exist */
    BK_E_LOG,              /* the journal refused a record */
};

struct bk_error {
    enum bk_err code;
    char message[256];
};

/* Sets err's code and a printf-style message; returns code. */
enum bk_err bk_fail(struct bk_error *err, enum bk_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- log records ---- */

/* Record types in the store. New kinds (topics, subscriptions, fan-out
 * publishes) take new numbers; replay refuses a type it does not know
 * rather than skip state it cannot rebuild. */
enum bk_rec {
    BK_REC_META = 1,      /* secret for receipt handles, id reservations */
    BK_REC_QUEUE = 2,     /* a queue's whole definition (create, attributes, tags) */
    BK_REC_QUEUE_DEL = 3, /* queue deleted with all its messages */
    BK_REC_SEND = 4,      /* a message with its current state (also re-appended) */
    BK_REC_STATE = 5,     /* receive count, visible-at, first receive time */
    BK_REC_DELETE = 6,    /* message gone (deleted, expired, moved away) */
    BK_REC_PURGE = 7,     /* every message of the queue gone */
    BK_REC_DEDUP = 8,     /* a FIFO deduplication entry kept past its message */
};

/* Where records go. append returns pos.seg == 0 on failure. */
struct bk_journal {
    void *ud;
    struct store_pos (*append)(void *ud, uint8_t type, const void *p, uint32_t len);
    void (*retain)(void *ud, struct store_pos pos, uint32_t len);
    void (*release)(void *ud, struct store_pos pos, uint32_t len);
    ssize_t (*read)(void *ud, struct store_pos pos, void *buf, size_t cap);
};

/* ---- messages ---- */

enum bk_mstate { BK_MS_READY = 0, BK_MS_DELAYED, BK_MS_INFLIGHT };

struct bk_queue;
struct bk_group;

struct bk_msg {
    uint64_t mid;              /* engine-wide id, also the FIFO sequence number */
    uint64_t sent_ms;          /* original enqueue time (kept across DLQ moves) */
    uint64_t visible_at;       /* receivable from this time on */
    uint64_t first_recv_ms;    /* 0: never received */
    uint64_t last_recv_ms;     /* for the receive-to-delete histogram */
    uint32_t recv_count;       /* ApproximateReceiveCount; also the receipt generation */
    uint32_t body_len;
    uint32_t attrs_len;        /* message attributes, canonical JSON text */
    uint32_t sys_len;          /* message system attributes, canonical JSON text */
    uint32_t origin_qid;       /* queue it was dead-lettered from, 0 if none */
    uint32_t rec_len;          /* payload length of the SEND record at pos */
    uint32_t srec_len;         /* payload length of the STATE record at spos */
    uint8_t state;             /* enum bk_mstate */
    bool has_attrs_md5;
    bool has_sys_md5;
    uint8_t md5_body[16];
    uint8_t md5_attrs[16];
    uint8_t md5_sys[16];
    struct store_pos pos;      /* the SEND record holding the body */
    struct store_pos spos;     /* latest STATE record, seg 0 when none */
    char *data;                /* cached attrs + sys + body, NULL when only on disk */
    char *dedup_id;            /* FIFO: MessageDeduplicationId (owned) */
    struct bk_group *grp;      /* FIFO: its group */
    struct bk_queue *q;
    struct bk_msg *hnext;      /* queue's id hash chain */
    struct bk_msg *prev, *next; /* ready list (standard) or group list (FIFO) */
    size_t theap;              /* engine timer heap index, SIZE_MAX when ready */
    size_t xheap;              /* queue expiry heap index */
};

/* A binary min-heap of messages; which key and index field it uses is
 * fixed by kind. */
enum bk_heap_kind { BK_HEAP_TIMER, BK_HEAP_EXPIRY };
struct bk_heap {
    struct bk_msg **a;
    size_t n, cap;
    uint8_t kind;
};

/* ---- FIFO ---- */

struct bk_group {
    char *id;
    size_t id_len;
    uint64_t hash;
    struct bk_group *hnext;
    struct bk_msg *head, *tail;  /* every message of the group, in send order */
    uint32_t nmsgs;
    uint32_t inflight;           /* messages of the group now in flight */
    struct bk_group *aprev, *anext; /* queue's list of receivable groups */
    bool avail;
};

struct bk_dedup {
    char *id;
    uint64_t hash;
    uint64_t at_ms;              /* first send; the entry lives 5 minutes */
    uint64_t mid;                /* the message it stands for (its MessageId) */
    struct store_pos pos;        /* record that carries it (SEND or DEDUP) */
    struct bk_dedup *hnext;
    struct bk_dedup *lnext;      /* queue's list in time order */
};

/* ---- queues ---- */

/* Settable queue attributes, parsed. Strings are owned (NULL: unset). */
struct bk_qattrs {
    uint32_t delay_s, max_size, retention_s, wait_s, visibility_s;
    bool fifo, content_dedup;
    char *redrive_policy;        /* JSON text as stored and returned */
    char *dlq_name;              /* parsed from redrive_policy */
    uint32_t max_receive;
    char *redrive_allow;         /* RedriveAllowPolicy JSON text */
    char *policy, *kms_key, *kms_reuse, *sse, *dedup_scope, *throughput_limit;
};

/* Per-queue counters for /metrics. */
struct bk_qstats {
    uint64_t sent, received, deleted, expired, redriven, moved, changed_vis, purged, dedup_hits;
    struct metrics_hist send_to_receive; /* first receive minus visible time */
    struct metrics_hist receive_to_delete;
};

/* A waiting ReceiveMessage (long poll): the server embeds it in the
 * connection. The engine links it into its queue's list. */
struct bk_waiter {
    struct bk_waiter *prev, *next;
    struct bk_queue *q;          /* NULL once the queue is gone */
    bool linked;
};

struct bk_queue {
    uint32_t qid;                /* never reused */
    char name[BK_MAX_QNAME + 1];
    size_t name_len;
    uint64_t hash;
    struct bk_queue *hnext, *inext, *lnext; /* name hash, id hash, list in creation order */
    struct bk_qattrs a;
    cJSON *tags;                 /* object of string values */
    uint64_t created_ms, modified_ms;
    struct store_pos pos;        /* QUEUE record */
    uint32_t rec_len;
    /* messages */
    struct bk_msg **mbuckets;
    size_t nbuckets, nmsgs;
    struct bk_msg *rhead, *rtail; /* standard: ready messages */
    struct bk_heap xheap;        /* every message, by sent time (retention) */
    uint64_t n_ready, n_inflight, n_delayed;
    /* FIFO */
    struct bk_group **gbuckets;
    size_t ngbuckets, ngroups;
    struct bk_group *ahead, *atail; /* groups with a receivable head */
    struct bk_dedup **dbuckets;
    size_t ndbuckets, ndedup;
    struct bk_dedup *dhead, *dtail;
    /* long polling */
    struct bk_waiter *whead, *wtail;
    struct bk_queue *wake_next;
    bool waking;                 /* on the engine's wake list */
    struct bk_qstats st;
};

/* A deduplication entry seen during replay, kept until the replay ends
 * (its queue's QUEUE record, which says how to key it, may come later). */
struct bk_pending_dedup {
    uint32_t qid;
    uint64_t at_ms, mid;
    struct store_pos pos;
    char *key;                   /* from a DEDUP record, or NULL */
    char *group, *id;            /* from a SEND record: key built at the end */
    struct bk_pending_dedup *next;
};

/* A message move task (StartMessageMoveTask). */
struct bk_move_task {
    char handle[64];
    uint32_t src_qid, dst_qid;   /* dst 0: each message's origin queue */
    char src_arn[128], dst_arn[128];
    uint32_t rate;               /* messages per second, 0: as fast as allowed */
    uint64_t started_ms;
    uint64_t moved, to_move;
    uint8_t status;              /* enum bk_task_status */
    char failure[96];
    struct bk_move_task *next;
};
enum bk_task_status { BK_TASK_RUNNING, BK_TASK_COMPLETED, BK_TASK_CANCELLED, BK_TASK_FAILED };

struct bk_engine_opts {
    uint32_t max_message_bytes;  /* broker-wide ceiling for MaximumMessageSize */
    uint64_t body_cache_bytes;   /* bodies kept in memory up to this */
    uint32_t max_queues;
    uint64_t max_messages;       /* all queues together; SendMessage over it: OverLimit */
    uint32_t max_inflight;       /* per queue (SQS: 120000 standard) */
};

struct bk_engine {
    struct bk_engine_opts o;
    struct bk_journal j;
    /* queues */
    struct bk_queue **qbuckets;  /* by name */
    struct bk_queue **ibuckets;  /* by qid, same size */
    size_t nqbuckets, nqueues;
    struct bk_queue *qhead, *qtail;
    uint32_t next_qid;
    uint64_t next_mid;
    uint64_t reserved_mid;       /* ids below this are covered by a META record */
    uint32_t reserved_qid;
    uint8_t secret[32];          /* receipt handle key */
    bool have_meta;
    struct store_pos meta_pos;
    uint32_t meta_len;
    /* timers */
    struct bk_heap timers;       /* delayed and in-flight messages, by visible_at */
    struct bk_queue *wake_head, *wake_tail;
    struct bk_waiter *orphans;   /* waiters whose queue was deleted */
    /* memory */
    uint64_t nmsgs;
    uint64_t cache_bytes;        /* bodies now cached */
    /* move tasks */
    struct bk_move_task *tasks;
    uint64_t task_seq;
    uint64_t last_housekeep;
    /* global counters */
    uint64_t journal_errors;
    uint64_t compactions;
    bool replaying;
    uint64_t replay_now;         /* wall clock used while replaying */
    struct bk_pending_dedup *pdedup; /* dedup entries met in replay, added at its end */
    struct buf rec;              /* scratch for encoding records */
};

/* The context of one action call. */
struct bk_ctx {
    uint64_t now;                /* wall clock, ms */
    const char *base_url;        /* "http://host:port" for queue URLs */
    bool no_wait;                /* a woken long poll: do not wait again */
    /* out */
    bool need_sync;              /* records were written: answer once durable */
    uint32_t wait_ms;            /* > 0: nothing to receive, wait on wait_q */
    struct bk_queue *wait_q;
};

/* ---- message calls (message.c) ----
 *
 * The typed entry points every front end uses: the SQS actions, the
 * native API, topic fan-out and push delivery. They check what is queue
 * semantics (sizes, delay and visibility ranges, FIFO group and
 * deduplication rules, broker limits) and change the queue; protocol
 * matters (parameter decoding, digests shown to clients, rendering) stay
 * with the caller. Each returns BK_OK or fills err. */

/* A message to send. Attributes arrive encoded by the caller (the SQS
 * edge stores canonical JSON); the engine keeps the bytes as they are and
 * counts attrs_size (names, types, values) against the size limit. The
 * digests are the caller's too: the engine only keeps them with the
 * message (has_md5 false: none given; the SQS edge computes them when it
 * shows the message). */
struct bk_send_args {
    const char *body;
    size_t body_len;
    const char *attrs, *sys;     /* message and system attributes, NULL: none */
    size_t attrs_len, sys_len;
    size_t attrs_size;           /* both, as the size limit counts them */
    bool has_delay;              /* false: the queue's DelaySeconds */
    int64_t delay_s;
    const char *group, *dedup;   /* FIFO ids, NULL: absent */
    bool has_md5, has_attrs_md5, has_sys_md5;
    uint8_t md5_body[16], md5_attrs[16], md5_sys[16];
};

struct bk_send_result {
    uint64_t mid;                /* also the FIFO sequence number */
    char message_id[40];
    bool duplicate;              /* FIFO: a resend within the window, not enqueued */
};

enum bk_err bk_send(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                    const struct bk_send_args *a, struct bk_send_result *r, struct bk_error *err);

/* Decodes one UTF-8 character at s[0..n): its code point, or -1 for an
 * invalid sequence (overlong, surrogate, above U+10FFFF, truncated). */
int32_t bk_utf8_next(const char *s, size_t n, size_t *used);
/* True when s[0..n) is valid UTF-8 holding only characters a message
 * body may hold: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
 * #x10000 to #x10FFFF (XML 1.0's, as SQS). */
bool bk_body_valid(const char *s, size_t n);

/* A receive: up to max (1..BK_MAX_BATCH) messages, hidden for the
 * visibility timeout; with nothing to hand out and a wait time (and
 * ctx->no_wait unset) it sets ctx->wait_ms and ctx->wait_q instead. */
struct bk_receive_args {
    int64_t max;
    bool has_visibility, has_wait;  /* false: the queue's defaults */
    int64_t visibility_s, wait_s;
};

/* One delivered message: data is its attrs + sys + body bytes (the
 * cache, or tmp when read from the log). Valid until the next engine
 * call; bk_receive_done() frees the tmp buffers. */
struct bk_received {
    const struct bk_msg *m;
    const char *data;
    char *tmp;
};

struct bk_receive_result {
    size_t n;
    struct bk_received msgs[BK_MAX_BATCH];
};

enum bk_err bk_receive(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                       const struct bk_receive_args *a, struct bk_receive_result *r,
                       struct bk_error *err);
void bk_receive_done(struct bk_receive_result *r);

/* Deletes the message of a receipt handle. A stale handle (the message
 * was delivered again since) or a message already gone: BK_OK, nothing
 * deleted. */
enum bk_err bk_delete(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                      const char *receipt, struct bk_error *err);

struct bk_visibility_args {
    const char *receipt;
    bool has_timeout;
    int64_t timeout_s;
};

/* Hides (or, with 0, shows) the in-flight message of a receipt handle. */
enum bk_err bk_change_visibility(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                 const struct bk_visibility_args *a, struct bk_error *err);

/* ---- queue calls (qcalls.c) ---- */

/* Creates queue name with attributes a (bk_qattrs_defaults, then set;
 * taken over in every case) and tags (an object of strings, copied; NULL
 * for none). A queue of that name already there: *out is it and BK_OK,
 * nothing changed (the caller decides whether its attributes differ). */
enum bk_err bk_queue_create(struct bk_engine *e, struct bk_ctx *ctx, const char *name, struct bk_qattrs *a,
                            const cJSON *tags, struct bk_queue **out, struct bk_error *err);
/* CreateQueue: the same with an attribute map (names to string values,
 * NULL: defaults). An existing queue whose attributes the map would
 * change: BK_E_QUEUE_EXISTS. */
enum bk_err bk_queue_ensure(struct bk_engine *e, struct bk_ctx *ctx, const char *name, const cJSON *attrs,
                            const cJSON *tags, struct bk_queue **out, struct bk_error *err);
/* Replaces q's attributes by a (taken over in every case). */
enum bk_err bk_queue_set_attrs(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                               struct bk_qattrs *a, struct bk_error *err);
/* Deletes q with its messages (q is gone on BK_OK). */
enum bk_err bk_queue_delete(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                            struct bk_error *err);
/* Deletes every message of q. */
enum bk_err bk_queue_purge(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                           struct bk_error *err);
/* Checks a tag map: at most 50 with existing ones, keys 1..128 and values
 * 0..256 characters. */
enum bk_err bk_tags_check(const cJSON *tags, const cJSON *existing, struct bk_error *err);
/* Adds or replaces q's tags. */
enum bk_err bk_queue_tag(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *tags,
                         struct bk_error *err);

/* A message move task (StartMessageMoveTask): src must be a dead-letter
 * queue; dst NULL moves each message back to the queue it came from. A
 * queue the caller named but could not find: src NULL, or has_dst with
 * dst NULL (BK_E_NOT_FOUND). rate: messages a second, 1..500. */
struct bk_move_args {
    struct bk_queue *src, *dst;
    bool has_dst, has_rate;
    int64_t rate;
};

enum bk_err bk_move_start(struct bk_engine *e, struct bk_ctx *ctx, const struct bk_move_args *a,
                          struct bk_move_task **out, struct bk_error *err);

/* ---- engine.c ---- */

struct bk_engine *bk_engine_new(const struct bk_engine_opts *o, const struct bk_journal *j);
void bk_engine_free(struct bk_engine *e);
/* Replays one record (store_replay callback shape; ud is the engine).
 * Call bk_engine_replay_begin(now) first and bk_engine_replay_end() after
 * the last one. Returns 0, or -1 for a record it cannot decode. */
void bk_engine_replay_begin(struct bk_engine *e, uint64_t now);
int bk_engine_replay(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos);
/* Finishes the replay: writes the META record when the log had none. */
void bk_engine_replay_end(struct bk_engine *e, uint64_t now);
struct bk_queue *bk_engine_find(struct bk_engine *e, const char *name, size_t len);
struct bk_queue *bk_engine_find_id(struct bk_engine *e, uint32_t qid);
/* The queue named by a QueueUrl (its last path segment) or a bare name. */
struct bk_queue *bk_engine_find_url(struct bk_engine *e, const char *url);
/* The queue named by an ARN of this account and region. */
struct bk_queue *bk_engine_find_arn(struct bk_engine *e, const char *arn);
/* Creates a queue (attributes already validated; a and tags are taken
 * over). qid 0 allocates a new id (replay passes the recorded one). */
struct bk_queue *bk_engine_create(struct bk_engine *e, const char *name, struct bk_qattrs *a,
                                  cJSON *tags, uint32_t qid, uint64_t now);
/* Deletes a queue and its messages; waiters move to the orphan list. */
void bk_engine_delete(struct bk_engine *e, struct bk_queue *q, uint64_t now);
/* Earliest visible_at among delayed and in-flight messages (UINT64_MAX). */
uint64_t bk_engine_next_due(const struct bk_engine *e);
/* Makes every message due at now receivable; queues with waiters go on
 * the wake list. */
void bk_engine_tick(struct bk_engine *e, uint64_t now);
/* Once a second or so: retention expiry, dedup windows, move tasks. */
void bk_engine_housekeep(struct bk_engine *e, uint64_t now);
/* The next queue whose waiters can be served (NULL when none). */
struct bk_queue *bk_engine_pop_wake(struct bk_engine *e);
/* Long-poll waiters. */
void bk_waiter_add(struct bk_queue *q, struct bk_waiter *w);
void bk_waiter_remove(struct bk_engine *e, struct bk_waiter *w);
struct bk_waiter *bk_engine_pop_orphan(struct bk_engine *e);
/* Puts q on the wake list when it has waiters and something to receive. */
void bk__wake(struct bk_engine *e, struct bk_queue *q);
/* Allocates a message id, writing a META record when the reserved range
 * runs out. */
uint64_t bk__next_mid(struct bk_engine *e);
uint32_t bk__next_qid(struct bk_engine *e);

/* ---- queue.c ---- */

void bk_heap_push(struct bk_heap *h, struct bk_msg *m);
void bk_heap_remove(struct bk_heap *h, struct bk_msg *m);
void bk_heap_fix(struct bk_heap *h, struct bk_msg *m);
struct bk_msg *bk_heap_top(const struct bk_heap *h);
void bk_heap_free(struct bk_heap *h);

struct bk_msg *bk_queue_lookup(const struct bk_queue *q, uint64_t mid);
/* Adds a new message to q in the state its visible_at/recv_count say. */
void bk__queue_insert(struct bk_engine *e, struct bk_queue *q, struct bk_msg *m, uint64_t now);
/* Takes m out of every structure of its queue (does not free it). */
void bk__queue_unlink(struct bk_engine *e, struct bk_msg *m);
/* Frees a message that is not linked anywhere (releases cache). */
void bk__msg_free(struct bk_engine *e, struct bk_msg *m);
/* Moves m to the state matching its visible_at at now. */
void bk__msg_set_visible(struct bk_engine *e, struct bk_msg *m, uint64_t visible_at, uint64_t now);
/* True when a receive on q would find a message now. */
bool bk_queue_receivable(const struct bk_queue *q);
/* Picks up to max receivable messages (marks nothing). */
size_t bk__queue_pick(struct bk_engine *e, struct bk_queue *q, struct bk_msg **out, size_t max,
                      uint64_t now);
/* Marks m received: count, deadline, STATE record. */
void bk__msg_received(struct bk_engine *e, struct bk_msg *m, uint32_t vis_s, uint64_t now);
/* Deletes a message: DELETE record (when log is set), unlink, free. */
void bk__msg_delete(struct bk_engine *e, struct bk_msg *m, bool log);
/* Deletes every message of q. */
void bk__queue_clear(struct bk_engine *e, struct bk_queue *q);
void bk__queue_free(struct bk_engine *e, struct bk_queue *q);

/* ---- fifo.c ---- */

struct bk_group *bk__group_get(struct bk_queue *q, const char *id, size_t len, bool create);
void bk__group_append(struct bk_queue *q, struct bk_msg *m);
void bk__group_remove(struct bk_queue *q, struct bk_msg *m);
/* Re-evaluates whether g's head can be received. */
void bk__group_update(struct bk_queue *q, struct bk_group *g);
size_t bk__fifo_pick(struct bk_queue *q, struct bk_msg **out, size_t max);
struct bk_dedup *bk__dedup_find(struct bk_queue *q, const char *id, uint64_t now);
struct bk_dedup *bk__dedup_add(struct bk_queue *q, const char *id, uint64_t at_ms, uint64_t mid,
                               struct store_pos pos);
void bk__dedup_expire(struct bk_queue *q, uint64_t now);
void bk__fifo_free(struct bk_queue *q);
/* The deduplication key of a message: its id, prefixed by the group id
 * when the queue's DeduplicationScope is messageGroup. */
void bk__dedup_key(const struct bk_queue *q, const char *group, size_t group_len, const char *id,
                   char *out, size_t cap);

/* ---- redrive.c ---- */

/* Moves m (ready, in its queue) to dst, keeping its id, body and sent
 * time. reset_count: a move back from a DLQ starts counting afresh. */
void bk__msg_move(struct bk_engine *e, struct bk_msg *m, struct bk_queue *dst, bool reset_count,
                  uint64_t now);
/* The dead-letter queue of q when its policy names an existing one. */
struct bk_queue *bk__dlq_of(struct bk_engine *e, const struct bk_queue *q);
/* May q (a DLQ) take messages from src, per its RedriveAllowPolicy? */
bool bk__redrive_allowed(const struct bk_queue *dlq, const struct bk_queue *src);
void bk__tasks_run(struct bk_engine *e, uint64_t now, uint64_t elapsed_ms);
struct bk_move_task *bk__task_start(struct bk_engine *e, struct bk_queue *src, struct bk_queue *dst,
                                    uint32_t rate, uint64_t now);
struct bk_move_task *bk__task_find(struct bk_engine *e, const char *handle);
void bk__tasks_drop_queue(struct bk_engine *e, uint32_t qid);

/* ---- record.c ---- */

/* Payload of a decoded SEND record (views into the payload). */
struct bk_send_rec {
    uint32_t qid, origin_qid, recv_count;
    const char *qname;
    uint8_t qname_len;
    uint64_t mid, sent_ms, visible_at, first_recv_ms;
    uint8_t md5_body[16], md5_attrs[16], md5_sys[16];
    bool has_attrs_md5, has_sys_md5;
    const char *group, *dedup, *attrs, *sys, *body;
    uint32_t group_len, dedup_len, attrs_len, sys_len, body_len;
};

/* Writes a message's SEND record (m's current state; data is attrs + sys +
 * body). Updates m->pos and retains it; releases the previous one and the
 * STATE record. dedup_entry: this send created a FIFO deduplication entry
 * (replay recreates it). Returns false when the journal refused it. */
bool bk__log_send(struct bk_engine *e, struct bk_msg *m, const char *data, bool dedup_entry);
bool bk__log_state(struct bk_engine *e, struct bk_msg *m);
bool bk__log_delete(struct bk_engine *e, uint32_t qid, uint64_t mid);
bool bk__log_purge(struct bk_engine *e, struct bk_queue *q);
bool bk__log_queue(struct bk_engine *e, struct bk_queue *q);
bool bk__log_queue_del(struct bk_engine *e, struct bk_queue *q);
bool bk__log_meta(struct bk_engine *e);
bool bk__log_dedup(struct bk_engine *e, struct bk_queue *q, struct bk_dedup *d);
/* Releases the live records of a message (delete, purge). */
void bk__release_msg(struct bk_engine *e, struct bk_msg *m);
int bk__decode_send(const void *p, uint32_t len, struct bk_send_rec *r);
/* The attrs + sys + body bytes of m: the cache or a read of its SEND
 * record into *tmp (caller frees *tmp). NULL when it cannot be read. */
const char *bk__msg_data(struct bk_engine *e, const struct bk_msg *m, char **tmp);
/* Keeps a copy of data in memory when the body cache has room. */
void bk__msg_cache(struct bk_engine *e, struct bk_msg *m, const char *data);
/* Re-appends the live records held in segment seg (compaction); the
 * caller drops the segment once they are durable. */
void bk_engine_compact(struct bk_engine *e, uint64_t seg, uint64_t now);

/* ---- qattrs.c ---- */

void bk_qattrs_defaults(struct bk_qattrs *a, const struct bk_engine_opts *o, bool fifo);
void bk_qattrs_free(struct bk_qattrs *a);
void bk_qattrs_copy(struct bk_qattrs *dst, const struct bk_qattrs *src);
/* Applies an Attributes map (canonical JSON: names to string values) to
 * a. creating: FifoQueue may be set (and must match the name). Returns
 * BK_OK or the error. */
enum bk_err bk_qattrs_apply(struct bk_engine *e, struct bk_qattrs *a, const cJSON *attrs,
                            const char *qname, bool creating, struct bk_error *err);
/* Would applying attrs to a change anything? (CreateQueue on an existing
 * queue.) */
bool bk_qattrs_differ(const struct bk_qattrs *a, const cJSON *attrs);
/* Adds the named attributes (an array of names, "All", or NULL for none)
 * of q to obj. Unknown names: BK_E_ATTR_NAME. */
enum bk_err bk_qattrs_render(const struct bk_queue *q, const cJSON *names, cJSON *obj,
                             struct bk_error *err);
/* Settable attributes as a JSON object (for the QUEUE record). */
cJSON *bk_qattrs_to_json(const struct bk_qattrs *a);
bool bk_qname_valid(const char *name, bool *fifo);

/* ---- handle.c ---- */

/* Receipt handle for the current receive of m (base64url, NUL-ended). */
void bk_handle_make(const struct bk_engine *e, const struct bk_msg *m, char out[64]);
/* Decodes and authenticates a handle. false: not one of ours. */
bool bk_handle_parse(const struct bk_engine *e, const char *h, uint32_t *qid, uint64_t *mid,
                     uint32_t *gen);
/* MessageId text of mid (UUID shaped). */
void bk_message_id(const struct bk_engine *e, uint64_t mid, char out[40]);
void bk_request_id(uint64_t seq, char out[40]);
void bk_random_bytes(void *p, size_t n);

#endif
