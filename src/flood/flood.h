/* floodgate flood: private definitions shared by the load generator's files.
 *
 * flood sends HTTP/1.1 traffic at a service from N connections spread over
 * T threads, each thread with its own event loop, and reports what
 * happened. Two ways to drive it:
 *   closed loop  each connection sends its next request as soon as the
 *                previous response ends (wrk); latency runs from the write;
 *   open loop    requests are due at intended times that follow a rate
 *                profile, whatever the server does (wrk2); a request that
 *                finds no free connection waits, and latency runs from its
 *                intended time, so a stalled server shows as queueing
 *                instead of being hidden by the generator slowing down
 *                (coordinated omission).
 * Connections belong to one of two groups: users, spread over a range of
 * source addresses, and an optional attacker share sending from a few
 * addresses, each group with its own statistics.
 *
 * The files split the work as follows:
 *   hist.c     the HDR histogram;
 *   profile.c  rate profiles (constant, ramp, step, spike) and the
 *              open-loop schedule of intended send times;
 *   mix.c      request templates, weights, rendering, weighted choice;
 *   sources.c  source address ranges (A-B, CIDR, lists);
 *   config.c   flags into struct fl_config, then checks and completes it;
 *   config_file.c  the YAML file (--config) into struct fl_config;
 *   conn.c     one client connection's state machine;
 *   worker.c   one thread: its loop, its connections, its schedule and
 *              its statistics (per group, per template, per second);
 *   run.c      threads, start and stop, progress line, merging results;
 *   report.c   terminal summary; report_json.c; report_html.c;
 *   flood.c    fl_main. */
#ifndef FL_FLOOD_H
#define FL_FLOOD_H

#include "core/buf.h"
#include "core/common.h"
#include "core/ev.h"
#include "core/http1.h"
#include "core/net.h"
#include "flood/hist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define FL_DEFAULT_DURATION_MS 10000u
#define FL_MAX_DURATION_MS (3600u * 1000u)  /* hard cap on any run */
#define FL_DEFAULT_TIMEOUT_MS 5000u
#define FL_MAX_CONNS 100000
#define FL_MAX_THREADS 256
#define FL_MAX_TEMPLATES 64
#define FL_MAX_RATE 1e8                     /* requests per second */
#define FL_MAX_HEADERS 128                  /* response header limit */
#define FL_MAX_HEAD (64 * 1024)             /* response head limit */
#define FL_MAX_TRAILER (16 * 1024)
#define FL_READ_SIZE (64 * 1024)
#define FL_CONNECT_WAIT_MS 2000u            /* longest wait for connections before the start */
#define FL_NSTATUS 600                      /* status codes 0..599 are counted one by one */

/* ---- profiles and the open-loop schedule (profile.c) ---- */

enum fl_profile_kind { FL_PROF_CONSTANT = 0, FL_PROF_RAMP, FL_PROF_STEP, FL_PROF_SPIKE };

/* One stage: the rate goes linearly from `from` to `to` (requests per
 * second) over dur_ns; dur_ns 0 means "until the end of the run". */
struct fl_stage {
    double from, to;
    uint64_t dur_ns;
};

struct fl_profile {
    enum fl_profile_kind kind;
    struct fl_stage *stages; /* owned; after the last one its `to` rate holds */
    size_t n;
};

/* Parses a profile spec (see docs/flood.md):
 *   constant[:LEVEL]            LEVEL for the whole run (default 1x)
 *   step:LEVEL DUR,LEVEL DUR... a level per stage (spike is the same form)
 *   ramp:LEVEL-LEVEL DUR,...    linear from one level to the next
 * LEVEL is Nx (times base_rate) or N/s (requests per second); a stage may
 * be LEVEL DUR (flat) or LEVEL-LEVEL DUR (linear) in any kind, with no
 * space between the level and the duration ("10x30s"). base_rate <= 0
 * makes multipliers an error. Returns 0, or -1 with *err set. */
int fl_profile_parse(const char *spec, double base_rate, struct fl_profile *p, char **err);
/* A constant profile of rate req/s. */
void fl_profile_constant(struct fl_profile *p, double rate);
void fl_profile_free(struct fl_profile *p);
/* Total of the stages' durations (0 when a stage lasts to the end). */
uint64_t fl_profile_length_ns(const struct fl_profile *p);
/* Rate at t ns from the start. */
double fl_profile_rate_at(const struct fl_profile *p, uint64_t t_ns);
/* Short human form, e.g. "spike 100/s 20s, 1000/s 30s, 100/s 20s". */
void fl_profile_describe(const struct fl_profile *p, char *out, size_t outlen);
const char *fl_profile_kind_name(enum fl_profile_kind k);

