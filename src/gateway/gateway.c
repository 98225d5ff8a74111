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

/* Replaces the listen addresses of c by the one of the command line. */
static int override_listen(struct gw_config *c, const char *listen, char **err)
{
    struct net_addr a;
    if (net_parse_addr(listen, &a, err) != 0)
        return -1;
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    c->listen = xrealloc(c->listen, sizeof *c->listen);
    c->listen_addr = xrealloc(c->listen_addr, sizeof *c->listen_addr);
    c->listen[0] = xstrdup(listen);
    c->listen_addr[0] = a;
    c->nlisten = 1;
    return 0;
}

/* Replaces the admin address of c by the command line's ("off": none). */
static int override_admin(struct gw_config *c, const char *admin, char **err)
{
    free(c->admin);
    c->admin = NULL;
    if (strcmp(admin, "off") == 0)
        return 0;
    if (net_parse_addr(admin, &c->admin_addr, err) != 0)
        return -1;
    c->admin = xstrdup(admin);
    return 0;
}

/* Loads the config file at path (NULL: the embedded default) and applies
 * the command line's overrides. */
static int load_config(const char *path, const struct gw_overrides *ov, struct gw_config **out, char **err)
{
    int rc = path ? gw_config_load_file(path, out, err)
                  : gw_config_load_string(gw_default_config, strlen(gw_default_config), "<default>", out, err);
    if (rc != 0)
        return rc;
    struct gw_config *c = *out;
    if (ov->threads >= 0)
        c->threads = ov->threads;
    if ((ov->listen && override_listen(c, ov->listen, err) != 0) ||
        (ov->admin && override_admin(c, ov->admin, err) != 0)) {
        gw_config_free(c);
        return -1;
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

static bool same_str(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

/* Warns about the settings a reload cannot change. */
static void warn_restart_only(const struct gw_config *cfg, const struct gw_config *old)
{
    bool same_listen = cfg->nlisten == old->nlisten;
    for (size_t i = 0; same_listen && i < cfg->nlisten; i++)
        same_listen = net_addr_equal(&cfg->listen_addr[i], &old->listen_addr[i]);
    if (!same_listen)
        log_warn("reload: listen addresses changed; they take effect at restart");
    if (!same_str(cfg->admin, old->admin))
        log_warn("reload: admin address changed; it takes effect at restart");
    if (!same_str(cfg->state_file, old->state_file))
        log_warn("reload: state_file changed; it takes effect at restart");
}

int gw_reload(struct gw *g, char **err)
{
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_config *cfg;
    int rc = load_config(g->config_path, &g->ov, &cfg, err);
    if (rc == 0) {
        struct gw_snapshot *cur = gw_snapshot_get(g);
        warn_restart_only(cfg, cur->cfg);
        log_level = cfg->log_level;
        struct gw_snapshot *s = gw_snapshot_build(g, gw_cfgref_new(cfg), cur, err);
        gw_snapshot_unref(cur);
        if (!s) {
            rc = -1;
        } else {
            gw_snapshot_publish(g, s);
            gw_admin_set_access(g, cfg);
            log_info("configuration reloaded (generation %llu)", (unsigned long long)s->generation);
        }
    }
    pthread_mutex_unlock(&g->ctl_lock);
    return rc;
}

static int total_conns(struct gw *g)
{
    return atomic_load(&g->conns);
}

static void wake_workers(struct gw *g)
{
    for (int i = 0; g->workers && i < g->nworkers; i++)
        if (g->workers[i] && g->workers[i]->loop)
            ev_async_send(g->workers[i]->loop);
}

/* Stops accepting and waits up to timeouts.drain for open connections to
 * finish (admin and /metrics stay up meanwhile). */
static void drain(struct gw *g)
{
    struct gw_snapshot *s = gw_snapshot_get(g);
    uint64_t drain_ms = s->cfg->timeouts.drain_ms;
    gw_snapshot_unref(s);
    log_info("stopping: no new connections, draining %d open ones (up to %llu ms)", total_conns(g),
             (unsigned long long)drain_ms);
    atomic_store(&g->stopping, true);
    wake_workers(g);
    uint64_t deadline = ev_clock_ns() / 1000000 + drain_ms;
    /* Until every worker has closed its listeners, connections may still
     * come out of the accept queues: "none open" means nothing before. */
    while (atomic_load(&g->drained_workers) < g->nworkers && ev_clock_ns() / 1000000 < deadline) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    while (total_conns(g) > 0 && ev_clock_ns() / 1000000 < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (total_conns(g) > 0)
        log_warn("drain deadline passed with %d connections open: closing them", total_conns(g));
}

/* Tells workers to leave now and joins them. The admin API must be
 * stopped first: /metrics reads the workers. */
static void stop_workers(struct gw *g)
{
    if (!g->workers)
        return;
    atomic_store(&g->stopping, true);
    atomic_store(&g->force_stop, true);
    wake_workers(g);
    gw_workers_stop(g);
}

/* The process state without threads: locks, the state file, the first
 * snapshot (taking cfg), the guard. */
static int start_state(struct gw *g, struct gw_config *cfg, const char *path, const struct gw_overrides *ov,
                       char **err)
{
    pthread_mutex_init(&g->snap_lock, NULL);
    pthread_mutex_init(&g->ctl_lock, NULL);
    gw_servers_init(&g->servers);
    metrics_hist_init(&g->latency);
    g->ov = *ov;
    g->config_path = path ? xstrdup(path) : NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g->nworkers = cfg->threads > 0 ? cfg->threads : (int)(ncpu > 0 ? ncpu : 1);
    g->access_log = open_access_log(cfg->access_log);
    /* The state file is the overlay on the config: read before the first
     * snapshot, so the gateway serves with it from its first request. */
    if (cfg->state_file && gw_members_restore(&g->members, cfg->state_file, err) < 0) {
        gw_config_free(cfg);
        return -1;
    }
    pthread_mutex_lock(&g->ctl_lock);
    struct gw_snapshot *s = gw_snapshot_build(g, gw_cfgref_new(cfg), NULL, err);
    pthread_mutex_unlock(&g->ctl_lock);
    if (!s)
        return -1;
    atomic_store(&g->snap, s);
    return gw_guard_init(g, err);
}

int gw_start(struct gw *g, struct gw_config *cfg, const char *path, const struct gw_overrides *ov, char **err)
{
    int rc = start_state(g, cfg, path, ov, err);
    /* cfg belongs to the snapshot now; a reference keeps it while the
     * admin API (which may reload) starts. */
    struct gw_snapshot *s = rc == 0 ? gw_snapshot_get(g) : NULL;
    cfg = s ? s->cfg : NULL;
    if (rc == 0 && gw_workers_start(g, err) != 0)
        rc = -2;
    if (rc == 0 && cfg->admin && gw_admin_start(g, cfg, err) != 0) {
        char *why = *err;
        *err = xasprintf("admin: %s", why);
        free(why);
        rc = -2;
    }
    if (rc == 0 && gw_hcheck_start(g, err) != 0) {
        char *why = *err;
        *err = xasprintf("health checks: %s", why);
        free(why);
        rc = -2;
    }
    gw_snapshot_unref(s);
    if (rc != 0)
        gw_stop(g);
    return rc;
}

/* The statistics kept by service name for the life of the process. */
static void free_svc_stats(struct gw *g)
{
    while (g->svc_stats) {
        struct gw_svc_stats *st = g->svc_stats;
        g->svc_stats = st->next;
        gw_svc_rt_unref(st->rt);
        free(st->ctr);
        free(st->name);
        free(st);
    }
}

void gw_stop(struct gw *g)
{
    gw_hcheck_stop(g);
    gw_admin_stop(g);
    stop_workers(g);
    gw_guard_free(g);
    gw_snapshot_unref(atomic_exchange(&g->snap, NULL));
    gw_members_free(&g->members);
    gw__route_stats_free_all(g);
    gw_servers_free(&g->servers);
    free_svc_stats(g);
    if (g->access_log && g->access_log != stderr && g->access_log != stdout)
        fclose(g->access_log);
    g->access_log = NULL;
    free(g->config_path);
    g->config_path = NULL;
    pthread_mutex_destroy(&g->ctl_lock);
    pthread_mutex_destroy(&g->snap_lock);
}

/* ---- the command line ---- */

/* What the command line asks for. */
struct flags {
    const char *path;      /* -c; NULL: the embedded config */
    bool check;            /* --check */
    int log_level;         /* --log-level; -1: the config's */
    struct gw_overrides ov;
};

/* Reads argv into *f. Returns -1 to go on, or the exit status when there
 * is nothing more to do (--help, --print-default, a bad flag). */
static int parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
        {"print-default", no_argument, NULL, 'P'}, {"threads", required_argument, NULL, 't'},
        {"listen", required_argument, NULL, 'l'}, {"admin", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *f = (struct flags){.log_level = -1, .ov = {.threads = -1}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:t:l:a:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': f->path = optarg; break;
        case 'C': f->check = true; break;
        case 'P': fputs(gw_default_config, stdout); return 0;
        case 't': f->ov.threads = atoi(optarg); break;
        case 'l': f->ov.listen = optarg; break;
        case 'a': f->ov.admin = optarg; break;
        case 'L':
            if ((f->log_level = log_parse_level(optarg)) < 0) {
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
    return -1;
}

/* --check: the config (loaded) and its state file; frees cfg. The state
 * file too, as a start would refuse a corrupt one; one that does not
 * exist is left so (a restore would create it). */
static int check_config(struct gw_config *cfg)
{
    struct gw_members m = {0};
    char *err = NULL;
    bool st = cfg->state_file && access(cfg->state_file, F_OK) == 0;
    int n = st ? gw_members_restore(&m, cfg->state_file, &err) : 0;
    gw_members_free(&m);
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

/* The startup line. */
static void log_started(const struct gw *g, const struct gw_config *cfg)
{
    char listen_desc[512] = "";
    for (size_t i = 0; i < cfg->nlisten; i++)
        snprintf(listen_desc + strlen(listen_desc), sizeof listen_desc - strlen(listen_desc), "%s%s",
                 i ? ", " : "", cfg->listen[i]);
    log_info("gateway listening on %s with %d threads; admin on %s; config %s", listen_desc, g->nworkers,
             cfg->admin ? cfg->admin : "off", cfg->name);
}

/* Waits for signals until SIGTERM or SIGINT: SIGHUP reloads, and every
 * second without one does the upkeep (expired rate-limit keys and
 * registration leases). */
static void serve(struct gw *g, const sigset_t *set)
{
    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig < 0) {
            gw_guard_sweep(g);
            gw_members_expire(g);
            continue;
        }
        if (sig == SIGHUP) {
            char *err = NULL;
            if (gw_reload(g, &err) != 0) {
                log_error("reload failed, keeping the running configuration: %s", err);
                free(err);
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            return;
    }
}

int gw_main(int argc, char **argv)
{
    struct flags f;
    int rc = parse_flags(argc, argv, &f);
    if (rc >= 0)
        return rc;
    char *err = NULL;
    struct gw_config *cfg;
    if (load_config(f.path, &f.ov, &cfg, &err) != 0) {
        fprintf(stderr, "floodgate gateway: %s\n", err);
        free(err);
        return 1;
    }
    if (f.check)
        return check_config(cfg);
    log_level = f.log_level >= 0 ? f.log_level : cfg->log_level;

    /* Signals go to the main thread only: block them before any thread
     * starts, then wait for them synchronously. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct gw *g = xcalloc(1, sizeof *g);
    if ((rc = gw_start(g, cfg, f.path, &f.ov, &err)) != 0) {
        if (rc == -1)
            fprintf(stderr, "floodgate gateway: %s\n", err);
        else
            log_error("%s", err);
        free(err);
        free(g);
        return 1;
    }
    /* A reference: the admin API may reload (and free the old config)
     * from now on. */
    struct gw_snapshot *s = gw_snapshot_get(g);
    log_started(g, s->cfg);
    gw_snapshot_unref(s);
    serve(g, &set);
    drain(g);
    gw_stop(g);
    free(g);
    log_info("gateway stopped");
    return 0;
}
