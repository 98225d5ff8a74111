/* The rate-limit stages of the pipeline (pipeline.h): limit applies the
 * route's rules while the parsed head is at hand (429, or 503 when the
 * shared store is down and fails closed); hold makes the request wait for
 * what limit started: the Redis answer, then a rule's delay. Rules kept
 * locally are checked first, then the Redis-backed ones, in one round
 * trip for all of them unless the local fast path decides. The RateLimit
 * fields for the response are kept in r->rlhdr. Worker thread of the
 * request. */
#include "gateway/proxy/pipeline.h"
#include "gateway/proxy/conn.h"
#include "gateway/limit/redis.h"
#include "gateway/limit/store.h"

#include <stdlib.h>
#include <string.h>

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

static void rlw_free_keys(struct gw_rlwait *w)
{
    for (size_t i = 0; i < w->nask; i++)
        free(w->keys[i]);
    w->nask = 0;
}

void gw__rl_cancel(struct gw_req *r)
{
    struct gw_rlwait *w = r->rlw;
    if (!w)
        return;
    rl_redis_cancel(w->q);
    rlw_free_keys(w);
    free(w);
    r->rlw = NULL;
}

/* Redis could not decide the rules in w->ask: the store's on_error. The
 * local policy runs them against this gateway's own store. Returns false
 * when the request must be refused (deny). */
static bool rl_on_error(struct gw_req *r, struct gw_rlwait *w, uint64_t now_us)
{
    enum rl_redis_on_error oe = WCFG(r->w)->rl_redis.on_error;
    if (oe == RLR_DENY)
        return false;
    if (oe == RLR_LOCAL)
        for (size_t i = 0; i < w->nask && w->n < RLW_MAX; i++) {
            const struct rl_rule *ru = &w->ask[i]->rule;
            rl_store_check(r->w->gw->rl, ru, w->keys[i], w->lens[i], now_us, 1, &w->ds[w->n]);
            w->rules[w->n++] = ru;
            if (!w->ds[w->n - 1].allowed)
                break;
        }
    return true;
}

/* Combines the decisions into the response's RateLimit fields. Returns
 * true when the request is admitted (r->delay_us: hold it first). */
static bool rl_conclude(struct gw_req *r, struct gw_rlwait *w)
{
    r->delay_us = 0;
    if (!w->n)
        return true;
    struct rl_decision all;
    rl_combine(w->ds, w->n, &all);
    buf_reset(&r->rlhdr);
    rl_headers_append(&r->rlhdr, w->rules, w->ds, w->n);
    if (all.allowed) {
        r->delay_us = all.delay_us;
        return true;
    }
    gw_ctr_inc(&r->w->st.limited);
    buf_append(&r->rlhdr, "", 1); /* NUL for the error page's extra headers */
    return false;
}

/* Answers a refused request: 503 when the store failed closed (ok false),
 * else 429 with the RateLimit fields. */
static int rl_refuse(struct gw_req *r, bool ok)
{
    if (!ok) {
        gw_ctr_inc(&r->w->st.limited);
        gw__conn_respond(r->c, 503, r->body_done, "Retry-After: 1\r\n");
    } else {
        gw__conn_respond(r->c, 429, r->body_done, buf_rptr(&r->rlhdr));
    }
    return GW_ANSWERED;
}

/* Redis answered (or failed) for a waiting request. */
static void rl_redis_done(void *ud, int status, const struct rl_decision *ds, size_t n)
{
    struct gw_req *r = ud;
    struct gw_rlwait *w = r->rlw;
    uint64_t now_us = ev_now_ns(r->w->loop) / 1000;
    w->q = NULL;
    bool ok = true;
    if (status < 0) {
        ok = rl_on_error(r, w, now_us);
    } else {
        for (size_t i = 0; i < n && w->n < RLW_MAX; i++) {
            w->rules[w->n] = &w->ask[i]->rule;
            w->ds[w->n++] = ds[i];
        }
    }
    bool admitted = ok && rl_conclude(r, w);
    rlw_free_keys(w);
    free(w);
    r->rlw = NULL;
    if (!admitted) {
        rl_refuse(r, ok);
        return;
    }
    gw_pipeline_resume(r, GW_ST_HOLD);
}

/* The answer did not come in time. */
void gw__rl_timeout(struct gw_req *r)
{
    struct gw_rlwait *w = r->rlw;
    if (!w)
        return;
    rl_redis_note_timeout();
    rl_redis_cancel(w->q);
    w->q = NULL;
    struct rl_decision none;
    memset(&none, 0, sizeof none);
    rl_redis_done(r, -1, &none, 0);
}

/* Checks the rules this gateway keeps itself, in order, into lw; the
 * Redis-backed ones go to deferred[]. Returns true when one rejected the
 * request (later rules are not charged for a rejected request). */
