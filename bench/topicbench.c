/* topicbench: the load client of bench/topics.sh. Publish-to-deliver
 * through a topic fanned out to N durable queues, the same way on both
 * systems, one thread and one connection per producer and per consumer,
 * blocking I/O:
 *
 *   sns       floodgate broker: a topic with N sqs subscriptions
 *             (RawMessageDelivery, so queues hold the bare message as in
 *             RabbitMQ), Publish (or PublishBatch of 10) in the SNS query
 *             protocol; consumers use the SQS JSON 1.0 protocol:
 *             ReceiveMessage (10, WaitTimeSeconds=1) and DeleteMessageBatch;
 *   rabbitmq  a durable fanout exchange bound to N durable queues,
 *             persistent messages, publisher confirms (waited for per
 *             message, or per 10), consumers with basic.consume, prefetch
 *             10 and multiple acks.
 *
 * A publish counts once its confirmation arrived (floodgate answers a
 * Publish only when every queue copy is durable; RabbitMQ confirms a
 * persistent message routed to durable queues once it is on disk in all of
 * them). A delivery counts once it was acknowledged (deleted).
 *
 * Modes:
 *   throughput  P producers publish as fast as each is confirmed; C
 *               consumers per queue receive and acknowledge. Counted over
 *               the measured window after a warm-up: publishes/s and
 *               deliveries/s (every copy). Producers pause while more than
 *               --backlog copies are published and not yet delivered.
 *   latency     producers publish single messages at a fixed total rate,
 *               each body carrying its send time; consumers record the
 *               time from publish to receive of every copy.
 *
 * Output: one JSON object on stdout; exit 1 when the system could not be
 * reached or answered with errors (counted in the JSON).
 *
 * Build: cc -O2 -o topicbench topicbench.c -lrabbitmq -lcjson -lpthread */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <cjson/cJSON.h>

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
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

#define MAXQ 64
#define ACCOUNT "000000000000"

enum sys { SYS_SNS, SYS_RABBIT };
enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

static struct {
    enum sys sys;
    int port;
    const char *name;
    int fanout, batch, producers, consumers, body;
    bool latency;
    double duration, warmup, rate;
    uint64_t backlog;
} cfg = { .name = "bench", .fanout = 1, .batch = 1, .producers = 4, .consumers = 2, .body = 128,
          .duration = 5, .warmup = 1, .rate = 200, .backlog = 100000 };

static _Atomic int phase;
static _Atomic uint64_t n_pub, n_del, n_pub_all, n_del_all, n_err;
static char topic_arn[256];
static char qurl[MAXQ][256];

