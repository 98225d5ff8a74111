/* Unit tests for the local rate-limit store (src/gateway/limit/store.c):
 * key separation, expiry and sweeping, the full-store policies (LRU
 * eviction, fail open, fail closed), the byte cap, memory accounting,
 * rule changes, and exact counting under 8 threads. */
#include <criterion/criterion.h>

#include "gateway/limit/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S 1000000ull
#define MS 1000ull
#define T0 (100ull * 3600 * S)

static struct rl_rule mk(enum rl_algo algo, uint32_t id, uint64_t limit, uint64_t window_us,
                         enum rl_on_full on_full)
{
    struct rl_rule r = { .algo = algo, .id = id, .limit = limit, .window_us = window_us,
                         .on_full = on_full };
    char *err = NULL;
    cr_assert_eq(rl_rule_prepare(&r, &err), 0, "prepare: %s", err ? err : "");
    return r;
}

static struct rl_store *store(size_t max_keys, size_t max_bytes, unsigned shards)
{
    struct rl_store_opts o = { .max_keys = max_keys, .max_bytes = max_bytes, .shards = shards };
    return rl_store_new(&o);
}

static struct rl_decision chk(struct rl_store *s, const struct rl_rule *r, const char *key,
                              uint64_t now, int want_rc)
{
    struct rl_decision d;
    memset(&d, 0xa5, sizeof d);
    int rc = rl_store_check(s, r, key, strlen(key), now, 1, &d);
    cr_assert_eq(rc, want_rc, "key %s: rc %d, want %d", key, rc, want_rc);
    return d;
}

static bool ok(struct rl_store *s, const struct rl_rule *r, const char *key, uint64_t now)
{
    return chk(s, r, key, now, RL_STORE_OK).allowed;
}

static struct rl_store_stats stats(struct rl_store *s)
{
    struct rl_store_stats st;
    rl_store_stats(s, &st);
    return st;
}

Test(rl_store, keys_and_rules_are_separate)
{
    struct rl_store *s = rl_store_new(NULL);
    struct rl_rule r1 = mk(RL_TOKEN_BUCKET, 1, 3, S, RL_FULL_EVICT);
    struct rl_rule r2 = mk(RL_TOKEN_BUCKET, 2, 3, S, RL_FULL_EVICT);
    for (int i = 0; i < 3; i++)
        cr_assert(ok(s, &r1, "a", T0));
    cr_assert_not(ok(s, &r1, "a", T0));
    /* A prefix, an extension, one byte off, and the same bytes under
     * another rule: each its own bucket. */
    const char *others[] = { "", "ab", "b", "A", "a\xff" };
    for (size_t k = 0; k < ARRAY_SIZE(others); k++) {
        for (int i = 0; i < 3; i++)
            cr_assert(ok(s, &r1, others[k], T0), "key '%s' request %d", others[k], i);
        cr_assert_not(ok(s, &r1, others[k], T0));
    }
    for (int i = 0; i < 3; i++)
        cr_assert(ok(s, &r2, "a", T0));
    cr_assert_not(ok(s, &r2, "a", T0));
    /* Keys with embedded NULs compare as bytes. */
    struct rl_decision d;
    rl_store_check(s, &r1, "x\0y", 3, T0, 3, &d);
    cr_assert(d.allowed);
    rl_store_check(s, &r1, "x\0z", 3, T0, 3, &d);
    cr_assert(d.allowed);
    rl_store_check(s, &r1, "x\0y", 3, T0, 1, &d);
    cr_assert_not(d.allowed);
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 9);
    cr_assert_eq(st.inserts, 9);
    rl_store_free(s);
}

/* 20000 keys in one shard: chains and table growth keep every key's
 * count exact. */
Test(rl_store, many_keys_in_one_shard)
{
    struct rl_store *s = store(100000, 0, 1);
    struct rl_rule r = mk(RL_FIXED_WINDOW, 1, 1, 60 * S, RL_FULL_EVICT);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "client-%d", i);
        cr_assert(ok(s, &r, key, T0));
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "client-%d", i);
        cr_assert_not(ok(s, &r, key, T0 + S), "key %s admitted twice", key);
    }
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 20000);
    cr_assert_eq(st.evicted_lru + st.evicted_expired, 0);
    rl_store_free(s);
}