/* One schedule of intended send times: share of the profile's rate,
 * request k due when share * (requests the profile has asked for since
 * the start) reaches k + phase. Requests are taken in order: a request
 * that is due but finds no free connection stays at the head, its
 * intended time unchanged, so its wait counts in its latency. */
struct fl_sched {
    const struct fl_profile *p;
    double share;     /* fraction of the profile's rate, 0..1 */
    double next;      /* schedule count at which the next request is due */
    size_t stage;     /* stage holding the next request */
    double stage_t0;  /* stage start, seconds */
    double stage_n0;  /* schedule count at the stage start */
    uint64_t next_ns; /* intended time of the next request; UINT64_MAX: none before end */
    uint64_t end_ns;  /* no request is due at or after this */
};

void fl_sched_init(struct fl_sched *s, const struct fl_profile *p, double share, double phase,
                   uint64_t end_ns);
/* Intended time (ns from the start) of the next request. */
static inline uint64_t fl_sched_peek(const struct fl_sched *s) { return s->next_ns; }
/* Moves on to the request after it. */
void fl_sched_advance(struct fl_sched *s);

/* ---- request templates (mix.c) ---- */

struct fl_template {
    char *name;         /* for reports: given, or "METHOD PATH" */
    char *method;
    char *path;         /* request-target, starting with '/' */
    char **headers;     /* "Name: value" lines, owned */
    size_t nheaders;
    char *body;         /* may hold any bytes */
    size_t body_len;
    bool has_body;      /* send Content-Length even when body_len is 0 */
    char *priority;     /* value of the priority header, or NULL */
    double weight;      /* > 0 */
    enum http_method m; /* HTTP_M_HEAD: responses carry no body */
    struct buf req;     /* the rendered request, written as is */
};

struct fl_mix {
    struct fl_template *t; /* owned */
    size_t n;
    uint32_t cum[FL_MAX_TEMPLATES]; /* cumulative weights scaled to 2^32 - 1 */
};

/* Adds a template (copies of the strings) and returns it for more fields. */
struct fl_template *fl_mix_add(struct fl_mix *mix, const char *method, const char *path, double weight);
void fl_template_add_header(struct fl_template *t, const char *line);
void fl_mix_free(struct fl_mix *mix);
/* Parses "80:GET:/products,15:POST:/cart,5:POST:/checkout" (WEIGHT:METHOD:PATH,
 * an optional fourth field :PRIORITY) and adds the templates. Returns 0 or
 * -1 with *err set. */
int fl_mix_parse(struct fl_mix *mix, const char *spec, char **err);
/* Renders every template's request for host (the Host header value), with
 * the extra headers (all templates), priority header name (may be NULL)
 * and Connection: close when close is set; computes the weights. Returns
 * 0 or -1 with *err set (a header line without a colon, CR/LF in a
 * field). */
int fl_mix_prepare(struct fl_mix *mix, const char *host, char *const *extra, size_t nextra,
                   const char *priority_header, bool close, char **err);
/* Template for a uniform 32-bit random number. */
static inline size_t fl_mix_pick(const struct fl_mix *mix, uint32_t r)
{
    size_t i = 0;
    while (i + 1 < mix->n && r > mix->cum[i])
        i++;
    return i;
}

/* ---- source addresses (sources.c) ---- */

struct fl_range {
    uint32_t first; /* IPv4, host order */
    uint32_t count;
};

struct fl_sources {
    struct fl_range *r; /* owned */
    size_t n;
    uint64_t total;     /* addresses over all ranges */
};

/* Parses a comma-separated list of A.B.C.D, A.B.C.D-E.F.G.H and
 * A.B.C.D/LEN (the network and broadcast addresses of a prefix shorter
 * than /31 are left out). Appends to s. Returns 0 or -1 with *err set. */
int fl_sources_parse(struct fl_sources *s, const char *spec, char **err);
void fl_sources_free(struct fl_sources *s);
/* The i-th address (i modulo total), host order. */
uint32_t fl_sources_at(const struct fl_sources *s, uint64_t i);

/* ---- configuration (config.c) ---- */

