/* `floodgate broker`: flags, configuration, startup, signals, shutdown.
 *
 * Startup: load the configuration (a file or the embedded default, then
 * the flags on top), open the store on the data directory, replay its
 * records into the engine (rebuilding every queue), start the store's
 * sync thread, listen, and run the loop. The log line "listening on
 * HOST:PORT" comes once the port accepts.
 *
 * Timers: one for the engine's next visibility or delay deadline
 * (re-armed before each poll), one each second for retention, FIFO
 * deduplication windows, move tasks and compaction.
 *
 * Compaction: when the oldest sealed segment's live share is under
 * compact_ratio, or the log holds more than twice the live bytes (plus
 * two segments of slack), the engine re-appends what that segment still
 * holds; once those records are durable the segment is removed. Disk use
 * thus stays proportional to live messages.
 *
 * --check and --repair check or repair the log offline (store_check) and
 * exit, without starting anything else.
 *
 * SIGTERM/SIGINT (read from a signalfd in the loop): stop accepting,
 * answer waiting long polls, let requests in progress finish (2 s at
 * most), wait for the last commits, then close the store (a final sync). */
#include "broker/http/http.h"
#include "broker/topic/topic.h"

#include "core/admin.h"
#include "core/cli.h"
#include "core/log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define HOUSEKEEP_MS 1000
#define STOP_GRACE_MS 2000

static const char usage_text[] =
    "usage: floodgate broker [options]\n"
    "\n"
    "Durable message queues with Amazon SQS semantics and topics with Amazon SNS\n"
    "semantics (fan-out to queues and HTTP endpoints, filter policies): the SQS\n"
    "API (AWS query and JSON 1.0 protocols), the SNS API (AWS query protocol) and\n"
    "a native HTTP/JSON API, all on one port.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        YAML configuration (a broker: section); default: built in\n"
    "  -l, --listen HOST:PORT   API address (default " BK_DEFAULT_LISTEN ")\n"
    "  -d, --data DIR           log directory (default " BK_DEFAULT_DATA ")\n"
    "      --fsync POLICY       always (default), batch or interval\n"
    "      --admin HOST:PORT    admin listener: /metrics, /healthz, /queues\n"
    "      --check              check the log in --data and report any damage, then exit\n"
    "      --repair             keep every record of the log that verifies, then exit\n"
    "  -h, --help               print this help\n"
    "\n"
    "endpoints on the API port:\n"
    "  POST /                   the SQS API; queue URLs are http://HOST:PORT/000000000000/NAME\n"
    "  POST / (Action=...)      the SNS API, told from SQS by its actions; topic ARNs are\n"
    "                           arn:aws:sns:us-east-1:000000000000:NAME\n"
    "  /v1/queues/...           the native queue API (see docs/broker.md)\n"
    "  /v1/topics/...           the native topic API (see docs/topics.md)\n"
    "  GET /metrics             Prometheus metrics\n"
    "  GET /healthz             health\n";

struct flags {
    const char *config, *listen, *data, *fsync, *admin;
    bool check, repair;
};

static int parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},   {"fsync", required_argument, NULL, 'f'},
        {"admin", required_argument, NULL, 'a'},  {"help", no_argument, NULL, 'h'},
        {"check", no_argument, NULL, 'K'},        {"repair", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:d:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': f->config = optarg; break;
        case 'l': f->listen = optarg; break;
        case 'd': f->data = optarg; break;
        case 'f': f->fsync = optarg; break;
        case 'a': f->admin = optarg; break;
        case 'K': f->check = true; break;
        case 'R': f->repair = true; break;
        case 'h':
        default: return cli_usage(opt, usage_text);
        }
    }
    return cli_no_operands("broker", argc, argv);
}

