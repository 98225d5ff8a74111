/* A flood run from the main thread's side: split the connections over
 * the workers, start their threads, wait (bounded) for their connections,
 * start the clock, show the progress line while they run, stop them at
 * the end or on a signal, and merge their statistics and time series.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread and taken with
 * sigtimedwait() by the main thread, which also wakes every 250 ms to
 * redraw the progress line. The workers end the run themselves at its
 * deadline; the main thread only has to stop them early. */
#include "flood/flood.h"

#include "core/cli.h"
#include "core/log.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define FL_TICK_MS 250

static uint64_t live_sum(struct fl_run *run, size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < run->nworkers; i++)
        s += atomic_load_explicit((_Atomic uint64_t *)((char *)run->w[i] + off), memory_order_relaxed);
    return s;
}

static void progress(const struct fl_config *cfg, struct fl_run *run, uint64_t now, uint64_t *hist_done,
                     uint64_t *hist_t, int *nh)
{
    uint64_t t0 = atomic_load(&run->t0);
    uint64_t done = live_sum(run, offsetof(struct fl_worker, live_done));
    uint64_t errs = live_sum(run, offsetof(struct fl_worker, live_errors));
    uint64_t rej = live_sum(run, offsetof(struct fl_worker, live_rejected));
    /* Rate over the last second from a small ring of samples. */
    int k = *nh % 5;
    hist_done[k] = done;
    hist_t[k] = now;
    (*nh)++;
    int oldest = *nh >= 5 ? *nh % 5 : 0;
    double dt = (double)(now - hist_t[oldest]) / 1e9;
    double rate = dt > 0 ? (double)(done - hist_done[oldest]) / dt : 0;
    double el = (double)(now - t0) / 1e9, total = (double)cfg->duration_ms / 1e3;
    double left = total - el > 0 ? total - el : 0;
    char tgt[48] = "";
    if (cfg->open)
        snprintf(tgt, sizeof tgt, " (target %.0f/s)", fl_profile_rate_at(&cfg->profile, now - t0));
    fprintf(stderr, "\r\033[K[%5.1fs left] %10.0f req/s%s  %llu done  %llu rejected  %llu errors", left, rate,
            tgt, (unsigned long long)done, (unsigned long long)rej, (unsigned long long)errs);
    fflush(stderr);
}

/* Merges the workers' per-second records into res->pts. */
static void merge_series(const struct fl_config *cfg, struct fl_run *run, struct fl_result *res)
{
    size_t n = 0;
    for (int i = 0; i < run->nworkers; i++)
        if (run->w[i]->nsecs > n)
            n = run->w[i]->nsecs;
    /* A last fragment of a second shorter than half a second is left out
     * of the series (a rate over it would read as a dip); the totals
     * still count it. */
    double secs = (double)res->elapsed_ns / 1e9;
    size_t keep = (size_t)floor(secs) + (secs - floor(secs) >= 0.5);
    if (keep < 1)
        keep = 1;
    if (n > keep)
        n = keep;
    res->pts = xcalloc(n ? n : 1, sizeof *res->pts);
    res->npts = n;
    struct fl_hist h;
    fl_hist_init(&h, FL_HIST_COARSE, FL_HIST_MAX_US);
    for (size_t s = 0; s < n; s++) {
        struct fl_point *p = &res->pts[s];
        fl_hist_reset(&h);
        for (int i = 0; i < run->nworkers; i++) {
            struct fl_worker *w = run->w[i];
            if (s >= w->nsecs)
                continue;
            const struct fl_sec *x = &w->secs[s];
            for (int g = 0; g < FL_NGROUPS; g++) {
                p->sent[g] += x->sent[g];
                p->done[g] += x->done[g];
            }
            for (int c = 0; c < FL_C_MAX; c++) {
                p->cls[c] += x->cls[c];
                p->atk_cls[c] += x->atk_cls[c];
            }
            p->bytes_in += x->bytes_in;
            fl_hist_add_sparse(&h, &x->lat);
        }
        p->p50 = fl_hist_percentile(&h, 50);
        p->p90 = fl_hist_percentile(&h, 90);
        p->p99 = fl_hist_percentile(&h, 99);
        p->p999 = fl_hist_percentile(&h, 99.9);
        p->max = h.total ? h.max : 0;
        if (cfg->open)
            p->target = fl_profile_rate_at(&cfg->profile, s * 1000000000ull + 500000000ull);
    }
    fl_hist_free(&h);
}

