/* Circuit breaker: one per upstream server and one per service.
 *
 * The classic three states. CLOSED lets every call through and watches
 * the outcomes; it trips to OPEN on a run of consecutive failures (the
 * Envoy/HAProxy rule) or, once the sliding window holds at least min_calls
 * outcomes, on a failure rate or a slow-call rate at or above its
 * threshold (the resilience4j rules). OPEN refuses every call until
 * open_wait_us has passed; the next call then moves it to HALF_OPEN, which
 * admits exactly half_open_probes calls. A failed (or, with slow-call
 * tripping enabled, slow) probe reopens at once; when every probe has
 * succeeded the breaker closes with a clean window.
 *
 * Pure state machine: no I/O, no clock of its own (every function takes
 * now_us, a monotonic time in microseconds). One breaker is shared by all
 * worker threads. The common cases (allow while closed, refuse while open
 * before the wait is over) are single atomic loads; recording an outcome
 * and every transition run under a tiny per-breaker spinlock. See
 * docs/internals/resilience.md. */
#ifndef GW_BREAKER_H
#define GW_BREAKER_H

#include "core/common.h"

enum gw_breaker_state {
    GW_BREAKER_CLOSED = 0,
    GW_BREAKER_OPEN = 1,
    GW_BREAKER_HALF_OPEN = 2,
};

/* Why a transition happened, for logs and metrics. */
enum gw_breaker_reason {
    GW_BREAKER_R_CONSECUTIVE = 1, /* closed -> open: consecutive failures */
    GW_BREAKER_R_FAILURE_RATE,    /* closed -> open: failure rate over the window */
    GW_BREAKER_R_SLOW_RATE,       /* closed -> open: slow-call rate over the window */
    GW_BREAKER_R_WAIT_ELAPSED,    /* open -> half-open: open_wait_us passed */
    GW_BREAKER_R_PROBE_FAILED,    /* half-open -> open: a probe failed or was slow */
    GW_BREAKER_R_PROBE_TIMEOUT,   /* half-open -> open: probes unfinished in half_open_timeout_us */
    GW_BREAKER_R_PROBES_OK,       /* half-open -> closed: every probe succeeded */
    GW_BREAKER_R_RESET,           /* any -> closed: gw_breaker_reset() */
};

enum gw_breaker_window {
    GW_BREAKER_WINDOW_COUNT = 0, /* the last window_size calls */
    GW_BREAKER_WINDOW_TIME = 1,  /* the calls of the last window_size seconds */
};

#define GW_BREAKER_MAX_WINDOW_CALLS 100000u
#define GW_BREAKER_MAX_WINDOW_SECS 3600u

/* Defaults (gw_breaker_cfg_default) in brackets. Rates are percentages. */
struct gw_breaker_cfg {
    uint32_t consecutive_failures;      /* trip after this many failures in a row; 0: off [5] */
    enum gw_breaker_window window_type; /* how the sliding window is measured [COUNT] */
    uint32_t window_size;               /* calls (COUNT) or seconds (TIME) [100] */
    uint32_t min_calls;                 /* rates count from this many calls in the window [20] */
    uint32_t failure_rate_pct;          /* trip when failures >= this % of calls; 0: off [50] */
    uint32_t slow_rate_pct;             /* trip when slow calls >= this % of calls; 0: off [100] */
    uint64_t slow_call_us;              /* a call lasting at least this long is slow [60 s] */
    uint64_t open_wait_us;              /* stay open this long before probing [30 s] */
    uint32_t half_open_probes;          /* calls admitted in half-open, all must succeed [3] */
    uint64_t half_open_timeout_us;      /* reopen if probes are still out by then; 0: off [0] */
};

struct gw_breaker;

/* Called after a transition, outside the breaker's lock, on the thread
 * whose call caused it. May log, count, or read the breaker; must not
 * free it. */
typedef void gw_breaker_transition_cb(void *data, struct gw_breaker *b, enum gw_breaker_state from,
                                      enum gw_breaker_state to, enum gw_breaker_reason why,
                                      uint64_t now_us);

/* A consistent snapshot for the admin API and /metrics. */
struct gw_breaker_stats {
    enum gw_breaker_state state;
    uint64_t since_us;             /* when the current state was entered */
    uint64_t retry_at_us;          /* OPEN: when the next call becomes a probe */
    uint32_t window_calls;         /* outcomes in the sliding window */
    uint32_t window_failures;      /* failed calls among them */
    uint32_t window_slow;          /* slow calls among them (failed or not) */
    uint32_t consecutive_failures; /* current run of failures */
    uint32_t probes_admitted;      /* HALF_OPEN: probes let through so far */
    uint32_t probes_succeeded;     /* HALF_OPEN: probes that succeeded so far */
    uint64_t opened;               /* times the breaker has tripped to OPEN */
    uint64_t rejected;             /* calls refused while OPEN or HALF_OPEN */
};

