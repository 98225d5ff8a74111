/* Admission control (see admission.h and docs/internals/resilience.md).
 *
 * Shared part: the in-flight count is one atomic, taken with a
 * compare-and-swap against the limit read just before, so concurrent
 * workers can never push it past the limit they saw. The limit itself
 * moves (the adaptive limiter publishes a new one every window); a lower
 * limit is honoured as in-flight requests finish, nothing is cancelled.
 * The per-class queued counts are summed over all worker queues so that
 * an arrival on one worker does not overtake a waiter of its class or a
 * higher one queued on another.
 *
 * Worker part: one doubly linked list per class, oldest at the head, so
 * removal from anywhere is O(1) and both FIFO (head) and LIFO (tail) are
 * O(1). Expiry scans the queue only when the earliest deadline is due;
 * the earliest deadline is recomputed by that scan. The overload rule is
 * evaluated on every submit and poll from the age of the oldest entry,
 * which is the head of one of the classes. */
#include "gateway/resilience/admission.h"
#include "gateway/resilience/adaptive.h"

#include <string.h>

#define GW_ADM_CODEL_MEMORY 16 /* intervals */

void gw_adm_cfg_default(struct gw_adm_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_inflight = 0;
    cfg->queue_max = 128;
    cfg->max_wait_us = 1000000;
    cfg->codel_target_us = 5000;
    cfg->codel_interval_us = 100000;
    cfg->retry_after_s = 1;
}

/* A new field changes the size: compare it below too, then update this. */
_Static_assert(sizeof(struct gw_adm_cfg) == 40, "gw_adm_cfg_equal() compares every field");

bool gw_adm_cfg_equal(const struct gw_adm_cfg *a, const struct gw_adm_cfg *b)
{
    return a->max_inflight == b->max_inflight &&
           a->queue_max == b->queue_max &&
           a->max_wait_us == b->max_wait_us &&
           a->codel_target_us == b->codel_target_us &&
           a->codel_interval_us == b->codel_interval_us &&
           a->retry_after_s == b->retry_after_s;
}

int gw_adm_cfg_check(const struct gw_adm_cfg *cfg, char **err)
{
    if (cfg->queue_max > 1000000) {
        *err = xasprintf("admission: queue_max %u too large (at most 1000000)", cfg->queue_max);
        return -1;
    }
    if (cfg->max_wait_us < 1 || cfg->codel_target_us < 1 || cfg->codel_interval_us < 1) {
        *err = xasprintf("admission: max_wait, codel_target and codel_interval must be positive");
        return -1;
    }
    if (cfg->codel_target_us >= cfg->codel_interval_us) {
        *err = xasprintf("admission: codel_target must be shorter than codel_interval");
        return -1;
    }
    return 0;
}

static inline void adm_count(struct gw_adm *adm, enum gw_adm_stat s)
{
    atomic_fetch_add_explicit(&adm->stat[s], 1, memory_order_relaxed);
}

void gw_adm_init(struct gw_adm *adm, const struct gw_adm_cfg *cfg, struct gw_limit *limiter)
{
    char *err = NULL;
    int rc = gw_adm_cfg_check(cfg, &err);
    ASSERT(rc == 0);

    memset(adm, 0, sizeof(*adm));
    atomic_init(&adm->inflight, 0);
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        atomic_init(&adm->queued[p], 0);
    for (int s = 0; s < GW_ADM_ST_COUNT; s++)
        atomic_init(&adm->stat[s], 0);
    adm->limiter = limiter;
    adm->cfg = *cfg;
}

uint32_t gw_adm_limit(const struct gw_adm *adm)
{
    uint32_t lim = adm->limiter ? gw_limit_get(adm->limiter) : UINT32_MAX;
    if (adm->cfg.max_inflight && adm->cfg.max_inflight < lim)
        lim = adm->cfg.max_inflight;
    return lim;
}

/* Takes a slot if in-flight is below the limit. */
static bool adm_take(struct gw_adm *adm)
{
    uint32_t lim = gw_adm_limit(adm);
    uint32_t n = atomic_load_explicit(&adm->inflight, memory_order_relaxed);
    do {
        if (n >= lim)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&adm->inflight, &n, n + 1,
                                                    memory_order_acquire, memory_order_relaxed));
    return true;
}

