/* Admission control: back pressure and load shedding per service (or per
 * server) for an event-loop proxy.
 *
 * Two objects. A struct gw_adm is shared by every worker thread: it holds
 * the in-flight count and the limit (static max_inflight, the adaptive
 * limiter's current value, or the lower of both), and hands out slots
 * with one compare-and-swap. A struct gw_adm_queue belongs to one worker
 * thread: a bounded wait queue for requests that found no free slot,
 * ordered by priority class, each entry with a deadline, with CoDel-style
 * overload control:
 *
 *   - The queue is overloaded when its oldest entry has been older than
 *     codel_target_us for a whole codel_interval_us (CoDel's "minimum
 *     sojourn above target for an interval": there was a standing queue).
 *     It stays overloaded until it drains empty; within 16 intervals of
 *     that, it is overloaded again as soon as the oldest entry passes the
 *     target (CoDel's memory of a recent dropping state).
 *   - While overloaded: entries older than the target are shed (every
 *     class but CRITICAL, lowest first), the queue serves the newest
 *     entry of a class first (adaptive LIFO: the newest waiter is the one
 *     most likely still to have a client), and new LOW arrivals are
 *     refused outright.
 *   - Always: a class is served only when every higher class is empty;
 *     an entry past its deadline expires; when the queue is full, an
 *     arrival takes the place of the oldest entry of the lowest class
 *     below its own, or is refused.
 *
 * Every refusal, expiry, shedding or displacement is answered 503 with
 * Retry-After: gw_adm_retry_after_s(). Entries are intrusive (struct
 * gw_adm_entry embedded in the caller's request), so queueing allocates
 * nothing. No I/O, no clock: every call takes now_us. See
 * docs/internals/resilience.md for how the proxy calls each function. */
#ifndef GW_ADMISSION_H
#define GW_ADMISSION_H

#include "core/common.h"

#include <stdatomic.h>

struct gw_limit;

/* Priority classes, higher is more important. */
enum gw_prio {
    GW_PRIO_LOW = 0,
    GW_PRIO_NORMAL = 1,
    GW_PRIO_HIGH = 2,
    GW_PRIO_CRITICAL = 3,
};
#define GW_PRIO_COUNT 4

/* What gw_adm_submit() did with an arrival. */
enum gw_adm_result {
    GW_ADM_ADMIT = 0,  /* a slot is held: send it now, gw_adm_release() when done */
    GW_ADM_QUEUED = 1, /* waiting: gw_adm_queue_poll() will hand it back */
    GW_ADM_REJECT = 2, /* answer 503 + Retry-After now */
};

/* Why an entry left the queue (struct gw_adm_entry.outcome). */
enum gw_adm_outcome {
    GW_ADM_OUT_NONE = 0,  /* not queued, or still queued */
    GW_ADM_OUT_READY,     /* admitted from the queue: holds a slot */
    GW_ADM_OUT_EXPIRED,   /* its deadline passed: 503 */
    GW_ADM_OUT_SHED,      /* shed by overload control: 503 */
    GW_ADM_OUT_DISPLACED, /* gave its place to a higher class: 503 */
    GW_ADM_OUT_CLOSED,    /* the queue was closed: 503 */
};

/* Defaults (gw_adm_cfg_default) in brackets. */
struct gw_adm_cfg {
    uint32_t max_inflight;      /* static limit; 0: none (limiter only, or unlimited) [0] */
    uint32_t queue_max;         /* entries per worker queue; 0: no queue, refuse at once [128] */
    uint64_t max_wait_us;       /* no entry waits longer, whatever its deadline [1 s] */
    uint64_t codel_target_us;   /* acceptable standing queue delay [5 ms] */
    uint64_t codel_interval_us; /* how long above target means overloaded [100 ms] */
    uint32_t retry_after_s;     /* Retry-After on refusals [1] */
};

