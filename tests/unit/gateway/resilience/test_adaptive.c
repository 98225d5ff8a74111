/* Unit tests for the adaptive concurrency limit (src/gateway/resilience/adaptive.c)
 * against a controlled clock: the no-load RTT measurement, the exact
 * arithmetic of one gradient and one AIMD step, windows, drops, the
 * re-measurement rules, several threads sampling at once; then closed-loop
 * runs against a simulated backend (sim_backend.h) in which the limit must
 * settle near the backend's real concurrency, back off when it slows down
 * or shrinks, and recover when it comes back. */
#include <criterion/criterion.h>

#include "gateway/resilience/adaptive.h"
#include "gateway/sim_backend.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000ull
#define SEC 1000000ull
#define T0 (100 * SEC)

static struct gw_limit_cfg small_cfg(enum gw_limit_algo algo)
{
    struct gw_limit_cfg c;
    gw_limit_cfg_default(&c);
    c.algo = algo;
    c.min_rtt_samples = 5;
    c.min_rtt_interval_us = 0;
    return c;
}

/* Feeds n samples of rtt at time now (all completing at now). */
static void feed(struct gw_limit *l, uint64_t now, uint64_t rtt, int n, uint32_t inflight,
                 bool dropped)
{
    for (int i = 0; i < n; i++)
        gw_limit_on_sample(l, now, rtt, inflight, dropped);
}

/* A limiter past its first measurement, min_rtt = 10 ms, at T0 + 1 s. */
static struct gw_limit *measured(struct gw_limit_cfg *c)
{
    struct gw_limit *l = gw_limit_new(c, T0);
    feed(l, T0 + SEC, 10 * MS, (int)c->min_rtt_samples, 1, false);
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_not(st.measuring);
    cr_assert_eq(st.min_rtt_us, 10 * MS);
    cr_assert_eq(gw_limit_get(l), c->initial_limit);
    return l;
}

/* ------------------------------------------------------------- config */

Test(adaptive_cfg, defaults_and_checks)
{
    struct gw_limit_cfg c;
    gw_limit_cfg_default(&c);
    char *err = NULL;
    cr_assert_eq(gw_limit_cfg_check(&c, &err), 0);
    cr_assert_eq(c.algo, GW_LIMIT_GRADIENT);
    cr_assert_eq(c.initial_limit, 20);
    cr_assert_eq(c.min_limit, 4);
    cr_assert_eq(c.max_limit, 1000);
    cr_assert_eq(c.window_us, 100 * MS);
    cr_assert_eq(c.min_rtt_interval_us, 60 * SEC);
    cr_assert_eq(c.min_rtt_samples, 25);

    struct gw_limit_cfg b = c;
    b.min_limit = 0;
    cr_assert_eq(gw_limit_cfg_check(&b, &err), -1);
    free(err);
    b = c;
    b.initial_limit = 2000;
    cr_assert_eq(gw_limit_cfg_check(&b, &err), -1);
    cr_assert(strstr(err, "initial_limit"));
    free(err);
    b = c;
    b.min_rtt_samples = GW_LIMIT_MAX_PROBE_SAMPLES + 1;
    cr_assert_eq(gw_limit_cfg_check(&b, &err), -1);
    free(err);
    b = c;
    b.backoff = 0.2;
    cr_assert_eq(gw_limit_cfg_check(&b, &err), -1);
    free(err);
    b = c;
    b.smoothing = 0;
    cr_assert_eq(gw_limit_cfg_check(&b, &err), -1);
    free(err);
    b = c;
    b.tolerance = 0.9;
    cr_assert_eq(gw_limit_cfg_check(&b, &err), -1);
    free(err);
}

Test(adaptive_cfg, algo_names)
{
    cr_assert_eq(gw_limit_algo_parse("gradient", 8), GW_LIMIT_GRADIENT);
    cr_assert_eq(gw_limit_algo_parse("AIMD", 4), GW_LIMIT_AIMD);
    cr_assert_eq(gw_limit_algo_parse("vegas", 5), -1);
    cr_assert_str_eq(gw_limit_algo_name(GW_LIMIT_AIMD), "aimd");
    cr_assert_str_eq(gw_limit_algo_name(GW_LIMIT_GRADIENT), "gradient");
}

