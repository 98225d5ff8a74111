/* FIFO queues: message groups and deduplication.
 *
 * Every message of a FIFO queue belongs to a group (MessageGroupId) and
 * sits in its group's list in send order (by id; a message moved in from
 * elsewhere is put in its place). A group may hand out messages only while
 * none of its messages is in flight, and only from its head: that gives
 * ordering within the group and one in-flight batch per group. A group
 * whose head is READY and which has nothing in flight is "available" and
 * sits on the queue's available list, which receives walk; the list is
 * kept exact by bk__group_update(), called on every change that can
 * affect it (a message added or removed, a state change of one of its
 * messages). An empty group is freed.
 *
 * Deduplication: a MessageDeduplicationId (or the SHA-256 of the body with
 * ContentBasedDeduplication) seen in the last five minutes makes a send a
 * successful no-op that answers with the first message's id. Entries sit
 * in a hash and in a list in time order, expired from the front. With
 * DeduplicationScope messageGroup the key includes the group id. */
#include "broker/queue/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define BK_MIN_BUCKETS 16

/* ---- groups ---- */

static void groups_grow(struct bk_queue *q)
{
    size_t nb = q->ngbuckets ? q->ngbuckets * 2 : BK_MIN_BUCKETS;
    struct bk_group **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < q->ngbuckets; i++) {
        struct bk_group *g = q->gbuckets[i], *next;
        for (; g; g = next) {
            next = g->hnext;
            g->hnext = b[g->hash & (nb - 1)];
            b[g->hash & (nb - 1)] = g;
        }
    }
    free(q->gbuckets);
    q->gbuckets = b;
    q->ngbuckets = nb;
}

struct bk_group *bk__group_get(struct bk_queue *q, const char *id, size_t len, bool create)
{
    uint64_t h = XXH3_64bits(id, len);
    if (q->ngbuckets) {
        for (struct bk_group *g = q->gbuckets[h & (q->ngbuckets - 1)]; g; g = g->hnext)
            if (g->hash == h && g->id_len == len && memcmp(g->id, id, len) == 0)
                return g;
    }
    if (!create)
        return NULL;
    if (q->ngroups + 1 > q->ngbuckets)
        groups_grow(q);
    struct bk_group *g = xcalloc(1, sizeof *g);
    g->id = xstrndup(id, len);
    g->id_len = len;
    g->hash = h;
    g->hnext = q->gbuckets[h & (q->ngbuckets - 1)];
    q->gbuckets[h & (q->ngbuckets - 1)] = g;
    q->ngroups++;
    return g;
}

static void avail_unlink(struct bk_queue *q, struct bk_group *g)
{
    if (g->aprev)
        g->aprev->anext = g->anext;
    else
        q->ahead = g->anext;
    if (g->anext)
        g->anext->aprev = g->aprev;
    else
        q->atail = g->aprev;
    g->aprev = g->anext = NULL;
    g->avail = false;
}

static void avail_append(struct bk_queue *q, struct bk_group *g)
{
    g->anext = NULL;
    g->aprev = q->atail;
    if (q->atail)
        q->atail->anext = g;
    else
        q->ahead = g;
    q->atail = g;
    g->avail = true;
}

static void group_free(struct bk_queue *q, struct bk_group *g)
{
    if (g->avail)
        avail_unlink(q, g);
    struct bk_group **pp = &q->gbuckets[g->hash & (q->ngbuckets - 1)];
    while (*pp && *pp != g)
        pp = &(*pp)->hnext;
    ASSERT(*pp == g);
    *pp = g->hnext;
    q->ngroups--;
    free(g->id);
    free(g);
}

void bk__group_append(struct bk_queue *q, struct bk_msg *m)
{
    struct bk_group *g = m->grp;
    FG_UNUSED(q);
    /* Usually the newest: walk back from the tail to keep id order. */
    struct bk_msg *after = g->tail;
    while (after && after->mid > m->mid)
        after = after->prev;
    m->prev = after;
    m->next = after ? after->next : g->head;
    if (m->next)
        m->next->prev = m;
    else
        g->tail = m;
    if (after)
        after->next = m;
    else
        g->head = m;
    g->nmsgs++;
}

void bk__group_remove(struct bk_queue *q, struct bk_msg *m)
{
    struct bk_group *g = m->grp;
    FG_UNUSED(q);
    if (m->prev)
        m->prev->next = m->next;
    else
        g->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        g->tail = m->prev;
    m->prev = m->next = NULL;
    g->nmsgs--;
}

void bk__group_update(struct bk_queue *q, struct bk_group *g)
{
    if (!g->nmsgs) {
        group_free(q, g);
        return;
    }
    bool avail = g->inflight == 0 && g->head && g->head->state == BK_MS_READY;
    if (avail && !g->avail)
        avail_append(q, g);
    else if (!avail && g->avail)
        avail_unlink(q, g);
}

/* Up to max messages: as many as possible from the first available
 * group, in order, then from the next ones. */