/* Flags override the configuration. Returns 0 or prints why not. */
static int apply_flags(struct bk_config *c, const struct flags *f)
{
    struct net_addr a;
    char *err = NULL;
    if (f->listen) {
        if (net_parse_addr(f->listen, &a, &err) != 0) {
            fprintf(stderr, "floodgate broker: bad --listen '%s': %s\n", f->listen, err);
            free(err);
            return -1;
        }
        free(c->listen);
        c->listen = xstrdup(f->listen);
    }
    if (f->admin) {
        if (net_parse_addr(f->admin, &a, &err) != 0) {
            fprintf(stderr, "floodgate broker: bad --admin '%s': %s\n", f->admin, err);
            free(err);
            return -1;
        }
        free(c->admin);
        c->admin = xstrdup(f->admin);
    }
    if (f->data) {
        free(c->data);
        c->data = xstrdup(f->data);
    }
    if (f->fsync) {
        if (!strcmp(f->fsync, "always"))
            c->fsync = STORE_FSYNC_ALWAYS;
        else if (!strcmp(f->fsync, "batch"))
            c->fsync = STORE_FSYNC_BATCH;
        else if (!strcmp(f->fsync, "interval"))
            c->fsync = STORE_FSYNC_INTERVAL;
        else {
            fprintf(stderr, "floodgate broker: bad --fsync '%s': expected always, batch or interval\n", f->fsync);
            return -1;
        }
    }
    return 0;
}

/* ---- the journal over the store ---- */

static struct store_pos j_append(void *ud, uint8_t type, const void *p, uint32_t len)
{
    return store_append(ud, type, p, len);
}
static void j_retain(void *ud, struct store_pos pos, uint32_t len) { store_retain(ud, pos, len); }
static void j_release(void *ud, struct store_pos pos, uint32_t len) { store_release(ud, pos, len); }
static ssize_t j_read(void *ud, struct store_pos pos, void *buf, size_t cap)
{
    return store_read(ud, pos, buf, cap);
}

/* ---- timers and the loop ---- */

static void on_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct bk_server *s = t->ud;
    FG_UNUSED(loop);
    s->tick_at = UINT64_MAX;
    bk_engine_tick(s->engine, ev_wall_ms());
}

static void on_compacted(void *ud, int err)
{
    struct bk_server *s = ud;
    s->compacting = false;
    if (err) {
        log_at(LOG_ERROR, "broker: compaction of segment %llu not durable: %s",
               (unsigned long long)s->compact_seg, strerror(-err));
        return;
    }
    int rc = store_drop_oldest(s->store, s->compact_seg);
    if (rc == 0)
        s->st.dropped_segments++;
    else
        log_at(LOG_WARN, "broker: cannot drop segment %llu: %s", (unsigned long long)s->compact_seg, strerror(-rc));
}

static void maybe_compact(struct bk_server *s, uint64_t now)
{
    if (s->compacting || store_error(s->store))
        return;
    uint64_t seg = store_compact_candidate(s->store, s->cfg->compact_ratio);
    if (!seg) {
        struct store_stats st;
        store_get_stats(s->store, &st);
        if (st.disk_bytes > 2 * st.live_bytes + 2 * s->cfg->segment_bytes)
            seg = store_compact_candidate(s->store, 1.01);
    }
    if (!seg)
        return;
    log_at(LOG_DEBUG, "broker: compacting segment %llu", (unsigned long long)seg);
    bk_engine_compact(s->engine, seg, now);
    s->compacting = true;
    s->compact_seg = seg;
    s->st.compactions++;
    store_commit(s->store, on_compacted, s);
}

static void on_housekeep(struct ev_loop *loop, struct ev_timer *t)
{
    struct bk_server *s = t->ud;
    uint64_t now = ev_wall_ms();
    bk_engine_housekeep(s->engine, now);
    maybe_compact(s, now);
    ev_timer_start(loop, t, HOUSEKEEP_MS);
}

static void before_poll(struct ev_loop *loop, void *ud)
{
    struct bk_server *s = ud;
    bk_before_poll(s);
    uint64_t due = bk_engine_next_due(s->engine);
    if (due != s->tick_at) {
        s->tick_at = due;
        if (due == UINT64_MAX) {
            ev_timer_stop(loop, &s->tick_timer);
        } else {
            uint64_t now = ev_wall_ms();
            ev_timer_start(loop, &s->tick_timer, due > now ? due - now : 0);
        }
    }
    if (s->stopping && !s->commits_pending && !s->batch && !s->compacting && !bk_server_nconns(s))
        ev_break(loop);
}

static void begin_stop(struct bk_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    log_at(LOG_INFO, "broker: stopping");
    bk_server_begin_stop(s);
    ev_timer_start(s->loop, &s->stop_timer, STOP_GRACE_MS);
}

