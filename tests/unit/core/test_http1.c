/* Tests for core/http1: request and response heads of every form, each
 * smuggling vector the parser refuses (with its exact error code), limits,
 * pipelining and body framing rules (the chunked decoder is tested in
 * test_http1_chunked.c, the header helpers in test_http1_util.c). Every
 * head is also parsed at every prefix length from an exact-size heap copy
 * (so ASan catches any read past the bytes given): results must be
 * HTTP_INCOMPLETE until the final result appears, and that result from
 * then on. */
#include "test_http1.h"

/* ------------------------------------------------------------------ */
/* Valid requests */

Test(http1_request, simple_get)
{
    struct http_request r;
    struct http_header h[MAXH];
    static const char s[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                            "User-Agent: t/1\r\nAccept: */*\r\n\r\n";
    req_ok(L(s), &r, h);
    VIEW_EQ(r.method, r.method_len, "GET");
    cr_assert_eq(r.m, HTTP_M_GET);
    VIEW_EQ(r.target, r.target_len, "/index.html?q=1");
    cr_assert_eq(r.minor, 1);
    cr_assert_eq(r.nheaders, 3);
    VIEW_EQ(h[0].name, h[0].name_len, "Host");
    VIEW_EQ(h[0].value, h[0].value_len, "example.com");
    VIEW_EQ(h[1].name, h[1].name_len, "User-Agent");
    VIEW_EQ(h[1].value, h[1].value_len, "t/1");
    VIEW_EQ(h[2].name, h[2].name_len, "Accept");
    VIEW_EQ(h[2].value, h[2].value_len, "*/*");
    VIEW_EQ(r.host, r.host_len, "example.com");
    cr_assert_eq(r.content_length, -1);
    cr_assert_eq(r.flags, 0);
    cr_assert_eq(http_request_body(&r), HTTP_BODY_NONE);
}

Test(http1_request, methods)
{
    static const struct {
        const char *name;
        enum http_method m;
    } cases[] = {
        {"GET", HTTP_M_GET},         {"HEAD", HTTP_M_HEAD},       {"POST", HTTP_M_POST},
        {"PUT", HTTP_M_PUT},         {"DELETE", HTTP_M_DELETE},   {"CONNECT", HTTP_M_CONNECT},
        {"OPTIONS", HTTP_M_OPTIONS}, {"TRACE", HTTP_M_TRACE},     {"PATCH", HTTP_M_PATCH},
        {"PROPFIND", HTTP_M_OTHER},  {"get", HTTP_M_OTHER},       {"GETS", HTTP_M_OTHER},
        {"M-SEARCH", HTTP_M_OTHER},  {"X!#$%&'*+.^_`|~", HTTP_M_OTHER},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char s[256];
        int n = snprintf(s, sizeof s, "%s / HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].name);
        struct http_request r;
        struct http_header h[MAXH];
        req_ok(s, (size_t)n, &r, h);
        cr_expect_eq(r.m, cases[i].m, "%s", cases[i].name);
        cr_expect(view_eq(r.method, r.method_len, cases[i].name), "%s", cases[i].name);
    }
}

Test(http1_request, target_forms)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), &r, h);
    VIEW_EQ(r.target, r.target_len, "http://example.com:8080/a?b");
    VIEW_EQ(r.host, r.host_len, "example.com:8080");
    req_ok(L("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), &r, h);
    cr_assert_eq(r.m, HTTP_M_CONNECT);
    VIEW_EQ(r.target, r.target_len, "example.com:443");
    req_ok(L("OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), &r, h);
    VIEW_EQ(r.target, r.target_len, "*");
    VIEW_EQ(r.host, r.host_len, "[::1]:80");
    /* Every VCHAR is accepted in the target; the router decides. */
    req_ok(L("GET /a\"<>{}|\\^`%20~ HTTP/1.1\r\nHost: a\r\n\r\n"), &r, h);
    VIEW_EQ(r.target, r.target_len, "/a\"<>{}|\\^`%20~");
}

Test(http1_request, http10_without_host)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET / HTTP/1.0\r\n\r\n"), &r, h);
    cr_assert_eq(r.minor, 0);
    cr_assert_eq(r.nheaders, 0);
    cr_assert_null(r.host);
    req_ok(L("GET / HTTP/1.0\r\nHost: a.b\r\n\r\n"), &r, h);
    VIEW_EQ(r.host, r.host_len, "a.b");
}

Test(http1_request, empty_host_is_allowed)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET / HTTP/1.1\r\nHost:\r\n\r\n"), &r, h);
    cr_assert_not_null(r.host);
    cr_assert_eq(r.host_len, 0);
}

Test(http1_request, content_length)
{
    struct http_request r;
    struct http_header h[MAXH];
    static const char s[] = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    req_ok(L(s), &r, h);
    cr_assert_eq(r.m, HTTP_M_POST);
    cr_assert_eq(r.content_length, 11);
    cr_assert_eq(r.flags, HTTP_F_HAS_CL);
    cr_assert_eq(http_request_body(&r), HTTP_BODY_LENGTH);

    req_ok(L("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n"), &r, h);
    cr_assert_eq(r.content_length, 0);
    cr_assert_eq(r.flags, HTTP_F_HAS_CL);
    cr_assert_eq(http_request_body(&r), HTTP_BODY_NONE);

    req_ok(L("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), &r, h);
    cr_assert_eq(r.content_length, INT64_MAX);
    req_ok(L("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:  007 \t\r\n\r\n"), &r, h);
    cr_assert_eq(r.content_length, 7);
}

Test(http1_request, chunked)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CHUNKED | HTTP_F_HAS_TE);
    cr_assert_eq(r.content_length, -1);
    cr_assert_eq(http_request_body(&r), HTTP_BODY_CHUNKED);
    req_ok(L("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: \t ChUnKeD \t\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CHUNKED | HTTP_F_HAS_TE);
}

Test(http1_request, leading_empty_lines_are_skipped)
{
    struct http_request r;
    struct http_header h[MAXH];
    static const char s[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    req_ok(L(s), &r, h);
    VIEW_EQ(r.method, r.method_len, "GET");
    cr_assert_eq(r.method, s + 4);
}

Test(http1_request, field_values)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ws: \t \r\nX-Trim:  a b\tc  \r\n"
             "X-Obs: caf\xc3\xa9\xff\r\nX-Tab:\ta\tb\r\nX-Punct: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n"
             "!#$%&'*+-.^_`|~09azAZ: tchar name\r\n\r\n"),
           &r, h);
    cr_assert_eq(r.nheaders, 8);
    VIEW_EQ(h[1].value, h[1].value_len, "");
    VIEW_EQ(h[2].value, h[2].value_len, "");
    VIEW_EQ(h[3].value, h[3].value_len, "a b\tc");
    VIEW_EQ(h[4].value, h[4].value_len, "caf\xc3\xa9\xff");
    VIEW_EQ(h[5].value, h[5].value_len, "a\tb");
    VIEW_EQ(h[6].value, h[6].value_len, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    VIEW_EQ(h[7].name, h[7].name_len, "!#$%&'*+-.^_`|~09azAZ");
}

Test(http1_request, connection_tokens)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_CLOSE);
    req_ok(L("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_KEEPALIVE);
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_UPGRADE | HTTP_F_CONN_OTHER);
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nconnection: ,, keep-alive ,\r\nCONNECTION: X-Foo,CLOSE\r\n\r\n"),
           &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_KEEPALIVE | HTTP_F_CONN_OTHER | HTTP_F_CONN_CLOSE);
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nConnection:\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, 0);
    /* Near misses are other tokens. */
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, keep-alive2\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_OTHER);
}

