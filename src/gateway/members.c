/* Dynamic membership: servers and services added, removed or drained
 * through the admin API. Each change is recorded as an operation and a
 * new snapshot is built from the current config plus every recorded
 * operation, in order; a reload replays them on top of the new config, so
 * run-time registrations survive it. The log stays small: an operation
 * replaces earlier ones on the same server (or the same service), so it
 * holds at most one entry per live registration.
 *
 * The log is also what the state file (state_file:, members_state.c)
 * holds: each change is saved there before the call returns, and read
 * back at start, before the first snapshot, so the config file stays the
 * base and the state the overlay on it, at start as on every reload.
 *
 * A server added with a TTL is a registration lease (Consul's TTL check):
 * its owner renews it by registering again before it runs out, and
 * gw_members_expire() removes it when it does not, so a backend that died
 * without deregistering leaves the pool by itself. A restored lease starts
 * a fresh TTL: a live backend renews it, a dead one expires. Servers added
 * without a TTL (an operator's) never expire.
 *
 * Thread context: any thread (the admin thread in practice); ctl_lock
 * serializes changes, expiry and reloads. */
#include "gateway/members_int.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t now_ms(void) { return ev_clock_ns() / 1000000ull; }

void gw__member_op_free(struct gw_member_op *o)
{
    free(o->svc);
    free(o->balance);
    free(o->prefix);
    free(o->route);
    free(o->host);
    free(o);
}

/* Drops earlier operations that the new one makes irrelevant. */
static void compact(struct gw_members *m, const struct gw_member_op *n)
{
    struct gw_member_op **pp = &m->ops;
    while (*pp) {
        struct gw_member_op *o = *pp;
        bool same_svc = !strcmp(o->svc, n->svc);
        bool drop = false;
        if (o->kind == OP_ROUTE_CIDR || n->kind == OP_ROUTE_CIDR) {
            /* only the same CIDR on the same list of the same route */
            drop = o->kind == n->kind && same_svc && o->deny == n->deny && !strcmp(o->route, n->route) &&
                   (o->host ? n->host && !strcmp(o->host, n->host) : !n->host);
        } else if ((o->kind == OP_CIDR) != (n->kind == OP_CIDR)) {
            /* a CIDR op never replaces a membership op, nor the reverse */
        } else if (n->kind == OP_CIDR) {
            drop = same_svc && o->deny == n->deny;
        } else if (same_svc) {
            if (n->kind == OP_ADD_SERVICE || n->kind == OP_REMOVE_SERVICE)
                drop = true;
            else if (gw__is_server_op(o->kind) && net_addr_equal(&o->addr, &n->addr))
                drop = (n->kind == OP_ADD_SERVER || n->kind == OP_REMOVE_SERVER) ||
                       o->kind == OP_DRAIN || o->kind == OP_UNDRAIN;
        }
        if (drop) {
            *pp = o->next;
            gw__member_op_free(o);
        } else {
            pp = &o->next;
        }
    }
}

void gw__members_append(struct gw_members *m, struct gw_member_op *n)
{
    compact(m, n);
    struct gw_member_op **pp = &m->ops;
    while (*pp)
        pp = &(*pp)->next;
    *pp = n;
}

static struct gw_server *find_server(struct gw_service *svc, const struct net_addr *a, size_t *idx)
{
    for (size_t i = 0; i < svc->nservers; i++)
        if (net_addr_equal(&svc->servers[i]->addr, a)) {
            if (idx)
                *idx = i;
            return svc->servers[i];
        }
    return NULL;
}

static void remove_service(struct gw_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nservices; i++) {
        if (strcmp(s->services[i]->name, name))
            continue;
        struct gw_service *svc = s->services[i];
        for (size_t r = 0; r < s->nroutes;) {
            if (s->routes[r].svc == svc) {
                gw__route_clear(&s->routes[r]);
                s->routes[r] = s->routes[--s->nroutes];
            } else {
                r++;
            }
        }
        memmove(&s->services[i], &s->services[i + 1], (s->nservices - i - 1) * sizeof *s->services);
        s->nservices--;
        gw__service_free(svc);
        return;
    }
}

