/* The AWS query protocol's requests: form-urlencoded parameters (a POST
 * body and/or the URL's query string) turned into the canonical JSON form.
 *
 * Decoding is strict and bounded (aws/query.c, shared with SNS):
 * percent-escapes must be two hex digits, '+' is a space, at most
 * SQS_MAX_PARAMS parameters with names of at most SQS_MAX_KEY bytes, no
 * NUL bytes; here also no parameter twice. The parameters are
 * sorted by name once, so every lookup is a binary search and every
 * flattened list or map (Name.N...) is one contiguous run.
 *
 * The model (sqs/model.c) says how to rebuild each member: scalars by
 * exact name, flattened lists from Name.N (N a decimal index 1..1000
 * without leading zeros; items in index order, gaps allowed), flattened
 * maps from Name.N.Name / Name.N.Value (or Key/Value for tags), structures
 * in lists and maps from Name.N.Member. Integers are typed as numbers,
 * binary values stay base64 (and must be valid). Parameters the action
 * does not know are ignored (Version, AWSAccessKeyId, X-Amz-*), except
 * under a known list or map, where they are an error. An empty list is
 * sent by botocore as the bare member name with an empty value. */
#include "broker/aws/aws.h"
#include "broker/sqs/sqs_int.h"
#include "core/base64.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qparam {
    const char *k; /* decoded name, NUL-terminated */
    const char *v; /* decoded value, NUL-terminated (no NUL inside) */
    size_t vn;     /* value length */
    bool used;
};

struct qctx {
    struct qparam *p; /* sorted by name */
    size_t n;
    struct sqs_error *err;
};

/* Formats a parameter name built from the model; a name that does not
 * fit is longer than any parameter (SQS_MAX_KEY) and so matches none: it
 * is left empty. */
static void keyf(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void keyf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        dst[0] = '\0';
}

/* Splits one form-encoded string (aws/query.c) into aq, then appends
 * its parameters to q. A NUL in a value is refused as SQS refuses the
 * character: InvalidMessageContents in a message body. */
static enum sqs_err split(struct qctx *q, struct aws_query *aq, const char *s, size_t n)
{
    enum aws_qerr rc = aws_query_split(aq, s, n);
    if (rc != AWS_Q_OK) {
        char why[160];
        enum sqs_err code = SQS_E_MALFORMED_QUERY;
        if (rc == AWS_Q_NUL_VALUE)
            code = sqs__is_body(aq->bad) ? SQS_E_INVALID_MESSAGE_CONTENTS
                                         : SQS_E_INVALID_PARAMETER_VALUE;
        aws_query_why(aq, rc, why, sizeof why);
        return sqs_fail(q->err, code, "%s", why);
    }
    for (; q->n < aq->n; q->n++) {
        const struct aws_qparam *a = &aq->p[q->n];
        q->p[q->n] = (struct qparam){ .k = a->k, .v = a->v, .vn = a->vn };
    }
    return SQS_OK;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct qparam *)a)->k, ((const struct qparam *)b)->k);
}

