/* The AWS wire protocols of the SQS API, translated to and from one
 * canonical form: an action name plus parameters and results shaped as in
 * the AWS JSON 1.0 protocol (cJSON objects, member names as in the SQS API
 * reference: {"QueueUrl": ..., "MessageBody": ..., "MessageAttributes":
 * {"k": {"DataType": "String", "StringValue": "v"}}}).
 *
 * Two protocols reach the same port:
 *   - AWS JSON 1.0: POST, Content-Type application/x-amz-json-1.0,
 *     X-Amz-Target: AmazonSQS.<Action>, JSON body (current boto3, aws CLI);
 *   - AWS query: POST form-encoded (or GET with a query string)
 *     Action=<Action>&Version=2012-11-05&..., XML responses (Debian's
 *     boto3 1.26 and older SDKs). Flattened lists and maps
 *     (SendMessageBatchRequestEntry.1.Id, MessageAttribute.1.Name,
 *     Attribute.1.Name/Value, AttributeName.1, Tag.1.Key, ...) are
 *     rebuilt into the canonical JSON shape, typed as the SQS API model
 *     says (integers for MaxNumberOfMessages, WaitTimeSeconds,
 *     VisibilityTimeout, DelaySeconds; everything else strings).
 * The QueueUrl of a request may also come from the path (query protocol
 * clients post to the queue URL itself): sqs_decode fills QueueUrl from
 * the target when the parameters lack it and the path is /<account>/<name>.
 *
 * The queue engine works only with the canonical form; this module owns
 * every byte of protocol detail. Thread-safe, no global state. */
#ifndef FG_BROKER_SQS_PROTO_H
#define FG_BROKER_SQS_PROTO_H

#include "core/common.h"
#include "core/buf.h"
#include "core/http1.h"
#include <cjson/cJSON.h>

enum sqs_proto { SQS_PROTO_JSON = 1, SQS_PROTO_QUERY = 2 };

/* Errors of the SQS API. Each has an HTTP status, a query-protocol code
 * (AWS.SimpleQueueService.NonExistentQueue), a JSON 1.0 __type
 * (com.amazonaws.sqs#QueueDoesNotExist) and a fault (Sender/Receiver). */
enum sqs_err {
    SQS_OK = 0,
    SQS_E_INVALID_ACTION,          /* InvalidAction, 400 */
    SQS_E_MISSING_PARAMETER,       /* MissingParameter, 400 */
    SQS_E_INVALID_PARAMETER_VALUE, /* InvalidParameterValue, 400 */
    SQS_E_INVALID_ATTRIBUTE_NAME,  /* InvalidAttributeName, 400 */
    SQS_E_INVALID_ATTRIBUTE_VALUE, /* InvalidAttributeValue, 400 */
    SQS_E_MALFORMED_QUERY,         /* MalformedQueryString / SerializationException, 400 */
    SQS_E_NONEXISTENT_QUEUE,       /* QueueDoesNotExist, 400 */
    SQS_E_QUEUE_NAME_EXISTS,       /* QueueAlreadyExists (attributes differ), 400 */
    SQS_E_QUEUE_DELETED_RECENTLY,  /* QueueDeletedRecently, 400 */
    SQS_E_PURGE_IN_PROGRESS,       /* PurgeQueueInProgress, 403 */
    SQS_E_RECEIPT_HANDLE_INVALID,  /* ReceiptHandleIsInvalid, 404 */
    SQS_E_MESSAGE_NOT_INFLIGHT,    /* MessageNotInflight, 400 */
    SQS_E_EMPTY_BATCH,             /* EmptyBatchRequest, 400 */
    SQS_E_TOO_MANY_ENTRIES,        /* TooManyEntriesInBatchRequest, 400 */
    SQS_E_BATCH_IDS_NOT_DISTINCT,  /* BatchEntryIdsNotDistinct, 400 */
    SQS_E_INVALID_BATCH_ENTRY_ID,  /* InvalidBatchEntryId, 400 */
    SQS_E_BATCH_TOO_LONG,          /* BatchRequestTooLong, 400 */
    SQS_E_INVALID_MESSAGE_CONTENTS,/* InvalidMessageContents, 400 */
    SQS_E_UNSUPPORTED_OPERATION,   /* UnsupportedOperation, 400 */
    SQS_E_OVER_LIMIT,              /* OverLimit, 403 */
    SQS_E_RESOURCE_NOT_FOUND,      /* ResourceNotFoundException (move tasks), 404 */
    SQS_E_ACCESS_DENIED,           /* AccessDenied, 403 */
    SQS_E_SIGNATURE_DOES_NOT_MATCH,/* SignatureDoesNotMatch, 403 */
    SQS_E_INVALID_CLIENT_TOKEN,    /* InvalidClientTokenId, 403 */
    SQS_E_THROTTLED,               /* RequestThrottled, 400 (the broker's disk is low) */
    SQS_E_INTERNAL,                /* InternalError, 500 (Receiver) */
    SQS_E_SERVICE_UNAVAILABLE,     /* ServiceUnavailable, 503 (Receiver) */
    SQS_E__COUNT
};

