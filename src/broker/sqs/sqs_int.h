/* Internals of the SQS wire protocols (sqs_*.c), shared between the
 * decoders, the renderers and the tests; the queue engine uses sqs_proto.h
 * only.
 *
 * The SQS API model (the shapes of every action's parameters and results,
 * as in the 2012-11-05 service model the AWS SDKs ship) is a static table of
 * sqs_shape nodes: one description drives the query decoder (flattened
 * lists and maps rebuilt from Name.N.Member keys), the JSON canonicaliser
 * (member types checked, unknown members dropped) and the XML renderer
 * (element names and order), so both protocols agree by construction. */
#ifndef FG_BROKER_SQS_INT_H
#define FG_BROKER_SQS_INT_H

#include "broker/sqs/sqs_proto.h"

enum sqs_kind {
    SQS_K_STR,    /* JSON string */
    SQS_K_INT,    /* JSON number, 32-bit integer */
    SQS_K_LONG,   /* JSON number, 64-bit integer (results only) */
    SQS_K_BOOL,   /* JSON true/false (results only) */
    SQS_K_BLOB,   /* base64 text in JSON, query and XML */
    SQS_K_STRUCT, /* object with the listed members */
    SQS_K_LIST,   /* array of elem; flattened in query/XML */
    SQS_K_MAP,    /* object of string -> elem; flattened in query/XML */
};

struct sqs_member;

struct sqs_shape {
    enum sqs_kind kind;
    const struct sqs_member *members; /* SQS_K_STRUCT */
    unsigned nmembers;
    const struct sqs_shape *elem; /* list element / map value */
    const char *key_name;         /* map: query/XML name of the key ("Name", "Key") */
    const char *val_name;         /* map: query/XML name of the value ("Value") */
};

struct sqs_member {
    const char *name;  /* canonical (JSON) member name */
    const char *qname; /* query/XML name; for flattened lists and maps the element name */
    const struct sqs_shape *shape;
    bool required; /* MissingParameter when absent from a request */
};

struct sqs_action {
    const char *name;
    const struct sqs_shape *in;  /* request parameters (a struct) */
    const struct sqs_shape *out; /* result (a struct); NULL when the action has none */
};

/* Limits on hostile input. */
#define SQS_MAX_PARAMS 1024 /* query parameters per request */
#define SQS_MAX_KEY 256     /* bytes of one query parameter name */
#define SQS_MAX_INDEX 1000  /* N in Name.N (real clients count from 1 up) */
#define SQS_MAX_DEPTH 8     /* nesting of the model, with margin */

/* The action named name[0..len) (case-sensitive, as AWS matches), or NULL. */
const struct sqs_action *sqs__action(const char *name, size_t len);
/* The member of a struct shape by canonical name, or NULL. */
const struct sqs_member *sqs__member(const struct sqs_shape *s, const char *name);

/* Canonicalises a parsed JSON 1.0 request body against shape `in`: a new
 * object with the model's members only, types checked (integers in range,
 * base64 valid, map keys distinct). NULL on error (err filled). */
cJSON *sqs__json_canon(const cJSON *body, const struct sqs_shape *in, struct sqs_error *err);

/* Decodes AWS query parameters (form body and/or URL query string) into
 * the action name and canonical parameters. qs/qslen may be NULL/0; so may
 * form/flen. See sqs/query.c. */
enum sqs_err sqs__query_decode(const char *qs, size_t qslen, const char *form, size_t flen,
                               char action[64], cJSON **params, struct sqs_error *err);

/* XML rendering of a result and of an error (sqs/xml.c). */
void sqs__xml_result(const struct sqs_action *a, const char *action, const cJSON *result,
                     const char *request_id, struct buf *out);
void sqs__xml_error(const struct sqs_error *err, const char *request_id, struct buf *out);
/* Appends s[0..n) as XML character data: & < > " ' escaped, CR as &#xD;
 * (a raw CR would be read back as LF), and what XML 1.0 cannot carry
 * (other control characters, invalid UTF-8, U+FFFE/U+FFFF) as U+FFFD. */
void sqs__xml_escape(struct buf *out, const char *s, size_t n);

/* Error table lookups (sqs/error.c). */
const char *sqs__err_query_code(enum sqs_err code); /* AWS.SimpleQueueService.NonExistentQueue */
const char *sqs__err_json_type(enum sqs_err code);  /* com.amazonaws.sqs#QueueDoesNotExist */
bool sqs__err_sender(enum sqs_err code);            /* Sender (true) or Receiver fault */
/* The error for a decoded string that is not UTF-8: InvalidMessageContents
 * for a message body, else what (MalformedQueryString or
 * InvalidParameterValue). See sqs/error.c. */
enum sqs_err sqs__bad_utf8(const char *name, enum sqs_err what, struct sqs_error *err);
/* True for a parameter holding a message body (MessageBody, or
 * SendMessageBatchRequestEntry.N.MessageBody in the query protocol). */
bool sqs__is_body(const char *name);

/* The code point of the UTF-8 character at s[0..n) (n > 0), or -1 for an
 * invalid sequence; sets *used (1 for an invalid byte, so callers can skip
 * it). */
int32_t sqs__utf8_char(const char *s, size_t n, size_t *used);
/* True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates
 * or code points above U+10FFFF). Every decoded string must be. */
bool sqs__utf8_valid(const char *s, size_t n);
/* True when s[0..n) is UTF-8 whose every character XML 1.0 allows (#x9,
 * #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF): the characters
 * SQS accepts in message bodies and attribute values. */
bool sqs__valid_chars(const char *s, size_t n);

#endif
