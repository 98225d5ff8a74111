/* The SQS wire protocols' front door (see sqs_proto.h): which protocol a
 * request speaks, decoding into the canonical form, rendering results and
 * errors back.
 *
 * The JSON 1.0 protocol is handled here (it is the canonical form, checked
 * against the model); the query protocol's decoding lives in sqs/query.c,
 * the XML rendering in sqs/xml.c and the error table in sqs/error.c. */
#include "broker/sqs/sqs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- detection ---- */

static bool starts_with(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && strncasecmp(s, lit, l) == 0;
}

static const struct http_header *header(const struct http_request *req, const char *name)
{
    return http_find_header(req->headers, req->nheaders, name);
}

/* Is there a parameter named Action in the form-encoded s[0..n)? */
static bool has_action_param(const char *s, size_t n)
{
    for (size_t i = 0; i + 7 <= n; i++)
        if ((i == 0 || s[i - 1] == '&') && memcmp(s + i, "Action=", 7) == 0)
            return true;
    return false;
}

static const char *query_string(const struct http_request *req, size_t *n)
{
    const char *q = memchr(req->target, '?', req->target_len);
    if (!q) {
        *n = 0;
        return NULL;
    }
    *n = req->target_len - (size_t)(q + 1 - req->target);
    return q + 1;
}

static bool is_form(const struct http_request *req)
{
    const struct http_header *ct = header(req, "Content-Type");
    return ct && starts_with(ct->value, ct->value_len, "application/x-www-form-urlencoded");
}

bool sqs_is_sqs_request(const struct http_request *req, const char *body, size_t len)
{
    const struct http_header *t = header(req, "X-Amz-Target");
    if (t)
        return starts_with(t->value, t->value_len, "AmazonSQS.");
    const struct http_header *ct = header(req, "Content-Type");
    if (ct && starts_with(ct->value, ct->value_len, "application/x-amz-json-1.0"))
        return true;
    size_t qn;
    const char *qs = query_string(req, &qn);
    if (qs && has_action_param(qs, qn))
        return true;
    return is_form(req) && has_action_param(body, FG_MIN(len, 1024));
}

/* ---- decoding ---- */

/* MissingParameter for the first required member absent from v, looking
 * into lists and maps of structures too. */
static enum sqs_err check_required(const cJSON *v, const struct sqs_shape *s, struct sqs_error *err)
{
    if (s->kind == SQS_K_LIST || s->kind == SQS_K_MAP) {
        if (s->elem->kind != SQS_K_STRUCT)
            return SQS_OK;
        for (const cJSON *c = v->child; c; c = c->next)
            if (check_required(c, s->elem, err) != SQS_OK)
                return err->code;
        return SQS_OK;
    }
    if (s->kind != SQS_K_STRUCT)
        return SQS_OK;
    for (unsigned i = 0; i < s->nmembers; i++) {
        const struct sqs_member *m = &s->members[i];
        const cJSON *mv = cJSON_GetObjectItemCaseSensitive(v, m->name);
        if (!mv) {
            if (m->required)
                return sqs_fail(err, SQS_E_MISSING_PARAMETER,
                                "The request must contain the parameter %s.", m->name);
            continue;
        }
        if (check_required(mv, m->shape, err) != SQS_OK)
            return err->code;
    }
    return SQS_OK;
}

/* Query clients post to the queue URL itself: a path /<account>/<name>
 * gives the QueueUrl when the parameters lack it. */
static void queue_url_from_path(const struct http_request *req, const struct sqs_action *a,
                                cJSON *params)
{
    if (!sqs__member(a->in, "QueueUrl") || cJSON_GetObjectItemCaseSensitive(params, "QueueUrl"))
        return;
    const char *p = req->target;
    size_t n = req->target_len;
    const char *q = memchr(p, '?', n);
    if (q)
        n = (size_t)(q - p);
    if (n < 4 || p[0] != '/')
        return;
    const char *slash = memchr(p + 1, '/', n - 1);
    if (!slash || slash == p + 1 || slash == p + n - 1 ||
        memchr(slash + 1, '/', (size_t)(p + n - slash - 1)))
        return;
    char *url = xasprintf("http://%.*s%.*s", req->host ? (int)req->host_len : 9,
                          req->host ? req->host : "localhost", (int)n, p);
    cJSON_AddItemToObject(params, "QueueUrl", cJSON_CreateString(url));
    free(url);
}

/* cJSON turns a \u0000 escape into a NUL that silently ends the string;
 * SQS refuses the character, so look for it before parsing. Escapes only
 * occur inside strings, so skipping escaped characters is enough. */
