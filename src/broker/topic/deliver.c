/* The push scheduler: delivers the backlog of each http subscription (its
 * push queue in the queue engine) to the endpoint, paced by the
 * subscription's maxReceivesPerSecond and at most TP_PUSH_CONNS POSTs at
 * once.
 *
 * One delivery: ReceiveMessage from the push queue (the visibility timeout
 * covers the POST), POST with SNS's headers, then
 *   2xx          DeleteMessage;
 *   anything     the receive count says which attempt failed; the delivery
 *   else         policy gives the delay before the next one (jittered) and
 *                ChangeMessageVisibility hides the message that long; once
 *                the policy has no retry left the body goes to the
 *                subscription's dead-letter queue (when it has one) and is
 *                deleted.
 * A crash or a restart loses nothing: a message not deleted becomes
 * visible again and is delivered again (at least once, as SNS).
 *
 * The scheduler runs from a loop timer: at once after a publish, at the
 * next paced slot of a throttled subscription, and every 100 ms otherwise
 * (retries come due through visibility timeouts). */
#include "broker/topic/topic.h"

#include "core/ev.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUSH_IDLE_US 100000
#define PUSH_VISIBILITY_S ((TP_PUSH_TIMEOUT_MS / 1000) + 5)

struct push_job {
    struct tp_engine *t;
    struct tp_sub *s;
    char *receipt;
    char *body;
    size_t len;
    uint32_t attempt;       /* 1 for the first delivery */
    uint64_t published_ms;
    bool confirmation;
};

static void job_free(struct push_job *j)
{
    free(j->receipt);
    free(j->body);
    free(j);
}

/* A string message attribute pushed with the body (t, m, p, r). */
static const char *mattr(const cJSON *attrs, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(attrs, name), "StringValue");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void dead_letter(struct tp_engine *t, struct push_job *j)
{
    struct tp_sub *s = j->s;
    if (!s->dlq_arn || j->confirmation) {
        t->st.dropped++;
        log_at(LOG_WARN, "sns push: %s: delivery policy exhausted, message dropped", s->endpoint);
        return;
    }
    struct bk_error err;
    if (tp__queue_send(t, NULL, s->dlq_arn, j->body, strlen(j->body), NULL, NULL, NULL, &err) == BK_OK) {
        s->st.dead_lettered++;
        t->st.dead_lettered++;
    } else {
        t->st.dropped++;
        log_at(LOG_WARN, "sns push: dead-letter queue %s refused a message: %s", s->dlq_arn, err.message);
    }
}

static void on_done(void *ud, int status)
{
    struct push_job *j = ud;
    struct tp_engine *t = j->t;
    struct tp_sub *s = j->s;
    s->inflight--;
    if (s->deleted || !s->client) {
        /* Unsubscribed (the message went with its queue) or stopping: the
         * message is handed back so that the next start delivers it at
         * once rather than after its visibility timeout. */
        if (!s->deleted && status == -ECANCELED)
            tp__queue_ack(t, s->push_queue, j->receipt, 0);
        job_free(j);
        return;
    }
    if (status >= 200 && status < 300) {
        tp__queue_ack(t, s->push_queue, j->receipt, -1);
        s->st.delivered++;
        t->st.deliveries_http++;
        uint64_t now = ev_wall_ms();
        if (!j->confirmation && now >= j->published_ms)
            metrics_hist_observe_ns(&t->st.push_latency, (now - j->published_ms) * 1000000ull);
    } else {
        t->st.http_failures++;
        s->st.failed++;
        uint32_t rnd;
        bk_random_bytes(&rnd, sizeof rnd);
        int64_t delay = push_retry_delay_jitter_ms(&s->policy, j->attempt, rnd);
        log_at(LOG_DEBUG, "sns push: %s answered %d (attempt %u), retry in %lld ms", s->endpoint,
               status, j->attempt, (long long)delay);
        if (delay < 0) {
            dead_letter(t, j);
            tp__queue_ack(t, s->push_queue, j->receipt, -1);
        } else {
            s->st.retried++;
            t->st.http_retries++;
            tp__queue_ack(t, s->push_queue, j->receipt, (int)((delay + 999) / 1000));
        }
    }
    job_free(j);
    tp_push_kick(t);
}

static void headers(struct buf *h, const struct tp_sub *s, const char *type, const char *mid,
                    bool raw)
{
    buf_printf(h, "Content-Type: %s\r\n",
               s->policy.content_type[0] ? s->policy.content_type : "text/plain; charset=UTF-8");
    buf_append_str(h, "User-Agent: Amazon Simple Notification Service Agent\r\n");
    buf_printf(h, "x-amz-sns-message-type: %s\r\nx-amz-sns-message-id: %s\r\n", type, mid);
    buf_printf(h, "x-amz-sns-topic-arn: %s\r\n", s->t->arn);
    if (strcmp(type, "Notification") == 0)
        buf_printf(h, "x-amz-sns-subscription-arn: %s\r\n", s->arn);
    if (raw)
        buf_append_str(h, "x-amz-sns-rawdelivery: true\r\n");
}

/* Receives one message of s's push queue and POSTs it. false when there
 * was nothing to receive. */
