/* Message digests and message attributes as SQS defines them:
 *   - MD5OfMessageBody: MD5 of the body's UTF-8 bytes, lowercase hex;
 *   - MD5OfMessageAttributes (and MD5OfMessageSystemAttributes): MD5 over
 *     the attributes sorted by name, each as
 *       len(name) name len(type) type T len(value) value
 *     with 4-byte big-endian lengths and T the transport byte: 1 for a
 *     StringValue (String and Number types), 2 for a BinaryValue (the
 *     decoded bytes), 3 and 4 for string and binary lists (each item
 *     length-prefixed; the API reserves them and sqs_check_attributes
 *     refuses them, but the digest is defined);
 *   - validation of message attributes (names, types, values, count) and
 *     of the characters SQS accepts in bodies and values;
 * plus the strict base64 the canonical form uses for binary values. */
#include "broker/queue/engine.h"
#include "broker/sqs/sqs_int.h"
#include "core/base64.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *md, char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[32] = '\0';
}

void sqs_md5_hex(const void *data, size_t len, char hex[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    ASSERT(EVP_Digest(data, len, md, &n, EVP_md5(), NULL) == 1 && n == 16);
    to_hex(md, hex);
}

/* ---- characters (the rules are the engine's: bk_utf8_next, bk_body_valid) ---- */

int32_t sqs__utf8_char(const char *s, size_t n, size_t *used)
{
    int32_t cp = bk_utf8_next(s, n, used);
    if (cp < 0)
        *used = 1;
    return cp;
}

bool sqs__valid_chars(const char *s, size_t n)
{
    return bk_body_valid(s, n);
}

bool sqs_valid_chars(const char *s, size_t n)
{
    return sqs__valid_chars(s, n);
}

bool sqs__utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t used;
        if (bk_utf8_next(s + i, n - i, &used) < 0)
            return false;
        i += used;
    }
    return true;
}

/* ---- attribute digest ---- */

static void put_len(EVP_MD_CTX *c, size_t n)
{
    unsigned char b[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n };
    EVP_DigestUpdate(c, b, 4);
}

static void put_lp(EVP_MD_CTX *c, const void *p, size_t n)
{
    put_len(c, n);
    EVP_DigestUpdate(c, p, n);
}

static void put_str(EVP_MD_CTX *c, const char *s)
{
    put_lp(c, s, strlen(s));
}

/* Length-prefixed decoded bytes of a base64 value (invalid base64 counts
 * as no bytes: sqs_check_attributes refuses it before it gets here). */
static void put_blob(EVP_MD_CTX *c, const char *b64)
{
    size_t n = strlen(b64);
    unsigned char *tmp = xmalloc(n / 4 * 3 + 1);
    ssize_t m = base64_decode(b64, n, tmp);
    put_lp(c, tmp, m > 0 ? (size_t)m : 0);
    free(tmp);
}

static int by_name(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void digest_value(EVP_MD_CTX *c, const cJSON *v)
{
    const char *sv = str_member(v, "StringValue");
    const char *bv = str_member(v, "BinaryValue");
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(v, "StringListValues");
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(v, "BinaryListValues");
    if (sv) {
        EVP_DigestUpdate(c, "\x01", 1);
        put_str(c, sv);
    } else if (bv) {
        EVP_DigestUpdate(c, "\x02", 1);
        put_blob(c, bv);
    } else if (cJSON_GetArraySize(sl) > 0) {
        EVP_DigestUpdate(c, "\x03", 1);
        for (const cJSON *i = sl->child; i; i = i->next)
            put_str(c, cJSON_IsString(i) ? i->valuestring : "");
    } else if (cJSON_GetArraySize(bl) > 0) {
        EVP_DigestUpdate(c, "\x04", 1);
        for (const cJSON *i = bl->child; i; i = i->next)
            put_blob(c, cJSON_IsString(i) ? i->valuestring : "");
    }
}

bool sqs_md5_attributes(const cJSON *attrs, char hex[33])
{
    hex[0] = '\0';
    int n = cJSON_IsObject(attrs) ? cJSON_GetArraySize(attrs) : 0;
    if (n <= 0)
        return false;
    const cJSON **v = xmalloc((size_t)n * sizeof *v);
    int k = 0;
    for (const cJSON *c = attrs->child; c && k < n; c = c->next)
        v[k++] = c;
    qsort(v, (size_t)k, sizeof *v, by_name);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    ASSERT(c && EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1);
    for (int i = 0; i < k; i++) {
        const char *type = str_member(v[i], "DataType");
        put_str(c, v[i]->string);
        put_str(c, type ? type : "");
        digest_value(c, v[i]);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASSERT(EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 16);
    EVP_MD_CTX_free(c);
    free(v);
    to_hex(md, hex);
    return true;
}

/* ---- attribute validation ---- */

#define MAX_ATTRIBUTES 10
#define MAX_NAME 256

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME || s[0] == '.' || s[n - 1] == '.')
        return false;
    if (strncasecmp(s, "AWS.", 4) == 0 || strncasecmp(s, "Amazon.", 7) == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]) || (s[i] == '.' && s[i + 1] == '.'))
            return false;
    return true;
}

