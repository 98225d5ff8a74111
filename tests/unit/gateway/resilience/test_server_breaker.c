/* Unit tests for per-server circuit breakers: gw_breaker_admits() (the
 * lock-free question the balancer asks), the balancer skipping servers
 * whose breaker would refuse and letting half-open probes through, the
 * choice of one attempt's server (balance/pick.c: tried servers avoided,
 * in-flight place and breaker hold taken) and its settling once, the
 * transition counters and slow-start restart on the server, and
 * gw_server_breaker_config() keeping, replacing and removing breakers.
 * Time is passed in (milliseconds for the balancer, microseconds for the
 * breaker); nothing sleeps. */
#include <criterion/criterion.h>

#include "gateway/balance/balance.h"
#include "gateway/resilience/breaker.h"
#include "gateway/balance/backend.h"
#include "gateway/balance/pick.h"

#include <stdio.h>
#include <string.h>

/* The servers made here share one slot numbering (as a process's do). */
static struct gw_servers servers = {.retired_lock = PTHREAD_MUTEX_INITIALIZER};

#define T0_MS 1000000ull /* an arbitrary start, in ms */
#define US(ms) ((ms) * 1000ull)

static struct gw_server *mk_server(int idx)
{
    char addr[64];
    snprintf(addr, sizeof addr, "10.1.0.%d:8080", idx + 1);
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr(addr, &a, &err), 0);
    return gw_server_new(&servers, "svc", &a, 1);
}

/* consecutive_failures 3, open 1 s, probes as given; rates off. */
static struct gw_breaker_cfg bcfg(uint32_t probes)
{
    struct gw_breaker_cfg c;
    gw_breaker_cfg_default(&c);
    c.consecutive_failures = 3;
    c.failure_rate_pct = 0;
    c.slow_rate_pct = 0;
    c.open_wait_us = US(1000);
    c.half_open_probes = probes;
    return c;
}

static struct gw_breaker *brk(struct gw_server *s)
{
    return atomic_load(&s->breaker);
}

/* Trips s's breaker at now_ms with three allowed, failed calls. */
static void trip(struct gw_server *s, uint64_t now_ms)
{
    for (int i = 0; i < 3; i++) {
        cr_assert(gw_breaker_allow(brk(s), US(now_ms)));
        gw_breaker_record(brk(s), US(now_ms), false, 1000);
    }
    cr_assert_eq(gw_breaker_state(brk(s)), GW_BREAKER_OPEN);
}

/* Picks n times at now_ms; counts[i] = picks of s[i]. */
static void tally(struct gw_lb *lb, struct gw_server **s, size_t ns, int n, uint64_t now_ms, int *counts)
{
    memset(counts, 0, ns * sizeof *counts);
    for (int k = 0; k < n; k++) {
        struct gw_server *p = gw_lb_pick(lb, (uint64_t)k * 0x9e3779b97f4a7c15ull, now_ms, NULL, 0);
        cr_assert_not_null(p);
        for (size_t i = 0; i < ns; i++)
            if (p == s[i])
                counts[i]++;
    }
}

Test(breaker_admits, follows_allow)
{
    struct gw_breaker_cfg c = bcfg(2);
    struct gw_breaker *b = gw_breaker_new(&c, US(T0_MS));
    cr_assert(gw_breaker_admits(b, US(T0_MS)));
    for (int i = 0; i < 3; i++) {
        gw_breaker_allow(b, US(T0_MS));
        gw_breaker_record(b, US(T0_MS), false, 10);
    }
    cr_assert_not(gw_breaker_admits(b, US(T0_MS + 999)));
    cr_assert(gw_breaker_admits(b, US(T0_MS + 1000)), "the wait is over: the next call may probe");
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN, "admits() changes nothing");
    cr_assert(gw_breaker_allow(b, US(T0_MS + 1000)));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_HALF_OPEN);
    cr_assert(gw_breaker_admits(b, US(T0_MS + 1000)), "one probe place left");
    cr_assert(gw_breaker_allow(b, US(T0_MS + 1000)));
    cr_assert_not(gw_breaker_admits(b, US(T0_MS + 1000)), "both probes out");
    gw_breaker_release(b);
    cr_assert(gw_breaker_admits(b, US(T0_MS + 1000)), "a released probe frees its place");
    gw_breaker_free(b);
}

