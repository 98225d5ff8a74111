/* Centralized rate limiting over Redis: the per-worker connection, the
 * script calls and the local fast path. limit/redis.h has the contract. */
#include "gateway/limit/redis.h"
#include "core/buf.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/metrics.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define RLR_CACHE 1024u        /* local entries per worker, direct-mapped */
#define RLR_CACHE_KEY 96u      /* longer keys are not cached */
#define RLR_MAX_RULES 8u
#define RLR_RECONNECT_MS 1000u
#define RLR_ARGS_PER_RULE 8

struct rlr_entry {
    uint32_t rule_id;
    uint16_t klen;             /* 0: empty slot */
    char key[RLR_CACHE_KEY];
    uint64_t deny_until_us;    /* rejected locally before this */
    uint64_t lease_until_us;   /* leased units usable before this */
    uint64_t lease_units;
    struct rl_decision last;   /* Redis's last answer for the key */
    uint64_t at_us;            /* when it came */
};

enum rlr_state { RLR_DOWN, RLR_CONNECTING, RLR_UP };

struct rl_redis {
    struct ev_loop *loop;
    struct rl_redis_cfg cfg;   /* deep copy */
    redisAsyncContext *ac;
    enum rlr_state state;
    int fd;
    int mask;                  /* EV_READ|EV_WRITE wanted by hiredis */
    struct ev_timer retry;
    char sha[41];              /* loaded script, "" until known */
    uint32_t pending;
    bool freeing;
    struct rlr_entry cache[RLR_CACHE];
};

struct rl_redis_req {
    struct rl_redis *r;
    rl_redis_cb cb;
    void *ud;
    bool cancelled;
    bool retried;              /* resent with EVAL after NOSCRIPT */
    size_t n;
    uint32_t rule_ids[RLR_MAX_RULES];
    uint32_t lease_ok;         /* bit i: rule i may lease */
    size_t key_off[RLR_MAX_RULES]; /* where the client key starts in argv[3 + i] */
    /* argv for EVALSHA/EVAL: command, script, numkeys, keys, args */
    int argc;
    const char *argv[3 + RLR_MAX_RULES * (1 + RLR_ARGS_PER_RULE)];
    size_t argvlen[3 + RLR_MAX_RULES * (1 + RLR_ARGS_PER_RULE)];
    char *mem;                 /* backing bytes of argv */
};

static struct {
    atomic_uint_fast64_t calls, errors, timeouts, local_denied, lease_spent, unavailable;
    atomic_int connected;
} rlr_st;

#define RLR_INC(f) atomic_fetch_add_explicit(&rlr_st.f, 1, memory_order_relaxed)

static void rlr_connect(struct rl_redis *r);

/* ---- event-loop adapter ---------------------------------------------- */

static void rlr_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct rl_redis *r = ud;
    if (r->ac && (events & (EV_READ | EV_ERROR)))
        redisAsyncHandleRead(r->ac);
    if (r->ac && (events & EV_WRITE))
        redisAsyncHandleWrite(r->ac);
}

static void rlr_update(struct rl_redis *r, int mask)
{
    if (mask == r->mask)
        return;
    if (mask == 0)
        ev_io_stop(r->loop, r->fd);
    else if (r->mask == 0)
        ev_io_start(r->loop, r->fd, mask, rlr_io, r);
    else
        ev_io_set(r->loop, r->fd, mask);
    r->mask = mask;
}

static void ev_add_read(void *p) { struct rl_redis *r = p; rlr_update(r, r->mask | EV_READ); }
static void ev_del_read(void *p) { struct rl_redis *r = p; rlr_update(r, r->mask & ~EV_READ); }
static void ev_add_write(void *p) { struct rl_redis *r = p; rlr_update(r, r->mask | EV_WRITE); }
static void ev_del_write(void *p) { struct rl_redis *r = p; rlr_update(r, r->mask & ~EV_WRITE); }
static void ev_cleanup(void *p)
{
    struct rl_redis *r = p;
    rlr_update(r, 0);
}

/* ---- connection ------------------------------------------------------- */

