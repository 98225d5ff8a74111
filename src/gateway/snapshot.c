/* Configuration snapshots: immutable routes + services + balancers built
 * from a config and the admin-made membership changes, published by
 * pointer swap. Server objects are carried over from the previous
 * snapshot when their service and address stay the same, so health,
 * drain state and counters survive reloads and membership changes.
 *
 * Lifetime: the published pointer owns one reference; each worker owns
 * one on the snapshot it routes with; each request owns one while it
 * lives. The published pointer (struct gw snap) is a C11 atomic and is
 * only ever touched with atomic operations. Loading it and taking a
 * reference happen under snap_lock, as does swapping it, so the old one
 * loses the published reference only after no reader can be between its
 * load and its ref. Workers compare it without the lock
 * (gw_snapshot_newer) and take the lock only when it changed. */
#include "gateway/gw.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The stats kept for a service name (created on first use; ctl_lock). */
static struct gw_svc_stats *svc_stats_get(struct gw *g, const char *name)
{
    for (struct gw_svc_stats *s = g->svc_stats; s; s = s->next)
        if (!strcmp(s->name, name))
            return s;
    struct gw_svc_stats *s = xcalloc(1, sizeof *s);
    s->name = xstrdup(name);
    metrics_hist_init(&s->latency);
    s->nctr = g->nworkers;
    s->ctr = gw_ctr_alloc((size_t)s->nctr, sizeof *s->ctr);
    s->next = g->svc_stats;
    g->svc_stats = s;
    return s;
}

void gw_svc_counts(const struct gw_svc_stats *st, uint64_t *requests, uint64_t resp_class[6],
                   struct metrics_hist_snap *latency)
{
    uint64_t n = gw_ctr_load(&st->req_total);
    for (int c = 0; c < 6; c++)
        resp_class[c] = gw_ctr_load(&st->resp_class[c]);
    if (latency) {
        memset(latency, 0, sizeof *latency);
        metrics_hist_snapshot(&st->latency, latency);
    }
    for (int i = 0; i < st->nctr; i++) {
        for (int c = 0; c < 6; c++) {
            uint64_t v = gw_ctr_load(&st->ctr[i].resp_class[c]);
            resp_class[c] += v;
            n += v;
        }
        if (latency)
            metrics_hist_snapshot(&st->ctr[i].latency, latency);
    }
    *requests = n;
}

struct gw_cfgref *gw_cfgref_new(struct gw_config *cfg)
{
    struct gw_cfgref *r = xcalloc(1, sizeof *r);
    atomic_init(&r->refcnt, 1);
    r->cfg = cfg;
    return r;
}

struct gw_cfgref *gw_cfgref_get(struct gw_cfgref *r)
{
    atomic_fetch_add_explicit(&r->refcnt, 1, memory_order_relaxed);
    return r;
}

void gw_cfgref_put(struct gw_cfgref *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refcnt, 1, memory_order_acq_rel) == 1) {
        gw_config_free(r->cfg);
        free(r);
    }
}

void gw__service_free(struct gw_service *svc)
{
    if (!svc)
        return;
    gw_lb_free(svc->lb);
    gw_svc_rt_unref(svc->rt);
    for (size_t i = 0; i < svc->nservers; i++)
        gw_server_unref(svc->servers[i]);
    free(svc->servers);
    free(svc->name);
    free(svc->balance);
    free(svc->hash_name);
    free(svc->health_path);
    free(svc);
}

static void snapshot_free(struct gw_snapshot *s)
{
    gw__guard_snapshot_free(s);
    for (size_t i = 0; i < s->nservices; i++)
        gw__service_free(s->services[i]);
    free(s->services);
    for (size_t i = 0; i < s->nroutes; i++)
        gw__route_clear(&s->routes[i]);
    free(s->routes);
    gw_cfgref_put(s->cfgref);
    free(s);
}

void gw_snapshot_unref(struct gw_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

struct gw_snapshot *gw_snapshot_get(struct gw *g)
{
    pthread_mutex_lock(&g->snap_lock);
    struct gw_snapshot *s = atomic_load_explicit(&g->snap, memory_order_relaxed);
    if (s)
        gw_snapshot_ref(s);
    pthread_mutex_unlock(&g->snap_lock);
    return s;
}

void gw_snapshot_publish(struct gw *g, struct gw_snapshot *s)
{
    pthread_mutex_lock(&g->snap_lock);
    /* Release: a worker that sees the new pointer (gw_snapshot_newer,
     * without the lock) sees the snapshot built. */
    struct gw_snapshot *old = atomic_exchange_explicit(&g->snap, s, memory_order_release);
    pthread_mutex_unlock(&g->snap_lock);
    gw_snapshot_unref(old);
    /* Wake the workers so idle ones adopt it now, not at their next event. */
    for (int i = 0; g->workers && i < g->nworkers; i++)
        if (g->workers[i] && g->workers[i]->loop)
            ev_async_send(g->workers[i]->loop);
}

struct gw_service *gw_snapshot_service(const struct gw_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nservices; i++)
        if (!strcmp(s->services[i]->name, name))
            return s->services[i];
    return NULL;
}