/* Adds text to (or removes it from) a CIDR text list. */
static void cidr_list_apply(char ***list, size_t *n, const char *text, bool add)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i], text) != 0)
            continue;
        if (!add) {
            free((*list)[i]);
            (*list)[i] = (*list)[--*n];
        }
        return;
    }
    if (add) {
        *list = xrealloc(*list, (*n + 1) * sizeof **list);
        (*list)[(*n)++] = xstrdup(text);
    }
}

int gw__members_apply(struct gw *g, struct gw_snapshot *s, struct gw_snapshot *prev, char **err)
{
    for (struct gw_member_op *o = g->members.ops; o; o = o->next) {
        if (o->kind == OP_CIDR) {
            if (o->deny)
                cidr_list_apply(&s->deny_txt, &s->ndeny_txt, o->svc, o->add);
            else
                cidr_list_apply(&s->allow_txt, &s->nallow_txt, o->svc, o->add);
            continue;
        }
        if (o->kind == OP_ROUTE_CIDR) {
            /* A route that is gone (reloaded away) keeps its op: it applies
             * again if the route comes back. */
            struct gw_route *r = gw_snapshot_route(s, o->route, o->host);
            if (r && o->deny)
                cidr_list_apply(&r->deny_txt, &r->ndeny_txt, o->svc, o->add);
            else if (r)
                cidr_list_apply(&r->allow_txt, &r->nallow_txt, o->svc, o->add);
            continue;
        }
        struct gw_service *svc = gw_snapshot_service(s, o->svc);
        switch (o->kind) {
        case OP_CIDR:
        case OP_ROUTE_CIDR:
            break;
        case OP_ADD_SERVICE:
            if (!svc) {
                svc = gw__service_new(g, o->svc, o->balance);
                svc->dynamic = true;
                svc->rt = gw__svc_rt_for(g, svc->stats, NULL);
                s->services = xrealloc(s->services, (s->nservices + 1) * sizeof *s->services);
                s->services[s->nservices++] = svc;
                if (o->prefix)
                    gw__snapshot_add_route(s, NULL, o->prefix, o->strip, svc);
            }
            break;
        case OP_REMOVE_SERVICE:
            if (svc)
                remove_service(s, o->svc);
            break;
        case OP_ADD_SERVER:
            if (svc && !find_server(svc, &o->addr, NULL)) {
                struct gw_server *srv = gw__snapshot_server_for(g, prev, o->svc, &o->addr, o->weight);
                atomic_store(&srv->dynamic, true);
                gw__service_add_server(svc, srv);
            }
            break;
        case OP_REMOVE_SERVER: {
            size_t i;
            if (svc && find_server(svc, &o->addr, &i)) {
                gw_server_unref(svc->servers[i]);
                memmove(&svc->servers[i], &svc->servers[i + 1],
                        (svc->nservers - i - 1) * sizeof *svc->servers);
                svc->nservers--;
            }
            break;
        }
        case OP_DRAIN:
        case OP_UNDRAIN: {
            struct gw_server *srv = svc ? find_server(svc, &o->addr, NULL) : NULL;
            if (srv)
                atomic_store(&srv->draining, o->kind == OP_DRAIN);
            break;
        }
        }
    }
    (void)err;
    return 0;
}

/* Publishes a snapshot of the config plus the log, then saves the log.
 * Returns 0, -EINVAL when the build fails, or -EIO when the change is
 * live but could not be saved to the state file. ctl_lock held. */
