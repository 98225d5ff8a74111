/* Resilience objects per service and the per-worker admission queues.
 * The modules (breaker.c, retrybudget.c, admission.c, adaptive.c) hold
 * the algorithms; this file gives them a home that outlives snapshots and
 * connects the queues to the workers' loops. The proxy's hooks are in
 * proxy/resil.c (admission, breaker, fallback, settlement) and proxy.c
 * (retries in gw__conn_up_failed). */
#include "gateway/proxy/conn.h"

#include <stdlib.h>
#include <string.h>

#define GW_METRIC(x) "floodgate_gateway_" x

/* Field by field: the structs have padding, which a copy need not keep. */
static bool same_cfg(const struct gw_cfg_resil *a, const struct gw_cfg_resil *b)
{
    return a->breaker_on == b->breaker_on && gw_breaker_cfg_equal(&a->breaker, &b->breaker) &&
           gw_rb_cfg_equal(&a->retry, &b->retry) && a->adm_on == b->adm_on &&
           gw_adm_cfg_equal(&a->adm, &b->adm) && a->adaptive == b->adaptive &&
           gw_limit_cfg_equal(&a->limit, &b->limit);
}

static void on_breaker(void *data, struct gw_breaker *b, enum gw_breaker_state from, enum gw_breaker_state to,
                       enum gw_breaker_reason why, uint64_t now_us)
{
    struct gw_svc_rt *rt = data;
    log_warn("service %s: circuit breaker %s -> %s (%s)", rt->name, gw_breaker_state_name(from),
             gw_breaker_state_name(to), gw_breaker_reason_name(why));
}

struct gw_svc_rt *gw__svc_rt_for(struct gw *g, struct gw_svc_stats *st, const struct gw_cfg_resil *cfg)
{
    struct gw_cfg_resil want;
    memset(&want, 0, sizeof want);
    if (cfg) {
        want = *cfg;
    } else {
        gw_breaker_cfg_default(&want.breaker);
        gw_rb_cfg_default(&want.retry);
        gw_adm_cfg_default(&want.adm);
        gw_limit_cfg_default(&want.limit);
    }
    want.priority_header = want.fallback_body = want.fallback_type = want.fallback_service = NULL;
    want.fallback_status = 0;
    if (st->rt && same_cfg(&st->rt->cfg, &want))
        return gw_svc_rt_ref(st->rt);
    uint64_t now_us = ev_clock_ns() / 1000;
    struct gw_svc_rt *rt = xcalloc(1, sizeof *rt);
    atomic_init(&rt->refcnt, 2); /* the caller's and st->rt */
    rt->live = &g->rts_live;
    atomic_fetch_add_explicit(rt->live, 1, memory_order_relaxed);
    rt->id = g->nrts++;
    rt->cfg = want;
    rt->name = xstrdup(st->name);
    if (want.breaker_on) {
        rt->breaker = gw_breaker_new(&want.breaker, now_us);
        gw_breaker_set_listener(rt->breaker, on_breaker, rt);
    }
    rt->rb = gw_rb_new(&want.retry);
    if (want.adaptive)
        rt->limiter = gw_limit_new(&want.limit, now_us);
    gw_adm_init(&rt->adm, &want.adm, rt->limiter);
    rt->adm_on = want.adm_on;
    gw_svc_rt_unref(st->rt);
    st->rt = rt;
    return rt;
}

void gw_svc_rt_unref(struct gw_svc_rt *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    atomic_fetch_sub_explicit(rt->live, 1, memory_order_relaxed);
    gw_breaker_free(rt->breaker);
    gw_rb_free(rt->rb);
    gw_limit_free(rt->limiter);
    free(rt->name);
    free(rt);
}

static void admq_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
    gw_worker_poll_admission(t->ud);
}

struct gw_adm_queue *gw_worker_admq(struct gw_worker *w, struct gw_svc_rt *rt)
{
    if ((size_t)rt->id >= w->nadmq) {
        size_t n = w->nadmq ? w->nadmq : 8;
        while (n <= (size_t)rt->id)
            n *= 2;
        w->admq = xrealloc(w->admq, n * sizeof *w->admq);
        memset(w->admq + w->nadmq, 0, (n - w->nadmq) * sizeof *w->admq);
        if (!w->nadmq)
            ev_timer_init(&w->admq_timer, admq_timer_cb, w);
        w->nadmq = n;
    }
    if (!w->admq[rt->id]) {
        w->admq[rt->id] = xcalloc(1, sizeof **w->admq);
        gw_adm_queue_init(w->admq[rt->id], &rt->adm, ev_now_ns(w->loop) / 1000);
    }
    return w->admq[rt->id];
}

/* Admits waiters into freed slots, answers expired and shed ones, and
 * arms the timer for the next deadline. Each loop iteration and on the
 * timer. */
