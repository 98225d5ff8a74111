/* Choosing the server for one attempt of a request: the balancer's
 * algorithm (balance.c) over the usable servers, then the chosen server's
 * in-flight place and its circuit breaker. Worker threads. */
#ifndef GW_PICK_H
#define GW_PICK_H

#include "gateway/balance/balance.h"
#include "gateway/balance/backend.h"
#include "gateway/resilience/server_breaker.h"

#define GW_PICK_MAX_TRIED 8 /* bound on tried[] (the proxy's GW_MAX_TRIES) */

/* Picks a server from lb for the next attempt: one not in tried[] unless
 * nothing else is usable, whose in-flight place it takes
 * (gw_server_acquire: the caller owns the place) and whose breaker
 * admits the attempt (h then holds it; h must hold nothing). Another
 * thread may take the last place in between: that server is then left
 * out and the balancer asked again, a few times at most.
 *   hash     the request's key hash (gw_lb_hash)
 *   now_ms   monotonic milliseconds for the balancer; now_us the breaker's
 * Returns the server, or NULL when none is usable. A server from tried[]
 * comes back without an in-flight place or breaker hold: the caller
 * refuses it rather than hammer it again. */
struct gw_server *gw_pick_server(struct gw_lb *lb, uint64_t hash, struct gw_server *const *tried,
                                 size_t ntried, struct gw_srvbrk_hold *h, uint64_t now_ms, uint64_t now_us);

#endif
