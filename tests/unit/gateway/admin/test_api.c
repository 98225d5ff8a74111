/* Tests for gateway/admin/api.c over a hand-made snapshot: the /metrics
 * text (rendered directly and over HTTP), the read-only JSON endpoints,
 * and the refusals of the change endpoints (bad bodies, unknown names,
 * duplicates), which the members code answers before it would build a
 * new snapshot. Successful changes need the whole gateway and are
 * covered end to end. */
#include <criterion/criterion.h>

#include "core/admin.h"
#include "core/log.h"
#include "gateway/gw.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct gw g;
static struct gw_snapshot *snap;
static struct gw_worker *workers[2];
static int port;

static struct gw_server *mk_server(const char *svc, const char *addr, int weight)
{
    struct net_addr na;
    char *err = NULL;
    cr_assert_eq(net_parse_addr(addr, &na, &err), 0);
    return gw_server_new(&g.servers, svc, &na, weight);
}

/* Service "api" (checked, four servers in four states, a route) and
 * service "empty" (no servers). */
static void build(void)
{
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.snap_lock, NULL);
    pthread_mutex_init(&g.ctl_lock, NULL);
    gw_servers_init(&g.servers);
    log_level = LOG_ERROR;

    struct gw_service *api = calloc(1, sizeof *api);
    api->name = "api";
    api->balance = "least_conn";
    api->nservers = 4;
    api->servers = calloc(4, sizeof *api->servers);
    api->servers[0] = mk_server("api", "127.0.0.1:1", 3);
    api->servers[1] = mk_server("api", "127.0.0.1:2", 1);
    api->servers[2] = mk_server("api", "127.0.0.1:3", 1);
    api->servers[3] = mk_server("api", "[::1]:4", 1);
    atomic_store(&api->servers[1]->health, GW_DOWN);
    atomic_store(&api->servers[2]->draining, true);
    atomic_store(&api->servers[3]->down_until_ms, UINT64_MAX);
    atomic_store(&api->servers[0]->inflight, 5);
    atomic_store(&api->servers[0]->req_total, 9);
    atomic_store(&api->servers[0]->resp_class[2], 7);
    atomic_store(&api->servers[0]->resp_class[5], 2);
    atomic_store(&api->servers[0]->conns_opened, 4);
    atomic_store(&api->servers[0]->conns_reused, 5);
    api->health = (struct gw_cfg_health){.enabled = true, .path = "/hc", .interval_ms = 1000,
                                         .timeout_ms = 500, .expect_min = 200, .expect_max = 299,
                                         .rise = 2, .fall = 3};
    api->stats = calloc(1, sizeof *api->stats);
    api->stats->name = "api";
    atomic_store(&api->stats->req_total, 9);
    atomic_store(&api->stats->resp_class[2], 7);
    atomic_store(&api->stats->resp_class[5], 2);
    metrics_hist_observe_ns(&api->stats->latency, 1000000);

    struct gw_service *empty = calloc(1, sizeof *empty);
    empty->name = "empty";
    empty->balance = "round_robin";
    empty->stats = calloc(1, sizeof *empty->stats);
    empty->stats->name = "empty";

    snap = calloc(1, sizeof *snap);
    atomic_init(&snap->refcnt, 1); /* the test's, never dropped */
    snap->generation = 42;
    snap->nservices = 2;
    snap->services = calloc(2, sizeof *snap->services);
    snap->services[0] = api;
    snap->services[1] = empty;
    snap->nroutes = 1;
    snap->routes = calloc(1, sizeof *snap->routes);
    snap->routes[0] = (struct gw_route){.prefix = "/api", .prefix_len = 4, .strip = true,
                                        .svc = api};
    g.snap = snap;

    for (int i = 0; i < 2; i++) {
        workers[i] = calloc(1, sizeof *workers[i]);
        atomic_store(&workers[i]->st.accepted, 10u + (unsigned)i);
        atomic_store(&workers[i]->st.active, 2);
        atomic_store(&workers[i]->st.up_idle, 3);
        atomic_store(&workers[i]->st.errors[GW_ERR_NO_SERVER], 1u + (unsigned)i);
    }
    g.workers = workers;
    g.nworkers = 2;
    metrics_hist_observe_ns(&g.latency, 2000000);
}

