/* Adaptive concurrency limit: finds how many requests a service can
 * work on at once without queueing, from the latency of the requests
 * themselves, with no configured capacity (Netflix concurrency-limits,
 * Envoy's adaptive concurrency filter).
 *
 * Both algorithms compare each window's average round-trip time with the
 * no-load RTT (min_rtt): the latency the service shows when it is not
 * queueing. min_rtt is measured by pinning the limit to min_limit for
 * min_rtt_samples requests, at start and then every min_rtt_interval_us
 * (Envoy's periodic min-RTT calculation); a window whose average is lower
 * lowers it at once. Measuring while pinned is what keeps the baseline
 * honest under sustained overload, where the latency seen at the current
 * limit is itself inflated.
 *
 *   GW_LIMIT_GRADIENT  limit = limit * g + sqrt(limit), smoothed, where
 *                      g = min_rtt * (1 + buffer) / window RTT in
 *                      [0.5, 2]: grows while latency stays at the no-load
 *                      level, shrinks in proportion when it rises.
 *   GW_LIMIT_AIMD      limit += increase while the window RTT stays under
 *                      tolerance * min_rtt, limit *= backoff when not.
 *
 * Either backs off by `backoff` for a window with drops (the caller's
 * verdict: timeouts, 503/429 from the service, connection refused), and
 * neither grows while the service is not using half of its limit (app
 * limited). When the limit sits at min_limit and latency still says
 * "queueing" for three windows in a row, the no-load RTT is stale (the
 * service got slower) and it is measured again at once.
 *
 * Samples come from every worker thread. They are aggregated under a
 * tiny spinlock; the thread whose sample closes a window recomputes the
 * limit and publishes it in an atomic, which gw_limit_get() reads with no
 * lock. No I/O, no clock: every call takes now_us. See
 * docs/internals/resilience.md. */
#ifndef GW_ADAPTIVE_H
#define GW_ADAPTIVE_H

#include "core/common.h"

enum gw_limit_algo {
    GW_LIMIT_GRADIENT = 0,
    GW_LIMIT_AIMD = 1,
};

#define GW_LIMIT_MAX_PROBE_SAMPLES 64u

/* Defaults (gw_limit_cfg_default) in brackets. */
struct gw_limit_cfg {
    enum gw_limit_algo algo;      /* [GRADIENT] */
    uint32_t initial_limit;       /* limit before the first adjustment [20] */
    uint32_t min_limit;           /* floor, and the concurrency min_rtt is measured at [4] */
    uint32_t max_limit;           /* ceiling [1000] */
    uint64_t window_us;           /* the limit is recomputed at most this often [100 ms] */
    uint32_t window_min_samples;  /* ... and from at least this many samples [10] */
    uint64_t min_rtt_interval_us; /* re-measure min_rtt this often; 0: only at start [60 s] */
    uint32_t min_rtt_samples;     /* samples per measurement, 1..GW_LIMIT_MAX_PROBE_SAMPLES [25] */
    uint64_t timeout_us;          /* a sample at least this slow counts as a drop; 0: off [0] */
    double backoff;               /* decrease factor for drops (and AIMD latency), 0.5..1 [0.9] */
    double buffer;                /* GRADIENT: RTT up to min_rtt * (1 + buffer) is no-load [0.1] */
    double smoothing;             /* GRADIENT: weight of each new estimate, 0..1 [0.5] */
    double tolerance;             /* AIMD: back off when window RTT > tolerance * min_rtt [1.2] */
    uint32_t increase;            /* AIMD: added per window otherwise [1] */
};

struct gw_limit_stats {
    uint32_t limit;       /* what gw_limit_get() returns now */
    double estimate;      /* the running estimate (kept while measuring min_rtt) */
    uint64_t min_rtt_us;  /* no-load RTT, 0 until first measured */
    uint64_t last_rtt_us; /* average RTT of the last closed window */
    bool measuring;       /* pinned at min_limit to measure the no-load RTT */
    uint64_t samples;     /* samples received, since creation */
    uint64_t drops;       /* of which drops */
    uint64_t updates;     /* windows closed */
    uint64_t measurements; /* no-load RTT measurements completed */
};

struct gw_limit;

/* Fills cfg with the defaults listed above. */
void gw_limit_cfg_default(struct gw_limit_cfg *cfg);
/* Whether a and b hold the same settings (field by field: padding and
 * the order of the fields do not matter). */
bool gw_limit_cfg_equal(const struct gw_limit_cfg *a, const struct gw_limit_cfg *b);

/* Validates cfg. Returns 0, or -1 and *err (malloc'd, caller frees). */
int gw_limit_cfg_check(const struct gw_limit_cfg *cfg, char **err);

/* Creates a limiter from a copy of cfg (which must pass
 * gw_limit_cfg_check; asserted). It starts by measuring the no-load RTT,
 * so gw_limit_get() returns min_limit until min_rtt_samples requests
 * started at or after now_us have completed, then initial_limit. Never
 * fails (allocation aborts). */
struct gw_limit *gw_limit_new(const struct gw_limit_cfg *cfg, uint64_t now_us);

/* Frees l. No other thread may still use it. */
void gw_limit_free(struct gw_limit *l);

/* Feeds one completed request: it finished at now_us after rtt_us (from
 * being sent to the service to the end of its response), inflight is the
 * number of requests in flight to the service when it completed (its own
 * included), dropped is true when the outcome signals overload. rtt_us 0
 * is not a sample and is ignored. May close a window and publish a new
 * limit. Any thread; short spinlock. */
void gw_limit_on_sample(struct gw_limit *l, uint64_t now_us, uint64_t rtt_us, uint32_t inflight,
                        bool dropped);

/* The current limit, min_limit..max_limit. One relaxed atomic load; any
 * thread. */
uint32_t gw_limit_get(const struct gw_limit *l);

/* Fills *out under the lock. Any thread. */
void gw_limit_get_stats(struct gw_limit *l, struct gw_limit_stats *out);

/* "gradient" / "aimd"; gw_limit_algo_parse returns -1 for other names. */
const char *gw_limit_algo_name(enum gw_limit_algo a);
int gw_limit_algo_parse(const char *s, size_t len);

#endif