enum gw_adm_stat {
    GW_ADM_ST_ADMITTED,  /* admitted on arrival */
    GW_ADM_ST_QUEUED,    /* queued on arrival */
    GW_ADM_ST_DEQUEUED,  /* admitted from a queue */
    GW_ADM_ST_REJECTED,  /* refused on arrival */
    GW_ADM_ST_EXPIRED,   /* left a queue at their deadline */
    GW_ADM_ST_SHED,      /* shed by overload control */
    GW_ADM_ST_DISPLACED, /* pushed out by a higher class */
    GW_ADM_ST_CANCELLED, /* removed by the caller */
    GW_ADM_ST_OVERLOADS, /* times a queue became overloaded */
    GW_ADM_ST_COUNT,
};

/* Shared by all workers; fields are private (use the functions). */
struct gw_adm {
    _Atomic uint32_t inflight;
    _Atomic uint32_t queued[GW_PRIO_COUNT];  /* over all worker queues */
    struct gw_limit *limiter;                /* not owned; may be NULL */
    struct gw_adm_cfg cfg;
    _Atomic uint64_t stat[GW_ADM_ST_COUNT]; /* relaxed counters */
};

/* Embedded in the caller's request. Owned by the queue from a QUEUED
 * submit until the entry comes back through poll, close or displacement,
 * or is removed with gw_adm_queue_remove(). */
struct gw_adm_entry {
    struct gw_adm_entry *prev, *next; /* queue or result list links */
    uint64_t enqueued_us;
    uint64_t deadline_us;
    void *data;      /* the caller's, never touched */
    uint8_t prio;    /* enum gw_prio */
    uint8_t outcome; /* enum gw_adm_outcome */
    bool queued;     /* in a queue now */
};

/* A list of entries handed back to the caller. */
struct gw_adm_list {
    struct gw_adm_entry *head, *tail;
    uint32_t n;
};

/* One worker's queue; fields are private. */
struct gw_adm_queue {
    struct gw_adm *adm;
    struct gw_adm_list cls[GW_PRIO_COUNT];
    uint32_t n;
    uint64_t next_deadline_us; /* no entry expires before this */
    uint64_t last_ok_us;       /* last time the oldest entry was within target (or none) */
    uint64_t overload_end_us;  /* when it last left the overloaded state; 0: never */
    bool overloaded;
};

struct gw_adm_stats {
    uint32_t inflight;
    uint32_t limit;                  /* the effective limit now; UINT32_MAX: none */
    uint32_t queued[GW_PRIO_COUNT];  /* over all worker queues */
    uint64_t counters[GW_ADM_ST_COUNT];
};

/* Fills cfg with the defaults listed above. */
void gw_adm_cfg_default(struct gw_adm_cfg *cfg);
/* Whether a and b hold the same settings (field by field: padding and
 * the order of the fields do not matter). */
bool gw_adm_cfg_equal(const struct gw_adm_cfg *a, const struct gw_adm_cfg *b);

/* Validates cfg. Returns 0, or -1 and *err (malloc'd, caller frees). */
int gw_adm_cfg_check(const struct gw_adm_cfg *cfg, char **err);

/* Prepares a caller-allocated adm with a copy of cfg (which must pass
 * gw_adm_cfg_check; asserted). limiter, when not NULL, supplies the limit
 * (capped by max_inflight when that is set) and receives the samples of
 * gw_adm_release(); it must outlive adm. Not thread-safe: init, then
 * share. */
void gw_adm_init(struct gw_adm *adm, const struct gw_adm_cfg *cfg, struct gw_limit *limiter);

/* The effective limit now: the limiter's value and max_inflight, the lower
 * of those that are set; UINT32_MAX when neither is. Any thread. */
uint32_t gw_adm_limit(const struct gw_adm *adm);

/* Takes a slot without queueing: true when in-flight was below the limit
 * and no entry of class prio or higher waits in any worker queue (so an
 * arrival never jumps ahead of a waiter it should not). The per-server
 * form of back pressure: on false, try another server or queue at the
 * service. Lock-free, any thread. */
bool gw_adm_try_acquire(struct gw_adm *adm, enum gw_prio prio);