struct lat {
    uint32_t *us;
    size_t n, cap;
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "topicbench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A body of cfg.body bytes: "<send ns>:<padding>" (printable, form-safe). */
static size_t make_body(char *out, uint64_t t)
{
    int n = snprintf(out, (size_t)cfg.body + 1, "%llu:", (unsigned long long)t);
    for (int i = n; i < cfg.body; i++)
        out[i] = 'x';
    out[cfg.body] = '\0';
    return (size_t)cfg.body;
}

static void record(struct lat *l, const char *body, size_t len, uint64_t t)
{
    if (!cfg.latency || len < 2)
        return;
    uint64_t sent = strtoull(body, NULL, 10);
    if (!sent || t < sent)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->us = realloc(l->us, l->cap * sizeof *l->us);
    }
    uint64_t us = (t - sent) / 1000;
    l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void count_pub(uint64_t n)
{
    atomic_fetch_add(&n_pub_all, n);
    if (atomic_load(&phase) == PH_MEASURE)
        atomic_fetch_add(&n_pub, n);
}

static void count_del(uint64_t n)
{
    atomic_fetch_add(&n_del_all, n);
    if (atomic_load(&phase) == PH_MEASURE)
        atomic_fetch_add(&n_del, n);
}

/* Producers wait while too many copies are in the queues. */
static void backlog_wait(void)
{
    while (atomic_load(&phase) != PH_STOP &&
           atomic_load(&n_pub_all) * (uint64_t)cfg.fanout > atomic_load(&n_del_all) + cfg.backlog)
        usleep(1000);
}

/* ---- a blocking HTTP/1.1 client ---- */

struct hc {
    int fd;
    char *buf;
    size_t len, cap;
};

static void hc_open(struct hc *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect 127.0.0.1:%d: %s", cfg.port, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->len = 0;
    if (!c->buf) {
        c->cap = 1 << 16;
        c->buf = malloc(c->cap);
    }
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* POSTs body to / and reads the answer; returns the status (or -1), the
 * body NUL-terminated in *resp (valid until the next call). */
static int hc_post(struct hc *c, const char *headers, const char *body, size_t blen, char **resp)
{
    char head[512];
    int hn = snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %zu\r\n\r\n",
                      cfg.port, headers, blen);
    if (!write_all(c->fd, head, (size_t)hn) || !write_all(c->fd, body, blen))
        return -1;
    c->len = 0;
    size_t need = 0, hend = 0;
    for (;;) {
        if (c->len + 4096 > c->cap) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        if (!hend) {
            char *e = strstr(c->buf, "\r\n\r\n");
            if (!e)
                continue;
            hend = (size_t)(e - c->buf) + 4;
            char *cl = strcasestr(c->buf, "\r\nContent-Length:");
            need = hend + (cl && cl < e ? strtoull(cl + 17, NULL, 10) : 0);
        }
        if (c->len >= need)
            break;
    }
    c->buf[need] = '\0';
    *resp = c->buf + hend;
    return atoi(c->buf + 9);
}

static int sqs_call(struct hc *c, const char *action, cJSON *params, cJSON **out)
{
    char hdr[160];
    snprintf(hdr, sizeof hdr, "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.%s\r\n", action);
    char *b = cJSON_PrintUnformatted(params);
    char *resp;
    int st = hc_post(c, hdr, b, strlen(b), &resp);
    free(b);
    if (out)
        *out = st == 200 ? cJSON_Parse(resp) : NULL;
    return st;
}

static int sns_call(struct hc *c, const char *form, char **resp)
{
    return hc_post(c, "Content-Type: application/x-www-form-urlencoded\r\n", form, strlen(form), resp);
}

static void sns_setup(void)
{
    struct hc c = {0};
    hc_open(&c);
    char form[1024], *resp;
    snprintf(form, sizeof form, "Action=CreateTopic&Version=2010-03-31&Name=%s", cfg.name);
    if (sns_call(&c, form, &resp) != 200)
        die("CreateTopic failed: %.300s", resp);
    char *a = strstr(resp, "<TopicArn>"), *e = a ? strstr(a, "</TopicArn>") : NULL;
    if (!a || !e)
        die("CreateTopic: no TopicArn");
    snprintf(topic_arn, sizeof topic_arn, "%.*s", (int)(e - a - 10), a + 10);
    for (int i = 0; i < cfg.fanout; i++) {
        char qn[160];
        snprintf(qn, sizeof qn, "%s-q%d", cfg.name, i);
        cJSON *p = cJSON_CreateObject(), *r = NULL;
        cJSON_AddStringToObject(p, "QueueName", qn);
        if (sqs_call(&c, "CreateQueue", p, &r) != 200 || !cJSON_GetObjectItem(r, "QueueUrl"))
            die("CreateQueue %s failed", qn);
        snprintf(qurl[i], sizeof qurl[i], "%s", cJSON_GetObjectItem(r, "QueueUrl")->valuestring);
        cJSON_Delete(p);
        cJSON_Delete(r);
        snprintf(form, sizeof form, "Action=Subscribe&TopicArn=%s&Protocol=sqs&Endpoint=arn:aws:sqs:us-east-1:"
                 ACCOUNT ":%s&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true",
                 topic_arn, qn);
        if (sns_call(&c, form, &resp) != 200)
            die("Subscribe failed: %.300s", resp);
    }
    close(c.fd);
    free(c.buf);
}

static void sns_teardown(void)
{
    struct hc c = {0};
    hc_open(&c);
    char form[512], *resp;
    snprintf(form, sizeof form, "Action=DeleteTopic&TopicArn=%s", topic_arn);
    sns_call(&c, form, &resp);
    for (int i = 0; i < cfg.fanout; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "QueueUrl", qurl[i]);
        sqs_call(&c, "DeleteQueue", p, NULL);
        cJSON_Delete(p);
    }
    close(c.fd);
    free(c.buf);
}

