/* brokerbench: the load client of bench/broker.sh. One program drives the
 * three systems the same way, one thread and one connection per producer
 * and per consumer, blocking I/O:
 *
 *   sqs       floodgate broker through the SQS AWS JSON 1.0 protocol
 *             (SendMessage[Batch], ReceiveMessage with WaitTimeSeconds,
 *             DeleteMessage[Batch]), HTTP/1.1 keep-alive;
 *   rabbitmq  a durable queue, persistent messages, publisher confirms
 *             (waited for per message, or per batch of 10), consumers with
 *             basic.consume, prefetch = batch and manual acks (one by one,
 *             or multiple per 10);
 *   redis     LPUSH (1 or 10 values) into a list; consumers move messages
 *             into their own processing list (BLMOVE, or 10 LMOVE
 *             pipelined) and acknowledge with LREM (pipelined per batch).
 *
 * Modes:
 *   throughput  P producers send as fast as each is confirmed; C consumers
 *               receive and delete. Counted over the measured window, after
 *               a warm-up: messages confirmed sent, and messages deleted
 *               (acknowledged), per second. Producers pause while more
 *               than --backlog (default 100000) messages are sent and not
 *               yet deleted.
 *   latency     P producers send single messages at a fixed total rate,
 *               each body carrying its send time; consumers long-poll and
 *               record receive time - send time.
 *
 * Output: one JSON object on stdout. Exit 0, or 1 when a system could not
 * be reached or answered with errors (the errors are counted in the JSON).
 *
 * Build: cc -O2 -o brokerbench brokerbench.c -lhiredis -lrabbitmq -lcjson -lpthread */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXBATCH 10
#define WAIT_S 1 /* long-poll wait: bounds how long stopping takes */

enum sys { SYS_SQS, SYS_RABBIT, SYS_REDIS };
enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

static struct {
    enum sys sys;
    const char *host;
    int port;
    const char *queue;
    bool latency;
    int batch, producers, consumers, body;
    double duration, warmup, rate;
    uint64_t backlog;
} cfg = { .host = "127.0.0.1", .queue = "bench", .batch = 1, .producers = 4, .consumers = 8,
          .body = 128, .duration = 5, .warmup = 1, .rate = 200, .backlog = 100000 };

