/* flood's settings: command-line flags and an optional YAML file, into
 * struct fl_config. The file is read first (--config is found by a first
 * pass over the flags; config_file.c reads it), then every flag overrides
 * it, then fl_config_finish() checks the whole and derives what the run
 * needs: the target address, the rendered templates, the profiles and how
 * many connections each group gets. */
#include "flood/flood.h"

#include "core/cli.h"
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char fl_usage[] =
    "usage: floodgate flood [options] URL [URL...]\n"
    "\n"
    "Sends HTTP/1.1 load at URL and reports throughput, status codes, errors and\n"
    "latency percentiles. Every run stops by itself (-d, at most 1h).\n"
    "\n"
    "load:\n"
    "  -c, --connections N      connections, users and attackers together (default 10)\n"
    "  -t, --threads N          threads, each with its own event loop (default 2, at most N)\n"
    "  -d, --duration DUR       run time: 10s, 1m30s, 500ms; a bare number is seconds\n"
    "                           (default 10s, or the profile's length; at most 1h)\n"
    "  -R, --rate R             open loop: R requests/s from the users, due at fixed\n"
    "                           intended times; latency counts from the intended time, so\n"
    "                           a server that falls behind shows as queueing (wrk2).\n"
    "                           Without --rate or --profile: closed loop, each connection\n"
    "                           sends its next request when the last one ends (wrk).\n"
    "      --profile SPEC       open-loop rate over time, levels Nx (times --rate) or N/s:\n"
    "                             constant[:LEVEL]\n"
    "                             step:1x10s,2x10s,4x10s\n"
    "                             spike:1x20s,10x30s,1x20s\n"
    "                             ramp:0x-10x30s,10x30s   (FROM-TO DUR stages are linear)\n"
    "      --timeout DUR        a request with no complete response by then is an\n"
    "                           error and its connection is closed (default 5s)\n"
    "      --conn-per-request   a new connection for every request (Connection: close)\n"
    "\n"
    "requests:\n"
    "  URL                      http://host[:port]/path; several URLs (same host and\n"
    "                           port) are templates of equal weight\n"
    "  -X, --method M           method of the URL templates (default GET)\n"
    "      --body TEXT          body of the URL templates\n"
    "  -H, --header 'N: V'      add a header to every request (repeatable)\n"
    "      --mix SPEC           weighted templates on the URL's host:\n"
    "                           WEIGHT:METHOD:PATH[:PRIORITY],... e.g.\n"
    "                           80:GET:/products,15:POST:/cart,5:POST:/checkout\n"
    "      --priority-header N  send each template's priority in header N\n"
    "      --config FILE        YAML file: url, templates with headers and bodies,\n"
    "                           profile, sources, attacker... (see docs/flood.md);\n"
    "                           flags override it\n"
    "\n"
    "clients:\n"
    "      --sources SPEC       users' source addresses, round robin per connect:\n"
    "                           127.0.0.1-127.0.50.255, 127.1.0.0/16, lists with ','\n"
    "      --attacker-share F   fraction of the connections that are attackers (0..0.9)\n"
    "      --attacker-sources S attackers' addresses (default 127.6.6.1-127.6.6.4)\n"
    "      --attacker-rate R    attackers' total open-loop rate (default: closed loop,\n"
    "                           as fast as their connections go)\n"
    "\n"
    "output:\n"
    "      --json[=FILE]        results as JSON on stdout (or FILE) instead of the summary\n"
    "      --html FILE          a self-contained HTML report with SVG charts\n"
    "  -q, --quiet              no summary and no progress line (with --json: stdout\n"
    "                           carries only the JSON)\n"
    "  -h, --help               print this help\n"
    "\n"
    "While it runs, a progress line on a terminal shows the time left, the current\n"
    "rate and the errors. SIGINT or SIGTERM stops the run early; the report still\n"
    "covers what was done.\n";

