/* One flood thread: an event loop, its share of the connections, its
 * share of each open-loop schedule, and its own statistics (no locks on
 * the data path; the main thread merges them after joining).
 *
 * Life of a worker: created on the main thread; its thread connects every
 * connection (unless --conn-per-request) and counts them in `connected`;
 * the main thread waits for all workers, sets the run's start time and
 * wakes each one (the "go"); the worker then starts its closed-loop
 * connections and its schedules, until the end timer (or a stop from the
 * main thread) ends the run; it then counts what was left in flight or
 * unsent and leaves its loop.
 *
 * Open loop: a group's connections with no request sit on a free list.
 * The group's schedule says when the next request is due; a timerfd (the
 * loop's own timers are in milliseconds, intended times are not) wakes
 * the loop then, and the request takes a free connection. When none is
 * free, the request stays due: the next connection to finish takes it at
 * once, and its latency still counts from its intended time.
 *
 * Errors: a connection whose request failed is not reused from inside the
 * failing call (a connect that fails at once would recurse); it goes on a
 * retry list, drained on the next loop iteration, or after
 * FL_RETRY_CONNECT_MS for connect errors so that a refusing server is not
 * hammered in a tight loop. */
#include "flood/flood.h"

#include "core/log.h"
#include "core/rand.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FL_RETRY_CONNECT_MS 10
#define FL_UNSENT_COUNT_MAX 100000000ull /* bound on counting the backlog at the end */

const char *const fl_err_names[FL_E_MAX] = {"connect", "write", "read", "closed", "timeout", "parse"};
const char *const fl_cls_names[FL_C_MAX] = {"1xx", "2xx", "3xx", "4xx", "429", "5xx", "503", "errors"};

uint64_t fl__rand(struct fl_worker *w)
{
    return fg_rand_next(&w->rng);
}

static inline void live_inc(_Atomic uint64_t *v)
{
    /* Single writer: a relaxed load and store, no locked instruction. */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1, memory_order_relaxed);
}

static inline uint16_t pick_template(struct fl_worker *w)
{
    if (w->cfg->mix.n == 1)
        return 0;
    return (uint16_t)fl_mix_pick(&w->cfg->mix, (uint32_t)(fl__rand(w) >> 32));
}

/* ---- statistics ---- */

void fl_gstats_init(struct fl_gstats *g)
{
    memset(g, 0, sizeof *g);
    fl_hist_init(&g->lat, FL_HIST_PRECISE, FL_HIST_MAX_US);
    fl_hist_init(&g->lat_rej, FL_HIST_COARSE, FL_HIST_MAX_US);
    fl_hist_init(&g->svc, FL_HIST_PRECISE, FL_HIST_MAX_US);
}

void fl_gstats_free(struct fl_gstats *g)
{
    fl_hist_free(&g->lat);
    fl_hist_free(&g->lat_rej);
    fl_hist_free(&g->svc);
}

void fl_gstats_add(struct fl_gstats *d, const struct fl_gstats *s)
{
    d->sent += s->sent;
    d->done += s->done;
    d->admitted += s->admitted;
    d->rejected += s->rejected;
    d->errors += s->errors;
    d->bytes_in += s->bytes_in;
    d->bytes_out += s->bytes_out;
    d->connects += s->connects;
    d->unfinished += s->unfinished;
    d->unsent += s->unsent;
    if (s->oldest_unsent_us > d->oldest_unsent_us)
        d->oldest_unsent_us = s->oldest_unsent_us;
    for (int i = 0; i < FL_NSTATUS; i++)
        d->status[i] += s->status[i];
    for (int i = 0; i < FL_E_MAX; i++)
        d->err[i] += s->err[i];
    fl_hist_add(&d->lat, &s->lat);
    fl_hist_add(&d->lat_rej, &s->lat_rej);
    fl_hist_add(&d->svc, &s->svc);
}

void fl_tstats_init(struct fl_tstats *t)
{
    memset(t, 0, sizeof *t);
    fl_hist_init(&t->lat, FL_HIST_COARSE, FL_HIST_MAX_US);
}

void fl_tstats_free(struct fl_tstats *t) { fl_hist_free(&t->lat); }

