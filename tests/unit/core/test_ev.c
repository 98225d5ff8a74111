/* Unit tests for core/ev: timers fire in deadline order, re-arming an
 * active timer moves it in place (it still fires once), stopped timers
 * never fire (also when stopped by an earlier callback of the same
 * round), a timer that re-arms itself cannot starve the loop (the per
 * round budget), fd readiness over a socketpair (read, write, mask
 * changes, hang-up, a watcher stopped during dispatch), the before-poll
 * hook, the async wakeup and the cached clock. Deadlines are set in the
 * past or far in the future so no test waits on real time; each suite
 * has a generous timeout only so that a broken loop fails instead of
 * hanging. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/ev.h"

#define FAR_MS (1000ull * 1000 * 1000) /* far enough never to fire */

struct rec {
    int order[16];
    int n;
    int stop_after; /* ev_break() once n reaches it */
    struct ev_timer *cancel; /* stopped by the first callback when set */
};

struct tmr {
    struct ev_timer t;
    int id;
    struct rec *r;
};

static void record_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct tmr *x = t->ud;
    struct rec *r = x->r;
    cr_assert_lt(r->n, 16);
    cr_assert_not(ev_timer_active(t)); /* stopped before its callback runs */
    cr_assert_geq(ev_now(loop), t->when);
    r->order[r->n++] = x->id;
    if (r->cancel) {
        ev_timer_stop(loop, r->cancel);
        r->cancel = NULL;
    }
    if (r->n == r->stop_after)
        ev_break(loop);
}

static void tmr_init(struct tmr *x, int id, struct rec *r)
{
    x->id = id;
    x->r = r;
    ev_timer_init(&x->t, record_cb, x);
}

/* A timer far in the future that ends the loop should the test's own
 * timers not: it never fires in a passing test. */
static void guard_cb(struct ev_loop *loop, struct ev_timer *t) { ev_break(loop); }

TestSuite(ev_timer, .timeout = 60);
TestSuite(ev_io, .timeout = 60);
TestSuite(ev_loop, .timeout = 60);

Test(ev_timer, fire_in_deadline_order)
{
    struct ev_loop *loop = ev_loop_new();
    cr_assert_not_null(loop);
    struct rec r = {.stop_after = 8};
    struct tmr t[8];
    /* Deadlines all in the past, started in a scrambled order. */
    const int when[8] = {50, 10, 70, 30, 80, 20, 60, 40};
    for (int i = 0; i < 8; i++) {
        tmr_init(&t[i], when[i], &r);
        ev_timer_start_at(loop, &t[i].t, (uint64_t)when[i]);
        cr_assert(ev_timer_active(&t[i].t));
    }
    cr_assert_eq(ev_run(loop), 0);
    cr_assert_eq(r.n, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(r.order[i], (i + 1) * 10, "position %d fired %d", i, r.order[i]);
    for (int i = 0; i < 8; i++)
        cr_assert_not(ev_timer_active(&t[i].t));
    ev_loop_free(loop);
}

Test(ev_timer, rearm_in_place_moves_the_deadline)
{
    struct ev_loop *loop = ev_loop_new();
    struct rec r = {.stop_after = 4};
    struct tmr a, b, c, d;
    tmr_init(&a, 1, &r);
    tmr_init(&b, 2, &r);
    tmr_init(&c, 3, &r);
    tmr_init(&d, 4, &r);
    ev_timer_start_at(loop, &a.t, 10);
    ev_timer_start_at(loop, &b.t, 20);
    ev_timer_start_at(loop, &c.t, ev_now(loop) + FAR_MS);
    ev_timer_start_at(loop, &d.t, 40);
    /* Later (a), earlier (c from the far future), and the same again (d):
     * each is moved, not added twice. */
    ev_timer_start_at(loop, &a.t, 30);
    ev_timer_start_at(loop, &c.t, 5);
    ev_timer_start_at(loop, &d.t, 40);
    cr_assert_eq(a.t.when, 30);
    cr_assert_eq(ev_run(loop), 0);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.order[0], 3);
    cr_assert_eq(r.order[1], 2);
    cr_assert_eq(r.order[2], 1);
    cr_assert_eq(r.order[3], 4);
    ev_loop_free(loop);
}

