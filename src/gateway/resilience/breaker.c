/* Circuit breaker (see breaker.h and docs/internals/resilience.md).
 *
 * Shared-state layout. The state and the end of the open wait are atomics
 * of their own, so the two hot questions, "closed?" and "still open?",
 * are answered without the lock; so are the state's start and the probes
 * admitted in half-open, which gw_breaker_admits() reads for a balancer
 * that skips servers whose breaker would refuse. Those four are only
 * written under the lock. Everything else (the sliding window, the
 * failure run, the other probe counts) is written only under the spinlock,
 * whose critical sections are a handful of integer updates.
 *
 * The count-based window is a ring of one byte per call (bit 0: failed,
 * bit 1: slow) with running totals. The time-based window is a ring of
 * one-second buckets, each tagged with the second it holds; moving to a
 * later second clears the buckets that fell out of the window, at most
 * window_size of them however long the breaker sat idle. A caller whose
 * clock reads a little behind the newest second seen (threads read the
 * clock before taking the lock) is counted in the newest bucket. */
#include "gateway/resilience/breaker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define OUT_FAIL 1u
#define OUT_SLOW 2u

struct gw_breaker_bucket {
    uint64_t sec; /* the second this bucket holds */
    uint32_t calls;
    uint32_t fails;
    uint32_t slows;
};

struct gw_breaker {
    _Atomic int state;            /* enum gw_breaker_state, written under lock */
    _Atomic uint64_t retry_at_us; /* OPEN: first moment a probe may go */
    _Atomic uint64_t rejected;    /* calls refused, relaxed */
    _Atomic uint64_t since_us;    /* when the state was entered, written under lock */
    _Atomic uint32_t probes_issued; /* HALF_OPEN: admitted, not released; written under lock */
    atomic_flag lock;

    /* Under lock. */
    struct gw_breaker_cfg cfg;
    uint32_t consec;         /* current failure run */
    uint32_t calls;          /* window totals */
    uint32_t fails;
    uint32_t slows;
    uint8_t *ring;           /* COUNT: one outcome per slot */
    uint32_t ring_pos;       /* COUNT: next slot to write */
    struct gw_breaker_bucket *buckets; /* TIME: window_size buckets */
    uint64_t head_sec;       /* TIME: newest second seen */
    uint32_t probes_out;     /* HALF_OPEN: admitted, not yet settled */
    uint32_t probes_ok;      /* HALF_OPEN: succeeded */
    uint64_t opened;

    gw_breaker_transition_cb *cb; /* set before sharing */
    void *cb_data;
};

/* A transition decided under the lock, reported after it is released. */
struct brk_event {
    bool happened;
    enum gw_breaker_state from, to;
    enum gw_breaker_reason why;
};

static inline void brk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void brk_lock(struct gw_breaker *b)
{
    while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire))
        brk_cpu_relax();
}

static void brk_unlock(struct gw_breaker *b)
{
    atomic_flag_clear_explicit(&b->lock, memory_order_release);
}

void gw_breaker_cfg_default(struct gw_breaker_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->consecutive_failures = 5;
    cfg->window_type = GW_BREAKER_WINDOW_COUNT;
    cfg->window_size = 100;
    cfg->min_calls = 20;
    cfg->failure_rate_pct = 50;
    cfg->slow_rate_pct = 100;
    cfg->slow_call_us = 60 * 1000000ull;
    cfg->open_wait_us = 30 * 1000000ull;
    cfg->half_open_probes = 3;
    cfg->half_open_timeout_us = 0;
}

/* A new field changes the size: compare it below too, then update this. */
_Static_assert(sizeof(struct gw_breaker_cfg) == 56, "gw_breaker_cfg_equal() compares every field");

bool gw_breaker_cfg_equal(const struct gw_breaker_cfg *a, const struct gw_breaker_cfg *b)
{
    return a->consecutive_failures == b->consecutive_failures &&
           a->window_type == b->window_type &&
           a->window_size == b->window_size &&
           a->min_calls == b->min_calls &&
           a->failure_rate_pct == b->failure_rate_pct &&
           a->slow_rate_pct == b->slow_rate_pct &&
           a->slow_call_us == b->slow_call_us &&
           a->open_wait_us == b->open_wait_us &&
           a->half_open_probes == b->half_open_probes &&
           a->half_open_timeout_us == b->half_open_timeout_us;
}

