/* Settling an attempt with a per-server circuit breaker (the service's
 * `server_breaker:`). The breaker objects live on struct gw_server
 * (balance/backend.c), the state machine is breaker.c, the choice of a
 * server whose breaker admits the attempt is balance/pick.c. What is left
 * here is the hold a request keeps on the breaker that admitted its
 * current attempt, and judging that attempt exactly once:
 *
 *   success  the response head arrived and is not a 5xx;
 *   failure  a 5xx head, or the exchange failed (connect error, reset,
 *            timeout, malformed response);
 *   release  the attempt ends without a verdict (the client left, a
 *            reused connection the server had closed): the place goes
 *            back without a sample.
 *
 * The duration is measured up to the response head, so a slow client
 * downloading a big body does not make the server look slow. The hold
 * keeps the breaker it was admitted by, so a breaker replaced by a reload
 * still gets the outcome of the calls it let through. Worker threads; no
 * I/O, no clock of its own beyond the one passed in. */
#ifndef GW_SERVER_BREAKER_H
#define GW_SERVER_BREAKER_H

#include "gateway/resilience/breaker.h"

enum gw_srvbrk_verdict { GW_SRVBRK_FAILURE, GW_SRVBRK_SUCCESS, GW_SRVBRK_RELEASE };

struct gw_srvbrk_hold {
    struct gw_breaker *b;   /* breaker that admitted the current attempt, or NULL */
    uint64_t t0_ns;         /* when that attempt started (ev_clock_ns) */
};

/* Asks b to admit an attempt at now_us (in half-open this takes one of
 * its probe places); on yes h holds it from t0_ns. h must hold nothing. */
bool gw_srvbrk_admit(struct gw_srvbrk_hold *h, struct gw_breaker *b, uint64_t now_us, uint64_t t0_ns);

/* Judges the attempt h holds (or gives back its place: RELEASE); nothing
 * when h holds none. now_ns is ev_clock_ns() for the duration, now_us the
 * loop's time for the breaker's window. */
void gw_srvbrk_settle(struct gw_srvbrk_hold *h, enum gw_srvbrk_verdict v, uint64_t now_us, uint64_t now_ns);

#endif