enum {
    OPT_PROFILE = 256,
    OPT_TIMEOUT,
    OPT_CPR,
    OPT_BODY,
    OPT_MIX,
    OPT_PRIO,
    OPT_CONFIG,
    OPT_SOURCES,
    OPT_ATK_SHARE,
    OPT_ATK_SOURCES,
    OPT_ATK_RATE,
    OPT_JSON,
    OPT_HTML,
};

static const struct option opts[] = {
    {"connections", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"duration", required_argument, NULL, 'd'},
    {"rate", required_argument, NULL, 'R'},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"conn-per-request", no_argument, NULL, OPT_CPR},
    {"method", required_argument, NULL, 'X'},
    {"body", required_argument, NULL, OPT_BODY},
    {"header", required_argument, NULL, 'H'},
    {"mix", required_argument, NULL, OPT_MIX},
    {"priority-header", required_argument, NULL, OPT_PRIO},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"attacker-share", required_argument, NULL, OPT_ATK_SHARE},
    {"attacker-sources", required_argument, NULL, OPT_ATK_SOURCES},
    {"attacker-rate", required_argument, NULL, OPT_ATK_RATE},
    {"json", optional_argument, NULL, OPT_JSON},
    {"html", required_argument, NULL, OPT_HTML},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
static const char shortopts[] = "c:t:d:R:X:H:qh";

void fl__set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? xstrdup(v) : NULL;
}

void fl__push_str(char ***arr, size_t *n, const char *v)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = xstrdup(v);
}

void fl__free_strs(char ***arr, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*arr)[i]);
    free(*arr);
    *arr = NULL;
    *n = 0;
}

static int parse_int_arg(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A duration with a unit, or a bare number of seconds (as wrk takes -d). */
static int parse_dur_arg(const char *s, uint64_t *ms)
{
    if (*s && s[strspn(s, "0123456789")] == '\0') {
        long v;
        if (parse_int_arg(s, 0, 365L * 86400, &v) != 0)
            return -1;
        *ms = (uint64_t)v * 1000;
        return 0;
    }
    return cfg_parse_duration(s, ms);
}

static int bad(const char *flag, const char *val, const char *why)
{
    return cli_bad("flood", flag, val, why);
}

/* ---- flags ---- */

/* First pass over the flags: only --config, whose file is loaded now so
 * that every other flag overrides it. Returns -1 to go on, or an exit
 * status. */
static int load_config_flag(struct fl_config *cfg, int argc, char **argv)
{
    int opt;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        if (opt == OPT_CONFIG)
            fl__set_str(&cfg->config_file, optarg);
    }
    opterr = 1;
    if (cfg->config_file) {
        char *err = NULL;
        if (fl_config_load(cfg, cfg->config_file, &err) != 0) {
            fprintf(stderr, "floodgate flood: %s\n", err);
            free(err);
            return 2;
        }
    }
    return -1;
}

/* The flags that take a number or a duration. Returns -1 to go on, or an
 * exit status. */
static int number_flag(struct fl_config *cfg, int opt, const char *arg)
{
    long v;
    double d;
    uint64_t ms;
    switch (opt) {
    case 'c':
        if (parse_int_arg(arg, 1, FL_MAX_CONNS, &v) != 0)
            return bad("--connections", arg, "expected 1..100000");
        cfg->conns = (int)v;
        break;
    case 't':
        if (parse_int_arg(arg, 1, FL_MAX_THREADS, &v) != 0)
            return bad("--threads", arg, "expected 1..256");
        cfg->threads = (int)v;
        break;
    case 'd':
        if (parse_dur_arg(arg, &ms) != 0 || ms == 0)
            return bad("--duration", arg, "expected a duration like 10s, 2m or 500ms");
        if (ms > FL_MAX_DURATION_MS)
            return bad("--duration", arg, "at most 1h");
        cfg->duration_ms = ms;
        cfg->duration_set = true;
        break;
    case 'R':
        if (cli_parse_double(arg, 0, FL_MAX_RATE, &d) != 0)
            return bad("--rate", arg, "expected requests per second, 0..1e8");
        cfg->rate = d;
        break;
    case OPT_TIMEOUT:
        if (parse_dur_arg(arg, &ms) != 0 || ms == 0 || ms > FL_MAX_DURATION_MS)
            return bad("--timeout", arg, "expected a duration like 2s or 500ms");
        cfg->timeout_ms = ms;
        break;
    case OPT_ATK_SHARE:
        if (cli_parse_double(arg, 0, 0.9, &d) != 0)
            return bad("--attacker-share", arg, "expected a fraction 0..0.9");
        cfg->attacker_share = d;
        break;
    case OPT_ATK_RATE:
        if (cli_parse_double(arg, 0, FL_MAX_RATE, &d) != 0)
            return bad("--attacker-rate", arg, "expected requests per second");
        cfg->attacker_rate = d;
        break;
    }
    return -1;
}