static bool start_one(struct tp_engine *t, struct tp_sub *s)
{
    struct tp_received m;
    if (!tp__queue_receive(t, s->push_queue, PUSH_VISIBILITY_S, &m))
        return false;
    const char *type = mattr(m.attrs, "t"), *mid = mattr(m.attrs, "m"), *pub = mattr(m.attrs, "p");
    struct push_job *j = xcalloc(1, sizeof *j);
    j->t = t;
    j->s = s;
    j->receipt = xstrdup(m.receipt);
    j->body = m.body;
    j->len = m.len;
    j->attempt = m.count;
    j->published_ms = pub ? strtoull(pub, NULL, 10) : 0;
    j->confirmation = type && strcmp(type, "Notification") != 0;
    struct buf h;
    buf_init(&h);
    headers(&h, s, type ? type : "Notification", mid ? mid : "", mattr(m.attrs, "r") != NULL);
    buf_append(&h, "", 1);
    cJSON_Delete(m.attrs);
    int r = push_post(s->client, buf_rptr(&h), j->body, j->len, on_done, j);
    buf_free(&h);
    if (r < 0) {
        /* No connection free after all: hand the message back at once. */
        tp__queue_ack(t, s->push_queue, j->receipt, 0);
        job_free(j);
        return false;
    }
    s->inflight++;
    return true;
}

/* Serves every http subscription's backlog; returns when to look again
 * (loop clock, us). */
static uint64_t run(struct tp_engine *t, uint64_t now_us)
{
    uint64_t next = now_us + PUSH_IDLE_US;
    for (struct tp_topic *tp = t->topics; tp; tp = tp->next)
        for (struct tp_sub *s = tp->subs; s; s = s->next) {
            if (s->proto != TP_HTTP || !s->client)
                continue;
            struct bk_queue *q = bk_engine_find(t->e, s->push_queue, strlen(s->push_queue));
            while (q && bk_queue_receivable(q) && s->inflight < TP_PUSH_CONNS) {
                uint32_t rate = s->policy.max_per_second;
                uint64_t wait = push_pace_wait_us(&s->pace, rate, now_us);
                if (wait) {
                    next = FG_MIN(next, now_us + wait);
                    break;
                }
                if (!start_one(t, s))
                    break;
                push_pace_take(&s->pace, rate, now_us);
            }
        }
    return next;
}

static void on_timer(struct ev_loop *loop, struct ev_timer *tm)
{
    struct tp_engine *t = tm->ud;
    uint64_t now_us = ev_now_ns(loop) / 1000;
    t->push_kick = false;
    uint64_t next = run(t, now_us);
    t->push_next_us = next;
    ev_timer_start(loop, tm, next > now_us ? (next - now_us + 999) / 1000 : 0);
}

void tp_push_kick(struct tp_engine *t)
{
    if (!t->loop || !t->push_timer || t->push_kick)
        return;
    t->push_kick = true;
    ev_timer_stop(t->loop, t->push_timer);
    ev_timer_start(t->loop, t->push_timer, 0);
}

void tp__push_sub_changed(struct tp_engine *t, struct tp_sub *s)
{
    if (s->proto != TP_HTTP)
        return;
    push_endpoint_free(&s->ep);
    char why[200];
    s->ep_ok = push_endpoint_parse(&s->ep, s->endpoint, why, sizeof why) == 0;
    if (!s->ep_ok)
        log_at(LOG_WARN, "sns push: %s: %s", s->endpoint, why);
    if (!t->loop || !s->ep_ok || s->client)
        return;
    s->client = push_client_new(t->loop, &s->ep, TP_PUSH_CONNS, TP_PUSH_TIMEOUT_MS);
}

void tp__push_sub_release(struct tp_engine *t, struct tp_sub *s, bool drop_queue)
{
    if (s->proto != TP_HTTP)
        return;
    struct push_client *c = s->client;
    s->client = NULL;
    push_client_free(c); /* in-flight POSTs end now, with -ECANCELED */
    if (drop_queue && bk_engine_find(t->e, s->push_queue, strlen(s->push_queue)))
        tp__queue_drop(t, NULL, s->push_queue);
}

void tp_push_start(struct tp_engine *t, struct ev_loop *loop)
{
    t->loop = loop;
    t->push_timer = xcalloc(1, sizeof *t->push_timer);
    ev_timer_init(t->push_timer, on_timer, t);
    for (struct tp_topic *tp = t->topics; tp; tp = tp->next)
        for (struct tp_sub *s = tp->subs; s; s = s->next)
            tp__push_sub_changed(t, s);
    ev_timer_start(loop, t->push_timer, 0);
}

void tp_push_stop(struct tp_engine *t)
{
    if (!t->loop)
        return;
    for (struct tp_topic *tp = t->topics; tp; tp = tp->next)
        for (struct tp_sub *s = tp->subs; s; s = s->next)
            tp__push_sub_release(t, s, false);
    if (t->push_timer) {
        ev_timer_stop(t->loop, t->push_timer);
        free(t->push_timer);
        t->push_timer = NULL;
    }
    t->loop = NULL;
}