int gw_breaker_cfg_check(const struct gw_breaker_cfg *cfg, char **err)
{
    if (cfg->window_type != GW_BREAKER_WINDOW_COUNT && cfg->window_type != GW_BREAKER_WINDOW_TIME) {
        *err = xasprintf("breaker: unknown window type %d", (int)cfg->window_type);
        return -1;
    }
    uint32_t max = cfg->window_type == GW_BREAKER_WINDOW_COUNT ? GW_BREAKER_MAX_WINDOW_CALLS
                                                               : GW_BREAKER_MAX_WINDOW_SECS;
    if (cfg->window_size < 1 || cfg->window_size > max) {
        *err = xasprintf("breaker: window_size %u out of range 1..%u", cfg->window_size, max);
        return -1;
    }
    if (cfg->failure_rate_pct > 100 || cfg->slow_rate_pct > 100) {
        *err = xasprintf("breaker: rate thresholds are percentages (0..100)");
        return -1;
    }
    if (cfg->half_open_probes < 1) {
        *err = xasprintf("breaker: half_open_probes must be at least 1");
        return -1;
    }
    return 0;
}

struct gw_breaker *gw_breaker_new(const struct gw_breaker_cfg *cfg, uint64_t now_us)
{
    char *err = NULL;
    int rc = gw_breaker_cfg_check(cfg, &err);
    ASSERT(rc == 0);

    struct gw_breaker *b = xcalloc(1, sizeof(*b));
    b->cfg = *cfg;
    atomic_init(&b->state, GW_BREAKER_CLOSED);
    atomic_init(&b->retry_at_us, 0);
    atomic_init(&b->rejected, 0);
    atomic_init(&b->since_us, now_us);
    atomic_init(&b->probes_issued, 0);
    atomic_flag_clear(&b->lock);
    if (cfg->window_type == GW_BREAKER_WINDOW_COUNT) {
        b->ring = xcalloc(cfg->window_size, 1);
    } else {
        b->buckets = xcalloc(cfg->window_size, sizeof(*b->buckets));
        b->head_sec = now_us / 1000000;
        for (uint32_t i = 0; i < cfg->window_size; i++)
            b->buckets[i].sec = UINT64_MAX; /* holds no second yet */
    }
    return b;
}

void gw_breaker_free(struct gw_breaker *b)
{
    if (!b)
        return;
    free(b->ring);
    free(b->buckets);
    free(b);
}

void gw_breaker_set_listener(struct gw_breaker *b, gw_breaker_transition_cb *cb, void *data)
{
    b->cb = cb;
    b->cb_data = data;
}

/* ---- window (under lock) ---- */

static void brk_window_clear(struct gw_breaker *b)
{
    b->calls = b->fails = b->slows = 0;
    b->consec = 0;
    if (b->ring) {
        memset(b->ring, 0, b->cfg.window_size);
        b->ring_pos = 0;
    } else {
        for (uint32_t i = 0; i < b->cfg.window_size; i++) {
            b->buckets[i].sec = UINT64_MAX;
            b->buckets[i].calls = b->buckets[i].fails = b->buckets[i].slows = 0;
        }
    }
}

static void brk_bucket_drop(struct gw_breaker *b, struct gw_breaker_bucket *k)
{
    b->calls -= k->calls;
    b->fails -= k->fails;
    b->slows -= k->slows;
    k->calls = k->fails = k->slows = 0;
    k->sec = UINT64_MAX;
}

/* Moves the time window so that it ends at second sec (never backwards)
 * and returns the bucket for the newest second. */
static struct gw_breaker_bucket *brk_advance(struct gw_breaker *b, uint64_t sec)
{
    uint32_t n = b->cfg.window_size;
    if (sec > b->head_sec) {
        uint64_t from = b->head_sec + 1;
        if (sec - b->head_sec > n)
            from = sec - n + 1;
        for (uint64_t s = from; s <= sec; s++)
            brk_bucket_drop(b, &b->buckets[s % n]);
        b->head_sec = sec;
    }
    struct gw_breaker_bucket *k = &b->buckets[b->head_sec % n];
    if (k->sec != b->head_sec) {
        brk_bucket_drop(b, k);
        k->sec = b->head_sec;
    }
    return k;
}

static void brk_window_add(struct gw_breaker *b, uint64_t now_us, unsigned out)
{
    unsigned fail = out & OUT_FAIL ? 1 : 0;
    unsigned slow = out & OUT_SLOW ? 1 : 0;

    if (b->ring) {
        uint8_t *slot = &b->ring[b->ring_pos];
        if (b->calls == b->cfg.window_size) { /* full: the oldest leaves */
            b->calls--;
            b->fails -= *slot & OUT_FAIL ? 1 : 0;
            b->slows -= *slot & OUT_SLOW ? 1 : 0;
        }
        *slot = (uint8_t)out;
        if (++b->ring_pos == b->cfg.window_size)
            b->ring_pos = 0;
    } else {
        struct gw_breaker_bucket *k = brk_advance(b, now_us / 1000000);
        k->calls++;
        k->fails += fail;
        k->slows += slow;
    }
    b->calls++;
    b->fails += fail;
    b->slows += slow;
}

