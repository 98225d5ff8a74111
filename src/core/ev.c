/* Event loop implementation (see ev.h). One iteration: run the
 * before-poll hook, compute the wait from the earliest timer, poll, refresh
 * the clock, dispatch I/O in the order the kernel reported it, then run
 * expired timers. Watchers live in an array indexed by fd that grows on
 * demand; a watcher stopped during dispatch is skipped safely because its
 * callback pointer is cleared. */
#include "core/ev.h"
#include "core/heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/ev_epoll.c.h"

#define EV_BATCH 512

struct ev_io {
    ev_io_cb cb;
    void *ud;
    int mask;
};

struct ev_loop {
    struct ev_api api;
    struct ev_io *ios;      /* indexed by fd */
    int nios;
    struct ev_timer **heap; /* min-heap on when */
    size_t nheap, capheap;
    uint64_t now_ms, now_ns;
    bool stop;
    ev_hook_cb before_poll;
    void *before_poll_ud;
    int async_fd;
    ev_hook_cb async_cb;
    void *async_ud;
    void *data;
    int fired_fd[EV_BATCH];
    int fired_mask[EV_BATCH];
};

uint64_t ev_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ev_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void ev_update_time(struct ev_loop *loop)
{
    loop->now_ns = ev_clock_ns();
    loop->now_ms = loop->now_ns / 1000000ull;
}

uint64_t ev_now(const struct ev_loop *loop) { return loop->now_ms; }
uint64_t ev_now_ns(const struct ev_loop *loop) { return loop->now_ns; }
void ev_set_data(struct ev_loop *loop, void *data) { loop->data = data; }
void *ev_data(const struct ev_loop *loop) { return loop->data; }

struct ev_loop *ev_loop_new(void)
{
    struct ev_loop *loop = xcalloc(1, sizeof *loop);
    if (ev_api_create(&loop->api, EV_BATCH) != 0) {
        free(loop);
        return NULL;
    }
    loop->async_fd = -1;
    ev_update_time(loop);
    return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
    if (!loop)
        return;
    if (loop->async_fd >= 0) {
        ev_io_stop(loop, loop->async_fd);
        close(loop->async_fd);
    }
    ev_api_free(&loop->api);
    free(loop->ios);
    free(loop->heap);
    free(loop);
}

static void ios_reserve(struct ev_loop *loop, int fd)
{
    if (fd < loop->nios)
        return;
    int n = loop->nios ? loop->nios : 1024;
    while (n <= fd)
        n *= 2;
    loop->ios = xrealloc(loop->ios, (size_t)n * sizeof *loop->ios);
    memset(loop->ios + loop->nios, 0, (size_t)(n - loop->nios) * sizeof *loop->ios);
    loop->nios = n;
}

int ev_io_start(struct ev_loop *loop, int fd, int mask, ev_io_cb cb, void *ud)
{
    ASSERT(fd >= 0);
    ios_reserve(loop, fd);
    struct ev_io *io = &loop->ios[fd];
    if (!io->cb) {
        int rc = ev_api_ctl(&loop->api, fd, EPOLL_CTL_ADD, mask);
        if (rc != 0)
            return rc;
    } else if (io->mask != mask) {
        int rc = ev_api_ctl(&loop->api, fd, EPOLL_CTL_MOD, mask);
        if (rc != 0)
            return rc;
    }
    io->cb = cb;
    io->ud = ud;
    io->mask = mask;
    return 0;
}

int ev_io_set(struct ev_loop *loop, int fd, int mask)
{
    ASSERT(fd >= 0 && fd < loop->nios && loop->ios[fd].cb);
    struct ev_io *io = &loop->ios[fd];
    if (io->mask == mask)
        return 0;
    int rc = ev_api_ctl(&loop->api, fd, EPOLL_CTL_MOD, mask);
    if (rc == 0)
        io->mask = mask;
    return rc;
}

int ev_io_mask(struct ev_loop *loop, int fd)
{
    return fd >= 0 && fd < loop->nios && loop->ios[fd].cb ? loop->ios[fd].mask : EV_NONE;
}

void ev_io_stop(struct ev_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nios || !loop->ios[fd].cb)
        return;
    ev_api_ctl(&loop->api, fd, EPOLL_CTL_DEL, EV_NONE);
    loop->ios[fd].cb = NULL;
    loop->ios[fd].ud = NULL;
    loop->ios[fd].mask = EV_NONE;
}

