/* An upstream server as every gateway thread sees it. Servers are shared
 * between configuration snapshots (a reload that keeps a server keeps its
 * object, so its health and counters survive) and between worker threads,
 * so everything that changes at run time is an atomic. Refcounted: each
 * snapshot holding the server owns one reference. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "core/common.h"
#include "core/net.h"
#include <stdatomic.h>

enum gw_health_state { GW_UP = 0, GW_DOWN = 1 };

struct gw_server {
    char *service;            /* owning service's name */
    char addr_str[64];        /* "127.0.0.1:9001": identity within a service */
    struct net_addr addr;
    int weight;               /* configured weight, >= 1 */
    size_t slot;              /* small unique integer: index of per-thread pools */
    atomic_int refcnt;

    atomic_int health;        /* GW_UP or GW_DOWN (active + passive checks) */
    atomic_bool draining;     /* admin drain: no new requests, in-flight finish */
    atomic_bool dynamic;      /* registered through the admin API */
    atomic_int inflight;      /* requests in flight to it, all threads */
    atomic_int consec_fail;   /* consecutive failed requests (passive check) */
    atomic_uint_fast64_t up_since_ms; /* when it last came up (slow start), 0: long ago */
    atomic_uint_fast64_t down_until_ms; /* passive ejection end (0: none) */

    /* Counters for /metrics, all threads. */
    atomic_uint_fast64_t req_total;
    atomic_uint_fast64_t resp_class[6];   /* [1..5] = 1xx..5xx, [0] = no response */
    atomic_uint_fast64_t conns_opened;    /* new upstream TCP connections */
    atomic_uint_fast64_t conns_reused;    /* requests sent on a pooled connection */
    atomic_uint_fast64_t failures;        /* connect errors, resets, timeouts */
};

struct gw_server *gw_server_new(const char *service, const struct net_addr *addr, int weight);
static inline void gw_server_ref(struct gw_server *s) { atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed); }
void gw_server_unref(struct gw_server *s);

/* Eligible for new requests: up, not draining, not passively ejected. */
static inline bool gw_server_usable(struct gw_server *s, uint64_t now_ms)
{
    return atomic_load_explicit(&s->health, memory_order_relaxed) == GW_UP &&
           !atomic_load_explicit(&s->draining, memory_order_relaxed) &&
           atomic_load_explicit(&s->down_until_ms, memory_order_relaxed) <= now_ms;
}

#endif
