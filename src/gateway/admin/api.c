/* The gateway's admin API and /metrics, on the core admin framework
 * (core/admin.h): JSON endpoints to inspect services and change their
 * membership at run time, a reload trigger, a liveness probe and the
 * Prometheus scrape (rendered by admin/metrics.c).
 *
 *   GET    /health                                      {"status":"ok"}
 *   GET    /metrics                                     Prometheus text
 *   POST   /reload                                      re-read the config
 *   GET    /services                                    every service
 *   POST   /services                                    create one (201)
 *   GET    /services/{name}                             one service
 *   DELETE /services/{name}                             remove it
 *   GET    /services/{name}/servers                     its servers
 *   POST   /services/{name}/servers                     register one (201); with
 *                                                       "ttl", a lease (renewed: 200)
 *   GET    /services/{name}/servers/{address}           one server
 *   DELETE /services/{name}/servers/{address}           deregister it
 *   POST   /services/{name}/servers/{address}/drain     stop new requests
 *   POST   /services/{name}/servers/{address}/undrain   resume them
 *
 * Path segments are percent-decoded ("127.0.0.1%3A9001"). A server is
 * found by its canonical address string or by any address that parses to
 * the same socket address ("localhost:9001").
 *
 * Reads take a reference on the newest snapshot for the length of the
 * handler and read the servers' counters with relaxed loads. Changes go
 * through the gw_members_* functions, which validate them, record them
 * (so they survive reloads), publish a new snapshot before returning, and
 * say why they refuse (-EINVAL, -ENOENT, -EEXIST), which gw_admin_status()
 * turns into 400, 404, 409. Values go through
 * the config loader's own checks (gw_check_* in config.h), so the API
 * refuses what a config file refuses, in the same words, with the JSON
 * member's name where the file's errors have the key path. Handlers here
 * check the shape of request bodies, refusing unknown members as the
 * config refuses unknown keys.
 *
 * Thread context: handlers run on the admin thread, one at a time.
 * gw_admin_start() and gw_admin_stop() are called by the main thread. */
#include "gateway/gw.h"

#include "core/admin.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADM_MAX_SEGS 5      /* segments after /services/ that any endpoint uses */
#define ADM_SEG_MAX 256     /* decoded length of one segment, NUL included */

static uint64_t now_ms(void) { return ev_clock_ns() / 1000000ull; }

/* ---- lookups ---- */

static struct gw_service *svc_find(const struct gw_snapshot *s, const char *name)
{
    for (size_t i = 0; s && i < s->nservices; i++)
        if (strcmp(s->services[i]->name, name) == 0)
            return s->services[i];
    return NULL;
}

/* The server of svc whose address is addr, written canonically or as
 * anything that parses to the same socket address. */
static struct gw_server *srv_find(const struct gw_service *svc, const char *addr)
{
    for (size_t i = 0; i < svc->nservers; i++)
        if (strcmp(svc->servers[i]->addr_str, addr) == 0)
            return svc->servers[i];
    struct net_addr na;
    char *err = NULL;
    if (net_parse_addr(addr, &na, &err) != 0) {
        free(err);
        return NULL;
    }
    for (size_t i = 0; i < svc->nservers; i++)
        if (net_addr_equal(&svc->servers[i]->addr, &na))
            return svc->servers[i];
    return NULL;
}

/* ---- JSON views ---- */

static const char *srv_state(struct gw_server *s, uint64_t now)
{
    if (atomic_load_explicit(&s->draining, memory_order_relaxed))
        return "draining";
    if (atomic_load_explicit(&s->health, memory_order_relaxed) != GW_UP)
        return "down";
    if (atomic_load_explicit(&s->down_until_ms, memory_order_relaxed) > now)
        return "ejected";
    struct gw_breaker *b = atomic_load_explicit(&s->breaker, memory_order_acquire);
    if (b && gw_breaker_state(b) == GW_BREAKER_OPEN)
        return "breaker_open";
    if (b && gw_breaker_state(b) == GW_BREAKER_HALF_OPEN)
        return "breaker_half_open";
    return "up";
}