/* String, Number or Binary, optionally followed by ".<custom label>". */
static const char *base_type(const char *t)
{
    static const char *const bases[] = { "String", "Number", "Binary" };
    size_t n = strlen(t);
    if (n > MAX_NAME)
        return NULL;
    for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
        size_t l = strlen(bases[i]);
        if (strncmp(t, bases[i], l) != 0 || (t[l] != '\0' && t[l] != '.'))
            continue;
        if (t[l] == '.') {
            if (t[l + 1] == '\0')
                return NULL;
            for (const char *p = t + l + 1; *p; p++)
                if (!name_char(*p))
                    return NULL;
        }
        return bases[i];
    }
    return NULL;
}

/* A decimal number as SQS accepts for Number: sign, digits, optional
 * fraction and exponent, at most 38 significant digits. */
static bool valid_number(const char *s)
{
    size_t digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    bool any = false;
    while (*s >= '0' && *s <= '9') {
        digits += digits || *s != '0';
        any = true;
        s++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            digits += digits || *s != '0';
            any = true;
            s++;
        }
    }
    if (!any)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        for (int k = 0; *s >= '0' && *s <= '9'; k++, s++)
            if (k >= 3)
                return false;
    }
    return *s == '\0' && digits <= 38;
}

static enum sqs_err check_one(const cJSON *a, size_t *bytes, struct sqs_error *err)
{
    const char *name = a->string;
    if (!valid_name(name))
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "Message (user) attribute name '%.100s' is invalid. Names may hold "
                        "A-Z, a-z, 0-9, '_', '-' and '.', must not start or end with '.', hold "
                        "'..' or start with AWS. or Amazon., and are at most 256 characters.",
                        name);
    if (!cJSON_IsObject(a))
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "Message (user) attribute '%.100s' has no value.", name);
    const char *type = str_member(a, "DataType");
    if (!type || !*type)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "The message (user) attribute '%.100s' must contain a non-empty "
                        "message attribute type.",
                        name);
    const char *base = base_type(type);
    if (!base)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "The type of message (user) attribute '%.100s' is invalid. You must use "
                        "only the following supported type prefixes: Binary, Number, String.",
                        name);
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a, "StringListValues")) > 0 ||
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a, "BinaryListValues")) > 0)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "Message (user) attribute '%.100s': list values are not supported.", name);
    const char *sv = str_member(a, "StringValue");
    const char *bv = str_member(a, "BinaryValue");
    size_t vlen;
    if (base[0] == 'B') {
        ssize_t m = bv && !sv ? base64_decode(bv, strlen(bv), NULL) : -1;
        if (m <= 0)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Message (user) attribute '%.100s' must contain a non-empty value "
                            "of type 'Binary'.",
                            name);
        vlen = (size_t)m;
    } else {
        if (!sv || !*sv || bv)
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Message (user) attribute '%.100s' must contain a non-empty value "
                            "of type '%s'.",
                            name, base);
        vlen = strlen(sv);
        if (!sqs__valid_chars(sv, vlen))
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Message (user) attribute '%.100s' holds characters outside #x9 | "
                            "#xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
                            "#x10FFFF.",
                            name);
        if (base[0] == 'N' && !valid_number(sv))
            return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                            "Can't cast the value of message (user) attribute '%.100s' to a "
                            "number.",
                            name);
    }
    *bytes += strlen(name) + strlen(type) + vlen;
    return SQS_OK;
}

enum sqs_err sqs_check_attributes(const cJSON *attrs, size_t *bytes, struct sqs_error *err)
{
    if (!attrs)
        return SQS_OK;
    if (!cJSON_IsObject(attrs))
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE, "Message attributes must be a map.");
    int n = cJSON_GetArraySize(attrs);
    if (n > MAX_ATTRIBUTES)
        return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                        "Number of message attributes [%d] exceeds the allowed maximum [%d].", n,
                        MAX_ATTRIBUTES);
    for (const cJSON *a = attrs->child; a; a = a->next) {
        for (const cJSON *b = attrs->child; b != a; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return sqs_fail(err, SQS_E_INVALID_PARAMETER_VALUE,
                                "Message (user) attribute name '%.100s' is used twice.", a->string);
        if (check_one(a, bytes, err) != SQS_OK)
            return err->code;
    }
    return SQS_OK;
}