static void sns_producer(double rate)
{
    struct hc c = {0};
    hc_open(&c);
    size_t cap = 256 + (size_t)cfg.batch * (cfg.body + 96);
    char *form = malloc(cap), *body = malloc((size_t)cfg.body + 1), *resp;
    uint64_t next = now_ns();
    while (atomic_load(&phase) != PH_STOP) {
        if (cfg.latency) {
            uint64_t t = now_ns();
            if (t < next) {
                usleep((useconds_t)((next - t) / 1000));
                continue;
            }
            next += (uint64_t)(1e9 / rate);
        } else {
            backlog_wait();
        }
        int n;
        if (cfg.batch == 1) {
            make_body(body, now_ns());
            n = snprintf(form, cap, "Action=Publish&TopicArn=%s&Message=%s", topic_arn, body);
        } else {
            n = snprintf(form, cap, "Action=PublishBatch&TopicArn=%s", topic_arn);
            for (int i = 1; i <= cfg.batch; i++) {
                make_body(body, now_ns());
                n += snprintf(form + n, cap - (size_t)n, "&PublishBatchRequestEntries.member.%d.Id=m%d"
                              "&PublishBatchRequestEntries.member.%d.Message=%s", i, i, i, body);
            }
        }
        int st = hc_post(&c, "Content-Type: application/x-www-form-urlencoded\r\n", form, (size_t)n, &resp);
        if (st == 200 && !strstr(resp, "<Failed><member>")) {
            count_pub((uint64_t)cfg.batch);
        } else {
            atomic_fetch_add(&n_err, 1);
            if (st < 0) {
                close(c.fd);
                hc_open(&c);
            }
        }
    }
    close(c.fd);
    free(c.buf);
    free(form);
    free(body);
}

static void sns_consumer(int q, struct lat *l)
{
    struct hc c = {0};
    hc_open(&c);
    while (atomic_load(&phase) != PH_STOP) {
        cJSON *p = cJSON_CreateObject(), *r = NULL;
        cJSON_AddStringToObject(p, "QueueUrl", qurl[q]);
        cJSON_AddNumberToObject(p, "MaxNumberOfMessages", 10);
        cJSON_AddNumberToObject(p, "WaitTimeSeconds", 1);
        int st = sqs_call(&c, "ReceiveMessage", p, &r);
        cJSON_Delete(p);
        uint64_t t = now_ns();
        if (st != 200) {
            atomic_fetch_add(&n_err, 1);
            cJSON_Delete(r);
            continue;
        }
        cJSON *msgs = cJSON_GetObjectItem(r, "Messages");
        int n = cJSON_GetArraySize(msgs);
        if (n) {
            cJSON *d = cJSON_CreateObject(), *entries;
            cJSON_AddStringToObject(d, "QueueUrl", qurl[q]);
            entries = cJSON_AddArrayToObject(d, "Entries");
            for (int i = 0; i < n; i++) {
                cJSON *m = cJSON_GetArrayItem(msgs, i), *e = cJSON_CreateObject();
                const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(m, "Body"));
                record(l, b ? b : "", b ? strlen(b) : 0, t);
                char id[16];
                snprintf(id, sizeof id, "%d", i);
                cJSON_AddStringToObject(e, "Id", id);
                cJSON_AddStringToObject(e, "ReceiptHandle",
                                        cJSON_GetStringValue(cJSON_GetObjectItem(m, "ReceiptHandle")));
                cJSON_AddItemToArray(entries, e);
            }
            if (sqs_call(&c, "DeleteMessageBatch", d, NULL) == 200)
                count_del((uint64_t)n);
            else
                atomic_fetch_add(&n_err, 1);
            cJSON_Delete(d);
        }
        cJSON_Delete(r);
    }
    close(c.fd);
    free(c.buf);
}

/* ---- RabbitMQ ---- */

static void amqp_check(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    die("%s failed (reply type %d)", what, (int)r.reply_type);
}

static amqp_connection_state_t rmq_open(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, "127.0.0.1", cfg.port) != AMQP_STATUS_OK)
        die("cannot connect to RabbitMQ on 127.0.0.1:%d", cfg.port);
    amqp_check(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(c, 1);
    amqp_check(amqp_get_rpc_reply(c), "channel.open");
    return c;
}

static void rmq_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