static cJSON *srv_json(struct gw *g, const char *svc, struct gw_server *s, uint64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "address", s->addr_str);
    cJSON_AddNumberToObject(o, "weight", s->weight);
    cJSON_AddStringToObject(o, "state", srv_state(s, now));
    cJSON_AddNumberToObject(o, "inflight",
                            atomic_load_explicit(&s->inflight, memory_order_relaxed));
    struct gw_srv_counts n;
    gw_server_counts(s, &n);
    cJSON_AddNumberToObject(o, "requests", (double)n.requests);
    cJSON_AddNumberToObject(o, "failures", (double)n.failures);
    cJSON_AddBoolToObject(o, "dynamic", atomic_load_explicit(&s->dynamic, memory_order_relaxed));
    uint64_t ttl, left;
    if (svc && gw_members_lease(g, svc, &s->addr, &ttl, &left)) {
        cJSON *l = cJSON_AddObjectToObject(o, "lease");
        cJSON_AddNumberToObject(l, "ttl_ms", (double)ttl);
        cJSON_AddNumberToObject(l, "expires_in_ms", (double)left);
    }
    cJSON *brk = gw_server_breaker_json(s, ev_clock_ns() / 1000);
    if (brk)
        cJSON_AddItemToObject(o, "breaker", brk);
    return o;
}

static cJSON *servers_json(struct gw *g, const struct gw_service *svc, uint64_t now)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < svc->nservers; i++)
        cJSON_AddItemToArray(a, srv_json(g, svc->name, svc->servers[i], now));
    return a;
}

static cJSON *svc_json(struct gw *g, const struct gw_snapshot *snap, const struct gw_service *svc, uint64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", svc->name);
    cJSON_AddStringToObject(o, "balance", svc->balance ? svc->balance : "round_robin");
    cJSON_AddBoolToObject(o, "dynamic", svc->dynamic);
    uint64_t requests = 0, classes[6];
    if (svc->stats)
        gw_svc_counts(svc->stats, &requests, classes, NULL);
    cJSON_AddNumberToObject(o, "requests", (double)requests);
    cJSON_AddItemToObject(o, "servers", servers_json(g, svc, now));

    const struct gw_cfg_health *hc = &svc->health;
    cJSON *h = cJSON_AddObjectToObject(o, "health");
    cJSON_AddBoolToObject(h, "enabled", hc->enabled);
    if (hc->enabled) {
        const char *path = svc->health_path ? svc->health_path : hc->path;
        cJSON_AddStringToObject(h, "path", path ? path : "/");
        cJSON_AddNumberToObject(h, "interval_ms", (double)hc->interval_ms);
        cJSON_AddNumberToObject(h, "timeout_ms", (double)hc->timeout_ms);
        cJSON_AddNumberToObject(h, "expect_min", hc->expect_min);
        cJSON_AddNumberToObject(h, "expect_max", hc->expect_max);
        cJSON_AddNumberToObject(h, "rise", hc->rise);
        cJSON_AddNumberToObject(h, "fall", hc->fall);
    }
    cJSON *p = cJSON_AddObjectToObject(o, "passive");
    cJSON_AddNumberToObject(p, "max_failures", svc->passive_max_failures);
    cJSON_AddNumberToObject(p, "eject_ms", (double)svc->passive_eject_ms);

    cJSON *routes = cJSON_AddArrayToObject(o, "routes");
    for (size_t i = 0; snap && i < snap->nroutes; i++) {
        const struct gw_route *r = &snap->routes[i];
        if (r->svc != svc)
            continue;
        cJSON *ro = cJSON_CreateObject();
        if (r->host)
            cJSON_AddStringToObject(ro, "host", r->host);
        cJSON_AddStringToObject(ro, "prefix", r->prefix ? r->prefix : "/");
        cJSON_AddBoolToObject(ro, "strip_prefix", r->strip);
        cJSON_AddItemToArray(routes, ro);
    }
    return o;
}

/* ---- request helpers ---- */


/* Splits req->rest on '/' into decoded segments. An empty rest gives no
 * segments. Returns the count, or -1 when there are too many, one is
 * empty, or one does not decode. */
static int split_rest(const struct admin_req *req, char segs[ADM_MAX_SEGS][ADM_SEG_MAX])
{
    const char *p = req->rest, *end = req->rest + req->rest_len;
    if (p == end)
        return 0;
    int n = 0;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        if (e == p || n == ADM_MAX_SEGS || !admin_path_decode(p, (size_t)(e - p), segs[n], ADM_SEG_MAX))
            return -1;
        n++;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

int gw_admin_status(int rc)
{
    switch (rc) {
    case -ENOENT: return 404;
    case -EEXIST: return 409;
    case -EIO: return 500;
    default: return 400;
    }
}

/* Answers a refusal from the members code: rc its -errno, err its
 * message (freed here). */
static void fail_members(struct admin_resp *resp, int rc, char *err)
{
    admin_resp_error(resp, gw_admin_status(rc), "%s", err ? err : "refused");
    free(err);
}

/* Reads an optional string member; false (with a 400 sent) when present
 * with another type. */
static bool opt_string(const cJSON *o, const char *key, const char **out,
                       struct admin_resp *resp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsString(v)) {
        admin_resp_error(resp, 400, "'%s' must be a string", key);
        return false;
    }
    *out = v->valuestring;
    return true;
}

