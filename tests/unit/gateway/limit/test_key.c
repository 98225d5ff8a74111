/* Unit tests for rate-limit key building (src/gateway/limit/key.c): IPv4 and
 * IPv6 prefixes, IPv4-mapped addresses, headers, cookies, routes and
 * literals, unambiguous joining, long values, missing parts, and the key
 * spec syntax. */
#include <criterion/criterion.h>

#include "gateway/limit/key.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static struct rl_key_spec spec(const char *text)
{
    struct rl_key_spec sp;
    char *err = NULL;
    cr_assert_eq(rl_key_spec_parse(&sp, text, &err), 0, "parse '%s': %s", text, err ? err : "");
    return sp;
}

static struct rl_key_input ip(const char *s)
{
    return (struct rl_key_input){ .ip = s, .ip_len = strlen(s) };
}

static int build(const struct rl_key_spec *sp, const struct rl_key_input *in, char *out)
{
    int n = rl_key_build(sp, in, out);
    cr_assert(n == RL_KEY_ABSENT || (n >= 1 && n <= RL_KEY_MAX));
    return n;
}

static void key_is(const char *spec_text, const struct rl_key_input *in, const char *want,
                   size_t want_len)
{
    struct rl_key_spec sp = spec(spec_text);
    char out[RL_KEY_MAX];
    int n = build(&sp, in, out);
    cr_assert_eq(n, (int)want_len, "'%s': length %d, want %zu", spec_text, n, want_len);
    cr_assert(memcmp(out, want, want_len) == 0, "'%s': wrong bytes", spec_text);
}

#define KEY_IS(spec_text, in, lit) key_is(spec_text, in, lit, sizeof(lit) - 1)

static bool same_key(const char *spec_text, const struct rl_key_input *a,
                     const struct rl_key_input *b)
{
    struct rl_key_spec sp = spec(spec_text);
    char ka[RL_KEY_MAX], kb[RL_KEY_MAX];
    int na = build(&sp, a, ka), nb = build(&sp, b, kb);
    cr_assert(na > 0 && nb > 0, "'%s': a key is absent", spec_text);
    return na == nb && memcmp(ka, kb, (size_t)na) == 0;
}

static bool same_ip(const char *spec_text, const char *a, const char *b)
{
    struct rl_key_input ia = ip(a), ib = ip(b);
    return same_key(spec_text, &ia, &ib);
}

/* ---- addresses ------------------------------------------------------ */

Test(rl_key, ipv4_exact_bytes)
{
    struct rl_key_input in = ip("10.1.2.3");
    KEY_IS("ip", &in, "i4\x20\x0a\x01\x02\x03");
    KEY_IS("ip/24", &in, "i4\x18\x0a\x01\x02");
    KEY_IS("ip/20", &in, "i4\x14\x0a\x01\x00");
    KEY_IS("ip/0", &in, "i4\x00");
    in = ip(" 10.1.2.3\t"); /* surrounding whitespace is ignored */
    KEY_IS("ip", &in, "i4\x20\x0a\x01\x02\x03");
}

/* A spec filled in by hand with prefixes past the address size keeps the
 * whole address. */
Test(rl_key, oversized_prefixes_are_clamped)
{
    struct rl_key_spec sp = { .nparts = 1, .parts = { { .kind = RL_KEY_IP, .v4_prefix = 200,
                                                        .v6_prefix = 255 } } };
    struct rl_key_input in = ip("10.1.2.3");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &in, out), 7);
    cr_assert(memcmp(out, "i4\x20\x0a\x01\x02\x03", 7) == 0);
    in = ip("2001:db8::1");
    cr_assert_eq(build(&sp, &in, out), 19);
    cr_assert_eq((unsigned char)out[2], 128);
}

Test(rl_key, ipv4_prefixes)
{
    cr_assert(same_ip("ip/24", "10.1.2.3", "10.1.2.200"));
    cr_assert_not(same_ip("ip/24", "10.1.2.3", "10.1.3.3"));
    cr_assert_not(same_ip("ip", "10.1.2.3", "10.1.2.4"));
    cr_assert(same_ip("ip/20", "10.1.16.1", "10.1.31.255"));
    cr_assert_not(same_ip("ip/20", "10.1.16.1", "10.1.32.0"));
    cr_assert(same_ip("ip/0", "10.1.2.3", "192.168.7.7"));
    cr_assert(same_ip("ip/9", "10.127.0.1", "10.0.0.1"));
    cr_assert_not(same_ip("ip/9", "10.128.0.1", "10.0.0.1"));
}

