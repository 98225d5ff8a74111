/* The gateway's configuration model: what a YAML file (or the embedded
 * default) says, validated and turned into plain data. Every string is
 * owned by the struct and released by gw_config_free(); nothing here is
 * shared or changed after loading, so a loaded config can back an
 * immutable snapshot. docs/config.md is the user-facing reference for the
 * keys, their defaults and ranges. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "core/common.h"
#include "core/config.h"
#include "core/net.h"
#include "gateway/resilience/adaptive.h"
#include "gateway/resilience/admission.h"
#include "gateway/resilience/breaker.h"
#include "gateway/limit/ratelimit.h"
#include "gateway/limit/redis.h"
#include "gateway/resilience/retrybudget.h"
#include "gateway/limit/key.h"

/* What a consistent_hash service hashes on. */
enum gw_hash_key {
    GW_HASH_CLIENT_IP = 0, /* the client's address */
    GW_HASH_PATH,          /* the request path, without the query */
    GW_HASH_HEADER,        /* a request header's value (hash_name) */
    GW_HASH_COOKIE,        /* a cookie's value (hash_name) */
};

struct gw_cfg_server {
    char *address;            /* as written, "127.0.0.1:9001" */
    struct net_addr addr;     /* parsed (names resolved once, at load) */
    int weight;               /* 1..1000, default 1 */
    int line;                 /* where it is defined, for messages */
};

struct gw_cfg_health {
    bool enabled;             /* false when the health block is absent or off */
    char *path;               /* request path, default "/health" */
    uint64_t interval_ms;     /* between checks, default 2s */
    uint64_t timeout_ms;      /* per check, default 1s */
    int expect_min;           /* healthy when expect_min <= status <= expect_max; */
    int expect_max;           /* "200" gives 200..200, "2xx" (default) 200..299 */
    int rise;                 /* consecutive successes to come up, default 2 */
    int fall;                 /* consecutive failures to go down, default 3 */
};

struct gw_cfg_passive {
    int max_failures;         /* consecutive failed requests that eject; 0 = off; default 5 */
    uint64_t eject_for_ms;    /* how long an ejected server stays out, default 10s */
};

/* Resilience of a service (config/resil.c): breaker, per-server
 * breakers, fallback, retry budget, back pressure and shedding. */
struct gw_cfg_resil {
    bool breaker_on;                 /* breaker: present */
    struct gw_breaker_cfg breaker;
    bool server_breaker_on;          /* server_breaker: present (one breaker per server) */
    struct gw_breaker_cfg server_breaker;
    struct gw_rb_cfg retry;          /* retry_budget: (always on; defaults 20% + 10/s) */
    bool adm_on;                     /* concurrency: max_inflight or adaptive set */
    uint32_t per_server;             /* concurrency.per_server: in flight per server, 0: none */
    struct gw_adm_cfg adm;
    bool adaptive;                   /* concurrency.adaptive: gradient or aimd */
    struct gw_limit_cfg limit;
    char *priority_header;           /* request header naming the class; NULL: none */
    int fallback_status;             /* fallback.status; 0: no static fallback */
    char *fallback_body;
    char *fallback_type;
    char *fallback_service;          /* fallback.service: another service's name */
};

struct gw_cfg_service {
    char *name;               /* unique, [a-z0-9_-]{1,64} */
    char *balance;            /* round_robin (default), weighted, least_conn, two_random, consistent_hash */
    char *hash_key;           /* consistent_hash only: as written, default "client_ip" */
    enum gw_hash_key hash_by; /* hash_key parsed */
    char *hash_name;          /* header or cookie name for GW_HASH_HEADER/COOKIE, else NULL */
    int vnodes;               /* consistent_hash points per server, default 100 */
    double bound_load;        /* consistent_hash load bound: 0 = off, else 1..100 (e.g. 1.25) */
    uint64_t slow_start_ms;   /* ramp a recovered server's share over this long, 0 = off */
    struct gw_cfg_server *servers;
    size_t nservers;          /* may be 0: servers can be registered through the admin API */
    struct gw_cfg_health health;
    struct gw_cfg_passive passive;
    struct gw_cfg_resil resil;
    int line;                 /* where it is defined */
};

/* A named rate-limit rule (rate_limits:), applied by routes that list it. */
struct gw_cfg_ratelimit {
    char *name;               /* unique; the RateLimit policy name */
    char *key_text;           /* as written, e.g. "client_ip" or "ip/24+header:X-Api-Key" */
    struct rl_key_spec key;   /* parsed key */
    struct rl_rule rule;      /* prepared (rl_rule_prepare); rule.name points to name */
    bool redis;               /* store: redis (state in rate_limit_store) */
    int line;
};

/* Gatekeeping before a request is read (guard:). */
struct gw_cfg_guard {
    char **allow;             /* CIDRs; when any, only these clients are served */
    size_t nallow;
    char **deny;              /* CIDRs refused at accept */
    size_t ndeny;
    int max_conns_per_ip;     /* concurrent connections per client address, 0 = off */
    uint64_t max_conn_rate;   /* new connections per second per client address, 0 = off */
    uint64_t rl_max_keys;     /* rate-limit store size (keys), default 1m */
};

