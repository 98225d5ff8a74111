/* The gateway's /metrics (Prometheus text): requests and latency per
 * service and server, connections, the servers' state, errors by kind,
 * then the families of the members, the guard, the routes and the
 * resilience objects. Reads take a reference on the newest snapshot for
 * the length of the scrape and load the counters relaxed (per-worker
 * entries summed, balance/counters.h).
 *
 * Thread context: gw_metrics_render() runs on any thread (the admin
 * thread in practice), while the workers count. */
#include "gateway/gw.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static uint64_t now_ms(void) { return ev_clock_ns() / 1000000ull; }

#define GW_METRIC(name) "floodgate_gateway_" name

static const char *const code_class[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

static const char *const err_kind[8] = {
    [GW_ERR_BAD_REQUEST] = "bad_request",
    [GW_ERR_TIMEOUT_CLIENT] = "client_timeout",
    [GW_ERR_UP_CONNECT] = "upstream_connect",
    [GW_ERR_UP_TIMEOUT] = "upstream_timeout",
    [GW_ERR_UP_RESET] = "upstream_reset",
    [GW_ERR_UP_BAD_RESPONSE] = "upstream_bad_response",
    [GW_ERR_NO_ROUTE] = "no_route",
    [GW_ERR_NO_SERVER] = "no_server",
};

/* Sum of one per-worker counter over every worker. */
static uint64_t workers_sum(struct gw *g, size_t off)
{
    uint64_t sum = 0;
    for (int i = 0; g->workers && i < g->nworkers; i++) {
        struct gw_worker *w = g->workers[i];
        if (w)
            sum += atomic_load_explicit((atomic_uint_fast64_t *)((char *)&w->st + off), memory_order_relaxed);
    }
    return sum;
}

/* A family with one sample: a sum over the workers' stats. */
static void worker_family(struct buf *b, struct gw *g, const char *name, const char *type, const char *help,
                          size_t off)
{
    metrics_family(b, name, type, help);
    metrics_sample_u64(b, name, NULL, workers_sum(g, off));
}

/* The value of one per-server metric. */
typedef uint64_t (*srv_value_fn)(struct gw_server *s, uint64_t now);

/* Writes one sample of name per server of every service in s. */
static void per_server(struct buf *b, const struct gw_snapshot *s, const char *name,
                       srv_value_fn fn, uint64_t now)
{
    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct gw_service *svc = s->services[i];
        for (size_t j = 0; j < svc->nservers; j++) {
            struct gw_server *srv = svc->servers[j];
            metrics_sample_u64(b, name,
                               (const char *const[]){"service", svc->name, "server",
                                                     srv->addr_str, NULL},
                               fn(srv, now));
        }
    }
}

/* A family with one sample per server. */
static void server_family(struct buf *b, const struct gw_snapshot *s, const char *name, const char *type,
                          const char *help, srv_value_fn fn, uint64_t now)
{
    metrics_family(b, name, type, help);
    per_server(b, s, name, fn, now);
}

static struct gw_srv_counts counts(const struct gw_server *s)
{
    struct gw_srv_counts n;
    gw_server_counts(s, &n);
    return n;
}

static uint64_t v_opened(struct gw_server *s, uint64_t now) { return counts(s).conns_opened; }
static uint64_t v_reused(struct gw_server *s, uint64_t now) { return counts(s).conns_reused; }
static uint64_t v_failures(struct gw_server *s, uint64_t now) { return counts(s).failures; }
static uint64_t v_up(struct gw_server *s, uint64_t now) { return gw_server_usable(s, now); }
static uint64_t v_weight(struct gw_server *s, uint64_t now) { return (uint64_t)s->weight; }
static uint64_t v_inflight(struct gw_server *s, uint64_t now)
{
    int n = atomic_load_explicit(&s->inflight, memory_order_relaxed);
    return n > 0 ? (uint64_t)n : 0;
}