Test(rl_key, ipv6_prefixes)
{
    const char *s64 = "ip/32/64";
    cr_assert(same_ip(s64, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9"));
    cr_assert_not(same_ip(s64, "2001:db8:1:2::1", "2001:db8:1:3::1"));
    cr_assert(same_ip("ip/32/56", "2001:db8:0:ab00::", "2001:db8:0:abff::1"));
    cr_assert_not(same_ip("ip/32/60", "2001:db8:0:ab00::", "2001:db8:0:abff::1"));
    cr_assert(same_ip("ip/32/60", "2001:db8:0:ab0f::", "2001:db8:0:ab00::"));
    cr_assert_not(same_ip("ip", "2001:db8::1", "2001:db8::2"));
    cr_assert(same_ip("ip/32/0", "2001:db8::1", "fe80::1"));
    /* IPv4 keeps its own prefix under a v4/v6 spec; families never mix. */
    cr_assert_not(same_ip(s64, "10.1.2.3", "10.1.2.4"));
    cr_assert_not(same_ip("ip/0/0", "10.1.2.3", "2001:db8::1"));
    struct rl_key_input in = ip("2001:db8:1:2:3:4:5:6");
    KEY_IS("ip/32/64", &in, "i6\x40\x20\x01\x0d\xb8\x00\x01\x00\x02");
    KEY_IS("ip/32/52", &in, "i6\x34\x20\x01\x0d\xb8\x00\x01\x00");
    KEY_IS("ip", &in, "i6\x80\x20\x01\x0d\xb8\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05\x00\x06");
}

Test(rl_key, ipv4_mapped_counts_as_ipv4)
{
    cr_assert(same_ip("ip/24/64", "::ffff:10.1.2.3", "10.1.2.77"));
    struct rl_key_input in = ip("::ffff:10.1.2.3");
    KEY_IS("ip", &in, "i4\x20\x0a\x01\x02\x03");
}

Test(rl_key, socket_address_matches_text)
{
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(5555) };
    inet_pton(AF_INET, "192.0.2.9", &a4.sin_addr);
    struct rl_key_input s4 = { .peer = (struct sockaddr *)&a4 }, t4 = ip("192.0.2.9");
    cr_assert(same_key("ip", &s4, &t4));

    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(5555) };
    inet_pton(AF_INET6, "2001:db8::42", &a6.sin6_addr);
    struct rl_key_input s6 = { .peer = (struct sockaddr *)&a6 }, t6 = ip("2001:db8::42");
    cr_assert(same_key("ip/32/48", &s6, &t6));

    inet_pton(AF_INET6, "::ffff:192.0.2.9", &a6.sin6_addr);
    cr_assert(same_key("ip", &s6, &t4)); /* a dual-stack socket's IPv4 client */

    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct rl_key_input su = { .peer = (struct sockaddr *)&un };
    struct rl_key_spec sp = spec("ip");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &su, out), RL_KEY_ABSENT);
}

Test(rl_key, unusable_address)
{
    struct rl_key_spec sp = spec("ip");
    char out[RL_KEY_MAX];
    const char *bad[] = { "", "10.1.2", "10.1.2.256", "2001:db8::g", "example.com",
                          "[2001:db8::1]", "10.1.2.3:80" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct rl_key_input in = ip(bad[i]);
        cr_assert_eq(build(&sp, &in, out), RL_KEY_ABSENT, "'%s' gave a key", bad[i]);
    }
    struct rl_key_input none = { 0 };
    cr_assert_eq(build(&sp, &none, out), RL_KEY_ABSENT);
    KEY_IS("ip?", &none, "i-");
}

/* ---- headers, cookies, routes, literals ----------------------------- */

#define H(n, v) { .name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1 }

Test(rl_key, header_values)
{
    struct http_header hs[] = { H("Host", "x"), H("x-api-key", "k1"), H("X-API-KEY", "k2"),
                                H("X-Empty", "") };
    struct rl_key_input in = { .headers = hs, .nheaders = ARRAY_SIZE(hs) };
    KEY_IS("header:X-Api-Key", &in, "h2:k1"); /* case-insensitive, the first one */
    KEY_IS("header:X-Empty", &in, "h0:");
    KEY_IS("header:X-Missing?", &in, "h-"); /* absent differs from empty */
    struct rl_key_spec sp = spec("header:X-Missing");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &in, out), RL_KEY_ABSENT);
    sp = spec("header:X-Api-Ke");
    cr_assert_eq(build(&sp, &in, out), RL_KEY_ABSENT); /* no prefix matching */
}

