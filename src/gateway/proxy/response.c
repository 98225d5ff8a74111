/* The response stages of the pipeline (pipeline.h), run each time the
 * upstream delivered bytes or closed: head (status line and fields,
 * interim 1xx forwarded), body (validates the framing of the bytes that
 * arrived), deliver (writes what it can to the client; a complete
 * response gives the upstream connection back). Then, once the client
 * has it all, the request's accounting. Worker thread of the request. */
#include "gateway/proxy/pipeline.h"
#include "gateway/proxy/conn.h"

#include <string.h>

/* The final (2xx-5xx) response head arrived: body framing, reuse of the
 * upstream connection, the client's head, and the server's verdict. */
static void final_head(struct gw_req *r, const struct http_response *resp, size_t n)
{
    struct gw_conn *c = r->c;
    r->resp_head = true;
    r->rbody = http_response_body(resp, r->m);
    r->up_reusable = resp->minor == 1 ? !(resp->flags & HTTP_F_CONN_CLOSE)
                                      : (resp->flags & HTTP_F_CONN_KEEPALIVE) != 0;
    if (r->rbody == HTTP_BODY_EOF)
        r->up_reusable = false;
    if (r->rbody == HTTP_BODY_CHUNKED) {
        http_chunked_init(&r->rch, 65536);
        r->dechunk = r->minor == 0;
    } else if (r->rbody == HTTP_BODY_LENGTH) {
        r->rleft = (uint64_t)resp->content_length;
    }
    if (atomic_load_explicit(&r->w->gw->stopping, memory_order_relaxed))
        c->close_after = true;
    gw__rewrite_response(c, resp);
    buf_consume(&r->up->in, n);
    if (r->rbody == HTTP_BODY_NONE || (r->rbody == HTTP_BODY_LENGTH && r->rleft == 0))
        r->resp_done = true;
    gw_passive_success(r->srv);
    gw__req_server_settle(r, resp->status < 500 ? GW_SRVBRK_SUCCESS : GW_SRVBRK_FAILURE);
}

/* Parses the response head, forwarding interim 1xx responses. GW_WAIT:
 * incomplete; GW_ANSWERED: the exchange failed (handled). */
int gw__resp_head(struct gw_req *r)
{
    struct gw_conn *c = r->c;
    struct gw_upconn *u = r->up;
    while (!r->resp_head) {
        struct http_header hdrs[GW_MAX_HEADERS_CAP];
        struct http_response resp;
        int n = http_parse_response(buf_rptr(&u->in), buf_len(&u->in), &resp, hdrs, GW_MAX_HEADERS_CAP,
                                    WCFG(r->w)->limits.max_header_bytes);
        if (n == HTTP_INCOMPLETE) {
            /* An interim response (100 Continue) goes out now: the client
             * may be waiting for it before sending the body. */
            if (buf_len(&c->out))
                gw__conn_flush(c);
            return GW_WAIT;
        }
        /* We never forward Upgrade, so 101 is a protocol error. */
        if (n < 0 || resp.status == 101) {
            gw__conn_up_failed(c, GW_ERR_UP_BAD_RESPONSE, true);
            return GW_ANSWERED;
        }
        if (resp.status >= 200) {
            r->status = resp.status;
            final_head(r, &resp, (size_t)n);
            break;
        }
        /* 1xx to an HTTP/1.0 client is dropped (RFC 9110 15.2). */
        if (r->minor != 0) {
            r->status = resp.status;
            gw__rewrite_response(c, &resp);
        }
        buf_consume(&u->in, (size_t)n);
    }
    return GW_NEXT;
}

static void dechunk_cb(void *ud, const char *p, size_t n)
{
    buf_append((struct buf *)ud, p, n);
}

/* Validates newly arrived chunked body bytes; false when malformed. */
static bool chunked_body(struct gw_req *r, size_t avail)
{
    struct gw_upconn *u = r->up;
    ssize_t n;
    if (r->dechunk) {
        n = http_chunked_feed(&r->rch, buf_rptr(&u->in), avail, dechunk_cb, &r->c->out);
        if (n > 0)
            buf_consume(&u->in, (size_t)n);
    } else {
        n = http_chunked_feed(&r->rch, buf_rptr(&u->in) + r->rfwd, avail, NULL, NULL);
        if (n > 0)
            r->rfwd += (size_t)n;
    }
    if (n < 0)
        return false;
    if (r->rch.done)
        r->resp_done = true;
    return true;
}

/* Validates the body bytes that arrived (r->rfwd counts those that may
 * go to the client). */
int gw__resp_body(struct gw_req *r)
{
    struct gw_upconn *u = r->up;
    size_t avail = buf_len(&u->in) - r->rfwd;
    if (r->resp_done || !avail)
        return GW_NEXT;
    switch (r->rbody) {
    case HTTP_BODY_LENGTH: {
        size_t take = (size_t)FG_MIN((uint64_t)avail, r->rleft);
        r->rfwd += take;
        r->rleft -= take;
        if (r->rleft == 0)
            r->resp_done = true;
        break;
    }
    case HTTP_BODY_CHUNKED:
        if (!chunked_body(r, avail)) {
            r->up_reusable = false;
            gw__conn_up_failed(r->c, GW_ERR_UP_BAD_RESPONSE, true);
            return GW_ANSWERED;
        }
        break;
    case HTTP_BODY_EOF:
        r->rfwd = buf_len(&u->in);
        break;
    case HTTP_BODY_NONE:
        break;
    }
    return GW_NEXT;
}

/* Writes what the client can take; when the response is complete
 * upstream, the upstream connection goes back to the pool (or closes)
 * and the connection finishes the request once the client has it all. */
int gw__resp_deliver(struct gw_req *r)
{
    struct gw_conn *c = r->c;
    struct gw_upconn *u = r->up;
    const struct gw_config *cfg = WCFG(r->w);
    if (!r->resp_done)
        gw__conn_set_timeout(c, TMO_RESPONSE, cfg->timeouts.upstream_response_ms);
    if (gw__conn_flush(c) < 0)
        return GW_ANSWERED;
    if (!r->resp_done)
        return GW_WAIT;
    /* Bytes the client has not taken yet move to c->out so the upstream
     * connection can go back to the pool now. */
    if (r->rfwd) {
        buf_append(&c->out, buf_rptr(&u->in), r->rfwd);
        buf_consume(&u->in, r->rfwd);
        r->rfwd = 0;
    }
    if (buf_len(&u->in))
        r->up_reusable = false; /* bytes past the response: not trustworthy */
    bool reusable = r->up_reusable && r->sent;
    if (!r->sent)
        c->close_after = true; /* the server answered before the body ended */
    r->up = NULL;
    gw__up_release(u, reusable);
    if (buf_len(&c->out) == 0) {
        gw__conn_finished(c);
    } else {
        c->state = CS_RESPOND;
        gw__conn_set_timeout(c, TMO_SEND, cfg->timeouts.client_idle_ms);
    }
    return GW_ANSWERED;
}

int gw__resp_account(struct gw_req *r)
{
    struct gw_worker *w = r->w;
    int cls = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;
    uint64_t ns = ev_clock_ns() - r->t_start_ns;
    /* All into this worker's own entries (counters.h): no locked adds.
     * The request totals are the sums of the classes. */
    gw_ctr_inc(&w->st.requests);
    metrics_hist_observe_owned_ns(&w->latency, ns);
    if (r->svc)
        gw_svc_count(r->svc->stats, w->id, cls, ns);
    if (r->srv)
        gw_server_count_resp(r->srv, w->id, cls);
    return GW_NEXT;
}
