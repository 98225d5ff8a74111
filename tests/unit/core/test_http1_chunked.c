/* Tests for the chunked decoder of core/http1: sizes, extensions,
 * trailers, limits and every malformed framing. Every chunked body is
 * decoded whole, split in two at every position and byte by byte, with the
 * same outcome and payload. */
#include "test_http1.h"

/* ------------------------------------------------------------------ */
/* Chunked decoder */

struct sink {
    char data[16384];
    size_t n;
    size_t calls;
};

static void collect(void *ud, const char *p, size_t n)
{
    struct sink *s = ud;
    cr_assert_gt(n, 0, "empty payload span");
    cr_assert_leq(s->n + n, sizeof s->data);
    memcpy(s->data + s->n, p, n);
    s->n += n;
    s->calls++;
}

/* Feeds s[0..len) in pieces: first cut bytes, then the rest (cut == len:
 * whole), or one byte at a time (cut == 0). Returns the total consumed, -1
 * on error. */
static ssize_t feed_pieces(const char *s, size_t len, size_t max_trailer, size_t cut,
                           struct sink *out, bool *done)
{
    struct http_chunked c;
    http_chunked_init(&c, max_trailer);
    memset(out, 0, sizeof *out);
    ssize_t total = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = cut == 0 ? 1 : off == 0 ? cut : len - off;
        char *piece = dup_exact(s + off, n);
        ssize_t r = http_chunked_feed(&c, piece, n, collect, out);
        free(piece);
        if (r < 0) {
            cr_assert_eq(http_chunked_feed(&c, "0\r\n\r\n", 5, collect, out), -1,
                         "errors are sticky");
            *done = c.done;
            return -1;
        }
        cr_assert_leq((size_t)r, n);
        if ((size_t)r < n)
            cr_assert(c.done, "fewer bytes consumed without the body ending");
        total += r;
        off += n;
    }
    *done = c.done;
    return total;
}

/* Decodes s whole, split in two at every position, and byte by byte; all
 * must agree on the result, the end of the body and the payload. */
static ssize_t dechunk(const char *s, size_t len, size_t max_trailer, struct sink *out,
                       bool *done)
{
    ssize_t whole = feed_pieces(s, len, max_trailer, len ? len : 1, out, done);
    static struct sink other;
    for (size_t cut = 0; cut < len; cut++) {
        bool d;
        ssize_t r = feed_pieces(s, len, max_trailer, cut, &other, &d);
        cr_assert_eq(r, whole, "cut %zu: %zd, whole %zd", cut, r, whole);
        cr_assert_eq(d, *done, "cut %zu", cut);
        cr_assert_eq(other.n, out->n, "cut %zu", cut);
        cr_assert(memcmp(other.data, out->data, out->n) == 0, "cut %zu", cut);
    }
    return whole;
}

#define DECHUNK(lit, out, done) dechunk(L(lit), 1024, out, done)