/* Requests per service, per server, and the latency histograms. */
static void render_requests(struct gw *g, struct buf *b, const struct gw_snapshot *s)
{
    metrics_family(b, GW_METRIC("requests_total"), "counter",
                   "Requests routed to a service, by response status class (none: no response).");
    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct gw_service *svc = s->services[i];
        if (!svc->stats)
            continue;
        uint64_t requests, classes[6];
        gw_svc_counts(svc->stats, &requests, classes, NULL);
        for (int c = 0; c < 6; c++)
            metrics_sample_u64(b, GW_METRIC("requests_total"),
                               (const char *const[]){"service", svc->name, "code_class",
                                                     code_class[c], NULL},
                               classes[c]);
    }

    metrics_family(b, GW_METRIC("server_requests_total"), "counter",
                   "Requests sent to a server, by response status class.");
    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct gw_service *svc = s->services[i];
        for (size_t j = 0; j < svc->nservers; j++) {
            struct gw_server *srv = svc->servers[j];
            struct gw_srv_counts n;
            gw_server_counts(srv, &n);
            for (int c = 0; c < 6; c++)
                metrics_sample_u64(b, GW_METRIC("server_requests_total"),
                                   (const char *const[]){"service", svc->name, "server",
                                                         srv->addr_str, "code_class",
                                                         code_class[c], NULL},
                                   n.resp_class[c]);
        }
    }

    metrics_family(b, GW_METRIC("request_duration_seconds"), "histogram",
                   "Time from a request's first byte to the end of its response; per service, "
                   "and without labels for every request.");
    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct gw_service *svc = s->services[i];
        if (!svc->stats)
            continue;
        uint64_t requests, classes[6];
        struct metrics_hist_snap h;
        gw_svc_counts(svc->stats, &requests, classes, &h);
        metrics_hist_write_snap(b, GW_METRIC("request_duration_seconds"),
                                (const char *const[]){"service", svc->name, NULL}, &h);
    }
    struct metrics_hist_snap h = {0};
    metrics_hist_snapshot(&g->latency, &h);
    for (int i = 0; g->workers && i < g->nworkers; i++)
        if (g->workers[i])
            metrics_hist_snapshot(&g->workers[i]->latency, &h);
    metrics_hist_write_snap(b, GW_METRIC("request_duration_seconds"), NULL, &h);
}

/* Connections (client and upstream) and the servers' state. */
static void render_servers(struct gw *g, struct buf *b, const struct gw_snapshot *s, uint64_t now)
{
    worker_family(b, g, GW_METRIC("active_connections"), "gauge",
                  "Open client connections.",
                  offsetof(struct gw_worker_stats, active));
    worker_family(b, g, GW_METRIC("connections_accepted_total"), "counter",
                  "Client connections accepted.",
                  offsetof(struct gw_worker_stats, accepted));

    server_family(b, s, GW_METRIC("upstream_connections_opened_total"), "counter",
                  "New TCP connections to a server.", v_opened, now);
    server_family(b, s, GW_METRIC("upstream_connections_reused_total"), "counter",
                  "Requests sent to a server on a pooled keep-alive connection.", v_reused, now);
    worker_family(b, g, GW_METRIC("upstream_idle_connections"), "gauge",
                  "Idle keep-alive connections pooled for reuse, all servers.",
                  offsetof(struct gw_worker_stats, up_idle));

    server_family(b, s, GW_METRIC("server_up"), "gauge",
                  "1 when a server takes new requests (healthy, not draining, not ejected, its breaker admitting).", v_up, now);
    server_family(b, s, GW_METRIC("server_inflight"), "gauge",
                  "Requests in flight to a server.", v_inflight, now);
    server_family(b, s, GW_METRIC("server_weight"), "gauge",
                  "Configured weight of a server.", v_weight, now);
    server_family(b, s, GW_METRIC("server_failures_total"), "counter",
                  "Connect errors, resets and timeouts talking to a server.", v_failures, now);
}

void gw_metrics_render(struct gw *g, struct buf *b)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    render_requests(g, b, s);
    render_servers(g, b, s, now_ms());
    gw_server_breaker_metrics_render(b, s);

    metrics_family(b, GW_METRIC("errors_total"), "counter", "Requests that failed, by cause.");
    for (size_t k = 0; k < ARRAY_SIZE(err_kind); k++)
        metrics_sample_u64(b, GW_METRIC("errors_total"),
                           (const char *const[]){"kind", err_kind[k], NULL},
                           workers_sum(g, offsetof(struct gw_worker_stats, errors) +
                                          k * sizeof(atomic_uint_fast64_t)));

    metrics_family(b, GW_METRIC("config_generation"), "gauge",
                   "Generation of the configuration in use; grows with each reload or change.");
    metrics_sample_u64(b, GW_METRIC("config_generation"), NULL, s ? s->generation : 0);

    if (g->workers) {
        gw_members_metrics_render(g, b);
        gw_guard_metrics_render(g, b);
        gw_route_metrics_render(g, b);
        gw_resil_metrics_render(g, b);
    }
    if (s)
        gw_snapshot_unref(s);
}