static void setup(void)
{
    build();
    /* A free port: bind port 0, note it, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    port = ntohs(sin.sin_port);
    close(fd);
    char addr[64], *err = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    char *hosts[] = {"t"};
    struct gw_config c = {.admin = addr, .admin_access = {.hosts = hosts, .nhosts = 1}};
    cr_assert_eq(gw_admin_start(&g, &c, &err), 0, "%s", err ? err : "");
}

static void teardown(void)
{
    gw_admin_stop(&g);
    g.snap = NULL;
    for (size_t i = 0; i < snap->nservices; i++) {
        struct gw_service *svc = snap->services[i];
        for (size_t j = 0; j < svc->nservers; j++)
            gw_server_unref(svc->servers[j]);
        free(svc->servers);
        free(svc->stats);
        free(svc);
    }
    free(snap->services);
    free(snap->routes);
    free(snap);
    for (int i = 0; i < 2; i++)
        free(workers[i]);
}

/* One request on a fresh connection. Returns the status; *body gets the
 * body (caller frees), *head the response head when head is not NULL. */
static int call(const char *method, const char *path, const char *body, char **out,
                char **head)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 16, len = 0;
    char *resp = malloc(cap);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_gt(poll(&p, 1, 5000), 0, "no response to %s %s", method, path);
        if (len + 4096 > cap)
            resp = realloc(resp, cap *= 2);
        ssize_t r = read(fd, resp + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    resp[len] = '\0';
    int status = 0;
    cr_assert_eq(sscanf(resp, "HTTP/1.1 %d", &status), 1, "bad response: %s", resp);
    char *sep = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(sep);
    *out = strdup(sep + 4);
    if (head)
        *head = strndup(resp, (size_t)(sep - resp));
    free(resp);
    return status;
}

static cJSON *call_json(const char *method, const char *path, const char *body, int want)
{
    char *out;
    int st = call(method, path, body, &out, NULL);
    cr_assert_eq(st, want, "%s %s: status %d, body %s", method, path, st, out);
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "not JSON: %s", out);
    free(out);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsString(v), "no string %s", k);
    return v->valuestring;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsNumber(v), "no number %s", k);
    return v->valuedouble;
}

TestSuite(admin_api, .init = setup, .fini = teardown, .timeout = 30);

/* ---------------------------------------------------------------- metrics */

static void has_line(const char *text, const char *line)
{
    char *want = NULL;
    cr_assert(asprintf(&want, "\n%s\n", line) > 0);
    cr_assert_not_null(strstr(text, want), "missing line: %s", line);
    free(want);
}

Test(admin_api, metrics_render)
{
    struct buf b;
    buf_init(&b);
    gw_metrics_render(&g, &b);
    buf_append(&b, "", 1);
    char *t = buf_rptr(&b);
    has_line(t, "# TYPE floodgate_gateway_requests_total counter");
    has_line(t, "floodgate_gateway_requests_total{service=\"api\",code_class=\"2xx\"} 7");
    has_line(t, "floodgate_gateway_requests_total{service=\"api\",code_class=\"5xx\"} 2");
    has_line(t, "floodgate_gateway_requests_total{service=\"api\",code_class=\"none\"} 0");
    has_line(t, "floodgate_gateway_server_requests_total{service=\"api\",server=\"127.0.0.1:1\","
                "code_class=\"2xx\"} 7");
    has_line(t, "# TYPE floodgate_gateway_request_duration_seconds histogram");
    has_line(t, "floodgate_gateway_request_duration_seconds_count{service=\"api\"} 1");
    has_line(t, "floodgate_gateway_request_duration_seconds_count{service=\"empty\"} 0");
    has_line(t, "floodgate_gateway_request_duration_seconds_count 1");
    has_line(t, "floodgate_gateway_request_duration_seconds_sum 0.002");
    has_line(t, "floodgate_gateway_active_connections 4");
    has_line(t, "floodgate_gateway_connections_accepted_total 21");
    has_line(t, "floodgate_gateway_upstream_idle_connections 6");
    has_line(t, "floodgate_gateway_upstream_connections_opened_total{service=\"api\","
                "server=\"127.0.0.1:1\"} 4");
    has_line(t, "floodgate_gateway_upstream_connections_reused_total{service=\"api\","
                "server=\"127.0.0.1:1\"} 5");
    has_line(t, "floodgate_gateway_server_up{service=\"api\",server=\"127.0.0.1:1\"} 1");
    has_line(t, "floodgate_gateway_server_up{service=\"api\",server=\"127.0.0.1:2\"} 0");
    has_line(t, "floodgate_gateway_server_up{service=\"api\",server=\"127.0.0.1:3\"} 0");
    has_line(t, "floodgate_gateway_server_up{service=\"api\",server=\"[::1]:4\"} 0");
    has_line(t, "floodgate_gateway_server_inflight{service=\"api\",server=\"127.0.0.1:1\"} 5");
    has_line(t, "floodgate_gateway_errors_total{kind=\"no_server\"} 3");
    has_line(t, "floodgate_gateway_errors_total{kind=\"bad_request\"} 0");
    has_line(t, "floodgate_gateway_errors_total{kind=\"upstream_bad_response\"} 0");
    has_line(t, "floodgate_gateway_config_generation 42");
    /* Each family's TYPE line appears once. */
    const char *first = strstr(t, "# TYPE floodgate_gateway_server_up ");
    cr_assert_not_null(first);
    cr_assert_null(strstr(first + 1, "# TYPE floodgate_gateway_server_up "));
    buf_free(&b);
}

