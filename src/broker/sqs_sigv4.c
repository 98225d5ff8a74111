/* AWS Signature Version 4 checking for the SQS API (see sqs_proto.h).
 * Not implemented yet: every check fails closed. */
#include "broker/sqs_int.h"

enum sqs_err sqs_sigv4_check(const struct http_request *req, const char *body, size_t len,
                             const char *access_key, const char *secret_key, int64_t now,
                             struct sqs_error *err)
{
    FG_UNUSED(req);
    FG_UNUSED(body);
    FG_UNUSED(len);
    FG_UNUSED(access_key);
    FG_UNUSED(secret_key);
    FG_UNUSED(now);
    return sqs_fail(err, SQS_E_ACCESS_DENIED, "Signature checking is not available yet.");
}
