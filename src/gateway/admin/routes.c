/* Routes in the admin API and their per-route counters:
 *   GET    /routes                              every route
 *   GET    /routes/{route}                      one route
 *   GET    /routes/{route}/allow (or /deny)     its allow (deny) list
 *   POST   /routes/{route}/allow {"cidr":"10.1.0.0/16"}   add to it (201)
 *   DELETE /routes/{route}/allow?cidr=10.1.0.0%2F16       remove from it
 * and the same for /deny. {route} is the route's name (routes: name:),
 * or its prefix percent-encoded ("%2Fapi" for /api, "%2F" for /); a
 * prefix shared by routes for several hosts takes ?host=NAME (without
 * it, the route for any host). The lists hold the config's entries plus
 * run-time changes; changes go through gw_members_route_cidr(), so they
 * are atomic, apply to the next request and survive reloads, like the
 * global /guard lists.
 *
 * Per-route 403 counters live in struct gw_route_stats, kept by route id
 * for the life of the process so /metrics does not reset on reload.
 * Thread context: handlers on the admin thread; gw_route_refuses() on
 * any worker; the registry under ctl_lock. */
#include "gateway/gw.h"
#include "core/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_METRIC(x) "floodgate_gateway_" x
#define RT_SEG_MAX 512  /* decoded length of a route segment, NUL included */
#define RT_HOST_MAX 256 /* ?host= value */
#define RT_ID_MAX 640   /* gw_route_id() text */

const char *gw_route_id(const struct gw_route *r, char *buf, size_t n)
{
    if (r->name)
        snprintf(buf, n, "%s", r->name);
    else
        snprintf(buf, n, "%s%s", r->host ? r->host : "", r->prefix);
    return buf;
}

struct gw_route_stats *gw__route_stats_get(struct gw *g, const struct gw_route *r)
{
    char id[RT_ID_MAX];
    gw_route_id(r, id, sizeof id);
    for (struct gw_route_stats *s = g->route_stats; s; s = s->next)
        if (!strcmp(s->id, id))
            return s;
    struct gw_route_stats *s = xcalloc(1, sizeof *s);
    s->id = xstrdup(id);
    s->next = g->route_stats;
    g->route_stats = s;
    return s;
}

void gw__route_stats_free_all(struct gw *g)
{
    while (g->route_stats) {
        struct gw_route_stats *s = g->route_stats;
        g->route_stats = s->next;
        free(s->id);
        free(s);
    }
}

bool gw_route_refuses(const struct gw_route *r, const uint8_t a16[16])
{
    int which = -1;
    if (r->allow.n && !cidr_set_match16(&r->allow, a16))
        which = 0;
    else if (r->deny.n && cidr_set_match16(&r->deny, a16))
        which = 1;
    if (which < 0)
        return false;
    if (r->stats)
        atomic_fetch_add_explicit(&r->stats->refused[which], 1, memory_order_relaxed);
    return true;
}

/* ---- JSON ---- */

