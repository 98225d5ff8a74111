/* The request's way through the gateway (ARCHITECTURE.md, "A request's
 * way"): the stage tables, the one driver that walks them, and the short
 * stages that need nothing but the request (route, acl, prio, rewrite,
 * balance, send). Rate limiting is limit.c, admission and the service
 * breaker resil.c, the response response.c. pipeline.h states the stage
 * contract. Worker thread of the request.
 *
 * The order is the point: limits are per route, so routing comes first;
 * the limit decides with the parsed head, but the request waits for a
 * Redis answer or a delay (hold) only after the head was rewritten and
 * consumed, so nothing waits on views into a buffer that moves; shedding
 * comes before the breaker so that a queued request is judged when it is
 * let through; the balancer skips servers whose breaker is open. */
#include "gateway/proxy/pipeline.h"
#include "gateway/proxy/conn.h"

#include <stdlib.h>
#include <string.h>

static int stage_route(struct gw_req *r);
static int stage_acl(struct gw_req *r);
static int stage_prio(struct gw_req *r);
static int stage_rewrite(struct gw_req *r);
static int stage_balance(struct gw_req *r);
static int stage_send(struct gw_req *r);
static int stage_log(struct gw_req *r);

static const struct gw_stage stages[GW_NSTAGES] = {
    [GW_ST_ROUTE] = {"route", stage_route},          /* host + prefix -> route, service; 404 */
    [GW_ST_ACL] = {"acl", stage_acl},                /* route allow/deny; 403 */
    [GW_ST_LIMIT] = {"limit", gw__stage_limit},      /* route rules; 429, or ask Redis */
    [GW_ST_PRIO] = {"prio", stage_prio},             /* priority class; retry budget */
    [GW_ST_REWRITE] = {"rewrite", stage_rewrite},    /* prefix strip, hop-by-hop, X-Forwarded-* */
    [GW_ST_HOLD] = {"hold", gw__stage_hold},         /* Redis answer, then the limit's delay */
    [GW_ST_SHED] = {"shed", gw__stage_shed},         /* concurrency/queue; 503 */
    [GW_ST_BREAKER] = {"breaker", gw__stage_breaker},/* service breaker; fallback */
    [GW_ST_BALANCE] = {"balance", stage_balance},    /* server by algorithm, skipping open breakers */
    [GW_ST_SEND] = {"send", stage_send},             /* upstream connection; the exchange starts */
};

static const struct gw_stage resp_stages[] = {
    {"head", gw__resp_head},       /* status line and fields; 1xx forwarded; 502 */
    {"body", gw__resp_body},       /* validates the body's framing */
    {"deliver", gw__resp_deliver}, /* writes to the client; upstream back to the pool */
};

static const struct gw_stage finish_stages[] = {
    {"account", gw__resp_account}, /* worker, service and server counters */
    {"log", stage_log},            /* the access log line */
};

int gw__pipeline_run(const struct gw_stage *t, size_t n, struct gw_req *r, size_t from)
{
    int rc = GW_NEXT;
    for (size_t i = from; i < n && rc == GW_NEXT; i++)
        rc = t[i].run(r);
    return rc;
}

int gw_pipeline_start(struct gw_req *r, const struct http_request *hreq)
{
    r->hreq = hreq;
    return gw_pipeline_resume(r, GW_ST_ROUTE);
}

int gw_pipeline_resume(struct gw_req *r, enum gw_stage_id from)
{
    return gw__pipeline_run(stages, GW_NSTAGES, r, from);
}

int gw_pipeline_response(struct gw_req *r)
{
    return gw__pipeline_run(resp_stages, ARRAY_SIZE(resp_stages), r, 0);
}

void gw_pipeline_finish(struct gw_req *r)
{
    gw__pipeline_run(finish_stages, ARRAY_SIZE(finish_stages), r, 0);
}

const char *gw_pipeline_stage_name(enum gw_stage_id id)
{
    return (unsigned)id < GW_NSTAGES ? stages[id].name : NULL;
}

/* ---- route, acl ---- */

