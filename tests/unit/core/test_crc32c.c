/* Unit tests for CRC-32C (src/core/crc32c.c): published check values, the
 * software and hardware paths agreeing on every length and alignment, and
 * chaining. */
#include <criterion/criterion.h>

#include "core/crc32c.h"

#include <stdlib.h>
#include <string.h>

Test(crc32c, check_values)
{
    cr_assert_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c(0, "", 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff, and ascending 0..31 */
    uint8_t b[32];
    memset(b, 0, sizeof b);
    cr_assert_eq(crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    cr_assert_eq(crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    cr_assert_eq(crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    cr_assert_eq(crc32c(0, b, 32), 0x113FDB5Cu);
}

Test(crc32c, software_and_hardware_agree)
{
    uint8_t *buf = malloc(4096 + 16);
    srand(3);
    for (int i = 0; i < 4096 + 16; i++)
        buf[i] = (uint8_t)rand();
    bool hw = crc32c_hw_available();
    for (size_t align = 0; align < 8; align++)
        for (size_t len = 0; len < 300; len++) {
            uint32_t a = crc32c_sw(0, buf + align, len);
            cr_assert_eq(crc32c(0, buf + align, len), a, "len %zu align %zu", len, align);
            if (hw)
                cr_assert_eq(crc32c_hw(0, buf + align, len), a, "len %zu align %zu", len, align);
        }
    uint32_t a = crc32c_sw(0, buf, 4096);
    cr_assert_eq(crc32c(0, buf, 4096), a);
    free(buf);
}

Test(crc32c, chaining)
{
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = crc32c(0, s, n);
    cr_assert_eq(whole, 0x22620404u);
    for (size_t cut = 0; cut <= n; cut++) {
        cr_assert_eq(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
        cr_assert_eq(crc32c_sw(crc32c_sw(0, s, cut), s + cut, n - cut), whole);
    }
}