Test(http1_request, expect_continue)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_EXPECT_CONTINUE | HTTP_F_HAS_CL);
    /* RFC 9110 10.1.1: ignored from an HTTP/1.0 client. */
    req_ok(L("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_HAS_CL);
    req_ok(L("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continued\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, 0);
}

/* Every valid request form at once through the prefix check. */
Test(http1_request, valid_forms_at_every_split)
{
    REQ_OK("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQ_OK("GET / HTTP/1.0\r\n\r\n");
    REQ_OK("\r\nGET / HTTP/1.0\r\n\r\n");
    REQ_OK("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
    REQ_OK("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQ_OK("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n");
    REQ_OK("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nX:\r\nY: \t\r\n\r\n");
    REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, upgrade\r\nUpgrade: websocket\r\n\r\n");
}

/* ------------------------------------------------------------------ */
/* Smuggling vectors and malformed requests, one by one */

Test(http1_smuggle, bare_lf)
{
    REQ_ERR("GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: 1\nContent-Length: 5\r\n\r\n", HTTP_EBAD);
    REQ_ERR("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.0\n\n", HTTP_EBAD);
    REQ_ERR("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, bare_cr)
{
    REQ_ERR("GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n\rX", HTTP_EBAD);
    REQ_ERR("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, obs_fold)
{
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", HTTP_EBAD);
    /* Whitespace between the start line and the first field. */
    REQ_ERR("GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, space_before_colon)
{
    REQ_ERR("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, invalid_name)
{
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX\"y: 1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX/y: 1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX@y: 1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX\x01y: 1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: 1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x0b: chunked\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, invalid_method)
{
    REQ_ERR("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GE\tT / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET\xff / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, invalid_target)
{
    REQ_ERR("GET  HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / a HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, ctl_in_value)
{
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: \x0b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX: \x0c\r\n\r\n", HTTP_EBAD);
    REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n");
}

Test(http1_smuggle, cl_and_te)
{
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            HTTP_EBAD);
    /* Even when the coding would be refused anyway. */
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
            HTTP_EBAD);
}

Test(http1_smuggle, duplicate_content_length)
{
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, bad_content_length)
{
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.0\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \"5\"\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
            HTTP_EBAD);
}

Test(http1_smuggle, transfer_coding_not_implemented)
{
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_ETE);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", HTTP_ETE);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_ETE);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            HTTP_ETE);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", HTTP_ETE);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x;q=\"a,b\", chunked\r\n\r\n",
            HTTP_ETE);
}

Test(http1_smuggle, transfer_coding_malformed)
{
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x;q=\"open\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, te_in_http10)
{
    REQ_ERR("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_EBAD);
    REQ_ERR("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, host)
{
    REQ_ERR("GET / HTTP/1.1\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\xc3\xa9\r\n\r\n", HTTP_EBAD);
}

Test(http1_smuggle, unsupported_version)
{
    REQ_ERR("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_EVERSION);
    REQ_ERR("GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP_EVERSION);
    REQ_ERR("GET / HTTP/0.9\r\n\r\n", HTTP_EVERSION);
    REQ_ERR("GET / HTTP/3.0\r\n", HTTP_EVERSION);
    REQ_ERR("GET / HTTP/9.9\r\n", HTTP_EVERSION);
    /* The HTTP/2 connection preface. */
    REQ_ERR("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_EVERSION);
}

Test(http1_smuggle, garbage_version)
{
    REQ_ERR("GET / HTTP/1.x\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/11\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / http/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTX/1.1\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/2.0x\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET /\r\n\r\n", HTTP_EBAD);
    REQ_ERR("GET / HTTP/\xff.1\r\n\r\n", HTTP_EBAD);
}

/* Invalid bytes are refused before the head is complete. */
Test(http1_smuggle, fails_fast)
{
    struct http_request r;
    struct http_header h[MAXH];
    cr_assert_eq(req_limits(L("G\0"), &r, h, MAXH, MAXB), HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET /\x01"), &r, h, MAXH, MAXB), HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\n"), &r, h, MAXH, MAXB), HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\r\nHost: a\r\nX: \x01"), &r, h, MAXH, MAXB),
                 HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\r\nHost: a\r\n "), &r, h, MAXH, MAXB), HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\r\nHo st"), &r, h, MAXH, MAXB), HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n"), &r,
                            h, MAXH, MAXB),
                 HTTP_EBAD);
    cr_assert_eq(req_limits(L("GET / HTTP/2.0\r\n"), &r, h, MAXH, MAXB), HTTP_EVERSION);
    /* Still incomplete: no invalid byte yet. */
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\r\nHost: a\r\nX: y"), &r, h, MAXH, MAXB),
                 HTTP_INCOMPLETE);
    cr_assert_eq(req_limits(L("GET / HTTP/1.1\r"), &r, h, MAXH, MAXB), HTTP_INCOMPLETE);
    cr_assert_eq(req_limits("", 0, &r, h, MAXH, MAXB), HTTP_INCOMPLETE);
}

/* ------------------------------------------------------------------ */
/* Limits and pipelining */

/* A request with n headers X-<i>: v (plus Host) in a fresh buffer. */
static size_t many_headers(char *buf, size_t cap, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "X-%zu: v\r\n", i);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    cr_assert_lt(len, cap);
    return len;
}

Test(http1_limits, max_headers)
{
    char buf[4096];
    struct http_request r;
    struct http_header h[MAXH];
    size_t len = many_headers(buf, sizeof buf, 9); /* 10 with Host */
    cr_assert_eq(req_limits(buf, len, &r, h, 10, MAXB), (int)len);
    cr_assert_eq(r.nheaders, 10);
    cr_assert_eq(req_limits(buf, len, &r, h, 9, MAXB), HTTP_ETOOBIG);
    cr_assert_eq(req_limits(buf, len, &r, h, 0, MAXB), HTTP_ETOOBIG);
    /* Too many headers is known before the head ends. */
    cr_assert_eq(req_limits(buf, len - 20, &r, h, 5, MAXB), HTTP_ETOOBIG);
    cr_assert_eq(prefixes(buf, len, true, 5, MAXB, __LINE__), HTTP_ETOOBIG);
    cr_assert_eq(prefixes(buf, len, true, 10, MAXB, __LINE__), (int)len);
}

Test(http1_limits, max_head_bytes)
{
    static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const size_t n = sizeof s - 1;
    struct http_request r;
    struct http_header h[MAXH];
    cr_assert_eq(req_limits(s, n, &r, h, MAXH, n), (int)n);
    cr_assert_eq(req_limits(s, n, &r, h, MAXH, n - 1), HTTP_ETOOBIG);
    cr_assert_eq(req_limits(s, n, &r, h, MAXH, 0), HTTP_ETOOBIG);
    cr_assert_eq(req_limits(s, 0, &r, h, MAXH, 0), HTTP_INCOMPLETE);
    /* Incomplete and exactly at the limit: more bytes may complete it. */
    cr_assert_eq(req_limits(s, n - 1, &r, h, MAXH, n - 1), HTTP_INCOMPLETE);
    /* Incomplete and past the limit: refused at once. */
    cr_assert_eq(req_limits(s, 11, &r, h, MAXH, 10), HTTP_ETOOBIG);
    /* A complete head within the limit, followed by body bytes. */
    static const char b[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789";
    cr_assert_eq(req_limits(L(b), &r, h, MAXH, sizeof b - 11), (int)sizeof b - 11);
    /* An invalid byte inside the limit is reported as such. */
    cr_assert_eq(req_limits(L("GET /\x01 HTTP/1.1\r\n"), &r, h, MAXH, 8), HTTP_EBAD);
    cr_assert_eq(prefixes(s, n, true, MAXH, n - 1, __LINE__), HTTP_ETOOBIG);
    cr_assert_eq(prefixes(s, n, true, MAXH, n, __LINE__), (int)n);
    /* Leading empty lines count against the limit too. */
    char big[600];
    for (size_t i = 0; i < 300; i++)
        memcpy(big + 2 * i, "\r\n", 2);
    cr_assert_eq(req_limits(big, sizeof big, &r, h, MAXH, 512), HTTP_ETOOBIG);
}

#define PIPE_A "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
#define PIPE_B "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"
#define PIPE_C "GET /c HTTP/1.1\r\nHost: a\r\n\r\n"

Test(http1_limits, pipelined)
{
    static const char s[] = PIPE_A PIPE_B "xyz" PIPE_C "GET /d HT";
    struct http_request r;
    struct http_header h[MAXH];
    size_t off = 0;
    int n = req_limits(s + off, sizeof s - 1 - off, &r, h, MAXH, MAXB);
    cr_assert_eq(n, (int)sizeof PIPE_A - 1);
    VIEW_EQ(r.target, r.target_len, "/a");
    off += (size_t)n;
    n = req_limits(s + off, sizeof s - 1 - off, &r, h, MAXH, MAXB);
    cr_assert_eq(n, (int)sizeof PIPE_B - 1);
    VIEW_EQ(r.target, r.target_len, "/b");
    cr_assert_eq(r.content_length, 3);
    off += (size_t)n;
    cr_assert(view_eq(s + off, 3, "xyz"));
    off += 3;
    n = req_limits(s + off, sizeof s - 1 - off, &r, h, MAXH, MAXB);
    cr_assert_eq(n, (int)sizeof PIPE_C - 1);
    VIEW_EQ(r.target, r.target_len, "/c");
    off += (size_t)n;
    cr_assert_eq(req_limits(s + off, sizeof s - 1 - off, &r, h, MAXH, MAXB), HTTP_INCOMPLETE);
}

/* ------------------------------------------------------------------ */
/* Responses */

Test(http1_response, ok_with_length)
{
    struct http_response r;
    struct http_header h[MAXH];
    static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n";
    resp_ok(L(s), &r, h);
    cr_assert_eq(r.minor, 1);
    cr_assert_eq(r.status, 200);
    VIEW_EQ(r.reason, r.reason_len, "OK");
    cr_assert_eq(r.nheaders, 2);
    VIEW_EQ(h[1].name, h[1].name_len, "Content-Type");
    VIEW_EQ(h[1].value, h[1].value_len, "text/plain");
    cr_assert_eq(r.content_length, 5);
    cr_assert_eq(r.flags, HTTP_F_HAS_CL);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_LENGTH);
}

Test(http1_response, forms)
{
    struct http_response r;
    struct http_header h[MAXH];
    resp_ok(L("HTTP/1.0 404 Not Found\r\n\r\n"), &r, h);
    cr_assert_eq(r.minor, 0);
    cr_assert_eq(r.status, 404);
    VIEW_EQ(r.reason, r.reason_len, "Not Found");
    resp_ok(L("HTTP/1.1 200 \r\n\r\n"), &r, h);
    cr_assert_eq(r.reason_len, 0);
    resp_ok(L("HTTP/1.1 200\r\n\r\n"), &r, h);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.reason_len, 0);
    resp_ok(L("HTTP/1.1 999 Whatever \t it\xc3\xa9 \r\n\r\n"), &r, h);
    cr_assert_eq(r.status, 999);
    VIEW_EQ(r.reason, r.reason_len, "Whatever \t it\xc3\xa9 ");
    resp_ok(L("HTTP/1.1 100 Continue\r\n\r\n"), &r, h);
    cr_assert_eq(r.status, 100);
    resp_ok(L("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
            &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_UPGRADE);
    resp_ok(L("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CONN_CLOSE);
    /* Host and Expect mean nothing in a response. */
    resp_ok(L("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nExpect: 100-continue\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, 0);
}

Test(http1_response, duplicate_content_length)
{
    struct http_response r;
    struct http_header h[MAXH];
    resp_ok(L("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), &r, h);
    cr_assert_eq(r.content_length, 5);
    resp_ok(L("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n"), &r, h);
    cr_assert_eq(r.content_length, 5);
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", HTTP_EBAD);
}

Test(http1_response, transfer_encoding)
{
    struct http_response r;
    struct http_header h[MAXH];
    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CHUNKED | HTTP_F_HAS_TE);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_CHUNKED);
    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_CHUNKED | HTTP_F_HAS_TE);
    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"), &r,
            h);
    cr_assert_eq(r.flags, HTTP_F_CHUNKED | HTTP_F_HAS_TE);
    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), &r, h);
    cr_assert_eq(r.flags, HTTP_F_HAS_TE);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_EOF);
    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: x ; a = b ; c=\"d,\\\"e\" , chunked\r\n\r\n"),
            &r, h);
    cr_assert_eq(r.flags, HTTP_F_CHUNKED | HTTP_F_HAS_TE);
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
             HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_EBAD);
}

Test(http1_response, malformed)
{
    RESP_ERR("HTTP/1.1 099 Low\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 000 Zero\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 2000 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 20 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 2x0 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1  200 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1\t200 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nX: a\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 O\x01K\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1 200 OK\r\nX: \x7f\r\n\r\n", HTTP_EBAD);
    RESP_ERR("\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.1\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/1.x 200 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("http/1.1 200 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("ICY 200 OK\r\n\r\n", HTTP_EBAD);
    RESP_ERR("HTTP/2.0 200 OK\r\n\r\n", HTTP_EVERSION);
    RESP_ERR("HTTP/1.2 200 OK\r\n\r\n", HTTP_EVERSION);
    RESP_ERR("HTTP/0.9 200 OK\r\n\r\n", HTTP_EVERSION);
}

Test(http1_response, limits)
{
    static const char s[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nbody";
    struct http_response r;
    struct http_header h[MAXH];
    cr_assert_eq(resp_limits(L(s), &r, h, 2, MAXB), 31);
    cr_assert_eq(resp_limits(L(s), &r, h, 1, MAXB), HTTP_ETOOBIG);
    cr_assert_eq(resp_limits(L(s), &r, h, 2, 31), 31);
    cr_assert_eq(resp_limits(L(s), &r, h, 2, 30), HTTP_ETOOBIG);
    cr_assert_eq(resp_limits(s, 30, &r, h, 2, 30), HTTP_INCOMPLETE);
}

Test(http1_response, valid_forms_at_every_split)
{
    RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    RESP_OK("HTTP/1.1 204 No Content\r\n\r\n");
    RESP_OK("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
    RESP_OK("HTTP/1.1 100 Continue\r\n\r\n");
    RESP_OK("HTTP/1.1 200\r\n\r\n");
    RESP_OK("HTTP/1.0 200 OK\r\n\r\n");
    RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n");
}

Test(http1_response, body_rules)
{
    struct http_response r;
    struct http_header h[MAXH];
    resp_ok(L("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_HEAD), HTTP_BODY_NONE);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_LENGTH);
    cr_assert_eq(http_response_body(&r, HTTP_M_CONNECT), HTTP_BODY_NONE);
    cr_assert_eq(http_response_body(&r, HTTP_M_OTHER), HTTP_BODY_LENGTH);

    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_HEAD), HTTP_BODY_NONE);
    cr_assert_eq(http_response_body(&r, HTTP_M_POST), HTTP_BODY_CHUNKED);

    static const char *const none[] = {
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
        resp_ok(none[i], strlen(none[i]), &r, h);
        cr_expect_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_NONE, "%s", none[i]);
    }

    /* Tunnel established: the connection is no longer HTTP. */
    resp_ok(L("HTTP/1.1 200 Connection Established\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_CONNECT), HTTP_BODY_NONE);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_EOF);
    resp_ok(L("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_CONNECT), HTTP_BODY_LENGTH);

    /* No framing at all: read until the server closes. */
    resp_ok(L("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_EOF);
    resp_ok(L("HTTP/1.1 500 Oops\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_EOF);
    resp_ok(L("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), &r, h);
    cr_assert_eq(http_response_body(&r, HTTP_M_GET), HTTP_BODY_EOF);
}
