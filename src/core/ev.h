/* The event loop: one per thread, epoll underneath (behind the ev_api_*
 * functions in ev_epoll.c.h, as Redis keeps its poller behind aeApi*),
 * level-triggered I/O watchers indexed by fd, millisecond timers in a
 * binary heap, a cross-thread wakeup (eventfd) and a hook that runs before
 * each poll (used to free connections closed during the last iteration).
 *
 * Thread context: everything except ev_async_send() must be called from
 * the loop's own thread. */
#ifndef FG_EV_H
#define FG_EV_H

#include "core/common.h"

#define EV_NONE 0
#define EV_READ 1
#define EV_WRITE 2
#define EV_ERROR 4 /* reported with READ/WRITE when the fd has EPOLLERR/HUP */

struct ev_loop;
struct ev_timer;

typedef void (*ev_io_cb)(struct ev_loop *loop, int fd, void *ud, int events);
typedef void (*ev_timer_cb)(struct ev_loop *loop, struct ev_timer *t);
typedef void (*ev_hook_cb)(struct ev_loop *loop, void *ud);

/* Caller-allocated timer (libuv style): embed it in the owning object,
 * ev_timer_init() once, start and stop freely, ev_timer_stop() before the
 * owner is freed. */
struct ev_timer {
    uint64_t when;      /* absolute deadline, ms on the loop's clock */
    size_t heap_idx;    /* position in the heap, SIZE_MAX when inactive */
    ev_timer_cb cb;
    void *ud;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* Watches fd for mask (EV_READ|EV_WRITE), replacing any previous watcher
 * on that fd. Returns 0 or -errno. */
int ev_io_start(struct ev_loop *loop, int fd, int mask, ev_io_cb cb, void *ud);
/* Changes the mask of an existing watcher; no syscall when unchanged. */
int ev_io_set(struct ev_loop *loop, int fd, int mask);
int ev_io_mask(struct ev_loop *loop, int fd);
/* Stops watching fd. Must be called before close(fd). */
void ev_io_stop(struct ev_loop *loop, int fd);

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *ud);
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms);
void ev_timer_start_at(struct ev_loop *loop, struct ev_timer *t, uint64_t when);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_active(const struct ev_timer *t) { return t->heap_idx != SIZE_MAX; }

/* Cached monotonic clock, in ms and ns, refreshed once per iteration. */
uint64_t ev_now(const struct ev_loop *loop);
uint64_t ev_now_ns(const struct ev_loop *loop);
void ev_update_time(struct ev_loop *loop);
uint64_t ev_clock_ns(void); /* uncached CLOCK_MONOTONIC */
/* Uncached wall-clock time (CLOCK_REALTIME) in ms since the Unix epoch:
 * for timestamps that leave the process (stored, or sent to clients),
 * never for measuring intervals. Any thread. */
uint64_t ev_wall_ms(void);

/* Runs until ev_break(). Returns 0, or -errno if the poller failed. */
int ev_run(struct ev_loop *loop);
void ev_break(struct ev_loop *loop);

/* Runs once per iteration, before the loop waits. */
void ev_set_before_poll(struct ev_loop *loop, ev_hook_cb cb, void *ud);

/* Cross-thread wakeup: ev_async_send() from any thread makes cb run on the
 * loop's thread soon after; several sends may coalesce into one call. */
void ev_set_async(struct ev_loop *loop, ev_hook_cb cb, void *ud);
void ev_async_send(struct ev_loop *loop);

/* Opaque per-loop user pointer (the owning worker). */
void ev_set_data(struct ev_loop *loop, void *data);
void *ev_data(const struct ev_loop *loop);

#endif
