/* The checks that the config loader and the admin API share (config.h
 * gw_check_*): the admin API (members.c, the admin files) refuses the same
 * values as a config file, in the same words. Each check returns NULL
 * when the value is acceptable, else the message (caller frees); the
 * loader puts the file, line and key in front, the admin API the JSON
 * member's name. */
#include "gateway/config/config.h"
#include "gateway/config/config_int.h"

#include "core/cidr.h"
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const gw__cfg_lb_names[] = {"round_robin", "weighted", "least_conn", "two_random", "consistent_hash",
                                        NULL};

/* s bounded to 64 characters with control characters shown as '?', like
 * the YAML loader shows scalars. out holds at least 72 bytes. */
static const char *shown(const char *s, char *out)
{
    size_t j = 0;
    for (; s[j] && j < 64; j++)
        out[j] = ((unsigned char)s[j] >= 0x20 && s[j] != 0x7f) ? s[j] : '?';
    if (s[j]) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

char *gw_check_service_name(const char *s)
{
    if (name_ok(s))
        return NULL;
    char v[72];
    return xasprintf("'%s' is not a valid service name: use 1 to 64 of a-z, 0-9, '_' and '-'", shown(s, v));
}

char *gw_check_balance(const char *s, int *algo)
{
    for (int i = 0; gw__cfg_lb_names[i]; i++)
        if (strcasecmp(s, gw__cfg_lb_names[i]) == 0) {
            if (algo)
                *algo = i;
            return NULL;
        }
    char valid[256] = "", v[72];
    for (int i = 0; gw__cfg_lb_names[i]; i++)
        snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "", gw__cfg_lb_names[i]);
    const char *sug = cfg_suggest(s, gw__cfg_lb_names, ARRAY_SIZE(gw__cfg_lb_names) - 1);
    if (sug)
        return xasprintf("unknown value '%s'; did you mean '%s'? (expected one of: %s)", shown(s, v), sug, valid);
    return xasprintf("unknown value '%s' (expected one of: %s)", shown(s, v), valid);
}

char *gw_check_weight(const char *s, int *out)
{
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    char v[72];
    if (!*d || strspn(d, "0123456789") != strlen(d))
        return xasprintf("expected an integer, not '%s'", shown(s, v));
    errno = 0;
    long long w = strtoll(s, NULL, 10);
    if (errno == ERANGE || w < GW_WEIGHT_MIN || w > GW_WEIGHT_MAX)
        return xasprintf("'%s' is out of range: must be between %d and %d", shown(s, v), GW_WEIGHT_MIN,
                         GW_WEIGHT_MAX);
    if (out)
        *out = (int)w;
    return NULL;
}

char *gw_check_server_address(const char *s, struct net_addr *a)
{
    char v[72];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || s[0] == ':')
        return xasprintf("bad address '%s': expected host:port", shown(s, v));
    char *e = NULL;
    if (net_parse_addr(s, a, &e) != 0)
        return e;
    if (net_addr_port(a) == 0)
        return xasprintf("bad address '%s': port 0 cannot be connected to", shown(s, v));
    return NULL;
}

/* Characters allowed in a URL path we put in a config: visible ASCII
 * without the query/fragment delimiters. */
static bool path_ok(const char *s)
{
    if (s[0] != '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#')
            return false;
    return true;
}

char *gw_check_path(const char *s)
{
    return path_ok(s) ? NULL : xstrdup("must start with '/' and hold no spaces, control characters, '?' or '#'");
}

/* Lowercases host in place and checks it: a name, "*.suffix", or a
 * bracketed IPv6 literal; no port (the request's port is ignored when
 * matching, so one here could never matter). */
char *gw_check_host(char *host)
{
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *h = host;
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (n < 3 || h[n - 1] != ']' || strspn(h + 1, "0123456789abcdef:.") != n - 2)
            return xstrdup("expected an IPv6 literal like [::1]");
        return NULL;
    }
    if (strncmp(h, "*.", 2) == 0)
        h += 2;
    if (!*h)
        return xstrdup("expected a host name like api.example.com or *.example.com");
    if (strchr(h, ':'))
        return xstrdup("must not include a port (ports are ignored when matching)");
    if (strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != strlen(h))
        return xstrdup("expected a host name like api.example.com or *.example.com");
    return NULL;
}

char *gw_check_cidr(const char *s)
{
    struct cidr_set probe;
    cidr_set_init(&probe);
    char *why = NULL;
    int rc = cidr_set_add(&probe, s, &why);
    cidr_set_free(&probe);
    if (rc < 0 && !why)
        why = xstrdup("bad CIDR");
    return rc < 0 ? why : NULL;
}

char *gw_check_key(const char *key, const char *const *allowed)
{
    size_t n = 0;
    char valid[512] = "";
    for (; allowed[n]; n++) {
        if (strcmp(key, allowed[n]) == 0)
            return NULL;
        snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", n ? ", " : "", allowed[n]);
    }
    const char *sug = cfg_suggest(key, allowed, n);
    if (sug)
        return xasprintf("unknown key; did you mean '%s'? (valid keys: %s)", sug, valid);
    return xasprintf("unknown key (valid keys: %s)", valid);
}

char *gw_check_ttl(const char *s, uint64_t *ms)
{
    char v[72];
    uint64_t t;
    if (cfg_parse_duration(s, &t) < 0)
        return xasprintf("expected a duration like 500ms, 2s or 1m, not '%s'", shown(s, v));
    if (t < GW_TTL_MIN_MS || t > GW_TTL_MAX_MS)
        return xasprintf("'%s' is out of range: must be between 1s and 1h", shown(s, v));
    if (ms)
        *ms = t;
    return NULL;
}