static _Atomic int phase;
static _Atomic uint64_t n_sent, n_done, n_recv, n_err;
static char qurl[512];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "brokerbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool running(void)
{
    return atomic_load_explicit(&phase, memory_order_relaxed) != PH_STOP;
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void error_once(const char *what)
{
    if (atomic_fetch_add(&n_err, 1) < 5)
        fprintf(stderr, "brokerbench: %s\n", what);
}

/* A message body: producer, sequence and send time, padded to cfg.body
 * bytes of [0-9a-z] (safe in JSON, AMQP and Redis alike, and unique). */
static size_t make_body(char *out, int prod, uint64_t seq, uint64_t t)
{
    int n = snprintf(out, 64, "p%04d-%012llu-%020llu-", prod, (unsigned long long)seq,
                     (unsigned long long)t);
    size_t len = (size_t)cfg.body > (size_t)n ? (size_t)cfg.body : (size_t)n;
    for (size_t i = (size_t)n; i < len; i++)
        out[i] = (char)('a' + i % 26);
    out[len] = 0;
    return len;
}

/* The send time inside a body, 0 when it does not parse. */
static uint64_t body_time(const char *b, size_t len)
{
    if (len < 40 || b[0] != 'p' || b[5] != '-' || b[18] != '-')
        return 0;
    uint64_t t = 0;
    for (int i = 19; i < 39; i++) {
        if (b[i] < '0' || b[i] > '9')
            return 0;
        t = t * 10 + (uint64_t)(b[i] - '0');
    }
    return t;
}

/* Before each send: in latency mode, wait for the next slot of the fixed
 * rate; always, wait while the backlog (messages sent and not yet deleted)
 * is over its cap. The default cap is only a memory guard: producers run
 * flat out, as do consumers, and the end-to-end rate is what the consumers
 * manage to receive and delete meanwhile. (A tight cap lowers every
 * system's rate: fewer requests in flight means smaller fsync groups.) */
static void pace(uint64_t period, uint64_t *next)
{
    if (period) {
        *next += period;
        uint64_t t = now_ns();
        if (*next > t) {
            struct timespec d = { (time_t)((*next - t) / 1000000000ull),
                                  (long)((*next - t) % 1000000000ull) };
            nanosleep(&d, NULL);
        }
    }
    while (running() && atomic_load_explicit(&n_sent, memory_order_relaxed) >
                            atomic_load_explicit(&n_done, memory_order_relaxed) + cfg.backlog) {
        struct timespec d = { 0, 100000 };
        nanosleep(&d, NULL);
    }
}

/* ---- latency samples (one array per consumer thread) ---- */

struct samples {
    uint32_t *us;
    size_t n, cap;
};

static void sample(struct samples *s, uint64_t sent)
{
    if (!sent || atomic_load_explicit(&phase, memory_order_relaxed) != PH_MEASURE)
        return;
    uint64_t now = now_ns();
    uint64_t us = now > sent ? (now - sent) / 1000 : 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->us = realloc(s->us, s->cap * sizeof *s->us);
        if (!s->us)
            die("out of memory");
    }
    s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* ---- a minimal blocking HTTP/1.1 client (keep-alive, Content-Length) ---- */

struct http {
    int fd;
    char *buf;
    size_t cap, len;
    int status;
    char *body;
    size_t body_len;
};

static int tcp_connect(const char *host, int port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static void http_open(struct http *h)
{
    memset(h, 0, sizeof *h);
    h->fd = tcp_connect(cfg.host, cfg.port);
    if (h->fd < 0)
        die("cannot connect to %s:%d: %s", cfg.host, cfg.port, strerror(errno));
    h->cap = 1 << 16;
    h->buf = malloc(h->cap);
}

static void http_close(struct http *h)
{
    if (h->fd >= 0)
        close(h->fd);
    free(h->buf);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One SQS call: POST / with X-Amz-Target: AmazonSQS.<action>. Returns 0
 * with h->status and h->body set (valid until the next call), -1 when the
 * connection failed. */
static int sqs_call(struct http *h, const char *action, const char *json, size_t jlen)
{
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST / HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Content-Type: application/x-amz-json-1.0\r\n"
                      "X-Amz-Target: AmazonSQS.%s\r\nContent-Length: %zu\r\n\r\n",
                      cfg.host, cfg.port, action, jlen);
    if (write_all(h->fd, head, (size_t)hn) || write_all(h->fd, json, jlen))
        return -1;
    h->len = 0;
    size_t hend = 0, clen = 0;
    for (;;) {
        if (h->len == h->cap) {
            h->cap *= 2;
            h->buf = realloc(h->buf, h->cap);
        }
        ssize_t r = read(h->fd, h->buf + h->len, h->cap - h->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        h->len += (size_t)r;
        h->buf[h->len] = 0;
        if (!hend) {
            char *e = memmem(h->buf, h->len, "\r\n\r\n", 4);
            if (!e)
                continue;
            hend = (size_t)(e - h->buf) + 4;
            h->status = atoi(h->buf + 9);
            bool have = false;
            for (char *l = strstr(h->buf, "\r\n"); l && l < e; l = strstr(l + 2, "\r\n")) {
                if (strncasecmp(l + 2, "content-length:", 15) == 0) {
                    clen = strtoull(l + 17, NULL, 10);
                    have = true;
                }
            }
            if (!have)
                die("%s: response without Content-Length", action);
            if (hend + clen + 1 > h->cap) {
                h->cap = hend + clen + 1;
                h->buf = realloc(h->buf, h->cap);
            }
        }
        if (h->len >= hend + clen)
            break;
    }
    h->body = h->buf + hend;
    h->body_len = clen;
    h->body[clen] = 0;
    return 0;
}

/* Appends s to out with JSON string escaping. */
static size_t json_str(char *out, const char *s)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = 0;
    return n;
}

static bool sqs_ok(struct http *h, const char *what)
{
    if (h->status == 200)
        return true;
    char msg[300];
    snprintf(msg, sizeof msg, "%s: HTTP %d %.200s", what, h->status, h->body);
    error_once(msg);
    return false;
}

/* Failed entries of a batch response (0 when none or not a batch). */
static int sqs_failed(const char *body)
{
    if (!strstr(body, "\"Failed\""))
        return 0;
    cJSON *j = cJSON_Parse(body);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "Failed"));
    cJSON_Delete(j);
    return n;
}

