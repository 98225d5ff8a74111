/* Unit tests for push delivery (src/broker/push/policy.c, push/http.c):
 * the retry schedule of SNS delivery policies, their validation, jitter
 * bounds, pacing under a rate limit (on a controlled clock), and the
 * non-blocking HTTP client against a scripted server on the same loop. */
#include <criterion/criterion.h>

#include "broker/push/push.h"
#include "core/ev.h"
#include "core/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- policies ---- */

static struct push_policy sub_policy(const char *json)
{
    struct push_policy p;
    push_policy_default(&p);
    char err[256] = "";
    cr_assert_eq(push_policy_apply_sub(&p, json, err, sizeof err), 0, "%s: %s", json, err);
    return p;
}

static void sub_refused(const char *json, const char *want)
{
    struct push_policy p;
    push_policy_default(&p);
    struct push_policy before = p;
    char err[256] = "";
    cr_assert_eq(push_policy_apply_sub(&p, json, err, sizeof err), -1, "%s accepted", json);
    cr_assert(strstr(err, want), "%s: '%s', want '%s'", json, err, want);
    cr_assert(memcmp(&p, &before, sizeof p) == 0, "a refused policy changes nothing");
}

Test(push_policy, sns_default)
{
    struct push_policy p;
    push_policy_default(&p);
    cr_assert_eq(push_policy_attempts(&p), 4);
    for (uint32_t n = 1; n <= 3; n++)
        cr_assert_eq(push_retry_delay_ms(&p, n), 20000);
    cr_assert_eq(push_retry_delay_ms(&p, 4), -1);
    cr_assert_eq(push_retry_delay_ms(&p, 0), -1);
}

Test(push_policy, four_phases)
{
    /* 3 immediate, 2 at min, 5 backing off linearly 10 -> 60, 2 at max. */
    struct push_policy p = sub_policy(
        "{\"healthyRetryPolicy\": {\"numRetries\": 12, \"numNoDelayRetries\": 3,"
        " \"numMinDelayRetries\": 2, \"numMaxDelayRetries\": 2, \"minDelayTarget\": 10,"
        " \"maxDelayTarget\": 60, \"backoffFunction\": \"linear\"}}");
    int64_t want[] = {0, 0, 0, 10000, 10000, 20000, 30000, 40000, 50000, 60000, 60000, 60000};
    for (uint32_t n = 1; n <= 12; n++)
        cr_assert_eq(push_retry_delay_ms(&p, n), want[n - 1], "retry %u: %ld", n,
                     (long)push_retry_delay_ms(&p, n));
    cr_assert_eq(push_retry_delay_ms(&p, 13), -1);
}

Test(push_policy, backoff_functions)
{
    const char *fns[] = {"linear", "arithmetic", "geometric", "exponential"};
    for (size_t f = 0; f < ARRAY_SIZE(fns); f++) {
        char json[256];
        snprintf(json, sizeof json, "{\"healthyRetryPolicy\": {\"numRetries\": 6, \"minDelayTarget\": 2,"
                 " \"maxDelayTarget\": 64, \"backoffFunction\": \"%s\"}}", fns[f]);
        struct push_policy p = sub_policy(json);
        int64_t prev = 2000;
        for (uint32_t n = 1; n <= 6; n++) {
            int64_t d = push_retry_delay_ms(&p, n);
            cr_assert(d > prev && d <= 64000, "%s retry %u: %ld after %ld", fns[f], n, (long)d, (long)prev);
            prev = d;
        }
        cr_assert_eq(prev, 64000, "%s ends at the max", fns[f]);
    }
    struct push_policy g = sub_policy("{\"healthyRetryPolicy\": {\"numRetries\": 6, \"minDelayTarget\": 1,"
                                      " \"maxDelayTarget\": 64, \"backoffFunction\": \"geometric\"}}");
    for (uint32_t n = 1; n <= 6; n++)
        cr_assert_eq(push_retry_delay_ms(&g, n), 1000ll << n, "geometric doubles");
}

Test(push_policy, jitter_bounds)
{
    struct push_policy p;
    push_policy_default(&p);
    uint32_t rnd[] = {0, 1u << 31, 0xffffffffu, 12345};
    for (size_t i = 0; i < ARRAY_SIZE(rnd); i++) {
        int64_t d = push_retry_delay_jitter_ms(&p, 1, rnd[i]);
        cr_assert(d >= 18000 && d <= 22000, "%ld", (long)d);
    }
    cr_assert_eq(push_retry_delay_jitter_ms(&p, 1, 0), 18000);
    cr_assert_eq(push_retry_delay_jitter_ms(&p, 9, 7), -1);
}