Test(breaker_admits, overdue_probes)
{
    struct gw_breaker_cfg c = bcfg(1);
    c.half_open_timeout_us = US(500);
    struct gw_breaker *b = gw_breaker_new(&c, US(T0_MS));
    for (int i = 0; i < 3; i++) {
        gw_breaker_allow(b, US(T0_MS));
        gw_breaker_record(b, US(T0_MS), false, 10);
    }
    cr_assert(gw_breaker_allow(b, US(T0_MS + 1000)));
    cr_assert_not(gw_breaker_admits(b, US(T0_MS + 1499)));
    cr_assert(gw_breaker_admits(b, US(T0_MS + 1500)), "an overdue probe: a call would reopen");
    cr_assert_not(gw_breaker_allow(b, US(T0_MS + 1500)));
    cr_assert_eq(gw_breaker_state(b), GW_BREAKER_OPEN);
    gw_breaker_free(b);
}

Test(server_breaker, open_server_is_skipped_by_every_algorithm)
{
    static const enum gw_lb_algo algos[] = {GW_LB_ROUND_ROBIN, GW_LB_WEIGHTED, GW_LB_LEAST_CONN,
                                            GW_LB_TWO_RANDOM, GW_LB_CONSISTENT_HASH};
    struct gw_breaker_cfg c = bcfg(1);
    for (size_t a = 0; a < ARRAY_SIZE(algos); a++) {
        struct gw_server *s[3];
        for (int i = 0; i < 3; i++) {
            s[i] = mk_server(i);
            gw_server_breaker_config(s[i], &c, US(T0_MS));
        }
        struct gw_lb *lb = gw_lb_new(algos[a], s, 3, NULL);
        int counts[3];
        tally(lb, s, 3, 300, T0_MS, counts);
        cr_assert(counts[0] > 0 && counts[1] > 0 && counts[2] > 0, "%s", gw_lb_algo_name(algos[a]));
        trip(s[0], T0_MS);
        tally(lb, s, 3, 300, T0_MS + 10, counts);
        cr_assert_eq(counts[0], 0, "%s sent %d requests to an open server", gw_lb_algo_name(algos[a]),
                     counts[0]);
        cr_assert_eq(counts[1] + counts[2], 300);
        /* All open: nothing is usable. */
        trip(s[1], T0_MS);
        trip(s[2], T0_MS);
        cr_assert_null(gw_lb_pick(lb, 1, T0_MS + 10, NULL, 0));
        gw_lb_free(lb);
        for (int i = 0; i < 3; i++)
            gw_server_unref(s[i]);
    }
}

Test(server_breaker, half_open_lets_only_the_probes_through_then_closes)
{
    struct gw_breaker_cfg c = bcfg(2);
    struct gw_server *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = mk_server(i);
        gw_server_breaker_config(s[i], &c, US(T0_MS));
    }
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 3, NULL);
    trip(s[0], T0_MS);
    cr_assert_eq(atomic_load(&s[0]->brk_entered[GW_BREAKER_OPEN]), 1);

    /* The wait is over: s0 is usable again, and the first two picks of it
     * become its probes (as the proxy does: allow() after the pick). */
    uint64_t now = T0_MS + 1000;
    int probes = 0, picks0 = 0;
    for (int k = 0; k < 30; k++) {
        struct gw_server *p = gw_lb_pick(lb, 0, now, NULL, 0);
        cr_assert_not_null(p);
        if (p != s[0])
            continue;
        picks0++;
        cr_assert(gw_breaker_allow(brk(s[0]), US(now)), "the balancer only picks s0 when it admits");
        probes++;
    }
    cr_assert_eq(probes, 2, "exactly the probes went to s0, got %d", probes);
    cr_assert_eq(picks0, 2);
    cr_assert_eq(gw_breaker_state(brk(s[0])), GW_BREAKER_HALF_OPEN);
    cr_assert_eq(atomic_load(&s[0]->brk_entered[GW_BREAKER_HALF_OPEN]), 1);

    /* Both probes succeed: closed, back in rotation, slow start restarted. */
    gw_breaker_record(brk(s[0]), US(now + 5), true, 1000);
    cr_assert_eq(gw_breaker_state(brk(s[0])), GW_BREAKER_HALF_OPEN);
    gw_breaker_record(brk(s[0]), US(now + 7), true, 1000);
    cr_assert_eq(gw_breaker_state(brk(s[0])), GW_BREAKER_CLOSED);
    cr_assert_eq(atomic_load(&s[0]->brk_entered[GW_BREAKER_CLOSED]), 1);
    cr_assert_eq(atomic_load(&s[0]->up_since_ms), now + 7);
    int counts[3];
    tally(lb, s, 3, 300, now + 10, counts);
    cr_assert_eq(counts[0], 100);
    gw_lb_free(lb);
    for (int i = 0; i < 3; i++)
        gw_server_unref(s[i]);
}