/* The flags whose value is a list or a spec parsed now: headers, the mix
 * and source addresses. Returns -1 to go on, or an exit status. */
static int spec_flag(struct fl_config *cfg, int opt, const char *arg)
{
    char *err = NULL;
    int rc = 0;
    switch (opt) {
    case 'H':
        if (!strchr(arg, ':'))
            return bad("--header", arg, "expected 'Name: value'");
        fl__push_str(&cfg->headers, &cfg->nheaders, arg);
        break;
    case OPT_MIX:
        fl_mix_free(&cfg->mix);
        rc = fl_mix_parse(&cfg->mix, arg, &err);
        break;
    case OPT_SOURCES:
    case OPT_ATK_SOURCES: {
        struct fl_sources *s = opt == OPT_SOURCES ? &cfg->sources : &cfg->attacker_sources;
        fl_sources_free(s);
        rc = fl_sources_parse(s, arg, &err);
        break;
    }
    }
    if (rc != 0) {
        fprintf(stderr, "floodgate flood: %s\n", err);
        free(err);
        return 2;
    }
    return -1;
}

/* Applies one flag of the second pass. Returns -1 to go on, or an exit
 * status. */
static int apply_flag(struct fl_config *cfg, int opt, const char *arg)
{
    switch (opt) {
    case 'c':
    case 't':
    case 'd':
    case 'R':
    case OPT_TIMEOUT:
    case OPT_ATK_SHARE:
    case OPT_ATK_RATE:
        return number_flag(cfg, opt, arg);
    case 'H':
    case OPT_MIX:
    case OPT_SOURCES:
    case OPT_ATK_SOURCES:
        return spec_flag(cfg, opt, arg);
    case OPT_PROFILE:
        fl__set_str(&cfg->profile_spec, arg);
        break;
    case OPT_CPR:
        cfg->conn_per_request = true;
        break;
    case 'X':
        fl__set_str(&cfg->method, arg);
        break;
    case OPT_BODY:
        fl__set_str(&cfg->body, arg);
        break;
    case OPT_PRIO:
        fl__set_str(&cfg->priority_header, arg);
        break;
    case OPT_CONFIG:
        break;
    case OPT_JSON:
        cfg->json = true;
        fl__set_str(&cfg->json_file, arg && *arg ? arg : NULL);
        break;
    case OPT_HTML:
        fl__set_str(&cfg->html_file, arg);
        break;
    case 'q':
        cfg->quiet = true;
        break;
    case 'h':
    default:
        return cli_usage(opt, fl_usage);
    }
    return -1;
}

