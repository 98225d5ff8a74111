/* Implementation of admin.h: routes, access checks and the thread, on
 * top of the HTTP/1 connection layer (core/httpd.h), which reads whole
 * requests with the limits admin.h lists, keeps connections alive,
 * writes, lingers on close and frees dead connections before each poll.
 * A complete request is answered at once, in order, never held.
 *
 * The route table is the only state shared with other threads; a mutex
 * guards it, held only to copy out the chosen handler, never across a
 * call. admin_stop() wakes the loop with ev_async_send() and joins the
 * thread, which closes everything on its way out. */
#include "core/admin.h"

#include "core/ev.h"
#include "core/httpd.h"
#include "core/log.h"
#include "core/net.h"
#include "core/strutil.h"
#include "core/xsite.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The connection layer's limits for the admin listener. */
static const struct httpd_limits admin_limits = {
    .max_conns = 256,          /* more are accepted and closed at once */
    .max_head = 16u * 1024,    /* request head limit: 431 above */
    .max_headers = 64,
    .max_body = ADMIN_MAX_BODY,
    .max_trailer = 4096u,      /* chunked trailer section limit */
    .header_ms = 10000,        /* partial request, no progress */
    .body_ms = 10000,
    .idle_ms = 60000,          /* keep-alive connection with nothing pending */
    .write_ms = 10000,         /* unsent response, no progress */
    .linger_ms = 2000,         /* draining the peer after our last response */
    .read_chunk = 16u * 1024,  /* bytes asked of each read(2) */
    .in_max = 64u * 1024,      /* stop reading while the input holds this much */
    .held_in_max = 64u * 1024,
    .out_high = 256u * 1024,   /* stop answering while the output holds this much */
};

struct admin_route {
    char *method;
    char *path;       /* without the trailing '*' of a prefix */
    size_t path_len;
    bool prefix;
    admin_handler_cb cb;
    void *ud;
};

enum conn_state {
    CS_HEAD,   /* waiting for a complete request head */
    CS_BODY,   /* head parsed, collecting the body */
    CS_LINGER, /* write side shut down, discarding input until EOF */
};

struct admin {
    pthread_t thread;
    struct ev_loop *loop;
    struct httpd *httpd;            /* listener and connections (admin thread only) */
    int port;
    atomic_bool stopping;
    pthread_mutex_t lock;           /* guards routes..caproutes, hosts..token */
    struct admin_route *routes;
    size_t nroutes, caproutes;
    char **hosts;                   /* names accepted in Host (admin_set_access) */
    size_t nhosts;
    char *token;                    /* bearer token every request but health needs; NULL: none */
    struct xsite_loglimit refusals; /* log lines for refused requests (admin thread only) */
};

/* ---- routes ---- */

void admin_route(struct admin *a, const char *method, const char *path, admin_handler_cb cb,
                 void *ud)
{
    size_t plen = strlen(path);
    bool prefix = plen > 0 && path[plen - 1] == '*';
    if (prefix)
        plen--;
    ASSERT(*method);
    pthread_mutex_lock(&a->lock);
    size_t i;
    for (i = 0; i < a->nroutes; i++) {
        struct admin_route *r = &a->routes[i];
        if (r->prefix == prefix && r->path_len == plen && memcmp(r->path, path, plen) == 0 &&
            strcmp(r->method, method) == 0)
            break;
    }
    if (i < a->nroutes) {
        if (cb) {
            a->routes[i].cb = cb;
            a->routes[i].ud = ud;
        } else {
            free(a->routes[i].method);
            free(a->routes[i].path);
            a->routes[i] = a->routes[--a->nroutes];
        }
    } else if (cb) {
        if (a->nroutes == a->caproutes) {
            a->caproutes = a->caproutes ? a->caproutes * 2 : 16;
            a->routes = xrealloc(a->routes, a->caproutes * sizeof *a->routes);
        }
        struct admin_route *r = &a->routes[a->nroutes++];
        r->method = xstrdup(method);
        r->path = xstrndup(path, plen);
        r->path_len = plen;
        r->prefix = prefix;
        r->cb = cb;
        r->ud = ud;
    }
    pthread_mutex_unlock(&a->lock);
}

static bool route_matches_path(const struct admin_route *r, const char *path, size_t len)
{
    if (r->prefix)
        return len >= r->path_len && memcmp(r->path, path, r->path_len) == 0;
    return len == r->path_len && memcmp(r->path, path, len) == 0;
}