Test(admin_api, metrics_over_http)
{
    char *body, *head;
    cr_assert_eq(call("GET", "/metrics", NULL, &body, &head), 200);
    cr_assert_not_null(strstr(head, "Content-Type: " METRICS_CONTENT_TYPE), "%s", head);
    cr_assert_not_null(strstr(body, "\nfloodgate_gateway_config_generation 42\n"));
    free(body);
    free(head);
}

/* ---------------------------------------------------------------- reads */

Test(admin_api, health)
{
    cJSON *j = call_json("GET", "/health", NULL, 200);
    cr_assert_str_eq(jstr(j, "status"), "ok");
    cJSON_Delete(j);
    atomic_store(&g.stopping, true);
    j = call_json("GET", "/health", NULL, 503);
    cr_assert_str_eq(jstr(j, "status"), "draining");
    cJSON_Delete(j);
}

Test(admin_api, list_services)
{
    cJSON *j = call_json("GET", "/services", NULL, 200);
    cr_assert(cJSON_IsArray(j));
    cr_assert_eq(cJSON_GetArraySize(j), 2);
    cJSON *api = cJSON_GetArrayItem(j, 0);
    cr_assert_str_eq(jstr(api, "name"), "api");
    cr_assert_str_eq(jstr(api, "balance"), "least_conn");
    cr_assert_eq(jnum(api, "requests"), 9);
    cJSON *srv = cJSON_GetObjectItemCaseSensitive(api, "servers");
    cr_assert_eq(cJSON_GetArraySize(srv), 4);
    const char *states[] = {"up", "down", "draining", "ejected"};
    const char *addrs[] = {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "[::1]:4"};
    for (int i = 0; i < 4; i++) {
        cJSON *s = cJSON_GetArrayItem(srv, i);
        cr_assert_str_eq(jstr(s, "address"), addrs[i]);
        cr_assert_str_eq(jstr(s, "state"), states[i]);
        cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "dynamic")));
    }
    cJSON *s0 = cJSON_GetArrayItem(srv, 0);
    cr_assert_eq(jnum(s0, "weight"), 3);
    cr_assert_eq(jnum(s0, "inflight"), 5);
    cr_assert_eq(jnum(s0, "requests"), 9);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(api, "health");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "enabled")));
    cr_assert_str_eq(jstr(h, "path"), "/hc");
    cr_assert_eq(jnum(h, "interval_ms"), 1000);
    cr_assert_eq(jnum(h, "fall"), 3);
    cJSON *routes = cJSON_GetObjectItemCaseSensitive(api, "routes");
    cr_assert_eq(cJSON_GetArraySize(routes), 1);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(routes, 0), "prefix"), "/api");
    cJSON_Delete(j);
}

Test(admin_api, one_service_and_its_servers)
{
    cJSON *j = call_json("GET", "/services/empty", NULL, 200);
    cr_assert_str_eq(jstr(j, "name"), "empty");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "servers")), 0);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "health");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(h, "enabled")));
    cJSON_Delete(j);

    j = call_json("GET", "/services/api/servers", NULL, 200);
    cr_assert_eq(cJSON_GetArraySize(j), 4);
    cJSON_Delete(j);

    /* Percent-encoded, canonical, and another spelling of the address. */
    j = call_json("GET", "/services/api/servers/127.0.0.1%3A2", NULL, 200);
    cr_assert_str_eq(jstr(j, "state"), "down");
    cJSON_Delete(j);
    j = call_json("GET", "/services/api/servers/%5B%3A%3A1%5D%3a4", NULL, 200);
    cr_assert_str_eq(jstr(j, "address"), "[::1]:4");
    cJSON_Delete(j);
    j = call_json("GET", "/services/api/servers/[0:0::1]:4", NULL, 200);
    cr_assert_str_eq(jstr(j, "address"), "[::1]:4");
    cJSON_Delete(j);
}

