/* Unit tests for the circuit breaker (src/gateway/resilience/breaker.c) against a
 * controlled clock: exact state sequences for the consecutive-failure,
 * failure-rate and slow-call trips, the minimum volume, both window kinds,
 * open -> half-open after the wait, the probe budget, and the transitions
 * reported to the listener; then several threads at once. */
#include <criterion/criterion.h>

#include "gateway/resilience/breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000ull
#define SEC 1000000ull
#define T0 (1000 * SEC)

/* A config with every trip rule off, so each test turns on what it tests. */
static struct gw_breaker_cfg base_cfg(void)
{
    struct gw_breaker_cfg c;
    gw_breaker_cfg_default(&c);
    c.consecutive_failures = 0;
    c.failure_rate_pct = 0;
    c.slow_rate_pct = 0;
    c.window_size = 10;
    c.min_calls = 1;
    c.slow_call_us = 100 * MS;
    c.open_wait_us = 10 * SEC;
    c.half_open_probes = 3;
    return c;
}

/* Feeds outcomes while closed: '+' success, '-' failure, 's' slow success,
 * 'S' slow failure. expect holds the state after each: 'c' closed, 'o'
 * open. Each call is allowed first (a closed breaker must allow). */
static void feed(struct gw_breaker *b, uint64_t now, const char *outcomes, const char *expect)
{
    for (size_t i = 0; outcomes[i]; i++) {
        char o = outcomes[i];
        cr_assert(gw_breaker_allow(b, now), "call %zu of \"%s\" refused", i, outcomes);
        bool ok = o == '+' || o == 's';
        uint64_t dur = (o == 's' || o == 'S') ? 150 * MS : 5 * MS;
        gw_breaker_record(b, now, ok, dur);
        char got = gw_breaker_state(b) == GW_BREAKER_CLOSED ? 'c'
                   : gw_breaker_state(b) == GW_BREAKER_OPEN ? 'o'
                                                            : 'h';
        cr_assert_eq(got, expect[i], "after call %zu of \"%s\": state %c, want %c", i, outcomes,
                     got, expect[i]);
    }
}

/* Transition log filled by the listener: "c>o:consecutive_failures;". */
struct tlog {
    char text[512];
    int n;
};

static void on_transition(void *data, struct gw_breaker *b, enum gw_breaker_state from,
                          enum gw_breaker_state to, enum gw_breaker_reason why, uint64_t now_us)
{
    struct tlog *t = data;
    (void)b;
    (void)now_us;
    size_t len = strlen(t->text);
    snprintf(t->text + len, sizeof(t->text) - len, "%c>%c:%s;", gw_breaker_state_name(from)[0],
             gw_breaker_state_name(to)[0], gw_breaker_reason_name(why));
    t->n++;
}

/* ------------------------------------------------------------- config */

Test(breaker_cfg, defaults_are_valid)
{
    struct gw_breaker_cfg c;
    gw_breaker_cfg_default(&c);
    char *err = NULL;
    cr_assert_eq(gw_breaker_cfg_check(&c, &err), 0);
    cr_assert_eq(c.consecutive_failures, 5);
    cr_assert_eq(c.window_type, GW_BREAKER_WINDOW_COUNT);
    cr_assert_eq(c.window_size, 100);
    cr_assert_eq(c.min_calls, 20);
    cr_assert_eq(c.failure_rate_pct, 50);
    cr_assert_eq(c.slow_rate_pct, 100);
    cr_assert_eq(c.slow_call_us, 60 * SEC);
    cr_assert_eq(c.open_wait_us, 30 * SEC);
    cr_assert_eq(c.half_open_probes, 3);
}

Test(breaker_cfg, rejects_bad_values)
{
    struct gw_breaker_cfg c = base_cfg();
    char *err = NULL;
    c.window_size = 0;
    cr_assert_eq(gw_breaker_cfg_check(&c, &err), -1);
    cr_assert(strstr(err, "window_size"));
    free(err);
    c = base_cfg();
    c.window_type = GW_BREAKER_WINDOW_TIME;
    c.window_size = GW_BREAKER_MAX_WINDOW_SECS + 1;
    cr_assert_eq(gw_breaker_cfg_check(&c, &err), -1);
    free(err);
    c = base_cfg();
    c.failure_rate_pct = 101;
    cr_assert_eq(gw_breaker_cfg_check(&c, &err), -1);
    free(err);
    c = base_cfg();
    c.half_open_probes = 0;
    cr_assert_eq(gw_breaker_cfg_check(&c, &err), -1);
    cr_assert(strstr(err, "half_open_probes"));
    free(err);
}

