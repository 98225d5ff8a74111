/* The SQS actions over the queue engine (actions.c, act_msg.c,
 * act_batch.c): the SQS edge of the engine. Each action takes the
 * canonical form of sqs_proto.h (parameters and results shaped as in the
 * AWS JSON 1.0 protocol), maps it onto the engine's typed calls
 * (broker/queue/engine.h) and maps their enum bk_err back to enum
 * sqs_err (bk__sqs_error, one table). SQS JSON and SQS error codes live
 * here and in the rest of sqs/, nowhere in the engine. */
#ifndef FG_BROKER_SQS_ACTIONS_H
#define FG_BROKER_SQS_ACTIONS_H

#include "broker/queue/engine.h"
#include "broker/sqs/sqs_proto.h"

#include <cjson/cJSON.h>

/* ---- actions ---- */

/* Runs action with canonical params. On success *result is a new object
 * (or NULL for an empty result) and SQS_OK is returned; otherwise the
 * error with err filled. Unknown actions: SQS_E_INVALID_ACTION. */
enum sqs_err bk_action(struct bk_engine *e, struct bk_ctx *ctx, const char *action,
                       const cJSON *params, cJSON **result, struct sqs_error *err);
/* Is action one that only reads (never waits for durability)? */
bool bk_action_known(const char *action);

/* Action handlers (actions.c, act_msg.c, act_batch.c). */
typedef enum sqs_err (*bk_action_fn)(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                     cJSON **res, struct sqs_error *err);
enum sqs_err bk__act_send(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                          struct sqs_error *err);
enum sqs_err bk__act_receive(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                             struct sqs_error *err);
enum sqs_err bk__act_delete(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                            struct sqs_error *err);
enum sqs_err bk__act_visibility(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err);
enum sqs_err bk__act_send_batch(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err);
enum sqs_err bk__act_delete_batch(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sqs_error *err);
enum sqs_err bk__act_visibility_batch(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                      cJSON **res, struct sqs_error *err);
enum sqs_err bk__act_start_move(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err);
enum sqs_err bk__act_list_moves(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err);
enum sqs_err bk__act_cancel_move(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                 cJSON **res, struct sqs_error *err);

/* One entry's work, shared by the single and the batch actions: fill out
 * (send) or just succeed. */
enum sqs_err bk__send_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *p,
                          cJSON *out, struct sqs_error *err);
enum sqs_err bk__delete_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q, const cJSON *p,
                            struct sqs_error *err);
enum sqs_err bk__visibility_one(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                const cJSON *p, struct sqs_error *err);

/* ReceiveMessage, typed: what a parked long poll keeps to run the
 * receive again and show its messages. The attribute selection: which
 * system attributes AttributeNames (sys[0]) and
 * MessageSystemAttributeNames (sys[1]) ask for, a bit per name (each list
 * shows its own), and the MessageAttributeNames patterns ("All", ".*",
 * "prefix.*", exact). */
struct bk_recv_select {
    uint32_t sys[2];
    char **mnames;
    size_t nmnames;
};
/* ReceiveMessage parameters to the queue, the engine's arguments and the
 * selection (bk__recv_select_free frees it; nothing to free on failure). */
enum sqs_err bk__receive_args(struct bk_engine *e, const cJSON *p, struct bk_queue **q, struct bk_receive_args *a,
                              struct bk_recv_select *sel, struct sqs_error *err);
void bk__recv_select_free(struct bk_recv_select *sel);
/* The ReceiveMessage result for delivered messages ({"Messages": [..]},
 * or {} for none). */
cJSON *bk__receive_render(struct bk_engine *e, const struct bk_receive_result *r, const struct bk_recv_select *sel);

/* What every front end shows of a delivered message: ids, the body's MD5
 * (the sender's or computed), the FIFO sequence number ("" when not
 * FIFO), the dead-letter source queue's ARN ("" when none or gone), and
 * where its attributes, system attributes and body lie. */
struct bk_msg_view {
    const struct bk_msg *m;
    char id[40], handle[64], md5[33], seq[32], dlq_arn[160];
    const char *attrs, *sys, *body;
};
void bk__msg_view(struct bk_engine *e, const struct bk_received *rm, struct bk_msg_view *v);

/* The SQS error for an engine error (one table, in actions.c): fills err
 * with the same message and returns its code. */
enum sqs_err bk__sqs_error(const struct bk_error *be, struct sqs_error *err);

/* A message body with its attributes (canonical JSON maps, NULL for
 * none) to send arguments: the SQS checks (body characters, attribute
 * syntax), the attributes encoded (*at, *st: the caller frees them, also
 * on failure) and the MD5 digests SQS shows. Used by SendMessage and by
 * the native API, whose attributes are the same. */
enum sqs_err bk__send_body(const char *body, const cJSON *attrs, const cJSON *sys, struct bk_send_args *a,
                           char **at, char **st, struct sqs_error *err);

/* The move tasks of the queue src_arn names (at most max), as
 * ListMessageMoveTasks shows them ("Results"). */
cJSON *bk__moves_json(struct bk_engine *e, const char *src_arn, int64_t max);

/* Parameter helpers shared by the action files. */
struct bk_queue *bk__param_queue(struct bk_engine *e, const cJSON *p, struct sqs_error *err);
/* MissingParameter, "The request must contain the parameter NAME." */
enum sqs_err bk__param_missing(struct sqs_error *err, const char *name);
/* Integer parameter (a JSON number or a numeric string). Absent: def.
 * Out of [min, max] or not a number: InvalidParameterValue. */
enum sqs_err bk__param_int(const cJSON *p, const char *name, int64_t min, int64_t max, int64_t def,
                           int64_t *out, struct sqs_error *err);
const char *bk__param_str(const cJSON *p, const char *name);
/* An integer parameter for an engine call that checks the range itself:
 * *has false when absent or null; a value that is no integer becomes
 * INT64_MIN, which every range refuses with the same message. */
void bk__param_loose(const cJSON *p, const char *name, bool *has, int64_t *out);
char *bk__queue_url(const struct bk_ctx *ctx, const struct bk_queue *q);

#endif
