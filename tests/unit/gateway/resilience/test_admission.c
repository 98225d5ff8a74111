/* Unit tests for admission control (src/gateway/resilience/admission.c) against a
 * controlled clock: the shared limit (static, adaptive, both) under eight
 * threads, priority order, no overtaking of waiters, deadlines, the full
 * queue and displacement, CoDel overload detection with LIFO service,
 * shedding and refusal of LOW arrivals, cancellation and closing. */
#include <criterion/criterion.h>

#include "gateway/resilience/adaptive.h"
#include "gateway/resilience/admission.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000ull
#define SEC 1000000ull
#define T0 (50 * SEC)

static struct gw_adm_cfg cfg_with(uint32_t max_inflight, uint32_t queue_max)
{
    struct gw_adm_cfg c;
    gw_adm_cfg_default(&c);
    c.max_inflight = max_inflight;
    c.queue_max = queue_max;
    return c;
}

/* A request with an embedded entry, named for the order checks. */
struct req {
    struct gw_adm_entry ent;
    char name[16];
};

static struct req *req_of(struct gw_adm_entry *e)
{
    return container_of(e, struct req, ent);
}

/* Joins the names of a result list: "C1 H1 N1". */
static void names(struct gw_adm_list *l, char *out, size_t cap)
{
    out[0] = 0;
    struct gw_adm_entry *e;
    while ((e = gw_adm_list_pop(l))) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", n ? " " : "", req_of(e)->name);
    }
}

/* Polls once; returns the names admitted and dropped. */
static void poll_names(struct gw_adm_queue *q, uint64_t now, char *ready, char *dropped)
{
    struct gw_adm_list r, d;
    gw_adm_list_init(&r);
    gw_adm_list_init(&d);
    gw_adm_queue_poll(q, now, &r, &d);
    names(&r, ready, 256);
    names(&d, dropped, 256);
}

static enum gw_adm_result submit(struct gw_adm_queue *q, struct req *r, const char *name,
                                 enum gw_prio p, uint64_t deadline, uint64_t now)
{
    struct gw_adm_entry *disp;
    snprintf(r->name, sizeof(r->name), "%s", name);
    enum gw_adm_result res = gw_adm_submit(q, &r->ent, p, deadline, now, &disp);
    cr_assert_null(disp);
    return res;
}

/* ------------------------------------------------------------- config */

Test(adm_cfg, defaults_and_checks)
{
    struct gw_adm_cfg c;
    gw_adm_cfg_default(&c);
    char *err = NULL;
    cr_assert_eq(gw_adm_cfg_check(&c, &err), 0);
    cr_assert_eq(c.max_inflight, 0);
    cr_assert_eq(c.queue_max, 128);
    cr_assert_eq(c.max_wait_us, 1 * SEC);
    cr_assert_eq(c.codel_target_us, 5 * MS);
    cr_assert_eq(c.codel_interval_us, 100 * MS);
    cr_assert_eq(c.retry_after_s, 1);
    struct gw_adm_cfg b = c;
    b.codel_target_us = b.codel_interval_us;
    cr_assert_eq(gw_adm_cfg_check(&b, &err), -1);
    cr_assert(strstr(err, "codel_target"));
    free(err);
    b = c;
    b.max_wait_us = 0;
    cr_assert_eq(gw_adm_cfg_check(&b, &err), -1);
    free(err);
}

Test(adm_cfg, priority_names)
{
    cr_assert_eq(gw_prio_parse("low", 3), GW_PRIO_LOW);
    cr_assert_eq(gw_prio_parse("Normal", 6), GW_PRIO_NORMAL);
    cr_assert_eq(gw_prio_parse("HIGH", 4), GW_PRIO_HIGH);
    cr_assert_eq(gw_prio_parse("critical", 8), GW_PRIO_CRITICAL);
    cr_assert_eq(gw_prio_parse("urgent", 6), -1);
    cr_assert_eq(gw_prio_parse("highx", 4), GW_PRIO_HIGH, "length-delimited");
    cr_assert_str_eq(gw_prio_name(GW_PRIO_CRITICAL), "critical");
}