static void on_stop_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct bk_server *s = t->ud;
    FG_UNUSED(loop);
    bk_server_close_all(s);
}

static void on_signal(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct bk_server *s = ud;
    FG_UNUSED(loop);
    FG_UNUSED(events);
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        begin_stop(s);
}

/* ---- startup ---- */

static struct store_opts store_opts_of(const struct bk_config *c)
{
    return (struct store_opts){
        .dir = c->data,
        .fsync = c->fsync,
        .batch_us = c->fsync_batch_us,
        .interval_ms = c->fsync_interval_ms,
        .segment_bytes = c->segment_bytes,
        .disk_free_limit = c->disk_free_limit,
        /* A SEND record: the message, its attributes as JSON (larger than
         * their counted size), ids and a header. */
        .max_record_bytes = 2 * c->max_message_bytes + (256u << 10),
    };
}

/* Said after every refusal to open or replay the log. */
#define LOG_DAMAGE_HINT                                                                   \
    "; the broker does not start on a damaged log: `floodgate broker --check` reports " \
    "the damage, `floodgate broker --repair` keeps every record that verifies"

static struct store *open_store(const struct bk_config *c, char **err)
{
    struct store_opts o = store_opts_of(c);
    char msg[512];
    struct store *st = store_open(&o, msg, sizeof msg);
    if (!st)
        *err = xasprintf("cannot open the log in %s: %s%s", c->data, msg,
                         strstr(msg, "locked") ? "" : LOG_DAMAGE_HINT);
    return st;
}

static int recover(struct bk_server *s, char **err)
{
    uint64_t t0 = ev_clock_ns(), now = ev_wall_ms();
    char msg[512];
    bk_engine_replay_begin(s->engine, now);
    int rc = store_replay(s->store, bk_engine_replay, s->engine, msg, sizeof msg);
    if (rc != 0) {
        *err = rc < 0 ? xasprintf("cannot recover the log in %s: %s" LOG_DAMAGE_HINT, s->cfg->data, msg)
                      : xasprintf("cannot recover the log in %s: a record could not be read", s->cfg->data);
        return -1;
    }
    bk_engine_replay_end(s->engine, ev_wall_ms());
    log_at(LOG_INFO, "broker: recovered %zu queues, %llu messages from %s in %.1f ms", s->engine->nqueues,
           (unsigned long long)s->engine->nmsgs, s->cfg->data, (double)(ev_clock_ns() - t0) / 1e6);
    return 0;
}

/* ---- run: the steps in order ---- */

static void server_init(struct bk_server *s, struct bk_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->sigfd = -1;
    s->tick_at = UINT64_MAX;
    pthread_mutex_init(&s->xlock, NULL);
    pthread_cond_init(&s->xcond, NULL);
    ev_timer_init(&s->tick_timer, on_tick, s);
    ev_timer_init(&s->house_timer, on_housekeep, s);
    ev_timer_init(&s->stop_timer, on_stop_timer, s);
}

