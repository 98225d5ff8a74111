/* The optional admin listener (--admin / broker.admin): GET /metrics,
 * GET /healthz and GET /queues on a separate port, served by core admin
 * on its own thread.
 *
 * The engine belongs to the loop thread, so a handler never reads it:
 * it queues a call for the loop (under xlock), wakes the loop with
 * ev_async_send() and waits on xcond for the loop to render the answer.
 * The loop renders every queued call while holding xlock, so a handler
 * that gives up waiting (2 s) can always unlink its call safely. */
#include "broker/broker.h"

#include "core/admin.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XCALL_WAIT_MS 2000

enum xkind { X_METRICS, X_HEALTH, X_QUEUES };

struct bk_xcall {
    enum xkind kind;
    bool done;
    int status;
    struct buf out;
    struct bk_xcall *next;
};

static void render(struct bk_server *s, struct bk_xcall *x)
{
    x->status = 200;
    switch (x->kind) {
    case X_METRICS:
        bk_metrics_render(s, &x->out);
        break;
    case X_HEALTH: {
        int err = store_error(s->store);
        x->status = err ? 503 : 200;
        buf_printf(&x->out, "{\"status\":\"%s\",\"queues\":%zu,\"messages\":%llu}\n", err ? "failing" : "ok",
                   s->engine->nqueues, (unsigned long long)s->engine->nmsgs);
        break;
    }
    case X_QUEUES: {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "queues");
        for (const struct bk_queue *q = s->engine->qhead; q; q = q->lnext) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", q->name);
            cJSON_AddBoolToObject(e, "fifo", q->a.fifo);
            cJSON_AddNumberToObject(e, "messages", (double)q->n_ready);
            cJSON_AddNumberToObject(e, "in_flight", (double)q->n_inflight);
            cJSON_AddNumberToObject(e, "delayed", (double)q->n_delayed);
            cJSON_AddItemToArray(arr, e);
        }
        char *t = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        buf_append_str(&x->out, t);
        buf_append(&x->out, "\n", 1);
        free(t);
        break;
    }
    }
}

void bk_admin_serve(struct ev_loop *loop, void *ud)
{
    struct bk_server *s = ud;
    FG_UNUSED(loop);
    pthread_mutex_lock(&s->xlock);
    for (struct bk_xcall *x = s->xcall; x; x = x->next) {
        render(s, x);
        x->done = true;
    }
    s->xcall = NULL;
    pthread_cond_broadcast(&s->xcond);
    pthread_mutex_unlock(&s->xlock);
}

/* Runs kind on the loop thread and copies its answer into resp. */
static void call_loop(struct bk_server *s, enum xkind kind, struct admin_resp *resp, const char *ctype)
{
    struct bk_xcall x = {.kind = kind};
    buf_init(&x.out);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += XCALL_WAIT_MS / 1000;
    pthread_mutex_lock(&s->xlock);
    x.next = s->xcall;
    s->xcall = &x;
    ev_async_send(s->loop);
    int rc = 0;
    while (!x.done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->xcond, &s->xlock, &until);
    if (!x.done) {
        struct bk_xcall **pp = &s->xcall;
        while (*pp && *pp != &x)
            pp = &(*pp)->next;
        if (*pp)
            *pp = x.next;
    }
    pthread_mutex_unlock(&s->xlock);
    if (!x.done) {
        admin_resp_error(resp, 503, "the broker's loop did not answer in time");
    } else {
        resp->status = x.status;
        resp->content_type = ctype;
        buf_append(&resp->body, buf_rptr(&x.out), buf_len(&x.out));
    }
    buf_free(&x.out);
}

static void h_metrics(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    FG_UNUSED(req);
    call_loop(ud, X_METRICS, resp, METRICS_CONTENT_TYPE);
}

static void h_health(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    FG_UNUSED(req);
    call_loop(ud, X_HEALTH, resp, "application/json");
}

static void h_queues(const struct admin_req *req, struct admin_resp *resp, void *ud)
{
    FG_UNUSED(req);
    call_loop(ud, X_QUEUES, resp, "application/json");
}

static void setup(struct admin *a, void *ud)
{
    const struct bk_server *s = ud;
    const struct cfg_access *acc = &s->cfg->admin_access;
    admin_set_access(a, acc->hosts, acc->nhosts, acc->token);
    admin_route(a, "GET", "/metrics", h_metrics, ud);
    admin_route(a, "GET", "/healthz", h_health, ud);
    admin_route(a, "GET", "/queues", h_queues, ud);
}

struct admin *bk_admin_start(struct bk_server *s, const char *addr, char **err)
{
    struct admin *a = admin_start_with(addr, setup, s, err);
    struct net_addr na;
    char *e = NULL;
    if (a && !s->cfg->admin_access.token && net_parse_addr(addr, &na, &e) == 0 && !net_addr_is_loopback(&na))
        log_at(LOG_WARN, "broker: admin listener on %s is reachable beyond this machine without a token: set "
                         "admin.token_file (docs/security.md)", addr);
    free(e);
    return a;
}
