/* The native API's pieces shared by native.c (routing, queues,
 * rendering), native_msg.c (sending, receiving, deleting, visibility) and the topic
 * routes (topic_native.c: path segments, signatures). */
#ifndef FG_BROKER_HTTP_NATIVE_H
#define FG_BROKER_HTTP_NATIVE_H

#include "broker/http/http.h"

struct admin_req;

/* Answers j (taken) as JSON with status. hold: after the commit. */
void bk__native_json(struct bk_conn *c, int status, cJSON *j, bool hold);
/* Answers an error of the given SQS code. */
void bk__native_fail(struct bk_conn *c, enum sqs_err code, const char *msg);
/* Starts an engine call for c: false (and the error answered) when the
 * server refuses it now: a call that adds messages (grows) while the disk
 * is low, any call that writes while the log fails. */
bool bk__native_call_begin(struct bk_conn *c, bool grows, bool reads_only, struct bk_ctx *ctx);
/* Answers a finished call: o (taken; NULL: {"ok":true}) or the engine's
 * error, held until durable when the call wrote records. */
void bk__native_call_end(struct bk_conn *c, const struct bk_ctx *ctx, enum bk_err rc,
                         const struct bk_error *be, cJSON *o);
/* The queue of the path, or NULL with the 404 answered. */
struct bk_queue *bk__native_queue(struct bk_conn *c, const char *name);

/* Splits "/v1/queues/NAME/rest...": the next path segment into out;
 * false when there is none, it does not fit or holds % ? #. */
bool bk__native_segment(const char **p, const char *end, char *out, size_t cap);
/* With an auth key pair set, is the request signed (SigV4)? false with
 * err when not. */
bool bk__native_signed(struct bk_conn *c, struct sqs_error *err);

void bk__native_send(struct bk_conn *c, const char *name, const struct admin_req *ar);
void bk__native_receive(struct bk_conn *c, const char *name, const struct admin_req *ar);
void bk__native_delete(struct bk_conn *c, const char *name, const char *receipt);
void bk__native_delete_batch(struct bk_conn *c, const char *name);
void bk__native_visibility(struct bk_conn *c, const char *name, const char *receipt,
                           const struct admin_req *ar);

#endif