static int publish(struct gw *g, char **err)
{
    struct gw_snapshot *cur = gw_snapshot_get(g);
    struct gw_snapshot *s = gw_snapshot_build(g, gw_cfgref_get(cur->cfgref), cur, err);
    gw_snapshot_unref(cur);
    if (!s)
        return -EINVAL;
    gw_snapshot_publish(g, s);
    const char *state_path = g->members.state_path;
    char *why = NULL;
    if (gw__members_save(&g->members, &why) != 0) {
        log_error("state file %s: %s", state_path, why);
        *err = xasprintf("the change is in effect but was not saved to the state file %s: %s", state_path, why);
        free(why);
        return -EIO;
    }
    return 0;
}

/* Records n and publishes a snapshot with it. Inputs are validated
 * before, so the build cannot fail on them. ctl_lock held. */
static int commit(struct gw *g, struct gw_member_op *n, char **err)
{
    gw__members_append(&g->members, n);
    return publish(g, err);
}

/* The lease op of server a in service svc, or NULL. ctl_lock held. */
static struct gw_member_op *find_lease(struct gw_members *m, const char *svc, const struct net_addr *a)
{
    for (struct gw_member_op *o = m->ops; o; o = o->next)
        if (o->kind == OP_ADD_SERVER && o->ttl_ms && !strcmp(o->svc, svc) && net_addr_equal(&o->addr, a))
            return o;
    return NULL;
}

static struct gw_member_op *op_new(enum gw_member_op_kind k, const char *svc)
{
    struct gw_member_op *o = xcalloc(1, sizeof *o);
    o->kind = k;
    o->svc = xstrdup(svc);
    return o;
}

/* Validates svc/addr against the current snapshot. Returns 0, or with
 * *err set -EINVAL (bad address), -ENOENT (no such service or server) or
 * -EEXIST (the server is there already). */
static int lookup(struct gw *g, const char *svcname, const char *addr, struct net_addr *na, bool want_server,
                  bool must_exist, char **err)
{
    if (addr && net_parse_addr(addr, na, err) != 0)
        return -EINVAL;
    struct gw_snapshot *cur = gw_snapshot_get(g);
    struct gw_service *svc = gw_snapshot_service(cur, svcname);
    int rc = 0;
    if (!svc) {
        *err = xasprintf("no service '%s'", svcname);
        rc = -ENOENT;
    } else if (want_server) {
        bool exists = find_server(svc, na, NULL) != NULL;
        char shown[64];
        net_addr_str(na, shown, sizeof shown);
        if (must_exist && !exists) {
            *err = xasprintf("service '%s' has no server %s", svcname, addr ? addr : shown);
            rc = -ENOENT;
        } else if (!must_exist && exists) {
            *err = xasprintf("service '%s' already has server %s", svcname, addr ? addr : shown);
            rc = -EEXIST;
        }
    }
    gw_snapshot_unref(cur);
    return rc;
}

/* why (a message from a gw_check_* function, freed) with the name of the
 * admin API's field in front, as the config loader puts the key path. */
static int refuse(const char *field, char *why, char **err)
{
    *err = xasprintf("%s: %s", field, why);
    free(why);
    return -EINVAL;
}

