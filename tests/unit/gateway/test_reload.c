/* Tests for the gateway process (gateway.c gw_start/gw_reload/gw_stop)
 * and the lifetime of the services' resilience objects (registry.c):
 * a reload that keeps a service's settings keeps its object, one that
 * changes them builds a new one, and the old one is freed when the last
 * snapshot that used it goes (the workers adopt the new one), not at exit.
 * Run under ASan with leak checking, this also proves gw_stop frees all,
 * and that a start which fails half way undoes itself.
 *
 * The process is real: one worker on a free loopback port, no admin API,
 * the health checker running; the config is a file rewritten between
 * reloads. */
#include <criterion/criterion.h>

#include "core/log.h"
#include "gateway/gw.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char dir[64], path[128];

static void setup(void)
{
    log_level = LOG_ERROR;
    snprintf(dir, sizeof dir, "/tmp/fg-reload-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/gw.yaml", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(gw_reload, .init = setup, .fini = teardown, .timeout = 60);

/* Two services with a breaker each; `failures` sets service a's. */
static void write_config_at(const char *listen, int failures)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "listen: \"%s\"\n"
            "threads: 1\n"
            "admin: off\n"
            "log_level: error\n"
            "services:\n"
            "  - name: a\n"
            "    servers: [127.0.0.1:9]\n"
            "    breaker: { consecutive_failures: %d }\n"
            "  - name: b\n"
            "    servers: [127.0.0.1:9]\n"
            "    breaker: { consecutive_failures: 5 }\n"
            "routes:\n"
            "  - { prefix: /a, service: a }\n"
            "  - { prefix: /b, service: b }\n",
            listen, failures);
    fclose(f);
}

static void write_config(int failures)
{
    write_config_at("127.0.0.1:0", failures);
}

static struct gw *start(void)
{
    struct gw_config *cfg = NULL;
    char *err = NULL;
    cr_assert_eq(gw_config_load_file(path, &cfg, &err), 0, "%s", err ? err : "");
    struct gw *g = calloc(1, sizeof *g);
    struct gw_overrides ov = {.threads = -1, .admin = "off"};
    cr_assert_eq(gw_start(g, cfg, path, &ov, &err), 0, "%s", err ? err : "");
    return g;
}

static void reload(struct gw *g)
{
    char *err = NULL;
    cr_assert_eq(gw_reload(g, &err), 0, "%s", err ? err : "");
}

/* Waits (generously) until the process holds want resilience objects:
 * the old snapshot goes when the worker adopts the new one. */
static int settle(struct gw *g, int want)
{
    for (int i = 0; i < 2000 && atomic_load(&g->rts_live) != want; i++) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&g->rts_live);
}

static struct gw_svc_rt *rt_of(struct gw *g, const char *svc)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    struct gw_svc_rt *rt = gw_snapshot_service(s, svc)->rt;
    gw_snapshot_unref(s);
    return rt;
}

Test(gw_reload, unchanged_settings_keep_the_object)
{
    write_config(3);
    struct gw *g = start();
    cr_assert_eq(settle(g, 2), 2);
    struct gw_svc_rt *a = rt_of(g, "a"), *b = rt_of(g, "b");
    for (int i = 0; i < 5; i++)
        reload(g);
    cr_assert_eq(rt_of(g, "a"), a);
    cr_assert_eq(rt_of(g, "b"), b);
    cr_assert_eq(g->nrts, 2, "no object built for unchanged settings");
    cr_assert_eq(settle(g, 2), 2);
    gw_stop(g);
    cr_assert_eq(atomic_load(&g->rts_live), 0);
    free(g);
}

Test(gw_reload, changed_settings_free_the_old_object)
{
    write_config(3);
    struct gw *g = start();
    struct gw_svc_rt *b = rt_of(g, "b");
    for (int i = 0; i < 20; i++) {
        write_config(4 + i % 2);
        reload(g);
        /* a's object was replaced; b's kept; the old ones of a gone. */
        cr_assert_eq(settle(g, 2), 2, "reload %d: resilience objects alive", i);
    }
    cr_assert_eq(rt_of(g, "b"), b);
    cr_assert_eq(g->nrts, 2 + 20);
    gw_stop(g);
    cr_assert_eq(atomic_load(&g->rts_live), 0);
    free(g);
}

Test(gw_reload, a_held_snapshot_keeps_its_object)
{
    write_config(3);
    struct gw *g = start();
    struct gw_snapshot *old = gw_snapshot_get(g);
    struct gw_svc_rt *a = gw_snapshot_service(old, "a")->rt;
    write_config(7);
    reload(g);
    cr_assert_neq(rt_of(g, "a"), a);
    /* a request routed with old still settles into its object */
    cr_assert_eq(settle(g, 3), 3);
    cr_assert_eq(a->breaker ? 1 : 0, 1);
    cr_assert_str_eq(a->name, "a");
    gw_snapshot_unref(old);
    cr_assert_eq(settle(g, 2), 2);
    gw_stop(g);
    free(g);
}

/* A start that fails half way (its listener taken) undoes what it did:
 * no thread left, everything freed (ASan's leak check at exit). */
Test(gw_reload, a_failed_start_undoes_itself)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sin.sin_port));
    write_config_at(addr, 3);

    struct gw_config *cfg = NULL;
    char *err = NULL;
    cr_assert_eq(gw_config_load_file(path, &cfg, &err), 0, "%s", err ? err : "");
    struct gw *g = calloc(1, sizeof *g);
    struct gw_overrides ov = {.threads = -1};
    cr_assert_eq(gw_start(g, cfg, path, &ov, &err), -2);
    cr_assert(strstr(err, "cannot listen"), "%s", err);
    free(err);
    cr_assert_null(g->workers);
    cr_assert_null(atomic_load(&g->snap));
    cr_assert_eq(atomic_load(&g->rts_live), 0);
    free(g);
    close(fd);
}