static cJSON *str_array(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *route_json(const struct gw_route *r)
{
    char id[RT_ID_MAX];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", gw_route_id(r, id, sizeof id));
    if (r->name)
        cJSON_AddStringToObject(o, "name", r->name);
    if (r->host)
        cJSON_AddStringToObject(o, "host", r->host);
    cJSON_AddStringToObject(o, "prefix", r->prefix);
    cJSON_AddStringToObject(o, "service", r->svc ? r->svc->name : "");
    cJSON_AddBoolToObject(o, "strip_prefix", r->strip);
    cJSON_AddStringToObject(o, "priority", gw_prio_name((enum gw_prio)r->prio));
    cJSON_AddItemToObject(o, "allow", str_array(r->allow_txt, r->nallow_txt));
    cJSON_AddItemToObject(o, "deny", str_array(r->deny_txt, r->ndeny_txt));
    cJSON *rl = cJSON_AddArrayToObject(o, "rate_limits");
    for (size_t i = 0; i < r->nrl; i++)
        cJSON_AddItemToArray(rl, cJSON_CreateString(r->rl[i]->name));
    cJSON *ref = cJSON_AddObjectToObject(o, "refused");
    uint64_t na = r->stats ? atomic_load_explicit(&r->stats->refused[0], memory_order_relaxed) : 0;
    uint64_t nd = r->stats ? atomic_load_explicit(&r->stats->refused[1], memory_order_relaxed) : 0;
    cJSON_AddNumberToObject(ref, "allow", (double)na);
    cJSON_AddNumberToObject(ref, "deny", (double)nd);
    return o;
}

/* ---- request parsing ---- */


/* The path after /routes/: "{route}" or "{route}/allow" or
 * "{route}/deny". Fills id and *list (-1: none, 0: allow, 1: deny).
 * Returns false when the shape is wrong, with a 400 answered when the
 * route segment is badly encoded and a 404 otherwise. */
static bool parse_rest(const struct admin_req *req, struct admin_resp *resp, char id[RT_SEG_MAX], int *list)
{
    const char *p = req->rest, *end = req->rest + req->rest_len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    *list = -1;
    if (!admin_path_decode(p, (size_t)((slash ? slash : end) - p), id, RT_SEG_MAX)) {
        admin_resp_error(resp, 400, "bad path: %.*s", (int)req->path_len, req->path);
        return false;
    }
    if (!id[0])
        goto not_found;
    if (!slash)
        return true;
    size_t n = (size_t)(end - slash - 1);
    if (n == 5 && !memcmp(slash + 1, "allow", 5))
        *list = 0;
    else if (n == 4 && !memcmp(slash + 1, "deny", 4))
        *list = 1;
    else
        goto not_found;
    return true;
not_found:
    admin_resp_error(resp, 404, "no such endpoint: %.*s %.*s", (int)req->method_len, req->method,
                     (int)req->path_len, req->path);
    return false;
}

/* The ?host= of a request into host (lowercased, checked like a route's
 * host: in the config): 1 when given, 0 when absent or empty, -1 with a
 * 400 answered when the query string is malformed or the host is one the
 * config refuses. */
static int query_host(const struct admin_req *req, struct admin_resp *resp, char host[RT_HOST_MAX])
{
    if (!admin_query_ok(req)) {
        admin_resp_error(resp, 400, "bad query string: malformed percent-encoding");
        return -1;
    }
    if (!admin_query_param(req, "host", host, RT_HOST_MAX) || !host[0])
        return 0;
    char *why = gw_check_host(host);
    if (why) {
        admin_resp_error(resp, 400, "host: %s", why);
        free(why);
        return -1;
    }
    return 1;
}

/* The route a request names, with a reference on the snapshot it lives
 * in (*snap, which the caller unrefs), or NULL with a 404 (or 400) answered. */
static struct gw_route *find(struct gw *g, const struct admin_req *req, struct admin_resp *resp, const char *id,
                             struct gw_snapshot **snap)
{
    char host[RT_HOST_MAX];
    int has_host = query_host(req, resp, host);
    *snap = gw_snapshot_get(g);
    if (has_host < 0)
        return NULL;
    struct gw_route *r = gw_snapshot_route(*snap, id, has_host ? host : NULL);
    if (!r) {
        if (has_host)
            admin_resp_error(resp, 404, "no route '%s' for host '%s'", id, host);
        else
            admin_resp_error(resp, 404, "no route '%s'", id);
    }
    return r;
}

/* ---- handlers ---- */

static void h_routes(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    struct gw_snapshot *s = gw_snapshot_get(g);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < s->nroutes; i++)
        cJSON_AddItemToArray(a, route_json(&s->routes[i]));
    gw_snapshot_unref(s);
    admin_resp_json(resp, 200, a);
}

