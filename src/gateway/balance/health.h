/* Server health: the active-check state machine and passive ejection.
 *
 * gw_health is a pure rise/fall state machine with no I/O: the checker
 * thread owns one per server, feeds it each probe result and applies the
 * transitions it returns to the shared struct gw_server with
 * gw_health_apply(). Passive ejection works on the server's atomics
 * directly, from whichever worker thread saw the failure, without locks. */
#ifndef GW_HEALTH_H
#define GW_HEALTH_H

#include "core/common.h"

struct gw_server;

struct gw_health_cfg {
    int rise; /* consecutive successes to go up (values < 1 count as 1) */
    int fall; /* consecutive failures to go down (values < 1 count as 1) */
};

struct gw_health {
    int state;    /* GW_UP or GW_DOWN */
    int ok_run;   /* consecutive successes so far, saturating */
    int fail_run; /* consecutive failures so far, saturating */
};

/* Starts the machine in initial_state (GW_UP or GW_DOWN) with no history. */
void gw_health_init(struct gw_health *h, int initial_state);

/* Records one check result. Returns +1 when the server just went up (rise
 * consecutive successes while down), -1 when it just went down (fall
 * consecutive failures while up), 0 when the state did not change. Any
 * result breaks the opposite run, so a flapping server keeps its state.
 * Not thread-safe: one owner (the checker) per machine. */
int gw_health_report(struct gw_health *h, const struct gw_health_cfg *cfg, bool ok);

/* Applies a transition returned by gw_health_report() to the shared server:
 * +1 stores up_since_ms = now_ms (starting slow start), clears the passive
 * failure count and marks it GW_UP; -1 marks it GW_DOWN; 0 does nothing.
 * Any thread. */
void gw_health_apply(struct gw_server *s, int change, uint64_t now_ms);

/* Passive check, called by the proxy when a request to s failed (connect
 * error, reset, timeout, 5xx as configured). Counts consecutive failures;
 * when the count reaches max_failures, ejects the server until now_ms +
 * eject_ms (gw_server_usable() is false meanwhile), resets the count and
 * returns true. Exactly one of several threads failing at once performs a
 * given ejection and sees true; failures reported while the server is
 * already ejected are ignored (they belong to requests sent before the
 * ejection). max_failures < 1 disables ejection; eject_ms 0 counts as 1.
 * Lock-free, any thread. */
bool gw_passive_failure(struct gw_server *s, int max_failures, uint64_t eject_ms, uint64_t now_ms);

/* Passive check: a request to s succeeded; resets the consecutive failure
 * count. Writes only when the count is non-zero, so the common case does
 * not dirty the shared cache line. Any thread. */
void gw_passive_success(struct gw_server *s);

#endif
