/* Tests for core/httpd: a real server on an ephemeral loopback port, its
 * loop on a thread of its own, driven over plain blocking sockets.
 * Handlers answer with the path and the body length; "/hold" is held and
 * released from a timer, so the tests can see that nothing behind a held
 * request is parsed before the release. The suite httpd_lean runs a
 * server with the hooks for servers that keep no whole messages: "/sink"
 * counts its body through a body sink, "/stream" streams its answer from
 * a refill callback, "/ghost" is kept by a reference after its hang-up,
 * "/idle" reports which other connections own buffers. */
#include "core/httpd.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct tconn {
    struct httpd_conn h;
    struct ev_timer release; /* answers a held request */
    bool parked;             /* held with no release: only a hang-up ends it */
    bool ghost;              /* held; on hang-up kept by a reference for a while */
    struct ev_timer later;   /* drops that reference */
    size_t sunk;             /* body bytes the sink saw */
    size_t streamed;         /* bytes handed out by the refill callback */
    size_t stream_len;       /* of the streamed body */
};

#define STREAM_LEN 40000 /* "/stream" body, handed out in pieces of a shared block */
#define BIG_STREAM_LEN (8u << 20) /* "/bigstream": more than the socket buffers hold */
static const char zblock[1000] = {[0 ... 999] = 'z'};

static struct ev_loop *loop;
static struct httpd *srv;
static pthread_t thread;
static atomic_bool stop;
static int port;
static char events[256]; /* what the handlers saw, in order (loop thread) */
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void note(const char *what)
{
    pthread_mutex_lock(&events_lock);
    strncat(events, what, sizeof events - strlen(events) - 1);
    pthread_mutex_unlock(&events_lock);
}

static void answer(struct httpd_conn *c, int status, const char *body)
{
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\n%s\r\n%s", status,
               http_reason(status), httpd_date(c->srv), strlen(body), c->keep_alive ? "" : "Connection: close\r\n",
               body);
}

static void on_release(struct ev_loop *l, struct ev_timer *t)
{
    struct tconn *c = t->ud;
    FG_UNUSED(l);
    note("release;");
    answer(&c->h, 200, "held");
    httpd_release(&c->h);
}

static bool is_path(const struct httpd_conn *c, const char *p)
{
    return c->req.target_len == strlen(p) && !memcmp(c->req.target, p, strlen(p));
}

static void sink_cb(void *ud, const char *p, size_t n)
{
    FG_UNUSED(p);
    ((struct tconn *)ud)->sunk += n;
}

static void on_head(struct httpd_conn *c)
{
    struct tconn *t = (struct tconn *)c;
    t->sunk = 0;
    if (is_path(c, "/sink"))
        httpd_body_sink(c, sink_cb, t);
}

static size_t refill(struct httpd_conn *c, const char **p)
{
    struct tconn *t = (struct tconn *)c;
    size_t n = FG_MIN(sizeof zblock, t->stream_len - t->streamed);
    t->streamed += n;
    *p = zblock;
    return n;
}

/* "/idle": how many other connections own a buffer. */
static int owning(struct httpd_conn *self)
{
    int n = 0;
    for (struct httpd_conn *o = httpd_conns(self->srv); o; o = o->next)
        if (o != self && (o->in.data || o->out.data || o->head.data || o->body.data || o->hdrs))
            n++;
    return n;
}

static void on_ghost_done(struct ev_loop *l, struct ev_timer *t)
{
    struct tconn *c = t->ud;
    FG_UNUSED(l);
    note("unref;");
    httpd_unref(&c->h);
}

