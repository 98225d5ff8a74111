/* What echo answers. echo__route() looks at a parsed request head once,
 * while its views into the input are still valid, and records everything
 * the response needs in the connection (status, where the body comes from,
 * a copy of the few request bytes the body repeats). echo__reply() later
 * formats the response into an output buffer with plain appends: no
 * allocation on the common path, since the stash and the output scratch
 * keep their storage between requests.
 *
 * Endpoints (the path is the target up to '?'):
 *   /health      --health-status, body "ok\n" or "fail\n"; no latency, no errors;
 *                with --max-concurrency, X-Echo-Busy and X-Echo-Queued
 *   /headers     200, the request head exactly as received
 *   /status/NNN  status NNN (200..599), body "NNN Reason\n"
 *   /sink        POST/PUT: 200, body the request payload byte count
 *   anything     200, --size bytes, or "NAME METHOD TARGET\n"
 * --error-rate turns that fraction of non-/health requests into 500. */
#include "echo/echo.h"
#include "core/strutil.h"

#include <stdio.h>
#include <string.h>

static bool path_is(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static void put(struct buf *b, const char *s, size_t n) { buf_append(b, s, n); }
#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

/* Body "NNN Reason\n" into the stash. */
static void stash_status_text(struct echo_conn *c, int status)
{
    const char *r = http_reason(status);
    buf_append_u64(&c->stash, (uint64_t)status);
    PUT_LIT(&c->stash, " ");
    put(&c->stash, r, strlen(r));
    PUT_LIT(&c->stash, "\n");
}

/* Parses "/status/NNN" (NNN in 200..599); 0 when path is something else. */
static int status_from_path(const char *p, size_t n)
{
    static const char prefix[] = "/status/";
    size_t pl = sizeof prefix - 1;
    if (n != pl + 3 || memcmp(p, prefix, pl) != 0)
        return 0;
    int v = 0;
    for (size_t i = pl; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 200 && v <= 599 ? v : 0;
}

static bool roll_error(struct echo_conn *c)
{
    double rate = c->w->cfg->error_rate;
    if (rate <= 0)
        return false;
    double u = (double)(echo__rand(c->w) >> 11) * 0x1p-53; /* uniform [0,1) */
    return u < rate;
}

/* See echo.h. Runs on the connection's thread while req's views are
 * valid; copies what it needs into c->stash. */
void echo__route(struct echo_conn *c, const struct http_request *req, const char *head,
                 size_t head_len)
{
    const struct echo_config *cfg = c->w->cfg;

    /* Keep-alive is httpd's (c->h.keep_alive), and so is the body's
     * framing; the body's bytes were counted into c->received. */
    c->minor = (uint8_t)req->minor;
    c->head_only = req->m == HTTP_M_HEAD;
    enum http_body bm = http_request_body(req);
    c->has_body = bm == HTTP_BODY_LENGTH || bm == HTTP_BODY_CHUNKED;

    const char *path = req->target;
    size_t plen = req->target_len;
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);

    buf_reset(&c->stash);
    c->src = ECHO_SRC_STASH;
    c->quick = false;
    c->load_hdrs = false;
    if (path_is(path, plen, "/health")) {
        c->quick = true;
        c->load_hdrs = cfg->max_concurrency > 0;
        c->status = cfg->health_status;
        if (c->status >= 200 && c->status < 300)
            PUT_LIT(&c->stash, "ok\n");
        else
            PUT_LIT(&c->stash, "fail\n");
        return;
    }
    if (roll_error(c)) {
        c->status = 500;
        stash_status_text(c, 500);
        return;
    }
    int st;
    c->status = 200;
    if (path_is(path, plen, "/headers")) {
        /* Leading empty lines are not part of the message. */
        while (head_len >= 2 && head[0] == '\r' && head[1] == '\n') {
            head += 2;
            head_len -= 2;
        }
        put(&c->stash, head, head_len);
    } else if ((st = status_from_path(path, plen)) != 0) {
        c->status = st;
        stash_status_text(c, st);
    } else if (path_is(path, plen, "/sink") && (req->m == HTTP_M_POST || req->m == HTTP_M_PUT)) {
        c->src = ECHO_SRC_SINK;
    } else if (cfg->body_size >= 0) {
        c->src = ECHO_SRC_SIZED;
    } else {
        put(&c->stash, cfg->name, cfg->name_len);
        PUT_LIT(&c->stash, " ");
        put(&c->stash, req->method, req->method_len);
        PUT_LIT(&c->stash, " ");
        put(&c->stash, req->target, req->target_len);
        PUT_LIT(&c->stash, "\n");
    }
}

uint32_t echo__delay(struct echo_conn *c)
{
    const struct echo_config *cfg = c->w->cfg;
    if (cfg->latency_ms == 0 && cfg->jitter_ms == 0)
        return 0;
    if (c->quick)
        return 0; /* /health answers at once, so checkers see the server's state */
    uint32_t d = cfg->latency_ms;
    if (cfg->jitter_ms)
        d += (uint32_t)(echo__rand(c->w) % ((uint64_t)cfg->jitter_ms + 1));
    return d;
}

void echo__reply_error(struct echo_conn *c, int status)
{
    buf_reset(&c->stash);
    c->status = status;
    c->src = ECHO_SRC_STASH;
    c->h.keep_alive = false;
    c->head_only = false;
    c->has_body = false;
    c->quick = true;
    c->load_hdrs = false;
    c->minor = 1;
    stash_status_text(c, status);
}

/* See echo.h. Called on the connection's thread; out is the
 * connection's output (lent by httpd while the connection is busy). */
void echo__reply(struct echo_conn *c, struct buf *out)
{
    struct echo_worker *w = c->w;
    const struct echo_config *cfg = w->cfg;
    bool keep = c->h.keep_alive && !w->stopping;
    c->h.keep_alive = keep;

    char num[24];
    const char *body = NULL;
    uint64_t blen;
    switch (c->src) {
    case ECHO_SRC_SIZED:
        blen = (uint64_t)cfg->body_size;
        break;
    case ECHO_SRC_SINK: {
        size_t k = u64_to_dec(num, c->received);
        num[k++] = '\n';
        body = num;
        blen = k;
        break;
    }
    default:
        body = buf_rptr(&c->stash);
        blen = buf_len(&c->stash);
        break;
    }
    bool bodiless = c->status == 204 || c->status == 304;
    bool send_body = !bodiless && !c->head_only;
    bool inline_body = send_body && (body || blen <= ECHO_INLINE_BODY);
    const char *reason = http_reason(c->status);
    size_t rlen = strlen(reason);

    buf_reserve(out, 256 + cfg->name_len + rlen + (inline_body ? blen : 0));
    PUT_LIT(out, "HTTP/1.1 ");
    buf_append_u64(out, (uint64_t)c->status);
    PUT_LIT(out, " ");
    put(out, reason, rlen);
    PUT_LIT(out, "\r\nX-Server: ");
    put(out, cfg->name, cfg->name_len);
    PUT_LIT(out, "\r\n");
    put(out, w->date, w->date_len);
    if (!bodiless) {
        PUT_LIT(out, "Content-Type: text/plain\r\nContent-Length: ");
        buf_append_u64(out, blen);
        PUT_LIT(out, "\r\n");
    }
    if (c->has_body) {
        PUT_LIT(out, "X-Received-Bytes: ");
        buf_append_u64(out, c->received);
        PUT_LIT(out, "\r\n");
    }
    if (c->load_hdrs) {
        PUT_LIT(out, "X-Echo-Busy: ");
        buf_append_u64(out, w->busy);
        PUT_LIT(out, "\r\nX-Echo-Queued: ");
        buf_append_u64(out, w->queued);
        PUT_LIT(out, "\r\n");
    }
    if (!keep)
        PUT_LIT(out, "Connection: close\r\n");
    else if (c->minor == 0)
        PUT_LIT(out, "Connection: keep-alive\r\n");
    PUT_LIT(out, "\r\n");

    if (send_body) {
        if (body)
            put(out, body, (size_t)blen);
        else if (inline_body)
            put(out, cfg->block, (size_t)blen);
        else {
            c->big_off = 0;
            c->big_left = blen;
        }
    }
    if (c->stash.cap > ECHO_STASH_KEEP)
        buf_free(&c->stash); /* a large /headers copy: do not keep it */
}

/* Formats "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (RFC 9110 5.6.7). */
void echo__date_update(struct echo_worker *w)
{
    time_t now = time(NULL);
    if (now == w->date_sec && w->date_len)
        return;
    char date[HTTP_DATE_SIZE];
    _Static_assert(sizeof w->date >= 6 + HTTP_DATE_SIZE - 1 + 2, "room for the Date line");
    size_t n = http_date(date, now);
    memcpy(w->date, "Date: ", 6);
    memcpy(w->date + 6, date, n);
    memcpy(w->date + 6 + n, "\r\n", 2);
    w->date_len = 6 + n + 2;
    w->date_sec = now;
}
