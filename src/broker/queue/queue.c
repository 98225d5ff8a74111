/* One queue's messages.
 *
 * Every message of a queue is in its id hash (lookup by receipt handle)
 * and in its expiry heap (ordered by original send time, for the
 * retention period), and in exactly one state:
 *   READY     receivable: on the queue's ready list (standard queues), or
 *             in its group's list with the group deciding (FIFO);
 *   DELAYED   not yet receivable, never received (DelaySeconds);
 *   INFLIGHT  received, invisible until its visibility deadline.
 * DELAYED and INFLIGHT messages sit in the engine's timer heap, ordered by
 * visible_at, and bk_engine_tick() turns the due ones READY. A state
 * change goes through set_state(), the one place that keeps the lists, the
 * heap, the counters and the FIFO group locks in step.
 *
 * Standard queues hand out the ready list in order; a message whose
 * visibility runs out goes to its tail (SQS standard queues promise no
 * order). */
#include "broker/queue/engine.h"
#include "core/heap.h"

#include <stdlib.h>
#include <string.h>

#define BK_MIN_BUCKETS 16

/* ---- heaps ---- */

static inline uint64_t heap_key(const struct bk_heap *h, const struct bk_msg *m)
{
    return h->kind == BK_HEAP_TIMER ? m->visible_at : m->sent_ms;
}

static inline size_t *heap_idx(const struct bk_heap *h, struct bk_msg *m)
{
    return h->kind == BK_HEAP_TIMER ? &m->theap : &m->xheap;
}

/* Strict order: key, then id, so equal keys keep send order. */
static inline bool heap_less(const struct bk_heap *h, const struct bk_msg *a, const struct bk_msg *b)
{
    uint64_t ka = heap_key(h, a), kb = heap_key(h, b);
    return ka < kb || (ka == kb && a->mid < b->mid);
}

static inline void heap_setidx(const struct bk_heap *h, struct bk_msg *m, size_t i)
{
    *heap_idx(h, m) = i;
}

HEAP_DEFINE(mheap, struct bk_msg, const struct bk_heap *, heap_less, heap_setidx)

void bk_heap_push(struct bk_heap *h, struct bk_msg *m)
{
    ASSERT(*heap_idx(h, m) == SIZE_MAX);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->a = xrealloc(h->a, h->cap * sizeof *h->a);
    }
    mheap_push(h, h->a, h->n++, m);
}

void bk_heap_remove(struct bk_heap *h, struct bk_msg *m)
{
    size_t i = *heap_idx(h, m);
    ASSERT(i < h->n && h->a[i] == m);
    *heap_idx(h, m) = SIZE_MAX;
    mheap_remove(h, h->a, h->n--, i);
}

void bk_heap_fix(struct bk_heap *h, struct bk_msg *m)
{
    size_t i = *heap_idx(h, m);
    ASSERT(i < h->n && h->a[i] == m);
    mheap_fix(h, h->a, h->n, i);
}

struct bk_msg *bk_heap_top(const struct bk_heap *h) { return h->n ? h->a[0] : NULL; }

void bk_heap_free(struct bk_heap *h)
{
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

/* ---- the id hash ---- */

static inline size_t mid_slot(uint64_t mid, size_t nb)
{
    /* Fibonacci hashing: ids are sequential, so spread them. */
    return (size_t)((mid * 0x9E3779B97F4A7C15ull) >> 32) & (nb - 1);
}

static void mhash_grow(struct bk_queue *q)
{
    size_t nb = q->nbuckets ? q->nbuckets * 2 : BK_MIN_BUCKETS;
    struct bk_msg **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < q->nbuckets; i++) {
        struct bk_msg *m = q->mbuckets[i], *next;
        for (; m; m = next) {
            next = m->hnext;
            size_t s = mid_slot(m->mid, nb);
            m->hnext = b[s];
            b[s] = m;
        }
    }
    free(q->mbuckets);
    q->mbuckets = b;
    q->nbuckets = nb;
}

struct bk_msg *bk_queue_lookup(const struct bk_queue *q, uint64_t mid)
{
    if (!q->nbuckets)
        return NULL;
    for (struct bk_msg *m = q->mbuckets[mid_slot(mid, q->nbuckets)]; m; m = m->hnext)
        if (m->mid == mid)
            return m;
    return NULL;
}

static void mhash_remove(struct bk_queue *q, struct bk_msg *m)
{
    struct bk_msg **pp = &q->mbuckets[mid_slot(m->mid, q->nbuckets)];
    while (*pp && *pp != m)
        pp = &(*pp)->hnext;
    ASSERT(*pp == m);
    *pp = m->hnext;
    m->hnext = NULL;
}

/* ---- states ---- */

static void ready_append(struct bk_queue *q, struct bk_msg *m)
{
    m->next = NULL;
    m->prev = q->rtail;
    if (q->rtail)
        q->rtail->next = m;
    else
        q->rhead = m;
    q->rtail = m;
}

static void ready_unlink(struct bk_queue *q, struct bk_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->rhead = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->rtail = m->prev;
    m->prev = m->next = NULL;
}

static uint64_t *state_counter(struct bk_queue *q, uint8_t st)
{
    return st == BK_MS_READY ? &q->n_ready : st == BK_MS_DELAYED ? &q->n_delayed : &q->n_inflight;
}

/* Takes m out of its current state's structures. */
static void leave_state(struct bk_engine *e, struct bk_msg *m)
{
    struct bk_queue *q = m->q;
    if (m->state == BK_MS_READY) {
        if (!q->a.fifo)
            ready_unlink(q, m);
    } else {
        bk_heap_remove(&e->timers, m);
    }
    if (m->state == BK_MS_INFLIGHT && m->grp) {
        ASSERT(m->grp->inflight > 0);
        m->grp->inflight--;
    }
    (*state_counter(q, m->state))--;
}