/* ---------------------------------------------------- min RTT measuring */

Test(adaptive_measure, starts_pinned_and_takes_the_median)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    struct gw_limit *l = gw_limit_new(&c, T0);
    cr_assert_eq(gw_limit_get(l), 4, "pinned at min_limit while measuring");
    /* A request that started before the measurement: not a sample. */
    gw_limit_on_sample(l, T0 + 5 * MS, 6 * MS, 30, false);
    /* rtt 0 is not a sample; drops are not either. */
    gw_limit_on_sample(l, T0 + 5 * MS, 0, 1, false);
    gw_limit_on_sample(l, T0 + 5 * MS, 1 * MS, 1, true);
    uint64_t rtts[] = {10, 12, 11, 50, 9};
    for (int i = 0; i < 4; i++)
        gw_limit_on_sample(l, T0 + 100 * MS, rtts[i] * MS, 1, false);
    cr_assert_eq(gw_limit_get(l), 4);
    gw_limit_on_sample(l, T0 + 100 * MS, rtts[4] * MS, 1, false);
    cr_assert_eq(gw_limit_get(l), 20, "initial limit once measured");
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.min_rtt_us, 11 * MS, "median of 9 10 11 12 50");
    cr_assert_eq(st.measurements, 1);
    cr_assert_eq(st.samples, 7, "rtt 0 is not counted");
    cr_assert_eq(st.drops, 1);
    cr_assert_not(st.measuring);
    gw_limit_free(l);
}

Test(adaptive_measure, periodic_remeasure)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    c.min_rtt_interval_us = 10 * SEC;
    struct gw_limit *l = measured(&c); /* measured at T0 + 1 s */
    feed(l, T0 + 11 * SEC - 1, 10 * MS, 10, 20, false);
    cr_assert_neq(gw_limit_get(l), 4);
    /* The first sample at or after T0 + 11 s starts a measurement. */
    gw_limit_on_sample(l, T0 + 11 * SEC, 10 * MS, 20, false);
    cr_assert_eq(gw_limit_get(l), 4);
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert(st.measuring);
    double kept = st.estimate;
    /* The service is now slower: 30 ms. Requests sent before the pin do
     * not count. */
    feed(l, T0 + 11 * SEC + 20 * MS, 30 * MS, 10, 20, false);
    cr_assert_eq(gw_limit_get(l), 4);
    feed(l, T0 + 11 * SEC + 40 * MS, 30 * MS, 5, 4, false);
    gw_limit_get_stats(l, &st);
    cr_assert_not(st.measuring);
    cr_assert_eq(st.min_rtt_us, 30 * MS, "a measurement may raise min_rtt");
    cr_assert_eq(st.measurements, 2);
    cr_assert_float_eq(st.estimate, kept, 1e-9, "the estimate is restored");
    cr_assert_eq(gw_limit_get(l), (uint32_t)lround(kept));
    gw_limit_free(l);
}

/* -------------------------------------------------------- one window */

Test(adaptive_gradient, one_step_up_and_down)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    /* RTT at the no-load level: g = 1.1; 20 * 1.1 + sqrt(20) = 26.47,
     * smoothed with 0.5: 23.24. */
    feed(l, t + 100 * MS, 10 * MS, 10, 20, false);
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, 10.0 + (22.0 + sqrt(20.0)) / 2, 1e-9);
    cr_assert_eq(gw_limit_get(l), 23);
    cr_assert_eq(st.last_rtt_us, 10 * MS);
    double e = st.estimate;
    /* RTT doubled: g = 11 / 20 = 0.55, no headroom while queueing. */
    feed(l, t + 200 * MS, 20 * MS, 10, 23, false);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, e / 2 + e * 0.55 / 2, 1e-9);
    /* RTT tripled: g clamps at 0.5. */
    e = st.estimate;
    feed(l, t + 300 * MS, 40 * MS, 10, 23, false);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, e * 0.75, 1e-9);
    gw_limit_free(l);
}

