/* Gateway configuration: walks the YAML tree from core/config.c and fills
 * struct gw_config (see config.h), checking every key, type and range and
 * the references between sections, so that nothing downstream has to
 * validate again. Each section has one loader; each loader stores its
 * defaults first and lets the file override them. Errors stop at the first
 * problem and name FILE:LINE and the key path. */
#include "gateway/config/config.h"
#include "gateway/config/config_int.h"

#include "core/config.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

const char gw_default_config[] =
    "# floodgate gateway: the embedded default configuration.\n"
    "listen: \"0.0.0.0:8080\"\n"
    "admin: \"127.0.0.1:9901\"\n"
    "services:\n"
    "  - name: echo\n"
    "    balance: round_robin\n"
    "    servers:\n"
    "      - 127.0.0.1:9001\n"
    "      - 127.0.0.1:9002\n"
    "      - 127.0.0.1:9003\n"
    "    health:\n"
    "      path: /health\n"
    "      interval: 1s\n"
    "routes:\n"
    "  - prefix: /\n"
    "    service: echo\n";

#define DAY_MS (24ull * 3600 * 1000)
#define HOUR_MS (3600ull * 1000)

static const char *const top_keys[] = {"rate_limit_store", "listen", "threads", "admin", "access_log", "state_file",
                                       "log_level", "timeouts",
                                       "limits", "upstream", "services", "routes", "guard", "rate_limits",
                                       NULL};
static const char *const timeout_keys[] = {"client_header", "client_body", "client_idle", "upstream_connect",
                                           "upstream_response", "drain", NULL};
static const char *const limit_keys[] = {"max_header_bytes", "max_headers", "max_body_bytes", "max_connections",
                                         NULL};
static const char *const upstream_keys[] = {"keepalive", "keepalive_timeout", NULL};
static const char *const service_keys[] = {"name", "balance", "hash_key", "vnodes", "bound_load", "slow_start",
                                           "servers", "health", "passive", "breaker", "server_breaker", "fallback",
                                           "retry_budget", "concurrency", "priority_header", NULL};
static const char *const server_keys[] = {"address", "weight", NULL};
static const char *const health_keys[] = {"path", "interval", "timeout", "expect_status", "rise", "fall", NULL};
static const char *const passive_keys[] = {"max_failures", "eject_for", NULL};
static const char *const route_keys[] = {"name", "prefix", "host", "service", "strip_prefix", "rate_limits",
                                         "allow", "deny", "priority", NULL};
/* Same order as enum log_level in core/log.h. */
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

/* ---- freeing ---------------------------------------------------------- */

static void service_free(struct gw_cfg_service *s)
{
    free(s->name);
    free(s->balance);
    free(s->hash_key);
    free(s->hash_name);
    for (size_t i = 0; i < s->nservers; i++)
        free(s->servers[i].address);
    free(s->servers);
    free(s->health.path);
    gw_config_free_resil(&s->resil);
}

void gw_config_free(struct gw_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->listen);
    free(c->listen_addr);
    free(c->admin);
    cfg_access_free(&c->admin_access);
    free(c->access_log);
    free(c->state_file);
    for (size_t i = 0; i < c->nservices; i++)
        service_free(&c->services[i]);
    free(c->services);
    for (size_t i = 0; i < c->nroutes; i++) {
        free(c->routes[i].name);
        free(c->routes[i].prefix);
        free(c->routes[i].host);
        free(c->routes[i].service);
    }
    gw_config_free_guard(c);
    free(c->routes);
    free(c->name);
    free(c);
}

const struct gw_cfg_service *gw_config_find_service(const struct gw_config *c, const char *name)
{
    for (size_t i = 0; i < c->nservices; i++)
        if (strcmp(c->services[i].name, name) == 0)
            return &c->services[i];
    return NULL;
}

/* ---- small helpers ---------------------------------------------------- */