Test(ev_timer, relative_start_counts_from_the_cached_now)
{
    struct ev_loop *loop = ev_loop_new();
    struct rec r = {0};
    struct tmr a;
    tmr_init(&a, 1, &r);
    ev_timer_start(loop, &a.t, 1234);
    cr_assert_eq(a.t.when, ev_now(loop) + 1234);
    ev_timer_stop(loop, &a.t);
    ev_timer_stop(loop, &a.t); /* stopping twice is harmless */
    cr_assert_not(ev_timer_active(&a.t));
    ev_loop_free(loop);
}

Test(ev_timer, stopped_timers_never_fire)
{
    struct ev_loop *loop = ev_loop_new();
    struct rec r = {0};
    struct tmr t[6];
    for (int i = 0; i < 6; i++) {
        tmr_init(&t[i], i, &r);
        ev_timer_start_at(loop, &t[i].t, (uint64_t)(10 + i));
    }
    /* Stopped before the run: the first, a middle one and the last. */
    ev_timer_stop(loop, &t[0].t);
    ev_timer_stop(loop, &t[3].t);
    ev_timer_stop(loop, &t[5].t);
    /* Stopped by the first callback while it is due in the same round. */
    r.cancel = &t[2].t;
    r.stop_after = 2;
    cr_assert_eq(ev_run(loop), 0);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.order[0], 1);
    cr_assert_eq(r.order[1], 4);
    ev_loop_free(loop);
}

/* ---- the per-round budget ---- */

struct spin {
    struct ev_timer t;
    int fired;
    int rounds;
    int io_seen;
};

static void spin_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct spin *s = t->ud;
    s->fired++;
    ev_timer_start(loop, t, 0); /* due again at once */
}

static void spin_hook(struct ev_loop *loop, void *ud)
{
    struct spin *s = ud;
    if (++s->rounds == 6)
        ev_break(loop);
}

static void spin_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct spin *s = ud;
    s->io_seen++;
}

Test(ev_timer, a_self_rearming_timer_runs_once_per_round)
{
    struct ev_loop *loop = ev_loop_new();
    struct spin s = {0};
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    /* An fd that is always writable: its callback must run every round
     * even though the timer is always due. */
    cr_assert_eq(ev_io_start(loop, sv[0], EV_WRITE, spin_io, &s), 0);
    ev_timer_init(&s.t, spin_cb, &s);
    ev_timer_start(loop, &s.t, 0);
    ev_set_before_poll(loop, spin_hook, &s);
    cr_assert_eq(ev_run(loop), 0);
    /* Rounds 1..5 polled and ran timers; the sixth hook broke the loop. */
    cr_assert_eq(s.rounds, 6);
    cr_assert_eq(s.fired, 5);
    cr_assert_eq(s.io_seen, 5);
    ev_timer_stop(loop, &s.t);
    ev_io_stop(loop, sv[0]);
    close(sv[0]);
    close(sv[1]);
    ev_loop_free(loop);
}

/* ---- fd readiness ---- */

struct io_rec {
    int calls;
    int last_fd;
    int last_events;
    bool break_loop; /* ev_break() from the callback */
};

static void io_cb(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct io_rec *r = ud;
    r->calls++;
    r->last_fd = fd;
    r->last_events = events;
    if (r->break_loop)
        ev_break(loop);
}

struct pair {
    struct ev_loop *loop;
    int sv[2];
    struct ev_timer guard;
};

static void pair_open(struct pair *p)
{
    p->loop = ev_loop_new();
    cr_assert_not_null(p->loop);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->sv), 0);
    ev_timer_init(&p->guard, guard_cb, NULL);
    ev_timer_start(p->loop, &p->guard, FAR_MS);
}

static void pair_close(struct pair *p)
{
    ev_timer_stop(p->loop, &p->guard);
    ev_io_stop(p->loop, p->sv[0]);
    ev_io_stop(p->loop, p->sv[1]);
    if (p->sv[0] >= 0)
        close(p->sv[0]);
    if (p->sv[1] >= 0)
        close(p->sv[1]);
    ev_loop_free(p->loop);
}