/* True when some queue holds an entry of class prio or higher. */
static bool adm_waiters(const struct gw_adm *adm, enum gw_prio prio)
{
    for (int p = GW_PRIO_COUNT - 1; p >= (int)prio; p--)
        if (atomic_load_explicit(&adm->queued[p], memory_order_relaxed))
            return true;
    return false;
}

bool gw_adm_try_acquire(struct gw_adm *adm, enum gw_prio prio)
{
    ASSERT((unsigned)prio < GW_PRIO_COUNT);
    if (adm_waiters(adm, prio) || !adm_take(adm))
        return false;
    adm_count(adm, GW_ADM_ST_ADMITTED);
    return true;
}

void gw_adm_release(struct gw_adm *adm, uint64_t now_us, uint64_t latency_us, bool dropped)
{
    uint32_t n = atomic_fetch_sub_explicit(&adm->inflight, 1, memory_order_release);
    ASSERT(n > 0);
    if (adm->limiter && latency_us)
        gw_limit_on_sample(adm->limiter, now_us, latency_us, n, dropped);
}

uint32_t gw_adm_retry_after_s(const struct gw_adm *adm)
{
    return adm->cfg.retry_after_s;
}

void gw_adm_get_stats(const struct gw_adm *adm, struct gw_adm_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->inflight = atomic_load_explicit(&adm->inflight, memory_order_relaxed);
    out->limit = gw_adm_limit(adm);
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        out->queued[p] = atomic_load_explicit(&adm->queued[p], memory_order_relaxed);
    for (int s = 0; s < GW_ADM_ST_COUNT; s++)
        out->counters[s] = atomic_load_explicit(&adm->stat[s], memory_order_relaxed);
}

/* ---- lists ---- */

static void list_append(struct gw_adm_list *l, struct gw_adm_entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->n++;
}

static void list_unlink(struct gw_adm_list *l, struct gw_adm_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
    l->n--;
}

struct gw_adm_entry *gw_adm_list_pop(struct gw_adm_list *l)
{
    struct gw_adm_entry *e = l->head;
    if (e)
        list_unlink(l, e);
    return e;
}

/* ---- worker queue ---- */

void gw_adm_queue_init(struct gw_adm_queue *q, struct gw_adm *adm, uint64_t now_us)
{
    memset(q, 0, sizeof(*q));
    q->adm = adm;
    q->next_deadline_us = UINT64_MAX;
    q->last_ok_us = now_us;
}

/* Takes e out of its class list; the caller sets its outcome. */
static void q_unlink(struct gw_adm_queue *q, struct gw_adm_entry *e)
{
    ASSERT(e->queued);
    list_unlink(&q->cls[e->prio], e);
    e->queued = false;
    q->n--;
    atomic_fetch_sub_explicit(&q->adm->queued[e->prio], 1, memory_order_relaxed);
}

static void q_leave(struct gw_adm_queue *q, struct gw_adm_entry *e, enum gw_adm_outcome out,
                        struct gw_adm_list *to)
{
    q_unlink(q, e);
    e->outcome = (uint8_t)out;
    list_append(to, e);
}

/* Enqueue time of the oldest entry; the queue must not be empty. */
static uint64_t q_oldest(const struct gw_adm_queue *q)
{
    uint64_t t = UINT64_MAX;
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        if (q->cls[p].head && q->cls[p].head->enqueued_us < t)
            t = q->cls[p].head->enqueued_us;
    return t;
}

static void q_drained(struct gw_adm_queue *q, uint64_t now_us);

/* CoDel's memory: a queue that left the overloaded state less than
 * GW_ADM_CODEL_MEMORY intervals ago goes back to it as soon as its oldest
 * entry passes the target, without waiting a whole interval again. A
 * momentary drain in the middle of a flood (a burst of completions) would
 * otherwise let a fresh standing queue wait up to an interval, in FIFO
 * order, before shedding resumes. */
static bool q_recently(const struct gw_adm_queue *q, uint64_t now_us)
{
    return q->overload_end_us &&
           now_us - q->overload_end_us < GW_ADM_CODEL_MEMORY * q->adm->cfg.codel_interval_us;
}