/* The lean server's paths; false for the others. */
static bool lean_request(struct httpd_conn *c)
{
    struct tconn *t = (struct tconn *)c;
    char body[64];
    if (is_path(c, "/sink")) {
        snprintf(body, sizeof body, "sunk %zu body %zu", t->sunk, buf_len(&c->body));
    } else if (is_path(c, "/idle")) {
        snprintf(body, sizeof body, "owning %d", owning(c));
    } else if (is_path(c, "/ghost")) {
        t->ghost = true;
        httpd_hold(c, true);
        return true;
    } else if (is_path(c, "/stream") || is_path(c, "/bigstream")) {
        t->stream_len = is_path(c, "/stream") ? STREAM_LEN : BIG_STREAM_LEN;
        buf_printf(&c->out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", t->stream_len);
        t->streamed = 0;
        httpd_stream(c, refill);
        return true;
    } else {
        return false;
    }
    answer(c, 200, body);
    return true;
}

static void on_request(struct httpd_conn *c)
{
    struct tconn *t = (struct tconn *)c;
    char path[64], body[64];
    snprintf(path, sizeof path, "%.*s;", (int)FG_MIN(c->req.target_len, 40), c->req.target);
    note(path);
    if (lean_request(c))
        return;
    if (c->req.target_len == 5 && !memcmp(c->req.target, "/park", 5)) {
        t->parked = true;
        httpd_hold(c, true);
        return;
    }
    if (c->req.target_len == 5 && !memcmp(c->req.target, "/hold", 5)) {
        httpd_hold(c, false);
        ev_timer_init(&t->release, on_release, t);
        ev_timer_start(httpd_loop(c->srv), &t->release, 100);
        return;
    }
    snprintf(body, sizeof body, "%.*s %zu", (int)FG_MIN(c->req.target_len, 40), c->req.target,
             buf_len(&c->body));
    answer(c, 200, body);
}

static void on_error(struct httpd_conn *c, int status, const char *msg)
{
    answer(c, status, msg);
}

static void on_close(struct httpd_conn *c)
{
    struct tconn *t = (struct tconn *)c;
    if (t->release.cb)
        ev_timer_stop(httpd_loop(c->srv), &t->release);
    if (t->parked)
        note("closed;");
    if (t->ghost) {
        note("ghost;");
        httpd_ref(c);
        ev_timer_init(&t->later, on_ghost_done, t);
        ev_timer_start(httpd_loop(c->srv), &t->later, 50);
    }
}

static void wake(struct ev_loop *l, void *ud)
{
    FG_UNUSED(ud);
    if (atomic_load(&stop))
        ev_break(l);
}

static void before_poll(struct ev_loop *l, void *ud)
{
    FG_UNUSED(l);
    httpd_free_dead(ud);
}

static void *run(void *arg)
{
    ev_run(arg);
    return NULL;
}

static void start(bool lean)
{
    struct httpd_limits lim = {
        .max_conns = 16, .max_head = 1024, .max_headers = 16, .max_body = 4096, .max_trailer = 256,
        .header_ms = 5000, .body_ms = 5000, .idle_ms = 5000, .write_ms = 5000, .linger_ms = 500,
        .read_chunk = 4096, .in_max = 8192, .held_in_max = 8192, .out_high = 64 * 1024,
    };
    struct httpd_hooks hooks = {.conn_size = sizeof(struct tconn), .on_request = on_request,
                                .on_error = on_error, .on_close = on_close};
    if (lean) { /* no timeouts, idle release, the body sink */
        lim.header_ms = lim.body_ms = lim.idle_ms = lim.write_ms = 0;
        lim.idle_release = true;
        hooks.on_head = on_head;
    }
    loop = ev_loop_new();
    cr_assert(loop);
    srv = httpd_new(loop, &lim, &hooks, NULL);
    struct net_addr a, bound;
    char *err = NULL;
    cr_assert_eq(net_parse_addr("127.0.0.1:0", &a, &err), 0);
    cr_assert_eq(httpd_listen(srv, &a, 16, &bound), 0);
    port = net_addr_port(&bound);
    ev_set_before_poll(loop, before_poll, srv);
    ev_set_async(loop, wake, NULL);
    events[0] = '\0';
    atomic_store(&stop, false);
    cr_assert_eq(pthread_create(&thread, NULL, run, loop), 0);
}

static void setup(void) { start(false); }
static void setup_lean(void) { start(true); }

static void teardown(void)
{
    atomic_store(&stop, true);
    ev_async_send(loop);
    pthread_join(thread, NULL);
    httpd_free(srv);
    ev_loop_free(loop);
}

TestSuite(httpd, .init = setup, .fini = teardown, .timeout = 30);
TestSuite(httpd_lean, .init = setup_lean, .fini = teardown, .timeout = 30);

/* ---- client side ---- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        cr_assert_gt(w, 0);
        s += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

/* Reads until the peer closes or want responses' bodies have arrived
 * (counted as Content-Length headers whose bodies are complete). */
static char *read_answers(int fd, int want)
{
    static char b[65536];
    size_t n = 0;
    for (;;) {
        int got = 0;
        const char *p = b;
        b[n] = '\0';
        while ((p = strstr(p, "Content-Length: "))) {
            size_t len = strtoul(p + 16, NULL, 10);
            const char *e = strstr(p, "\r\n\r\n");
            if (!e || (size_t)(b + n - (e + 4)) < len)
                break;
            got++;
            p = e + 4 + len;
        }
        if (want && got >= want)
            return b;
        ssize_t r = recv(fd, b + n, sizeof b - 1 - n, 0);
        if (r <= 0)
            return b;
        n += (size_t)r;
    }
}

static int count(const char *s, const char *what)
{
    int k = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        k++;
    return k;
}

/* ---- tests ---- */

Test(httpd, pipelined_in_order)
{
    int fd = dial();
    send_str(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    char *r = read_answers(fd, 3);
    cr_assert_eq(count(r, "HTTP/1.1 200 OK"), 3, "%s", r);
    char *a = strstr(r, "/a 0"), *b = strstr(r, "/b 0"), *c = strstr(r, "/c 3");
    cr_assert(a && b && c && a < b && b < c, "%s", r);
    close(fd);
}

Test(httpd, chunked_body)
{
    int fd = dial();
    send_str(fd, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    char *r = read_answers(fd, 1);
    cr_assert(strstr(r, "/up 11"), "%s", r);
    close(fd);
}

Test(httpd, oversized_head_431_and_close)
{
    int fd = dial();
    char big[2048];
    memset(big, 'a', sizeof big);
    send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    send_all(fd, big, sizeof big);
    send_str(fd, "\r\n\r\n");
    char *r = read_answers(fd, 0);
    cr_assert(strncmp(r, "HTTP/1.1 431 ", 13) == 0, "%s", r);
    cr_assert(strstr(r, "Connection: close"), "%s", r);
    close(fd);
}

Test(httpd, malformed_400_and_body_413)
{
    int fd = dial();
    send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    char *r = read_answers(fd, 0);
    cr_assert(strncmp(r, "HTTP/1.1 400 ", 13) == 0, "%s", r);
    close(fd);
    fd = dial();
    send_str(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    r = read_answers(fd, 0);
    cr_assert(strncmp(r, "HTTP/1.1 413 ", 13) == 0, "%s", r);
    close(fd);
}

Test(httpd, hold_release_keeps_order)
{
    int fd = dial();
    send_str(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_answers(fd, 2);
    char *held = strstr(r, "held"), *after = strstr(r, "/after 0");
    cr_assert(held && after && held < after, "%s", r);
    pthread_mutex_lock(&events_lock);
    /* the request behind the held one ran only after the release */
    cr_assert_str_eq(events, "/hold;release;/after;");
    pthread_mutex_unlock(&events_lock);
    close(fd);
}

Test(httpd, http10_closes_and_keep_alive_honoured)
{
    int fd = dial();
    send_str(fd, "GET /x HTTP/1.0\r\n\r\n");
    char *r = read_answers(fd, 0); /* reads to EOF: the server closed */
    cr_assert(strstr(r, "Connection: close"), "%s", r);
    cr_assert(strstr(r, "/x 0"), "%s", r);
    close(fd);
}

Test(httpd, held_dropped_on_hang_up)
{
    int fd = dial();
    send_str(fd, "GET /park HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n");
    shutdown(fd, SHUT_WR);
    char *r = read_answers(fd, 0); /* EOF: the server closed without answering */
    cr_assert_str_eq(r, "");
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&events_lock);
        bool seen = strstr(events, "closed;") != NULL;
        pthread_mutex_unlock(&events_lock);
        if (seen)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&events_lock);
    cr_assert_str_eq(events, "/park;closed;"); /* nothing behind the held request ran */
    pthread_mutex_unlock(&events_lock);
    close(fd);
}

static bool wait_event(const char *what)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&events_lock);
        bool seen = strstr(events, what) != NULL;
        pthread_mutex_unlock(&events_lock);
        if (seen)
            return true;
        usleep(10000);
    }
    return false;
}