static void merge(const struct fl_config *cfg, struct fl_run *run, struct fl_result *res)
{
    size_t nt = FL_NGROUPS * cfg->mix.n;
    for (int g = 0; g < FL_NGROUPS; g++)
        fl_gstats_init(&res->g[g]);
    res->t = xcalloc(nt, sizeof *res->t);
    for (size_t i = 0; i < nt; i++)
        fl_tstats_init(&res->t[i]);
    uint64_t stop = 0;
    uint64_t t0 = atomic_load(&run->t0);
    for (int i = 0; i < run->nworkers; i++) {
        struct fl_worker *w = run->w[i];
        for (int g = 0; g < FL_NGROUPS; g++)
            fl_gstats_add(&res->g[g], &w->gs[g]);
        for (size_t k = 0; k < nt; k++)
            fl_tstats_add(&res->t[k], &w->ts[k]);
        if (w->stop_ns > stop)
            stop = w->stop_ns;
    }
    res->elapsed_ns = stop > t0 ? stop - t0 : 0;
    /* Distinct source addresses: a group's connects walk its ranges in
     * order (see fl__conn_source), so they used min(connects, total). */
    const struct fl_sources *src[FL_NGROUPS] = {&cfg->sources, &cfg->attacker_sources};
    for (int g = 0; g < FL_NGROUPS; g++) {
        uint64_t maxi = 0;
        for (int i = 0; i < run->nworkers; i++)
            for (size_t k = 0; k < run->w[i]->nconns; k++) {
                const struct fl_conn *c = &run->w[i]->conns[k];
                if (c->group != g || !c->nconnects)
                    continue;
                uint64_t last = (uint64_t)c->id + (c->nconnects - 1) * (uint64_t)cfg->group_conns[g] + 1;
                if (last > maxi)
                    maxi = last;
            }
        res->sources_used[g] = src[g]->total ? FG_MIN(maxi, src[g]->total) : 0;
    }
    merge_series(cfg, run, res);
}

/* Many connections need many descriptors: raise the soft limit toward
 * the hard one when the run needs more than it allows. */
static void raise_nofile(int conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr, "flood: the descriptor limit (%lu) is below %d connections; some connects will fail\n",
                (unsigned long)rl.rlim_cur, conns);
}

/* Creates the workers, each with its share of each group's connections
 * (the first ones get one more when they do not divide evenly). Returns 0
 * or -1 after printing why. */
static int create_workers(struct fl_run *run)
{
    const struct fl_config *cfg = run->cfg;
    int gstart[FL_NGROUPS] = {0, 0};
    for (int i = 0; i < run->nworkers; i++) {
        int gc[FL_NGROUPS];
        for (int g = 0; g < FL_NGROUPS; g++) {
            int total = cfg->group_conns[g];
            gc[g] = total / run->nworkers + (i < total % run->nworkers);
        }
        run->w[i] = fl__worker_new(run, i, gc, gstart);
        if (!run->w[i]) {
            fprintf(stderr, "floodgate flood: cannot create an event loop\n");
            return -1;
        }
        for (int g = 0; g < FL_NGROUPS; g++)
            gstart[g] += gc[g];
    }
    return 0;
}

/* Starts the workers' threads; *started counts those running. Returns 0
 * or -1 after printing why. */
static int start_workers(struct fl_run *run, int *started)
{
    for (int i = 0; i < run->nworkers; i++) {
        int rc = pthread_create(&run->w[i]->thread, NULL, fl__worker_main, run->w[i]);
        if (rc != 0) {
            fprintf(stderr, "floodgate flood: cannot start a thread: %s\n", strerror(rc));
            return -1;
        }
        (*started)++;
    }
    return 0;
}

