/* Unit tests for the rate-limiting algorithms (src/gateway/limit/ratelimit.c)
 * and their response headers (limit/headers.c), against a controlled clock:
 * exact admit/deny sequences at and around window edges, bursts, leaky
 * queue delays as in nginx limit_req (burst, nodelay, delay=), the delay
 * option, GCRA exactness under 8 threads, cross-checks against naive
 * reference implementations, and the sliding counter's error against the
 * exact log over a randomized trace. */
#include <criterion/criterion.h>

#include "core/buf.h"
#include "gateway/limit/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S 1000000ull          /* one second in us */
#define MS 1000ull            /* one millisecond in us */
#define T0 (100ull * 3600 * S) /* a start aligned to every window used here */

static struct rl_rule mk(enum rl_algo algo, uint64_t limit, uint64_t window_us, uint64_t burst)
{
    struct rl_rule r = { .algo = algo, .id = 1, .name = "t", .limit = limit,
                         .window_us = window_us, .burst = burst };
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(&r, &err), 0, "prepare: %s", err ? err : "");
    return r;
}

static void prep(struct rl_rule *r)
{
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(r, &err), 0, "prepare: %s", err ? err : "");
}

static struct rl_state *st_new(const struct rl_rule *r)
{
    struct rl_state *st = malloc(rl_state_size(r));
    cr_assert_not_null(st);
    rl_state_init(r, st);
    return st;
}

static struct rl_decision at(const struct rl_rule *r, struct rl_state *st, uint64_t t,
                             uint32_t cost)
{
    struct rl_decision d;
    memset(&d, 0xa5, sizeof d);
    bool ok = rl_check(r, st, t, cost, &d);
    cr_assert_eq(ok, d.allowed);
    return d;
}

/* Admitted now (no delay), with the given remaining and reset. */
static void admit(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint64_t remaining,
                  uint64_t reset)
{
    struct rl_decision d = at(r, st, t, 1);
    cr_assert(d.allowed, "expected admit at T0+%llu", (unsigned long long)(t - T0));
    cr_assert_eq(d.delay_us, 0, "delay %llu at T0+%llu", (unsigned long long)d.delay_us,
                 (unsigned long long)(t - T0));
    cr_assert_eq(d.retry_after_us, 0);
    cr_assert_eq(d.remaining, remaining, "remaining %llu, want %llu at T0+%llu",
                 (unsigned long long)d.remaining, (unsigned long long)remaining,
                 (unsigned long long)(t - T0));
    cr_assert_eq(d.reset_us, reset, "reset %llu, want %llu at T0+%llu",
                 (unsigned long long)d.reset_us, (unsigned long long)reset,
                 (unsigned long long)(t - T0));
}

/* Admitted with exactly this delay. */
static void delayed(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint64_t delay)
{
    struct rl_decision d = at(r, st, t, 1);
    cr_assert(d.allowed, "expected admit with delay %llu at T0+%llu", (unsigned long long)delay,
              (unsigned long long)(t - T0));
    cr_assert_eq(d.delay_us, delay, "delay %llu, want %llu at T0+%llu",
                 (unsigned long long)d.delay_us, (unsigned long long)delay,
                 (unsigned long long)(t - T0));
}

/* Rejected with exactly this retry_after. */
static void deny(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint64_t retry)
{
    struct rl_decision d = at(r, st, t, 1);
    cr_assert(!d.allowed, "expected deny at T0+%llu", (unsigned long long)(t - T0));
    cr_assert_eq(d.delay_us, 0);
    cr_assert_eq(d.retry_after_us, retry, "retry %llu, want %llu at T0+%llu",
                 (unsigned long long)d.retry_after_us, (unsigned long long)retry,
                 (unsigned long long)(t - T0));
}

/* n admissions at t with no delay; returns nothing, asserts each. */
static void admit_n(const struct rl_rule *r, struct rl_state *st, uint64_t t, int n)
{
    for (int i = 0; i < n; i++) {
        struct rl_decision d = at(r, st, t, 1);
        cr_assert(d.allowed && d.delay_us == 0, "request %d at T0+%llu not admitted at once", i,
                  (unsigned long long)(t - T0));
    }
}

/* ---- rules ---------------------------------------------------------- */

Test(rl_rule, prepare_derives_gcra_parameters)
{
    struct rl_rule tb = mk(RL_TOKEN_BUCKET, 10, S, 5);
    cr_assert_eq(tb.capacity, 15);
    cr_assert_eq(tb.t_ns, 100000000);
    cr_assert_eq(tb.dvt_ns, 1500000000);
    struct rl_rule lb = mk(RL_LEAKY_BUCKET, 10, S, 5);
    cr_assert_eq(lb.capacity, 6);
    cr_assert_eq(lb.dvt_ns, 600000000);
    struct rl_rule lq = { .algo = RL_LEAKY_QUEUE, .limit = 10, .window_us = S, .burst = 5,
                          .delay = 2 };
    prep(&lq);
    cr_assert_eq(lq.free_ns, 200000000);
    lq.nodelay = true;
    prep(&lq);
    cr_assert_eq(lq.free_ns, 500000000);
    lq.nodelay = false;
    lq.delay = 99; /* above burst: clamped, as nginx treats delay >= burst */
    prep(&lq);
    cr_assert_eq(lq.free_ns, 500000000);
    struct rl_rule fw = mk(RL_FIXED_WINDOW, 7, S, 0);
    cr_assert_eq(fw.capacity, 7);
    /* 1e9 / 7 ns, rounded down. */
    struct rl_rule odd = mk(RL_TOKEN_BUCKET, 7, S, 0);
    cr_assert_eq(odd.t_ns, 142857142);
}

static void bad_rule(struct rl_rule r, const char *needle)
{
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(&r, &err), -1, "accepted a rule that should fail (%s)", needle);
    cr_assert_not_null(err);
    cr_assert(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
    free(err);
}

