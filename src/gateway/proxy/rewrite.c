/* Head rewriting between client and upstream, per RFC 9110 7.6 and 9112:
 * hop-by-hop fields (the fixed list and every field named in Connection)
 * are dropped in both directions; the request gains X-Forwarded-For,
 * X-Forwarded-Proto, Forwarded and Via, merged with what the client sent;
 * the response gains Via and the connection framing the client needs.
 * Also the gateway's own error pages and the access log line. */
#include "gateway/proxy/conn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool drop_field(const struct http_header *h, const struct http_header *all, size_t n,
                       unsigned flags)
{
    if (http_is_hop_by_hop(h->name, h->name_len))
        return true;
    if ((flags & HTTP_F_CONN_OTHER) && http_connection_has(all, n, h->name, h->name_len))
        return true;
    return false;
}

static void put_header(struct buf *b, const struct http_header *h)
{
    size_t n = h->name_len + h->value_len + 4;
    char *p = b->cap - b->wpos >= n ? buf_wptr(b) : buf_reserve(b, n);
    memcpy(p, h->name, h->name_len);
    p += h->name_len;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, h->value, h->value_len);
    p += h->value_len;
    *p++ = '\r';
    *p++ = '\n';
    buf_commit(b, n);
}

/* Appends ", <add>" to every earlier value of a list field, folding
 * repeated fields into one line as RFC 9110 5.3 allows. */
static void put_list(struct buf *b, const char *name, const struct http_header *hs, size_t n,
                     const char *add, size_t add_len)
{
    buf_append_str(b, name);
    buf_append(b, ": ", 2);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!fg_strieq(hs[i].name, hs[i].name_len, name) || hs[i].value_len == 0)
            continue;
        if (!first)
            buf_append(b, ", ", 2);
        buf_append(b, hs[i].value, hs[i].value_len);
        first = false;
    }
    if (!first)
        buf_append(b, ", ", 2);
    buf_append(b, add, add_len);
    buf_append(b, "\r\n", 2);
}

#define APPEND_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

void gw__rewrite_request(struct gw_conn *c, const struct http_request *req, const char *path,
                        size_t path_len)
{
    struct gw_req *r = &c->r;
    struct buf *b = &r->head;
    buf_reset(b);
    gw_buf_prepare(c->w, b);
    buf_append(b, req->method, req->method_len);
    APPEND_LIT(b, " ");
    buf_append(b, path, path_len);
    APPEND_LIT(b, " HTTP/1.1\r\n");
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (drop_field(h, req->headers, req->nheaders, req->flags))
            continue;
        /* Fields we merge into our own copies below. */
        if ((h->name_len == 15 && (fg_strieq(h->name, 15, "x-forwarded-for"))) ||
            (h->name_len == 9 && fg_strieq(h->name, 9, "forwarded")) ||
            (h->name_len == 3 && fg_strieq(h->name, 3, "via")) ||
            (h->name_len == 17 && fg_strieq(h->name, 17, "x-forwarded-proto")))
            continue;
        put_header(b, h);
    }
    if (req->minor == 0 && !req->host) {
        /* HTTP/1.1 requires Host upstream; an HTTP/1.0 client may omit it. */
        APPEND_LIT(b, "Host: ");
        buf_append(b, c->ip, c->ip_len);
        APPEND_LIT(b, "\r\n");
    }
    if (r->body == HTTP_BODY_CHUNKED)
        APPEND_LIT(b, "Transfer-Encoding: chunked\r\n");
    put_list(b, "X-Forwarded-For", req->headers, req->nheaders, c->ip, c->ip_len);
    APPEND_LIT(b, "X-Forwarded-Proto: http\r\n");
    /* Forwarded (RFC 7239): IPv6 nodes and hosts are quoted strings. */
    char fwd[INET6_ADDRSTRLEN + 300];
    struct buf f = {fwd, sizeof fwd, 0, 0};
    bool v6 = memchr(c->ip, ':', c->ip_len) != NULL;
    if (v6) {
        APPEND_LIT(&f, "for=\"[");
        buf_append(&f, c->ip, c->ip_len);
        APPEND_LIT(&f, "]\"");
    } else {
        APPEND_LIT(&f, "for=");
        buf_append(&f, c->ip, c->ip_len);
    }
    if (req->host && req->host_len < 256 && !memchr(req->host, '"', req->host_len) &&
        !memchr(req->host, '\\', req->host_len)) {
        APPEND_LIT(&f, ";host=\"");
        buf_append(&f, req->host, req->host_len);
        APPEND_LIT(&f, "\"");
    }
    APPEND_LIT(&f, ";proto=http");
    put_list(b, "Forwarded", req->headers, req->nheaders, fwd, buf_len(&f));
    put_list(b, "Via", req->headers, req->nheaders, req->minor ? "1.1 floodgate" : "1.0 floodgate", 13);
    APPEND_LIT(b, "\r\n");
}