Test(rl_store, sweep_removes_expired_entries)
{
    struct rl_store *s = rl_store_new(NULL);
    struct rl_rule tb = mk(RL_TOKEN_BUCKET, 1, 10, S, RL_FULL_EVICT);  /* 1 req: 100 ms */
    struct rl_rule fw = mk(RL_FIXED_WINDOW, 2, 10, 60 * S, RL_FULL_EVICT); /* window end */
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ok(s, &tb, key, T0);
        ok(s, &fw, key, T0 + 30 * S - 100 * MS);
    }
    cr_assert_eq(stats(s).keys, 2000);
    size_t per_tb = rl_store_entry_bytes(&tb, 4), per_fw = rl_store_entry_bytes(&fw, 4);
    cr_assert_eq(rl_store_sweep(s, T0 + 50 * MS), 0);
    cr_assert_eq(rl_store_sweep(s, T0 + 100 * MS), 1000); /* the buckets refilled */
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 1000);
    cr_assert_eq(st.swept, 1000);
    cr_assert_leq(st.bytes, 1000 * per_fw);
    cr_assert_geq(st.bytes, 1000 * rl_store_entry_bytes(&fw, 2));
    cr_assert_eq(rl_store_sweep(s, T0 + 60 * S - 1), 0);
    cr_assert_eq(rl_store_sweep(s, T0 + 60 * S), 1000); /* the window ended */
    st = stats(s);
    cr_assert_eq(st.keys, 0);
    cr_assert_eq(st.bytes, 0);
    (void)per_tb;
    rl_store_free(s);
}

Test(rl_store, expired_entries_make_room_first)
{
    struct rl_store *s = store(4, 0, 1);
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 1, 10, S, RL_FULL_DENY);
    const char *keys[] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++)
        ok(s, &r, keys[i], T0);
    /* Full; the entries expire at T0 + 100 ms. Before: fail closed. */
    struct rl_decision d = chk(s, &r, "e", T0 + 50 * MS, RL_STORE_FULL);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_us, 50 * MS); /* until the idlest entry expires */
    /* After: an expired entry gives way, whatever the policy. */
    cr_assert(ok(s, &r, "e", T0 + 100 * MS));
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 4);
    cr_assert_eq(st.evicted_expired, 1);
    cr_assert_eq(st.evicted_lru, 0);
    cr_assert_eq(st.full_denied, 1);
    rl_store_free(s);
}

/* CLOCK order: a, b, c inserted unreferenced; a is hit; d evicts the
 * oldest unreferenced entry (b) after giving a a second chance. */
Test(rl_store, full_evicts_least_recently_used)
{
    struct rl_store *s = store(3, 0, 1);
    struct rl_rule r = mk(RL_FIXED_WINDOW, 1, 2, 60 * S, RL_FULL_EVICT);
    cr_assert(ok(s, &r, "a", T0));
    cr_assert(ok(s, &r, "b", T0));
    cr_assert(ok(s, &r, "c", T0));
    cr_assert(ok(s, &r, "a", T0 + 1)); /* a is used again: b is now the idlest */
    cr_assert(ok(s, &r, "d", T0 + 2)); /* evicts b */
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 3);
    cr_assert_eq(st.evicted_lru, 1);
    cr_assert_not(ok(s, &r, "a", T0 + 3)); /* a kept its count */
    cr_assert(ok(s, &r, "c", T0 + 4));     /* c kept its count: its second */
    cr_assert_not(ok(s, &r, "c", T0 + 4));
    /* b comes back fresh (its count was lost); a and c were hit, so d, never
     * hit since its insertion, goes. */
    struct rl_decision d = chk(s, &r, "b", T0 + 5, RL_STORE_OK);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 1);
    cr_assert_eq(stats(s).evicted_lru, 2);
    d = chk(s, &r, "d", T0 + 6, RL_STORE_OK); /* d is fresh as well */
    cr_assert_eq(d.remaining, 1);
    rl_store_free(s);
}