static void rlr_lost(struct rl_redis *r)
{
    if (r->state == RLR_UP)
        atomic_fetch_sub_explicit(&rlr_st.connected, 1, memory_order_relaxed);
    r->state = RLR_DOWN;
    r->ac = NULL; /* hiredis frees it, then calls ev.cleanup (drops the watcher) */
    r->sha[0] = '\0';
    if (!r->freeing)
        ev_timer_start(r->loop, &r->retry, RLR_RECONNECT_MS);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rl_redis *r = ac->data;
    if (!r)
        return;
    if (status != REDIS_OK && !r->freeing)
        log_warn("rate-limit redis: connection lost: %s", ac->errstr);
    rlr_lost(r);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rl_redis *r = ac->data;
    redisReply *rp = reply;
    if (!r || !rp)
        return;
    if (rp->type == REDIS_REPLY_ERROR) {
        log_warn("rate-limit redis: %s", rp->str);
        return;
    }
    if (priv == (void *)1 && rp->type == REDIS_REPLY_STRING && rp->len == 40)
        memcpy(r->sha, rp->str, 41);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rl_redis *r = ac->data;
    if (!r)
        return;
    if (status != REDIS_OK) {
        log_warn("rate-limit redis: cannot connect: %s", ac->errstr);
        rlr_lost(r); /* hiredis frees the context */
        return;
    }
    r->state = RLR_UP;
    atomic_fetch_add_explicit(&rlr_st.connected, 1, memory_order_relaxed);
    log_info("rate-limit redis: connected");
}

static void rlr_retry(struct ev_loop *loop, struct ev_timer *t)
{
    rlr_connect(t->ud);
}