Test(push_policy, throttle_and_content_type)
{
    struct push_policy p = sub_policy("{\"throttlePolicy\": {\"maxReceivesPerSecond\": 10},"
                                      " \"requestPolicy\": {\"headerContentType\": \"application/json\"}}");
    cr_assert_eq(p.max_per_second, 10);
    cr_assert_str_eq(p.content_type, "application/json");
    cr_assert_eq(p.num_retries, 3, "the retry policy keeps its default");
}

Test(push_policy, topic_defaults_and_overrides)
{
    struct push_policy p;
    push_policy_default(&p);
    bool no_over;
    char err[256];
    cr_assert_eq(push_policy_apply_topic(&p, "{\"http\": {\"defaultHealthyRetryPolicy\": {\"numRetries\": 5,"
                                             " \"minDelayTarget\": 1, \"maxDelayTarget\": 4},"
                                             " \"defaultThrottlePolicy\": {\"maxReceivesPerSecond\": 3},"
                                             " \"disableSubscriptionOverrides\": true}}",
                                         &no_over, err, sizeof err), 0, "%s", err);
    cr_assert(no_over);
    cr_assert_eq(p.num_retries, 5);
    cr_assert_eq(p.max_per_second, 3);
    cr_assert_eq(push_policy_apply_topic(&p, "{}", &no_over, err, sizeof err), 0);
    cr_assert_not(no_over);
    cr_assert_eq(push_policy_apply_topic(&p, "{\"http\": 1}", &no_over, err, sizeof err), -1);
}

Test(push_policy, refused)
{
    sub_refused("[]", "must be a JSON object");
    sub_refused("{\"healthyRetryPolicy\": {\"numRetries\": 101}}", "numRetries must be an integer from 0 to 100");
    sub_refused("{\"healthyRetryPolicy\": {\"numRetries\": 1.5}}", "numRetries");
    sub_refused("{\"healthyRetryPolicy\": {\"minDelayTarget\": 0}}", "minDelayTarget");
    sub_refused("{\"healthyRetryPolicy\": {\"minDelayTarget\": 30, \"maxDelayTarget\": 20}}",
                "minDelayTarget must be less than or equal to maxDelayTarget");
    sub_refused("{\"healthyRetryPolicy\": {\"numRetries\": 2, \"numNoDelayRetries\": 2, \"numMaxDelayRetries\": 1}}",
                "must not exceed numRetries");
    sub_refused("{\"healthyRetryPolicy\": {\"backoffFunction\": \"cubic\"}}", "backoffFunction");
    sub_refused("{\"healthyRetryPolicy\": {\"numRetries\": 100, \"minDelayTarget\": 60, \"maxDelayTarget\": 60}}",
                "total retry time");
    sub_refused("{\"throttlePolicy\": {\"maxReceivesPerSecond\": 0}}", "maxReceivesPerSecond");
    sub_refused("{\"requestPolicy\": {\"headerContentType\": \"text/plain\\r\\nX-Evil: 1\"}}",
                "not a valid content type");
    sub_refused("{\"requestPolicy\": {\"headerContentType\": 5}}", "must be a string");
}

/* ---- pacing ---- */

Test(push_pace, even_spacing)
{
    struct push_pace p = {0};
    uint64_t t = 1000000;
    cr_assert(push_pace_take(&p, 10, t));
    cr_assert_not(push_pace_take(&p, 10, t + 50000));
    cr_assert_eq(push_pace_wait_us(&p, 10, t + 50000), 50000);
    cr_assert(push_pace_take(&p, 10, t + 100000));
    /* A late wake keeps the schedule: 10 a second on average. */
    cr_assert(push_pace_take(&p, 10, t + 203000));
    cr_assert_eq(push_pace_wait_us(&p, 10, t + 203000), 97000);
    /* After an idle second no burst is earned. */
    cr_assert(push_pace_take(&p, 10, t + 2000000));
    cr_assert_not(push_pace_take(&p, 10, t + 2000001));
    cr_assert(push_pace_take(&p, 0, 5), "no limit");
}

Test(push_pace, window_counts)
{
    /* Polled every millisecond for 10 seconds: 100 deliveries at 10/s,
     * and no one-second window holds more than 11. */
    struct push_pace p = {0};
    uint64_t times[200];
    size_t n = 0;
    for (uint64_t t = 0; t < 10000000; t += 1000)
        if (push_pace_take(&p, 10, 5000000 + t))
            times[n++] = t;
    cr_assert(n >= 99 && n <= 101, "%zu", n);
    for (size_t i = 0; i + 11 < n; i++)
        cr_assert(times[i + 11] - times[i] >= 1000000);
}

/* ---- the HTTP client against a scripted server ---- */

enum srv_mode { SRV_OK, SRV_CHUNKED, SRV_CLOSE, SRV_SILENT, SRV_500, SRV_GARBAGE };

