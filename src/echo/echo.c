/* `floodgate echo`: flags, listeners, threads and signals.
 *
 * The main thread parses the flags, opens one SO_REUSEPORT listener per
 * worker (so a bad address, or one another process holds, fails before
 * anything starts), prints the start
 * line, starts the workers and then only waits for SIGTERM or SIGINT with
 * sigwait(): the signals are blocked in every thread, so no handler runs
 * and the workers' loops are never interrupted. On a signal it asks each
 * worker to stop (they close their listeners at once and exit when their
 * connections are done, see worker.c), joins them and returns. */
#include "echo/echo.h"

#include "core/cli.h"
#include "core/log.h"

#include <errno.h>
#include <getopt.h>
#include "core/httpc.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ECHO_DEFAULT_LISTEN "127.0.0.1:9001"
#define ECHO_MAX_THREADS 1024
#define ECHO_BACKLOG 4096

enum {
    OPT_LATENCY = 256,
    OPT_JITTER,
    OPT_ERROR_RATE,
    OPT_NAME,
    OPT_HEALTH_STATUS,
    OPT_REGISTER,
    OPT_REGISTER_TTL,
    OPT_WEIGHT,
    OPT_REGISTER_TOKEN_FILE,
    OPT_MAX_CONCURRENCY,
};

static const char usage_text[] =
    "usage: floodgate echo [options]\n"
    "\n"
    "A small HTTP/1.1 backend for tests, demos and benchmarks.\n"
    "\n"
    "options:\n"
    "  -l, --listen ADDR        listen on ADDR: host:port, [v6]:port, or PORT alone\n"
    "                           for 127.0.0.1:PORT (default " ECHO_DEFAULT_LISTEN ")\n"
    "  -t, --threads N          worker threads, each with its own listener (default 1)\n"
    "  -s, --size BYTES         response body size; k, m, g suffixes are powers of 1024\n"
    "                           (default: the text \"NAME METHOD TARGET\\n\")\n"
    "      --latency MS         wait MS milliseconds before each response\n"
    "      --jitter MS          plus a uniform extra wait of 0..MS milliseconds\n"
    "      --error-rate F       answer that fraction (0..1) of requests with 500\n"
    "      --max-concurrency N  capacity model: at most N requests per thread in their\n"
    "                           --latency (+ --jitter) service time at once; the rest\n"
    "                           wait in an unbounded FIFO, like a thread pool's queue,\n"
    "                           so an overloaded server answers later and later\n"
    "                           (capacity N / latency per thread; default 0: no limit)\n"
    "      --name NAME          X-Server header value and body prefix (default: ADDR)\n"
    "      --health-status CODE status of /health (default 200)\n"
    "      --register URL       register with a gateway service's admin URL, e.g.\n"
    "                           http://127.0.0.1:9901/services/echo (POST URL/servers)\n"
    "                           as a lease renewed every third of --register-ttl,\n"
    "                           retried while the gateway is down; at stop,\n"
    "                           deregister (DELETE) first\n"
    "      --register-ttl S     the lease in seconds (default 10): the gateway drops\n"
    "                           this server S seconds after its last renewal\n"
    "      --weight N           weight to register with (default 1)\n"
    "      --register-token-file FILE\n"
    "                           send the token in FILE as Authorization: Bearer, for\n"
    "                           a gateway with admin.token_file\n"
    "  -h, --help               print this help\n"
    "\n"
    "endpoints:\n"
    "  /health        --health-status; never delayed, never a random error; with\n"
    "                 --max-concurrency, X-Echo-Busy and X-Echo-Queued (this thread)\n"
    "  /headers       200 with the request head, exactly as received, as the body\n"
    "  /status/NNN    status NNN (200..599)\n"
    "  /sink          POST/PUT: 200 with the request body's byte count as the body\n"
    "  anything else  200 with the body above\n"
    "Request bodies (Content-Length or chunked) are read and counted, never kept;\n"
    "responses to them carry X-Received-Bytes. SIGTERM or SIGINT stops the server.\n";

