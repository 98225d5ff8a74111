/* The actions of the API, part one: the dispatch table, parameter helpers
 * and the queue-level actions (create, delete, list, URLs, attributes,
 * tags, purge, dead-letter sources, permissions).
 *
 * Every action takes the canonical form of sqs_proto.h: parameters and
 * results shaped as in the AWS JSON 1.0 protocol. It decodes them into
 * the engine's typed calls, where queue behaviour is written once for the
 * SQS API, the native API and topics, and maps the engine's errors back
 * (bk__sqs_error, the one table). An action that writes records sets
 * ctx->need_sync; the server holds its answer until they are durable. */
#include "broker/sqs/actions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

static const enum sqs_err bk_to_sqs[] = {
    [BK_OK] = SQS_OK,
    [BK_E_MISSING] = SQS_E_MISSING_PARAMETER,
    [BK_E_INVALID] = SQS_E_INVALID_PARAMETER_VALUE,
    [BK_E_CONTENTS] = SQS_E_INVALID_MESSAGE_CONTENTS,
    [BK_E_ATTR_NAME] = SQS_E_INVALID_ATTRIBUTE_NAME,
    [BK_E_ATTR_VALUE] = SQS_E_INVALID_ATTRIBUTE_VALUE,
    [BK_E_NO_QUEUE] = SQS_E_NONEXISTENT_QUEUE,
    [BK_E_QUEUE_EXISTS] = SQS_E_QUEUE_NAME_EXISTS,
    [BK_E_RECEIPT] = SQS_E_RECEIPT_HANDLE_INVALID,
    [BK_E_NOT_INFLIGHT] = SQS_E_MESSAGE_NOT_INFLIGHT,
    [BK_E_OVER_LIMIT] = SQS_E_OVER_LIMIT,
    [BK_E_UNSUPPORTED] = SQS_E_UNSUPPORTED_OPERATION,
    [BK_E_NOT_FOUND] = SQS_E_RESOURCE_NOT_FOUND,
    [BK_E_LOG] = SQS_E_INTERNAL,
};

enum sqs_err bk__sqs_error(const struct bk_error *be, struct sqs_error *err)
{
    enum sqs_err code = (size_t)be->code < ARRAY_SIZE(bk_to_sqs) ? bk_to_sqs[be->code] : SQS_E_INTERNAL;
    return sqs_fail(err, code, "%s", be->message);
}

/* ---- parameter helpers ---- */

const char *bk__param_str(const cJSON *p, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

enum sqs_err bk__param_int(const cJSON *p, const char *name, int64_t min, int64_t max, int64_t def,
                           int64_t *out, struct sqs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return SQS_OK;
    }
    int64_t n;
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble) {
        n = (int64_t)v->valuedouble;
    } else if (cJSON_IsString(v) && *v->valuestring) {
        char *end;
        long long x = strtoll(v->valuestring, &end, 10);
        if (*end)
            goto bad;
        n = x;
    } else {
        goto bad;
    }
    if (n < min || n > max)
        goto bad;
    *out = n;
    return SQS_OK;
bad:
    return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                    "Value for parameter %s is invalid. Reason: must be between %" PRId64 " and %" PRId64 ".",
                    name, min, max);
}

void bk__param_loose(const cJSON *p, const char *name, bool *has, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    struct sqs_error ignore;
    *has = v && !cJSON_IsNull(v);
    *out = 0;
    if (*has && bk__param_int(p, name, INT64_MIN + 1, INT64_MAX, 0, out, &ignore) != SQS_OK)
        *out = INT64_MIN;
}

enum sqs_err bk__param_missing(struct sqs_error *err, const char *name)
{
    return sqs_fail(err, SQS_E_MISSING_PARAMETER, "The request must contain the parameter %s.", name);
}

struct bk_queue *bk__param_queue(struct bk_engine *e, const cJSON *p, struct sqs_error *err)
{
    const char *url = bk__param_str(p, "QueueUrl");
    if (!url || !*url) {
        bk__param_missing(err, "QueueUrl");
        return NULL;
    }
    struct bk_queue *q = bk_engine_find_url(e, url);
    if (!q)
        sqs_fail(err, SQS_E_NONEXISTENT_QUEUE, "The specified queue does not exist.");
    return q;
}

char *bk__queue_url(const struct bk_ctx *ctx, const struct bk_queue *q)
{
    return xasprintf("%s/%s/%s", ctx->base_url ? ctx->base_url : "http://localhost", BK_ACCOUNT,
                     q->name);
}

static cJSON *url_result(const struct bk_ctx *ctx, const struct bk_queue *q)
{
    cJSON *r = cJSON_CreateObject();
    char *url = bk__queue_url(ctx, q);
    cJSON_AddStringToObject(r, "QueueUrl", url);
    free(url);
    return r;
}

static enum sqs_err log_failed(struct sqs_error *err)
{
    return sqs_fail(err, SQS_E_INTERNAL, "The broker could not write its log.");
}