Test(ev_io, read_readiness_after_a_write)
{
    struct pair p;
    pair_open(&p);
    struct io_rec r = {.break_loop = true};
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_READ, io_cb, &r), 0);
    cr_assert_eq(ev_io_mask(p.loop, p.sv[0]), EV_READ);
    cr_assert_eq(write(p.sv[1], "x", 1), 1);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.last_fd, p.sv[0]);
    cr_assert_eq(r.last_events, EV_READ);
    char c;
    cr_assert_eq(read(p.sv[0], &c, 1), 1);
    pair_close(&p);
}

Test(ev_io, write_readiness_and_mask_changes)
{
    struct pair p;
    pair_open(&p);
    struct io_rec r = {.break_loop = true};
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_READ | EV_WRITE, io_cb, &r), 0);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.last_events, EV_WRITE); /* nothing to read yet */
    /* Read only, then data: the callback sees READ and not WRITE, though
     * the socket is still writable. */
    cr_assert_eq(ev_io_set(p.loop, p.sv[0], EV_READ), 0);
    cr_assert_eq(ev_io_mask(p.loop, p.sv[0]), EV_READ);
    cr_assert_eq(ev_io_set(p.loop, p.sv[0], EV_READ), 0); /* unchanged */
    cr_assert_eq(write(p.sv[1], "y", 1), 1);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r.calls, 2);
    cr_assert_eq(r.last_events, EV_READ);
    /* An empty mask keeps the watcher but reports nothing: the guard
     * timer is moved to the past to end that round. */
    cr_assert_eq(ev_io_set(p.loop, p.sv[0], EV_NONE), 0);
    cr_assert_eq(ev_io_mask(p.loop, p.sv[0]), EV_NONE);
    ev_timer_start_at(p.loop, &p.guard, 0);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r.calls, 2);
    pair_close(&p);
}

Test(ev_io, hang_up_is_reported_as_read_with_error)
{
    struct pair p;
    pair_open(&p);
    struct io_rec r = {.break_loop = true};
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_READ, io_cb, &r), 0);
    close(p.sv[1]);
    p.sv[1] = -1;
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r.calls, 1);
    /* The hang-up comes with READ, the mask asked for, and not WRITE. */
    cr_assert_eq(r.last_events, EV_READ | EV_ERROR);
    char c;
    cr_assert_eq(read(p.sv[0], &c, 1), 0); /* the owner sees EOF by reading */
    pair_close(&p);
}

struct other {
    int sv[2];
    int calls;
};

/* Stops the other end's watcher, then ends the loop after this round. */
static void stop_other_cb(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct other *o = ud;
    o->calls++;
    ev_io_stop(loop, fd == o->sv[0] ? o->sv[1] : o->sv[0]);
    ev_break(loop);
}

Test(ev_io, a_watcher_stopped_during_dispatch_is_skipped)
{
    struct pair p;
    pair_open(&p);
    /* Both ends are readable before the loop polls, so one poll reports
     * both; whichever runs first stops the other, which must then not be
     * called in that round. */
    struct other o = {.sv = {p.sv[0], p.sv[1]}};
    cr_assert_eq(write(p.sv[0], "a", 1), 1);
    cr_assert_eq(write(p.sv[1], "b", 1), 1);
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_READ, stop_other_cb, &o), 0);
    cr_assert_eq(ev_io_start(p.loop, p.sv[1], EV_READ, stop_other_cb, &o), 0);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(o.calls, 1);
    int left = ev_io_mask(p.loop, p.sv[0]) | ev_io_mask(p.loop, p.sv[1]);
    cr_assert_eq(left, EV_READ); /* exactly one watcher is left */
    pair_close(&p);
}

Test(ev_io, replacing_a_watcher_and_stop_before_close)
{
    struct pair p;
    pair_open(&p);
    struct io_rec r1 = {.break_loop = true};
    struct io_rec r2 = {.break_loop = true};
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_WRITE, io_cb, &r1), 0);
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_WRITE, io_cb, &r2), 0);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r1.calls, 0);
    cr_assert_eq(r2.calls, 1);
    ev_io_stop(p.loop, p.sv[0]);
    cr_assert_eq(ev_io_mask(p.loop, p.sv[0]), EV_NONE);
    ev_io_stop(p.loop, p.sv[0]); /* twice is harmless */
    ev_io_stop(p.loop, 100000);  /* never watched */
    cr_assert_eq(ev_io_start(p.loop, p.sv[0], EV_WRITE, io_cb, &r1), 0);
    cr_assert_eq(ev_run(p.loop), 0);
    cr_assert_eq(r1.calls, 1);
    pair_close(&p);
}

