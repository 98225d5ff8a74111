/* The sharded local store of limit/store.h.
 *
 * Layout of an entry, one allocation:
 *     struct rl_entry | key bytes, padded to 8 | struct rl_state (+ ring)
 * The shard's lock covers its bucket array, its entry list, its counters
 * and the states of its entries.
 *
 * Recency is tracked the CLOCK (second chance) way rather than as a strict
 * LRU list: a hit only sets its entry's `ref` bit; the list stays in
 * insertion order, and the victim search gives each referenced entry at
 * the tail one more round (clears the bit, moves it to the head). A strict
 * move-to-front would write three other entries' links on every check,
 * three more cache misses on a table larger than the cache. New entries
 * start unreferenced, so keys seen once (a scan of random keys) go before
 * keys in use. The lock is a test-and-test-and-set spinlock
 * that yields after a while: critical sections are a few dozen
 * nanoseconds, and a preempted holder must not make the others burn their
 * time slice. malloc and free run outside the lock: a miss unlocks,
 * allocates, relocks and looks again. */
#include "gateway/limit/store.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct rl_link {
    struct rl_link *prev, *next;
};

struct rl_entry {
    struct rl_link lru;        /* first: the shard's list, newest (or re-armed) first */
    struct rl_entry *hnext;    /* bucket chain */
    uint64_t hash;             /* XXH3 of the key, seeded with the rule id */
    uint64_t expires_us;       /* state is fresh again from then on */
    uint32_t rule_id;
    uint32_t log_cap;          /* sliding log: ring size the state was made with */
    uint32_t size;             /* rl_store_entry_bytes() of this entry */
    uint16_t key_len;
    uint8_t algo;              /* the algorithm the state was made for */
    uint8_t ref;               /* used since the clock hand last passed */
    uint64_t data[];           /* key bytes, then the state */
};

struct rl_shard {
    _Alignas(64) atomic_bool lock;
    struct rl_entry **buckets;
    size_t nbuckets;           /* power of two */
    size_t max_buckets;
    size_t count, max_count;
    size_t bytes, max_bytes;   /* max_bytes 0: no byte cap */
    struct rl_link lru;        /* sentinel */
    uint64_t inserts, evicted_expired, evicted_lru, swept, full_allowed, full_denied;
};

struct rl_store {
    struct rl_shard *shards;
    unsigned nshards;
};

#define RL_LRU_SCAN 8 /* expired candidates looked at before the policy applies */

static inline size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

static inline char *entry_key(struct rl_entry *e) { return (char *)e->data; }

static inline struct rl_state *entry_state(struct rl_entry *e)
{
    return (struct rl_state *)((char *)e->data + align8(e->key_len));
}

size_t rl_store_entry_bytes(const struct rl_rule *rule, size_t key_len)
{
    return sizeof(struct rl_entry) + align8(key_len) + rl_state_size(rule);
}

/* ---- lock ----------------------------------------------------------- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void shard_lock(struct rl_shard *sh)
{
    for (;;) {
        if (!atomic_exchange_explicit(&sh->lock, true, memory_order_acquire))
            return;
        unsigned spins = 0;
        while (atomic_load_explicit(&sh->lock, memory_order_relaxed)) {
            if (++spins < 256) {
                cpu_relax();
            } else {
                sched_yield();
                spins = 0;
            }
        }
    }
}

static inline void shard_unlock(struct rl_shard *sh)
{
    atomic_store_explicit(&sh->lock, false, memory_order_release);
}

/* ---- store ---------------------------------------------------------- */

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

struct rl_store *rl_store_new(const struct rl_store_opts *opts)
{
    struct rl_store_opts o = opts ? *opts : (struct rl_store_opts){ 0 };
    if (!o.max_keys)
        o.max_keys = RL_STORE_DEFAULT_MAX_KEYS;
    if (!o.shards)
        o.shards = RL_STORE_DEFAULT_SHARDS;
    ASSERT((o.shards & (o.shards - 1)) == 0 && o.shards <= RL_STORE_MAX_SHARDS);
    while (o.shards > 1 && o.shards > o.max_keys)
        o.shards >>= 1;