static void host_only(const char **h, size_t *len)
{
    /* Strips ":port", keeping IPv6 literals "[::1]" whole. */
    const char *p = *h;
    size_t n = *len;
    if (n && p[0] == '[') {
        const char *e = memchr(p, ']', n);
        if (e)
            *len = (size_t)(e - p + 1);
        return;
    }
    const char *colon = memchr(p, ':', n);
    if (colon)
        *len = (size_t)(colon - p);
}

static int stage_route(struct gw_req *r)
{
    const struct http_request *req = r->hreq;
    /* Target: origin-form, absolute-form (host taken from it) or '*'. */
    const char *path = req->target;
    size_t path_len = req->target_len;
    const char *host = req->host;
    size_t host_len = req->host ? req->host_len : 0;
    if (path_len > 7 && (fg_strieq(path, 7, "http://") || (path_len > 8 && fg_strieq(path, 8, "https://")))) {
        size_t skip = path[4] == ':' ? 7 : 8;
        const char *auth = path + skip;
        const char *slash = memchr(auth, '/', path_len - skip);
        host = auth;
        host_len = slash ? (size_t)(slash - auth) : path_len - skip;
        path = slash ? slash : "/";
        path_len = slash ? (size_t)(req->target + req->target_len - slash) : 1;
    } else if (path[0] != '/' && !(path_len == 1 && path[0] == '*')) {
        gw__conn_error(r->c, 400, GW_ERR_BAD_REQUEST);
        return GW_ANSWERED;
    }
    if (host)
        host_only(&host, &host_len);
    const char *q = memchr(path, '?', path_len);
    size_t route_len = q ? (size_t)(q - path) : path_len;
    const struct gw_route *rt = gw_route_match(r->snap, host, host_len, path, route_len);
    if (!rt) {
        gw__conn_error(r->c, 404, GW_ERR_NO_ROUTE);
        return GW_ANSWERED;
    }
    r->route = rt;
    r->svc = rt->svc;
    r->path = path;
    r->path_len = path_len;
    return GW_NEXT;
}

static int stage_acl(struct gw_req *r)
{
    const struct gw_route *rt = r->route;
    uint8_t a16[16];
    if ((!rt->allow.n && !rt->deny.n) || !cidr_sa16((const struct sockaddr *)&r->c->peer.ss, a16) ||
        !gw_route_refuses(rt, a16))
        return GW_NEXT;
    atomic_fetch_add_explicit(&r->w->gw->refused_ip[GW_REFUSE_ROUTE], 1, memory_order_relaxed);
    gw__conn_respond(r->c, 403, r->body_done, NULL);
    return GW_ANSWERED;
}

/* ---- prio, rewrite ---- */

static int stage_prio(struct gw_req *r)
{
    const struct gw_route *rt = r->route;
    r->rt = rt->svc->rt;
    r->prio = (uint8_t)rt->prio;
    if (rt->svc->resil && rt->svc->resil->priority_header) {
        const struct http_header *ph = http_find_header(r->hreq->headers, r->hreq->nheaders,
                                                        rt->svc->resil->priority_header);
        int p = ph ? gw_prio_parse(ph->value, ph->value_len) : -1;
        if (p >= 0)
            r->prio = (uint8_t)p;
    }
    if (r->rt)
        gw_rb_request(r->rt->rb, ev_now_ns(r->w->loop) / 1000);
    return GW_NEXT;
}

/* The hash of the cookie the service names; false when absent. */
static bool cookie_hash(const struct gw_service *svc, const struct http_request *req, uint64_t *out)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!fg_strieq(h->name, h->name_len, "cookie"))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            if (!eq)
                break;
            const char *semi = memchr(eq, ';', (size_t)(end - eq));
            if (!semi)
                semi = end;
            if ((size_t)(eq - p) == svc->hash_name_len && !memcmp(p, svc->hash_name, svc->hash_name_len)) {
                *out = gw_lb_hash(eq + 1, (size_t)(semi - eq - 1));
                return true;
            }
            p = semi;
        }
    }
    return false;
}

/* The balancer's key for the request, by the service's hash_key; the
 * client's address when the named field or cookie is absent. */