Test(rl_rule, prepare_rejects_bad_rules)
{
    bad_rule((struct rl_rule){ .algo = RL_TOKEN_BUCKET, .limit = 0, .window_us = S }, "limit");
    bad_rule((struct rl_rule){ .algo = RL_TOKEN_BUCKET, .limit = 1, .window_us = 0 }, "window");
    bad_rule((struct rl_rule){ .algo = RL_TOKEN_BUCKET, .limit = 1,
                               .window_us = RL_WINDOW_MAX_US + 1 }, "window");
    bad_rule((struct rl_rule){ .algo = RL_FIXED_WINDOW, .limit = 5, .window_us = S, .burst = 1 },
             "burst");
    bad_rule((struct rl_rule){ .algo = RL_SLIDING_LOG, .limit = RL_LOG_LIMIT_MAX + 1,
                               .window_us = S }, "65536");
    bad_rule((struct rl_rule){ .algo = RL_TOKEN_BUCKET, .limit = 2000000000ull, .window_us = S },
             "nanosecond");
    bad_rule((struct rl_rule){ .algo = RL_TOKEN_BUCKET, .limit = 1, .window_us = S,
                               .name = "bad\nname" }, "printable");
    bad_rule((struct rl_rule){ .algo = (enum rl_algo)42, .limit = 1, .window_us = S }, "algorithm");
    bad_rule((struct rl_rule){ .algo = RL_TOKEN_BUCKET, .limit = 1, .window_us = S,
                               .burst = RL_BURST_MAX + 1 }, "burst");
}

Test(rl_rule, algorithm_names)
{
    const char *names[] = { "token_bucket", "leaky_bucket", "leaky_queue",
                            "fixed_window", "sliding_log", "sliding_counter" };
    for (int i = 0; i < RL_ALGO_COUNT; i++) {
        cr_assert_eq(rl_parse_algo(names[i]), i);
        cr_assert_str_eq(rl_algo_name((enum rl_algo)i), names[i]);
    }
    cr_assert_eq(rl_parse_algo("gcra"), RL_TOKEN_BUCKET);
    cr_assert_eq(rl_parse_algo("nope"), -1);
    cr_assert_eq(rl_parse_algo(NULL), -1);
    cr_assert_str_eq(rl_algo_name((enum rl_algo)99), "unknown");
}

/* ---- token bucket (GCRA) -------------------------------------------- */

Test(rl_token_bucket, full_bucket_then_one_per_interval)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 10, S, 0); /* T = 100 ms, capacity 10 */
    struct rl_state *st = st_new(&r);
    for (uint64_t i = 0; i < 10; i++)
        admit(&r, st, T0, 9 - i, 100 * MS);
    deny(&r, st, T0, 100 * MS);
    deny(&r, st, T0 + 100 * MS - 1, 1);
    admit(&r, st, T0 + 100 * MS, 0, 100 * MS);
    deny(&r, st, T0 + 100 * MS, 100 * MS);
    /* Half an interval later: still nothing. */
    deny(&r, st, T0 + 150 * MS, 50 * MS);
    /* Idle long enough to refill completely: the full bucket again. */
    admit_n(&r, st, T0 + 2100 * MS, 10);
    deny(&r, st, T0 + 2100 * MS, 100 * MS);
    free(st);
}

Test(rl_token_bucket, burst_adds_capacity)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 10, S, 5);
    struct rl_state *st = st_new(&r);
    for (uint64_t i = 0; i < 15; i++)
        admit(&r, st, T0, 14 - i, 100 * MS);
    deny(&r, st, T0, 100 * MS);
    /* Half a second refills five. */
    admit_n(&r, st, T0 + 500 * MS, 5);
    deny(&r, st, T0 + 500 * MS, 100 * MS);
    free(st);
}

Test(rl_token_bucket, query_and_fresh_state)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 10, S, 0);
    struct rl_state *st = st_new(&r);
    struct rl_decision d = at(&r, st, T0, 0);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 10);
    cr_assert_eq(d.reset_us, 100 * MS); /* full: the emission interval */
    admit_n(&r, st, T0, 10);
    d = at(&r, st, T0, 0); /* a query is allowed and spends nothing */
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.reset_us, 100 * MS);
    deny(&r, st, T0, 100 * MS);
    free(st);
}

Test(rl_token_bucket, cost_units)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 10, S, 0);
    struct rl_state *st = st_new(&r);
    struct rl_decision d = at(&r, st, T0, 7);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 3);
    d = at(&r, st, T0, 4);
    cr_assert(!d.allowed);
    cr_assert_eq(d.retry_after_us, 100 * MS); /* one unit short */
    cr_assert_eq(d.remaining, 3);
    d = at(&r, st, T0, 3);
    cr_assert(d.allowed);
    /* More than the capacity can never pass. */
    d = at(&r, st, T0 + 10 * S, 11);
    cr_assert(!d.allowed);
    cr_assert_eq(d.retry_after_us, S);
    cr_assert_eq(d.remaining, 10); /* and it spent nothing */
    free(st);
}

/* The emission interval of 7/s is 142857142.857 ns, kept as 142857142:
 * the seventh-of-a-second edge falls inside the right microsecond. */
Test(rl_token_bucket, sub_microsecond_interval_edges)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 7, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0, 7);
    deny(&r, st, T0 + 142857, 1); /* 142 ns early: rounded up to 1 us */
    admit(&r, st, T0 + 142858, 0, 142857);
    free(st);
}

/* Over 300 s of polling every millisecond, 3/s admits exactly the
 * capacity plus one per interval: 3 + floor(300 s / T) = 903. */
Test(rl_token_bucket, long_run_rate_is_exact)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 3, S, 0);
    struct rl_state *st = st_new(&r);
    uint64_t admitted = 0;
    for (uint64_t t = T0; t <= T0 + 300 * S; t += MS)
        admitted += at(&r, st, t, 1).allowed;
    cr_assert_eq(admitted, 903, "admitted %llu", (unsigned long long)admitted);
    free(st);
}

