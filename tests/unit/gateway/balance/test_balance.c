/* Unit tests for the load-balancing algorithms (src/gateway/balance/balance.c):
 * distribution of each algorithm, unusable and excluded servers,
 * consistent-hashing stability and bounded loads, slow start, and
 * concurrent picks from several threads. */
#include <criterion/criterion.h>

#include "gateway/balance/balance.h"
#include "gateway/balance/backend.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The servers made here share one slot numbering (as a process's do). */
static struct gw_servers servers = {.retired_lock = PTHREAD_MUTEX_INITIALIZER};

#define NOW 1000000u /* an arbitrary "now" in ms, well past 0 */
#define MAXS 16

static struct gw_server *mk_server(int idx, int weight)
{
    char addr[64];
    snprintf(addr, sizeof addr, "10.0.%d.%d:8080", idx / 200, idx % 200 + 1);
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr(addr, &a, &err), 0, "parse %s: %s", addr, err ? err : "");
    struct gw_server *s = gw_server_new(&servers, "svc", &a, weight);
    cr_assert_not_null(s);
    return s;
}

/* Builds n servers with weights w[] (NULL: all 1), numbered from first. */
static void mk_pool(struct gw_server **s, size_t n, const int *w, int first)
{
    for (size_t i = 0; i < n; i++)
        s[i] = mk_server(first + (int)i, w ? w[i] : 1);
}

static void free_pool(struct gw_server **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gw_server_unref(s[i]);
}

static size_t index_of(struct gw_server **s, size_t n, const struct gw_server *x)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == x)
            return i;
    cr_assert_fail("picked a server outside the pool");
    return SIZE_MAX;
}

/* Picks count times with no exclusions, tallying into counts[]. */
static void tally(struct gw_lb *lb, struct gw_server **s, size_t n, size_t count, uint64_t now,
                  size_t *counts)
{
    memset(counts, 0, n * sizeof *counts);
    for (size_t k = 0; k < count; k++) {
        struct gw_server *p = gw_lb_pick(lb, 0, now, NULL, 0);
        cr_assert_not_null(p);
        counts[index_of(s, n, p)]++;
    }
}

static void set_inflight(struct gw_server *s, int v)
{
    atomic_store(&s->inflight, v);
}

/* ---------------------------------------------------------------- names */

Test(balance_names, parse_and_name_round_trip)
{
    const char *names[] = {"round_robin", "weighted", "least_conn", "two_random",
                           "consistent_hash"};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(gw_lb_parse_algo(names[i]), i);
        cr_assert_str_eq(gw_lb_algo_name((enum gw_lb_algo)i), names[i]);
    }
    cr_assert_eq(gw_lb_parse_algo("random"), -1);
    cr_assert_eq(gw_lb_parse_algo(""), -1);
    cr_assert_eq(gw_lb_parse_algo("Round_Robin"), -1);
    cr_assert_eq(gw_lb_parse_algo(NULL), -1);
    cr_assert_str_eq(gw_lb_algo_name((enum gw_lb_algo)42), "unknown");
}

Test(balance_names, hash_is_xxh3_and_stable)
{
    cr_assert_eq(gw_lb_hash("user-1", 6), gw_lb_hash("user-1", 6));
    cr_assert_neq(gw_lb_hash("user-1", 6), gw_lb_hash("user-2", 6));
    /* XXH3_64bits of the empty input, a published test vector. */
    cr_assert_eq(gw_lb_hash("", 0), 0x2D06800538D394C2ULL);
}

Test(balance_names, empty_pool_picks_null)
{
    for (int a = 0; a < 5; a++) {
        struct gw_lb *lb = gw_lb_new((enum gw_lb_algo)a, NULL, 0, NULL);
        cr_assert_eq(gw_lb_algo(lb), (enum gw_lb_algo)a);
        cr_assert_null(gw_lb_pick(lb, 123, NOW, NULL, 0));
        gw_lb_free(lb);
    }
    gw_lb_free(NULL);
}

/* ---------------------------------------------------------- round robin */

