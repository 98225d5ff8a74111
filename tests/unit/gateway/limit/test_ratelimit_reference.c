/* Rate-limiting algorithms against naive reference implementations
 * (a list of every admission, a per-window tally, a fractional token
 * bucket) and the sliding counter's error against the exact log over
 * randomized traces (src/gateway/limit/ratelimit.c). */
#include "test_ratelimit.h"

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
