/* Tests for gateway/hcheck.c: the real checker thread against a tiny
 * in-test HTTP server on a loopback port. The snapshot is built by hand
 * (services and servers only) and put in place under snap_lock; the test
 * keeps its own reference on every snapshot and server, so it frees them
 * itself and can watch the checker's references come and go.
 *
 * Covered: the probe's exact request, rise on 200, fall on connection
 * refused, on a status outside expect_status, on a garbage response and on
 * a timeout; interim 1xx responses; dropping a server that left the
 * snapshot (its reference released); turning checks off bringing a
 * server back up; every socket closed on stop. */
#include <criterion/criterion.h>

#include "core/log.h"
#include "gateway/gw.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- a tiny HTTP server ---- */

#define MODE_SILENT 0   /* read the request, never answer */
#define MODE_GARBAGE -1 /* answer with bytes that are not HTTP */
#define MODE_INTERIM -2 /* 100 Continue, then 200 */

struct tsrv {
    int lfd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int mode;           /* a status code, or MODE_* */
    atomic_int accepted;
    atomic_int open;           /* connections not yet closed by the peer */
    pthread_mutex_t lock;
    char last[1024];           /* last request head received */
};

static struct tsrv ts;

static void *tsrv_main(void *arg)
{
    int held[256];
    int nheld = 0;
    while (!atomic_load(&ts.stop)) {
        /* Notice checker sockets closing while we hold them open. */
        for (int i = 0; i < nheld; i++) {
            char c;
            if (held[i] >= 0 && recv(held[i], &c, 1, MSG_DONTWAIT) == 0) {
                close(held[i]);
                held[i] = -1;
                atomic_fetch_sub(&ts.open, 1);
            }
        }
        struct pollfd p = {.fd = ts.lfd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        int fd = accept(ts.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&ts.accepted, 1);
        atomic_fetch_add(&ts.open, 1);
        char req[1024];
        size_t n = 0;
        while (n < sizeof req - 1) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            if (poll(&q, 1, 500) <= 0)
                break;
            ssize_t r = read(fd, req + n, sizeof req - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[n] = '\0';
        pthread_mutex_lock(&ts.lock);
        snprintf(ts.last, sizeof ts.last, "%s", req);
        pthread_mutex_unlock(&ts.lock);

        int mode = atomic_load(&ts.mode);
        char out[256];
        if (mode == MODE_SILENT) {
            if (nheld < (int)ARRAY_SIZE(held)) {
                held[nheld++] = fd;
                continue;
            }
            out[0] = '\0';
        } else if (mode == MODE_GARBAGE) {
            snprintf(out, sizeof out, "SPAM\r\n\r\n");
        } else if (mode == MODE_INTERIM) {
            snprintf(out, sizeof out,
                     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        } else {
            snprintf(out, sizeof out, "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", mode);
        }
        ssize_t w = write(fd, out, strlen(out));
        (void)w;
        close(fd);
        atomic_fetch_sub(&ts.open, 1);
    }
    for (int i = 0; i < nheld; i++)
        if (held[i] >= 0)
            close(held[i]);
    return NULL;
}

static void tsrv_start(int mode)
{
    ts.lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(ts.lfd >= 0);
    int one = 1;
    setsockopt(ts.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(ts.lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(listen(ts.lfd, 64), 0);
    socklen_t len = sizeof sin;
    getsockname(ts.lfd, (struct sockaddr *)&sin, &len);
    ts.port = ntohs(sin.sin_port);
    atomic_store(&ts.mode, mode);
    pthread_mutex_init(&ts.lock, NULL);
    cr_assert_eq(pthread_create(&ts.thread, NULL, tsrv_main, NULL), 0);
}

static void tsrv_stop(void)
{
    atomic_store(&ts.stop, true);
    pthread_join(ts.thread, NULL);
    close(ts.lfd);
}

/* A loopback port with nothing listening. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

/* ---- a hand-made snapshot ---- */

static struct gw g;

static void setup(void)
{
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.snap_lock, NULL);
    pthread_mutex_init(&g.ctl_lock, NULL);
    gw_servers_init(&g.servers);
    log_level = LOG_ERROR;
}

static struct gw_server *mk_server(int port)
{
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", port);
    struct net_addr na;
    char *err = NULL;
    cr_assert_eq(net_parse_addr(a, &na, &err), 0);
    return gw_server_new(&g.servers, "svc", &na, 1);
}

static struct gw_cfg_health hcfg(void)
{
    return (struct gw_cfg_health){
        .enabled = true,
        .path = "/hc",
        .interval_ms = 20,
        .timeout_ms = 150,
        .expect_min = 200,
        .expect_max = 299,
        .rise = 2,
        .fall = 2,
    };
}

/* A snapshot with one service named "svc" holding servers srv[0..n). */
static struct gw_snapshot *mk_snap(struct gw_server **srv, size_t n, struct gw_cfg_health h)
{
    struct gw_snapshot *s = calloc(1, sizeof *s);
    struct gw_service *svc = calloc(1, sizeof *svc);
    svc->name = "svc";
    svc->servers = srv;
    svc->nservers = n;
    svc->health = h;
    s->services = calloc(1, sizeof *s->services);
    s->services[0] = svc;
    s->nservices = 1;
    atomic_init(&s->refcnt, 1); /* the test's, never dropped */
    return s;
}

static void free_snap(struct gw_snapshot *s)
{
    free(s->services[0]);
    free(s->services);
    free(s);
}

static void put_snap(struct gw_snapshot *s)
{
    pthread_mutex_lock(&g.snap_lock);
    g.snap = s;
    pthread_mutex_unlock(&g.snap_lock);
}

static uint64_t mono_ms(void) { return ev_clock_ns() / 1000000ull; }

/* Polls until *v == want or ms pass; returns the last value. */
static int wait_int(atomic_int *v, int want, int ms)
{
    uint64_t end = mono_ms() + (uint64_t)ms;
    int cur;
    while ((cur = atomic_load(v)) != want && mono_ms() < end)
        usleep(5000);
    return cur;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

TestSuite(hcheck, .init = setup, .timeout = 30);

Test(hcheck, rises_on_200_with_the_expected_request)
{
    tsrv_start(200);
    struct gw_server *srv = mk_server(ts.port);
    atomic_store(&srv->health, GW_DOWN);
    struct gw_server *list[] = {srv};
    struct gw_snapshot *s = mk_snap(list, 1, hcfg());
    put_snap(s);

    char *err = NULL;
    cr_assert_eq(gw_hcheck_start(&g, &err), 0);
    cr_assert_eq(wait_int(&srv->health, GW_UP, 3000), GW_UP);
    cr_assert_gt(atomic_load(&srv->up_since_ms), 0);
    cr_assert_geq(atomic_load(&ts.accepted), 2, "rise 2 needs two probes");

    char want[256];
    snprintf(want, sizeof want,
             "GET /hc HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: floodgate-health\r\n"
             "Connection: close\r\n\r\n",
             ts.port);
    pthread_mutex_lock(&ts.lock);
    cr_assert_str_eq(ts.last, want);
    pthread_mutex_unlock(&ts.lock);

    gw_hcheck_stop(&g);
    tsrv_stop();
    put_snap(NULL);
    free_snap(s);
    gw_server_unref(srv);
}

Test(hcheck, falls_on_connection_refused)
{
    struct gw_server *srv = mk_server(closed_port());
    struct gw_server *list[] = {srv};
    struct gw_snapshot *s = mk_snap(list, 1, hcfg());
    put_snap(s);

    char *err = NULL;
    cr_assert_eq(gw_hcheck_start(&g, &err), 0);
    cr_assert_eq(wait_int(&srv->health, GW_DOWN, 3000), GW_DOWN);
    gw_hcheck_stop(&g);
    put_snap(NULL);
    free_snap(s);
    gw_server_unref(srv);
}

static void falls_with_mode(int mode, struct gw_cfg_health h)
{
    tsrv_start(mode);
    struct gw_server *srv = mk_server(ts.port);
    struct gw_server *list[] = {srv};
    struct gw_snapshot *s = mk_snap(list, 1, h);
    put_snap(s);

    char *err = NULL;
    cr_assert_eq(gw_hcheck_start(&g, &err), 0);
    cr_assert_eq(wait_int(&srv->health, GW_DOWN, 5000), GW_DOWN, "mode %d", mode);
    gw_hcheck_stop(&g);
    tsrv_stop();
    put_snap(NULL);
    free_snap(s);
    gw_server_unref(srv);
}

Test(hcheck, falls_on_status_outside_expect)
{
    falls_with_mode(503, hcfg());
}

Test(hcheck, falls_on_204_when_200_is_expected)
{
    struct gw_cfg_health h = hcfg();
    h.expect_min = h.expect_max = 200;
    falls_with_mode(204, h);
}

Test(hcheck, falls_on_garbage)
{
    falls_with_mode(MODE_GARBAGE, hcfg());
}

Test(hcheck, falls_on_timeout)
{
    struct gw_cfg_health h = hcfg();
    h.timeout_ms = 50;
    falls_with_mode(MODE_SILENT, h);
}

Test(hcheck, interim_response_then_200_is_healthy)
{
    tsrv_start(MODE_INTERIM);
    struct gw_server *srv = mk_server(ts.port);
    atomic_store(&srv->health, GW_DOWN);
    struct gw_server *list[] = {srv};
    struct gw_snapshot *s = mk_snap(list, 1, hcfg());
    put_snap(s);

    char *err = NULL;
    cr_assert_eq(gw_hcheck_start(&g, &err), 0);
    cr_assert_eq(wait_int(&srv->health, GW_UP, 3000), GW_UP);
    gw_hcheck_stop(&g);
    tsrv_stop();
    put_snap(NULL);
    free_snap(s);
    gw_server_unref(srv);
}

Test(hcheck, drops_servers_that_left_and_restores_when_checks_stop)
{
    struct gw_server *dead = mk_server(closed_port());
    struct gw_server *gone = mk_server(closed_port());
    struct gw_server *both[] = {dead, gone};
    struct gw_snapshot *s1 = mk_snap(both, 2, hcfg());
    put_snap(s1);

    char *err = NULL;
    cr_assert_eq(gw_hcheck_start(&g, &err), 0);
    cr_assert_eq(wait_int(&dead->health, GW_DOWN, 3000), GW_DOWN);
    cr_assert_eq(wait_int(&gone->health, GW_DOWN, 3000), GW_DOWN);
    cr_assert_eq(atomic_load(&gone->refcnt), 2, "the checker holds a reference");

    /* "gone" leaves; the checker lets go of it and no longer touches it. */
    struct gw_server *one[] = {dead};
    struct gw_snapshot *s2 = mk_snap(one, 1, hcfg());
    put_snap(s2);
    cr_assert_eq(wait_int(&gone->refcnt, 1, 2000), 1);

    /* Checks turned off for "dead": nothing would ever bring it back, so
     * the checker does, and releases it. */
    struct gw_cfg_health off = hcfg();
    off.enabled = false;
    struct gw_snapshot *s3 = mk_snap(one, 1, off);
    put_snap(s3);
    cr_assert_eq(wait_int(&dead->health, GW_UP, 2000), GW_UP);
    cr_assert_eq(wait_int(&dead->refcnt, 1, 2000), 1);
    cr_assert_eq(atomic_load(&gone->health), GW_DOWN);

    gw_hcheck_stop(&g);
    put_snap(NULL);
    free_snap(s1);
    free_snap(s2);
    free_snap(s3);
    gw_server_unref(dead);
    gw_server_unref(gone);
}

Test(hcheck, stop_closes_every_socket)
{
    tsrv_start(MODE_SILENT);
    int fds_before = count_fds();
    struct gw_server *srv[8];
    for (size_t i = 0; i < ARRAY_SIZE(srv); i++)
        srv[i] = mk_server(ts.port);
    /* Same address, distinct objects: each is its own record. */
    struct gw_cfg_health h = hcfg();
    h.timeout_ms = 10000;
    struct gw_snapshot *s = mk_snap(srv, ARRAY_SIZE(srv), h);
    put_snap(s);

    char *err = NULL;
    cr_assert_eq(gw_hcheck_start(&g, &err), 0);
    cr_assert_eq(wait_int(&ts.open, (int)ARRAY_SIZE(srv), 3000), (int)ARRAY_SIZE(srv),
                 "one probe in flight per server");
    usleep(100000);
    cr_assert_eq(atomic_load(&ts.accepted), (int)ARRAY_SIZE(srv),
                 "no second probe while one is in flight");
    gw_hcheck_stop(&g);
    cr_assert_eq(wait_int(&ts.open, 0, 3000), 0, "the server saw every probe socket close");
    tsrv_stop();
    /* The test server's sockets are closed too: only the checker's
     * would remain. */
    cr_assert_eq(count_fds(), fds_before - 1, "listener closed, nothing else left");
    put_snap(NULL);
    free_snap(s);
    for (size_t i = 0; i < ARRAY_SIZE(srv); i++) {
        cr_assert_eq(atomic_load(&srv[i]->refcnt), 1);
        gw_server_unref(srv[i]);
    }
}

Test(hcheck, stop_without_start_is_harmless)
{
    gw_hcheck_stop(&g);
}
