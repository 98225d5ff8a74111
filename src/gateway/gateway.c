/* `floodgate gateway`: command line, startup, signals, reload and drain.
 * The main thread owns the control plane: it loads the configuration,
 * publishes snapshots, starts workers, the health checker and the admin
 * API, then waits for signals: SIGHUP reloads (a new snapshot; no
 * connection is touched), SIGTERM/SIGINT stop accepting, let in-flight
 * requests finish within timeouts.drain, then exit. */
#include "gateway/gw.h"
#include "core/log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct gw *gw_g;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: floodgate gateway [options]\n"
            "  -c, --config FILE     YAML configuration (default: the embedded one)\n"
            "      --check           validate the configuration (and its state_file) and exit\n"
            "      --print-default   print the embedded default configuration\n"
            "  -t, --threads N       worker threads (overrides threads:)\n"
            "  -l, --listen ADDR     listen address (overrides listen:)\n"
            "  -a, --admin ADDR      admin listener (overrides admin:; 'off' disables)\n"
            "      --log-level L     error|warn|info|debug\n"
            "  -h, --help            this text\n"
            "Signals: SIGHUP reloads the configuration, SIGTERM drains and exits.\n");
}

static struct {
    int threads;
    char *listen;
    char *admin;
} overrides = {-1, NULL, NULL};

static int load_config(const char *path, struct gw_config **out, char **err)
{
    int rc = path ? gw_config_load_file(path, out, err)
                  : gw_config_load_string(gw_default_config, strlen(gw_default_config), "<default>", out, err);
    if (rc != 0)
        return rc;
    struct gw_config *c = *out;
    if (overrides.threads >= 0)
        c->threads = overrides.threads;
    if (overrides.listen) {
        struct net_addr a;
        if (net_parse_addr(overrides.listen, &a, err) != 0) {
            gw_config_free(c);
            return -1;
        }
        for (size_t i = 0; i < c->nlisten; i++)
            free(c->listen[i]);
        c->listen = xrealloc(c->listen, sizeof *c->listen);
        c->listen_addr = xrealloc(c->listen_addr, sizeof *c->listen_addr);
        c->listen[0] = xstrdup(overrides.listen);
        c->listen_addr[0] = a;
        c->nlisten = 1;
    }
    if (overrides.admin) {
        free(c->admin);
        c->admin = NULL;
        if (strcmp(overrides.admin, "off") != 0) {
            if (net_parse_addr(overrides.admin, &c->admin_addr, err) != 0) {
                gw_config_free(c);
                return -1;
            }
            c->admin = xstrdup(overrides.admin);
        }
    }
    return 0;
}

static FILE *open_access_log(const char *spec)
{
    if (!spec)
        return NULL;
    if (!strcmp(spec, "stderr"))
        return stderr;
    if (!strcmp(spec, "stdout"))
        return stdout;
    FILE *f = fopen(spec, "a");
    if (!f)
        log_error("cannot open access log %s: %s", spec, strerror(errno));
    return f;
}

int gw_reload(char **err)
{
    pthread_mutex_lock(&gw_g->ctl_lock);
    struct gw_config *cfg;
    int rc = load_config(gw_g->config_path, &cfg, err);
    if (rc == 0) {
        struct gw_snapshot *cur = gw_snapshot_get();
        struct gw_config *old = cur->cfg;
        if (cfg->nlisten != old->nlisten ||
            memcmp(cfg->listen_addr, old->listen_addr, cfg->nlisten * sizeof *cfg->listen_addr) != 0)
            log_warn("reload: listen addresses changed; they take effect at restart");
        if ((cfg->admin == NULL) != (old->admin == NULL) ||
            (cfg->admin && strcmp(cfg->admin, old->admin) != 0))
            log_warn("reload: admin address changed; it takes effect at restart");
        if ((cfg->state_file == NULL) != (old->state_file == NULL) ||
            (cfg->state_file && strcmp(cfg->state_file, old->state_file) != 0))
            log_warn("reload: state_file changed; it takes effect at restart");
        log_level = cfg->log_level;
        struct gw_snapshot *s = gw_snapshot_build(gw_cfgref_new(cfg), cur, err);
        gw_snapshot_unref(cur);
        if (!s) {
            rc = -1;
        } else {
            gw_snapshot_publish(s);
            gw_admin_set_access(cfg);
            log_info("configuration reloaded (generation %llu)", (unsigned long long)s->generation);
        }
    }
    pthread_mutex_unlock(&gw_g->ctl_lock);
    return rc;
}

