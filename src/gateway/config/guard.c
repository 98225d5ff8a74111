/* The protection sections of the gateway config: `guard:` (CIDR allow and
 * deny lists, per-client connection limits), `rate_limits:` (named rules)
 * and a route's own `rate_limits:`, `allow:` and `deny:`. Same contract as
 * config.c: every error names file:line and the key. docs/config.md and
 * docs/protection.md describe the keys. */
#include "gateway/config/config.h"
#include "core/cidr.h"
#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const guard_keys[] = {"allow", "deny", "max_conns_per_ip", "max_conn_rate_per_ip",
                                         "rate_limit_keys", NULL};
static const char *const rl_keys[] = {"name", "algorithm", "limit", "window", "burst", "nodelay",
                                      "delay", "max_delay", "key", "on_full", "store", NULL};
static const char *const store_keys[] = {"redis", "password", "db", "timeout", "on_error", "key_prefix",
                                         "lease", "lease_ttl", "max_pending", NULL};
static const char *const store_names[] = {"local", "redis", NULL};
static const char *const on_error_names[] = {"allow", "deny", "local", NULL};
static const char *const algo_names[] = {"token_bucket", "leaky_bucket", "leaky_queue", "fixed_window",
                                         "sliding_log", "sliding_window", NULL};
static const char *const full_names[] = {"evict", "allow", "deny", NULL};

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void gw_config_free_guard(struct gw_config *c)
{
    free_list(c->guard.allow, c->guard.nallow);
    free_list(c->guard.deny, c->guard.ndeny);
    for (size_t i = 0; i < c->nrate_limits; i++) {
        free(c->rate_limits[i].name);
        free(c->rate_limits[i].key_text);
    }
    free(c->rate_limits);
    free(c->rl_redis.host);
    free(c->rl_redis.unix_path);
    free(c->rl_redis.password);
    free(c->rl_redis.prefix);
    for (size_t i = 0; i < c->nroutes; i++) {
        free(c->routes[i].rate_limits);
        free_list(c->routes[i].allow, c->routes[i].nallow);
        free_list(c->routes[i].deny, c->routes[i].ndeny);
    }
}

/* A list of CIDRs: a sequence of strings (or one string), each valid. */
static int load_cidrs(const struct cfg_node *n, char ***out, size_t *nout, char **err)
{
    if (!n || cfg_is_null(n))
        return 0;
    const struct cfg_node *const *items = &n;
    size_t count = 1;
    if (n->type == CFG_SEQ) {
        items = (const struct cfg_node *const *)n->kids;
        count = n->n;
    }
    *out = xcalloc(count ? count : 1, sizeof **out);
    for (size_t i = 0; i < count; i++) {
        char *s = NULL;
        if (cfg_string(items[i], &s, err) < 0)
            return -1;
        (*out)[(*nout)++] = s;
        char *why = gw_check_cidr(s);
        if (why) {
            *err = cfg_errorf(items[i], "%s", why);
            free(why);
            return -1;
        }
    }
    return 0;
}

