/* The gateway's private types: the immutable configuration snapshot
 * (routes, services, servers), worker threads, client connections and
 * pooled upstream connections.
 *
 * Threading: a snapshot is built by the control thread (startup, SIGHUP,
 * admin API), published with gw_snapshot_publish() and never modified
 * afterwards. Each worker picks up the newest snapshot at the top of its
 * loop iteration; a request holds a reference to the snapshot it was
 * routed with until it finishes, so the snapshot's services and balancers
 * stay valid for retries. Connections belong to one worker for life.
 *
 * Included by every file at the gateway root (directly or through
 * proxy/conn.h and members_int.h), by admin/ and guard/, and by the unit
 * tests of the admin API, the health checker and reloads; never by the
 * rooms below it (config, balance, resilience, limit). Names: gw_ for
 * what the rooms call each other by; gw__ for the building blocks that
 * two or three files of one step share (snapshot building: snapshot.c,
 * members.c, guard/guard.c, registry.c, admin/routes.c). */
#ifndef GW_GW_H
#define GW_GW_H

#include "core/buf.h"
#include "core/cidr.h"
#include "core/ev.h"
#include "core/http1.h"
#include "core/metrics.h"
#include "core/net.h"
#include "gateway/balance/balance.h"
#include "gateway/config/config.h"
#include "gateway/balance/backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>

#define GW_MAX_HEADERS_CAP 256 /* hard cap on the header array per request */
#define GW_IO_CHUNK 16384      /* read size */
#define GW_BUF_HIGH 65536      /* stop reading a side when its buffer holds this much */
#define GW_MAX_TRIES 3         /* servers tried for one request (connect failures) */
#define GW_BUFCACHE 256        /* free buffer blocks kept per worker */

/* A service's resilience state (breaker, retry budget, admission,
 * adaptive limit). Outlives snapshots: kept while its configuration is
 * unchanged; a changed one gets a new object. Refcounted like snapshots:
 * the service stats (its current one) and every snapshot service built
 * with it hold a reference, and requests hold their snapshot, so the old
 * one stays valid while requests in flight release into it and is freed
 * with the last snapshot that uses it (on whichever thread drops it). */
struct gw_svc_rt {
    atomic_int refcnt;
    atomic_int *live;            /* the process's count of live ones (gw->rts_live) */
    int id;                      /* index of per-worker admission queues */
    struct gw_cfg_resil cfg;     /* numeric settings it was built from (strings NULL) */
    struct gw_breaker *breaker;  /* NULL: no breaker */
    struct gw_rb *rb;
    struct gw_limit *limiter;    /* NULL: static limit only */
    struct gw_adm adm;
    bool adm_on;
    char *name;
};

/* Counters of a service that outlive snapshots (kept by name for the
 * life of the process, so /metrics does not reset on reload). Worker i
 * counts into ctr[i] alone (counters.h); the shared fields take the
 * counts of any thread without an entry. gw_svc_counts() adds both. */
struct gw_svc_stats {
    char *name;
    struct gw_svc_ctr *ctr;              /* one per worker, nctr of them */
    int nctr;
    struct metrics_hist latency;         /* request latency through this service */
    atomic_uint_fast64_t req_total;
    atomic_uint_fast64_t resp_class[6];  /* [0] no response, [1..5] 1xx..5xx */
    struct gw_svc_rt *rt;                /* current resilience state (a reference; ctl_lock) */
    struct gw_svc_stats *next;
};

struct gw_service {
    char *name;
    char *balance;              /* algorithm name */
    struct gw_server **servers; /* one reference each */
    size_t nservers;
    struct gw_lb *lb;
    enum gw_hash_key hash_key;  /* what hash balancing hashes (the config's hash_by) */
    char *hash_name;           /* header or cookie name */
    size_t hash_name_len;
    int passive_max_failures;  /* 0 = off */
    uint64_t passive_eject_ms;
    struct gw_cfg_health health; /* active checks (path borrowed from cfg or owned) */
    char *health_path;          /* owned copy of health.path */
    bool dynamic;               /* created through the admin API */
    struct gw_svc_stats *stats;
    struct gw_svc_rt *rt;       /* stats->rt when the snapshot was built (a reference) */
    const struct gw_cfg_resil *resil; /* fallback, priority header (cfg); NULL: defaults */
};