Test(breaker_cfg, names)
{
    cr_assert_str_eq(gw_breaker_state_name(GW_BREAKER_CLOSED), "closed");
    cr_assert_str_eq(gw_breaker_state_name(GW_BREAKER_OPEN), "open");
    cr_assert_str_eq(gw_breaker_state_name(GW_BREAKER_HALF_OPEN), "half_open");
    cr_assert_str_eq(gw_breaker_reason_name(GW_BREAKER_R_SLOW_RATE), "slow_call_rate");
    cr_assert_str_eq(gw_breaker_reason_name(GW_BREAKER_R_PROBES_OK), "probes_succeeded");
}

/* -------------------------------------------------------------- trips */

Test(breaker_trip, consecutive_failures)
{
    struct gw_breaker_cfg c = base_cfg();
    c.consecutive_failures = 3;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    /* A success breaks the run; slow successes are successes. */
    feed(b, T0, "--+--s--", "cccccccc");
    cr_assert_eq(t.n, 0);
    feed(b, T0 + 1, "-", "o");
    cr_assert_str_eq(t.text, "c>o:consecutive_failures;");

    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0 + 1, &st);
    cr_assert_eq(st.state, GW_BREAKER_OPEN);
    cr_assert_eq(st.since_us, T0 + 1);
    cr_assert_eq(st.retry_at_us, T0 + 1 + 10 * SEC);
    cr_assert_eq(st.opened, 1);
    cr_assert_eq(st.window_calls, 0, "the window is cleared on the trip");
    cr_assert_eq(st.consecutive_failures, 0);
    gw_breaker_free(b);
}

Test(breaker_trip, failure_rate_needs_minimum_volume)
{
    struct gw_breaker_cfg c = base_cfg();
    c.failure_rate_pct = 50;
    c.window_size = 10;
    c.min_calls = 6;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    /* 3 of 5 failed is 60%, but five calls are below the minimum. */
    feed(b, T0, "-+-+-", "ccccc");
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0, &st);
    cr_assert_eq(st.window_calls, 5);
    cr_assert_eq(st.window_failures, 3);
    /* Sixth call: 3 of 6 = 50% reaches the threshold. */
    feed(b, T0, "+", "o");
    gw_breaker_free(b);
}

Test(breaker_trip, failure_rate_just_below_threshold)
{
    struct gw_breaker_cfg c = base_cfg();
    c.failure_rate_pct = 50;
    c.window_size = 10;
    c.min_calls = 10;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    /* 4 of 10 failed: 40%, stays closed; the 11th call pushes the first
     * (a success) out: 5 of 10 -> trips. */
    feed(b, T0, "+-+-+-+-++", "cccccccccc");
    feed(b, T0, "-", "o");
    gw_breaker_free(b);
}

Test(breaker_trip, count_window_slides)
{
    struct gw_breaker_cfg c = base_cfg();
    c.failure_rate_pct = 50;
    c.window_size = 4;
    c.min_calls = 4;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    /* Never 2 failures among the last 4 calls. */
    feed(b, T0, "-+++-+++-+++-+++", "cccccccccccccccc");
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0, &st);
    cr_assert_eq(st.window_calls, 4);
    cr_assert_eq(st.window_failures, 1);
    /* Two failures four apart: "-++-" is 2 of 4. */
    feed(b, T0, "++-", "ccc");
    feed(b, T0, "-", "o");
    gw_breaker_free(b);
}

