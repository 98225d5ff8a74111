/* Which handler a complete request goes to: the path-to-handler table
 * below (/healthz and /metrics; the topics' paths and SNS requests;
 * /v1/... for the native API, native.c); everything else must be an SQS
 * request (either AWS protocol: the SQS layer recognises and decodes it
 * into an action and canonical parameters). Both APIs run the same
 * engine actions, through the services of reply.c.
 *
 * Browser requests: before routing, every request is checked as
 * core/xsite.h describes: a Host naming neither an IP, localhost nor one
 * of allowed_hosts is refused (DNS rebinding), and so is a request that a
 * page of another site sent (foreign Origin, Sec-Fetch-Site cross-site or
 * same-site), whatever its method, since the SQS query API takes actions
 * on GET too. Origins listed in cors.allow_origins are let through and get
 * CORS answers: preflights (OPTIONS with Access-Control-Request-Method)
 * here, and Access-Control-Allow-Origin on every response (bk_respond).
 * Refusals are 403 in the shape of the API the path belongs to. */
#include "broker/http/http.h"
#include "broker/topic/topic.h"

#include "core/log.h"
#include "core/xsite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests from browsers ---- */

/* Headers a preflight may ask for: what the AWS SDKs for JavaScript send
 * (SigV4 and their own x-amz-*, amz-sdk-* fields) and what the native
 * API needs. */
static bool cors_header_allowed(const char *n, size_t len)
{
    return fg_strieq(n, len, "authorization") || fg_strieq(n, len, "content-type") ||
           fg_strieq(n, len, "content-md5") || (len > 6 && strncasecmp(n, "x-amz-", 6) == 0) ||
           (len > 7 && strncasecmp(n, "x-amzn-", 7) == 0) || (len > 8 && strncasecmp(n, "amz-sdk-", 8) == 0);
}

#define BK_CORS_HEADERS \
    "authorization, content-type, x-amz-target, x-amz-date, x-amz-security-token, x-amz-user-agent, " \
    "x-amz-content-sha256, x-amzn-query-mode, amz-sdk-invocation-id, amz-sdk-request"

/* True when every name in the Access-Control-Request-Headers list v is
 * one cors_header_allowed() takes. */
static bool cors_headers_ok(const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == ','))
            i++;
        size_t b = i;
        while (i < len && v[i] != ',' && v[i] != ' ')
            i++;
        if (i > b && !cors_header_allowed(v + b, i - b))
            return false;
    }
    return true;
}

/* Answers a CORS preflight from an allowed origin. */
static void cors_preflight(struct bk_conn *c)
{
    const struct http_request *h = &c->h.req;
    const struct http_header *rh = http_find_header(h->headers, h->nheaders, "Access-Control-Request-Headers");
    char *allow;
    if (rh && rh->value_len <= 2048 && cors_headers_ok(rh->value, rh->value_len))
        allow = xasprintf("%.*s", (int)rh->value_len, rh->value);
    else
        allow = xstrdup(BK_CORS_HEADERS);
    char *extra = xasprintf("Access-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE\r\n"
                            "Access-Control-Allow-Headers: %s\r\n"
                            "Access-Control-Max-Age: 600\r\n"
                            "Vary: Access-Control-Request-Method, Access-Control-Request-Headers",
                            allow);
    bk_respond(c, 200, "text/plain", "", 0, extra, false);
    free(extra);
    free(allow);
}

/* Refuses a request with 403 in the shape of the API its path is for:
 * native JSON for /v1 and the plain endpoints, SNS XML for an SNS
 * request, SQS (XML or JSON, as the request spoke) for the rest. */
static void xsite_refuse(struct bk_conn *c, const char *path, size_t plen, const char *msg)
{
    struct bk_server *s = c->srv;
    bool v1 = (plen == 3 && !memcmp(path, "/v1", 3)) || (plen > 3 && !memcmp(path, "/v1/", 4));
    bool plain = (plen == 8 && (!memcmp(path, "/healthz", 8) || !memcmp(path, "/metrics", 8)));
    if (v1 || plain) {
        bk_respond_error(c, 403, "AccessDenied", msg);
    } else if (s->topics && tp_server_wants(c, path, plen)) {
        struct sns_error e;
        sns_fail(&e, SNS_E_AUTHORIZATION, "%s", msg);
        struct buf b;
        buf_init(&b);
        int status = 403;
        sns_encode_error(&e, c->reqid, &b, &status);
        bk_respond(c, status, "text/xml", buf_rptr(&b), buf_len(&b), NULL, false);
        buf_free(&b);
    } else {
        const struct http_request *h = &c->h.req;
        const struct http_header *ct = http_find_header(h->headers, h->nheaders, "Content-Type");
        static const char amzjson[] = "application/x-amz-json-1.0";
        bool json = http_find_header(h->headers, h->nheaders, "X-Amz-Target") ||
                    (ct && ct->value_len >= sizeof amzjson - 1 &&
                     strncasecmp(ct->value, amzjson, sizeof amzjson - 1) == 0);
        c->proto = json ? SQS_PROTO_JSON : SQS_PROTO_QUERY;
        struct sqs_error e;
        sqs_fail(&e, SQS_E_ACCESS_DENIED, "%s", msg);
        bk_sqs_error_respond(c, &e, false);
    }
}

