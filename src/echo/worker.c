/* One echo worker thread: an event loop with its own SO_REUSEPORT
 * listener served by a core/httpd server (hooks in conn.c). Besides the
 * server, the worker owns the loop-wide chores: freeing connections
 * closed during the last iteration (httpd_free_dead, in the before-poll
 * hook), keeping the cached Date header current, and stopping: on
 * echo__worker_stop() it closes its listener and its idle connections,
 * lets busy ones finish their current response for up to ECHO_DRAIN_MS,
 * and leaves the loop when none is left. */
#include "echo/echo.h"

#include "core/log.h"
#include "core/rand.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t echo__rand(struct echo_worker *w)
{
    return fg_rand_next(&w->rng);
}

static void worker_on_drain_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct echo_worker *w = t->ud;
    FG_UNUSED(loop);
    httpd_close_all(w->srv);
}

static void worker_before_poll(struct ev_loop *loop, void *ud)
{
    struct echo_worker *w = ud;
    httpd_free_dead(w->srv);
    echo__date_update(w);
    if (w->stopping && httpd_nconns(w->srv) == 0)
        ev_break(loop);
}

/* Async wakeup: the only message is "stop". */
static void worker_on_async(struct ev_loop *loop, void *ud)
{
    struct echo_worker *w = ud;
    if (w->stopping)
        return;
    w->stopping = true;
    httpd_unlisten(w->srv);
    httpd_drain(w->srv);
    httpd_close_idle(w->srv);
    if (httpd_nconns(w->srv))
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
    ev_timer_init(&w->drain_timer, worker_on_drain_timer, w);
    ev_set_before_poll(w->loop, worker_before_poll, w);
    ev_set_async(w->loop, worker_on_async, w);
    w->srv = httpd_new(w->loop, &echo__limits, &echo__hooks, w);
    int rc = httpd_adopt(w->srv, lfd);
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
    w->stopping = true;
    httpd_close_all(w->srv);
    echo__ghosts_free(w);
    httpd_free_dead(w->srv);
    return NULL;
}

void echo__worker_stop(struct echo_worker *w) { ev_async_send(w->loop); }

void echo__worker_free(struct echo_worker *w)
{
    if (!w)
        return;
    httpd_free(w->srv);
    ev_loop_free(w->loop);
    free(w);
}
