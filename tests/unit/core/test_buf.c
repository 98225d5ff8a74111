/* Unit tests for core/buf: growth (first allocation, doubling, one big
 * reservation), the read and write views, consume and its reset to the
 * front, compaction instead of growth, the append helpers (bytes,
 * strings, printf, decimal) and the edge cases: empty appends to an
 * unallocated buffer, shrinking, freeing twice. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"

static bool buf_is(const struct buf *b, const char *s)
{
    return buf_len(b) == strlen(s) && memcmp(buf_rptr(b), s, buf_len(b)) == 0;
}

Test(buf, starts_empty_and_unallocated)
{
    struct buf b;
    buf_init(&b);
    cr_assert_null(b.data);
    cr_assert_eq(buf_len(&b), 0);
    cr_assert_eq(buf_room(&b), 0);
    buf_append(&b, "", 0); /* no allocation, no memcpy from NULL */
    buf_append(&b, NULL, 0);
    cr_assert_null(b.data);
    cr_assert_eq(buf_len(&b), 0);
    buf_free(&b);
    buf_free(&b); /* a freed buffer is an empty one */
    cr_assert_null(b.data);
}

Test(buf, growth_doubles_from_256)
{
    struct buf b;
    buf_init(&b);
    char x[1000];
    memset(x, 'x', sizeof x);
    buf_append(&b, x, 1);
    cr_assert_eq(b.cap, 256);
    buf_append(&b, x, 255); /* exactly full: no growth */
    cr_assert_eq(b.cap, 256);
    cr_assert_eq(buf_room(&b), 0);
    buf_append(&b, x, 1);
    cr_assert_eq(b.cap, 512);
    buf_append(&b, x, 1000); /* 1257 bytes wanted: doubled until it fits */
    cr_assert_eq(b.cap, 2048);
    cr_assert_eq(buf_len(&b), 1257);
    for (size_t i = 0; i < buf_len(&b); i++)
        cr_assert_eq(buf_rptr(&b)[i], 'x');
    buf_free(&b);
}

Test(buf, reserve_and_commit_through_the_write_view)
{
    struct buf b;
    buf_init(&b);
    char *w = buf_reserve(&b, 5);
    cr_assert_eq(w, buf_wptr(&b));
    cr_assert_geq(buf_room(&b), 5);
    memcpy(w, "hello", 5);
    cr_assert_eq(buf_len(&b), 0); /* nothing is pending before the commit */
    buf_commit(&b, 5);
    cr_assert(buf_is(&b, "hello"));
    cr_assert_eq(buf_wptr(&b), buf_rptr(&b) + 5);
    /* A reservation that fits returns the same place and allocates nothing. */
    char *data = b.data;
    cr_assert_eq(buf_reserve(&b, 1), buf_wptr(&b));
    cr_assert_eq(b.data, data);
    buf_free(&b);
}

Test(buf, consume_moves_the_read_view_and_resets_when_empty)
{
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "abcdef");
    buf_consume(&b, 0);
    cr_assert(buf_is(&b, "abcdef"));
    buf_consume(&b, 2);
    cr_assert_eq(b.rpos, 2);
    cr_assert_eq(buf_rptr(&b), b.data + 2);
    cr_assert(buf_is(&b, "cdef"));
    buf_append_str(&b, "gh");
    cr_assert(buf_is(&b, "cdefgh"));
    buf_consume(&b, 6);
    cr_assert_eq(b.rpos, 0);
    cr_assert_eq(b.wpos, 0);
    cr_assert_eq(buf_room(&b), b.cap);
    buf_free(&b);
}

Test(buf, consuming_too_much_is_an_invariant_failure, .signal = SIGABRT)
{
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "ab");
    buf_consume(&b, 3);
}

