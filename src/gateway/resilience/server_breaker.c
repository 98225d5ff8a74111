/* Per-server circuit breakers in the proxy (the service's
 * `server_breaker:`): the breaker objects live on struct gw_server
 * (server.c), the state machine is breaker.c; this file connects them to
 * a request.
 *
 *   pick     The balancer already skips servers whose breaker would refuse
 *            or that are at their in-flight cap (gw_server_usable).
 *            gw_conn_pick_server() then takes the chosen server's
 *            in-flight place (gw_server_acquire: exact under the cap; the
 *            caller owns the place) and asks its breaker with
 *            gw_breaker_allow(): in half-open that takes one of its probe
 *            places. Another thread may have taken the last place in
 *            between; the server is then left out and the balancer asked
 *            again.
 *   record   The exchange with that server is judged once: when its
 *            response head arrives (a 5xx is a failure, anything else a
 *            success; the duration, up to that head, is what slow calls
 *            are measured on, so a slow client downloading a big body
 *            does not make the server look slow), or when it fails
 *            (connect error, reset, timeout, malformed response). A
 *            request that ends without either (the client left, a reused
 *            connection the server had closed) gives its place back.
 *
 * The request keeps the breaker it was admitted by (r->sbrk), so a
 * breaker replaced by a reload still gets the outcome of the calls it let
 * through. It is settled while the request still holds its reference to
 * the server, which the breaker's listener uses. Worker threads. */
#include "gateway/proxy/conn.h"

#include <cjson/cJSON.h>
#include <string.h>

#define GW_METRIC(x) "floodgate_gateway_" x
#define GW_SRVBRK_REPICKS 4 /* servers left out after losing a probe place, per pick */

struct gw_server *gw_conn_pick_server(struct gw_conn *c, uint64_t now_ms)
{
    struct gw_req *r = &c->r;
    struct gw_server *skip[GW_MAX_TRIES + GW_SRVBRK_REPICKS];
    size_t n = (size_t)r->ntried;
    memcpy(skip, r->tried, n * sizeof *skip);
    if (r->sbrk)
        gw_conn_server_settle(c, GW_SRVBRK_RELEASE);
    for (;;) {
        struct gw_server *srv = gw_lb_pick(r->svc->lb, r->hash, now_ms, skip, n);
        if (!srv)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            /* Everything usable was left out: an already tried server is
             * the caller's to refuse; one whose breaker refused is none. */
            if (skip[i] == srv)
                return i < (size_t)r->ntried ? srv : NULL;
        }
        /* Its in-flight place first (another thread may have filled it
         * since the balancer looked), then its breaker. */
        if (gw_server_acquire(srv)) {
            struct gw_breaker *b = atomic_load_explicit(&srv->breaker, memory_order_acquire);
            if (!b)
                return srv;
            if (gw_breaker_allow(b, ev_now_ns(c->w->loop) / 1000)) {
                r->sbrk = b;
                r->sbrk_t0_ns = ev_clock_ns();
                return srv;
            }
            atomic_fetch_sub_explicit(&srv->inflight, 1, memory_order_relaxed);
        }
        if (n == ARRAY_SIZE(skip))
            return NULL;
        skip[n++] = srv;
    }
}

void gw_conn_server_settle(struct gw_conn *c, enum gw_srvbrk_verdict v)
{
    struct gw_req *r = &c->r;
    struct gw_breaker *b = r->sbrk;
    if (!b)
        return;
    r->sbrk = NULL;
    if (v == GW_SRVBRK_RELEASE) {
        gw_breaker_release(b);
        return;
    }
    uint64_t dur_us = (ev_clock_ns() - r->sbrk_t0_ns) / 1000;
    gw_breaker_record(b, ev_now_ns(c->w->loop) / 1000, v == GW_SRVBRK_SUCCESS, dur_us);
}

/* ---- admin API and /metrics ---- */

struct cJSON *gw_server_breaker_json(struct gw_server *s, uint64_t now_us)
{
    struct gw_breaker *b = atomic_load_explicit(&s->breaker, memory_order_acquire);
    if (!b)
        return NULL;
    struct gw_breaker_stats st;
    gw_breaker_get_stats(b, now_us, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", gw_breaker_state_name(st.state));
    cJSON_AddNumberToObject(o, "for_ms", now_us > st.since_us ? (double)((now_us - st.since_us) / 1000) : 0);
    if (st.state == GW_BREAKER_OPEN)
        cJSON_AddNumberToObject(o, "retry_in_ms",
                                st.retry_at_us > now_us ? (double)((st.retry_at_us - now_us + 999) / 1000) : 0);
    if (st.state == GW_BREAKER_HALF_OPEN) {
        cJSON_AddNumberToObject(o, "probes_admitted", st.probes_admitted);
        cJSON_AddNumberToObject(o, "probes_succeeded", st.probes_succeeded);
    }
    cJSON_AddNumberToObject(o, "consecutive_failures", st.consecutive_failures);
    cJSON_AddNumberToObject(o, "window_calls", st.window_calls);
    cJSON_AddNumberToObject(o, "window_failures", st.window_failures);
    cJSON_AddNumberToObject(o, "window_slow", st.window_slow);
    cJSON_AddNumberToObject(o, "opened", (double)atomic_load_explicit(&s->brk_entered[GW_BREAKER_OPEN],
                                                                      memory_order_relaxed));
    return o;
}

void gw_server_breaker_metrics_render(struct buf *b, const struct gw_snapshot *s)
{
    static const char *const to[3] = {"closed", "open", "half_open"};
    metrics_family(b, GW_METRIC("server_breaker_state"), "gauge",
                   "Circuit breaker state per server (server_breaker): 0 closed, 1 open, 2 half-open.");
    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct gw_service *svc = s->services[i];
        for (size_t j = 0; j < svc->nservers; j++) {
            struct gw_server *srv = svc->servers[j];
            struct gw_breaker *bk = atomic_load_explicit(&srv->breaker, memory_order_acquire);
            if (bk)
                metrics_sample_u64(b, GW_METRIC("server_breaker_state"),
                                   (const char *const[]){"service", svc->name, "server", srv->addr_str, NULL},
                                   (uint64_t)gw_breaker_state(bk));
        }
    }
    metrics_family(b, GW_METRIC("server_breaker_transitions_total"), "counter",
                   "Circuit breaker transitions per server, by the state entered.");
    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct gw_service *svc = s->services[i];
        for (size_t j = 0; j < svc->nservers; j++) {
            struct gw_server *srv = svc->servers[j];
            if (!atomic_load_explicit(&srv->breaker, memory_order_relaxed))
                continue;
            for (int k = 0; k < 3; k++)
                metrics_sample_u64(b, GW_METRIC("server_breaker_transitions_total"),
                                   (const char *const[]){"service", svc->name, "server", srv->addr_str, "to",
                                                         to[k], NULL},
                                   atomic_load_explicit(&srv->brk_entered[k], memory_order_relaxed));
        }
    }
}