/* -------------------------------------------------------------- limit */

Test(adm_limit, static_limit)
{
    struct gw_adm adm;
    struct gw_adm_cfg c = cfg_with(3, 0);
    gw_adm_init(&adm, &c, NULL);
    cr_assert_eq(gw_adm_limit(&adm), 3);
    for (int i = 0; i < 3; i++)
        cr_assert(gw_adm_try_acquire(&adm, GW_PRIO_NORMAL));
    cr_assert_not(gw_adm_try_acquire(&adm, GW_PRIO_CRITICAL));
    gw_adm_release(&adm, T0, 5 * MS, false);
    cr_assert(gw_adm_try_acquire(&adm, GW_PRIO_LOW));
    struct gw_adm_stats st;
    gw_adm_get_stats(&adm, &st);
    cr_assert_eq(st.inflight, 3);
    cr_assert_eq(st.limit, 3);
    cr_assert_eq(st.counters[GW_ADM_ST_ADMITTED], 4);
    cr_assert_eq(gw_adm_retry_after_s(&adm), 1);
}

Test(adm_limit, unlimited_without_limit_or_limiter)
{
    struct gw_adm adm;
    struct gw_adm_cfg c = cfg_with(0, 0);
    gw_adm_init(&adm, &c, NULL);
    cr_assert_eq(gw_adm_limit(&adm), UINT32_MAX);
    for (int i = 0; i < 10000; i++)
        cr_assert(gw_adm_try_acquire(&adm, GW_PRIO_LOW));
}

Test(adm_limit, adaptive_limit_capped_by_static)
{
    struct gw_limit_cfg lc;
    gw_limit_cfg_default(&lc);
    lc.min_rtt_samples = 3;
    lc.min_rtt_interval_us = 0;
    struct gw_limit *lim = gw_limit_new(&lc, T0);
    struct gw_adm adm;
    struct gw_adm_cfg c = cfg_with(0, 0);
    gw_adm_init(&adm, &c, lim);
    cr_assert_eq(gw_adm_limit(&adm), 4, "the limiter's measuring pin");
    for (int i = 0; i < 4; i++)
        cr_assert(gw_adm_try_acquire(&adm, GW_PRIO_NORMAL));
    cr_assert_not(gw_adm_try_acquire(&adm, GW_PRIO_NORMAL));
    /* Releases feed the limiter: three samples end its measurement. */
    for (int i = 0; i < 3; i++)
        gw_adm_release(&adm, T0 + 20 * MS, 10 * MS, false);
    gw_adm_release(&adm, T0 + 20 * MS, 0, false); /* no sample */
    struct gw_limit_stats ls;
    gw_limit_get_stats(lim, &ls);
    cr_assert_eq(ls.samples, 3);
    cr_assert_eq(ls.min_rtt_us, 10 * MS);
    cr_assert_eq(gw_adm_limit(&adm), 20);

    struct gw_adm capped;
    c.max_inflight = 7;
    gw_adm_init(&capped, &c, lim);
    cr_assert_eq(gw_adm_limit(&capped), 7);
    gw_limit_free(lim);
}

#define NTHREADS 8

struct racer {
    struct gw_adm *adm;
    pthread_barrier_t *bar;
    _Atomic int *live;
    _Atomic int *peak;
    _Atomic uint64_t *done;
    int iters;
    bool queue;
};

static void note_peak(struct racer *r)
{
    int n = atomic_fetch_add(r->live, 1) + 1;
    int p = atomic_load(r->peak);
    while (n > p && !atomic_compare_exchange_weak(r->peak, &p, n))
        ;
}

