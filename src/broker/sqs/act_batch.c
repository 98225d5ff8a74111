/* The actions of the API, part three: the batch actions and the message
 * move tasks.
 *
 * A batch is checked as a whole first (1..10 entries, distinct valid ids,
 * the total size for sends); then every entry runs through the same
 * function as the single action and lands in Successful or Failed, so one
 * bad entry never fails the others. */
#include "broker/sqs/actions.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum sqs_err (*entry_fn)(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                 const cJSON *entry, cJSON *out, struct sqs_error *err);

static bool entry_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 80)
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

/* Checks the Entries list; returns it through *entries. */
static enum sqs_err check_entries(const cJSON *p, const cJSON **entries, struct sqs_error *err)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "Entries");
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
    if (n == 0)
        return sqs_fail(err, SQS_E_EMPTY_BATCH, "There should be at least one entry in the request.");
    if (n > BK_MAX_BATCH)
        return sqs_fail(err, SQS_E_TOO_MANY_ENTRIES,
                        "Maximum number of entries per request are %d. You have sent %d.", BK_MAX_BATCH, n);
    const cJSON *a, *b;
    cJSON_ArrayForEach(a, list)
    {
        const char *id = bk__param_str(a, "Id");
        if (!cJSON_IsObject(a) || !id)
            return sqs_fail(err, SQS_E_MISSING_PARAMETER, "Every batch entry must have an Id.");
        if (!entry_id_valid(id))
            return sqs_fail(err, SQS_E_INVALID_BATCH_ENTRY_ID,
                            "A batch entry id can only contain alphanumeric characters, hyphens and "
                            "underscores. It can be at most 80 letters long.");
        for (b = a->next; b; b = b->next) {
            const char *id2 = bk__param_str(b, "Id");
            if (id2 && !strcmp(id, id2))
                return sqs_fail(err, SQS_E_BATCH_IDS_NOT_DISTINCT, "Id %s repeated.", id);
        }
    }
    *entries = list;
    return SQS_OK;
}

static enum sqs_err send_entry(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                               const cJSON *entry, cJSON *out, struct sqs_error *err)
{
    return bk__send_one(e, ctx, q, entry, out, err);
}

static enum sqs_err delete_entry(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                 const cJSON *entry, cJSON *out, struct sqs_error *err)
{
    FG_UNUSED(out);
    return bk__delete_one(e, ctx, q, entry, err);
}

static enum sqs_err visibility_entry(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                                     const cJSON *entry, cJSON *out, struct sqs_error *err)
{
    FG_UNUSED(out);
    return bk__visibility_one(e, ctx, q, entry, err);
}

static enum sqs_err run_batch(struct bk_engine *e, struct bk_ctx *ctx, struct bk_queue *q,
                              const cJSON *entries, entry_fn fn, cJSON **res)
{
    cJSON *ok = cJSON_CreateArray(), *failed = cJSON_CreateArray();
    const cJSON *entry;
    cJSON_ArrayForEach(entry, entries)
    {
        struct sqs_error err = {SQS_OK, ""};
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "Id", bk__param_str(entry, "Id"));
        if (fn(e, ctx, q, entry, out, &err) == SQS_OK) {
            cJSON_AddItemToArray(ok, out);
            continue;
        }
        cJSON_Delete(out);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "Id", bk__param_str(entry, "Id"));
        cJSON_AddBoolToObject(f, "SenderFault", sqs_err_status(err.code) < 500);
        cJSON_AddStringToObject(f, "Code", sqs_err_name(err.code));
        cJSON_AddStringToObject(f, "Message", err.message);
        cJSON_AddItemToArray(failed, f);
    }
    *res = cJSON_CreateObject();
    cJSON_AddItemToObject(*res, "Successful", ok);
    cJSON_AddItemToObject(*res, "Failed", failed);
    return SQS_OK;
}

/* A batch's queue and its Entries, checked. */
static enum sqs_err batch_args(struct bk_engine *e, const cJSON *p, struct bk_queue **q,
                               const cJSON **entries, struct sqs_error *err)
{
    *q = bk__param_queue(e, p, err);
    if (!*q)
        return err->code;
    return check_entries(p, entries, err);
}

enum sqs_err bk__act_send_batch(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err)
{
    struct bk_queue *q;
    const cJSON *entries;
    if (batch_args(e, p, &q, &entries, err) != SQS_OK)
        return err->code;
    /* The whole batch counts against the queue's message size limit. */
    size_t total = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, entries)
    {
        const char *body = bk__param_str(entry, "MessageBody");
        total += body ? strlen(body) : 0;
        struct sqs_error ignore;
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(entry, "MessageAttributes");
        if (attrs)
            sqs_check_attributes(attrs, &total, &ignore);
    }
    if (total > q->a.max_size)
        return sqs_fail(err, SQS_E_BATCH_TOO_LONG,
                        "Batch requests cannot be longer than %u bytes. You have sent %zu bytes.",
                        q->a.max_size, total);
    return run_batch(e, ctx, q, entries, send_entry, res);
}