static void enter_state(struct bk_engine *e, struct bk_msg *m, uint8_t st)
{
    struct bk_queue *q = m->q;
    m->state = st;
    (*state_counter(q, st))++;
    if (st == BK_MS_READY) {
        if (!q->a.fifo)
            ready_append(q, m);
    } else {
        bk_heap_push(&e->timers, m);
    }
    if (st == BK_MS_INFLIGHT && m->grp)
        m->grp->inflight++;
}

static void set_state(struct bk_engine *e, struct bk_msg *m, uint8_t st)
{
    leave_state(e, m);
    enter_state(e, m, st);
    if (m->grp)
        bk__group_update(m->q, m->grp);
    if (st == BK_MS_READY)
        bk__wake(e, m->q);
}

static uint8_t state_for(const struct bk_msg *m, uint64_t now)
{
    if (m->visible_at <= now)
        return BK_MS_READY;
    return m->recv_count ? BK_MS_INFLIGHT : BK_MS_DELAYED;
}

void bk__msg_set_visible(struct bk_engine *e, struct bk_msg *m, uint64_t visible_at, uint64_t now)
{
    m->visible_at = visible_at;
    uint8_t st = state_for(m, now);
    if (st != m->state) {
        set_state(e, m, st);
    } else if (st != BK_MS_READY) {
        bk_heap_fix(&e->timers, m);
    } else if (!m->q->a.fifo) {
        /* Ready again after a receive with a zero timeout: to the back. */
        ready_unlink(m->q, m);
        ready_append(m->q, m);
    }
}

void bk__queue_insert(struct bk_engine *e, struct bk_queue *q, struct bk_msg *m, uint64_t now)
{
    m->q = q;
    m->theap = m->xheap = SIZE_MAX;
    m->prev = m->next = NULL;
    if (q->nmsgs + 1 > q->nbuckets)
        mhash_grow(q);
    size_t s = mid_slot(m->mid, q->nbuckets);
    m->hnext = q->mbuckets[s];
    q->mbuckets[s] = m;
    q->nmsgs++;
    e->nmsgs++;
    bk_heap_push(&q->xheap, m);
    if (q->a.fifo && m->grp)
        bk__group_append(q, m);
    enter_state(e, m, state_for(m, now));
    if (m->grp)
        bk__group_update(q, m->grp);
    if (m->state == BK_MS_READY)
        bk__wake(e, q);
}

void bk__queue_unlink(struct bk_engine *e, struct bk_msg *m)
{
    struct bk_queue *q = m->q;
    leave_state(e, m);
    mhash_remove(q, m);
    bk_heap_remove(&q->xheap, m);
    q->nmsgs--;
    e->nmsgs--;
    if (m->grp) {
        struct bk_group *g = m->grp;
        bk__group_remove(q, m);
        bk__group_update(q, g);
    }
    m->q = NULL;
}

void bk__msg_free(struct bk_engine *e, struct bk_msg *m)
{
    if (m->data) {
        e->cache_bytes -= (uint64_t)m->attrs_len + m->sys_len + m->body_len;
        free(m->data);
    }
    free(m->dedup_id);
    free(m);
}

bool bk_queue_receivable(const struct bk_queue *q)
{
    return q->a.fifo ? q->ahead != NULL : q->rhead != NULL;
}

size_t bk__queue_pick(struct bk_engine *e, struct bk_queue *q, struct bk_msg **out, size_t max,
                      uint64_t now)
{
    FG_UNUSED(e);
    FG_UNUSED(now);
    if (q->a.fifo)
        return bk__fifo_pick(q, out, max);
    size_t n = 0;
    for (struct bk_msg *m = q->rhead; m && n < max; m = m->next)
        out[n++] = m;
    return n;
}

void bk__msg_received(struct bk_engine *e, struct bk_msg *m, uint32_t vis_s, uint64_t now)
{
    struct bk_queue *q = m->q;
    m->recv_count++;
    if (!m->first_recv_ms) {
        m->first_recv_ms = now;
        uint64_t since = now > m->sent_ms ? now - m->sent_ms : 0;
        metrics_hist_observe_ns(&q->st.send_to_receive, since * 1000000ull);
    }
    m->last_recv_ms = now;
    q->st.received++;
    bk__msg_set_visible(e, m, now + (uint64_t)vis_s * 1000, now);
    bk__log_state(e, m);
}

void bk__msg_delete(struct bk_engine *e, struct bk_msg *m, bool log)
{
    if (log)
        bk__log_delete(e, m->q->qid, m->mid);
    bk__release_msg(e, m);
    bk__queue_unlink(e, m);
    bk__msg_free(e, m);
}

void bk__queue_clear(struct bk_engine *e, struct bk_queue *q)
{
    /* The expiry heap holds every message: empty it from the end, which
     * needs no sifting. */
    while (q->xheap.n) {
        struct bk_msg *m = q->xheap.a[q->xheap.n - 1];
        bk__release_msg(e, m);
        bk__queue_unlink(e, m);
        bk__msg_free(e, m);
    }
}

void bk__queue_free(struct bk_engine *e, struct bk_queue *q)
{
    bk__queue_clear(e, q);
    free(q->mbuckets);
    bk_heap_free(&q->xheap);
    bk__fifo_free(q);
    bk_qattrs_free(&q->a);
    cJSON_Delete(q->tags);
    free(q);
}