Test(balance_rr, exact_rotation)
{
    struct gw_server *s[4];
    int w[4] = {5, 1, 1, 3}; /* round robin ignores weights */
    mk_pool(s, 4, w, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 4, NULL);
    for (int k = 0; k < 40; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, NOW, NULL, 0), s[k % 4], "pick %d", k);
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_rr, unusable_get_nothing_and_come_back)
{
    struct gw_server *s[4];
    mk_pool(s, 4, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 4, NULL);
    size_t c[4];

    atomic_store(&s[0]->health, GW_DOWN);
    atomic_store(&s[1]->draining, true);
    atomic_store(&s[2]->down_until_ms, NOW + 500); /* passively ejected */
    tally(lb, s, 4, 100, NOW, c);
    cr_assert_eq(c[0] + c[1] + c[2], 0);
    cr_assert_eq(c[3], 100);

    /* Ejection expires on its own; the others come back when reset. */
    tally(lb, s, 4, 100, NOW + 500, c);
    cr_assert_eq(c[2], 50);
    cr_assert_eq(c[3], 50);

    atomic_store(&s[0]->health, GW_UP);
    atomic_store(&s[1]->draining, false);
    tally(lb, s, 4, 400, NOW + 500, c);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(c[i], 100, "server %d got %zu", i, c[i]);

    for (int i = 0; i < 4; i++)
        atomic_store(&s[i]->health, GW_DOWN);
    cr_assert_null(gw_lb_pick(lb, 0, NOW, NULL, 0));
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_rr, exclude_list_honoured)
{
    struct gw_server *s[3];
    mk_pool(s, 3, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 3, NULL);

    struct gw_server *ex1[] = {s[1]};
    for (int k = 0; k < 30; k++)
        cr_assert_neq(gw_lb_pick(lb, 0, NOW, ex1, 1), s[1]);

    struct gw_server *ex2[] = {s[0], s[2]};
    for (int k = 0; k < 30; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, NOW, ex2, 2), s[1]);

    /* Everything excluded: still a usable server rather than NULL. */
    struct gw_server *ex3[] = {s[0], s[1], s[2]};
    atomic_store(&s[0]->health, GW_DOWN);
    for (int k = 0; k < 30; k++) {
        struct gw_server *p = gw_lb_pick(lb, 0, NOW, ex3, 3);
        cr_assert(p == s[1] || p == s[2]);
    }
    gw_lb_free(lb);
    free_pool(s, 3);
}

/* ------------------------------------------------------------- weighted */

static void check_swrr_sequence(const int *w, size_t n, const char *expect_cycle)
{
    struct gw_server *s[MAXS];
    mk_pool(s, n, w, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_WEIGHTED, s, n, NULL);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)w[i];
    cr_assert_eq(strlen(expect_cycle), total);

    size_t cnt[MAXS] = {0};
    double maxdev = 0;
    for (size_t k = 1; k <= total * 50; k++) {
        size_t i = index_of(s, n, gw_lb_pick(lb, 0, NOW, NULL, 0));
        /* The same cycle repeats forever. */
        cr_assert_eq((char)('a' + i), expect_cycle[(k - 1) % total], "pick %zu", k);
        cnt[i]++;
        /* Smoothness: in every prefix, every server is within one pick of
         * its exact share. */
        for (size_t j = 0; j < n; j++) {
            double dev = fabs((double)cnt[j] - (double)k * w[j] / (double)total);
            if (dev > maxdev)
                maxdev = dev;
        }
        if (k % total == 0)
            for (size_t j = 0; j < n; j++)
                cr_assert_eq(cnt[j], (size_t)w[j] * (k / total));
    }
    cr_assert_lt(maxdev, 1.0, "max prefix deviation %f", maxdev);
    gw_lb_free(lb);
    free_pool(s, n);
}

Test(balance_weighted, nginx_sequence_5_1_1)
{
    int w[] = {5, 1, 1};
    check_swrr_sequence(w, 3, "aabacaa");
}

Test(balance_weighted, smooth_for_other_weights)
{
    int w1[] = {3, 2, 1};
    check_swrr_sequence(w1, 3, "abacba");
    int w2[] = {4, 3, 2, 1};
    check_swrr_sequence(w2, 4, "abcabdacba");
    int w3[] = {1, 1, 1, 1, 5};
    check_swrr_sequence(w3, 5, "eaebecede");
}

Test(balance_weighted, unusable_and_excluded)
{
    struct gw_server *s[3];
    int w[] = {5, 1, 1};
    mk_pool(s, 3, w, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_WEIGHTED, s, 3, NULL);
    size_t c[3];

    atomic_store(&s[0]->health, GW_DOWN);
    tally(lb, s, 3, 200, NOW, c);
    cr_assert_eq(c[0], 0);
    cr_assert_eq(c[1], 100);
    cr_assert_eq(c[2], 100);

    atomic_store(&s[0]->health, GW_UP);
    tally(lb, s, 3, 7000, NOW, c);
    cr_assert(c[0] >= 4990 && c[0] <= 5010, "weight 5 got %zu of 7000", c[0]);
    cr_assert(c[1] >= 990 && c[1] <= 1010);

    struct gw_server *ex[] = {s[0]};
    for (int k = 0; k < 50; k++)
        cr_assert_neq(gw_lb_pick(lb, 0, NOW, ex, 1), s[0]);
    struct gw_server *all[] = {s[0], s[1], s[2]};
    cr_assert_not_null(gw_lb_pick(lb, 0, NOW, all, 3));

    atomic_store(&s[1]->draining, true);
    atomic_store(&s[2]->down_until_ms, NOW + 1);
    for (int k = 0; k < 20; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, NOW, ex, 1), s[0]);
    atomic_store(&s[0]->health, GW_DOWN);
    cr_assert_null(gw_lb_pick(lb, 0, NOW, NULL, 0));
    gw_lb_free(lb);
    free_pool(s, 3);
}

