/* Configuration values (see config.h): the syntax of durations, sizes and
 * booleans, the typed getters that read a scalar node into a C value with
 * a message that names the file, line and key, string lists, and the
 * access settings of an admin listener. The YAML tree itself is built in
 * config.c. */
#include "core/config.h"
#include "core/config_int.h"

#include "core/xsite.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- value syntax ----------------------------------------------------- */

int cfg_parse_duration(const char *s, uint64_t *ms)
{
    if (!*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    static const struct { const char *unit; uint64_t mult; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    uint64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        uint64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
                return -1;
            p++;
        }
        size_t u;
        for (u = 0; u < ARRAY_SIZE(units); u++) {
            size_t ul = strlen(units[u].unit);
            if (strncmp(p, units[u].unit, ul) == 0 && !isalpha((unsigned char)p[ul]))
                break;
        }
        if (u == ARRAY_SIZE(units))
            return -1;
        if (__builtin_mul_overflow(v, units[u].mult, &v) || __builtin_add_overflow(total, v, &total))
            return -1;
        p += strlen(units[u].unit);
    }
    *ms = total;
    return 0;
}

int cfg_parse_size(const char *s, uint64_t *bytes)
{
    const char *p = s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p)) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return -1;
        p++;
    }
    unsigned shift = 0;
    switch (tolower((unsigned char)*p)) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: break;
    }
    if (shift) {
        p++;
        if (tolower((unsigned char)*p) == 'i' && tolower((unsigned char)p[1]) == 'b')
            p += 2;
        else if (tolower((unsigned char)*p) == 'b')
            p++;
    } else if (tolower((unsigned char)*p) == 'b') {
        p++;
    }
    if (*p)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *bytes = v << shift;
    return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

void cfg_format_duration(uint64_t ms, char *out, size_t outlen)
{
    static const struct { const char *unit; uint64_t mult; } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000},
    };
    if (ms == 0) {
        snprintf(out, outlen, "0");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (ms % units[i].mult == 0) {
            snprintf(out, outlen, "%llu%s", (unsigned long long)(ms / units[i].mult), units[i].unit);
            return;
        }
    }
    snprintf(out, outlen, "%llums", (unsigned long long)ms);
}

void cfg_format_size(uint64_t bytes, char *out, size_t outlen)
{
    static const char units[] = "tgmk";
    for (int i = 0; i < 4; i++) {
        unsigned shift = (unsigned)(4 - i) * 10;
        if (bytes && (bytes & ((1ull << shift) - 1)) == 0) {
            snprintf(out, outlen, "%llu%c", (unsigned long long)(bytes >> shift), units[i]);
            return;
        }
    }
    snprintf(out, outlen, "%llu", (unsigned long long)bytes);
}

/* ---- typed getters ---------------------------------------------------- */

/* A printable, bounded rendering of a scalar for messages. */
static const char *show(const struct cfg_node *n, char *out, size_t cap)
{
    size_t j = 0, max = cap - 4;
    for (size_t i = 0; i < n->len && j < max; i++) {
        unsigned char c = (unsigned char)n->str[i];
        out[j++] = (c >= 0x20 && c != 0x7f) ? (char)c : '?';
    }
    if (n->len > max)
        memcpy(out + j, "...", 3), j += 3;
    out[j] = '\0';
    return out;
}

/* Common checks: a non-null scalar without NUL bytes. what names the
 * expected type in the message. */
static int need_scalar(const struct cfg_node *n, const char *what, char **err)
{
    if (n->type != CFG_SCALAR || cfg_is_null(n))
        return cfg__fail(err, n, "expected %s, got %s", what, cfg_kind(n));
    if (strlen(n->str) != n->len)
        return cfg__fail(err, n, "expected %s, got a value with a NUL byte", what);
    return 0;
}

static int range_error(const struct cfg_node *n, const char *lo, const char *hi, bool unbounded, char **err)
{
    char v[80];
    if (unbounded)
        return cfg__fail(err, n, "'%s' is out of range: must be at least %s", show(n, v, sizeof v), lo);
    return cfg__fail(err, n, "'%s' is out of range: must be between %s and %s", show(n, v, sizeof v), lo, hi);
}

/* The syntax of a value with units: a duration or a size. */
struct unit_syntax {
    const char *what;                                    /* the expected value, for messages */
    int (*parse)(const char *s, uint64_t *v);            /* cfg_parse_duration, cfg_parse_size */
    void (*format)(uint64_t v, char *out, size_t len);   /* writes the bounds in range messages */
    const char *bare_hint;                               /* added when a bare number does not parse */
};

