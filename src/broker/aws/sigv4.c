/* AWS Signature Version 4 checking (see aws.h), for a broker configured
 * with one access key pair: used by the SQS and SNS APIs and by the native
 * ones. Both forms are accepted:
 *   - the Authorization header:
 *       AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/sqs/aws4_request,
 *       SignedHeaders=<h1;h2;...>, Signature=<64 hex>
 *     with the time in X-Amz-Date (yyyymmddThhmmssZ);
 *   - query parameters (a presigned URL): X-Amz-Algorithm, X-Amz-Credential,
 *     X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature.
 * The canonical request is rebuilt as AWS does (method, URI-encoded path,
 * sorted re-encoded query, signed headers lowercased with whitespace
 * collapsed, SHA-256 of the body or X-Amz-Content-Sha256: UNSIGNED-PAYLOAD),
 * signed with the key derived from the secret for the credential's date,
 * region and service, and compared in constant time. The region is taken
 * from the credential (any region is accepted); the service must be sqs
 * or sns (one port serves both); host must be signed; the request time
 * must be within 15 minutes of now (and a presigned URL not expired). Errors: AccessDenied (no or
 * malformed signature), InvalidClientTokenId (another access key),
 * SignatureDoesNotMatch (wrong signature, expired or skewed time). */
#include "broker/aws/aws.h"
#include "core/buf.h"
#include "core/strutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SKEW 900       /* seconds either way */
#define MAX_EXPIRES 604800 /* presigned URLs: at most 7 days */
#define MAX_SIGNED_HEADERS 32
#define MAX_QUERY_PARAMS 256

struct sig {
    char key[129]; /* access key id */
    char date[9];  /* yyyymmdd of the credential scope */
    char region[33];
    char service[17];
    char amz_date[17]; /* yyyymmddThhmmssZ */
    char signed_headers[1024];
    char signature[65];
    long expires; /* presigned: seconds; -1 for the header form */
};

/* Copies s[0..n) into dst (size cap) when it fits; false otherwise. */
static bool copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* Splits "<key>/<date>/<region>/<service>/aws4_request". */
static bool parse_credential(struct sig *g, const char *s, size_t n)
{
    const char *parts[5];
    size_t lens[5];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '/')
            continue;
        if (k == 5)
            return false;
        parts[k] = s + start;
        lens[k++] = i - start;
        start = i + 1;
    }
    return k == 5 && lens[0] > 0 && copy_field(g->key, sizeof g->key, parts[0], lens[0]) &&
           lens[1] == 8 && copy_field(g->date, sizeof g->date, parts[1], lens[1]) && lens[2] > 0 &&
           copy_field(g->region, sizeof g->region, parts[2], lens[2]) &&
           copy_field(g->service, sizeof g->service, parts[3], lens[3]) && lens[4] == 12 &&
           memcmp(parts[4], "aws4_request", 12) == 0;
}

/* The Authorization header: algorithm, then comma-separated name=value. */
static bool parse_authorization(struct sig *g, const char *s, size_t n)
{
    static const char alg[] = "AWS4-HMAC-SHA256 ";
    bool cred = false, sh = false, sig = false;
    if (n < sizeof alg - 1 || memcmp(s, alg, sizeof alg - 1) != 0)
        return false;
    size_t i = sizeof alg - 1;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == ','))
            i++;
        size_t e = i;
        while (e < n && s[e] != ',')
            e++;
        const char *eq = memchr(s + i, '=', e - i);
        if (!eq)
            return false;
        size_t kn = (size_t)(eq - (s + i)), vn = (size_t)(s + e - eq - 1);
        const char *v = eq + 1;
        while (vn && v[vn - 1] == ' ')
            vn--;
        if (kn == 10 && memcmp(s + i, "Credential", 10) == 0)
            cred = parse_credential(g, v, vn);
        else if (kn == 13 && memcmp(s + i, "SignedHeaders", 13) == 0)
            sh = copy_field(g->signed_headers, sizeof g->signed_headers, v, vn);
        else if (kn == 9 && memcmp(s + i, "Signature", 9) == 0)
            sig = vn == 64 && copy_field(g->signature, sizeof g->signature, v, vn);
        i = e;
    }
    return cred && sh && sig;
}

/* ---- query strings ---- */

struct qp {
    char *k, *v; /* canonically re-encoded */
};

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Appends s[0..n) URI-encoded as SigV4 wants (unreserved bytes kept, and
 * '/' when keep_slash; everything else %XX uppercase). */
static void uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            buf_append(b, &s[i], 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            buf_append(b, e, 3);
        }
    }
}

