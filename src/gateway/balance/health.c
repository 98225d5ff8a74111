/* Health state machine and passive ejection (see health.h and
 * docs/internals/balance.md).
 *
 * Active checks: the classic rise/fall hysteresis of HAProxy and nginx
 * plus. A server goes down after `fall` consecutive failed probes and up
 * again after `rise` consecutive good ones; a single result of the other
 * kind restarts the count, so a flapping server does not change state.
 *
 * Passive ejection: worker threads report each request's outcome. The
 * failure counter is one atomic; the ejection itself is a compare-and-swap
 * on down_until_ms, so when several threads cross the threshold together
 * only the one whose swap lands ejects. */
#include "gateway/balance/health.h"
#include "gateway/balance/backend.h"

#include <limits.h>
#include <stdatomic.h>

void gw_health_init(struct gw_health *h, int initial_state)
{
    ASSERT(initial_state == GW_UP || initial_state == GW_DOWN);
    h->state = initial_state;
    h->ok_run = 0;
    h->fail_run = 0;
}

int gw_health_report(struct gw_health *h, const struct gw_health_cfg *cfg, bool ok)
{
    int rise = cfg->rise > 0 ? cfg->rise : 1;
    int fall = cfg->fall > 0 ? cfg->fall : 1;

    if (ok) {
        h->fail_run = 0;
        if (h->ok_run < INT_MAX)
            h->ok_run++;
        if (h->state == GW_DOWN && h->ok_run >= rise) {
            h->state = GW_UP;
            return 1;
        }
    } else {
        h->ok_run = 0;
        if (h->fail_run < INT_MAX)
            h->fail_run++;
        if (h->state == GW_UP && h->fail_run >= fall) {
            h->state = GW_DOWN;
            return -1;
        }
    }
    return 0;
}

void gw_health_apply(struct gw_server *s, int change, uint64_t now_ms)
{
    if (change > 0) {
        /* up_since first, released by the health store, so a thread that
         * sees the server up also sees when its slow start began. */
        atomic_store_explicit(&s->up_since_ms, now_ms, memory_order_relaxed);
        atomic_store_explicit(&s->consec_fail, 0, memory_order_relaxed);
        /* A passing active check is better evidence than the failures
         * that ejected it: end any passive ejection now. */
        atomic_store_explicit(&s->down_until_ms, 0, memory_order_relaxed);
        atomic_store_explicit(&s->health, GW_UP, memory_order_release);
    } else if (change < 0) {
        atomic_store_explicit(&s->health, GW_DOWN, memory_order_release);
    }
}

bool gw_passive_failure(struct gw_server *s, int max_failures, uint64_t eject_ms, uint64_t now_ms)
{
    if (max_failures < 1)
        return false;

    uint64_t until = atomic_load_explicit(&s->down_until_ms, memory_order_acquire);
    if (until > now_ms)
        return false;

    int n = atomic_fetch_add_explicit(&s->consec_fail, 1, memory_order_relaxed) + 1;
    if (n < max_failures)
        return false;

    /* Threshold reached, possibly by several threads at once: the swap
     * from the value read above decides which one ejects. The losers'
     * failures are part of the same streak. */
    uint64_t end = now_ms + (eject_ms ? eject_ms : 1);
    if (!atomic_compare_exchange_strong_explicit(&s->down_until_ms, &until, end,
                                                 memory_order_acq_rel, memory_order_acquire))
        return false;
    atomic_store_explicit(&s->consec_fail, 0, memory_order_relaxed);
    return true;
}

void gw_passive_success(struct gw_server *s)
{
    if (atomic_load_explicit(&s->consec_fail, memory_order_relaxed) != 0)
        atomic_store_explicit(&s->consec_fail, 0, memory_order_relaxed);
}