Test(rl_token_bucket, delay_instead_of_reject)
{
    struct rl_rule r = { .algo = RL_TOKEN_BUCKET, .limit = 10, .window_us = S,
                         .max_delay_us = 250 * MS };
    prep(&r);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0, 10);
    struct rl_decision d = at(&r, st, T0, 1);
    cr_assert(d.allowed);
    cr_assert_eq(d.delay_us, 100 * MS);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.reset_us, 200 * MS);
    delayed(&r, st, T0, 200 * MS);
    deny(&r, st, T0, 300 * MS); /* over max_delay: rejected, nothing booked */
    deny(&r, st, T0, 300 * MS);
    /* The booked slots are honoured: at T0+200ms the next one waits 100ms. */
    delayed(&r, st, T0 + 200 * MS, 100 * MS);
    free(st);
}

Test(rl_token_bucket, time_running_backwards_is_harmless)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 10, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + S, 10);
    /* A late thread with an older clock sees an empty bucket, longer wait. */
    deny(&r, st, T0 + S - 50 * MS, 150 * MS);
    admit(&r, st, T0 + S + 100 * MS, 0, 100 * MS);
    free(st);
}

/* ---- leaky bucket (meter) ------------------------------------------- */

Test(rl_leaky_bucket, no_burst_spaces_requests)
{
    struct rl_rule r = mk(RL_LEAKY_BUCKET, 10, S, 0); /* one per 100 ms */
    struct rl_state *st = st_new(&r);
    admit(&r, st, T0, 0, 100 * MS);
    deny(&r, st, T0 + 50 * MS, 50 * MS);
    admit(&r, st, T0 + 100 * MS, 0, 100 * MS);
    deny(&r, st, T0 + 199999, 1);
    admit(&r, st, T0 + 200 * MS, 0, 100 * MS);
    /* Idle: only one at a time, never a window's worth. */
    admit(&r, st, T0 + 10 * S, 0, 100 * MS);
    deny(&r, st, T0 + 10 * S, 100 * MS);
    free(st);
}

/* limit_req rate=10r/s burst=5 nodelay: 1 + 5 at once, then the rate. */
Test(rl_leaky_bucket, burst_is_rejected_beyond)
{
    struct rl_rule r = mk(RL_LEAKY_BUCKET, 10, S, 5);
    struct rl_state *st = st_new(&r);
    for (uint64_t i = 0; i < 6; i++)
        admit(&r, st, T0, 5 - i, 100 * MS);
    deny(&r, st, T0, 100 * MS);
    admit(&r, st, T0 + 100 * MS, 0, 100 * MS);
    deny(&r, st, T0 + 100 * MS, 100 * MS);
    admit(&r, st, T0 + 250 * MS, 0, 50 * MS);
    deny(&r, st, T0 + 250 * MS, 50 * MS);
    free(st);
}

/* ---- leaky queue (limit_req without nodelay) ------------------------ */

Test(rl_leaky_queue, burst_is_spaced_at_the_rate)
{
    struct rl_rule r = mk(RL_LEAKY_QUEUE, 10, S, 5);
    struct rl_state *st = st_new(&r);
    for (uint64_t i = 0; i < 6; i++) {
        struct rl_decision d = at(&r, st, T0, 1);
        cr_assert(d.allowed);
        cr_assert_eq(d.delay_us, i * 100 * MS, "request %llu delay %llu",
                     (unsigned long long)i, (unsigned long long)d.delay_us);
        cr_assert_eq(d.remaining, 5 - i);
    }
    deny(&r, st, T0, 100 * MS);
    /* 100 ms on, one slot has drained: queued behind the other five. */
    delayed(&r, st, T0 + 100 * MS, 500 * MS);
    deny(&r, st, T0 + 100 * MS, 100 * MS);
    /* A request on an idle queue goes at once. */
    delayed(&r, st, T0 + 5 * S, 0);
    free(st);
}

Test(rl_leaky_queue, nodelay_admits_the_burst_at_once)
{
    struct rl_rule r = { .algo = RL_LEAKY_QUEUE, .limit = 10, .window_us = S, .burst = 5,
                         .nodelay = true };
    prep(&r);
    struct rl_state *st = st_new(&r);
    for (int i = 0; i < 6; i++)
        delayed(&r, st, T0, 0);
    deny(&r, st, T0, 100 * MS);
    delayed(&r, st, T0 + 100 * MS, 0);
    deny(&r, st, T0 + 100 * MS, 100 * MS);
    free(st);
}

/* limit_req burst=5 delay=2: the first 1 + 2 pass at once, the rest are
 * spaced. */
Test(rl_leaky_queue, delay_threshold)
{
    struct rl_rule r = { .algo = RL_LEAKY_QUEUE, .limit = 10, .window_us = S, .burst = 5,
                         .delay = 2 };
    prep(&r);
    struct rl_state *st = st_new(&r);
    const uint64_t want[6] = { 0, 0, 0, 100 * MS, 200 * MS, 300 * MS };
    for (int i = 0; i < 6; i++)
        delayed(&r, st, T0, want[i]);
    deny(&r, st, T0, 100 * MS);
    free(st);
}

Test(rl_leaky_queue, max_delay_does_not_extend_the_queue)
{
    struct rl_rule r = { .algo = RL_LEAKY_QUEUE, .limit = 10, .window_us = S, .burst = 2,
                         .max_delay_us = 10 * S };
    prep(&r);
    struct rl_state *st = st_new(&r);
    delayed(&r, st, T0, 0);
    delayed(&r, st, T0, 100 * MS);
    delayed(&r, st, T0, 200 * MS);
    deny(&r, st, T0, 100 * MS);
    free(st);
}

/* ---- fixed window --------------------------------------------------- */

Test(rl_fixed_window, counts_per_aligned_window)
{
    struct rl_rule r = mk(RL_FIXED_WINDOW, 3, S, 0);
    struct rl_state *st = st_new(&r);
    admit(&r, st, T0, 2, S);
    admit(&r, st, T0 + 500 * MS, 1, 500 * MS);
    admit(&r, st, T0 + S - 1, 0, 1);
    deny(&r, st, T0 + S - 1, 1);
    admit(&r, st, T0 + S, 2, S);
    admit(&r, st, T0 + S, 1, S);
    admit(&r, st, T0 + S, 0, S);
    deny(&r, st, T0 + S, S);
    /* Not aligned to the request: the window is [T0+2s, T0+3s). */
    admit(&r, st, T0 + 2 * S + 234567, 2, S - 234567);
    free(st);
}

