/* Tests for core/admin: a real admin server on an ephemeral loopback port,
 * driven over plain blocking sockets. Each test starts the server in the
 * suite's init and stops it in fini, so leak checking covers the whole
 * lifecycle. */
#include "core/admin.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct admin *adm;
static atomic_int handler_calls;

/* ---- handlers ---- */

static void h_hello(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    atomic_fetch_add(&handler_calls, 1);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "hello", (const char *)ud);
    admin_resp_json(resp, 200, o);
}

/* Echoes a JSON body back as {"got": <body>, "len": <bytes>}. */
static void h_echo(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    cJSON *in = admin_req_json(req);
    if (!in) {
        admin_resp_error(resp, 400, "body is not JSON (%zu bytes)", req->body_len);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "got", in);
    cJSON_AddNumberToObject(o, "len", (double)req->body_len);
    admin_resp_json(resp, 201, o);
}

/* Reports what a prefix route saw. */
static void h_servers(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    char name[64];
    cJSON *o = cJSON_CreateObject();
    char *rest = xstrndup(req->rest, req->rest_len);
    char *path = xstrndup(req->path, req->path_len);
    cJSON_AddStringToObject(o, "rest", rest);
    cJSON_AddStringToObject(o, "path", path);
    if (admin_query_param(req, "name", name, sizeof name))
        cJSON_AddStringToObject(o, "name", name);
    free(rest);
    free(path);
    admin_resp_header(resp, "X-Route", "servers");
    admin_resp_json(resp, 200, o);
}

static void h_drain(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    resp->status = 204;
}

static void h_metrics(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    resp->content_type = METRICS_CONTENT_TYPE;
    metrics_family(&resp->body, "floodgate_test_requests_total", "counter", "Requests.");
    metrics_sample_u64(&resp->body, "floodgate_test_requests_total", NULL,
                       (uint64_t)atomic_load(&handler_calls));
}

static void h_bye(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    resp->close = true;
    buf_append_str(&resp->body, "{}");
}

static void setup(void)
{
    char *err = NULL;
    adm = admin_start("127.0.0.1:0", &err);
    cr_assert(adm, "admin_start: %s", err ? err : "?");
    cr_assert_gt(admin_port(adm), 0);
    char *names[] = {"x"};
    admin_set_access(adm, names, 1, NULL);
    admin_route(adm, "GET", "/hello", h_hello, "world");
    admin_route(adm, "POST", "/echo", h_echo, NULL);
    admin_route(adm, "GET", "/servers/*", h_servers, NULL);
    admin_route(adm, "POST", "/servers/drain", h_drain, NULL);
    admin_route(adm, "GET", "/metrics", h_metrics, NULL);
    admin_route(adm, "GET", "/bye", h_bye, NULL);
}

static void teardown(void)
{
    admin_stop(adm);
    adm = NULL;
}

TestSuite(admin_http, .init = setup, .fini = teardown, .timeout = 30);

/* ---- a tiny blocking client ---- */

#define CLIENT_BUF (4u << 20) /* room for the largest response, a 1 MiB echo */

struct client {
    int fd;
    char *buf; /* CLIENT_BUF bytes */
    size_t len;
};

struct resp {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    char *body;      /* NUL-terminated, caller frees */
    size_t body_len;
};

static void client_open(struct client *c)
{
    c->len = 0;
    c->buf = xmalloc(CLIENT_BUF);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(c->fd, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)admin_port(adm))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s",
                 strerror(errno));
}

static void client_send(struct client *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void client_send_str(struct client *c, const char *s) { client_send(c, s, strlen(s)); }

/* Reads more into c->buf. Returns bytes read, 0 at EOF. */
static ssize_t client_fill(struct client *c)
{
    cr_assert_lt(c->len + 1, CLIENT_BUF);
    ssize_t n = recv(c->fd, c->buf + c->len, CLIENT_BUF - c->len - 1, 0);
    cr_assert_geq(n, 0, "recv: %s", strerror(errno));
    c->len += (size_t)n;
    return n;
}

static void client_drop(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Value of header name in r->head (case-insensitive), copied into out;
 * false when absent. */
static bool resp_header(const struct resp *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t l = (size_t)(e - v);
            cr_assert_lt(l, outlen);
            memcpy(out, v, l);
            out[l] = '\0';
            return true;
        }
    }
    return false;
}

/* Reads one response. head_only: a response to HEAD (no body whatever
 * Content-Length says). */