static int get_int(const struct cfg_node *n, int64_t min, int64_t max, int *out, char **err)
{
    int64_t v = *out;
    if (cfg_int(n, min, max, &v, err) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parses an address string held by node n; the message from net.h gets
 * the node's location in front. */
static int parse_addr(const struct cfg_node *n, const char *s, struct net_addr *a, char **err)
{
    char *e = NULL;
    if (net_parse_addr(s, a, &e) == 0)
        return 0;
    *err = cfg_errorf(n, "%s", e);
    free(e);
    return -1;
}

/* "off", "false", "no" or "" (any case): a feature switched off. */
static bool is_off(const char *s)
{
    bool b;
    return !*s || (cfg_parse_bool(s, &b) == 0 && !b);
}

/* RFC 9110 token characters, for header and cookie names. */
static bool token_ok(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!isalnum(*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    return true;
}

/* Puts the location of node n in front of msg (freed) into *err. */
static int fail_at(const struct cfg_node *n, char *msg, char **err)
{
    *err = cfg_errorf(n, "%s", msg);
    free(msg);
    return -1;
}

/* ---- top-level scalars ------------------------------------------------ */

static void add_listen(struct gw_config *c, const char *s, const struct net_addr *a)
{
    c->listen = xrealloc(c->listen, (c->nlisten + 1) * sizeof *c->listen);
    c->listen_addr = xrealloc(c->listen_addr, (c->nlisten + 1) * sizeof *c->listen_addr);
    c->listen[c->nlisten] = xstrdup(s);
    c->listen_addr[c->nlisten] = *a;
    c->nlisten++;
}

static int load_listen_one(struct gw_config *c, const struct cfg_node *n, char **err)
{
    char *s = NULL;
    struct net_addr a;
    if (cfg_string(n, &s, err) < 0)
        return -1;
    if (parse_addr(n, s, &a, err) < 0) {
        free(s);
        return -1;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        if (net_addr_equal(&c->listen_addr[i], &a)) {
            *err = cfg_errorf(n, "'%s' is listed twice", s);
            free(s);
            return -1;
        }
    }
    add_listen(c, s, &a);
    free(s);
    return 0;
}

static int load_listen(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (!n) {
        struct net_addr a;
        if (net_parse_addr("0.0.0.0:8080", &a, err) < 0)
            return -1;
        add_listen(c, "0.0.0.0:8080", &a);
        return 0;
    }
    if (n->type != CFG_SEQ)
        return load_listen_one(c, n, err);
    if (n->n == 0) {
        *err = cfg_errorf(n, "expected at least one address");
        return -1;
    }
    for (size_t i = 0; i < n->n; i++)
        if (load_listen_one(c, n->kids[i], err) < 0)
            return -1;
    return 0;
}

/* admin: an address, or off, or a mapping with listen (the address,
 * default as before), token_file and allowed_hosts (core/config.h). The
 * default (127.0.0.1:9901) is checked like a written one, so a listen
 * address that collides with it is reported at the listen key. */
static int load_admin(struct gw_config *c, const struct cfg_node *root, char **err)
{
    const struct cfg_node *n;
    if (cfg_access(cfg_get(root, "admin"), &n, &c->admin_access, err) < 0)
        return -1;
    const struct cfg_node *where = n ? n : cfg_get(root, "listen");
    char *s = xstrdup("127.0.0.1:9901");
    if (cfg_string(n, &s, err) < 0) {
        free(s);
        return -1;
    }
    if (is_off(s)) {
        free(s);
        return 0;
    }
    if (n && parse_addr(n, s, &c->admin_addr, err) < 0) {
        free(s);
        return -1;
    }
    if (!n) {
        int rc = net_parse_addr(s, &c->admin_addr, err); /* numeric literal: cannot fail */
        ASSERT(rc == 0);
    }
    for (size_t i = 0; where && i < c->nlisten; i++) {
        if (net_addr_equal(&c->listen_addr[i], &c->admin_addr)) {
            *err = cfg_errorf(where, "'%s' is both a listen and the admin address", s);
            free(s);
            return -1;
        }
    }
    c->admin = s;
    return 0;
}

/* state_file: a path, or off (the default). */
static int load_state_file(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_string(n, &c->state_file, err) < 0)
        return -1;
    if (c->state_file && is_off(c->state_file)) {
        free(c->state_file);
        c->state_file = NULL;
    }
    return 0;
}

static int load_access_log(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_string(n, &c->access_log, err) < 0)
        return -1;
    if (c->access_log && is_off(c->access_log)) {
        free(c->access_log);
        c->access_log = NULL;
    }
    return 0;
}

/* ---- sections --------------------------------------------------------- */

static int load_timeouts(struct gw_cfg_timeouts *t, const struct cfg_node *n, char **err)
{
    t->client_header_ms = 10000;
    t->client_body_ms = 60000;
    t->client_idle_ms = 60000;
    t->upstream_connect_ms = 2000;
    t->upstream_response_ms = 30000;
    t->drain_ms = 30000;
    if (cfg_section(n, timeout_keys, err) < 0)
        return -1;
    if (cfg_duration(cfg_get(n, "client_header"), 1, HOUR_MS, &t->client_header_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "client_body"), 1, DAY_MS, &t->client_body_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "client_idle"), 1, DAY_MS, &t->client_idle_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "upstream_connect"), 1, HOUR_MS, &t->upstream_connect_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "upstream_response"), 1, DAY_MS, &t->upstream_response_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "drain"), 0, DAY_MS, &t->drain_ms, err) < 0)
        return -1;
    return 0;
}

