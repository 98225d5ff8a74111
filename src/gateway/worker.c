/* Worker threads: each has its own event loop and its own SO_REUSEPORT
 * listener per listen address, so the kernel spreads new connections over
 * threads and a connection stays on one thread for life (no locks on the
 * data path). Before each poll a worker frees the connections closed
 * during the iteration, adopts the newest configuration snapshot and, when
 * the gateway is stopping, closes its listeners and idle connections and
 * leaves once none remain. */
#include "gateway/proxy/conn.h"
#include "gateway/limit/redis.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gw_worker_link_conn(struct gw_worker *w, struct gw_conn *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
}

void gw_worker_unlink_conn(struct gw_worker *w, struct gw_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

char *gw_buf_prepare(struct gw_worker *w, struct buf *b)
{
    if (!b->data && w->nbufcache) {
        b->data = w->bufcache[--w->nbufcache];
        b->cap = GW_IO_CHUNK;
        b->rpos = b->wpos = 0;
    }
    return buf_reserve(b, GW_IO_CHUNK);
}

void gw_buf_release(struct gw_worker *w, struct buf *b)
{
    if (!b->data || buf_len(b))
        return;
    if (b->cap == GW_IO_CHUNK && w->nbufcache < GW_BUFCACHE)
        w->bufcache[w->nbufcache++] = b->data;
    else
        free(b->data);
    buf_init(b);
}

/* Accepts up to max connections waiting on lfd; returns false once the
 * queue is empty. */
static bool accept_batch(struct gw_worker *w, int lfd, int max)
{
    struct gw *g = w->gw;
    int maxc = WCFG(w)->limits.max_connections;
    for (int i = 0; i < max; i++) {
        struct net_addr peer;
        int fd = net_accept(lfd, &peer);
        if (fd < 0) {
            if (fd != -EAGAIN && fd != -ECONNABORTED && fd != -EINTR)
                log_warn("accept: %s", strerror(-fd));
            return false;
        }
        if (atomic_fetch_add_explicit(&g->conns, 1, memory_order_relaxed) >= maxc) {
            /* Over the process limit: refuse at the cost of accept+close. */
            atomic_fetch_sub_explicit(&g->conns, 1, memory_order_relaxed);
            gw_ctr_inc(&w->st.refused);
            close(fd);
            continue;
        }
        /* An allow/deny change acknowledged by the admin API applies to
         * the very next connection, even one accepted in the same loop
         * iteration as the wakeup that announces it. */
        if (gw_snapshot_newer(w))
            gw_worker_refresh_snapshot(w);
        bool counted;
        if (!gw_guard_accept(w, &peer, &counted)) {
            atomic_fetch_sub_explicit(&g->conns, 1, memory_order_relaxed);
            gw_ctr_inc(&w->st.refused);
            close(fd);
            continue;
        }
        gw_conn_accept(w, fd, &peer, counted);
    }
    return true;
}

static void on_accept(struct ev_loop *loop, int lfd, void *ud, int events)
{
    /* Bounded batch per wakeup, so one busy listener cannot starve the
     * connections already open. */
    accept_batch(ud, lfd, 64);
}

void gw_worker_close_listeners(struct gw_worker *w)
{
    for (int i = 0; i < w->nlfds; i++) {
        if (w->lfds[i] >= 0) {
            ev_io_stop(w->loop, w->lfds[i]);
            close(w->lfds[i]);
            w->lfds[i] = -1;
        }
    }
}

/* Stopping: no new connections; idle keep-alive connections close now,
 * busy ones close after their current response (request_finished checks
 * gw->stopping). */
static void begin_drain(struct gw_worker *w)
{
    w->draining = true;
    /* Closing a listener resets the connections still in its accept queue
     * (the kernel completed their handshakes): take them first, so they
     * are served (and closed after their response) like any other. */
    for (int i = 0; i < w->nlfds; i++)
        if (w->lfds[i] >= 0)
            for (int k = 0; k < 256 && accept_batch(w, w->lfds[i], 64); k++)
                ;
    gw_worker_close_listeners(w);
    atomic_fetch_add(&w->gw->drained_workers, 1);
    struct gw_conn *c = w->conns;
    while (c) {
        struct gw_conn *next = c->next;
        /* Idle between requests: close. A connection that has not sent
         * its first request yet waits for it (up to the drain deadline):
         * it may have been in the accept queue a moment ago. */
        if (c->state == CS_HEAD && !c->in_req && buf_len(&c->in) == 0 && c->nreq > 0)
            gw_conn_close(c);
        c = next;
    }
}

/* The worker's connection to the shared rate-limit store follows its
 * config: made when rate_limit_store: appears, remade when it changes
 * (requests waiting on the old one get its on_error), dropped when it
 * goes. */
static void sync_rl_redis(struct gw_worker *w)
{
    const struct gw_config *cfg = w->snap->cfg;
    if (w->rlr && cfg->has_rl_redis && rl_redis_cfg_equal(rl_redis_config(w->rlr), &cfg->rl_redis))
        return;
    struct rl_redis *old = w->rlr;
    w->rlr = cfg->has_rl_redis ? rl_redis_new(w->loop, &cfg->rl_redis) : NULL;
    rl_redis_free(old);
}

void gw_worker_refresh_snapshot(struct gw_worker *w)
{
    struct gw_snapshot *s = gw_snapshot_get(w->gw);
    gw_snapshot_unref(w->snap);
    w->snap = s;
    sync_rl_redis(w);
}

static void before_poll(struct ev_loop *loop, void *ud)
{
    struct gw_worker *w = ud;
    gw_worker_free_closed(w);
    /* Adopt the newest snapshot (cheap pointer compare when unchanged). */
    if (gw_snapshot_newer(w))
        gw_worker_refresh_snapshot(w);
    if (w->nadmq)
        gw_worker_poll_admission(w);
    if (atomic_load_explicit(&w->gw->force_stop, memory_order_relaxed)) {
        ev_break(loop);
        return;
    }
    if (atomic_load_explicit(&w->gw->stopping, memory_order_relaxed)) {
        if (!w->draining)
            begin_drain(w);
        if (!w->conns)
            ev_break(loop);
    }
}

static void on_async(struct ev_loop *loop, void *ud)
{
    /* Nothing to do here: before_poll runs next and looks at the flags. */
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;
    snprintf(log_thread_name, sizeof log_thread_name, "w%d", w->id);
    sync_rl_redis(w);
    ev_run(w->loop);
    /* Drain deadline passed or all done: close whatever is left. */
    while (w->conns)
        gw_conn_close(w->conns);
    rl_redis_free(w->rlr);
    w->rlr = NULL;
    gw_worker_free_closed(w);
    gw_worker_free_admq(w);
    gw_worker_drop_pools(w);
    while (w->nbufcache)
        free(w->bufcache[--w->nbufcache]);
    return NULL;
}

int gw_workers_start(struct gw *g, char **err)
{
    struct gw_config *cfg = atomic_load(&g->snap)->cfg;
    g->workers = xcalloc((size_t)g->nworkers, sizeof *g->workers);
    for (int i = 0; i < g->nworkers; i++) {
        struct gw_worker *w = xcalloc(1, sizeof *w);
        g->workers[i] = w;
        w->gw = g;
        w->id = i;
        w->loop = ev_loop_new();
        if (!w->loop) {
            *err = xasprintf("cannot create event loop: %s", strerror(errno));
            return -1;
        }
        ev_set_data(w->loop, w);
        ev_set_before_poll(w->loop, before_poll, w);
        ev_set_async(w->loop, on_async, w);
        w->snap = gw_snapshot_get(g);
        w->lfds = xcalloc(cfg->nlisten, sizeof *w->lfds);
    }
    /* One listener per worker and address; only these share an address
     * (SO_REUSEPORT): one another process holds fails here. A reload never
     * reopens them (listen changes take effect at restart). */
    int *fds = xcalloc((size_t)g->nworkers, sizeof *fds);
    for (size_t l = 0; l < cfg->nlisten; l++) {
        struct net_addr a = cfg->listen_addr[l];
        int rc = net_listen_shared(&a, g->nworkers, 4096, fds);
        if (rc < 0) {
            *err = xasprintf("cannot listen on %s: %s", cfg->listen[l], strerror(-rc));
            free(fds);
            return -1;
        }
        for (int i = 0; i < g->nworkers; i++) {
            struct gw_worker *w = g->workers[i];
            w->lfds[l] = fds[i];
            w->nlfds = (int)l + 1;
            ev_io_start(w->loop, fds[i], EV_READ, on_accept, w);
        }
    }
    free(fds);
    for (int i = 0; i < g->nworkers; i++) {
        if (pthread_create(&g->workers[i]->thread, NULL, worker_main, g->workers[i]) != 0) {
            *err = xasprintf("cannot start worker thread: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Joins the workers (after gw->stopping was set and they were woken) and
 * frees them. Workers still busy when the drain deadline passes are told
 * to stop at once by the caller (force = true). */
void gw_workers_stop(struct gw *g)
{
    for (int i = 0; i < g->nworkers; i++) {
        struct gw_worker *w = g->workers[i];
        if (!w)
            continue;
        if (w->thread)
            pthread_join(w->thread, NULL);
        gw_worker_close_listeners(w);
        gw_snapshot_unref(w->snap);
        ev_loop_free(w->loop);
        free(w->lfds);
        free(w);
        g->workers[i] = NULL;
    }
    free(g->workers);
    g->workers = NULL;
    g->nworkers = 0;
}