Test(buf, compacts_instead_of_growing_when_the_front_is_free)
{
    struct buf b;
    buf_init(&b);
    char x[256];
    memset(x, 'y', sizeof x);
    buf_append(&b, x, 200);
    buf_append_str(&b, "tail");
    buf_consume(&b, 200);
    cr_assert_eq(b.cap, 256);
    char *data = b.data;
    /* 252 bytes after wpos are not there, but they are once compacted. */
    char *w = buf_reserve(&b, 252);
    cr_assert_eq(b.cap, 256);
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.rpos, 0);
    cr_assert_eq(w, b.data + 4);
    cr_assert(buf_is(&b, "tail"));
    /* One more byte than compaction frees: grows, data kept. */
    buf_consume(&b, 2);
    buf_reserve(&b, 256);
    cr_assert_geq(buf_room(&b), 256);
    cr_assert(buf_is(&b, "il"));
    buf_free(&b);
}

Test(buf, compact_and_reset)
{
    struct buf b;
    buf_init(&b);
    buf_compact(&b); /* nothing to move */
    buf_append_str(&b, "0123456789");
    buf_compact(&b);
    cr_assert(buf_is(&b, "0123456789"));
    buf_consume(&b, 7);
    buf_compact(&b);
    cr_assert_eq(b.rpos, 0);
    cr_assert(buf_is(&b, "789"));
    size_t cap = b.cap;
    buf_reset(&b);
    cr_assert_eq(buf_len(&b), 0);
    cr_assert_eq(b.cap, cap); /* storage kept */
    buf_free(&b);
}

Test(buf, printf_fits_grows_and_appends)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%d-%s", 42, "x"); /* from an unallocated buffer */
    cr_assert(buf_is(&b, "42-x"));
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "[%s]", big); /* larger than the room left */
    cr_assert_eq(buf_len(&b), 4 + 2 + 599);
    cr_assert_eq(buf_rptr(&b)[4], '[');
    cr_assert_eq(buf_rptr(&b)[buf_len(&b) - 1], ']');
    buf_printf(&b, "%s", "");
    cr_assert_eq(buf_len(&b), 605);
    buf_free(&b);
}

Test(buf, append_u64_every_width)
{
    struct buf b;
    buf_init(&b);
    const struct {
        uint64_t v;
        const char *s;
    } cases[] = {
        {0, "0"},
        {7, "7"},
        {10, "10"},
        {4294967295u, "4294967295"},
        {4294967296u, "4294967296"},
        {UINT64_MAX, "18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_reset(&b);
        buf_append_u64(&b, cases[i].v);
        cr_assert(buf_is(&b, cases[i].s), "%s", cases[i].s);
    }
    /* 10^k and 10^k - 1 for every k: the digit count changes there. */
    uint64_t p = 1;
    for (int k = 1; k <= 19; k++) {
        p *= 10;
        char want[48];
        buf_reset(&b);
        buf_append_u64(&b, p - 1);
        buf_append_str(&b, " ");
        buf_append_u64(&b, p);
        snprintf(want, sizeof want, "%llu %llu", (unsigned long long)(p - 1), (unsigned long long)p);
        cr_assert(buf_is(&b, want), "%s", want);
    }
    buf_free(&b);
}

Test(buf, shrink_if_empty)
{
    struct buf b;
    buf_init(&b);
    char x[1024] = {0};
    buf_append(&b, x, sizeof x);
    buf_shrink_if_empty(&b, 256); /* not empty: kept */
    cr_assert_not_null(b.data);
    cr_assert_eq(buf_len(&b), 1024);
    buf_consume(&b, 1024);
    buf_shrink_if_empty(&b, 4096); /* empty but within keep: kept */
    cr_assert_not_null(b.data);
    buf_shrink_if_empty(&b, 256); /* empty and large: freed */
    cr_assert_null(b.data);
    cr_assert_eq(b.cap, 0);
    buf_append_str(&b, "again");
    cr_assert(buf_is(&b, "again"));
    buf_free(&b);
}
