/* The resilience keys of a service: `breaker:`, `server_breaker:`, `fallback:`,
 * `retry_budget:`, `concurrency:` and `priority_header:`. Defaults follow
 * the modules (breaker.h, retrybudget.h, admission.h, adaptive.h), which
 * follow resilience4j and Envoy; docs/protection.md lists them. */
#include "gateway/config/config.h"
#include "core/config.h"

#include <stdlib.h>
#include <string.h>

static const char *const breaker_keys[] = {"consecutive_failures", "failure_rate", "slow_rate", "slow_call",
                                           "min_calls", "window", "open_for", "half_open_probes", NULL};
static const char *const fallback_keys[] = {"status", "body", "content_type", "service", NULL};
static const char *const retry_keys[] = {"ratio", "min_per_sec", "window", NULL};
static const char *const conc_keys[] = {"per_server", "codel_target", "codel_interval", "max_inflight", "adaptive", "queue", "queue_timeout", "min_limit",
                                        "max_limit", NULL};
static const char *const adaptive_names[] = {"off", "gradient", "aimd", NULL};

void gw_config_free_resil(struct gw_cfg_resil *r)
{
    free(r->priority_header);
    free(r->fallback_body);
    free(r->fallback_type);
    free(r->fallback_service);
}

static int get_u32(const struct cfg_node *n, int64_t min, int64_t max, uint32_t *out, char **err)
{
    int64_t v = *out;
    if (cfg_int(n, min, max, &v, err) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int get_us(const struct cfg_node *n, uint64_t min_ms, uint64_t max_ms, uint64_t *us, char **err)
{
    uint64_t ms = *us / 1000;
    if (cfg_duration(n, min_ms, max_ms, &ms, err) < 0)
        return -1;
    *us = ms * 1000;
    return 0;
}

/* A module's own check, its message placed at the section's line. */
static int module_check(const struct cfg_node *n, int rc, char *why, char **err)
{
    if (rc == 0)
        return 0;
    *err = cfg_errorf(n, "%s", why ? why : "invalid");
    free(why);
    return -1;
}

/* A breaker section (breaker: or server_breaker:, the same keys) over
 * the defaults in *bc; *on tells whether it is present. */
static int load_breaker(const struct cfg_node *b, struct gw_breaker_cfg *bc, bool *on, char **err)
{
    char *why = NULL;
    gw_breaker_cfg_default(bc);
    if (!b || cfg_is_null(b))
        return 0;
    if (cfg_expect(b, CFG_MAP, err) < 0 || cfg_check_keys(b, breaker_keys, err) < 0)
        return -1;
    if (get_u32(cfg_get(b, "consecutive_failures"), 0, 1000000, &bc->consecutive_failures, err) < 0 ||
        get_u32(cfg_get(b, "failure_rate"), 0, 100, &bc->failure_rate_pct, err) < 0 ||
        get_u32(cfg_get(b, "slow_rate"), 0, 100, &bc->slow_rate_pct, err) < 0 ||
        get_us(cfg_get(b, "slow_call"), 1, 3600 * 1000, &bc->slow_call_us, err) < 0 ||
        get_u32(cfg_get(b, "min_calls"), 1, 1000000, &bc->min_calls, err) < 0 ||
        get_u32(cfg_get(b, "window"), 1, 1000000, &bc->window_size, err) < 0 ||
        get_us(cfg_get(b, "open_for"), 1, 3600 * 1000, &bc->open_wait_us, err) < 0 ||
        get_u32(cfg_get(b, "half_open_probes"), 1, 10000, &bc->half_open_probes, err) < 0)
        return -1;
    if (module_check(b, gw_breaker_cfg_check(bc, &why), why, err) < 0)
        return -1;
    *on = true;
    return 0;
}

int gw_config_load_resil(struct gw_config *c, struct gw_cfg_service *s, const struct cfg_node *n, char **err)
{
    struct gw_cfg_resil *r = &s->resil;
    gw_rb_cfg_default(&r->retry);
    gw_adm_cfg_default(&r->adm);
    gw_limit_cfg_default(&r->limit);
    char *why = NULL;

    if (load_breaker(cfg_get(n, "breaker"), &r->breaker, &r->breaker_on, err) < 0 ||
        load_breaker(cfg_get(n, "server_breaker"), &r->server_breaker, &r->server_breaker_on, err) < 0)
        return -1;

    const struct cfg_node *f = cfg_get(n, "fallback");
    if (f && !cfg_is_null(f)) {
        if (cfg_expect(f, CFG_MAP, err) < 0 || cfg_check_keys(f, fallback_keys, err) < 0)
            return -1;
        int64_t st = 0;
        const struct cfg_node *sn = cfg_get(f, "status");
        if (cfg_int(sn, 200, 599, &st, err) < 0 || cfg_string(cfg_get(f, "body"), &r->fallback_body, err) < 0 ||
            cfg_string(cfg_get(f, "content_type"), &r->fallback_type, err) < 0 ||
            cfg_string(cfg_get(f, "service"), &r->fallback_service, err) < 0)
            return -1;
        r->fallback_status = (int)st;
        if (!r->fallback_service && !r->fallback_status)
            r->fallback_status = 503;
        if (r->fallback_type && strpbrk(r->fallback_type, "\r\n")) {
            *err = cfg_errorf(f, "content_type must be a single line");
            return -1;
        }
    }

    const struct cfg_node *rb = cfg_get(n, "retry_budget");
    if (rb && !cfg_is_null(rb)) {
        if (cfg_expect(rb, CFG_MAP, err) < 0 || cfg_check_keys(rb, retry_keys, err) < 0 ||
            cfg_double(cfg_get(rb, "ratio"), 0, 10, &r->retry.ratio, err) < 0 ||
            get_u32(cfg_get(rb, "min_per_sec"), 0, 1000000, &r->retry.min_per_sec, err) < 0 ||
            get_us(cfg_get(rb, "window"), 100, 3600 * 1000, &r->retry.window_us, err) < 0)
            return -1;
        if (module_check(rb, gw_rb_cfg_check(&r->retry, &why), why, err) < 0)
            return -1;
    }

    const struct cfg_node *cc = cfg_get(n, "concurrency");
    if (cc && !cfg_is_null(cc)) {
        if (cfg_expect(cc, CFG_MAP, err) < 0 || cfg_check_keys(cc, conc_keys, err) < 0)
            return -1;
        int adaptive = 0;
        if (get_u32(cfg_get(cc, "max_inflight"), 0, 1000000, &r->adm.max_inflight, err) < 0 ||
            cfg_enum(cfg_get(cc, "adaptive"), adaptive_names, &adaptive, err) < 0 ||
            get_u32(cfg_get(cc, "queue"), 0, 1000000, &r->adm.queue_max, err) < 0 ||
            get_us(cfg_get(cc, "queue_timeout"), 1, 3600 * 1000, &r->adm.max_wait_us, err) < 0 ||
            get_u32(cfg_get(cc, "min_limit"), 1, 1000000, &r->limit.min_limit, err) < 0 ||
            get_u32(cfg_get(cc, "max_limit"), 1, 1000000, &r->limit.max_limit, err) < 0 ||
            get_u32(cfg_get(cc, "per_server"), 0, 1000000, &r->per_server, err) < 0 ||
            get_us(cfg_get(cc, "codel_target"), 1, 60 * 1000, &r->adm.codel_target_us, err) < 0 ||
            get_us(cfg_get(cc, "codel_interval"), 1, 3600 * 1000, &r->adm.codel_interval_us, err) < 0)
            return -1;
        r->adaptive = adaptive != 0;
        if (adaptive)
            r->limit.algo = adaptive == 1 ? GW_LIMIT_GRADIENT : GW_LIMIT_AIMD;
        if (r->limit.initial_limit < r->limit.min_limit)
            r->limit.initial_limit = r->limit.min_limit;
        if (r->limit.initial_limit > r->limit.max_limit)
            r->limit.initial_limit = r->limit.max_limit;
        if (module_check(cc, gw_adm_cfg_check(&r->adm, &why), why, err) < 0 ||
            (r->adaptive && module_check(cc, gw_limit_cfg_check(&r->limit, &why), why, err) < 0))
            return -1;
        r->adm_on = r->adm.max_inflight > 0 || r->adaptive;
    }
    if (cfg_string(cfg_get(n, "priority_header"), &r->priority_header, err) < 0)
        return -1;
    (void)c;
    return 0;
}

int gw_config_check_resil(struct gw_config *c, char **err)
{
    for (size_t i = 0; i < c->nservices; i++) {
        const struct gw_cfg_resil *r = &c->services[i].resil;
        if (!r->fallback_service)
            continue;
        if (!gw_config_find_service(c, r->fallback_service) ||
            !strcmp(r->fallback_service, c->services[i].name)) {
            *err = xasprintf("%s:%d: services[%zu].fallback.service: '%s' is not another service", c->name,
                             c->services[i].line, i, r->fallback_service);
            return -1;
        }
    }
    return 0;
}