enum fl_group { FL_USERS = 0, FL_ATTACKERS = 1, FL_NGROUPS = 2 };

struct fl_config {
    char **urls;               /* URLs from the command line, or the file's url */
    size_t nurls;
    char *method;              /* -X: method of the URL templates (default GET) */
    char *body;                /* --body: body of the URL templates */
    char *config_file;         /* --config */
    struct net_addr target;
    char *host;                /* Host header value */
    char target_str[64];
    int conns;                 /* total connections, users and attackers */
    int threads;
    uint64_t duration_ms;      /* hard stop, <= FL_MAX_DURATION_MS */
    bool duration_set;
    uint64_t timeout_ms;
    double rate;               /* users' base rate; 0 with no profile: closed loop */
    char *profile_spec;
    struct fl_profile profile; /* users' profile when open loop */
    bool open;                 /* users run open loop */
    struct fl_mix mix;
    char **headers;            /* -H lines, for every template */
    size_t nheaders;
    char *priority_header;
    bool conn_per_request;
    struct fl_sources sources;          /* users' source addresses; empty: the kernel picks */
    double attacker_share;              /* fraction of the connections */
    struct fl_sources attacker_sources;
    double attacker_rate;               /* 0: closed loop */
    struct fl_profile attacker_profile; /* constant attacker_rate */
    int group_conns[FL_NGROUPS];        /* connections per group */
    bool json;
    char *json_file;           /* --json=FILE, or NULL for stdout */
    char *html_file;
    bool quiet;
    bool progress;             /* live line on stderr (a terminal, not --quiet) */
};

/* Parses argv (after "flood") into cfg, reading --config FILE first so
 * that flags override it. Returns -1 to go on, or an exit status (0 after
 * --help). Messages go to stderr. */
int fl_config_from_args(struct fl_config *cfg, int argc, char **argv);
/* Applies a YAML document's settings to cfg. Returns 0 or -1 with *err. */
int fl_config_load(struct fl_config *cfg, const char *path, char **err);
/* Checks and completes cfg once every setting is in: URL, templates,
 * profiles, group sizes. Returns 0 or -1 with *err set. */
int fl_config_finish(struct fl_config *cfg, char **err);
void fl_config_free(struct fl_config *cfg);
/* The settings' strings (config.c, config_file.c): fl__set_str frees *dst
 * and stores a copy of v (NULL: none); fl__push_str appends a copy of v;
 * fl__free_strs frees the whole array and empties it. */
void fl__set_str(char **dst, const char *v);
void fl__push_str(char ***arr, size_t *n, const char *v);
void fl__free_strs(char ***arr, size_t *n);
extern const char fl_usage[];

/* ---- statistics ---- */

enum fl_err {
    FL_E_CONNECT = 0, /* connect or bind failed */
    FL_E_WRITE,       /* writing the request failed */
    FL_E_READ,        /* reading the response failed (reset) */
    FL_E_CLOSED,      /* the server closed before the response ended */
    FL_E_TIMEOUT,     /* no complete response within --timeout */
    FL_E_PARSE,       /* malformed response */
    FL_E_MAX,
};
extern const char *const fl_err_names[FL_E_MAX];

/* Status classes of the time series. */
enum fl_cls { FL_C_1XX = 0, FL_C_2XX, FL_C_3XX, FL_C_4XX, FL_C_429, FL_C_5XX, FL_C_503, FL_C_ERR, FL_C_MAX };
extern const char *const fl_cls_names[FL_C_MAX];

static inline bool fl_rejected(int status) { return status == 429 || status == 503; }
static inline enum fl_cls fl_status_cls(int status)
{
    if (status == 429)
        return FL_C_429;
    if (status == 503)
        return FL_C_503;
    if (status < 200)
        return FL_C_1XX;
    if (status < 300)
        return FL_C_2XX;
    if (status < 400)
        return FL_C_3XX;
    if (status < 500)
        return FL_C_4XX;
    return FL_C_5XX;
}

/* One group's counters and histograms. */
struct fl_gstats {
    uint64_t sent, done, admitted, rejected, errors;
    uint64_t bytes_in, bytes_out, connects;
    uint64_t unfinished;     /* in flight when the run ended */
    uint64_t unsent;         /* open loop: due before the end, never sent */
    uint64_t oldest_unsent_us; /* how long the oldest of those had waited */
    uint64_t status[FL_NSTATUS];
    uint64_t err[FL_E_MAX];
    struct fl_hist lat;      /* admitted responses: from intended (open) or write (closed) */
    struct fl_hist lat_rej;  /* rejected responses (429, 503) */
    struct fl_hist svc;      /* every response, from the actual write: service time */
};