/* Parses a non-negative decimal up to max. Returns 0 or -1. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses BYTES with an optional k/m/g (KiB/MiB/GiB) suffix. */
static int parse_size(const char *s, int64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: return -1;
    }
    if (*end && end[1])
        return -1;
    if (v > ((unsigned long long)INT64_MAX >> shift))
        return -1;
    *out = (int64_t)(v << shift);
    return 0;
}

/* Fills the shared body block, 64-byte lines of letters ending in '\n',
 * and repeats it ECHO_BLOCK_REPEAT times, so that a large body goes out
 * in long pieces (one per write) with the same bytes. */
static char *make_block(void)
{
    char *b = xmalloc((size_t)ECHO_BLOCK_SIZE * ECHO_BLOCK_REPEAT);
    for (size_t i = 0; i < ECHO_BLOCK_SIZE; i++)
        b[i] = i % 64 == 63 ? '\n' : (char)('a' + (i / 64 + i % 64) % 26);
    for (size_t k = 1; k < ECHO_BLOCK_REPEAT; k++)
        memcpy(b + k * ECHO_BLOCK_SIZE, b, ECHO_BLOCK_SIZE);
    return b;
}

static int bad_flag(const char *flag, const char *val, const char *why)
{
    return cli_bad("echo", flag, val, why);
}

/* Reads the bearer token in path into cfg->register_auth as a header
 * line. Returns 0, or an exit status after printing why. */
static int read_register_token(struct echo_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return bad_flag("--register-token-file", path, strerror(errno));
    char tok[4096 + 2];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    tok[n] = '\0';
    size_t a = strspn(tok, " \t\r\n"), b = n;
    while (b > a && strchr(" \t\r\n", tok[b - 1]))
        b--;
    if (b == a || n == sizeof tok - 1)
        return bad_flag("--register-token-file", path, "expected one token of 1..4096 characters");
    for (size_t i = a; i < b; i++)
        if (tok[i] <= ' ' || tok[i] > '~')
            return bad_flag("--register-token-file", path, "the token must be visible ASCII, no spaces");
    free(cfg->register_auth);
    cfg->register_auth = xasprintf("Authorization: Bearer %.*s\r\n", (int)(b - a), tok + a);
    return 0;
}