/* A server object for (svc, address): the previous snapshot's when it had
 * the same one with the same weight, else a new one. Returns a new
 * reference. */
struct gw_server *gw__snapshot_server_for(struct gw *g, struct gw_snapshot *prev, const char *svc,
                                         const struct net_addr *addr, int weight)
{
    struct gw_service *ps = prev ? gw_snapshot_service(prev, svc) : NULL;
    if (ps) {
        for (size_t i = 0; i < ps->nservers; i++) {
            struct gw_server *o = ps->servers[i];
            if (net_addr_equal(&o->addr, addr) && o->weight == weight) {
                gw_server_ref(o);
                return o;
            }
        }
    }
    struct gw_server *s = gw_server_new(&g->servers, svc, addr, weight);
    gw_server_alloc_counters(s, g->nworkers);
    return s;
}

struct gw_service *gw__service_new(struct gw *g, const char *name, const char *balance)
{
    struct gw_service *svc = xcalloc(1, sizeof *svc);
    svc->name = xstrdup(name);
    svc->balance = xstrdup(balance ? balance : "round_robin");
    svc->stats = svc_stats_get(g, name);
    return svc;
}

void gw__service_add_server(struct gw_service *svc, struct gw_server *srv)
{
    svc->servers = xrealloc(svc->servers, (svc->nservers + 1) * sizeof *svc->servers);
    svc->servers[svc->nservers++] = srv;
}

static int service_from_cfg(struct gw *g, struct gw_snapshot *s, struct gw_snapshot *prev,
                            const struct gw_cfg_service *cs)
{
    struct gw_service *svc = gw__service_new(g, cs->name, cs->balance);
    svc->hash_key = cs->hash_by;
    if (cs->hash_name) {
        svc->hash_name = xstrdup(cs->hash_name);
        svc->hash_name_len = strlen(cs->hash_name);
    }
    svc->passive_max_failures = cs->passive.max_failures;
    svc->passive_eject_ms = cs->passive.eject_for_ms;
    svc->health = cs->health;
    if (cs->health.path) {
        svc->health_path = xstrdup(cs->health.path);
        svc->health.path = svc->health_path;
    }
    for (size_t i = 0; i < cs->nservers; i++)
        gw__service_add_server(svc, gw__snapshot_server_for(g, prev, cs->name, &cs->servers[i].addr, cs->servers[i].weight));
    svc->rt = gw__svc_rt_for(g, svc->stats, &cs->resil);
    svc->resil = &cs->resil;
    s->services = xrealloc(s->services, (s->nservices + 1) * sizeof *s->services);
    s->services[s->nservices++] = svc;
    return 0;
}

/* Longest prefix first; at equal length, host-specific rules first. */
static int route_cmp(const void *a, const void *b)
{
    const struct gw_route *x = a, *y = b;
    if (x->prefix_len != y->prefix_len)
        return x->prefix_len > y->prefix_len ? -1 : 1;
    return (y->host != NULL) - (x->host != NULL);
}

void gw__snapshot_add_route(struct gw_snapshot *s, const char *host, const char *prefix, bool strip,
                           struct gw_service *svc)
{
    s->routes = xrealloc(s->routes, (s->nroutes + 1) * sizeof *s->routes);
    struct gw_route *r = &s->routes[s->nroutes++];
    memset(r, 0, sizeof *r);
    if (host) {
        r->host = xstrdup(host);
        r->host_len = strlen(host);
    }
    r->prefix = xstrdup(prefix);
    r->prefix_len = strlen(prefix);
    r->strip = strip;
    r->svc = svc;
    r->prio = GW_PRIO_NORMAL;
}

void gw__route_clear(struct gw_route *r)
{
    cidr_set_free(&r->allow);
    cidr_set_free(&r->deny);
    for (size_t i = 0; i < r->nallow_txt; i++)
        free(r->allow_txt[i]);
    for (size_t i = 0; i < r->ndeny_txt; i++)
        free(r->deny_txt[i]);
    free(r->allow_txt);
    free(r->deny_txt);
    free(r->name);
    free(r->host);
    free(r->prefix);
    memset(r, 0, sizeof *r); /* r->rl is freed with the guard's part of the snapshot */
}

struct gw_route *gw_snapshot_route(const struct gw_snapshot *s, const char *id, const char *host)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        struct gw_route *r = &s->routes[i];
        if (id[0] != '/') {
            if (r->name && !strcmp(r->name, id))
                return r;
            continue;
        }
        if (strcmp(r->prefix, id) != 0)
            continue;
        if ((!host && !r->host) || (host && r->host && !strcasecmp(host, r->host)))
            return r;
    }
    return NULL;
}