/* The getter of cfg_duration and cfg_size, given the syntax u. */
static int unit_value(const struct cfg_node *n, const struct unit_syntax *u, uint64_t min, uint64_t max,
                      uint64_t *out, char **err)
{
    if (!n)
        return 0;
    if (need_scalar(n, u->what, err) < 0)
        return -1;
    uint64_t v;
    char shown[80];
    if (u->parse(n->str, &v) < 0) {
        bool bare = n->len && strspn(n->str, "0123456789") == n->len;
        return cfg__fail(err, n, "expected %s, not '%s'%s", u->what, show(n, shown, sizeof shown),
                         bare ? u->bare_hint : "");
    }
    if (v < min || v > max) {
        char lo[32], hi[32];
        u->format(min, lo, sizeof lo);
        u->format(max, hi, sizeof hi);
        return range_error(n, lo, hi, max == UINT64_MAX, err);
    }
    *out = v;
    return 0;
}

int cfg_duration(const struct cfg_node *n, uint64_t min_ms, uint64_t max_ms, uint64_t *out, char **err)
{
    /* A bare number is refused rather than guessed (see config.h). */
    static const struct unit_syntax dur = {"a duration like 500ms, 2s or 1m", cfg_parse_duration,
                                           cfg_format_duration, " (a unit is required)"};
    return unit_value(n, &dur, min_ms, max_ms, out, err);
}

int cfg_size(const struct cfg_node *n, uint64_t min, uint64_t max, uint64_t *out, char **err)
{
    static const struct unit_syntax size = {"a size like 512, 16k, 1m or 1g", cfg_parse_size, cfg_format_size,
                                            ""};
    return unit_value(n, &size, min, max, out, err);
}

int cfg_int(const struct cfg_node *n, int64_t min, int64_t max, int64_t *out, char **err)
{
    static const char what[] = "an integer";
    if (!n)
        return 0;
    if (need_scalar(n, what, err) < 0)
        return -1;
    const char *s = n->str;
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    char shown[80];
    if (!*d || strspn(d, "0123456789") != strlen(d))
        return cfg__fail(err, n, "expected %s, not '%s'", what, show(n, shown, sizeof shown));
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%lld", (long long)min);
        snprintf(hi, sizeof hi, "%lld", (long long)max);
        return range_error(n, lo, hi, max == INT64_MAX, err);
    }
    *out = v;
    return 0;
}

int cfg_double(const struct cfg_node *n, double min, double max, double *out, char **err)
{
    static const char what[] = "a number";
    if (!n)
        return 0;
    if (need_scalar(n, what, err) < 0)
        return -1;
    const char *s = n->str;
    char shown[80], *end;
    /* Decimal notation only: strtod would also take "inf", "nan" and hex. */
    if (strspn(s, "0123456789.eE+-") != n->len)
        return cfg__fail(err, n, "expected %s, not '%s'", what, show(n, shown, sizeof shown));
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return cfg__fail(err, n, "expected %s, not '%s'", what, show(n, shown, sizeof shown));
    if (errno == ERANGE || !isfinite(v) || v < min || v > max) {
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%g", min);
        snprintf(hi, sizeof hi, "%g", max);
        return range_error(n, lo, hi, false, err);
    }
    *out = v;
    return 0;
}

int cfg_bool(const struct cfg_node *n, bool *out, char **err)
{
    static const char what[] = "true or false";
    if (!n)
        return 0;
    if (need_scalar(n, what, err) < 0)
        return -1;
    char shown[80];
    if (cfg_parse_bool(n->str, out) < 0)
        return cfg__fail(err, n, "expected %s (or yes/no, on/off), not '%s'", what, show(n, shown, sizeof shown));
    return 0;
}

int cfg_string(const struct cfg_node *n, char **out, char **err)
{
    if (!n)
        return 0;
    if (need_scalar(n, "a string", err) < 0)
        return -1;
    free(*out);
    *out = xstrndup(n->str, n->len);
    return 0;
}