static void *racer_fn(void *arg)
{
    struct racer *r = arg;
    struct gw_adm_queue q;
    enum { K = 16 };
    struct req reqs[K];
    int held[K], nheld = 0;
    uint64_t now = T0;
    gw_adm_queue_init(&q, r->adm, now);
    pthread_barrier_wait(r->bar);
    if (!r->queue) {
        for (int i = 0; i < r->iters; i++) {
            if (gw_adm_try_acquire(r->adm, (enum gw_prio)(i % GW_PRIO_COUNT))) {
                note_peak(r);
                atomic_fetch_sub(r->live, 1);
                gw_adm_release(r->adm, now, 0, false);
                atomic_fetch_add(r->done, 1);
            }
        }
        return NULL;
    }
    /* Each thread is a worker with its own queue: submit, poll, finish. */
    bool busy[K] = {0};
    for (int i = 0; i < r->iters; i++) {
        now += 10;
        for (int k = 0; k < K; k++) {
            if (busy[k])
                continue;
            struct gw_adm_entry *disp;
            enum gw_adm_result res = gw_adm_submit(&q, &reqs[k].ent, (enum gw_prio)(k % 3 + 1),
                                                   0, now, &disp);
            if (disp)
                abort(); /* the queue is large enough in this test */
            if (res == GW_ADM_ADMIT) {
                note_peak(r);
                held[nheld++] = k;
                busy[k] = true;
            } else if (res == GW_ADM_QUEUED) {
                busy[k] = true;
            }
            break;
        }
        struct gw_adm_list ready, dropped;
        gw_adm_list_init(&ready);
        gw_adm_list_init(&dropped);
        gw_adm_queue_poll(&q, now, &ready, &dropped);
        struct gw_adm_entry *e;
        while ((e = gw_adm_list_pop(&ready))) {
            note_peak(r);
            held[nheld++] = (int)(req_of(e) - reqs);
        }
        while ((e = gw_adm_list_pop(&dropped)))
            busy[req_of(e) - reqs] = false;
        /* Finish the oldest held request. */
        if (nheld && (i & 1)) {
            int k = held[0];
            memmove(held, held + 1, sizeof(held[0]) * (size_t)--nheld);
            atomic_fetch_sub(r->live, 1);
            gw_adm_release(r->adm, now, 0, false);
            atomic_fetch_add(r->done, 1);
            busy[k] = false;
        }
    }
    while (nheld) {
        nheld--;
        atomic_fetch_sub(r->live, 1);
        gw_adm_release(r->adm, now, 0, false);
    }
    struct gw_adm_list rest;
    gw_adm_list_init(&rest);
    gw_adm_queue_close(&q, &rest);
    return NULL;
}

static void race(bool queue)
{
    struct gw_adm adm;
    struct gw_adm_cfg c = cfg_with(10, 64);
    c.codel_target_us = 1 * SEC;
    c.codel_interval_us = 2 * SEC;
    gw_adm_init(&adm, &c, NULL);
    _Atomic int live = 0, peak = 0;
    _Atomic uint64_t done = 0;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    struct racer r = {.adm = &adm, .bar = &bar, .live = &live, .peak = &peak, .done = &done,
                      .iters = 20000, .queue = queue};
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, racer_fn, &r);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    cr_assert_leq(atomic_load(&peak), 10, "peak %d in flight", atomic_load(&peak));
    cr_assert_gt(atomic_load(&done), 1000);
    struct gw_adm_stats st;
    gw_adm_get_stats(&adm, &st);
    cr_assert_eq(st.inflight, 0);
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        cr_assert_eq(st.queued[p], 0);
}

Test(adm_limit, eight_threads_never_exceed_limit)
{
    race(false);
}

Test(adm_limit, eight_worker_queues_never_exceed_limit)
{
    race(true);
}

/* ------------------------------------------------------------- queue */

/* An adm with limit 1, its slot taken, and a queue on it. */
struct fix {
    struct gw_adm adm;
    struct gw_adm_queue q;
    struct req r[16];
};

static void fix_init(struct fix *f, uint32_t queue_max, uint64_t target, uint64_t interval)
{
    struct gw_adm_cfg c = cfg_with(1, queue_max);
    c.codel_target_us = target;
    c.codel_interval_us = interval;
    gw_adm_init(&f->adm, &c, NULL);
    gw_adm_queue_init(&f->q, &f->adm, T0);
    cr_assert(gw_adm_try_acquire(&f->adm, GW_PRIO_NORMAL));
}

