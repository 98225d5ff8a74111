/* Implementation of xsite.h: parsing Host and Origin values as browsers
 * write them (RFC 9110 7.2, RFC 6454 6.1: scheme "://" host [":" port],
 * IPv6 hosts in brackets, default ports left out) and the checks built on
 * them. Nothing here allocates. */
#include "core/xsite.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* A host[:port] split into its parts. */
struct hostport {
    const char *name; /* without brackets for IPv6 */
    size_t name_len;
    bool bracketed;   /* written as [v6] */
    bool has_port;
    unsigned port;
};

/* Splits host[:port]. False when malformed (an unbracketed ':' in the
 * host, a port that is not 1..5 digits under 65536, nothing before it). */
static bool split_hostport(const char *s, size_t len, struct hostport *out)
{
    memset(out, 0, sizeof *out);
    size_t hend;
    if (len && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb)
            return false;
        out->name = s + 1;
        out->name_len = (size_t)(rb - s) - 1;
        out->bracketed = true;
        hend = (size_t)(rb - s) + 1;
        if (hend < len && s[hend] != ':')
            return false;
    } else {
        const char *colon = memchr(s, ':', len);
        hend = colon ? (size_t)(colon - s) : len;
        out->name = s;
        out->name_len = hend;
        if (colon && memchr(colon + 1, ':', len - hend - 1))
            return false;
    }
    if (!out->name_len)
        return false;
    if (hend < len) {
        size_t pl = len - hend - 1;
        if (pl == 0 || pl > 5)
            return false;
        unsigned v = 0;
        for (size_t i = hend + 1; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v > 65535)
            return false;
        out->has_port = true;
        out->port = v;
    }
    return true;
}

static bool is_ip_literal(const struct hostport *hp)
{
    char tmp[64];
    if (hp->name_len >= sizeof tmp)
        return false;
    memcpy(tmp, hp->name, hp->name_len);
    tmp[hp->name_len] = '\0';
    unsigned char bin[16];
    if (hp->bracketed)
        return inet_pton(AF_INET6, tmp, bin) == 1;
    return inet_pton(AF_INET, tmp, bin) == 1;
}

/* Case-insensitive equality of two names, a trailing dot on either
 * ignored ("localhost." is "localhost"). */
static bool name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen && a[alen - 1] == '.')
        alen--;
    if (blen && b[blen - 1] == '.')
        blen--;
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

static bool is_localhost(const char *s, size_t len)
{
    if (len && s[len - 1] == '.')
        len--;
    /* RFC 6761 6.3: localhost and every name under it are loopback, and
     * browsers resolve them without asking DNS. */
    static const char sub[] = ".localhost";
    return fg_strieq(s, len, "localhost") ||
           (len > sizeof sub - 1 && strncasecmp(s + len - (sizeof sub - 1), sub, sizeof sub - 1) == 0);
}

bool xsite_host_ok(const struct xsite_policy *p, const char *host, size_t len)
{
    if (!host || !len)
        return true;
    struct hostport hp;
    if (!split_hostport(host, len, &hp))
        return false;
    if (hp.bracketed)
        return is_ip_literal(&hp);
    if (is_ip_literal(&hp) || is_localhost(hp.name, hp.name_len))
        return true;
    for (size_t i = 0; p && i < p->nhosts; i++)
        if (name_eq(hp.name, hp.name_len, p->hosts[i], strlen(p->hosts[i])))
            return true;
    return false;
}

const char *xsite_origin_listed(const struct xsite_policy *p, const char *origin, size_t len)
{
    for (size_t i = 0; p && i < p->norigins; i++) {
        const char *o = p->origins[i];
        if (strcmp(o, "*") == 0 || (strlen(o) == len && strncasecmp(o, origin, len) == 0))
            return o;
    }
    return NULL;
}

/* Splits an origin into its scheme's default port and its host[:port].
 * False for "null", other schemes, or anything after the authority. */
static bool split_origin(const char *o, size_t len, unsigned *defport, struct hostport *hp)
{
    size_t skip;
    if (len > 7 && strncasecmp(o, "http://", 7) == 0) {
        skip = 7;
        *defport = 80;
    } else if (len > 8 && strncasecmp(o, "https://", 8) == 0) {
        skip = 8;
        *defport = 443;
    } else {
        return false;
    }
    if (memchr(o + skip, '/', len - skip) || memchr(o + skip, '@', len - skip))
        return false;
    return split_hostport(o + skip, len - skip, hp);
}

bool xsite_same_origin(const char *origin, size_t len, const char *host, size_t hlen)
{
    unsigned defport;
    struct hostport o, h;
    if (!host || !hlen || !split_origin(origin, len, &defport, &o) || !split_hostport(host, hlen, &h))
        return false;
    if (o.bracketed != h.bracketed || !name_eq(o.name, o.name_len, h.name, h.name_len))
        return false;
    unsigned op = o.has_port ? o.port : defport;
    /* A Host without a port is the default port of the scheme the client
     * used, which only the Origin tells (http here, or https through a
     * TLS-terminating proxy). */
    unsigned hp = h.has_port ? h.port : defport;
    return op == hp;
}