static void client_read(struct client *c, struct resp *r, bool head_only)
{
    char *end;
    c->buf[c->len] = '\0';
    while (!(end = strstr(c->buf, "\r\n\r\n"))) {
        cr_assert_gt(client_fill(c), 0, "EOF before a response head");
        c->buf[c->len] = '\0';
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    cr_assert_lt(hlen, sizeof r->head);
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    client_drop(c, hlen);
    cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1, "bad status line: %s", r->head);

    char cl[32];
    size_t blen = 0;
    if (!head_only && resp_header(r, "Content-Length", cl, sizeof cl))
        blen = strtoul(cl, NULL, 10);
    while (c->len < blen)
        cr_assert_gt(client_fill(c), 0, "EOF inside a response body");
    r->body = xstrndup(c->buf, blen);
    r->body_len = blen;
    client_drop(c, blen);
}

/* True when the server closed the connection (EOF with nothing more). */
static bool client_eof(struct client *c)
{
    if (c->len)
        return false;
    return client_fill(c) == 0;
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c->buf);
}

/* One request on a fresh connection; returns its response. */
static void roundtrip(const char *req, struct resp *r)
{
    struct client c;
    client_open(&c);
    client_send_str(&c, req);
    client_read(&c, r, false);
    client_close(&c);
}

/* ---- tests ---- */

Test(admin_http, get_json)
{
    struct resp r;
    roundtrip("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    char v[128];
    cr_expect(resp_header(&r, "Content-Type", v, sizeof v));
    cr_expect_str_eq(v, "application/json");
    cr_expect(resp_header(&r, "Date", v, sizeof v));
    cr_expect_str_eq(r.body, "{\"hello\":\"world\"}\n");
    free(r.body);
}

Test(admin_http, post_json_body)
{
    struct resp r;
    const char *body = "{\"server\":\"10.0.0.7:8080\",\"weight\":3}";
    char req[512];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    roundtrip(req, &r);
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, "{\"got\":{\"server\":\"10.0.0.7:8080\",\"weight\":3},\"len\":37}\n");
    free(r.body);

    /* Not JSON: the handler's own 400. */
    roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{x}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(r.body, "{\"error\":\"body is not JSON (3 bytes)\"}\n");
    free(r.body);
}

Test(admin_http, post_chunked_body)
{
    struct resp r;
    roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\n{\"a\":\r\n4;ext=1\r\n[1]}\r\n0\r\n\r\n",
              &r);
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, "{\"got\":{\"a\":[1]},\"len\":9}\n");
    free(r.body);
}

Test(admin_http, keep_alive_two_requests)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 200);
    char v[64];
    cr_expect_not(resp_header(&r, "Connection", v, sizeof v));
    free(r.body);

    client_send_str(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, "{\"got\":[],\"len\":2}\n");
    free(r.body);
    client_close(&c);
}

Test(admin_http, pipelined_requests_answered_in_order)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, "GET /servers/a HTTP/1.1\r\nHost: x\r\n\r\n"
                        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n7"
                        "GET /servers/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_str_eq(r.body, "{\"rest\":\"a\",\"path\":\"/servers/a\"}\n");
    free(r.body);
    client_read(&c, &r, false);
    cr_expect_str_eq(r.body, "{\"got\":7,\"len\":1}\n");
    free(r.body);
    client_read(&c, &r, false);
    cr_expect_str_eq(r.body, "{\"rest\":\"b\",\"path\":\"/servers/b\"}\n");
    free(r.body);
    cr_expect(client_eof(&c));
    client_close(&c);
}

Test(admin_http, connection_close_honoured)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 200);
    char v[64];
    cr_expect(resp_header(&r, "Connection", v, sizeof v));
    cr_expect_str_eq(v, "close");
    free(r.body);
    /* The request after "close" is not answered. */
    cr_expect(client_eof(&c));
    client_close(&c);
}

Test(admin_http, handler_can_close)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, "GET /bye HTTP/1.1\r\nHost: x\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{}");
    free(r.body);
    cr_expect(client_eof(&c));
    client_close(&c);
}