static void rlr_connect(struct rl_redis *r)
{
    redisAsyncContext *ac = r->cfg.unix_path ? redisAsyncConnectUnix(r->cfg.unix_path)
                                             : redisAsyncConnect(r->cfg.host, r->cfg.port);
    if (!ac || ac->err) {
        log_warn("rate-limit redis: cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        ev_timer_start(r->loop, &r->retry, RLR_RECONNECT_MS);
        return;
    }
    r->ac = ac;
    r->fd = ac->c.fd;
    r->mask = 0;
    r->state = RLR_CONNECTING;
    ac->data = r;
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued until connected, in order, before any check. */
    if (r->cfg.password)
        redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", r->cfg.password);
    if (r->cfg.db)
        redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %d", r->cfg.db);
    redisAsyncCommand(ac, on_setup_reply, (void *)1, "SCRIPT LOAD %s", rl_redis_script);
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

struct rl_redis *rl_redis_new(struct ev_loop *loop, const struct rl_redis_cfg *cfg)
{
    struct rl_redis *r = xcalloc(1, sizeof *r);
    r->loop = loop;
    r->cfg = *cfg;
    r->cfg.host = dup_or_null(cfg->host);
    r->cfg.unix_path = dup_or_null(cfg->unix_path);
    r->cfg.password = dup_or_null(cfg->password);
    r->cfg.prefix = dup_or_null(cfg->prefix ? cfg->prefix : "floodgate:rl:");
    if (!r->cfg.lease)
        r->cfg.lease = 1;
    if (!r->cfg.max_pending)
        r->cfg.max_pending = 10000;
    ev_timer_init(&r->retry, rlr_retry, r);
    rlr_connect(r);
    return r;
}

void rl_redis_free(struct rl_redis *r)
{
    if (!r)
        return;
    r->freeing = true;
    ev_timer_stop(r->loop, &r->retry);
    if (r->ac) {
        /* Runs every outstanding callback with a NULL reply. */
        redisAsyncContext *ac = r->ac;
        redisAsyncFree(ac);
        if (r->state == RLR_UP)
            atomic_fetch_sub_explicit(&rlr_st.connected, 1, memory_order_relaxed);
    }
    free(r->cfg.host);
    free(r->cfg.unix_path);
    free(r->cfg.password);
    free(r->cfg.prefix);
    free(r);
}

static bool str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

bool rl_redis_cfg_equal(const struct rl_redis_cfg *a, const struct rl_redis_cfg *b)
{
    const char *pa = a->prefix ? a->prefix : "floodgate:rl:", *pb = b->prefix ? b->prefix : "floodgate:rl:";
    return str_eq(a->host, b->host) && a->port == b->port && str_eq(a->unix_path, b->unix_path) &&
           str_eq(a->password, b->password) && a->db == b->db && a->timeout_ms == b->timeout_ms &&
           a->on_error == b->on_error && !strcmp(pa, pb) && FG_MAX(a->lease, 1u) == FG_MAX(b->lease, 1u) &&
           a->lease_ttl_ms == b->lease_ttl_ms &&
           (a->max_pending ? a->max_pending : 10000) == (b->max_pending ? b->max_pending : 10000);
}

const struct rl_redis_cfg *rl_redis_config(const struct rl_redis *r) { return &r->cfg; }

bool rl_redis_usable(const struct rl_redis *r)
{
    return r->state == RLR_UP && r->pending < r->cfg.max_pending;
}

/* ---- local fast path -------------------------------------------------- */

static struct rlr_entry *rlr_slot(struct rl_redis *r, uint32_t rule_id, const void *key, size_t len)
{
    uint64_t h = XXH3_64bits_withSeed(key, len, rule_id);
    return &r->cache[h & (RLR_CACHE - 1)];
}

static bool rlr_match(const struct rlr_entry *e, uint32_t rule_id, const void *key, size_t len)
{
    return e->klen == len && e->rule_id == rule_id && memcmp(e->key, key, len) == 0;
}

bool rl_redis_local(struct rl_redis *r, const struct rl_rule *rule, const void *key, size_t len,
                    uint64_t now_us, struct rl_decision *d)
{
    if (len == 0 || len > RLR_CACHE_KEY)
        return false;
    struct rlr_entry *e = rlr_slot(r, rule->id, key, len);
    if (!rlr_match(e, rule->id, key, len))
        return false;
    if (now_us < e->deny_until_us) {
        *d = e->last;
        d->allowed = false;
        d->delay_us = 0;
        d->retry_after_us = e->deny_until_us - now_us;
        d->remaining = 0;
        RLR_INC(local_denied);
        return true;
    }
    if (e->lease_units && now_us < e->lease_until_us) {
        e->lease_units--;
        *d = e->last;
        d->allowed = true;
        d->delay_us = 0;
        d->retry_after_us = 0;
        uint64_t spent = e->last.remaining ? 1 : 0;
        e->last.remaining -= spent;
        d->remaining = e->last.remaining;
        uint64_t age = now_us - e->at_us;
        d->reset_us = d->reset_us > age ? d->reset_us - age : 0;
        RLR_INC(lease_spent);
        return true;
    }
    return false;
}

/* Records Redis's answer for a key: a rejection is cached until its
 * Retry-After; granted units beyond the first become a lease. */
static void rlr_learn(struct rl_redis *r, uint32_t rule_id, const char *key, size_t len,
                      const struct rl_decision *d, uint64_t granted, uint64_t now_us)
{
    if (len == 0 || len > RLR_CACHE_KEY)
        return;
    struct rlr_entry *e = rlr_slot(r, rule_id, key, len);
    if (!rlr_match(e, rule_id, key, len)) {
        if (d->allowed && granted <= 1)
            return; /* nothing worth remembering: keep the slot's tenant */
        memset(e, 0, sizeof *e);
        e->rule_id = rule_id;
        e->klen = (uint16_t)len;
        memcpy(e->key, key, len);
    }
    e->last = *d;
    e->at_us = now_us;
    if (!d->allowed) {
        e->deny_until_us = now_us + d->retry_after_us;
        e->lease_units = 0;
    } else {
        e->deny_until_us = 0;
        e->lease_units = granted > 1 ? granted - 1 : 0;
        e->lease_until_us = now_us + r->cfg.lease_ttl_ms * 1000;
    }
}

/* ---- calls ------------------------------------------------------------ */

static void rlr_req_free(struct rl_redis_req *q)
{
    free(q->mem);
    free(q);
}

static bool reply_int(const redisReply *e, uint64_t *v)
{
    if (e->type != REDIS_REPLY_INTEGER || e->integer < 0)
        return false;
    *v = (uint64_t)e->integer;
    return true;
}

static int rlr_send(struct rl_redis_req *q);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rl_redis_req *q = priv;
    struct rl_redis *r = q->r;
    redisReply *rp = reply;
    if (r && !r->freeing)
        r->pending--;
    if (rp && rp->type == REDIS_REPLY_ERROR && !q->retried && !strncmp(rp->str, "NOSCRIPT", 8) && r &&
        !r->freeing && r->ac) {
        /* The server lost its script cache (a restart, SCRIPT FLUSH). */
        r->sha[0] = '\0';
        q->retried = true;
        if (rlr_send(q) == 0)
            return;
    }
    struct rl_decision ds[RLR_MAX_RULES];
    size_t n = 0;
    int status = -1;
    if (rp && rp->type == REDIS_REPLY_ARRAY && rp->elements % 6 == 0 && rp->elements / 6 <= q->n) {
        status = 0;
        uint64_t now_us = r && !r->freeing ? ev_now_ns(r->loop) / 1000 : 0;
        for (size_t i = 0; i < rp->elements / 6; i++) {
            uint64_t v[6];
            for (int k = 0; k < 6; k++)
                if (!reply_int(rp->element[i * 6 + k], &v[k]))
                    status = -1;
            if (status < 0)
                break;
            struct rl_decision *d = &ds[n++];
            d->allowed = v[0] != 0;
            d->delay_us = v[2];
            d->retry_after_us = v[3];
            d->remaining = v[4];
            d->reset_us = v[5];
            if (now_us)
                rlr_learn(r, q->rule_ids[i], q->argv[3 + i] + q->key_off[i],
                          q->argvlen[3 + i] - q->key_off[i], d, (q->lease_ok >> i & 1) ? v[1] : 1, now_us);
        }
        if (n == 0)
            status = -1;
    } else if (rp && rp->type == REDIS_REPLY_ERROR) {
        log_warn("rate-limit redis: script error: %.200s", rp->str);
    }
    if (status < 0)
        RLR_INC(errors);
    if (!q->cancelled)
        q->cb(q->ud, status, ds, status < 0 ? 0 : n);
    rlr_req_free(q);
    (void)ac;
}

static int rlr_send(struct rl_redis_req *q)
{
    struct rl_redis *r = q->r;
    if (r->sha[0] && !q->retried) {
        q->argv[0] = "EVALSHA";
        q->argvlen[0] = 7;
        q->argv[1] = r->sha;
        q->argvlen[1] = 40;
    } else {
        q->argv[0] = "EVAL";
        q->argvlen[0] = 4;
        q->argv[1] = rl_redis_script;
        q->argvlen[1] = strlen(rl_redis_script);
    }
    if (redisAsyncCommandArgv(r->ac, on_reply, q, q->argc, q->argv, q->argvlen) != REDIS_OK)
        return -1;
    r->pending++;
    return 0;
}

struct rl_redis_req *rl_redis_check(struct rl_redis *r, const struct rl_rule *const *rules,
                                    const char *const *keys, const size_t *lens, size_t n,
                                    uint64_t now_us, rl_redis_cb cb, void *ud)
{
    if (!rl_redis_usable(r) || n == 0 || n > RLR_MAX_RULES) {
        RLR_INC(unavailable);
        return NULL;
    }
    struct rl_redis_req *q = xcalloc(1, sizeof *q);
    q->r = r;
    q->cb = cb;
    q->ud = ud;
    q->n = n;
    size_t plen = strlen(r->cfg.prefix), need = 16;
    for (size_t i = 0; i < n; i++)
        need += plen + 12 + lens[i] + RLR_ARGS_PER_RULE * 24;
    q->mem = xmalloc(need);
    char *p = q->mem;
    q->argc = 3;
    q->argv[2] = p;
    q->argvlen[2] = (size_t)sprintf(p, "%zu", n);
    p += q->argvlen[2] + 1;
    for (size_t i = 0; i < n; i++) {
        const struct rl_rule *ru = rules[i];
        q->rule_ids[i] = ru->id;
        q->argv[q->argc] = p;
        memcpy(p, r->cfg.prefix, plen);
        size_t k = plen + (size_t)sprintf(p + plen, "%s:%d:", ru->name ? ru->name : "default", (int)ru->algo);
        memcpy(p + k, keys[i], lens[i]);
        q->key_off[i] = k;
        q->argvlen[q->argc++] = k + lens[i];
        p += k + lens[i];
    }
    for (size_t i = 0; i < n; i++) {
        const struct rl_rule *ru = rules[i];
        bool lease = r->cfg.lease > 1 && ru->algo != RL_LEAKY_QUEUE && lens[i] <= RLR_CACHE_KEY;
        if (lease)
            q->lease_ok |= 1u << i;
        double t_us = (double)ru->window_us / (double)ru->limit;
        char num[RLR_ARGS_PER_RULE][32];
        int nl[RLR_ARGS_PER_RULE];
        nl[0] = sprintf(num[0], "%d", (int)ru->algo);
        nl[1] = sprintf(num[1], "%llu", (unsigned long long)ru->limit);
        nl[2] = sprintf(num[2], "%llu", (unsigned long long)ru->window_us);
        nl[3] = sprintf(num[3], "%llu", (unsigned long long)ru->capacity);
        nl[4] = snprintf(num[4], sizeof num[4], "%.6f", t_us);
        nl[5] = sprintf(num[5], "%llu", (unsigned long long)ru->max_delay_us);
        nl[6] = sprintf(num[6], "%llu", (unsigned long long)(ru->free_ns / 1000));
        nl[7] = sprintf(num[7], "%u", lease ? r->cfg.lease : 1u);
        for (int a = 0; a < RLR_ARGS_PER_RULE; a++) {
            memcpy(p, num[a], (size_t)nl[a]);
            q->argv[q->argc] = p;
            q->argvlen[q->argc++] = (size_t)nl[a];
            p += nl[a];
        }
    }
    ASSERT((size_t)(p - q->mem) <= need);
    (void)now_us;
    if (rlr_send(q) < 0) {
        rlr_req_free(q);
        RLR_INC(unavailable);
        return NULL;
    }
    RLR_INC(calls);
    return q;
}

void rl_redis_cancel(struct rl_redis_req *q)
{
    if (q)
        q->cancelled = true;
}

/* ---- stats ------------------------------------------------------------ */

void rl_redis_note_timeout(void) { RLR_INC(timeouts); }

void rl_redis_stats(struct rl_redis_stats *o)
{
    o->calls = atomic_load_explicit(&rlr_st.calls, memory_order_relaxed);
    o->errors = atomic_load_explicit(&rlr_st.errors, memory_order_relaxed);
    o->timeouts = atomic_load_explicit(&rlr_st.timeouts, memory_order_relaxed);
    o->local_denied = atomic_load_explicit(&rlr_st.local_denied, memory_order_relaxed);
    o->lease_spent = atomic_load_explicit(&rlr_st.lease_spent, memory_order_relaxed);
    o->unavailable = atomic_load_explicit(&rlr_st.unavailable, memory_order_relaxed);
    int c = atomic_load_explicit(&rlr_st.connected, memory_order_relaxed);
    o->connected = c > 0 ? (uint64_t)c : 0;
}

void rl_redis_metrics_render(struct buf *b)
{
    struct rl_redis_stats st;
    rl_redis_stats(&st);
#define M(x) "floodgate_gateway_ratelimit_redis_" x
    metrics_family(b, M("calls_total"), "counter", "Script calls sent to the rate-limit Redis.");
    metrics_sample_u64(b, M("calls_total"), NULL, st.calls);
    metrics_family(b, M("failures_total"), "counter",
                   "Rate-limit checks Redis did not answer, by reason (on_error applied).");
    metrics_sample_u64(b, M("failures_total"), (const char *const[]){"reason", "error", NULL}, st.errors);
    metrics_sample_u64(b, M("failures_total"), (const char *const[]){"reason", "timeout", NULL}, st.timeouts);
    metrics_sample_u64(b, M("failures_total"), (const char *const[]){"reason", "unavailable", NULL},
                       st.unavailable);
    metrics_family(b, M("local_total"), "counter",
                   "Redis-backed checks decided locally, without a round trip, by kind.");
    metrics_sample_u64(b, M("local_total"), (const char *const[]){"kind", "denied", NULL}, st.local_denied);
    metrics_sample_u64(b, M("local_total"), (const char *const[]){"kind", "lease", NULL}, st.lease_spent);
    metrics_family(b, M("connected"), "gauge", "Worker threads connected to the rate-limit Redis.");
    metrics_sample_u64(b, M("connected"), NULL, st.connected);
#undef M
}