enum sqs_err bk__act_delete_batch(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sqs_error *err)
{
    struct bk_queue *q;
    const cJSON *entries;
    if (batch_args(e, p, &q, &entries, err) != SQS_OK)
        return err->code;
    return run_batch(e, ctx, q, entries, delete_entry, res);
}

enum sqs_err bk__act_visibility_batch(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                      cJSON **res, struct sqs_error *err)
{
    struct bk_queue *q;
    const cJSON *entries;
    if (batch_args(e, p, &q, &entries, err) != SQS_OK)
        return err->code;
    return run_batch(e, ctx, q, entries, visibility_entry, res);
}

/* ---- message move tasks ---- */

static const char *const task_status[] = {"RUNNING", "COMPLETED", "CANCELLED", "FAILED"};

enum sqs_err bk__act_start_move(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err)
{
    const char *src_arn = bk__param_str(p, "SourceArn");
    const char *dst_arn = bk__param_str(p, "DestinationArn");
    if (!src_arn)
        return bk__param_missing(err, "SourceArn");
    struct bk_move_args a = {.src = bk_engine_find_arn(e, src_arn), .has_dst = dst_arn && *dst_arn};
    if (a.src && a.has_dst)
        a.dst = bk_engine_find_arn(e, dst_arn);
    bk__param_loose(p, "MaxNumberOfMessagesPerSecond", &a.has_rate, &a.rate);
    struct bk_move_task *t;
    struct bk_error be;
    if (bk_move_start(e, ctx, &a, &t, &be) != BK_OK)
        return bk__sqs_error(&be, err);
    *res = cJSON_CreateObject();
    cJSON_AddStringToObject(*res, "TaskHandle", t->handle);
    return SQS_OK;
}

cJSON *bk__moves_json(struct bk_engine *e, const char *src_arn, int64_t max)
{
    cJSON *arr = cJSON_CreateArray();
    int64_t n = 0;
    for (struct bk_move_task *t = e->tasks; t && n < max; t = t->next) {
        if (strcmp(t->src_arn, src_arn) != 0)
            continue;
        cJSON *o = cJSON_CreateObject();
        if (t->status == BK_TASK_RUNNING)
            cJSON_AddStringToObject(o, "TaskHandle", t->handle);
        cJSON_AddStringToObject(o, "Status", task_status[t->status]);
        cJSON_AddStringToObject(o, "SourceArn", t->src_arn);
        if (t->dst_arn[0])
            cJSON_AddStringToObject(o, "DestinationArn", t->dst_arn);
        if (t->rate)
            cJSON_AddNumberToObject(o, "MaxNumberOfMessagesPerSecond", t->rate);
        cJSON_AddNumberToObject(o, "ApproximateNumberOfMessagesMoved", (double)t->moved);
        cJSON_AddNumberToObject(o, "ApproximateNumberOfMessagesToMove", (double)t->to_move);
        if (t->failure[0])
            cJSON_AddStringToObject(o, "FailureReason", t->failure);
        cJSON_AddNumberToObject(o, "StartedTimestamp", (double)t->started_ms);
        cJSON_AddItemToArray(arr, o);
        n++;
    }
    return arr;
}

enum sqs_err bk__act_list_moves(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err)
{
    FG_UNUSED(ctx);
    const char *src_arn = bk__param_str(p, "SourceArn");
    if (!src_arn)
        return bk__param_missing(err, "SourceArn");
    if (!bk_engine_find_arn(e, src_arn))
        return sqs_fail(err, SQS_E_RESOURCE_NOT_FOUND, "The resource that you specified for the "
                                                       "SourceArn parameter doesn't exist.");
    int64_t max;
    enum sqs_err rc = bk__param_int(p, "MaxResults", 1, 10, 1, &max, err);
    if (rc != SQS_OK)
        return rc;
    *res = cJSON_CreateObject();
    cJSON_AddItemToObject(*res, "Results", bk__moves_json(e, src_arn, max));
    return SQS_OK;
}

enum sqs_err bk__act_cancel_move(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                 cJSON **res, struct sqs_error *err)
{
    FG_UNUSED(ctx);
    const char *h = bk__param_str(p, "TaskHandle");
    if (!h)
        return bk__param_missing(err, "TaskHandle");
    struct bk_move_task *t = bk__task_find(e, h);
    if (!t)
        return sqs_fail(err, SQS_E_RESOURCE_NOT_FOUND, "The task handle does not exist.");
    if (t->status != BK_TASK_RUNNING)
        return sqs_fail(err, SQS_E_UNSUPPORTED_OPERATION, "Only active tasks can be cancelled.");
    t->status = BK_TASK_CANCELLED;
    *res = cJSON_CreateObject();
    cJSON_AddNumberToObject(*res, "ApproximateNumberOfMessagesMoved", (double)t->moved);
    return SQS_OK;
}