/* Fills cfg with the defaults listed above. */
void gw_breaker_cfg_default(struct gw_breaker_cfg *cfg);
/* Whether a and b hold the same settings (field by field: padding and
 * the order of the fields do not matter). */
bool gw_breaker_cfg_equal(const struct gw_breaker_cfg *a, const struct gw_breaker_cfg *b);

/* Validates cfg (window within bounds, percentages <= 100, at least one
 * probe). Returns 0, or -1 and *err, a malloc'd message the caller frees. */
int gw_breaker_cfg_check(const struct gw_breaker_cfg *cfg, char **err);

/* Creates a CLOSED breaker with an empty window, using a copy of cfg
 * (which must pass gw_breaker_cfg_check; asserted). now_us starts the time
 * window and the state's "since". Never fails (allocation aborts). */
struct gw_breaker *gw_breaker_new(const struct gw_breaker_cfg *cfg, uint64_t now_us);

/* Frees b. No other thread may still use it. */
void gw_breaker_free(struct gw_breaker *b);

/* Installs the transition callback (NULL removes it). Call before the
 * breaker is shared between threads. */
void gw_breaker_set_listener(struct gw_breaker *b, gw_breaker_transition_cb *cb, void *data);

/* Asks whether a call may proceed at now_us. CLOSED: true. OPEN: false
 * until open_wait_us has passed, after which this call moves the breaker
 * to HALF_OPEN and becomes its first probe. HALF_OPEN: true for at most
 * half_open_probes calls in all (a released probe frees its place), false
 * for the rest. Every call that got true must later be settled by exactly
 * one gw_breaker_record() or gw_breaker_release(). Any thread; lock-free
 * while closed and while open before the wait is over. */
bool gw_breaker_allow(struct gw_breaker *b, uint64_t now_us);

/* Records the outcome of an allowed call that completed at now_us after
 * duration_us. success is the caller's verdict (a connect error, reset,
 * timeout or a 5xx the service counts as failure is false); a call with
 * duration_us >= slow_call_us is also slow. CLOSED: updates the run and
 * the window and may trip. HALF_OPEN: settles one probe; a failure, or a
 * slow call when slow_rate_pct is on, reopens; the last successful probe
 * closes. OPEN: ignored (the call was admitted before the trip). Results
 * arriving in HALF_OPEN when no probe is outstanding are ignored too.
 * Any thread; takes the spinlock. */
void gw_breaker_record(struct gw_breaker *b, uint64_t now_us, bool success, uint64_t duration_us);

/* Whether gw_breaker_allow() at now_us would let a call through, without
 * changing anything: CLOSED, OPEN once open_wait_us has passed, HALF_OPEN
 * while a probe place is free (or the probes are overdue). Lets a balancer
 * skip a server whose breaker would refuse it. The answer may be stale by
 * the time allow() runs on another thread; allow() decides. Lock-free,
 * any thread. */
bool gw_breaker_admits(struct gw_breaker *b, uint64_t now_us);

/* Settles an allowed call that was never made (the client went away, the
 * request was routed elsewhere): in HALF_OPEN its probe place is given
 * back; otherwise nothing changes. Any thread. */
void gw_breaker_release(struct gw_breaker *b);

/* Forces the breaker CLOSED with a clean window (admin action). Reports
 * the transition when the state changes. Any thread. */
void gw_breaker_reset(struct gw_breaker *b, uint64_t now_us);

/* Current state, one atomic load. An OPEN breaker whose wait is over
 * still reads OPEN until a call arrives. Any thread. */
enum gw_breaker_state gw_breaker_state(const struct gw_breaker *b);

/* Fills *out under the lock; a time-based window is first moved to
 * now_us so that calls older than the window no longer count. Any
 * thread. */
void gw_breaker_get_stats(struct gw_breaker *b, uint64_t now_us, struct gw_breaker_stats *out);

/* Lower-case names for logs and JSON: "closed", "open", "half_open";
 * "consecutive_failures", "failure_rate", ... */
const char *gw_breaker_state_name(enum gw_breaker_state s);
const char *gw_breaker_reason_name(enum gw_breaker_reason r);

#endif
