/* Rate-limiting algorithms over one key's state, with time passed in.
 *
 * This module is pure: no I/O, no clock reads, no globals. The caller
 * passes `now` in microseconds of a monotonic clock (the gateway uses its
 * loop's cached CLOCK_MONOTONIC, ev_now_ns() / 1000), a rule (the policy)
 * and the state of one key (the counters). The local store (limit/store.h)
 * keeps one state per (rule, key); a rule with no per-client key can also
 * keep a single state of its own.
 *
 * Algorithms (docs/internals/ratelimit.md has the derivations):
 *   RL_TOKEN_BUCKET     GCRA; rate limit/window, capacity limit + burst.
 *   RL_LEAKY_BUCKET     GCRA as a meter; capacity 1 + burst; over it is
 *                       rejected (nginx limit_req ... burst=N nodelay).
 *   RL_LEAKY_QUEUE      GCRA as a queue: requests over the rate are
 *                       admitted with a delay that spaces them at 1/rate,
 *                       up to burst of them (limit_req burst=N; nodelay
 *                       and delay=D as in nginx).
 *   RL_FIXED_WINDOW     a counter per aligned window [k*W, (k+1)*W).
 *   RL_SLIDING_LOG      exact: a ring of the last `limit` admission times.
 *   RL_SLIDING_COUNTER  previous and current window counters, the previous
 *                       one weighted by its overlap with the sliding window.
 *
 * Precision: all arithmetic is in integers. The GCRA family keeps its
 * theoretical arrival time (TAT) in nanoseconds with an emission interval
 * T = floor(window_us * 1000 / limit) ns, so the rate is exact when limit
 * divides window_us * 1000 and otherwise at most 1 ns per T fast. The
 * window algorithms are exact to the microsecond; the sliding counter
 * compares its weighted estimate as an exact rational.
 *
 * Delay instead of reject: with max_delay_us > 0, a request that would be
 * rejected but could be admitted within max_delay_us is admitted with
 * delay_us > 0 and its slot is reserved, so later requests queue behind
 * it (exact: reservations count against the limit). The sliding counter
 * can reserve into the current or the next window only. The leaky queue
 * delays by its nature (burst bounds its wait) and ignores max_delay_us.
 *
 * Thread safety: for the three GCRA algorithms rl_check() is lock-free
 * and exact when called concurrently on one state: the state is a single
 * atomic 64-bit TAT updated with a compare-and-swap loop, and a rejection
 * writes nothing. The window algorithms need the caller to serialize
 * calls on one state (the store holds the key's shard lock). */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include "core/common.h"

#include <stdatomic.h>

struct buf;

enum rl_algo {
    RL_TOKEN_BUCKET,    /* GCRA, capacity limit + burst */
    RL_LEAKY_BUCKET,    /* GCRA meter, capacity 1 + burst, reject over */
    RL_LEAKY_QUEUE,     /* GCRA queue: delay to smooth (limit_req without nodelay) */
    RL_FIXED_WINDOW,    /* counter per aligned window */
    RL_SLIDING_LOG,     /* exact log of the last limit admissions */
    RL_SLIDING_COUNTER, /* weighted previous + current window counters */
};
#define RL_ALGO_COUNT 6

/* What the store does when a new key finds its shard full (limit/store.h). */
enum rl_on_full {
    RL_FULL_EVICT, /* default: evict the shard's least recently used key */
    RL_FULL_ALLOW, /* fail open: admit the request, keep no state for it */
    RL_FULL_DENY,  /* fail closed: reject the request */
};

#define RL_WINDOW_MAX_US (366ull * 86400 * 1000000) /* one (leap) year */
#define RL_LIMIT_MAX (1ull << 40)                  /* requests per window */
#define RL_BURST_MAX (1ull << 32)
#define RL_LOG_LIMIT_MAX 65536u /* sliding log: one 8-byte slot per unit */

struct rl_rule {
    /* Set by the configuration. */
    enum rl_algo algo;
    uint32_t id;           /* store namespace: each live rule has its own */
    const char *name;      /* policy name for the headers; NULL: "default" */
    uint64_t limit;        /* requests (cost units) per window */
    uint64_t window_us;    /* the window; the rate is limit / window */
    uint64_t burst;        /* bucket algorithms: extra capacity (0 for windows) */
    bool nodelay;          /* leaky queue: admit the burst at once (meter) */
    uint64_t delay;        /* leaky queue: excess admitted undelayed (nginx delay=) */
    uint64_t max_delay_us; /* delay instead of reject up to this long; 0: reject */
    enum rl_on_full on_full; /* store policy for a new key when full */
    /* Derived by rl_rule_prepare(); read-only afterwards. */
    uint64_t capacity;     /* units a fresh key may spend at once */
    uint64_t t_ns;         /* GCRA emission interval window/limit, ns */
    uint64_t dvt_ns;       /* GCRA tolerance capacity * t_ns */
    uint64_t free_ns;      /* leaky queue: excess admitted without delay, ns */
};