/* Counters of a route that outlive snapshots (kept by route id for the
 * life of the process, like struct gw_svc_stats). */
struct gw_route_stats {
    char *id;                           /* gw_route_id() text */
    atomic_uint_fast64_t refused[2];    /* 403s: [0] not on the allow list, [1] on the deny list */
    struct gw_route_stats *next;
};

struct gw_route {
    struct cidr_set allow;       /* route allow list (empty: everyone), built from allow_txt */
    struct cidr_set deny;        /* route deny list, built from deny_txt */
    char **allow_txt, **deny_txt; /* the lists as text: config + admin changes */
    size_t nallow_txt, ndeny_txt;
    char *name;                  /* owned; NULL: addressed by prefix (and host) */
    struct gw_route_stats *stats;
    const struct gw_cfg_ratelimit **rl; /* rules applied, in order (borrowed from cfg) */
    size_t nrl;
    int prio;                    /* enum gw_prio of its requests */
    char *host;                  /* owned; NULL: any; "*.example.com": suffix match */
    size_t host_len;
    char *prefix;                /* owned */
    size_t prefix_len;
    bool strip;
    struct gw_service *svc;
};

/* A loaded config shared by the snapshots built from it (a membership
 * change rebuilds the snapshot with the same config). */
struct gw_cfgref {
    atomic_int refcnt;
    struct gw_config *cfg;
};

struct gw_snapshot {
    atomic_int refcnt;
    uint64_t generation;
    struct gw_cfgref *cfgref;
    struct gw_config *cfg;  /* cfgref->cfg */
    struct gw_service **services;
    size_t nservices;
    struct gw_route *routes; /* sorted: longer prefix first, host rules first */
    size_t nroutes;
    struct cidr_set allow;   /* guard.allow + admin additions (empty: everyone) */
    struct cidr_set deny;    /* guard.deny + admin additions */
    char **allow_txt, **deny_txt; /* the same as text, for the admin API */
    size_t nallow_txt, ndeny_txt;
};

/* Admin-made changes (members.c), kept across reloads and, with
 * state_file:, across restarts. */
struct gw_member_op;
struct gw_members {
    struct gw_member_op *ops;            /* the change log, in order (ctl_lock) */
    char *state_path;                    /* NULL: not persisted; set by gw_members_restore() at start */
    atomic_uint_fast64_t leases_expired; /* main thread adds, /metrics reads (relaxed) */
};

struct gw_hcheck;
struct admin;

/* Command-line values that win over the config file's, at start and on
 * every reload. */
struct gw_overrides {
    int threads;        /* -1: the config's */
    const char *listen; /* NULL: the config's */
    const char *admin;  /* NULL: the config's; "off": no admin API */
};

/* Process-wide gateway state: one per `floodgate gateway`, built by
 * gw_start() and torn down by gw_stop() on the main thread. Workers reach
 * it through w->gw; control-plane functions (admin API, reload, health
 * checks, members) take it as their first argument. Each field says which
 * thread writes it or which lock guards it. */
struct gw {
    _Atomic(struct gw_snapshot *) snap;  /* newest published snapshot: swapped under snap_lock,
                                          * compared by workers without it (gw_snapshot_newer) */
    pthread_mutex_t snap_lock;           /* orders a load+ref of snap against its swap */
    pthread_mutex_t ctl_lock;            /* serializes snapshot builders */
    struct gw_svc_stats *svc_stats;      /* all services ever seen (ctl_lock; freed by gw_stop) */
    int nrts;                            /* resilience objects built: the next one's id (ctl_lock) */
    atomic_int rts_live;                 /* resilience objects not yet freed (any thread) */
    uint64_t generation;                 /* of the last snapshot built (ctl_lock) */
    struct gw_worker **workers;          /* nworkers of them, from gw_workers_start to gw_workers_stop */
    int nworkers;                        /* set at start, then read-only */
    atomic_bool stopping;                /* SIGTERM: stop accepting, drain */
    atomic_bool force_stop;              /* drain deadline passed: leave now */
    atomic_int drained_workers;          /* workers that closed their listeners (stopping) */
    atomic_int conns;                    /* client connections, all workers */
    struct gw_members members;           /* admin-made changes, kept across reloads (ctl_lock) */
    struct gw_route_stats *route_stats;  /* per-route counters, all routes ever seen (ctl_lock) */
    struct gw_hcheck *hcheck;            /* health-check thread; main thread starts and stops it */
    struct admin *admin;                 /* admin API listener (NULL: off); main thread */
    char *config_path;                   /* NULL: embedded default; set at start, then read-only */
    struct gw_overrides ov;              /* set at start, then read-only (strings borrowed from argv) */
    FILE *access_log;                    /* set at start, then read-only; workers write lines */
    struct metrics_hist latency;         /* all requests: threads without a worker's own */
    struct rl_store *rl;                 /* rate-limit state, all threads, kept across reloads */
    struct gw_guard *guard;              /* per-client connection counts (its own shard locks) */
    struct gw_servers servers;           /* server slots and retired breakers (its own lock) */
    atomic_uint_fast64_t refused_ip[4];  /* by enum gw_refusal */
};