/* Percent-decodes then re-encodes one query component; NULL on a bad
 * escape. */
static char *recode(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    ssize_t j = pct_decode(s, n, d, n, 0);
    if (j < 0) {
        free(d);
        return NULL;
    }
    struct buf b;
    buf_init(&b);
    uri_encode(&b, d, (size_t)j, false);
    buf_append(&b, "", 1);
    free(d);
    return b.data; /* owned by the caller, NUL-terminated */
}

static int qp_cmp(const void *a, const void *b)
{
    const struct qp *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

/* Splits the query string into re-encoded pairs; returns the count or -1. */
static ssize_t split_query(const char *qs, size_t n, struct qp *out)
{
    size_t k = 0, i = 0;
    while (qs && i < n) {
        const char *amp = memchr(qs + i, '&', n - i);
        size_t e = amp ? (size_t)(amp - qs) : n;
        if (e > i) {
            const char *eq = memchr(qs + i, '=', e - i);
            size_t ke = eq ? (size_t)(eq - qs) : e;
            if (k == MAX_QUERY_PARAMS)
                goto fail;
            out[k].k = recode(qs + i, ke - i);
            out[k].v = eq ? recode(eq + 1, e - ke - 1) : recode("", 0);
            k++;
            if (!out[k - 1].k || !out[k - 1].v)
                goto fail;
        }
        i = e + 1;
    }
    qsort(out, k, sizeof *out, qp_cmp);
    return (ssize_t)k;
fail:
    for (size_t j = 0; j < k; j++) {
        free(out[j].k);
        free(out[j].v);
    }
    return -1;
}

static const char *qp_get(const struct qp *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].k, key) == 0)
            return p[i].v;
    return NULL;
}

/* Decodes a re-encoded value back (only %XX is produced by recode). */
static bool qp_value(const struct qp *p, size_t n, const char *key, char *dst, size_t cap)
{
    const char *v = qp_get(p, n, key);
    size_t j = 0;
    if (!v)
        return false;
    for (size_t i = 0; v[i]; i++) {
        char c = v[i];
        if (c == '%') {
            c = (char)(hex_val(v[i + 1]) << 4 | hex_val(v[i + 2]));
            i += 2;
        }
        if (j + 1 >= cap)
            return false;
        dst[j++] = c;
    }
    dst[j] = '\0';
    return true;
}

/* ---- crypto ---- */

static void hex_of(const unsigned char *md, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[md[i] >> 4];
        out[2 * i + 1] = d[md[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASSERT(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1 && len == 32);
    hex_of(md, 32, out);
}

static void hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
    unsigned int len = 0;
    ASSERT(HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &len) &&
           len == 32);
}

/* Parses yyyymmddThhmmssZ as UTC. */
static bool parse_amz_date(const char *s, int64_t *t)
{
    struct tm tm = { 0 };
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return false;
    if (sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return false;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *t = (int64_t)timegm(&tm);
    return true;
}

/* Appends the path as SigV4 canonicalises it for services other than S3:
 * empty and "." segments dropped, ".." applied, a trailing slash kept,
 * then URI-encoded as sent (so "%2F" becomes "%252F"). */
static void canonical_path(struct buf *b, const char *p, size_t n)
{
    size_t *seg = xmalloc((n + 1) * sizeof *seg), *segn = xmalloc((n + 1) * sizeof *segn);
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        size_t l = i - start;
        if (l == 2 && memcmp(p + start, "..", 2) == 0) {
            k -= k > 0;
        } else if (l > 0 && !(l == 1 && p[start] == '.')) {
            seg[k] = start;
            segn[k++] = l;
        }
        start = i + 1;
    }
    buf_append(b, "/", 1);
    for (size_t i = 0; i < k; i++) {
        if (i)
            buf_append(b, "/", 1);
        uri_encode(b, p + seg[i], segn[i], false);
    }
    if (k && n && p[n - 1] == '/')
        buf_append(b, "/", 1);
    free(seg);
    free(segn);
}

/* Appends "name:value\n" for one signed header (all its occurrences joined
 * by ',', each value trimmed with inner whitespace runs collapsed). */
static bool canonical_header(struct buf *b, const struct http_request *req, const char *name,
                             size_t nlen)
{
    bool found = false;
    buf_append(b, name, nlen);
    buf_append(b, ":", 1);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len != nlen || strncasecmp(h->name, name, nlen) != 0)
            continue;
        if (found)
            buf_append(b, ",", 1);
        found = true;
        bool space = false, wrote = false;
        for (size_t k = 0; k < h->value_len; k++) {
            char c = h->value[k];
            if (c == ' ' || c == '\t') {
                space = true;
                continue;
            }
            if (space && wrote)
                buf_append(b, " ", 1);
            space = false;
            wrote = true;
            buf_append(b, &c, 1);
        }
    }
    buf_append(b, "\n", 1);
    return found;
}