struct srv {
    struct ev_loop *loop;
    int lfd;
    enum srv_mode mode;
    int accepted;
    int requests;
    char last[4096];
    int cfd[16];
    struct buf in[16];
};

static void srv_conn(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct srv *s = ud;
    FG_UNUSED(events);
    int i = 0;
    while (s->cfd[i] != fd)
        i++;
    char b[4096];
    ssize_t n = read(fd, b, sizeof b);
    if (n <= 0) {
        ev_io_stop(loop, fd);
        close(fd);
        s->cfd[i] = -1;
        return;
    }
    buf_append(&s->in[i], b, (size_t)n);
    buf_append(&s->in[i], "", 1);
    s->in[i].wpos--;
    char *end = strstr(buf_rptr(&s->in[i]), "\r\n\r\n");
    const char *cl = strstr(buf_rptr(&s->in[i]), "Content-Length: ");
    if (!end || !cl)
        return;
    size_t need = (size_t)(end + 4 - buf_rptr(&s->in[i])) + (size_t)atoi(cl + 16);
    if (buf_len(&s->in[i]) < need)
        return;
    snprintf(s->last, sizeof s->last, "%.*s", (int)need, buf_rptr(&s->in[i]));
    buf_consume(&s->in[i], need);
    s->requests++;
    const char *resp = NULL;
    switch (s->mode) {
    case SRV_OK: resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"; break;
    case SRV_CHUNKED: resp = "HTTP/1.1 204 No Content\r\n\r\n"; break;
    case SRV_CLOSE: resp = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"; break;
    case SRV_500: resp = "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"; break;
    case SRV_GARBAGE: resp = "NOT HTTP\r\n\r\n"; break;
    case SRV_SILENT: return;
    }
    if (write(fd, resp, strlen(resp)) < 0)
        return;
    if (s->mode == SRV_CLOSE) {
        ev_io_stop(loop, fd);
        close(fd);
        s->cfd[i] = -1;
    }
}

static void srv_accept(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct srv *s = ud;
    FG_UNUSED(events);
    struct net_addr peer;
    int c = net_accept(fd, &peer);
    if (c < 0)
        return;
    int i = 0;
    while (s->cfd[i] >= 0)
        i++;
    s->cfd[i] = c;
    buf_reset(&s->in[i]);
    s->accepted++;
    ev_io_start(loop, c, EV_READ, srv_conn, s);
}

static struct push_endpoint srv_start(struct srv *s, struct ev_loop *loop)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 16; i++) {
        s->cfd[i] = -1;
        buf_init(&s->in[i]);
    }
    s->loop = loop;
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr("127.0.0.1:0", &a, &err), 0);
    s->lfd = net_listen(&a, false, 16);
    cr_assert(s->lfd >= 0);
    net_local_addr(s->lfd, &a);
    ev_io_start(loop, s->lfd, EV_READ, srv_accept, s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook?x=1", net_addr_port(&a));
    struct push_endpoint ep;
    char e[128];
    cr_assert_eq(push_endpoint_parse(&ep, url, e, sizeof e), 0, "%s", e);
    return ep;
}

static void srv_stop(struct srv *s)
{
    for (int i = 0; i < 16; i++) {
        if (s->cfd[i] >= 0) {
            ev_io_stop(s->loop, s->cfd[i]);
            close(s->cfd[i]);
        }
        buf_free(&s->in[i]);
    }
    ev_io_stop(s->loop, s->lfd);
    close(s->lfd);
}

struct waiter {
    struct ev_loop *loop;
    int status;
    int calls;
    bool during_post;
};

static void done(void *ud, int status)
{
    struct waiter *w = ud;
    cr_assert_not(w->during_post, "callbacks never run inside push_post");
    w->status = status;
    w->calls++;
    ev_break(w->loop);
}

static void guard(struct ev_loop *loop, struct ev_timer *t)
{
    FG_UNUSED(t);
    ev_break(loop);
}

/* Posts and runs the loop until the answer (or 3 s). */
static int post(struct push_client *c, struct ev_loop *loop, const char *body)
{
    struct waiter w = { .loop = loop, .during_post = true };
    struct ev_timer g;
    ev_timer_init(&g, guard, NULL);
    ev_timer_start(loop, &g, 3000);
    cr_assert_eq(push_post(c, "X-Amz-Sns-Message-Type: Notification\r\n", body, strlen(body), done, &w), 0);
    w.during_post = false;
    while (w.calls == 0 && ev_timer_active(&g))
        ev_run(loop);
    ev_timer_stop(loop, &g);
    cr_assert_eq(w.calls, 1);
    return w.status;
}