/* ---- hooks, async, clock ---- */

struct hook_rec {
    int before;
    int timer_seen_before; /* value of before when the timer ran */
    struct ev_timer t;
};

static void hook_break(struct ev_loop *loop, void *ud)
{
    struct hook_rec *h = ud;
    h->before++;
    ev_break(loop);
}

Test(ev_loop, before_poll_runs_before_waiting)
{
    /* No watcher and no timer: a loop that polled would wait forever.
     * The hook breaks it first, so ev_run returns. */
    struct ev_loop *loop = ev_loop_new();
    struct hook_rec h = {0};
    ev_set_before_poll(loop, hook_break, &h);
    cr_assert_eq(ev_run(loop), 0);
    cr_assert_eq(h.before, 1);
    cr_assert_eq(ev_run(loop), 0); /* ev_run clears the stop flag */
    cr_assert_eq(h.before, 2);
    ev_loop_free(loop);
}

static void hook_count(struct ev_loop *loop, void *ud)
{
    struct hook_rec *h = ud;
    h->before++;
}

static void hook_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct hook_rec *h = t->ud;
    h->timer_seen_before = h->before;
    ev_break(loop);
}

Test(ev_loop, before_poll_precedes_the_round_timers)
{
    struct ev_loop *loop = ev_loop_new();
    struct hook_rec h = {0};
    ev_set_before_poll(loop, hook_count, &h);
    ev_timer_init(&h.t, hook_timer_cb, &h);
    ev_timer_start_at(loop, &h.t, 0);
    cr_assert_eq(ev_run(loop), 0);
    cr_assert_eq(h.timer_seen_before, 1);
    ev_loop_free(loop);
}

struct async_rec {
    struct ev_loop *loop;
    int calls;
};

static void async_cb(struct ev_loop *loop, void *ud)
{
    struct async_rec *a = ud;
    a->calls++;
    ev_break(loop);
}

static void *async_thread(void *ud)
{
    struct async_rec *a = ud;
    ev_async_send(a->loop);
    return NULL;
}

Test(ev_loop, async_send_from_another_thread_wakes_the_loop)
{
    struct ev_loop *loop = ev_loop_new();
    struct async_rec a = {.loop = loop};
    ev_set_async(loop, async_cb, &a);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, async_thread, &a), 0);
    cr_assert_eq(ev_run(loop), 0); /* no timer: only the wakeup ends it */
    pthread_join(th, NULL);
    cr_assert_eq(a.calls, 1);
    /* Two sends before the loop runs: one read of the eventfd drains
     * both, so they coalesce into one call. */
    a.calls = 0;
    ev_async_send(loop);
    ev_async_send(loop);
    cr_assert_eq(ev_run(loop), 0);
    cr_assert_eq(a.calls, 1);
    ev_loop_free(loop);
}

Test(ev_loop, now_is_cached_until_updated)
{
    struct ev_loop *loop = ev_loop_new();
    uint64_t ms = ev_now(loop), ns = ev_now_ns(loop);
    cr_assert_eq(ms, ns / 1000000);
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    cr_assert_eq(ev_now(loop), ms); /* not refreshed by reading */
    cr_assert_eq(ev_now_ns(loop), ns);
    ev_update_time(loop);
    cr_assert_gt(ev_now_ns(loop), ns);
    cr_assert_geq(ev_now(loop), ms);
    cr_assert_eq(ev_now(loop), ev_now_ns(loop) / 1000000);
    cr_assert_geq(ev_clock_ns(), ev_now_ns(loop));
    ev_set_data(loop, &ms);
    cr_assert_eq(ev_data(loop), &ms);
    ev_loop_free(loop);
}

Test(ev_loop, wall_clock_is_the_epoch_in_ms)
{
    time_t before = time(NULL);
    uint64_t w = ev_wall_ms();
    time_t after = time(NULL);
    cr_assert_geq(w / 1000, (uint64_t)before);
    cr_assert_leq(w / 1000, (uint64_t)after);
}