enum gw_refusal { GW_REFUSE_DENY, GW_REFUSE_CONNS, GW_REFUSE_RATE, GW_REFUSE_ROUTE };

/* The config a worker runs with: its current snapshot's, always alive. */
#define WCFG(w) ((w)->snap->cfg)

/* Per-thread counters, read by /metrics from another thread (relaxed);
 * only the owning worker writes them (gw_ctr_inc, no locked add). */
struct gw_worker_stats {
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t refused;        /* over limits.max_connections */
    atomic_uint_fast64_t active;         /* open client connections */
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t errors[8];      /* by enum gw_err_kind */
    atomic_uint_fast64_t up_idle;        /* pooled idle upstream connections */
    atomic_uint_fast64_t limited;        /* requests answered 429 */
    atomic_uint_fast64_t shed;           /* refused or dropped by admission (503) */
    atomic_uint_fast64_t breaker_refused;/* refused by an open breaker */
    atomic_uint_fast64_t fallbacks;      /* answered by a fallback */
    atomic_uint_fast64_t retries;        /* retries sent */
    atomic_uint_fast64_t retries_denied; /* retries the budget refused */
    atomic_uint_fast64_t delayed;        /* requests held by a rate limit */
};

struct gw_worker {
    struct gw *gw;                       /* the process this worker serves */
    int id;
    pthread_t thread;
    struct ev_loop *loop;
    int *lfds;                           /* this thread's SO_REUSEPORT listeners */
    int nlfds;
    struct gw_snapshot *snap;            /* snapshot this worker routes with */
    struct gw_conn *conns;               /* live client connections */
    struct gw_conn *closing;             /* connections to free before next poll */
    bool draining;
    struct gw_upconn **pools;            /* idle upstream conns, indexed by server slot */
    uint32_t *pool_len;                  /* length of each pools[] list */
    size_t npools;
    struct gw_worker_stats st;
    struct metrics_hist latency;         /* all its requests (metrics_hist_observe_owned_ns) */
    struct gw_adm_queue **admq;          /* per resilience object id, lazily */
    size_t nadmq;
    struct ev_timer admq_timer;          /* next queue deadline */
    char *bufcache[GW_BUFCACHE];         /* free GW_IO_CHUNK blocks for connection buffers */
    struct rl_redis *rlr;                /* shared rate-limit store connection, or NULL */
    int nbufcache;
};

static inline bool gw_snapshot_newer(const struct gw_worker *w)
{
    return atomic_load_explicit(&w->gw->snap, memory_order_acquire) != w->snap;
}

enum gw_err_kind {
    GW_ERR_BAD_REQUEST, GW_ERR_TIMEOUT_CLIENT, GW_ERR_UP_CONNECT, GW_ERR_UP_TIMEOUT,
    GW_ERR_UP_RESET, GW_ERR_UP_BAD_RESPONSE, GW_ERR_NO_ROUTE, GW_ERR_NO_SERVER,
};

