/* Counters that one worker thread owns. A request used to bump about ten
 * counters shared by every thread (its server's and its service's totals,
 * the latency histograms); each was a locked read-modify-write on a cache
 * line that bounced between cores. Now each worker counts into entries of
 * its own and /metrics (and the admin API) sums them when it is read.
 *
 * An owned counter has one writer, so an increment is a relaxed load and
 * a relaxed store: the compiler emits a plain add, no lock prefix. Readers
 * on other threads load it relaxed: they see whole values, perhaps one
 * increment late, and a sum over workers never goes backwards because no
 * entry is ever reset or folded elsewhere while its series exists.
 *
 * Only counters that nothing decides on belong here. State that must be
 * exact across threads (in-flight counts under a cap, breaker state,
 * consecutive failures for passive ejection, connection limits) stays in
 * shared atomics. */
#ifndef GW_COUNTERS_H
#define GW_COUNTERS_H

#include "core/common.h"
#include "core/metrics.h"

#include <stdalign.h>
#include <stdatomic.h>

#define GW_CACHE_LINE 64

/* Adds n to a counter that only the calling thread writes. */
static inline void gw_ctr_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void gw_ctr_inc(atomic_uint_fast64_t *c) { gw_ctr_add(c, 1); }
/* For owned gauges (open connections, idle pool size). */
static inline void gw_ctr_dec(atomic_uint_fast64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - 1, memory_order_relaxed);
}
static inline uint64_t gw_ctr_load(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* One worker's counters for one server (struct gw_server's ctr[]). The
 * request count is not stored: every counted request has exactly one
 * class, so it is the sum of resp_class[]. Aligned to a cache line, so two
 * workers' entries never share one. */
struct gw_srv_ctr {
    alignas(GW_CACHE_LINE) atomic_uint_fast64_t resp_class[6]; /* [0] no response, [1..5] 1xx..5xx */
    atomic_uint_fast64_t conns_opened;  /* new upstream TCP connections */
    atomic_uint_fast64_t conns_reused;  /* requests sent on a pooled connection */
    atomic_uint_fast64_t failures;      /* connect errors, resets, timeouts */
};

/* One worker's counters for one service (struct gw_svc_stats's ctr[]). */
struct gw_svc_ctr {
    alignas(GW_CACHE_LINE) atomic_uint_fast64_t resp_class[6];
    struct metrics_hist latency;        /* observed with metrics_hist_observe_owned_ns */
};

/* n zeroed entries of size bytes each, aligned to a cache line (free()
 * releases them); NULL when n is 0. Aborts when out of memory. */
void *gw_ctr_alloc(size_t n, size_t size);

#endif
