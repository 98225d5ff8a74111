/* Unit tests for core/xsite: Host against DNS rebinding, Origin and
 * Sec-Fetch-Site against cross-site requests, the JSON body rule, bearer
 * tokens, and the validators for configured names and origins. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/xsite.h"

static char *hosts[] = {"admin.example.com", "gw.internal"};
static char *origins[] = {"https://app.example.com", "http://localhost:3000"};
static const struct xsite_policy pol = {hosts, 2, origins, 2};
static const struct xsite_policy none = {NULL, 0, NULL, 0};

/* Builds a header list from "Name: value" strings, NULL-terminated. */
static size_t hdrs(struct http_header *h, const char *const *lines)
{
    size_t n = 0;
    for (; *lines; lines++, n++) {
        const char *colon = strchr(*lines, ':');
        h[n].name = *lines;
        h[n].name_len = (size_t)(colon - *lines);
        h[n].value = colon + 2;
        h[n].value_len = strlen(colon + 2);
    }
    return n;
}

static enum xsite_verdict check(const struct xsite_policy *p, size_t body, unsigned flags,
                                const char *const *lines)
{
    struct http_header h[16];
    size_t n = hdrs(h, lines);
    return xsite_check(p, h, n, body, flags);
}

#define ALL (XSITE_CHECK_ORIGIN | XSITE_NEED_JSON)
#define H(...) ((const char *const[]){__VA_ARGS__, NULL})

static bool host_ok(const struct xsite_policy *p, const char *h) { return xsite_host_ok(p, h, strlen(h)); }

Test(xsite_host, ip_literals_and_localhost)
{
    cr_assert(host_ok(&none, "127.0.0.1:9901"));
    cr_assert(host_ok(&none, "127.0.0.1"));
    cr_assert(host_ok(&none, "10.1.2.3:1234")); /* any IP: a rebinding needs a name */
    cr_assert(host_ok(&none, "[::1]:9901"));
    cr_assert(host_ok(&none, "[::1]"));
    cr_assert(host_ok(&none, "localhost:9901"));
    cr_assert(host_ok(&none, "LocalHost"));
    cr_assert(host_ok(&none, "localhost."));
    cr_assert(host_ok(&none, "app.localhost:80"));
    cr_assert(host_ok(&none, ""));
}

Test(xsite_host, names_refused_unless_listed)
{
    cr_assert_not(host_ok(&none, "evil.example"));
    cr_assert_not(host_ok(&none, "evil.example:9901"));
    cr_assert_not(host_ok(&none, "localhost.evil.example"));
    cr_assert_not(host_ok(&none, "notlocalhost"));
    cr_assert_not(host_ok(&none, "127.0.0.1.nip.io"));
    cr_assert_not(host_ok(&none, "0x7f000001"));
    cr_assert(host_ok(&pol, "admin.example.com"));
    cr_assert(host_ok(&pol, "ADMIN.example.com:443"));
    cr_assert(host_ok(&pol, "gw.internal.:9901"));
    cr_assert_not(host_ok(&pol, "x.admin.example.com"));
}

Test(xsite_host, malformed_refused)
{
    cr_assert_not(host_ok(&none, "::1"));
    cr_assert_not(host_ok(&none, "[::1"));
    cr_assert_not(host_ok(&none, "[::1]x"));
    cr_assert_not(host_ok(&none, "[evil.example]"));
    cr_assert_not(host_ok(&none, "127.0.0.1:"));
    cr_assert_not(host_ok(&none, "127.0.0.1:99999"));
    cr_assert_not(host_ok(&none, "127.0.0.1:80a"));
    cr_assert_not(host_ok(&none, ":80"));
}

static bool same(const char *o, const char *h) { return xsite_same_origin(o, strlen(o), h, strlen(h)); }

Test(xsite_origin, same_origin)
{
    cr_assert(same("http://127.0.0.1:9901", "127.0.0.1:9901"));
    cr_assert(same("http://LOCALHOST:9901", "localhost:9901"));
    cr_assert(same("http://[::1]:9901", "[::1]:9901"));
    cr_assert(same("http://admin.example.com", "admin.example.com"));
    cr_assert(same("https://admin.example.com", "admin.example.com"));
    cr_assert(same("http://admin.example.com", "admin.example.com:80"));
    cr_assert_not(same("http://127.0.0.1:8080", "127.0.0.1:9901")); /* same site, other origin */
    cr_assert_not(same("http://127.0.0.1", "127.0.0.1:9901"));
    cr_assert_not(same("http://evil.example", "127.0.0.1:9901"));
    cr_assert_not(same("null", "127.0.0.1:9901"));
    cr_assert_not(same("file://", "127.0.0.1:9901"));
    cr_assert_not(same("http://127.0.0.1:9901/x", "127.0.0.1:9901"));
    cr_assert_not(same("http://127.0.0.1:9901", ""));
}