/* The per-key state. Allocate rl_state_size(rule) bytes (the sliding log
 * keeps its ring after the fixed part) and rl_state_init() it. */
struct rl_state {
    union {
        _Atomic uint64_t tat_ns; /* GCRA: theoretical arrival time, ns */
        struct {
            uint64_t start_us;   /* start of the current window */
            uint64_t count;      /* units in it, plus reservations beyond */
        } fw;
        struct {
            uint64_t start_us;   /* start of the current window */
            uint64_t prev, cur, next; /* units in the previous/current/next window */
        } sc;
        struct {
            uint32_t head;       /* ring index of the oldest entry */
            uint32_t n;          /* entries in the ring, at most limit */
        } log;
    } u;
    uint64_t ring[]; /* sliding log: admission times (us), non-decreasing */
};

struct rl_decision {
    bool allowed;
    uint64_t delay_us;       /* allowed: hold the request this long first (0: now) */
    uint64_t retry_after_us; /* rejected: the earliest wait after which the same
                                request could be admitted */
    uint64_t remaining;      /* units still available now, after this decision */
    uint64_t reset_us;       /* effective window: for this long no more than
                                `remaining` units can be admitted (the time until
                                the available quota next grows) */
};

/* Validates r's configured fields and fills the derived ones. Returns 0,
 * or -1 with *err set (caller frees) naming the problem. Config-time. */
int rl_rule_prepare(struct rl_rule *r, char **err);

/* Bytes of state one key needs under r (prepared). */
size_t rl_state_size(const struct rl_rule *r);

/* Sets st (rl_state_size(r) bytes) to a fresh key's state. */
void rl_state_init(const struct rl_rule *r, struct rl_state *st);

/* Time (us) from which st is equivalent to a fresh state: a key idle
 * until then may be forgotten without changing any decision. 0 when
 * already fresh. For the GCRA family, call with the state quiescent or
 * accept a value that is already stale. */
uint64_t rl_state_expiry(const struct rl_rule *r, const struct rl_state *st);

/* Decides one request of `cost` units (usually 1) at now_us and updates
 * st; fills *d and returns d->allowed.
 *   cost 0 is a query: always allowed with no delay, it reports
 *   remaining/reset and changes nothing (the window algorithms may roll
 *   their window, an equivalent state).
 *   cost above r->capacity can never be admitted: rejected with
 *   retry_after_us = window_us.
 * Thread context: see the file comment (GCRA: lock-free; windows: the
 * caller serializes). now_us may run slightly backwards across threads;
 * each algorithm treats an earlier now as the latest time it has seen. */
bool rl_check(const struct rl_rule *r, struct rl_state *st, uint64_t now_us, uint32_t cost,
              struct rl_decision *d);

/* Combines the decisions of several rules for one request: rejected if
 * any rejected (retry_after the largest among the rejections), otherwise
 * delayed by the largest delay; remaining is the smallest. Returns the
 * index of the most restrictive decision (the rejection with the longest
 * retry_after; else the smallest remaining, ties to the longest reset),
 * the one the RateLimit field reports. n must be at least 1. */
size_t rl_combine(const struct rl_decision *ds, size_t n, struct rl_decision *out);

/* "token_bucket", "leaky_bucket", "leaky_queue", "fixed_window",
 * "sliding_log", "sliding_counter" -> enum value; -1 for NULL or unknown
 * ("gcra" is accepted for the token bucket). */
int rl_parse_algo(const char *name);
/* Configuration name of algo; "unknown" when out of range. */
const char *rl_algo_name(enum rl_algo algo);

/* Response header fields (limit/headers.c), after
 * draft-ietf-httpapi-ratelimit-headers-11 (May 2026): RateLimit-Policy and
 * RateLimit are Structured Field Lists of Strings with parameters,
 *   RateLimit-Policy: "name";q=100;w=60
 *   RateLimit: "name";r=42;t=10
 * q is the rule's limit, w its window in seconds (rounded up, at least 1),
 * r the remaining units and t the effective window in seconds (rounded
 * up). Retry-After is delay-seconds, rounded up, at least 1. Every line
 * ends in CRLF. No allocation beyond growing b. */

/* "RateLimit-Policy: " with one item per rule, joined by ", ". */
void rl_format_policy(struct buf *b, const struct rl_rule *const *rules, size_t n);
/* "RateLimit: " for decision d of rule r. */
void rl_format_ratelimit(struct buf *b, const struct rl_rule *r, const struct rl_decision *d);
/* "Retry-After: " from d->retry_after_us. */
void rl_format_retry_after(struct buf *b, const struct rl_decision *d);
/* All of them for one request's decisions ds[i] under rules[i] (n >= 1):
 * RateLimit-Policy listing every rule, RateLimit for the most restrictive
 * decision (rl_combine), and Retry-After when the request is rejected. */
void rl_headers_append(struct buf *b, const struct rl_rule *const *rules,
                       const struct rl_decision *ds, size_t n);

#endif