static void h_route_get(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw *g = ud;
    char id[RT_SEG_MAX];
    int list;
    if (req->rest_len == 0) {
        h_routes(req, resp, ud);
        return;
    }
    char host[RT_HOST_MAX];
    if (query_host(req, resp, host) < 0 || !parse_rest(req, resp, id, &list))
        return;
    struct gw_snapshot *s;
    struct gw_route *r = find(g, req, resp, id, &s);
    if (r && list < 0) {
        admin_resp_json(resp, 200, route_json(r));
    } else if (r) {
        char rid[RT_ID_MAX];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "route", gw_route_id(r, rid, sizeof rid));
        if (list)
            cJSON_AddItemToObject(o, "deny", str_array(r->deny_txt, r->ndeny_txt));
        else
            cJSON_AddItemToObject(o, "allow", str_array(r->allow_txt, r->nallow_txt));
        admin_resp_json(resp, 200, o);
    }
    gw_snapshot_unref(s);
}

/* POST (add) or DELETE (remove) on /routes/{route}/allow or /deny. */
static void change(struct gw *g, const struct admin_req *req, struct admin_resp *resp, bool add)
{
    char id[RT_SEG_MAX], host[RT_HOST_MAX], cidr[128] = "";
    int list;
    int has_host = query_host(req, resp, host);
    if (has_host < 0 || !parse_rest(req, resp, id, &list))
        return;
    if (list < 0) {
        admin_resp_error(resp, 404, "no such endpoint: %.*s %.*s", (int)req->method_len, req->method,
                         (int)req->path_len, req->path);
        return;
    }
    if (!gw_admin_cidr_arg(req, resp, add, cidr, sizeof cidr))
        return;
    char *err = NULL;
    int rc = gw_members_route_cidr(g, id, has_host > 0 ? host : NULL, list == 1, add, cidr, &err);
    if (rc != 0) {
        admin_resp_error(resp, gw_admin_status(rc), "%s", err ? err : "refused");
        free(err);
        return;
    }
    struct gw_snapshot *s;
    struct gw_route *r = find(g, req, resp, id, &s);
    if (r)
        admin_resp_json(resp, add ? 201 : 200, route_json(r));
    gw_snapshot_unref(s);
}

static void h_route_post(const struct admin_req *q, struct admin_resp *r, void *ud) { change(ud, q, r, true); }
static void h_route_delete(const struct admin_req *q, struct admin_resp *r, void *ud) { change(ud, q, r, false); }

void gw_admin_route_routes(struct admin *adm, struct gw *g)
{
    admin_route(adm, "GET", "/routes", h_routes, g);
    admin_route(adm, "GET", "/routes/*", h_route_get, g);
    admin_route(adm, "POST", "/routes/*", h_route_post, g);
    admin_route(adm, "DELETE", "/routes/*", h_route_delete, g);
}

/* ---- /metrics ---- */

void gw_route_metrics_render(struct gw *g, struct buf *b)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    if (!s)
        return;
    static const char *const lists[2] = {"allow", "deny"};
    char id[RT_ID_MAX];
    metrics_family(b, GW_METRIC("route_refused_total"), "counter",
                   "Requests answered 403 by a route's own list: not on its allow list, or on its deny list.");
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct gw_route *r = &s->routes[i];
        gw_route_id(r, id, sizeof id);
        for (int k = 0; k < 2; k++)
            metrics_sample_u64(b, GW_METRIC("route_refused_total"),
                               (const char *const[]){"route", id, "list", lists[k], NULL},
                               r->stats ? atomic_load_explicit(&r->stats->refused[k], memory_order_relaxed) : 0);
    }
    metrics_family(b, GW_METRIC("route_cidrs"), "gauge",
                   "Entries in a route's allow and deny lists (config plus run-time changes).");
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct gw_route *r = &s->routes[i];
        gw_route_id(r, id, sizeof id);
        metrics_sample_u64(b, GW_METRIC("route_cidrs"), (const char *const[]){"route", id, "list", "allow", NULL},
                           r->nallow_txt);
        metrics_sample_u64(b, GW_METRIC("route_cidrs"), (const char *const[]){"route", id, "list", "deny", NULL},
                           r->ndeny_txt);
    }
    gw_snapshot_unref(s);
}