/* One template's counters in one group. */
struct fl_tstats {
    uint64_t done, admitted, rejected, errors;
    uint64_t cls[FL_C_MAX];
    struct fl_hist lat;      /* admitted responses, coarse */
};

/* One second of the run in one thread (by completion time). */
struct fl_sec {
    uint64_t sent[FL_NGROUPS], done[FL_NGROUPS];
    uint64_t cls[FL_C_MAX];  /* users */
    uint64_t atk_cls[FL_C_MAX];
    uint64_t bytes_in;
    struct fl_hist_sparse lat; /* users' admitted latency, coarse */
};

void fl_gstats_init(struct fl_gstats *g);
void fl_gstats_free(struct fl_gstats *g);
void fl_gstats_add(struct fl_gstats *dst, const struct fl_gstats *src);
void fl_tstats_init(struct fl_tstats *t);
void fl_tstats_free(struct fl_tstats *t);
void fl_tstats_add(struct fl_tstats *dst, const struct fl_tstats *src);

/* ---- connections and workers (conn.c, worker.c) ---- */

enum fl_cstate {
    FL_CS_CLOSED = 0, /* no socket */
    FL_CS_CONNECTING, /* connect in progress, a request waiting for it */
    FL_CS_IDLE,       /* connected, no request */
    FL_CS_SENDING,    /* writing a request */
    FL_CS_HEAD,       /* waiting for (the rest of) a response head */
    FL_CS_BODY,       /* reading a response body */
};

struct fl_worker;

struct fl_conn {
    struct fl_worker *w;
    int fd;                 /* -1 when closed */
    uint8_t state;          /* enum fl_cstate */
    uint8_t group;          /* enum fl_group */
    uint8_t body_mode;      /* enum http_body of the current response */
    bool busy;              /* a request is assigned (sending or awaiting its response) */
    bool close_after;       /* close once the current response ends */
    uint16_t tpl;           /* template of the current request */
    int status;             /* status of the current response */
    uint32_t id;            /* index among all connections of the run */
    uint64_t nconnects;     /* connects so far: picks the next source address */
    uint64_t start_ns;      /* latency start: intended time (open) or write (closed) */
    uint64_t write_ns;      /* when the request's first byte was written */
    uint64_t deadline_ns;   /* timeout of the current request */
    size_t wpos;            /* request bytes written */
    uint64_t body_left;     /* Content-Length bytes still to read */
    uint64_t resp_bytes;    /* bytes of the current response */
    struct http_chunked chunked;
    struct buf in;          /* unparsed response bytes between reads */
    struct fl_conn *next_free; /* open loop: the group's free list; or the retry list */
    uint64_t retry_ms;      /* loop time (ms) of its deferred retry */
};

/* A group's run-time state in one worker. */
struct fl_wgroup {
    bool open;              /* open loop */
    struct fl_sched sched;
    struct fl_conn *free;   /* open loop: connections with no request, oldest first */
    struct fl_conn *free_tail;
    size_t nconns;
};

struct fl_run;

struct fl_worker {
    struct fl_run *run;
    const struct fl_config *cfg;
    int id;
    pthread_t thread;
    struct ev_loop *loop;
    struct fl_conn *conns;  /* array of nconns, never moved */
    size_t nconns;
    struct fl_wgroup g[FL_NGROUPS];
    int tfd;                /* timerfd for the open-loop schedule, -1 when closed loop */
    uint64_t tfd_armed;     /* absolute ns it is armed for, 0 when disarmed */
    struct ev_timer sweep;  /* timeouts, periodically */
    struct ev_timer end;    /* the end of the run */
    struct ev_timer retry_t[2];          /* deferred reuse after an error: now, later */
    struct fl_conn *retry_head[2], *retry_tail[2];
    uint64_t stop_ns;       /* when this worker stopped sending */
    uint64_t t0;            /* start of the run, ns (CLOCK_MONOTONIC) */
    uint64_t end_ns;        /* t0 + duration */
    bool running;           /* between the start and the end */
    bool warned_connect;    /* the first connect error was logged */
    bool failed;
    uint64_t rng;
    /* Statistics, owned by this thread until it is joined. */
    struct fl_gstats gs[FL_NGROUPS];
    struct fl_tstats *ts;   /* [group * ntemplates + template] */
    struct fl_sec *secs;    /* closed seconds */
    size_t nsecs, capsecs;
    struct fl_sec cur;      /* the second being filled (index nsecs) */
    struct fl_hist cur_lat; /* its latency histogram */
    /* Read by the main thread while running (relaxed). */
    _Atomic uint64_t live_done, live_errors, live_sent, live_rejected;
    _Atomic int connected;  /* connections up before the start, or failed */
    char rbuf[FL_READ_SIZE];
};

