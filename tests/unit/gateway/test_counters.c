/* Tests for the per-worker counters (gateway/balance/counters.h, balance/backend.c): each
 * worker counts into its own cache-line-aligned entry, the shared part
 * takes the counts of other threads, and gw_server_counts() adds them up
 * exactly once writers are quiet and never goes backwards while they
 * write. Also the owned histogram (metrics_hist_observe_owned_ns) merged
 * across threads. */
#include <criterion/criterion.h>

#include "gateway/balance/backend.h"

#include <pthread.h>
#include <stdint.h>

/* The servers made here share one slot numbering (as a process's do). */
static struct gw_servers servers = {.retired_lock = PTHREAD_MUTEX_INITIALIZER};

#define NWORKERS 4
#define PER_WORKER 200000

static struct gw_server *mk_server(int nworkers)
{
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr("10.1.0.1:8080", &a, &err), 0);
    struct gw_server *s = gw_server_new(&servers, "svc", &a, 1);
    gw_server_alloc_counters(s, nworkers);
    return s;
}

Test(counters, entries_are_cache_line_aligned)
{
    struct gw_server *s = mk_server(NWORKERS);
    cr_assert_eq(s->nctr, NWORKERS);
    for (int i = 0; i < NWORKERS; i++) {
        cr_expect_eq((uintptr_t)gw_server_ctr(s, i) % GW_CACHE_LINE, 0);
        cr_expect_eq(gw_server_ctr(s, i), &s->ctr[i]);
    }
    cr_expect_eq(sizeof(struct gw_srv_ctr) % GW_CACHE_LINE, 0);
    cr_expect_eq(sizeof(struct gw_svc_ctr) % GW_CACHE_LINE, 0);
    /* A thread without an entry counts into the shared part. */
    cr_expect_null(gw_server_ctr(s, NWORKERS));
    cr_expect_null(gw_server_ctr(s, -1));
    gw_server_unref(s);
}

Test(counters, no_entries_without_workers)
{
    struct gw_server *s = mk_server(0);
    cr_expect_null(s->ctr);
    cr_expect_null(gw_server_ctr(s, 0));
    atomic_fetch_add(&s->req_total, 3);
    atomic_fetch_add(&s->resp_class[2], 3);
    atomic_fetch_add(&s->failures, 1);
    struct gw_srv_counts n;
    gw_server_counts(s, &n);
    cr_expect_eq(n.requests, 3);
    cr_expect_eq(n.resp_class[2], 3);
    cr_expect_eq(n.failures, 1);
    gw_server_unref(s);
}

static struct gw_server *shared_srv;
static atomic_bool writers_done;

/* What proxy.c and upstream.c do per request on worker id. */
static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_WORKER; i++) {
        struct gw_srv_ctr *sc = gw_server_ctr(shared_srv, id);
        if (sc) {
            gw_ctr_inc(&sc->resp_class[1 + i % 5]);
            gw_ctr_inc(i % 4 ? &sc->conns_reused : &sc->conns_opened);
        } else {
            atomic_fetch_add_explicit(&shared_srv->req_total, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&shared_srv->resp_class[1 + i % 5], 1, memory_order_relaxed);
            atomic_fetch_add_explicit(i % 4 ? &shared_srv->conns_reused : &shared_srv->conns_opened,
                                      1, memory_order_relaxed);
        }
    }
    return NULL;
}

/* A scraper: successive sums never decrease. */
static void *reader(void *arg)
{
    (void)arg;
    uint64_t last = 0, last_reused = 0;
    long backwards = 0;
    while (!atomic_load(&writers_done)) {
        struct gw_srv_counts n;
        gw_server_counts(shared_srv, &n);
        backwards += n.requests < last || n.conns_reused < last_reused;
        last = n.requests;
        last_reused = n.conns_reused;
    }
    return (void *)backwards;
}

Test(counters, sums_exact_and_monotonic_under_writers)
{
    shared_srv = mk_server(NWORKERS);
    atomic_store(&writers_done, false);
    pthread_t w[NWORKERS + 2], r;
    cr_assert_eq(pthread_create(&r, NULL, reader, NULL), 0);
    /* NWORKERS workers with entries, two threads without (shared part). */
    for (int i = 0; i < NWORKERS + 2; i++)
        cr_assert_eq(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)(i < NWORKERS ? i : 100 + i)), 0);
    for (int i = 0; i < NWORKERS + 2; i++)
        pthread_join(w[i], NULL);
    atomic_store(&writers_done, true);
    void *backwards;
    pthread_join(r, &backwards);
    cr_expect_eq((long)backwards, 0);

    struct gw_srv_counts n;
    gw_server_counts(shared_srv, &n);
    uint64_t total = (uint64_t)(NWORKERS + 2) * PER_WORKER;
    cr_expect_eq(n.requests, total);
    uint64_t classes = 0;
    for (int c = 0; c < 6; c++)
        classes += n.resp_class[c];
    cr_expect_eq(classes, total);
    cr_expect_eq(n.resp_class[0], 0);
    cr_expect_eq(n.resp_class[1], total / 5);
    cr_expect_eq(n.conns_opened, total / 4);
    cr_expect_eq(n.conns_reused, total - total / 4);
    gw_server_unref(shared_srv);
}

static struct metrics_hist owned[NWORKERS];

static void *observer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (uint64_t i = 0; i < PER_WORKER; i++)
        metrics_hist_observe_owned_ns(&owned[id], (i % 3) * 1000000u); /* 0, 1, 2 ms */
    return NULL;
}

Test(counters, owned_histograms_merge)
{
    pthread_t t[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        metrics_hist_init(&owned[i]);
        cr_assert_eq(pthread_create(&t[i], NULL, observer, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(t[i], NULL);
    struct metrics_hist_snap s = {0};
    for (int i = 0; i < NWORKERS; i++)
        metrics_hist_snapshot(&owned[i], &s);
    uint64_t total = (uint64_t)NWORKERS * PER_WORKER;
    cr_expect_eq(s.count, total);
    /* 0 ms in le 0.0005; 1 ms on the 0.001 bound; 2 ms in le 0.0025. */
    uint64_t third = (PER_WORKER + 2) / 3;
    cr_expect_eq(s.buckets[0], (uint64_t)NWORKERS * third);
    cr_expect_eq(s.buckets[0] + s.buckets[1] + s.buckets[2], total);
    uint64_t ones = (uint64_t)NWORKERS * ((PER_WORKER + 1) / 3);
    uint64_t twos = (uint64_t)NWORKERS * (PER_WORKER / 3);
    cr_expect_eq(s.buckets[1], ones);
    cr_expect_eq(s.sum_ns, ones * 1000000u + twos * 2000000u);
}
