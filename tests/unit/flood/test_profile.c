/* Tests for flood/profile: parsing profiles, rates over time, and the
 * open-loop schedule of intended send times, including how a stalled
 * server's queueing is charged to the waiting requests. */
#include "flood/flood.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define SEC 1000000000ull

static struct fl_profile parse_ok(const char *spec, double base)
{
    struct fl_profile p = {0};
    char *err = NULL;
    int rc = fl_profile_parse(spec, base, &p, &err);
    cr_assert_eq(rc, 0, "'%s': %s", spec, err ? err : "");
    return p;
}

static char *parse_err(const char *spec, double base)
{
    struct fl_profile p = {0};
    char *err = NULL;
    cr_assert_eq(fl_profile_parse(spec, base, &p, &err), -1, "'%s' parsed", spec);
    cr_assert_not_null(err);
    return err;
}

Test(flood_profile, spike_stages)
{
    struct fl_profile p = parse_ok("spike:1x20s,10x30s,1x20s", 100);
    cr_assert_eq(p.kind, FL_PROF_SPIKE);
    cr_assert_eq(p.n, 3);
    cr_assert_float_eq(p.stages[0].from, 100, 1e-9);
    cr_assert_float_eq(p.stages[1].to, 1000, 1e-9);
    cr_assert_eq(p.stages[1].dur_ns, 30 * SEC);
    cr_assert_eq(fl_profile_length_ns(&p), 70 * SEC);
    cr_assert_float_eq(fl_profile_rate_at(&p, 10 * SEC), 100, 1e-9);
    cr_assert_float_eq(fl_profile_rate_at(&p, 25 * SEC), 1000, 1e-9);
    cr_assert_float_eq(fl_profile_rate_at(&p, 60 * SEC), 100, 1e-9);
    cr_assert_float_eq(fl_profile_rate_at(&p, 600 * SEC), 100, 1e-9); /* last rate holds */
    char d[128];
    fl_profile_describe(&p, d, sizeof d);
    cr_assert_str_eq(d, "spike 100/s 20s, 1000/s 30s, 100/s 20s");
    fl_profile_free(&p);
}

Test(flood_profile, ramp_step_constant_and_absolute_levels)
{
    struct fl_profile p = parse_ok("ramp:0x-10x30s,10x10s", 50);
    cr_assert_eq(p.n, 2);
    cr_assert_float_eq(fl_profile_rate_at(&p, 15 * SEC), 250, 1e-6);
    cr_assert_float_eq(fl_profile_rate_at(&p, 35 * SEC), 500, 1e-6);
    fl_profile_free(&p);
    p = parse_ok("step:100/s5s,200/s5s,400/s500ms", 0);
    cr_assert_eq(p.n, 3);
    cr_assert_eq(p.stages[2].dur_ns, 500 * MS);
    cr_assert_float_eq(fl_profile_rate_at(&p, 7 * SEC), 200, 1e-9);
    fl_profile_free(&p);
    p = parse_ok("constant", 300);
    cr_assert_eq(p.n, 1);
    cr_assert_eq(fl_profile_length_ns(&p), 0);
    cr_assert_float_eq(fl_profile_rate_at(&p, 99 * SEC), 300, 1e-9);
    fl_profile_free(&p);
    p = parse_ok("constant:2.5x", 100);
    cr_assert_float_eq(fl_profile_rate_at(&p, 0), 250, 1e-9);
    fl_profile_free(&p);
}

Test(flood_profile, errors)
{
    char *e;
    e = parse_err("wave:1x10s", 100);
    cr_assert(strstr(e, "unknown kind"), "%s", e);
    free(e);
    e = parse_err("spike:1x20s,10x", 100);
    cr_assert(strstr(e, "duration"), "%s", e);
    free(e);
    e = parse_err("step:2x10s", 0);
    cr_assert(strstr(e, "--rate"), "%s", e);
    free(e);
    e = parse_err("step:100 10s", 0);
    cr_assert(strstr(e, "unit"), "%s", e);
    free(e);
    e = parse_err("spike:1x-2x10s", 10);
    cr_assert(strstr(e, "flat"), "%s", e);
    free(e);
    e = parse_err("step:1x10", 10);
    cr_assert(strstr(e, "bad duration"), "%s", e);
    free(e);
    e = parse_err("constant", 0);
    free(e);
}

Test(flood_sched, constant_rate_intended_times)
{
    struct fl_profile p = {0};
    fl_profile_constant(&p, 1000);
    struct fl_sched s;
    fl_sched_init(&s, &p, 1.0, 0, 1 * SEC);
    for (uint64_t k = 0; k < 1000; k++) {
        cr_assert_eq(fl_sched_peek(&s), k * MS, "request %lu at %lu", k, fl_sched_peek(&s));
        fl_sched_advance(&s);
    }
    /* Nothing at or after the end. */
    cr_assert_eq(fl_sched_peek(&s), UINT64_MAX);
    fl_sched_advance(&s);
    cr_assert_eq(fl_sched_peek(&s), UINT64_MAX);
    fl_profile_free(&p);
}