Test(breaker_trip, slow_call_rate)
{
    struct gw_breaker_cfg c = base_cfg();
    c.slow_rate_pct = 60;
    c.slow_call_us = 100 * MS;
    c.window_size = 10;
    c.min_calls = 5;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    /* 4 of 4 slow, but under the minimum volume; then 4 of 5 = 80%. A slow
     * failure counts as slow as well. */
    feed(b, T0, "sssS", "cccc");
    feed(b, T0, "+", "o");

    /* Exactly at the threshold duration counts as slow. */
    gw_breaker_reset(b, T0);
    for (int i = 0; i < 3; i++) {
        cr_assert(gw_breaker_allow(b, T0));
        gw_breaker_record(b, T0, true, 100 * MS);
    }
    for (int i = 0; i < 2; i++) {
        cr_assert(gw_breaker_allow(b, T0));
        gw_breaker_record(b, T0, true, 100 * MS - 1);
    }
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN, "3 of 5 slow is 60%%");
    gw_breaker_free(b);
}

Test(breaker_trip, slow_rate_reason)
{
    struct gw_breaker_cfg c = base_cfg();
    c.slow_rate_pct = 100;
    c.failure_rate_pct = 50;
    c.min_calls = 3;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    feed(b, T0, "sss", "cco");
    cr_assert_str_eq(t.text, "c>o:slow_call_rate;");
    gw_breaker_free(b);
}

Test(breaker_trip, rates_off_never_trip)
{
    struct gw_breaker_cfg c = base_cfg();
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    feed(b, T0, "--------------------SSSSSSSSSS", "cccccccccccccccccccccccccccccc");
    gw_breaker_free(b);
}

Test(breaker_trip, time_window_forgets_old_calls)
{
    struct gw_breaker_cfg c = base_cfg();
    c.window_type = GW_BREAKER_WINDOW_TIME;
    c.window_size = 10; /* seconds */
    c.failure_rate_pct = 50;
    c.min_calls = 10;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    /* Three failures at t=0 s, five successes at t=5 s: 3 of 8, below
     * the minimum volume. */
    feed(b, T0, "---", "ccc");
    feed(b, T0 + 5 * SEC, "+++++", "ccccc");
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0 + 5 * SEC, &st);
    cr_assert_eq(st.window_calls, 8);
    cr_assert_eq(st.window_failures, 3);
    /* At t=10 s the first second has left the window: 0 of 5. Had the
     * old failures stayed, the second of these two would make 5 of 10. */
    gw_breaker_get_stats(b, T0 + 10 * SEC, &st);
    cr_assert_eq(st.window_calls, 5);
    cr_assert_eq(st.window_failures, 0);
    feed(b, T0 + 10 * SEC, "--", "cc");
    /* 3 of 8, 4 of 9, then 5 of 10 trips. */
    feed(b, T0 + 10 * SEC, "---", "cco");
    gw_breaker_free(b);
}

Test(breaker_trip, time_window_long_idle)
{
    struct gw_breaker_cfg c = base_cfg();
    c.window_type = GW_BREAKER_WINDOW_TIME;
    c.window_size = 5;
    c.failure_rate_pct = 100;
    c.min_calls = 3;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    feed(b, T0, "--", "cc");
    /* An hour later nothing of that remains. */
    feed(b, T0 + 3600 * SEC, "--", "cc");
    feed(b, T0 + 3600 * SEC + 4 * SEC, "-", "o");
    gw_breaker_free(b);
}

Test(breaker_trip, time_window_clock_behind)
{
    struct gw_breaker_cfg c = base_cfg();
    c.window_type = GW_BREAKER_WINDOW_TIME;
    c.window_size = 3;
    c.failure_rate_pct = 100;
    c.min_calls = 3;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    feed(b, T0 + 2 * SEC, "-", "c");
    /* A thread whose clock reads earlier is counted in the newest second. */
    feed(b, T0 + 1 * SEC, "-", "c");
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0 + 4 * SEC, &st);
    cr_assert_eq(st.window_calls, 2);
    gw_breaker_get_stats(b, T0 + 5 * SEC, &st);
    cr_assert_eq(st.window_calls, 0);
    gw_breaker_free(b);
}

/* ---------------------------------------------------- open, half-open */