void fl_tstats_add(struct fl_tstats *d, const struct fl_tstats *s)
{
    d->done += s->done;
    d->admitted += s->admitted;
    d->rejected += s->rejected;
    d->errors += s->errors;
    for (int i = 0; i < FL_C_MAX; i++)
        d->cls[i] += s->cls[i];
    fl_hist_add(&d->lat, &s->lat);
}

/* Moves the current second forward to the one holding now. */
static void sec_roll(struct fl_worker *w, uint64_t now)
{
    uint64_t idx = now > w->t0 ? (now - w->t0) / 1000000000ull : 0;
    while (w->nsecs < idx) {
        if (w->nsecs == w->capsecs) {
            w->capsecs = w->capsecs ? w->capsecs * 2 : 64;
            w->secs = xrealloc(w->secs, w->capsecs * sizeof *w->secs);
        }
        struct fl_sec *s = &w->secs[w->nsecs++];
        *s = w->cur;
        memset(&s->lat, 0, sizeof s->lat);
        fl_hist_compact(&w->cur_lat, &s->lat);
        memset(&w->cur, 0, sizeof w->cur);
        fl_hist_reset(&w->cur_lat);
    }
}

static inline uint64_t ns_to_us(uint64_t ns) { return (ns + 500) / 1000; }

void fl__worker_sent(struct fl_worker *w, struct fl_conn *c, uint64_t now)
{
    w->gs[c->group].sent++;
    sec_roll(w, now);
    w->cur.sent[c->group]++;
    live_inc(&w->live_sent);
}

void fl__worker_done(struct fl_worker *w, struct fl_conn *c, uint64_t now)
{
    struct fl_gstats *g = &w->gs[c->group];
    struct fl_tstats *t = &w->ts[c->group * w->cfg->mix.n + c->tpl];
    uint64_t lat = ns_to_us(now > c->start_ns ? now - c->start_ns : 0);
    uint64_t svc = ns_to_us(c->write_ns && now > c->write_ns ? now - c->write_ns : 0);
    int st = c->status;
    enum fl_cls cls = fl_status_cls(st);
    bool rej = fl_rejected(st);
    sec_roll(w, now);
    g->done++;
    g->status[st < FL_NSTATUS ? st : 0]++;
    fl_hist_record(&g->svc, svc);
    t->done++;
    t->cls[cls]++;
    w->cur.done[c->group]++;
    if (c->group == FL_USERS)
        w->cur.cls[cls]++;
    else
        w->cur.atk_cls[cls]++;
    if (rej) {
        g->rejected++;
        t->rejected++;
        fl_hist_record(&g->lat_rej, lat);
        live_inc(&w->live_rejected);
    } else {
        g->admitted++;
        t->admitted++;
        fl_hist_record(&g->lat, lat);
        fl_hist_record(&t->lat, lat);
        if (c->group == FL_USERS)
            fl_hist_record(&w->cur_lat, lat);
    }
    live_inc(&w->live_done);
}

/* ---- deferred reuse after errors ---- */

static void retry_push(struct fl_worker *w, struct fl_conn *c, int which)
{
    c->next_free = NULL;
    c->retry_ms = ev_now(w->loop) + (which ? FL_RETRY_CONNECT_MS : 0);
    if (w->retry_tail[which])
        w->retry_tail[which]->next_free = c;
    else
        w->retry_head[which] = c;
    w->retry_tail[which] = c;
    if (!ev_timer_active(&w->retry_t[which]))
        ev_timer_start_at(w->loop, &w->retry_t[which], w->retry_head[which]->retry_ms);
}

static void on_retry(struct ev_loop *loop, struct ev_timer *t)
{
    struct fl_worker *w = ev_data(loop);
    int which = t == &w->retry_t[1];
    /* Take the due entries off first: reusing one may append it again. */
    struct fl_conn *list = NULL, **tail = &list;
    uint64_t now = ev_now(loop);
    while (w->retry_head[which] && w->retry_head[which]->retry_ms <= now) {
        struct fl_conn *c = w->retry_head[which];
        w->retry_head[which] = c->next_free;
        if (!w->retry_head[which])
            w->retry_tail[which] = NULL;
        c->next_free = NULL;
        *tail = c;
        tail = &c->next_free;
    }
    if (w->retry_head[which])
        ev_timer_start_at(loop, t, w->retry_head[which]->retry_ms);
    while (list) {
        struct fl_conn *c = list;
        list = c->next_free;
        c->next_free = NULL;
        fl__worker_conn_free(w, c);
    }
}