Test(rl_key, cookie_values)
{
    struct http_header hs[] = { H("Accept", "*/*"), H("Cookie", "a=1; Session=UP; sessionx=2"),
                                H("cookie", "b=2;  session = xyz ; c=3"),
                                H("Cookie", "session=later") };
    struct rl_key_input in = { .headers = hs, .nheaders = ARRAY_SIZE(hs) };
    KEY_IS("cookie:session", &in, "c3:xyz"); /* exact, case-sensitive name; trimmed */
    KEY_IS("cookie:Session", &in, "c2:UP");
    KEY_IS("cookie:c", &in, "c1:3");

    struct http_header q[] = { H("Cookie", "junk; sid=\"quoted v\"; e="),
                               H("Cookie", "=nameless; sid2=") };
    struct rl_key_input iq = { .headers = q, .nheaders = ARRAY_SIZE(q) };
    KEY_IS("cookie:sid", &iq, "c8:quoted v");
    KEY_IS("cookie:e", &iq, "c0:");
    KEY_IS("cookie:sid2", &iq, "c0:");
    KEY_IS("cookie:junk?", &iq, "c-"); /* a pair without '=' is no cookie */
    struct rl_key_spec sp = spec("cookie:nope");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &iq, out), RL_KEY_ABSENT);
}

Test(rl_key, route_and_literal)
{
    struct rl_key_input in = { .route = "api", .route_len = 3 };
    KEY_IS("route", &in, "r3:api");
    KEY_IS("literal:global", &in, "l6:global");
    KEY_IS("literal:global+route", &in, "l6:globalr3:api");
    struct rl_key_input none = { 0 };
    struct rl_key_spec sp = spec("route");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &none, out), RL_KEY_ABSENT);
    KEY_IS("route?", &none, "r-");
}

Test(rl_key, combination_exact_bytes)
{
    struct http_header hs[] = { H("X-Api-Key", "k1") };
    struct rl_key_input in = { .ip = "10.1.2.3", .ip_len = 8, .headers = hs, .nheaders = 1,
                               .route = "shop", .route_len = 4 };
    KEY_IS("header:X-Api-Key+ip/24+route", &in, "h2:k1i4\x18\x0a\x01\x02r4:shop");
    /* One required part missing: no key at all. */
    in.route = NULL;
    struct rl_key_spec sp = spec("header:X-Api-Key+ip/24+route");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &in, out), RL_KEY_ABSENT);
}

/* Values that would collide under naive joining stay apart. */
Test(rl_key, joining_is_unambiguous)
{
    struct http_header a[] = { H("A", "ab"), H("B", "c") };
    struct http_header b[] = { H("A", "a"), H("B", "bc") };
    struct http_header c[] = { H("A", "a|b"), H("B", "") };
    struct http_header d[] = { H("A", "a"), H("B", "b|") };
    struct http_header e[] = { H("A", "1:xh1:y") };
    struct http_header f[] = { H("A", "1:x"), H("B", "y") };
    struct rl_key_input ia = { .headers = a, .nheaders = 2 }, ib = { .headers = b, .nheaders = 2 };
    struct rl_key_input ic = { .headers = c, .nheaders = 2 }, id = { .headers = d, .nheaders = 2 };
    struct rl_key_input ie = { .headers = e, .nheaders = 1 }, jf = { .headers = f, .nheaders = 2 };
    cr_assert_not(same_key("header:A+header:B", &ia, &ib));
    cr_assert_not(same_key("header:A+header:B", &ic, &id));
    cr_assert_not(same_key("header:A+header:B?", &ie, &jf));
    /* The same value from a header and from a cookie: different parts. */
    struct http_header g[] = { H("Cookie", "v=1"), H("V", "1") };
    struct rl_key_input ig = { .headers = g, .nheaders = 2 };
    struct rl_key_spec s1 = spec("header:V"), s2 = spec("cookie:v");
    char k1[RL_KEY_MAX], k2[RL_KEY_MAX];
    int n1 = build(&s1, &ig, k1), n2 = build(&s2, &ig, k2);
    cr_assert(n1 != n2 || memcmp(k1, k2, (size_t)n1) != 0);
}

Test(rl_key, long_values_are_digested)
{
    char v1[200], v2[200], v120[120];
    memset(v1, 'x', sizeof v1);
    memcpy(v2, v1, sizeof v2);
    v2[199] = 'y';
    memset(v120, 'z', sizeof v120);
    struct http_header h1[] = { { "K", 1, v1, sizeof v1 } };
    struct http_header h1b[] = { { "K", 1, v1, sizeof v1 } };
    struct http_header h2[] = { { "K", 1, v2, sizeof v2 } };
    struct http_header h3[] = { { "K", 1, v120, sizeof v120 } };
    struct rl_key_input i1 = { .headers = h1, .nheaders = 1 };
    struct rl_key_input i1b = { .headers = h1b, .nheaders = 1 };
    struct rl_key_input i2 = { .headers = h2, .nheaders = 1 };
    struct rl_key_input i3 = { .headers = h3, .nheaders = 1 };
    struct rl_key_spec sp = spec("header:K");
    char out[RL_KEY_MAX];
    cr_assert_eq(build(&sp, &i1, out), 18);
    cr_assert(out[0] == 'H' && out[1] == '#');
    cr_assert(same_key("header:K", &i1, &i1b));
    cr_assert_not(same_key("header:K", &i1, &i2));
    cr_assert_eq(build(&sp, &i3, out), 5 + 120); /* at the limit: kept as is */
    cr_assert(memcmp(out, "h120:zzz", 8) == 0);
}

