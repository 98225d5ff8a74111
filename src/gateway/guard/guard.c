/* Gatekeeping: what the gateway checks before and while reading a
 * request.
 *   - At accept: the global deny and allow lists (CIDR, v4 and v6), the
 *     number of open connections per client address and the rate of new
 *     ones. A refused connection costs an accept and a close, nothing
 *     more: no buffer, no connection object.
 *   - Per route: allow/deny lists (403) and rate-limit rules (429 with
 *     Retry-After and the RateLimit headers, or a delay).
 * Per-client connection counts live in a table sharded by address hash,
 * each shard a small open-addressing table behind its own mutex; entries
 * disappear when their count drops to zero, so memory follows the number
 * of distinct clients connected. Rate-limit state lives in the shared
 * rl_store (ratelimit.c, limit/store.c), which outlives reloads. */
#include "gateway/gw.h"
#include "core/log.h"
#include "gateway/limit/store.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define GUARD_SHARDS 64
#define RULE_ID_CONN_RATE 0xfffffff0u

struct guard_ent {
    uint8_t addr[16];
    uint32_t count; /* 0: free slot */
};

struct guard_shard {
    pthread_mutex_t mu;
    struct guard_ent *t;
    size_t cap, used; /* cap is a power of two */
};

struct gw_guard {
    struct guard_shard shard[GUARD_SHARDS];
    struct rl_rule conn_rate; /* token bucket for new connections per address */
    uint64_t conn_rate_per_s;
};

int gw_guard_init(struct gw *g, char **err)
{
    const struct gw_config *cfg = atomic_load(&g->snap)->cfg;
    struct rl_store_opts o = {.max_keys = cfg->guard.rl_max_keys};
    g->rl = rl_store_new(&o);
    struct gw_guard *gd = xcalloc(1, sizeof *gd);
    for (int i = 0; i < GUARD_SHARDS; i++)
        pthread_mutex_init(&gd->shard[i].mu, NULL);
    g->guard = gd;
    (void)err;
    return 0;
}

void gw_guard_free(struct gw *g)
{
    if (g->guard) {
        for (int i = 0; i < GUARD_SHARDS; i++) {
            pthread_mutex_destroy(&g->guard->shard[i].mu);
            free(g->guard->shard[i].t);
        }
        free(g->guard);
        g->guard = NULL;
    }
    rl_store_free(g->rl);
    g->rl = NULL;
}

void gw_guard_sweep(struct gw *g)
{
    if (g->rl)
        rl_store_sweep(g->rl, ev_clock_ns() / 1000);
}

/* ---- per-address connection counts ---- */

static size_t slot_of(const struct guard_shard *sh, const uint8_t a[16], uint64_t h)
{
    size_t mask = sh->cap - 1;
    size_t i = (size_t)(h >> 8) & mask;
    while (sh->t[i].count && memcmp(sh->t[i].addr, a, 16) != 0)
        i = (i + 1) & mask;
    return i;
}

static void shard_grow(struct guard_shard *sh)
{
    struct guard_ent *old = sh->t;
    size_t oldcap = sh->cap;
    sh->cap = oldcap ? oldcap * 2 : 64;
    sh->t = xcalloc(sh->cap, sizeof *sh->t);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].count) {
            uint64_t h = XXH3_64bits(old[i].addr, 16);
            sh->t[slot_of(sh, old[i].addr, h)] = old[i];
        }
    free(old);
}

/* Adds delta (+1/-1) to the address's count; with limit > 0 refuses an
 * increment that would exceed it. Returns false when refused. */