static const struct option opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"threads", required_argument, NULL, 't'},
    {"size", required_argument, NULL, 's'},
    {"latency", required_argument, NULL, OPT_LATENCY},
    {"jitter", required_argument, NULL, OPT_JITTER},
    {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
    {"name", required_argument, NULL, OPT_NAME},
    {"health-status", required_argument, NULL, OPT_HEALTH_STATUS},
    {"register", required_argument, NULL, OPT_REGISTER},
    {"register-ttl", required_argument, NULL, OPT_REGISTER_TTL},
    {"weight", required_argument, NULL, OPT_WEIGHT},
    {"register-token-file", required_argument, NULL, OPT_REGISTER_TOKEN_FILE},
    {"max-concurrency", required_argument, NULL, OPT_MAX_CONCURRENCY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The flags of the service model: --latency, --jitter, --error-rate and
 * --max-concurrency. Returns -1 to go on, or an exit status. */
static int model_flag(struct echo_config *cfg, int opt, const char *arg)
{
    uint64_t v;
    switch (opt) {
    case OPT_LATENCY:
    case OPT_JITTER:
        if (parse_uint(arg, 3600 * 1000, &v) != 0)
            return bad_flag(opt == OPT_LATENCY ? "--latency" : "--jitter", arg, "expected milliseconds, 0..3600000");
        if (opt == OPT_LATENCY)
            cfg->latency_ms = (uint32_t)v;
        else
            cfg->jitter_ms = (uint32_t)v;
        break;
    case OPT_ERROR_RATE:
        if (cli_parse_double(arg, 0, 1, &cfg->error_rate) != 0)
            return bad_flag("--error-rate", arg, "expected a fraction 0..1");
        break;
    case OPT_MAX_CONCURRENCY:
        if (parse_uint(arg, 1000000, &v) != 0)
            return bad_flag("--max-concurrency", arg, "expected 0..1000000");
        cfg->max_concurrency = (uint32_t)v;
        break;
    }
    return -1;
}

/* The flags of registration with a gateway: --register, --register-ttl,
 * --weight and --register-token-file. Returns -1 to go on, or an exit
 * status. */
static int register_flag(struct echo_config *cfg, int opt, char *arg)
{
    uint64_t v;
    switch (opt) {
    case OPT_REGISTER:
        cfg->register_url = arg;
        break;
    case OPT_REGISTER_TTL:
        if (parse_uint(arg, 3600, &v) != 0 || v == 0)
            return bad_flag("--register-ttl", arg, "expected seconds, 1..3600");
        cfg->register_ttl_ms = v * 1000;
        break;
    case OPT_WEIGHT:
        if (parse_uint(arg, 1000, &v) != 0 || v == 0)
            return bad_flag("--weight", arg, "expected 1..1000");
        cfg->weight = (int)v;
        break;
    case OPT_REGISTER_TOKEN_FILE: {
        int rc = read_register_token(cfg, arg);
        if (rc)
            return rc;
        break;
    }
    }
    return -1;
}

/* Applies one flag. Returns -1 to go on, or an exit status. */
static int apply_flag(struct echo_config *cfg, int opt, char *arg, const char **listen)
{
    uint64_t v;
    switch (opt) {
    case 'l':
        *listen = arg;
        break;
    case 't':
        if (parse_uint(arg, ECHO_MAX_THREADS, &v) != 0 || v == 0)
            return bad_flag("--threads", arg, "expected 1..1024");
        cfg->threads = (int)v;
        break;
    case 's':
        if (parse_size(arg, &cfg->body_size) != 0)
            return bad_flag("--size", arg, "expected bytes, optionally with k, m or g");
        break;
    case OPT_NAME:
        if (!*arg || strpbrk(arg, "\r\n"))
            return bad_flag("--name", arg, "expected a non-empty single line");
        cfg->name = arg;
        break;
    case OPT_HEALTH_STATUS:
        if (parse_uint(arg, 599, &v) != 0 || v < 200)
            return bad_flag("--health-status", arg, "expected a status 200..599");
        cfg->health_status = (int)v;
        break;
    case OPT_LATENCY:
    case OPT_JITTER:
    case OPT_ERROR_RATE:
    case OPT_MAX_CONCURRENCY:
        return model_flag(cfg, opt, arg);
    case OPT_REGISTER:
    case OPT_REGISTER_TTL:
    case OPT_WEIGHT:
    case OPT_REGISTER_TOKEN_FILE:
        return register_flag(cfg, opt, arg);
    case 'h':
    default:
        return cli_usage(opt, usage_text);
    }
    return -1;
}

/* Parses argv into cfg. Returns -1 to go on, or an exit status. */
static int parse_flags(int argc, char **argv, struct echo_config *cfg, const char **listen)
{
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "l:t:s:h", opts, NULL)) != -1) {
        int st = apply_flag(cfg, opt, optarg, listen);
        if (st >= 0)
            return st;
    }
    return cli_no_operands("echo", argc, argv);
}

/* Resolves the listen address ("PORT" alone means loopback) and opens one
 * listener per thread into lfds. Returns 0, or -1 after printing why. */
