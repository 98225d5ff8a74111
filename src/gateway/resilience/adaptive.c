/* Adaptive concurrency limit (see adaptive.h and
 * docs/internals/resilience.md).
 *
 * Two phases. MEASURING: the published limit is min_limit; samples of
 * requests that started after the measurement began (so ran at low
 * concurrency) are collected, and their median becomes min_rtt. RUNNING:
 * samples are summed into a window; the sample that finds the window at
 * least window_us old and window_min_samples full closes it and computes
 * the next limit from the window's average RTT, largest in-flight count
 * and drops.
 *
 * Why the gradient is anchored on a measured min_rtt rather than on a
 * long-term average of the RTT (Netflix Gradient2): under an overload that
 * lasts, a long-term average converges to the inflated latency itself, the
 * gradient returns to 1 and the limit creeps up again. A baseline measured
 * at pinned low concurrency cannot drift that way. The price is a short
 * dip to min_limit once per min_rtt_interval_us.
 *
 * The estimate is a double so that small steps (smoothing, +1) accumulate;
 * the published limit is its rounding. */
#include "gateway/resilience/adaptive.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STALE_WINDOWS 3 /* windows at min_limit still queueing before re-measuring */

struct gw_limit {
    _Atomic uint32_t limit; /* published; read lock-free */
    atomic_flag lock;

    /* Under lock. */
    struct gw_limit_cfg cfg;
    double est;
    bool measuring;
    uint64_t measure_start_us;
    uint64_t next_measure_us;
    uint32_t nprobe;
    uint64_t probe_rtt[GW_LIMIT_MAX_PROBE_SAMPLES];
    uint64_t min_rtt_us;
    uint64_t last_rtt_us;
    uint32_t stale;          /* consecutive windows at min_limit with queueing */
    uint64_t win_start_us;
    uint64_t win_sum_rtt;
    uint32_t win_n;          /* samples that were not drops */
    uint32_t win_drops;
    uint32_t win_max_inflight;
    uint64_t samples, drops, updates, measurements;
};

static inline void lim_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void lim_lock(struct gw_limit *l)
{
    while (atomic_flag_test_and_set_explicit(&l->lock, memory_order_acquire))
        lim_cpu_relax();
}

static void lim_unlock(struct gw_limit *l)
{
    atomic_flag_clear_explicit(&l->lock, memory_order_release);
}

void gw_limit_cfg_default(struct gw_limit_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->algo = GW_LIMIT_GRADIENT;
    cfg->initial_limit = 20;
    cfg->min_limit = 4;
    cfg->max_limit = 1000;
    cfg->window_us = 100 * 1000;
    cfg->window_min_samples = 10;
    cfg->min_rtt_interval_us = 60 * 1000000ull;
    cfg->min_rtt_samples = 25;
    cfg->timeout_us = 0;
    cfg->backoff = 0.9;
    cfg->buffer = 0.1;
    cfg->smoothing = 0.5;
    cfg->tolerance = 1.2;
    cfg->increase = 1;
}

/* A new field changes the size: compare it below too, then update this. */
_Static_assert(sizeof(struct gw_limit_cfg) == 96, "gw_limit_cfg_equal() compares every field");

bool gw_limit_cfg_equal(const struct gw_limit_cfg *a, const struct gw_limit_cfg *b)
{
    return a->algo == b->algo &&
           a->initial_limit == b->initial_limit &&
           a->min_limit == b->min_limit &&
           a->max_limit == b->max_limit &&
           a->window_us == b->window_us &&
           a->window_min_samples == b->window_min_samples &&
           a->min_rtt_interval_us == b->min_rtt_interval_us &&
           a->min_rtt_samples == b->min_rtt_samples &&
           a->timeout_us == b->timeout_us &&
           a->backoff == b->backoff &&
           a->buffer == b->buffer &&
           a->smoothing == b->smoothing &&
           a->tolerance == b->tolerance &&
           a->increase == b->increase;
}