/* Orders matching routes: any exact match beats any prefix; among
 * prefixes the longer wins. */
static bool route_better(const struct admin_route *r, const struct admin_route *than)
{
    if (!than)
        return true;
    if (r->prefix != than->prefix)
        return !r->prefix;
    return r->path_len > than->path_len;
}

static bool method_is(const struct admin_route *r, const char *m, size_t len)
{
    return strlen(r->method) == len && memcmp(r->method, m, len) == 0;
}

/* A route chosen for a request, copied out of the table. */
struct route_hit {
    admin_handler_cb cb;
    void *ud;
    size_t prefix_len; /* path bytes matched before the handler's rest */
};

/* Finds the handler for method + path. Returns 200 with *out filled, 405
 * with the allowed methods appended to allow, or 404. HEAD falls back to
 * GET. Any thread; takes a->lock. */

static int route_find(struct admin *a, const char *m, size_t mlen, const char *path, size_t plen,
                      struct route_hit *out, struct buf *allow)
{
    const struct admin_route *best = NULL, *best_get = NULL;
    bool any = false;
    bool is_head = mlen == 4 && memcmp(m, "HEAD", 4) == 0;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nroutes; i++) {
        const struct admin_route *r = &a->routes[i];
        if (!route_matches_path(r, path, plen))
            continue;
        any = true;
        if (method_is(r, m, mlen) && route_better(r, best))
            best = r;
        if (is_head && method_is(r, "GET", 3) && route_better(r, best_get))
            best_get = r;
    }
    if (!best)
        best = best_get;
    int status = best ? 200 : any ? 405 : 404;
    if (best) {
        out->cb = best->cb;
        out->ud = best->ud;
        out->prefix_len = best->prefix ? best->path_len : plen;
    } else if (any) {
        /* Allow: each method once, in registration order, plus HEAD
         * wherever GET is allowed. */
        bool get = false, head = false;
        for (size_t i = 0; i < a->nroutes; i++) {
            const struct admin_route *r = &a->routes[i];
            if (!route_matches_path(r, path, plen))
                continue;
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = route_matches_path(&a->routes[j], path, plen) &&
                       strcmp(a->routes[j].method, r->method) == 0;
            if (seen)
                continue;
            get |= strcmp(r->method, "GET") == 0;
            head |= strcmp(r->method, "HEAD") == 0;
            if (buf_len(allow))
                buf_append(allow, ", ", 2);
            buf_append_str(allow, r->method);
        }
        if (get && !head)
            buf_append_str(allow, ", HEAD");
    }
    pthread_mutex_unlock(&a->lock);
    return status;
}

/* ---- responses ---- */

/* Appends a complete response to c->out. head_only: HEAD, headers as for
 * GET but no body. Connection: close when the connection is to close; an
 * HTTP/1.0 client that asked to keep it gets that confirmed. */
static void write_response(struct httpd_conn *c, const struct admin_resp *resp, bool head_only)
{
    ASSERT(resp->status >= 200 && resp->status <= 599);
    struct buf *o = &c->out;
    bool no_body = resp->status == 204 || resp->status == 304;
    buf_printf(o, "HTTP/1.1 %d %s\r\nDate: %s\r\n", resp->status, http_reason(resp->status),
               httpd_date(c->srv));
    if (!no_body) {
        buf_printf(o, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                   resp->content_type ? resp->content_type : "application/json",
                   buf_len(&resp->body));
    }
    if (!c->keep_alive)
        buf_append_str(o, "Connection: close\r\n");
    else if (c->req.minor == 0)
        buf_append_str(o, "Connection: keep-alive\r\n");
    buf_append(o, buf_rptr(&resp->headers), buf_len(&resp->headers));
    buf_append(o, "\r\n", 2);
    if (!no_body && !head_only)
        buf_append(o, buf_rptr(&resp->body), buf_len(&resp->body));
}

static void resp_init(struct admin_resp *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
    buf_init(&resp->headers);
    buf_init(&resp->body);
    resp->close = false;
}

static void resp_free(struct admin_resp *resp)
{
    buf_free(&resp->headers);
    buf_free(&resp->body);
}

/* The connection layer's error answers (bad framing, limits, timeouts),
 * and a bad request target: a JSON error, then the connection closes. */
static void conn_error(struct httpd_conn *c, int status, const char *msg)
{
    struct admin_resp resp;
    resp_init(&resp);
    admin_resp_error(&resp, status, "%s", msg);
    c->keep_alive = false;
    write_response(c, &resp, false);
    resp_free(&resp);
}


