/* The per-server circuit breakers as the admin API and /metrics show
 * them: state, counts and transitions, read from each server's breaker
 * (resilience/breaker.c) without taking part in its settling
 * (resilience/server_breaker.c). Admin thread. */
#include "gateway/gw.h"

#include <cjson/cJSON.h>

#define GW_METRIC(x) "floodgate_gateway_" x

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