static int load_limits(struct gw_cfg_limits *l, const struct cfg_node *n, char **err)
{
    l->max_header_bytes = 32 << 10;
    l->max_headers = 100;
    l->max_body_bytes = 1ull << 30;
    l->max_connections = 100000;
    if (cfg_section(n, limit_keys, err) < 0)
        return -1;
    if (cfg_size(cfg_get(n, "max_header_bytes"), 1 << 10, 16 << 20, &l->max_header_bytes, err) < 0 ||
        get_int(cfg_get(n, "max_headers"), 1, 10000, &l->max_headers, err) < 0 ||
        cfg_size(cfg_get(n, "max_body_bytes"), 0, 1ull << 50, &l->max_body_bytes, err) < 0 ||
        get_int(cfg_get(n, "max_connections"), 1, 10000000, &l->max_connections, err) < 0)
        return -1;
    return 0;
}

static int load_upstream(struct gw_cfg_upstream *u, const struct cfg_node *n, char **err)
{
    u->keepalive = 1024;
    u->keepalive_timeout_ms = 60000;
    if (cfg_section(n, upstream_keys, err) < 0)
        return -1;
    if (get_int(cfg_get(n, "keepalive"), 0, 100000, &u->keepalive, err) < 0 ||
        cfg_duration(cfg_get(n, "keepalive_timeout"), 1, DAY_MS, &u->keepalive_timeout_ms, err) < 0)
        return -1;
    return 0;
}

/* ---- services --------------------------------------------------------- */

/* "200" (exact) or "2xx" (class). */
static int load_expect(struct gw_cfg_health *h, const struct cfg_node *n, char **err)
{
    if (!n)
        return 0;
    if (n->type == CFG_SCALAR && n->len == 3 && n->str[0] >= '1' && n->str[0] <= '5' &&
        strcasecmp(n->str + 1, "xx") == 0) {
        h->expect_min = (n->str[0] - '0') * 100;
        h->expect_max = h->expect_min + 99;
        return 0;
    }
    if (n->type == CFG_SCALAR && !cfg_is_null(n) && strspn(n->str, "0123456789") != n->len) {
        *err = cfg_errorf(n, "expected a status code like 200 or a class like 2xx");
        return -1;
    }
    int code = 0;
    if (get_int(n, 100, 599, &code, err) < 0)
        return -1;
    h->expect_min = h->expect_max = code;
    return 0;
}