/* ---- requests ---- */

/* Splits the request target into path and query. Origin form
 * ("/a?b") is the norm; absolute form ("http://host/a?b") is accepted as
 * RFC 9112 3.2.2 requires of servers, and the asterisk form is passed on
 * as the path "*". Returns false for anything else. */
static bool split_target(const char *t, size_t len, struct admin_req *r)
{
    size_t i = 0;
    if (len == 1 && t[0] == '*') { /* asterisk form (OPTIONS *): no route has it */
        r->path = t;
        r->path_len = 1;
        r->query = "";
        r->query_len = 0;
        return true;
    }
    if (len >= 7 && fg_strieq(t, 7, "http://"))
        i = 7;
    else if (len >= 8 && fg_strieq(t, 8, "https://"))
        i = 8;
    if (i) {
        while (i < len && t[i] != '/' && t[i] != '?')
            i++;
    } else if (len == 0 || t[0] != '/') {
        return false;
    }
    size_t q = i;
    while (q < len && t[q] != '?')
        q++;
    if (q == i) {
        r->path = "/";
        r->path_len = 1;
    } else {
        r->path = t + i;
        r->path_len = q - i;
    }
    if (q < len) {
        r->query = t + q + 1;
        r->query_len = len - q - 1;
    } else {
        r->query = "";
        r->query_len = 0;
    }
    return true;
}

/* The liveness probes stay open without a token: load balancers and
 * orchestrators probe them without credentials, and they tell nothing. */
static bool is_probe(const struct admin_req *r)
{
    return (r->m == HTTP_M_GET || r->m == HTTP_M_HEAD) &&
           (fg_strieq(r->path, r->path_len, "/health") || fg_strieq(r->path, r->path_len, "/healthz"));
}

/* Refuses what a browser could have been made to send (core/xsite.h) and,
 * with a token configured, what lacks it. Every request is checked for
 * its Host; requests that may change something (any method but GET, HEAD
 * and OPTIONS, which no handler here takes) also for Origin,
 * Sec-Fetch-Site and a JSON body. Returns false with the refusal in
 * resp. */
static bool access_ok(struct admin *a, const struct admin_req *r, struct admin_resp *resp)
{
    bool safe = r->m == HTTP_M_GET || r->m == HTTP_M_HEAD || r->m == HTTP_M_OPTIONS;
    pthread_mutex_lock(&a->lock);
    struct xsite_policy pol = {a->hosts, a->nhosts, NULL, 0};
    enum xsite_verdict v = xsite_check(&pol, r->headers, r->nheaders, r->body_len,
                                       safe ? 0 : XSITE_CHECK_ORIGIN | XSITE_NEED_JSON);
    bool authed = v != XSITE_OK || is_probe(r) || xsite_bearer_ok(a->token, r->headers, r->nheaders);
    pthread_mutex_unlock(&a->lock);
    uint32_t dropped;
    if (v != XSITE_OK && xsite_log_allowed(&a->refusals, ev_clock_ns() / 1000000, &dropped)) {
        char more[48] = "";
        if (dropped)
            snprintf(more, sizeof more, " (and %u more not logged)", dropped);
        const struct http_header *host = http_find_header(r->headers, r->nheaders, "Host");
        const struct http_header *origin = http_find_header(r->headers, r->nheaders, "Origin");
        log_warn("admin: refused %.*s %.*s (Host '%.*s', Origin '%.*s'): %s%s", (int)r->method_len,
                 r->method, (int)FG_MIN(r->path_len, 200), r->path, host ? (int)FG_MIN(host->value_len, 200) : 0,
                 host ? host->value : "", origin ? (int)FG_MIN(origin->value_len, 200) : 0,
                 origin ? origin->value : "", xsite_reason(v), more);
    }
    if (v != XSITE_OK) {
        admin_resp_error(resp, v == XSITE_NOT_JSON ? 415 : 403, "%s", xsite_reason(v));
        return false;
    }
    if (!authed) {
        admin_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"floodgate admin\"");
        admin_resp_error(resp, 401, "missing or wrong bearer token (Authorization: Bearer TOKEN)");
        return false;
    }
    return true;
}


