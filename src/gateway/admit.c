/* Admission of a request, between routing and the balancer: the route's
 * rate-limit rules (429 or a delay), admission control with priority
 * queues (back pressure, shedding), the service's circuit breaker, and
 * the fallback when the service cannot answer. Also the settlement of a
 * request's resilience accounting when it ends. Same thread context as
 * proxy.c: the connection's worker. */
#include "gateway/conn.h"
#include "gateway/rlstore.h"

#include <string.h>

#define CFG WCFG(c->w)

/* Settles the request's resilience accounting: leaves the admission
 * queue, records the outcome with the breaker, gives back the slot. */
void gw_conn_resil_settle(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_svc_rt *rt = r->rt;
    if (!rt)
        return;
    uint64_t now_us = ev_now_ns(c->w->loop) / 1000;
    if (r->queued) {
        gw_adm_queue_remove(gw_worker_admq(c->w, rt), &r->ent);
        r->queued = false;
    }
    int st = r->status;
    if (r->breaker_allowed) {
        /* A client that went away before any answer says nothing about
         * the service: settle without a sample. */
        if (st == 0)
            gw_breaker_release(rt->breaker);
        else
            gw_breaker_record(rt->breaker, now_us, st < 500, (ev_clock_ns() - r->t_start_ns) / 1000);
        r->breaker_allowed = false;
    }
    if (r->adm_held) {
        bool dropped = st == 429 || st == 503 || st == 504 || (st == 502 && !r->resp_head);
        uint64_t lat = r->t_sent_ns && st ? (ev_clock_ns() - r->t_sent_ns) / 1000 : 0;
        gw_adm_release(&rt->adm, now_us, lat, dropped);
        r->adm_held = false;
    }
    r->rt = NULL;
}

/* The service cannot answer (breaker open, no usable server): its
 * fallback service, its static fallback response, or status. */
void gw_conn_fallback(struct gw_conn *c, int status, enum gw_err_kind kind)
{
    struct gw_req *r = &c->r;
    const struct gw_cfg_resil *fr = r->svc ? r->svc->resil : NULL;
    if (fr && fr->fallback_service && !r->in_fallback && !r->body_started) {
        struct gw_service *fs = gw_snapshot_service(r->snap, fr->fallback_service);
        if (fs) {
            atomic_fetch_add_explicit(&c->w->st.fallbacks, 1, memory_order_relaxed);
            r->in_fallback = true;
            r->svc = fs;
            r->ntried = 0;
            gw_conn_pick_and_send(c);
            return;
        }
    }
    if (fr && fr->fallback_status && !r->resp_started) {
        atomic_fetch_add_explicit(&c->w->st.fallbacks, 1, memory_order_relaxed);
        if (r->up) {
            gw_up_close(r->up);
            r->up = NULL;
        }
        if (r->fwd) {
            buf_consume(&c->in, r->fwd);
            r->fwd = 0;
        }
        if (!r->body_done || !r->keepalive || atomic_load(&gw_g->stopping))
            c->close_after = true;
        r->status = fr->fallback_status;
        buf_reset(&c->out);
        gw_buf_prepare(c->w, &c->out);
        gw_custom_page(&c->out, fr->fallback_status, c->close_after, "X-Floodgate-Fallback: static\r\n",
                       fr->fallback_type, fr->fallback_body);
        c->state = CS_RESPOND;
        int rc = gw_conn_flush(c);
        if (rc == 0)
            gw_conn_finished(c);
        else if (rc == 1)
            gw_conn_set_timeout(c, TMO_SEND, CFG->timeouts.client_idle_ms);
        return;
    }
    gw_conn_error(c, status, kind);
}

void gw_conn_shed(struct gw_conn *c)
{
    atomic_fetch_add_explicit(&c->w->st.shed, 1, memory_order_relaxed);
    gw_conn_error(c, 503, GW_ERR_NO_SERVER);
}

/* Admission (back pressure, priority shedding), then the breaker, then a
 * server. A request that must wait is parked in this worker's queue and
 * resumes in gw_conn_admission_done(). */