static void sqs_setup(bool create)
{
    struct http h;
    http_open(&h);
    snprintf(qurl, sizeof qurl, "http://%s:%d/000000000000/%s", cfg.host, cfg.port, cfg.queue);
    char req[1024];
    int n = create ? snprintf(req, sizeof req, "{\"QueueName\":\"%s\"}", cfg.queue)
                   : snprintf(req, sizeof req, "{\"QueueUrl\":\"%s\"}", qurl);
    if (sqs_call(&h, create ? "CreateQueue" : "DeleteQueue", req, (size_t)n) != 0)
        die("cannot reach the broker at %s:%d", cfg.host, cfg.port);
    if (create && h.status != 200)
        die("CreateQueue: HTTP %d %s", h.status, h.body);
    if (create) {
        cJSON *j = cJSON_Parse(h.body);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "QueueUrl");
        if (cJSON_IsString(u))
            snprintf(qurl, sizeof qurl, "%s", u->valuestring);
        cJSON_Delete(j);
    }
    http_close(&h);
}

static void sqs_producer(int id)
{
    struct http h;
    http_open(&h);
    size_t cap = 256 + (size_t)MAXBATCH * ((size_t)cfg.body + 64);
    char *req = malloc(cap), *body = malloc((size_t)cfg.body + 64);
    uint64_t seq = 0, period = cfg.latency ? (uint64_t)(1e9 * cfg.producers / cfg.rate) : 0;
    uint64_t next = now_ns();
    while (running()) {
        pace(period, &next);
        size_t n;
        const char *action;
        if (cfg.batch == 1) {
            make_body(body, id, seq++, now_ns());
            n = (size_t)sprintf(req, "{\"QueueUrl\":\"%s\",\"MessageBody\":\"%s\"}", qurl, body);
            action = "SendMessage";
        } else {
            n = (size_t)sprintf(req, "{\"QueueUrl\":\"%s\",\"Entries\":[", qurl);
            uint64_t t = now_ns();
            for (int i = 0; i < cfg.batch; i++) {
                make_body(body, id, seq++, t);
                n += (size_t)sprintf(req + n, "%s{\"Id\":\"m%d\",\"MessageBody\":\"%s\"}",
                                     i ? "," : "", i, body);
            }
            n += (size_t)sprintf(req + n, "]}");
            action = "SendMessageBatch";
        }
        if (sqs_call(&h, action, req, n) != 0)
            die("%s: connection lost", action);
        if (!sqs_ok(&h, action))
            continue;
        int failed = sqs_failed(h.body);
        if (failed)
            count(&n_err, (uint64_t)failed);
        count(&n_sent, (uint64_t)(cfg.batch - failed));
    }
    free(req);
    free(body);
    http_close(&h);
}