static char **copy_list(char *const *v, size_t n)
{
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static int finish_services(struct gw *g, struct gw_snapshot *s, char **err)
{
    for (size_t i = 0; i < s->nservices; i++) {
        struct gw_service *svc = s->services[i];
        int algo = gw_lb_parse_algo(svc->balance);
        if (algo < 0) {
            *err = xasprintf("service %s: unknown balance algorithm '%s'", svc->name, svc->balance);
            return -1;
        }
        const struct gw_cfg_service *cs = gw_config_find_service(s->cfg, svc->name);
        struct gw_lb_opts o = {
            .vnodes = cs ? cs->vnodes : 100,
            .bound_load = cs ? cs->bound_load : 0,
            .slow_start_ms = cs ? cs->slow_start_ms : 0,
        };
        gw_lb_free(svc->lb);
        svc->lb = gw_lb_new((enum gw_lb_algo)algo, svc->servers, svc->nservers, &o);
        /* Per-server breakers: every server of a service with
         * server_breaker:, registered ones included; none elsewhere. */
        const struct gw_breaker_cfg *bc = cs && !svc->dynamic && cs->resil.server_breaker_on
                                              ? &cs->resil.server_breaker
                                              : NULL;
        uint64_t now_us = ev_clock_ns() / 1000;
        int cap = cs ? (int)cs->resil.per_server : 0;
        for (size_t k = 0; k < svc->nservers; k++) {
            gw_server_breaker_config(svc->servers[k], bc, now_us);
            atomic_store_explicit(&svc->servers[k]->max_inflight, cap, memory_order_relaxed);
        }
    }
    qsort(s->routes, s->nroutes, sizeof *s->routes, route_cmp);
    for (size_t i = 0; i < s->nroutes; i++)
        s->routes[i].stats = gw__route_stats_get(g, &s->routes[i]);
    return 0;
}

struct gw_snapshot *gw_snapshot_build(struct gw *g, struct gw_cfgref *cr, struct gw_snapshot *prev, char **err)
{
    struct gw_snapshot *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refcnt, 1);
    s->cfgref = cr;
    s->cfg = cr->cfg;
    struct gw_config *cfg = cr->cfg;
    s->generation = ++g->generation;
    for (size_t i = 0; i < cfg->nservices; i++)
        service_from_cfg(g, s, prev, &cfg->services[i]);
    /* Global CIDR lists start from the config; admin changes follow. */
    s->allow_txt = xcalloc(cfg->guard.nallow + 1, sizeof *s->allow_txt);
    for (size_t i = 0; i < cfg->guard.nallow; i++)
        s->allow_txt[s->nallow_txt++] = xstrdup(cfg->guard.allow[i]);
    s->deny_txt = xcalloc(cfg->guard.ndeny + 1, sizeof *s->deny_txt);
    for (size_t i = 0; i < cfg->guard.ndeny; i++)
        s->deny_txt[s->ndeny_txt++] = xstrdup(cfg->guard.deny[i]);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct gw_cfg_route *rt = &cfg->routes[i];
        gw__snapshot_add_route(s, rt->host, rt->prefix, rt->strip_prefix,
                              gw_snapshot_service(s, rt->service));
        struct gw_route *r = &s->routes[s->nroutes - 1];
        r->prio = rt->priority;
        r->name = rt->name ? xstrdup(rt->name) : NULL;
        /* The route's lists start from the config; admin changes follow. */
        r->allow_txt = copy_list(rt->allow, rt->nallow);
        r->nallow_txt = rt->nallow;
        r->deny_txt = copy_list(rt->deny, rt->ndeny);
        r->ndeny_txt = rt->ndeny;
    }
    if (gw__members_apply(g, s, prev, err) != 0 || finish_services(g, s, err) != 0 ||
        gw__guard_snapshot(s, err) != 0) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

static bool host_matches(const struct gw_route *r, const char *host, size_t len)
{
    if (!r->host)
        return true;
    if (!host)
        return false;
    if (r->host[0] == '*' && r->host[1] == '.') {
        size_t sl = r->host_len - 1; /* ".example.com" */
        return len > sl && strncasecmp(host + len - sl, r->host + 1, sl) == 0;
    }
    return len == r->host_len && strncasecmp(host, r->host, len) == 0;
}

/* Prefix match on path segments: "/auth" matches "/auth", "/auth/x" and
 * "/auth?q", not "/authx"; a prefix ending in '/' matches anything under
 * it. Routes are sorted so the first match is the longest prefix. */
const struct gw_route *gw_route_match(const struct gw_snapshot *s, const char *host, size_t host_len,
                                      const char *path, size_t path_len)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct gw_route *r = &s->routes[i];
        if (path_len < r->prefix_len || memcmp(path, r->prefix, r->prefix_len) != 0)
            continue;
        if (path_len > r->prefix_len && r->prefix[r->prefix_len - 1] != '/' && path[r->prefix_len] != '/')
            continue;
        if (!host_matches(r, host, host_len))
            continue;
        if (!r->svc)
            continue;
        return r;
    }
    return NULL;
}
