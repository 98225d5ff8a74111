/* Load balancing: picks one upstream server of a pool for each request.
 *
 * A struct gw_lb is built once per pool per configuration snapshot and is
 * then shared by every worker thread. Its server list is immutable; the
 * only state that changes at run time is a round-robin cursor (an atomic)
 * and, for the weighted algorithm, the smooth-weighted-round-robin current
 * weights (behind a tiny per-lb spinlock). The live facts about a server
 * (health, draining, ejection, in-flight count, up_since) are read from
 * the shared struct gw_server atomics at each pick, so a pick always sees
 * the latest health without rebuilding the lb.
 *
 * Algorithms (see docs/internals/balance.md):
 *   round_robin      rotation over usable servers; ignores weights
 *   weighted         nginx's smooth weighted round robin
 *   least_conn       fewest in-flight requests per unit of weight
 *   two_random       power of two random choices, weighted sampling
 *   consistent_hash  ring of vnodes, optional bounded loads
 * Slow start scales the effective weight of a recently recovered server
 * for weighted, least_conn and two_random; round_robin and
 * consistent_hash do not use it. */
#ifndef GW_BALANCE_H
#define GW_BALANCE_H

#include "core/common.h"

struct gw_server;

enum gw_lb_algo {
    GW_LB_ROUND_ROBIN,
    GW_LB_WEIGHTED,
    GW_LB_LEAST_CONN,
    GW_LB_TWO_RANDOM,
    GW_LB_CONSISTENT_HASH,
};

#define GW_LB_DEFAULT_VNODES 100
#define GW_LB_MAX_RING_POINTS (1u << 20) /* vnodes are scaled down past this */
#define GW_LB_SLOW_START_FLOOR 0.1       /* share of weight at the start of slow start */

struct gw_lb_opts {
    int vnodes;             /* ring points per unit of weight; <= 0: GW_LB_DEFAULT_VNODES */
    double bound_load;      /* bounded-load factor c (e.g. 1.25); 0: off; 0 < c < 1 is raised to 1 */
    uint64_t slow_start_ms; /* ramp length after a server comes back; 0: off */
};

struct gw_lb;

/* Builds a balancer over servers[0..n-1] (n may be 0: every pick returns
 * NULL). The array is copied; the servers themselves are not referenced,
 * so the caller (the configuration snapshot) must keep them alive for the
 * lifetime of the lb. opts may be NULL for the defaults. Never fails
 * (allocation failure aborts). Not thread-safe with respect to picks on
 * the same lb: build, then publish. */
struct gw_lb *gw_lb_new(enum gw_lb_algo algo, struct gw_server **servers, size_t n,
                        const struct gw_lb_opts *opts);

/* Frees the lb, not the servers. No pick may still be running on it. */
void gw_lb_free(struct gw_lb *lb);

/* Picks a server for one request attempt.
 *   hash      the request's key hash (gw_lb_hash); consistent_hash only
 *   now_ms    monotonic milliseconds, for ejection expiry and slow start
 *   exclude   servers already tried by this request (retries); may be NULL
 *             when nexclude is 0
 * Returns a usable server (gw_server_usable()), preferring one that is not
 * in exclude[]; when every usable server is excluded, returns an excluded
 * usable one. Returns NULL only when no server is usable. No reference is
 * taken. Thread-safe: called concurrently from every worker thread; only
 * the weighted algorithm takes a lock, held for one O(n) pass. */
struct gw_server *gw_lb_pick(struct gw_lb *lb, uint64_t hash, uint64_t now_ms,
                             struct gw_server *const *exclude, size_t nexclude);

enum gw_lb_algo gw_lb_algo(const struct gw_lb *lb);

/* "round_robin", "weighted", "least_conn", "two_random",
 * "consistent_hash" -> enum gw_lb_algo value; -1 for NULL or unknown. */
int gw_lb_parse_algo(const char *name);

/* The configuration name of algo; "unknown" for an out-of-range value. */
const char *gw_lb_algo_name(enum gw_lb_algo algo);

/* XXH3 64-bit hash of a request key, for gw_lb_pick()'s hash argument. */
uint64_t gw_lb_hash(const void *key, size_t len);

/* Effective weight of s at now_ms in thousandths of a weight unit: weight
 * * 1000 outside slow start, ramping linearly from GW_LB_SLOW_START_FLOOR
 * of that to all of it over slow_start_ms after the server last became
 * usable (max of up_since_ms and an expired down_until_ms). Exposed for
 * metrics and tests. */
int64_t gw_lb_effective_weight(struct gw_server *s, uint64_t slow_start_ms, uint64_t now_ms);

#endif
