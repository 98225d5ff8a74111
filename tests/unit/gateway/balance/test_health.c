/* Unit tests for the health state machine and passive ejection
 * (src/gateway/balance/health.c): rise/fall sequences, flapping, transitions
 * applied to the shared server, ejection and its expiry, and several
 * threads failing at once. */
#include <criterion/criterion.h>

#include "gateway/balance/health.h"
#include "gateway/balance/backend.h"

#include <pthread.h>
#include <stdio.h>

/* The servers made here share one slot numbering (as a process's do). */
static struct gw_servers servers = {.retired_lock = PTHREAD_MUTEX_INITIALIZER};

#define NOW 5000000u

static struct gw_server *mk_server(void)
{
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr("10.1.0.1:8080", &a, &err), 0);
    return gw_server_new(&servers, "svc", &a, 1);
}

/* Feeds a string of results ('+' ok, '-' failed) and checks the returned
 * transitions ('u' went up, 'd' went down, '.' none). */
static void feed(struct gw_health *h, const struct gw_health_cfg *cfg, const char *results,
                 const char *expect)
{
    for (size_t i = 0; results[i]; i++) {
        int r = gw_health_report(h, cfg, results[i] == '+');
        char got = r > 0 ? 'u' : r < 0 ? 'd' : '.';
        cr_assert_eq(got, expect[i], "result %zu of \"%s\": got %c, want %c", i, results, got,
                     expect[i]);
    }
}

/* ------------------------------------------------------- state machine */

Test(health_machine, init)
{
    struct gw_health h;
    gw_health_init(&h, GW_DOWN);
    cr_assert_eq(h.state, GW_DOWN);
    cr_assert_eq(h.ok_run, 0);
    cr_assert_eq(h.fail_run, 0);
    gw_health_init(&h, GW_UP);
    cr_assert_eq(h.state, GW_UP);
}

Test(health_machine, fall_then_rise)
{
    struct gw_health_cfg cfg = {.rise = 2, .fall = 3};
    struct gw_health h;
    gw_health_init(&h, GW_UP);
    feed(&h, &cfg, "++--", "....");
    cr_assert_eq(h.state, GW_UP);
    cr_assert_eq(h.fail_run, 2);
    feed(&h, &cfg, "-", "d");
    cr_assert_eq(h.state, GW_DOWN);
    feed(&h, &cfg, "---", "...");       /* already down: no more transitions */
    feed(&h, &cfg, "+", ".");
    feed(&h, &cfg, "+", "u");
    cr_assert_eq(h.state, GW_UP);
    feed(&h, &cfg, "++++", "....");     /* already up */
}

Test(health_machine, starts_down_needs_rise)
{
    struct gw_health_cfg cfg = {.rise = 3, .fall = 1};
    struct gw_health h;
    gw_health_init(&h, GW_DOWN);
    feed(&h, &cfg, "++-+++", ".....u");
    feed(&h, &cfg, "-", "d");           /* fall 1: one failure is enough */
    feed(&h, &cfg, "+++", "..u");
}

Test(health_machine, flapping_keeps_state)
{
    struct gw_health_cfg cfg = {.rise = 2, .fall = 2};
    struct gw_health h;
    gw_health_init(&h, GW_UP);
    feed(&h, &cfg, "-+-+-+-+-+-+", "............");
    cr_assert_eq(h.state, GW_UP);
    feed(&h, &cfg, "--", ".d");
    feed(&h, &cfg, "+-+-+-+-+-+-", "............");
    cr_assert_eq(h.state, GW_DOWN);
    feed(&h, &cfg, "++", ".u");
    /* A run broken one short of the threshold starts over. */
    struct gw_health_cfg cfg3 = {.rise = 3, .fall = 3};
    feed(&h, &cfg3, "--+--+---", "........d");
    feed(&h, &cfg3, "++-++-+++", "........u");
}

