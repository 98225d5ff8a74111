/* Admission of a request, between routing and the balancer: the route's
 * rate-limit rules (429 or a delay), admission control with priority
 * queues (back pressure, shedding), the service's circuit breaker, and
 * the fallback when the service cannot answer. Also the settlement of a
 * request's resilience accounting when it ends. Same thread context as
 * proxy.c: the connection's worker. */
#include "gateway/proxy/conn.h"
#include "gateway/limit/redis.h"
#include "gateway/limit/store.h"

#include <stdlib.h>
#include <string.h>

#define CFG WCFG(c->w)

/* Settles the request's resilience accounting: leaves the admission
 * queue, records the outcome with the breaker, gives back the slot. */
void gw_conn_resil_settle(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    struct gw_svc_rt *rt = r->rt;
    gw_conn_rl_cancel(c);
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

/* Before a fallback answers: the primary service failed this request,
 * whatever the fallback's answer will be, so its breaker records a
 * failure now; the server it was tried on (if any) is let go. */
static void fallback_leave_primary(struct gw_conn *c)
{
    struct gw_req *r = &c->r;
    if (r->breaker_allowed && r->rt && r->rt->breaker) {
        gw_breaker_record(r->rt->breaker, ev_now_ns(c->w->loop) / 1000, false,
                          (ev_clock_ns() - r->t_start_ns) / 1000);
        r->breaker_allowed = false;
    }
    if (r->up) {
        gw_up_close(r->up);
        r->up = NULL;
    }
    gw_conn_server_settle(c, GW_SRVBRK_RELEASE); /* while r->srv is still held */
    if (r->srv) {
        atomic_fetch_sub_explicit(&r->srv->inflight, 1, memory_order_relaxed);
        gw_server_unref(r->srv);
        r->srv = NULL;
    }
    r->head_sent = 0;
    r->sent = false;
}

/* The service cannot answer (breaker open, no usable server, or the last
 * server tried failed before any answer byte reached the client): its
 * fallback service, its static fallback response, or status. */
void gw_conn_fallback(struct gw_conn *c, int status, enum gw_err_kind kind)
{
    struct gw_req *r = &c->r;
    const struct gw_cfg_resil *fr = r->svc ? r->svc->resil : NULL;
    if (fr && fr->fallback_service && !r->in_fallback && !r->body_started) {
        struct gw_service *fs = gw_snapshot_service(r->snap, fr->fallback_service);
        if (fs) {
            gw_ctr_inc(&c->w->st.fallbacks);
            fallback_leave_primary(c);
            r->in_fallback = true;
            r->svc = fs;
            r->ntried = 0;
            gw_conn_pick_and_send(c);
            return;
        }
    }
    if (fr && fr->fallback_status && !r->resp_started) {
        gw_ctr_inc(&c->w->st.fallbacks);
        fallback_leave_primary(c);
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
    gw_ctr_inc(&c->w->st.shed);
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
            gw_ctr_inc(&c->w->st.breaker_refused);
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

/* ---- rate limiting ---------------------------------------------------- */

#define RLW_MAX 8

/* A request waiting for Redis: the decisions made so far (local rules and
 * the local fast path), then the Redis-backed rules asked for. */
struct gw_rlwait {
    struct rl_redis_req *q;
    const struct rl_rule *rules[RLW_MAX];
    struct rl_decision ds[RLW_MAX];
    size_t n;                          /* decisions in ds */
    const struct gw_cfg_ratelimit *ask[RLW_MAX];
    char *keys[RLW_MAX];
    size_t lens[RLW_MAX];
    size_t nask;
};

static void rlw_free(struct gw_rlwait *w)
{
    for (size_t i = 0; i < w->nask; i++)
        free(w->keys[i]);
    free(w);
}

void gw_conn_rl_cancel(struct gw_conn *c)
{
    struct gw_rlwait *w = c->r.rlw;
    if (!w)
        return;
    rl_redis_cancel(w->q);
    rlw_free(w);
    c->r.rlw = NULL;
}

/* Redis could not decide the rules in w->ask: the store's on_error. The
 * local policy runs them against this gateway's own store. Returns false
 * when the request must be refused (deny). */
static bool rl_on_error(struct gw_conn *c, struct gw_rlwait *w, uint64_t now_us)
{
    enum rl_redis_on_error oe = CFG->rl_redis.on_error;
    if (oe == RLR_DENY)
        return false;
    if (oe == RLR_LOCAL)
        for (size_t i = 0; i < w->nask && w->n < RLW_MAX; i++) {
            const struct rl_rule *ru = &w->ask[i]->rule;
            rl_store_check(gw_g->rl, ru, w->keys[i], w->lens[i], now_us, 1, &w->ds[w->n]);
            w->rules[w->n++] = ru;
            if (!w->ds[w->n - 1].allowed)
                break;
        }
    return true;
}

/* Combines the decisions into the response's RateLimit fields. Returns
 * true when the request is admitted (*delay_us: hold it first). */
static bool rl_conclude(struct gw_conn *c, struct gw_rlwait *w, uint64_t *delay_us)
{
    struct gw_req *r = &c->r;
    *delay_us = 0;
    if (!w->n)
        return true;
    struct rl_decision all;
    rl_combine(w->ds, w->n, &all);
    buf_reset(&r->rlhdr);
    rl_headers_append(&r->rlhdr, w->rules, w->ds, w->n);
    if (all.allowed) {
        *delay_us = all.delay_us;
        return true;
    }
    gw_ctr_inc(&c->w->st.limited);
    buf_append(&r->rlhdr, "", 1); /* NUL for the error page's extra headers */
    return false;
}

static void rl_refuse_unavailable(struct gw_conn *c)
{
    gw_ctr_inc(&c->w->st.limited);
    gw_conn_respond(c, 503, c->r.body_done, "Retry-After: 1\r\n");
}

/* Drops request body bytes already validated, before a refusal. */
static void drop_fwd(struct gw_conn *c)
{
    if (c->r.fwd) {
        buf_consume(&c->in, c->r.fwd);
        c->r.fwd = 0;
    }
}

/* Redis answered (or failed) for a waiting request. */
static void rl_redis_done(void *ud, int status, const struct rl_decision *ds, size_t n)
{
    struct gw_conn *c = ud;
    struct gw_rlwait *w = c->r.rlw;
    uint64_t now_us = ev_now_ns(c->w->loop) / 1000;
    w->q = NULL;
    bool ok = true;
    if (status < 0) {
        ok = rl_on_error(c, w, now_us);
    } else {
        for (size_t i = 0; i < n && w->n < RLW_MAX; i++) {
            w->rules[w->n] = &w->ask[i]->rule;
            w->ds[w->n++] = ds[i];
        }
    }
    uint64_t delay_us = 0;
    bool admitted = ok && rl_conclude(c, w, &delay_us);
    rlw_free(w);
    c->r.rlw = NULL;
    if (!ok) {
        drop_fwd(c);
        rl_refuse_unavailable(c);
        return;
    }
    if (!admitted) {
        drop_fwd(c);
        gw_conn_respond(c, 429, c->r.body_done, buf_rptr(&c->r.rlhdr));
        return;
    }
    gw_conn_rl_resume(c, delay_us);
}

/* The answer did not come in time. */
void gw_conn_rl_timeout(struct gw_conn *c)
{
    struct gw_rlwait *w = c->r.rlw;
    if (!w)
        return;
    rl_redis_note_timeout();
    rl_redis_cancel(w->q);
    w->q = NULL;
    struct rl_decision none;
    memset(&none, 0, sizeof none);
    c->r.rlw = w; /* rl_redis_done frees it */
    rl_redis_done(c, -1, &none, 0);
}

/* Applies the route's rate-limit rules. Returns GW_RL_ANSWERED when the
 * request was answered (429, or 503 when the shared store is down and
 * fails closed), GW_RL_WAIT when Redis was asked (the connection resumes
 * in gw_conn_rl_resume()), GW_RL_PASS otherwise with *delay_us set when
 * it must wait first. The RateLimit fields for the response are kept in
 * r->rlhdr. Rules kept locally are checked first, then the Redis-backed
 * ones (one round trip for all of them, unless the local fast path
 * decides). */
int gw_conn_rate_limit(struct gw_conn *c, const struct http_request *req, const struct gw_route *rt,
                       uint64_t *delay_us, int head_len)
{
    struct gw_req *r = &c->r;
    struct gw_rlwait lw; /* decisions; copied to the heap only to wait */
    lw.n = lw.nask = 0;
    lw.q = NULL;
    const struct gw_cfg_ratelimit *deferred[RLW_MAX];
    size_t ndef = 0;
    struct rl_key_input in = {
        .peer = (const struct sockaddr *)&c->peer.ss,
        .headers = req->headers,
        .nheaders = req->nheaders,
        .route = rt->prefix,
        .route_len = rt->prefix_len,
    };
    char key[RL_KEY_MAX];
    uint64_t now_us = ev_now_ns(c->w->loop) / 1000;
    struct rl_redis *rr = c->w->rlr;
    bool rejected = false;
    for (size_t i = 0; i < rt->nrl && lw.n < RLW_MAX; i++) {
        const struct gw_cfg_ratelimit *rl = rt->rl[i];
        if (rl->redis && rr) {
            if (ndef < RLW_MAX)
                deferred[ndef++] = rl;
            continue;
        }
        int klen = rl_key_build(&rl->key, &in, key);
        if (klen == RL_KEY_ABSENT)
            continue; /* the rule's key part is missing: it does not apply */
        rl_store_check(gw_g->rl, &rl->rule, key, (size_t)klen, now_us, 1, &lw.ds[lw.n]);
        lw.rules[lw.n++] = &rl->rule;
        if (!lw.ds[lw.n - 1].allowed) {
            rejected = true;
            break; /* later rules are not charged for a rejected request */
        }
    }
    for (size_t i = 0; i < ndef && !rejected && lw.n + lw.nask < RLW_MAX; i++) {
        const struct gw_cfg_ratelimit *rl = deferred[i];
        int klen = rl_key_build(&rl->key, &in, key);
        if (klen == RL_KEY_ABSENT)
            continue;
        struct rl_decision d;
        if (rl_redis_local(rr, &rl->rule, key, (size_t)klen, now_us, &d)) {
            lw.ds[lw.n] = d;
            lw.rules[lw.n++] = &rl->rule;
            if (!d.allowed)
                rejected = true;
            continue;
        }
        lw.ask[lw.nask] = rl;
        lw.keys[lw.nask] = xmalloc((size_t)klen);
        memcpy(lw.keys[lw.nask], key, (size_t)klen);
        lw.lens[lw.nask++] = (size_t)klen;
    }
    if (lw.nask && !rejected) {
        struct gw_rlwait *w = xmalloc(sizeof *w);
        *w = lw;
        const struct rl_rule *rules[RLW_MAX];
        for (size_t i = 0; i < w->nask; i++)
            rules[i] = &w->ask[i]->rule;
        w->q = rl_redis_check(rr, rules, (const char *const *)w->keys, w->lens, w->nask, now_us,
                              rl_redis_done, c);
        if (w->q) {
            r->rlw = w;
            return GW_RL_WAIT;
        }
        bool ok = rl_on_error(c, w, now_us);
        lw = *w;
        free(w);
        if (!ok) {
            for (size_t i = 0; i < lw.nask; i++)
                free(lw.keys[i]);
            buf_consume(&c->in, (size_t)head_len);
            rl_refuse_unavailable(c);
            return GW_RL_ANSWERED;
        }
    }
    for (size_t i = 0; i < lw.nask; i++)
        free(lw.keys[i]);
    lw.nask = 0;
    if (rl_conclude(c, &lw, delay_us))
        return GW_RL_PASS;
    buf_consume(&c->in, (size_t)head_len);
    gw_conn_respond(c, 429, r->body_done, buf_rptr(&r->rlhdr));
    return GW_RL_ANSWERED;
}