/* ----------------------------------------------------------- least conn */

Test(balance_least_conn, prefers_idle_server)
{
    struct gw_server *s[3];
    mk_pool(s, 3, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_LEAST_CONN, s, 3, NULL);
    set_inflight(s[0], 5);
    set_inflight(s[1], 0);
    set_inflight(s[2], 3);
    for (int k = 0; k < 20; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, NOW, NULL, 0), s[1]);

    /* Excluding the idle one leaves the next least loaded. */
    struct gw_server *ex[] = {s[1]};
    for (int k = 0; k < 20; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, NOW, ex, 1), s[2]);

    atomic_store(&s[1]->health, GW_DOWN);
    cr_assert_eq(gw_lb_pick(lb, 0, NOW, NULL, 0), s[2]);
    atomic_store(&s[1]->health, GW_UP);
    cr_assert_eq(gw_lb_pick(lb, 0, NOW, NULL, 0), s[1]);
    gw_lb_free(lb);
    free_pool(s, 3);
}

Test(balance_least_conn, relative_to_weight)
{
    struct gw_server *s[2];
    int w[] = {4, 1};
    mk_pool(s, 2, w, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_LEAST_CONN, s, 2, NULL);
    set_inflight(s[0], 3); /* 0.75 per unit of weight */
    set_inflight(s[1], 1); /* 1.0 */
    cr_assert_eq(gw_lb_pick(lb, 0, NOW, NULL, 0), s[0]);

    /* Requests that never finish settle in proportion to weight. */
    set_inflight(s[0], 0);
    set_inflight(s[1], 0);
    for (int k = 0; k < 500; k++)
        atomic_fetch_add(&gw_lb_pick(lb, 0, NOW, NULL, 0)->inflight, 1);
    cr_assert_eq(atomic_load(&s[0]->inflight), 400);
    cr_assert_eq(atomic_load(&s[1]->inflight), 100);
    gw_lb_free(lb);
    free_pool(s, 2);
}

