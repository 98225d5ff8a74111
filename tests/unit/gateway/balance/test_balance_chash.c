/* Unit tests for consistent hashing (src/gateway/balance/balance.c):
 * the same key on the same server, the spread of 100k keys, how few keys
 * move when a server leaves or joins, exclusions, and bounded loads. */
#include "test_balance.h"

/* ------------------------------------------------------ consistent hash */

#define NKEYS 100000

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
