/* Building rate-limit keys from request parts (limit/key.h): client address
 * prefixes, header and cookie values, the route, literals; and parsing
 * the configuration's key spec text. */
#include "gateway/limit/key.h"
#include "core/strutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

/* ---- values --------------------------------------------------------- */

static const char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (char)0xff, (char)0xff };

/* The client address as 4 or 16 bytes; IPv4-mapped IPv6 folds to IPv4.
 * Returns 4, 16 or 0 when there is no usable address. */
static int addr(const struct rl_key_input *in, unsigned char a[16])
{
    if (in->peer) {
        if (in->peer->sa_family == AF_INET) {
            memcpy(a, &((const struct sockaddr_in *)(const void *)in->peer)->sin_addr, 4);
            return 4;
        }
        if (in->peer->sa_family == AF_INET6) {
            memcpy(a, &((const struct sockaddr_in6 *)(const void *)in->peer)->sin6_addr, 16);
        } else {
            return 0;
        }
    } else {
        const char *p = in->ip;
        size_t n = in->ip_len;
        if (!p)
            return 0;
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        char tmp[INET6_ADDRSTRLEN];
        if (n == 0 || n >= sizeof tmp)
            return 0;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET, tmp, a) == 1)
            return 4;
        if (inet_pton(AF_INET6, tmp, a) != 1)
            return 0;
    }
    if (memcmp(a, v4mapped, sizeof v4mapped) == 0) {
        memmove(a, a + 12, 4);
        return 4;
    }
    return 16;
}

static const struct http_header *find_header(const struct rl_key_input *in, const char *name,
                                            size_t len)
{
    for (size_t i = 0; i < in->nheaders; i++) {
        const struct http_header *h = &in->headers[i];
        if (h->name_len == len && strncasecmp(h->name, name, len) == 0)
            return h;
    }
    return NULL;
}

static inline bool ows(char c) { return c == ' ' || c == '\t'; }

/* Finds cookie `name` in the Cookie headers ("a=1; b=2", RFC 6265 5.4);
 * the first match wins. The value loses surrounding whitespace and one
 * pair of DQUOTEs. */
static bool find_cookie(const struct rl_key_input *in, const char *name, size_t len,
                       const char **val, size_t *vlen)
{
    for (size_t i = 0; i < in->nheaders; i++) {
        const struct http_header *h = &in->headers[i];
        if (h->name_len != 6 || strncasecmp(h->name, "Cookie", 6) != 0)
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *pe = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            if (eq) {
                const char *ns = p, *ne = eq;
                while (ns < ne && ows(*ns))
                    ns++;
                while (ne > ns && ows(ne[-1]))
                    ne--;
                if ((size_t)(ne - ns) == len && memcmp(ns, name, len) == 0) {
                    const char *vs = eq + 1, *ve = pe;
                    while (vs < ve && ows(*vs))
                        vs++;
                    while (ve > vs && ows(ve[-1]))
                        ve--;
                    if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"')
                        vs++, ve--;
                    *val = vs;
                    *vlen = (size_t)(ve - vs);
                    return true;
                }
            }
            p = semi ? semi + 1 : end;
        }
    }
    return false;
}

/* ---- encoding ------------------------------------------------------- */

/* <tag><len>:<bytes>, or <TAG>#<digest> for long values. */
static size_t put_text(char *o, char tag, const char *v, size_t n)
{
    size_t k = 0;
    if (n > RL_KEY_VALUE_MAX) {
        XXH128_hash_t d = XXH3_128bits(v, n);
        o[k++] = (char)(tag - 'a' + 'A');
        o[k++] = '#';
        memcpy(o + k, &d.high64, 8);
        memcpy(o + k + 8, &d.low64, 8);
        return k + 16;
    }
    o[k++] = tag;
    k += u64_to_dec(o + k, n);
    o[k++] = ':';
    memcpy(o + k, v, n);
    return k + n;
}