/* ---- snapshot.c ---- */
struct gw_cfgref *gw_cfgref_new(struct gw_config *cfg); /* takes cfg, refcnt 1 */
struct gw_cfgref *gw_cfgref_get(struct gw_cfgref *r);   /* +1, returns r */
void gw_cfgref_put(struct gw_cfgref *r);
/* Builds a snapshot from a config (taking over the caller's reference)
 * and the admin-made membership changes, reusing server objects of the
 * previous snapshot. Returns NULL with *err on failure. Caller holds
 * gw->ctl_lock. */
struct gw_snapshot *gw_snapshot_build(struct gw *g, struct gw_cfgref *cfg, struct gw_snapshot *prev, char **err);
void gw_snapshot_publish(struct gw *g, struct gw_snapshot *s);
static inline void gw_snapshot_ref(struct gw_snapshot *s) { atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed); }
void gw_snapshot_unref(struct gw_snapshot *s);
/* Whether g published a snapshot newer than the one w routes with (a
 * pointer compare, no lock: the worker then takes it with
 * gw_worker_refresh_snapshot). */
static inline bool gw_snapshot_newer(const struct gw_worker *w);
/* The newest snapshot with a reference held (callers unref). */
struct gw_snapshot *gw_snapshot_get(struct gw *g);
/* Building blocks used by snapshot.c and members.c (ctl_lock held). */
struct gw_service *gw__service_new(struct gw *g, const char *name, const char *balance);
void gw__service_free(struct gw_service *svc);
/* Appends srv, taking over the caller's reference. */
void gw__service_add_server(struct gw_service *svc, struct gw_server *srv);
/* The previous snapshot's object for (svc, addr, weight) or a new one;
 * returns a new reference. */
struct gw_server *gw__snapshot_server_for(struct gw *g, struct gw_snapshot *prev, const char *svc,
                                         const struct net_addr *addr, int weight);
void gw__snapshot_add_route(struct gw_snapshot *s, const char *host, const char *prefix, bool strip,
                           struct gw_service *svc);
/* Counts a request through the service (status class cls, 0: no
 * response, taking ns) from worker w: into w's entry, or the shared part
 * without one. */
static inline void gw_svc_count(struct gw_svc_stats *st, int w, int cls, uint64_t ns)
{
    if ((unsigned)w < (unsigned)st->nctr) {
        gw_ctr_inc(&st->ctr[w].resp_class[cls]);
        metrics_hist_observe_owned_ns(&st->ctr[w].latency, ns);
        return;
    }
    atomic_fetch_add_explicit(&st->req_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->resp_class[cls], 1, memory_order_relaxed);
    metrics_hist_observe_ns(&st->latency, ns);
}
/* A service's request counts and latency, summed over its workers'
 * entries and the shared part (any thread). latency may be NULL. */
void gw_svc_counts(const struct gw_svc_stats *st, uint64_t *requests, uint64_t resp_class[6],
                   struct metrics_hist_snap *latency);
const struct gw_route *gw_route_match(const struct gw_snapshot *s, const char *host, size_t host_len,
                                      const char *path, size_t path_len);
/* Frees what a route owns (names, lists, CIDR sets) and zeroes it. */
void gw__route_clear(struct gw_route *r);
/* The route of s whose name is id, or, when id starts with '/', whose
 * prefix is id and whose host is host (NULL: the route for any host). */
struct gw_route *gw_snapshot_route(const struct gw_snapshot *s, const char *id, const char *host);
struct gw_service *gw_snapshot_service(const struct gw_snapshot *s, const char *name);

/* ---- members.c: admin-made membership changes, replayed on reload ----
 * Each returns 0, or with *err set (caller frees) -EINVAL (bad input),
 * -ENOENT (no such service, server or route), -EEXIST (already exists) or
 * -EIO (in effect but not saved to the state file); gw_admin_status()
 * maps them to HTTP. */
/* ttl_ms > 0 makes it a registration lease: registering the same server
 * again before it runs out renews it (returns 1 instead of 0; the weight
 * given replaces the old one), and gw_members_expire() removes it after.
 * 0: an operator's server, which never expires (-EEXIST when present). */
int gw_members_add_server(struct gw *g, const char *svc, const char *addr, int weight, uint64_t ttl_ms, char **err);
/* The lease of server a in svc: true with its TTL and time left. */
bool gw_members_lease(struct gw *g, const char *svc, const struct net_addr *a, uint64_t *ttl_ms, uint64_t *left_ms);
/* Removes the servers whose lease ran out (main thread, every second);
 * returns how many. */
