/* Base64 (RFC 4648, standard alphabet, padded), for the AWS protocols
 * blobs, signatures and certificates. Strict: padding only at the end,
 * length a multiple of 4, no whitespace. */
#include "core/base64.h"

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

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

void base64_encode(struct buf *out, const void *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *w = buf_reserve(out, (n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        w[o++] = tab[v >> 18 & 63];
        w[o++] = tab[v >> 12 & 63];
        w[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        w[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    buf_commit(out, o);
}
