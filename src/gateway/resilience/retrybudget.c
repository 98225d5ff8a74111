/* Retry budget (see retrybudget.h and docs/internals/resilience.md).
 *
 * Each bucket of the window is two 64-bit words, one for requests and one
 * for retries. A word holds the bucket's tick (now / bucket length, low 32
 * bits) in its high half and the count in its low half, so claiming a
 * bucket for a new tick and counting in it is a single compare-and-swap:
 * no thread can add to a bucket that another thread is recycling. A word
 * belongs to the window when its tick is one of the last `buckets` ticks;
 * tick arithmetic is modulo 2^32, so wrap-around is harmless.
 *
 * Requests are counted lock-free. Granting a retry must read the whole
 * window and then add to it atomically with respect to other grants, so
 * grants serialize on a spinlock; they only happen after a failed attempt,
 * which is rare next to requests. Under the lock the newest tick seen is
 * remembered and a caller whose clock lags is counted in it, so a grant
 * always lands in a bucket the next grant will read. */
#include "gateway/resilience/retrybudget.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct gw_rb {
    uint64_t bucket_us;
    uint32_t n;            /* buckets */
    uint32_t floor;        /* min_per_sec * window seconds */
    uint64_t ratio_ppm;    /* ratio in millionths */
    atomic_flag lock;      /* serializes grants */
    uint32_t head_tick;    /* under lock: newest tick a grant saw */
    bool have_head;        /* under lock */
    _Atomic uint64_t total_requests;
    _Atomic uint64_t total_retries;
    _Atomic uint64_t total_denied;
    _Atomic uint64_t req[GW_RB_MAX_BUCKETS];   /* tick << 32 | count */
    _Atomic uint64_t retry[GW_RB_MAX_BUCKETS]; /* tick << 32 | count, written under lock */
};

static inline void rb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void gw_rb_cfg_default(struct gw_rb_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ratio = 0.2;
    cfg->min_per_sec = 10;
    cfg->window_us = 10 * 1000000ull;
    cfg->buckets = 10;
}

/* A new field changes the size: compare it below too, then update this. */
_Static_assert(sizeof(struct gw_rb_cfg) == 32, "gw_rb_cfg_equal() compares every field");

bool gw_rb_cfg_equal(const struct gw_rb_cfg *a, const struct gw_rb_cfg *b)
{
    return a->ratio == b->ratio &&
           a->min_per_sec == b->min_per_sec &&
           a->window_us == b->window_us &&
           a->buckets == b->buckets;
}

int gw_rb_cfg_check(const struct gw_rb_cfg *cfg, char **err)
{
    if (!(cfg->ratio >= 0.0 && cfg->ratio <= 10.0)) {
        *err = xasprintf("retry budget: ratio %g out of range 0..10", cfg->ratio);
        return -1;
    }
    if (cfg->buckets < 1 || cfg->buckets > GW_RB_MAX_BUCKETS) {
        *err = xasprintf("retry budget: buckets %u out of range 1..%u", cfg->buckets,
                         GW_RB_MAX_BUCKETS);
        return -1;
    }
    if (cfg->window_us < cfg->buckets || cfg->window_us > 3600 * 1000000ull) {
        *err = xasprintf("retry budget: window must be between %u us and 1 h", cfg->buckets);
        return -1;
    }
    if ((uint64_t)cfg->min_per_sec * (cfg->window_us / 1000000 + 1) > UINT32_MAX) {
        *err = xasprintf("retry budget: min_per_sec %u too large", cfg->min_per_sec);
        return -1;
    }
    return 0;
}

struct gw_rb *gw_rb_new(const struct gw_rb_cfg *cfg)
{
    char *err = NULL;
    int rc = gw_rb_cfg_check(cfg, &err);
    ASSERT(rc == 0);

    struct gw_rb *rb = xcalloc(1, sizeof(*rb));
    rb->n = cfg->buckets;
    rb->bucket_us = cfg->window_us / cfg->buckets;
    rb->floor = (uint32_t)((uint64_t)cfg->min_per_sec * cfg->window_us / 1000000);
    rb->ratio_ppm = (uint64_t)llround(cfg->ratio * 1e6);
    atomic_flag_clear(&rb->lock);
    /* Tick 0 is a real tick, so mark every bucket as holding a tick that
     * is out of any window at start: the one a full window before. */
    for (uint32_t i = 0; i < GW_RB_MAX_BUCKETS; i++) {
        atomic_init(&rb->req[i], (uint64_t)(uint32_t)(0u - GW_RB_MAX_BUCKETS - 1) << 32);
        atomic_init(&rb->retry[i], (uint64_t)(uint32_t)(0u - GW_RB_MAX_BUCKETS - 1) << 32);
    }
    return rb;
}