/* The hex signature AWS expects for the request; false when a signed
 * header is missing or the list is malformed. */
static bool expected_signature(const struct http_request *req, const char *body, size_t len,
                               const struct sig *g, const struct qp *qp, size_t nqp,
                               const char *secret, char out[65])
{
    struct buf cr, sts;
    bool ok = false, has_host = false;
    buf_init(&cr);
    buf_init(&sts);
    /* method, path */
    buf_append(&cr, req->method, req->method_len);
    buf_append(&cr, "\n", 1);
    const char *q = memchr(req->target, '?', req->target_len);
    canonical_path(&cr, req->target, q ? (size_t)(q - req->target) : req->target_len);
    buf_append(&cr, "\n", 1);
    /* query, without the signature itself */
    bool first = true;
    for (size_t i = 0; i < nqp; i++) {
        if (strcmp(qp[i].k, "X-Amz-Signature") == 0)
            continue;
        buf_printf(&cr, "%s%s=%s", first ? "" : "&", qp[i].k, qp[i].v);
        first = false;
    }
    buf_append(&cr, "\n", 1);
    /* signed headers, in the order given (they must be sorted, lowercase) */
    const char *sh = g->signed_headers;
    size_t shn = strlen(sh), count = 0, start = 0;
    for (size_t i = 0; i <= shn; i++) {
        if (i < shn && sh[i] != ';')
            continue;
        size_t n = i - start;
        if (n == 0 || ++count > MAX_SIGNED_HEADERS)
            goto out;
        for (size_t k = start; k < i; k++)
            if (sh[k] >= 'A' && sh[k] <= 'Z')
                goto out;
        if (n == 4 && memcmp(sh + start, "host", 4) == 0)
            has_host = true;
        if (!canonical_header(&cr, req, sh + start, n))
            goto out;
        start = i + 1;
    }
    if (!has_host)
        goto out;
    buf_append(&cr, "\n", 1);
    buf_append(&cr, sh, shn);
    buf_append(&cr, "\n", 1);
    const struct http_header *ch =
        http_find_header(req->headers, req->nheaders, "X-Amz-Content-Sha256");
    char ph[65];
    if (ch && fg_strieq(ch->value, ch->value_len, "UNSIGNED-PAYLOAD"))
        snprintf(ph, sizeof ph, "UNSIGNED-PAYLOAD");
    else
        sha256_hex(body, len, ph);
    buf_append_str(&cr, ph);
    /* string to sign */
    char crh[65];
    sha256_hex(buf_rptr(&cr), buf_len(&cr), crh);
    buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", g->amz_date, g->date,
               g->region, g->service, crh);
    /* signing key */
    char *k0 = xasprintf("AWS4%s", secret);
    unsigned char k[32], sig[32];
    hmac(k0, strlen(k0), g->date, strlen(g->date), k);
    OPENSSL_cleanse(k0, strlen(k0));
    free(k0);
    hmac(k, 32, g->region, strlen(g->region), k);
    hmac(k, 32, g->service, strlen(g->service), k);
    hmac(k, 32, "aws4_request", 12, k);
    hmac(k, 32, buf_rptr(&sts), buf_len(&sts), sig);
    OPENSSL_cleanse(k, sizeof k);
    hex_of(sig, 32, out);
    ok = true;
out:
    buf_free(&cr);
    buf_free(&sts);
    return ok;
}