Test(server_breaker, failed_probe_reopens_and_skips_again)
{
    struct gw_breaker_cfg c = bcfg(1);
    struct gw_server *s[2] = {mk_server(0), mk_server(1)};
    gw_server_breaker_config(s[0], &c, US(T0_MS));
    struct gw_lb *lb = gw_lb_new(GW_LB_LEAST_CONN, s, 2, NULL);
    trip(s[0], T0_MS);
    uint64_t now = T0_MS + 1000;
    cr_assert(gw_server_usable(s[0], now));
    cr_assert(gw_breaker_allow(brk(s[0]), US(now)));
    cr_assert_not(gw_server_usable(s[0], now), "its only probe is out");
    gw_breaker_record(brk(s[0]), US(now + 1), false, 1000);
    cr_assert_eq(gw_breaker_state(brk(s[0])), GW_BREAKER_OPEN);
    cr_assert_not(gw_server_usable(s[0], now + 999));
    for (int k = 0; k < 20; k++)
        cr_assert_eq(gw_lb_pick(lb, 0, now + 500, NULL, 0), s[1]);
    cr_assert(gw_server_usable(s[0], now + 1001));
    cr_assert_eq(atomic_load(&s[0]->brk_entered[GW_BREAKER_OPEN]), 2);
    gw_lb_free(lb);
    gw_server_unref(s[0]);
    gw_server_unref(s[1]);
}

Test(server_breaker, released_probe_frees_the_place)
{
    struct gw_breaker_cfg c = bcfg(1);
    struct gw_server *s = mk_server(0);
    gw_server_breaker_config(s, &c, US(T0_MS));
    trip(s, T0_MS);
    uint64_t now = T0_MS + 1000;
    cr_assert(gw_breaker_allow(brk(s), US(now)));
    cr_assert_not(gw_server_usable(s, now));
    gw_breaker_release(brk(s)); /* the client went away before an answer */
    cr_assert(gw_server_usable(s, now));
    gw_server_unref(s);
}

Test(server_breaker, config_keeps_replaces_and_removes)
{
    struct gw_breaker_cfg c = bcfg(1);
    struct gw_server *s = mk_server(0);
    cr_assert_null(brk(s));
    gw_server_breaker_config(s, &c, US(T0_MS));
    struct gw_breaker *first = brk(s);
    cr_assert_not_null(first);
    trip(s, T0_MS);
    /* Same settings (a reload that changed nothing): the same breaker, its
     * state kept. */
    struct gw_breaker_cfg same = bcfg(1);
    gw_server_breaker_config(s, &same, US(T0_MS + 1));
    cr_assert_eq(brk(s), first);
    cr_assert_eq(gw_breaker_state(brk(s)), GW_BREAKER_OPEN);
    /* New settings: a fresh, closed breaker; the old one stays valid for
     * calls it admitted (freed at exit). */
    struct gw_breaker_cfg other = bcfg(3);
    gw_server_breaker_config(s, &other, US(T0_MS + 2));
    cr_assert_neq(brk(s), first);
    cr_assert_eq(gw_breaker_state(brk(s)), GW_BREAKER_CLOSED);
    gw_breaker_record(first, US(T0_MS + 3), true, 10); /* still safe to use */
    cr_assert(gw_server_usable(s, T0_MS + 3));
    gw_server_breaker_config(s, NULL, US(T0_MS + 4));
    cr_assert_null(brk(s));
    cr_assert(gw_server_usable(s, T0_MS + 4));
    gw_server_unref(s);
    gw_servers_free(&servers);
}