Test(rl_store, full_fails_open)
{
    struct rl_store *s = store(2, 0, 1);
    struct rl_rule r = mk(RL_FIXED_WINDOW, 1, 2, 60 * S, RL_FULL_ALLOW);
    ok(s, &r, "a", T0);
    ok(s, &r, "b", T0);
    for (int i = 0; i < 10; i++) {
        struct rl_decision d = chk(s, &r, "c", T0, RL_STORE_FULL);
        cr_assert(d.allowed);
        cr_assert_eq(d.delay_us, 0);
        cr_assert_eq(d.remaining, 1);
    }
    cr_assert(ok(s, &r, "a", T0));
    cr_assert_not(ok(s, &r, "a", T0)); /* known keys are still limited */
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 2);
    cr_assert_eq(st.full_allowed, 10);
    cr_assert_eq(st.evicted_lru, 0);
    rl_store_free(s);
}

Test(rl_store, full_fails_closed)
{
    struct rl_store *s = store(2, 0, 1);
    struct rl_rule r = mk(RL_FIXED_WINDOW, 1, 2, 60 * S, RL_FULL_DENY);
    ok(s, &r, "a", T0 + 10 * S);
    ok(s, &r, "b", T0 + 20 * S);
    struct rl_decision d = chk(s, &r, "c", T0 + 30 * S, RL_STORE_FULL);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_us, 30 * S); /* a, the idlest, expires at T0 + 60 s */
    cr_assert_eq(d.remaining, 0);
    /* Once a's window is over, c takes its place. */
    cr_assert(ok(s, &r, "c", T0 + 60 * S));
    cr_assert_eq(stats(s).full_denied, 1);
    cr_assert_eq(stats(s).evicted_expired, 1); /* a, expired at T0 + 60 s, gave way */
    rl_store_free(s);
}

/* The byte cap counts whole entries: two sliding logs of 1000 slots fit
 * in 2.5 entries' worth, a third evicts the idlest. */
Test(rl_store, byte_cap)
{
    struct rl_rule r = mk(RL_SLIDING_LOG, 1, 1000, S, RL_FULL_EVICT);
    size_t one = rl_store_entry_bytes(&r, 2);
    cr_assert_geq(one, 8000);
    struct rl_store *s = store(100, one * 5 / 2, 1);
    ok(s, &r, "k1", T0);
    ok(s, &r, "k2", T0);
    struct rl_store_stats st = stats(s);
    cr_assert_eq(st.keys, 2);
    cr_assert_eq(st.bytes, 2 * one);
    ok(s, &r, "k3", T0);
    st = stats(s);
    cr_assert_eq(st.keys, 2);
    cr_assert_eq(st.evicted_lru, 1);
    cr_assert_leq(st.bytes, one * 5 / 2);
    /* An entry bigger than the whole cap is never stored: with eviction
     * as the policy the request passes (evicting could not make room). */
    struct rl_rule big = mk(RL_SLIDING_LOG, 2, 65536, S, RL_FULL_EVICT);
    struct rl_decision d = chk(s, &big, "k", T0, RL_STORE_FULL);
    cr_assert(d.allowed);
    big.on_full = RL_FULL_DENY;
    d = chk(s, &big, "k", T0, RL_STORE_FULL);
    cr_assert_not(d.allowed);
    cr_assert_eq(stats(s).keys, 2);
    rl_store_free(s);
}

