/* Retry budget: bounds retries to a fraction of the traffic so that
 * retries can never multiply a flood (Finagle's RetryBudget, Envoy's
 * retry_budget).
 *
 * Over a sliding window (default 10 s in 1 s buckets) the gateway counts
 * the client requests it received and the retries it granted. A retry is
 * granted only while, counting it,
 *
 *     retries in window <= max(min_per_sec * window seconds,
 *                              floor(ratio * requests in window))
 *
 * so a quiet service may still retry a little (the floor) and a busy one
 * at most ratio more attempts than it has requests. Retries are not
 * requests: they never earn budget.
 *
 * One budget per service (or per route), shared by all worker threads.
 * Counting a request is a lock-free compare-and-swap on one word; asking
 * for a retry takes a tiny spinlock so that concurrent askers can never
 * overdraw the budget. No I/O and no clock: every call takes now_us. See
 * docs/internals/resilience.md. */
#ifndef GW_RETRYBUDGET_H
#define GW_RETRYBUDGET_H

#include "core/common.h"

#define GW_RB_MAX_BUCKETS 120u

/* Defaults (gw_rb_cfg_default) in brackets. */
struct gw_rb_cfg {
    double ratio;         /* retries allowed per request in the window, 0..10 [0.2] */
    uint32_t min_per_sec; /* floor: retries per second always allowed [10] */
    uint64_t window_us;   /* length of the sliding window [10 s] */
    uint32_t buckets;     /* the window moves by window_us / buckets, 1..GW_RB_MAX_BUCKETS [10] */
};

struct gw_rb_stats {
    uint64_t requests;        /* requests counted, since creation */
    uint64_t retries;         /* retries granted, since creation */
    uint64_t denied;          /* retries refused, since creation */
    uint32_t window_requests; /* requests in the window now */
    uint32_t window_retries;  /* retries granted in the window now */
    uint32_t budget;          /* retries the window allows now */
};

struct gw_rb;

/* Fills cfg with the defaults listed above. */
void gw_rb_cfg_default(struct gw_rb_cfg *cfg);
/* Whether a and b hold the same settings (field by field: padding and
 * the order of the fields do not matter). */
bool gw_rb_cfg_equal(const struct gw_rb_cfg *a, const struct gw_rb_cfg *b);

/* Validates cfg. Returns 0, or -1 and *err (malloc'd, caller frees). */
int gw_rb_cfg_check(const struct gw_rb_cfg *cfg, char **err);

/* Creates an empty budget from a copy of cfg (which must pass
 * gw_rb_cfg_check; asserted). Never fails (allocation aborts). */
struct gw_rb *gw_rb_new(const struct gw_rb_cfg *cfg);

/* Frees rb. No other thread may still use it. */
void gw_rb_free(struct gw_rb *rb);

/* Counts one client request at now_us. Call once per request received,
 * not per attempt. Lock-free, any thread. */
void gw_rb_request(struct gw_rb *rb, uint64_t now_us);

/* Asks for one retry at now_us. Returns true and spends one unit of
 * budget when the retry fits (see above), false otherwise (answer with the
 * failed attempt's response). Never grants more than the budget, however
 * many threads ask at once. Any thread; short spinlock. */
bool gw_rb_try_retry(struct gw_rb *rb, uint64_t now_us);

/* Fills *out; the window counts are as of now_us. Any thread. */
void gw_rb_get_stats(struct gw_rb *rb, uint64_t now_us, struct gw_rb_stats *out);

#endif