/* Refuses (400) a body member that is not in allowed, in the config
 * loader's words. */
static bool known_keys(const cJSON *o, const char *const *allowed, struct admin_resp *resp)
{
    for (const cJSON *k = o->child; k; k = k->next) {
        char *why = gw_check_key(k->string, allowed);
        if (why) {
            admin_resp_error(resp, 400, "%s: %s", k->string, why);
            free(why);
            return false;
        }
    }
    return true;
}

/* A "weight" member: its JSON text (2, 1.5, "2", true) checked by the
 * config's own check, so only a JSON integer in range passes. */
static bool json_weight(const cJSON *w, int *out, struct admin_resp *resp)
{
    char *text = cJSON_IsNumber(w) ? xasprintf("%.17g", w->valuedouble) : cJSON_PrintUnformatted(w);
    char *why = gw_check_weight(text ? text : "", out);
    if (why)
        admin_resp_error(resp, 400, "weight: %s", why);
    free(why);
    cJSON_free(text);
    return why == NULL;
}

/* ---- handlers ---- */

static void h_health(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    bool stopping = atomic_load_explicit(&g->stopping, memory_order_relaxed);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", stopping ? "draining" : "ok");
    admin_resp_json(resp, stopping ? 503 : 200, o);
}

static void h_metrics(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    resp->content_type = METRICS_CONTENT_TYPE;
    gw_metrics_render(g, &resp->body);
}

static void h_reload(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    char *err = NULL;
    if (gw_reload(g, &err) != 0) {
        admin_resp_error(resp, 400, "%s", err ? err : "reload failed");
        free(err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    struct gw_snapshot *s = gw_snapshot_get(g);
    if (s) {
        cJSON_AddNumberToObject(o, "generation", (double)s->generation);
        gw_snapshot_unref(s);
    }
    admin_resp_json(resp, 200, o);
}

static void list_services(struct gw *g, struct admin_resp *resp)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    uint64_t now = now_ms();
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; s && i < s->nservices; i++)
        cJSON_AddItemToArray(a, svc_json(g, s, s->services[i], now));
    if (s)
        gw_snapshot_unref(s);
    admin_resp_json(resp, 200, a);
}

static void h_services_get(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    list_services(g, resp);
}

/* POST /services {"name","balance","prefix","strip_prefix"} */
static void create_service(struct gw *g, const struct admin_req *req, struct admin_resp *resp)
{
    cJSON *in = admin_req_json(req);
    if (!cJSON_IsObject(in)) {
        admin_resp_error(resp, 400, "expected a JSON object like {\"name\":\"api\"}");
        cJSON_Delete(in);
        return;
    }
    static const char *const keys[] = {"name", "balance", "prefix", "strip_prefix", NULL};
    const char *name = NULL, *balance = "round_robin", *prefix = NULL;
    bool strip = false;
    if (!known_keys(in, keys, resp) || !opt_string(in, "name", &name, resp) ||
        !opt_string(in, "balance", &balance, resp) || !opt_string(in, "prefix", &prefix, resp))
        goto out;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(in, "strip_prefix");
    if (sp && !cJSON_IsNull(sp)) {
        if (!cJSON_IsBool(sp)) {
            admin_resp_error(resp, 400, "'strip_prefix' must be true or false");
            goto out;
        }
        strip = cJSON_IsTrue(sp);
    }
    if (!name) {
        admin_resp_error(resp, 400, "'name' is required");
        goto out;
    }

    char *err = NULL;
    int rc = gw_members_add_service(g, name, balance, prefix, strip, &err);
    if (rc != 0) {
        fail_members(resp, rc, err);
        goto out;
    }
    struct gw_snapshot *s = gw_snapshot_get(g);
    struct gw_service *svc = svc_find(s, name);
    if (svc) {
        admin_resp_json(resp, 201, svc_json(g, s, svc, now_ms()));
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        admin_resp_json(resp, 201, o);
    }
    if (s)
        gw_snapshot_unref(s);
out:
    cJSON_Delete(in);
}

static void h_services_post(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    create_service(g, req, resp);
}

