/* Lifetime of struct gw_server (see server.h) and of its circuit
 * breaker. */
#include "gateway/balance/backend.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_servers_init(struct gw_servers *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->retired_lock, NULL);
}

void gw_servers_free(struct gw_servers *p)
{
    pthread_mutex_lock(&p->retired_lock);
    for (size_t i = 0; i < p->nretired; i++)
        gw_breaker_free(p->retired[i]);
    free(p->retired);
    p->retired = NULL;
    p->nretired = 0;
    pthread_mutex_unlock(&p->retired_lock);
    pthread_mutex_destroy(&p->retired_lock);
}

struct gw_server *gw_server_new(struct gw_servers *owner, const char *service, const struct net_addr *addr,
                                int weight)
{
    struct gw_server *s = xcalloc(1, sizeof *s);
    s->owner = owner;
    s->service = xstrdup(service);
    s->addr = *addr;
    net_addr_str(addr, s->addr_str, sizeof s->addr_str);
    s->weight = weight > 0 ? weight : 1;
    s->slot = atomic_fetch_add(&owner->next_slot, 1);
    atomic_init(&s->refcnt, 1);
    atomic_init(&s->health, GW_UP);
    return s;
}

void gw_server_unref(struct gw_server *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    gw_breaker_free(atomic_load_explicit(&s->breaker, memory_order_relaxed));
    free(s->ctr);
    free(s->service);
    free(s);
}

/* ---- counters ---- */

void *gw_ctr_alloc(size_t n, size_t size)
{
    if (!n)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, GW_CACHE_LINE, n * size) != 0)
        p = xcalloc(n, size); /* out of memory: xcalloc reports it and aborts */
    memset(p, 0, n * size);
    return p;
}

void gw_server_alloc_counters(struct gw_server *s, int nworkers)
{
    ASSERT(!s->ctr);
    s->nctr = nworkers > 0 ? nworkers : 0;
    s->ctr = gw_ctr_alloc((size_t)s->nctr, sizeof *s->ctr);
}

void gw_server_counts(const struct gw_server *s, struct gw_srv_counts *out)
{
    memset(out, 0, sizeof *out);
    out->requests = gw_ctr_load(&s->req_total);
    for (int c = 0; c < 6; c++)
        out->resp_class[c] = gw_ctr_load(&s->resp_class[c]);
    out->conns_opened = gw_ctr_load(&s->conns_opened);
    out->conns_reused = gw_ctr_load(&s->conns_reused);
    out->failures = gw_ctr_load(&s->failures);
    for (int i = 0; i < s->nctr; i++) {
        const struct gw_srv_ctr *e = &s->ctr[i];
        for (int c = 0; c < 6; c++) {
            uint64_t v = gw_ctr_load(&e->resp_class[c]);
            out->resp_class[c] += v;
            out->requests += v;
        }
        out->conns_opened += gw_ctr_load(&e->conns_opened);
        out->conns_reused += gw_ctr_load(&e->conns_reused);
        out->failures += gw_ctr_load(&e->failures);
    }
}

/* ---- circuit breaker ---- */

static void on_transition(void *data, struct gw_breaker *b, enum gw_breaker_state from,
                          enum gw_breaker_state to, enum gw_breaker_reason why, uint64_t now_us)
{
    struct gw_server *s = data;
    if ((unsigned)to < ARRAY_SIZE(s->brk_entered))
        atomic_fetch_add_explicit(&s->brk_entered[to], 1, memory_order_relaxed);
    /* Back in service: its share ramps up again under slow start, like a
     * server that came up. */
    if (to == GW_BREAKER_CLOSED)
        atomic_store_explicit(&s->up_since_ms, now_us / 1000, memory_order_relaxed);
    log_warn("server %s/%s: circuit breaker %s -> %s (%s)", s->service, s->addr_str,
             gw_breaker_state_name(from), gw_breaker_state_name(to), gw_breaker_reason_name(why));
}

static void retire(struct gw_servers *p, struct gw_breaker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&p->retired_lock);
    p->retired = xrealloc(p->retired, (p->nretired + 1) * sizeof *p->retired);
    p->retired[p->nretired++] = b;
    pthread_mutex_unlock(&p->retired_lock);
}

void gw_server_breaker_config(struct gw_server *s, const struct gw_breaker_cfg *cfg, uint64_t now_us)
{
    struct gw_breaker *cur = atomic_load_explicit(&s->breaker, memory_order_relaxed);
    if (!cfg) {
        if (cur) {
            atomic_store_explicit(&s->breaker, NULL, memory_order_release);
            retire(s->owner, cur);
        }
        return;
    }
    if (cur && gw_breaker_cfg_equal(&s->brk_cfg, cfg))
        return;
    struct gw_breaker *b = gw_breaker_new(cfg, now_us);
    gw_breaker_set_listener(b, on_transition, s);
    s->brk_cfg = *cfg;
    /* Release: a worker that loads the pointer sees the breaker built. */
    atomic_store_explicit(&s->breaker, b, memory_order_release);
    retire(s->owner, cur);
}