int gw_members_expire(struct gw *g);
void gw_members_metrics_render(struct gw *g, struct buf *b);
/* Reads the state file at path (state_file:) into the change log and
 * saves every later change there. Call at start, before the first
 * snapshot. A missing file is an empty state; an unreadable or corrupt
 * one is an error (-1 with *err: the gateway refuses to start rather than
 * silently forget). Returns the number of changes restored. */
int gw_members_restore(struct gw_members *m, const char *path, char **err);
int gw_members_remove_server(struct gw *g, const char *svc, const char *addr, char **err);
int gw_members_drain_server(struct gw *g, const char *svc, const char *addr, bool drain, char **err);
/* A service created at run time, optionally with a route prefix to it. */
int gw_members_add_service(struct gw *g, const char *svc, const char *balance, const char *prefix,
                           bool strip_prefix, char **err);
int gw_members_remove_service(struct gw *g, const char *svc, char **err);
/* Run-time changes to the global allow/deny lists (guard). */
int gw_members_cidr(struct gw *g, bool deny, bool add, const char *cidr, char **err);
/* Run-time changes to a route's allow/deny lists; the route is found as
 * by gw_snapshot_route() (-ENOENT when there is none). */
int gw_members_route_cidr(struct gw *g, const char *route, const char *host, bool deny, bool add, const char *cidr,
                          char **err);
/* Applies the recorded changes to a snapshot under construction
 * (called by gw_snapshot_build; ctl_lock held). Returns 0 or -1/err. */
int gw__members_apply(struct gw *g, struct gw_snapshot *s, struct gw_snapshot *prev, char **err);
void gw_members_free(struct gw_members *m);
/* Reloads the config file (or default) and publishes; 0 or -1 with *err. */
int gw_reload(struct gw *g, char **err);

/* ---- worker.c ---- */
int gw_workers_start(struct gw *g, char **err);
void gw_workers_stop(struct gw *g);    /* after drain: break loops, join */
void gw_worker_close_listeners(struct gw_worker *w);
/* Adopts the newest published snapshot (worker thread). */
void gw_worker_refresh_snapshot(struct gw_worker *w);

/* Connection buffers come from a per-worker cache of GW_IO_CHUNK blocks
 * and go back to it when empty, so an idle keep-alive connection holds no
 * buffer memory. gw_buf_prepare() before reading into b; gw_buf_release()
 * returns b's storage if b is empty. */
char *gw_buf_prepare(struct gw_worker *w, struct buf *b);
void gw_buf_release(struct gw_worker *w, struct buf *b);
void gw_worker_link_conn(struct gw_worker *w, struct gw_conn *c);
void gw_worker_unlink_conn(struct gw_worker *w, struct gw_conn *c);

/* ---- proxy.c ---- */
void gw_conn_accept(struct gw_worker *w, int fd, const struct net_addr *peer, bool guard_counted);
void gw_worker_free_closed(struct gw_worker *w);
void gw_worker_drop_pools(struct gw_worker *w);

/* ---- guard.c: gatekeeping and rate limiting ---- */
int gw_guard_init(struct gw *g, char **err);
void gw_guard_free(struct gw *g);
/* At accept: deny/allow lists, per-client connection count and rate.
 * Returns true when the connection may proceed (then *counted tells
 * whether gw_guard_conn_closed must be called when it closes). */
bool gw_guard_accept(struct gw_worker *w, const struct net_addr *peer, bool *counted);
void gw_guard_conn_closed(struct gw *g, const struct net_addr *peer);
/* Periodic upkeep (expired rate-limit keys); any one thread. */
void gw_guard_sweep(struct gw *g);
/* Builds the snapshot's CIDR sets and route rules (ctl_lock held). */
int gw__guard_snapshot(struct gw_snapshot *s, char **err);
void gw__guard_snapshot_free(struct gw_snapshot *s);

/* ---- registry.c: breakers, retry budgets, admission ---- */
/* The resilience object for a service (ctl_lock held): the current one
 * when cfg is unchanged, else a new one that becomes st's current one.
 * cfg NULL: defaults. Returns a new reference. */
