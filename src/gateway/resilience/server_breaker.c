/* Settling an attempt with the per-server breaker that admitted it
 * (server_breaker.h has the rules). */
#include "gateway/resilience/server_breaker.h"

bool gw_srvbrk_admit(struct gw_srvbrk_hold *h, struct gw_breaker *b, uint64_t now_us, uint64_t t0_ns)
{
    if (!gw_breaker_allow(b, now_us))
        return false;
    h->b = b;
    h->t0_ns = t0_ns;
    return true;
}

void gw_srvbrk_settle(struct gw_srvbrk_hold *h, enum gw_srvbrk_verdict v, uint64_t now_us, uint64_t now_ns)
{
    struct gw_breaker *b = h->b;
    if (!b)
        return;
    h->b = NULL;
    if (v == GW_SRVBRK_RELEASE) {
        gw_breaker_release(b);
        return;
    }
    gw_breaker_record(b, now_us, v == GW_SRVBRK_SUCCESS, (now_ns - h->t0_ns) / 1000);
}