Test(flood_sched, shares_interleave_into_one_even_sequence)
{
    /* Four threads, each a quarter of 4000/s with phases (i + 0.5) / 4:
     * together one request every 250 us, offset by half a step. */
    struct fl_profile p = {0};
    fl_profile_constant(&p, 4000);
    struct fl_sched s[4];
    for (int i = 0; i < 4; i++)
        fl_sched_init(&s[i], &p, 0.25, (i + 0.5) / 4, 1 * SEC);
    uint64_t prev = 0;
    for (int k = 0; k < 4000; k++) {
        int best = 0;
        for (int i = 1; i < 4; i++)
            if (fl_sched_peek(&s[i]) < fl_sched_peek(&s[best]))
                best = i;
        uint64_t t = fl_sched_peek(&s[best]);
        cr_assert(llabs((long long)t - (long long)(k * 250000 + 125000)) <= 1, "k=%d t=%lu", k, t);
        cr_assert(k == 0 || t > prev);
        prev = t;
        fl_sched_advance(&s[best]);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fl_sched_peek(&s[i]), UINT64_MAX);
    fl_profile_free(&p);
}

Test(flood_sched, ramp_follows_the_integral)
{
    /* 0 -> 1000/s over 10 s: N(t) = 50 t^2, so request k is due at sqrt(k / 50). */
    struct fl_profile p = parse_ok("ramp:0/s-1000/s10s", 0);
    struct fl_sched s;
    fl_sched_init(&s, &p, 1.0, 0, 10 * SEC);
    uint64_t k = 0;
    while (fl_sched_peek(&s) != UINT64_MAX) {
        double want = sqrt((double)k / 50.0) * 1e9;
        cr_assert(fabs((double)fl_sched_peek(&s) - want) < 1000, "k=%lu: %lu vs %.0f", k, fl_sched_peek(&s), want);
        fl_sched_advance(&s);
        k++;
    }
    cr_assert_eq(k, 5000);
    fl_profile_free(&p);
}

Test(flood_sched, spike_counts_per_stage_and_hold_after)
{
    struct fl_profile p = parse_ok("spike:1x2s,10x3s,1x2s", 100);
    struct fl_sched s;
    fl_sched_init(&s, &p, 1.0, 0.5, 9 * SEC); /* 2 s longer than the profile */
    uint64_t count[5] = {0};
    while (fl_sched_peek(&s) != UINT64_MAX) {
        uint64_t t = fl_sched_peek(&s);
        count[t < 2 * SEC ? 0 : t < 5 * SEC ? 1 : t < 7 * SEC ? 2 : 3]++;
        fl_sched_advance(&s);
    }
    cr_assert_eq(count[0], 200);
    cr_assert_eq(count[1], 3000);
    cr_assert_eq(count[2], 200);
    cr_assert_eq(count[3], 200); /* the last rate holds after the profile */
    fl_profile_free(&p);
}

Test(flood_sched, zero_rate_stage_skips_ahead)
{
    struct fl_profile p = parse_ok("step:0/s1s,100/s1s", 0);
    struct fl_sched s;
    fl_sched_init(&s, &p, 1.0, 0.5, 2 * SEC);
    cr_assert_eq(fl_sched_peek(&s), SEC + 5 * MS);
    fl_profile_free(&p);
}

/* One connection, open loop at 100/s for 1 s, against a server that
 * answers in 1 ms but stalls from 100 ms to 600 ms. This follows the
 * worker's rule: the next request is sent at max(its intended time, the
 * moment the connection is free), and latency runs from the intended
 * time. The stall must show in the latencies of every request that came
 * due during it, not only in the one request that was in flight. */
Test(flood_sched, stalled_server_queueing_is_charged)
{
    struct fl_profile p = {0};
    fl_profile_constant(&p, 100);
    struct fl_sched s;
    fl_sched_init(&s, &p, 1.0, 0.5, 1 * SEC);
    struct fl_hist corrected, uncorrected;
    fl_hist_init(&corrected, FL_HIST_PRECISE, FL_HIST_MAX_US);
    fl_hist_init(&uncorrected, FL_HIST_PRECISE, FL_HIST_MAX_US);
    uint64_t free_at = 0, n = 0;
    const uint64_t stall0 = 100 * MS, stall1 = 600 * MS, svc = 1 * MS;
    while (fl_sched_peek(&s) != UINT64_MAX) {
        uint64_t intended = fl_sched_peek(&s);
        fl_sched_advance(&s);
        uint64_t sent = intended > free_at ? intended : free_at;
        uint64_t begin = sent >= stall0 && sent < stall1 ? stall1 : sent;
        uint64_t done = begin + svc;
        free_at = done;
        fl_hist_record(&corrected, (done - intended) / 1000);
        fl_hist_record(&uncorrected, (done - sent) / 1000);
        n++;
    }
    cr_assert_eq(n, 100, "every due request is sent: %lu", n);
    /* 50 requests came due during the 500 ms stall: about half the run
     * waited, the worst about 500 ms. */
    cr_assert(fl_hist_percentile(&corrected, 50) >= 1000 && fl_hist_percentile(&corrected, 50) < 100000,
              "p50 %lu", fl_hist_percentile(&corrected, 50));
    cr_assert(fl_hist_percentile(&corrected, 75) >= 200000, "p75 %lu", fl_hist_percentile(&corrected, 75));
    cr_assert(corrected.max >= 490000 && corrected.max <= 500000, "max %lu", corrected.max);
    /* Measured from the actual send, as a closed loop would, the stall
     * hides in a single request. */
    cr_assert(fl_hist_percentile(&uncorrected, 98) <= 1000, "p98 %lu", fl_hist_percentile(&uncorrected, 98));
    cr_assert(uncorrected.max >= 490000);
    fl_hist_free(&corrected);
    fl_hist_free(&uncorrected);
    fl_profile_free(&p);
}
