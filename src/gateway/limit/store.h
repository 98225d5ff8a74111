/* The local rate-limit store: one rl_state per (rule, key), shared by
 * every worker thread of the gateway.
 *
 * A hash table split into shards by key hash (64 by default), each shard
 * with its own spinlock, bucket array, LRU list and share of the limits.
 * A check locks one shard, finds or inserts the key's entry, runs
 * rl_check() on its state and records when the state expires, so the
 * count is exact across all threads. Keys are compared as bytes (the
 * 64-bit hash only picks the bucket): two different keys never share
 * state.
 *
 * Memory is bounded two ways: at most max_keys entries (split evenly over
 * the shards: each holds max_keys / shards) and, optionally, max_bytes of
 * entry memory (same split). An entry takes rl_store_entry_bytes(rule,
 * key_len) bytes; the bucket arrays add at most 8 bytes per key slot,
 * rounded up to a power of two per shard.
 *
 * Expiry: an entry whose state has become equivalent to a fresh one
 * (rl_state_expiry(): the bucket refilled, the window passed) is
 * "expired". Expired entries are reclaimed lazily, when an insert needs
 * room (the shard's least recently used entries are looked at first), and
 * by rl_store_sweep(), which the owner calls periodically.
 *
 * Full-store policy: when a new key arrives and its shard is at its cap
 * with no expired entry among its 8 oldest ones, the rule's on_full
 * decides:
 *   RL_FULL_EVICT (default)  the least recently used entry, by the CLOCK
 *                            (second chance) approximation, is evicted and
 *                            the new key takes its place: the oldest entry
 *                            not checked again since the clock hand last
 *                            passed it, keys seen only once first. An
 *                            evicted key that comes back starts afresh, so
 *                            under a key flood a client may get a fresh
 *                            quota; the victim is always an idle key.
 *   RL_FULL_ALLOW            fail open: the request is admitted and no
 *                            state is kept for the key.
 *   RL_FULL_DENY             fail closed: the request is rejected with
 *                            retry_after until the shard's oldest entry
 *                            expires (at most the rule's window).
 * A key whose single entry exceeds the shard's byte cap is handled as
 * RL_FULL_ALLOW under RL_FULL_EVICT (evicting could never make room).
 * Existing keys are never refused.
 *
 * Rules: entries are namespaced by rule->id. When a rule changes its
 * algorithm (or a sliding log its limit) under the same id, the state of
 * each of its keys is reset on the key's next check. */
#ifndef GW_RLSTORE_H
#define GW_RLSTORE_H

#include "core/common.h"
#include "gateway/limit/ratelimit.h"

#define RL_STORE_DEFAULT_MAX_KEYS (1u << 20)
#define RL_STORE_DEFAULT_SHARDS 64u
#define RL_STORE_MAX_SHARDS 4096u
#define RL_STORE_KEY_MAX 1024u /* longest key accepted, bytes */

/* rl_store_check() results. */
#define RL_STORE_OK 0
#define RL_STORE_FULL 1 /* decided by the rule's on_full policy, no state kept */

struct rl_store_opts {
    size_t max_keys;  /* 0: RL_STORE_DEFAULT_MAX_KEYS */
    size_t max_bytes; /* entry memory cap; 0: bounded by max_keys only */
    unsigned shards;  /* power of two; 0: RL_STORE_DEFAULT_SHARDS; lowered
                         to at most max_keys */
};

struct rl_store_stats {
    size_t keys;               /* entries held */
    size_t bytes;              /* entry memory (rl_store_entry_bytes sum) */
    size_t table_bytes;        /* shard headers and bucket arrays */
    size_t max_keys;           /* effective cap: shards * per-shard cap */
    uint64_t inserts;          /* entries created */
    uint64_t evicted_expired;  /* reclaimed lazily to make room */
    uint64_t evicted_lru;      /* live entries evicted by RL_FULL_EVICT (CLOCK) */
    uint64_t swept;            /* removed by rl_store_sweep */
    uint64_t full_allowed;     /* requests admitted by RL_FULL_ALLOW */
    uint64_t full_denied;      /* requests rejected by RL_FULL_DENY */
};

struct rl_store;

/* Creates an empty store; opts may be NULL for the defaults. Never fails
 * (allocation failure aborts). */
struct rl_store *rl_store_new(const struct rl_store_opts *opts);

/* Frees the store and every entry. No check may still be running. */
void rl_store_free(struct rl_store *s);

/* Checks one request of `cost` units against rule (prepared) for the key
 * key[0..len) (len <= RL_STORE_KEY_MAX) at now_us, creating the key's
 * state on first use. Fills *d as rl_check() does. Returns RL_STORE_OK,
 * or RL_STORE_FULL when the key is new, its shard is full and the rule's
 * on_full policy decided *d without keeping state. A query (cost 0) on an
 * unknown key answers for a fresh state and inserts nothing.
 * Thread-safe: called concurrently from every worker thread; holds one
 * shard's lock for the lookup and the check (no allocation under it
 * except when inserting). */
int rl_store_check(struct rl_store *s, const struct rl_rule *rule, const void *key, size_t len,
                   uint64_t now_us, uint32_t cost, struct rl_decision *d);

/* Forgets one key of a rule (an admin reset). Returns true when it was
 * present. Thread-safe. */
bool rl_store_forget(struct rl_store *s, uint32_t rule_id, const void *key, size_t len);

/* Removes every entry expired at now_us, one shard at a time (each shard
 * locked for one pass over its entries). Returns the number removed.
 * Call it periodically (every second or so) from one thread. */
size_t rl_store_sweep(struct rl_store *s, uint64_t now_us);

/* Totals over all shards, each read under its lock. */
void rl_store_stats(struct rl_store *s, struct rl_store_stats *out);

/* Bytes one entry for a key of key_len bytes under rule takes. */
size_t rl_store_entry_bytes(const struct rl_rule *rule, size_t key_len);

#endif