Test(xsite_check, issue_example_refused)
{
    /* The request the issue showed: foreign Origin and Host, text/plain. */
    cr_assert_eq(check(&none, 20, ALL,
                       H("Host: evil.example", "Origin: http://evil.example", "Content-Type: text/plain")),
                 XSITE_BAD_HOST);
    cr_assert_eq(check(&none, 20, ALL,
                       H("Host: 127.0.0.1:9901", "Origin: http://evil.example", "Content-Type: text/plain")),
                 XSITE_FOREIGN_ORIGIN);
    cr_assert_eq(check(&none, 20, ALL, H("Host: 127.0.0.1:9901", "Content-Type: text/plain")), XSITE_NOT_JSON);
}

Test(xsite_check, tools_pass)
{
    /* curl, requests, SDKs and Prometheus: no Origin, no Sec-Fetch-*. */
    cr_assert_eq(check(&none, 20, ALL, H("Host: 127.0.0.1:9901", "Content-Type: application/json")), XSITE_OK);
    cr_assert_eq(check(&none, 20, ALL, H("Host: 127.0.0.1:9901", "Content-Type: Application/JSON; charset=utf-8")),
                 XSITE_OK);
    cr_assert_eq(check(&none, 0, ALL, H("Host: 127.0.0.1:9901")), XSITE_OK); /* POST /reload */
    cr_assert_eq(check(&none, 0, ALL, H("User-Agent: old")), XSITE_OK);      /* HTTP/1.0 */
    cr_assert_eq(check(&none, 5, XSITE_CHECK_ORIGIN,
                       H("Host: 127.0.0.1:9324", "Content-Type: application/x-www-form-urlencoded")),
                 XSITE_OK);
}

Test(xsite_check, content_type)
{
    cr_assert_eq(check(&none, 3, ALL, H("Host: localhost")), XSITE_NOT_JSON);
    cr_assert_eq(check(&none, 3, ALL, H("Content-Type: application/x-www-form-urlencoded")), XSITE_NOT_JSON);
    cr_assert_eq(check(&none, 0, ALL, H("Content-Type: multipart/form-data; boundary=x")), XSITE_NOT_JSON);
    cr_assert_eq(check(&none, 3, ALL, H("Content-Type: application/jsonx")), XSITE_NOT_JSON);
    cr_assert_eq(check(&none, 3, XSITE_CHECK_ORIGIN, H("Content-Type: text/plain")), XSITE_OK);
}

Test(xsite_check, origins)
{
    /* Same origin (a page served from the listener itself) is fine. */
    cr_assert_eq(check(&none, 2, ALL,
                       H("Host: localhost:9901", "Origin: http://localhost:9901", "Sec-Fetch-Site: same-origin",
                         "Content-Type: application/json")),
                 XSITE_OK);
    cr_assert_eq(check(&none, 2, ALL, H("Host: localhost:9901", "Origin: null", "Content-Type: application/json")),
                 XSITE_FOREIGN_ORIGIN);
    /* Another port of the same host: same site, foreign origin. */
    cr_assert_eq(check(&none, 2, ALL,
                       H("Host: 127.0.0.1:9901", "Origin: http://127.0.0.1:8080", "Content-Type: application/json")),
                 XSITE_FOREIGN_ORIGIN);
    /* A listed origin is allowed, cross-site fetch metadata and all. */
    cr_assert_eq(check(&pol, 2, XSITE_CHECK_ORIGIN,
                       H("Host: 127.0.0.1:9324", "Origin: https://app.example.com", "Sec-Fetch-Site: cross-site")),
                 XSITE_OK);
    cr_assert_eq(check(&pol, 2, XSITE_CHECK_ORIGIN,
                       H("Host: 127.0.0.1:9324", "Origin: https://app.example.com:444")),
                 XSITE_FOREIGN_ORIGIN);
    char *star[] = {"*"};
    struct xsite_policy any = {NULL, 0, star, 1};
    cr_assert_eq(check(&any, 2, XSITE_CHECK_ORIGIN, H("Host: 127.0.0.1:9324", "Origin: http://x.example")),
                 XSITE_OK);
    /* Origin checks only when asked (reads). */
    cr_assert_eq(check(&none, 0, 0, H("Host: 127.0.0.1:9901", "Origin: http://evil.example")), XSITE_OK);
    cr_assert_eq(check(&none, 0, 0, H("Host: evil.example")), XSITE_BAD_HOST);
}

