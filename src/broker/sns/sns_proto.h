/* The SNS API on the wire, translated to and from one canonical form: an
 * action name plus parameters and results shaped as the SNS API model
 * names them (cJSON objects: {"TopicArn": ..., "Attributes": {"k": "v"},
 * "Tags": [{"Key": .., "Value": ..}], "MessageAttributes": {"n":
 * {"DataType": "String", "StringValue": "v"}}, "ReturnSubscriptionArn":
 * true}), the shape of the SNS JSON model.
 *
 * SNS speaks the AWS query protocol only: POST form-encoded (or GET with a
 * query string, which is how an HTTP endpoint follows a SubscribeURL)
 * Action=<Action>&Version=2010-03-31&..., with lists as
 * Name.member.N[.Member] and maps as Name.entry.N.key / .value (message
 * attributes: Name.entry.N.Name / .Value.DataType ...), and XML answers in
 * the namespace http://sns.amazonaws.com/doc/2010-03-31/.
 *
 * This module also writes what SNS delivers: the JSON envelope of a
 * Notification, SubscriptionConfirmation and UnsubscribeConfirmation, with
 * the string SNS signs for each (sns_sign.h signs it).
 *
 * The topic engine works only with the canonical form. Thread-safe, no
 * global state. */
#ifndef FG_BROKER_SNS_PROTO_H
#define FG_BROKER_SNS_PROTO_H

#include "core/buf.h"
#include "core/common.h"
#include "core/http1.h"

#include <cjson/cJSON.h>

#define SNS_XMLNS "http://sns.amazonaws.com/doc/2010-03-31/"
#define SNS_VERSION "2010-03-31"

/* Errors of the SNS API: each has a query-protocol code (NotFound), an
 * HTTP status and a fault (Sender or Receiver). */
enum sns_err {
    SNS_OK = 0,
    SNS_E_INVALID_PARAMETER,       /* InvalidParameter, 400 */
    SNS_E_INVALID_PARAMETER_VALUE, /* ParameterValueInvalid, 400 */
    SNS_E_VALIDATION,              /* ValidationError, 400 (a required member missing) */
    SNS_E_INVALID_ACTION,          /* InvalidAction, 400 */
    SNS_E_MALFORMED_QUERY,         /* MalformedQueryString, 400 */
    SNS_E_NOT_FOUND,               /* NotFound, 404 */
    SNS_E_RESOURCE_NOT_FOUND,      /* ResourceNotFound, 404 (tags) */
    SNS_E_AUTHORIZATION,           /* AuthorizationError, 403 */
    SNS_E_TOPIC_LIMIT,             /* TopicLimitExceeded, 403 */
    SNS_E_SUBSCRIPTION_LIMIT,      /* SubscriptionLimitExceeded, 403 */
    SNS_E_FILTER_POLICY_LIMIT,     /* FilterPolicyLimitExceeded, 403 */
    SNS_E_TAG_LIMIT,               /* TagLimitExceeded, 400 */
    SNS_E_EMPTY_BATCH,             /* EmptyBatchRequest, 400 */
    SNS_E_TOO_MANY_ENTRIES,        /* TooManyEntriesInBatchRequest, 400 */
    SNS_E_BATCH_IDS_NOT_DISTINCT,  /* BatchEntryIdsNotDistinct, 400 */
    SNS_E_INVALID_BATCH_ENTRY_ID,  /* InvalidBatchEntryId, 400 */
    SNS_E_BATCH_TOO_LONG,          /* BatchRequestTooLong, 400 */
    SNS_E_THROTTLED,               /* Throttled, 429 */
    SNS_E_INTERNAL,                /* InternalError, 500 (Receiver) */
    SNS_E_SERVICE_UNAVAILABLE,     /* ServiceUnavailable, 503 (Receiver) */
    SNS_E__COUNT
};

struct sns_error {
    enum sns_err code;
    char message[512];
};

