/* Unit tests for concurrent picks (src/gateway/balance/balance.c):
 * exact totals from 8 threads, every algorithm under contention, and
 * picks while servers' health flaps. */
#include "test_balance.h"

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