static int load_health(struct gw_cfg_health *h, const struct cfg_node *n, char **err)
{
    h->enabled = false;
    h->path = xstrdup("/health");
    h->interval_ms = 2000;
    h->timeout_ms = 1000;
    h->expect_min = 200;
    h->expect_max = 299;
    h->rise = 2;
    h->fall = 3;
    if (!n)
        return 0;
    if (n->type == CFG_SCALAR) /* "health: off" or "health: on" (all defaults) */
        return cfg_bool(n, &h->enabled, err);
    if (cfg_section(n, health_keys, err) < 0)
        return -1;
    h->enabled = true;
    const struct cfg_node *p = cfg_get(n, "path");
    if (cfg_string(p, &h->path, err) < 0)
        return -1;
    char *why = gw_check_path(h->path);
    if (why)
        return fail_at(p, why, err);
    if (cfg_duration(cfg_get(n, "interval"), 10, HOUR_MS, &h->interval_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "timeout"), 1, HOUR_MS, &h->timeout_ms, err) < 0 ||
        load_expect(h, cfg_get(n, "expect_status"), err) < 0 ||
        get_int(cfg_get(n, "rise"), 1, 100, &h->rise, err) < 0 ||
        get_int(cfg_get(n, "fall"), 1, 100, &h->fall, err) < 0)
        return -1;
    return 0;
}

static int load_passive(struct gw_cfg_passive *p, const struct cfg_node *n, char **err)
{
    p->max_failures = 5;
    p->eject_for_ms = 10000;
    if (cfg_section(n, passive_keys, err) < 0)
        return -1;
    if (get_int(cfg_get(n, "max_failures"), 0, 1000, &p->max_failures, err) < 0 ||
        cfg_duration(cfg_get(n, "eject_for"), 100, DAY_MS, &p->eject_for_ms, err) < 0)
        return -1;
    return 0;
}

/* "client_ip", "path", "header:NAME" or "cookie:NAME". */
static int load_hash_key(struct gw_cfg_service *s, const struct cfg_node *n, char **err)
{
    if (cfg_string(n, &s->hash_key, err) < 0)
        return -1;
    const char *k = s->hash_key;
    if (strcmp(k, "client_ip") == 0) {
        s->hash_by = GW_HASH_CLIENT_IP;
    } else if (strcmp(k, "path") == 0) {
        s->hash_by = GW_HASH_PATH;
    } else if (strncmp(k, "header:", 7) == 0 && token_ok(k + 7)) {
        s->hash_by = GW_HASH_HEADER;
        s->hash_name = xstrdup(k + 7);
    } else if (strncmp(k, "cookie:", 7) == 0 && token_ok(k + 7)) {
        s->hash_by = GW_HASH_COOKIE;
        s->hash_name = xstrdup(k + 7);
    } else {
        *err = cfg_errorf(n, "expected client_ip, path, header:NAME or cookie:NAME, not '%.64s'", k);
        return -1;
    }
    return 0;
}

static int load_server(struct gw_cfg_service *s, const struct cfg_node *n, char **err)
{
    struct gw_cfg_server *sv = &s->servers[s->nservers];
    const struct cfg_node *an = n; /* the node holding the address */
    memset(sv, 0, sizeof *sv);
    sv->weight = 1;
    sv->line = n->line;
    if (n->type == CFG_MAP) {
        if (cfg_check_keys(n, server_keys, err) < 0 || !(an = cfg_require(n, "address", err)))
            return -1;
        const struct cfg_node *wn = cfg_get(n, "weight");
        if (wn && (wn->type != CFG_SCALAR || cfg_is_null(wn))) {
            *err = cfg_errorf(wn, "expected an integer, got %s", cfg_kind(wn));
            return -1;
        }
        char *why = wn ? gw_check_weight(wn->str, &sv->weight) : NULL;
        if (why)
            return fail_at(wn, why, err);
    } else if (n->type != CFG_SCALAR) {
        *err = cfg_errorf(n, "expected an address like 127.0.0.1:9001 or a mapping with address and weight, got %s",
                          cfg_kind(n));
        return -1;
    }
    char *a = NULL;
    if (cfg_string(an, &a, err) < 0)
        return -1;
    s->nservers++; /* from here on gw_config_free releases it */
    sv->address = a;
    char *why = gw_check_server_address(a, &sv->addr);
    if (why)
        return fail_at(an, why, err);
    for (size_t i = 0; i + 1 < s->nservers; i++) {
        if (net_addr_equal(&s->servers[i].addr, &sv->addr)) {
            *err = cfg_errorf(an, "duplicate server '%.64s' (already listed at line %d)", a, s->servers[i].line);
            return -1;
        }
    }
    return 0;
}