static bool has_nul_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
        i++;
    }
    return false;
}

static bool all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static enum sqs_err json_decode(const struct http_request *req, const char *body, size_t len,
                                const struct sqs_action **ap, cJSON **params, struct sqs_error *err)
{
    const struct http_header *t = header(req, "X-Amz-Target");
    if (!t)
        return sqs_fail(err, SQS_E_INVALID_ACTION, "Missing X-Amz-Target header.");
    if (!starts_with(t->value, t->value_len, "AmazonSQS.") ||
        !(*ap = sqs__action(t->value + 10, t->value_len - 10)))
        return sqs_fail(err, SQS_E_INVALID_ACTION,
                        "The action %.*s is not valid for this endpoint.",
                        (int)FG_MIN(t->value_len, 100), t->value);
    if (req->m != HTTP_M_POST)
        return sqs_fail(err, SQS_E_INVALID_ACTION, "The JSON protocol needs POST.");
    if (has_nul_escape(body, len))
        return sqs_fail(err, SQS_E_INVALID_MESSAGE_CONTENTS,
                        "Invalid binary character '#x0' was found in the request.");
    cJSON *doc = NULL;
    if (!all_space(body, len)) {
        const char *end = NULL;
        doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
        if (!doc || !end || !all_space(end, (size_t)(body + len - end))) {
            cJSON_Delete(doc);
            return sqs_fail(err, SQS_E_MALFORMED_QUERY, "The request body is not valid JSON.");
        }
    } else {
        doc = cJSON_CreateObject();
    }
    *params = sqs__json_canon(doc, (*ap)->in, err);
    cJSON_Delete(doc);
    return *params ? SQS_OK : err->code;
}

enum sqs_err sqs_decode(const struct http_request *req, const char *body, size_t len,
                        enum sqs_proto *proto, char action[64], cJSON **params,
                        struct sqs_error *err)
{
    const struct sqs_action *a = NULL;
    enum sqs_err rc;
    *params = NULL;
    action[0] = '\0';
    err->code = SQS_OK;
    err->message[0] = '\0';
    const struct http_header *ct = header(req, "Content-Type");
    if (header(req, "X-Amz-Target") ||
        (ct && starts_with(ct->value, ct->value_len, "application/x-amz-json-1.0"))) {
        *proto = SQS_PROTO_JSON;
        rc = json_decode(req, body, len, &a, params, err);
    } else {
        *proto = SQS_PROTO_QUERY;
        size_t qn;
        const char *qs = query_string(req, &qn);
        bool form = req->m == HTTP_M_POST && (is_form(req) || (!ct && len > 0));
        rc = sqs__query_decode(qs, qn, form ? body : NULL, form ? len : 0, action, params, err);
        if (rc == SQS_OK)
            a = sqs__action(action, strlen(action));
    }
    if (rc == SQS_OK) {
        ASSERT(a && *params);
        snprintf(action, 64, "%s", a->name);
        queue_url_from_path(req, a, *params);
        rc = check_required(*params, a->in, err);
    }
    if (rc == SQS_OK && strcmp(a->name, "SendMessage") == 0) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(*params, "MessageBody");
        if (!sqs__valid_chars(b->valuestring, strlen(b->valuestring)))
            rc = sqs_fail(err, SQS_E_INVALID_MESSAGE_CONTENTS,
                          "Invalid binary character was found in the message body, the set of "
                          "allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to "
                          "#xFFFD | #x10000 to #x10FFFF");
    }
    if (rc != SQS_OK) {
        cJSON_Delete(*params);
        *params = NULL;
    }
    return rc;
}

/* ---- encoding ---- */

void sqs_encode_result(enum sqs_proto proto, const char *action, const cJSON *result,
                       const char *request_id, struct buf *out, const char **content_type)
{
    if (proto == SQS_PROTO_QUERY) {
        const struct sqs_action *a = sqs__action(action, strlen(action));
        sqs__xml_result(a, action, result, request_id, out);
        *content_type = "text/xml";
        return;
    }
    *content_type = "application/x-amz-json-1.0";
    if (!result) {
        buf_append_str(out, "{}");
        return;
    }
    char *s = cJSON_PrintUnformatted(result);
    buf_append_str(out, s ? s : "{}");
    cJSON_free(s);
}

