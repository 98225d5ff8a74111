/* Base64 (RFC 4648): the standard alphabet, padded, and the url alphabet
 * (section 5) without padding. */
#ifndef FG_BASE64_H
#define FG_BASE64_H

#include "core/common.h"
#include "core/buf.h"

#include <sys/types.h>

/* Decodes s[0..n): the decoded length, or -1 when s is not valid padded
 * base64. out may be NULL to validate only; else it needs 3 * (n / 4)
 * bytes. */
ssize_t base64_decode(const char *s, size_t n, unsigned char *out);
/* Appends the base64 encoding of p[0..n) to out (no NUL). */
void base64_encode(struct buf *out, const void *p, size_t n);

/* Writes the unpadded base64url encoding of p[0..n) and a NUL to out,
 * which needs (4 * n + 2) / 3 + 1 bytes. */
void base64url_encode(char *out, const void *p, size_t n);
/* Decodes unpadded base64url s[0..n): the decoded length, or -1 when s
 * holds a character outside the url alphabet (padding included), has a
 * length of 4k + 1, or sets bits past the last byte. out may be NULL to
 * validate only; else it needs 3 * n / 4 bytes. */
ssize_t base64url_decode(const char *s, size_t n, unsigned char *out);

#endif