/* Gives back the slot of a request admitted by gw_adm_try_acquire(),
 * gw_adm_submit() or a poll. latency_us is its service time (sent to last
 * response byte; 0: no sample, e.g. never sent), dropped whether the
 * outcome signals overload (timeout, 503/429 from the service, connect
 * refused); both feed the limiter if there is one. The queues are not
 * told: each worker's next poll admits waiters into the freed slot. Any
 * thread. */
void gw_adm_release(struct gw_adm *adm, uint64_t now_us, uint64_t latency_us, bool dropped);

/* Retry-After seconds for every 503 this module causes. */
uint32_t gw_adm_retry_after_s(const struct gw_adm *adm);

/* Fills *out. Any thread; counters are relaxed snapshots. */
void gw_adm_get_stats(const struct gw_adm *adm, struct gw_adm_stats *out);

/* Binds an empty worker queue to adm. Owner thread only, as is every
 * gw_adm_queue_* function. */
void gw_adm_queue_init(struct gw_adm_queue *q, struct gw_adm *adm, uint64_t now_us);

/* Empties q into *out (outcome GW_ADM_OUT_CLOSED): at shutdown or when
 * the service's configuration goes away, answer each with 503. */
void gw_adm_queue_close(struct gw_adm_queue *q, struct gw_adm_list *out);

/* An arrival of class prio on the owner's worker. ADMIT: a slot is held
 * (e is untouched). QUEUED: e waits, deadline_us is capped at now_us +
 * max_wait_us (0: just that cap). REJECT: answer 503 now. When the queue
 * was full and e took the place of a lower-class entry, that entry is
 * returned in *displaced (outcome GW_ADM_OUT_DISPLACED; answer it 503);
 * otherwise *displaced is NULL. */
enum gw_adm_result gw_adm_submit(struct gw_adm_queue *q, struct gw_adm_entry *e, enum gw_prio prio,
                                 uint64_t deadline_us, uint64_t now_us,
                                 struct gw_adm_entry **displaced);

/* Removes a queued e (its client went away); e->outcome stays NONE. Does
 * nothing when e is not queued. */
void gw_adm_queue_remove(struct gw_adm_queue *q, struct gw_adm_entry *e);

/* Does the queue's work at now_us: overload bookkeeping, expiry,
 * shedding, then admits waiters, highest class first, while slots are
 * free. Admitted entries are appended to *ready (outcome READY: each holds
 * a slot, send it), refused ones to *dropped (EXPIRED or SHED: 503). Call
 * on every loop iteration, after each gw_adm_release() on this worker,
 * and from a timer at gw_adm_queue_next_event_us() while non-empty. */
void gw_adm_queue_poll(struct gw_adm_queue *q, uint64_t now_us, struct gw_adm_list *ready,
                       struct gw_adm_list *dropped);

/* When to poll next even if no slot frees up: no later than the first
 * moment an entry would expire, be shed, or the queue turn overloaded
 * (possibly earlier: a poll then may have nothing to do, and this moves
 * on). UINT64_MAX when the queue is empty. */
uint64_t gw_adm_queue_next_event_us(const struct gw_adm_queue *q);

static inline uint32_t gw_adm_queue_len(const struct gw_adm_queue *q)
{
    return q->n;
}

static inline bool gw_adm_queue_overloaded(const struct gw_adm_queue *q)
{
    return q->overloaded;
}

/* Result lists: an empty list is all zeros. */
static inline void gw_adm_list_init(struct gw_adm_list *l)
{
    l->head = l->tail = NULL;
    l->n = 0;
}

/* Takes the first entry of l, NULL when empty. */
struct gw_adm_entry *gw_adm_list_pop(struct gw_adm_list *l);

/* "low", "normal", "high", "critical"; gw_prio_parse returns -1 for any
 * other name (case-insensitive). */
const char *gw_prio_name(enum gw_prio p);
int gw_prio_parse(const char *s, size_t len);

#endif
