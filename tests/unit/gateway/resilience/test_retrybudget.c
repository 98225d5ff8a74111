/* Unit tests for the retry budget (src/gateway/resilience/retrybudget.c) against a
 * controlled clock: the floor, the ratio, the sliding window, an exact
 * comparison with a reference model over a long random run, and eight
 * threads that must never overdraw the budget. */
#include <criterion/criterion.h>

#include "gateway/resilience/retrybudget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000ull
#define SEC 1000000ull
#define T0 (5000 * SEC)

static struct gw_rb *mk(double ratio, uint32_t min_per_sec, uint64_t window_us, uint32_t buckets)
{
    struct gw_rb_cfg c = {
        .ratio = ratio, .min_per_sec = min_per_sec, .window_us = window_us, .buckets = buckets};
    return gw_rb_new(&c);
}

/* Grants as many retries as the budget allows at now; returns how many. */
static int drain(struct gw_rb *rb, uint64_t now)
{
    int n = 0;
    while (gw_rb_try_retry(rb, now)) {
        n++;
        cr_assert_lt(n, 1000000, "budget never ran out");
    }
    return n;
}

Test(rb_cfg, defaults_and_checks)
{
    struct gw_rb_cfg c;
    gw_rb_cfg_default(&c);
    cr_assert_float_eq(c.ratio, 0.2, 1e-9);
    cr_assert_eq(c.min_per_sec, 10);
    cr_assert_eq(c.window_us, 10 * SEC);
    cr_assert_eq(c.buckets, 10);
    char *err = NULL;
    cr_assert_eq(gw_rb_cfg_check(&c, &err), 0);

    struct gw_rb_cfg bad = c;
    bad.ratio = -0.1;
    cr_assert_eq(gw_rb_cfg_check(&bad, &err), -1);
    cr_assert(strstr(err, "ratio"));
    free(err);
    bad = c;
    bad.buckets = 0;
    cr_assert_eq(gw_rb_cfg_check(&bad, &err), -1);
    free(err);
    bad = c;
    bad.buckets = GW_RB_MAX_BUCKETS + 1;
    cr_assert_eq(gw_rb_cfg_check(&bad, &err), -1);
    free(err);
    bad = c;
    bad.window_us = 0;
    cr_assert_eq(gw_rb_cfg_check(&bad, &err), -1);
    free(err);
}

Test(rb_budget, floor_without_traffic)
{
    struct gw_rb *rb = mk(0.2, 10, 10 * SEC, 10);
    cr_assert_eq(drain(rb, T0), 100, "10 per second over 10 s");
    struct gw_rb_stats st;
    gw_rb_get_stats(rb, T0, &st);
    cr_assert_eq(st.retries, 100);
    cr_assert_eq(st.denied, 1);
    cr_assert_eq(st.window_retries, 100);
    cr_assert_eq(st.budget, 100);
    gw_rb_free(rb);
}

Test(rb_budget, ratio_of_requests)
{
    struct gw_rb *rb = mk(0.2, 10, 10 * SEC, 10);
    for (int i = 0; i < 1000; i++)
        gw_rb_request(rb, T0);
    cr_assert_eq(drain(rb, T0), 200, "20%% of 1000 beats the floor of 100");
    /* Five more requests earn exactly one more retry. */
    for (int i = 0; i < 4; i++)
        gw_rb_request(rb, T0);
    cr_assert_not(gw_rb_try_retry(rb, T0));
    gw_rb_request(rb, T0);
    cr_assert(gw_rb_try_retry(rb, T0));
    cr_assert_not(gw_rb_try_retry(rb, T0));
    gw_rb_free(rb);
}

Test(rb_budget, below_floor_traffic_uses_floor)
{
    struct gw_rb *rb = mk(0.2, 10, 10 * SEC, 10);
    for (int i = 0; i < 300; i++)
        gw_rb_request(rb, T0);
    cr_assert_eq(drain(rb, T0), 100, "max(100, 60)");
    gw_rb_free(rb);
}

Test(rb_budget, zero_ratio_zero_floor_never_retries)
{
    struct gw_rb *rb = mk(0.0, 0, 10 * SEC, 10);
    for (int i = 0; i < 1000; i++)
        gw_rb_request(rb, T0);
    cr_assert_eq(drain(rb, T0), 0);
    gw_rb_free(rb);
}