void sqs_encode_error(enum sqs_proto proto, const struct sqs_error *err, const char *request_id,
                      struct buf *out, const char **content_type, int *status,
                      const char **extra_header)
{
    *status = sqs_err_status(err->code);
    if (proto == SQS_PROTO_QUERY) {
        sqs__xml_error(err, request_id, out);
        *content_type = "text/xml";
        *extra_header = NULL;
        return;
    }
    /* The message may echo hostile input cut at any byte: keep it UTF-8
     * (as the XML writer does) so the body stays valid JSON. */
    struct buf msg;
    buf_init(&msg);
    const char *m = err->message;
    size_t mlen = strnlen(m, sizeof err->message);
    for (size_t i = 0; i < mlen;) {
        size_t used;
        if (sqs__utf8_char(m + i, mlen - i, &used) < 0)
            buf_append_str(&msg, "\xEF\xBF\xBD");
        else
            buf_append(&msg, m + i, used);
        i += used;
    }
    buf_append(&msg, "", 1);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "__type", sqs__err_json_type(err->code));
    cJSON_AddStringToObject(o, "message", buf_rptr(&msg));
    buf_free(&msg);
    char *s = cJSON_PrintUnformatted(o);
    buf_append_str(out, s);
    cJSON_free(s);
    cJSON_Delete(o);
    *content_type = "application/x-amz-json-1.0";
    /* Static strings, one per error: "<query code>;Sender". */
    static const char *const hdr[SQS_E__COUNT] = {
#define H(c, v) [c] = v
        H(SQS_E_INVALID_ACTION, "InvalidAction;Sender"),
        H(SQS_E_MISSING_PARAMETER, "MissingParameter;Sender"),
        H(SQS_E_INVALID_PARAMETER_VALUE, "InvalidParameterValue;Sender"),
        H(SQS_E_INVALID_ATTRIBUTE_NAME, "InvalidAttributeName;Sender"),
        H(SQS_E_INVALID_ATTRIBUTE_VALUE, "InvalidAttributeValue;Sender"),
        H(SQS_E_MALFORMED_QUERY, "MalformedQueryString;Sender"),
        H(SQS_E_NONEXISTENT_QUEUE, "AWS.SimpleQueueService.NonExistentQueue;Sender"),
        H(SQS_E_QUEUE_NAME_EXISTS, "QueueAlreadyExists;Sender"),
        H(SQS_E_QUEUE_DELETED_RECENTLY, "AWS.SimpleQueueService.QueueDeletedRecently;Sender"),
        H(SQS_E_PURGE_IN_PROGRESS, "AWS.SimpleQueueService.PurgeQueueInProgress;Sender"),
        H(SQS_E_RECEIPT_HANDLE_INVALID, "ReceiptHandleIsInvalid;Sender"),
        H(SQS_E_MESSAGE_NOT_INFLIGHT, "AWS.SimpleQueueService.MessageNotInflight;Sender"),
        H(SQS_E_EMPTY_BATCH, "AWS.SimpleQueueService.EmptyBatchRequest;Sender"),
        H(SQS_E_TOO_MANY_ENTRIES, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender"),
        H(SQS_E_BATCH_IDS_NOT_DISTINCT, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct;Sender"),
        H(SQS_E_INVALID_BATCH_ENTRY_ID, "AWS.SimpleQueueService.InvalidBatchEntryId;Sender"),
        H(SQS_E_BATCH_TOO_LONG, "AWS.SimpleQueueService.BatchRequestTooLong;Sender"),
        H(SQS_E_INVALID_MESSAGE_CONTENTS, "InvalidMessageContents;Sender"),
        H(SQS_E_UNSUPPORTED_OPERATION, "AWS.SimpleQueueService.UnsupportedOperation;Sender"),
        H(SQS_E_OVER_LIMIT, "OverLimit;Sender"),
        H(SQS_E_RESOURCE_NOT_FOUND, "ResourceNotFoundException;Sender"),
        H(SQS_E_ACCESS_DENIED, "AccessDenied;Sender"),
        H(SQS_E_SIGNATURE_DOES_NOT_MATCH, "SignatureDoesNotMatch;Sender"),
        H(SQS_E_INVALID_CLIENT_TOKEN, "InvalidClientTokenId;Sender"),
        H(SQS_E_THROTTLED, "RequestThrottled;Sender"),
        H(SQS_E_INTERNAL, "InternalError;Receiver"),
        H(SQS_E_SERVICE_UNAVAILABLE, "ServiceUnavailable;Receiver"),
#undef H
    };
    unsigned c = (unsigned)err->code < SQS_E__COUNT ? (unsigned)err->code : SQS_E_INTERNAL;
    *extra_header = hdr[c] ? hdr[c] : hdr[SQS_E_INTERNAL];
}