/* Trips a breaker with consecutive_failures = 1 at time t. */
static struct gw_breaker *tripped(struct gw_breaker_cfg *c, uint64_t t)
{
    c->consecutive_failures = 1;
    struct gw_breaker *b = gw_breaker_new(c, t);
    cr_assert(gw_breaker_allow(b, t));
    gw_breaker_record(b, t, false, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    return b;
}

Test(breaker_open, refuses_until_wait_elapsed)
{
    struct gw_breaker_cfg c = base_cfg();
    struct gw_breaker *b = tripped(&c, T0);
    for (uint64_t t = T0; t < T0 + 10 * SEC; t += SEC / 2)
        cr_assert_not(gw_breaker_allow(b, t));
    cr_assert_not(gw_breaker_allow(b, T0 + 10 * SEC - 1));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN, "reads open until a call arrives");
    cr_assert(gw_breaker_allow(b, T0 + 10 * SEC));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN);
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0 + 10 * SEC, &st);
    cr_assert_eq(st.rejected, 21);
    cr_assert_eq(st.probes_admitted, 1);
    gw_breaker_free(b);
}

Test(breaker_open, outcomes_while_open_are_ignored)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 1;
    struct gw_breaker *b = tripped(&c, T0);
    /* Calls admitted before the trip finish late: neither success nor
     * failure changes anything. */
    gw_breaker_record(b, T0 + 1, true, 1 * MS);
    gw_breaker_record(b, T0 + 2, false, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0 + 2, &st);
    cr_assert_eq(st.retry_at_us, T0 + 10 * SEC, "the wait is not extended");
    cr_assert_eq(st.window_calls, 0);
    gw_breaker_free(b);
}

Test(breaker_half_open, admits_exactly_n_probes)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 3;
    struct gw_breaker *b = tripped(&c, T0);
    uint64_t t = T0 + 10 * SEC;
    cr_assert(gw_breaker_allow(b, t));
    cr_assert(gw_breaker_allow(b, t));
    cr_assert(gw_breaker_allow(b, t + 1));
    for (int i = 0; i < 100; i++)
        cr_assert_not(gw_breaker_allow(b, t + 2 + (uint64_t)i * SEC));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN);
    gw_breaker_free(b);
}

Test(breaker_half_open, all_probes_succeed_closes)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 3;
    struct gw_breaker *b = tripped(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    uint64_t now = T0 + 10 * SEC;
    for (int i = 0; i < 3; i++)
        cr_assert(gw_breaker_allow(b, now));
    gw_breaker_record(b, now + 1, true, 1 * MS);
    gw_breaker_record(b, now + 2, true, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN, "two of three");
    gw_breaker_record(b, now + 3, true, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_CLOSED);
    cr_assert_str_eq(t.text, "o>h:wait_elapsed;h>c:probes_succeeded;");
    /* Closed again with a clean window: the next failure trips at once
     * (consecutive_failures = 1), showing nothing else carried over. */
    cr_assert(gw_breaker_allow(b, now + 4));
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, now + 4, &st);
    cr_assert_eq(st.window_calls, 0);
    cr_assert_eq(st.since_us, now + 3);
    gw_breaker_free(b);
}