Test(adaptive_gradient, app_limited_does_not_grow)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    /* Only 9 of 20 in flight at most: using less than half its limit. */
    feed(l, t + 100 * MS, 10 * MS, 10, 9, false);
    cr_assert_eq(gw_limit_get(l), 20);
    /* Queueing still shrinks it even when app limited. */
    feed(l, t + 200 * MS, 20 * MS, 10, 9, false);
    cr_assert_lt(gw_limit_get(l), 20);
    gw_limit_free(l);
}

Test(adaptive_gradient, window_needs_time_and_samples)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    feed(l, t + 50 * MS, 10 * MS, 30, 20, false); /* many, too early */
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.updates, 0);
    gw_limit_free(l);

    l = measured(&c);
    feed(l, t + 500 * MS, 10 * MS, 9, 20, false); /* late, too few */
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.updates, 0);
    feed(l, t + 500 * MS, 10 * MS, 1, 20, false);
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.updates, 1);
    gw_limit_free(l);
}

Test(adaptive_gradient, drops_back_off_within_one_rtt)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    c.initial_limit = 100;
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    /* A drop closes the window once it is one min_rtt (10 ms) old. */
    feed(l, t + 5 * MS, 10 * MS, 3, 100, false);
    gw_limit_on_sample(l, t + 9 * MS, 1 * MS, 100, true);
    cr_assert_eq(gw_limit_get(l), 100);
    gw_limit_on_sample(l, t + 10 * MS, 1 * MS, 100, true);
    cr_assert_eq(gw_limit_get(l), 90, "one backoff per window however many drops");
    gw_limit_on_sample(l, t + 15 * MS, 1 * MS, 100, true);
    gw_limit_on_sample(l, t + 20 * MS, 1 * MS, 100, true);
    cr_assert_eq(gw_limit_get(l), 81);
    /* timeout_us turns slow samples into drops. */
    gw_limit_free(l);
    c.timeout_us = 50 * MS;
    l = measured(&c);
    gw_limit_on_sample(l, t + 20 * MS, 50 * MS, 100, false);
    cr_assert_eq(gw_limit_get(l), 90);
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.drops, 1);
    gw_limit_free(l);
}

Test(adaptive_gradient, bounded_by_min_and_max)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    c.max_limit = 30;
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    for (int i = 1; i <= 20; i++)
        feed(l, t + (uint64_t)i * 100 * MS, 10 * MS, 10, 30, false);
    cr_assert_eq(gw_limit_get(l), 30);
    for (int i = 21; i <= 40; i++)
        feed(l, t + (uint64_t)i * 100 * MS, 10 * MS, 10, 30, true);
    cr_assert_eq(gw_limit_get(l), 4);
    gw_limit_free(l);
}

Test(adaptive_gradient, stale_min_rtt_is_measured_again)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    /* The service now takes 40 ms even unloaded: the limit falls to the
     * floor, and three windows there still queueing trigger a new
     * measurement. */
    int w = 1;
    struct gw_limit_stats st;
    for (; w < 40; w++) {
        feed(l, t + (uint64_t)w * 100 * MS, 40 * MS, 10, 20, false);
        gw_limit_get_stats(l, &st);
        if (st.measuring)
            break;
    }
    cr_assert(st.measuring, "never re-measured");
    cr_assert_float_eq(st.estimate, 4.0, 1e-9);
    uint64_t m = t + (uint64_t)w * 100 * MS;
    feed(l, m + 40 * MS, 40 * MS, 5, 4, false);
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.min_rtt_us, 40 * MS);
    /* Now it grows again. */
    for (int i = 1; i <= 20; i++)
        feed(l, m + (uint64_t)i * 100 * MS, 40 * MS, 10, 1000, false);
    cr_assert_gt(gw_limit_get(l), 40);
    gw_limit_free(l);
}