struct sqs_error {
    enum sqs_err code;
    char message[256];
};

/* Sets e->code and a printf-style message; returns code (for
 * `return sqs_fail(e, SQS_E_..., "...")`). */
enum sqs_err sqs_fail(struct sqs_error *e, enum sqs_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sqs_err_status(enum sqs_err code);        /* HTTP status */
const char *sqs_err_name(enum sqs_err code);  /* short name, e.g. "QueueDoesNotExist" */

/* Is this request for the SQS API (an X-Amz-Target AmazonSQS.*, or an
 * Action= form/query parameter)? Cheap: looks at headers and the first
 * bytes only. */
bool sqs_is_sqs_request(const struct http_request *req, const char *body, size_t len);

/* Decodes a whole request (head parsed, body complete). On success fills
 * *proto, action (NUL-terminated, e.g. "SendMessage") and *params (a new
 * cJSON object the caller frees) and returns SQS_OK. On failure returns the
 * error with *proto set when the protocol was recognised (so the error can
 * be rendered in it). */
enum sqs_err sqs_decode(const struct http_request *req, const char *body, size_t len,
                        enum sqs_proto *proto, char action[64], cJSON **params,
                        struct sqs_error *err);

/* Renders a successful result (canonical JSON shape; NULL for actions with
 * an empty result) into out: the HTTP body only. Sets *content_type. */
void sqs_encode_result(enum sqs_proto proto, const char *action, const cJSON *result,
                       const char *request_id, struct buf *out, const char **content_type);

/* Renders an error body into out; sets *content_type and *status. For the
 * JSON protocol, *extra_header is set to the x-amzn-query-error header line
 * value ("AWS.SimpleQueueService.NonExistentQueue;Sender") that SDKs use to
 * map errors back to query-protocol codes (NULL for query). */
void sqs_encode_error(enum sqs_proto proto, const struct sqs_error *err, const char *request_id,
                      struct buf *out, const char **content_type, int *status,
                      const char **extra_header);

/* MD5 digests as SQS computes them, as 32 lowercase hex chars + NUL:
 * of the body, and of the message attributes (canonical JSON map: sorted by
 * name; each name, data type and value length-prefixed, with the transport
 * byte 1 for String/Number and 2 for Binary; Binary values are base64 in
 * JSON). sqs_md5_attributes returns false (and leaves hex empty) when there
 * are no attributes. Also used for MessageSystemAttributes. */
void sqs_md5_hex(const void *data, size_t len, char hex[33]);
bool sqs_md5_attributes(const cJSON *attrs, char hex[33]);

/* True when s[0..n) is valid UTF-8 holding only characters SQS accepts in
 * message bodies (#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
 * #x10000 to #x10FFFF); else the message is refused with
 * SQS_E_INVALID_MESSAGE_CONTENTS. sqs_decode already checks SendMessage's
 * body; SendMessageBatch fails per entry, so the engine checks each. */
bool sqs_valid_chars(const char *s, size_t n);

/* Validates message attributes (names, data types, values, at most 10):
 * SQS_OK or an error naming the bad attribute. Adds their size (names,
 * types, values) to *bytes for the message size limit. */
enum sqs_err sqs_check_attributes(const cJSON *attrs, size_t *bytes, struct sqs_error *err);

/* AWS Signature Version 4, when the broker requires it: checks the
 * Authorization header (or X-Amz-* query parameters) of req against
 * (access_key, secret_key) for service "sqs" (or "sns": the broker serves
 * both APIs on one port). SQS_OK, or
 * SQS_E_INVALID_CLIENT_TOKEN (unknown key) / SQS_E_SIGNATURE_DOES_NOT_MATCH
 * / SQS_E_ACCESS_DENIED (missing). now is the current Unix time (requests
 * more than 15 minutes off are refused). aws_sigv4_check (aws/aws.h) with
 * its outcome as an SQS error (sqs/error.c). */
enum sqs_err sqs_sigv4_check(const struct http_request *req, const char *body, size_t len,
                             const char *access_key, const char *secret_key, int64_t now,
                             struct sqs_error *err);

#endif
