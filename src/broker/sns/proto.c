/* The SNS protocol's small pieces: the error table, recognising an SNS
 * request among the broker's traffic, base64 and timestamps. */
#include "broker/sns/sns_int.h"

#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct err_info {
    const char *code;
    int status;
    bool sender;
};

static const struct err_info errs[SNS_E__COUNT] = {
    [SNS_OK] = { "OK", 200, true },
    [SNS_E_INVALID_PARAMETER] = { "InvalidParameter", 400, true },
    [SNS_E_INVALID_PARAMETER_VALUE] = { "ParameterValueInvalid", 400, true },
    [SNS_E_VALIDATION] = { "ValidationError", 400, true },
    [SNS_E_INVALID_ACTION] = { "InvalidAction", 400, true },
    [SNS_E_MALFORMED_QUERY] = { "MalformedQueryString", 400, true },
    [SNS_E_NOT_FOUND] = { "NotFound", 404, true },
    [SNS_E_RESOURCE_NOT_FOUND] = { "ResourceNotFound", 404, true },
    [SNS_E_AUTHORIZATION] = { "AuthorizationError", 403, true },
    [SNS_E_TOPIC_LIMIT] = { "TopicLimitExceeded", 403, true },
    [SNS_E_SUBSCRIPTION_LIMIT] = { "SubscriptionLimitExceeded", 403, true },
    [SNS_E_FILTER_POLICY_LIMIT] = { "FilterPolicyLimitExceeded", 403, true },
    [SNS_E_TAG_LIMIT] = { "TagLimitExceeded", 400, true },
    [SNS_E_EMPTY_BATCH] = { "EmptyBatchRequest", 400, true },
    [SNS_E_TOO_MANY_ENTRIES] = { "TooManyEntriesInBatchRequest", 400, true },
    [SNS_E_BATCH_IDS_NOT_DISTINCT] = { "BatchEntryIdsNotDistinct", 400, true },
    [SNS_E_INVALID_BATCH_ENTRY_ID] = { "InvalidBatchEntryId", 400, true },
    [SNS_E_BATCH_TOO_LONG] = { "BatchRequestTooLong", 400, true },
    [SNS_E_THROTTLED] = { "Throttled", 429, true },
    [SNS_E_INTERNAL] = { "InternalError", 500, false },
    [SNS_E_SERVICE_UNAVAILABLE] = { "ServiceUnavailable", 503, false },
};

static const struct err_info *info(enum sns_err code)
{
    return (unsigned)code < SNS_E__COUNT ? &errs[code] : &errs[SNS_E_INTERNAL];
}

enum sns_err sns_fail(struct sns_error *e, enum sns_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

int sns_err_status(enum sns_err code) { return info(code)->status; }
const char *sns_err_code(enum sns_err code) { return info(code)->code; }
bool sns_err_sender(enum sns_err code) { return info(code)->sender; }

/* The raw (still percent-encoded) value of the Action parameter in a
 * form string, if any. */
static bool find_action(const char *s, size_t n, const char **v, size_t *vn)
{
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - s) : n;
        if (end - i > 7 && memcmp(s + i, "Action=", 7) == 0) {
            *v = s + i + 7;
            *vn = end - i - 7;
            return true;
        }
        i = end + 1;
    }
    return false;
}

static bool names_action(const char *s, size_t n)
{
    const char *v;
    size_t vn;
    /* Action names are plain letters: no decoding needed to look them up. */
    return find_action(s, n, &v, &vn) && sns__action(v, vn) != NULL;
}

bool sns_is_sns_request(const struct http_request *req, const char *body, size_t len)
{
    const char *t = req->target;
    size_t tn = req->target_len;
    const char *q = memchr(t, '?', tn);
    size_t pathlen = q ? (size_t)(q - t) : tn;
    if ((pathlen == 4 && memcmp(t, "/sns", 4) == 0) ||
        (pathlen > 4 && memcmp(t, "/sns/", 5) == 0))
        return true;
    /* An AWS JSON request (the SQS JSON 1.0 protocol) is never ours, and
     * only a form body can carry an Action: a JSON body holding the
     * characters "&Action=Publish" must not be taken for one. */
    if (http_find_header(req->headers, req->nheaders, "X-Amz-Target"))
        return false;
    if (q && names_action(q + 1, tn - pathlen - 1))
        return true;
    const struct http_header *ct = http_find_header(req->headers, req->nheaders, "Content-Type");
    static const char form[] = "application/x-www-form-urlencoded";
    if (ct && !(ct->value_len >= sizeof form - 1 && strncasecmp(ct->value, form, sizeof form - 1) == 0))
        return false;
    return req->m == HTTP_M_POST && body && names_action(body, len);
}

/* ---- time ---- */

void sns_timestamp(uint64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char t[96];
    snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
    snprintf(out, 32, "%.31s", t);
}