/* ---- the hooks (suite httpd_lean) ---- */

Test(httpd_lean, sink_takes_bodies_of_any_size)
{
    int fd = dial();
    char big[20000];
    memset(big, 'b', sizeof big);
    send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n"); /* over max_body */
    send_all(fd, big, sizeof big);
    send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n0\r\n\r\nPOST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    char *r = read_answers(fd, 3);
    char *a = strstr(r, "sunk 20000 body 0"), *b = strstr(r, "sunk 5 body 0"), *c = strstr(r, "/other 3");
    cr_assert(a && b && c && a < b && b < c, "%s", r); /* sunk, not stored; others still stored */
    close(fd);
}

Test(httpd_lean, stream_refills_in_order)
{
    int fd = dial();
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_answers(fd, 2);
    char *body = strstr(r, "\r\n\r\n");
    cr_assert(body, "%s", r);
    body += 4;
    size_t z = strspn(body, "z");
    cr_assert_eq(z, STREAM_LEN);
    cr_assert(strncmp(body + z, "HTTP/1.1 200 OK", 15) == 0 && strstr(body + z, "/after 0"));
    pthread_mutex_lock(&events_lock);
    cr_assert_str_eq(events, "/stream;/after;"); /* /after waited for the stream's end */
    pthread_mutex_unlock(&events_lock);
    close(fd);
}