Test(xsite_check, sec_fetch_site)
{
    cr_assert_eq(check(&none, 0, XSITE_CHECK_ORIGIN, H("Host: 127.0.0.1:9324", "Sec-Fetch-Site: cross-site")),
                 XSITE_CROSS_SITE);
    cr_assert_eq(check(&none, 0, XSITE_CHECK_ORIGIN, H("Host: 127.0.0.1:9324", "Sec-Fetch-Site: same-site")),
                 XSITE_CROSS_SITE);
    cr_assert_eq(check(&none, 0, XSITE_CHECK_ORIGIN, H("Host: 127.0.0.1:9324", "Sec-Fetch-Site: none")), XSITE_OK);
    cr_assert_eq(check(&none, 0, XSITE_CHECK_ORIGIN, H("Host: 127.0.0.1:9324", "Sec-Fetch-Site: same-origin")),
                 XSITE_OK);
}

static bool bearer(const char *token, const char *line)
{
    struct http_header h[2] = {{0}};
    size_t n = line ? hdrs(h, H(line)) : 0;
    return xsite_bearer_ok(token, h, n);
}

Test(xsite_bearer, tokens)
{
    cr_assert(bearer(NULL, NULL));
    cr_assert(bearer("s3cret", "Authorization: Bearer s3cret"));
    cr_assert(bearer("s3cret", "authorization: bearer s3cret"));
    cr_assert_not(bearer("s3cret", NULL));
    cr_assert_not(bearer("s3cret", "Authorization: Bearer s3cre"));
    cr_assert_not(bearer("s3cret", "Authorization: Bearer s3cretx"));
    cr_assert_not(bearer("s3cret", "Authorization: Bearer S3cret"));
    cr_assert_not(bearer("s3cret", "Authorization: Basic czNjcmV0"));
    cr_assert_not(bearer("s3cret", "Authorization: Bearer"));
    cr_assert_not(bearer("s3cret", "Authorization: s3cret"));
}

Test(xsite_validate, names_and_origins)
{
    cr_assert_null(xsite_name_invalid("admin.example.com"));
    cr_assert_not_null(xsite_name_invalid(""));
    cr_assert_not_null(xsite_name_invalid("admin.example.com:9901"));
    cr_assert_not_null(xsite_name_invalid("a b"));
    cr_assert_null(xsite_origin_invalid("*"));
    cr_assert_null(xsite_origin_invalid("https://app.example.com"));
    cr_assert_null(xsite_origin_invalid("http://localhost:3000"));
    cr_assert_not_null(xsite_origin_invalid("https://app.example.com/"));
    cr_assert_not_null(xsite_origin_invalid("app.example.com"));
    cr_assert_not_null(xsite_origin_invalid("ftp://x"));
    cr_assert_not_null(xsite_origin_invalid("null"));
}

Test(xsite_log, bounded_with_a_count_of_the_rest)
{
    struct xsite_loglimit l = {0};
    uint32_t dropped = 99;
    uint64_t t = 1000000;
    for (int i = 0; i < XSITE_LOG_BURST; i++) {
        cr_assert(xsite_log_allowed(&l, t + (uint64_t)i, &dropped));
        cr_assert_eq(dropped, 0);
    }
    for (int i = 0; i < 500; i++)
        cr_assert_not(xsite_log_allowed(&l, t + 100, &dropped));
    cr_assert(xsite_log_allowed(&l, t + XSITE_LOG_WINDOW_MS, &dropped));
    cr_assert_eq(dropped, 500);
    cr_assert(xsite_log_allowed(&l, t + XSITE_LOG_WINDOW_MS + 1, &dropped));
    cr_assert_eq(dropped, 0);
}