    struct rl_store *s = xcalloc(1, sizeof *s);
    s->nshards = o.shards;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, o.shards * sizeof(struct rl_shard)) != 0)
        ASSERT(!"out of memory allocating rate-limit shards");
    s->shards = mem;
    memset(s->shards, 0, o.shards * sizeof(struct rl_shard));
    for (unsigned i = 0; i < o.shards; i++) {
        struct rl_shard *sh = &s->shards[i];
        atomic_init(&sh->lock, false);
        sh->max_count = o.max_keys / o.shards;
        sh->max_bytes = o.max_bytes ? FG_MAX(o.max_bytes / o.shards, 1) : 0;
        sh->max_buckets = pow2_at_least(FG_MAX(sh->max_count, 8));
        sh->nbuckets = FG_MIN(sh->max_buckets, 16);
        sh->buckets = xcalloc(sh->nbuckets, sizeof *sh->buckets);
        sh->lru.prev = sh->lru.next = &sh->lru;
    }
    return s;
}

void rl_store_free(struct rl_store *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->nshards; i++) {
        struct rl_shard *sh = &s->shards[i];
        struct rl_link *l = sh->lru.next;
        while (l != &sh->lru) {
            struct rl_link *next = l->next;
            free(container_of(l, struct rl_entry, lru));
            l = next;
        }
        free(sh->buckets);
    }
    free(s->shards);
    free(s);
}

static inline struct rl_shard *shard_of(struct rl_store *s, uint64_t h)
{
    return &s->shards[(uint32_t)(h >> 32) & (s->nshards - 1)];
}

static inline uint64_t key_hash(uint32_t rule_id, const void *key, size_t len)
{
    return XXH3_64bits_withSeed(key, len, rule_id);
}

/* ---- entries (shard locked) ----------------------------------------- */