Test(rb_window, retries_and_requests_slide_out)
{
    struct gw_rb *rb = mk(0.5, 0, 10 * SEC, 10);
    for (int i = 0; i < 100; i++)
        gw_rb_request(rb, T0);
    cr_assert_eq(drain(rb, T0), 50);
    /* Still the same window 9.999 s later. */
    cr_assert_not(gw_rb_try_retry(rb, T0 + 10 * SEC - 1));
    /* The first second leaves at 10 s: nothing left, no budget. */
    cr_assert_not(gw_rb_try_retry(rb, T0 + 10 * SEC));
    struct gw_rb_stats st;
    gw_rb_get_stats(rb, T0 + 10 * SEC, &st);
    cr_assert_eq(st.window_requests, 0);
    cr_assert_eq(st.window_retries, 0);
    cr_assert_eq(st.requests, 100);
    cr_assert_eq(st.retries, 50);
    gw_rb_free(rb);
}

Test(rb_window, partial_slide)
{
    struct gw_rb *rb = mk(0.5, 0, 10 * SEC, 10);
    for (int i = 0; i < 10; i++)
        gw_rb_request(rb, T0); /* second 0 */
    for (int i = 0; i < 10; i++)
        gw_rb_request(rb, T0 + 5 * SEC); /* second 5 */
    cr_assert_eq(drain(rb, T0 + 5 * SEC), 10);
    /* At 10 s second 0 leaves: 10 requests, 10 retries, budget 5. */
    cr_assert_eq(drain(rb, T0 + 10 * SEC), 0);
    for (int i = 0; i < 10; i++)
        gw_rb_request(rb, T0 + 10 * SEC);
    cr_assert_eq(drain(rb, T0 + 10 * SEC), 0, "20 requests: budget 10, 10 used");
    /* At 15 s second 5 (with its 10 retries) leaves: 10 requests -> 5. */
    cr_assert_eq(drain(rb, T0 + 15 * SEC), 5);
    gw_rb_free(rb);
}

Test(rb_window, lagging_clock_counts_in_newest_bucket)
{
    struct gw_rb *rb = mk(1.0, 0, 3 * SEC, 3);
    for (int i = 0; i < 4; i++)
        gw_rb_request(rb, T0 + 2 * SEC);
    cr_assert(gw_rb_try_retry(rb, T0 + 2 * SEC));
    /* A thread whose clock reads earlier: the grant goes to second 2. */
    cr_assert(gw_rb_try_retry(rb, T0 + 1 * SEC));
    cr_assert_eq(drain(rb, T0 + 1 * SEC), 2);
    /* Everything leaves together at second 5. */
    struct gw_rb_stats st;
    gw_rb_get_stats(rb, T0 + 4 * SEC, &st);
    cr_assert_eq(st.window_retries, 4);
    gw_rb_get_stats(rb, T0 + 5 * SEC, &st);
    cr_assert_eq(st.window_retries, 0);
    gw_rb_free(rb);
}

/* Reference model: every event kept with its tick; sums recomputed. */
#define MAXEV 200000
struct model {
    uint32_t tick[MAXEV];
    bool retry[MAXEV];
    int n;
};

Test(rb_window, matches_reference_model)
{
    static struct model m;
    const uint64_t bucket = 250 * MS;
    const uint32_t nb = 8; /* 2 s window */
    const double ratio = 0.25;
    const uint32_t floor_ps = 3;
    struct gw_rb *rb = mk(ratio, floor_ps, nb * bucket, nb);
    unsigned seed = 12345;
    uint64_t now = T0;
    m.n = 0;
    int granted = 0, denied = 0;
    for (int i = 0; i < 150000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 8) % 1000;
        now += (r % 7) * 37 * 10; /* irregular steps, a few ms on average */
        uint32_t t = (uint32_t)(now / bucket);
        if (r < 700) {
            gw_rb_request(rb, now);
            m.tick[m.n] = t;
            m.retry[m.n++] = false;
        } else {
            uint64_t req = 0, ret = 0;
            for (int k = m.n - 1; k >= 0 && t - m.tick[k] < nb; k--) {
                if (m.retry[k])
                    ret++;
                else
                    req++;
            }
            uint64_t fl = (uint64_t)floor_ps * 2;
            uint64_t byr = (uint64_t)(req * 250000 / 1000000);
            bool want = ret < (byr > fl ? byr : fl);
            bool got = gw_rb_try_retry(rb, now);
            cr_assert_eq(got, want, "event %d at tick %u: req %lu ret %lu", i, t,
                         (unsigned long)req, (unsigned long)ret);
            if (got) {
                m.tick[m.n] = t;
                m.retry[m.n++] = true;
                granted++;
            } else {
                denied++;
            }
        }
        cr_assert_lt(m.n, MAXEV);
    }
    cr_assert_gt(granted, 1000);
    cr_assert_gt(denied, 1000, "the budget must have been binding");
    gw_rb_free(rb);
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 8