/* worker.c */
/* A worker with gcount[g] connections of group g, whose indexes within
 * the group start at gstart[g]. Called on the main thread. NULL when no
 * event loop can be created. */
struct fl_worker *fl__worker_new(struct fl_run *run, int id, const int *gcount, const int *gstart);
void *fl__worker_main(void *arg);
/* From the main thread: start at t0 (ns), or stop now. */
void fl__worker_go(struct fl_worker *w);
void fl__worker_stop(struct fl_worker *w);
void fl__worker_free(struct fl_worker *w);
uint64_t fl__rand(struct fl_worker *w);
/* Called by a connection when it has no request: closed loop sends the
 * next one, open loop takes the next due request or frees the conn. */
void fl__worker_conn_free(struct fl_worker *w, struct fl_conn *c);
/* Accounting, from conn.c. now is ev_clock_ns(). */
void fl__worker_sent(struct fl_worker *w, struct fl_conn *c, uint64_t now);
void fl__worker_done(struct fl_worker *w, struct fl_conn *c, uint64_t now);
void fl__worker_error(struct fl_worker *w, struct fl_conn *c, enum fl_err e, uint64_t now);

/* conn.c */
/* Starts the request tpl on c with latency counted from start_ns: writes
 * it, connecting first when c has no socket. */
void fl__conn_request(struct fl_conn *c, uint16_t tpl, uint64_t start_ns);
/* Opens c's socket ahead of any request (before the start). */
void fl__conn_preconnect(struct fl_conn *c);
/* Closes the socket, dropping any request (not counted). */
void fl__conn_close(struct fl_conn *c);
/* Source address of c's n-th connect (from 0) into src; false when the
 * group has no sources (the kernel picks). */
bool fl__conn_source(const struct fl_conn *c, uint64_t n, struct net_addr *src);

/* ---- a run and its merged results (run.c) ---- */

/* One second of the merged time series. */
struct fl_point {
    uint64_t sent[FL_NGROUPS], done[FL_NGROUPS];
    uint64_t cls[FL_C_MAX];
    uint64_t atk_cls[FL_C_MAX];
    uint64_t bytes_in;
    uint64_t p50, p90, p99, p999, max; /* users' admitted latency, us; 0 when none */
    double target;  /* users' intended rate that second (open loop), else 0 */
};

struct fl_result {
    uint64_t elapsed_ns;     /* start to stop */
    bool interrupted;        /* stopped early by a signal */
    struct fl_gstats g[FL_NGROUPS];
    struct fl_tstats *t;     /* [group * ntemplates + template] */
    struct fl_point *pts;    /* per second */
    size_t npts;
    uint64_t sources_used[FL_NGROUPS]; /* distinct source addresses used (0: kernel's) */
};

struct fl_run {
    const struct fl_config *cfg;
    struct fl_worker **w;
    int nworkers;
    _Atomic uint64_t t0;     /* set when the run starts */
    _Atomic bool stop;
};

/* Runs the whole load from cfg (threads, progress line, signals) and
 * fills res. Returns 0, or -1 after printing why it could not run. */
int fl_run(const struct fl_config *cfg, struct fl_result *res);
void fl_result_free(struct fl_result *res, const struct fl_config *cfg);

/* ---- reports (report.c, report_json.c, report_html.c) ---- */

void fl_report_text(FILE *f, const struct fl_config *cfg, const struct fl_result *res);
/* Returns 0, or -1 with *err set when the file cannot be written. */
int fl_report_json(FILE *f, const struct fl_config *cfg, const struct fl_result *res);
int fl_report_html(FILE *f, const struct fl_config *cfg, const struct fl_result *res);
/* "1.23ms", "850us", "2.50s" into out. */
void fl_fmt_us(uint64_t us, char *out, size_t outlen);

int fl_main(int argc, char **argv);

#endif
