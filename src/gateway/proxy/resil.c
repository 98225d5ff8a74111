/* The resilience stages of the pipeline (pipeline.h): shed (admission
 * control with priority queues: back pressure, shedding) and breaker (the
 * service's circuit breaker); the fallback when the service cannot
 * answer (breaker open, no usable server, the last server failed); and
 * the settlement of a request's resilience accounting when it ends.
 * Worker thread of the request. */
#include "gateway/proxy/pipeline.h"
#include "gateway/proxy/conn.h"

/* Settles the request's resilience accounting: leaves the admission
 * queue, records the outcome with the breaker, gives back the slot. */
void gw__resil_settle(struct gw_req *r)
{
    struct gw_svc_rt *rt = r->rt;
    gw__rl_cancel(r);
    if (!rt)
        return;
    uint64_t now_us = ev_now_ns(r->w->loop) / 1000;
    if (r->queued) {
        gw_adm_queue_remove(gw_worker_admq(r->w, rt), &r->ent);
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
static void leave_primary(struct gw_req *r)
{
    if (r->breaker_allowed && r->rt && r->rt->breaker) {
        gw_breaker_record(r->rt->breaker, ev_now_ns(r->w->loop) / 1000, false,
                          (ev_clock_ns() - r->t_start_ns) / 1000);
        r->breaker_allowed = false;
    }
    if (r->up) {
        gw__up_close(r->up);
        r->up = NULL;
    }
    gw__req_server_settle(r, GW_SRVBRK_RELEASE); /* while r->srv is still held */
    gw__req_drop_server(r);
    r->head_sent = 0;
    r->sent = false;
}

/* The service cannot answer (breaker open, no usable server, or the last
 * server tried failed before any answer byte reached the client): its
 * fallback service (GW_NEXT: the caller picks a server there), its static
 * fallback response, or status (GW_ANSWERED). */
int gw__fallback(struct gw_req *r, int status, enum gw_err_kind kind)
{
    struct gw_conn *c = r->c;
    const struct gw_cfg_resil *fr = r->svc ? r->svc->resil : NULL;
    if (fr && fr->fallback_service && !r->in_fallback && !r->body_started) {
        struct gw_service *fs = gw_snapshot_service(r->snap, fr->fallback_service);
        if (fs) {
            gw_ctr_inc(&r->w->st.fallbacks);
            leave_primary(r);
            r->in_fallback = true;
            r->svc = fs;
            r->ntried = 0;
            return GW_NEXT;
        }
    }
    if (fr && fr->fallback_status && !r->resp_started) {
        gw_ctr_inc(&r->w->st.fallbacks);
        leave_primary(r);
        gw__conn_drop_input(c);
        if (!r->body_done || !r->keepalive || atomic_load(&r->w->gw->stopping))
            c->close_after = true;
        r->status = fr->fallback_status;
        buf_reset(&c->out);
        gw_buf_prepare(r->w, &c->out);
        gw__custom_page(&c->out, fr->fallback_status, c->close_after, "X-Floodgate-Fallback: static\r\n",
                        fr->fallback_type, fr->fallback_body);
        gw__conn_send_out(c);
        return GW_ANSWERED;
    }
    gw__conn_error(c, status, kind);
    return GW_ANSWERED;
}

void gw__shed(struct gw_req *r)
{
    gw_ctr_inc(&r->w->st.shed);
    gw__conn_error(r->c, 503, GW_ERR_NO_SERVER);
}

/* Admission (back pressure, priority shedding). A request that must wait
 * is parked in this worker's queue; gw__admission_done() resumes it. */
int gw__stage_shed(struct gw_req *r)
{
    struct gw_svc_rt *rt = r->rt;
    if (!rt || !rt->adm_on || r->adm_held)
        return GW_NEXT;
    struct gw_adm_entry *disp = NULL;
    r->ent.data = r;
    enum gw_adm_result res = gw_adm_submit(gw_worker_admq(r->w, rt), &r->ent, (enum gw_prio)r->prio, 0,
                                           ev_now_ns(r->w->loop) / 1000, &disp);
    if (disp) {
        struct gw_req *dr = disp->data;
        dr->queued = false;
        gw__shed(dr);
    }
    if (res == GW_ADM_QUEUED) {
        r->queued = true;
        gw__conn_set_timeout(r->c, TMO_QUEUE, rt->cfg.adm.max_wait_us / 1000 + 1000);
        gw_worker_poll_admission(r->w); /* arms the queue's timer */
        return GW_WAIT;
    }
    if (res == GW_ADM_REJECT) {
        gw__shed(r);
        return GW_ANSWERED;
    }
    r->adm_held = true;
    return GW_NEXT;
}

/* The admission queue let a waiting request go (or dropped it). */
void gw__admission_done(struct gw_req *r, bool admitted)
{
    r->queued = false;
    if (!admitted) {
        gw__shed(r);
        return;
    }
    r->adm_held = true;
    gw_pipeline_resume(r, GW_ST_BREAKER);
}

int gw__stage_breaker(struct gw_req *r)
{
    struct gw_svc_rt *rt = r->rt;
    if (rt && rt->breaker && !r->breaker_allowed) {
        if (!gw_breaker_allow(rt->breaker, ev_now_ns(r->w->loop) / 1000)) {
            gw_ctr_inc(&r->w->st.breaker_refused);
            return gw__fallback(r, 503, GW_ERR_NO_SERVER);
        }
        r->breaker_allowed = true;
    }
    if (!r->body_done)
        gw__conn_set_timeout(r->c, TMO_BODY, WCFG(r->w)->timeouts.client_body_ms);
    return GW_NEXT;
}
