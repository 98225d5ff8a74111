/* Unit tests for core/strutil: hex_val() over every byte, u64_to_dec(),
 * pct_decode() with each flag: '+' as space only when asked, a NUL
 * refused only when asked, bad or cut escapes refused, the output bound
 * kept. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/strutil.h"

Test(hex_val, every_byte)
{
    for (int c = 0; c < 256; c++) {
        int want = -1;
        if (c >= '0' && c <= '9')
            want = c - '0';
        else if (c >= 'a' && c <= 'f')
            want = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            want = c - 'A' + 10;
        cr_assert_eq(hex_val((char)c), want, "byte %d", c);
    }
}

Test(u64_to_dec, digits_at_the_front_without_nul)
{
    char out[U64_DEC_MAX + 1];
    memset(out, '#', sizeof out);
    cr_assert_eq(u64_to_dec(out, 0), 1);
    cr_assert_eq(memcmp(out, "0#", 2), 0);
    cr_assert_eq(u64_to_dec(out, 1234567890), 10);
    cr_assert_eq(memcmp(out, "1234567890#", 11), 0);
    cr_assert_eq(u64_to_dec(out, UINT64_MAX), U64_DEC_MAX);
    cr_assert_eq(memcmp(out, "18446744073709551615#", 21), 0);
}

static ssize_t dec(const char *s, char *out, size_t cap, unsigned flags)
{
    return pct_decode(s, strlen(s), out, cap, flags);
}

Test(pct_decode, escapes_both_cases_and_plain_bytes)
{
    char out[64];
    ssize_t n = dec("a%2Fb%2fc%41%7e~", out, sizeof out, 0);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(out, "a/b/cA~~", 8), 0);
    cr_assert_eq(dec("", out, sizeof out, 0), 0);
}

Test(pct_decode, plus_is_a_space_only_with_the_flag)
{
    char out[16];
    cr_assert_eq(dec("a+b%2B", out, sizeof out, PCT_PLUS_SPACE), 4);
    cr_assert_eq(memcmp(out, "a b+", 4), 0);
    cr_assert_eq(dec("a+b%2B", out, sizeof out, 0), 4);
    cr_assert_eq(memcmp(out, "a+b+", 4), 0);
}

Test(pct_decode, bad_or_cut_escapes_are_refused)
{
    char out[16];
    const char *bad[] = {"%", "%4", "a%", "a%4", "%G0", "%0G", "%%41", "% 41", "%-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(dec(bad[i], out, sizeof out, 0), -1, "%s", bad[i]);
    /* The length bounds the input: an escape cut by it is refused even
     * when the bytes after it would complete it. */
    cr_assert_eq(pct_decode("%41", 2, out, sizeof out, 0), -1);
}

Test(pct_decode, nul_refused_only_with_the_flag)
{
    char out[16];
    cr_assert_eq(dec("a%00b", out, sizeof out, 0), 3);
    cr_assert_eq(memcmp(out, "a\0b", 3), 0);
    cr_assert_eq(dec("a%00b", out, sizeof out, PCT_NO_NUL), -1);
    cr_assert_eq(pct_decode("a\0b", 3, out, sizeof out, 0), 3);
    cr_assert_eq(pct_decode("a\0b", 3, out, sizeof out, PCT_NO_NUL), -1);
}

Test(pct_decode, output_bound)
{
    char out[4];
    cr_assert_eq(dec("abcd", out, 4, 0), 4);
    cr_assert_eq(dec("abcde", out, 4, 0), -1);
    /* Six input bytes decode to four: the bound is on the output. */
    cr_assert_eq(dec("%41%42cd", out, 4, 0), 4);
    cr_assert_eq(memcmp(out, "ABcd", 4), 0);
    cr_assert_eq(dec("a", out, 0, 0), -1);
    cr_assert_eq(dec("", out, 0, 0), 0);
}

/* admin_path_decode() is pct_decode() for one path segment: no '+'
 * rule, no NUL, NUL-terminated within outlen. */
#include "core/admin.h"

Test(admin_path_decode, segment_rules)
{
    char out[8];
    cr_assert(admin_path_decode("a%2Fb+c", 7, out, sizeof out));
    cr_assert_str_eq(out, "a/b+c");
    cr_assert_not(admin_path_decode("a%00", 4, out, sizeof out));
    cr_assert_not(admin_path_decode("a%zz", 4, out, sizeof out));
    cr_assert(admin_path_decode("1234567", 7, out, sizeof out));
    cr_assert_not(admin_path_decode("12345678", 8, out, sizeof out));
    cr_assert_not(admin_path_decode("", 0, out, 0));
    cr_assert(admin_path_decode("", 0, out, 1));
    cr_assert_str_eq(out, "");
}