struct gw_cfg_route {
    char *name;               /* NULL, or [a-z0-9_-]{1,64}, unique: the admin API's handle */
    char *prefix;             /* path prefix, starts with '/' */
    char *host;               /* NULL: any host; lowercase exact name, or "*.suffix" */
    char *service;            /* name of the target service */
    size_t service_idx;       /* index of that service in gw_config.services */
    bool strip_prefix;        /* remove prefix from the path sent upstream */
    int line;                 /* where it is defined */
    size_t *rate_limits;      /* indexes into gw_config.rate_limits, in order */
    size_t nrate_limits;
    char **allow;             /* CIDRs for this route (403 otherwise) */
    size_t nallow;
    char **deny;              /* CIDRs refused on this route (403) */
    size_t ndeny;
    int priority;             /* enum gw_prio of its requests [normal] */
};

struct gw_cfg_timeouts {
    uint64_t client_header_ms;     /* whole request head (408), default 10s */
    uint64_t client_body_ms;       /* max gap between body reads (408), default 60s */
    uint64_t client_idle_ms;       /* keep-alive idle between requests, default 60s */
    uint64_t upstream_connect_ms;  /* default 2s */
    uint64_t upstream_response_ms; /* until the response head starts (504), default 30s */
    uint64_t drain_ms;             /* in-flight grace on SIGTERM, default 30s */
};

struct gw_cfg_limits {
    uint64_t max_header_bytes; /* request head size (431), default 32k */
    int max_headers;           /* header count (431), default 100 */
    uint64_t max_body_bytes;   /* request body (413), 0 = unlimited, default 1g */
    int max_connections;       /* client connections per process, default 100000 */
};

struct gw_cfg_upstream {
    int keepalive;               /* idle pooled connections per server per thread, default 128 */
    uint64_t keepalive_timeout_ms; /* idle pooled connection lifetime, default 60s */
};

struct gw_config {
    char *name;                  /* file path or label the config was loaded from */
    char **listen;               /* listener addresses as written */
    struct net_addr *listen_addr; /* parsed, same order */
    size_t nlisten;              /* >= 1 */
    int threads;                 /* worker threads; 0 = one per core */
    char *admin;                 /* admin + /metrics listener; NULL = disabled */
    struct net_addr admin_addr;  /* parsed admin, when enabled */
    struct cfg_access admin_access; /* admin: token_file, allowed_hosts */
    char *access_log;            /* NULL = off; "stderr", "stdout" or a file path */
    char *state_file;            /* NULL = off; where admin changes are kept across restarts */
    int log_level;               /* LOG_ERROR..LOG_DEBUG (core/log.h) */
    struct gw_cfg_timeouts timeouts;
    struct gw_cfg_limits limits;
    struct gw_cfg_upstream upstream;
    struct gw_cfg_service *services;
    size_t nservices;            /* >= 1 */
    struct gw_cfg_route *routes;
    size_t nroutes;              /* >= 1, in file order */
    struct gw_cfg_guard guard;
    struct gw_cfg_ratelimit *rate_limits;
    size_t nrate_limits;
    bool has_rl_redis;           /* rate_limit_store: present */
    struct rl_redis_cfg rl_redis;
};

/* config/guard.c: the protection sections, called by the loader in
 * config.c (guard and rate_limits before routes; a route's own lists when
 * the route is loaded). */
struct cfg_node;
int gw_config_load_guard(struct gw_config *c, const struct cfg_node *root, char **err);
int gw_config_load_route_guard(struct gw_config *c, struct gw_cfg_route *r, const struct cfg_node *n,
                               char **err);
void gw_config_free_guard(struct gw_config *c);
/* config/resil.c */
int gw_config_load_resil(struct gw_config *c, struct gw_cfg_service *s, const struct cfg_node *n, char **err);
int gw_config_check_resil(struct gw_config *c, char **err); /* after all services: fallback names */
void gw_config_free_resil(struct gw_cfg_resil *r);

/* Embedded default configuration (YAML): listen 0.0.0.0:8080, admin
 * 127.0.0.1:9901, service "echo" on 127.0.0.1:9001..9003 round robin with
 * a /health check every 1s, route "/" -> echo. */
extern const char gw_default_config[];

/* Load and validate. On success *out is a new config (free with
 * gw_config_free); on failure returns -1 with *err set to
 * "FILE:LINE: key.path: message" (caller frees). Run at startup or reload,
 * from one thread; server names are resolved synchronously. */
int gw_config_load_file(const char *path, struct gw_config **out, char **err);
int gw_config_load_string(const char *yaml, size_t len, const char *name, struct gw_config **out, char **err);
void gw_config_free(struct gw_config *c);

/* Checks shared by the config loader and the admin API, so that both
 * refuse the same values with the same words. Each returns NULL when the
 * value is acceptable (filling the optional out parameter), else the
 * message without a location (caller frees). Pure functions, any thread;
 * gw_check_server_address() may resolve a name synchronously. */
#define GW_WEIGHT_MIN 1
#define GW_WEIGHT_MAX 1000
char *gw_check_service_name(const char *s);
char *gw_check_balance(const char *s, int *algo);
char *gw_check_weight(const char *text, int *out);       /* decimal text, like the YAML scalar */
char *gw_check_server_address(const char *s, struct net_addr *a);
char *gw_check_path(const char *s);                      /* route prefix, health path */
char *gw_check_host(char *host);                         /* lowercases host in place */
char *gw_check_cidr(const char *s);
char *gw_check_key(const char *key, const char *const *allowed); /* NULL-terminated list */
char *gw_check_ttl(const char *text, uint64_t *ms);      /* a registration lease: 1s..1h */
#define GW_TTL_MIN_MS 1000ull
#define GW_TTL_MAX_MS (3600ull * 1000)

/* The service called name, or NULL. */
const struct gw_cfg_service *gw_config_find_service(const struct gw_config *c, const char *name);

#endif