Test(adm_queue, priority_order_fifo_within_class)
{
    static struct fix f;
    fix_init(&f, 16, 10 * SEC, 20 * SEC);
    const char *n[] = {"L1", "N1", "H1", "N2", "C1", "L2", "H2"};
    enum gw_prio p[] = {GW_PRIO_LOW,      GW_PRIO_NORMAL, GW_PRIO_HIGH,  GW_PRIO_NORMAL,
                        GW_PRIO_CRITICAL, GW_PRIO_LOW,    GW_PRIO_HIGH};
    for (int i = 0; i < 7; i++)
        cr_assert_eq(submit(&f.q, &f.r[i], n[i], p[i], 0, T0 + (uint64_t)i), GW_ADM_QUEUED);
    cr_assert_eq(gw_adm_queue_len(&f.q), 7);
    char got[512] = "", one[256], drop[256];
    for (int i = 0; i < 7; i++) {
        poll_names(&f.q, T0 + 100, one, drop);
        cr_assert_str_empty(one, "no slot free: nothing admitted");
        gw_adm_release(&f.adm, T0 + 100, 0, false);
        poll_names(&f.q, T0 + 100, one, drop);
        cr_assert_str_empty(drop);
        strcat(got, i ? " " : "");
        strcat(got, one);
    }
    cr_assert_str_eq(got, "C1 H1 H2 N1 N2 L1 L2");
    cr_assert_eq(gw_adm_queue_len(&f.q), 0);
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_QUEUED], 7);
    cr_assert_eq(st.counters[GW_ADM_ST_DEQUEUED], 7);
    cr_assert_eq(st.inflight, 1);
}

Test(adm_queue, arrivals_do_not_overtake_waiters)
{
    static struct fix f;
    fix_init(&f, 16, 10 * SEC, 20 * SEC);
    cr_assert_eq(submit(&f.q, &f.r[0], "N1", GW_PRIO_NORMAL, 0, T0), GW_ADM_QUEUED);
    gw_adm_release(&f.adm, T0, 0, false); /* a slot is free, N1 not yet polled */
    cr_assert_eq(submit(&f.q, &f.r[1], "N2", GW_PRIO_NORMAL, 0, T0), GW_ADM_QUEUED,
                 "same class waits behind N1");
    cr_assert_eq(submit(&f.q, &f.r[2], "L1", GW_PRIO_LOW, 0, T0), GW_ADM_QUEUED);
    cr_assert_not(gw_adm_try_acquire(&f.adm, GW_PRIO_NORMAL));
    cr_assert_eq(submit(&f.q, &f.r[3], "H1", GW_PRIO_HIGH, 0, T0), GW_ADM_ADMIT,
                 "a higher class takes the free slot");
    gw_adm_release(&f.adm, T0, 0, false);
    char one[256], drop[256];
    poll_names(&f.q, T0 + 1, one, drop);
    cr_assert_str_eq(one, "N1");
}

Test(adm_queue, deadlines_expire_exactly)
{
    static struct fix f;
    fix_init(&f, 16, 10 * SEC, 20 * SEC);
    cr_assert_eq(submit(&f.q, &f.r[0], "A", GW_PRIO_NORMAL, T0 + 10 * MS, T0), GW_ADM_QUEUED);
    cr_assert_eq(submit(&f.q, &f.r[1], "B", GW_PRIO_HIGH, 0, T0), GW_ADM_QUEUED);
    cr_assert_eq(submit(&f.q, &f.r[2], "C", GW_PRIO_LOW, T0 + 5 * SEC, T0), GW_ADM_QUEUED);
    cr_assert_eq(submit(&f.q, &f.r[3], "D", GW_PRIO_LOW, T0 + 20 * MS, T0 + 1), GW_ADM_QUEUED);
    cr_assert_eq(f.r[1].ent.deadline_us, T0 + 1 * SEC, "0 means max_wait");
    cr_assert_eq(f.r[2].ent.deadline_us, T0 + 1 * SEC, "capped at max_wait");
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), T0 + 10 * MS);
    char one[256], drop[256];
    poll_names(&f.q, T0 + 10 * MS - 1, one, drop);
    cr_assert_str_empty(drop);
    poll_names(&f.q, T0 + 10 * MS, one, drop);
    cr_assert_str_eq(drop, "A");
    cr_assert_eq(f.r[0].ent.outcome, GW_ADM_OUT_EXPIRED);
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), T0 + 20 * MS);
    poll_names(&f.q, T0 + 20 * MS, one, drop);
    cr_assert_str_eq(drop, "D");
    poll_names(&f.q, T0 + 1 * SEC, one, drop);
    cr_assert_str_eq(drop, "C B", "scanned by class, lowest first");
    cr_assert_eq(gw_adm_queue_len(&f.q), 0);
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), UINT64_MAX);
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_EXPIRED], 4);
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        cr_assert_eq(st.queued[p], 0);
}

