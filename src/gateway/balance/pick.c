/* Server choice for one attempt (pick.h). The balancer already skips
 * servers whose breaker would refuse or that are at their in-flight cap
 * (gw_server_usable); this file turns its answer into a held in-flight
 * place and, for a server with a breaker, an admitted attempt. */
#include "gateway/balance/pick.h"
#include "core/ev.h"

#include <string.h>

#define PICK_REPICKS 4 /* servers left out after losing a place, per pick */

struct gw_server *gw_pick_server(struct gw_lb *lb, uint64_t hash, struct gw_server *const *tried,
                                 size_t ntried, struct gw_srvbrk_hold *h, uint64_t now_ms, uint64_t now_us)
{
    struct gw_server *skip[GW_PICK_MAX_TRIED + PICK_REPICKS];
    ASSERT(ntried <= GW_PICK_MAX_TRIED);
    size_t n = ntried;
    if (n)
        memcpy(skip, tried, n * sizeof *skip);
    for (;;) {
        struct gw_server *srv = gw_lb_pick(lb, hash, now_ms, skip, n);
        if (!srv)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            /* Everything usable was left out: an already tried server is
             * the caller's to refuse; one whose breaker refused is none. */
            if (skip[i] == srv)
                return i < ntried ? srv : NULL;
        }
        /* Its in-flight place first (another thread may have filled it
         * since the balancer looked), then its breaker. */
        if (gw_server_acquire(srv)) {
            struct gw_breaker *b = atomic_load_explicit(&srv->breaker, memory_order_acquire);
            if (!b || gw_srvbrk_admit(h, b, now_us, ev_clock_ns()))
                return srv;
            atomic_fetch_sub_explicit(&srv->inflight, 1, memory_order_relaxed);
        }
        if (n == ARRAY_SIZE(skip))
            return NULL;
        skip[n++] = srv;
    }
}