Test(push_http, keepalive_and_request_shape)
{
    struct ev_loop *loop = ev_loop_new();
    struct srv s;
    struct push_endpoint ep = srv_start(&s, loop);
    struct push_client *c = push_client_new(loop, &ep, 2, 2000);
    cr_assert_eq(post(c, loop, "{\"a\":1}"), 200);
    cr_assert(strstr(s.last, "POST /hook?x=1 HTTP/1.1\r\n"), "%s", s.last);
    cr_assert(strstr(s.last, "\r\nHost: 127.0.0.1:"), "%s", s.last);
    cr_assert(strstr(s.last, "\r\nContent-Length: 7\r\n"), "%s", s.last);
    cr_assert(strstr(s.last, "\r\nX-Amz-Sns-Message-Type: Notification\r\n\r\n{\"a\":1}"), "%s", s.last);
    cr_assert_eq(post(c, loop, "two"), 200);
    cr_assert_eq(post(c, loop, "three"), 200);
    cr_assert_eq(s.accepted, 1, "one kept-alive connection");
    cr_assert_eq(s.requests, 3);
    s.mode = SRV_500;
    cr_assert_eq(post(c, loop, "x"), 503, "a chunked error answer is read whole");
    s.mode = SRV_CHUNKED;
    cr_assert_eq(post(c, loop, "x"), 204);
    cr_assert_eq(s.accepted, 1);
    push_client_free(c);
    push_endpoint_free(&ep);
    srv_stop(&s);
    ev_loop_free(loop);
}

Test(push_http, connection_close_and_stale_idle)
{
    struct ev_loop *loop = ev_loop_new();
    struct srv s;
    struct push_endpoint ep = srv_start(&s, loop);
    struct push_client *c = push_client_new(loop, &ep, 1, 2000);
    s.mode = SRV_CLOSE;
    cr_assert_eq(post(c, loop, "a"), 200);
    cr_assert_eq(post(c, loop, "b"), 200);
    cr_assert_eq(s.accepted, 2, "Connection: close is honoured");
    s.mode = SRV_OK;
    cr_assert_eq(post(c, loop, "c"), 200);
    /* The server drops the idle connection behind the client's back: the
     * next request goes through on a fresh one. */
    for (int i = 0; i < 16; i++)
        if (s.cfd[i] >= 0) {
            ev_io_stop(loop, s.cfd[i]);
            shutdown(s.cfd[i], SHUT_RDWR);
            close(s.cfd[i]);
            s.cfd[i] = -1;
        }
    cr_assert_eq(post(c, loop, "d"), 200);
    cr_assert_eq(s.requests, 4);
    push_client_free(c);
    push_endpoint_free(&ep);
    srv_stop(&s);
    ev_loop_free(loop);
}

Test(push_http, failures)
{
    struct ev_loop *loop = ev_loop_new();
    struct srv s;
    struct push_endpoint ep = srv_start(&s, loop);
    struct push_client *c = push_client_new(loop, &ep, 1, 150);
    s.mode = SRV_SILENT;
    cr_assert_eq(post(c, loop, "a"), -ETIMEDOUT);
    s.mode = SRV_GARBAGE;
    cr_assert_eq(post(c, loop, "a"), -EPROTO);
    /* Busy: one connection, one request in flight. */
    s.mode = SRV_SILENT;
    struct waiter w = { .loop = loop };
    cr_assert_eq(push_post(c, NULL, "x", 1, done, &w), 0);
    cr_assert_eq(push_client_inflight(c), 1);
    cr_assert_eq(push_post(c, NULL, "y", 1, done, &w), -EBUSY);
    /* Freeing the client cancels what is in flight. */
    push_client_free(c);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.status, -ECANCELED);
    /* Nothing listens: refused, reported from the loop. */
    srv_stop(&s);
    c = push_client_new(loop, &ep, 1, 1000);
    int st = post(c, loop, "z");
    cr_assert(st == -ECONNREFUSED, "%d", st);
    push_client_free(c);
    push_endpoint_free(&ep);
    ev_loop_free(loop);
}

Test(push_http, endpoint_urls)
{
    struct push_endpoint ep;
    char err[128];
    cr_assert_eq(push_endpoint_parse(&ep, "https://127.0.0.1:1/x", err, sizeof err), -1);
    cr_assert(strstr(err, "http://"));
    cr_assert_eq(push_endpoint_parse(&ep, "http://127.0.0.1:1/a b", err, sizeof err), -1);
    cr_assert_eq(push_endpoint_parse(&ep, "http:///x", err, sizeof err), -1);
    cr_assert_eq(push_endpoint_parse(&ep, "http://127.0.0.1:8080", err, sizeof err), 0);
    cr_assert_str_eq(ep.path, "/");
    cr_assert_str_eq(ep.hostport, "127.0.0.1:8080");
    push_endpoint_free(&ep);
}
