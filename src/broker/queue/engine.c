/* The engine: the queue registry, the engine-wide timer heap and the
 * periodic chores.
 *
 * Queues are found by name (hash) and kept in a list in creation order
 * (ListQueues). Delayed and in-flight messages of every queue share one
 * heap ordered by visible_at, so the server needs a single timer: it asks
 * bk_engine_next_due() after each loop iteration and calls
 * bk_engine_tick() when that time comes. Retention, the FIFO
 * deduplication windows and message move tasks need no precision and run
 * from bk_engine_housekeep() about once a second.
 *
 * Long polling: a ReceiveMessage that finds nothing parks a bk_waiter on
 * its queue. Whenever a message of a queue with waiters becomes READY the
 * queue goes on the wake list (once), and the server, before its next
 * poll, serves the waiters of each queue on it while messages last. A
 * deleted queue's waiters move to the orphan list and are answered too. */
#include "broker/queue/engine.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define BK_MIN_BUCKETS 16

struct bk_engine *bk_engine_new(const struct bk_engine_opts *o, const struct bk_journal *j)
{
    struct bk_engine *e = xcalloc(1, sizeof *e);
    e->o = *o;
    if (!e->o.max_message_bytes)
        e->o.max_message_bytes = 262144;
    if (!e->o.max_queues)
        e->o.max_queues = 100000;
    if (!e->o.max_messages)
        e->o.max_messages = UINT64_MAX;
    if (!e->o.max_inflight)
        e->o.max_inflight = 120000;
    e->j = *j;
    e->next_qid = 1;
    e->next_mid = 1;
    e->timers.kind = BK_HEAP_TIMER;
    return e;
}

void bk_engine_free(struct bk_engine *e)
{
    if (!e)
        return;
    while (e->qhead) {
        struct bk_queue *q = e->qhead;
        e->qhead = q->lnext;
        while (q->whead)
            bk_waiter_remove(e, q->whead);
        bk__queue_free(e, q);
    }
    free(e->qbuckets);
    free(e->ibuckets);
    bk_heap_free(&e->timers);
    buf_free(&e->rec);
    while (e->tasks) {
        struct bk_move_task *t = e->tasks;
        e->tasks = t->next;
        free(t);
    }
    free(e);
}

/* ---- ids ---- */

/* Ids come from the engine's counters; a META record (record.c) reserves
 * a range ahead of them, so no id repeats after a restart. */
uint64_t bk__next_mid(struct bk_engine *e)
{
    if (e->next_mid >= e->reserved_mid)
        bk__log_meta(e);
    return e->next_mid++;
}

uint32_t bk__next_qid(struct bk_engine *e)
{
    if (e->next_qid >= e->reserved_qid && !e->replaying)
        bk__log_meta(e);
    return e->next_qid++;
}

/* ---- registry ---- */

static inline size_t qid_slot(uint32_t qid, size_t nb)
{
    return (size_t)(((uint64_t)qid * 0x9E3779B97F4A7C15ull) >> 32) & (nb - 1);
}

static void qhash_grow(struct bk_engine *e)
{
    size_t nb = e->nqbuckets ? e->nqbuckets * 2 : BK_MIN_BUCKETS;
    struct bk_queue **b = xcalloc(nb, sizeof *b), **ib = xcalloc(nb, sizeof *ib);
    for (struct bk_queue *q = e->qhead; q; q = q->lnext) {
        q->hnext = b[q->hash & (nb - 1)];
        b[q->hash & (nb - 1)] = q;
        q->inext = ib[qid_slot(q->qid, nb)];
        ib[qid_slot(q->qid, nb)] = q;
    }
    free(e->qbuckets);
    free(e->ibuckets);
    e->qbuckets = b;
    e->ibuckets = ib;
    e->nqbuckets = nb;
}