/* Answers with the server at addr in service name of the newest
 * snapshot, or with fallback when it is not there (deleted, or changed
 * again meanwhile). Takes ownership of fallback. */
static void answer_server(struct gw *g, struct admin_resp *resp, int status, const char *name, const char *addr,
                          cJSON *fallback)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    struct gw_service *svc = svc_find(s, name);
    struct gw_server *srv = svc ? srv_find(svc, addr) : NULL;
    if (srv) {
        cJSON_Delete(fallback);
        admin_resp_json(resp, status, srv_json(g, name, srv, now_ms()));
    } else {
        admin_resp_json(resp, status, fallback);
    }
    if (s)
        gw_snapshot_unref(s);
}

/* POST /services/{name}/servers {"address","weight"} */
static void add_server(struct gw *g, const struct admin_req *req, struct admin_resp *resp, const char *name)
{
    cJSON *in = admin_req_json(req);
    if (!cJSON_IsObject(in)) {
        admin_resp_error(resp, 400, "expected a JSON object like {\"address\":\"127.0.0.1:9001\"}");
        cJSON_Delete(in);
        return;
    }
    static const char *const keys[] = {"address", "weight", "ttl", NULL};
    const char *addr = NULL, *ttl = NULL;
    int weight = 1;
    uint64_t ttl_ms = 0;
    if (!known_keys(in, keys, resp) || !opt_string(in, "address", &addr, resp) ||
        !opt_string(in, "ttl", &ttl, resp))
        goto out;
    char *why = ttl ? gw_check_ttl(ttl, &ttl_ms) : NULL;
    if (why) {
        admin_resp_error(resp, 400, "ttl: %s", why);
        free(why);
        goto out;
    }
    if (!addr || !addr[0]) {
        admin_resp_error(resp, 400, "'address' is required");
        goto out;
    }
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(in, "weight");
    if (w && !cJSON_IsNull(w) && !json_weight(w, &weight, resp))
        goto out;

    char *err = NULL;
    int rc = gw_members_add_server(g, name, addr, weight, ttl_ms, &err);
    if (rc < 0) {
        fail_members(resp, rc, err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "address", addr);
    cJSON_AddNumberToObject(o, "weight", weight);
    answer_server(g, resp, rc == 1 ? 200 : 201, name, addr, o); /* 200: a lease renewed */
out:
    cJSON_Delete(in);
}

/* DELETE /services/{name}/servers/{address}: in-flight requests finish. */
static void remove_server(struct gw *g, struct admin_resp *resp, const char *name, const char *addr)
{
    char *err = NULL;
    int rc = gw_members_remove_server(g, name, addr, &err);
    if (rc != 0) {
        fail_members(resp, rc, err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "service", name);
    cJSON_AddStringToObject(o, "address", addr);
    cJSON_AddBoolToObject(o, "removed", true);
    admin_resp_json(resp, 200, o);
}

/* POST /services/{name}/servers/{address}/drain (or undrain). */
static void drain_server(struct gw *g, struct admin_resp *resp, const char *name, const char *addr, bool drain)
{
    char *err = NULL;
    int rc = gw_members_drain_server(g, name, addr, drain, &err);
    if (rc != 0) {
        fail_members(resp, rc, err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "address", addr);
    cJSON_AddBoolToObject(o, "draining", drain);
    answer_server(g, resp, 200, name, addr, o);
}

/* DELETE /services/{name} */
static void remove_service(struct gw *g, struct admin_resp *resp, const char *name)
{
    char *err = NULL;
    int rc = gw_members_remove_service(g, name, &err);
    if (rc != 0) {
        fail_members(resp, rc, err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "removed", true);
    admin_resp_json(resp, 200, o);
}

/* GET /services/{name}[/servers[/{address}]] */
static void get_service(struct gw *g, struct admin_resp *resp, char segs[ADM_MAX_SEGS][ADM_SEG_MAX], int n)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    struct gw_service *svc = svc_find(s, segs[0]);
    uint64_t now = now_ms();
    if (!svc) {
        admin_resp_error(resp, 404, "no such service '%s'", segs[0]);
    } else if (n == 1) {
        admin_resp_json(resp, 200, svc_json(g, s, svc, now));
    } else if (n == 2) {
        admin_resp_json(resp, 200, servers_json(g, svc, now));
    } else {
        struct gw_server *srv = srv_find(svc, segs[2]);
        if (srv)
            admin_resp_json(resp, 200, srv_json(g, segs[0], srv, now));
        else
            admin_resp_error(resp, 404, "no such server '%s' in service '%s'", segs[2], segs[0]);
    }
    if (s)
        gw_snapshot_unref(s);
}

static void not_found(const struct admin_req *req, struct admin_resp *resp)
{
    admin_resp_error(resp, 404, "no such endpoint: %.*s %.*s", (int)req->method_len, req->method,
                     (int)req->path_len, req->path);
}

/* Splits the path after /services/ and checks its shape; returns the
 * segment count, or -1 with a response already set. */
static int parse_service_path(const struct admin_req *req, struct admin_resp *resp,
                              char segs[ADM_MAX_SEGS][ADM_SEG_MAX])
{
    int n = split_rest(req, segs);
    if (n < 0) {
        admin_resp_error(resp, 400, "bad path: %.*s", (int)req->path_len, req->path);
        return -1;
    }
    if (n >= 2 && strcmp(segs[1], "servers") != 0) {
        not_found(req, resp);
        return -1;
    }
    return n;
}

static void h_service_get(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    char segs[ADM_MAX_SEGS][ADM_SEG_MAX];
    int n = parse_service_path(req, resp, segs);
    if (n < 0)
        return;
    if (n == 0)
        list_services(g, resp);
    else if (n <= 3)
        get_service(g, resp, segs, n);
    else
        not_found(req, resp);
}

static void h_service_post(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    char segs[ADM_MAX_SEGS][ADM_SEG_MAX];
    int n = parse_service_path(req, resp, segs);
    if (n < 0)
        return;
    if (n == 0)
        create_service(g, req, resp);
    else if (n == 2)
        add_server(g, req, resp, segs[0]);
    else if (n == 4 && strcmp(segs[3], "drain") == 0)
        drain_server(g, resp, segs[0], segs[2], true);
    else if (n == 4 && strcmp(segs[3], "undrain") == 0)
        drain_server(g, resp, segs[0], segs[2], false);
    else
        not_found(req, resp);
}

static void h_service_delete(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    char segs[ADM_MAX_SEGS][ADM_SEG_MAX];
    int n = parse_service_path(req, resp, segs);
    if (n < 0)
        return;
    if (n == 1)
        remove_service(g, resp, segs[0]);
    else if (n == 3)
        remove_server(g, resp, segs[0], segs[2]);
    else
        not_found(req, resp);
}

/* ---- lifecycle ---- */

static void set_access(struct admin *a, const struct gw_config *c)
{
    admin_set_access(a, c->admin_access.hosts, c->admin_access.nhosts, c->admin_access.token);
}

/* What register_routes needs, for the length of gw_admin_start. */
struct setup_arg {
    struct gw *g;
    const struct gw_config *c;
};

static void register_routes(struct admin *a, void *ud)
{
    const struct setup_arg *arg = ud;
    struct gw *g = arg->g;
    set_access(a, arg->c);
    admin_route(a, "GET", "/health", h_health, g);
    admin_route(a, "GET", "/metrics", h_metrics, g);
    admin_route(a, "POST", "/reload", h_reload, g);
    admin_route(a, "GET", "/services", h_services_get, g);
    admin_route(a, "POST", "/services", h_services_post, g);
    admin_route(a, "GET", "/services/*", h_service_get, g);
    admin_route(a, "POST", "/services/*", h_service_post, g);
    admin_route(a, "DELETE", "/services/*", h_service_delete, g);
    gw_admin_guard_routes(a, g);
    gw_admin_route_routes(a, g);
}

int gw_admin_start(struct gw *g, const struct gw_config *c, char **err)
{
    ASSERT(!g->admin);
    if (!c->admin)
        return 0;
    /* Routes and access settings go in before the admin thread serves:
     * no 404 window, no window without the token. */
    struct setup_arg arg = {g, c};
    g->admin = admin_start_with(c->admin, register_routes, &arg, err);
    if (!g->admin)
        return -1;
    log_debug("admin API listening on %s (port %d)", c->admin, admin_port(g->admin));
    if (!c->admin_access.token && !net_addr_is_loopback(&c->admin_addr))
        log_warn("admin API on %s is reachable beyond this machine without a token: set admin.token_file "
                 "(docs/security.md)", c->admin);
    return 0;
}

void gw_admin_set_access(struct gw *g, const struct gw_config *c)
{
    if (g->admin)
        set_access(g->admin, c);
}

void gw_admin_stop(struct gw *g)
{
    admin_stop(g->admin);
    g->admin = NULL;
}