Test(admin_http, http10_closes_unless_keep_alive)
{
    struct client c;
    struct resp r;
    char v[64];
    client_open(&c);
    client_send_str(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 200);
    cr_expect(resp_header(&r, "Connection", v, sizeof v));
    cr_expect_str_eq(v, "keep-alive");
    free(r.body);
    client_send_str(&c, "GET /hello HTTP/1.0\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 200);
    free(r.body);
    cr_expect(client_eof(&c));
    client_close(&c);
}

Test(admin_http, not_found_404)
{
    struct resp r;
    roundtrip("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 404);
    cr_expect_str_eq(r.body, "{\"error\":\"not found\"}\n");
    free(r.body);
    /* A prefix route does not match its prefix without the slash. */
    roundtrip("GET /servers HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 404);
    free(r.body);
}

Test(admin_http, method_not_allowed_405)
{
    struct resp r;
    char v[128];
    roundtrip("DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 405);
    cr_expect(resp_header(&r, "Allow", v, sizeof v));
    cr_expect_str_eq(v, "GET, HEAD");
    cr_expect_str_eq(r.body, "{\"error\":\"method not allowed\"}\n");
    free(r.body);

    /* Both the exact and the prefix route match this path. */
    roundtrip("PUT /servers/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    cr_expect_eq(r.status, 405);
    cr_expect(resp_header(&r, "Allow", v, sizeof v));
    cr_expect_str_eq(v, "GET, POST, HEAD");
    free(r.body);
}

Test(admin_http, exact_route_beats_prefix)
{
    struct resp r;
    roundtrip("POST /servers/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    cr_expect_eq(r.status, 204);
    char v[64];
    cr_expect_not(resp_header(&r, "Content-Length", v, sizeof v));
    free(r.body);
    /* GET has only the prefix route. */
    roundtrip("GET /servers/drain HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    cr_expect(resp_header(&r, "X-Route", v, sizeof v));
    cr_expect_str_eq(v, "servers");
    cr_expect_str_eq(r.body, "{\"rest\":\"drain\",\"path\":\"/servers/drain\"}\n");
    free(r.body);
}

Test(admin_http, query_string_decoded)
{
    struct resp r;
    roundtrip("GET /servers/x?a=1&name=web%2D1+b%C3%A9&c HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"rest\":\"x\",\"path\":\"/servers/x\",\"name\":\"web-1 b\xc3\xa9\"}\n");
    free(r.body);
    /* Absolute-form target. */
    roundtrip("GET http://localhost:9901/servers/?name=z HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"rest\":\"\",\"path\":\"/servers/\",\"name\":\"z\"}\n");
    free(r.body);
}

Test(admin_http, head_runs_get_without_body)
{
    struct client c;
    struct resp r;
    char v[64];
    client_open(&c);
    client_send_str(&c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    client_read(&c, &r, true);
    cr_expect_eq(r.status, 200);
    cr_expect(resp_header(&r, "Content-Length", v, sizeof v));
    cr_expect_str_eq(v, "18");
    free(r.body);
    /* Nothing but the head was sent: the next response follows at once. */
    client_send_str(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    client_read(&c, &r, false);
    cr_expect_str_eq(r.body, "{\"hello\":\"world\"}\n");
    free(r.body);
    client_close(&c);
}

Test(admin_http, body_over_limit_413)
{
    struct client c;
    struct resp r;
    client_open(&c);
    char req[256];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %u\r\n\r\n", ADMIN_MAX_BODY + 1);
    client_send_str(&c, req);
    /* The answer comes before the body, which the server never reads. */
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 413);
    char v[64];
    cr_expect(resp_header(&r, "Connection", v, sizeof v));
    cr_expect_str_eq(v, "close");
    cr_expect_str_eq(r.body, "{\"error\":\"request body too large\"}\n");
    free(r.body);
    cr_expect(client_eof(&c));
    client_close(&c);
}

Test(admin_http, chunked_body_over_limit_413)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char chunk[65536 + 16];
    int hl = snprintf(chunk, sizeof chunk, "10000\r\n");
    memset(chunk + hl, 'a', 65536);
    memcpy(chunk + hl + 65536, "\r\n", 2);
    /* 17 chunks of 64 KiB: one more than the limit allows. */
    for (int i = 0; i < 17; i++)
        client_send(&c, chunk, (size_t)hl + 65536 + 2);
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 413);
    free(r.body);
    client_close(&c);
}

Test(admin_http, body_at_limit_accepted)
{
    struct client c;
    struct resp r;
    client_open(&c);
    char head[256];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %u\r\n\r\n",
             ADMIN_MAX_BODY);
    client_send_str(&c, head);
    /* A JSON string of exactly ADMIN_MAX_BODY bytes. */
    char *body = xmalloc(ADMIN_MAX_BODY);
    memset(body, 'b', ADMIN_MAX_BODY);
    body[0] = '"';
    body[ADMIN_MAX_BODY - 1] = '"';
    client_send(&c, body, ADMIN_MAX_BODY);
    free(body);
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 201);
    char want[64];
    snprintf(want, sizeof want, ",\"len\":%u}\n", ADMIN_MAX_BODY);
    cr_expect_eq(r.body_len, strlen("{\"got\":") + ADMIN_MAX_BODY + strlen(want));
    cr_expect_str_eq(r.body + r.body_len - strlen(want), want);
    free(r.body);
    client_close(&c);
}

Test(admin_http, expect_continue)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
                        "Expect: 100-continue\r\n\r\n");
    client_read(&c, &r, true);
    cr_expect_eq(r.status, 100);
    free(r.body);
    client_send_str(&c, "true");
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, "{\"got\":true,\"len\":4}\n");
    free(r.body);
    client_close(&c);
}

static void expect_error_and_close(const char *req, int status)
{
    struct client c;
    struct resp r;
    client_open(&c);
    client_send_str(&c, req);
    client_read(&c, &r, false);
    cr_expect_eq(r.status, status, "for %s", req);
    char v[64];
    cr_expect(resp_header(&r, "Connection", v, sizeof v));
    cr_expect_str_eq(v, "close");
    cr_expect_eq(r.body[0], '{');
    free(r.body);
    cr_expect(client_eof(&c));
    client_close(&c);
}

Test(admin_http, malformed_400)
{
    expect_error_and_close("GARBAGE\r\n\r\n", 400);
    expect_error_and_close("GET /hello HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400);
    expect_error_and_close("GET /hello HTTP/1.1\r\n\r\n", 400); /* no Host */
    expect_error_and_close("GET /hello HTTP/1.1\nHost: x\n\n", 400);
    expect_error_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\n"
                           "Content-Length: 2\r\n\r\nab",
                           400);
    expect_error_and_close("GET hello HTTP/1.1\r\nHost: x\r\n\r\n", 400); /* bad target */
    expect_error_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "zz\r\n",
                           400);
}