/* ---- queue actions ---- */

static enum sqs_err act_create(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                               struct sqs_error *err)
{
    const char *name = bk__param_str(p, "QueueName");
    if (!name || !*name)
        return bk__param_missing(err, "QueueName");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(p, "Attributes");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(p, "tags");
    if (!tags)
        tags = cJSON_GetObjectItemCaseSensitive(p, "Tags");
    struct bk_queue *q;
    struct bk_error be;
    if (bk_queue_ensure(e, ctx, name, attrs, tags, &q, &be) != BK_OK)
        return bk__sqs_error(&be, err);
    *res = url_result(ctx, q);
    return SQS_OK;
}

static enum sqs_err act_get_url(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                struct sqs_error *err)
{
    const char *name = bk__param_str(p, "QueueName");
    if (!name || !*name)
        return bk__param_missing(err, "QueueName");
    struct bk_queue *q = bk_engine_find(e, name, strlen(name));
    if (!q)
        return sqs_fail(err, SQS_E_NONEXISTENT_QUEUE, "The specified queue does not exist.");
    *res = url_result(ctx, q);
    return SQS_OK;
}

static enum sqs_err act_delete_queue(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p,
                                     cJSON **res, struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    struct bk_error be;
    return bk_queue_delete(e, ctx, q, &be) == BK_OK ? SQS_OK : bk__sqs_error(&be, err);
}

static enum sqs_err act_list(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                             struct sqs_error *err)
{
    const char *prefix = bk__param_str(p, "QueueNamePrefix");
    const char *token = bk__param_str(p, "NextToken");
    int64_t max;
    enum sqs_err rc = bk__param_int(p, "MaxResults", 1, 1000, 0, &max, err);
    if (rc != SQS_OK)
        return rc;
    size_t pl = prefix ? strlen(prefix) : 0;
    struct bk_queue *q = e->qhead;
    if (token && *token) {
        /* The token is the name of the last queue returned. */
        struct bk_queue *t = bk_engine_find(e, token, strlen(token));
        if (!t)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE, "Invalid NextToken.");
        q = t->lnext;
    }
    cJSON *urls = cJSON_CreateArray();
    int64_t n = 0, limit = max ? max : 1000;
    const struct bk_queue *last = NULL;
    for (; q; q = q->lnext) {
        if (pl && strncmp(q->name, prefix, pl) != 0)
            continue;
        if (n == limit)
            break;
        char *url = bk__queue_url(ctx, q);
        cJSON_AddItemToArray(urls, cJSON_CreateString(url));
        free(url);
        n++;
        last = q;
    }
    *res = cJSON_CreateObject();
    if (n)
        cJSON_AddItemToObject(*res, "QueueUrls", urls);
    else
        cJSON_Delete(urls);
    if (max && q && last)
        cJSON_AddStringToObject(*res, "NextToken", last->name);
    return SQS_OK;
}

static enum sqs_err act_get_attrs(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                  struct sqs_error *err)
{
    FG_UNUSED(ctx);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    cJSON *attrs = cJSON_CreateObject();
    struct bk_error be;
    if (bk_qattrs_render(q, cJSON_GetObjectItemCaseSensitive(p, "AttributeNames"), attrs, &be) != BK_OK) {
        cJSON_Delete(attrs);
        return bk__sqs_error(&be, err);
    }
    *res = cJSON_CreateObject();
    if (cJSON_GetArraySize(attrs))
        cJSON_AddItemToObject(*res, "Attributes", attrs);
    else
        cJSON_Delete(attrs);
    return SQS_OK;
}

static enum sqs_err act_set_attrs(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                  struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(p, "Attributes");
    if (!attrs)
        return bk__param_missing(err, "Attributes");
    struct bk_qattrs a;
    struct bk_error be;
    bk_qattrs_copy(&a, &q->a);
    if (bk_qattrs_apply(e, &a, attrs, q->name, false, &be) != BK_OK) {
        bk_qattrs_free(&a);
        return bk__sqs_error(&be, err);
    }
    return bk_queue_set_attrs(e, ctx, q, &a, &be) == BK_OK ? SQS_OK : bk__sqs_error(&be, err);
}

static enum sqs_err act_purge(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                              struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    struct bk_error be;
    return bk_queue_purge(e, ctx, q, &be) == BK_OK ? SQS_OK : bk__sqs_error(&be, err);
}