static bool rl_check_local(struct gw_req *r, const struct rl_key_input *in, struct gw_rlwait *lw,
                           const struct gw_cfg_ratelimit **deferred, size_t *ndef, uint64_t now_us)
{
    const struct gw_route *rt = r->route;
    char key[RL_KEY_MAX];
    for (size_t i = 0; i < rt->nrl && lw->n < RLW_MAX; i++) {
        const struct gw_cfg_ratelimit *rl = rt->rl[i];
        if (rl->redis && r->w->rlr) {
            if (*ndef < RLW_MAX)
                deferred[(*ndef)++] = rl;
            continue;
        }
        int klen = rl_key_build(&rl->key, in, key);
        if (klen == RL_KEY_ABSENT)
            continue; /* the rule's key part is missing: it does not apply */
        rl_store_check(r->w->gw->rl, &rl->rule, key, (size_t)klen, now_us, 1, &lw->ds[lw->n]);
        lw->rules[lw->n++] = &rl->rule;
        if (!lw->ds[lw->n - 1].allowed)
            return true;
    }
    return false;
}

/* The Redis-backed rules: decided by the local fast path when it can,
 * else added to lw->ask with a copy of their key. Returns true when one
 * rejected the request. */
static bool rl_check_deferred(struct gw_req *r, const struct rl_key_input *in, struct gw_rlwait *lw,
                              const struct gw_cfg_ratelimit *const *deferred, size_t ndef, uint64_t now_us)
{
    char key[RL_KEY_MAX];
    bool rejected = false;
    for (size_t i = 0; i < ndef && !rejected && lw->n + lw->nask < RLW_MAX; i++) {
        const struct gw_cfg_ratelimit *rl = deferred[i];
        int klen = rl_key_build(&rl->key, in, key);
        if (klen == RL_KEY_ABSENT)
            continue;
        struct rl_decision d;
        if (rl_redis_local(r->w->rlr, &rl->rule, key, (size_t)klen, now_us, &d)) {
            lw->ds[lw->n] = d;
            lw->rules[lw->n++] = &rl->rule;
            rejected = !d.allowed;
            continue;
        }
        lw->ask[lw->nask] = rl;
        lw->keys[lw->nask] = xmalloc((size_t)klen);
        memcpy(lw->keys[lw->nask], key, (size_t)klen);
        lw->lens[lw->nask++] = (size_t)klen;
    }
    return rejected;
}

/* Asks Redis for the rules in lw->ask. Returns true when the request now
 * waits (r->rlw holds the heap copy of lw); false when the store could
 * not be asked: its on_error policy has then run into lw (*ok false:
 * refuse). */
static bool rl_ask(struct gw_req *r, struct gw_rlwait *lw, uint64_t now_us, bool *ok)
{
    struct gw_rlwait *w = xmalloc(sizeof *w);
    *w = *lw;
    const struct rl_rule *rules[RLW_MAX];
    for (size_t i = 0; i < w->nask; i++)
        rules[i] = &w->ask[i]->rule;
    w->q = rl_redis_check(r->w->rlr, rules, (const char *const *)w->keys, w->lens, w->nask, now_us,
                          rl_redis_done, r);
    if (w->q) {
        r->rlw = w;
        return true;
    }
    *ok = rl_on_error(r, w, now_us);
    *lw = *w;
    free(w);
    return false;
}

int gw__stage_limit(struct gw_req *r)
{
    const struct gw_route *rt = r->route;
    r->delay_us = 0;
    if (!rt->nrl)
        return GW_NEXT;
    struct gw_rlwait lw; /* decisions; copied to the heap only to wait */
    lw.n = lw.nask = 0;
    lw.q = NULL;
    const struct gw_cfg_ratelimit *deferred[RLW_MAX];
    size_t ndef = 0;
    struct rl_key_input in = {
        .peer = (const struct sockaddr *)&r->c->peer.ss,
        .headers = r->hreq->headers,
        .nheaders = r->hreq->nheaders,
        .route = rt->prefix,
        .route_len = rt->prefix_len,
    };
    uint64_t now_us = ev_now_ns(r->w->loop) / 1000;
    bool rejected = rl_check_local(r, &in, &lw, deferred, &ndef, now_us);
    if (!rejected)
        rejected = rl_check_deferred(r, &in, &lw, deferred, ndef, now_us);
    bool ok = true;
    if (lw.nask && !rejected && rl_ask(r, &lw, now_us, &ok))
        return GW_NEXT; /* the hold stage waits for the answer */
    rlw_free_keys(&lw);
    if (!ok)
        return rl_refuse(r, false);
    if (rl_conclude(r, &lw))
        return GW_NEXT;
    return rl_refuse(r, true);
}

int gw__stage_hold(struct gw_req *r)
{
    struct gw_conn *c = r->c;
    if (r->rlw) {
        /* The shared rate-limit store decides; rl_redis_done() resumes
         * here or refuses on its answer, or on its deadline. */
        gw__conn_set_timeout(c, TMO_RLWAIT, WCFG(r->w)->rl_redis.timeout_ms);
        return GW_WAIT;
    }
    if (r->delay_us) {
        /* limit_req-style smoothing: hold the request, then go on at the
         * shed stage when the timer fires. */
        gw_ctr_inc(&r->w->st.delayed);
        gw__conn_set_timeout(c, TMO_DELAY, (r->delay_us + 999) / 1000);
        r->delay_us = 0;
        return GW_WAIT;
    }
    return GW_NEXT;
}