struct bk_queue *bk_engine_find(struct bk_engine *e, const char *name, size_t len)
{
    if (!e->nqbuckets || len == 0 || len > BK_MAX_QNAME)
        return NULL;
    uint64_t h = XXH3_64bits(name, len);
    for (struct bk_queue *q = e->qbuckets[h & (e->nqbuckets - 1)]; q; q = q->hnext)
        if (q->hash == h && q->name_len == len && memcmp(q->name, name, len) == 0)
            return q;
    return NULL;
}

struct bk_queue *bk_engine_find_id(struct bk_engine *e, uint32_t qid)
{
    if (!e->nqbuckets)
        return NULL;
    for (struct bk_queue *q = e->ibuckets[qid_slot(qid, e->nqbuckets)]; q; q = q->inext)
        if (q->qid == qid)
            return q;
    return NULL;
}

struct bk_queue *bk_engine_find_url(struct bk_engine *e, const char *url)
{
    if (!url)
        return NULL;
    size_t len = strlen(url);
    while (len && url[len - 1] == '/')
        len--;
    size_t start = len;
    while (start && url[start - 1] != '/')
        start--;
    if (start) {
        /* A URL: the segment before the name is the account id. */
        size_t a = start - 1;
        size_t as = a;
        while (as && url[as - 1] != '/')
            as--;
        if (a - as != strlen(BK_ACCOUNT) || memcmp(url + as, BK_ACCOUNT, a - as) != 0)
            return NULL;
    }
    return bk_engine_find(e, url + start, len - start);
}

struct bk_queue *bk_engine_find_arn(struct bk_engine *e, const char *arn)
{
    size_t pl = strlen(BK_ARN_PREFIX);
    if (!arn || strncmp(arn, BK_ARN_PREFIX, pl) != 0)
        return NULL;
    return bk_engine_find(e, arn + pl, strlen(arn + pl));
}

static void registry_remove(struct bk_engine *e, struct bk_queue *q)
{
    struct bk_queue **pp = &e->qbuckets[q->hash & (e->nqbuckets - 1)];
    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    ASSERT(*pp == q);
    *pp = q->hnext;
    pp = &e->ibuckets[qid_slot(q->qid, e->nqbuckets)];
    while (*pp && *pp != q)
        pp = &(*pp)->inext;
    ASSERT(*pp == q);
    *pp = q->inext;
    pp = &e->qhead;
    struct bk_queue *prev = NULL;
    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->lnext;
    }
    ASSERT(*pp == q);
    *pp = q->lnext;
    if (e->qtail == q)
        e->qtail = prev;
    e->nqueues--;
}

struct bk_queue *bk_engine_create(struct bk_engine *e, const char *name, struct bk_qattrs *a,
                                  cJSON *tags, uint32_t qid, uint64_t now)
{
    struct bk_queue *q = xcalloc(1, sizeof *q);
    q->qid = qid ? qid : bk__next_qid(e);
    size_t len = strlen(name);
    ASSERT(len <= BK_MAX_QNAME);
    memcpy(q->name, name, len + 1);
    q->name_len = len;
    q->hash = XXH3_64bits(name, len);
    q->a = *a;
    memset(a, 0, sizeof *a);
    q->tags = tags ? tags : cJSON_CreateObject();
    q->created_ms = q->modified_ms = now;
    q->xheap.kind = BK_HEAP_EXPIRY;
    if (e->nqueues + 1 > e->nqbuckets)
        qhash_grow(e);
    q->hnext = e->qbuckets[q->hash & (e->nqbuckets - 1)];
    e->qbuckets[q->hash & (e->nqbuckets - 1)] = q;
    q->inext = e->ibuckets[qid_slot(q->qid, e->nqbuckets)];
    e->ibuckets[qid_slot(q->qid, e->nqbuckets)] = q;
    if (e->qtail)
        e->qtail->lnext = q;
    else
        e->qhead = q;
    e->qtail = q;
    e->nqueues++;
    return q;
}

static void wake_remove(struct bk_engine *e, struct bk_queue *q)
{
    if (!q->waking)
        return;
    struct bk_queue **pp = &e->wake_head, *prev = NULL;
    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->wake_next;
    }
    ASSERT(*pp == q);
    *pp = q->wake_next;
    if (e->wake_tail == q)
        e->wake_tail = prev;
    q->waking = false;
    q->wake_next = NULL;
}

