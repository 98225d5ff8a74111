/* Shared by the head-parser tests (test_http1.c) and the decoder and
 * helper tests beside them: every head is parsed from an exact-size heap
 * copy and at every prefix length. Header only, every function static
 * inline, so each test file gets its own copy; a failure fails the calling
 * test. */
#ifndef TEST_HTTP1_H
#define TEST_HTTP1_H

#include "core/http1.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXH 64
#define MAXB 8192

/* A string literal and its length (literals may hold NUL bytes). */
#define L(lit) lit, sizeof(lit) - 1

static inline char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    cr_assert(p);
    memcpy(p, s, n);
    return p;
}

static inline int req_limits(const char *s, size_t len, struct http_request *r, struct http_header *h,
                      size_t max_headers, size_t max_bytes)
{
    char *c = dup_exact(s, len);
    int got = http_parse_request(c, len, r, h, max_headers, max_bytes);
    /* Views must point into the caller's buffer: rebase them onto s. */
    if (got >= 0) {
        ptrdiff_t d = s - c;
        r->method += d;
        r->target += d;
        if (r->host)
            r->host += d;
        for (size_t i = 0; i < r->nheaders; i++) {
            h[i].name += d;
            h[i].value += d;
        }
    }
    free(c);
    return got;
}

static inline int resp_limits(const char *s, size_t len, struct http_response *r, struct http_header *h,
                       size_t max_headers, size_t max_bytes)
{
    char *c = dup_exact(s, len);
    int got = http_parse_response(c, len, r, h, max_headers, max_bytes);
    if (got >= 0) {
        ptrdiff_t d = s - c;
        r->reason += d;
        for (size_t i = 0; i < r->nheaders; i++) {
            h[i].name += d;
            h[i].value += d;
        }
    }
    free(c);
    return got;
}

/* Checks the prefix property for one input and returns the whole input's
 * result: INCOMPLETE for every prefix shorter than where the result is
 * decided, the whole input's result for every longer one; for a complete
 * head, decided exactly at the head's length. */
static inline int prefixes(const char *s, size_t len, bool request, size_t max_headers, size_t max_bytes,
                    int line)
{
    struct http_request rq;
    struct http_response rs;
    struct http_header h[MAXH];
    int whole = request ? req_limits(s, len, &rq, h, max_headers, max_bytes)
                        : resp_limits(s, len, &rs, h, max_headers, max_bytes);
    bool decided = false;
    for (size_t i = 0; i < len; i++) {
        int got = request ? req_limits(s, i, &rq, h, max_headers, max_bytes)
                          : resp_limits(s, i, &rs, h, max_headers, max_bytes);
        if (got == HTTP_INCOMPLETE) {
            cr_assert(!decided, "line %d: prefix %zu incomplete after a result", line, i);
            if (whole >= 0)
                cr_assert_lt(i, (size_t)whole, "line %d: prefix %zu covers the head", line, i);
            continue;
        }
        cr_assert_eq(got, whole, "line %d: prefix %zu gives %d, whole input %d", line, i, got,
                     whole);
        if (whole >= 0 && !decided)
            cr_assert_eq(i, (size_t)whole, "line %d: complete before the head ended", line);
        decided = true;
    }
    return whole;
}

static inline void check_req(const char *s, size_t len, int want, int line)
{
    int got = prefixes(s, len, true, MAXH, MAXB, line);
    cr_expect_eq(got, want, "line %d: request gives %d, want %d", line, got, want);
}

static inline void check_resp(const char *s, size_t len, int want, int line)
{
    int got = prefixes(s, len, false, MAXH, MAXB, line);
    cr_expect_eq(got, want, "line %d: response gives %d, want %d", line, got, want);
}

/* The whole literal is one head. */
#define REQ_OK(lit) check_req(L(lit), (int)sizeof(lit) - 1, __LINE__)
#define REQ_ERR(lit, err) check_req(L(lit), err, __LINE__)
#define RESP_OK(lit) check_resp(L(lit), (int)sizeof(lit) - 1, __LINE__)
#define RESP_ERR(lit, err) check_resp(L(lit), err, __LINE__)

/* Parses a literal that must be exactly one complete head. */
static inline void req_ok(const char *s, size_t len, struct http_request *r, struct http_header *h)
{
    check_req(s, len, (int)len, 0);
    cr_assert_eq(req_limits(s, len, r, h, MAXH, MAXB), (int)len);
    cr_assert_eq(r->headers, h);
}

static inline void resp_ok(const char *s, size_t len, struct http_response *r, struct http_header *h)
{
    check_resp(s, len, (int)len, 0);
    cr_assert_eq(resp_limits(s, len, r, h, MAXH, MAXB), (int)len);
    cr_assert_eq(r->headers, h);
}

static inline bool view_eq(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

#define VIEW_EQ(p, n, want) cr_assert(view_eq(p, n, want), "got \"%.*s\", want \"%s\"", (int)(n), p, want)

#endif
