/* The admin API framework: a small HTTP/1.1 server for control planes and
 * /metrics, one per floodgate server, on its own listener (loopback by
 * default) and its own thread and event loop, so that a busy data path
 * never delays a scrape or an operator's change, and the reverse.
 *
 * Servers register handlers by method and path: an exact path, or a prefix
 * written with a trailing '*' (the pattern "/servers/" plus '*' matches
 * "/servers/a" and "/servers/", not "/servers"). The most specific route for the method
 * wins: an exact path over a prefix, a longer prefix over a shorter one.
 * A path that some route matches but not with this method gets 405 with an
 * Allow header; any other path gets 404. HEAD runs the GET handler and
 * sends its headers only. Paths are matched as sent, not percent-decoded.
 *
 * The framework reads whole requests (heads up to 16 KiB, 431 above;
 * bodies, Content-Length or chunked, up to ADMIN_MAX_BODY, 413 above),
 * answers malformed ones with 400 and closes, keeps connections alive
 * (HTTP/1.1 by default, HTTP/1.0 on request), honours Connection: close
 * and answers Expect: 100-continue. Every error response is JSON:
 * {"error":"..."}.
 *
 * Before any handler runs, the framework refuses what a web browser could
 * have been made to send (core/xsite.h): a Host that is neither an IP
 * literal, localhost, nor a name given to admin_set_access() (403: DNS
 * rebinding); and, for every method but GET, HEAD and OPTIONS, a foreign
 * Origin or Sec-Fetch-Site (403) and a body that is not application/json
 * (415). With a token set, every request but GET/HEAD /health and
 * /healthz must carry "Authorization: Bearer TOKEN" (401 with
 * WWW-Authenticate otherwise). Refusals are logged.
 *
 * Thread context: handlers run on the admin thread, one at a time, while
 * the server's workers keep running. Anything a handler reads or changes
 * that workers also use must be safe for that: read counters with relaxed
 * atomics, and change shared configuration the way the rest of floodgate
 * does, by building a new immutable snapshot and swapping it in
 * atomically. A handler must not block for long: it holds up every other
 * admin request. admin_route() and admin_stop() may be called from any
 * thread (admin_stop() not from a handler). */
#ifndef FG_ADMIN_H
#define FG_ADMIN_H

#include "core/buf.h"
#include "core/common.h"
#include "core/http1.h"

#include <cjson/cJSON.h>

#define ADMIN_MAX_BODY (1u << 20) /* request bodies above this get 413 */

struct admin;

/* A request as a handler sees it. Every pointer is valid only during the
 * handler call. */
struct admin_req {
    enum http_method m;
    const char *method;        /* as sent, e.g. "GET" */
    size_t method_len;
    const char *path;          /* path of the target, without the query */
    size_t path_len;
    const char *query;         /* after '?', without it; "" when none */
    size_t query_len;
    const char *rest;          /* for a prefix route: the path after the prefix */
    size_t rest_len;
    const struct http_header *headers;
    size_t nheaders;
    const char *body;          /* decoded body, NUL-terminated; "" when none */
    size_t body_len;
    int minor;                 /* HTTP/1.minor */
};

/* The response a handler fills. It starts as 200, application/json, with
 * an empty body. */
struct admin_resp {
    int status;               /* 200..599 */
    const char *content_type; /* must outlive the call: a literal */
    struct buf headers;       /* extra header lines, see admin_resp_header() */
    struct buf body;
    bool close;               /* close the connection after this response */
};

typedef void (*admin_handler_cb)(const struct admin_req *req, struct admin_resp *resp, void *ud);

/* Binds addr ("127.0.0.1:9901", "[::1]:9901"; port 0 picks a free one)
 * and starts the admin thread. Returns the server, or NULL with *err set
 * (caller frees) when the address is bad or cannot be bound. The socket
 * is listening on return; routes may be added before requests arrive by
 * calling admin_route() right away (until then every path is 404). */
struct admin *admin_start(const char *addr, char **err);

/* Same, calling setup(a, ud) after binding and before the admin thread
 * serves anything, so routes registered there are in place for the very
 * first request (no 404 window after the port opens). */
struct admin *admin_start_with(const char *addr, void (*setup)(struct admin *, void *), void *ud,
                               char **err);

/* The port actually bound (the chosen one when addr had port 0). */
int admin_port(const struct admin *a);

/* Routes method (case-sensitive, e.g. "GET") and path (exact, or prefix
 * with a trailing '*') to cb, called with ud. Registering the same method
 * and path again replaces the handler; cb NULL removes the route. The
 * strings are copied. Any thread, at any time after admin_start(); takes
 * effect for the next request. */
void admin_route(struct admin *a, const char *method, const char *path, admin_handler_cb cb,
                 void *ud);

/* Sets the host names accepted in Host besides IP literals and localhost
 * (hosts[0..nhosts), names without ports) and the bearer token (NULL: no
 * token needed). Copies everything. Any thread, at any time (a reloaded
 * configuration); call it from admin_start_with()'s setup for it to hold
 * from the first request. */
void admin_set_access(struct admin *a, char *const *hosts, size_t nhosts, const char *token);

/* Stops the admin thread, closes the listener and every connection
 * (a request being answered is cut off), waits for the thread to exit and
 * frees everything. a may be NULL. Not from a handler. */
void admin_stop(struct admin *a);

/* ---- helpers for handlers ---- */

/* Adds "name: value" to the response head. Names must be tokens and
 * values free of CR and LF (checked with ASSERT); Content-Type,
 * Content-Length, Connection and Date are the framework's. */
void admin_resp_header(struct admin_resp *resp, const char *name, const char *value);

/* Sets status, application/json and the body to json printed compactly
 * plus a line feed. Takes ownership of json and deletes it. */
void admin_resp_json(struct admin_resp *resp, int status, cJSON *json);

/* Sets status and the body {"error":"<message>"}, with the message
 * formatted printf-style (truncated at 1 KiB) and escaped as JSON. */
void admin_resp_error(struct admin_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses the body as JSON. Returns a tree the caller deletes with
 * cJSON_Delete(), or NULL when the body is empty or not valid JSON. */
cJSON *admin_req_json(const struct admin_req *req);

/* Looks up name in the query string (k=v pairs joined by '&', with
 * percent-encoding and '+' for space) and copies its decoded value into
 * out, NUL-terminated. A bare "k" has the value "". Returns true when
 * found; false when absent, badly encoded, or longer than outlen - 1. */
bool admin_query_param(const struct admin_req *req, const char *name, char *out, size_t outlen);

/* False when any '%' in the query string is not followed by two hex
 * digits: a malformed query, which a caller refuses (400) rather than
 * reading as if the parameter were absent. */
bool admin_query_ok(const struct admin_req *req);

/* Percent-decodes one path segment s[0..len) into out (outlen bytes,
 * NUL-terminated; '+' stays '+' in a path). False when badly encoded, too
 * long or holding a NUL. */
bool admin_path_decode(const char *s, size_t len, char *out, size_t outlen);

#endif