Test(admin_api, unknown_paths)
{
    cJSON *j = call_json("GET", "/services/nope", NULL, 404);
    cr_assert_not_null(strstr(jstr(j, "error"), "nope"));
    cJSON_Delete(j);
    cJSON_Delete(call_json("GET", "/services/api/servers/127.0.0.1:9", NULL, 404));
    cJSON_Delete(call_json("GET", "/services/api/other", NULL, 404));
    cJSON_Delete(call_json("GET", "/services/api/servers/127.0.0.1:1/x", NULL, 404));
    cJSON_Delete(call_json("POST", "/services/api/servers/127.0.0.1:1/melt", NULL, 404));
    cJSON_Delete(call_json("DELETE", "/services/api/servers", NULL, 404));
    cJSON_Delete(call_json("GET", "/services/api/servers/%zz", NULL, 400));
    cJSON_Delete(call_json("GET", "/services//servers", NULL, 400));
    cJSON_Delete(call_json("PUT", "/services/api", NULL, 405));
    cJSON_Delete(call_json("GET", "/nothing", NULL, 404));
}

/* ------------------------------------------------------ refused changes */

Test(admin_api, register_refusals)
{
    cJSON_Delete(call_json("POST", "/services/api/servers", "", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers", "[1]", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers", "{\"weight\":2}", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers", "{\"address\":7}", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers",
                           "{\"address\":\"127.0.0.1:7\",\"weight\":0}", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers",
                           "{\"address\":\"127.0.0.1:7\",\"weight\":1.5}", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers",
                           "{\"address\":\"127.0.0.1:7\",\"weight\":\"2\"}", 400));
    cJSON_Delete(call_json("POST", "/services/api/servers", "{\"address\":\"nohost\"}", 400));
    /* What the config refuses, in its words, with the member's name. */
    cJSON *e = call_json("POST", "/services/api/servers", "{\"address\":\"127.0.0.1:0\"}", 400);
    cr_assert_str_eq(jstr(e, "error"), "address: bad address '127.0.0.1:0': port 0 cannot be connected to");
    cJSON_Delete(e);
    e = call_json("POST", "/services/api/servers", "{\"address\":\"9001\"}", 400);
    cr_assert_str_eq(jstr(e, "error"), "address: bad address '9001': expected host:port");
    cJSON_Delete(e);
    e = call_json("POST", "/services/api/servers", "{\"address\":\"127.0.0.1:7\",\"weight\":1001}", 400);
    cr_assert_str_eq(jstr(e, "error"), "weight: '1001' is out of range: must be between 1 and 1000");
    cJSON_Delete(e);
    e = call_json("POST", "/services/api/servers", "{\"address\":\"127.0.0.1:7\",\"wieght\":2}", 400);
    cr_assert_str_eq(jstr(e, "error"), "wieght: unknown key; did you mean 'weight'? (valid keys: address, weight, ttl)");
    cJSON_Delete(e);
    e = call_json("POST", "/services", "{\"name\":\"x\",\"balance\":\"round_robn\"}", 400);
    cr_assert_not_null(strstr(jstr(e, "error"), "balance: unknown value 'round_robn'; did you mean 'round_robin'?"));
    cJSON_Delete(e);
    cJSON_Delete(call_json("POST", "/services/nope/servers", "{\"address\":\"127.0.0.1:7\"}", 404));
    cJSON *j = call_json("POST", "/services/api/servers", "{\"address\":\"127.0.0.1:1\"}", 409);
    cr_assert_not_null(strstr(jstr(j, "error"), "127.0.0.1:1"));
    cJSON_Delete(j);
}

Test(admin_api, other_refusals)
{
    cJSON_Delete(call_json("DELETE", "/services/api/servers/127.0.0.1%3A9", NULL, 404));
    cJSON_Delete(call_json("DELETE", "/services/nope/servers/127.0.0.1%3A1", NULL, 404));
    cJSON_Delete(call_json("POST", "/services/api/servers/127.0.0.1%3A9/drain", NULL, 404));
    cJSON_Delete(call_json("POST", "/services/api/servers/127.0.0.1%3A9/undrain", NULL, 404));
    cJSON_Delete(call_json("DELETE", "/services/nope", NULL, 404));
    cJSON_Delete(call_json("POST", "/services", "{}", 400));
    cJSON_Delete(call_json("POST", "/services", "{\"name\":\"api\"}", 409));
    cJSON_Delete(call_json("POST", "/services", "{\"name\":\"Bad Name\"}", 400));
    cJSON_Delete(call_json("POST", "/services", "{\"name\":\"x\",\"balance\":\"magic\"}", 400));
    cJSON_Delete(call_json("POST", "/services", "{\"name\":\"x\",\"prefix\":\"x\"}", 400));
    cJSON_Delete(call_json("POST", "/services", "{\"name\":\"x\",\"strip_prefix\":1}", 400));
    /* Nothing changed. */
    cr_assert_eq(g.snap, snap);
}