int gw_members_add_server(struct gw *g, const char *svc, const char *addr, int weight, uint64_t ttl_ms, char **err)
{
    char wtext[24], *why;
    snprintf(wtext, sizeof wtext, "%d", weight);
    if ((why = gw_check_weight(wtext, NULL)) != NULL)
        return refuse("weight", why, err);
    struct net_addr na;
    if ((why = gw_check_server_address(addr, &na)) != NULL)
        return refuse("address", why, err);
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_member_op *lease = ttl_ms ? find_lease(&g->members, svc, &na) : NULL;
    int rc = lookup(g, svc, NULL, &na, true, false, err);
    if (rc == -EEXIST && lease) {
        /* A renewal: a new end, and the weight it asks for now. */
        free(*err);
        *err = NULL;
        lease->ttl_ms = ttl_ms;
        lease->expires_ms = now_ms() + ttl_ms;
        rc = 1;
        if (lease->weight != weight) {
            lease->weight = weight;
            rc = publish(g, err);
            rc = rc == 0 ? 1 : rc;
        }
        log_debug("renewed the lease of server %s in service %s (%llu ms)", addr, svc, (unsigned long long)ttl_ms);
    } else if (rc == 0) {
        struct gw_member_op *o = op_new(OP_ADD_SERVER, svc);
        o->addr = na;
        o->weight = weight;
        o->ttl_ms = ttl_ms;
        o->expires_ms = now_ms() + ttl_ms;
        rc = commit(g, o, err);
        if (rc == 0 && ttl_ms)
            log_info("registered server %s in service %s (weight %d, lease %llu ms)", addr, svc, weight,
                     (unsigned long long)ttl_ms);
        else if (rc == 0)
            log_info("registered server %s in service %s (weight %d)", addr, svc, weight);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

bool gw_members_lease(struct gw *g, const char *svc, const struct net_addr *a, uint64_t *ttl_ms, uint64_t *left_ms)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_member_op *o = find_lease(&g->members, svc, a);
    if (o) {
        uint64_t now = now_ms();
        *ttl_ms = o->ttl_ms;
        *left_ms = o->expires_ms > now ? o->expires_ms - now : 0;
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return o != NULL;
}

int gw_members_expire(struct gw *g)
{
    pthread_mutex_lock(&g->ctl_lock);
    uint64_t now = now_ms();
    int n = 0;
    for (struct gw_member_op **pp = &g->members.ops; *pp;) {
        struct gw_member_op *o = *pp;
        if (o->kind != OP_ADD_SERVER || !o->ttl_ms || o->expires_ms > now) {
            pp = &o->next;
            continue;
        }
        char a[64];
        net_addr_str(&o->addr, a, sizeof a);
        log_warn("lease of server %s in service %s expired (not renewed within %llu ms): removed", a, o->svc,
                 (unsigned long long)o->ttl_ms);
        /* Its drains go with it: they would outlive the server otherwise. */
        for (struct gw_member_op **qq = &o->next; *qq;) {
            struct gw_member_op *q = *qq;
            if ((q->kind == OP_DRAIN || q->kind == OP_UNDRAIN) && !strcmp(q->svc, o->svc) &&
                net_addr_equal(&q->addr, &o->addr)) {
                *qq = q->next;
                gw__member_op_free(q);
            } else {
                qq = &q->next;
            }
        }
        *pp = o->next;
        gw__member_op_free(o);
        atomic_fetch_add_explicit(&g->members.leases_expired, 1, memory_order_relaxed);
        n++;
    }
    if (n) {
        char *err = NULL;
        if (publish(g, &err) != 0) {
            log_error("after expired leases: %s", err);
            free(err);
        }
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return n;
}

void gw_members_metrics_render(struct gw *g, struct buf *b)
{
    metrics_family(b, "floodgate_gateway_leases_expired_total", "counter",
                   "Registered servers removed because their lease ran out without a renewal.");
    metrics_sample_u64(b, "floodgate_gateway_leases_expired_total", NULL,
                       atomic_load_explicit(&g->members.leases_expired, memory_order_relaxed));
    uint64_t live = 0;
    pthread_mutex_lock(&g->ctl_lock);
    for (struct gw_member_op *o = g->members.ops; o; o = o->next)
        live += o->kind == OP_ADD_SERVER && o->ttl_ms;
    pthread_mutex_unlock(&g->ctl_lock);
    metrics_family(b, "floodgate_gateway_leases", "gauge", "Registration leases held (servers that renew).");
    metrics_sample_u64(b, "floodgate_gateway_leases", NULL, live);
}

int gw_members_remove_server(struct gw *g, const char *svc, const char *addr, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct net_addr na;
    int rc = lookup(g, svc, addr, &na, true, true, err);
    if (rc == 0) {
        struct gw_member_op *o = op_new(OP_REMOVE_SERVER, svc);
        o->addr = na;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("deregistered server %s from service %s", addr, svc);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_drain_server(struct gw *g, const char *svc, const char *addr, bool drain, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct net_addr na;
    int rc = lookup(g, svc, addr, &na, true, true, err);
    if (rc == 0) {
        struct gw_member_op *o = op_new(drain ? OP_DRAIN : OP_UNDRAIN, svc);
        o->addr = na;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("%s server %s in service %s", drain ? "draining" : "undrained", addr, svc);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_add_service(struct gw *g, const char *svc, const char *balance, const char *prefix,
                           bool strip_prefix, char **err)
{
    char *why;
    int algo = 0;
    if ((why = gw_check_service_name(svc)) != NULL)
        return refuse("name", why, err);
    if (balance && (why = gw_check_balance(balance, &algo)) != NULL)
        return refuse("balance", why, err);
    if (prefix && (why = gw_check_path(prefix)) != NULL)
        return refuse("prefix", why, err);
    pthread_mutex_lock(&g->ctl_lock);
    int rc = 0;
    struct gw_snapshot *cur = gw_snapshot_get(g);
    if (gw_snapshot_service(cur, svc)) {
        *err = xasprintf("service '%s' already exists", svc);
        rc = -EEXIST;
    } else if (prefix && gw_snapshot_route(cur, prefix, NULL)) {
        /* The config refuses two routes with the same host and prefix. */
        *err = xasprintf("prefix: duplicate route: a route for any host at '%s' already exists", prefix);
        rc = -EEXIST;
    }
    gw_snapshot_unref(cur);
    if (rc == 0) {
        struct gw_member_op *o = op_new(OP_ADD_SERVICE, svc);
        o->balance = xstrdup(gw_lb_algo_name((enum gw_lb_algo)algo));
        o->prefix = prefix ? xstrdup(prefix) : NULL;
        o->strip = strip_prefix;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("created service %s (%s)%s%s", svc, o->balance, prefix ? " at " : "",
                     prefix ? prefix : "");
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_remove_service(struct gw *g, const char *svc, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    int rc = lookup(g, svc, NULL, NULL, false, true, err);
    if (rc == 0) {
        rc = commit(g, op_new(OP_REMOVE_SERVICE, svc), err);
        if (rc == 0)
            log_info("removed service %s", svc);
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_cidr(struct gw *g, bool deny, bool add, const char *cidr, char **err)
{
    char *why = gw_check_cidr(cidr);
    if (why)
        return refuse("cidr", why, err);
    int rc;
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_member_op *o = op_new(OP_CIDR, cidr);
    o->deny = deny;
    o->add = add;
    rc = commit(g, o, err);
    if (rc == 0)
        log_info("%s %s %s the %s list", add ? "added" : "removed", cidr, add ? "to" : "from",
                 deny ? "deny" : "allow");
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

int gw_members_route_cidr(struct gw *g, const char *route, const char *host, bool deny, bool add, const char *cidr,
                          char **err)
{
    char *why = gw_check_cidr(cidr);
    if (why)
        return refuse("cidr", why, err);
    int rc = 0;
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_snapshot *cur = gw_snapshot_get(g);
    if (!gw_snapshot_route(cur, route, host)) {
        *err = host ? xasprintf("no route '%s' for host '%s'", route, host) : xasprintf("no route '%s'", route);
        rc = -ENOENT;
    }
    gw_snapshot_unref(cur);
    if (rc == 0) {
        struct gw_member_op *o = op_new(OP_ROUTE_CIDR, cidr);
        o->route = xstrdup(route);
        o->host = host ? xstrdup(host) : NULL;
        o->deny = deny;
        o->add = add;
        rc = commit(g, o, err);
        if (rc == 0)
            log_info("route %s%s%s: %s %s %s its %s list", host ? host : "", host ? " " : "", route,
                     add ? "added" : "removed", cidr, add ? "to" : "from", deny ? "deny" : "allow");
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

void gw_members_free(struct gw_members *m)
{
    while (m->ops) {
        struct gw_member_op *o = m->ops;
        m->ops = o->next;
        gw__member_op_free(o);
    }
    free(m->state_path);
    m->state_path = NULL;
}