static size_t put_ip(char *o, const unsigned char a[16], int alen, unsigned prefix)
{
    size_t k = 0;
    o[k++] = 'i';
    o[k++] = alen == 4 ? '4' : '6';
    o[k++] = (char)prefix;
    size_t nb = (prefix + 7) / 8;
    memcpy(o + k, a, nb);
    if (prefix % 8)
        o[k + nb - 1] = (char)(a[nb - 1] & (0xffu << (8 - prefix % 8)));
    return k + nb;
}

static const char tags[] = { [RL_KEY_IP] = 'i', [RL_KEY_HEADER] = 'h', [RL_KEY_COOKIE] = 'c',
                                 [RL_KEY_ROUTE] = 'r', [RL_KEY_LITERAL] = 'l' };

/* The tag of a part kind; bounded so the compiler sees no way past the
 * table (kinds come from rl_key_spec_add, which validates them). */
static char kind_tag(enum rl_key_kind kind)
{
    return (unsigned)kind < sizeof tags ? tags[kind] : '?';
}

int rl_key_build(const struct rl_key_spec *spec, const struct rl_key_input *in, char *out)
{
    size_t k = 0;
    unsigned nparts = FG_MIN(spec->nparts, (unsigned)RL_KEY_MAX_PARTS);
    for (unsigned i = 0; i < nparts; i++) {
        const struct rl_key_part *p = &spec->parts[i];
        const char *v = NULL;
        size_t n = 0;
        bool present = true;
        switch (p->kind) {
        case RL_KEY_IP: {
            unsigned char a[16];
            int alen = addr(in, a);
            if (alen) {
                unsigned prefix = alen == 4 ? p->v4_prefix : p->v6_prefix;
                k += put_ip(out + k, a, alen, FG_MIN(prefix, (unsigned)alen * 8));
                continue;
            }
            present = false;
            break;
        }
        case RL_KEY_HEADER: {
            const struct http_header *h = find_header(in, p->name, p->name_len);
            if (h) {
                v = h->value;
                n = h->value_len;
            }
            present = h != NULL;
            break;
        }
        case RL_KEY_COOKIE:
            present = find_cookie(in, p->name, p->name_len, &v, &n);
            break;
        case RL_KEY_ROUTE:
            v = in->route;
            n = in->route_len;
            present = v != NULL;
            break;
        case RL_KEY_LITERAL:
            v = p->name;
            n = p->name_len;
            break;
        }
        if (!present) {
            if (!p->optional)
                return RL_KEY_ABSENT;
            out[k++] = kind_tag(p->kind);
            out[k++] = '-';
            continue;
        }
        k += put_text(out + k, kind_tag(p->kind), v, n);
    }
    ASSERT(k <= RL_KEY_MAX);
    if (k == 0) /* an empty spec: one key for every request */
        out[k++] = 'e';
    return (int)k;
}

/* ---- specs ---------------------------------------------------------- */

int rl_key_spec_add(struct rl_key_spec *spec, enum rl_key_kind kind, const char *name,
                    uint8_t v4_prefix, uint8_t v6_prefix, bool optional)
{
    size_t n = name ? strlen(name) : 0;
    if (spec->nparts >= RL_KEY_MAX_PARTS || n >= RL_KEY_NAME_MAX || v4_prefix > 32 ||
        v6_prefix > 128)
        return -1;
    struct rl_key_part *p = &spec->parts[spec->nparts++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->v4_prefix = v4_prefix;
    p->v6_prefix = v6_prefix;
    p->optional = optional;
    p->name_len = (uint8_t)n;
    if (n)
        memcpy(p->name, name, n);
    return 0;
}

static bool tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Parses a decimal prefix length at *p up to max; advances *p. */
static int parse_prefix(const char **p, const char *end, unsigned max)
{
    unsigned v = 0;
    const char *s = *p;
    if (s == end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max)
            return -1;
        s++;
    }
    *p = s;
    return (int)v;
}