static void sqs_consumer(struct samples *lat)
{
    struct http h;
    http_open(&h);
    char rq[1024];
    int rn = snprintf(rq, sizeof rq,
                      "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":%d,\"WaitTimeSeconds\":%d}",
                      qurl, cfg.batch, WAIT_S);
    char *del = malloc(1024 + MAXBATCH * 2048);
    while (running()) {
        if (sqs_call(&h, "ReceiveMessage", rq, (size_t)rn) != 0)
            die("ReceiveMessage: connection lost");
        if (!sqs_ok(&h, "ReceiveMessage"))
            continue;
        cJSON *j = cJSON_Parse(h.body);
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "Messages");
        int nm = cJSON_GetArraySize(msgs);
        if (nm == 0) {
            cJSON_Delete(j);
            continue;
        }
        count(&n_recv, (uint64_t)nm);
        size_t n;
        const char *action = nm == 1 ? "DeleteMessage" : "DeleteMessageBatch";
        n = (size_t)sprintf(del, "{\"QueueUrl\":\"%s\",%s", qurl,
                            nm == 1 ? "\"ReceiptHandle\":" : "\"Entries\":[");
        int i = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(m, "Body");
            const cJSON *rh = cJSON_GetObjectItemCaseSensitive(m, "ReceiptHandle");
            if (!cJSON_IsString(b) || !cJSON_IsString(rh) || strlen(rh->valuestring) > 1500)
                die("ReceiveMessage: a message without Body or ReceiptHandle");
            sample(lat, body_time(b->valuestring, strlen(b->valuestring)));
            if (nm == 1) {
                n += json_str(del + n, rh->valuestring);
            } else {
                n += (size_t)sprintf(del + n, "%s{\"Id\":\"d%d\",\"ReceiptHandle\":", i ? "," : "",
                                     i);
                n += json_str(del + n, rh->valuestring);
                del[n++] = '}';
            }
            i++;
        }
        cJSON_Delete(j);
        n += (size_t)sprintf(del + n, nm == 1 ? "}" : "]}");
        if (sqs_call(&h, action, del, n) != 0)
            die("%s: connection lost", action);
        if (!sqs_ok(&h, action))
            continue;
        int failed = nm == 1 ? 0 : sqs_failed(h.body);
        if (failed)
            count(&n_err, (uint64_t)failed);
        count(&n_done, (uint64_t)(nm - failed));
    }
    free(del);
    http_close(&h);
}

/* ---- RabbitMQ (AMQP 0-9-1 through librabbitmq) ---- */

static void amqp_check(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        die("%s: %s", what, amqp_error_string2(r.library_error));
    die("%s: server error (method 0x%08x)", what, r.reply.id);
}

static amqp_connection_state_t amqp_open(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, cfg.host, cfg.port) != AMQP_STATUS_OK)
        die("cannot connect to RabbitMQ at %s:%d", cfg.host, cfg.port);
    amqp_check(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
               "login");
    amqp_channel_open(c, 1);
    amqp_check(amqp_get_rpc_reply(c), "channel.open");
    return c;
}

static void amqp_done(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

static void rabbit_setup(bool create)
{
    amqp_connection_state_t c = amqp_open();
    if (create) {
        amqp_queue_declare(c, 1, amqp_cstring_bytes(cfg.queue), 0, 1, 0, 0, amqp_empty_table);
        amqp_check(amqp_get_rpc_reply(c), "queue.declare (durable)");
    } else {
        amqp_queue_delete(c, 1, amqp_cstring_bytes(cfg.queue), 0, 0);
        amqp_check(amqp_get_rpc_reply(c), "queue.delete");
    }
    amqp_done(c);
}

/* Waits for publisher confirms up to delivery tag 'upto'; returns how many
 * of them were nacks. */
static uint64_t rabbit_wait_confirms(amqp_connection_state_t c, uint64_t *acked, uint64_t upto)
{
    uint64_t nacks = 0;
    while (*acked < upto) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
            die("RabbitMQ: connection lost waiting for confirms");
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag > *acked)
                *acked = a->multiple ? a->delivery_tag : *acked + 1;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            amqp_basic_nack_t *a = f.payload.method.decoded;
            error_once("RabbitMQ: publish nacked");
            if (a->delivery_tag > *acked) {
                uint64_t to = a->multiple ? a->delivery_tag : *acked + 1;
                nacks += to - *acked;
                *acked = to;
            }
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            die("RabbitMQ: channel closed by the server");
        }
    }
    return nacks;
}