int fl_config_from_args(struct fl_config *cfg, int argc, char **argv)
{
    int st = load_config_flag(cfg, argc, argv);
    if (st >= 0)
        return st;
    optind = 0;
    int opt;
    bool urls_from_file = cfg->nurls > 0;
    while ((opt = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        st = apply_flag(cfg, opt, optarg);
        if (st >= 0)
            return st;
    }
    /* URLs on the command line replace the file's. */
    if (optind < argc && urls_from_file)
        fl__free_strs(&cfg->urls, &cfg->nurls);
    for (int i = optind; i < argc; i++)
        fl__push_str(&cfg->urls, &cfg->nurls, argv[i]);
    if (!cfg->nurls) {
        fprintf(stderr, "floodgate flood: no URL (e.g. floodgate flood -c 10 -d 5s http://127.0.0.1:8080/)\n");
        fputs(fl_usage, stderr);
        return 2;
    }
    char *err = NULL;
    if (fl_config_finish(cfg, &err) != 0) {
        fprintf(stderr, "floodgate flood: %s\n", err);
        free(err);
        return 2;
    }
    cfg->progress = !cfg->quiet && isatty(STDERR_FILENO);
    return -1;
}

/* The parts of a URL, owned (url_parts_free). */
struct url_parts {
    char *addr; /* host:port for net_parse_addr, port 80 by default */
    char *host; /* the Host header value */
    char *path; /* path and query, "/" when empty */
};

static void url_parts_free(struct url_parts *u)
{
    free(u->addr);
    free(u->host);
    free(u->path);
}

/* Splits "http://host[:port][/path]" into u. */
static int split_url(const char *url, struct url_parts *u, char **err)
{
    static const char http[] = "http://";
    if (strncasecmp(url, "https://", 8) == 0) {
        *err = xasprintf("URL '%s': https is not supported; use http://", url);
        return -1;
    }
    if (strncasecmp(url, http, sizeof http - 1) != 0) {
        *err = xasprintf("URL '%s': expected http://host[:port]/path", url);
        return -1;
    }
    const char *h = url + sizeof http - 1;
    size_t hl = strcspn(h, "/?#");
    if (hl == 0) {
        *err = xasprintf("URL '%s': no host", url);
        return -1;
    }
    const char *rest = h + hl;
    if (*rest == '#')
        rest = "";
    u->host = xstrndup(h, hl);
    const char *port = NULL;
    if (u->host[0] == '[') {
        char *rb = strchr(u->host, ']');
        if (!rb || (rb[1] && rb[1] != ':')) {
            *err = xasprintf("URL '%s': bad IPv6 host", url);
            free(u->host);
            return -1;
        }
        port = rb[1] == ':' ? rb + 2 : NULL;
    } else {
        port = strchr(u->host, ':');
        if (port)
            port++;
    }
    if (port)
        u->addr = xstrdup(u->host);
    else
        u->addr = xasprintf("%s:80", u->host);
    size_t pl = strcspn(rest, "#");
    u->path = pl ? (rest[0] == '?' ? xasprintf("/%.*s", (int)pl, rest) : xstrndup(rest, pl)) : xstrdup("/");
    return 0;
}

/* One template per URL (-X and --body apply to each), every URL on the
 * first one's host and port addr0; or, with --mix or file templates, no
 * URL templates and no -X or --body. */
static int url_templates(struct fl_config *cfg, const char *addr0, char **err)
{
    if (cfg->mix.n && cfg->nurls > 1) {
        *err = xstrdup("several URLs and --mix or templates: give one URL for the host, the templates give the paths");
        return -1;
    }
    if (cfg->mix.n) {
        if (cfg->method || cfg->body) {
            *err = xstrdup("-X and --body apply to URL templates; with --mix or templates, set them per template");
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < cfg->nurls; i++) {
        struct url_parts u;
        if (split_url(cfg->urls[i], &u, err) != 0)
            return -1;
        bool same = strcmp(u.addr, addr0) == 0;
        if (!same)
            *err = xasprintf("URL '%s': every URL must have the host and port of the first (%s)", cfg->urls[i],
                             addr0);
        else {
            struct fl_template *t = fl_mix_add(&cfg->mix, cfg->method ? cfg->method : "GET", u.path, 1);
            if (cfg->body) {
                t->body = xstrdup(cfg->body);
                t->body_len = strlen(cfg->body);
                t->has_body = true;
            }
        }
        url_parts_free(&u);
        if (!same)
            return -1;
    }
    return 0;
}

/* Profiles: users open loop with a rate or a profile; the duration
 * defaults to the profile's length. */
static int set_profiles(struct fl_config *cfg, char **err)
{
    if (cfg->profile_spec) {
        if (fl_profile_parse(cfg->profile_spec, cfg->rate, &cfg->profile, err) != 0)
            return -1;
        cfg->open = true;
    } else if (cfg->rate > 0) {
        fl_profile_constant(&cfg->profile, cfg->rate);
        cfg->open = true;
    }
    if (!cfg->duration_set) {
        uint64_t len = cfg->open ? fl_profile_length_ns(&cfg->profile) / 1000000ull : 0;
        cfg->duration_ms = len ? FG_MIN(len, (uint64_t)FL_MAX_DURATION_MS) : FL_DEFAULT_DURATION_MS;
    }
    if (cfg->attacker_rate > 0)
        fl_profile_constant(&cfg->attacker_profile, cfg->attacker_rate);
    return 0;
}

/* Groups: how many of the connections are attackers, the rest users. */
static int set_groups(struct fl_config *cfg, char **err)
{
    int atk = 0;
    if (cfg->attacker_share > 0) {
        atk = (int)lround(cfg->conns * cfg->attacker_share);
        if (atk < 1)
            atk = 1;
        if (atk > cfg->conns - 1) {
            *err = xasprintf("--attacker-share %.2f of %d connections leaves no user connection; use more "
                             "connections",
                             cfg->attacker_share, cfg->conns);
            return -1;
        }
        if (!cfg->attacker_sources.n && fl_sources_parse(&cfg->attacker_sources, "127.6.6.1-127.6.6.4", err) != 0)
            return -1;
    } else if (cfg->attacker_rate > 0 || cfg->attacker_sources.n) {
        *err = xstrdup("--attacker-rate and --attacker-sources need --attacker-share");
        return -1;
    }
    cfg->group_conns[FL_USERS] = cfg->conns - atk;
    cfg->group_conns[FL_ATTACKERS] = atk;
    if (cfg->threads > cfg->conns)
        cfg->threads = cfg->conns;
    if ((cfg->sources.n || cfg->attacker_sources.n) && cfg->target.ss.ss_family != AF_INET) {
        *err = xstrdup("source addresses are IPv4: the target must be an IPv4 address");
        return -1;
    }
    return 0;
}

int fl_config_finish(struct fl_config *cfg, char **err)
{
    struct url_parts u0;
    if (split_url(cfg->urls[0], &u0, err) != 0)
        return -1;
    int rc = net_parse_addr(u0.addr, &cfg->target, err);
    if (rc == 0) {
        net_addr_str(&cfg->target, cfg->target_str, sizeof cfg->target_str);
        fl__set_str(&cfg->host, u0.host);
        if (url_templates(cfg, u0.addr, err) != 0 ||
            fl_mix_prepare(&cfg->mix, cfg->host, cfg->headers, cfg->nheaders, cfg->priority_header,
                           cfg->conn_per_request, err) != 0 ||
            set_profiles(cfg, err) != 0 || set_groups(cfg, err) != 0)
            rc = -1;
    }
    url_parts_free(&u0);
    return rc;
}

void fl_config_free(struct fl_config *cfg)
{
    fl__free_strs(&cfg->urls, &cfg->nurls);
    free(cfg->method);
    free(cfg->body);
    free(cfg->config_file);
    free(cfg->host);
    free(cfg->profile_spec);
    fl_profile_free(&cfg->profile);
    fl_profile_free(&cfg->attacker_profile);
    fl_mix_free(&cfg->mix);
    fl__free_strs(&cfg->headers, &cfg->nheaders);
    free(cfg->priority_header);
    fl_sources_free(&cfg->sources);
    fl_sources_free(&cfg->attacker_sources);
    free(cfg->json_file);
    free(cfg->html_file);
}