Test(http1_chunked, normal)
{
    static struct sink out;
    bool done;
    static const char s[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    ssize_t r = dechunk(L(s), 0, &out, &done);
    cr_assert_eq(r, (ssize_t)sizeof s - 1);
    cr_assert(done);
    cr_assert(view_eq(out.data, out.n, "hello world"));
}

Test(http1_chunked, hex_sizes)
{
    static struct sink out;
    bool done;
    char body[256 + 64];
    memcpy(body, "a\r\n0123456789\r\nF\r\nABCDEFGHIJKLMNO\r\n", 35);
    memcpy(body + 35, "000\r\n\r\n", 7);
    cr_assert_eq(dechunk(body, 42, 0, &out, &done), 42);
    cr_assert(done);
    cr_assert(view_eq(out.data, out.n, "0123456789ABCDEFGHIJKLMNO"));
    cr_assert_eq(DECHUNK("0000000000000001\r\nx\r\n0\r\n\r\n", &out, &done), 26);
    cr_assert(view_eq(out.data, out.n, "x"));
}

Test(http1_chunked, extensions)
{
    static struct sink out;
    bool done;
    cr_assert_eq(DECHUNK("3;name=value\r\nabc\r\n0;last\r\n\r\n", &out, &done), 29);
    cr_assert(view_eq(out.data, out.n, "abc"));
    cr_assert_eq(DECHUNK("3 ; a=\"q;\\\"x\" ;b\r\nabc\r\n0\t;z\r\n\r\n", &out, &done), 31);
    cr_assert(done);
    cr_assert(view_eq(out.data, out.n, "abc"));
    /* BWS is only allowed before an extension. */
    cr_assert_eq(DECHUNK("3 \r\nabc\r\n0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("3 x\r\nabc\r\n0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("3;a\x01\r\nabc\r\n0\r\n\r\n", &out, &done), -1);
}

Test(http1_chunked, line_limit)
{
    static char body[8192];
    static struct sink out;
    bool done;
    struct http_chunked c;
    /* A size line of exactly 4096 bytes (CRLF not counted) is accepted. */
    size_t n = 0;
    body[n++] = '1';
    body[n++] = ';';
    while (n < 4096)
        body[n++] = 'x';
    memcpy(body + n, "\r\nA\r\n0\r\n\r\n", 10);
    http_chunked_init(&c, 0);
    memset(&out, 0, sizeof out);
    cr_assert_eq(http_chunked_feed(&c, body, n + 10, collect, &out), (ssize_t)n + 10);
    cr_assert(c.done);
    cr_assert(view_eq(out.data, out.n, "A"));
    /* One more byte is refused, before the line ends. */
    body[n++] = 'x';
    http_chunked_init(&c, 0);
    cr_assert_eq(http_chunked_feed(&c, body, n, collect, &out), -1);
    (void)done;
}

Test(http1_chunked, trailers)
{
    static struct sink out;
    bool done;
    static const char s[] = "2\r\nhi\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\n";
    cr_assert_eq(dechunk(L(s), 1024, &out, &done), (ssize_t)sizeof s - 1);
    cr_assert(done);
    cr_assert(view_eq(out.data, out.n, "hi"));
    /* The bound covers the field lines with their CRLFs: 12 + 4 bytes. */
    cr_assert_eq(dechunk(L(s), 16, &out, &done), (ssize_t)sizeof s - 1);
    cr_assert_eq(dechunk(L(s), 15, &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\n\r\n", &out, &done), 5);
    cr_assert_eq(dechunk(L("0\r\n\r\n"), 0, &out, &done), 5);
    cr_assert_eq(dechunk(L("0\r\nX: 1\r\n\r\n"), 0, &out, &done), -1);
}

Test(http1_chunked, bad_trailers)
{
    static struct sink out;
    bool done;
    cr_assert_eq(DECHUNK("0\r\nX: 1\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\nX: 1\r\n\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\nX: 1\r\n continued\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\nNoColon\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\n: v\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\nX : v\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\nX: \x01\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\nX: v\rY\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\n\rX", &out, &done), -1);
}

Test(http1_chunked, bad_hex)
{
    static struct sink out;
    bool done;
    cr_assert_eq(DECHUNK("g\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK(";ext\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK(" 5\r\nhello\r\n0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("-1\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("+5\r\nhello\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0x5\r\nhello\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("5g\r\nhello\r\n", &out, &done), -1);
}

Test(http1_chunked, size_overflow)
{
    static struct sink out;
    bool done;
    struct http_chunked c;
    /* 17 digits, even with leading zeros. */
    cr_assert_eq(DECHUNK("00000000000000001\r\nx\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("10000000000000000\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("ffffffffffffffff\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("4000000000000000\r\n", &out, &done), -1);
    /* 2^62 - 1 is the largest size. */
    http_chunked_init(&c, 0);
    cr_assert_eq(http_chunked_feed(&c, L("3fffffffffffffff\r\nab"), NULL, NULL), 20);
    cr_assert_eq(c.left, (UINT64_C(1) << 62) - 3);
    cr_assert(!c.done);
}

Test(http1_chunked, missing_crlf_after_data)
{
    static struct sink out;
    bool done;
    cr_assert_eq(DECHUNK("5\r\nhelloX\r\n0\r\n\r\n", &out, &done), -1);
    cr_assert(view_eq(out.data, out.n, "hello"), "payload before the error is delivered");
    cr_assert_eq(DECHUNK("5\r\nhello0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("5\r\nhello\rX", &out, &done), -1);
    cr_assert_eq(DECHUNK("5\r\nhello\n0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("5\r\nhello world\r\n0\r\n\r\n", &out, &done), -1);
}

Test(http1_chunked, bare_lf)
{
    static struct sink out;
    bool done;
    cr_assert_eq(DECHUNK("5\nhello\r\n0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("5;a\nhello\r\n0\r\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\n\r\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("0\r\n\n", &out, &done), -1);
    cr_assert_eq(DECHUNK("5\rhello\r\n", &out, &done), -1);
}

Test(http1_chunked, followed_by_next_message)
{
    static struct sink out;
    bool done;
    static const char s[] = "4\r\nwiki\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_eq(dechunk(L(s), 0, &out, &done), 14);
    cr_assert(done);
    cr_assert(view_eq(out.data, out.n, "wiki"));
    struct http_chunked c;
    http_chunked_init(&c, 0);
    cr_assert_eq(http_chunked_feed(&c, L(s), NULL, NULL), 14);
    cr_assert_eq(http_chunked_feed(&c, s + 14, sizeof s - 15, NULL, NULL), 0);
    struct http_request r;
    struct http_header h[MAXH];
    cr_assert_eq(req_limits(s + 14, sizeof s - 15, &r, h, MAXH, MAXB), (int)sizeof s - 15);
}

Test(http1_chunked, incremental_state)
{
    struct http_chunked c;
    static struct sink out;
    memset(&out, 0, sizeof out);
    http_chunked_init(&c, 64);
    cr_assert_eq(http_chunked_feed(&c, "", 0, collect, &out), 0);
    cr_assert_eq(http_chunked_feed(&c, L("1"), collect, &out), 1);
    cr_assert_eq(http_chunked_feed(&c, L("0\r\n01234"), collect, &out), 8);
    cr_assert_eq(c.left, 11);
    cr_assert_eq(http_chunked_feed(&c, L("56789abcdef"), collect, &out), 11);
    cr_assert_eq(c.left, 0);
    cr_assert(!c.done);
    cr_assert_eq(http_chunked_feed(&c, L("\r\n0\r\n\r"), collect, &out), 6);
    cr_assert(!c.done);
    cr_assert_eq(http_chunked_feed(&c, L("\nrest"), collect, &out), 1);
    cr_assert(c.done);
    cr_assert_eq(http_chunked_feed(&c, L("more"), collect, &out), 0);
    cr_assert(view_eq(out.data, out.n, "0123456789abcdef"));
    cr_assert_eq(out.calls, 2);
}

Test(http1_chunked, large_body_streams)
{
    /* 64 chunks of 200 bytes through 7-byte buffers. */
    static char body[64 * 220 + 8];
    static struct sink out;
    size_t n = 0;
    for (int i = 0; i < 64; i++) {
        n += (size_t)sprintf(body + n, "c8\r\n");
        for (int j = 0; j < 200; j++)
            body[n++] = (char)('a' + (i + j) % 26);
        body[n++] = '\r';
        body[n++] = '\n';
    }
    memcpy(body + n, "0\r\n\r\n", 5);
    n += 5;
    struct http_chunked c;
    http_chunked_init(&c, 0);
    memset(&out, 0, sizeof out);
    size_t total = 0;
    for (size_t off = 0; off < n; off += 7) {
        size_t k = FG_MIN(7, n - off);
        ssize_t r = http_chunked_feed(&c, body + off, k, collect, &out);
        cr_assert_eq(r, (ssize_t)k);
        total += (size_t)r;
    }
    cr_assert_eq(total, n);
    cr_assert(c.done);
    cr_assert_eq(out.n, 64 * 200);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 200; j++)
            cr_assert_eq(out.data[i * 200 + j], (char)('a' + (i + j) % 26));
}
