/* Lifetime of struct gw_server (see server.h) and of its circuit
 * breaker. */
#include "gateway/server.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_size_t next_slot;

struct gw_server *gw_server_new(const char *service, const struct net_addr *addr, int weight)
{
    struct gw_server *s = xcalloc(1, sizeof *s);
    s->service = xstrdup(service);
    s->addr = *addr;
    net_addr_str(addr, s->addr_str, sizeof s->addr_str);
    s->weight = weight > 0 ? weight : 1;
    s->slot = atomic_fetch_add(&next_slot, 1);
    atomic_init(&s->refcnt, 1);
    atomic_init(&s->health, GW_UP);
    return s;
}

void gw_server_unref(struct gw_server *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    gw_breaker_free(atomic_load_explicit(&s->breaker, memory_order_relaxed));
    free(s->service);
    free(s);
}

/* ---- circuit breaker ---- */

static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gw_breaker **retired; /* replaced breakers, freed at exit */
static size_t nretired;

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

static bool same_breaker_cfg(const struct gw_breaker_cfg *a, const struct gw_breaker_cfg *b)
{
    return a->consecutive_failures == b->consecutive_failures && a->window_type == b->window_type &&
           a->window_size == b->window_size && a->min_calls == b->min_calls &&
           a->failure_rate_pct == b->failure_rate_pct && a->slow_rate_pct == b->slow_rate_pct &&
           a->slow_call_us == b->slow_call_us && a->open_wait_us == b->open_wait_us &&
           a->half_open_probes == b->half_open_probes && a->half_open_timeout_us == b->half_open_timeout_us;
}

static void retire(struct gw_breaker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&retired_lock);
    retired = xrealloc(retired, (nretired + 1) * sizeof *retired);
    retired[nretired++] = b;
    pthread_mutex_unlock(&retired_lock);
}

void gw_server_breaker_config(struct gw_server *s, const struct gw_breaker_cfg *cfg, uint64_t now_us)
{
    struct gw_breaker *cur = atomic_load_explicit(&s->breaker, memory_order_relaxed);
    if (!cfg) {
        if (cur) {
            atomic_store_explicit(&s->breaker, NULL, memory_order_release);
            retire(cur);
        }
        return;
    }
    if (cur && same_breaker_cfg(&s->brk_cfg, cfg))
        return;
    struct gw_breaker *b = gw_breaker_new(cfg, now_us);
    gw_breaker_set_listener(b, on_transition, s);
    s->brk_cfg = *cfg;
    /* Release: a worker that loads the pointer sees the breaker built. */
    atomic_store_explicit(&s->breaker, b, memory_order_release);
    retire(cur);
}

void gw_server_breakers_free_retired(void)
{
    pthread_mutex_lock(&retired_lock);
    for (size_t i = 0; i < nretired; i++)
        gw_breaker_free(retired[i]);
    free(retired);
    retired = NULL;
    nretired = 0;
    pthread_mutex_unlock(&retired_lock);
}