/* Sets msg to the printf-style reason; returns code. */
static enum aws_sig_err fail(char *msg, size_t cap, enum aws_sig_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum aws_sig_err fail(char *msg, size_t cap, enum aws_sig_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return code;
}

static enum aws_sig_err check(const struct http_request *req, const char *body, size_t len,
                              const char *access_key, const char *secret_key, int64_t now,
                              const struct qp *qp, size_t nqp, char *msg, size_t cap)
{
    struct sig g = { .expires = -1 };
    const struct http_header *auth = http_find_header(req->headers, req->nheaders, "Authorization");
    if (auth) {
        const struct http_header *d = http_find_header(req->headers, req->nheaders, "X-Amz-Date");
        if (!parse_authorization(&g, auth->value, auth->value_len))
            return fail(msg, cap, AWS_SIG_ACCESS_DENIED,
                        "Authorization header requires AWS4-HMAC-SHA256 with Credential, "
                        "SignedHeaders and Signature.");
        if (!d || !copy_field(g.amz_date, sizeof g.amz_date, d->value, d->value_len))
            return fail(msg, cap, AWS_SIG_ACCESS_DENIED, "The request lacks an X-Amz-Date header.");
    } else if (qp_get(qp, nqp, "X-Amz-Signature")) {
        char alg[32], cred[256], exp[16];
        if (!qp_value(qp, nqp, "X-Amz-Algorithm", alg, sizeof alg) ||
            strcmp(alg, "AWS4-HMAC-SHA256") != 0 ||
            !qp_value(qp, nqp, "X-Amz-Credential", cred, sizeof cred) ||
            !parse_credential(&g, cred, strlen(cred)) ||
            !qp_value(qp, nqp, "X-Amz-Date", g.amz_date, sizeof g.amz_date) ||
            !qp_value(qp, nqp, "X-Amz-SignedHeaders", g.signed_headers, sizeof g.signed_headers) ||
            !qp_value(qp, nqp, "X-Amz-Signature", g.signature, sizeof g.signature) ||
            strlen(g.signature) != 64)
            return fail(msg, cap, AWS_SIG_ACCESS_DENIED,
                        "The presigned request lacks or garbles an X-Amz-* parameter.");
        char *end = NULL;
        if (qp_value(qp, nqp, "X-Amz-Expires", exp, sizeof exp)) {
            g.expires = strtol(exp, &end, 10);
            if (!*exp || *end || g.expires < 1 || g.expires > MAX_EXPIRES)
                return fail(msg, cap, AWS_SIG_ACCESS_DENIED, "X-Amz-Expires is invalid.");
        }
    } else {
        return fail(msg, cap, AWS_SIG_ACCESS_DENIED,
                    "The request is not signed (AWS Signature Version 4 is required).");
    }
    if (strcmp(g.key, access_key) != 0)
        return fail(msg, cap, AWS_SIG_UNKNOWN_KEY,
                    "The security token included in the request is invalid.");
    /* One port serves both APIs: SNS clients scope their keys to "sns". */
    if (strcmp(g.service, "sqs") != 0 && strcmp(g.service, "sns") != 0)
        return fail(msg, cap, AWS_SIG_DOES_NOT_MATCH,
                    "Credential should be scoped to correct service: 'sqs' or 'sns'.");
    int64_t t;
    if (!parse_amz_date(g.amz_date, &t) || memcmp(g.amz_date, g.date, 8) != 0)
        return fail(msg, cap, AWS_SIG_DOES_NOT_MATCH,
                    "X-Amz-Date is malformed or does not match the credential's date.");
    if (g.expires >= 0 ? (now < t - MAX_SKEW || now > t + g.expires)
                       : (now < t - MAX_SKEW || now > t + MAX_SKEW))
        return fail(msg, cap, AWS_SIG_DOES_NOT_MATCH,
                    "Signature expired or not yet valid: %s is too far from now.", g.amz_date);
    char want[65];
    if (!expected_signature(req, body, len, &g, qp, nqp, secret_key, want))
        return fail(msg, cap, AWS_SIG_DOES_NOT_MATCH,
                    "SignedHeaders must be lowercase, include host and name only headers "
                    "the request has.");
    for (char *c = g.signature; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    if (CRYPTO_memcmp(want, g.signature, 64) != 0)
        return fail(msg, cap, AWS_SIG_DOES_NOT_MATCH,
                    "The request signature we calculated does not match the signature you "
                    "provided.");
    return AWS_SIG_OK;
}

enum aws_sig_err aws_sigv4_check(const struct http_request *req, const char *body, size_t len,
                                 const char *access_key, const char *secret_key, int64_t now,
                                 char *msg, size_t cap)
{
    const char *q = memchr(req->target, '?', req->target_len);
    struct qp *qp = xcalloc(MAX_QUERY_PARAMS, sizeof *qp);
    ssize_t nqp = q ? split_query(q + 1, req->target_len - (size_t)(q + 1 - req->target), qp) : 0;
    enum aws_sig_err rc;
    if (nqp < 0)
        rc = fail(msg, cap, AWS_SIG_ACCESS_DENIED, "The query string is malformed.");
    else
        rc = check(req, body, len, access_key, secret_key, now, qp, (size_t)nqp, msg, cap);
    for (ssize_t i = 0; i < nqp; i++) {
        free(qp[i].k);
        free(qp[i].v);
    }
    free(qp);
    return rc;
}