Test(adaptive_gradient, much_faster_service_is_measured_again)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_GRADIENT);
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    struct gw_limit_stats st;
    /* 9 ms: a little faster, adopted as is. */
    feed(l, t + 100 * MS, 9 * MS, 10, 20, false);
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.min_rtt_us, 9 * MS);
    cr_assert_not(st.measuring);
    /* 5 ms: much faster, measured properly. */
    feed(l, t + 200 * MS, 5 * MS, 10, 20, false);
    gw_limit_get_stats(l, &st);
    cr_assert(st.measuring);
    gw_limit_free(l);
}

Test(adaptive_aimd, additive_increase_multiplicative_decrease)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_AIMD);
    struct gw_limit *l = measured(&c);
    uint64_t t = T0 + SEC;
    struct gw_limit_stats st;
    /* 10 samples at limit 20: half a round trip, +0.5. */
    feed(l, t + 100 * MS, 11 * MS, 10, 20, false);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, 20.5, 1e-9);
    /* 400 samples: 19.5 round trips, capped at a tenth of the limit. */
    feed(l, t + 150 * MS, 12 * MS, 399, 20, false);
    feed(l, t + 200 * MS, 12 * MS, 1, 20, false);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, 20.5 * 1.1, 1e-9);
    /* Above 1.2 * min_rtt: times 0.9. */
    double e = st.estimate;
    feed(l, t + 300 * MS, 13 * MS, 10, 20, false);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, e * 0.9, 1e-9);
    /* App limited: no increase. */
    e = st.estimate;
    feed(l, t + 400 * MS, 10 * MS, 10, 5, false);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, e, 1e-9);
    /* Drop: times 0.9 even at no-load latency. */
    feed(l, t + 500 * MS, 10 * MS, 9, 20, false);
    feed(l, t + 500 * MS, 10 * MS, 1, 20, true);
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, e * 0.9, 1e-9);
    gw_limit_free(l);
}

Test(adaptive_aimd, small_limit_steps_by_at_least_increase)
{
    struct gw_limit_cfg c = small_cfg(GW_LIMIT_AIMD);
    c.initial_limit = 5;
    c.increase = 2;
    struct gw_limit *l = measured(&c);
    feed(l, T0 + SEC + 100 * MS, 10 * MS, 100, 5, false);
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_float_eq(st.estimate, 7.0, 1e-9);
    gw_limit_free(l);
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 8

struct sampler {
    struct gw_limit *l;
    pthread_barrier_t *bar;
    _Atomic uint64_t *clock;
    int n;
};

static void *sampler_fn(void *arg)
{
    struct sampler *s = arg;
    pthread_barrier_wait(s->bar);
    for (int i = 0; i < s->n; i++) {
        uint64_t now = atomic_fetch_add(s->clock, 10);
        gw_limit_on_sample(s->l, now, 10 * MS + (uint64_t)(i % 7) * 100, (uint32_t)(i % 50),
                           i % 997 == 0);
        uint32_t lim = gw_limit_get(s->l);
        if (lim < 4 || lim > 1000)
            abort();
    }
    return NULL;
}

Test(adaptive_threads, concurrent_samples_all_counted)
{
    struct gw_limit_cfg c;
    gw_limit_cfg_default(&c);
    struct gw_limit *l = gw_limit_new(&c, T0);
    _Atomic uint64_t clock = T0 + 20 * MS;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    struct sampler s = {.l = l, .bar = &bar, .clock = &clock, .n = 50000};
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, sampler_fn, &s);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    cr_assert_eq(st.samples, NTHREADS * 50000ull);
    cr_assert_gt(st.updates, 10);
    cr_assert_geq(st.measurements, 1);
    cr_assert_geq(st.limit, 4);
    cr_assert_leq(st.limit, 1000);
    gw_limit_free(l);
}

/* --------------------------------------------- closed loop, simulated */

/* The backend's behaviour over time, for the scenarios below. */
struct phase {
    uint64_t from_us; /* applies from this time on */
    uint32_t cap;
    uint64_t service_us;
};

struct loop_result {
    double avg_limit[8];  /* time-average limit over each report span */
    double throughput[8]; /* completions per second over each span */
    uint64_t drops;
    uint64_t samples;
};