/* The rule's name: [a-z0-9_-]{1,64}, unique among the rules. */
static int load_rule_name(struct gw_config *c, struct gw_cfg_ratelimit *r, const struct cfg_node *n, char **err)
{
    const struct cfg_node *nn = cfg_require(n, "name", err);
    if (!nn || cfg_string(nn, &r->name, err) < 0)
        return -1;
    size_t len = strlen(r->name);
    if (len == 0 || len > 64 || strspn(r->name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
        *err = cfg_errorf(nn, "expected 1..64 characters of [a-z0-9_-]");
        return -1;
    }
    for (size_t i = 0; i + 1 < c->nrate_limits; i++)
        if (!strcmp(c->rate_limits[i].name, r->name)) {
            *err = cfg_errorf(nn, "duplicate rate limit '%s' (first at line %d)", r->name,
                              c->rate_limits[i].line);
            return -1;
        }
    return 0;
}

/* The rule's numbers and choices into r->rule, checked by the limiter. */
static int load_rule_limits(struct gw_config *c, struct gw_cfg_ratelimit *r, const struct cfg_node *n, char **err)
{
    struct rl_rule *rule = &r->rule;
    int algo = RL_TOKEN_BUCKET, full = RL_FULL_EVICT, store = 0;
    int64_t limit = 0;
    uint64_t window = 1000, max_delay = 0;
    int64_t burst = 0, delay = 0;
    bool nodelay = false;
    const struct cfg_node *ln = cfg_require(n, "limit", err);
    if (cfg_enum(cfg_get(n, "algorithm"), algo_names, &algo, err) < 0 || !ln ||
        cfg_int(ln, 1, (int64_t)RL_LIMIT_MAX, &limit, err) < 0 ||
        cfg_duration(cfg_get(n, "window"), 1, RL_WINDOW_MAX_US / 1000, &window, err) < 0 ||
        cfg_int(cfg_get(n, "burst"), 0, (int64_t)RL_BURST_MAX, &burst, err) < 0 ||
        cfg_bool(cfg_get(n, "nodelay"), &nodelay, err) < 0 ||
        cfg_int(cfg_get(n, "delay"), 0, (int64_t)RL_BURST_MAX, &delay, err) < 0 ||
        cfg_duration(cfg_get(n, "max_delay"), 0, 3600 * 1000, &max_delay, err) < 0 ||
        cfg_enum(cfg_get(n, "on_full"), full_names, &full, err) < 0 ||
        cfg_enum(cfg_get(n, "store"), store_names, &store, err) < 0)
        return -1;
    r->redis = store == 1;
    if (r->redis && !c->has_rl_redis) {
        *err = cfg_errorf(cfg_get(n, "store"), "store: redis needs a rate_limit_store: section");
        return -1;
    }
    rule->algo = (enum rl_algo)algo;
    rule->name = r->name;
    rule->limit = (uint64_t)limit;
    rule->window_us = window * 1000;
    rule->burst = (uint64_t)burst;
    rule->nodelay = nodelay;
    rule->delay = (uint64_t)delay;
    rule->max_delay_us = max_delay * 1000;
    rule->on_full = (enum rl_on_full)full;
    char *why = NULL;
    if (rl_rule_prepare(rule, &why) < 0) {
        *err = cfg_errorf(n, "%s", why);
        free(why);
        return -1;
    }
    return 0;
}

/* The rule's key: its text as written (default client_ip) and parsed. */
static int load_rule_key(struct gw_cfg_ratelimit *r, const struct cfg_node *n, char **err)
{
    const struct cfg_node *kn = cfg_get(n, "key");
    r->key_text = xstrdup("client_ip");
    if (kn) {
        free(r->key_text);
        r->key_text = NULL;
        if (cfg_string(kn, &r->key_text, err) < 0)
            return -1;
    }
    /* "client_ip" (the word the rest of the config uses) means "ip". */
    char *spec = xstrdup(r->key_text);
    for (char *p = strstr(spec, "client_ip"); p; p = strstr(p, "client_ip")) {
        bool starts = p == spec || p[-1] == '+';
        bool ends = p[9] == '\0' || p[9] == '+' || p[9] == '/';
        if (starts && ends) {
            memmove(p, p + 7, strlen(p + 7) + 1); /* "client_ip" -> "ip" */
        } else {
            p += 9;
        }
    }
    char *why = NULL;
    int prc = rl_key_spec_parse(&r->key, spec, &why);
    free(spec);
    if (prc < 0) {
        *err = cfg_errorf(kn ? kn : n, "%s", why);
        free(why);
        return -1;
    }
    return 0;
}

static int load_rule(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_expect(n, CFG_MAP, err) < 0 || cfg_check_keys(n, rl_keys, err) < 0)
        return -1;
    struct gw_cfg_ratelimit *r = &c->rate_limits[c->nrate_limits++];
    memset(r, 0, sizeof *r);
    r->line = n->line;
    if (load_rule_name(c, r, n, err) < 0 || load_rule_limits(c, r, n, err) < 0 || load_rule_key(r, n, err) < 0)
        return -1;
    return 0;
}

