/* epoll backend of the event loop, in Redis's aeApi* shape. Included by
 * ev.c only, after its own includes: it is not a separate compilation
 * unit, hence the .c.h name (h2o's evloop.c.h), which the build's *.c glob
 * does not pick up. */
#include <sys/epoll.h>

struct ev_api {
    int epfd;
    struct epoll_event *events;
    int cap;
};

static int ev_api_create(struct ev_api *a, int cap)
{
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (a->epfd < 0)
        return -errno;
    a->cap = cap;
    a->events = xcalloc((size_t)cap, sizeof *a->events);
    return 0;
}

static void ev_api_free(struct ev_api *a)
{
    if (a->epfd >= 0)
        close(a->epfd);
    free(a->events);
}

/* op: EPOLL_CTL_ADD, _MOD or _DEL. An fd may stay registered with an
 * empty mask, so later changes are always MODs. */
static int ev_api_ctl(struct ev_api *a, int fd, int op, int mask)
{
    struct epoll_event ee = {0};
    ee.data.fd = fd;
    if (mask & EV_READ)
        ee.events |= EPOLLIN | EPOLLRDHUP;
    if (mask & EV_WRITE)
        ee.events |= EPOLLOUT;
    if (epoll_ctl(a->epfd, op, fd, &ee) != 0)
        return -errno;
    return 0;
}

/* Waits up to timeout_ms (-1: forever). Fills fired[] with fd and mask,
 * returns the count or -errno. */
static int ev_api_poll(struct ev_api *a, int timeout_ms, int *fds, int *masks)
{
    int n = epoll_wait(a->epfd, a->events, a->cap, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = a->events[i].events;
        int m = 0;
        if (e & (EPOLLIN | EPOLLRDHUP))
            m |= EV_READ;
        if (e & EPOLLOUT)
            m |= EV_WRITE;
        if (e & (EPOLLERR | EPOLLHUP))
            m |= EV_READ | EV_WRITE | EV_ERROR;
        fds[i] = a->events[i].data.fd;
        masks[i] = m;
    }
    return n;
}
