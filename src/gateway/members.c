/* Dynamic membership: servers and services added, removed or drained
 * through the admin API. Each change is recorded as an operation and a
 * new snapshot is built from the current config plus every recorded
 * operation, in order; a reload replays them on top of the new config, so
 * run-time registrations survive it. The log stays small: an operation
 * replaces earlier ones on the same server (or the same service), so it
 * holds at most one entry per live registration.
 *
 * Thread context: any thread (the admin thread in practice); ctl_lock
 * serializes changes and reloads. */
#include "gateway/gw.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

enum op_kind {
    OP_ADD_SERVER, OP_REMOVE_SERVER, OP_DRAIN, OP_UNDRAIN, OP_ADD_SERVICE, OP_REMOVE_SERVICE,
    OP_CIDR,       /* global allow/deny list change; svc holds the CIDR text */
    OP_ROUTE_CIDR, /* a route's allow/deny list change; svc holds the CIDR text */
};

struct op {
    enum op_kind kind;
    char *svc;
    struct net_addr addr;   /* server ops */
    int weight;
    char *balance;          /* OP_ADD_SERVICE */
    char *prefix;           /* OP_ADD_SERVICE: optional route */
    bool strip;
    bool deny, add;         /* OP_CIDR, OP_ROUTE_CIDR: which list, add or remove */
    char *route;            /* OP_ROUTE_CIDR: route name or prefix */
    char *host;             /* OP_ROUTE_CIDR: the route's host, NULL: any */
    struct op *next;
};

static struct op *ops;

static bool is_server_op(enum op_kind k) { return k <= OP_UNDRAIN; }

static void op_free(struct op *o)
{
    free(o->svc);
    free(o->balance);
    free(o->prefix);
    free(o->route);
    free(o->host);
    free(o);
}

/* Drops earlier operations that the new one makes irrelevant. */
static void compact(const struct op *n)
{
    struct op **pp = &ops;
    while (*pp) {
        struct op *o = *pp;
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
            else if (is_server_op(o->kind) && net_addr_equal(&o->addr, &n->addr))
                drop = (n->kind == OP_ADD_SERVER || n->kind == OP_REMOVE_SERVER) ||
                       o->kind == OP_DRAIN || o->kind == OP_UNDRAIN;
        }
        if (drop) {
            *pp = o->next;
            op_free(o);
        } else {
            pp = &o->next;
        }
    }
}

static void append(struct op *n)
{
    compact(n);
    struct op **pp = &ops;
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
                gw_route_clear(&s->routes[r]);
                s->routes[r] = s->routes[--s->nroutes];
            } else {
                r++;
            }
        }
        memmove(&s->services[i], &s->services[i + 1], (s->nservices - i - 1) * sizeof *s->services);
        s->nservices--;
        gw_service_free(svc);
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