Test(breaker_half_open, probe_failure_reopens)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 3;
    struct gw_breaker *b = tripped(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    uint64_t now = T0 + 10 * SEC;
    for (int i = 0; i < 3; i++)
        cr_assert(gw_breaker_allow(b, now));
    gw_breaker_record(b, now + 5, true, 1 * MS);
    gw_breaker_record(b, now + 6, false, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    cr_assert_str_eq(t.text, "o>h:wait_elapsed;h>o:probe_failed;");
    /* The third probe's late result is ignored; the new wait counts from
     * the reopening. */
    gw_breaker_record(b, now + 7, true, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    cr_assert_not(gw_breaker_allow(b, now + 6 + 10 * SEC - 1));
    cr_assert(gw_breaker_allow(b, now + 6 + 10 * SEC));
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, now + 6 + 10 * SEC, &st);
    cr_assert_eq(st.opened, 2);
    cr_assert_eq(st.state, GW_BREAKER_HALF_OPEN);
    gw_breaker_free(b);
}

Test(breaker_half_open, slow_probe_reopens_only_when_slow_rule_on)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 1;
    c.slow_rate_pct = 0;
    struct gw_breaker *b = tripped(&c, T0);
    cr_assert(gw_breaker_allow(b, T0 + 10 * SEC));
    gw_breaker_record(b, T0 + 10 * SEC, true, 500 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_CLOSED);
    gw_breaker_free(b);

    c = base_cfg();
    c.half_open_probes = 1;
    c.slow_rate_pct = 80;
    b = tripped(&c, T0);
    cr_assert(gw_breaker_allow(b, T0 + 10 * SEC));
    gw_breaker_record(b, T0 + 10 * SEC, true, 500 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    gw_breaker_free(b);
}

Test(breaker_half_open, release_returns_a_probe_place)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 2;
    struct gw_breaker *b = tripped(&c, T0);
    uint64_t now = T0 + 10 * SEC;
    cr_assert(gw_breaker_allow(b, now));
    cr_assert(gw_breaker_allow(b, now));
    cr_assert_not(gw_breaker_allow(b, now));
    gw_breaker_release(b);
    cr_assert(gw_breaker_allow(b, now), "the released place goes to the next call");
    cr_assert_not(gw_breaker_allow(b, now));
    gw_breaker_record(b, now, true, 1 * MS);
    gw_breaker_record(b, now, true, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_CLOSED);
    /* Release while closed changes nothing. */
    gw_breaker_release(b);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_CLOSED);
    gw_breaker_free(b);
}

Test(breaker_half_open, stray_results_ignored)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 2;
    struct gw_breaker *b = tripped(&c, T0);
    uint64_t now = T0 + 10 * SEC;
    cr_assert(gw_breaker_allow(b, now));
    gw_breaker_record(b, now, true, 1 * MS);
    /* More results than probes: the extra ones are not probes. */
    gw_breaker_record(b, now, true, 1 * MS);
    gw_breaker_record(b, now, false, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN);
    cr_assert(gw_breaker_allow(b, now));
    gw_breaker_record(b, now, true, 1 * MS);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_CLOSED);
    gw_breaker_free(b);
}

Test(breaker_half_open, probe_timeout_reopens)
{
    struct gw_breaker_cfg c = base_cfg();
    c.half_open_probes = 1;
    c.half_open_timeout_us = 5 * SEC;
    struct gw_breaker *b = tripped(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    uint64_t now = T0 + 10 * SEC;
    cr_assert(gw_breaker_allow(b, now)); /* probe lost: never settled */
    cr_assert_not(gw_breaker_allow(b, now + 5 * SEC - 1));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN);
    cr_assert_not(gw_breaker_allow(b, now + 5 * SEC));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    cr_assert_str_eq(t.text, "o>h:wait_elapsed;h>o:probe_timeout;");
    cr_assert(gw_breaker_allow(b, now + 15 * SEC));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN);
    gw_breaker_free(b);
}

Test(breaker_half_open, full_cycle_sequence)
{
    /* closed -> open (rate) -> half-open -> open (probe) -> half-open ->
     * closed, with the defaults except a small window. */
    struct gw_breaker_cfg c;
    gw_breaker_cfg_default(&c);
    c.window_size = 20;
    c.min_calls = 10;
    c.consecutive_failures = 0;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    feed(b, T0, "+-+-+-+-+", "ccccccccc");
    feed(b, T0, "-", "o");
    uint64_t now = T0 + c.open_wait_us;
    cr_assert(gw_breaker_allow(b, now));
    gw_breaker_record(b, now, false, 1 * MS);
    now += c.open_wait_us;
    for (int i = 0; i < 3; i++)
        cr_assert(gw_breaker_allow(b, now));
    cr_assert_not(gw_breaker_allow(b, now));
    for (int i = 0; i < 3; i++)
        gw_breaker_record(b, now, true, 1 * MS);
    cr_assert_str_eq(t.text, "c>o:failure_rate;o>h:wait_elapsed;h>o:probe_failed;"
                             "o>h:wait_elapsed;h>c:probes_succeeded;");
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, now, &st);
    cr_assert_eq(st.opened, 2);
    cr_assert_eq(st.rejected, 1);
    gw_breaker_free(b);
}