Test(balance_least_conn, equal_servers_share_round_robin)
{
    struct gw_server *s[3];
    mk_pool(s, 3, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_LEAST_CONN, s, 3, NULL);
    size_t c[3];
    tally(lb, s, 3, 300, NOW, c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(c[i], 100);

    /* With load kept: never more than one apart. */
    for (int k = 0; k < 100; k++) {
        atomic_fetch_add(&gw_lb_pick(lb, 0, NOW, NULL, 0)->inflight, 1);
        int lo = INT32_MAX, hi = 0;
        for (int i = 0; i < 3; i++) {
            int v = atomic_load(&s[i]->inflight);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        cr_assert_leq(hi - lo, 1);
    }
    gw_lb_free(lb);
    free_pool(s, 3);
}

Test(balance_least_conn, all_excluded_or_down)
{
    struct gw_server *s[2];
    mk_pool(s, 2, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_LEAST_CONN, s, 2, NULL);
    set_inflight(s[0], 9);
    struct gw_server *ex[] = {s[0], s[1]};
    cr_assert_eq(gw_lb_pick(lb, 0, NOW, ex, 2), s[1]); /* least loaded of the excluded */
    atomic_store(&s[1]->draining, true);
    cr_assert_eq(gw_lb_pick(lb, 0, NOW, ex, 2), s[0]);
    atomic_store(&s[0]->down_until_ms, NOW + 10);
    cr_assert_null(gw_lb_pick(lb, 0, NOW, ex, 2));
    cr_assert_eq(gw_lb_pick(lb, 0, NOW + 10, NULL, 0), s[0]);
    gw_lb_free(lb);
    free_pool(s, 2);
}

/* ----------------------------------------------------------- two random */

Test(balance_two_random, even_spread_100k)
{
    struct gw_server *s[4];
    mk_pool(s, 4, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_TWO_RANDOM, s, 4, NULL);
    size_t c[4];
    tally(lb, s, 4, 100000, NOW, c);
    for (int i = 0; i < 4; i++)
        cr_assert(fabs((double)c[i] - 25000.0) < 25000.0 * 0.05, "server %d got %zu", i, c[i]);
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_two_random, weight_ratios_within_5_percent)
{
    struct gw_server *s[4];
    int w[] = {1, 2, 3, 4};
    mk_pool(s, 4, w, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_TWO_RANDOM, s, 4, NULL);
    size_t c[4];
    tally(lb, s, 4, 100000, NOW, c);
    for (int i = 0; i < 4; i++) {
        double expect = 100000.0 * w[i] / 10.0;
        cr_assert(fabs((double)c[i] - expect) < expect * 0.05, "weight %d got %zu, want ~%.0f",
                  w[i], c[i], expect);
    }
    /* Ratios against the weight-1 server. */
    for (int i = 1; i < 4; i++) {
        double ratio = (double)c[i] / (double)c[0];
        cr_assert(fabs(ratio - w[i]) < w[i] * 0.05, "ratio %f for weight %d", ratio, w[i]);
    }
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_two_random, loaded_server_loses_every_comparison)
{
    struct gw_server *s[4];
    mk_pool(s, 4, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_TWO_RANDOM, s, 4, NULL);
    set_inflight(s[2], 100);
    size_t c[4];
    tally(lb, s, 4, 20000, NOW, c);
    cr_assert_eq(c[2], 0);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            cr_assert_gt(c[i], 5000);

    /* Requests that never finish: two choices keeps the pool level. */
    set_inflight(s[2], 0);
    for (int k = 0; k < 4000; k++)
        atomic_fetch_add(&gw_lb_pick(lb, 0, NOW, NULL, 0)->inflight, 1);
    for (int i = 0; i < 4; i++) {
        int v = atomic_load(&s[i]->inflight);
        cr_assert(v >= 990 && v <= 1010, "server %d inflight %d", i, v);
    }
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_two_random, unusable_and_excluded)
{
    struct gw_server *s[5];
    mk_pool(s, 5, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_TWO_RANDOM, s, 5, NULL);
    size_t c[5];

    atomic_store(&s[0]->health, GW_DOWN);
    atomic_store(&s[1]->draining, true);
    atomic_store(&s[2]->down_until_ms, NOW + 1000);
    tally(lb, s, 5, 10000, NOW, c);
    cr_assert_eq(c[0] + c[1] + c[2], 0);
    cr_assert_gt(c[3], 4000);
    cr_assert_gt(c[4], 4000);

    /* One usable, not excluded: always that one. */
    struct gw_server *ex[] = {s[3]};
    for (int k = 0; k < 1000; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, NOW, ex, 1), s[4]);
    /* All usable ones excluded: still one of them. */
    struct gw_server *ex2[] = {s[3], s[4]};
    for (int k = 0; k < 1000; k++) {
        struct gw_server *p = gw_lb_pick(lb, 0, NOW, ex2, 2);
        cr_assert(p == s[3] || p == s[4]);
    }

    atomic_store(&s[0]->health, GW_UP);
    atomic_store(&s[1]->draining, false);
    tally(lb, s, 5, 10000, NOW + 1000, c);
    for (int i = 0; i < 5; i++)
        cr_assert_gt(c[i], 1500, "server %d got %zu after coming back", i, c[i]);

    for (int i = 0; i < 5; i++)
        atomic_store(&s[i]->health, GW_DOWN);
    cr_assert_null(gw_lb_pick(lb, 0, NOW, NULL, 0));
    gw_lb_free(lb);
    free_pool(s, 5);
}

/* ------------------------------------------------------ consistent hash */

#define NKEYS 100000

static uint64_t key_hash(int k)
{
    char key[32];
    int len = snprintf(key, sizeof key, "user-%d", k);
    return gw_lb_hash(key, (size_t)len);
}

/* map[k] = pool index picked for key k. */
static void map_keys(struct gw_lb *lb, struct gw_server **s, size_t n, uint64_t now,
                     uint16_t *map)
{
    for (int k = 0; k < NKEYS; k++) {
        struct gw_server *p = gw_lb_pick(lb, key_hash(k), now, NULL, 0);
        cr_assert_not_null(p);
        map[k] = (uint16_t)index_of(s, n, p);
    }
}

Test(balance_chash, same_key_same_server)
{
    struct gw_server *s[5];
    mk_pool(s, 5, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 5, NULL);
    struct gw_lb *lb2 = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 5, NULL);
    for (int k = 0; k < 1000; k++) {
        uint64_t h = key_hash(k);
        struct gw_server *p = gw_lb_pick(lb, h, NOW, NULL, 0);
        for (int r = 0; r < 5; r++)
            cr_assert_eq(gw_lb_pick(lb, h, NOW + (uint64_t)r, NULL, 0), p);
        cr_assert_eq(gw_lb_pick(lb2, h, NOW, NULL, 0), p); /* rebuilt ring agrees */
    }

    /* The ring does not depend on the order servers are listed in. */
    struct gw_server *rev[5] = {s[4], s[3], s[2], s[1], s[0]};
    struct gw_lb *lb3 = gw_lb_new(GW_LB_CONSISTENT_HASH, rev, 5, NULL);
    for (int k = 0; k < 1000; k++)
        cr_assert_eq(gw_lb_pick(lb3, key_hash(k), NOW, NULL, 0),
                     gw_lb_pick(lb, key_hash(k), NOW, NULL, 0));
    gw_lb_free(lb);
    gw_lb_free(lb2);
    gw_lb_free(lb3);
    free_pool(s, 5);
}