static bool count_conn(struct gw_guard *gd, const uint8_t a[16], int delta, int limit)
{
    uint64_t h = XXH3_64bits(a, 16);
    struct guard_shard *sh = &gd->shard[h % GUARD_SHARDS];
    bool ok = true;
    pthread_mutex_lock(&sh->mu);
    if (delta > 0) {
        if ((sh->used + 1) * 4 > sh->cap * 3)
            shard_grow(sh);
        size_t i = slot_of(sh, a, h);
        if (!sh->t[i].count) {
            memcpy(sh->t[i].addr, a, 16);
            sh->used++;
        }
        if (limit > 0 && sh->t[i].count >= (uint32_t)limit) {
            ok = false;
            if (!sh->t[i].count)
                sh->used--;
        } else {
            sh->t[i].count++;
        }
    } else if (sh->cap) {
        size_t i = slot_of(sh, a, h);
        if (sh->t[i].count && --sh->t[i].count == 0) {
            /* Backward-shift deletion keeps probe chains intact. */
            size_t mask = sh->cap - 1, j = i;
            sh->used--;
            for (;;) {
                j = (j + 1) & mask;
                if (!sh->t[j].count)
                    break;
                size_t home = (size_t)(XXH3_64bits(sh->t[j].addr, 16) >> 8) & mask;
                if (((j - home) & mask) >= ((j - i) & mask)) {
                    sh->t[i] = sh->t[j];
                    i = j;
                }
            }
            sh->t[i].count = 0;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return ok;
}

bool gw_guard_accept(struct gw_worker *w, const struct net_addr *peer, bool *counted)
{
    const struct gw_snapshot *s = w->snap;
    struct gw *gw = w->gw;
    const struct gw_cfg_guard *g = &s->cfg->guard;
    *counted = false;
    uint8_t a[16];
    if (!cidr_sa16((const struct sockaddr *)&peer->ss, a))
        return true;
    if ((s->allow.n && !cidr_set_match16(&s->allow, a)) || (s->deny.n && cidr_set_match16(&s->deny, a))) {
        atomic_fetch_add_explicit(&gw->refused_ip[GW_REFUSE_DENY], 1, memory_order_relaxed);
        return false;
    }
    if (g->max_conn_rate) {
        struct gw_guard *gd = gw->guard;
        if (gd->conn_rate_per_s != g->max_conn_rate) {
            /* Built lazily from the current config; a benign race between
             * workers writes the same values. */
            struct rl_rule r = {.algo = RL_TOKEN_BUCKET, .id = RULE_ID_CONN_RATE, .name = "connections",
                                .limit = g->max_conn_rate, .window_us = 1000000, .burst = 0};
            char *err = NULL;
            if (rl_rule_prepare(&r, &err) == 0) {
                gd->conn_rate = r;
                gd->conn_rate_per_s = g->max_conn_rate;
            }
            free(err);
        }
        struct rl_decision d;
        rl_store_check(gw->rl, &gd->conn_rate, a, 16, ev_now_ns(w->loop) / 1000, 1, &d);
        if (!d.allowed) {
            atomic_fetch_add_explicit(&gw->refused_ip[GW_REFUSE_RATE], 1, memory_order_relaxed);
            return false;
        }
    }
    if (g->max_conns_per_ip) {
        if (!count_conn(gw->guard, a, +1, g->max_conns_per_ip)) {
            atomic_fetch_add_explicit(&gw->refused_ip[GW_REFUSE_CONNS], 1, memory_order_relaxed);
            return false;
        }
        *counted = true;
    }
    return true;
}

void gw_guard_conn_closed(struct gw *g, const struct net_addr *peer)
{
    uint8_t a[16];
    if (cidr_sa16((const struct sockaddr *)&peer->ss, a))
        count_conn(g->guard, a, -1, 0);
}

/* ---- snapshot: CIDR sets and route rules ---- */

static int build_set(struct cidr_set *set, char **items, size_t n, char **err)
{
    cidr_set_init(set);
    for (size_t i = 0; i < n; i++)
        if (cidr_set_add(set, items[i], err) < 0)
            return -1;
    cidr_set_finish(set);
    return 0;
}

/* Stable id per rule definition: unchanged rules keep their state across
 * reloads; a changed rule starts fresh. */
static uint32_t rule_id(const struct gw_cfg_ratelimit *r)
{
    struct {
        uint64_t limit, window, burst, delay, max_delay;
        uint32_t algo, nodelay;
    } k = {r->rule.limit, r->rule.window_us, r->rule.burst, r->rule.delay, r->rule.max_delay_us,
           (uint32_t)r->rule.algo, r->rule.nodelay};
    uint64_t h = XXH3_64bits_withSeed(&k, sizeof k, XXH3_64bits(r->name, strlen(r->name)));
    return (uint32_t)(h % RULE_ID_CONN_RATE);
}

int gw__guard_snapshot(struct gw_snapshot *s, char **err)
{
    struct gw_config *cfg = s->cfg;
    for (size_t i = 0; i < cfg->nrate_limits; i++)
        cfg->rate_limits[i].rule.id = rule_id(&cfg->rate_limits[i]);
    if (build_set(&s->allow, s->allow_txt, s->nallow_txt, err) < 0 ||
        build_set(&s->deny, s->deny_txt, s->ndeny_txt, err) < 0)
        return -1;
    /* Routes were sorted; find each one's config by host + prefix. Their
     * CIDR lists are the config's plus admin changes (gw_route *_txt). */
    for (size_t i = 0; i < s->nroutes; i++) {
        struct gw_route *rt = &s->routes[i];
        if (build_set(&rt->allow, rt->allow_txt, rt->nallow_txt, err) < 0 ||
            build_set(&rt->deny, rt->deny_txt, rt->ndeny_txt, err) < 0)
            return -1;
        for (size_t k = 0; k < cfg->nroutes; k++) {
            const struct gw_cfg_route *cr = &cfg->routes[k];
            bool same_host = (!cr->host && !rt->host) || (cr->host && rt->host && !strcmp(cr->host, rt->host));
            if (!same_host || strcmp(cr->prefix, rt->prefix) != 0)
                continue;
            if (cr->nrate_limits) {
                rt->rl = xcalloc(cr->nrate_limits, sizeof *rt->rl);
                for (size_t j = 0; j < cr->nrate_limits; j++)
                    rt->rl[j] = &cfg->rate_limits[cr->rate_limits[j]];
                rt->nrl = cr->nrate_limits;
            }
            break;
        }
    }
    return 0;
}

void gw__guard_snapshot_free(struct gw_snapshot *s)
{
    cidr_set_free(&s->allow);
    cidr_set_free(&s->deny);
    for (size_t i = 0; i < s->nallow_txt; i++)
        free(s->allow_txt[i]);
    for (size_t i = 0; i < s->ndeny_txt; i++)
        free(s->deny_txt[i]);
    free(s->allow_txt);
    free(s->deny_txt);
    for (size_t i = 0; i < s->nroutes; i++) {
        cidr_set_free(&s->routes[i].allow);
        cidr_set_free(&s->routes[i].deny);
        free(s->routes[i].rl);
    }
}