Test(breaker_half_open, reset_closes)
{
    struct gw_breaker_cfg c = base_cfg();
    struct gw_breaker *b = tripped(&c, T0);
    struct tlog t = {0};
    gw_breaker_set_listener(b, on_transition, &t);
    gw_breaker_reset(b, T0 + 1);
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_CLOSED);
    cr_assert(gw_breaker_allow(b, T0 + 1));
    gw_breaker_reset(b, T0 + 2); /* already closed: no transition */
    cr_assert_str_eq(t.text, "o>c:reset;");
    gw_breaker_free(b);
}

/* --------------------------------------------------------- concurrency */

#define NTHREADS 8

struct race {
    struct gw_breaker *b;
    pthread_barrier_t *bar;
    _Atomic uint64_t *now;
    _Atomic int allowed;
    int iters;
};

static void *probe_racer(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(r->bar);
    for (int i = 0; i < r->iters; i++)
        if (gw_breaker_allow(r->b, atomic_load(r->now)))
            atomic_fetch_add(&r->allowed, 1);
    return NULL;
}

Test(breaker_threads, half_open_admits_exactly_n_under_race)
{
    for (int round = 0; round < 20; round++) {
        struct gw_breaker_cfg c = base_cfg();
        c.half_open_probes = 5;
        struct gw_breaker *b = tripped(&c, T0);
        struct tlog t = {0};
        gw_breaker_set_listener(b, on_transition, &t);
        _Atomic uint64_t now = T0 + 10 * SEC;
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, NTHREADS);
        struct race r = {.b = b, .bar = &bar, .now = &now, .iters = 1000};
        pthread_t th[NTHREADS];
        for (int i = 0; i < NTHREADS; i++)
            pthread_create(&th[i], NULL, probe_racer, &r);
        for (int i = 0; i < NTHREADS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        cr_assert_eq(atomic_load(&r.allowed), 5);
        cr_assert_eq(t.n, 1, "exactly one open -> half-open transition");
        gw_breaker_free(b);
    }
}

static void count_transition(void *data, struct gw_breaker *b, enum gw_breaker_state from,
                             enum gw_breaker_state to, enum gw_breaker_reason why, uint64_t now_us)
{
    (void)b;
    (void)why;
    (void)now_us;
    if (from == to)
        abort(); /* fails the test from any thread */
    atomic_fetch_add((_Atomic int *)data, 1);
}

struct storm_arg {
    struct gw_breaker *b;
    pthread_barrier_t *bar;
    unsigned seed;
};

static void *storm_worker(void *arg)
{
    struct storm_arg *a = arg;
    pthread_barrier_wait(a->bar);
    uint64_t now = T0;
    for (int i = 0; i < 20000; i++) {
        now += 100; /* each thread's clock moves on; they differ a little */
        a->seed = a->seed * 1103515245u + 12345u;
        bool ok = ((a->seed >> 16) % 100) >= 40;
        if (gw_breaker_allow(a->b, now))
            gw_breaker_record(a->b, now, ok, 1 * MS);
    }
    return NULL;
}

Test(breaker_threads, storm_keeps_counts_consistent)
{
    struct gw_breaker_cfg c = base_cfg();
    c.failure_rate_pct = 50;
    c.consecutive_failures = 6;
    c.window_size = 50;
    c.min_calls = 20;
    c.open_wait_us = 10 * MS;
    c.half_open_probes = 4;
    struct gw_breaker *b = gw_breaker_new(&c, T0);
    _Atomic int transitions = 0;
    gw_breaker_set_listener(b, count_transition, &transitions);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    struct storm_arg args[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (struct storm_arg){.b = b, .bar = &bar, .seed = (unsigned)i * 7919u + 1};
        pthread_create(&th[i], NULL, storm_worker, &args[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);

    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, T0 + 3 * SEC, &st);
    cr_assert_leq(st.window_calls, 50);
    cr_assert_leq(st.window_failures, st.window_calls);
    cr_assert_leq(st.probes_succeeded, st.probes_admitted);
    cr_assert_leq(st.probes_admitted, 4);
    cr_assert_gt(st.opened, 0, "40%% failures trip the 6-in-a-row rule sometimes");
    cr_assert_gt(atomic_load(&transitions), 0);
    gw_breaker_free(b);
}