Test(adm_queue, full_queue_displaces_lower_class)
{
    static struct fix f;
    fix_init(&f, 3, 10 * SEC, 20 * SEC);
    cr_assert_eq(submit(&f.q, &f.r[0], "L1", GW_PRIO_LOW, 0, T0), GW_ADM_QUEUED);
    cr_assert_eq(submit(&f.q, &f.r[1], "L2", GW_PRIO_LOW, 0, T0), GW_ADM_QUEUED);
    cr_assert_eq(submit(&f.q, &f.r[2], "N1", GW_PRIO_NORMAL, 0, T0), GW_ADM_QUEUED);
    /* Full: a LOW arrival has nothing below it. */
    struct gw_adm_entry *disp;
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[3].ent, GW_PRIO_LOW, 0, T0, &disp), GW_ADM_REJECT);
    cr_assert_null(disp);
    /* A NORMAL arrival displaces the oldest LOW. */
    snprintf(f.r[4].name, sizeof(f.r[4].name), "N2");
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[4].ent, GW_PRIO_NORMAL, 0, T0, &disp), GW_ADM_QUEUED);
    cr_assert_eq(disp, &f.r[0].ent);
    cr_assert_eq(disp->outcome, GW_ADM_OUT_DISPLACED);
    cr_assert_not(disp->queued);
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[5].ent, GW_PRIO_NORMAL, 0, T0, &disp), GW_ADM_QUEUED);
    cr_assert_eq(disp, &f.r[1].ent);
    /* Now N1 N2 N3 (r[5]): another NORMAL has nothing below it. */
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[6].ent, GW_PRIO_NORMAL, 0, T0, &disp), GW_ADM_REJECT);
    /* CRITICAL displaces the oldest NORMAL. */
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[7].ent, GW_PRIO_CRITICAL, 0, T0, &disp), GW_ADM_QUEUED);
    cr_assert_eq(disp, &f.r[2].ent);
    cr_assert_eq(gw_adm_queue_len(&f.q), 3);
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_DISPLACED], 3);
    cr_assert_eq(st.counters[GW_ADM_ST_REJECTED], 2);
    cr_assert_eq(st.queued[GW_PRIO_LOW], 0);
    cr_assert_eq(st.queued[GW_PRIO_NORMAL], 2);
    cr_assert_eq(st.queued[GW_PRIO_CRITICAL], 1);
}

Test(adm_queue, no_queue_rejects_at_once)
{
    static struct fix f;
    fix_init(&f, 0, 10 * SEC, 20 * SEC);
    struct gw_adm_entry *disp;
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[0].ent, GW_PRIO_CRITICAL, 0, T0, &disp), GW_ADM_REJECT);
    gw_adm_release(&f.adm, T0, 0, false);
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[0].ent, GW_PRIO_LOW, 0, T0, &disp), GW_ADM_ADMIT);
}