/* The overload rule, evaluated at now_us. */
static void q_observe(struct gw_adm_queue *q, uint64_t now_us)
{
    const struct gw_adm_cfg *c = &q->adm->cfg;
    if (q->n == 0) {
        q_drained(q, now_us);
        return;
    }
    if (q->overloaded)
        return; /* until drained */
    uint64_t oldest = q_oldest(q);
    if (now_us <= oldest || now_us - oldest <= c->codel_target_us) {
        q->last_ok_us = now_us;
    } else if (now_us - q->last_ok_us >= c->codel_interval_us || q_recently(q, now_us)) {
        q->overloaded = true;
        adm_count(q->adm, GW_ADM_ST_OVERLOADS);
    }
}

/* Leaves the overloaded state: the queue drained. */
static void q_drained(struct gw_adm_queue *q, uint64_t now_us)
{
    if (q->overloaded)
        q->overload_end_us = now_us;
    q->overloaded = false;
    q->last_ok_us = now_us;
}

enum gw_adm_result gw_adm_submit(struct gw_adm_queue *q, struct gw_adm_entry *e, enum gw_prio prio,
                                 uint64_t deadline_us, uint64_t now_us,
                                 struct gw_adm_entry **displaced)
{
    struct gw_adm *adm = q->adm;
    const struct gw_adm_cfg *c = &adm->cfg;
    ASSERT((unsigned)prio < GW_PRIO_COUNT);
    *displaced = NULL;

    if (gw_adm_try_acquire(adm, prio))
        return GW_ADM_ADMIT;

    q_observe(q, now_us);
    if (c->queue_max == 0 || (q->overloaded && prio == GW_PRIO_LOW)) {
        adm_count(adm, GW_ADM_ST_REJECTED);
        return GW_ADM_REJECT;
    }
    if (q->n >= c->queue_max) {
        struct gw_adm_entry *victim = NULL;
        for (int p = 0; p < (int)prio && !victim; p++)
            victim = q->cls[p].head;
        if (!victim) {
            adm_count(adm, GW_ADM_ST_REJECTED);
            return GW_ADM_REJECT;
        }
        q_unlink(q, victim);
        victim->outcome = GW_ADM_OUT_DISPLACED;
        adm_count(adm, GW_ADM_ST_DISPLACED);
        *displaced = victim;
    }

    uint64_t cap = now_us + c->max_wait_us;
    e->enqueued_us = now_us;
    e->deadline_us = deadline_us && deadline_us < cap ? deadline_us : cap;
    e->prio = (uint8_t)prio;
    e->outcome = GW_ADM_OUT_NONE;
    e->queued = true;
    list_append(&q->cls[prio], e);
    q->n++;
    atomic_fetch_add_explicit(&adm->queued[prio], 1, memory_order_relaxed);
    if (e->deadline_us < q->next_deadline_us)
        q->next_deadline_us = e->deadline_us;
    adm_count(adm, GW_ADM_ST_QUEUED);
    return GW_ADM_QUEUED;
}

void gw_adm_queue_remove(struct gw_adm_queue *q, struct gw_adm_entry *e)
{
    if (!e->queued)
        return;
    q_unlink(q, e);
    adm_count(q->adm, GW_ADM_ST_CANCELLED);
}

/* Moves every entry whose deadline has come to *dropped and recomputes
 * the earliest remaining deadline. */
static void q_expire(struct gw_adm_queue *q, uint64_t now_us, struct gw_adm_list *dropped)
{
    uint64_t next = UINT64_MAX;
    for (int p = 0; p < GW_PRIO_COUNT; p++) {
        struct gw_adm_entry *e = q->cls[p].head;
        while (e) {
            struct gw_adm_entry *nx = e->next;
            if (e->deadline_us <= now_us) {
                q_leave(q, e, GW_ADM_OUT_EXPIRED, dropped);
                adm_count(q->adm, GW_ADM_ST_EXPIRED);
            } else if (e->deadline_us < next) {
                next = e->deadline_us;
            }
            e = nx;
        }
    }
    q->next_deadline_us = next;
}

void gw_adm_queue_poll(struct gw_adm_queue *q, uint64_t now_us, struct gw_adm_list *ready,
                       struct gw_adm_list *dropped)
{
    struct gw_adm *adm = q->adm;
    uint64_t target = adm->cfg.codel_target_us;

