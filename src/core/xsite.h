/* Refusing requests that a web browser was made to send: the checks every
 * floodgate HTTP control plane (the admin API) and the broker's APIs run
 * before a request does anything.
 *
 * A page open in a browser can reach 127.0.0.1 and any address the
 * machine reaches. It cannot read answers from another origin, but it can
 * send "simple" requests (GET, HEAD, and POST with a form or text/plain
 * body) without asking first, and it can make its own name resolve to
 * 127.0.0.1 after loading (DNS rebinding), after which its requests are
 * same-origin to the browser and their answers readable. The checks:
 *   - Host: a browser always sends the name it connected to. An attacker
 *     can only make it send a name the attacker controls, so a Host that is
 *     an IP literal, "localhost" (or a name under .localhost) or a name the
 *     operator listed is accepted, and any other name is refused. The port
 *     is not checked: a rebinding needs a name, and a forwarded port
 *     (a container's published port, an SSH tunnel) keeps working. A missing
 *     or empty Host (HTTP/1.0) is not a browser's.
 *   - Origin: browsers send it on every cross-origin request that is not a
 *     plain navigation or subresource GET, and on every POST. A request
 *     whose Origin is neither this server itself (same host and port as
 *     the Host header) nor an origin the operator allowed is foreign.
 *     "null" (sandboxed frames, file: pages, some redirects) is foreign.
 *     No Origin at all is what every SDK, curl and Prometheus send.
 *   - Sec-Fetch-Site: cross-site or same-site is foreign (same-site
 *     includes another port of the same host: a different origin). It is
 *     checked as well as Origin because it is also sent on GETs, which
 *     the SQS query API accepts as actions.
 *   - Content-Type: the admin APIs take JSON bodies only. A browser cannot
 *     send application/json cross-origin without a CORS preflight (which
 *     these servers never grant), so requiring it stops forms and
 *     text/plain bodies even from a browser that sends no Origin.
 * These functions are pure: they read the request's header list and the
 * policy and keep nothing, so any thread may call them. */
#ifndef FG_XSITE_H
#define FG_XSITE_H

#include "core/common.h"
#include "core/http1.h"

/* What a listener accepts, beyond IP literals and localhost. The strings
 * belong to the caller and must outlive every call. */
struct xsite_policy {
    char *const *hosts;   /* host names (no port), compared case-insensitively */
    size_t nhosts;
    char *const *origins; /* allowed foreign origins ("https://app.example:8443"),
                             exact; "*" allows any */
    size_t norigins;
};

enum xsite_verdict {
    XSITE_OK = 0,
    XSITE_BAD_HOST,        /* Host is a name this listener does not answer to */
    XSITE_FOREIGN_ORIGIN,  /* Origin names another site, not allowed */
    XSITE_CROSS_SITE,      /* Sec-Fetch-Site: cross-site or same-site */
    XSITE_NOT_JSON,        /* a body (or Content-Type) other than application/json */
};

/* Check flags. */
#define XSITE_CHECK_ORIGIN 0x1 /* refuse a foreign Origin or Sec-Fetch-Site */
#define XSITE_NEED_JSON 0x2    /* refuse a Content-Type other than application/json,
                                  and a body without one */

/* Runs the checks flags ask for, Host always, on a request's headers
 * (h[0..n)) whose body is body_len bytes. Returns the first failure or
 * XSITE_OK. */
enum xsite_verdict xsite_check(const struct xsite_policy *p, const struct http_header *h, size_t n,
                               size_t body_len, unsigned flags);

/* A short sentence for a refusal, for the error body and the log. */
const char *xsite_reason(enum xsite_verdict v);

/* True when the Host value host[0..len) is acceptable (see above). */
bool xsite_host_ok(const struct xsite_policy *p, const char *host, size_t len);

/* The entry of p->origins that allows origin[0..len): the equal one, or
 * "*"; NULL when none. */
const char *xsite_origin_listed(const struct xsite_policy *p, const char *origin, size_t len);

/* True when origin[0..len) is the origin the Host value names: same host
 * (case-insensitive) and same port, a missing port being the scheme's
 * default (80 for http, 443 for https). */
bool xsite_same_origin(const char *origin, size_t len, const char *host, size_t hlen);

/* True when the request carries "Authorization: Bearer <token>" with
 * exactly token (compared in time independent of where they differ). A
 * NULL token accepts every request. */
bool xsite_bearer_ok(const char *token, const struct http_header *h, size_t n);

/* Bounds the log lines refusals write, so that a page sending requests in
 * a loop cannot fill the disk: at most XSITE_LOG_BURST lines per
 * XSITE_LOG_WINDOW_MS. Owned by one thread (zero-initialised). */
#define XSITE_LOG_BURST 10
#define XSITE_LOG_WINDOW_MS 10000
struct xsite_loglimit {
    uint64_t window_start; /* ms */
    uint32_t lines;        /* logged in this window */
    uint32_t dropped;      /* not logged since the last logged line */
};
/* True when a refusal at now_ms may be logged; then *dropped is the
 * number of refusals not logged before it (to mention in the line). */
bool xsite_log_allowed(struct xsite_loglimit *l, uint64_t now_ms, uint32_t *dropped);

/* Checks a host name for an allowed-hosts list: letters, digits, '-',
 * '.', '_' only, 1..253 bytes, no port. Returns NULL or why not. */
const char *xsite_name_invalid(const char *name);

/* Checks an origin for an allowed-origins list: "*", or scheme://host
 * with an optional :port, http or https, nothing after. Returns NULL or
 * why not. */
const char *xsite_origin_invalid(const char *origin);

#endif
