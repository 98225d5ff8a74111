/* Unit tests for the server choice of one attempt (balance/pick.c) and
 * the settling of that attempt with the server's breaker
 * (resilience/server_breaker.c): tried servers are avoided while another
 * is usable and handed back (without a place) when none is, the chosen
 * server's in-flight place and breaker hold are taken, and an open
 * breaker or a full server is left out. Time is passed in; nothing
 * sleeps. */
#include <criterion/criterion.h>

#include "gateway/balance/pick.h"

#include <stdio.h>

#define T0_MS 1000000ull
#define US(ms) ((ms) * 1000ull)

static struct gw_server *mk_server(int idx)
{
    char addr[64];
    snprintf(addr, sizeof addr, "10.2.0.%d:8080", idx + 1);
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr(addr, &a, &err), 0);
    return gw_server_new("svc", &a, 1);
}

static struct gw_breaker_cfg bcfg(void)
{
    struct gw_breaker_cfg c;
    gw_breaker_cfg_default(&c);
    c.consecutive_failures = 1;
    c.failure_rate_pct = 0;
    c.slow_rate_pct = 0;
    c.open_wait_us = US(1000);
    c.half_open_probes = 1;
    return c;
}

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

Test(pick, open_breaker_is_left_out_and_the_hold_settles)
{
    struct gw_breaker_cfg c = bcfg();
    struct gw_server *s[2] = {mk_server(0), mk_server(1)};
    for (int i = 0; i < 2; i++)
        gw_server_breaker_config(s[i], &c, US(T0_MS));
    struct gw_lb *lb = gw_lb_new(GW_LB_ROUND_ROBIN, s, 2, NULL);
    struct gw_srvbrk_hold h = {0};
    struct gw_server *p = gw_pick_server(lb, 0, NULL, 0, &h, T0_MS, US(T0_MS));
    cr_assert_not_null(p);
    cr_assert_eq(h.b, atomic_load(&p->breaker), "the chosen server's breaker admitted the attempt");
    gw_srvbrk_settle(&h, GW_SRVBRK_FAILURE, US(T0_MS), 1000000);
    cr_assert_null(h.b, "settled once");
    cr_assert_eq(gw_breaker_state(atomic_load(&p->breaker)), GW_BREAKER_OPEN);
    gw_srvbrk_settle(&h, GW_SRVBRK_FAILURE, US(T0_MS), 1000000); /* nothing held: nothing */
    atomic_fetch_sub(&p->inflight, 1);
    struct gw_server *other = p == s[0] ? s[1] : s[0];
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(gw_pick_server(lb, 0, NULL, 0, &h, T0_MS + 10, US(T0_MS + 10)), other);
        gw_srvbrk_settle(&h, GW_SRVBRK_RELEASE, US(T0_MS + 10), 1000000);
        atomic_fetch_sub(&other->inflight, 1);
    }
    cr_assert_eq(gw_breaker_state(atomic_load(&other->breaker)), GW_BREAKER_CLOSED, "released: no sample");
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