Test(adm_queue, remove_and_close)
{
    static struct fix f;
    fix_init(&f, 16, 10 * SEC, 20 * SEC);
    for (int i = 0; i < 4; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "R%d", i);
        cr_assert_eq(submit(&f.q, &f.r[i], nm, (enum gw_prio)i, 0, T0), GW_ADM_QUEUED);
    }
    gw_adm_queue_remove(&f.q, &f.r[2].ent);
    cr_assert_not(f.r[2].ent.queued);
    cr_assert_eq(f.r[2].ent.outcome, GW_ADM_OUT_NONE);
    gw_adm_queue_remove(&f.q, &f.r[2].ent); /* twice: nothing */
    cr_assert_eq(gw_adm_queue_len(&f.q), 3);
    struct gw_adm_list out;
    gw_adm_list_init(&out);
    gw_adm_queue_close(&f.q, &out);
    cr_assert_eq(out.n, 3);
    cr_assert_eq(f.r[3].ent.outcome, GW_ADM_OUT_CLOSED);
    char s[256];
    names(&out, s, sizeof(s));
    cr_assert_str_eq(s, "R3 R1 R0");
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_CANCELLED], 1);
    for (int p = 0; p < GW_PRIO_COUNT; p++)
        cr_assert_eq(st.queued[p], 0);
}

/* ------------------------------------------------------------- CoDel */

Test(adm_codel, standing_queue_becomes_overloaded)
{
    static struct fix f;
    fix_init(&f, 64, 5 * MS, 100 * MS);
    uint64_t t = T0;
    char one[256], drop[256];
    /* One NORMAL arrival per ms, the slot never frees: the oldest entry
     * passes 5 ms at T0 + 5 ms; an interval later it is overloaded. */
    int i = 0;
    for (; t <= T0 + 105 * MS; t += MS, i = (i + 1) % 16) {
        if (gw_adm_queue_len(&f.q) < 16) {
            char nm[16];
            snprintf(nm, sizeof(nm), "N%d", i);
            submit(&f.q, &f.r[i], nm, GW_PRIO_NORMAL, 0, t);
        }
        poll_names(&f.q, t, one, drop);
        struct gw_adm_stats st;
        gw_adm_get_stats(&f.adm, &st);
        if (t < T0 + 105 * MS) {
            cr_assert_not(gw_adm_queue_overloaded(&f.q), "overloaded early at +%lu us",
                          (unsigned long)(t - T0));
            cr_assert_eq(st.counters[GW_ADM_ST_SHED], 0);
            cr_assert_eq(gw_adm_queue_len(&f.q), FG_MIN((t - T0) / MS + 1, 16));
        }
    }
    /* The same poll shed everything older than 5 ms (the first 16
     * arrivals, at T0 .. T0 + 15 ms). */
    cr_assert_eq(gw_adm_queue_len(&f.q), 0, "%u left", gw_adm_queue_len(&f.q));
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_SHED], 16);
    cr_assert_eq(st.counters[GW_ADM_ST_OVERLOADS], 1);
    /* Drained: back to normal. */
    cr_assert_not(gw_adm_queue_overloaded(&f.q));
}

/* Builds an overloaded queue at T0 + 200 ms holding, oldest first,
 * N0 (T0 + 196 ms) C0 (197) N1 (198) H0 (199) N2 (200). */
static uint64_t overloaded_fixture(struct fix *f)
{
    fix_init(f, 64, 5 * MS, 100 * MS);
    char one[256], drop[256];
    /* A standing queue: one CRITICAL entry sits from T0 (never shed). */
    cr_assert_eq(submit(&f->q, &f->r[15], "CX", GW_PRIO_CRITICAL, 0, T0), GW_ADM_QUEUED);
    for (uint64_t t = T0; t <= T0 + 195 * MS; t += MS)
        poll_names(&f->q, t, one, drop);
    cr_assert(gw_adm_queue_overloaded(&f->q));
    uint64_t t = T0 + 196 * MS;
    submit(&f->q, &f->r[0], "N0", GW_PRIO_NORMAL, 0, t);
    submit(&f->q, &f->r[1], "C0", GW_PRIO_CRITICAL, 0, t + 1 * MS);
    submit(&f->q, &f->r[2], "N1", GW_PRIO_NORMAL, 0, t + 2 * MS);
    submit(&f->q, &f->r[3], "H0", GW_PRIO_HIGH, 0, t + 3 * MS);
    submit(&f->q, &f->r[4], "N2", GW_PRIO_NORMAL, 0, t + 4 * MS);
    return t + 4 * MS;
}

