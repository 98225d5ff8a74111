/* Unit tests for core/base64's url alphabet: RFC 4648 test vectors
 * without padding, a round trip over every length and byte pattern that
 * uses '-' and '_', and the strict refusals (padding, other alphabets,
 * 4k+1 lengths, non-canonical trailing bits). */
#include <criterion/criterion.h>
#include <string.h>

#include "core/base64.h"

Test(base64url, rfc4648_vectors_unpadded)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        unsigned char back[16];
        base64url_encode(out, in[i], strlen(in[i]));
        cr_assert_str_eq(out, want[i]);
        ssize_t n = base64url_decode(out, strlen(out), back);
        cr_assert_eq(n, (ssize_t)strlen(in[i]));
        cr_assert_eq(memcmp(back, in[i], (size_t)n), 0);
        cr_assert_eq(base64url_decode(out, strlen(out), NULL), n);
    }
}

Test(base64url, url_alphabet_round_trip)
{
    unsigned char raw[24], back[24];
    char enc[40];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)(0xfb + i * 37);
    for (size_t n = 0; n <= sizeof raw; n++) {
        base64url_encode(enc, raw, n);
        cr_assert_eq(strlen(enc), (4 * n + 2) / 3);
        cr_assert_null(strpbrk(enc, "+/="));
        cr_assert_eq(base64url_decode(enc, strlen(enc), back), (ssize_t)n);
        cr_assert_eq(memcmp(raw, back, n), 0);
    }
    unsigned char ff[3] = {0xfb, 0xff, 0xfe};
    base64url_encode(enc, ff, 3);
    cr_assert_str_eq(enc, "-__-");
}

Test(base64url, strict_refusals)
{
    unsigned char out[8];
    cr_assert_eq(base64url_decode("Zg==", 4, out), -1);  /* padding */
    cr_assert_eq(base64url_decode("+/+/", 4, out), -1);  /* standard alphabet */
    cr_assert_eq(base64url_decode("Zm9vY", 5, out), -1); /* 4k+1 */
    cr_assert_eq(base64url_decode("Zh", 2, out), -1);    /* bits past the byte */
    cr_assert_eq(base64url_decode("Zm9", 3, out), -1); /* "Zm8" is canonical */
    cr_assert_eq(base64url_decode("Zm8", 3, out), 2);
    cr_assert_eq(base64url_decode("Zm-", 3, out), -1);
    cr_assert_eq(base64url_decode("Zm 9", 4, out), -1);
}