static void rmq_setup(bool teardown)
{
    amqp_connection_state_t c = rmq_open();
    amqp_bytes_t x = amqp_cstring_bytes(cfg.name);
    if (!teardown) {
        amqp_exchange_declare(c, 1, x, amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
        amqp_check(amqp_get_rpc_reply(c), "exchange.declare (fanout, durable)");
    }
    for (int i = 0; i < cfg.fanout; i++) {
        snprintf(qurl[i], sizeof qurl[i], "%s-q%d", cfg.name, i);
        amqp_bytes_t q = amqp_cstring_bytes(qurl[i]);
        if (teardown) {
            amqp_queue_delete(c, 1, q, 0, 0);
            continue;
        }
        amqp_queue_declare(c, 1, q, 0, 1, 0, 0, amqp_empty_table);
        amqp_check(amqp_get_rpc_reply(c), "queue.declare (durable)");
        amqp_queue_bind(c, 1, q, x, amqp_empty_bytes, amqp_empty_table);
        amqp_check(amqp_get_rpc_reply(c), "queue.bind");
    }
    if (teardown)
        amqp_exchange_delete(c, 1, x, 0);
    rmq_close(c);
}

/* Waits until every publish up to seq is confirmed; false on a nack or a
 * broken connection. */
static bool rmq_confirms(amqp_connection_state_t c, uint64_t *acked, uint64_t upto)
{
    bool ok = true;
    while (*acked < upto) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
            return false;
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        /* Confirms come in order; a multiple one covers every tag up to
         * its own. */
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag > *acked)
                *acked = a->delivery_tag;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            amqp_basic_nack_t *a = f.payload.method.decoded;
            if (a->delivery_tag > *acked)
                *acked = a->delivery_tag;
            ok = false;
        }
    }
    return ok;
}

static void rmq_producer(double rate)
{
    amqp_connection_state_t c = rmq_open();
    amqp_confirm_select(c, 1);
    amqp_check(amqp_get_rpc_reply(c), "confirm.select");
    amqp_basic_properties_t props = { ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
                                      .delivery_mode = 2,
                                      .content_type = amqp_cstring_bytes("text/plain") };
    char *body = malloc((size_t)cfg.body + 1);
    amqp_bytes_t x = amqp_cstring_bytes(cfg.name);
    uint64_t seq = 0, acked = 0, next = now_ns();
    while (atomic_load(&phase) != PH_STOP) {
        if (cfg.latency) {
            uint64_t t = now_ns();
            if (t < next) {
                usleep((useconds_t)((next - t) / 1000));
                continue;
            }
            next += (uint64_t)(1e9 / rate);
        } else {
            backlog_wait();
        }
        for (int i = 0; i < cfg.batch; i++) {
            amqp_bytes_t b = { make_body(body, now_ns()), body };
            if (amqp_basic_publish(c, 1, x, amqp_empty_bytes, 0, 0, &props, b) != AMQP_STATUS_OK)
                die("basic.publish failed");
            seq++;
        }
        if (rmq_confirms(c, &acked, seq))
            count_pub((uint64_t)cfg.batch);
        else
            atomic_fetch_add(&n_err, 1);
        amqp_maybe_release_buffers(c);
    }
    free(body);
    rmq_close(c);
}

static void rmq_consumer(int q, struct lat *l)
{
    amqp_connection_state_t c = rmq_open();
    amqp_basic_qos(c, 1, 0, 10, 0);
    amqp_check(amqp_get_rpc_reply(c), "basic.qos");
    amqp_basic_consume(c, 1, amqp_cstring_bytes(qurl[q]), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    amqp_check(amqp_get_rpc_reply(c), "basic.consume");
    uint64_t pending = 0, last = 0;
    while (atomic_load(&phase) != PH_STOP) {
        amqp_envelope_t env;
        struct timeval tv = { 0, 100000 };
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (pending) { /* idle: acknowledge what is held */
                amqp_basic_ack(c, 1, last, 1);
                count_del(pending);
                pending = 0;
            }
            continue;
        }
        record(l, env.message.body.bytes, env.message.body.len, now_ns());
        last = env.delivery_tag;
        pending++;
        amqp_destroy_envelope(&env);
        if (pending >= 10 || cfg.latency) {
            if (amqp_basic_ack(c, 1, last, 1) != AMQP_STATUS_OK)
                atomic_fetch_add(&n_err, 1);
            count_del(pending);
            pending = 0;
        }
    }
    rmq_close(c);
}

/* ---- threads and the run ---- */