/* ---- one attempt's server: balance/pick.c, settling ---- */

Test(pick, avoids_tried_then_hands_it_back_without_a_place)
{
    struct gw_server *s[2] = {mk_server(0), mk_server(1)};
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 2, NULL);
    struct gw_srvbrk_hold h = {0};
    struct gw_server *tried[1] = {s[0]};
    for (int k = 0; k < 4; k++) {
        struct gw_server *p = gw_pick_server(lb, 0, tried, 1, &h, T0_MS, US(T0_MS));
        cr_assert_eq(p, s[1], "the untried server, whatever the rotation");
    }
    cr_assert_eq(atomic_load(&s[1]->inflight), 4, "each pick took an in-flight place");
    cr_assert_eq(atomic_load(&s[0]->inflight), 0);
    struct gw_server *both[2] = {s[0], s[1]};
    struct gw_server *p = gw_pick_server(lb, 0, both, 2, &h, T0_MS, US(T0_MS));
    cr_assert(p == s[0] || p == s[1], "all tried: one comes back for the caller to refuse");
    cr_assert_eq(atomic_load(&s[0]->inflight) + atomic_load(&s[1]->inflight), 4, "no place for it");
    cr_assert_null(h.b, "no breaker: nothing held");
    gw_lb_free(lb);
    gw_server_unref(s[0]);
    gw_server_unref(s[1]);
}

Test(pick, open_breaker_is_left_out_and_the_hold_settles_once)
{
    struct gw_breaker_cfg c = bcfg(1);
    struct gw_server *s[2] = {mk_server(0), mk_server(1)};
    for (int i = 0; i < 2; i++)
        gw_server_breaker_config(s[i], &c, US(T0_MS));
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 2, NULL);
    struct gw_srvbrk_hold h = {0};
    struct gw_server *p = gw_pick_server(lb, 0, NULL, 0, &h, T0_MS, US(T0_MS));
    cr_assert_not_null(p);
    cr_assert_eq(h.b, brk(p), "the chosen server's breaker admitted the attempt");
    gw_srvbrk_settle(&h, GW_SRVBRK_SUCCESS, US(T0_MS), 1000000);
    cr_assert_null(h.b, "settled once");
    gw_srvbrk_settle(&h, GW_SRVBRK_FAILURE, US(T0_MS), 1000000); /* nothing held: nothing */
    atomic_fetch_sub(&p->inflight, 1);
    trip(p, T0_MS);
    struct gw_server *other = p == s[0] ? s[1] : s[0];
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(gw_pick_server(lb, 0, NULL, 0, &h, T0_MS + 10, US(T0_MS + 10)), other);
        gw_srvbrk_settle(&h, GW_SRVBRK_RELEASE, US(T0_MS + 10), 1000000);
        atomic_fetch_sub(&other->inflight, 1);
    }
    cr_assert_eq(gw_breaker_state(brk(other)), GW_BREAKER_CLOSED, "released: no sample");
    gw_lb_free(lb);
    gw_server_unref(s[0]);
    gw_server_unref(s[1]);
}

Test(pick, full_server_is_left_out)
{
    struct gw_server *s[2] = {mk_server(0), mk_server(1)};
    atomic_store(&s[0]->max_inflight, 1);
    atomic_store(&s[0]->inflight, 1);
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 2, NULL);
    struct gw_srvbrk_hold h = {0};
    for (int k = 0; k < 4; k++)
        cr_assert_eq(gw_pick_server(lb, 0, NULL, 0, &h, T0_MS, US(T0_MS)), s[1]);
    atomic_store(&s[1]->max_inflight, 4);
    cr_assert_null(gw_pick_server(lb, 0, NULL, 0, &h, T0_MS, US(T0_MS)), "both full: none");
    gw_lb_free(lb);
    gw_server_unref(s[0]);
    gw_server_unref(s[1]);
}