/* Drives the limiter with unlimited demand: as many requests in flight as
 * the limit allows, each sent to the simulated backend, each completion
 * fed back as a sample. spans[] (pairs of start/end) are reported. */
static void closed_loop(const struct gw_limit_cfg *cfg, const struct phase *ph, int nph,
                        uint32_t max_queue, uint64_t end_us, const uint64_t (*spans)[2],
                        int nspans, struct loop_result *out)
{
    enum { RING = 1 << 16 };
    static uint64_t sent[RING];
    struct simb b;
    simb_init(&b, ph[0].cap, ph[0].service_us, 20, 0x5eed);
    b.max_queue = max_queue;
    struct gw_limit *l = gw_limit_new(cfg, 0);
    memset(out, 0, sizeof(*out));
    uint64_t served_at[8][2] = {{0}};
    uint32_t id = 0, inflight = 0;
    uint64_t now = 0, last = 0;
    int p = 0;
    while (now < end_us) {
        while (inflight < gw_limit_get(l)) {
            sent[id % RING] = now;
            simb_send(&b, now, id % RING);
            id++;
            inflight++;
        }
        struct simb_ev e = simb_pop(&b);
        uint32_t lim = gw_limit_get(l);
        for (int s = 0; s < nspans; s++) {
            uint64_t a = FG_MAX(last, spans[s][0]), z = FG_MIN(e.at_us, spans[s][1]);
            if (z > a)
                out->avg_limit[s] += (double)lim * (double)(z - a);
            if (last < spans[s][0] && e.at_us >= spans[s][0])
                served_at[s][0] = b.served;
            if (last < spans[s][1] && e.at_us >= spans[s][1])
                served_at[s][1] = b.served;
        }
        last = now = e.at_us;
        while (p + 1 < nph && now >= ph[p + 1].from_us) {
            p++;
            b.cap = ph[p].cap;
            b.service_us = ph[p].service_us;
        }
        gw_limit_on_sample(l, now, now - sent[e.id], inflight, e.dropped);
        inflight--;
    }
    for (int s = 0; s < nspans; s++) {
        double len = (double)(spans[s][1] - spans[s][0]);
        out->avg_limit[s] /= len;
        out->throughput[s] = (double)(served_at[s][1] - served_at[s][0]) / (len / 1e6);
    }
    struct gw_limit_stats st;
    gw_limit_get_stats(l, &st);
    out->drops = st.drops;
    out->samples = st.samples;
    gw_limit_free(l);
    simb_close(&b);
}

static void check_converges(enum gw_limit_algo algo, uint32_t cap)
{
    struct gw_limit_cfg c;
    gw_limit_cfg_default(&c);
    c.algo = algo;
    const uint64_t S = 20 * MS;
    struct phase ph[] = {{0, cap, S}};
    const uint64_t spans[][2] = {{10 * SEC, 40 * SEC}};
    struct loop_result r;
    closed_loop(&c, ph, 1, 0, 40 * SEC, spans, 1, &r);
    double ideal = cap * 1e6 / (double)S;
    printf("adaptive %-8s C=%-4u settled limit %.1f (%.2f C), "
           "throughput %.0f/s (%.3f of capacity)\n",
           gw_limit_algo_name(algo), cap, r.avg_limit[0], r.avg_limit[0] / cap, r.throughput[0],
           r.throughput[0] / ideal);
    cr_assert_geq(r.avg_limit[0], 0.7 * cap, "%s C=%u: %.1f", gw_limit_algo_name(algo), cap,
                  r.avg_limit[0]);
    cr_assert_leq(r.avg_limit[0], 1.3 * cap, "%s C=%u: %.1f", gw_limit_algo_name(algo), cap,
                  r.avg_limit[0]);
    cr_assert_geq(r.throughput[0], 0.95 * ideal);
}

Test(adaptive_sim, gradient_converges)
{
    check_converges(GW_LIMIT_GRADIENT, 10);
    check_converges(GW_LIMIT_GRADIENT, 50);
    check_converges(GW_LIMIT_GRADIENT, 200);
}