struct gw_svc_rt *gw__svc_rt_for(struct gw *g, struct gw_svc_stats *st, const struct gw_cfg_resil *cfg);
static inline struct gw_svc_rt *gw_svc_rt_ref(struct gw_svc_rt *rt)
{
    atomic_fetch_add_explicit(&rt->refcnt, 1, memory_order_relaxed);
    return rt;
}
/* Drops a reference (NULL: nothing); the last one frees rt. Any thread. */
void gw_svc_rt_unref(struct gw_svc_rt *rt);
struct gw_adm_queue *gw_worker_admq(struct gw_worker *w, struct gw_svc_rt *rt);
void gw_worker_poll_admission(struct gw_worker *w);
void gw_worker_free_admq(struct gw_worker *w);
void gw_resil_metrics_render(struct gw *g, struct buf *b);

/* ---- admin/server_breakers.c ---- */
struct cJSON;
/* The server's breaker as JSON for the admin API, or NULL without one. */
struct cJSON *gw_server_breaker_json(struct gw_server *s, uint64_t now_us);
void gw_server_breaker_metrics_render(struct buf *b, const struct gw_snapshot *s);

/* ---- hcheck.c: the health-check thread ---- */
int gw_hcheck_start(struct gw *g, char **err);
void gw_hcheck_stop(struct gw *g);

/* ---- gateway.c ---- */
int gw_main(int argc, char **argv); /* `floodgate gateway` */
/* Builds and starts the process in *g (zeroed by the caller): the state
 * file, the first snapshot of cfg (taken over), the guard, the workers,
 * the admin API and the health checker, in that order. path is the
 * config file (NULL: the embedded default), ov the command line's
 * overrides. On failure undoes what it did (gw_stop) and returns, with
 * *err, -1 when the configuration or state file cannot be served, -2 when
 * a listener or thread cannot be started. Main thread, signals already
 * blocked. */
int gw_start(struct gw *g, struct gw_config *cfg, const char *path, const struct gw_overrides *ov, char **err);
/* Stops what gw_start started, in the reverse order, and frees it; the
 * caller drains first if it wants to. Safe on a partly started g. */
void gw_stop(struct gw *g);

/* ---- admin/guard.c ---- */
struct admin_req;
struct admin_resp;
void gw_admin_guard_routes(struct admin *adm, struct gw *g);
/* The CIDR argument of an allow/deny change (JSON body to add, ?cidr= to
 * remove) into cidr[cap]; false after answering 400. */
bool gw_admin_cidr_arg(const struct admin_req *req, struct admin_resp *resp, bool add, char *cidr, size_t cap);
void gw_guard_metrics_render(struct gw *g, struct buf *b);

/* ---- admin/routes.c: routes in the admin API, per-route counters ---- */
/* Persistent counters for the route (ctl_lock held). */
struct gw_route_stats *gw__route_stats_get(struct gw *g, const struct gw_route *r);
void gw__route_stats_free_all(struct gw *g);
/* "name", or "host/prefix", or "/prefix": the route's label in metrics
 * and logs. Writes at most n bytes into buf, NUL included; returns buf. */
const char *gw_route_id(const struct gw_route *r, char *buf, size_t n);
/* Whether the peer a16 is refused by the route's own lists (counted per
 * list). Any worker thread. */
bool gw_route_refuses(const struct gw_route *r, const uint8_t a16[16]);
void gw_admin_route_routes(struct admin *adm, struct gw *g);
void gw_route_metrics_render(struct gw *g, struct buf *b);

/* ---- admin/api.c and admin/metrics.c ---- */
/* Starts the admin listener on c->admin (nothing when NULL) with c's
 * access settings in force from the first request. */
int gw_admin_start(struct gw *g, const struct gw_config *c, char **err);
/* Applies a reloaded configuration's admin token and allowed hosts. */
void gw_admin_set_access(struct gw *g, const struct gw_config *c);
void gw_admin_stop(struct gw *g);
/* The HTTP status for a refusal of the members code (-EINVAL 400,
 * -ENOENT 404, -EEXIST 409, -EIO 500). */
int gw_admin_status(int rc);
void gw_metrics_render(struct gw *g, struct buf *b);

#endif