int gw_limit_cfg_check(const struct gw_limit_cfg *cfg, char **err)
{
    if (cfg->algo != GW_LIMIT_GRADIENT && cfg->algo != GW_LIMIT_AIMD) {
        *err = xasprintf("adaptive limit: unknown algorithm %d", (int)cfg->algo);
        return -1;
    }
    if (cfg->min_limit < 1 || cfg->max_limit < cfg->min_limit) {
        *err = xasprintf("adaptive limit: need 1 <= min_limit (%u) <= max_limit (%u)",
                         cfg->min_limit, cfg->max_limit);
        return -1;
    }
    if (cfg->initial_limit < cfg->min_limit || cfg->initial_limit > cfg->max_limit) {
        *err = xasprintf("adaptive limit: initial_limit %u outside %u..%u", cfg->initial_limit,
                         cfg->min_limit, cfg->max_limit);
        return -1;
    }
    if (cfg->min_rtt_samples < 1 || cfg->min_rtt_samples > GW_LIMIT_MAX_PROBE_SAMPLES) {
        *err = xasprintf("adaptive limit: min_rtt_samples %u out of range 1..%u",
                         cfg->min_rtt_samples, GW_LIMIT_MAX_PROBE_SAMPLES);
        return -1;
    }
    if (cfg->window_us < 1 || cfg->window_min_samples < 1) {
        *err = xasprintf("adaptive limit: window and window_min_samples must be positive");
        return -1;
    }
    if (!(cfg->backoff >= 0.5 && cfg->backoff <= 1.0)) {
        *err = xasprintf("adaptive limit: backoff %g out of range 0.5..1", cfg->backoff);
        return -1;
    }
    if (!(cfg->buffer >= 0.0 && cfg->buffer <= 10.0)) {
        *err = xasprintf("adaptive limit: buffer %g out of range 0..10", cfg->buffer);
        return -1;
    }
    if (!(cfg->smoothing > 0.0 && cfg->smoothing <= 1.0)) {
        *err = xasprintf("adaptive limit: smoothing %g out of range (0, 1]", cfg->smoothing);
        return -1;
    }
    if (!(cfg->tolerance >= 1.0 && cfg->tolerance <= 100.0)) {
        *err = xasprintf("adaptive limit: tolerance %g out of range 1..100", cfg->tolerance);
        return -1;
    }
    return 0;
}

static void lim_publish(struct gw_limit *l, double v)
{
    double lo = l->cfg.min_limit, hi = l->cfg.max_limit;
    if (!(v >= lo)) /* also catches NaN */
        v = lo;
    if (v > hi)
        v = hi;
    l->est = v;
    if (!l->measuring)
        atomic_store_explicit(&l->limit, (uint32_t)lround(v), memory_order_relaxed);
}

static void lim_window_reset(struct gw_limit *l, uint64_t now_us)
{
    l->win_start_us = now_us;
    l->win_sum_rtt = 0;
    l->win_n = l->win_drops = l->win_max_inflight = 0;
}

static void lim_measure_start(struct gw_limit *l, uint64_t now_us)
{
    l->measuring = true;
    l->measure_start_us = now_us;
    l->nprobe = 0;
    l->stale = 0;
    atomic_store_explicit(&l->limit, l->cfg.min_limit, memory_order_relaxed);
}

static int lim_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void lim_measure_end(struct gw_limit *l, uint64_t now_us)
{
    qsort(l->probe_rtt, l->nprobe, sizeof(l->probe_rtt[0]), lim_cmp_u64);
    l->min_rtt_us = l->probe_rtt[l->nprobe / 2];
    l->measuring = false;
    l->measurements++;
    l->next_measure_us =
        l->cfg.min_rtt_interval_us ? now_us + l->cfg.min_rtt_interval_us : UINT64_MAX;
    lim_window_reset(l, now_us);
    lim_publish(l, l->est);
}

struct gw_limit *gw_limit_new(const struct gw_limit_cfg *cfg, uint64_t now_us)
{
    char *err = NULL;
    int rc = gw_limit_cfg_check(cfg, &err);
    ASSERT(rc == 0);

    struct gw_limit *l = xcalloc(1, sizeof(*l));
    l->cfg = *cfg;
    atomic_flag_clear(&l->lock);
    l->est = cfg->initial_limit;
    atomic_init(&l->limit, cfg->initial_limit);
    lim_window_reset(l, now_us);
    lim_measure_start(l, now_us);
    return l;
}

void gw_limit_free(struct gw_limit *l)
{
    free(l);
}

/* AIMD's additive step for one window: `increase` per round trip, as in
 * TCP congestion avoidance (a window of n samples at limit est spans about
 * n / est round trips), but no more than a tenth of the limit per window
 * so that a small limit with many round trips per window does not leap
 * past the knee. */
static double lim_aimd_step(const struct gw_limit_cfg *c, double est, uint32_t n)
{
    double step = (double)c->increase * n / est;
    double cap = est * 0.1;
    if (cap < c->increase)
        cap = c->increase;
    return step < cap ? step : cap;
}

