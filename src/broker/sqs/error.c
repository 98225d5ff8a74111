/* The SQS API's errors (see sqs_proto.h): the table of each error's HTTP
 * status, fault, short name, query-protocol code and JSON 1.0 __type, and
 * the helpers that fill a struct sqs_error (and turn a signature check's
 * outcome into one). Every SQS file reports through here, so the codes
 * live below the decoders and renderers that use them rather than in the
 * protocol front door. */
#include "broker/aws/aws.h"
#include "broker/sqs/sqs_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_info {
    int status;
    bool sender;
    const char *name;  /* short name (the model's shape name) */
    const char *qcode; /* query protocol <Code> and x-amzn-query-error code */
    const char *jtype; /* JSON 1.0 __type */
};

#define SQS_NS "com.amazonaws.sqs#"
#define CORAL_NS "com.amazon.coral.service#"

/* Codes as the SQS model declares them (awsQueryError / error traits) and
 * as the SQS API reference lists the common errors. */
static const struct err_info ERRS[SQS_E__COUNT] = {
    [SQS_OK] = { 200, true, "OK", "OK", SQS_NS "OK" },
    [SQS_E_INVALID_ACTION] = { 400, true, "InvalidAction", "InvalidAction",
                               CORAL_NS "UnknownOperationException" },
    [SQS_E_MISSING_PARAMETER] = { 400, true, "MissingParameter", "MissingParameter",
                                  SQS_NS "MissingParameter" },
    [SQS_E_INVALID_PARAMETER_VALUE] = { 400, true, "InvalidParameterValue", "InvalidParameterValue",
                                        SQS_NS "InvalidParameterValue" },
    [SQS_E_INVALID_ATTRIBUTE_NAME] = { 400, true, "InvalidAttributeName", "InvalidAttributeName",
                                       SQS_NS "InvalidAttributeName" },
    [SQS_E_INVALID_ATTRIBUTE_VALUE] = { 400, true, "InvalidAttributeValue", "InvalidAttributeValue",
                                        SQS_NS "InvalidAttributeValue" },
    [SQS_E_MALFORMED_QUERY] = { 400, true, "MalformedQueryString", "MalformedQueryString",
                                CORAL_NS "SerializationException" },
    [SQS_E_NONEXISTENT_QUEUE] = { 400, true, "QueueDoesNotExist",
                                  "AWS.SimpleQueueService.NonExistentQueue",
                                  SQS_NS "QueueDoesNotExist" },
    [SQS_E_QUEUE_NAME_EXISTS] = { 400, true, "QueueNameExists", "QueueAlreadyExists",
                                  SQS_NS "QueueNameExists" },
    [SQS_E_QUEUE_DELETED_RECENTLY] = { 400, true, "QueueDeletedRecently",
                                       "AWS.SimpleQueueService.QueueDeletedRecently",
                                       SQS_NS "QueueDeletedRecently" },
    [SQS_E_PURGE_IN_PROGRESS] = { 403, true, "PurgeQueueInProgress",
                                  "AWS.SimpleQueueService.PurgeQueueInProgress",
                                  SQS_NS "PurgeQueueInProgress" },
    [SQS_E_RECEIPT_HANDLE_INVALID] = { 404, true, "ReceiptHandleIsInvalid",
                                       "ReceiptHandleIsInvalid", SQS_NS "ReceiptHandleIsInvalid" },
    [SQS_E_MESSAGE_NOT_INFLIGHT] = { 400, true, "MessageNotInflight",
                                     "AWS.SimpleQueueService.MessageNotInflight",
                                     SQS_NS "MessageNotInflight" },
    [SQS_E_EMPTY_BATCH] = { 400, true, "EmptyBatchRequest",
                            "AWS.SimpleQueueService.EmptyBatchRequest",
                            SQS_NS "EmptyBatchRequest" },
    [SQS_E_TOO_MANY_ENTRIES] = { 400, true, "TooManyEntriesInBatchRequest",
                                 "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                                 SQS_NS "TooManyEntriesInBatchRequest" },
    [SQS_E_BATCH_IDS_NOT_DISTINCT] = { 400, true, "BatchEntryIdsNotDistinct",
                                       "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                                       SQS_NS "BatchEntryIdsNotDistinct" },
    [SQS_E_INVALID_BATCH_ENTRY_ID] = { 400, true, "InvalidBatchEntryId",
                                       "AWS.SimpleQueueService.InvalidBatchEntryId",
                                       SQS_NS "InvalidBatchEntryId" },
    [SQS_E_BATCH_TOO_LONG] = { 400, true, "BatchRequestTooLong",
                               "AWS.SimpleQueueService.BatchRequestTooLong",
                               SQS_NS "BatchRequestTooLong" },
    [SQS_E_INVALID_MESSAGE_CONTENTS] = { 400, true, "InvalidMessageContents",
                                         "InvalidMessageContents",
                                         SQS_NS "InvalidMessageContents" },
    [SQS_E_UNSUPPORTED_OPERATION] = { 400, true, "UnsupportedOperation",
                                      "AWS.SimpleQueueService.UnsupportedOperation",
                                      SQS_NS "UnsupportedOperation" },
    [SQS_E_OVER_LIMIT] = { 403, true, "OverLimit", "OverLimit", SQS_NS "OverLimit" },
    [SQS_E_RESOURCE_NOT_FOUND] = { 404, true, "ResourceNotFoundException",
                                   "ResourceNotFoundException",
                                   SQS_NS "ResourceNotFoundException" },
    [SQS_E_ACCESS_DENIED] = { 403, true, "AccessDenied", "AccessDenied",
                              CORAL_NS "AccessDeniedException" },
    [SQS_E_SIGNATURE_DOES_NOT_MATCH] = { 403, true, "SignatureDoesNotMatch",
                                         "SignatureDoesNotMatch",
                                         CORAL_NS "InvalidSignatureException" },
    [SQS_E_INVALID_CLIENT_TOKEN] = { 403, true, "InvalidClientTokenId", "InvalidClientTokenId",
                                     CORAL_NS "UnrecognizedClientException" },
    [SQS_E_THROTTLED] = { 400, true, "RequestThrottled", "RequestThrottled",
                          SQS_NS "RequestThrottled" },
    [SQS_E_INTERNAL] = { 500, false, "InternalError", "InternalError", CORAL_NS "InternalFailure" },
    [SQS_E_SERVICE_UNAVAILABLE] = { 503, false, "ServiceUnavailable", "ServiceUnavailable",
                                    CORAL_NS "ServiceUnavailableException" },
};

static const struct err_info *info(enum sqs_err code)
{
    if ((unsigned)code >= SQS_E__COUNT || !ERRS[code].name)
        code = SQS_E_INTERNAL;
    return &ERRS[code];
}

enum sqs_err sqs_fail(struct sqs_error *e, enum sqs_err code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}

int sqs_err_status(enum sqs_err code)
{
    return info(code)->status;
}
const char *sqs_err_name(enum sqs_err code)
{
    return info(code)->name;
}
const char *sqs__err_query_code(enum sqs_err code)
{
    return info(code)->qcode;
}
const char *sqs__err_json_type(enum sqs_err code)
{
    return info(code)->jtype;
}
bool sqs__err_sender(enum sqs_err code)
{
    return info(code)->sender;
}

bool sqs__is_body(const char *name)
{
    size_t n = strlen(name);
    return n >= 11 && strcmp(name + n - 11, "MessageBody") == 0;
}

enum sqs_err sqs__bad_utf8(const char *name, enum sqs_err what, struct sqs_error *err)
{
    if (sqs__is_body(name))
        return sqs_fail(err, SQS_E_INVALID_MESSAGE_CONTENTS,
                        "The message body is not valid UTF-8.");
    return sqs_fail(err, what, "Value for %.100s is not valid UTF-8.", name);
}

/* The signature check itself knows no service (aws/sigv4.c); here its
 * outcome becomes the SQS error of the same name. */
enum sqs_err sqs_sigv4_check(const struct http_request *req, const char *body, size_t len,
                             const char *access_key, const char *secret_key, int64_t now,
                             struct sqs_error *err)
{
    static const enum sqs_err code[] = {
        [AWS_SIG_OK] = SQS_OK,
        [AWS_SIG_ACCESS_DENIED] = SQS_E_ACCESS_DENIED,
        [AWS_SIG_UNKNOWN_KEY] = SQS_E_INVALID_CLIENT_TOKEN,
        [AWS_SIG_DOES_NOT_MATCH] = SQS_E_SIGNATURE_DOES_NOT_MATCH,
    };
    enum aws_sig_err rc = aws_sigv4_check(req, body, len, access_key, secret_key, now,
                                          err->message, sizeof err->message);
    if (rc != AWS_SIG_OK)
        err->code = code[rc];
    return code[rc];
}