static enum sqs_err act_dl_sources(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                   struct sqs_error *err)
{
    struct bk_queue *dlq = bk__param_queue(e, p, err);
    if (!dlq)
        return err->code;
    int64_t max;
    enum sqs_err rc = bk__param_int(p, "MaxResults", 1, 1000, 1000, &max, err);
    if (rc != SQS_OK)
        return rc;
    const char *token = bk__param_str(p, "NextToken");
    struct bk_queue *q = e->qhead;
    if (token && *token) {
        struct bk_queue *t = bk_engine_find(e, token, strlen(token));
        if (!t)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE, "Invalid NextToken.");
        q = t->lnext;
    }
    cJSON *urls = cJSON_CreateArray();
    int64_t n = 0;
    const struct bk_queue *last = NULL;
    for (; q; q = q->lnext) {
        if (!q->a.dlq_name || strcmp(q->a.dlq_name, dlq->name) != 0)
            continue;
        if (n == max)
            break;
        char *url = bk__queue_url(ctx, q);
        cJSON_AddItemToArray(urls, cJSON_CreateString(url));
        free(url);
        n++;
        last = q;
    }
    *res = cJSON_CreateObject();
    cJSON_AddItemToObject(*res, "queueUrls", urls);
    if (q && last)
        cJSON_AddStringToObject(*res, "NextToken", last->name);
    return SQS_OK;
}

static enum sqs_err act_tag(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                            struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(p, "Tags");
    if (!tags)
        return bk__param_missing(err, "Tags");
    struct bk_error be;
    return bk_queue_tag(e, ctx, q, tags, &be) == BK_OK ? SQS_OK : bk__sqs_error(&be, err);
}

static enum sqs_err act_untag(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                              struct sqs_error *err)
{
    FG_UNUSED(res);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(p, "TagKeys");
    if (!cJSON_IsArray(keys))
        return bk__param_missing(err, "TagKeys");
    const cJSON *k;
    cJSON_ArrayForEach(k, keys) if (cJSON_IsString(k))
        cJSON_DeleteItemFromObjectCaseSensitive(q->tags, k->valuestring);
    if (!bk__log_queue(e, q))
        return log_failed(err);
    ctx->need_sync = true;
    return SQS_OK;
}

static enum sqs_err act_list_tags(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                  struct sqs_error *err)
{
    FG_UNUSED(ctx);
    struct bk_queue *q = bk__param_queue(e, p, err);
    if (!q)
        return err->code;
    *res = cJSON_CreateObject();
    if (cJSON_GetArraySize(q->tags))
        cJSON_AddItemToObject(*res, "Tags", cJSON_Duplicate(q->tags, true));
    return SQS_OK;
}

/* AddPermission / RemovePermission: accepted and ignored (the broker has
 * one account; access is the key pair or the network). */
static enum sqs_err act_permission(struct bk_engine *e, struct bk_ctx *ctx, const cJSON *p, cJSON **res,
                                   struct sqs_error *err)
{
    FG_UNUSED(ctx);
    FG_UNUSED(res);
    if (!bk__param_queue(e, p, err))
        return err->code;
    if (!bk__param_str(p, "Label"))
        return bk__param_missing(err, "Label");
    return SQS_OK;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    bk_action_fn fn;
} actions[] = {
    {"SendMessage", bk__act_send},
    {"ReceiveMessage", bk__act_receive},
    {"DeleteMessage", bk__act_delete},
    {"ChangeMessageVisibility", bk__act_visibility},
    {"SendMessageBatch", bk__act_send_batch},
    {"DeleteMessageBatch", bk__act_delete_batch},
    {"ChangeMessageVisibilityBatch", bk__act_visibility_batch},
    {"CreateQueue", act_create},
    {"GetQueueUrl", act_get_url},
    {"DeleteQueue", act_delete_queue},
    {"ListQueues", act_list},
    {"GetQueueAttributes", act_get_attrs},
    {"SetQueueAttributes", act_set_attrs},
    {"PurgeQueue", act_purge},
    {"ListDeadLetterSourceQueues", act_dl_sources},
    {"TagQueue", act_tag},
    {"UntagQueue", act_untag},
    {"ListQueueTags", act_list_tags},
    {"AddPermission", act_permission},
    {"RemovePermission", act_permission},
    {"StartMessageMoveTask", bk__act_start_move},
    {"ListMessageMoveTasks", bk__act_list_moves},
    {"CancelMessageMoveTask", bk__act_cancel_move},
};

bool bk_action_known(const char *action)
{
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
        if (!strcmp(actions[i].name, action))
            return true;
    return false;
}

enum sqs_err bk_action(struct bk_engine *e, struct bk_ctx *ctx, const char *action,
                       const cJSON *params, cJSON **result, struct sqs_error *err)
{
    *result = NULL;
    err->code = SQS_OK;
    err->message[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        if (strcmp(actions[i].name, action) != 0)
            continue;
        if (!cJSON_IsObject(params))
            return sqs_fail(err, SQS_E_MALFORMED_QUERY, "The request parameters must be an object.");
        enum sqs_err rc = actions[i].fn(e, ctx, params, result, err);
        if (rc != SQS_OK) {
            cJSON_Delete(*result);
            *result = NULL;
        }
        return rc;
    }
    return sqs_fail(err, SQS_E_INVALID_ACTION, "The action %.64s is not valid for this endpoint.", action);
}