/* Waits (bounded) until every connection is up, or a signal in set
 * arrives. */
static void wait_connected(struct fl_run *run, const sigset_t *set, struct fl_result *res)
{
    uint64_t until = ev_clock_ns() + FL_CONNECT_WAIT_MS * 1000000ull;
    while (ev_clock_ns() < until) {
        int up = 0;
        for (int i = 0; i < run->nworkers; i++)
            up += atomic_load(&run->w[i]->connected);
        if (up >= run->cfg->conns)
            break;
        struct timespec ts = {0, 2000000};
        int sig;
        if ((sig = sigtimedwait(set, NULL, &ts)) > 0) {
            atomic_store(&run->stop, true);
            res->interrupted = true;
            break;
        }
    }
}

/* Starts the clock and the workers' load, then waits for the end of the
 * run or a signal in set, drawing the progress line meanwhile. */
static void drive(struct fl_run *run, const sigset_t *set, struct fl_result *res)
{
    const struct fl_config *cfg = run->cfg;
    uint64_t t0 = ev_clock_ns();
    atomic_store(&run->t0, t0);
    for (int i = 0; i < run->nworkers; i++)
        fl__worker_go(run->w[i]);
    uint64_t end = t0 + cfg->duration_ms * 1000000ull;
    uint64_t hd[5] = {0}, ht[5] = {0};
    int nh = 0;
    while (!atomic_load(&run->stop)) {
        uint64_t now = ev_clock_ns();
        if (now >= end)
            break; /* the workers stop themselves at `end` too */
        if (cfg->progress)
            progress(cfg, run, now, hd, ht, &nh);
        uint64_t wait = FL_TICK_MS * 1000000ull;
        if (now < end && end - now < wait)
            wait = end - now;
        struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0) {
            res->interrupted = true;
            break;
        }
    }
    atomic_store(&run->stop, true);
    if (cfg->progress)
        fprintf(stderr, "\r\033[K");
}

/* Stops and joins the started workers. Returns -1 when one failed. */
static int stop_workers(struct fl_run *run, int started)
{
    int status = 0;
    atomic_store(&run->stop, true);
    for (int i = 0; i < started; i++)
        fl__worker_stop(run->w[i]);
    for (int i = 0; i < started; i++) {
        pthread_join(run->w[i]->thread, NULL);
        if (run->w[i]->failed)
            status = -1;
    }
    return status;
}

int fl_run(const struct fl_config *cfg, struct fl_result *res)
{
    memset(res, 0, sizeof *res);
    raise_nofile(cfg->conns);
    struct fl_run run = {.cfg = cfg};
    run.nworkers = cfg->threads;
    run.w = xcalloc((size_t)run.nworkers, sizeof *run.w);
    atomic_store(&run.t0, 0);
    atomic_store(&run.stop, false);

    sigset_t set, old;
    cli_block_stop_signals(&set, &old);

    int started = 0;
    int status = create_workers(&run);
    if (status == 0)
        status = start_workers(&run, &started);
    if (status == 0) {
        wait_connected(&run, &set, res);
        drive(&run, &set, res);
    }
    if (stop_workers(&run, started) != 0)
        status = -1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (status == 0)
        merge(cfg, &run, res);
    for (int i = 0; i < run.nworkers; i++)
        fl__worker_free(run.w[i]);
    free(run.w);
    return status;
}

void fl_result_free(struct fl_result *res, const struct fl_config *cfg)
{
    for (int g = 0; g < FL_NGROUPS; g++)
        if (res->g[g].lat.counts)
            fl_gstats_free(&res->g[g]);
    if (res->t) {
        for (size_t i = 0; i < FL_NGROUPS * cfg->mix.n; i++)
            fl_tstats_free(&res->t[i]);
        free(res->t);
    }
    free(res->pts);
    memset(res, 0, sizeof *res);
}
