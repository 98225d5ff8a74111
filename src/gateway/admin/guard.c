/* Admin endpoints and metrics for gatekeeping and rate limiting:
 *   GET    /guard                  the effective allow/deny lists and limits
 *   POST   /guard/deny  {"cidr":"203.0.113.0/24"}   add to the deny list
 *   DELETE /guard/deny?cidr=...    remove from it
 *   POST   /guard/allow, DELETE /guard/allow?cidr=...  the same for allow
 * Changes are atomic (a new snapshot), visible at once and kept across
 * reloads, like membership changes. */
#include "gateway/gw.h"
#include "gateway/limit/redis.h"
#include "gateway/limit/store.h"
#include "gateway/limit/redis.h"
#include "core/admin.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define GW_METRIC(x) "floodgate_gateway_" x

static cJSON *str_array(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static void h_guard_get(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    struct gw_snapshot *s = gw_snapshot_get(ud);
    const struct gw_cfg_guard *g = &s->cfg->guard;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "allow", str_array(s->allow_txt, s->nallow_txt));
    cJSON_AddItemToObject(o, "deny", str_array(s->deny_txt, s->ndeny_txt));
    cJSON_AddNumberToObject(o, "max_conns_per_ip", g->max_conns_per_ip);
    cJSON_AddNumberToObject(o, "max_conn_rate_per_ip", (double)g->max_conn_rate);
    cJSON *rules = cJSON_AddArrayToObject(o, "rate_limits");
    for (size_t i = 0; i < s->cfg->nrate_limits; i++) {
        const struct gw_cfg_ratelimit *r = &s->cfg->rate_limits[i];
        cJSON *ro = cJSON_CreateObject();
        cJSON_AddStringToObject(ro, "name", r->name);
        cJSON_AddStringToObject(ro, "key", r->key_text);
        cJSON_AddNumberToObject(ro, "limit", (double)r->rule.limit);
        cJSON_AddNumberToObject(ro, "window_ms", (double)(r->rule.window_us / 1000));
        cJSON_AddNumberToObject(ro, "burst", (double)r->rule.burst);
        cJSON_AddItemToArray(rules, ro);
    }
    gw_snapshot_unref(s);
    admin_resp_json(resp, 200, o);
}

/* The CIDR of an allow/deny change: {"cidr": ...} in the JSON body of an
 * add (POST), ?cidr= in the query of a removal (DELETE). Fills cidr, or
 * answers 400 and returns false. */
bool gw_admin_cidr_arg(const struct admin_req *req, struct admin_resp *resp, bool add, char *cidr, size_t cap)
{
    if (!add) {
        if (admin_query_param(req, "cidr", cidr, cap))
            return true;
        admin_resp_error(resp, 400, "expected ?cidr=203.0.113.0%%2F24");
        return false;
    }
    static const char *const keys[] = {"cidr", NULL};
    cJSON *body = admin_req_json(req);
    const cJSON *v = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "cidr") : NULL;
    bool ok = cJSON_IsString(v) && strlen(v->valuestring) < cap;
    if (!ok)
        admin_resp_error(resp, 400, "expected a JSON body {\"cidr\": \"203.0.113.0/24\"}");
    for (const cJSON *k = ok ? body->child : NULL; k && ok; k = k->next) {
        char *why = gw_check_key(k->string, keys);
        if (why) {
            admin_resp_error(resp, 400, "%s: %s", k->string, why);
            free(why);
            ok = false;
        }
    }
    if (ok)
        strcpy(cidr, v->valuestring);
    cJSON_Delete(body);
    return ok;
}

static void change(struct gw *g, const struct admin_req *req, struct admin_resp *resp, bool deny, bool add)
{
    char cidr[128] = "";
    if (!admin_query_ok(req)) {
        admin_resp_error(resp, 400, "bad query string: malformed percent-encoding");
        return;
    }
    if (!gw_admin_cidr_arg(req, resp, add, cidr, sizeof cidr))
        return;
    char *err = NULL;
    int rc = gw_members_cidr(g, deny, add, cidr, &err);
    if (rc != 0) {
        admin_resp_error(resp, gw_admin_status(rc), "%s", err ? err : "refused");
        free(err);
        return;
    }
    h_guard_get(req, resp, g);
    resp->status = add ? 201 : 200;
}

static void h_deny_post(const struct admin_req *q, struct admin_resp *r, void *ud) { change(ud, q, r, true, true); }
static void h_deny_delete(const struct admin_req *q, struct admin_resp *r, void *ud) { change(ud, q, r, true, false); }
static void h_allow_post(const struct admin_req *q, struct admin_resp *r, void *ud) { change(ud, q, r, false, true); }
static void h_allow_delete(const struct admin_req *q, struct admin_resp *r, void *ud) { change(ud, q, r, false, false); }

void gw_admin_guard_routes(struct admin *adm, struct gw *g)
{
    admin_route(adm, "GET", "/guard", h_guard_get, g);
    admin_route(adm, "POST", "/guard/deny", h_deny_post, g);
    admin_route(adm, "DELETE", "/guard/deny", h_deny_delete, g);
    admin_route(adm, "POST", "/guard/allow", h_allow_post, g);
    admin_route(adm, "DELETE", "/guard/allow", h_allow_delete, g);
}

void gw_guard_metrics_render(struct gw *g, struct buf *b)
{
    static const char *const why[4] = {"deny_list", "max_conns_per_ip", "max_conn_rate_per_ip", "route_list"};
    metrics_family(b, GW_METRIC("connections_refused_total"), "counter",
                   "Client connections or requests refused by gatekeeping, by reason.");
    for (int i = 0; i < 4; i++)
        metrics_sample_u64(b, GW_METRIC("connections_refused_total"), (const char *const[]){"reason", why[i], NULL},
                           atomic_load_explicit(&g->refused_ip[i], memory_order_relaxed));
    uint64_t limited = 0, delayed = 0;
    for (int i = 0; i < g->nworkers; i++) {
        limited += atomic_load_explicit(&g->workers[i]->st.limited, memory_order_relaxed);
        delayed += atomic_load_explicit(&g->workers[i]->st.delayed, memory_order_relaxed);
    }
    metrics_family(b, GW_METRIC("rate_limited_total"), "counter", "Requests answered 429 by a rate limit.");
    metrics_sample_u64(b, GW_METRIC("rate_limited_total"), NULL, limited);
    metrics_family(b, GW_METRIC("rate_delayed_total"), "counter", "Requests held back by a rate limit.");
    metrics_sample_u64(b, GW_METRIC("rate_delayed_total"), NULL, delayed);
    if (g->rl) {
        struct rl_store_stats st;
        rl_store_stats(g->rl, &st);
        metrics_family(b, GW_METRIC("rate_limit_keys"), "gauge", "Keys held by the local rate-limit store.");
        metrics_sample_u64(b, GW_METRIC("rate_limit_keys"), NULL, st.keys);
        metrics_family(b, GW_METRIC("rate_limit_evictions_total"), "counter",
                       "Live rate-limit keys evicted because the store was full.");
        metrics_sample_u64(b, GW_METRIC("rate_limit_evictions_total"), NULL, st.evicted_lru);
    }
    rl_redis_metrics_render(b);
}