/* Memory stays within max_keys entries whatever the number of keys seen. */
Test(rl_store, memory_is_bounded)
{
    struct rl_store *s = store(10000, 0, 64);
    struct rl_rule r = mk(RL_TOKEN_BUCKET, 1, 100, 60 * S, RL_FULL_EVICT);
    char key[40];
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof key, "203.0.%d.%d|k%08d", (i >> 8) & 255, i & 255, i);
        struct rl_decision d;
        cr_assert_eq(rl_store_check(s, &r, key, (size_t)n, T0 + (uint64_t)i, 1, &d),
                     RL_STORE_OK);
        cr_assert(d.allowed);
    }
    struct rl_store_stats st = stats(s);
    size_t per = rl_store_entry_bytes(&r, 21);
    cr_assert_eq(st.max_keys, 10000 / 64 * 64);
    cr_assert_eq(st.keys, st.max_keys, "keys %zu", st.keys);
    cr_assert_eq(st.bytes, st.keys * per);
    cr_assert_eq(st.evicted_lru, 200000 - st.keys);
    /* Buckets: a power of two >= the per-shard cap, 8 bytes each. */
    cr_assert_leq(st.table_bytes, 64 * (256 * 8 + 256) + 4096);
    cr_log_info("store memory: %zu keys x %zu bytes = %zu entry bytes + %zu table bytes "
                "(%.1f bytes per key all in) after 200000 distinct keys",
                st.keys, per, st.bytes, st.table_bytes,
                (double)(st.bytes + st.table_bytes) / (double)st.keys);
    rl_store_free(s);
}

Test(rl_store, rule_change_resets_state)
{
    struct rl_store *s = rl_store_new(NULL);
    struct rl_rule fw = mk(RL_FIXED_WINDOW, 7, 1, 60 * S, RL_FULL_EVICT);
    struct rl_rule lg = mk(RL_SLIDING_LOG, 7, 1, 60 * S, RL_FULL_EVICT);
    struct rl_rule lg2 = mk(RL_SLIDING_LOG, 7, 3, 60 * S, RL_FULL_EVICT);
    cr_assert(ok(s, &fw, "k", T0));
    cr_assert_not(ok(s, &fw, "k", T0));
    cr_assert(ok(s, &lg, "k", T0)); /* another algorithm: fresh */
    cr_assert_not(ok(s, &lg, "k", T0));
    for (int i = 0; i < 3; i++) /* a bigger ring: fresh, and no overflow */
        cr_assert(ok(s, &lg2, "k", T0));
    cr_assert_not(ok(s, &lg2, "k", T0));
    cr_assert_eq(stats(s).keys, 1);
    rl_store_free(s);
}

Test(rl_store, query_does_not_insert)
{
    struct rl_store *s = rl_store_new(NULL);
    struct rl_rule r = mk(RL_SLIDING_LOG, 1, 5, S, RL_FULL_EVICT);
    struct rl_decision d;
    cr_assert_eq(rl_store_check(s, &r, "q", 1, T0, 0, &d), RL_STORE_OK);
    cr_assert(d.allowed);
    cr_assert_eq(d.remaining, 5);
    cr_assert_eq(d.reset_us, S);
    cr_assert_eq(stats(s).keys, 0);
    ok(s, &r, "q", T0);
    cr_assert_eq(rl_store_check(s, &r, "q", 1, T0, 0, &d), RL_STORE_OK);
    cr_assert_eq(d.remaining, 4);
    rl_store_free(s);
}

Test(rl_store, forget)
{
    struct rl_store *s = rl_store_new(NULL);
    struct rl_rule r = mk(RL_FIXED_WINDOW, 3, 1, 60 * S, RL_FULL_EVICT);
    cr_assert(ok(s, &r, "k", T0));
    cr_assert_not(ok(s, &r, "k", T0));
    cr_assert_not(rl_store_forget(s, 4, "k", 1));
    cr_assert(rl_store_forget(s, 3, "k", 1));
    cr_assert_not(rl_store_forget(s, 3, "k", 1));
    cr_assert(ok(s, &r, "k", T0));
    rl_store_free(s);
}

Test(rl_store, small_max_keys_lowers_shards)
{
    struct rl_store *s = store(10, 0, 64);
    cr_assert_eq(stats(s).max_keys, 8); /* 8 shards of 1 */
    rl_store_free(s);
}

/* ---- threads -------------------------------------------------------- */

#define NTHREADS 8
#define NKEYS 100

struct thr {
    struct rl_store *s;
    const struct rl_rule *r;
    pthread_barrier_t *bar;
    uint64_t now;
    int rounds;
    int admitted[NKEYS];
};

