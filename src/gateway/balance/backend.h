/* An upstream server as every gateway thread sees it. Servers are shared
 * between configuration snapshots (a reload that keeps a server keeps its
 * object, so its health and counters survive) and between worker threads,
 * so everything that changes at run time is an atomic. Refcounted: each
 * snapshot holding the server owns one reference. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "core/common.h"
#include "core/net.h"
#include "gateway/resilience/breaker.h"
#include "gateway/balance/counters.h"
#include <pthread.h>
#include <stdatomic.h>

/* What the servers of one process share (struct gw embeds it): the slot
 * numbering and the breakers that gw_server_breaker_config() replaced. */
struct gw_servers {
    atomic_size_t next_slot;       /* the next server's slot (any thread) */
    pthread_mutex_t retired_lock;  /* guards retired, nretired */
    struct gw_breaker **retired;   /* replaced breakers, freed by gw_servers_free() */
    size_t nretired;
};

void gw_servers_init(struct gw_servers *p);
/* Frees the retired breakers (at exit, no request left). */
void gw_servers_free(struct gw_servers *p);

enum gw_health_state { GW_UP = 0, GW_DOWN = 1 };

struct gw_server {
    char *service;            /* owning service's name */
    char addr_str[64];        /* "127.0.0.1:9001": identity within a service */
    struct net_addr addr;
    int weight;               /* configured weight, >= 1 */
    size_t slot;              /* small integer unique in owner: index of per-thread pools */
    struct gw_servers *owner; /* the process's servers (slots, retired breakers) */
    atomic_int refcnt;

    atomic_int health;        /* GW_UP or GW_DOWN (active + passive checks) */
    atomic_bool draining;     /* admin drain: no new requests, in-flight finish */
    atomic_bool dynamic;      /* registered through the admin API */
    atomic_int inflight;      /* requests in flight to it, all threads */
    atomic_int max_inflight;  /* the service's concurrency.per_server, 0: no cap */
    atomic_int consec_fail;   /* consecutive failed requests (passive check) */
    atomic_uint_fast64_t up_since_ms; /* when it last came up (slow start), 0: long ago */
    atomic_uint_fast64_t down_until_ms; /* passive ejection end (0: none) */
    /* Circuit breaker of this server (the service's server_breaker:), or
     * NULL. Set and replaced under ctl_lock by gw_server_breaker_config(); a
     * replaced one stays allocated until gw_servers_free() (at exit), so requests
     * that were admitted by it can still record into it. */
    _Atomic(struct gw_breaker *) breaker;
    struct gw_breaker_cfg brk_cfg;        /* what breaker was built from (ctl_lock) */
    atomic_uint_fast64_t brk_entered[3];  /* breaker transitions, by state entered */

    /* Counters for /metrics and the admin API. Worker i counts into
     * ctr[i] alone (counters.h); the shared atomics below take the counts
     * of any thread without an entry (nctr is 0 for a server made before
     * the workers' number was known). gw_server_counts() adds both. The
     * entries live and die with the object, so a reader holding a
     * snapshot (which holds the server) never reads freed memory. */
    struct gw_srv_ctr *ctr;
    int nctr;
    atomic_uint_fast64_t req_total;
    atomic_uint_fast64_t resp_class[6];   /* [1..5] = 1xx..5xx, [0] = no response */
    atomic_uint_fast64_t conns_opened;    /* new upstream TCP connections */
    atomic_uint_fast64_t conns_reused;    /* requests sent on a pooled connection */
    atomic_uint_fast64_t failures;        /* connect errors, resets, timeouts */
};

/* A server's counters summed over its workers' entries and the shared
 * part, as /metrics and the admin API show them. */
struct gw_srv_counts {
    uint64_t requests;
    uint64_t resp_class[6];
    uint64_t conns_opened, conns_reused, failures;
};

struct gw_server *gw_server_new(struct gw_servers *owner, const char *service, const struct net_addr *addr, int weight);
static inline void gw_server_ref(struct gw_server *s) { atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed); }
void gw_server_unref(struct gw_server *s);
/* Gives s one counter entry per worker (nworkers of them); called once,
 * before s is published in a snapshot. */
void gw_server_alloc_counters(struct gw_server *s, int nworkers);
void gw_server_counts(const struct gw_server *s, struct gw_srv_counts *out);

/* Worker w's own counters on s, or NULL: count into the shared part. */
static inline struct gw_srv_ctr *gw_server_ctr(struct gw_server *s, int w)
{
    return (unsigned)w < (unsigned)s->nctr ? &s->ctr[w] : NULL;
}

/* Counts one on s from worker w: field (conns_opened, conns_reused,
 * failures) of w's entry, or of the shared part without one. */
#define GW_SERVER_COUNT(s, w, field)                                              \
    do {                                                                          \
        struct gw_srv_ctr *e_ = gw_server_ctr((s), (w));                          \
        if (e_)                                                                   \
            gw_ctr_inc(&e_->field);                                               \
        else                                                                      \
            atomic_fetch_add_explicit(&(s)->field, 1, memory_order_relaxed);      \
    } while (0)

/* Counts a response of status class cls (0: none) sent through s. */
static inline void gw_server_count_resp(struct gw_server *s, int w, int cls)
{
    struct gw_srv_ctr *e = gw_server_ctr(s, w);
    if (e) {
        gw_ctr_inc(&e->resp_class[cls]);
        return;
    }
    atomic_fetch_add_explicit(&s->req_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->resp_class[cls], 1, memory_order_relaxed);
}

/* Eligible for new requests: up, not draining, not passively ejected,
 * under its in-flight cap, and its breaker (if any) would admit a call:
 * closed, open past its wait, or half-open with a probe place free. */
static inline bool gw_server_usable(struct gw_server *s, uint64_t now_ms)
{
    if (atomic_load_explicit(&s->health, memory_order_relaxed) != GW_UP ||
        atomic_load_explicit(&s->draining, memory_order_relaxed) ||
        atomic_load_explicit(&s->down_until_ms, memory_order_relaxed) > now_ms)
        return false;
    int cap = atomic_load_explicit(&s->max_inflight, memory_order_relaxed);
    if (cap && atomic_load_explicit(&s->inflight, memory_order_relaxed) >= cap)
        return false;
    struct gw_breaker *b = atomic_load_explicit(&s->breaker, memory_order_acquire);
    return !b || gw_breaker_admits(b, now_ms * 1000);
}

/* Takes an in-flight place on s: exact under the cap (a compare-and-swap
 * loop), false when s is full. Released by decrementing inflight. */
static inline bool gw_server_acquire(struct gw_server *s)
{
    int cap = atomic_load_explicit(&s->max_inflight, memory_order_relaxed);
    if (!cap) {
        atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
        return true;
    }
    int n = atomic_load_explicit(&s->inflight, memory_order_relaxed);
    do {
        if (n >= cap)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&s->inflight, &n, n + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

/* Gives s a circuit breaker built from cfg, keeping the current one when
 * it was built from the same settings; cfg NULL removes it. The
 * transition listener logs, counts brk_entered[] and, on closing,
 * restarts slow start (up_since_ms). Called by the snapshot builder
 * (ctl_lock held). */
void gw_server_breaker_config(struct gw_server *s, const struct gw_breaker_cfg *cfg, uint64_t now_us);

#endif