Test(health_machine, zero_thresholds_count_as_one)
{
    struct gw_health_cfg cfg = {.rise = 0, .fall = -5};
    struct gw_health h;
    gw_health_init(&h, GW_UP);
    feed(&h, &cfg, "-+-+", "dudu");
}

Test(health_machine, long_runs_saturate)
{
    struct gw_health_cfg cfg = {.rise = 2, .fall = 2};
    struct gw_health h;
    gw_health_init(&h, GW_UP);
    h.ok_run = INT32_MAX;
    cr_assert_eq(gw_health_report(&h, &cfg, true), 0);
    cr_assert_eq(h.ok_run, INT32_MAX);
    feed(&h, &cfg, "--", ".d");
}

Test(health_machine, apply_to_server)
{
    struct gw_server *s = mk_server();
    atomic_store(&s->consec_fail, 2);
    gw_health_apply(s, -1, NOW);
    cr_assert_eq(atomic_load(&s->health), GW_DOWN);
    cr_assert_not(gw_server_usable(s, NOW));
    gw_health_apply(s, 0, NOW + 1);
    cr_assert_eq(atomic_load(&s->health), GW_DOWN);
    gw_health_apply(s, 1, NOW + 2);
    cr_assert_eq(atomic_load(&s->health), GW_UP);
    cr_assert_eq(atomic_load(&s->up_since_ms), NOW + 2);
    cr_assert_eq(atomic_load(&s->consec_fail), 0);
    cr_assert(gw_server_usable(s, NOW + 2));
    gw_server_unref(s);
}

/* ---------------------------------------------------- passive ejection */

Test(health_passive, ejects_after_max_failures_and_expires)
{
    struct gw_server *s = mk_server();
    cr_assert_not(gw_passive_failure(s, 3, 10000, NOW));
    cr_assert_not(gw_passive_failure(s, 3, 10000, NOW));
    cr_assert(gw_server_usable(s, NOW));
    cr_assert_eq(atomic_load(&s->consec_fail), 2);

    cr_assert(gw_passive_failure(s, 3, 10000, NOW + 1));
    cr_assert_eq(atomic_load(&s->down_until_ms), NOW + 10001);
    cr_assert_eq(atomic_load(&s->consec_fail), 0);
    cr_assert_not(gw_server_usable(s, NOW + 1));
    cr_assert_not(gw_server_usable(s, NOW + 10000));
    cr_assert(gw_server_usable(s, NOW + 10001)); /* expiry needs nobody's help */
    cr_assert_eq(atomic_load(&s->health), GW_UP); /* ejection is not a health change */

    /* A fresh streak is needed to eject again. */
    cr_assert_not(gw_passive_failure(s, 3, 10000, NOW + 20000));
    cr_assert_not(gw_passive_failure(s, 3, 10000, NOW + 20000));
    cr_assert(gw_passive_failure(s, 3, 10000, NOW + 20000));
    cr_assert_not(gw_server_usable(s, NOW + 29999));
    cr_assert(gw_server_usable(s, NOW + 30000));
    gw_server_unref(s);
}

Test(health_passive, success_breaks_the_streak)
{
    struct gw_server *s = mk_server();
    for (int round = 0; round < 10; round++) {
        cr_assert_not(gw_passive_failure(s, 3, 1000, NOW));
        cr_assert_not(gw_passive_failure(s, 3, 1000, NOW));
        gw_passive_success(s);
        cr_assert_eq(atomic_load(&s->consec_fail), 0);
    }
    cr_assert(gw_server_usable(s, NOW));
    gw_passive_success(s); /* no-op at zero */
    cr_assert_eq(atomic_load(&s->consec_fail), 0);
    gw_server_unref(s);
}