static void *hammer(void *p)
{
    struct thr *a = p;
    char key[16];
    pthread_barrier_wait(a->bar);
    for (int round = 0; round < a->rounds; round++) {
        for (int k = 0; k < NKEYS; k++) {
            int n = snprintf(key, sizeof key, "key-%d", (k * 7 + round) % NKEYS);
            struct rl_decision d;
            rl_store_check(a->s, a->r, key, (size_t)n, a->now, 1, &d);
            if (d.allowed)
                a->admitted[(k * 7 + round) % NKEYS]++;
        }
    }
    return NULL;
}

/* Every algorithm through the store: 8 threads at one instant on 100
 * keys, 8 x 40 tries per key; each key admits exactly its capacity. */
static void exact_under_threads(enum rl_algo algo, uint64_t limit)
{
    struct rl_store *s = rl_store_new(NULL);
    struct rl_rule r = mk(algo, 1, limit, S, RL_FULL_EVICT);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    struct thr args[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (struct thr){ .s = s, .r = &r, .bar = &bar, .now = T0 + 10, .rounds = 40 };
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int k = 0; k < NKEYS; k++) {
        int total = 0;
        for (int i = 0; i < NTHREADS; i++)
            total += args[i].admitted[k];
        cr_assert_eq(total, (int)r.capacity, "%s key %d admitted %d, capacity %llu",
                     rl_algo_name(algo), k, total, (unsigned long long)r.capacity);
    }
    pthread_barrier_destroy(&bar);
    rl_store_free(s);
}

Test(rl_store_threads, exact_token_bucket) { exact_under_threads(RL_TOKEN_BUCKET, 100); }
Test(rl_store_threads, exact_leaky_bucket) { exact_under_threads(RL_LEAKY_BUCKET, 1); }
Test(rl_store_threads, exact_fixed_window) { exact_under_threads(RL_FIXED_WINDOW, 77); }
Test(rl_store_threads, exact_sliding_log) { exact_under_threads(RL_SLIDING_LOG, 150); }
Test(rl_store_threads, exact_sliding_counter) { exact_under_threads(RL_SLIDING_COUNTER, 33); }

struct churn {
    struct rl_store *s;
    const struct rl_rule *rules[2];
    int id;
    atomic_bool *stop;
};

static void *churn_worker(void *p)
{
    struct churn *c = p;
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(c->id + 1);
    char key[24];
    for (int i = 0; i < 40000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int n = snprintf(key, sizeof key, "c%llu", (unsigned long long)(x % 5000));
        struct rl_decision d;
        rl_store_check(c->s, c->rules[x & 1], key, (size_t)n, T0 + (uint64_t)i * 50, 1, &d);
    }
    return NULL;
}

static void *sweeper(void *p)
{
    struct churn *c = p;
    uint64_t t = T0;
    while (!atomic_load(c->stop)) {
        rl_store_sweep(c->s, t);
        t += 100 * MS;
    }
    return NULL;
}

/* Many more keys than room, two rules with different state sizes,
 * evictions and sweeps racing the checks: the bounds hold and the
 * sanitizers see no use after free. */
Test(rl_store_threads, churn_with_evictions_and_sweeps)
{
    struct rl_store *s = store(256, 0, 64);
    struct rl_rule tb = mk(RL_TOKEN_BUCKET, 1, 5, S, RL_FULL_EVICT);
    struct rl_rule lg = mk(RL_SLIDING_LOG, 2, 50, S, RL_FULL_EVICT);
    atomic_bool stop;
    atomic_init(&stop, false);
    struct churn args[NTHREADS + 1];
    pthread_t th[NTHREADS + 1];
    for (int i = 0; i <= NTHREADS; i++) {
        args[i] = (struct churn){ .s = s, .rules = { &tb, &lg }, .id = i, .stop = &stop };
        pthread_create(&th[i], NULL, i == NTHREADS ? sweeper : churn_worker, &args[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, true);
    pthread_join(th[NTHREADS], NULL);
    struct rl_store_stats st = stats(s);
    cr_assert_leq(st.keys, 256);
    cr_assert_leq(st.bytes, 256 * rl_store_entry_bytes(&lg, 6));
    cr_assert_gt(st.evicted_lru + st.evicted_expired + st.swept, 0);
    rl_store_free(s);
}