struct worker {
    pthread_t th;
    int q;
    bool consumer;
    struct lat lat;
};

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    double rate = cfg.rate / cfg.producers;
    if (w->consumer)
        cfg.sys == SYS_SNS ? sns_consumer(w->q, &w->lat) : rmq_consumer(w->q, &w->lat);
    else
        cfg.sys == SYS_SNS ? sns_producer(rate) : rmq_producer(rate);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"system", 1, 0, 's'}, {"port", 1, 0, 'p'}, {"name", 1, 0, 'n'}, {"fanout", 1, 0, 'f'},
        {"mode", 1, 0, 'm'}, {"batch", 1, 0, 'b'}, {"producers", 1, 0, 'P'}, {"consumers", 1, 0, 'C'},
        {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'}, {"body", 1, 0, 'B'}, {"rate", 1, 0, 'r'},
        {"backlog", 1, 0, 'k'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': cfg.sys = !strcmp(optarg, "rabbitmq") ? SYS_RABBIT : SYS_SNS; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 'n': cfg.name = optarg; break;
        case 'f': cfg.fanout = atoi(optarg); break;
        case 'm': cfg.latency = !strcmp(optarg, "latency"); break;
        case 'b': cfg.batch = atoi(optarg); break;
        case 'P': cfg.producers = atoi(optarg); break;
        case 'C': cfg.consumers = atoi(optarg); break;
        case 'd': cfg.duration = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'B': cfg.body = atoi(optarg); break;
        case 'r': cfg.rate = atof(optarg); break;
        case 'k': cfg.backlog = strtoull(optarg, NULL, 10); break;
        default: die("usage: topicbench --system sns|rabbitmq --port N [--fanout N --mode throughput|latency ...]");
        }
    }
    if (!cfg.port || cfg.fanout < 1 || cfg.fanout > MAXQ || cfg.batch < 1 || cfg.batch > 10 ||
        cfg.body < 24 || cfg.producers < 1 || cfg.consumers < 1)
        die("bad arguments");
    if (cfg.latency)
        cfg.batch = 1;
    if (cfg.sys == SYS_SNS)
        sns_setup();
    else
        rmq_setup(false);
    int nw = cfg.producers + cfg.fanout * cfg.consumers;
    struct worker *w = calloc((size_t)nw, sizeof *w);
    for (int i = 0; i < nw; i++) {
        w[i].consumer = i >= cfg.producers;
        w[i].q = w[i].consumer ? (i - cfg.producers) % cfg.fanout : 0;
        pthread_create(&w[i].th, NULL, run_worker, &w[i]);
    }
    usleep((useconds_t)(cfg.warmup * 1e6));
    atomic_store(&phase, PH_MEASURE);
    uint64_t t0 = now_ns();
    usleep((useconds_t)(cfg.duration * 1e6));
    atomic_store(&phase, PH_STOP);
    double secs = (double)(now_ns() - t0) / 1e9;
    for (int i = 0; i < nw; i++)
        pthread_join(w[i].th, NULL);
    struct lat all = {0};
    for (int i = 0; i < nw; i++) {
        for (size_t k = 0; k < w[i].lat.n; k++) {
            if (all.n == all.cap) {
                all.cap = all.cap ? all.cap * 2 : 4096;
                all.us = realloc(all.us, all.cap * sizeof *all.us);
            }
            all.us[all.n++] = w[i].lat.us[k];
        }
        free(w[i].lat.us);
    }
    qsort(all.us, all.n, sizeof *all.us, cmp_u32);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "system", cfg.sys == SYS_SNS ? "floodgate" : "rabbitmq");
    cJSON_AddStringToObject(out, "mode", cfg.latency ? "latency" : "throughput");
    cJSON_AddNumberToObject(out, "fanout", cfg.fanout);
    cJSON_AddNumberToObject(out, "batch", cfg.batch);
    cJSON_AddNumberToObject(out, "published_per_s", (double)atomic_load(&n_pub) / secs);
    cJSON_AddNumberToObject(out, "delivered_per_s", (double)atomic_load(&n_del) / secs);
    cJSON_AddNumberToObject(out, "errors", (double)atomic_load(&n_err));
    cJSON *l = cJSON_AddObjectToObject(out, "latency_us");
    cJSON_AddNumberToObject(l, "count", (double)all.n);
    cJSON_AddNumberToObject(l, "p50", all.n ? all.us[all.n / 2] : 0);
    cJSON_AddNumberToObject(l, "p99", all.n ? all.us[(size_t)((double)all.n * 0.99)] : 0);
    cJSON_AddNumberToObject(l, "max", all.n ? all.us[all.n - 1] : 0);
    char *s = cJSON_PrintUnformatted(out);
    puts(s);
    free(s);
    cJSON_Delete(out);
    free(all.us);
    free(w);
    if (cfg.sys == SYS_SNS)
        sns_teardown();
    else
        rmq_setup(true);
    return atomic_load(&n_err) ? 1 : 0;
}
