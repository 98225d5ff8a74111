/* Tests for the header helpers of core/http1: lookups by name,
 * hop-by-hop names, Connection tokens, reason phrases and Date. */
#include "test_http1.h"

/* ------------------------------------------------------------------ */
/* Header helpers */

Test(http1_helpers, find_header)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nX-Id: 1\r\nx-id: 2\r\n\r\n"), &r, h);
    const struct http_header *f = http_find_header(h, r.nheaders, "x-ID");
    cr_assert_eq(f, &h[1]);
    VIEW_EQ(f->value, f->value_len, "1");
    cr_assert_eq(http_find_header(h, r.nheaders, "HOST"), &h[0]);
    cr_assert_null(http_find_header(h, r.nheaders, "X-I"));
    cr_assert_null(http_find_header(h, r.nheaders, "X-Idx"));
    cr_assert_null(http_find_header(h, 0, "Host"));
}

Test(http1_helpers, hop_by_hop)
{
    static const char *const hop[] = {"Connection", "keep-alive", "Proxy-Connection", "TE",
                                      "trailer", "Transfer-Encoding", "UPGRADE"};
    static const char *const end[] = {"Host", "Content-Length", "Trailers", "T", "Upgrade-Insecure-Requests",
                                      "Keep-Alive2", "Proxy-Authorization", ""};
    for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
        cr_expect(http_is_hop_by_hop(hop[i], strlen(hop[i])), "%s", hop[i]);
    for (size_t i = 0; i < ARRAY_SIZE(end); i++)
        cr_expect(!http_is_hop_by_hop(end[i], strlen(end[i])), "%s", end[i]);
    /* Length-carrying: a prefix of a longer string. */
    cr_expect(http_is_hop_by_hop("TE-xyz", 2));
}

Test(http1_helpers, connection_has)
{
    struct http_request r;
    struct http_header h[MAXH];
    req_ok(L("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n"
             "connection: ,X-Bar ,\r\n\r\n"),
           &r, h);
    cr_assert(http_connection_has(h, r.nheaders, "x-foo", 5));
    cr_assert(http_connection_has(h, r.nheaders, "X-BAR", 5));
    cr_assert(http_connection_has(h, r.nheaders, "Close", 5));
    cr_assert(!http_connection_has(h, r.nheaders, "X-Fo", 4));
    cr_assert(!http_connection_has(h, r.nheaders, "keep-alive", 10));
    cr_assert(!http_connection_has(h, r.nheaders, "", 0));
    cr_assert(!http_connection_has(h, r.nheaders, "Host", 4));
}

Test(http1_helpers, reason)
{
    cr_assert_str_eq(http_reason(200), "OK");
    cr_assert_str_eq(http_reason(404), "Not Found");
    cr_assert_str_eq(http_reason(413), "Content Too Large");
    cr_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    cr_assert_str_eq(http_reason(502), "Bad Gateway");
    cr_assert_str_eq(http_reason(505), "HTTP Version Not Supported");
    cr_assert_str_eq(http_reason(799), "Unknown");
    cr_assert_str_eq(http_reason(-1), "Unknown");
}

Test(http1_helpers, date_is_an_imf_fixdate)
{
    char d[HTTP_DATE_SIZE];
    /* RFC 9110's own example. */
    cr_assert_eq(http_date(d, 784111777), 29);
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_assert_eq(http_date(d, 0), 29);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_assert_eq(http_date(d, 951782400), 29); /* a leap day */
    cr_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 GMT");
}