static int open_listeners(struct echo_config *cfg, const char *listen, int *lfds)
{
    char *err = NULL;
    char *spec = listen[strspn(listen, "0123456789")] == '\0' ? xasprintf("127.0.0.1:%s", listen)
                                                               : xstrdup(listen);
    int rc = net_parse_addr(spec, &cfg->addr, &err);
    free(spec);
    if (rc != 0) {
        fprintf(stderr, "floodgate echo: %s\n", err);
        free(err);
        return -1;
    }
    /* Only this process's threads share the address: one held by anyone
     * else (another echo on the same port included) fails here. */
    int fd = net_listen_shared(&cfg->addr, cfg->threads, ECHO_BACKLOG, lfds);
    if (fd < 0) {
        char a[64];
        net_addr_str(&cfg->addr, a, sizeof a);
        fprintf(stderr, "floodgate echo: cannot listen on %s: %s\n", a, strerror(-fd));
        return -1;
    }
    net_addr_str(&cfg->addr, cfg->addr_str, sizeof cfg->addr_str);
    return 0;
}

/* Creates one worker per listener. Returns 0, or -1 after printing why
 * and closing the listeners no worker took. */
static int create_workers(struct echo_config *cfg, struct echo_worker **ws, int *lfds)
{
    for (int i = 0; i < cfg->threads; i++) {
        ws[i] = echo__worker_new(cfg, i, lfds[i]);
        if (!ws[i]) {
            fprintf(stderr, "floodgate echo: cannot create an event loop\n");
            for (int j = i + 1; j < cfg->threads; j++)
                close(lfds[j]);
            return -1;
        }
    }
    return 0;
}

/* Runs the workers until SIGTERM or SIGINT (blocked in set): starts their
 * threads and the registration, waits, then deregisters and stops and
 * joins them. Returns the exit status. */
static int serve(struct echo_config *cfg, struct echo_worker **ws, const sigset_t *set)
{
    int status = 0, nstarted = 0;
    fprintf(stderr, "echo listening on %s (%d threads)\n", cfg->addr_str, cfg->threads);
    for (; nstarted < cfg->threads; nstarted++) {
        int rc = pthread_create(&ws[nstarted]->thread, NULL, echo__worker_run, ws[nstarted]);
        if (rc != 0) {
            fprintf(stderr, "floodgate echo: cannot start a thread: %s\n", strerror(rc));
            status = 1;
            break;
        }
    }
    bool registering = false;
    if (status == 0 && cfg->register_url) {
        registering = echo__register_start(cfg) == 0;
        status = registering ? 0 : 1;
    }
    if (status == 0) {
        int sig;
        while (sigwait(set, &sig) != 0)
            ;
    }
    /* Deregisters before the listeners close (see register.c). */
    if (registering && echo__register_stop() != 0)
        status = 1;
    for (int i = 0; i < nstarted; i++)
        echo__worker_stop(ws[i]);
    for (int i = 0; i < nstarted; i++) {
        pthread_join(ws[i]->thread, NULL);
        if (ws[i]->failed)
            status = 1;
    }
    return status;
}

int echo_main(int argc, char **argv)
{
    struct echo_config cfg = {
        .threads = 1,
        .body_size = -1,
        .health_status = 200,
        .weight = 1,
        .register_ttl_ms = 10000,
    };
    const char *listen = ECHO_DEFAULT_LISTEN;
    int st = parse_flags(argc, argv, &cfg, &listen);
    if (st >= 0) {
        free(cfg.register_auth);
        return st;
    }

    int *lfds = xcalloc((size_t)cfg.threads, sizeof *lfds);
    if (open_listeners(&cfg, listen, lfds) != 0) {
        free(lfds);
        free(cfg.register_auth);
        return 1;
    }
    if (!cfg.name)
        cfg.name = cfg.addr_str;
    cfg.name_len = strlen(cfg.name);
    cfg.block = make_block();

    /* Blocked before any thread starts, so every thread inherits it. */
    sigset_t set;
    cli_block_stop_signals(&set, NULL);

    struct echo_worker **ws = xcalloc((size_t)cfg.threads, sizeof *ws);
    int status = create_workers(&cfg, ws, lfds) == 0 ? serve(&cfg, ws, &set) : 1;
    for (int i = 0; i < cfg.threads; i++)
        echo__worker_free(ws[i]);
    free(ws);
    free(lfds);
    free(cfg.block);
    free(cfg.register_auth);
    return status;
}