Test(adm_codel, overloaded_serves_newest_first)
{
    static struct fix f;
    uint64_t t = overloaded_fixture(&f);
    char one[256], drop[256], got[256] = "";
    for (int i = 0; i < 6; i++) {
        gw_adm_release(&f.adm, t, 0, false);
        poll_names(&f.q, t, one, drop);
        cr_assert_str_empty(drop);
        strcat(got, i ? " " : "");
        strcat(got, one);
    }
    /* Classes still in order; within a class the newest first. */
    cr_assert_str_eq(got, "C0 CX H0 N2 N1 N0");
    cr_assert_not(gw_adm_queue_overloaded(&f.q), "drained");
}

Test(adm_codel, overloaded_sheds_old_and_refuses_low)
{
    static struct fix f;
    uint64_t t = overloaded_fixture(&f);
    char one[256], drop[256];
    struct gw_adm_entry *disp;
    cr_assert_eq(gw_adm_submit(&f.q, &f.r[5].ent, GW_PRIO_LOW, 0, t, &disp), GW_ADM_REJECT,
                 "LOW arrivals are refused while overloaded");
    /* At +203 ms: N0 (7 ms old) and... only entries older than 5 ms go,
     * CRITICAL never. */
    poll_names(&f.q, T0 + 202 * MS, one, drop);
    cr_assert_str_eq(drop, "N0");
    poll_names(&f.q, T0 + 204 * MS, one, drop);
    cr_assert_str_eq(drop, "N1");
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), T0 + 204 * MS + 1, "H0 goes next");
    poll_names(&f.q, T0 + 210 * MS, one, drop);
    cr_assert_str_eq(drop, "N2 H0", "lowest class first");
    cr_assert_eq(f.r[3].ent.outcome, GW_ADM_OUT_SHED);
    cr_assert_eq(gw_adm_queue_len(&f.q), 2, "CX and C0 stay");
    cr_assert(gw_adm_queue_overloaded(&f.q));
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), T0 + 1 * SEC, "CX's deadline");
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_SHED], 4);
    cr_assert_eq(st.counters[GW_ADM_ST_REJECTED], 1);
}

Test(adm_codel, short_waits_are_not_overload)
{
    /* Slots free up every 4 ms, arrivals every 4 ms: entries wait less
     * than the target, and the queue is never declared overloaded. */
    static struct fix f;
    fix_init(&f, 64, 5 * MS, 100 * MS);
    char one[256], drop[256];
    int k = 0;
    for (uint64_t t = T0; t < T0 + 2 * SEC; t += MS) {
        if ((t - T0) % (4 * MS) == 0) {
            submit(&f.q, &f.r[k], "N", GW_PRIO_NORMAL, 0, t);
            k = (k + 1) % 16;
        }
        if ((t - T0) % (4 * MS) == 3 * MS)
            gw_adm_release(&f.adm, t, 0, false);
        poll_names(&f.q, t, one, drop);
        cr_assert_str_empty(drop);
        cr_assert_not(gw_adm_queue_overloaded(&f.q));
    }
}