Test(admin_http, other_protocol_errors)
{
    expect_error_and_close("GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_error_and_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked"
                           "\r\n\r\n",
                           501);
    /* A head over 16 KiB. */
    size_t n = 20000;
    char *big = xmalloc(n + 64);
    int k = snprintf(big, n + 64, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + k, 'a', n);
    strcpy(big + k + n, "\r\n\r\n");
    expect_error_and_close(big, 431);
    free(big);
}

Test(admin_http, metrics_endpoint)
{
    struct resp r;
    roundtrip("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    free(r.body);
    roundtrip("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    char v[128];
    cr_expect(resp_header(&r, "Content-Type", v, sizeof v));
    cr_expect_str_eq(v, METRICS_CONTENT_TYPE);
    cr_expect_str_eq(r.body, "# HELP floodgate_test_requests_total Requests.\n"
                             "# TYPE floodgate_test_requests_total counter\n"
                             "floodgate_test_requests_total 1\n");
    free(r.body);
}

Test(admin_http, routes_added_and_removed_while_running)
{
    struct resp r;
    roundtrip("GET /late HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 404);
    free(r.body);
    admin_route(adm, "GET", "/late", h_hello, "late");
    roundtrip("GET /late HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"hello\":\"late\"}\n");
    free(r.body);
    admin_route(adm, "GET", "/late", h_hello, "again"); /* replaces */
    roundtrip("GET /late HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_str_eq(r.body, "{\"hello\":\"again\"}\n");
    free(r.body);
    admin_route(adm, "GET", "/late", NULL, NULL); /* removes */
    roundtrip("GET /late HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    cr_expect_eq(r.status, 404);
    free(r.body);
}

Test(admin_http, request_split_across_writes)
{
    struct client c;
    struct resp r;
    client_open(&c);
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[1,2,3]";
    for (const char *p = req; *p; p++) {
        client_send(&c, p, 1);
        if ((p - req) % 9 == 0)
            usleep(1000);
    }
    client_read(&c, &r, false);
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, "{\"got\":[1,2,3],\"len\":7}\n");
    free(r.body);
    client_close(&c);
}

Test(admin_http, many_connections_then_stop)
{
    /* Idle keep-alive connections and a half-sent request are all still
     * open when fini stops the server: it must close and free them. */
    struct client c[8];
    for (int i = 0; i < 8; i++) {
        struct resp r;
        client_open(&c[i]);
        client_send_str(&c[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        client_read(&c[i], &r, false);
        cr_expect_eq(r.status, 200);
        free(r.body);
    }
    client_send_str(&c[0], "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    usleep(20000);
    admin_stop(adm);
    adm = NULL;
    for (int i = 0; i < 8; i++) {
        cr_expect(client_eof(&c[i]));
        client_close(&c[i]);
    }
}

/* ---- start and stop, without the fixture ---- */

Test(admin_life, bad_address)
{
    char *err = NULL;
    struct admin *a = admin_start("127.0.0.1:notaport", &err);
    cr_expect_null(a);
    cr_expect_not_null(err);
    free(err);
    err = NULL;
    a = admin_start("127.0.0.1:99999", &err);
    cr_expect_null(a);
    free(err);
}

Test(admin_life, port_in_use)
{
    char *err = NULL;
    struct admin *a = admin_start("127.0.0.1:0", &err);
    cr_assert_not_null(a);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", admin_port(a));
    struct admin *b = admin_start(addr, &err);
    cr_expect_null(b);
    cr_expect_not_null(err);
    cr_expect(strstr(err, "cannot listen") != NULL, "%s", err);
    free(err);
    admin_stop(a);
}

Test(admin_life, start_stop_repeatedly)
{
    admin_stop(NULL);
    for (int i = 0; i < 20; i++) {
        char *err = NULL;
        struct admin *a = admin_start("127.0.0.1:0", &err);
        cr_assert_not_null(a);
        admin_route(a, "GET", "/x", h_hello, "x");
        admin_stop(a);
    }
}

/* ---- requests a browser could have been made to send ---- */

Test(admin_http, cross_site_requests_refused)
{
    struct resp r;
    /* The forged request: text/plain from a foreign page, foreign Host. */
    roundtrip("POST /echo HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
              "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
              &r);
    cr_expect_eq(r.status, 403);
    cr_expect(strstr(r.body, "\"error\"") != NULL);
    free(r.body);
    roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n"
              "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
              &r);
    cr_expect_eq(r.status, 403);
    free(r.body);
    roundtrip("POST /servers/drain HTTP/1.1\r\nHost: x\r\nSec-Fetch-Site: same-site\r\nContent-Length: 0\r\n\r\n",
              &r);
    cr_expect_eq(r.status, 403);
    free(r.body);
    roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", &r);
    cr_expect_eq(r.status, 415);
    free(r.body);
    roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", &r);
    cr_expect_eq(r.status, 415);
    free(r.body);
    /* A rebinding page reading: refused on its Host. */
    roundtrip("GET /hello HTTP/1.1\r\nHost: evil.example:9901\r\n\r\n", &r);
    cr_expect_eq(r.status, 403);
    free(r.body);
    /* Reads from a foreign origin are not refused (the browser keeps the
     * answer from the page), nor are same-origin changes. */
    roundtrip("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    free(r.body);
    roundtrip("POST /echo HTTP/1.1\r\nHost: x:9901\r\nOrigin: http://x:9901\r\nSec-Fetch-Site: same-origin\r\n"
              "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
              &r);
    cr_expect_eq(r.status, 201);
    free(r.body);
}

Test(admin_http, bearer_token)
{
    char *none[] = {NULL};
    admin_set_access(adm, none, 0, "t0ken");
    struct resp r;
    roundtrip("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n", &r);
    cr_expect_eq(r.status, 401);
    char v[128];
    cr_expect(resp_header(&r, "WWW-Authenticate", v, sizeof v));
    cr_expect(strncmp(v, "Bearer", 6) == 0);
    free(r.body);
    roundtrip("GET /hello HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer wrong\r\n\r\n", &r);
    cr_expect_eq(r.status, 401);
    free(r.body);
    roundtrip("GET /hello HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer t0ken\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    free(r.body);
    /* The names set before are gone with the new settings. */
    roundtrip("GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n\r\n", &r);
    cr_expect_eq(r.status, 403);
    free(r.body);
    /* A liveness probe needs no token. */
    admin_route(adm, "GET", "/healthz", h_hello, "ok");
    roundtrip("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    free(r.body);
    admin_set_access(adm, none, 0, NULL);
    roundtrip("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n", &r);
    cr_expect_eq(r.status, 200);
    free(r.body);
}