static int part_err(char **err, const char *s, size_t n, const char *msg)
{
    *err = xasprintf("rate-limit key part '%.*s': %s", (int)n, s, msg);
    return -1;
}

static int parse_part(struct rl_key_spec *spec, const char *s, size_t n, char **err)
{
    while (n && ows(*s))
        s++, n--;
    while (n && ows(s[n - 1]))
        n--;
    const char *part = s;
    size_t plen = n;
    if (n == 0)
        return part_err(err, part, plen, "empty part");
    if (spec->nparts >= RL_KEY_MAX_PARTS)
        return part_err(err, part, plen, "more than 8 parts");
    bool optional = false;
    if (s[n - 1] == '?') {
        optional = true;
        n--;
    }
    const char *colon = memchr(s, ':', n);
    size_t kw = colon ? (size_t)(colon - s) : n;
    const char *arg = colon ? colon + 1 : NULL;
    size_t alen = colon ? n - kw - 1 : 0;

    if (kw >= 2 && strncmp(s, "ip", 2) == 0 && (kw == 2 || s[2] == '/') && !colon) {
        int v4 = 32, v6 = 128;
        const char *q = s + 2, *end = s + n;
        if (q < end) {
            q++;
            if ((v4 = parse_prefix(&q, end, 32)) < 0)
                return part_err(err, part, plen, "IPv4 prefix must be 0..32");
            if (q < end) {
                if (*q++ != '/' || (v6 = parse_prefix(&q, end, 128)) < 0 || q != end)
                    return part_err(err, part, plen, "IPv6 prefix must be 0..128");
            }
        }
        rl_key_spec_add(spec, RL_KEY_IP, NULL, (uint8_t)v4, (uint8_t)v6, optional);
        return 0;
    }
    if (kw == 5 && strncmp(s, "route", 5) == 0 && !colon) {
        rl_key_spec_add(spec, RL_KEY_ROUTE, NULL, 0, 0, optional);
        return 0;
    }
    enum rl_key_kind kind;
    if (kw == 6 && strncmp(s, "header", 6) == 0)
        kind = RL_KEY_HEADER;
    else if (kw == 6 && strncmp(s, "cookie", 6) == 0)
        kind = RL_KEY_COOKIE;
    else if (kw == 7 && strncmp(s, "literal", 7) == 0)
        kind = RL_KEY_LITERAL;
    else
        return part_err(err, part, plen,
                            "expected ip[/N[/M]], header:NAME, cookie:NAME, route or literal:TEXT");
    if (!colon || alen == 0)
        return part_err(err, part, plen, "missing name after ':'");
    if (alen >= RL_KEY_NAME_MAX)
        return part_err(err, part, plen, "name longer than 63 bytes");
    if (kind == RL_KEY_LITERAL && optional)
        return part_err(err, part, plen, "a literal is never missing");
    for (size_t i = 0; i < alen; i++) {
        char c = arg[i];
        if (kind == RL_KEY_LITERAL ? (c < 0x20 || c > 0x7e) : !tchar(c))
            return part_err(err, part, plen,
                                kind == RL_KEY_LITERAL ? "literal must be printable ASCII"
                                                       : "name must be an HTTP token");
    }
    char name[RL_KEY_NAME_MAX];
    memcpy(name, arg, alen);
    name[alen] = '\0';
    rl_key_spec_add(spec, kind, name, 0, 0, optional);
    return 0;
}

int rl_key_spec_parse(struct rl_key_spec *spec, const char *text, char **err)
{
    *err = NULL;
    memset(spec, 0, sizeof *spec);
    const char *p = text;
    for (;;) {
        const char *plus = strchr(p, '+');
        size_t n = plus ? (size_t)(plus - p) : strlen(p);
        if (parse_part(spec, p, n, err) < 0)
            return -1;
        if (!plus)
            return 0;
        p = plus + 1;
    }
}