Test(health_passive, failures_while_ejected_are_ignored)
{
    struct gw_server *s = mk_server();
    cr_assert(gw_passive_failure(s, 1, 1000, NOW));
    /* Late failures of requests sent before the ejection. */
    for (int i = 0; i < 50; i++)
        cr_assert_not(gw_passive_failure(s, 1, 1000, NOW + 500));
    cr_assert_eq(atomic_load(&s->consec_fail), 0);
    cr_assert_eq(atomic_load(&s->down_until_ms), NOW + 1000);
    cr_assert(gw_server_usable(s, NOW + 1000));
    cr_assert(gw_passive_failure(s, 1, 1000, NOW + 1000));
    cr_assert_eq(atomic_load(&s->down_until_ms), NOW + 2000);
    gw_server_unref(s);
}

Test(health_passive, disabled_and_zero_duration)
{
    struct gw_server *s = mk_server();
    for (int i = 0; i < 100; i++)
        cr_assert_not(gw_passive_failure(s, 0, 1000, NOW));
    cr_assert(gw_server_usable(s, NOW));
    cr_assert_eq(atomic_load(&s->consec_fail), 0);

    cr_assert(gw_passive_failure(s, 1, 0, NOW));
    cr_assert_not(gw_server_usable(s, NOW));
    cr_assert(gw_server_usable(s, NOW + 1));
    gw_server_unref(s);
}

#define NTHREADS 8
#define PER_THREAD 2000

struct failer {
    struct gw_server *s;
    pthread_barrier_t *start;
    int ejections;
};

static void *failer_main(void *arg)
{
    struct failer *f = arg;
    pthread_barrier_wait(f->start);
    for (int i = 0; i < PER_THREAD; i++)
        if (gw_passive_failure(f->s, 5, 30000, NOW))
            f->ejections++;
    return NULL;
}

Test(health_passive, concurrent_failures_eject_once)
{
    for (int round = 0; round < 20; round++) {
        struct gw_server *s = mk_server();
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, NTHREADS);
        pthread_t th[NTHREADS];
        struct failer f[NTHREADS];
        for (int t = 0; t < NTHREADS; t++) {
            f[t] = (struct failer){.s = s, .start = &start};
            cr_assert_eq(pthread_create(&th[t], NULL, failer_main, &f[t]), 0);
        }
        int ejections = 0;
        for (int t = 0; t < NTHREADS; t++) {
            pthread_join(th[t], NULL);
            ejections += f[t].ejections;
        }
        pthread_barrier_destroy(&start);
        cr_assert_eq(ejections, 1, "round %d: %d threads ejected", round, ejections);
        cr_assert_eq(atomic_load(&s->down_until_ms), NOW + 30000);
        /* Failures that raced the ejection may linger, never a full streak's worth. */
        cr_assert_lt(atomic_load(&s->consec_fail), NTHREADS);
        cr_assert_not(gw_server_usable(s, NOW));
        cr_assert(gw_server_usable(s, NOW + 30000));
        gw_server_unref(s);
    }
}

struct mixer {
    struct gw_server *s;
    int seed;
    int ejections;
};

static void *mixer_main(void *arg)
{
    struct mixer *m = arg;
    uint64_t now = NOW;
    uint32_t x = (uint32_t)m->seed * 2654435761u + 1;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (x % 4 == 0)
            gw_passive_success(m->s);
        else if (gw_passive_failure(m->s, 3, 5, now))
            m->ejections++;
        if (i % 16 == 0)
            now++;
    }
    return NULL;
}

Test(health_passive, concurrent_mixed_results)
{
    struct gw_server *s = mk_server();
    pthread_t th[NTHREADS];
    struct mixer m[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        m[t] = (struct mixer){.s = s, .seed = t + 1};
        cr_assert_eq(pthread_create(&th[t], NULL, mixer_main, &m[t]), 0);
    }
    int ejections = 0;
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        ejections += m[t].ejections;
    }
    cr_assert_gt(ejections, 0);
    int c = atomic_load(&s->consec_fail);
    cr_assert(c >= 0 && c < 3 + NTHREADS, "consec_fail %d", c);
    gw_server_unref(s);
}