bool xsite_bearer_ok(const char *token, const struct http_header *h, size_t n)
{
    if (!token)
        return true;
    const struct http_header *a = http_find_header(h, n, "Authorization");
    if (!a || a->value_len < 7 || strncasecmp(a->value, "Bearer ", 7) != 0)
        return false;
    const char *v = a->value + 7;
    size_t vl = a->value_len - 7;
    while (vl && *v == ' ') {
        v++;
        vl--;
    }
    /* Every byte of the longer string is looked at whatever the first
     * difference: the time says nothing about how much of a guess was
     * right. */
    size_t tl = strlen(token), m = FG_MAX(tl, vl);
    unsigned char diff = tl != vl;
    for (size_t i = 0; i < m; i++) {
        unsigned char x = i < tl ? (unsigned char)token[i] : 0;
        unsigned char y = i < vl ? (unsigned char)v[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

/* True when the Content-Type value's media type is application/json. */
static bool is_json(const struct http_header *ct)
{
    size_t l = ct->value_len;
    const char *semi = memchr(ct->value, ';', l);
    if (semi)
        l = (size_t)(semi - ct->value);
    while (l && (ct->value[l - 1] == ' ' || ct->value[l - 1] == '\t'))
        l--;
    return fg_strieq(ct->value, l, "application/json");
}

enum xsite_verdict xsite_check(const struct xsite_policy *p, const struct http_header *h, size_t n,
                               size_t body_len, unsigned flags)
{
    const struct http_header *host = http_find_header(h, n, "Host");
    if (host && !xsite_host_ok(p, host->value, host->value_len))
        return XSITE_BAD_HOST;
    if (flags & XSITE_CHECK_ORIGIN) {
        const struct http_header *o = http_find_header(h, n, "Origin");
        bool listed = o && xsite_origin_listed(p, o->value, o->value_len) != NULL;
        if (o && !listed &&
            !(host && xsite_same_origin(o->value, o->value_len, host->value, host->value_len)))
            return XSITE_FOREIGN_ORIGIN;
        const struct http_header *sfs = http_find_header(h, n, "Sec-Fetch-Site");
        if (sfs && !listed &&
            (fg_strieq(sfs->value, sfs->value_len, "cross-site") ||
             fg_strieq(sfs->value, sfs->value_len, "same-site")))
            return XSITE_CROSS_SITE;
    }
    if (flags & XSITE_NEED_JSON) {
        const struct http_header *ct = http_find_header(h, n, "Content-Type");
        if (ct ? !is_json(ct) : body_len > 0)
            return XSITE_NOT_JSON;
    }
    return XSITE_OK;
}

const char *xsite_reason(enum xsite_verdict v)
{
    switch (v) {
    case XSITE_OK: return "ok";
    case XSITE_BAD_HOST:
        return "Host is not an address or allowed name of this listener (a DNS rebinding?)";
    case XSITE_FOREIGN_ORIGIN: return "cross-origin request refused (Origin is another site)";
    case XSITE_CROSS_SITE: return "cross-site request refused (Sec-Fetch-Site)";
    case XSITE_NOT_JSON: return "request body must be application/json";
    }
    return "refused";
}

bool xsite_log_allowed(struct xsite_loglimit *l, uint64_t now_ms, uint32_t *dropped)
{
    if (now_ms - l->window_start >= XSITE_LOG_WINDOW_MS || now_ms < l->window_start) {
        l->window_start = now_ms;
        l->lines = 0;
    }
    if (l->lines >= XSITE_LOG_BURST) {
        l->dropped++;
        return false;
    }
    l->lines++;
    *dropped = l->dropped;
    l->dropped = 0;
    return true;
}

const char *xsite_name_invalid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253)
        return "expected a host name of 1..253 characters";
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_'))
            return "expected a host name without a port (letters, digits, '-', '.', '_')";
    }
    return NULL;
}

const char *xsite_origin_invalid(const char *origin)
{
    if (strcmp(origin, "*") == 0)
        return NULL;
    size_t len = strlen(origin);
    unsigned defport;
    struct hostport hp;
    if (!split_origin(origin, len, &defport, &hp))
        return "expected '*' or an origin: http://HOST[:PORT] or https://HOST[:PORT], no path";
    for (size_t i = 0; i < hp.name_len; i++) {
        char ch = hp.name[i];
        if ((unsigned char)ch <= ' ' || ch == '"' || ch == ',' || (unsigned char)ch >= 0x7f)
            return "the origin's host holds a character no origin has";
    }
    return NULL;
}
