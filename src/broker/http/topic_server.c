/* Topics inside the broker server: starting and stopping the topic engine
 * with the server, recognising its requests, and serving the SNS query
 * protocol, the signing certificate and (through topic_native.c) the
 * native JSON API.
 *
 * The server calls five functions (declared in topic.h): tp_server_start
 * after the queue engine's replay, tp_server_stop before the engine is
 * freed, tp_server_wants / tp_server_dispatch from its request routing
 * (before the native /v1 routes and the SQS API), and tp_metrics_render
 * from /metrics.
 *
 * An answer to an action that wrote queue records (a publish, a
 * subscription's confirmation message) is held until its group commit,
 * as the server holds SQS answers. */
#include "broker/http/http.h"
#include "broker/sns/sns_sign.h"
#include "broker/topic/topic.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char CERT_PREFIX[] = "/SimpleNotificationService-";

static bool path_is(const char *path, size_t plen, const char *lit)
{
    size_t n = strlen(lit);
    return plen >= n && memcmp(path, lit, n) == 0 && (plen == n || path[n] == '/');
}

bool tp_server_wants(const struct bk_conn *c, const char *path, size_t plen)
{
    if (path_is(path, plen, "/v1/topics") || path_is(path, plen, "/v1/subscriptions"))
        return true;
    if (plen > sizeof CERT_PREFIX - 1 && memcmp(path, CERT_PREFIX, sizeof CERT_PREFIX - 1) == 0)
        return true;
    const char *body = buf_len(&c->h.body) ? buf_rptr(&c->h.body) : "";
    return sns_is_sns_request(&c->h.req, body, buf_len(&c->h.body));
}

/* Deletes push queues no subscription owns any more (an unsubscribe whose
 * queue deletion was lost in a crash). */
static void drop_orphan_queues(struct tp_engine *t, uint64_t now)
{
    static const char prefix[] = TP_PUSH_PREFIX;
    struct bk_queue *q = t->e->qhead;
    while (q) {
        struct bk_queue *next = q->lnext;
        if (strncmp(q->name, prefix, sizeof prefix - 1) == 0) {
            bool owned = false;
            for (struct tp_topic *tp = t->topics; tp && !owned; tp = tp->next)
                for (struct tp_sub *s = tp->subs; s && !owned; s = s->next)
                    owned = s->proto == TP_HTTP && strcmp(s->push_queue, q->name) == 0;
            if (!owned) {
                struct tp_ctx ctx = {.now = now};
                log_at(LOG_INFO, "sns: dropping push queue %s: no subscription owns it", q->name);
                tp__queue_drop(t, &ctx, q->name);
            }
        }
        q = next;
    }
}

struct tp_engine *tp_server_start(struct bk_server *s, char **err)
{
    char msg[512] = "";
    struct tp_engine *t = tp_engine_new(s->engine, s->cfg->data);
    t->signer = sns_signer_new(s->cfg->data, msg, sizeof msg);
    if (!t->signer) {
        *err = xasprintf("sns: %s", msg);
        tp_engine_free(t);
        return NULL;
    }
    uint64_t now = ev_wall_ms();
    if (tp_engine_load(t, now, msg, sizeof msg) < 0) {
        *err = xasprintf("sns: %s", msg);
        sns_signer_free(t->signer);
        tp_engine_free(t);
        return NULL;
    }
    drop_orphan_queues(t, now);
    tp_push_start(t, s->loop);
    log_at(LOG_INFO, "sns: %u topics loaded", t->ntopics);
    return t;
}

void tp_server_stop(struct tp_engine *t)
{
    if (!t)
        return;
    struct sns_signer *signer = t->signer;
    tp_engine_free(t);
    sns_signer_free(signer);
}

/* ---- the SNS query protocol ---- */

static void respond_xml(struct bk_conn *c, int status, const struct buf *b, bool hold)
{
    bk_respond(c, status, "text/xml", buf_rptr(b), buf_len(b), NULL, hold);
    if (hold)
        bk_commit_join(c);
}