/* Sets e->code and a printf-style message; returns code. */
enum sns_err sns_fail(struct sns_error *e, enum sns_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sns_err_status(enum sns_err code);
const char *sns_err_code(enum sns_err code); /* "NotFound" */
bool sns_err_sender(enum sns_err code);      /* Sender (true) or Receiver fault */

/* Is this request for the SNS API? True when its Action parameter (URL
 * query, or a form body: no Content-Type or a form one) names an SNS
 * action, or its path is /sns or under /sns/; never for a request with an
 * X-Amz-Target header (the AWS JSON protocols). */
bool sns_is_sns_request(const struct http_request *req, const char *body, size_t len);
/* Is name one of the SNS actions this broker serves? */
bool sns_action_known(const char *name);

/* Decodes a whole request (head parsed, body complete): the parameters of
 * the URL's query string and, for a form-encoded POST, of the body. On
 * success fills action (e.g. "Publish") and *params (a new cJSON object the
 * caller frees) and returns SNS_OK. Required members are checked;
 * parameters the model does not know are ignored. */
enum sns_err sns_decode(const struct http_request *req, const char *body, size_t len,
                        char action[64], cJSON **params, struct sns_error *err);
/* The same over raw form-encoded strings (qs and/or form, either may be
 * NULL). */
enum sns_err sns_decode_form(const char *qs, size_t qslen, const char *form, size_t flen,
                             char action[64], cJSON **params, struct sns_error *err);

/* Renders a successful result (canonical shape; NULL for actions with an
 * empty result) as the XML body of the answer, in the model's element
 * order. */
void sns_encode_result(const char *action, const cJSON *result, const char *request_id,
                       struct buf *out);
/* Renders an error as SNS does (ErrorResponse/Error/Type, Code, Message,
 * then RequestId); *status is the HTTP status. Content type text/xml. */
void sns_encode_error(const struct sns_error *err, const char *request_id, struct buf *out,
                      int *status);

/* Appends s[0..n) as XML character data (& < > " ' escaped, CR as &#xD;,
 * characters XML 1.0 cannot carry as U+FFFD). */
void sns_xml_escape(struct buf *out, const char *s, size_t n);

/* True when s[0..n) is valid UTF-8 (no overlong forms, no surrogates). */
bool sns_utf8_valid(const char *s, size_t n);


/* "2019-11-03T23:28:01.631Z" for a Unix time in ms (out: 25 bytes). */
void sns_timestamp(uint64_t ms, char out[32]);

/* ---- what SNS delivers ---- */

/* One delivery's envelope fields. Strings are NUL-terminated except
 * message (message_len bytes). NULL subject: none; NULL attrs: none. */
struct sns_note {
    const char *type;            /* "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation" */
    const char *message_id;
    const char *topic_arn;
    const char *subject;
    const char *message;
    size_t message_len;
    uint64_t timestamp_ms;
    const char *token;           /* confirmations */
    const char *subscribe_url;   /* confirmations */
    const char *unsubscribe_url; /* notifications */
    const char *sequence_number; /* FIFO topics: notifications carry it, unsigned */
    const cJSON *attrs;          /* canonical MessageAttributes map */
    const char *signature_version; /* "1" or "2"; NULL: unsigned (FIFO) */
    const char *signature;       /* base64, over sns_string_to_sign() */
    const char *signing_cert_url;
};

/* The envelope JSON, fields in the order SNS writes them. */
void sns_envelope(const struct sns_note *n, struct buf *out);
/* The canonical string SNS signs for the note (Message, MessageId,
 * Subject, SubscribeURL, Timestamp, Token, TopicArn, Type: name and value
 * lines, for the fields the type carries). */
void sns_string_to_sign(const struct sns_note *n, struct buf *out);
/* Attribute map rendered for the envelope ({"n": {"Type": .., "Value": ..}}). */
cJSON *sns_envelope_attrs(const cJSON *attrs);

/* The Message text of a SubscriptionConfirmation / UnsubscribeConfirmation
 * for a topic (or subscription) ARN. */
void sns_confirm_text(const char *type, const char *arn, struct buf *out);

#endif
