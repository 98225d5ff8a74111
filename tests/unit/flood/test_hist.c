/* Tests for flood/hist: index arithmetic, and percentiles against an exact
 * sort of the same values, within the stated precision
 * (exact <= reported < exact * (1 + 2^-S)). */
#include "flood/hist.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double unif(void) { return (double)(rnd() >> 11) * 0x1p-53; }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t exact_pct(const uint64_t *v, size_t n, double p)
{
    if (p >= 100)
        return v[n - 1];
    double r = ceil(p / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    return v[rank - 1];
}

static void check_against_sort(unsigned sub_bits, uint64_t *vals, size_t n)
{
    struct fl_hist h;
    fl_hist_init(&h, sub_bits, FL_HIST_MAX_US);
    for (size_t i = 0; i < n; i++)
        fl_hist_record(&h, vals[i]);
    qsort(vals, n, sizeof *vals, cmp_u64);
    static const double ps[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 99.999, 100};
    double tol = ldexp(1.0, -(int)sub_bits);
    for (size_t i = 0; i < ARRAY_SIZE(ps); i++) {
        uint64_t want = exact_pct(vals, n, ps[i]);
        uint64_t got = fl_hist_percentile(&h, ps[i]);
        cr_assert(got >= want, "S=%u p%g: got %lu < exact %lu", sub_bits, ps[i], got, want);
        cr_assert((double)got < (double)want * (1 + tol) || got == want,
                  "S=%u p%g: got %lu, exact %lu: beyond %g relative", sub_bits, ps[i], got, want, tol);
    }
    cr_assert_eq(fl_hist_percentile(&h, 100), vals[n - 1]);
    cr_assert_eq(h.min, vals[0]);
    cr_assert_eq(h.total, n);
    fl_hist_free(&h);
}

Test(flood_hist, index_roundtrip_covers_every_value)
{
    struct fl_hist h;
    fl_hist_init(&h, 7, UINT64_C(1) << 20);
    size_t prev = 0;
    for (uint64_t v = 0; v <= (UINT64_C(1) << 20); v++) {
        size_t i = fl_hist_index(&h, v);
        cr_assert(i == prev || i == prev + 1, "index jumps at %lu", v);
        prev = i;
        cr_assert(fl_hist_lowest(&h, i) <= v && v <= fl_hist_highest(&h, i), "v=%lu idx=%zu [%lu, %lu]", v,
                  i, fl_hist_lowest(&h, i), fl_hist_highest(&h, i));
        /* Counter width below 2^-S of its lowest value. */
        uint64_t w = fl_hist_highest(&h, i) - fl_hist_lowest(&h, i) + 1;
        cr_assert(w == 1 || (double)w <= (double)fl_hist_lowest(&h, i) / 128.0);
    }
    cr_assert_eq(prev + 1, h.n);
    fl_hist_free(&h);
}

Test(flood_hist, small_values_are_exact)
{
    struct fl_hist h;
    fl_hist_init(&h, FL_HIST_PRECISE, FL_HIST_MAX_US);
    for (uint64_t v = 1; v <= 2000; v++)
        fl_hist_record(&h, v);
    cr_assert_eq(fl_hist_percentile(&h, 50), 1000);
    cr_assert_eq(fl_hist_percentile(&h, 99), 1980);
    cr_assert_eq(fl_hist_percentile(&h, 0), 1);
    cr_assert_eq(fl_hist_percentile(&h, 100), 2000);
    cr_assert_float_eq(fl_hist_mean(&h), 1000.5, 1e-9);
    fl_hist_free(&h);
}

Test(flood_hist, uniform_matches_sort)
{
    size_t n = 200000;
    uint64_t *v = xmalloc(n * sizeof *v);
    for (unsigned S = 7; S <= 10; S += 3) {
        for (size_t i = 0; i < n; i++)
            v[i] = rnd() % 5000000;
        check_against_sort(S, v, n);
    }
    free(v);
}

Test(flood_hist, long_tail_matches_sort)
{
    /* Log-uniform over 1 us .. 1 hour, plus a few huge outliers: the shape
     * of latencies behind a stalled server. */
    size_t n = 300000;
    uint64_t *v = xmalloc(n * sizeof *v);
    for (unsigned S = 7; S <= 10; S += 3) {
        for (size_t i = 0; i < n; i++)
            v[i] = (uint64_t)exp(unif() * log(3.6e9));
        for (size_t i = 0; i < 30; i++)
            v[rnd() % n] = 3000000000ull + rnd() % 600000000ull;
        check_against_sort(S, v, n);
    }
    free(v);
}

Test(flood_hist, few_values)
{
    uint64_t v[] = {123456789};
    check_against_sort(FL_HIST_PRECISE, v, 1);
    uint64_t w[] = {5, 7000, 7001, 900000};
    check_against_sort(FL_HIST_COARSE, w, 4);
}

Test(flood_hist, above_highest_is_clamped_but_max_exact)
{
    struct fl_hist h;
    fl_hist_init(&h, 7, 1 << 20);
    fl_hist_record(&h, 10);
    fl_hist_record(&h, UINT64_C(1) << 30);
    cr_assert_eq(h.max, UINT64_C(1) << 30);
    cr_assert_eq(fl_hist_percentile(&h, 100), UINT64_C(1) << 30);
    cr_assert_eq(fl_hist_percentile(&h, 50), 10);
    uint64_t p99 = fl_hist_percentile(&h, 99);
    cr_assert(p99 >= (1 << 20) * 0.99 && p99 <= (UINT64_C(1) << 30));
    fl_hist_free(&h);
}

Test(flood_hist, merge_equals_single)
{
    struct fl_hist a, b, all;
    fl_hist_init(&a, FL_HIST_PRECISE, FL_HIST_MAX_US);
    fl_hist_init(&b, FL_HIST_PRECISE, FL_HIST_MAX_US);
    fl_hist_init(&all, FL_HIST_PRECISE, FL_HIST_MAX_US);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = rnd() % 100000 + (i % 7 == 0 ? 500000 : 0);
        fl_hist_record(i % 3 ? &a : &b, v);
        fl_hist_record(&all, v);
    }
    fl_hist_add(&a, &b);
    cr_assert_eq(a.total, all.total);
    cr_assert_eq(a.min, all.min);
    cr_assert_eq(a.max, all.max);
    cr_assert_eq(a.sum, all.sum);
    cr_assert(memcmp(a.counts, all.counts, a.n * sizeof *a.counts) == 0);
    cr_assert_float_eq(fl_hist_stdev(&a), fl_hist_stdev(&all), 1e-6 * fl_hist_stdev(&all));
    fl_hist_free(&a);
    fl_hist_free(&b);
    fl_hist_free(&all);
}

Test(flood_hist, sparse_roundtrip_and_reset)
{
    struct fl_hist h, back;
    struct fl_hist_sparse sp = {0};
    fl_hist_init(&h, FL_HIST_COARSE, FL_HIST_MAX_US);
    fl_hist_init(&back, FL_HIST_COARSE, FL_HIST_MAX_US);
    for (int i = 0; i < 5000; i++)
        fl_hist_record(&h, 100 + rnd() % 20000);
    fl_hist_compact(&h, &sp);
    cr_assert(sp.n > 0 && sp.n < h.n);
    fl_hist_add_sparse(&back, &sp);
    fl_hist_add_sparse(&back, &sp);
    cr_assert_eq(back.total, 2 * h.total);
    for (double p = 0; p <= 100; p += 12.5)
        cr_assert_eq(fl_hist_percentile(&back, p), fl_hist_percentile(&h, p));
    fl_hist_reset(&h);
    cr_assert_eq(h.total, 0);
    cr_assert_eq(fl_hist_percentile(&h, 50), 0);
    fl_hist_compact(&h, &sp);
    cr_assert_eq(sp.n, 0);
    fl_hist_sparse_free(&sp);
    fl_hist_free(&h);
    fl_hist_free(&back);
}