/* Runs the browser checks on c's request for path. Returns true when it
 * may go on (with c->cors_allow set for an allowed foreign origin), false
 * when it was answered: refused, or a preflight. */
static bool xsite_pass(struct bk_conn *c, const char *path, size_t plen)
{
    const struct bk_config *cfg = c->srv->cfg;
    const struct http_request *h = &c->h.req;
    struct xsite_policy pol = {cfg->allowed_hosts, cfg->nallowed_hosts, cfg->cors_origins, cfg->ncors_origins};
    const struct http_header *origin = http_find_header(h->headers, h->nheaders, "Origin");
    bool preflight = h->m == HTTP_M_OPTIONS && origin &&
                     http_find_header(h->headers, h->nheaders, "Access-Control-Request-Method");
    enum xsite_verdict v = xsite_check(&pol, h->headers, h->nheaders, buf_len(&c->h.body),
                                       preflight ? 0 : XSITE_CHECK_ORIGIN);
    const char *allow = origin ? xsite_origin_listed(&pol, origin->value, origin->value_len) : NULL;
    if (v == XSITE_OK && preflight && !allow)
        v = XSITE_FOREIGN_ORIGIN;
    /* One loop thread serves every connection: the limiter needs no lock. */
    static struct xsite_loglimit refusals;
    uint32_t dropped;
    if (v != XSITE_OK && xsite_log_allowed(&refusals, ev_now(c->srv->loop), &dropped)) {
        char more[48] = "";
        if (dropped)
            snprintf(more, sizeof more, " (and %u more not logged)", dropped);
        const struct http_header *host = http_find_header(h->headers, h->nheaders, "Host");
        log_at(LOG_WARN, "broker: refused %.*s %.*s (Host '%.*s', Origin '%.*s'): %s%s", (int)h->method_len,
               h->method, (int)FG_MIN(plen, 200), path, host ? (int)FG_MIN(host->value_len, 200) : 0,
               host ? host->value : "", origin ? (int)FG_MIN(origin->value_len, 200) : 0,
               origin ? origin->value : "", xsite_reason(v), more);
    }
    if (v != XSITE_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s%s", xsite_reason(v),
                 v == XSITE_BAD_HOST ? "; see allowed_hosts" : "; see cors.allow_origins");
        xsite_refuse(c, path, plen, msg);
        return false;
    }
    /* "*" answers "*": no credentials are involved (SigV4 travels in
     * headers the preflight allowed, not cookies). */
    c->cors_allow = allow;
    if (preflight) {
        cors_preflight(c);
        return false;
    }
    return true;
}

/* ---- routing ---- */

/* The path and query of a request target. */
struct target {
    const char *path, *query;
    size_t plen, qlen;
};

static void route_sqs(struct bk_conn *c, const struct target *t)
{
    FG_UNUSED(t);
    struct bk_server *s = c->srv;
    const char *body = buf_len(&c->h.body) ? buf_rptr(&c->h.body) : "";
    size_t blen = buf_len(&c->h.body);
    c->api = BK_API_SQS;
    c->proto = SQS_PROTO_QUERY;
    if (!sqs_is_sqs_request(&c->h.req, body, blen)) {
        if (c->h.req.m == HTTP_M_GET || c->h.req.m == HTTP_M_HEAD)
            bk_respond_error(c, 404, "NotFound", "no such resource: try /v1/queues, /metrics or the SQS API");
        else
            bk_respond_error(c, 400, "MissingAction",
                             "not an SQS request (no Action parameter or X-Amz-Target header)");
        return;
    }
    s->st.sqs_requests++;
    enum sqs_proto proto = 0;
    char action[64] = "";
    cJSON *params = NULL;
    struct sqs_error err = {SQS_OK, ""};
    enum sqs_err rc = sqs_decode(&c->h.req, body, blen, &proto, action, &params, &err);
    if (proto)
        c->proto = proto;
    if (rc == SQS_OK && s->cfg->access_key)
        rc = sqs_sigv4_check(&c->h.req, body, blen, s->cfg->access_key, s->cfg->secret_key,
                             (int64_t)(ev_wall_ms() / 1000), &err);
    if (rc != SQS_OK) {
        cJSON_Delete(params);
        bk_sqs_error_respond(c, &err, false);
        return;
    }
    if (!strcmp(action, "ReceiveMessage")) {
        /* Typed, so that a long poll can park and run again. */
        bk_recv_sqs(c, params);
        cJSON_Delete(params);
        return;
    }
    char *base = bk_base_url(c);
    struct bk_ctx ctx;
    cJSON *res = NULL;
    rc = bk_run_action(c, action, params, base, &res, &err, &ctx);
    bk_render(c, action, rc, res, &err, ctx.need_sync);
    if (ctx.need_sync)
        bk_commit_join(c);
    cJSON_Delete(res);
    cJSON_Delete(params);
    free(base);
}