void gw_rb_free(struct gw_rb *rb)
{
    free(rb);
}

static inline uint32_t rb_tick(const struct gw_rb *rb, uint64_t now_us)
{
    return (uint32_t)(now_us / rb->bucket_us);
}

/* True when tick t is one of the n ticks ending at cur. */
static inline bool rb_in_window(uint32_t t, uint32_t cur, uint32_t n)
{
    return (uint32_t)(cur - t) < n;
}

/* Adds one to the word of tick t: counts in it when it already holds t or
 * a newer tick (a lagging clock), claims it when it holds an older one. */
static void rb_add(_Atomic uint64_t *w, uint32_t t)
{
    uint64_t cur = atomic_load_explicit(w, memory_order_relaxed);
    for (;;) {
        uint32_t wt = (uint32_t)(cur >> 32);
        uint32_t cnt = (uint32_t)cur;
        uint64_t next;
        if (wt == t || (int32_t)(wt - t) > 0)
            next = cnt == UINT32_MAX ? cur : cur + 1;
        else
            next = (uint64_t)t << 32 | 1u;
        if (atomic_compare_exchange_weak_explicit(w, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

/* Sums the counts of the words in the window ending at cur. */
static uint64_t rb_sum(const struct gw_rb *rb, _Atomic uint64_t *words, uint32_t cur)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < rb->n; i++) {
        uint64_t w = atomic_load_explicit(&words[i], memory_order_relaxed);
        if (rb_in_window((uint32_t)(w >> 32), cur, rb->n))
            sum += (uint32_t)w;
    }
    return sum;
}

static uint64_t rb_budget(const struct gw_rb *rb, uint64_t requests)
{
    uint64_t by_ratio = requests * rb->ratio_ppm / 1000000;
    return by_ratio > rb->floor ? by_ratio : rb->floor;
}

void gw_rb_request(struct gw_rb *rb, uint64_t now_us)
{
    uint32_t t = rb_tick(rb, now_us);
    rb_add(&rb->req[t % rb->n], t);
    atomic_fetch_add_explicit(&rb->total_requests, 1, memory_order_relaxed);
}

bool gw_rb_try_retry(struct gw_rb *rb, uint64_t now_us)
{
    uint32_t t = rb_tick(rb, now_us);
    bool ok;

    while (atomic_flag_test_and_set_explicit(&rb->lock, memory_order_acquire))
        rb_cpu_relax();
    if (rb->have_head && (int32_t)(rb->head_tick - t) > 0)
        t = rb->head_tick;
    rb->head_tick = t;
    rb->have_head = true;
    uint64_t requests = rb_sum(rb, rb->req, t);
    uint64_t retries = rb_sum(rb, rb->retry, t);
    ok = retries < rb_budget(rb, requests);
    if (ok)
        rb_add(&rb->retry[t % rb->n], t);
    atomic_flag_clear_explicit(&rb->lock, memory_order_release);

    atomic_fetch_add_explicit(ok ? &rb->total_retries : &rb->total_denied, 1,
                              memory_order_relaxed);
    return ok;
}

void gw_rb_get_stats(struct gw_rb *rb, uint64_t now_us, struct gw_rb_stats *out)
{
    uint32_t t = rb_tick(rb, now_us);
    memset(out, 0, sizeof(*out));
    out->requests = atomic_load_explicit(&rb->total_requests, memory_order_relaxed);
    out->retries = atomic_load_explicit(&rb->total_retries, memory_order_relaxed);
    out->denied = atomic_load_explicit(&rb->total_denied, memory_order_relaxed);
    uint64_t req = rb_sum(rb, rb->req, t);
    uint64_t ret = rb_sum(rb, rb->retry, t);
    uint64_t budget = rb_budget(rb, req);
    out->window_requests = (uint32_t)FG_MIN(req, UINT32_MAX);
    out->window_retries = (uint32_t)FG_MIN(ret, UINT32_MAX);
    out->budget = (uint32_t)FG_MIN(budget, UINT32_MAX);
}