Test(rl_key, longest_key_fits)
{
    char v[RL_KEY_VALUE_MAX];
    memset(v, 'v', sizeof v);
    struct http_header hs[RL_KEY_MAX_PARTS];
    struct rl_key_spec sp = { 0 };
    char names[RL_KEY_MAX_PARTS][8];
    for (int i = 0; i < RL_KEY_MAX_PARTS; i++) {
        snprintf(names[i], sizeof names[i], "H%d", i);
        hs[i] = (struct http_header){ names[i], strlen(names[i]), v, sizeof v };
        cr_assert_eq(rl_key_spec_add(&sp, RL_KEY_HEADER, names[i], 0, 0, false), 0);
    }
    cr_assert_eq(rl_key_spec_add(&sp, RL_KEY_ROUTE, NULL, 0, 0, false), -1); /* full */
    struct rl_key_input in = { .headers = hs, .nheaders = RL_KEY_MAX_PARTS };
    char out[RL_KEY_MAX];
    int n = build(&sp, &in, out);
    cr_assert_eq(n, RL_KEY_MAX_PARTS * (1 + 3 + 1 + RL_KEY_VALUE_MAX));
    cr_assert_leq(n, RL_KEY_MAX);
}

/* ---- spec syntax ---------------------------------------------------- */

Test(rl_key_spec, parses_every_part)
{
    struct rl_key_spec sp = spec(" ip/24/64 + header:X-Api-Key? +cookie:sid+route+literal:v1 ");
    cr_assert_eq(sp.nparts, 5);
    cr_assert_eq(sp.parts[0].kind, RL_KEY_IP);
    cr_assert_eq(sp.parts[0].v4_prefix, 24);
    cr_assert_eq(sp.parts[0].v6_prefix, 64);
    cr_assert_not(sp.parts[0].optional);
    cr_assert_eq(sp.parts[1].kind, RL_KEY_HEADER);
    cr_assert_str_eq(sp.parts[1].name, "X-Api-Key");
    cr_assert_eq(sp.parts[1].name_len, 9);
    cr_assert(sp.parts[1].optional);
    cr_assert_eq(sp.parts[2].kind, RL_KEY_COOKIE);
    cr_assert_str_eq(sp.parts[2].name, "sid");
    cr_assert_eq(sp.parts[3].kind, RL_KEY_ROUTE);
    cr_assert_eq(sp.parts[4].kind, RL_KEY_LITERAL);
    cr_assert_str_eq(sp.parts[4].name, "v1");
    sp = spec("ip");
    cr_assert_eq(sp.parts[0].v4_prefix, 32);
    cr_assert_eq(sp.parts[0].v6_prefix, 128);
    sp = spec("ip/16");
    cr_assert_eq(sp.parts[0].v4_prefix, 16);
    cr_assert_eq(sp.parts[0].v6_prefix, 128);
    sp = spec("ip/32/0?");
    cr_assert_eq(sp.parts[0].v6_prefix, 0);
    cr_assert(sp.parts[0].optional);
}

static void bad_spec(const char *text, const char *needle)
{
    struct rl_key_spec sp;
    char *err = NULL;
    cr_assert_eq(rl_key_spec_parse(&sp, text, &err), -1, "'%s' parsed", text);
    cr_assert_not_null(err);
    cr_assert(strstr(err, needle), "'%s': error '%s' lacks '%s'", text, err, needle);
    free(err);
}

Test(rl_key_spec, rejects_bad_text)
{
    bad_spec("", "empty");
    bad_spec("ip+", "empty");
    bad_spec("ip/33", "0..32");
    bad_spec("ip/24/129", "0..128");
    bad_spec("ip/x", "0..32");
    bad_spec("ip/24/", "0..128");
    bad_spec("ip/24/64/1", "0..128");
    bad_spec("ip:foo", "expected");
    bad_spec("header", "missing name");
    bad_spec("header:", "missing name");
    bad_spec("header:bad name", "token");
    bad_spec("cookie:a;b", "token");
    bad_spec("literal:x?", "never missing");
    bad_spec("literal:caf\xc3\xa9", "printable");
    bad_spec("user", "expected");
    bad_spec("header:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             "63 bytes");
    bad_spec("ip+ip+ip+ip+ip+ip+ip+ip+ip", "more than 8");
}