void fl__worker_error(struct fl_worker *w, struct fl_conn *c, enum fl_err e, uint64_t now)
{
    struct fl_gstats *g = &w->gs[c->group];
    struct fl_tstats *t = &w->ts[c->group * w->cfg->mix.n + c->tpl];
    sec_roll(w, now);
    g->err[e]++;
    g->errors++;
    t->errors++;
    t->cls[FL_C_ERR]++;
    if (c->group == FL_USERS)
        w->cur.cls[FL_C_ERR]++;
    else
        w->cur.atk_cls[FL_C_ERR]++;
    live_inc(&w->live_errors);
    c->busy = false;
    fl__conn_close(c);
    if (w->running)
        retry_push(w, c, e == FL_E_CONNECT);
}

/* ---- open-loop dispatch ---- */

/* Arms the timerfd for the earliest due request of a group that has a
 * free connection, or disarms it. */
static void arm_timer(struct fl_worker *w)
{
    uint64_t due = UINT64_MAX;
    for (int g = 0; g < FL_NGROUPS; g++) {
        struct fl_wgroup *wg = &w->g[g];
        if (wg->open && wg->free) {
            uint64_t n = fl_sched_peek(&wg->sched);
            if (n < due)
                due = n;
        }
    }
    uint64_t at = due == UINT64_MAX ? 0 : w->t0 + due;
    if (at == w->tfd_armed)
        return;
    struct itimerspec its = {0};
    if (at) {
        its.it_value.tv_sec = (time_t)(at / 1000000000ull);
        its.it_value.tv_nsec = (long)(at % 1000000000ull);
    }
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    w->tfd_armed = at;
}

/* Appends c to the group's free list: first in, first out, so that the
 * requests go round all the connections (and their source addresses)
 * instead of reusing the few most recently freed. */
static void free_push(struct fl_wgroup *wg, struct fl_conn *c)
{
    c->next_free = NULL;
    if (wg->free_tail)
        wg->free_tail->next_free = c;
    else
        wg->free = c;
    wg->free_tail = c;
}

/* Sends every due request of group g that finds a free connection. */
static void dispatch(struct fl_worker *w, int g)
{
    struct fl_wgroup *wg = &w->g[g];
    uint64_t rel = ev_clock_ns() - w->t0;
    while (wg->free && w->running) {
        uint64_t due = fl_sched_peek(&wg->sched);
        if (due > rel)
            break;
        struct fl_conn *c = wg->free;
        wg->free = c->next_free;
        if (!wg->free)
            wg->free_tail = NULL;
        c->next_free = NULL;
        fl_sched_advance(&wg->sched);
        fl__conn_request(c, pick_template(w), w->t0 + due);
    }
}

static void on_tick(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct fl_worker *w = ud;
    uint64_t expirations;
    FG_UNUSED(loop);
    FG_UNUSED(events);
    while (read(fd, &expirations, sizeof expirations) > 0)
        ;
    w->tfd_armed = 0;
    for (int g = 0; g < FL_NGROUPS; g++)
        if (w->g[g].open)
            dispatch(w, g);
    arm_timer(w);
}

void fl__worker_conn_free(struct fl_worker *w, struct fl_conn *c)
{
    if (!w->running)
        return;
    struct fl_wgroup *wg = &w->g[c->group];
    if (!wg->open) {
        fl__conn_request(c, pick_template(w), ev_clock_ns());
        return;
    }
    uint64_t due = fl_sched_peek(&wg->sched);
    if (due != UINT64_MAX && w->t0 + due <= ev_clock_ns()) {
        /* A request is waiting for a connection: this one takes it now. */
        fl_sched_advance(&wg->sched);
        fl__conn_request(c, pick_template(w), w->t0 + due);
        return;
    }
    free_push(wg, c);
    arm_timer(w);
}

/* ---- start, sweep, end ---- */

static void on_sweep(struct ev_loop *loop, struct ev_timer *t)
{
    struct fl_worker *w = t->ud;
    uint64_t now = ev_clock_ns();
    for (size_t i = 0; i < w->nconns; i++) {
        struct fl_conn *c = &w->conns[i];
        if (c->busy && now > c->deadline_ns)
            fl__worker_error(w, c, FL_E_TIMEOUT, now);
    }
    uint64_t every = w->cfg->timeout_ms / 4;
    ev_timer_start(loop, t, every < 1 ? 1 : every > 100 ? 100 : every);
}