/* The known weakness: a full window just before an edge and another just
 * after it admit twice the limit within a microsecond. */
Test(rl_fixed_window, edge_burst)
{
    struct rl_rule r = mk(RL_FIXED_WINDOW, 3, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + S - 1, 3);
    deny(&r, st, T0 + S - 1, 1);
    admit_n(&r, st, T0 + S, 3);
    deny(&r, st, T0 + S, S);
    free(st);
}

Test(rl_fixed_window, delay_books_later_windows)
{
    struct rl_rule r = { .algo = RL_FIXED_WINDOW, .limit = 3, .window_us = S,
                         .max_delay_us = 2 * S };
    prep(&r);
    struct rl_state *st = st_new(&r);
    for (int i = 0; i < 3; i++)
        delayed(&r, st, T0, 0);
    for (int i = 0; i < 3; i++)
        delayed(&r, st, T0, S);
    for (int i = 0; i < 3; i++)
        delayed(&r, st, T0, 2 * S);
    deny(&r, st, T0, 3 * S);
    /* A window later, six units are still booked ahead: this one goes to
     * the window starting at T0+3s. */
    struct rl_decision d = at(&r, st, T0 + S, 1);
    cr_assert(d.allowed);
    cr_assert_eq(d.delay_us, 2 * S);
    cr_assert_eq(d.remaining, 0);
    cr_assert_eq(d.reset_us, 2 * S); /* quota grows when the booked windows pass */
    free(st);
}

Test(rl_fixed_window, late_clock_counts_in_the_current_window)
{
    struct rl_rule r = mk(RL_FIXED_WINDOW, 3, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + S, 3);
    deny(&r, st, T0 + S - 1, S); /* behind the window start: no rollback */
    free(st);
}

Test(rl_fixed_window, long_idle_resets)
{
    struct rl_rule r = mk(RL_FIXED_WINDOW, 2, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0, 2);
    deny(&r, st, T0, S);
    admit_n(&r, st, T0 + 1000 * S + 5, 2);
    deny(&r, st, T0 + 1000 * S + 5, S - 5);
    free(st);
}

/* ---- sliding log ---------------------------------------------------- */

Test(rl_sliding_log, exact_window)
{
    struct rl_rule r = mk(RL_SLIDING_LOG, 3, S, 0);
    struct rl_state *st = st_new(&r);
    admit(&r, st, T0, 2, S);
    admit(&r, st, T0 + 400 * MS, 1, 600 * MS);
    admit(&r, st, T0 + 800 * MS, 0, 200 * MS);
    deny(&r, st, T0 + 900 * MS, 100 * MS);
    deny(&r, st, T0 + S - 1, 1);
    admit(&r, st, T0 + S, 0, 400 * MS); /* the T0 entry has left (t - W, t] */
    deny(&r, st, T0 + S, 400 * MS);
    admit(&r, st, T0 + 1400 * MS, 0, 400 * MS);
    free(st);
}

Test(rl_sliding_log, no_edge_burst)
{
    struct rl_rule r = mk(RL_SLIDING_LOG, 3, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + S - 1, 3);
    deny(&r, st, T0 + S, S - 1);
    deny(&r, st, T0 + 2 * S - 2, 1);
    admit_n(&r, st, T0 + 2 * S - 1, 3);
    free(st);
}

Test(rl_sliding_log, cost_units)
{
    struct rl_rule r = mk(RL_SLIDING_LOG, 3, S, 0);
    struct rl_state *st = st_new(&r);
    cr_assert(at(&r, st, T0, 2).allowed);
    struct rl_decision d = at(&r, st, T0 + 100 * MS, 2);
    cr_assert(!d.allowed);
    cr_assert_eq(d.retry_after_us, 900 * MS);
    cr_assert_eq(d.remaining, 1);
    cr_assert(at(&r, st, T0 + 100 * MS, 1).allowed);
    d = at(&r, st, T0 + 100 * MS, 4);
    cr_assert(!d.allowed);
    cr_assert_eq(d.retry_after_us, S);
    free(st);
}

Test(rl_sliding_log, delay_books_future_entries)
{
    struct rl_rule r = { .algo = RL_SLIDING_LOG, .limit = 2, .window_us = S,
                         .max_delay_us = S };
    prep(&r);
    struct rl_state *st = st_new(&r);
    delayed(&r, st, T0, 0);
    delayed(&r, st, T0, 0);
    delayed(&r, st, T0, S);
    delayed(&r, st, T0, S);
    deny(&r, st, T0, 2 * S);
    free(st);
}

/* ---- sliding window counter ----------------------------------------- */

Test(rl_sliding_counter, weighted_previous_window)
{
    struct rl_rule r = mk(RL_SLIDING_COUNTER, 10, S, 0);
    struct rl_state *st = st_new(&r);
    for (uint64_t i = 0; i < 10; i++) {
        struct rl_decision d = at(&r, st, T0 + 500 * MS, 1);
        cr_assert(d.allowed && d.delay_us == 0);
        cr_assert_eq(d.remaining, 9 - i);
    }
    /* cur = 10: at T0 + 1.1 s the estimate is 10 * 0.9 = 9. */
    deny(&r, st, T0 + 500 * MS, 600 * MS);
    deny(&r, st, T0 + 1099999, 1);
    admit(&r, st, T0 + 1100 * MS, 0, 100 * MS);
    deny(&r, st, T0 + 1100 * MS, 100 * MS);
    free(st);
}