/* Keys that only make sense with consistent hashing. */
static int consistent_only(const struct cfg_node *svc, int algo, char **err)
{
    static const char *const keys[] = {"hash_key", "vnodes", "bound_load"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        const struct cfg_node *k = cfg_get(svc, keys[i]);
        if (k && algo != GW__CFG_LB_CONSISTENT_HASH) {
            *err = cfg_errorf(k, "only applies to balance: consistent_hash (this service uses %s)", gw__cfg_lb_names[algo]);
            return -1;
        }
    }
    return 0;
}

static int load_service(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_expect(n, CFG_MAP, err) < 0 || cfg_check_keys(n, service_keys, err) < 0)
        return -1;
    struct gw_cfg_service *s = &c->services[c->nservices++];
    memset(s, 0, sizeof *s);
    s->line = n->line;
    s->vnodes = 100;
    s->hash_by = GW_HASH_CLIENT_IP;

    const struct cfg_node *name = cfg_require(n, "name", err);
    if (!name || cfg_string(name, &s->name, err) < 0)
        return -1;
    char *why = gw_check_service_name(s->name);
    if (why)
        return fail_at(name, why, err);
    for (size_t i = 0; i + 1 < c->nservices; i++) {
        if (strcmp(c->services[i].name, s->name) == 0) {
            *err = cfg_errorf(name, "duplicate service '%s' (already defined at line %d)", s->name,
                              c->services[i].line);
            return -1;
        }
    }

    int algo = 0;
    const struct cfg_node *bn = cfg_get(n, "balance");
    if (bn && (bn->type != CFG_SCALAR || cfg_is_null(bn)))
        return cfg_enum(bn, gw__cfg_lb_names, &algo, err); /* its message for a missing or non-scalar value */
    if (bn && (why = gw_check_balance(bn->str, &algo)) != NULL)
        return fail_at(bn, why, err);
    if (consistent_only(n, algo, err) < 0)
        return -1;
    s->balance = xstrdup(gw__cfg_lb_names[algo]);
    if (algo == GW__CFG_LB_CONSISTENT_HASH) {
        const struct cfg_node *hk = cfg_get(n, "hash_key");
        if (hk) {
            if (load_hash_key(s, hk, err) < 0)
                return -1;
        } else {
            s->hash_key = xstrdup("client_ip");
        }
    }
    const struct cfg_node *bl = cfg_get(n, "bound_load");
    if (get_int(cfg_get(n, "vnodes"), 1, 10000, &s->vnodes, err) < 0 ||
        cfg_double(bl, 0, 100, &s->bound_load, err) < 0 ||
        cfg_duration(cfg_get(n, "slow_start"), 0, HOUR_MS, &s->slow_start_ms, err) < 0)
        return -1;
    if (s->bound_load != 0 && s->bound_load < 1.0) {
        *err = cfg_errorf(bl, "must be 0 (off) or at least 1, like 1.25");
        return -1;
    }

    const struct cfg_node *sv = cfg_get(n, "servers");
    if (sv && !cfg_is_null(sv)) {
        if (cfg_expect(sv, CFG_SEQ, err) < 0)
            return -1;
        s->servers = xcalloc(sv->n, sizeof *s->servers);
        for (size_t i = 0; i < sv->n; i++)
            if (load_server(s, sv->kids[i], err) < 0)
                return -1;
    }
    if (load_health(&s->health, cfg_get(n, "health"), err) < 0)
        return -1;
    if (load_passive(&s->passive, cfg_get(n, "passive"), err) < 0)
        return -1;
    return gw_config_load_resil(c, s, n, err);
}