static void rabbit_producer(int id)
{
    amqp_connection_state_t c = amqp_open();
    amqp_confirm_select(c, 1);
    amqp_check(amqp_get_rpc_reply(c), "confirm.select");
    amqp_basic_properties_t props = { ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
                                                AMQP_BASIC_CONTENT_TYPE_FLAG,
                                      .delivery_mode = 2, /* persistent */
                                      .content_type = amqp_cstring_bytes("text/plain") };
    char *body = malloc((size_t)cfg.body + 64);
    uint64_t seq = 0, tag = 0, acked = 0;
    uint64_t period = cfg.latency ? (uint64_t)(1e9 * cfg.producers / cfg.rate) : 0;
    uint64_t next = now_ns();
    amqp_bytes_t q = amqp_cstring_bytes(cfg.queue);
    while (running()) {
        pace(period, &next);
        uint64_t t = now_ns();
        for (int i = 0; i < cfg.batch; i++) {
            amqp_bytes_t b = { make_body(body, id, seq++, t), body };
            if (amqp_basic_publish(c, 1, amqp_empty_bytes, q, 0, 0, &props, b) != AMQP_STATUS_OK)
                die("RabbitMQ: publish failed");
            tag++;
        }
        uint64_t nacks = rabbit_wait_confirms(c, &acked, tag);
        count(&n_err, nacks);
        count(&n_sent, (uint64_t)cfg.batch - nacks);
        amqp_maybe_release_buffers(c);
    }
    free(body);
    amqp_done(c);
}