Test(rl_sliding_counter, half_window_admits_half)
{
    struct rl_rule r = mk(RL_SLIDING_COUNTER, 10, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + 500 * MS, 10);
    /* Estimate at T0 + 1.5 s: 10 * 0.5 = 5; five more fit. */
    admit_n(&r, st, T0 + 1500 * MS, 5);
    deny(&r, st, T0 + 1500 * MS, 100 * MS);
    /* Fractional estimate: at T0 + 2.25 s it is 5 * 0.75 = 3.75. */
    admit_n(&r, st, T0 + 2250 * MS, 6);
    struct rl_decision d = at(&r, st, T0 + 2250 * MS, 1);
    cr_assert(!d.allowed); /* 3.75 + 6 + 1 > 10 */
    cr_assert_eq(d.remaining, 0);
    /* 5 * (1 - x) + 6 + 1 <= 10 from x = 0.4, T0 + 2.4 s. */
    cr_assert_eq(d.retry_after_us, 150 * MS);
    free(st);
}

Test(rl_sliding_counter, idle_windows_reset)
{
    struct rl_rule r = mk(RL_SLIDING_COUNTER, 4, S, 0);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0, 4);
    deny(&r, st, T0, S + 250 * MS);
    admit_n(&r, st, T0 + 2 * S, 4); /* two windows on: nothing weighs */
    admit_n(&r, st, T0 + 10 * S, 4);
    free(st);
}

Test(rl_sliding_counter, delay_books_the_next_window)
{
    struct rl_rule r = { .algo = RL_SLIDING_COUNTER, .limit = 10, .window_us = S,
                         .max_delay_us = S };
    prep(&r);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + 500 * MS, 10);
    for (uint64_t k = 1; k <= 5; k++)
        delayed(&r, st, T0 + 500 * MS, 500 * MS + k * 100 * MS);
    deny(&r, st, T0 + 500 * MS, 1100 * MS);
    /* At T0 + 1.6 s: prev 10 weighs 4, cur holds the 5 booked: one fits. */
    admit(&r, st, T0 + 1600 * MS, 0, 100 * MS);
    delayed(&r, st, T0 + 1600 * MS, 100 * MS);
    free(st);
}

Test(rl_sliding_counter, bookings_stop_at_the_next_window)
{
    struct rl_rule r = { .algo = RL_SLIDING_COUNTER, .limit = 10, .window_us = S,
                         .max_delay_us = 10 * S };
    prep(&r);
    struct rl_state *st = st_new(&r);
    admit_n(&r, st, T0 + 500 * MS, 10);
    for (uint64_t k = 1; k <= 9; k++)
        delayed(&r, st, T0 + 500 * MS, 500 * MS + k * 100 * MS);
    deny(&r, st, T0 + 500 * MS, 1500 * MS);
    free(st);
}

/* ---- expiry --------------------------------------------------------- */

Test(rl_expiry, each_algorithm)
{
    struct rl_rule tb = mk(RL_TOKEN_BUCKET, 10, S, 0);
    struct rl_state *st = st_new(&tb);
    cr_assert_eq(rl_state_expiry(&tb, st), 0);
    admit_n(&tb, st, T0, 4);
    cr_assert_eq(rl_state_expiry(&tb, st), T0 + 400 * MS);
    free(st);

    struct rl_rule fw = { .algo = RL_FIXED_WINDOW, .limit = 3, .window_us = S,
                          .max_delay_us = 5 * S };
    prep(&fw);
    st = st_new(&fw);
    cr_assert_eq(rl_state_expiry(&fw, st), 0);
    at(&fw, st, T0 + 10, 1);
    cr_assert_eq(rl_state_expiry(&fw, st), T0 + S);
    for (int i = 0; i < 6; i++)
        at(&fw, st, T0 + 10, 1);
    cr_assert_eq(rl_state_expiry(&fw, st), T0 + 3 * S); /* 7 units: three windows */
    free(st);

    struct rl_rule lg = mk(RL_SLIDING_LOG, 3, S, 0);
    st = st_new(&lg);
    cr_assert_eq(rl_state_expiry(&lg, st), 0);
    at(&lg, st, T0 + 5, 1);
    at(&lg, st, T0 + 70, 1);
    cr_assert_eq(rl_state_expiry(&lg, st), T0 + 70 + S);
    free(st);

    struct rl_rule sc = mk(RL_SLIDING_COUNTER, 3, S, 0);
    st = st_new(&sc);
    cr_assert_eq(rl_state_expiry(&sc, st), 0);
    at(&sc, st, T0 + 5, 1);
    cr_assert_eq(rl_state_expiry(&sc, st), T0 + 2 * S);
    free(st);
}

/* ---- cross-checks against naive references -------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The sliding log against a list of every admission: admit c units at t
 * when the admissions in (t - W, t] plus c stay within the limit. */
Test(rl_sliding_log, matches_naive_log)
{
    struct rl_rule r = mk(RL_SLIDING_LOG, 5, 200 * MS, 0);
    struct rl_state *st = st_new(&r);
    uint64_t *all = malloc(sizeof(uint64_t) * 200000);
    size_t nall = 0, agree = 0, steps = 0;
    uint64_t seed = 88172645463325252ull, t = T0;
    for (int i = 0; i < 50000; i++) {
        t += rng_next(&seed) % (80 * MS);
        uint32_t c = 1 + (uint32_t)(rng_next(&seed) % 3);
        size_t in = 0;
        for (size_t k = nall; k-- > 0 && all[k] + r.window_us > t;)
            in++;
        bool want = in + c <= r.limit;
        bool got = at(&r, st, t, c).allowed;
        cr_assert_eq(got, want, "step %d at T0+%llu cost %u: got %d want %d", i,
                     (unsigned long long)(t - T0), c, got, want);
        if (got)
            for (uint32_t k = 0; k < c; k++)
                all[nall++] = t;
        agree++;
        steps++;
    }
    cr_assert_eq(agree, steps);
    free(all);
    free(st);
}

/* The fixed window against a per-window tally. */
Test(rl_fixed_window, matches_naive_tally)
{
    struct rl_rule r = mk(RL_FIXED_WINDOW, 7, 300 * MS, 0);
    struct rl_state *st = st_new(&r);
    uint64_t seed = 0x9e3779b97f4a7c15ull, t = T0, win = UINT64_MAX, used = 0;
    for (int i = 0; i < 50000; i++) {
        t += rng_next(&seed) % (60 * MS);
        uint32_t c = 1 + (uint32_t)(rng_next(&seed) % 2);
        uint64_t w = t / r.window_us;
        if (w != win) {
            win = w;
            used = 0;
        }
        bool want = used + c <= r.limit;
        bool got = at(&r, st, t, c).allowed;
        cr_assert_eq(got, want, "step %d", i);
        if (got)
            used += c;
    }
    free(st);
}