size_t bk__fifo_pick(struct bk_queue *q, struct bk_msg **out, size_t max)
{
    size_t n = 0;
    for (struct bk_group *g = q->ahead; g && n < max; g = g->anext)
        for (struct bk_msg *m = g->head; m && m->state == BK_MS_READY && n < max; m = m->next)
            out[n++] = m;
    return n;
}

/* ---- deduplication ---- */

void bk__dedup_key(const struct bk_queue *q, const char *group, size_t group_len, const char *id,
                   char *out, size_t cap)
{
    bool by_group = q->a.dedup_scope && strcmp(q->a.dedup_scope, "messageGroup") == 0;
    if (by_group)
        snprintf(out, cap, "%.*s\x01%s", (int)group_len, group, id);
    else
        snprintf(out, cap, "%s", id);
}

static void dedup_grow(struct bk_queue *q)
{
    size_t nb = q->ndbuckets ? q->ndbuckets * 2 : BK_MIN_BUCKETS;
    struct bk_dedup **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < q->ndbuckets; i++) {
        struct bk_dedup *d = q->dbuckets[i], *next;
        for (; d; d = next) {
            next = d->hnext;
            d->hnext = b[d->hash & (nb - 1)];
            b[d->hash & (nb - 1)] = d;
        }
    }
    free(q->dbuckets);
    q->dbuckets = b;
    q->ndbuckets = nb;
}

static void dedup_remove(struct bk_queue *q, struct bk_dedup *d)
{
    struct bk_dedup **pp = &q->dbuckets[d->hash & (q->ndbuckets - 1)];
    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    ASSERT(*pp == d);
    *pp = d->hnext;
    q->ndedup--;
}

struct bk_dedup *bk__dedup_find(struct bk_queue *q, const char *id, uint64_t now)
{
    if (!q->ndbuckets)
        return NULL;
    uint64_t h = XXH3_64bits(id, strlen(id));
    for (struct bk_dedup *d = q->dbuckets[h & (q->ndbuckets - 1)]; d; d = d->hnext)
        if (d->hash == h && strcmp(d->id, id) == 0)
            return d->at_ms + BK_DEDUP_WINDOW_MS > now ? d : NULL;
    return NULL;
}

struct bk_dedup *bk__dedup_add(struct bk_queue *q, const char *id, uint64_t at_ms, uint64_t mid,
                               struct store_pos pos)
{
    uint64_t h = XXH3_64bits(id, strlen(id));
    if (q->ndbuckets) {
        /* A stale entry with this key (outside its window, not yet
         * expired from the list) is refreshed in place. */
        for (struct bk_dedup *d = q->dbuckets[h & (q->ndbuckets - 1)]; d; d = d->hnext) {
            if (d->hash == h && strcmp(d->id, id) == 0) {
                if (at_ms > d->at_ms) {
                    d->at_ms = at_ms;
                    d->mid = mid;
                    d->pos = pos;
                }
                return d;
            }
        }
    }
    if (q->ndedup + 1 > q->ndbuckets)
        dedup_grow(q);
    struct bk_dedup *d = xcalloc(1, sizeof *d);
    d->id = xstrdup(id);
    d->hash = h;
    d->at_ms = at_ms;
    d->mid = mid;
    d->pos = pos;
    d->hnext = q->dbuckets[h & (q->ndbuckets - 1)];
    q->dbuckets[h & (q->ndbuckets - 1)] = d;
    q->ndedup++;
    /* Time order; replay may add older entries after newer ones. */
    if (!q->dtail || q->dtail->at_ms <= at_ms) {
        if (q->dtail)
            q->dtail->lnext = d;
        else
            q->dhead = d;
        q->dtail = d;
    } else {
        struct bk_dedup **pp = &q->dhead;
        while (*pp && (*pp)->at_ms <= at_ms)
            pp = &(*pp)->lnext;
        d->lnext = *pp;
        *pp = d;
    }
    return d;
}

void bk__dedup_expire(struct bk_queue *q, uint64_t now)
{
    while (q->dhead && q->dhead->at_ms + BK_DEDUP_WINDOW_MS <= now) {
        struct bk_dedup *d = q->dhead;
        q->dhead = d->lnext;
        if (!q->dhead)
            q->dtail = NULL;
        dedup_remove(q, d);
        free(d->id);
        free(d);
    }
}

void bk__fifo_free(struct bk_queue *q)
{
    /* Messages are gone by now, and with them every group. */
    ASSERT(q->ngroups == 0);
    free(q->gbuckets);
    q->gbuckets = NULL;
    q->ngbuckets = 0;
    while (q->dhead) {
        struct bk_dedup *d = q->dhead;
        q->dhead = d->lnext;
        free(d->id);
        free(d);
    }
    q->dtail = NULL;
    free(q->dbuckets);
    q->dbuckets = NULL;
    q->ndbuckets = q->ndedup = 0;
}