static void rabbit_consumer(struct samples *lat)
{
    amqp_connection_state_t c = amqp_open();
    amqp_basic_qos(c, 1, 0, (uint16_t)cfg.batch, 0);
    amqp_check(amqp_get_rpc_reply(c), "basic.qos");
    amqp_basic_consume(c, 1, amqp_cstring_bytes(cfg.queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    amqp_check(amqp_get_rpc_reply(c), "basic.consume");
    int unacked = 0;
    uint64_t last_tag = 0;
    while (running()) {
        amqp_envelope_t env;
        struct timeval tv = { WAIT_S, 0 };
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (unacked) { /* a short last batch */
                amqp_basic_ack(c, 1, last_tag, 1);
                count(&n_done, (uint64_t)unacked);
                unacked = 0;
            }
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            die("RabbitMQ: consume failed");
        count(&n_recv, 1);
        sample(lat, body_time(env.message.body.bytes, env.message.body.len));
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        if (++unacked >= cfg.batch) {
            if (amqp_basic_ack(c, 1, last_tag, cfg.batch > 1) != AMQP_STATUS_OK)
                die("RabbitMQ: ack failed");
            count(&n_done, (uint64_t)unacked);
            unacked = 0;
        }
    }
    amqp_done(c);
}

/* ---- Redis (lists, BLMOVE/LMOVE into a processing list, LREM as ack) ---- */

static redisContext *redis_open(void)
{
    redisContext *r = redisConnect(cfg.host, cfg.port);
    if (!r || r->err)
        die("cannot connect to Redis at %s:%d: %s", cfg.host, cfg.port, r ? r->errstr : "");
    return r;
}

static redisReply *redis_get(redisContext *r)
{
    void *rep = NULL;
    if (redisGetReply(r, &rep) != REDIS_OK || !rep)
        die("Redis: connection lost: %s", r->errstr);
    redisReply *x = rep;
    if (x->type == REDIS_REPLY_ERROR) {
        char msg[300];
        snprintf(msg, sizeof msg, "Redis: %.250s", x->str);
        error_once(msg);
    }
    return x;
}

static void redis_setup(bool create)
{
    (void)create; /* lists need no creating: both ends start from empty */
    redisContext *r = redis_open();
    redisReply *x = redisCommand(r, "DEL %s", cfg.queue);
    if (!x)
        die("Redis: %s", r->errstr);
    freeReplyObject(x);
    for (int i = 0; i < cfg.consumers; i++) {
        x = redisCommand(r, "DEL %s:processing:%d", cfg.queue, i);
        freeReplyObject(x);
    }
    redisFree(r);
}

static void redis_producer(int id)
{
    redisContext *r = redis_open();
    char *bodies = malloc((size_t)MAXBATCH * ((size_t)cfg.body + 64));
    const char *argv[2 + MAXBATCH];
    size_t argl[2 + MAXBATCH];
    argv[0] = "LPUSH";
    argl[0] = 5;
    argv[1] = cfg.queue;
    argl[1] = strlen(cfg.queue);
    uint64_t seq = 0, period = cfg.latency ? (uint64_t)(1e9 * cfg.producers / cfg.rate) : 0;
    uint64_t next = now_ns();
    while (running()) {
        pace(period, &next);
        uint64_t t = now_ns();
        for (int i = 0; i < cfg.batch; i++) {
            char *b = bodies + (size_t)i * ((size_t)cfg.body + 64);
            argl[2 + i] = make_body(b, id, seq++, t);
            argv[2 + i] = b;
        }
        redisAppendCommandArgv(r, 2 + cfg.batch, argv, argl);
        redisReply *x = redis_get(r);
        if (x->type == REDIS_REPLY_INTEGER)
            count(&n_sent, (uint64_t)cfg.batch);
        else
            count(&n_err, 1);
        freeReplyObject(x);
    }
    free(bodies);
    redisFree(r);
}

static void redis_consumer(int id, struct samples *lat)
{
    redisContext *r = redis_open();
    char proc[256];
    snprintf(proc, sizeof proc, "%s:processing:%d", cfg.queue, id);
    redisReply *got[MAXBATCH];
    while (running()) {
        int n = 0;
        if (cfg.batch > 1) {
            for (int i = 0; i < cfg.batch; i++)
                redisAppendCommand(r, "LMOVE %s %s RIGHT LEFT", cfg.queue, proc);
            for (int i = 0; i < cfg.batch; i++) {
                redisReply *x = redis_get(r);
                if (x->type == REDIS_REPLY_STRING)
                    got[n++] = x;
                else
                    freeReplyObject(x);
            }
        }
        if (n == 0) {
            redisAppendCommand(r, "BLMOVE %s %s RIGHT LEFT %d", cfg.queue, proc, WAIT_S);
            redisReply *x = redis_get(r);
            if (x->type == REDIS_REPLY_STRING)
                got[n++] = x;
            else
                freeReplyObject(x);
        }
        if (n == 0)
            continue;
        count(&n_recv, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            sample(lat, body_time(got[i]->str, got[i]->len));
            redisAppendCommand(r, "LREM %s 1 %b", proc, got[i]->str, got[i]->len);
        }
        for (int i = 0; i < n; i++) {
            redisReply *x = redis_get(r);
            if (x->type == REDIS_REPLY_INTEGER && x->integer == 1)
                count(&n_done, 1);
            else
                count(&n_err, 1);
            freeReplyObject(x);
            freeReplyObject(got[i]);
        }
    }
    redisFree(r);
}

/* ---- threads and the run ---- */

struct worker {
    pthread_t t;
    int id;
    bool producer;
    struct samples lat;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    switch (cfg.sys) {
    case SYS_SQS:
        w->producer ? sqs_producer(w->id) : sqs_consumer(&w->lat);
        break;
    case SYS_RABBIT:
        w->producer ? rabbit_producer(w->id) : rabbit_consumer(&w->lat);
        break;
    case SYS_REDIS:
        w->producer ? redis_producer(w->id) : redis_consumer(w->id, &w->lat);
        break;
    }
    return NULL;
}

static void sleep_s(double s)
{
    struct timespec d = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: brokerbench --system sqs|rabbitmq|redis --port N [--host H] [--queue NAME]\n"
            "       [--mode throughput|latency] [--batch 1..10] [--producers P] [--consumers C]\n"
            "       [--duration S] [--warmup S] [--rate MSG_PER_S] [--body BYTES]\n"
            "       [--backlog MESSAGES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "system", 1, 0, 's' },   { "host", 1, 0, 'h' },      { "port", 1, 0, 'p' },
        { "queue", 1, 0, 'q' },    { "mode", 1, 0, 'm' },      { "batch", 1, 0, 'b' },
        { "producers", 1, 0, 'P' }, { "consumers", 1, 0, 'C' }, { "duration", 1, 0, 'd' },
        { "warmup", 1, 0, 'w' },   { "rate", 1, 0, 'r' },      { "body", 1, 0, 'B' },
        { "backlog", 1, 0, 'L' },
        { 0, 0, 0, 0 },
    };
    const char *sys = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sys = optarg; break;
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 'q': cfg.queue = optarg; break;
        case 'm': cfg.latency = strcmp(optarg, "latency") == 0; break;
        case 'b': cfg.batch = atoi(optarg); break;
        case 'P': cfg.producers = atoi(optarg); break;
        case 'C': cfg.consumers = atoi(optarg); break;
        case 'd': cfg.duration = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'r': cfg.rate = atof(optarg); break;
        case 'B': cfg.body = atoi(optarg); break;
        case 'L': cfg.backlog = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!sys || cfg.port <= 0 || cfg.batch < 1 || cfg.batch > MAXBATCH || cfg.producers < 1 ||
        cfg.consumers < 1 || cfg.producers > 256 || cfg.consumers > 256 || cfg.duration <= 0 ||
        cfg.duration > 3600 || cfg.warmup < 0 || cfg.rate <= 0 || cfg.body < 48 ||
        cfg.body > 200000 || strlen(cfg.queue) > 64)
        usage();
    if (strcmp(sys, "sqs") == 0)
        cfg.sys = SYS_SQS;
    else if (strcmp(sys, "rabbitmq") == 0)
        cfg.sys = SYS_RABBIT;
    else if (strcmp(sys, "redis") == 0)
        cfg.sys = SYS_REDIS;
    else
        usage();
    if (cfg.latency)
        cfg.batch = 1;

    void (*setup)(bool) = cfg.sys == SYS_SQS ? sqs_setup : cfg.sys == SYS_RABBIT ? rabbit_setup
                                                                                : redis_setup;
    setup(true);
    int nw = cfg.producers + cfg.consumers;
    struct worker *w = calloc((size_t)nw, sizeof *w);
    for (int i = 0; i < nw; i++) {
        w[i].producer = i < cfg.producers;
        w[i].id = w[i].producer ? i : i - cfg.producers;
        if (pthread_create(&w[i].t, NULL, worker_main, &w[i]) != 0)
            die("pthread_create failed");
    }
    sleep_s(cfg.warmup);
    uint64_t s0 = atomic_load(&n_sent), d0 = atomic_load(&n_done), r0 = atomic_load(&n_recv);
    uint64_t t0 = now_ns();
    atomic_store(&phase, PH_MEASURE);
    sleep_s(cfg.duration);
    atomic_store(&phase, PH_STOP);
    uint64_t t1 = now_ns();
    uint64_t s1 = atomic_load(&n_sent), d1 = atomic_load(&n_done), r1 = atomic_load(&n_recv);
    for (int i = 0; i < nw; i++)
        pthread_join(w[i].t, NULL);
    setup(false);

    size_t total = 0;
    for (int i = 0; i < nw; i++)
        total += w[i].lat.n;
    uint32_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nw; i++) {
        if (w[i].lat.n)
            memcpy(all + k, w[i].lat.us, w[i].lat.n * sizeof *all);
        k += w[i].lat.n;
        free(w[i].lat.us);
    }
    if (total)
        qsort(all, total, sizeof *all, cmp_u32);
#define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] : 0)
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"system\":\"%s\",\"mode\":\"%s\",\"batch\":%d,\"producers\":%d,\"consumers\":%d,"
           "\"body\":%d,\"backlog\":%llu,\"rate\":%.0f,\"secs\":%.3f,\"sent\":%llu,\"received\":%llu,"
           "\"deleted\":%llu,\"errors\":%llu,\"sent_per_s\":%.1f,\"deleted_per_s\":%.1f,"
           "\"latency_us\":{\"count\":%zu,\"p50\":%u,\"p90\":%u,\"p99\":%u,\"p999\":%u,"
           "\"max\":%u}}\n",
           sys, cfg.latency ? "latency" : "throughput", cfg.batch, cfg.producers, cfg.consumers,
           cfg.body, (unsigned long long)cfg.backlog, cfg.latency ? cfg.rate : 0.0, secs, (unsigned long long)(s1 - s0),
           (unsigned long long)(r1 - r0), (unsigned long long)(d1 - d0),
           (unsigned long long)atomic_load(&n_err), (double)(s1 - s0) / secs,
           (double)(d1 - d0) / secs, total, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
           total ? all[total - 1] : 0);
    free(all);
    free(w);
    return atomic_load(&n_err) ? 1 : 0;
}