void bk_engine_delete(struct bk_engine *e, struct bk_queue *q, uint64_t now)
{
    FG_UNUSED(now);
    wake_remove(e, q);
    while (q->whead) {
        struct bk_waiter *w = q->whead;
        bk_waiter_remove(e, w);
        w->next = e->orphans;
        e->orphans = w;
        w->linked = true; /* on the orphan list */
    }
    bk__tasks_drop_queue(e, q->qid);
    registry_remove(e, q);
    if (q->pos.seg)
        e->j.release(e->j.ud, q->pos, q->rec_len);
    bk__queue_free(e, q);
}

/* ---- timers ---- */

uint64_t bk_engine_next_due(const struct bk_engine *e)
{
    const struct bk_msg *m = bk_heap_top(&e->timers);
    return m ? m->visible_at : UINT64_MAX;
}

void bk_engine_tick(struct bk_engine *e, uint64_t now)
{
    struct bk_msg *m;
    while ((m = bk_heap_top(&e->timers)) && m->visible_at <= now)
        bk__msg_set_visible(e, m, m->visible_at, now);
}

void bk_engine_housekeep(struct bk_engine *e, uint64_t now)
{
    for (struct bk_queue *q = e->qhead; q; q = q->lnext) {
        uint64_t keep_ms = (uint64_t)q->a.retention_s * 1000;
        struct bk_msg *m;
        while ((m = bk_heap_top(&q->xheap)) && m->sent_ms + keep_ms <= now) {
            q->st.expired++;
            bk__msg_delete(e, m, true);
        }
        if (q->a.fifo)
            bk__dedup_expire(q, now);
    }
    uint64_t elapsed = e->last_housekeep && now > e->last_housekeep ? now - e->last_housekeep : 1000;
    e->last_housekeep = now;
    bk__tasks_run(e, now, FG_MIN(elapsed, 10000));
}

/* ---- long polling ---- */

void bk__wake(struct bk_engine *e, struct bk_queue *q)
{
    if (q->waking || !q->whead || !bk_queue_receivable(q))
        return;
    q->waking = true;
    q->wake_next = NULL;
    if (e->wake_tail)
        e->wake_tail->wake_next = q;
    else
        e->wake_head = q;
    e->wake_tail = q;
}

struct bk_queue *bk_engine_pop_wake(struct bk_engine *e)
{
    struct bk_queue *q = e->wake_head;
    if (!q)
        return NULL;
    e->wake_head = q->wake_next;
    if (!e->wake_head)
        e->wake_tail = NULL;
    q->wake_next = NULL;
    q->waking = false;
    return q;
}

void bk_waiter_add(struct bk_queue *q, struct bk_waiter *w)
{
    ASSERT(!w->linked);
    w->q = q;
    w->next = NULL;
    w->prev = q->wtail;
    if (q->wtail)
        q->wtail->next = w;
    else
        q->whead = w;
    q->wtail = w;
    w->linked = true;
}

void bk_waiter_remove(struct bk_engine *e, struct bk_waiter *w)
{
    if (!w->linked)
        return;
    struct bk_queue *q = w->q;
    if (!q) {
        /* On the orphan list (singly linked). */
        struct bk_waiter **pp = &e->orphans;
        while (*pp && *pp != w)
            pp = &(*pp)->next;
        if (*pp)
            *pp = w->next;
    } else {
        if (w->prev)
            w->prev->next = w->next;
        else
            q->whead = w->next;
        if (w->next)
            w->next->prev = w->prev;
        else
            q->wtail = w->prev;
    }
    w->prev = w->next = NULL;
    w->q = NULL;
    w->linked = false;
}

struct bk_waiter *bk_engine_pop_orphan(struct bk_engine *e)
{
    struct bk_waiter *w = e->orphans;
    if (!w)
        return NULL;
    e->orphans = w->next;
    w->next = NULL;
    w->linked = false;
    return w;
}
