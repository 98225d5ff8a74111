/* One echo worker thread: an event loop with its own SO_REUSEPORT
 * listener and the connections it accepted. Besides accepting, the worker
 * owns the loop-wide chores: freeing connections closed during the last
 * iteration (the close list, drained in the before-poll hook, as Redis
 * does with freeClientAsync), keeping the cached Date header current, and
 * stopping: on echo__worker_stop() it closes its listener and its idle
 * connections, lets busy ones finish their current response for up to
 * ECHO_DRAIN_MS, and leaves the loop when none is left. */
#include "echo/echo.h"

#include "core/log.h"
#include "core/rand.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ECHO_ACCEPT_BATCH 128  /* accepts per readiness event */
#define ECHO_ACCEPT_PAUSE_MS 100 /* back-off after running out of descriptors */

static void worker_on_accept(struct ev_loop *loop, int fd, void *ud, int events);

uint64_t echo__rand(struct echo_worker *w)
{
    return fg_rand_next(&w->rng);
}

static void worker_on_accept(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct echo_worker *w = ud;
    FG_UNUSED(events);
    for (int i = 0; i < ECHO_ACCEPT_BATCH; i++) {
        int cfd = net_accept(fd, NULL);
        if (cfd >= 0) {
            echo__conn_open(w, cfd);
            continue;
        }
        if (cfd == -EAGAIN)
            return;
        if (cfd == -EINTR || cfd == -ECONNABORTED)
            continue;
        if (cfd == -EMFILE || cfd == -ENFILE || cfd == -ENOBUFS || cfd == -ENOMEM) {
            /* The listener stays readable: without a pause the loop
             * would spin until a descriptor frees up. */
            log_warn("echo: accept: %s; pausing accepts for %d ms", strerror(-cfd),
                     ECHO_ACCEPT_PAUSE_MS);
            ev_io_stop(loop, fd);
            ev_timer_start(loop, &w->accept_timer, ECHO_ACCEPT_PAUSE_MS);
            return;
        }
        log_warn("echo: accept: %s", strerror(-cfd));
        return;
    }
}

static void worker_on_accept_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct echo_worker *w = t->ud;
    if (w->stopping || w->lfd < 0)
        return;
    int rc = ev_io_start(loop, w->lfd, EV_READ, worker_on_accept, w);
    if (rc != 0)
        log_error("echo: cannot watch the listener: %s", strerror(-rc));
}

static void worker_on_drain_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct echo_worker *w = t->ud;
    FG_UNUSED(loop);
    while (w->conns)
        echo__conn_close(w->conns);
}

static void worker_before_poll(struct ev_loop *loop, void *ud)
{
    struct echo_worker *w = ud;
    while (w->closing) {
        struct echo_conn *c = w->closing;
        w->closing = c->next;
        echo__conn_free(c);
    }
    echo__date_update(w);
    if (w->stopping && w->nconns == 0)
        ev_break(loop);
}

/* Async wakeup: the only message is "stop". */
static void worker_on_async(struct ev_loop *loop, void *ud)
{
    struct echo_worker *w = ud;
    if (w->stopping)
        return;
    w->stopping = true;
    ev_timer_stop(loop, &w->accept_timer);
    if (w->lfd >= 0) {
        ev_io_stop(loop, w->lfd);
        close(w->lfd);
        w->lfd = -1;
    }
    struct echo_conn *next;
    for (struct echo_conn *c = w->conns; c; c = next) {
        next = c->next;
        echo__conn_drain(c);
    }
    if (w->nconns)
        ev_timer_start(loop, &w->drain_timer, ECHO_DRAIN_MS);
}

/* See echo.h. The loop is set up here, on the main thread, before the
 * worker's thread exists; pthread_create() orders these writes before
 * anything the thread does. Returns NULL (and closes lfd) on failure. */
struct echo_worker *echo__worker_new(const struct echo_config *cfg, int id, int lfd)
{
    struct echo_worker *w = xcalloc(1, sizeof *w);
    w->cfg = cfg;
    w->id = id;
    w->lfd = lfd;
    w->loop = ev_loop_new();
    if (!w->loop) {
        close(lfd);
        free(w);
        return NULL;
    }
    w->rng = ev_clock_ns() ^ ((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ull);
    if (!w->rng)
        w->rng = 1;
    ev_set_data(w->loop, w);
    ev_timer_init(&w->accept_timer, worker_on_accept_timer, w);
    ev_timer_init(&w->drain_timer, worker_on_drain_timer, w);
    ev_set_before_poll(w->loop, worker_before_poll, w);
    ev_set_async(w->loop, worker_on_async, w);
    int rc = ev_io_start(w->loop, lfd, EV_READ, worker_on_accept, w);
    if (rc != 0) {
        log_error("echo: cannot watch the listener: %s", strerror(-rc));
        echo__worker_free(w);
        return NULL;
    }
    echo__date_update(w);
    return w;
}

void *echo__worker_run(void *arg)
{
    struct echo_worker *w = arg;
    snprintf(log_thread_name, sizeof log_thread_name, "w%d", w->id);
    int rc = ev_run(w->loop);
    if (rc < 0) {
        log_error("echo: event loop failed: %s", strerror(-rc));
        w->failed = true;
        kill(getpid(), SIGTERM); /* wakes the main thread, which stops the others */
    }
    w->stopping = true; /* freed connections are not kept as spares */
    while (w->conns)
        echo__conn_close(w->conns);
    while (w->closing) {
        struct echo_conn *c = w->closing;
        w->closing = c->next;
        echo__conn_free(c);
    }
    echo__ghosts_free(w);
    while (w->spare) {
        struct echo_conn *c = w->spare;
        w->spare = c->next;
        buf_free(&c->stash);
        free(c);
    }
    w->nspare = 0;
    return NULL;
}

void echo__worker_stop(struct echo_worker *w) { ev_async_send(w->loop); }

void echo__worker_free(struct echo_worker *w)
{
    if (!w)
        return;
    if (w->lfd >= 0) {
        ev_io_stop(w->loop, w->lfd);
        close(w->lfd);
    }
    ev_loop_free(w->loop);
    buf_free(&w->wout);
    free(w);
}
