/* Upstream connections and the per-thread keep-alive pool. A worker keeps
 * idle connections to each server in a list indexed by the server's slot;
 * an idle connection is watched for readability (the server closing it)
 * and for its idle timeout. A request takes the most recently used idle
 * connection (warm in the server's accept queue and caches) or connects.
 * Nothing here is shared between threads. */
#include "gateway/proxy/conn.h"
#include "gateway/proxy/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

static void up_io(struct ev_loop *loop, int fd, void *ud, int events);

static struct gw_upconn **pool_head(struct gw_worker *w, struct gw_server *srv)
{
    size_t slot = srv->slot;
    if (slot >= w->npools) {
        size_t n = w->npools ? w->npools : 64;
        while (n <= slot)
            n *= 2;
        w->pools = xrealloc(w->pools, n * sizeof *w->pools);
        memset(w->pools + w->npools, 0, (n - w->npools) * sizeof *w->pools);
        w->pool_len = xrealloc(w->pool_len, n * sizeof *w->pool_len);
        memset(w->pool_len + w->npools, 0, (n - w->npools) * sizeof *w->pool_len);
        w->npools = n;
    }
    return &w->pools[slot];
}

static void pool_unlink(struct gw_upconn *u)
{
    struct gw_upconn **head = pool_head(u->w, u->srv);
    if (u->prev)
        u->prev->next = u->next;
    else if (*head == u)
        *head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    u->w->pool_len[u->srv->slot]--;
    gw_ctr_dec(&u->w->st.up_idle);
}

void gw__up_want(struct gw_upconn *u, bool rd, bool wr)
{
    ev_io_set(u->w->loop, u->fd, (rd ? EV_READ : 0) | (wr ? EV_WRITE : 0));
}

void gw__up_close(struct gw_upconn *u)
{
    ev_io_stop(u->w->loop, u->fd);
    ev_timer_stop(u->w->loop, &u->timer);
    close(u->fd);
    buf_reset(&u->in);
    gw_buf_release(u->w, &u->in);
    gw_server_unref(u->srv);
    free(u);
}

static void idle_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct gw_upconn *u = t->ud;
    pool_unlink(u);
    gw__up_close(u);
}

struct gw_upconn *gw__up_acquire(struct gw_worker *w, struct gw_server *srv, struct gw_conn *c)
{
    struct gw_upconn **head = pool_head(w, srv);
    struct gw_upconn *u = *head;
    if (u) {
        pool_unlink(u);
        ev_timer_stop(w->loop, &u->timer);
        u->c = c;
        u->reused = true;
        GW_SERVER_COUNT(srv, w->id, conns_reused);
        gw__up_want(u, true, false);
        return u;
    }
    bool inprog;
    int fd = net_connect(&srv->addr, NULL, &inprog);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    net_set_nodelay(fd);
    u = xcalloc(1, sizeof *u);
    u->fd = fd;
    u->srv = srv;
    gw_server_ref(srv);
    u->w = w;
    u->c = c;
    u->connecting = inprog;
    ev_timer_init(&u->timer, idle_timeout, u);
    if (ev_io_start(w->loop, fd, inprog ? EV_WRITE : EV_READ, up_io, u) != 0) {
        close(fd);
        gw_server_unref(srv);
        free(u);
        errno = ENOMEM;
        return NULL;
    }
    GW_SERVER_COUNT(srv, w->id, conns_opened);
    return u;
}

void gw__up_release(struct gw_upconn *u, bool reusable)
{
    struct gw_worker *w = u->w;
    u->c = NULL;
    const struct gw_config *cfg = WCFG(w);
    if (!reusable || buf_len(&u->in) || atomic_load(&w->gw->stopping) || cfg->upstream.keepalive == 0) {
        gw__up_close(u);
        return;
    }
    struct gw_upconn **head = pool_head(w, u->srv);
    /* Bound the idle pool: beyond the limit, the oldest idle connection
     * (the list's tail) goes. */
    if (w->pool_len[u->srv->slot] >= (uint32_t)cfg->upstream.keepalive) {
        struct gw_upconn *last = *head;
        while (last->next)
            last = last->next;
        pool_unlink(last);
        gw__up_close(last);
    }
    u->reused = false;
    u->prev = NULL;
    u->next = *head;
    if (*head)
        (*head)->prev = u;
    *head = u;
    w->pool_len[u->srv->slot]++;
    gw_ctr_inc(&w->st.up_idle);
    gw_buf_release(w, &u->in);
    gw__up_want(u, true, false);
    ev_timer_start(w->loop, &u->timer, cfg->upstream.keepalive_timeout_ms);
}