Test(balance_chash, spread_of_100k_keys)
{
    struct gw_server *s[10];
    mk_pool(s, 10, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 10, NULL);
    uint16_t *map = calloc(NKEYS, sizeof *map);
    map_keys(lb, s, 10, NOW, map);
    size_t c[10] = {0};
    for (int k = 0; k < NKEYS; k++)
        c[map[k]]++;
    /* 100 points per server: each share within 20% of the mean (the ring
     * itself varies by about 10% per server at this vnode count). */
    for (int i = 0; i < 10; i++)
        cr_assert(c[i] > 8000 && c[i] < 12000, "server %d got %zu of 100000 keys", i, c[i]);

    /* Weight 3 owns three times the points, so about three times the keys. */
    int w[] = {3, 1, 1, 1};
    struct gw_server *ws[4];
    mk_pool(ws, 4, w, 100);
    struct gw_lb *wlb = gw_lb_new(GW_LB_CONSISTENT_HASH, ws, 4, NULL);
    map_keys(wlb, ws, 4, NOW, map);
    size_t wc[4] = {0};
    for (int k = 0; k < NKEYS; k++)
        wc[map[k]]++;
    cr_assert(wc[0] > 45000 && wc[0] < 55000, "weight 3 of 6 got %zu keys", wc[0]);
    gw_lb_free(wlb);
    free_pool(ws, 4);
    free(map);
    gw_lb_free(lb);
    free_pool(s, 10);
}

Test(balance_chash, removal_moves_only_the_removed_servers_keys)
{
    struct gw_server *s[10];
    mk_pool(s, 10, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 10, NULL);
    uint16_t *before = calloc(NKEYS, sizeof *before), *after = calloc(NKEYS, sizeof *after);
    map_keys(lb, s, 10, NOW, before);

    /* Removed from the configuration: a new ring without server 3. */
    struct gw_server *rest[9];
    for (int i = 0, j = 0; i < 10; i++)
        if (i != 3)
            rest[j++] = s[i];
    struct gw_lb *lb9 = gw_lb_new(GW_LB_CONSISTENT_HASH, rest, 9, NULL);
    size_t moved = 0;
    size_t spread[10] = {0};
    for (int k = 0; k < NKEYS; k++) {
        struct gw_server *p = gw_lb_pick(lb9, key_hash(k), NOW, NULL, 0);
        after[k] = (uint16_t)index_of(s, 10, p);
        if (before[k] != 3)
            cr_assert_eq(after[k], before[k], "key %d moved off a server that stayed", k);
        else {
            moved++;
            spread[after[k]]++;
        }
    }
    cr_assert_leq(moved, NKEYS / 10 + NKEYS / 40, "moved %zu of %d keys", moved, NKEYS);
    /* The orphaned keys are shared out, not dumped on one neighbour. */
    for (int i = 0; i < 10; i++)
        if (i != 3)
            cr_assert_lt(spread[i], moved / 3, "server %d took %zu of %zu", i, spread[i], moved);

    /* Marked down instead of removed: the same walk, the same result. */
    atomic_store(&s[3]->health, GW_DOWN);
    for (int k = 0; k < NKEYS; k++)
        cr_assert_eq(index_of(s, 10, gw_lb_pick(lb, key_hash(k), NOW, NULL, 0)), after[k]);

    /* Back up: everything returns home. */
    atomic_store(&s[3]->health, GW_UP);
    for (int k = 0; k < NKEYS; k += 7)
        cr_assert_eq(index_of(s, 10, gw_lb_pick(lb, key_hash(k), NOW, NULL, 0)), before[k]);

    free(before);
    free(after);
    gw_lb_free(lb);
    gw_lb_free(lb9);
    free_pool(s, 10);
}

Test(balance_chash, join_moves_at_most_one_nth)
{
    struct gw_server *s[11];
    mk_pool(s, 11, NULL, 0);
    struct gw_lb *lb10 = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 10, NULL);
    struct gw_lb *lb11 = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 11, NULL);
    uint16_t *before = calloc(NKEYS, sizeof *before);
    map_keys(lb10, s, 11, NOW, before);
    size_t moved = 0;
    for (int k = 0; k < NKEYS; k++) {
        size_t now_on = index_of(s, 11, gw_lb_pick(lb11, key_hash(k), NOW, NULL, 0));
        if (now_on != before[k]) {
            cr_assert_eq(now_on, 10, "key %d moved between old servers", k);
            moved++;
        }
    }
    cr_assert_gt(moved, NKEYS / 11 / 2);
    cr_assert_leq(moved, NKEYS / 11 + NKEYS / 40, "moved %zu of %d keys", moved, NKEYS);
    free(before);
    gw_lb_free(lb10);
    gw_lb_free(lb11);
    free_pool(s, 11);
}