static void route_health(struct bk_conn *c, const struct target *t)
{
    FG_UNUSED(t);
    struct bk_server *s = c->srv;
    int err = store_error(s->store);
    char body[160];
    int n;
    if (err)
        n = snprintf(body, sizeof body, "{\"status\":\"failing\",\"error\":\"log: %s\"}\n", strerror(-err));
    else
        n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"queues\":%zu,\"messages\":%llu}\n",
                     s->engine->nqueues, (unsigned long long)s->engine->nmsgs);
    bk_respond(c, err ? 503 : 200, "application/json", body, (size_t)n, NULL, false);
}

static void route_metrics(struct bk_conn *c, const struct target *t)
{
    FG_UNUSED(t);
    struct buf b;
    buf_init(&b);
    bk_metrics_render(c->srv, &b);
    bk_respond(c, 200, METRICS_CONTENT_TYPE, buf_rptr(&b), buf_len(&b), NULL, false);
    buf_free(&b);
}

static bool wants_topics(const struct bk_conn *c, const struct target *t)
{
    return c->srv->topics && tp_server_wants(c, t->path, t->plen);
}

static void route_topics(struct bk_conn *c, const struct target *t)
{
    tp_server_dispatch(c->srv->topics, c, t->path, t->plen, t->query, t->qlen);
}

static void route_native(struct bk_conn *c, const struct target *t)
{
    c->api = BK_API_NATIVE;
    c->srv->st.native_requests++;
    bk_native(c, t->path, t->plen, t->query, t->qlen);
}

/* The routes, tried in order; a request no row takes is for the SQS API.
 * A row matches its path exactly, or as a prefix ending at '/' (prefix),
 * for GET and HEAD only when get_only, or when its wants says so. */
static const struct route {
    const char *path;
    bool prefix, get_only;
    bool (*wants)(const struct bk_conn *c, const struct target *t);
    void (*run)(struct bk_conn *c, const struct target *t);
} routes[] = {
    {"/healthz", false, true, NULL, route_health},
    {"/metrics", false, true, NULL, route_metrics},
    {NULL, false, false, wants_topics, route_topics}, /* /v1/topics..., SNS requests, certificates */
    {"/v1", true, false, NULL, route_native},
};

static bool route_matches(const struct route *r, const struct bk_conn *c, const struct target *t)
{
    if (r->wants)
        return r->wants(c, t);
    size_t n = strlen(r->path);
    bool get = c->h.req.m == HTTP_M_GET || c->h.req.m == HTTP_M_HEAD;
    if (r->get_only && !get)
        return false;
    if (t->plen == n)
        return !memcmp(t->path, r->path, n);
    return r->prefix && t->plen > n && !memcmp(t->path, r->path, n) && t->path[n] == '/';
}

/* Path and query of the target (origin form; absolute form too). */
static void split_target(const struct http_request *h, struct target *out)
{
    const char *t = h->target;
    size_t tl = h->target_len, i = 0;
    if (tl >= 7 && fg_strieq(t, 7, "http://")) {
        i = 7;
        while (i < tl && t[i] != '/' && t[i] != '?')
            i++;
    }
    size_t q = i;
    while (q < tl && t[q] != '?')
        q++;
    out->path = q > i ? t + i : "/";
    out->plen = q > i ? q - i : 1;
    out->query = q < tl ? t + q + 1 : "";
    out->qlen = q < tl ? tl - q - 1 : 0;
}

void bk_dispatch(struct httpd_conn *hc)
{
    struct bk_conn *c = (struct bk_conn *)hc;
    struct bk_server *s = c->srv;
    c->head_only = c->h.req.m == HTTP_M_HEAD;
    bk_request_id(++s->req_seq, c->reqid);
    c->cors_allow = NULL;
    struct target t;
    split_target(&c->h.req, &t);
    if (!xsite_pass(c, t.path, t.plen))
        return;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (route_matches(&routes[i], c, &t)) {
            routes[i].run(c, &t);
            return;
        }
    }
    route_sqs(c, &t);
}