/* ---- transitions (under lock) ---- */

static void brk_set(struct gw_breaker *b, enum gw_breaker_state to, enum gw_breaker_reason why,
                        uint64_t now_us, struct brk_event *ev)
{
    ev->happened = true;
    ev->from = (enum gw_breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed);
    ev->to = to;
    ev->why = why;
    atomic_store_explicit(&b->since_us, now_us, memory_order_relaxed);
    atomic_store_explicit(&b->probes_issued, 0, memory_order_relaxed);
    b->probes_out = b->probes_ok = 0;
    if (to == GW_BREAKER_OPEN) {
        b->opened++;
        atomic_store_explicit(&b->retry_at_us, now_us + b->cfg.open_wait_us, memory_order_relaxed);
    }
    if (to != GW_BREAKER_HALF_OPEN)
        brk_window_clear(b);
    /* Release: a thread that sees the new state also sees retry_at. */
    atomic_store_explicit(&b->state, to, memory_order_release);
}

static void brk_report(struct gw_breaker *b, const struct brk_event *ev, uint64_t now_us)
{
    if (ev->happened && b->cb)
        b->cb(b->cb_data, b, ev->from, ev->to, ev->why, now_us);
}

/* Judges the window after an outcome was added in CLOSED. */
static enum gw_breaker_reason brk_should_trip(const struct gw_breaker *b)
{
    const struct gw_breaker_cfg *c = &b->cfg;
    if (c->consecutive_failures && b->consec >= c->consecutive_failures)
        return GW_BREAKER_R_CONSECUTIVE;
    if (b->calls == 0 || b->calls < c->min_calls)
        return (enum gw_breaker_reason)0;
    if (c->failure_rate_pct && (uint64_t)b->fails * 100 >= (uint64_t)c->failure_rate_pct * b->calls)
        return GW_BREAKER_R_FAILURE_RATE;
    if (c->slow_rate_pct && (uint64_t)b->slows * 100 >= (uint64_t)c->slow_rate_pct * b->calls)
        return GW_BREAKER_R_SLOW_RATE;
    return (enum gw_breaker_reason)0;
}

/* ---- public ---- */