void gw_worker_drop_pools(struct gw_worker *w)
{
    for (size_t i = 0; i < w->npools; i++) {
        while (w->pools[i]) {
            struct gw_upconn *u = w->pools[i];
            pool_unlink(u);
            gw__up_close(u);
        }
    }
    free(w->pools);
    free(w->pool_len);
    w->pools = NULL;
    w->pool_len = NULL;
    w->npools = 0;
}

/* Writes the rest of the request head and whatever validated body bytes
 * wait in the client's buffer, in one writev. */
void gw__up_send(struct gw_upconn *u)
{
    struct gw_conn *c = u->c;
    struct gw_req *r = &c->r;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        size_t hl = buf_len(&r->head) - r->head_sent;
        if (hl) {
            iov[n].iov_base = buf_rptr(&r->head) + r->head_sent;
            iov[n++].iov_len = hl;
        }
        if (r->fwd) {
            iov[n].iov_base = buf_rptr(&c->in);
            iov[n++].iov_len = r->fwd;
        }
        if (n == 0)
            break;
        ssize_t wr = writev(u->fd, iov, n);
        if (wr < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                gw__up_want(u, true, true);
                return;
            }
            /* A reused connection the server had already closed: its
             * fault no more than the read side's EOF below. */
            gw__conn_up_failed(c, GW_ERR_UP_RESET, !u->reused || r->resp_started);
            return;
        }
        size_t done = (size_t)wr;
        size_t h = FG_MIN(done, hl);
        r->head_sent += h;
        done -= h;
        if (done) {
            buf_consume(&c->in, done);
            r->fwd -= done;
            r->body_started = true;
        }
        /* The client's buffer drained: let it send more body. */
        if (c->state == CS_PROXY && !r->body_done && buf_len(&c->in) < GW_BUF_HIGH && !c->peer_eof)
            gw__conn_want_read(c, true);
    }
    gw__up_want(u, true, false);
    if (r->body_done && !r->sent) {
        r->sent = true;
        r->t_sent_ns = ev_now_ns(c->w->loop);
        if (!r->resp_head)
            gw__conn_set_timeout(c, TMO_RESPONSE, WCFG(c->w)->timeouts.upstream_response_ms);
    }
}

static void up_read(struct gw_upconn *u)
{
    struct gw_conn *c = u->c;
    if (!c) {
        /* Idle pooled connection: the server closed it or sent garbage. */
        pool_unlink(u);
        gw__up_close(u);
        return;
    }
    for (;;) {
        if (buf_len(&u->in) >= GW_BUF_HIGH) {
            gw__up_want(u, false, ev_io_mask(u->w->loop, u->fd) & EV_WRITE);
            break;
        }
        int rc = gw__io_read(u->w, u->fd, &u->in);
        if (rc == GW_RD_MORE)
            continue;
        if (rc == GW_RD_DRAINED)
            break;
        /* EOF or error: the response ends here (if delimited by close) or
         * the exchange failed. */
        c->r.up_reusable = false;
        if (c->r.resp_head && c->r.rbody == HTTP_BODY_EOF) {
            c->r.resp_done = true;
            c->r.rfwd = buf_len(&u->in);
            gw_pipeline_response(&c->r);
        } else {
            gw__conn_up_failed(c, GW_ERR_UP_RESET, !u->reused || c->r.resp_started);
        }
        return;
    }
    gw_pipeline_response(&c->r);
}

static void up_io(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct gw_upconn *u = ud;
    if (u->connecting) {
        int rc = net_connect_result(fd);
        if (rc != 0) {
            gw__conn_up_failed(u->c, GW_ERR_UP_CONNECT, true);
            return;
        }
        u->connecting = false;
        struct gw_conn *c = u->c;
        if (c->r.body_done)
            gw__conn_set_timeout(c, TMO_RESPONSE, WCFG(c->w)->timeouts.upstream_response_ms);
        else
            gw__conn_set_timeout(c, TMO_BODY, WCFG(c->w)->timeouts.client_body_ms);
        gw__up_send(u);
        return;
    }
    if (events & EV_WRITE) {
        if (!u->c) {
            gw__up_want(u, true, false);
        } else {
            struct gw_conn *c = u->c;
            gw__up_send(u);
            if (c->closed || c->r.up != u)
                return; /* the send failed and the request moved on */
        }
    }
    if (events & (EV_READ | EV_ERROR))
        up_read(u);
}