    q_observe(q, now_us);
    if (q->n && now_us >= q->next_deadline_us)
        q_expire(q, now_us, dropped);

    if (q->overloaded) {
        /* Entries waiting longer than the target are shed (CoDel), lowest
         * class first, with one exception: when the highest class waiting
         * was raised above normal (high), it is kept up to the interval,
         * so that explicitly prioritized requests keep their goodput while
         * the rest is shed. Plain single-class traffic keeps CoDel's
         * bounded latency. Critical is never shed here (only by its
         * deadline). */
        int top = GW_PRIO_COUNT - 1;
        while (top > 0 && !q->cls[top].head)
            top--;
        for (int p = GW_PRIO_LOW; p < GW_PRIO_CRITICAL; p++) {
            uint64_t limit = p == top && p > GW_PRIO_NORMAL ? adm->cfg.codel_interval_us : target;
            struct gw_adm_entry *e;
            while ((e = q->cls[p].head) && now_us > e->enqueued_us &&
                   now_us - e->enqueued_us > limit) {
                q_leave(q, e, GW_ADM_OUT_SHED, dropped);
                adm_count(adm, GW_ADM_ST_SHED);
            }
        }
    }

    for (int p = GW_PRIO_COUNT - 1; p >= 0 && q->n;) {
        struct gw_adm_list *l = &q->cls[p];
        if (!l->head) {
            p--;
            continue;
        }
        /* This queue holds nothing above class p; a waiter above it in
         * another worker's queue gets the slot at that worker's next
         * poll. Without this, slots would stay with the worker that
         * frees them and a class could starve on another worker. */
        if (p + 1 < GW_PRIO_COUNT && adm_waiters(adm, (enum gw_prio)(p + 1)))
            break;
        if (!adm_take(adm))
            break;
        q_leave(q, q->overloaded ? l->tail : l->head, GW_ADM_OUT_READY, ready);
        adm_count(adm, GW_ADM_ST_DEQUEUED);
    }

    if (q->n == 0) {
        q_drained(q, now_us);
        q->next_deadline_us = UINT64_MAX;
    }
}

uint64_t gw_adm_queue_next_event_us(const struct gw_adm_queue *q)
{
    if (q->n == 0)
        return UINT64_MAX;
    const struct gw_adm_cfg *c = &q->adm->cfg;
    uint64_t next = q->next_deadline_us;
    if (q->overloaded) {
        /* The oldest sheddable entry goes once older than the target. */
        for (int p = GW_PRIO_LOW; p < GW_PRIO_CRITICAL; p++)
            if (q->cls[p].head && q->cls[p].head->enqueued_us + c->codel_target_us + 1 < next)
                next = q->cls[p].head->enqueued_us + c->codel_target_us + 1;
    } else {
        /* The queue turns overloaded an interval after it was last fine,
         * if the oldest entry is then still older than the target. */
        uint64_t t = q_oldest(q) + c->codel_target_us + 1;
        if (!q->overload_end_us ||
            t - q->overload_end_us >= GW_ADM_CODEL_MEMORY * c->codel_interval_us)
            t = FG_MAX(t, q->last_ok_us + c->codel_interval_us);
        if (t < next)
            next = t;
    }
    return next;
}

void gw_adm_queue_close(struct gw_adm_queue *q, struct gw_adm_list *out)
{
    for (int p = GW_PRIO_COUNT - 1; p >= 0; p--) {
        struct gw_adm_entry *e;
        while ((e = q->cls[p].head))
            q_leave(q, e, GW_ADM_OUT_CLOSED, out);
    }
    q->overloaded = false;
    q->next_deadline_us = UINT64_MAX;
}

const char *gw_prio_name(enum gw_prio p)
{
    static const char *const names[GW_PRIO_COUNT] = {"low", "normal", "high", "critical"};
    return (unsigned)p < GW_PRIO_COUNT ? names[p] : "unknown";
}

int gw_prio_parse(const char *s, size_t len)
{
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        if (fg_strieq(s, len, gw_prio_name((enum gw_prio)p)))
            return p;
    return -1;
}
