/* Active health checks: one thread with its own event loop probes every
 * server of every service that has a health block, and moves servers up
 * and down through the rise/fall state machine of health.c.
 *
 * The checker keeps one record per checked server, in a hash table keyed
 * by the server pointer. A 100 ms tick takes the newest snapshot and
 * reconciles the table with it: a server that appears gets a record (and
 * a reference, so the object outlives any snapshot that drops it while a
 * probe is in flight), a record whose server left every snapshot or whose
 * service no longer checks is dropped. Records copy what they need of
 * their service's health settings, because the snapshot is released at
 * the end of the tick and a reload may change the settings under a server
 * that stays.
 *
 * A probe is one HTTP/1.1 GET on a fresh non-blocking connection:
 * connect, write the request, read until http_parse_response() has a
 * head, close. Each record has one timer: while idle it fires when the
 * next probe is due (interval after the previous one started), while a
 * probe is in flight it is the probe's deadline. So at most one probe per
 * server is ever in flight and the checker holds at most one socket per
 * server. Probe results feed gw_health_report(); transitions are applied
 * to the shared server with gw_health_apply() and logged.
 *
 * Thread context: gw_hcheck_start() and gw_hcheck_stop() are called by
 * the main thread; everything else runs on the checker thread. The only
 * state shared with other threads is the servers' atomics, which
 * gw_health_apply() writes. */
#include "gateway/gw.h"
#include "gateway/balance/health.h"

#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HC_TICK_MS 100          /* snapshot reconciliation period */
#define HC_MAX_HEADERS 64       /* response header lines a probe accepts */
#define HC_MAX_HEAD (16u * 1024) /* response head size a probe accepts */
#define HC_READ_CHUNK 4096u

struct hc_rec {
    struct ev_loop *loop;       /* the checker's */
    struct gw_server *srv;      /* reference held */
    struct hc_rec *next;        /* hash chain */
    struct gw_health h;         /* rise/fall machine, checker thread only */
    struct gw_health_cfg hcfg;  /* service's rise and fall */
    char *path;                 /* owned copy of the service's health path */
    uint64_t interval_ms;
    uint64_t timeout_ms;
    int expect_min, expect_max;
    uint64_t seen;              /* tick in which a checking service listed it */
    uint64_t present;           /* tick in which any service listed it */
    struct ev_timer timer;      /* next probe (idle) or deadline (in flight) */
    /* the probe in flight */
    int fd;                     /* -1 when idle */
    bool connecting;
    uint64_t started_ms;        /* when the current or last probe began */
    struct buf out;             /* request bytes not yet written */
    struct buf in;              /* response bytes read so far */
};

struct gw_hcheck {
    struct gw *gw;              /* the process it checks for (snapshots) */
    pthread_t thread;
    struct ev_loop *loop;
    atomic_bool stopping;
    struct ev_timer tick;
    uint64_t ntick;             /* reconciliation counter (the marks above) */
    struct hc_rec **tab;        /* buckets, a power of two */
    size_t cap;
    size_t n;
};

/* ---- the record table ---- */

static size_t hc_bucket(const struct gw_hcheck *h, const struct gw_server *s)
{
    uint64_t k = (uint64_t)(uintptr_t)s;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & (h->cap - 1);
}

static struct hc_rec *hc_find(const struct gw_hcheck *h, const struct gw_server *s)
{
    for (struct hc_rec *r = h->tab[hc_bucket(h, s)]; r; r = r->next)
        if (r->srv == s)
            return r;
    return NULL;
}

static void hc_grow(struct gw_hcheck *h)
{
    struct hc_rec **old = h->tab;
    size_t oldcap = h->cap;
    h->cap *= 2;
    h->tab = xcalloc(h->cap, sizeof *h->tab);
    for (size_t i = 0; i < oldcap; i++) {
        struct hc_rec *r = old[i];
        while (r) {
            struct hc_rec *next = r->next;
            size_t b = hc_bucket(h, r->srv);
            r->next = h->tab[b];
            h->tab[b] = r;
            r = next;
        }
    }
    free(old);
}

/* ---- one probe ---- */

static void probe_io_cb(struct ev_loop *loop, int fd, void *ud, int events);
static void rec_timer_cb(struct ev_loop *loop, struct ev_timer *t);