static int total_conns(void)
{
    return atomic_load(&gw_g->conns);
}

static void wake_workers(void)
{
    for (int i = 0; i < gw_g->nworkers; i++)
        ev_async_send(gw_g->workers[i]->loop);
}

/* Stops accepting and waits up to timeouts.drain for open connections to
 * finish (admin and /metrics stay up meanwhile). */
static void drain(void)
{
    struct gw_snapshot *s = gw_snapshot_get();
    uint64_t drain_ms = s->cfg->timeouts.drain_ms;
    gw_snapshot_unref(s);
    log_info("stopping: no new connections, draining %d open ones (up to %llu ms)", total_conns(),
             (unsigned long long)drain_ms);
    atomic_store(&gw_g->stopping, true);
    wake_workers();
    uint64_t deadline = ev_clock_ns() / 1000000 + drain_ms;
    /* Until every worker has closed its listeners, connections may still
     * come out of the accept queues: "none open" means nothing before. */
    while (atomic_load(&gw_g->drained_workers) < gw_g->nworkers && ev_clock_ns() / 1000000 < deadline) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    while (total_conns() > 0 && ev_clock_ns() / 1000000 < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (total_conns() > 0)
        log_warn("drain deadline passed with %d connections open: closing them", total_conns());
}

/* Tells workers to leave now and joins them. The admin API must be
 * stopped first: /metrics reads the workers. */
static void stop_workers(void)
{
    atomic_store(&gw_g->stopping, true);
    atomic_store(&gw_g->force_stop, true);
    wake_workers();
    gw_workers_stop(gw_g);
}

int gw_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
        {"print-default", no_argument, NULL, 'P'}, {"threads", required_argument, NULL, 't'},
        {"listen", required_argument, NULL, 'l'}, {"admin", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool check = false;
    int forced_level = -1;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:t:l:a:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'C': check = true; break;
        case 'P': fputs(gw_default_config, stdout); return 0;
        case 't': overrides.threads = atoi(optarg); break;
        case 'l': overrides.listen = optarg; break;
        case 'a': overrides.admin = optarg; break;
        case 'L':
            if ((forced_level = log_parse_level(optarg)) < 0) {
                fprintf(stderr, "floodgate gateway: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    char *err = NULL;
    struct gw_config *cfg;
    if (load_config(path, &cfg, &err) != 0) {
        fprintf(stderr, "floodgate gateway: %s\n", err);
        free(err);
        return 1;
    }
    if (check) {
        /* The state file too: a start would refuse a corrupt one. One
         * that does not exist is left so (a restore would create it). */
        bool st = cfg->state_file && access(cfg->state_file, F_OK) == 0;
        int n = st ? gw_members_restore(cfg->state_file, &err) : 0;
        gw_members_free();
        if (n < 0) {
            fprintf(stderr, "floodgate gateway: %s\n", err);
            free(err);
            gw_config_free(cfg);
            return 1;
        }
        printf("%s: configuration OK (%zu services, %zu routes", cfg->name, cfg->nservices, cfg->nroutes);
        if (cfg->state_file)
            printf("; state file %s: %d changes", cfg->state_file, n);
        printf(")\n");
        gw_config_free(cfg);
        return 0;
    }
    log_level = forced_level >= 0 ? forced_level : cfg->log_level;
    /* The state file is the overlay on the config: read before the first
     * snapshot, so the gateway serves with it from its first request. */
    if (cfg->state_file && gw_members_restore(cfg->state_file, &err) < 0) {
        fprintf(stderr, "floodgate gateway: %s\n", err);
        free(err);
        gw_config_free(cfg);
        return 1;
    }

    static struct gw g;
    memset(&g, 0, sizeof g);
    gw_g = &g;
    pthread_mutex_init(&g.snap_lock, NULL);
    pthread_mutex_init(&g.ctl_lock, NULL);
    metrics_hist_init(&g.latency);
    g.config_path = path ? xstrdup(path) : NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g.nworkers = cfg->threads > 0 ? cfg->threads : (int)(ncpu > 0 ? ncpu : 1);
    g.access_log = open_access_log(cfg->access_log);

    pthread_mutex_lock(&g.ctl_lock);
    struct gw_snapshot *s = gw_snapshot_build(gw_cfgref_new(cfg), NULL, &err);
    pthread_mutex_unlock(&g.ctl_lock);
    if (!s) {
        fprintf(stderr, "floodgate gateway: %s\n", err);
        free(err);
        return 1;
    }
    g.snap = s;
    /* Copies for the startup line: a reload may free cfg once workers run. */
    char listen_desc[512] = "", admin_desc[128], cfg_name[256];
    for (size_t i = 0; i < cfg->nlisten; i++)
        snprintf(listen_desc + strlen(listen_desc), sizeof listen_desc - strlen(listen_desc), "%s%s",
                 i ? ", " : "", cfg->listen[i]);
    snprintf(admin_desc, sizeof admin_desc, "%s", cfg->admin ? cfg->admin : "off");
    snprintf(cfg_name, sizeof cfg_name, "%s", cfg->name);

    /* Signals go to the main thread only: block them before any thread
     * starts, then wait for them synchronously. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    gw_guard_init(&g, &err);
    int rc = 0;
    if (gw_workers_start(&g, &err) != 0) {
        log_error("%s", err);
        free(err);
        atomic_store(&g.force_stop, true);
        atomic_store(&g.stopping, true);
        for (int i = 0; i < g.nworkers; i++)
            if (g.workers[i] && g.workers[i]->loop && g.workers[i]->thread)
                ev_async_send(g.workers[i]->loop);
        gw_workers_stop(&g);
        rc = 1;
        goto out;
    }
    if (cfg->admin && gw_admin_start(cfg, &err) != 0) {
        log_error("admin: %s", err);
        free(err);
        stop_workers();
        rc = 1;
        goto out;
    }
    if (gw_hcheck_start(&err) != 0) {
        log_error("health checks: %s", err);
        free(err);
        gw_admin_stop();
        stop_workers();
        rc = 1;
        goto out;
    }
    log_info("gateway listening on %s with %d threads; admin on %s; config %s", listen_desc, g.nworkers,
             admin_desc, cfg_name);

    for (;;) {
        /* Wakes every second for upkeep (expired rate-limit keys). */
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0) {
            gw_guard_sweep();
            gw_members_expire();
            continue;
        }
        if (sig == SIGHUP) {
            if (gw_reload(&err) != 0) {
                log_error("reload failed, keeping the running configuration: %s", err);
                free(err);
                err = NULL;
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    drain();
    gw_hcheck_stop();
    gw_admin_stop();
    stop_workers();
out:
    gw_snapshot_unref(g.snap);
    g.snap = NULL;
    gw_members_free();
    gw_guard_free(&g);
    gw_svc_rt_free_all(&g);
    gw_route_stats_free_all();
    gw_server_breakers_free_retired();
    while (g.svc_stats) {
        struct gw_svc_stats *st = g.svc_stats;
        g.svc_stats = st->next;
        free(st->ctr);
        free(st->name);
        free(st);
    }
    if (g.access_log && g.access_log != stderr && g.access_log != stdout)
        fclose(g.access_log);
    free(g.config_path);
    log_info("gateway stopped");
    return rc;
}
