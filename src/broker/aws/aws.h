/* Pieces shared by the broker's two AWS front ends (SQS and SNS) and by
 * the native APIs that accept AWS signatures: the query-form decoder and
 * Signature Version 4. Nothing here knows either service's error codes:
 * each caller maps the outcomes below to its own.
 *
 * Thread-safe, no global state. */
#ifndef FG_BROKER_AWS_H
#define FG_BROKER_AWS_H

#include "core/common.h"
#include "core/http1.h"

/* ---- query.c ---- */

/* One decoded parameter: name and value NUL-terminated in the arena. No
 * NUL byte is ever inside either (a decoded NUL is refused), so both can
 * be used as C strings. */
struct aws_qparam {
    const char *k, *v;
    size_t kn, vn;
};

/* The parameters of a request, decoded from one or more form-encoded
 * strings (a URL's query string, a POST body). */
struct aws_query {
    struct aws_qparam *p;
    size_t n;
    size_t max_params, max_key; /* limits on hostile input */
    char *arena;                /* every decoded name and value */
    size_t alen;
    const char *bad; /* AWS_Q_NUL_VALUE: the name of the parameter refused */
};

enum aws_qerr {
    AWS_Q_OK = 0,
    AWS_Q_TOO_MANY,   /* more than max_params parameters */
    AWS_Q_BAD_ESCAPE, /* a '%' not followed by two hex digits */
    AWS_Q_BAD_NAME,   /* an empty or overlong name, or a NUL in one */
    AWS_Q_NUL_VALUE,  /* a NUL in a value (q->bad names the parameter) */
};

/* Prepares q for at most max_params parameters of names up to max_key
 * bytes, from inputs of inlen bytes in all (decoding never grows the
 * text, so one arena of that size holds every decoded string). */
void aws_query_init(struct aws_query *q, size_t max_params, size_t max_key, size_t inlen);
/* Splits the form-encoded s[0..n) ("k=v&k2=v2", '+' is a space, %XX
 * escapes) and appends its parameters to q, in order; empty segments are
 * skipped and "k" alone has an empty value. Duplicates are kept: the
 * caller decides. AWS_Q_OK or the first problem met. */
enum aws_qerr aws_query_split(struct aws_query *q, const char *s, size_t n);
/* Says what rc (not AWS_Q_OK) found, in a sentence for an error reply. */
void aws_query_why(const struct aws_query *q, enum aws_qerr rc, char *out, size_t cap);
void aws_query_free(struct aws_query *q);

/* ---- sigv4.c ---- */

/* The outcome of a signature check, as AWS names them. */
enum aws_sig_err {
    AWS_SIG_OK = 0,
    AWS_SIG_ACCESS_DENIED,      /* not signed, or the signature is malformed */
    AWS_SIG_UNKNOWN_KEY,        /* another access key (InvalidClientTokenId) */
    AWS_SIG_DOES_NOT_MATCH,     /* wrong signature, scope, or time */
};

/* Checks the Authorization header (or X-Amz-* query parameters) of req
 * against (access_key, secret_key) for service "sqs" or "sns" (the broker
 * serves both APIs on one port). now is the current Unix time (requests
 * more than 15 minutes off are refused). On failure msg (cap bytes) says
 * why, in the words AWS uses. */
enum aws_sig_err aws_sigv4_check(const struct http_request *req, const char *body, size_t len,
                                 const char *access_key, const char *secret_key, int64_t now,
                                 char *msg, size_t cap);

#endif