/* The GCRA against a token bucket with fractional tokens, in ns. */
Test(rl_token_bucket, matches_naive_bucket)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 8, S, 4); /* T = 125 ms exactly, capacity 12 */
    struct rl_state *st = st_new(&r);
    uint64_t seed = 0x2545F4914F6CDD1Dull, t = T0;
    double tokens = 12, last = (double)T0;
    for (int i = 0; i < 50000; i++) {
        t += rng_next(&seed) % (100 * MS);
        uint32_t c = 1 + (uint32_t)(rng_next(&seed) % 3);
        tokens = fmin(12.0, tokens + ((double)t - last) / 125000.0);
        last = (double)t;
        bool want = tokens + 1e-9 >= c;
        bool got = at(&r, st, t, c).allowed;
        cr_assert_eq(got, want, "step %d tokens %.9f cost %u", i, tokens, c);
        if (got)
            tokens -= c;
    }
    free(st);
}

/* ---- sliding counter vs the exact log ------------------------------- */

struct trace_stats {
    double max_over;      /* max (estimate - exact): conservative, rejects early */
    double max_under;     /* max (exact - estimate): permissive, admits extra */
    double mean_abs;      /* mean |estimate - exact| */
    double p99_abs;       /* 99th percentile of |estimate - exact| */
    uint64_t max_in_win;  /* most counter-admitted requests in any window */
    uint64_t admitted_sc, admitted_log, disagree, arrivals;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Feeds one arrival trace to a sliding counter and to an exact sliding
 * log. For the counter, compares its estimate before each decision with
 * the exact number of its own admissions in (t - W, t]; the difference
 * is prev * f - (previous-window admissions still in the window), so its
 * magnitude never exceeds the previous window's count (asserted at every
 * arrival). */
static void run_trace(uint64_t limit, uint64_t window, const uint64_t *t, size_t n,
                      struct trace_stats *ts)
{
    struct rl_rule sc = mk(RL_SLIDING_COUNTER, limit, window, 0);
    struct rl_rule lg = mk(RL_SLIDING_LOG, limit, window, 0);
    struct rl_state *s1 = st_new(&sc), *s2 = st_new(&lg);
    uint64_t *adm = malloc(sizeof(uint64_t) * n);
    double *errs = malloc(sizeof(double) * n);
    size_t nadm = 0, head = 0;
    double sum = 0;
    memset(ts, 0, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        at(&sc, s1, t[i], 0); /* roll to t: an equivalent state */
        uint64_t e = t[i] - s1->u.sc.start_us;
        double est = (double)s1->u.sc.prev * (double)(window - e) / (double)window +
                     (double)s1->u.sc.cur;
        while (head < nadm && adm[head] + window <= t[i])
            head++;
        double diff = est - (double)(nadm - head);
        double err = fabs(diff);
        cr_assert_leq(err, (double)s1->u.sc.prev + 1e-9, "error %.3f over prev %llu", err,
                      (unsigned long long)s1->u.sc.prev);
        ts->max_over = fmax(ts->max_over, diff);
        ts->max_under = fmax(ts->max_under, -diff);
        errs[i] = err;
        sum += err;
        bool a = at(&sc, s1, t[i], 1).allowed;
        bool b = at(&lg, s2, t[i], 1).allowed;
        if (a) {
            adm[nadm++] = t[i];
            ts->admitted_sc++;
            if (nadm - head > ts->max_in_win)
                ts->max_in_win = nadm - head;
        }
        ts->admitted_log += b;
        ts->disagree += a != b;
    }
    ts->arrivals = n;
    ts->mean_abs = sum / (double)n;
    qsort(errs, n, sizeof *errs, cmp_double);
    ts->p99_abs = errs[n * 99 / 100];
    free(errs);
    free(adm);
    free(s1);
    free(s2);
}

/* Poisson arrivals, the rate (in multiples of the limit) swinging as
 * base + amp * sin(t / 7.3 windows). */
static uint64_t *poisson_trace(uint64_t limit, uint64_t window, size_t n, double base, double amp,
                               uint64_t seed)
{
    uint64_t *t = malloc(sizeof(uint64_t) * n), now = T0;
    for (size_t i = 0; i < n; i++) {
        double phase = amp * sin((double)(now - T0) / (7.3 * (double)window));
        double rate = (base + phase) * (double)limit / (double)window; /* per us */
        double u = ((double)(rng_next(&seed) >> 11) + 0.5) / 9007199254740992.0;
        now += (uint64_t)(-log(u) / rate) + 1;
        t[i] = now;
    }
    return t;
}

static void report(const char *what, uint64_t limit, const struct trace_stats *ts)
{
    double L = (double)limit;
    cr_log_info("sliding counter vs exact log, %s, limit %llu/s, %llu arrivals: |estimate - "
                "exact| mean %.2f%% p99 %.2f%% of the limit; max permissive %.1f%%, max "
                "conservative %.1f%%; most admitted in one window %llu (%.0f%%); admitted "
                "%llu vs log %llu, decisions differ on %.2f%%",
                what, (unsigned long long)limit, (unsigned long long)ts->arrivals,
                100 * ts->mean_abs / L, 100 * ts->p99_abs / L, 100 * ts->max_under / L,
                100 * ts->max_over / L, (unsigned long long)ts->max_in_win,
                100 * (double)ts->max_in_win / L, (unsigned long long)ts->admitted_sc,
                (unsigned long long)ts->admitted_log,
                100.0 * (double)ts->disagree / (double)ts->arrivals);
}

/* Hard bounds for any trace: the error never exceeds the previous
 * window's count, so at most the limit, and no window holds more than
 * twice the limit. For these random traces the observed errors are far
 * smaller; the empirical bounds below hold for the fixed seeds with a
 * margin. The largest conservative errors come from the first window
 * after idle, whose burst sits at its start while the estimate spreads it
 * evenly. */
