/* Centralized rate limiting: rule state kept in Redis, shared by every
 * gateway that points at the same server.
 *
 * Each worker thread owns one asynchronous hiredis connection driven by
 * its event loop. One request's Redis-backed rules go to Redis in one
 * script call (limit/redis_script.c) that checks them in order atomically,
 * with Redis's clock, and stops at the first rejection, so the gateways
 * agree on one limit without races.
 *
 * Local fast path, per worker (a direct-mapped cache of 1024 keys):
 *   - a key Redis rejected is rejected locally until its Retry-After has
 *     passed, without asking again. This is exact: a rejected request
 *     changes no state, and other gateways can only push the earliest
 *     admission later, never earlier.
 *   - with `lease: N` (N > 1), a call that finds plenty of quota takes up
 *     to N units at once (at most half of what remains); the worker spends
 *     them locally for lease_ttl. Units not spent in time are lost, so a
 *     lease can only make the limit stricter, never looser. The leaky
 *     queue never leases (each request has its own delay).
 *
 * Failures: when Redis is unreachable (connect refused, connection lost,
 * no answer within `timeout`, too many calls outstanding) the rule's
 * store policy on_error decides: allow (fail open, the default), deny
 * (fail closed: 503 with Retry-After) or local (the gateway's own local
 * store enforces the rule, per gateway). A lost connection is retried
 * every second; while it is down no request waits for it.
 *
 * Thread context: every function runs on the owning worker's thread. */
#ifndef GW_RLREDIS_H
#define GW_RLREDIS_H

#include "gateway/limit/ratelimit.h"

struct ev_loop;
struct buf;
struct rl_redis;
struct rl_redis_req;

enum rl_redis_on_error { RLR_ALLOW, RLR_DENY, RLR_LOCAL };

/* The `rate_limit_store:` section. */
struct rl_redis_cfg {
    char *host;              /* NULL with unix_path */
    int port;
    char *unix_path;
    char *password;          /* AUTH on connect when set */
    int db;                  /* SELECT on connect when non-zero */
    uint64_t timeout_ms;     /* answer deadline per request */
    enum rl_redis_on_error on_error;
    char *prefix;            /* key prefix, default "floodgate:rl:" */
    uint32_t lease;          /* units taken at once; 1: exact, no lease */
    uint64_t lease_ttl_ms;   /* how long leased units may be spent */
    uint32_t max_pending;    /* calls outstanding per worker before on_error */
};

/* Answer for one call: status 0 with n decisions (n may be below the
 * number of rules asked when one rejected: the rest were not charged), or
 * status -1 when Redis could not answer (apply on_error). */
typedef void (*rl_redis_cb)(void *ud, int status, const struct rl_decision *ds, size_t n);

struct rl_redis *rl_redis_new(struct ev_loop *loop, const struct rl_redis_cfg *cfg);
void rl_redis_free(struct rl_redis *r);
/* Same settings (host, port, auth, prefix...)? Decides whether a reload
 * keeps the worker's connection. */
bool rl_redis_cfg_equal(const struct rl_redis_cfg *a, const struct rl_redis_cfg *b);
const struct rl_redis_cfg *rl_redis_config(const struct rl_redis *r);
/* Connected and not overloaded: a call would be sent now. */
bool rl_redis_usable(const struct rl_redis *r);

/* Local fast path for one rule and key at now_us (the loop's monotonic
 * clock). Returns true with *d decided (a cached rejection, or a leased
 * unit spent), false when Redis must be asked. */
bool rl_redis_local(struct rl_redis *r, const struct rl_rule *rule, const void *key, size_t len,
                    uint64_t now_us, struct rl_decision *d);

/* Asks Redis about n rules (keys[i] of lens[i] bytes under rules[i]); cb
 * runs later on this thread, exactly once, unless the call is cancelled
 * first. NULL when the call cannot be sent (not connected, too many
 * outstanding): apply on_error at once. */
struct rl_redis_req *rl_redis_check(struct rl_redis *r, const struct rl_rule *const *rules,
                                    const char *const *keys, const size_t *lens, size_t n,
                                    uint64_t now_us, rl_redis_cb cb, void *ud);
/* The caller no longer wants the answer (timeout, client gone): cb will
 * not run. The decision Redis makes still counts there. */
void rl_redis_cancel(struct rl_redis_req *q);

/* Counters, all workers together (relaxed atomics). */
struct rl_redis_stats {
    uint64_t calls, errors, timeouts, local_denied, lease_spent, unavailable;
    uint64_t connected; /* workers connected now */
};
void rl_redis_stats(struct rl_redis_stats *out);
void rl_redis_note_timeout(void);
void rl_redis_metrics_render(struct buf *b);

/* The script (limit/redis_script.c). */
extern const char rl_redis_script[];

#endif