Test(balance_chash, exclude_and_unusable)
{
    struct gw_server *s[4];
    mk_pool(s, 4, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 4, NULL);
    for (int k = 0; k < 2000; k++) {
        uint64_t h = key_hash(k);
        struct gw_server *home = gw_lb_pick(lb, h, NOW, NULL, 0);
        struct gw_server *ex[] = {home};
        struct gw_server *second = gw_lb_pick(lb, h, NOW, ex, 1);
        cr_assert_not_null(second);
        cr_assert_neq(second, home);
        /* A retry is as sticky as the first try. */
        cr_assert_eq(gw_lb_pick(lb, h, NOW, ex, 1), second);
    }
    struct gw_server *all[] = {s[0], s[1], s[2], s[3]};
    atomic_store(&s[0]->draining, true);
    atomic_store(&s[1]->down_until_ms, NOW + 1);
    atomic_store(&s[2]->health, GW_DOWN);
    for (int k = 0; k < 100; k++)
        cr_assert_eq(gw_lb_pick(lb, key_hash(k), NOW, all, 4), s[3]);
    atomic_store(&s[3]->health, GW_DOWN);
    cr_assert_null(gw_lb_pick(lb, key_hash(1), NOW, NULL, 0));
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_chash, bounded_load_caps_hot_key)
{
    struct gw_server *s[4];
    mk_pool(s, 4, NULL, 0);
    struct gw_lb_opts o = {.vnodes = 100, .bound_load = 1.25};
    struct gw_lb *lb = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 4, &o);
    struct gw_lb *plain = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 4, NULL);
    uint64_t hot = key_hash(42);
    struct gw_server *home = gw_lb_pick(lb, hot, NOW, NULL, 0);
    cr_assert_eq(home, gw_lb_pick(plain, hot, NOW, NULL, 0)); /* idle: same as unbounded */

    /* 1000 concurrent requests for one key that never finish. */
    int total = 0;
    for (int k = 0; k < 1000; k++) {
        struct gw_server *p = gw_lb_pick(lb, hot, NOW, NULL, 0);
        int cap = (int)ceil(1.25 * (total + 1) / 4.0);
        cr_assert_leq(atomic_load(&p->inflight) + 1, cap, "pick %d over the cap", k);
        atomic_fetch_add(&p->inflight, 1);
        total++;
    }
    int cap = (int)ceil(1.25 * 1000 / 4.0);
    for (int i = 0; i < 4; i++)
        cr_assert_leq(atomic_load(&s[i]->inflight), cap);
    cr_assert_geq(atomic_load(&home->inflight), cap - 1, "the home server fills up first");

    /* Without the bound, the hot key's server takes everything. */
    for (int k = 0; k < 100; k++)
        cr_assert_eq(gw_lb_pick(plain, hot, NOW, NULL, 0), home);

    /* When the load drains away the key goes home again. */
    for (int i = 0; i < 4; i++)
        set_inflight(s[i], 0);
    cr_assert_eq(gw_lb_pick(lb, hot, NOW, NULL, 0), home);
    gw_lb_free(lb);
    gw_lb_free(plain);
    free_pool(s, 4);
}

Test(balance_chash, bounded_load_with_spread_keys)
{
    struct gw_server *s[8];
    mk_pool(s, 8, NULL, 0);
    struct gw_lb_opts o = {.bound_load = 1.25};
    struct gw_lb *lb = gw_lb_new(GW_LB_CONSISTENT_HASH, s, 8, &o);
    for (int k = 0; k < 8000; k++) {
        struct gw_server *p = gw_lb_pick(lb, key_hash(k % 50), NOW, NULL, 0);
        atomic_fetch_add(&p->inflight, 1);
    }
    int cap = (int)ceil(1.25 * 8000 / 8.0);
    for (int i = 0; i < 8; i++)
        cr_assert_leq(atomic_load(&s[i]->inflight), cap, "server %d", i);
    gw_lb_free(lb);
    free_pool(s, 8);
}

/* ----------------------------------------------------------- slow start */

Test(balance_slow_start, effective_weight_ramps)
{
    struct gw_server *s = mk_server(0, 4);
    cr_assert_eq(gw_lb_effective_weight(s, 0, NOW), 4000);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW), 4000); /* up_since 0: long ago */

    atomic_store(&s->up_since_ms, NOW);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW), 400); /* the floor */
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 500), 400);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 2500), 1000);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 5000), 2000);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 10000), 4000);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 99999), 4000);
    cr_assert_eq(gw_lb_effective_weight(s, 0, NOW), 4000);

    /* The end of a passive ejection restarts the ramp. */
    atomic_store(&s->up_since_ms, 0);
    atomic_store(&s->down_until_ms, NOW + 1000);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 1000), 400);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 6000), 2000);
    cr_assert_eq(gw_lb_effective_weight(s, 10000, NOW + 11000), 4000);
    gw_server_unref(s);
}