/* ---- timers: binary min-heap keyed on 'when' ---- */

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *ud)
{
    t->when = 0;
    t->heap_idx = SIZE_MAX;
    t->cb = cb;
    t->ud = ud;
}

static inline bool timer_less(void *ctx, const struct ev_timer *a, const struct ev_timer *b)
{
    (void)ctx;
    return a->when < b->when;
}

static inline void timer_setidx(void *ctx, struct ev_timer *t, size_t i)
{
    (void)ctx;
    t->heap_idx = i;
}

HEAP_DEFINE(theap, struct ev_timer, void *, timer_less, timer_setidx)

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
    size_t i = t->heap_idx;
    if (i == SIZE_MAX)
        return;
    ASSERT(i < loop->nheap && loop->heap[i] == t);
    t->heap_idx = SIZE_MAX;
    theap_remove(NULL, loop->heap, loop->nheap--, i);
}

void ev_timer_start_at(struct ev_loop *loop, struct ev_timer *t, uint64_t when)
{
    if (t->heap_idx != SIZE_MAX) {
        /* Re-arm in place: cheaper than stop + start. */
        uint64_t old = t->when;
        t->when = when;
        if (when < old)
            theap_up(NULL, loop->heap, t->heap_idx);
        else if (when > old)
            theap_down(NULL, loop->heap, loop->nheap, t->heap_idx);
        return;
    }
    if (loop->nheap == loop->capheap) {
        loop->capheap = loop->capheap ? loop->capheap * 2 : 256;
        loop->heap = xrealloc(loop->heap, loop->capheap * sizeof *loop->heap);
    }
    t->when = when;
    theap_push(NULL, loop->heap, loop->nheap++, t);
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms)
{
    ev_timer_start_at(loop, t, loop->now_ms + after_ms);
}

static void run_timers(struct ev_loop *loop)
{
    /* Bounded by the count at entry so a timer that re-arms itself with a
     * zero delay cannot starve I/O. */
    size_t budget = loop->nheap;
    while (loop->nheap && budget--) {
        struct ev_timer *t = loop->heap[0];
        if (t->when > loop->now_ms)
            break;
        ev_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

/* ---- hooks and async ---- */

void ev_set_before_poll(struct ev_loop *loop, ev_hook_cb cb, void *ud)
{
    loop->before_poll = cb;
    loop->before_poll_ud = ud;
}

static void async_read(struct ev_loop *loop, int fd, void *ud, int events)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0)
        ;
    if (loop->async_cb)
        loop->async_cb(loop, loop->async_ud);
}

void ev_set_async(struct ev_loop *loop, ev_hook_cb cb, void *ud)
{
    if (loop->async_fd < 0) {
        loop->async_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ASSERT(loop->async_fd >= 0);
        ASSERT(ev_io_start(loop, loop->async_fd, EV_READ, async_read, NULL) == 0);
    }
    loop->async_cb = cb;
    loop->async_ud = ud;
}

void ev_async_send(struct ev_loop *loop)
{
    uint64_t one = 1;
    ASSERT(loop->async_fd >= 0);
    ssize_t w = write(loop->async_fd, &one, sizeof one);
    (void)w; /* EAGAIN means a wakeup is already pending */
}

void ev_break(struct ev_loop *loop) { loop->stop = true; }

int ev_run(struct ev_loop *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        if (loop->before_poll)
            loop->before_poll(loop, loop->before_poll_ud);
        if (loop->stop)
            break;
        int timeout = -1;
        if (loop->nheap) {
            ev_update_time(loop);
            uint64_t w = loop->heap[0]->when;
            timeout = w <= loop->now_ms ? 0 : (int)FG_MIN(w - loop->now_ms, 60000u);
        }
        int n = ev_api_poll(&loop->api, timeout, loop->fired_fd, loop->fired_mask);
        if (n < 0)
            return n;
        ev_update_time(loop);
        for (int i = 0; i < n; i++) {
            int fd = loop->fired_fd[i];
            if (fd >= loop->nios)
                continue;
            struct ev_io *io = &loop->ios[fd];
            if (!io->cb)
                continue; /* stopped by an earlier callback this round */
            int m = loop->fired_mask[i];
            int want = (io->mask & m) | (m & EV_ERROR);
            if (m & EV_ERROR)
                want |= io->mask; /* let the owner see the error via read/write */
            if (want)
                io->cb(loop, fd, io->ud, want);
        }
        run_timers(loop);
    }
    return 0;
}