int cfg_enum(const struct cfg_node *n, const char *const *names, int *out, char **err)
{
    if (!n)
        return 0;
    char valid[512];
    cfg__join_names(names, valid, sizeof valid);
    if (n->type != CFG_SCALAR || cfg_is_null(n))
        return cfg__fail(err, n, "expected one of: %s; got %s", valid, cfg_kind(n));
    for (int i = 0; names[i]; i++) {
        if (strlen(names[i]) == n->len && strcasecmp(n->str, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char shown[80];
    const char *s = cfg_suggest(n->str, names, cfg__list_len(names));
    if (s)
        return cfg__fail(err, n, "unknown value '%s'; did you mean '%s'? (expected one of: %s)",
                         show(n, shown, sizeof shown), s, valid);
    return cfg__fail(err, n, "unknown value '%s' (expected one of: %s)", show(n, shown, sizeof shown), valid);
}

/* ---- lists and control-plane access ---- */

void cfg_strings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int cfg_string_list(const struct cfg_node *n, const char *(*check)(const char *), char ***out, size_t *nout,
                    char **err)
{
    if (!n)
        return 0;
    if (n->type != CFG_SEQ)
        return cfg__fail(err, n, "expected a list of strings, got %s", cfg_kind(n));
    char **v = n->n ? xcalloc(n->n, sizeof *v) : NULL;
    size_t k = 0;
    for (; k < n->n; k++) {
        const struct cfg_node *it = n->kids[k];
        if (need_scalar(it, "a string", err) < 0)
            goto fail;
        const char *why = check ? check(it->str) : NULL;
        if (why) {
            cfg__fail(err, it, "'%.80s': %s", it->str, why);
            goto fail;
        }
        for (size_t j = 0; j < k; j++) {
            if (strcasecmp(v[j], it->str) == 0) {
                cfg__fail(err, it, "'%.80s' is listed twice", it->str);
                goto fail;
            }
        }
        v[k] = xstrdup(it->str);
    }
    cfg_strings_free(*out, *nout);
    *out = v;
    *nout = k;
    return 0;
fail:
    cfg_strings_free(v, k);
    return -1;
}

#define CFG_TOKEN_MIN 16
#define CFG_TOKEN_MAX 4096

/* Reads the token file named by node n into *out. */
static int read_token(const struct cfg_node *n, const char *path, char **out, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cfg__fail(err, n, "cannot read token file '%s': %s", path, strerror(errno));
    char buf[CFG_TOKEN_MAX + 64];
    size_t len = fread(buf, 1, sizeof buf, f);
    bool more = len == sizeof buf && fgetc(f) != EOF;
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr)
        return cfg__fail(err, n, "cannot read token file '%s'", path);
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)buf[a]))
        a++;
    while (b > a && isspace((unsigned char)buf[b - 1]))
        b--;
    if (more || b - a > CFG_TOKEN_MAX)
        return cfg__fail(err, n, "token file '%s' is over %d bytes", path, CFG_TOKEN_MAX);
    if (b - a < CFG_TOKEN_MIN)
        return cfg__fail(err, n, "token file '%s' must hold a token of at least %d characters (e.g. from "
                                 "`openssl rand -hex 32`)", path, CFG_TOKEN_MIN);
    for (size_t i = a; i < b; i++)
        if (buf[i] <= ' ' || buf[i] > '~')
            return cfg__fail(err, n, "token file '%s' must hold one token of visible ASCII characters, "
                                     "no spaces", path);
    *out = xstrndup(buf + a, b - a);
    explicit_bzero(buf, sizeof buf);
    return 0;
}

static const char *const access_keys[] = {"listen", "token_file", "allowed_hosts", NULL};

int cfg_access(const struct cfg_node *n, const struct cfg_node **listen, struct cfg_access *acc, char **err)
{
    *listen = n;
    if (!n || n->type == CFG_SCALAR)
        return 0;
    if (n->type != CFG_MAP)
        return cfg__fail(err, n, "expected an address or a mapping with listen, token_file, allowed_hosts; got %s",
                         cfg_kind(n));
    if (cfg_check_keys(n, access_keys, err) < 0)
        return -1;
    *listen = cfg_get(n, "listen");
    const struct cfg_node *tf = cfg_get(n, "token_file");
    if (cfg_string(tf, &acc->token_file, err) < 0 ||
        cfg_string_list(cfg_get(n, "allowed_hosts"), xsite_name_invalid, &acc->hosts, &acc->nhosts, err) < 0)
        return -1;
    if (acc->token_file) {
        if (!*acc->token_file)
            return cfg__fail(err, tf, "expected a file path");
        if (read_token(tf, acc->token_file, &acc->token, err) < 0)
            return -1;
    }
    return 0;
}

void cfg_access_free(struct cfg_access *acc)
{
    cfg_strings_free(acc->hosts, acc->nhosts);
    if (acc->token) {
        explicit_bzero(acc->token, strlen(acc->token));
        free(acc->token);
    }
    free(acc->token_file);
    memset(acc, 0, sizeof *acc);
}