/* Computes the next estimate from a closed window (running phase). */
static void lim_update(struct gw_limit *l, uint64_t now_us)
{
    const struct gw_limit_cfg *c = &l->cfg;
    double est = l->est;
    bool queueing, faster = false;

    l->updates++;
    if (l->win_n) {
        l->last_rtt_us = l->win_sum_rtt / l->win_n;
        if (l->last_rtt_us < l->min_rtt_us) {
            /* The service got faster. A little: adopt the window's
             * average. Much: that average still carries some queueing,
             * so measure the new no-load RTT properly. */
            if (l->last_rtt_us * 5 < l->min_rtt_us * 4)
                faster = true;
            l->min_rtt_us = l->last_rtt_us;
        }
    }
    bool app_limited = (double)l->win_max_inflight < est / 2;

    if (l->win_drops) {
        queueing = true;
        est *= c->backoff;
    } else if (c->algo == GW_LIMIT_AIMD) {
        queueing = (double)l->last_rtt_us > c->tolerance * (double)l->min_rtt_us;
        if (queueing)
            est *= c->backoff;
        else if (!app_limited)
            est += lim_aimd_step(c, est, l->win_n + l->win_drops);
    } else {
        double g = (double)l->min_rtt_us * (1.0 + c->buffer) / (double)l->last_rtt_us;
        if (g < 0.5)
            g = 0.5;
        if (g > 2.0)
            g = 2.0;
        queueing = g < 1.0;
        if (queueing || !app_limited) {
            double target = est * g + (queueing ? 0.0 : sqrt(est));
            est = est * (1.0 - c->smoothing) + target * c->smoothing;
        }
    }
    lim_publish(l, est);

    /* Pinned at the floor and still queueing: either the service really
     * cannot take min_limit, or it got slower and min_rtt is stale. A new
     * measurement tells the two apart. */
    if (queueing && l->est <= c->min_limit) {
        if (++l->stale >= STALE_WINDOWS)
            faster = true;
    } else {
        l->stale = 0;
    }
    if (faster)
        lim_measure_start(l, now_us);
}

void gw_limit_on_sample(struct gw_limit *l, uint64_t now_us, uint64_t rtt_us, uint32_t inflight,
                        bool dropped)
{
    if (rtt_us == 0)
        return;
    if (l->cfg.timeout_us && rtt_us >= l->cfg.timeout_us)
        dropped = true;

    lim_lock(l);
    l->samples++;
    if (dropped)
        l->drops++;

    if (l->measuring) {
        /* Only requests sent after the pin took effect ran at low
         * concurrency; a drop says nothing about the no-load RTT. */
        if (!dropped && now_us >= rtt_us && now_us - rtt_us >= l->measure_start_us) {
            l->probe_rtt[l->nprobe++] = rtt_us;
            if (l->nprobe >= l->cfg.min_rtt_samples)
                lim_measure_end(l, now_us);
        }
        lim_unlock(l);
        return;
    }

    if (now_us >= l->next_measure_us) {
        lim_measure_start(l, now_us);
        lim_unlock(l);
        return;
    }

    if (dropped) {
        l->win_drops++;
    } else {
        l->win_sum_rtt += rtt_us;
        l->win_n++;
    }
    if (inflight > l->win_max_inflight)
        l->win_max_inflight = inflight;
    /* A window closes when it is old and full enough, or as soon as it is
     * one no-load RTT old and has seen a drop: like TCP reacting to loss
     * once per round trip, so that fast failures, which free their slot
     * at once, are not repeated for a whole window. */
    /* Threads read the clock before taking the lock, so now_us may be a
     * little older than the window's start. */
    uint64_t age = now_us > l->win_start_us ? now_us - l->win_start_us : 0;
    if ((age >= l->cfg.window_us && l->win_n + l->win_drops >= l->cfg.window_min_samples) ||
        (l->win_drops && age >= l->min_rtt_us)) {
        lim_update(l, now_us);
        lim_window_reset(l, now_us);
    }
    lim_unlock(l);
}

uint32_t gw_limit_get(const struct gw_limit *l)
{
    return atomic_load_explicit(&l->limit, memory_order_relaxed);
}

void gw_limit_get_stats(struct gw_limit *l, struct gw_limit_stats *out)
{
    memset(out, 0, sizeof(*out));
    lim_lock(l);
    out->limit = atomic_load_explicit(&l->limit, memory_order_relaxed);
    out->estimate = l->est;
    out->min_rtt_us = l->min_rtt_us;
    out->last_rtt_us = l->last_rtt_us;
    out->measuring = l->measuring;
    out->samples = l->samples;
    out->drops = l->drops;
    out->updates = l->updates;
    out->measurements = l->measurements;
    lim_unlock(l);
}

const char *gw_limit_algo_name(enum gw_limit_algo a)
{
    return a == GW_LIMIT_AIMD ? "aimd" : a == GW_LIMIT_GRADIENT ? "gradient" : "unknown";
}

int gw_limit_algo_parse(const char *s, size_t len)
{
    if (fg_strieq(s, len, "gradient"))
        return GW_LIMIT_GRADIENT;
    if (fg_strieq(s, len, "aimd"))
        return GW_LIMIT_AIMD;
    return -1;
}