static int load_services(struct gw_config *c, const struct cfg_node *root, char **err)
{
    const struct cfg_node *n = cfg_require(root, "services", err);
    if (!n || cfg_expect(n, CFG_SEQ, err) < 0)
        return -1;
    if (n->n == 0) {
        *err = cfg_errorf(n, "expected at least one service");
        return -1;
    }
    c->services = xcalloc(n->n, sizeof *c->services);
    for (size_t i = 0; i < n->n; i++)
        if (load_service(c, n->kids[i], err) < 0)
            return -1;
    return 0;
}

/* ---- routes ----------------------------------------------------------- */

/* The route's service: it must name one of the services (loaded before
 * the routes). */
static int load_route_service(struct gw_config *c, struct gw_cfg_route *r, const struct cfg_node *n, char **err)
{
    const struct cfg_node *sn = cfg_require(n, "service", err);
    if (!sn || cfg_string(sn, &r->service, err) < 0)
        return -1;
    const struct gw_cfg_service *svc = gw_config_find_service(c, r->service);
    if (svc) {
        r->service_idx = (size_t)(svc - c->services);
        return 0;
    }
    const char **names = xcalloc(c->nservices + 1, sizeof *names);
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < c->nservices; i++) {
        names[i] = c->services[i].name;
        if (len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    }
    const char *s = cfg_suggest(r->service, names, c->nservices);
    if (s)
        *err = cfg_errorf(sn, "unknown service '%.64s'; did you mean '%s'? (services: %s)", r->service, s, list);
    else
        *err = cfg_errorf(sn, "unknown service '%.64s' (services: %s)", r->service, list);
    free(names);
    return -1;
}

/* Refuses r (the last route loaded) when an earlier one has the same
 * host and prefix; the error points at r's prefix node pn. */
static int unique_route(const struct gw_config *c, const struct gw_cfg_route *r, const struct cfg_node *pn,
                        char **err)
{
    for (size_t i = 0; i + 1 < c->nroutes; i++) {
        const struct gw_cfg_route *o = &c->routes[i];
        bool same_host = (!o->host && !r->host) || (o->host && r->host && strcmp(o->host, r->host) == 0);
        if (same_host && strcmp(o->prefix, r->prefix) == 0) {
            *err = cfg_errorf(pn, "duplicate route: same host and prefix as the route at line %d", o->line);
            return -1;
        }
    }
    return 0;
}

static int load_route(struct gw_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_expect(n, CFG_MAP, err) < 0 || cfg_check_keys(n, route_keys, err) < 0)
        return -1;
    struct gw_cfg_route *r = &c->routes[c->nroutes++];
    memset(r, 0, sizeof *r);
    r->line = n->line;

    const struct cfg_node *nn = cfg_get(n, "name");
    if (cfg_string(nn, &r->name, err) < 0)
        return -1;
    if (r->name) {
        size_t len = strlen(r->name);
        if (len == 0 || len > 64 || strspn(r->name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
            *err = cfg_errorf(nn, "expected 1..64 characters of [a-z0-9_-]");
            return -1;
        }
        for (size_t i = 0; i + 1 < c->nroutes; i++)
            if (c->routes[i].name && !strcmp(c->routes[i].name, r->name)) {
                *err = cfg_errorf(nn, "duplicate route name '%s' (first at line %d)", r->name,
                                  c->routes[i].line);
                return -1;
            }
    }

    const struct cfg_node *pn = cfg_require(n, "prefix", err);
    if (!pn || cfg_string(pn, &r->prefix, err) < 0)
        return -1;
    char *why = gw_check_path(r->prefix);
    if (why)
        return fail_at(pn, why, err);

    const struct cfg_node *hn = cfg_get(n, "host");
    if (cfg_string(hn, &r->host, err) < 0)
        return -1;
    why = r->host ? gw_check_host(r->host) : NULL;
    if (why)
        return fail_at(hn, why, err);

    if (load_route_service(c, r, n, err) < 0)
        return -1;

    if (cfg_bool(cfg_get(n, "strip_prefix"), &r->strip_prefix, err) < 0)
        return -1;
    if (gw_config_load_route_guard(c, r, n, err) < 0)
        return -1;
    r->priority = GW_PRIO_NORMAL;
    const struct cfg_node *prn = cfg_get(n, "priority");
    if (prn) {
        static const char *const prio_names[] = {"low", "normal", "high", "critical", NULL};
        if (cfg_enum(prn, prio_names, &r->priority, err) < 0)
            return -1;
    }
    return unique_route(c, r, pn, err);
}