Test(balance_slow_start, weighted_share_ramps)
{
    struct gw_server *s[2];
    mk_pool(s, 2, NULL, 0);
    struct gw_lb_opts o = {.slow_start_ms = 10000};
    struct gw_lb *lb = gw_lb_new(GW_LB_WEIGHTED, s, 2, &o);
    atomic_store(&s[1]->up_since_ms, NOW);
    size_t c[2];

    /* 1000 : 100, then 1000 : 500, then even. */
    tally(lb, s, 2, 11000, NOW, c);
    cr_assert(c[1] >= 995 && c[1] <= 1005, "floor share %zu of 11000", c[1]);
    tally(lb, s, 2, 3000, NOW + 5000, c);
    cr_assert(c[1] >= 995 && c[1] <= 1005, "half share %zu of 3000", c[1]);
    tally(lb, s, 2, 2000, NOW + 10000, c);
    cr_assert(c[1] >= 995 && c[1] <= 1005, "full share %zu of 2000", c[1]);

    /* Monotonic ramp, second by second. */
    size_t prev = 0;
    for (uint64_t t = 0; t <= 10000; t += 1000) {
        tally(lb, s, 2, 2000, NOW + t, c);
        cr_assert_geq(c[1] + 2, prev, "share fell at %lu ms", (unsigned long)t);
        prev = c[1];
    }
    gw_lb_free(lb);
    free_pool(s, 2);
}

Test(balance_slow_start, two_random_share_ramps)
{
    struct gw_server *s[2];
    mk_pool(s, 2, NULL, 0);
    struct gw_lb_opts o = {.slow_start_ms = 10000};
    struct gw_lb *lb = gw_lb_new(GW_LB_TWO_RANDOM, s, 2, &o);
    atomic_store(&s[1]->up_since_ms, NOW);
    size_t c[2];
    /* Two servers, both idle: the first draw wins, so shares follow the
     * effective weights: 1/11, 1/3, 1/2. */
    tally(lb, s, 2, 100000, NOW, c);
    cr_assert(fabs((double)c[1] - 100000.0 / 11) < 100000.0 / 11 * 0.05, "got %zu", c[1]);
    tally(lb, s, 2, 100000, NOW + 5000, c);
    cr_assert(fabs((double)c[1] - 100000.0 / 3) < 100000.0 / 3 * 0.05, "got %zu", c[1]);
    tally(lb, s, 2, 100000, NOW + 10000, c);
    cr_assert(fabs((double)c[1] - 50000.0) < 50000.0 * 0.05, "got %zu", c[1]);
    gw_lb_free(lb);
    free_pool(s, 2);
}

Test(balance_slow_start, least_conn_share_ramps)
{
    struct gw_server *s[2];
    mk_pool(s, 2, NULL, 0);
    struct gw_lb_opts o = {.slow_start_ms = 10000};
    struct gw_lb *lb = gw_lb_new(GW_LB_LEAST_CONN, s, 2, &o);
    atomic_store(&s[1]->up_since_ms, NOW);
    for (int k = 0; k < 1100; k++)
        atomic_fetch_add(&gw_lb_pick(lb, 0, NOW, NULL, 0)->inflight, 1);
    int n1 = atomic_load(&s[1]->inflight);
    cr_assert(n1 >= 99 && n1 <= 101, "slow-starting server holds %d of 1100", n1);

    set_inflight(s[0], 0);
    set_inflight(s[1], 0);
    for (int k = 0; k < 1000; k++)
        atomic_fetch_add(&gw_lb_pick(lb, 0, NOW + 10000, NULL, 0)->inflight, 1);
    cr_assert_eq(atomic_load(&s[1]->inflight), 500);
    gw_lb_free(lb);
    free_pool(s, 2);
}

/* ---------------------------------------------------------- concurrency */

#define NTHREADS 8

struct picker {
    struct gw_lb *lb;
    struct gw_server **s;
    size_t n;
    int picks;
    bool hold;           /* bump inflight around each pick, as the proxy does */
    size_t counts[MAXS]; /* per thread, summed after join */
    size_t nulls;
};

static void *picker_main(void *arg)
{
    struct picker *p = arg;
    for (int k = 0; k < p->picks; k++) {
        struct gw_server *ex[1] = {p->s[k % p->n]};
        size_t nex = (k % 3 == 0) ? 1 : 0; /* some picks act as retries */
        struct gw_server *srv = gw_lb_pick(p->lb, key_hash(k), NOW, ex, nex);
        if (!srv) {
            p->nulls++;
            continue;
        }
        size_t i = 0;
        while (i < p->n && p->s[i] != srv)
            i++;
        if (i < p->n)
            p->counts[i]++;
        if (p->hold) {
            atomic_fetch_add(&srv->inflight, 1);
            gw_lb_pick(p->lb, key_hash(k + 1), NOW, NULL, 0); /* work while holding it */
            atomic_fetch_sub(&srv->inflight, 1);
        }
    }
    return NULL;
}

static void run_pickers(struct gw_lb *lb, struct gw_server **s, size_t n, int picks, bool hold,
                        size_t *totals, size_t *nulls)
{
    pthread_t th[NTHREADS];
    struct picker *pk = calloc(NTHREADS, sizeof *pk);
    for (int t = 0; t < NTHREADS; t++) {
        pk[t] = (struct picker){.lb = lb, .s = s, .n = n, .picks = picks, .hold = hold};
        cr_assert_eq(pthread_create(&th[t], NULL, picker_main, &pk[t]), 0);
    }
    memset(totals, 0, n * sizeof *totals);
    *nulls = 0;
    for (int t = 0; t < NTHREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
        for (size_t i = 0; i < n; i++)
            totals[i] += pk[t].counts[i];
        *nulls += pk[t].nulls;
    }
    free(pk);
}