/* The log opened and replayed into a new engine, its sync thread running. */
static int open_engine(struct bk_server *s, char **err)
{
    const struct bk_config *cfg = s->cfg;
    s->store = open_store(cfg, err);
    if (!s->store)
        return -1;
    struct bk_engine_opts eo = {
        .max_message_bytes = cfg->max_message_bytes,
        .body_cache_bytes = cfg->body_cache_bytes,
        .max_queues = cfg->limits.max_queues,
        .max_messages = cfg->limits.max_messages,
        .max_inflight = cfg->limits.max_inflight,
    };
    struct bk_journal j = {s->store, j_append, j_retain, j_release, j_read};
    s->engine = bk_engine_new(&eo, &j);
    if (recover(s, err) != 0)
        return -1;
    int rc = store_start(s->store, s->loop);
    if (rc != 0) {
        *err = xasprintf("cannot start the log's sync thread: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

/* SIGINT and SIGTERM arrive on a signalfd in the loop; SIGPIPE is ignored. */
static int watch_signals(struct bk_server *s, char **err)
{
    sigset_t set;
    cli_block_stop_signals(&set, NULL);
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0 || ev_io_start(s->loop, s->sigfd, EV_READ, on_signal, s) != 0) {
        *err = xasprintf("cannot watch signals: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Everything up to the loop: log, engine, topics, the API port, signals,
 * the loop's hooks and timers, the admin listener. */
static int start(struct bk_server *s, struct admin **adm, char **err)
{
    if (open_engine(s, err) != 0)
        return -1;
    s->topics = tp_server_start(s, err);
    if (!s->topics || bk_server_listen(s, err) != 0 || watch_signals(s, err) != 0)
        return -1;
    ev_set_data(s->loop, s);
    ev_set_before_poll(s->loop, before_poll, s);
    ev_set_async(s->loop, bk_admin_serve, s);
    ev_timer_start(s->loop, &s->house_timer, HOUSEKEEP_MS);
    if (s->cfg->admin && !(*adm = bk_admin_start(s, s->cfg->admin, err)))
        return -1;
    return 0;
}

/* Runs the loop until a signal stops it; the exit status. */
static int serve(struct bk_server *s)
{
    const struct bk_config *cfg = s->cfg;
    log_at(LOG_INFO, "broker listening on %s (data %s, fsync %s%s)", s->addr_str, cfg->data,
           cfg->fsync == STORE_FSYNC_ALWAYS ? "always" : cfg->fsync == STORE_FSYNC_BATCH ? "batch" : "interval",
           cfg->access_key ? ", SigV4 required" : "");
    int rc = ev_run(s->loop);
    if (rc < 0) {
        log_at(LOG_ERROR, "broker: event loop failed: %s", strerror(-rc));
        return 1;
    }
    return 0;
}

/* Undoes whatever start() got to, in the order the parts depend on each
 * other. */
static void teardown(struct bk_server *s, struct admin *adm)
{
    admin_stop(adm);
    if (s->sigfd >= 0) {
        ev_io_stop(s->loop, s->sigfd);
        close(s->sigfd);
    }
    bk_server_close_all(s);
    tp_server_stop(s->topics); /* push clients and topics, before the queues they use */
    s->topics = NULL;
    bk_engine_free(s->engine); /* releases its records in the store: first */
    s->engine = NULL;
    if (s->store) {
        store_flush(s->store);
        store_close(s->store); /* a final sync; runs the callbacks still waiting */
    }
    bk_commit_abandon(s);
    bk_server_free(s);
    ev_timer_stop(s->loop, &s->tick_timer);
    ev_timer_stop(s->loop, &s->house_timer);
    ev_timer_stop(s->loop, &s->stop_timer);
    ev_loop_free(s->loop);
    pthread_mutex_destroy(&s->xlock);
    pthread_cond_destroy(&s->xcond);
}

static int run(struct bk_config *cfg)
{
    struct bk_server s;
    struct admin *adm = NULL;
    char *err = NULL;
    int status = 1;
    server_init(&s, cfg);
    s.loop = ev_loop_new();
    if (!s.loop) {
        fprintf(stderr, "floodgate broker: cannot create an event loop\n");
        return 1;
    }
    if (start(&s, &adm, &err) == 0)
        status = serve(&s);
    if (err) {
        fprintf(stderr, "floodgate broker: %s\n", err);
        free(err);
    }
    teardown(&s, adm);
    if (status == 0)
        log_at(LOG_INFO, "broker: stopped");
    return status;
}

int broker_main(int argc, char **argv)
{
    struct flags f = {0};
    int st = parse_flags(argc, argv, &f);
    if (st >= 0)
        return st;
    char *err = NULL;
    struct bk_config *cfg = bk_config_load(f.config, &err);
    if (!cfg) {
        fprintf(stderr, "floodgate broker: %s\n", err);
        free(err);
        return 1;
    }
    if (apply_flags(cfg, &f) != 0) {
        bk_config_free(cfg);
        return 2;
    }
    log_level = cfg->log_level;
    snprintf(log_thread_name, sizeof log_thread_name, "broker");
    if (f.check || f.repair) {
        struct store_opts o = store_opts_of(cfg);
        int rc = store_check(&o, f.repair, stdout);
        bk_config_free(cfg);
        return rc == 0 ? 0 : 1;
    }
    int status = run(cfg);
    bk_config_free(cfg);
    return status;
}