/* Closes the probe's socket, if any, and forgets its buffers. */
static void probe_close(struct hc_rec *r)
{
    if (r->fd >= 0) {
        ev_io_stop(r->loop, r->fd);
        close(r->fd);
        r->fd = -1;
    }
    r->connecting = false;
    buf_free(&r->out);
    buf_free(&r->in);
}

/* Ends the probe in flight with its result: feeds the state machine,
 * applies and logs a transition, and schedules the next probe one
 * interval after this one began (at once if that is already past).
 * fmt says what happened, for the log ("status 200", "connection
 * refused"). */
static void probe_done(struct hc_rec *r, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void probe_done(struct hc_rec *r, bool ok, const char *fmt, ...)
{
    struct ev_loop *loop = r->loop;
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);

    probe_close(r);
    ev_timer_stop(loop, &r->timer);

    struct gw_server *s = r->srv;
    int change = gw_health_report(&r->h, &r->hcfg, ok);
    if (change != 0) {
        gw_health_apply(s, change, ev_now(loop));
        if (change < 0)
            log_warn("server %s/%s is DOWN: %s (%d consecutive failure%s)", s->service,
                     s->addr_str, why, r->h.fail_run, r->h.fail_run == 1 ? "" : "s");
        else
            log_warn("server %s/%s is UP: %s (%d consecutive success%s)", s->service,
                     s->addr_str, why, r->h.ok_run, r->h.ok_run == 1 ? "" : "es");
    } else if (!ok) {
        log_debug("health check of %s/%s failed: %s", s->service, s->addr_str, why);
    }

    uint64_t next = r->started_ms + r->interval_ms;
    ev_timer_start_at(loop, &r->timer, FG_MAX(next, ev_now(loop)));
}

/* An errno value as a lowercase phrase: "connection refused". */
static const char *errno_phrase(int e, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", strerror(e));
    if (out[0] >= 'A' && out[0] <= 'Z')
        out[0] = (char)(out[0] - 'A' + 'a');
    return out;
}

/* Starts a probe: connect, queue the request, wait for writability.
 * The record's timer becomes the probe's deadline. */
static void probe_start(struct hc_rec *r)
{
    struct ev_loop *loop = r->loop;
    char ebuf[64];
    r->started_ms = ev_now(loop);

    bool in_progress = false;
    int fd = net_connect(&r->srv->addr, NULL, &in_progress);
    if (fd < 0) {
        probe_done(r, false, "%s", errno_phrase(-fd, ebuf, sizeof ebuf));
        return;
    }
    int rc = ev_io_start(loop, fd, EV_WRITE, probe_io_cb, r);
    if (rc != 0) {
        close(fd);
        probe_done(r, false, "cannot watch socket: %s", errno_phrase(-rc, ebuf, sizeof ebuf));
        return;
    }
    r->fd = fd;
    r->connecting = in_progress;
    buf_reset(&r->out);
    buf_reset(&r->in);
    buf_printf(&r->out,
               "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: floodgate-health\r\n"
               "Connection: close\r\n\r\n",
               r->path, r->srv->addr_str);
    ev_timer_start(loop, &r->timer, r->timeout_ms);
}

/* Writes what is left of the request. Returns 0 when all of it is out,
 * -EAGAIN when the socket is full, or -errno. */
static int probe_write(struct hc_rec *r)
{
    while (buf_len(&r->out) > 0) {
        ssize_t n = send(r->fd, buf_rptr(&r->out), buf_len(&r->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        buf_consume(&r->out, (size_t)n);
    }
    return 0;
}

/* Parses what was read so far. Returns true when the probe has ended
 * (probe_done() was called), false when more bytes are needed. */
static bool probe_parse(struct hc_rec *r)
{
    for (;;) {
        struct http_response resp;
        struct http_header hdrs[HC_MAX_HEADERS];
        int rc = http_parse_response(buf_rptr(&r->in), buf_len(&r->in), &resp, hdrs,
                                     HC_MAX_HEADERS, HC_MAX_HEAD);
        if (rc == HTTP_INCOMPLETE)
            return false;
        if (rc < 0) {
            probe_done(r, false, rc == HTTP_ETOOBIG ? "response head too large" : "bad response");
            return true;
        }
        if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
            /* An interim response (100 Continue, 103 Early Hints): the
             * final one follows. */
            buf_consume(&r->in, (size_t)rc);
            continue;
        }
        bool ok = resp.status >= r->expect_min && resp.status <= r->expect_max;
        probe_done(r, ok, "status %d", resp.status);
        return true;
    }
}

/* Reads what the socket has and parses it, until the head is complete,
 * the socket is drained or the probe failed. */
static void probe_read(struct hc_rec *r)
{
    char ebuf[64];
    for (;;) {
        buf_reserve(&r->in, HC_READ_CHUNK);
        ssize_t n = read(r->fd, buf_wptr(&r->in), buf_room(&r->in));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                probe_done(r, false, "%s", errno_phrase(errno, ebuf, sizeof ebuf));
            return;
        }
        if (n == 0) {
            probe_done(r, false, buf_len(&r->in) ? "connection closed inside the response head"
                                                  : "connection closed without a response");
            return;
        }
        buf_commit(&r->in, (size_t)n);
        if (probe_parse(r))
            return;
    }
}