static void check_trace(const char *what, double base, double amp, uint64_t seed)
{
    const uint64_t L = 100, W = S;
    const size_t n = 120000;
    uint64_t *t = poisson_trace(L, W, n, base, amp, seed);
    struct trace_stats ts;
    run_trace(L, W, t, n, &ts);
    report(what, L, &ts);
    cr_assert_leq(ts.max_over, (double)L);
    cr_assert_leq(ts.max_under, (double)L);
    cr_assert_leq(ts.max_in_win, 2 * L);
    cr_assert_lt(ts.mean_abs, 0.05 * (double)L, "mean error %.3f", ts.mean_abs);
    cr_assert_lt(ts.p99_abs, 0.15 * (double)L, "p99 error %.3f", ts.p99_abs);
    cr_assert_lt(ts.max_under, 0.25 * (double)L, "permissive error %.3f", ts.max_under);
    cr_assert_leq(ts.max_in_win, L + L / 4, "max in window %llu",
                  (unsigned long long)ts.max_in_win);
    double ratio = (double)ts.admitted_sc / (double)ts.admitted_log;
    cr_assert(ratio > 0.97 && ratio < 1.03, "admitted ratio %.4f", ratio);
    free(t);
}

Test(rl_sliding_counter, error_against_exact_log_swinging_load)
{
    check_trace("load 0.5x..2.5x", 1.5, 1.0, 0xda3e39cb94b95bdbull);
}

Test(rl_sliding_counter, error_against_exact_log_load_at_the_limit)
{
    check_trace("load 1.0x", 1.0, 0.0, 0x5851f42d4c957f2dull);
}

/* The worst case: the previous window's requests all at its very end. The
 * estimate assumes they were spread evenly, so just before the next edge
 * the counter has admitted almost another full limit while the exact
 * count in the window is nearly twice the limit. */
Test(rl_sliding_counter, error_worst_case_approaches_the_limit)
{
    const uint64_t L = 100, W = S;
    uint64_t t[2 * 100 + 100];
    size_t n = 0;
    for (size_t i = 0; i < L; i++)
        t[n++] = T0 + W - 1;            /* previous window, last microsecond */
    for (size_t i = 0; i < 2 * L; i++)
        t[n++] = T0 + 2 * W - 1000 + i; /* the end of the next window */
    struct trace_stats ts;
    run_trace(L, W, t, n, &ts);
    report("worst case", L, &ts);
    cr_assert_geq(ts.max_in_win, 2 * L - 1);
    cr_assert_leq(ts.max_in_win, 2 * L);
    cr_assert_geq(ts.max_under, 0.98 * (double)L);
}

/* ---- GCRA under 8 threads ------------------------------------------- */

#define NTHREADS 8

struct gcra_arg {
    const struct rl_rule *r;
    struct rl_state *st;
    pthread_barrier_t *bar;
    uint64_t now;
    int tries;
    int admitted;
    uint64_t delays[256];
};

static void *gcra_thread(void *p)
{
    struct gcra_arg *a = p;
    pthread_barrier_wait(a->bar);
    for (int i = 0; i < a->tries; i++) {
        struct rl_decision d;
        if (rl_check(a->r, a->st, a->now, 1, &d)) {
            if (a->admitted < (int)ARRAY_SIZE(a->delays))
                a->delays[a->admitted] = d.delay_us;
            a->admitted++;
        }
    }
    return NULL;
}

static int run_threads(const struct rl_rule *r, struct rl_state *st, uint64_t now, int tries,
                       struct gcra_arg *args)
{
    pthread_t th[NTHREADS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (struct gcra_arg){ .r = r, .st = st, .bar = &bar, .now = now, .tries = tries };
        pthread_create(&th[i], NULL, gcra_thread, &args[i]);
    }
    int total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].admitted;
    }
    pthread_barrier_destroy(&bar);
    return total;
}

Test(rl_gcra_threads, exactly_capacity_at_one_instant)
{
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 1000, S, 0);
    struct rl_state *st = st_new(&r);
    struct gcra_arg args[NTHREADS];
    int total = run_threads(&r, st, T0, 2000, args);
    cr_assert_eq(total, 1000, "admitted %d of 16000 tries, capacity 1000", total);
    /* A quarter second later exactly 250 more, however the threads race. */
    total = run_threads(&r, st, T0 + 250 * MS, 2000, args);
    cr_assert_eq(total, 250, "admitted %d", total);
    free(st);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 8 threads filling a leaky queue at one instant: exactly 1 + burst are
 * admitted and their delays are exactly 0, T, 2T, ... each once. */
Test(rl_gcra_threads, leaky_queue_slots_are_unique)
{
    struct rl_rule r = mk(RL_LEAKY_QUEUE, 100, S, 99); /* T = 10 ms, 100 slots */
    struct rl_state *st = st_new(&r);
    struct gcra_arg args[NTHREADS];
    int total = run_threads(&r, st, T0, 200, args);
    cr_assert_eq(total, 100);
    uint64_t all[100];
    int k = 0;
    for (int i = 0; i < NTHREADS; i++)
        for (int j = 0; j < args[i].admitted; j++)
            all[k++] = args[i].delays[j];
    qsort(all, 100, sizeof all[0], cmp_u64);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(all[i], (uint64_t)i * 10 * MS, "slot %d delay %llu", i,
                     (unsigned long long)all[i]);
    free(st);
}

/* ---- combining rules and headers ------------------------------------ */