/* Ends the run in this worker: counts what was in flight and what was
 * due but never sent, closes every connection and leaves the loop. */
static void worker_finish(struct fl_worker *w)
{
    if (!w->running)
        return;
    uint64_t now = ev_clock_ns();
    w->running = false;
    w->stop_ns = now < w->end_ns ? now : w->end_ns;
    uint64_t rel = w->stop_ns - w->t0;
    sec_roll(w, w->stop_ns > w->t0 ? w->stop_ns - 1 : w->t0);
    for (size_t i = 0; i < w->nconns; i++) {
        struct fl_conn *c = &w->conns[i];
        if (c->busy)
            w->gs[c->group].unfinished++;
        c->busy = false;
        fl__conn_close(c);
    }
    for (int g = 0; g < FL_NGROUPS; g++) {
        struct fl_wgroup *wg = &w->g[g];
        if (!wg->open)
            continue;
        uint64_t first = fl_sched_peek(&wg->sched);
        if (first < rel)
            w->gs[g].oldest_unsent_us = ns_to_us(rel - first);
        for (uint64_t k = 0; k < FL_UNSENT_COUNT_MAX && fl_sched_peek(&wg->sched) < rel; k++) {
            w->gs[g].unsent++;
            fl_sched_advance(&wg->sched);
        }
    }
    ev_timer_stop(w->loop, &w->sweep);
    ev_timer_stop(w->loop, &w->end);
    ev_timer_stop(w->loop, &w->retry_t[0]);
    ev_timer_stop(w->loop, &w->retry_t[1]);
    if (w->tfd >= 0) {
        struct itimerspec off = {0};
        timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &off, NULL);
    }
    ev_break(w->loop);
}

static void on_end(struct ev_loop *loop, struct ev_timer *t)
{
    FG_UNUSED(loop);
    worker_finish(t->ud);
}

static void worker_start(struct fl_worker *w)
{
    const struct fl_config *cfg = w->cfg;
    w->t0 = atomic_load(&w->run->t0);
    w->end_ns = w->t0 + cfg->duration_ms * 1000000ull;
    w->running = true;
    uint64_t dur_ns = cfg->duration_ms * 1000000ull;
    for (int g = 0; g < FL_NGROUPS; g++) {
        struct fl_wgroup *wg = &w->g[g];
        if (wg->open) {
            /* Phase: this worker's requests interleave with the others'. */
            double share = (double)wg->nconns / cfg->group_conns[g];
            double phase = (w->id + 0.5) / w->run->nworkers;
            fl_sched_init(&wg->sched, g == FL_USERS ? &cfg->profile : &cfg->attacker_profile, share, phase,
                          dur_ns);
        }
    }
    ev_timer_start_at(w->loop, &w->end, (w->end_ns + 999999) / 1000000);
    on_sweep(w->loop, &w->sweep);
    uint64_t now = ev_clock_ns();
    for (size_t i = 0; i < w->nconns; i++) {
        struct fl_conn *c = &w->conns[i];
        if (!w->g[c->group].open) {
            fl__conn_request(c, pick_template(w), now);
        } else {
            free_push(&w->g[c->group], c);
        }
    }
    for (int g = 0; g < FL_NGROUPS; g++)
        if (w->g[g].open)
            dispatch(w, g);
    if (w->tfd >= 0)
        arm_timer(w);
}

/* Wakeup from the main thread: go, or stop. */
static void on_async(struct ev_loop *loop, void *ud)
{
    struct fl_worker *w = ud;
    if (atomic_load(&w->run->stop)) {
        if (w->running)
            worker_finish(w);
        else
            ev_break(loop);
        return;
    }
    if (!w->running && atomic_load(&w->run->t0) && !w->t0)
        worker_start(w);
}