void gw_worker_poll_admission(struct gw_worker *w)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < w->nadmq; i++) {
        struct gw_adm_queue *q = w->admq[i];
        if (!q || gw_adm_queue_len(q) == 0)
            continue;
        struct gw_adm_list ready, dropped;
        gw_adm_list_init(&ready);
        gw_adm_list_init(&dropped);
        gw_adm_queue_poll(q, ev_now_ns(w->loop) / 1000, &ready, &dropped);
        struct gw_adm_entry *e;
        while ((e = gw_adm_list_pop(&dropped)))
            gw__admission_done(e->data, false);
        while ((e = gw_adm_list_pop(&ready)))
            gw__admission_done(e->data, true);
        uint64_t t = gw_adm_queue_next_event_us(q);
        if (t < next)
            next = t;
    }
    if (next != UINT64_MAX) {
        uint64_t ms = (next + 999) / 1000;
        if (!ev_timer_active(&w->admq_timer) || w->admq_timer.when != ms)
            ev_timer_start_at(w->loop, &w->admq_timer, ms);
    } else if (w->nadmq) {
        ev_timer_stop(w->loop, &w->admq_timer);
    }
}

void gw_worker_free_admq(struct gw_worker *w)
{
    for (size_t i = 0; i < w->nadmq; i++) {
        if (!w->admq[i])
            continue;
        struct gw_adm_list out;
        gw_adm_list_init(&out);
        gw_adm_queue_close(w->admq[i], &out);
        free(w->admq[i]);
    }
    if (w->nadmq)
        ev_timer_stop(w->loop, &w->admq_timer);
    free(w->admq);
    w->admq = NULL;
    w->nadmq = 0;
}

void gw_resil_metrics_render(struct gw *g, struct buf *b)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    if (!s)
        return;
    uint64_t now_us = ev_clock_ns() / 1000;
    metrics_family(b, GW_METRIC("breaker_state"), "gauge",
                   "Circuit breaker state per service: 0 closed, 1 open, 2 half-open.");
    for (size_t i = 0; i < s->nservices; i++) {
        struct gw_svc_rt *rt = s->services[i]->rt;
        if (rt && rt->breaker)
            metrics_sample_u64(b, GW_METRIC("breaker_state"), (const char *const[]){"service", rt->name, NULL},
                               (uint64_t)gw_breaker_state(rt->breaker));
    }
    metrics_family(b, GW_METRIC("admission_inflight"), "gauge", "Requests holding an admission slot.");
    for (size_t i = 0; i < s->nservices; i++) {
        struct gw_svc_rt *rt = s->services[i]->rt;
        if (rt && rt->adm_on) {
            struct gw_adm_stats st;
            gw_adm_get_stats(&rt->adm, &st);
            metrics_sample_u64(b, GW_METRIC("admission_inflight"), (const char *const[]){"service", rt->name, NULL},
                               st.inflight);
        }
    }
    metrics_family(b, GW_METRIC("admission_limit"), "gauge", "Current concurrency limit (static or adaptive).");
    for (size_t i = 0; i < s->nservices; i++) {
        struct gw_svc_rt *rt = s->services[i]->rt;
        if (rt && rt->adm_on)
            metrics_sample_u64(b, GW_METRIC("admission_limit"), (const char *const[]){"service", rt->name, NULL},
                               gw_adm_limit(&rt->adm));
    }
    (void)now_us;
    gw_snapshot_unref(s);
    uint64_t v[5] = {0};
    for (int i = 0; i < g->nworkers; i++) {
        struct gw_worker_stats *st = &g->workers[i]->st;
        v[0] += atomic_load_explicit(&st->shed, memory_order_relaxed);
        v[1] += atomic_load_explicit(&st->breaker_refused, memory_order_relaxed);
        v[2] += atomic_load_explicit(&st->fallbacks, memory_order_relaxed);
        v[3] += atomic_load_explicit(&st->retries, memory_order_relaxed);
        v[4] += atomic_load_explicit(&st->retries_denied, memory_order_relaxed);
    }
    static const char *const names[5][2] = {
        {"shed_total", "Requests refused or dropped by admission control (503)."},
        {"breaker_refused_total", "Requests refused by an open circuit breaker."},
        {"fallbacks_total", "Requests answered by a fallback (static response or fallback service)."},
        {"retries_total", "Retries sent to another server."},
        {"retries_denied_total", "Retries the retry budget refused."},
    };
    for (int k = 0; k < 5; k++) {
        char name[96];
        snprintf(name, sizeof name, "floodgate_gateway_%s", names[k][0]);
        metrics_family(b, name, "counter", names[k][1]);
        metrics_sample_u64(b, name, NULL, v[k]);
    }
}
