/* Small string helpers shared by the HTTP parser, the admin API, the
 * AWS query-form front ends and the writers of numbers on the request
 * path: a hex digit's value, decimal digits without printf and one
 * percent-decoder, so the copies cannot drift apart. */
#ifndef FG_STRUTIL_H
#define FG_STRUTIL_H

#include "core/common.h"

/* The value of one hex digit (either case), or -1 when c is not one. */
static inline int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes the decimal digits of v (at most U64_DEC_MAX, no NUL) to out
 * and returns how many: printf-free, for the request path. */
#define U64_DEC_MAX 20 /* UINT64_MAX has 20 digits */
static inline size_t u64_to_dec(char *out, uint64_t v)
{
    char tmp[U64_DEC_MAX];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

/* pct_decode() flags. */
#define PCT_PLUS_SPACE 1 /* '+' means a space (application/x-www-form-urlencoded) */
#define PCT_NO_NUL 2     /* refuse a NUL byte, literal or %00: the result goes where C strings do */

/* Percent-decodes s[0..n) into out[0..cap). Returns the decoded length
 * (never more than n, so cap = n always suffices), or -1 on a '%' not
 * followed by two hex digits, on a NUL with PCT_NO_NUL, or when the result
 * does not fit in cap bytes. out is not NUL-terminated. */
ssize_t pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags);

#endif