void gw_conn_admit_and_send(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_svc_rt *rt = r->rt;
    uint64_t now_us = ev_now_ns(c->w->loop) / 1000;
    if (rt && rt->adm_on && !r->adm_held) {
        struct gw_adm_entry *disp = NULL;
        r->ent.data = c;
        enum gw_adm_result res =
            gw_adm_submit(gw_worker_admq(c->w, rt), &r->ent, (enum gw_prio)r->prio, 0, now_us, &disp);
        if (disp) {
            struct gw_conn *dc = disp->data;
            dc->r.queued = false;
            gw_conn_shed(dc);
        }
        if (res == GW_ADM_QUEUED) {
            r->queued = true;
            gw_conn_set_timeout(c, TMO_QUEUE, rt->cfg.adm.max_wait_us / 1000 + 1000);
            gw_worker_poll_admission(c->w); /* arms the queue's timer */
            return;
        }
        if (res == GW_ADM_REJECT) {
            gw_conn_shed(c);
            return;
        }
        r->adm_held = true;
    }
    if (rt && rt->breaker && !r->breaker_allowed) {
        if (!gw_breaker_allow(rt->breaker, now_us)) {
            atomic_fetch_add_explicit(&c->w->st.breaker_refused, 1, memory_order_relaxed);
            gw_conn_fallback(c, 503, GW_ERR_NO_SERVER);
            return;
        }
        r->breaker_allowed = true;
    }
    if (!r->body_done)
        gw_conn_set_timeout(c, TMO_BODY, CFG->timeouts.client_body_ms);
    gw_conn_pick_and_send(c);
}

void gw_conn_admission_done(struct gw_conn *c, bool admitted)
{
    c->r.queued = false;
    if (!admitted) {
        gw_conn_shed(c);
        return;
    }
    c->r.adm_held = true;
    gw_conn_admit_and_send(c);
}

/* Applies the route's rate-limit rules. Returns false when the request
 * was answered (429); *delay_us is set when it must wait first. The
 * RateLimit fields for the response are kept in r->rlhdr. */
bool gw_conn_rate_limit(struct gw_conn *c, const struct http_request *req, const struct gw_route *rt,
                       uint64_t *delay_us, int head_len)
{
    struct gw_req *r = &c->r;
    const struct rl_rule *rules[8];
    struct rl_decision ds[8];
    size_t n = 0;
    struct rl_key_input in = {
        .peer = (const struct sockaddr *)&c->peer.ss,
        .headers = req->headers,
        .nheaders = req->nheaders,
        .route = rt->prefix,
        .route_len = rt->prefix_len,
    };
    char key[RL_KEY_MAX];
    uint64_t now_us = ev_now_ns(c->w->loop) / 1000;
    for (size_t i = 0; i < rt->nrl && n < 8; i++) {
        const struct gw_cfg_ratelimit *rl = rt->rl[i];
        int klen = rl_key_build(&rl->key, &in, key);
        if (klen == RL_KEY_ABSENT)
            continue; /* the rule's key part is missing: it does not apply */
        rl_store_check(gw_g->rl, &rl->rule, key, (size_t)klen, now_us, 1, &ds[n]);
        rules[n++] = &rl->rule;
        if (!ds[n - 1].allowed)
            break; /* later rules are not charged for a rejected request */
    }
    if (!n)
        return true;
    struct rl_decision all;
    rl_combine(ds, n, &all);
    buf_reset(&r->rlhdr);
    rl_headers_append(&r->rlhdr, rules, ds, n);
    if (all.allowed) {
        *delay_us = all.delay_us;
        return true;
    }
    atomic_fetch_add_explicit(&c->w->st.limited, 1, memory_order_relaxed);
    buf_consume(&c->in, (size_t)head_len);
    buf_append(&r->rlhdr, "", 1); /* NUL for the error page's extra headers */
    gw_conn_respond(c, 429, r->body_done, buf_rptr(&r->rlhdr));
    return false;
}