/* First parameter whose name is >= key (binary search). */
static size_t lower_bound(const struct qctx *q, const char *key)
{
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(q->p[mid].k, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct qparam *find(struct qctx *q, const char *key)
{
    size_t i = lower_bound(q, key);
    return i < q->n && strcmp(q->p[i].k, key) == 0 ? &q->p[i] : NULL;
}

static cJSON *fail_null(struct qctx *q, enum sqs_err code, const char *fmt, const char *arg)
{
    sqs_fail(q->err, code, fmt, arg);
    return NULL;
}

/* Parses a decimal integer (optional '-') within [lo, hi]. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    bool neg = *s == '-';
    const char *p = s + neg;
    int64_t v = 0;
    if (!*p)
        return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    v = neg ? -v : v;
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static cJSON *scalar(struct qctx *q, struct qparam *p, const struct sqs_shape *s)
{
    p->used = true;
    int64_t v;
    switch (s->kind) {
    case SQS_K_STR:
        if (!sqs__utf8_valid(p->v, p->vn)) {
            sqs__bad_utf8(p->k, SQS_E_INVALID_PARAMETER_VALUE, q->err);
            return NULL;
        }
        return cJSON_CreateString(p->v);
    case SQS_K_BLOB:
        if (base64_decode(p->v, p->vn, NULL) < 0)
            return fail_null(q, SQS_E_INVALID_PARAMETER_VALUE,
                             "Value for parameter %.100s is invalid. Reason: not base64.", p->k);
        return cJSON_CreateString(p->v);
    case SQS_K_INT:
        if (!parse_int(p->v, INT32_MIN, INT32_MAX, &v))
            return fail_null(q, SQS_E_INVALID_PARAMETER_VALUE,
                             "Value for parameter %.100s is invalid. Reason: not an integer.",
                             p->k);
        return cJSON_CreateNumber((double)v);
    case SQS_K_LONG:
        if (!parse_int(p->v, -(INT64_C(1) << 53), INT64_C(1) << 53, &v))
            return fail_null(q, SQS_E_INVALID_PARAMETER_VALUE,
                             "Value for parameter %.100s is invalid. Reason: not an integer.",
                             p->k);
        return cJSON_CreateNumber((double)v);
    case SQS_K_BOOL:
        if (strcmp(p->v, "true") && strcmp(p->v, "false"))
            return fail_null(q, SQS_E_INVALID_PARAMETER_VALUE,
                             "Value for parameter %.100s is invalid. Reason: not a boolean.", p->k);
        return cJSON_CreateBool(p->v[0] == 't');
    default: break;
    }
    return fail_null(q, SQS_E_INTERNAL, "Bad model for %.100s.", p->k);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct indexes N of parameters named <key>.N or <key>.N.<rest>,
 * ascending, into idx (room for q->n); -1 on a malformed index. */
static ssize_t indexes(struct qctx *q, const char *key, uint32_t *idx)
{
    char pre[SQS_MAX_KEY + 8];
    keyf(pre, sizeof pre, "%s.", key);
    size_t pl = strlen(pre), k = 0;
    if (pl == 0)
        return 0;
    for (size_t i = lower_bound(q, pre); i < q->n && strncmp(q->p[i].k, pre, (size_t)pl) == 0;
         i++) {
        const char *d = q->p[i].k + pl;
        uint32_t v = 0;
        size_t nd = 0;
        for (; d[nd] >= '0' && d[nd] <= '9' && nd < 5; nd++)
            v = v * 10 + (uint32_t)(d[nd] - '0');
        if (nd == 0 || (d[nd] != '\0' && d[nd] != '.') || d[0] == '0' || v > SQS_MAX_INDEX) {
            sqs_fail(q->err, SQS_E_MALFORMED_QUERY,
                     "Parameter %.100s has an invalid or out-of-range index.", q->p[i].k);
            return -1;
        }
        if (k == 0 || idx[k - 1] != v)
            idx[k++] = v;
    }
    qsort(idx, k, sizeof *idx, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || idx[u - 1] != idx[i])
            idx[u++] = idx[i];
    return (ssize_t)u;
}

static cJSON *decode_struct(struct qctx *q, const char *prefix, const struct sqs_shape *s,
                            int depth);

static cJSON *decode_value(struct qctx *q, const char *key, const struct sqs_shape *s, int depth)
{
    if (!*key) /* too long to build: cannot happen with the model's names */
        return fail_null(q, SQS_E_INTERNAL, "Parameter name too long%s.", "");
    if (s->kind == SQS_K_STRUCT)
        return decode_struct(q, key, s, depth + 1);
    /* The index came from a longer name (Name.1.x where Name.1 is a
     * string): that name is malformed. */
    struct qparam *p = find(q, key);
    if (!p)
        return fail_null(q, SQS_E_MALFORMED_QUERY, "Parameters under %.100s are malformed.", key);
    return scalar(q, p, s);
}

/* A flattened list or map at key (NULL result and no error: absent). */
static cJSON *decode_coll(struct qctx *q, const char *key, const char *name,
                          const struct sqs_shape *s, int depth)
{
    uint32_t *idx = xmalloc((q->n + 1) * sizeof *idx);
    ssize_t k = indexes(q, key, idx);
    cJSON *out = NULL;
    char ek[SQS_MAX_KEY + 32];
    if (k < 0)
        goto done;
    if (k == 0) {
        /* botocore sends an empty list as "<Member>=" */
        struct qparam *e = find(q, name);
        if (s->kind == SQS_K_LIST && e && e->vn == 0) {
            e->used = true;
            out = cJSON_CreateArray();
        }
        goto done;
    }
    out = s->kind == SQS_K_LIST ? cJSON_CreateArray() : cJSON_CreateObject();
    for (ssize_t i = 0; i < k; i++) {
        cJSON *v;
        if (s->kind == SQS_K_LIST) {
            keyf(ek, sizeof ek, "%s.%u", key, idx[i]);
            v = decode_value(q, ek, s->elem, depth);
            if (!v)
                goto fail;
            cJSON_AddItemToArray(out, v);
            continue;
        }
        keyf(ek, sizeof ek, "%s.%u.%s", key, idx[i], s->key_name);
        struct qparam *kp = find(q, ek);
        if (!kp) {
            fail_null(q, SQS_E_MISSING_PARAMETER, "The request must contain the parameter %s.", ek);
            goto fail;
        }
        cJSON *kv = scalar(q, kp, &(struct sqs_shape){ .kind = SQS_K_STR });
        if (!kv)
            goto fail;
        if (cJSON_GetObjectItemCaseSensitive(out, kv->valuestring)) {
            fail_null(q, SQS_E_INVALID_PARAMETER_VALUE, "Name %.100s appears twice.",
                      kv->valuestring);
            cJSON_Delete(kv);
            goto fail;
        }
        keyf(ek, sizeof ek, "%s.%u.%s", key, idx[i], s->val_name);
        if (s->elem->kind == SQS_K_STRUCT || find(q, ek))
            v = decode_value(q, ek, s->elem, depth);
        else
            v = cJSON_CreateString(""); /* Attribute.N.Name without a Value */
        if (!v) {
            cJSON_Delete(kv);
            goto fail;
        }
        cJSON_AddItemToObject(out, kv->valuestring, v);
        cJSON_Delete(kv);
    }
    goto done;
fail:
    cJSON_Delete(out);
    out = NULL;
done:
    free(idx);
    return out;
}

static cJSON *decode_struct(struct qctx *q, const char *prefix, const struct sqs_shape *s,
                            int depth)
{
    char key[SQS_MAX_KEY + 32];
    if (depth > SQS_MAX_DEPTH)
        return fail_null(q, SQS_E_INTERNAL, "Model nested too deeply at %.100s.", prefix);
    cJSON *out = cJSON_CreateObject();
    for (unsigned i = 0; i < s->nmembers; i++) {
        const struct sqs_member *m = &s->members[i];
        keyf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", m->qname);
        cJSON *v = NULL;
        if (m->shape->kind == SQS_K_LIST || m->shape->kind == SQS_K_MAP) {
            v = decode_coll(q, key, *prefix ? key : m->name, m->shape, depth);
        } else if (m->shape->kind == SQS_K_STRUCT) {
            v = decode_struct(q, key, m->shape, depth + 1);
        } else {
            struct qparam *p = find(q, key);
            v = p ? scalar(q, p, m->shape) : NULL;
        }
        if (!v && q->err->code != SQS_OK) {
            cJSON_Delete(out);
            return NULL;
        }
        if (v)
            cJSON_AddItemToObject(out, m->name, v);
    }
    return out;
}

/* An unused parameter under a member of the action is an error (a typo or
 * an attack on the list rebuilding); others are ignored. */
static enum sqs_err check_unused(struct qctx *q, const struct sqs_shape *in)
{
    for (size_t i = 0; i < q->n; i++) {
        const struct qparam *p = &q->p[i];
        const char *dot = strchr(p->k, '.');
        if (p->used || !dot)
            continue;
        for (unsigned m = 0; m < in->nmembers; m++) {
            const char *qn = in->members[m].qname;
            if (strlen(qn) == (size_t)(dot - p->k) && memcmp(qn, p->k, strlen(qn)) == 0)
                return sqs_fail(q->err, SQS_E_MALFORMED_QUERY, "Unknown parameter %.100s.", p->k);
        }
    }
    return SQS_OK;
}

enum sqs_err sqs__query_decode(const char *qs, size_t qslen, const char *form, size_t flen,
                               char action[64], cJSON **params, struct sqs_error *err)
{
    struct qctx q = { .err = err };
    struct aws_query aq;
    enum sqs_err rc;
    *params = NULL;
    action[0] = '\0';
    aws_query_init(&aq, SQS_MAX_PARAMS, SQS_MAX_KEY, qslen + flen);
    q.p = xmalloc((SQS_MAX_PARAMS + 1) * sizeof *q.p);
    if ((rc = split(&q, &aq, qs, qslen)) != SQS_OK || (rc = split(&q, &aq, form, flen)) != SQS_OK)
        goto out;
    qsort(q.p, q.n, sizeof *q.p, by_key);
    for (size_t i = 1; i < q.n; i++)
        if (strcmp(q.p[i - 1].k, q.p[i].k) == 0) {
            rc = sqs_fail(err, SQS_E_MALFORMED_QUERY, "Parameter %.100s given twice.", q.p[i].k);
            goto out;
        }
    struct qparam *ap = find(&q, "Action");
    if (!ap) {
        rc = sqs_fail(err, SQS_E_MISSING_PARAMETER,
                      "The request must contain the parameter Action.");
        goto out;
    }
    ap->used = true;
    const struct sqs_action *a = sqs__action(ap->v, ap->vn);
    if (!a) {
        rc = sqs_fail(err, SQS_E_INVALID_ACTION,
                      "The action %.100s is not valid for this endpoint.", ap->v);
        goto out;
    }
    snprintf(action, 64, "%s", a->name);
    *params = decode_struct(&q, "", a->in, 0);
    if (!*params) {
        rc = err->code;
        goto out;
    }
    rc = check_unused(&q, a->in);
out:
    if (rc != SQS_OK) {
        cJSON_Delete(*params);
        *params = NULL;
    }
    aws_query_free(&aq);
    free(q.p);
    return rc;
}