struct fl_worker *fl__worker_new(struct fl_run *run, int id, const int *gcount, const int *gstart)
{
    const struct fl_config *cfg = run->cfg;
    struct fl_worker *w = xcalloc(1, sizeof *w);
    w->run = run;
    w->cfg = cfg;
    w->id = id;
    w->tfd = -1;
    w->loop = ev_loop_new();
    if (!w->loop) {
        free(w);
        return NULL;
    }
    ev_set_data(w->loop, w);
    ev_set_async(w->loop, on_async, w);
    ev_timer_init(&w->sweep, on_sweep, w);
    ev_timer_init(&w->end, on_end, w);
    ev_timer_init(&w->retry_t[0], on_retry, w);
    ev_timer_init(&w->retry_t[1], on_retry, w);
    w->rng = ev_clock_ns() ^ ((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ull);
    if (!w->rng)
        w->rng = 1;
    w->nconns = (size_t)gcount[0] + (size_t)gcount[1];
    w->conns = xcalloc(w->nconns ? w->nconns : 1, sizeof *w->conns);
    size_t k = 0;
    for (int g = 0; g < FL_NGROUPS; g++) {
        w->g[g].nconns = (size_t)gcount[g];
        w->g[g].open = g == FL_USERS ? cfg->open : cfg->attacker_rate > 0;
        for (int i = 0; i < gcount[g]; i++, k++) {
            struct fl_conn *c = &w->conns[k];
            c->w = w;
            c->fd = -1;
            c->group = (uint8_t)g;
            c->id = (uint32_t)(gstart[g] + i);
            buf_init(&c->in);
        }
        if (w->g[g].open && gcount[g] && w->tfd < 0) {
            w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            if (w->tfd < 0 || ev_io_start(w->loop, w->tfd, EV_READ, on_tick, w) != 0) {
                log_error("flood: cannot create a timer: %s", strerror(errno));
                fl__worker_free(w);
                return NULL;
            }
        }
    }
    for (int g = 0; g < FL_NGROUPS; g++)
        fl_gstats_init(&w->gs[g]);
    size_t nt = FL_NGROUPS * cfg->mix.n;
    w->ts = xcalloc(nt, sizeof *w->ts);
    for (size_t i = 0; i < nt; i++)
        fl_tstats_init(&w->ts[i]);
    fl_hist_init(&w->cur_lat, FL_HIST_COARSE, FL_HIST_MAX_US);
    return w;
}

void *fl__worker_main(void *arg)
{
    struct fl_worker *w = arg;
    snprintf(log_thread_name, sizeof log_thread_name, "f%d", w->id);
    /* Wake up close to the intended send times: the default timer slack
     * of 50 us would add itself to every open-loop latency. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    if (w->cfg->conn_per_request) {
        atomic_store(&w->connected, (int)w->nconns);
    } else {
        for (size_t i = 0; i < w->nconns; i++)
            fl__conn_preconnect(&w->conns[i]);
    }
    /* A go that came before the loop ran is still pending on the eventfd. */
    int rc = ev_run(w->loop);
    if (rc < 0) {
        log_error("flood: event loop failed: %s", strerror(-rc));
        w->failed = true;
    }
    if (w->running)
        worker_finish(w);
    for (size_t i = 0; i < w->nconns; i++)
        fl__conn_close(&w->conns[i]);
    if (w->t0) {
        sec_roll(w, w->stop_ns ? w->stop_ns + 1000000000ull - 1 : w->t0);
    }
    return NULL;
}

void fl__worker_go(struct fl_worker *w) { ev_async_send(w->loop); }
void fl__worker_stop(struct fl_worker *w) { ev_async_send(w->loop); }

void fl__worker_free(struct fl_worker *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nconns; i++) {
        if (w->conns[i].w)
            fl__conn_close(&w->conns[i]);
        buf_free(&w->conns[i].in);
    }
    free(w->conns);
    if (w->tfd >= 0) {
        ev_io_stop(w->loop, w->tfd);
        close(w->tfd);
    }
    ev_loop_free(w->loop);
    for (int g = 0; g < FL_NGROUPS; g++)
        if (w->gs[g].lat.counts)
            fl_gstats_free(&w->gs[g]);
    if (w->ts) {
        for (size_t i = 0; i < FL_NGROUPS * w->cfg->mix.n; i++)
            fl_tstats_free(&w->ts[i]);
        free(w->ts);
    }
    for (size_t i = 0; i < w->nsecs; i++)
        fl_hist_sparse_free(&w->secs[i].lat);
    free(w->secs);
    if (w->cur_lat.counts)
        fl_hist_free(&w->cur_lat);
    free(w);
}