static void probe_io_cb(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct hc_rec *r = ud;
    char ebuf[64];

    if (r->connecting) {
        int rc = net_connect_result(fd);
        if (rc != 0) {
            probe_done(r, false, "%s", errno_phrase(-rc, ebuf, sizeof ebuf));
            return;
        }
        r->connecting = false;
    }
    if (buf_len(&r->out) > 0) {
        int rc = probe_write(r);
        if (rc == -EAGAIN)
            return;
        if (rc != 0) {
            probe_done(r, false, "%s", errno_phrase(-rc, ebuf, sizeof ebuf));
            return;
        }
        buf_free(&r->out);
        rc = ev_io_set(loop, fd, EV_READ);
        if (rc != 0) {
            probe_done(r, false, "cannot watch socket: %s", errno_phrase(-rc, ebuf, sizeof ebuf));
            return;
        }
        /* The response is usually not there yet: wait for readability. */
        if (!(events & EV_READ))
            return;
    }
    probe_read(r);
}

/* The record's timer: start the next probe, or time out the one in
 * flight. */
static void rec_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct hc_rec *r = t->ud;
    if (r->fd < 0) {
        probe_start(r);
        return;
    }
    if (r->connecting)
        probe_done(r, false, "connect timed out after %llu ms", (unsigned long long)r->timeout_ms);
    else
        probe_done(r, false, "timed out after %llu ms", (unsigned long long)r->timeout_ms);
}

/* ---- reconciliation with the snapshot ---- */

/* Copies the service's settings into the record. A shorter interval
 * brings an idle record's next probe forward. */
static void rec_configure(struct hc_rec *r, const struct gw_service *svc)
{
    const struct gw_cfg_health *c = &svc->health;
    const char *path = c->path && c->path[0] ? c->path : "/";
    if (!r->path || strcmp(r->path, path) != 0) {
        free(r->path);
        r->path = xstrdup(path);
    }
    r->hcfg.rise = c->rise;
    r->hcfg.fall = c->fall;
    r->timeout_ms = c->timeout_ms ? c->timeout_ms : 1;
    r->expect_min = c->expect_min;
    r->expect_max = c->expect_max;
    uint64_t interval = c->interval_ms ? c->interval_ms : 1;
    if (interval < r->interval_ms && r->fd < 0 && ev_timer_active(&r->timer)) {
        uint64_t next = r->started_ms + interval;
        if (next < r->timer.when)
            ev_timer_start_at(r->loop, &r->timer, FG_MAX(next, ev_now(r->loop)));
    }
    r->interval_ms = interval;
}

static struct hc_rec *rec_new(struct gw_hcheck *h, struct gw_server *s)
{
    struct hc_rec *r = xcalloc(1, sizeof *r);
    gw_server_ref(s);
    r->loop = h->loop;
    r->srv = s;
    r->fd = -1;
    int state = atomic_load_explicit(&s->health, memory_order_acquire) == GW_DOWN ? GW_DOWN : GW_UP;
    gw_health_init(&r->h, state);
    buf_init(&r->out);
    buf_init(&r->in);
    ev_timer_init(&r->timer, rec_timer_cb, r);
    r->interval_ms = UINT64_MAX; /* rec_configure() sets the real one */

    if (h->n + 1 > h->cap)
        hc_grow(h);
    size_t b = hc_bucket(h, s);
    r->next = h->tab[b];
    h->tab[b] = r;
    h->n++;
    return r;
}