int gw_members_apply(struct gw_snapshot *s, struct gw_snapshot *prev, char **err)
{
    for (struct op *o = ops; o; o = o->next) {
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
                svc = gw_service_new(o->svc, o->balance);
                svc->dynamic = true;
                svc->rt = gw_svc_rt_for(svc->stats, NULL);
                s->services = xrealloc(s->services, (s->nservices + 1) * sizeof *s->services);
                s->services[s->nservices++] = svc;
                if (o->prefix)
                    gw_snapshot_add_route(s, NULL, o->prefix, o->strip, svc);
            }
            break;
        case OP_REMOVE_SERVICE:
            if (svc)
                remove_service(s, o->svc);
            break;
        case OP_ADD_SERVER:
            if (svc && !find_server(svc, &o->addr, NULL)) {
                struct gw_server *srv = gw_snapshot_server_for(prev, o->svc, &o->addr, o->weight);
                atomic_store(&srv->dynamic, true);
                gw_service_add_server(svc, srv);
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

/* Records n and publishes a snapshot with it. Inputs are validated
 * before, so the build cannot fail on them. ctl_lock held. */
static int commit(struct op *n, char **err)
{
    append(n);
    struct gw_snapshot *cur = gw_snapshot_get();
    struct gw_snapshot *s = gw_snapshot_build(gw_cfgref_get(cur->cfgref), cur, err);
    gw_snapshot_unref(cur);
    if (!s)
        return -400;
    gw_snapshot_publish(s);
    return 0;
}

static struct op *op_new(enum op_kind k, const char *svc)
{
    struct op *o = xcalloc(1, sizeof *o);
    o->kind = k;
    o->svc = xstrdup(svc);
    return o;
}

/* Validates svc/addr against the current snapshot. Returns 0 or the
 * negative HTTP status for the admin API with *err set. */
static int lookup(const char *svcname, const char *addr, struct net_addr *na, bool want_server,
                  bool must_exist, char **err)
{
    if (addr && net_parse_addr(addr, na, err) != 0)
        return -400;
    struct gw_snapshot *cur = gw_snapshot_get();
    struct gw_service *svc = gw_snapshot_service(cur, svcname);
    int rc = 0;
    if (!svc) {
        *err = xasprintf("no service '%s'", svcname);
        rc = -404;
    } else if (want_server) {
        bool exists = find_server(svc, na, NULL) != NULL;
        char shown[64];
        net_addr_str(na, shown, sizeof shown);
        if (must_exist && !exists) {
            *err = xasprintf("service '%s' has no server %s", svcname, addr ? addr : shown);
            rc = -404;
        } else if (!must_exist && exists) {
            *err = xasprintf("service '%s' already has server %s", svcname, addr ? addr : shown);
            rc = -409;
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
    return -400;
}

int gw_members_add_server(const char *svc, const char *addr, int weight, char **err)
{
    char wtext[24], *why;
    snprintf(wtext, sizeof wtext, "%d", weight);
    if ((why = gw_check_weight(wtext, NULL)) != NULL)
        return refuse("weight", why, err);
    struct net_addr na;
    if ((why = gw_check_server_address(addr, &na)) != NULL)
        return refuse("address", why, err);
    pthread_mutex_lock(&gw_g->ctl_lock);
    int rc = lookup(svc, NULL, &na, true, false, err);
    if (rc == 0) {
        struct op *o = op_new(OP_ADD_SERVER, svc);
        o->addr = na;
        o->weight = weight;
        rc = commit(o, err);
        if (rc == 0)
            log_info("registered server %s in service %s (weight %d)", addr, svc, weight);
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

int gw_members_remove_server(const char *svc, const char *addr, char **err)
{
    pthread_mutex_lock(&gw_g->ctl_lock);
    struct net_addr na;
    int rc = lookup(svc, addr, &na, true, true, err);
    if (rc == 0) {
        struct op *o = op_new(OP_REMOVE_SERVER, svc);
        o->addr = na;
        rc = commit(o, err);
        if (rc == 0)
            log_info("deregistered server %s from service %s", addr, svc);
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

int gw_members_drain_server(const char *svc, const char *addr, bool drain, char **err)
{
    pthread_mutex_lock(&gw_g->ctl_lock);
    struct net_addr na;
    int rc = lookup(svc, addr, &na, true, true, err);
    if (rc == 0) {
        struct op *o = op_new(drain ? OP_DRAIN : OP_UNDRAIN, svc);
        o->addr = na;
        rc = commit(o, err);
        if (rc == 0)
            log_info("%s server %s in service %s", drain ? "draining" : "undrained", addr, svc);
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

int gw_members_add_service(const char *svc, const char *balance, const char *prefix,
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
    pthread_mutex_lock(&gw_g->ctl_lock);
    int rc = 0;
    struct gw_snapshot *cur = gw_snapshot_get();
    if (gw_snapshot_service(cur, svc)) {
        *err = xasprintf("service '%s' already exists", svc);
        rc = -409;
    } else if (prefix && gw_snapshot_route(cur, prefix, NULL)) {
        /* The config refuses two routes with the same host and prefix. */
        *err = xasprintf("prefix: duplicate route: a route for any host at '%s' already exists", prefix);
        rc = -409;
    }
    gw_snapshot_unref(cur);
    if (rc == 0) {
        struct op *o = op_new(OP_ADD_SERVICE, svc);
        o->balance = xstrdup(gw_lb_algo_name((enum gw_lb_algo)algo));
        o->prefix = prefix ? xstrdup(prefix) : NULL;
        o->strip = strip_prefix;
        rc = commit(o, err);
        if (rc == 0)
            log_info("created service %s (%s)%s%s", svc, o->balance, prefix ? " at " : "",
                     prefix ? prefix : "");
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

int gw_members_remove_service(const char *svc, char **err)
{
    pthread_mutex_lock(&gw_g->ctl_lock);
    int rc = lookup(svc, NULL, NULL, false, true, err);
    if (rc == 0) {
        rc = commit(op_new(OP_REMOVE_SERVICE, svc), err);
        if (rc == 0)
            log_info("removed service %s", svc);
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

int gw_members_cidr(bool deny, bool add, const char *cidr, char **err)
{
    char *why = gw_check_cidr(cidr);
    if (why)
        return refuse("cidr", why, err);
    int rc;
    pthread_mutex_lock(&gw_g->ctl_lock);
    struct op *o = op_new(OP_CIDR, cidr);
    o->deny = deny;
    o->add = add;
    rc = commit(o, err);
    if (rc == 0)
        log_info("%s %s %s the %s list", add ? "added" : "removed", cidr, add ? "to" : "from",
                 deny ? "deny" : "allow");
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

int gw_members_route_cidr(const char *route, const char *host, bool deny, bool add, const char *cidr,
                          char **err)
{
    char *why = gw_check_cidr(cidr);
    if (why)
        return refuse("cidr", why, err);
    int rc = 0;
    pthread_mutex_lock(&gw_g->ctl_lock);
    struct gw_snapshot *cur = gw_snapshot_get();
    if (!gw_snapshot_route(cur, route, host)) {
        *err = host ? xasprintf("no route '%s' for host '%s'", route, host) : xasprintf("no route '%s'", route);
        rc = -404;
    }
    gw_snapshot_unref(cur);
    if (rc == 0) {
        struct op *o = op_new(OP_ROUTE_CIDR, cidr);
        o->route = xstrdup(route);
        o->host = host ? xstrdup(host) : NULL;
        o->deny = deny;
        o->add = add;
        rc = commit(o, err);
        if (rc == 0)
            log_info("route %s%s%s: %s %s %s its %s list", host ? host : "", host ? " " : "", route,
                     add ? "added" : "removed", cidr, add ? "to" : "from", deny ? "deny" : "allow");
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

void gw_members_free(void)
{
    while (ops) {
        struct op *o = ops;
        ops = o->next;
        op_free(o);
    }
}