static struct rl_entry *entry_find(struct rl_shard *sh, uint64_t h, uint32_t rule_id,
                                 const void *key, size_t len)
{
    for (struct rl_entry *e = sh->buckets[h & (sh->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->rule_id == rule_id && e->key_len == len &&
            memcmp(entry_key(e), key, len) == 0)
            return e;
    return NULL;
}

static inline void lru_unlink(struct rl_entry *e)
{
    e->lru.prev->next = e->lru.next;
    e->lru.next->prev = e->lru.prev;
}

static inline void lru_push(struct rl_shard *sh, struct rl_entry *e)
{
    e->lru.next = sh->lru.next;
    e->lru.prev = &sh->lru;
    sh->lru.next->prev = &e->lru;
    sh->lru.next = &e->lru;
}


/* Unlinks e from its bucket and the LRU list; the caller frees it after
 * unlocking. */
static void entry_remove(struct rl_shard *sh, struct rl_entry *e)
{
    struct rl_entry **pp = &sh->buckets[e->hash & (sh->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(e);
    sh->count--;
    sh->bytes -= e->size;
}

static void shard_grow(struct rl_shard *sh)
{
    size_t n = sh->nbuckets * 2;
    struct rl_entry **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < sh->nbuckets; i++) {
        struct rl_entry *e = sh->buckets[i];
        while (e) {
            struct rl_entry *next = e->hnext;
            size_t j = e->hash & (n - 1);
            e->hnext = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
}

static void entry_insert(struct rl_shard *sh, struct rl_entry *e)
{
    size_t j = e->hash & (sh->nbuckets - 1);
    e->hnext = sh->buckets[j];
    sh->buckets[j] = e;
    lru_push(sh, e);
    sh->count++;
    sh->bytes += e->size;
    sh->inserts++;
    if (sh->count > sh->nbuckets && sh->nbuckets < sh->max_buckets)
        shard_grow(sh);
}

static bool layout_ok(const struct rl_entry *e, const struct rl_rule *rule)
{
    return e->algo == (uint8_t)rule->algo &&
           e->log_cap == (rule->algo == RL_SLIDING_LOG ? (uint32_t)rule->limit : 0);
}

static inline bool shard_over(const struct rl_shard *sh, size_t need)
{
    return sh->count >= sh->max_count || (sh->max_bytes && sh->bytes + need > sh->max_bytes);
}

/* Decision made by the full-store policy, with no state. */
static void full_decision(const struct rl_rule *rule, bool allow, uint64_t retry_us,
                              uint32_t cost, struct rl_decision *d)
{
    memset(d, 0, sizeof *d);
    d->allowed = allow;
    if (allow) {
        d->remaining = rule->capacity > cost ? rule->capacity - cost : 0;
        d->reset_us = rule->window_us;
    } else {
        d->retry_after_us = retry_us;
        d->reset_us = retry_us;
    }
}

/* Makes room in sh for an entry of need bytes, moving evicted entries
 * onto *dead (freed by the caller after unlocking). Returns false when
 * the rule's policy refuses, with *d filled. */
static bool make_room(struct rl_shard *sh, const struct rl_rule *rule, size_t need,
                          uint64_t now, uint32_t cost, struct rl_entry **dead,
                          struct rl_decision *d)
{
    if (sh->max_bytes && need > sh->max_bytes) {
        bool allow = rule->on_full != RL_FULL_DENY;
        full_decision(rule, allow, rule->window_us, cost, d);
        if (allow)
            sh->full_allowed++;
        else
            sh->full_denied++;
        return false;
    }
    while (shard_over(sh, need)) {
        struct rl_link *l = sh->lru.prev;
        struct rl_entry *victim = NULL;
        for (int i = 0; i < RL_LRU_SCAN && l != &sh->lru; i++, l = l->prev) {
            struct rl_entry *e = container_of(l, struct rl_entry, lru);
            if (e->expires_us <= now) {
                victim = e;
                break;
            }
        }
        if (victim) {
            sh->evicted_expired++;
        } else if (rule->on_full == RL_FULL_EVICT) {
            /* Second chance: referenced entries at the tail are re-armed
             * at the head; after one pass every bit is clear, so this
             * ends within count + 1 steps. */
            for (;;) {
                victim = container_of(sh->lru.prev, struct rl_entry, lru);
                if (!victim->ref)
                    break;
                victim->ref = 0;
                lru_unlink(victim);
                lru_push(sh, victim);
            }
            sh->evicted_lru++;
        } else {
            struct rl_entry *tail = container_of(sh->lru.prev, struct rl_entry, lru);
            uint64_t retry = FG_MIN(tail->expires_us - now, rule->window_us);
            bool allow = rule->on_full == RL_FULL_ALLOW;
            full_decision(rule, allow, retry, cost, d);
            if (allow)
                sh->full_allowed++;
            else
                sh->full_denied++;
            return false;
        }
        entry_remove(sh, victim);
        victim->hnext = *dead;
        *dead = victim;
    }
    return true;
}

static struct rl_entry *entry_new(const struct rl_rule *rule, uint64_t h, const void *key,
                                      size_t len)
{
    size_t size = rl_store_entry_bytes(rule, len);
    struct rl_entry *e = xmalloc(size);
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->rule_id = rule->id;
    e->log_cap = rule->algo == RL_SLIDING_LOG ? (uint32_t)rule->limit : 0;
    e->size = (uint32_t)size;
    e->key_len = (uint16_t)len;
    e->algo = (uint8_t)rule->algo;
    memcpy(entry_key(e), key, len);
    rl_state_init(rule, entry_state(e));
    return e;
}

static void entry_free_list(struct rl_entry *e)
{
    while (e) {
        struct rl_entry *next = e->hnext;
        free(e);
        e = next;
    }
}

/* ---- API ------------------------------------------------------------ */

int rl_store_check(struct rl_store *s, const struct rl_rule *rule, const void *key, size_t len,
                   uint64_t now_us, uint32_t cost, struct rl_decision *d)
{
    ASSERT(len <= RL_STORE_KEY_MAX);
    const uint64_t h = key_hash(rule->id, key, len);
    struct rl_shard *sh = shard_of(s, h);
    struct rl_entry *dead = NULL, *fresh = NULL;
    bool fresh_used = false;
    int rc = RL_STORE_OK;

    shard_lock(sh);
    struct rl_entry *e = entry_find(sh, h, rule->id, key, len);
    if (e && !layout_ok(e, rule)) {
        entry_remove(sh, e);
        e->hnext = dead;
        dead = e;
        e = NULL;
    }
    if (!e && cost == 0) {
        /* A query on an unknown key: the answer for a fresh state. With
         * no unit to log, the sliding log never touches its ring, so the
         * fixed part alone will do. */
        struct rl_state tmp;
        memset(&tmp, 0, sizeof tmp);
        rl_check(rule, &tmp, now_us, 0, d);
        shard_unlock(sh);
        entry_free_list(dead);
        return RL_STORE_OK;
    }
    if (!e) {
        shard_unlock(sh);
        fresh = entry_new(rule, h, key, len);
        shard_lock(sh);
        e = entry_find(sh, h, rule->id, key, len); /* inserted meanwhile? */
        if (e && !layout_ok(e, rule)) {
            entry_remove(sh, e);
            e->hnext = dead;
            dead = e;
            e = NULL;
        }
        if (!e) {
            if (make_room(sh, rule, fresh->size, now_us, cost, &dead, d)) {
                entry_insert(sh, fresh);
                e = fresh;
                fresh = NULL;
                fresh_used = true;
            } else {
                rc = RL_STORE_FULL;
            }
        }
    }
    if (e) {
        if (!fresh_used)
            e->ref = 1; /* a hit; a new entry starts unreferenced */
        struct rl_state *st = entry_state(e);
        rl_check(rule, st, now_us, cost, d);
        e->expires_us = rl_state_expiry(rule, st);
    }
    shard_unlock(sh);
    free(fresh);
    entry_free_list(dead);
    return rc;
}

bool rl_store_forget(struct rl_store *s, uint32_t rule_id, const void *key, size_t len)
{
    if (len > RL_STORE_KEY_MAX)
        return false;
    const uint64_t h = key_hash(rule_id, key, len);
    struct rl_shard *sh = shard_of(s, h);
    shard_lock(sh);
    struct rl_entry *e = entry_find(sh, h, rule_id, key, len);
    if (e)
        entry_remove(sh, e);
    shard_unlock(sh);
    free(e);
    return e != NULL;
}

size_t rl_store_sweep(struct rl_store *s, uint64_t now_us)
{
    size_t removed = 0;
    for (unsigned i = 0; i < s->nshards; i++) {
        struct rl_shard *sh = &s->shards[i];
        struct rl_entry *dead = NULL;
        shard_lock(sh);
        struct rl_link *l = sh->lru.prev;
        while (l != &sh->lru) {
            struct rl_link *prev = l->prev;
            struct rl_entry *e = container_of(l, struct rl_entry, lru);
            if (e->expires_us <= now_us) {
                entry_remove(sh, e);
                e->hnext = dead;
                dead = e;
                sh->swept++;
                removed++;
            }
            l = prev;
        }
        shard_unlock(sh);
        entry_free_list(dead);
    }
    return removed;
}

void rl_store_stats(struct rl_store *s, struct rl_store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->table_bytes = sizeof *s + s->nshards * sizeof(struct rl_shard);
    for (unsigned i = 0; i < s->nshards; i++) {
        struct rl_shard *sh = &s->shards[i];
        shard_lock(sh);
        out->keys += sh->count;
        out->bytes += sh->bytes;
        out->table_bytes += sh->nbuckets * sizeof *sh->buckets;
        out->max_keys += sh->max_count;
        out->inserts += sh->inserts;
        out->evicted_expired += sh->evicted_expired;
        out->evicted_lru += sh->evicted_lru;
        out->swept += sh->swept;
        out->full_allowed += sh->full_allowed;
        out->full_denied += sh->full_denied;
        shard_unlock(sh);
    }
}