/* rate_limit_store: where rules with `store: redis` keep their state. */
static int load_store(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (!n || cfg_is_null(n))
        return 0;
    if (cfg_expect(n, CFG_MAP, err) < 0 || cfg_check_keys(n, store_keys, err) < 0)
        return -1;
    struct rl_redis_cfg *rc = &c->rl_redis;
    c->has_rl_redis = true;
    const struct cfg_node *an = cfg_require(n, "redis", err);
    char *addr = NULL;
    if (!an || cfg_string(an, &addr, err) < 0)
        return -1;
    if (!strncmp(addr, "unix:", 5)) {
        rc->unix_path = xstrdup(addr + 5);
    } else {
        char *colon = strrchr(addr, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 6379;
        if (colon && (end == colon + 1 || *end || port < 1 || port > 65535)) {
            free(addr);
            *err = cfg_errorf(an, "expected host:port or unix:/path");
            return -1;
        }
        if (colon)
            *colon = '\0';
        const char *h = addr;
        size_t hl = strlen(h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:6379 */
            addr[hl - 1] = '\0';
            h = addr + 1;
        }
        rc->host = xstrdup(*h ? h : "127.0.0.1");
        rc->port = (int)port;
    }
    free(addr);
    int64_t db = 0, lease = 1, pend = 10000;
    uint64_t timeout = 50, ttl = 100;
    int oe = RLR_ALLOW;
    if (cfg_int(cfg_get(n, "db"), 0, 1 << 20, &db, err) < 0 ||
        cfg_duration(cfg_get(n, "timeout"), 1, 60000, &timeout, err) < 0 ||
        cfg_enum(cfg_get(n, "on_error"), on_error_names, &oe, err) < 0 ||
        cfg_int(cfg_get(n, "lease"), 1, 1 << 20, &lease, err) < 0 ||
        cfg_duration(cfg_get(n, "lease_ttl"), 1, 60000, &ttl, err) < 0 ||
        cfg_int(cfg_get(n, "max_pending"), 1, 1 << 24, &pend, err) < 0)
        return -1;
    const struct cfg_node *pn = cfg_get(n, "password");
    if (pn && cfg_string(pn, &rc->password, err) < 0)
        return -1;
    const struct cfg_node *kn = cfg_get(n, "key_prefix");
    if (kn && cfg_string(kn, &rc->prefix, err) < 0)
        return -1;
    if (!rc->prefix)
        rc->prefix = xstrdup("floodgate:rl:");
    if (strlen(rc->prefix) > 128) {
        *err = cfg_errorf(kn, "key_prefix is longer than 128 bytes");
        return -1;
    }
    rc->db = (int)db;
    rc->timeout_ms = timeout;
    rc->on_error = (enum rl_redis_on_error)oe;
    rc->lease = (uint32_t)lease;
    rc->lease_ttl_ms = ttl;
    rc->max_pending = (uint32_t)pend;
    return 0;
}

int gw_config_load_guard(struct gw_config *c, const struct cfg_node *root, char **err)
{
    if (load_store(c, cfg_get(root, "rate_limit_store"), err) < 0)
        return -1;
    struct gw_cfg_guard *g = &c->guard;
    g->rl_max_keys = 1u << 20;
    const struct cfg_node *n = cfg_get(root, "guard");
    if (n) {
        if (cfg_expect(n, CFG_MAP, err) < 0 || cfg_check_keys(n, guard_keys, err) < 0 ||
            load_cidrs(cfg_get(n, "allow"), &g->allow, &g->nallow, err) < 0 ||
            load_cidrs(cfg_get(n, "deny"), &g->deny, &g->ndeny, err) < 0)
            return -1;
        int64_t v = 0;
        if (cfg_int(cfg_get(n, "max_conns_per_ip"), 0, 1000000, &v, err) < 0)
            return -1;
        g->max_conns_per_ip = (int)v;
        v = 0;
        if (cfg_int(cfg_get(n, "max_conn_rate_per_ip"), 0, 1000000, &v, err) < 0)
            return -1;
        g->max_conn_rate = (uint64_t)v;
        v = (int64_t)g->rl_max_keys;
        if (cfg_int(cfg_get(n, "rate_limit_keys"), 1024, 1 << 26, &v, err) < 0)
            return -1;
        g->rl_max_keys = (uint64_t)v;
    }
    const struct cfg_node *rl = cfg_get(root, "rate_limits");
    if (!rl)
        return 0;
    if (cfg_expect(rl, CFG_SEQ, err) < 0)
        return -1;
    c->rate_limits = xcalloc(rl->n ? rl->n : 1, sizeof *c->rate_limits);
    for (size_t i = 0; i < rl->n; i++)
        if (load_rule(c, rl->kids[i], err) < 0)
            return -1;
    return 0;
}

int gw_config_load_route_guard(struct gw_config *c, struct gw_cfg_route *r, const struct cfg_node *n,
                               char **err)
{
    if (load_cidrs(cfg_get(n, "allow"), &r->allow, &r->nallow, err) < 0 ||
        load_cidrs(cfg_get(n, "deny"), &r->deny, &r->ndeny, err) < 0)
        return -1;
    const struct cfg_node *ln = cfg_get(n, "rate_limits");
    if (!ln || cfg_is_null(ln))
        return 0;
    const struct cfg_node *const *items = &ln;
    size_t count = 1;
    if (ln->type == CFG_SEQ) {
        items = (const struct cfg_node *const *)ln->kids;
        count = ln->n;
    }
    r->rate_limits = xcalloc(count ? count : 1, sizeof *r->rate_limits);
    for (size_t i = 0; i < count; i++) {
        char *name = NULL;
        if (cfg_string(items[i], &name, err) < 0)
            return -1;
        size_t k = 0;
        while (k < c->nrate_limits && strcmp(c->rate_limits[k].name, name) != 0)
            k++;
        if (k == c->nrate_limits) {
            *err = cfg_errorf(items[i], "unknown rate limit '%.64s' (define it under rate_limits:)", name);
            free(name);
            return -1;
        }
        free(name);
        r->rate_limits[r->nrate_limits++] = k;
    }
    return 0;
}
