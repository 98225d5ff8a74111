/* SNS-style topics on the broker: topics, subscriptions, publish with
 * fan-out, filter policies, and HTTP push with confirmation, retries and a
 * dead-letter queue. Everything runs over the canonical form of
 * sns_proto.h, like the queue engine runs over sqs_proto.h, so the SNS
 * query protocol and the native JSON API share every action.
 *
 * Where the data lives:
 *   - topics and subscriptions: a JSON snapshot in the data directory
 *     (TP_META_FILE), rewritten atomically (temporary file, fsync, rename,
 *     directory fsync) before a change is acknowledged. These are rare
 *     control-plane changes; the snapshot keeps them out of the message
 *     log, whose replay and compaction belong to the queue engine.
 *   - messages: only in the queue engine's log. A publish sends one
 *     message to every matching sqs subscription's queue (SendMessage
 *     through the engine), all in the loop iteration of the request, so
 *     they share one group commit and the publish is acknowledged only
 *     once every copy is durable.
 *   - HTTP deliveries: each http subscription owns a broker queue named
 *     TP_PUSH_PREFIX<subscription id> holding the POST bodies still to
 *     deliver. The push scheduler (deliver.c) receives from it, POSTs,
 *     deletes on success and sets the visibility timeout to the delivery
 *     policy's next retry delay on failure; after the last retry the body
 *     goes to the subscription's dead-letter queue. Because the backlog is
 *     an ordinary durable queue, pushes survive restarts and crashes, and
 *     its depth is visible with GetQueueAttributes.
 *
 * Thread context: one thread (the broker's loop) owns a tp_engine. */
#ifndef FG_BROKER_TOPIC_H
#define FG_BROKER_TOPIC_H

#include "broker/queue/engine.h"
#include "broker/topic/filter.h"
#include "broker/push/push.h"
#include "broker/sns/sns_proto.h"
#include "core/common.h"
#include "core/metrics.h"

#include <cjson/cJSON.h>

#define TP_ARN_PREFIX "arn:aws:sns:" BK_REGION ":" BK_ACCOUNT ":"
#define TP_META_FILE "sns-topics.json"
#define TP_PUSH_PREFIX "sns-push-"
#define TP_MAX_NAME 256
#define TP_MAX_TOPICS 10000
#define TP_MAX_SUBS 10000         /* per topic */
#define TP_MAX_MESSAGE 262144     /* message plus attributes, as SNS */
#define TP_MAX_ATTRS 10
#define TP_PAGE 100               /* ListTopics / ListSubscriptions page */
#define TP_PUSH_CONNS 8           /* connections per http subscription */
#define TP_PUSH_TIMEOUT_MS 15000  /* one POST, as SNS waits for an endpoint */
#define TP_DEDUP_WINDOW_MS (5 * 60 * 1000)

enum tp_proto { TP_SQS = 1, TP_HTTP = 2 };

struct tp_topic;
struct push_client;

struct tp_sub_stats {
    uint64_t matched, filtered, delivered, failed, retried, dead_lettered;
};

struct tp_sub {
    struct tp_topic *t;
    struct tp_sub *next;        /* topic's list, in creation order */
    char id[40];                /* UUID; the ARN is topic ARN ":" id */
    char *arn;
    uint8_t proto;              /* enum tp_proto */
    char *endpoint;             /* queue ARN or URL */
    bool confirmed;
    char token[132];            /* confirmation token (http) */
    uint64_t created_ms;
    /* attributes */
    bool raw;                   /* RawMessageDelivery */
    char *filter_json;          /* FilterPolicy as set */
    uint8_t scope;              /* enum filter_scope */
    struct filter_policy *filter;
    char *delivery_json;        /* DeliveryPolicy as set (http) */
    char *redrive_json;         /* RedrivePolicy as set */
    char *dlq_arn;              /* its deadLetterTargetArn */
    /* push (http) */
    struct push_policy policy;  /* effective: topic defaults + own policy */
    struct push_endpoint ep;
    bool ep_ok;
    struct push_client *client;
    struct push_pace pace;
    char push_queue[64];
    uint32_t inflight;
    bool deleted;               /* unsubscribed while POSTs were in flight */
    struct tp_sub_stats st;
};

struct tp_dedup {
    char *id;
    char message_id[40];
    char seq[24];
    uint64_t at_ms;
    struct tp_dedup *next;
};

struct tp_topic_stats {
    uint64_t published, deliveries, filtered, delivery_errors;
};