/* Runs the route for r and fills resp (hooks.on_request's core). */
static void route_request(struct admin *a, struct admin_req *r, struct admin_resp *resp)
{
    struct route_hit hit;
    struct buf allow;
    buf_init(&allow);
    int st = access_ok(a, r, resp) ? route_find(a, r->method, r->method_len, r->path, r->path_len, &hit, &allow)
                                   : 0;
    if (st == 0) {
        /* refused: resp holds the answer */
    } else if (st == 200) {
        r->rest = r->path + hit.prefix_len;
        r->rest_len = r->path_len - hit.prefix_len;
        hit.cb(r, resp, hit.ud);
    } else if (st == 405) {
        buf_append(&allow, "", 1);
        admin_resp_header(resp, "Allow", buf_rptr(&allow));
        admin_resp_error(resp, 405, "method not allowed");
    } else {
        admin_resp_error(resp, 404, "not found");
    }
    buf_free(&allow);
}

/* Runs the handler for the complete request in c->req / c->body and
 * appends its response to c->out. */
static void on_request(struct httpd_conn *c)
{
    struct admin *a = httpd_ud(c->srv);
    const struct http_request *h = &c->req;
    struct admin_req r;
    memset(&r, 0, sizeof r);
    r.m = h->m;
    r.method = h->method;
    r.method_len = h->method_len;
    r.headers = h->headers;
    r.nheaders = h->nheaders;
    r.minor = h->minor;
    r.body = buf_rptr(&c->body); /* NUL-terminated by the layer; "" when empty */
    r.body_len = buf_len(&c->body);
    if (!split_target(h->target, h->target_len, &r)) {
        httpd_fail(c, 400, "bad request target");
        return;
    }
    if (atomic_load_explicit(&a->stopping, memory_order_relaxed))
        c->keep_alive = false;
    struct admin_resp resp;
    resp_init(&resp);
    route_request(a, &r, &resp);
    if (resp.close)
        c->keep_alive = false;
    write_response(c, &resp, h->m == HTTP_M_HEAD);
    resp_free(&resp);
}

/* ---- the thread ---- */

static void wake_cb(struct ev_loop *loop, void *ud)
{
    struct admin *a = ud;
    if (atomic_load(&a->stopping))
        ev_break(loop);
}

static void free_dead(struct ev_loop *loop, void *ud)
{
    FG_UNUSED(loop);
    httpd_free_dead(ud);
}

static void *admin_main(void *arg)
{
    struct admin *a = arg;
    snprintf(log_thread_name, sizeof log_thread_name, "admin");
    pthread_setname_np(pthread_self(), "fg-admin");
    int rc = ev_run(a->loop);
    if (rc != 0)
        log_error("admin: event loop failed: %s", strerror(-rc));
    httpd_free(a->httpd);
    ev_loop_free(a->loop);
    return NULL;
}

struct admin *admin_start(const char *addr, char **err)
{
    return admin_start_with(addr, NULL, NULL, err);
}

/* Starts the thread with every signal blocked, so that signals meant for
 * the process (SIGTERM, SIGHUP) go to the threads that handle them. */