static uint64_t request_hash(struct gw_req *r, const char *path, size_t path_len)
{
    const struct gw_service *svc = r->svc;
    const struct http_request *req = r->hreq;
    uint64_t h;
    switch (svc->hash_key) {
    case GW_HASH_CLIENT_IP:
        break;
    case GW_HASH_PATH:
        return gw_lb_hash(path, path_len);
    case GW_HASH_HEADER:
        for (size_t i = 0; i < req->nheaders; i++)
            if (req->headers[i].name_len == svc->hash_name_len &&
                fg_strieq(req->headers[i].name, req->headers[i].name_len, svc->hash_name))
                return gw_lb_hash(req->headers[i].value, req->headers[i].value_len);
        break;
    case GW_HASH_COOKIE:
        if (cookie_hash(svc, req, &h))
            return h;
        break;
    default:
        return 0;
    }
    return gw_lb_hash(r->c->ip, r->c->ip_len);
}

static int stage_rewrite(struct gw_req *r)
{
    const struct gw_route *rt = r->route;
    const char *path = r->path;
    size_t path_len = r->path_len;
    char *tmp = NULL;
    /* Prefix strip: "/auth/login" under "/auth" becomes "/login". */
    if (rt->strip && rt->prefix_len > 1 && path_len >= rt->prefix_len) {
        path += rt->prefix_len;
        path_len -= rt->prefix_len;
        if (path_len == 0 || path[0] != '/') {
            /* Keep the result origin-form: rebuild with a leading slash. */
            tmp = xmalloc(path_len + 1);
            tmp[0] = '/';
            memcpy(tmp + 1, path, path_len);
            path = tmp;
            path_len++;
        }
    }
    const char *q = memchr(path, '?', path_len);
    r->hash = request_hash(r, path, q ? (size_t)(q - path) : path_len);
    gw__rewrite_request(r->c, r->hreq, path, path_len);
    free(tmp);
    return gw__conn_take_head(r->c) ? GW_NEXT : GW_ANSWERED;
}

/* ---- balance, send ---- */

/* A server not tried yet whose breaker admits the attempt; with none,
 * the fallback (which may reroute to the fallback service: then pick
 * again there). */
static int stage_balance(struct gw_req *r)
{
    struct gw_worker *w = r->w;
    uint64_t now = ev_now(w->loop);
    for (;;) {
        gw__req_server_settle(r, GW_SRVBRK_RELEASE);
        struct gw_server *srv = gw_pick_server(r->svc->lb, r->hash, r->tried, (size_t)r->ntried, &r->sbrk,
                                               now, ev_now_ns(w->loop) / 1000);
        int status = srv ? 0 : 503;
        enum gw_err_kind kind = GW_ERR_NO_SERVER;
        /* The balancer returns an already-tried server only when no other
         * is usable: give up rather than hammer it again. */
        for (int i = 0; srv && i < r->ntried; i++) {
            if (r->tried[i] == srv) {
                status = r->connect_timeout ? 504 : 502;
                kind = GW_ERR_UP_CONNECT;
            }
        }
        if (!status) {
            r->tried[r->ntried++] = srv;
            gw_server_ref(srv);
            r->srv = srv; /* gw_pick_server took its in-flight place */
            return GW_NEXT;
        }
        int rc = gw__fallback(r, status, kind);
        if (rc != GW_NEXT)
            return rc;
    }
}

/* Sends the request to r->srv; the upstream's events carry it on. */
static int stage_send(struct gw_req *r)
{
    struct gw_conn *c = r->c;
    const struct gw_config *cfg = WCFG(r->w);
    r->up = gw__up_acquire(r->w, r->srv, c);
    if (!r->up) {
        gw__conn_up_failed(c, GW_ERR_UP_CONNECT, true);
        return GW_ANSWERED;
    }
    if (r->up->connecting) {
        gw__conn_set_timeout(c, TMO_CONNECT, cfg->timeouts.upstream_connect_ms);
        return GW_WAIT;
    }
    if (!r->body_done)
        gw__conn_set_timeout(c, TMO_BODY, cfg->timeouts.client_body_ms);
    gw__up_send(r->up);
    return GW_WAIT;
}

static int stage_log(struct gw_req *r)
{
    gw__access_log(r->c);
    return GW_NEXT;
}