struct tp_topic {
    char name[TP_MAX_NAME + 1];
    char *arn;
    bool fifo;
    bool content_dedup;
    cJSON *attrs;               /* settable attributes as strings (DisplayName, Policy, ...) */
    cJSON *tags;                /* object of strings */
    struct push_policy http_defaults;
    bool no_overrides;
    struct tp_sub *subs;
    uint32_t nsubs, npending;
    uint64_t subs_deleted;
    uint64_t created_ms;
    uint64_t last_seq;          /* FIFO SequenceNumber, increasing */
    struct tp_dedup *dedup;     /* FIFO publishes of the last 5 minutes, newest first */
    struct tp_topic *next;
    struct tp_topic_stats st;
};

struct tp_stats {
    uint64_t publishes, publish_errors, deliveries_sqs, deliveries_http, http_failures,
        http_retries, dead_lettered, filtered, dropped;
    struct metrics_hist push_latency; /* publish to successful HTTP delivery */
};

struct sns_signer;
struct ev_loop;

struct tp_engine {
    struct bk_engine *e;
    char *meta_path;            /* NULL: nothing persisted (tests) */
    struct sns_signer *signer;  /* NULL: envelopes go unsigned */
    struct ev_loop *loop;       /* NULL: no push delivery (tests) */
    struct tp_topic *topics;    /* in creation order */
    struct tp_topic *tail;
    uint32_t ntopics;
    uint32_t max_topics;
    /* push scheduler (deliver.c) */
    struct ev_timer *push_timer;
    uint64_t push_next_us;
    bool push_kick;
    struct tp_stats st;
};

/* The context of one action call. */
struct tp_ctx {
    uint64_t now;               /* wall clock, ms */
    const char *base_url;       /* "http://host:port" for SubscribeURL, UnsubscribeURL, SigningCertURL */
    /* out */
    bool need_sync;             /* queue records were written: answer once durable */
};

/* ---- topic.c ---- */

/* A topic engine over the queue engine e. meta_dir: where the snapshot
 * lives (NULL: not persisted). */
struct tp_engine *tp_engine_new(struct bk_engine *e, const char *meta_dir);
void tp_engine_free(struct tp_engine *t);
/* Loads the snapshot (a missing file is an empty registry) and makes sure
 * every http subscription has its push queue. 0, or -1 with err. */
int tp_engine_load(struct tp_engine *t, uint64_t now, char *err, size_t errlen);

struct tp_topic *tp_find_topic(struct tp_engine *t, const char *name);
struct tp_topic *tp_find_topic_arn(struct tp_engine *t, const char *arn);
struct tp_sub *tp_find_sub_arn(struct tp_engine *t, const char *arn);
struct tp_topic *tp__topic_new(struct tp_engine *t, const char *name, bool fifo, uint64_t now);
void tp__topic_free(struct tp_engine *t, struct tp_topic *tp);
struct tp_sub *tp__sub_new(struct tp_topic *tp, uint8_t proto, const char *endpoint, uint64_t now);
void tp__sub_free(struct tp_engine *t, struct tp_sub *s);
/* Detaches s from its topic and frees it (or marks it, when POSTs are in
 * flight, for deliver.c to free later). */
void tp__sub_remove(struct tp_engine *t, struct tp_sub *s);
/* Recomputes s->policy from its topic's defaults and its own policy. */
void tp__sub_policy(struct tp_sub *s);
/* Random UUID text. */
void tp__uuid(char out[40]);
/* Topic name rules: 1..256 of [A-Za-z0-9_-], ".fifo" suffix for FIFO. */
bool tp__topic_name_valid(const char *name, bool fifo);

/* ---- topic/attrs.c ---- */

/* Topic attributes: apply a name/value (creating: FifoTopic allowed),
 * render all of them. */
enum sns_err tp__topic_set_attr(struct tp_engine *t, struct tp_topic *tp, const char *name,
                                const char *value, bool creating, struct sns_error *err);
cJSON *tp__topic_attrs(const struct tp_topic *tp);
/* Subscription attributes. subscribing: the Subscribe call's message
 * prefix ("Attributes Reason: ") is used in errors. */
enum sns_err tp__sub_set_attr(struct tp_engine *t, struct tp_sub *s, const char *name,
                              const char *value, bool subscribing, struct sns_error *err);
cJSON *tp__sub_attrs(const struct tp_sub *s);

/* ---- topic/store.c ---- */

/* Writes the snapshot (no-op without meta_path). 0 or -errno. */
int tp__save(struct tp_engine *t);
int tp__load_file(struct tp_engine *t, uint64_t now, char *err, size_t errlen);

/* ---- topic/act.c ---- */

/* Runs action with canonical params: SNS_OK with *result a new object
 * (NULL for actions without one), or the error. */