static void *rr_only_main(void *arg)
{
    struct picker *p = arg;
    for (int k = 0; k < p->picks; k++) {
        struct gw_server *srv = gw_lb_pick(p->lb, 0, NOW, NULL, 0);
        size_t i = 0;
        while (i < p->n && p->s[i] != srv)
            i++;
        if (i < p->n)
            p->counts[i]++;
        else
            p->nulls++;
    }
    return NULL;
}

static void run_plain_pickers(struct gw_lb *lb, struct gw_server **s, size_t n, int picks,
                              size_t *totals)
{
    pthread_t th[NTHREADS];
    struct picker *pk = calloc(NTHREADS, sizeof *pk);
    for (int t = 0; t < NTHREADS; t++) {
        pk[t] = (struct picker){.lb = lb, .s = s, .n = n, .picks = picks};
        cr_assert_eq(pthread_create(&th[t], NULL, rr_only_main, &pk[t]), 0);
    }
    memset(totals, 0, n * sizeof *totals);
    for (int t = 0; t < NTHREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
        cr_assert_eq(pk[t].nulls, 0);
        for (size_t i = 0; i < n; i++)
            totals[i] += pk[t].counts[i];
    }
    free(pk);
}

Test(balance_concurrency, round_robin_totals_exact)
{
    struct gw_server *s[4];
    mk_pool(s, 4, NULL, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 4, NULL);
    size_t tot[4];
    run_plain_pickers(lb, s, 4, 50000, tot);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(tot[i], NTHREADS * 50000 / 4, "server %d got %zu", i, tot[i]);
    gw_lb_free(lb);
    free_pool(s, 4);
}

Test(balance_concurrency, weighted_totals_exact)
{
    struct gw_server *s[3];
    int w[] = {5, 1, 1};
    mk_pool(s, 3, w, 0);
    struct gw_lb *lb = gw_lb_new(GW_LB_WEIGHTED, s, 3, NULL);
    size_t tot[3];
    run_plain_pickers(lb, s, 3, 7000, tot); /* 8 * 7000 picks = 8000 cycles */
    cr_assert_eq(tot[0], 40000);
    cr_assert_eq(tot[1], 8000);
    cr_assert_eq(tot[2], 8000);
    gw_lb_free(lb);
    free_pool(s, 3);
}

Test(balance_concurrency, every_algorithm_under_contention)
{
    struct gw_server *s[6];
    int w[] = {1, 2, 3, 1, 2, 3};
    mk_pool(s, 6, w, 0);
    struct gw_lb_opts o = {.bound_load = 1.25, .slow_start_ms = 1000};
    atomic_store(&s[5]->up_since_ms, NOW - 500);
    for (int a = 0; a < 5; a++) {
        struct gw_lb *lb = gw_lb_new((enum gw_lb_algo)a, s, 6, &o);
        size_t tot[6], nulls;
        run_pickers(lb, s, 6, 20000, true, tot, &nulls);
        size_t sum = 0;
        for (int i = 0; i < 6; i++)
            sum += tot[i];
        cr_assert_eq(nulls, 0, "%s returned NULL", gw_lb_algo_name((enum gw_lb_algo)a));
        cr_assert_eq(sum, NTHREADS * 20000);
        for (int i = 0; i < 6; i++)
            cr_assert_eq(atomic_load(&s[i]->inflight), 0);
        gw_lb_free(lb);
    }
    free_pool(s, 6);
}

struct flapper {
    struct gw_server *s;
    atomic_bool stop;
};

static void *flapper_main(void *arg)
{
    struct flapper *f = arg;
    while (!atomic_load(&f->stop)) {
        atomic_store(&f->s->health, GW_DOWN);
        atomic_store(&f->s->health, GW_UP);
    }
    return NULL;
}

Test(balance_concurrency, picks_while_health_flaps)
{
    struct gw_server *s[3];
    mk_pool(s, 3, NULL, 0);
    for (int a = 0; a < 5; a++) {
        struct gw_lb *lb = gw_lb_new((enum gw_lb_algo)a, s, 3, NULL);
        struct flapper f = {.s = s[0]};
        atomic_init(&f.stop, false);
        pthread_t ft;
        cr_assert_eq(pthread_create(&ft, NULL, flapper_main, &f), 0);
        size_t tot[3], nulls;
        run_pickers(lb, s, 3, 10000, false, tot, &nulls);
        atomic_store(&f.stop, true);
        pthread_join(ft, NULL);
        cr_assert_eq(nulls, 0);
        cr_assert_eq(tot[0] + tot[1] + tot[2], NTHREADS * 10000);
        gw_lb_free(lb);
    }
    free_pool(s, 3);
}