/* Streams the socket cannot take at once, pipelined: each resumes on a
 * write event, and the requests behind them are answered after. */
Test(httpd_lean, pipelined_streams_over_full_sockets)
{
    int fd = dial();
    send_str(fd, "GET /bigstream HTTP/1.1\r\nHost: x\r\n\r\nGET /bigstream HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100000); /* the server's first writes fill the socket */
    static char b[1 << 16];
    size_t zs = 0;
    char last[4096] = ""; /* the stream's last bytes */
    while (!strstr(last, "/after 0")) {
        ssize_t r = recv(fd, b, sizeof b, 0);
        cr_assert_gt(r, 0, "z bytes so far %zu", zs);
        for (ssize_t i = 0; i < r; i++)
            zs += b[i] == 'z';
        size_t keep = sizeof last - 1, take = FG_MIN((size_t)r, keep), old = FG_MIN(strlen(last), keep - take);
        memmove(last, last + strlen(last) - old, old);
        memcpy(last + old, b + r - take, take);
        last[old + take] = '\0';
    }
    cr_assert_eq(zs, 2 * BIG_STREAM_LEN);
    close(fd);
}

Test(httpd_lean, idle_connections_own_no_buffers)
{
    int a = dial(), b = dial();
    send_str(a, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    char *r = read_answers(a, 1);
    cr_assert(strstr(r, "/x 3"), "%s", r);
    send_str(b, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_answers(b, 1);
    cr_assert(strstr(r, "owning 0"), "%s", r);
    send_str(a, "GET /y HTTP/1.1\r\nHost: x\r\n\r\n"); /* and it still serves */
    r = read_answers(a, 1);
    cr_assert(strstr(r, "/y 0"), "%s", r);
    close(a);
    close(b);
}

Test(httpd_lean, reference_keeps_a_closed_connection)
{
    int fd = dial();
    send_str(fd, "GET /ghost HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(wait_event("/ghost;"));
    close(fd);
    cr_assert(wait_event("unref;"));
    pthread_mutex_lock(&events_lock);
    cr_assert_str_eq(events, "/ghost;ghost;unref;"); /* the struct outlived the close */
    pthread_mutex_unlock(&events_lock);
    fd = dial();
    send_str(fd, "GET /z HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strstr(read_answers(fd, 1), "/z 0"));
    close(fd);
}

/* Out of descriptors, accepting pauses; once some are free it resumes. */
Test(httpd_lean, accept_resumes_after_emfile)
{
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[256], n = 0;
    while (n < 256 && (fill[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    cr_assert_gt(n, 0);
    close(fill[--n]);
    int fd = dial(); /* the last descriptor: the server cannot accept it yet */
    send_str(fd, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000);
    while (n)
        close(fill[--n]);
    char *r = read_answers(fd, 1);
    cr_assert(strstr(r, "/late 0"), "%s", r);
    close(fd);
    setrlimit(RLIMIT_NOFILE, &old);
}

/* ---- the body framing step on its own (no server needed) ---- */

static void count_cb(void *ud, const char *p, size_t n)
{
    FG_UNUSED(p);
    *(size_t *)ud += n;
}

Test(httpd_body_feed, length_and_chunked_in_pieces)
{
    size_t got = 0;
    bool done;
    uint64_t left = 5;
    struct http_chunked ch;
    cr_assert_eq(httpd_body_feed(HTTP_BODY_LENGTH, &left, &ch, "abc", 3, count_cb, &got, &done), 3);
    cr_assert(!done);
    cr_assert_eq(httpd_body_feed(HTTP_BODY_LENGTH, &left, &ch, "deGET", 5, count_cb, &got, &done), 2);
    cr_assert(done && got == 5 && left == 0);

    got = 0;
    http_chunked_init(&ch, 64);
    const char *body = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
    ssize_t a = httpd_body_feed(HTTP_BODY_CHUNKED, &left, &ch, body, 6, count_cb, &got, &done);
    cr_assert(a >= 0 && !done);
    ssize_t b = httpd_body_feed(HTTP_BODY_CHUNKED, &left, &ch, body + a, strlen(body) - (size_t)a, count_cb, &got,
                                &done);
    cr_assert(done && got == 5);
    cr_assert_str_eq(body + a + b, "NEXT"); /* the next message is left alone */

    http_chunked_init(&ch, 64);
    cr_assert_lt(httpd_body_feed(HTTP_BODY_CHUNKED, &left, &ch, "zz\r\n", 4, count_cb, &got, &done), 0);
    cr_assert_eq(httpd_body_feed(HTTP_BODY_NONE, &left, &ch, "x", 1, count_cb, &got, &done), 0);
    cr_assert(done);
}