Test(adaptive_sim, aimd_converges)
{
    check_converges(GW_LIMIT_AIMD, 10);
    check_converges(GW_LIMIT_AIMD, 50);
    check_converges(GW_LIMIT_AIMD, 200);
}

/* The backend slows down (service time doubles) from 20 s to 40 s. */
static void check_slowdown(enum gw_limit_algo algo)
{
    struct gw_limit_cfg c;
    gw_limit_cfg_default(&c);
    c.algo = algo;
    const uint32_t C = 50;
    struct phase ph[] = {{0, C, 20 * MS}, {20 * SEC, C, 40 * MS}, {40 * SEC, C, 20 * MS}};
    const uint64_t spans[][2] = {
        {10 * SEC, 20 * SEC}, {20 * SEC, 21 * SEC}, {25 * SEC, 40 * SEC}, {45 * SEC, 60 * SEC}};
    struct loop_result r;
    closed_loop(&c, ph, 3, 0, 60 * SEC, spans, 4, &r);
    printf("adaptive %-8s slowdown: before %.1f, first second %.1f, slow %.1f, after %.1f\n",
           gw_limit_algo_name(algo), r.avg_limit[0], r.avg_limit[1], r.avg_limit[2],
           r.avg_limit[3]);
    cr_assert_lt(r.avg_limit[1], 0.8 * r.avg_limit[0], "backs off when latency rises");
    /* Same number of workers, so the same concurrency once re-measured. */
    cr_assert_geq(r.avg_limit[2], 0.7 * C);
    cr_assert_leq(r.avg_limit[2], 1.3 * C);
    cr_assert_geq(r.avg_limit[3], 0.7 * C);
    cr_assert_leq(r.avg_limit[3], 1.3 * C);
}

Test(adaptive_sim, gradient_backs_off_on_slowdown_and_recovers)
{
    check_slowdown(GW_LIMIT_GRADIENT);
}

Test(adaptive_sim, aimd_backs_off_on_slowdown_and_recovers)
{
    check_slowdown(GW_LIMIT_AIMD);
}

/* The backend loses half its workers from 20 s to 40 s and refuses what
 * does not fit in a short queue (drops). */
static void check_shrink(enum gw_limit_algo algo)
{
    struct gw_limit_cfg c;
    gw_limit_cfg_default(&c);
    c.algo = algo;
    const uint32_t C = 100;
    struct phase ph[] = {{0, C, 20 * MS}, {20 * SEC, C / 2, 20 * MS}, {40 * SEC, C, 20 * MS}};
    const uint64_t spans[][2] = {{10 * SEC, 20 * SEC}, {22 * SEC, 40 * SEC}, {45 * SEC, 60 * SEC}};
    struct loop_result r;
    closed_loop(&c, ph, 3, 10, 60 * SEC, spans, 3, &r);
    double drop_pct = 100.0 * (double)r.drops / (double)r.samples;
    printf("adaptive %-8s shrink: before %.1f, halved %.1f, after %.1f, drops %.1f%%\n",
           gw_limit_algo_name(algo), r.avg_limit[0], r.avg_limit[1], r.avg_limit[2], drop_pct);
    cr_assert_geq(r.avg_limit[0], 0.7 * C);
    cr_assert_leq(r.avg_limit[0], 1.3 * C);
    cr_assert_geq(r.avg_limit[1], 0.7 * C / 2);
    cr_assert_leq(r.avg_limit[1], 1.3 * C / 2);
    cr_assert_geq(r.avg_limit[2], 0.7 * C);
    cr_assert_leq(r.avg_limit[2], 1.3 * C);
    cr_assert_lt(drop_pct, 10.0);
}

Test(adaptive_sim, gradient_follows_capacity_with_drops)
{
    check_shrink(GW_LIMIT_GRADIENT);
}

Test(adaptive_sim, aimd_follows_capacity_with_drops)
{
    check_shrink(GW_LIMIT_AIMD);
}