/* Frees a record already unlinked from the table. */
static void rec_free(struct hc_rec *r)
{
    probe_close(r);
    ev_timer_stop(r->loop, &r->timer);
    gw_server_unref(r->srv);
    free(r->path);
    free(r);
}

/* Brings the table in line with snapshot s (NULL: no snapshot yet, keep
 * everything). New records probe at once. A server still in the snapshot
 * whose service stopped checking is set up again if the checker had put
 * it down, since nothing else would ever bring it back. */
static void hc_sync(struct gw_hcheck *h, struct gw_snapshot *s)
{
    if (!s)
        return;
    uint64_t mark = ++h->ntick;
    for (size_t i = 0; i < s->nservices; i++) {
        struct gw_service *svc = s->services[i];
        for (size_t j = 0; j < svc->nservers; j++) {
            struct gw_server *srv = svc->servers[j];
            struct hc_rec *r = hc_find(h, srv);
            if (!svc->health.enabled) {
                if (r)
                    r->present = mark;
                continue;
            }
            if (!r) {
                r = rec_new(h, srv);
                rec_configure(r, svc);
                ev_timer_start(h->loop, &r->timer, 0);
            } else {
                rec_configure(r, svc);
            }
            r->seen = r->present = mark;
        }
    }

    for (size_t b = 0; b < h->cap; b++) {
        struct hc_rec **pp = &h->tab[b];
        while (*pp) {
            struct hc_rec *r = *pp;
            if (r->seen == mark) {
                pp = &r->next;
                continue;
            }
            *pp = r->next;
            h->n--;
            if (r->present == mark && r->h.state == GW_DOWN) {
                gw_health_apply(r->srv, 1, ev_now(h->loop));
                log_warn("server %s/%s is UP: health checks turned off", r->srv->service,
                         r->srv->addr_str);
            }
            rec_free(r);
        }
    }
}

static void tick_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct gw_hcheck *h = t->ud;
    struct gw_snapshot *s = gw_snapshot_get(h->gw);
    hc_sync(h, s);
    if (s)
        gw_snapshot_unref(s);
    ev_timer_start(loop, &h->tick, HC_TICK_MS);
}

/* ---- the thread ---- */

static void wake_cb(struct ev_loop *loop, void *ud)
{
    struct gw_hcheck *h = ud;
    if (atomic_load(&h->stopping))
        ev_break(loop);
}

static void *hc_main(void *arg)
{
    struct gw_hcheck *h = arg;
    snprintf(log_thread_name, sizeof log_thread_name, "hcheck");
    pthread_setname_np(pthread_self(), "fg-hcheck");
    ev_timer_start(h->loop, &h->tick, 0);
    int rc = ev_run(h->loop);
    if (rc != 0)
        log_error("health checker: event loop failed: %s", strerror(-rc));

    ev_timer_stop(h->loop, &h->tick);
    for (size_t b = 0; b < h->cap; b++) {
        while (h->tab[b]) {
            struct hc_rec *r = h->tab[b];
            h->tab[b] = r->next;
            rec_free(r);
        }
    }
    h->n = 0;
    return NULL;
}

int gw_hcheck_start(struct gw *g, char **err)
{
    ASSERT(!g->hcheck);
    struct ev_loop *loop = ev_loop_new();
    if (!loop) {
        *err = xasprintf("health checker: cannot create an event loop");
        return -1;
    }
    struct gw_hcheck *h = xcalloc(1, sizeof *h);
    h->gw = g;
    h->loop = loop;
    atomic_init(&h->stopping, false);
    h->cap = 64;
    h->tab = xcalloc(h->cap, sizeof *h->tab);
    ev_timer_init(&h->tick, tick_cb, h);
    ev_set_async(loop, wake_cb, h);
    g->hcheck = h;

    /* Signals are for the threads that handle them, not this one. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&h->thread, NULL, hc_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        *err = xasprintf("health checker: cannot start thread: %s", strerror(rc));
        g->hcheck = NULL;
        ev_loop_free(loop);
        free(h->tab);
        free(h);
        return -1;
    }
    return 0;
}

void gw_hcheck_stop(struct gw *g)
{
    struct gw_hcheck *h = g->hcheck;
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    ev_async_send(h->loop);
    pthread_join(h->thread, NULL);
    g->hcheck = NULL;
    ev_loop_free(h->loop);
    free(h->tab);
    free(h);
}
