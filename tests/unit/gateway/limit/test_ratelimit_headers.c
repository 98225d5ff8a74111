/* Combining rate-limit decisions and their response headers
 * (src/gateway/limit/headers.c): policy lists, escaping, rounding and a
 * rejection built from real decisions. */
#include "test_ratelimit.h"

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