static int start_thread(struct admin *a)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = -pthread_create(&a->thread, NULL, admin_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

struct admin *admin_start_with(const char *addr, void (*setup)(struct admin *, void *), void *ud,
                               char **err)
{
    struct net_addr na, bound;
    if (net_parse_addr(addr, &na, err) != 0)
        return NULL;
    struct ev_loop *loop = ev_loop_new();
    if (!loop) {
        *err = xasprintf("admin: cannot create an event loop");
        return NULL;
    }
    struct admin *a = xcalloc(1, sizeof *a);
    static const struct httpd_hooks hooks = {
        .conn_size = sizeof(struct httpd_conn), .on_request = on_request, .on_error = conn_error};
    a->loop = loop;
    a->httpd = httpd_new(loop, &admin_limits, &hooks, a);
    atomic_init(&a->stopping, false);
    pthread_mutex_init(&a->lock, NULL);
    int rc = httpd_listen(a->httpd, &na, 128, &bound);
    if (rc != 0) {
        *err = xasprintf("admin: cannot listen on %s: %s", addr, strerror(-rc));
    } else {
        a->port = net_addr_port(&bound);
        ev_set_before_poll(loop, free_dead, a->httpd);
        ev_set_async(loop, wake_cb, a);
        if (setup)
            setup(a, ud); /* routes in place before the first request is read */
        rc = start_thread(a);
        if (rc != 0)
            *err = xasprintf("admin: cannot start: %s", strerror(-rc));
    }
    if (rc != 0) {
        httpd_free(a->httpd);
        ev_loop_free(loop);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
    }
    return a;
}


int admin_port(const struct admin *a) { return a->port; }

/* Frees the access settings; the caller holds a->lock (or is the only
 * user left). */
static void free_access(struct admin *a)
{
    for (size_t i = 0; i < a->nhosts; i++)
        free(a->hosts[i]);
    free(a->hosts);
    a->hosts = NULL;
    a->nhosts = 0;
    if (a->token)
        explicit_bzero(a->token, strlen(a->token));
    free(a->token);
    a->token = NULL;
}

void admin_stop(struct admin *a)
{
    if (!a)
        return;
    ASSERT(!pthread_equal(pthread_self(), a->thread));
    atomic_store(&a->stopping, true);
    ev_async_send(a->loop);
    pthread_join(a->thread, NULL);
    for (size_t i = 0; i < a->nroutes; i++) {
        free(a->routes[i].method);
        free(a->routes[i].path);
    }
    free(a->routes);
    free_access(a);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void admin_set_access(struct admin *a, char *const *hosts, size_t nhosts, const char *token)
{
    pthread_mutex_lock(&a->lock);
    free_access(a);
    a->hosts = nhosts ? xcalloc(nhosts, sizeof *a->hosts) : NULL;
    for (size_t i = 0; i < nhosts; i++)
        a->hosts[i] = xstrdup(hosts[i]);
    a->nhosts = nhosts;
    a->token = token ? xstrdup(token) : NULL;
    pthread_mutex_unlock(&a->lock);
}

/* ---- helpers for handlers ---- */

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

void admin_resp_header(struct admin_resp *resp, const char *name, const char *value)
{
    ASSERT(*name);
    for (const char *p = name; *p; p++)
        ASSERT(is_tchar((unsigned char)*p));
    ASSERT(!strpbrk(value, "\r\n"));
    buf_printf(&resp->headers, "%s: %s\r\n", name, value);
}

void admin_resp_json(struct admin_resp *resp, int status, cJSON *json)
{
    char *s = cJSON_PrintUnformatted(json);
    ASSERT(s != NULL); /* fails only when out of memory */
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    buf_append_str(&resp->body, s);
    buf_append(&resp->body, "\n", 1);
    cJSON_free(s);
    cJSON_Delete(json);
}

void admin_resp_error(struct admin_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    ASSERT(o && cJSON_AddStringToObject(o, "error", msg));
    admin_resp_json(resp, status, o);
}

cJSON *admin_req_json(const struct admin_req *req)
{
    if (!req->body_len)
        return NULL;
    return cJSON_ParseWithLength(req->body, req->body_len);
}

/* Decodes s[0..len) (percent-encoding, '+' as space) into out. Returns
 * the decoded length, or -1 when badly encoded or over outlen bytes. */
static ssize_t query_decode(const char *s, size_t len, char *out, size_t outlen)
{
    return pct_decode(s, len, out, outlen, PCT_PLUS_SPACE);
}

bool admin_query_param(const struct admin_req *req, const char *name, char *out, size_t outlen)
{
    ASSERT(outlen > 0);
    const char *q = req->query, *end = req->query + req->query_len;
    size_t nlen = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        char key[256];
        ssize_t kl = query_decode(q, (size_t)(ke - q), key, sizeof key);
        if (kl == (ssize_t)nlen && memcmp(key, name, nlen) == 0) {
            ssize_t vl = eq ? query_decode(eq + 1, (size_t)(pe - eq - 1), out, outlen - 1) : 0;
            if (vl < 0)
                return false;
            out[vl] = '\0';
            return true;
        }
        q = pe + (amp ? 1 : 0);
    }
    return false;
}

bool admin_query_ok(const struct admin_req *req)
{
    const char *q = req->query;
    size_t n = req->query_len;
    for (size_t i = 0; i < n; i++) {
        if (q[i] != '%')
            continue;
        if (i + 2 >= n || hex_val(q[i + 1]) < 0 || hex_val(q[i + 2]) < 0)
            return false;
        i += 2;
    }
    return true;
}

bool admin_path_decode(const char *s, size_t len, char *out, size_t outlen)
{
    /* outlen - 1: room for the NUL. '+' stays itself in a path. */
    ssize_t o = outlen ? pct_decode(s, len, out, outlen - 1, PCT_NO_NUL) : -1;
    if (o < 0)
        return false;
    out[o] = '\0';
    return true;
}