Test(adm_codel, recent_overload_returns_at_once)
{
    static struct fix f;
    uint64_t t = overloaded_fixture(&f);
    char one[256], drop[256];
    /* Drain it: six releases, six admissions. */
    for (int i = 0; i < 6; i++) {
        gw_adm_release(&f.adm, t, 0, false);
        poll_names(&f.q, t, one, drop);
    }
    cr_assert_not(gw_adm_queue_overloaded(&f.q));
    /* A new standing entry: overloaded again as soon as it passes the
     * target, not an interval later. */
    cr_assert_eq(submit(&f.q, &f.r[8], "N", GW_PRIO_NORMAL, 0, t), GW_ADM_QUEUED);
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), t + 5 * MS + 1);
    poll_names(&f.q, t + 5 * MS, one, drop);
    cr_assert_not(gw_adm_queue_overloaded(&f.q));
    poll_names(&f.q, t + 5 * MS + 1, one, drop);
    cr_assert_str_eq(drop, "N", "overloaded and shed in the same poll");
    cr_assert_not(gw_adm_queue_overloaded(&f.q), "which drained it");
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_OVERLOADS], 2);

    /* Sixteen intervals after the last drain the memory is gone: a full
     * interval above target is needed again. */
    uint64_t later = t + 5 * MS + 1 + 16 * 100 * MS;
    cr_assert_eq(submit(&f.q, &f.r[9], "M", GW_PRIO_NORMAL, 0, later), GW_ADM_QUEUED);
    cr_assert_eq(gw_adm_queue_next_event_us(&f.q), later + 100 * MS);
    /* Polled every ms, the entry was last within target at +5 ms, so the
     * interval runs out at +105 ms. */
    for (uint64_t u = later; u < later + 105 * MS; u += MS) {
        poll_names(&f.q, u, one, drop);
        cr_assert_not(gw_adm_queue_overloaded(&f.q));
        cr_assert_leq(gw_adm_queue_next_event_us(&f.q), later + 105 * MS);
    }
    poll_names(&f.q, later + 105 * MS, one, drop);
    cr_assert_str_eq(drop, "M");
}

Test(adm_queue, higher_class_elsewhere_gets_the_slot)
{
    /* Two workers' queues on one adm: a slot freed on worker A is left
     * for a HIGH waiter on worker B rather than taken by A's NORMAL. */
    static struct fix f;
    fix_init(&f, 16, 10 * SEC, 20 * SEC);
    struct gw_adm_queue qb;
    gw_adm_queue_init(&qb, &f.adm, T0);
    cr_assert_eq(submit(&f.q, &f.r[0], "AN", GW_PRIO_NORMAL, 0, T0), GW_ADM_QUEUED);
    cr_assert_eq(submit(&qb, &f.r[1], "BH", GW_PRIO_HIGH, 0, T0), GW_ADM_QUEUED);
    gw_adm_release(&f.adm, T0 + 1, 0, false);
    char one[256], drop[256];
    poll_names(&f.q, T0 + 1, one, drop);
    cr_assert_str_empty(one, "A yields");
    poll_names(&qb, T0 + 2, one, drop);
    cr_assert_str_eq(one, "BH");
    gw_adm_release(&f.adm, T0 + 3, 0, false);
    poll_names(&f.q, T0 + 3, one, drop);
    cr_assert_str_eq(one, "AN");
}

Test(adm_codel, high_class_kept_up_to_the_interval)
{
    static struct fix f;
    fix_init(&f, 64, 5 * MS, 100 * MS);
    uint64_t t = T0;
    char one[256], drop[256];
    /* The standing queue of the test above, but HIGH: when overload is
     * declared at T0 + 105 ms only what waited over the interval goes
     * (T0 .. T0 + 4 ms); the rest stays until it passes 100 ms too. */
    int i = 0;
    for (; t <= T0 + 105 * MS; t += MS, i = (i + 1) % 16) {
        if (gw_adm_queue_len(&f.q) < 16) {
            char nm[16];
            snprintf(nm, sizeof(nm), "H%d", i);
            submit(&f.q, &f.r[i], nm, GW_PRIO_HIGH, 0, t);
        }
        poll_names(&f.q, t, one, drop);
    }
    cr_assert(gw_adm_queue_overloaded(&f.q));
    cr_assert_eq(gw_adm_queue_len(&f.q), 11, "%u left", gw_adm_queue_len(&f.q));
    struct gw_adm_stats st;
    gw_adm_get_stats(&f.adm, &st);
    cr_assert_eq(st.counters[GW_ADM_ST_SHED], 5);
    poll_names(&f.q, T0 + 116 * MS, one, drop);
    cr_assert_eq(gw_adm_queue_len(&f.q), 0);
    cr_assert_not(gw_adm_queue_overloaded(&f.q));
}