enum sns_err tp_action(struct tp_engine *t, struct tp_ctx *ctx, const char *action,
                       const cJSON *params, cJSON **result, struct sns_error *err);

/* ---- topic/pub.c ---- */

enum sns_err tp__publish(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                         struct sns_error *err);
enum sns_err tp__publish_batch(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                               cJSON **res, struct sns_error *err);
/* Validates a MessageAttributes map as SNS does (ParameterValueInvalid or
 * InvalidParameter); adds names, types and values to *bytes. */
enum sns_err tp__check_attrs(const cJSON *attrs, size_t *bytes, struct sns_error *err);
/* Queues the SubscriptionConfirmation of an http subscription. */
enum sns_err tp__send_confirmation(struct tp_engine *t, struct tp_ctx *ctx, struct tp_sub *s,
                                   struct sns_error *err);
/* ---- topic/bridge.c: the queue engine on behalf of topics ---- */

/* The queue named by a name, QueueUrl or SQS ARN; NULL with err. */
struct bk_queue *tp__queue(struct tp_engine *t, const char *queue, struct bk_error *err);
/* Sends body (attrs: canonical message attributes, checked already;
 * group and dedup: FIFO ids or NULL) to a queue. ctx NULL: outside a
 * request. */
enum bk_err tp__queue_send(struct tp_engine *t, struct tp_ctx *ctx, const char *queue,
                           const char *body, size_t len, const cJSON *attrs, const char *group,
                           const char *dedup, struct bk_error *err);
/* One message received for push delivery (the receipt and body are
 * copies; attrs, parsed, NULL when none: the caller frees all). */
struct tp_received {
    char receipt[64];
    char *body;
    size_t len;
    uint32_t count;             /* receives so far, this one included */
    cJSON *attrs;
};
/* Receives one message of queue hidden for visibility_s; false when
 * there is none. */
bool tp__queue_receive(struct tp_engine *t, const char *queue, uint32_t visibility_s,
                       struct tp_received *out);
/* Deletes a received message (visibility_s < 0) or hides it that long. */
void tp__queue_ack(struct tp_engine *t, const char *queue, const char *receipt, int visibility_s);
/* Creates (if missing) the push queue of an http subscription. */
enum sns_err tp__push_queue_ensure(struct tp_engine *t, struct tp_sub *s, uint64_t now,
                                   struct sns_error *err);
/* Deletes a queue with its messages (a push queue no longer wanted). */
void tp__queue_drop(struct tp_engine *t, struct tp_ctx *ctx, const char *queue);

/* ---- topic/deliver.c: push delivery ---- */

/* Starts push delivery on loop (timers, HTTP clients). */
void tp_push_start(struct tp_engine *t, struct ev_loop *loop);
void tp_push_stop(struct tp_engine *t);
/* Something was queued for push: look at the backlogs soon. */
void tp_push_kick(struct tp_engine *t);
/* Opens or reopens the HTTP client of s after its endpoint changed. */
void tp__push_sub_changed(struct tp_engine *t, struct tp_sub *s);
/* Frees s's push state (client, queue when drop_queue). */
void tp__push_sub_release(struct tp_engine *t, struct tp_sub *s, bool drop_queue);

/* ---- topic/metrics.c ---- */

void tp_metrics_render(const struct tp_engine *t, struct buf *b);

/* ---- topic_server.c: the broker server's hooks ---- */

struct bk_server;
struct bk_conn;

/* Starts topics for the server (after the queue engine's replay): loads
 * the snapshot and the signing key from the data directory, starts push
 * delivery on the server's loop. NULL with *err (caller frees) on
 * failure. */
struct tp_engine *tp_server_start(struct bk_server *s, char **err);
/* Stops push delivery and frees everything (before the queue engine). */
void tp_server_stop(struct tp_engine *t);
/* Is the complete request in c for topics? The SNS query protocol (an SNS
 * Action, or a path under /sns), the native routes /v1/topics and
 * /v1/subscriptions, and the signing certificate's path. */
bool tp_server_wants(const struct bk_conn *c, const char *path, size_t plen);
/* Serves it. */
void tp_server_dispatch(struct tp_engine *t, struct bk_conn *c, const char *path, size_t plen,
                        const char *query, size_t qlen);
/* Runs an action for a request of c (clock, base URL, failed log); *hold:
 * the answer must wait for the group commit. */
enum sns_err tp_server_run(struct tp_engine *t, struct bk_conn *c, const char *action,
                           const cJSON *params, cJSON **res, struct sns_error *err, bool *hold);

/* ---- topic_native.c ---- */

void tp_native(struct tp_engine *t, struct bk_conn *c, const char *path, size_t plen,
               const char *query, size_t qlen);

#endif