bool gw__rewrite_response(struct gw_conn *c, const struct http_response *resp)
{
    struct gw_req *r = &c->r;
    struct buf *b = &c->out;
    const char *reason = resp->reason;
    size_t rlen = resp->reason_len;
    if (rlen == 0) {
        reason = http_reason(resp->status);
        rlen = strlen(reason);
    }
    gw_buf_prepare(c->w, b);
    APPEND_LIT(b, "HTTP/1.1 ");
    buf_append_u64(b, (uint64_t)(unsigned)resp->status);
    APPEND_LIT(b, " ");
    buf_append(b, reason, rlen);
    APPEND_LIT(b, "\r\n");
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        if (drop_field(h, resp->headers, resp->nheaders, resp->flags))
            continue;
        if (h->name_len == 3 && fg_strieq(h->name, 3, "via"))
            continue;
        put_header(b, h);
    }
    put_list(b, "Via", resp->headers, resp->nheaders, resp->minor ? "1.1 floodgate" : "1.0 floodgate", 13);
    if (resp->status < 200)
        goto end; /* interim: no framing, no connection fields */
    if (buf_len(&r->rlhdr))
        buf_append(b, buf_rptr(&r->rlhdr), buf_len(&r->rlhdr));
    if (r->rbody == HTTP_BODY_CHUNKED && !r->dechunk)
        APPEND_LIT(b, "Transfer-Encoding: chunked\r\n");
    if (r->rbody == HTTP_BODY_EOF || r->dechunk)
        c->close_after = true;
    if (c->close_after)
        APPEND_LIT(b, "Connection: close\r\n");
    else if (r->minor == 0)
        APPEND_LIT(b, "Connection: keep-alive\r\n");
end:
    APPEND_LIT(b, "\r\n");
    return true;
}

void gw__error_page(struct buf *out, int status, bool close, const char *extra_headers)
{
    const char *reason = http_reason(status);
    char body[128];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason);
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nServer: floodgate\r\nContent-Type: text/plain\r\n"
               "Content-Length: %d\r\n%s%s\r\n%s",
               status, reason, n, extra_headers ? extra_headers : "",
               close ? "Connection: close\r\n" : "", body);
}

void gw__custom_page(struct buf *out, int status, bool close, const char *extra_headers, const char *type,
                    const char *body)
{
    size_t n = body ? strlen(body) : 0;
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nServer: floodgate\r\nContent-Type: %s\r\n"
               "Content-Length: %zu\r\n%s%s\r\n",
               status, http_reason(status), type ? type : "text/plain", n, extra_headers ? extra_headers : "",
               close ? "Connection: close\r\n" : "");
    buf_append(out, body, n);
}

void gw__access_log(struct gw_conn *c)
{
    FILE *f = c->w->gw->access_log;
    if (!f)
        return;
    struct gw_req *r = &c->r;
    char line[1024], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    double ms = (double)(ev_clock_ns() - r->t_start_ns) / 1e6;
    int n = snprintf(line, sizeof line, "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu \"%s\" \"%s\" %.3f\n",
                     c->ip, ts, r->method, r->target, r->minor, r->status,
                     (unsigned long long)r->resp_bytes, r->svc ? r->svc->name : "-",
                     r->srv ? r->srv->addr_str : "-", ms);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    /* One write(2) per line: lines from several workers never interleave. */
    ssize_t w = write(fileno(f), line, (size_t)n);
    (void)w;
}