bool gw_breaker_allow(struct gw_breaker *b, uint64_t now_us)
{
    int st = atomic_load_explicit(&b->state, memory_order_acquire);
    if (likely(st == GW_BREAKER_CLOSED))
        return true;
    if (st == GW_BREAKER_OPEN &&
        now_us < atomic_load_explicit(&b->retry_at_us, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
        return false;
    }

    struct brk_event ev = {0};
    bool ok = false;
    brk_lock(b);
    st = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (st == GW_BREAKER_CLOSED) {
        ok = true;
    } else if (st == GW_BREAKER_OPEN) {
        if (now_us >= atomic_load_explicit(&b->retry_at_us, memory_order_relaxed)) {
            brk_set(b, GW_BREAKER_HALF_OPEN, GW_BREAKER_R_WAIT_ELAPSED, now_us, &ev);
            st = GW_BREAKER_HALF_OPEN;
        }
    }
    if (st == GW_BREAKER_HALF_OPEN) {
        uint32_t issued = atomic_load_explicit(&b->probes_issued, memory_order_relaxed);
        uint64_t since = atomic_load_explicit(&b->since_us, memory_order_relaxed);
        if (issued < b->cfg.half_open_probes) {
            atomic_store_explicit(&b->probes_issued, issued + 1, memory_order_relaxed);
            b->probes_out++;
            ok = true;
        } else if (b->cfg.half_open_timeout_us && now_us >= since &&
                   now_us - since >= b->cfg.half_open_timeout_us) {
            brk_set(b, GW_BREAKER_OPEN, GW_BREAKER_R_PROBE_TIMEOUT, now_us, &ev);
        }
    }
    brk_unlock(b);

    if (!ok)
        atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
    brk_report(b, &ev, now_us);
    return ok;
}

void gw_breaker_record(struct gw_breaker *b, uint64_t now_us, bool success, uint64_t duration_us)
{
    bool slow = duration_us >= b->cfg.slow_call_us;
    unsigned out = (success ? 0 : OUT_FAIL) | (slow ? OUT_SLOW : 0);
    struct brk_event ev = {0};

    brk_lock(b);
    int st = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (st == GW_BREAKER_CLOSED) {
        if (success) {
            b->consec = 0;
        } else if (b->consec < UINT32_MAX) {
            b->consec++;
        }
        brk_window_add(b, now_us, out);
        enum gw_breaker_reason why = brk_should_trip(b);
        if (why)
            brk_set(b, GW_BREAKER_OPEN, why, now_us, &ev);
    } else if (st == GW_BREAKER_HALF_OPEN && b->probes_out > 0) {
        b->probes_out--;
        if (!success || (slow && b->cfg.slow_rate_pct)) {
            brk_set(b, GW_BREAKER_OPEN, GW_BREAKER_R_PROBE_FAILED, now_us, &ev);
        } else if (++b->probes_ok >= b->cfg.half_open_probes) {
            brk_set(b, GW_BREAKER_CLOSED, GW_BREAKER_R_PROBES_OK, now_us, &ev);
        }
    }
    brk_unlock(b);

    brk_report(b, &ev, now_us);
}

void gw_breaker_release(struct gw_breaker *b)
{
    if (atomic_load_explicit(&b->state, memory_order_acquire) != GW_BREAKER_HALF_OPEN)
        return;
    brk_lock(b);
    if (atomic_load_explicit(&b->state, memory_order_relaxed) == GW_BREAKER_HALF_OPEN &&
        b->probes_out > 0) {
        b->probes_out--;
        atomic_fetch_sub_explicit(&b->probes_issued, 1, memory_order_relaxed);
    }
    brk_unlock(b);
}

void gw_breaker_reset(struct gw_breaker *b, uint64_t now_us)
{
    struct brk_event ev = {0};
    brk_lock(b);
    if (atomic_load_explicit(&b->state, memory_order_relaxed) != GW_BREAKER_CLOSED)
        brk_set(b, GW_BREAKER_CLOSED, GW_BREAKER_R_RESET, now_us, &ev);
    else
        brk_window_clear(b);
    brk_unlock(b);
    brk_report(b, &ev, now_us);
}

bool gw_breaker_admits(struct gw_breaker *b, uint64_t now_us)
{
    int st = atomic_load_explicit(&b->state, memory_order_acquire);
    if (likely(st == GW_BREAKER_CLOSED))
        return true;
    if (st == GW_BREAKER_OPEN)
        return now_us >= atomic_load_explicit(&b->retry_at_us, memory_order_relaxed);
    if (atomic_load_explicit(&b->probes_issued, memory_order_relaxed) < b->cfg.half_open_probes)
        return true;
    /* Every probe is out: only a call that would find them overdue (and
     * reopen the breaker) is worth making. */
    uint64_t since = atomic_load_explicit(&b->since_us, memory_order_relaxed);
    return b->cfg.half_open_timeout_us && now_us >= since && now_us - since >= b->cfg.half_open_timeout_us;
}

enum gw_breaker_state gw_breaker_state(const struct gw_breaker *b)
{
    return (enum gw_breaker_state)atomic_load_explicit(&b->state, memory_order_acquire);
}

void gw_breaker_get_stats(struct gw_breaker *b, uint64_t now_us, struct gw_breaker_stats *out)
{
    memset(out, 0, sizeof(*out));
    brk_lock(b);
    if (b->buckets && now_us / 1000000 > b->head_sec)
        brk_advance(b, now_us / 1000000);
    out->state = (enum gw_breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed);
    out->since_us = atomic_load_explicit(&b->since_us, memory_order_relaxed);
    if (out->state == GW_BREAKER_OPEN)
        out->retry_at_us = atomic_load_explicit(&b->retry_at_us, memory_order_relaxed);
    out->window_calls = b->calls;
    out->window_failures = b->fails;
    out->window_slow = b->slows;
    out->consecutive_failures = b->consec;
    out->probes_admitted = atomic_load_explicit(&b->probes_issued, memory_order_relaxed);
    out->probes_succeeded = b->probes_ok;
    out->opened = b->opened;
    brk_unlock(b);
    out->rejected = atomic_load_explicit(&b->rejected, memory_order_relaxed);
}

const char *gw_breaker_state_name(enum gw_breaker_state s)
{
    switch (s) {
    case GW_BREAKER_CLOSED:
        return "closed";
    case GW_BREAKER_OPEN:
        return "open";
    case GW_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

const char *gw_breaker_reason_name(enum gw_breaker_reason r)
{
    switch (r) {
    case GW_BREAKER_R_CONSECUTIVE:
        return "consecutive_failures";
    case GW_BREAKER_R_FAILURE_RATE:
        return "failure_rate";
    case GW_BREAKER_R_SLOW_RATE:
        return "slow_call_rate";
    case GW_BREAKER_R_WAIT_ELAPSED:
        return "wait_elapsed";
    case GW_BREAKER_R_PROBE_FAILED:
        return "probe_failed";
    case GW_BREAKER_R_PROBE_TIMEOUT:
        return "probe_timeout";
    case GW_BREAKER_R_PROBES_OK:
        return "probes_succeeded";
    case GW_BREAKER_R_RESET:
        return "reset";
    }
    return "unknown";
}