struct hammer {
    struct gw_rb *rb;
    pthread_barrier_t *bar;
    _Atomic uint64_t *now;
    _Atomic uint64_t granted;
    _Atomic uint64_t requests;
    int iters;
    bool mixed;
    bool advance;
};

static void *hammer_fn(void *arg)
{
    struct hammer *h = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    pthread_barrier_wait(h->bar);
    for (int i = 0; i < h->iters; i++) {
        seed = seed * 1103515245u + 12345u;
        if (h->advance && ((seed >> 10) & 63) == 0)
            atomic_fetch_add(h->now, 3 * MS);
        uint64_t now = atomic_load(h->now);
        if (h->mixed && ((seed >> 16) % 4) != 0) {
            gw_rb_request(h->rb, now);
            atomic_fetch_add(&h->requests, 1);
        } else if (gw_rb_try_retry(h->rb, now)) {
            atomic_fetch_add(&h->granted, 1);
        }
    }
    return NULL;
}

static void run_hammer(struct hammer *h)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    h->bar = &bar;
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, hammer_fn, h);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
}

Test(rb_threads, eight_threads_grant_exactly_the_budget)
{
    struct gw_rb *rb = mk(0.2, 10, 10 * SEC, 10);
    for (int i = 0; i < 5000; i++)
        gw_rb_request(rb, T0);
    _Atomic uint64_t now = T0;
    struct hammer h = {.rb = rb, .now = &now, .iters = 5000};
    run_hammer(&h);
    cr_assert_eq(atomic_load(&h.granted), 1000, "0.2 * 5000, no more and no less");
    gw_rb_free(rb);
}

Test(rb_threads, eight_threads_mixed_never_exceed)
{
    /* Requests and retries from 8 threads inside one window: the grants
     * never exceed floor + ratio * requests (nor the tighter max form). */
    struct gw_rb *rb = mk(0.2, 10, 10 * SEC, 10);
    _Atomic uint64_t now = T0;
    struct hammer h = {.rb = rb, .now = &now, .iters = 40000, .mixed = true};
    run_hammer(&h);
    uint64_t req = atomic_load(&h.requests);
    uint64_t got = atomic_load(&h.granted);
    uint64_t by_ratio = req / 5;
    cr_assert_leq(got, 100 + by_ratio);
    cr_assert_leq(got, by_ratio > 100 ? by_ratio : 100);
    cr_assert_geq(got * 100, by_ratio * 95, "retries were asked for more often than allowed");
    gw_rb_free(rb);
}

Test(rb_threads, eight_threads_moving_clock)
{
    /* The clock moves on while 8 threads work; the whole run spans about
     * (8 * 30000 / 64) * 3 ms ~ 11 s, so at most two windows' floors. */
    struct gw_rb *rb = mk(0.2, 10, 10 * SEC, 10);
    _Atomic uint64_t now = T0;
    struct hammer h = {.rb = rb, .now = &now, .iters = 30000, .mixed = true, .advance = true};
    run_hammer(&h);
    uint64_t span = atomic_load(&now) - T0;
    uint64_t windows = span / (10 * SEC) + 1;
    uint64_t req = atomic_load(&h.requests);
    uint64_t got = atomic_load(&h.granted);
    cr_assert_leq(got, windows * 100 + req / 5, "got %lu of %lu requests over %lu windows",
                  (unsigned long)got, (unsigned long)req, (unsigned long)windows);
    struct gw_rb_stats st;
    gw_rb_get_stats(rb, atomic_load(&now), &st);
    cr_assert_eq(st.retries, got);
    cr_assert_eq(st.requests, req);
    cr_assert_leq(st.window_retries, st.budget);
    gw_rb_free(rb);
}