static void respond_error(struct bk_conn *c, const struct sns_error *e)
{
    struct buf b;
    buf_init(&b);
    int status;
    sns_encode_error(e, c->reqid, &b, &status);
    respond_xml(c, status, &b, false);
    buf_free(&b);
}

/* Runs an action for a request of c: the clock, the base URL, a failed
 * log. */
enum sns_err tp_server_run(struct tp_engine *t, struct bk_conn *c, const char *action,
                           const cJSON *params, cJSON **res, struct sns_error *err, bool *hold)
{
    *hold = false;
    bool grows = !strcmp(action, "Publish") || !strcmp(action, "PublishBatch");
    char msg[256];
    switch (bk_refuse_write(c, grows, false, msg, sizeof msg)) {
    case BK_REFUSE_NONE:
        break;
    case BK_REFUSE_DISK_LOW:
        *res = NULL;
        return sns_fail(err, SNS_E_THROTTLED, "%s", msg);
    case BK_REFUSE_LOG_FAILED:
        *res = NULL;
        return sns_fail(err, SNS_E_SERVICE_UNAVAILABLE, "%s", msg);
    }
    char *base = bk_base_url(c);
    struct tp_ctx ctx = {.now = ev_wall_ms(), .base_url = base};
    enum sns_err rc = tp_action(t, &ctx, action, params, res, err);
    free(base);
    *hold = ctx.need_sync;
    return rc;
}

static void dispatch_query(struct tp_engine *t, struct bk_conn *c)
{
    struct bk_server *s = c->srv;
    const char *body = buf_len(&c->h.body) ? buf_rptr(&c->h.body) : "";
    size_t blen = buf_len(&c->h.body);
    c->api = BK_API_SQS;
    c->proto = SQS_PROTO_QUERY;
    struct sns_error err = {SNS_OK, ""};
    if (s->cfg->access_key) {
        /* The SQS layer checks SigV4 for the sqs service only. */
        struct sqs_error qe;
        if (sqs_sigv4_check(&c->h.req, body, blen, s->cfg->access_key, s->cfg->secret_key,
                            (int64_t)(ev_wall_ms() / 1000), &qe) != SQS_OK) {
            sns_fail(&err, SNS_E_AUTHORIZATION, "%s", qe.message);
            respond_error(c, &err);
            return;
        }
    }
    char action[64];
    cJSON *params = NULL, *res = NULL;
    enum sns_err rc = sns_decode(&c->h.req, body, blen, action, &params, &err);
    bool hold = false;
    if (rc == SNS_OK)
        rc = tp_server_run(t, c, action, params, &res, &err, &hold);
    if (rc != SNS_OK) {
        respond_error(c, &err);
    } else {
        struct buf b;
        buf_init(&b);
        sns_encode_result(action, res, c->reqid, &b);
        respond_xml(c, 200, &b, hold);
        buf_free(&b);
    }
    cJSON_Delete(params);
    cJSON_Delete(res);
}

static void serve_cert(struct tp_engine *t, struct bk_conn *c, const char *path, size_t plen)
{
    const char *name = t->signer ? sns_signer_cert_name(t->signer) : "";
    if (plen != strlen(name) + 1 || memcmp(path + 1, name, plen - 1) != 0 ||
        (c->h.req.m != HTTP_M_GET && c->h.req.m != HTTP_M_HEAD)) {
        bk_respond_error(c, 404, "NotFound", "no such certificate");
        return;
    }
    size_t len;
    const char *pem = sns_signer_cert_pem(t->signer, &len);
    bk_respond(c, 200, "application/x-x509-ca-cert", pem, len, NULL, false);
}

void tp_server_dispatch(struct tp_engine *t, struct bk_conn *c, const char *path, size_t plen,
                        const char *query, size_t qlen)
{
    if (path_is(path, plen, "/v1/topics") || path_is(path, plen, "/v1/subscriptions")) {
        c->api = BK_API_NATIVE;
        tp_native(t, c, path, plen, query, qlen);
    } else if (plen > sizeof CERT_PREFIX - 1 &&
               memcmp(path, CERT_PREFIX, sizeof CERT_PREFIX - 1) == 0) {
        serve_cert(t, c, path, plen);
    } else {
        dispatch_query(t, c);
    }
}