static int load_routes(struct gw_config *c, const struct cfg_node *root, char **err)
{
    const struct cfg_node *n = cfg_require(root, "routes", err);
    if (!n || cfg_expect(n, CFG_SEQ, err) < 0)
        return -1;
    if (n->n == 0) {
        *err = cfg_errorf(n, "expected at least one route");
        return -1;
    }
    c->routes = xcalloc(n->n, sizeof *c->routes);
    for (size_t i = 0; i < n->n; i++)
        if (load_route(c, n->kids[i], err) < 0)
            return -1;
    return 0;
}

/* ---- entry points ----------------------------------------------------- */

static int load_doc(const struct cfg_doc *d, struct gw_config **out, char **err)
{
    const struct cfg_node *r = d->root;
    struct gw_config *c = xcalloc(1, sizeof *c);
    c->name = xstrdup(d->name);
    c->log_level = LOG_INFO;

    if (r->type != CFG_MAP) {
        *err = cfg_errorf(r, "expected a mapping of settings (listen, services, routes, ...), got %s",
                          cfg_kind(r));
        goto fail;
    }
    if (cfg_check_keys(r, top_keys, err) < 0 || load_listen(c, cfg_get(r, "listen"), err) < 0 ||
        get_int(cfg_get(r, "threads"), 0, 1024, &c->threads, err) < 0 ||
        load_admin(c, r, err) < 0 || load_access_log(c, cfg_get(r, "access_log"), err) < 0 ||
        load_state_file(c, cfg_get(r, "state_file"), err) < 0 ||
        cfg_enum(cfg_get(r, "log_level"), level_names, &c->log_level, err) < 0 ||
        load_timeouts(&c->timeouts, cfg_get(r, "timeouts"), err) < 0 ||
        load_limits(&c->limits, cfg_get(r, "limits"), err) < 0 ||
        load_upstream(&c->upstream, cfg_get(r, "upstream"), err) < 0 || load_services(c, r, err) < 0 ||
        gw_config_load_guard(c, r, err) < 0 || load_routes(c, r, err) < 0 ||
        gw_config_check_resil(c, err) < 0)
        goto fail;
    *out = c;
    return 0;

fail:
    gw_config_free(c);
    return -1;
}

int gw_config_load_string(const char *yaml, size_t len, const char *name, struct gw_config **out, char **err)
{
    struct cfg_doc *d;
    *out = NULL;
    if (cfg_load_string(yaml, len, name, &d, err) < 0)
        return -1;
    int rc = load_doc(d, out, err);
    cfg_doc_free(d);
    return rc;
}

int gw_config_load_file(const char *path, struct gw_config **out, char **err)
{
    struct cfg_doc *d;
    *out = NULL;
    if (cfg_load_file(path, &d, err) < 0)
        return -1;
    int rc = load_doc(d, out, err);
    cfg_doc_free(d);
    return rc;
}
