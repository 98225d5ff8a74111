/* The rate-limit tests' shared clock constants and assertions (rules
 * prepared or refused, admit / delay / deny at an exact time). Header
 * only, every function static inline, so each test file gets its own
 * copy; a failure fails the calling test. */
#ifndef TEST_RATELIMIT_H
#define TEST_RATELIMIT_H

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

static inline struct rl_rule mk(enum rl_algo algo, uint64_t limit, uint64_t window_us, uint64_t burst)
{
    struct rl_rule r = { .algo = algo, .id = 1, .name = "t", .limit = limit,
                         .window_us = window_us, .burst = burst };
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(&r, &err), 0, "prepare: %s", err ? err : "");
    return r;
}

static inline void prep(struct rl_rule *r)
{
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(r, &err), 0, "prepare: %s", err ? err : "");
}

static inline struct rl_state *st_new(const struct rl_rule *r)
{
    struct rl_state *st = malloc(rl_state_size(r));
    cr_assert_not_null(st);
    rl_state_init(r, st);
    return st;
}

static inline struct rl_decision at(const struct rl_rule *r, struct rl_state *st, uint64_t t,
                             uint32_t cost)
{
    struct rl_decision d;
    memset(&d, 0xa5, sizeof d);
    bool ok = rl_check(r, st, t, cost, &d);
    cr_assert_eq(ok, d.allowed);
    return d;
}

/* Admitted now (no delay), with the given remaining and reset. */
static inline void admit(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint64_t remaining,
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
static inline void delayed(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint64_t delay)
{
    struct rl_decision d = at(r, st, t, 1);
    cr_assert(d.allowed, "expected admit with delay %llu at T0+%llu", (unsigned long long)delay,
              (unsigned long long)(t - T0));
    cr_assert_eq(d.delay_us, delay, "delay %llu, want %llu at T0+%llu",
                 (unsigned long long)d.delay_us, (unsigned long long)delay,
                 (unsigned long long)(t - T0));
}

/* Rejected with exactly this retry_after. */
static inline void deny(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint64_t retry)
{
    struct rl_decision d = at(r, st, t, 1);
    cr_assert(!d.allowed, "expected deny at T0+%llu", (unsigned long long)(t - T0));
    cr_assert_eq(d.delay_us, 0);
    cr_assert_eq(d.retry_after_us, retry, "retry %llu, want %llu at T0+%llu",
                 (unsigned long long)d.retry_after_us, (unsigned long long)retry,
                 (unsigned long long)(t - T0));
}

/* n admissions at t with no delay; returns nothing, asserts each. */
static inline void admit_n(const struct rl_rule *r, struct rl_state *st, uint64_t t, int n)
{
    for (int i = 0; i < n; i++) {
        struct rl_decision d = at(r, st, t, 1);
        cr_assert(d.allowed && d.delay_us == 0, "request %d at T0+%llu not admitted at once", i,
                  (unsigned long long)(t - T0));
    }
}

#endif
