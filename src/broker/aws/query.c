/* The AWS query protocol's parameters (see aws.h): form-urlencoded
 * strings (a POST body and/or the URL's query string) split into decoded
 * name/value pairs, for the SQS and SNS decoders, which then rebuild
 * their own shapes from them.
 *
 * Decoding is strict and bounded: percent-escapes must be two hex digits
 * (core/strutil pct_decode), '+' is a space, at most max_params
 * parameters with names of 1..max_key bytes, and no NUL byte in a name or
 * a value (every parameter is used as a C string downstream). */
#include "broker/aws/aws.h"
#include "core/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aws_query_init(struct aws_query *q, size_t max_params, size_t max_key, size_t inlen)
{
    *q = (struct aws_query){ .max_params = max_params, .max_key = max_key };
    /* Decoding never grows: the raw bytes plus a NUL per name and value
     * (a parameter's '=' or '&' pays for one of them; the margin for the
     * other). */
    q->arena = xmalloc(inlen + 2 * (max_params + 1));
    q->p = xmalloc((max_params + 1) * sizeof *q->p);
}

void aws_query_free(struct aws_query *q)
{
    free(q->arena);
    free(q->p);
    q->arena = NULL;
    q->p = NULL;
}

/* Percent-decodes s[0..n) into the arena, NUL-terminated; returns the
 * start and sets *out_n, or NULL on a bad escape. */
static const char *decode(struct aws_query *q, const char *s, size_t n, size_t *out_n)
{
    char *o = q->arena + q->alen;
    ssize_t j = pct_decode(s, n, o, n, PCT_PLUS_SPACE);
    if (j < 0)
        return NULL;
    o[j] = '\0';
    q->alen += (size_t)j + 1;
    *out_n = (size_t)j;
    return o;
}

/* One "k=v" (or "k") segment, s[0..n) with n > 0. */
static enum aws_qerr add_param(struct aws_query *q, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    size_t kn, vn;
    if (q->n >= q->max_params)
        return AWS_Q_TOO_MANY;
    const char *k = decode(q, s, eq ? (size_t)(eq - s) : n, &kn);
    const char *v = k ? decode(q, eq ? eq + 1 : s + n, eq ? (size_t)(s + n - eq - 1) : 0, &vn)
                      : NULL;
    if (!k || !v)
        return AWS_Q_BAD_ESCAPE;
    if (kn == 0 || kn > q->max_key || strlen(k) != kn)
        return AWS_Q_BAD_NAME;
    if (strlen(v) != vn) {
        q->bad = k;
        return AWS_Q_NUL_VALUE;
    }
    q->p[q->n++] = (struct aws_qparam){ .k = k, .v = v, .kn = kn, .vn = vn };
    return AWS_Q_OK;
}

enum aws_qerr aws_query_split(struct aws_query *q, const char *s, size_t n)
{
    size_t i = 0;
    while (s && i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - s) : n;
        if (end > i) {
            enum aws_qerr rc = add_param(q, s + i, end - i);
            if (rc != AWS_Q_OK)
                return rc;
        }
        i = end + 1;
    }
    return AWS_Q_OK;
}

void aws_query_why(const struct aws_query *q, enum aws_qerr rc, char *out, size_t cap)
{
    switch (rc) {
    case AWS_Q_TOO_MANY:
        snprintf(out, cap, "More than %zu parameters in the request.", q->max_params);
        break;
    case AWS_Q_BAD_ESCAPE:
        snprintf(out, cap, "The request holds a malformed percent-escape.");
        break;
    case AWS_Q_BAD_NAME:
        snprintf(out, cap, "The request holds an empty, overlong or invalid parameter name.");
        break;
    case AWS_Q_NUL_VALUE:
        snprintf(out, cap, "Invalid binary character '#x0' was found in parameter %.100s.",
                 q->bad);
        break;
    case AWS_Q_OK:
        snprintf(out, cap, "The request is well-formed.");
        break;
    }
}