Test(rl_combine, most_restrictive)
{
    struct rl_decision ds[3] = {
        { .allowed = true, .remaining = 5, .reset_us = 10 * S },
        { .allowed = true, .remaining = 2, .reset_us = 3 * S },
        { .allowed = true, .remaining = 2, .reset_us = 7 * S, .delay_us = 30 * MS },
    };
    struct rl_decision all;
    cr_assert_eq(rl_combine(ds, 3, &all), 2);
    cr_assert(all.allowed);
    cr_assert_eq(all.delay_us, 30 * MS);
    cr_assert_eq(all.remaining, 2);
    cr_assert_eq(all.reset_us, 7 * S);

    ds[0] = (struct rl_decision){ .allowed = false, .retry_after_us = 2 * S, .reset_us = 2 * S };
    ds[1] = (struct rl_decision){ .allowed = false, .retry_after_us = 9 * S, .reset_us = 9 * S };
    cr_assert_eq(rl_combine(ds, 3, &all), 1);
    cr_assert(!all.allowed);
    cr_assert_eq(all.delay_us, 0);
    cr_assert_eq(all.retry_after_us, 9 * S);
    cr_assert_eq(all.remaining, 0);
}

static void buf_is(struct buf *b, const char *want)
{
    size_t n = strlen(want);
    cr_assert_eq(buf_len(b), n, "got '%.*s', want '%s'", (int)buf_len(b), buf_rptr(b), want);
    cr_assert(memcmp(buf_rptr(b), want, n) == 0, "got '%.*s', want '%s'", (int)buf_len(b),
              buf_rptr(b), want);
    buf_reset(b);
}

Test(rl_headers, policy_lists_every_rule)
{
    struct rl_rule a = mk(RL_SLIDING_COUNTER, 100, 60 * S, 0);
    struct rl_rule b = mk(RL_TOKEN_BUCKET, 10, S, 5);
    struct rl_rule c = mk(RL_FIXED_WINDOW, 5, 1500 * MS, 0);
    struct rl_rule d = mk(RL_FIXED_WINDOW, 5, 200 * MS, 0);
    a.name = "per-minute";
    b.name = "burst";
    c.name = "odd";
    d.name = NULL;
    const struct rl_rule *rules[] = { &a, &b, &c, &d };
    struct buf buf;
    buf_init(&buf);
    rl_format_policy(&buf, rules, 4);
    buf_is(&buf, "RateLimit-Policy: \"per-minute\";q=100;w=60, \"burst\";q=10;w=1, "
                 "\"odd\";q=5;w=2, \"default\";q=5;w=1\r\n");
    rl_format_policy(&buf, rules, 1);
    buf_is(&buf, "RateLimit-Policy: \"per-minute\";q=100;w=60\r\n");
    buf_free(&buf);
}

Test(rl_headers, names_are_escaped)
{
    struct rl_rule a = mk(RL_FIXED_WINDOW, 1, S, 0);
    a.name = "a\"b\\c";
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(&a, &err), 0);
    const struct rl_rule *rules[] = { &a };
    struct buf buf;
    buf_init(&buf);
    rl_format_policy(&buf, rules, 1);
    buf_is(&buf, "RateLimit-Policy: \"a\\\"b\\\\c\";q=1;w=1\r\n");
    buf_free(&buf);
}

Test(rl_headers, ratelimit_and_retry_after_round_up)
{
    struct rl_rule a = mk(RL_FIXED_WINDOW, 100, 60 * S, 0);
    a.name = "default";
    struct buf buf;
    buf_init(&buf);
    struct rl_decision d = { .allowed = true, .remaining = 42, .reset_us = 9200 * MS };
    rl_format_ratelimit(&buf, &a, &d);
    buf_is(&buf, "RateLimit: \"default\";r=42;t=10\r\n");
    d.reset_us = 10 * S;
    rl_format_ratelimit(&buf, &a, &d);
    buf_is(&buf, "RateLimit: \"default\";r=42;t=10\r\n");
    d.remaining = 0;
    d.reset_us = 0;
    rl_format_ratelimit(&buf, &a, &d);
    buf_is(&buf, "RateLimit: \"default\";r=0;t=0\r\n");
    d.retry_after_us = 1200 * MS;
    rl_format_retry_after(&buf, &d);
    buf_is(&buf, "Retry-After: 2\r\n");
    d.retry_after_us = 300 * MS;
    rl_format_retry_after(&buf, &d);
    buf_is(&buf, "Retry-After: 1\r\n");
    d.retry_after_us = 3 * S;
    rl_format_retry_after(&buf, &d);
    buf_is(&buf, "Retry-After: 3\r\n");
    d.retry_after_us = 18446744073709ull * S;
    rl_format_retry_after(&buf, &d);
    buf_is(&buf, "Retry-After: 18446744073709\r\n");
    buf_free(&buf);
}

/* A real request against two rules: the per-second one rejects. */
Test(rl_headers, rejection_from_decisions)
{
    struct rl_rule minute = mk(RL_SLIDING_LOG, 100, 60 * S, 0);
    struct rl_rule second = mk(RL_TOKEN_BUCKET, 2, S, 0);
    minute.name = "minute";
    second.name = "second";
    struct rl_state *s1 = st_new(&minute), *s2 = st_new(&second);
    struct rl_decision ds[2];
    const struct rl_rule *rules[] = { &minute, &second };
    for (int i = 0; i < 2; i++) {
        ds[0] = at(&minute, s1, T0, 1);
        ds[1] = at(&second, s2, T0, 1);
    }
    ds[0] = at(&minute, s1, T0 + 100 * MS, 1);
    ds[1] = at(&second, s2, T0 + 100 * MS, 1);
    cr_assert(ds[0].allowed && !ds[1].allowed);
    struct buf buf;
    buf_init(&buf);
    rl_headers_append(&buf, rules, ds, 2);
    buf_is(&buf, "RateLimit-Policy: \"minute\";q=100;w=60, \"second\";q=2;w=1\r\n"
                 "RateLimit: \"second\";r=0;t=1\r\n"
                 "Retry-After: 1\r\n");
    /* Admitted: no Retry-After; RateLimit names the rule with less left. */
    ds[0] = at(&minute, s1, T0 + 2 * S, 1);
    ds[1] = at(&second, s2, T0 + 2 * S, 1);
    rl_headers_append(&buf, rules, ds, 2);
    buf_is(&buf, "RateLimit-Policy: \"minute\";q=100;w=60, \"second\";q=2;w=1\r\n"
                 "RateLimit: \"second\";r=1;t=1\r\n");
    buf_free(&buf);
    free(s1);
    free(s2);
}
