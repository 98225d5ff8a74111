/* Base64 (RFC 4648, standard alphabet, padded), for the AWS protocols
 * blobs, signatures and certificates. Strict: padding only at the end,
 * length a multiple of 4, no whitespace. Also the url alphabet
 * (section 5), unpadded, for the broker's receipt handles. */
#include "core/base64.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* c62 and c63 name the alphabet: '+' '/' or '-' '_'. */
static int b64_val_in(unsigned char c, char c62, char c63)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (unsigned char)c62)
        return 62;
    if (c == (unsigned char)c63)
        return 63;
    return -1;
}

static int b64_val(unsigned char c) { return b64_val_in(c, '+', '/'); }

ssize_t base64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad || (v[k] = b64_val(c)) < 0)
                return -1; /* data after padding, or not base64 */
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* Canonical form only: bits under the padding must be zero. */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return -1;
        if (out) {
            out[o] = (unsigned char)(w >> 16);
            if (pad < 2)
                out[o + 1] = (unsigned char)(w >> 8);
            if (pad < 1)
                out[o + 2] = (unsigned char)w;
        }
        o += (size_t)(3 - pad);
    }
    return (ssize_t)o;
}

/* Encodes s[0..n) with the alphabet tab into w, '=' padded when pad;
 * returns the characters written (no NUL). */
static size_t b64_encode(char *w, const char *tab, bool pad, const unsigned char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        w[o++] = tab[v >> 18 & 63];
        w[o++] = tab[v >> 12 & 63];
        if (i + 1 < n || pad)
            w[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        if (i + 2 < n || pad)
            w[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return o;
}

void base64_encode(struct buf *out, const void *p, size_t n)
{
    char *w = buf_reserve(out, (n + 2) / 3 * 4 + 1);
    buf_commit(out, b64_encode(w, b64_std, true, p, n));
}

void base64url_encode(char *out, const void *p, size_t n)
{
    out[b64_encode(out, b64_url, false, p, n)] = '\0';
}

ssize_t base64url_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4 == 1)
        return -1; /* one character carries only 6 bits: never a whole byte */
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        size_t k = FG_MIN(n - i, (size_t)4); /* 2, 3 or 4 characters */
        uint32_t w = 0;
        for (size_t j = 0; j < 4; j++) {
            int v = j < k ? b64_val_in((unsigned char)s[i + j], '-', '_') : 0;
            if (v < 0)
                return -1;
            w = w << 6 | (uint32_t)v;
        }
        /* Canonical form only: the bits past the last byte must be zero. */
        if ((k == 2 && (w & 0xffff)) || (k == 3 && (w & 0xff)))
            return -1;
        size_t bytes = k - 1;
        if (out) {
            out[o] = (unsigned char)(w >> 16);
            if (bytes > 1)
                out[o + 1] = (unsigned char)(w >> 8);
            if (bytes > 2)
                out[o + 2] = (unsigned char)w;
        }
        o += bytes;
    }
    return (ssize_t)o;
}
