/* Unit tests for gateway/config/config.c: the embedded default, a full
 * configuration with every key, the shipped example, defaults, and one
 * test per validation rule checking the exact "name:LINE: key.path:"
 * prefix of the message. */
#include <criterion/criterion.h>

#include "core/config.h"
#include "core/log.h"
#include "gateway/config/config.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct gw_config *load_ok(const char *yaml)
{
    struct gw_config *c = NULL;
    char *err = NULL;
    int rc = gw_config_load_string(yaml, strlen(yaml), "gw.yaml", &c, &err);
    cr_assert_eq(rc, 0, "load failed: %s", err ? err : "(no message)");
    cr_assert_null(err);
    cr_assert_not_null(c);
    return c;
}

/* Loading must fail with a message that starts with prefix. */
static void load_err(const char *yaml, const char *prefix)
{
    struct gw_config *c = (struct gw_config *)1;
    char *err = NULL;
    int rc = gw_config_load_string(yaml, strlen(yaml), "gw.yaml", &c, &err);
    cr_assert_eq(rc, -1, "expected an error starting with '%s'", prefix);
    cr_assert_null(c);
    cr_assert_not_null(err);
    cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "got '%s', want prefix '%s'", err, prefix);
    free(err);
}

/* A minimal valid tail, appended to the cases that test top-level keys. */
#define MIN_SVC                      \
    "services:\n"                    \
    "  - name: a\n"                  \
    "    servers: [127.0.0.1:9001]\n" \
    "routes:\n"                      \
    "  - prefix: /\n"                \
    "    service: a\n"

/* ---- the embedded default -------------------------------------------- */

Test(gwconfig_default, loads)
{
    struct gw_config *c = NULL;
    char *err = NULL;
    cr_assert_eq(gw_config_load_string(gw_default_config, strlen(gw_default_config), "(default)", &c, &err), 0,
                 "%s", err);
    cr_assert_str_eq(c->name, "(default)");
    cr_assert_eq(c->nlisten, 1);
    cr_assert_str_eq(c->listen[0], "0.0.0.0:8080");
    cr_assert_eq(net_addr_port(&c->listen_addr[0]), 8080);
    cr_assert_str_eq(c->admin, "127.0.0.1:9901");
    cr_assert_eq(net_addr_port(&c->admin_addr), 9901);
    cr_assert_eq(c->threads, 0);
    cr_assert_null(c->access_log);
    cr_assert_eq(c->log_level, LOG_INFO);

    cr_assert_eq(c->nservices, 1);
    const struct gw_cfg_service *s = &c->services[0];
    cr_assert_str_eq(s->name, "echo");
    cr_assert_str_eq(s->balance, "round_robin");
    cr_assert_eq(s->nservers, 3);
    for (size_t i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%zu", 9001 + i);
        cr_assert_str_eq(s->servers[i].address, want);
        cr_assert_eq(net_addr_port(&s->servers[i].addr), (int)(9001 + i));
        cr_assert_eq(s->servers[i].weight, 1);
    }
    cr_assert(s->health.enabled);
    cr_assert_str_eq(s->health.path, "/health");
    cr_assert_eq(s->health.interval_ms, 1000);

    cr_assert_eq(c->nroutes, 1);
    cr_assert_str_eq(c->routes[0].prefix, "/");
    cr_assert_str_eq(c->routes[0].service, "echo");
    cr_assert_eq(c->routes[0].service_idx, 0);
    cr_assert_null(c->routes[0].host);
    cr_assert(!c->routes[0].strip_prefix);
    cr_assert_eq(gw_config_find_service(c, "echo"), s);
    cr_assert_null(gw_config_find_service(c, "nope"));
    gw_config_free(c);
}

Test(gwconfig_default, defaults_for_absent_keys)
{
    struct gw_config *c = load_ok(MIN_SVC);
    cr_assert_str_eq(c->listen[0], "0.0.0.0:8080");
    cr_assert_str_eq(c->admin, "127.0.0.1:9901");
    cr_assert_eq(c->timeouts.client_header_ms, 10000);
    cr_assert_eq(c->timeouts.client_body_ms, 60000);
    cr_assert_eq(c->timeouts.client_idle_ms, 60000);
    cr_assert_eq(c->timeouts.upstream_connect_ms, 2000);
    cr_assert_eq(c->timeouts.upstream_response_ms, 30000);
    cr_assert_eq(c->timeouts.drain_ms, 30000);
    cr_assert_eq(c->limits.max_header_bytes, 32768);
    cr_assert_eq(c->limits.max_headers, 100);
    cr_assert_eq(c->limits.max_body_bytes, 1ull << 30);
    cr_assert_eq(c->limits.max_connections, 100000);
    cr_assert_eq(c->upstream.keepalive, 1024);
    cr_assert_eq(c->upstream.keepalive_timeout_ms, 60000);
    const struct gw_cfg_service *s = &c->services[0];
    cr_assert_str_eq(s->balance, "round_robin");
    cr_assert_null(s->hash_key);
    cr_assert_eq(s->vnodes, 100);
    cr_assert_eq(s->bound_load, 0.0);
    cr_assert_eq(s->slow_start_ms, 0);
    cr_assert(!s->health.enabled);
    cr_assert_str_eq(s->health.path, "/health");
    cr_assert_eq(s->health.interval_ms, 2000);
    cr_assert_eq(s->health.timeout_ms, 1000);
    cr_assert_eq(s->health.expect_min, 200);
    cr_assert_eq(s->health.expect_max, 299);
    cr_assert_eq(s->health.rise, 2);
    cr_assert_eq(s->health.fall, 3);
    cr_assert_eq(s->passive.max_failures, 5);
    cr_assert_eq(s->passive.eject_for_ms, 10000);
    gw_config_free(c);
}

/* ---- a full configuration --------------------------------------------- */

static const char full_yaml[] =
    "listen:\n"                                   /* 1 */
    "  - \"0.0.0.0:8080\"\n"                      /* 2 */
    "  - \"[::1]:8081\"\n"                        /* 3 */
    "threads: 4\n"                                /* 4 */
    "admin: 127.0.0.1:9999\n"                     /* 5 */
    "access_log: /var/log/fg.log\n"               /* 6 */
    "log_level: debug\n"                          /* 7 */
    "timeouts:\n"                                 /* 8 */
    "  client_header: 5s\n"                       /* 9 */
    "  client_body: 61s\n"                        /* 10 */
    "  client_idle: 2m\n"                         /* 11 */
    "  upstream_connect: 250ms\n"                 /* 12 */
    "  upstream_response: 1m30s\n"                /* 13 */
    "  drain: 0\n"                                /* 14 */
    "limits:\n"                                   /* 15 */
    "  max_header_bytes: 64k\n"                   /* 16 */
    "  max_headers: 50\n"                         /* 17 */
    "  max_body_bytes: 0\n"                       /* 18 */
    "  max_connections: 2000\n"                   /* 19 */
    "upstream:\n"                                 /* 20 */
    "  keepalive: 0\n"                            /* 21 */
    "  keepalive_timeout: 15s\n"                  /* 22 */
    "services:\n"                                 /* 23 */
    "  - name: auth\n"                            /* 24 */
    "    balance: weighted\n"                     /* 25 */
    "    slow_start: 20s\n"                       /* 26 */
    "    servers:\n"                              /* 27 */
    "      - 127.0.0.1:9001\n"                    /* 28 */
    "      - { address: 127.0.0.1:9002, weight: 3 }\n" /* 29 */
    "    health:\n"                               /* 30 */
    "      path: /ping\n"                         /* 31 */
    "      interval: 500ms\n"                     /* 32 */
    "      timeout: 200ms\n"                      /* 33 */
    "      expect_status: 204\n"                  /* 34 */
    "      rise: 3\n"                             /* 35 */
    "      fall: 4\n"                             /* 36 */
    "    passive:\n"                              /* 37 */
    "      max_failures: 0\n"                     /* 38 */
    "      eject_for: 1m\n"                       /* 39 */
    "  - name: orders_v2\n"                       /* 40 */
    "    balance: consistent_hash\n"              /* 41 */
    "    hash_key: cookie:session\n"              /* 42 */
    "    vnodes: 200\n"                           /* 43 */
    "    bound_load: 1.25\n"                      /* 44 */
    "    servers:\n"                              /* 45 */
    "      - address: \"[::1]:9101\"\n"           /* 46 */
    "        weight: 2\n"                         /* 47 */
    "    health:\n"                               /* 48 */
    "      expect_status: 3xx\n"                  /* 49 */
    "  - name: empty-pool\n"                      /* 50 */
    "    balance: least_conn\n"                   /* 51 */
    "routes:\n"                                   /* 52 */
    "  - prefix: /auth\n"                         /* 53 */
    "    host: API.Example.com\n"                 /* 54 */
    "    service: auth\n"                         /* 55 */
    "    strip_prefix: true\n"                    /* 56 */
    "  - prefix: /orders\n"                       /* 57 */
    "    host: \"*.shop.example.com\"\n"          /* 58 */
    "    service: orders_v2\n"                    /* 59 */
    "  - prefix: /\n"                             /* 60 */
    "    service: empty-pool\n"                   /* 61 */
    "    strip_prefix: off\n";                    /* 62 */

Test(gwconfig_full, every_field)
{
    struct gw_config *c = load_ok(full_yaml);
    cr_assert_eq(c->nlisten, 2);
    cr_assert_str_eq(c->listen[0], "0.0.0.0:8080");
    cr_assert_str_eq(c->listen[1], "[::1]:8081");
    cr_assert_eq(c->listen_addr[1].ss.ss_family, AF_INET6);
    cr_assert_eq(net_addr_port(&c->listen_addr[1]), 8081);
    cr_assert_eq(c->threads, 4);
    cr_assert_str_eq(c->admin, "127.0.0.1:9999");
    cr_assert_eq(net_addr_port(&c->admin_addr), 9999);
    cr_assert_str_eq(c->access_log, "/var/log/fg.log");
    cr_assert_eq(c->log_level, LOG_DEBUG);

    cr_assert_eq(c->timeouts.client_header_ms, 5000);
    cr_assert_eq(c->timeouts.client_body_ms, 61000);
    cr_assert_eq(c->timeouts.client_idle_ms, 120000);
    cr_assert_eq(c->timeouts.upstream_connect_ms, 250);
    cr_assert_eq(c->timeouts.upstream_response_ms, 90000);
    cr_assert_eq(c->timeouts.drain_ms, 0);
    cr_assert_eq(c->limits.max_header_bytes, 65536);
    cr_assert_eq(c->limits.max_headers, 50);
    cr_assert_eq(c->limits.max_body_bytes, 0);
    cr_assert_eq(c->limits.max_connections, 2000);
    cr_assert_eq(c->upstream.keepalive, 0);
    cr_assert_eq(c->upstream.keepalive_timeout_ms, 15000);

    cr_assert_eq(c->nservices, 3);
    const struct gw_cfg_service *a = &c->services[0];
    cr_assert_str_eq(a->name, "auth");
    cr_assert_eq(a->line, 24);
    cr_assert_str_eq(a->balance, "weighted");
    cr_assert_null(a->hash_key);
    cr_assert_eq(a->slow_start_ms, 20000);
    cr_assert_eq(a->nservers, 2);
    cr_assert_str_eq(a->servers[0].address, "127.0.0.1:9001");
    cr_assert_eq(a->servers[0].weight, 1);
    cr_assert_eq(a->servers[0].line, 28);
    cr_assert_str_eq(a->servers[1].address, "127.0.0.1:9002");
    cr_assert_eq(net_addr_port(&a->servers[1].addr), 9002);
    cr_assert_eq(a->servers[1].weight, 3);
    cr_assert_eq(a->servers[1].line, 29);
    cr_assert(a->health.enabled);
    cr_assert_str_eq(a->health.path, "/ping");
    cr_assert_eq(a->health.interval_ms, 500);
    cr_assert_eq(a->health.timeout_ms, 200);
    cr_assert_eq(a->health.expect_min, 204);
    cr_assert_eq(a->health.expect_max, 204);
    cr_assert_eq(a->health.rise, 3);
    cr_assert_eq(a->health.fall, 4);
    cr_assert_eq(a->passive.max_failures, 0);
    cr_assert_eq(a->passive.eject_for_ms, 60000);

    const struct gw_cfg_service *o = &c->services[1];
    cr_assert_str_eq(o->name, "orders_v2");
    cr_assert_str_eq(o->balance, "consistent_hash");
    cr_assert_str_eq(o->hash_key, "cookie:session");
    cr_assert_eq(o->hash_by, GW_HASH_COOKIE);
    cr_assert_str_eq(o->hash_name, "session");
    cr_assert_eq(o->vnodes, 200);
    cr_assert_float_eq(o->bound_load, 1.25, 1e-12);
    cr_assert_eq(o->nservers, 1);
    cr_assert_str_eq(o->servers[0].address, "[::1]:9101");
    cr_assert_eq(o->servers[0].addr.ss.ss_family, AF_INET6);
    cr_assert_eq(o->servers[0].weight, 2);
    cr_assert(o->health.enabled);
    cr_assert_str_eq(o->health.path, "/health");
    cr_assert_eq(o->health.expect_min, 300);
    cr_assert_eq(o->health.expect_max, 399);
    cr_assert_eq(o->passive.max_failures, 5);

    const struct gw_cfg_service *e = &c->services[2];
    cr_assert_str_eq(e->name, "empty-pool");
    cr_assert_str_eq(e->balance, "least_conn");
    cr_assert_eq(e->nservers, 0);
    cr_assert(!e->health.enabled);

    cr_assert_eq(c->nroutes, 3);
    cr_assert_str_eq(c->routes[0].prefix, "/auth");
    cr_assert_str_eq(c->routes[0].host, "api.example.com");
    cr_assert_str_eq(c->routes[0].service, "auth");
    cr_assert_eq(c->routes[0].service_idx, 0);
    cr_assert(c->routes[0].strip_prefix);
    cr_assert_eq(c->routes[0].line, 53);
    cr_assert_str_eq(c->routes[1].host, "*.shop.example.com");
    cr_assert_eq(c->routes[1].service_idx, 1);
    cr_assert(!c->routes[1].strip_prefix);
    cr_assert_null(c->routes[2].host);
    cr_assert_eq(c->routes[2].service_idx, 2);
    cr_assert(!c->routes[2].strip_prefix);
    gw_config_free(c);
}

Test(gwconfig_full, hash_keys_and_switches)
{
    struct gw_config *c = load_ok("listen: \":0\"\n"
                                  "admin: off\n"
                                  "access_log: stderr\n"
                                  "services:\n"
                                  "  - name: h\n"
                                  "    balance: consistent_hash\n"
                                  "    hash_key: header:X-User-Id\n"
                                  "  - name: p\n"
                                  "    balance: consistent_hash\n"
                                  "    hash_key: path\n"
                                  "  - name: d\n"
                                  "    balance: consistent_hash\n"
                                  "    health: on\n"
                                  "  - name: t\n"
                                  "    balance: two_random\n"
                                  "    health: off\n"
                                  "routes:\n"
                                  "  - { prefix: /, service: h }\n");
    cr_assert_eq(net_addr_port(&c->listen_addr[0]), 0);
    cr_assert_null(c->admin);
    cr_assert_str_eq(c->access_log, "stderr");
    cr_assert_eq(c->services[0].hash_by, GW_HASH_HEADER);
    cr_assert_str_eq(c->services[0].hash_name, "X-User-Id");
    cr_assert_eq(c->services[1].hash_by, GW_HASH_PATH);
    cr_assert_null(c->services[1].hash_name);
    cr_assert_str_eq(c->services[2].hash_key, "client_ip");
    cr_assert_eq(c->services[2].hash_by, GW_HASH_CLIENT_IP);
    cr_assert(c->services[2].health.enabled);
    cr_assert_str_eq(c->services[2].health.path, "/health");
    cr_assert(!c->services[3].health.enabled);
    cr_assert_str_eq(c->services[3].balance, "two_random");
    gw_config_free(c);

    c = load_ok("admin: \"\"\naccess_log: off\n" MIN_SVC);
    cr_assert_null(c->admin);
    cr_assert_null(c->access_log);
    gw_config_free(c);
}

/* ---- files ------------------------------------------------------------ */

Test(gwconfig_file, shipped_example_loads)
{
    char src[4096];
    snprintf(src, sizeof src, "%s", __FILE__);
    char path[4200];
    snprintf(path, sizeof path, "%s/../../../../examples/gateway.yaml", dirname(src));
    struct gw_config *c = NULL;
    char *err = NULL;
    cr_assert_eq(gw_config_load_file(path, &c, &err), 0, "%s", err);
    cr_assert_eq(c->nservices, 2);
    const struct gw_cfg_service *auth = gw_config_find_service(c, "auth");
    const struct gw_cfg_service *orders = gw_config_find_service(c, "orders");
    cr_assert_not_null(auth);
    cr_assert_not_null(orders);
    cr_assert(auth->health.enabled);
    cr_assert(orders->health.enabled);
    cr_assert_str_eq(orders->balance, "consistent_hash");
    cr_assert_eq(orders->hash_by, GW_HASH_HEADER);
    cr_assert_str_eq(orders->hash_name, "X-User-Id");
    cr_assert_geq(c->nroutes, 2);
    gw_config_free(c);
}

Test(gwconfig_file, errors_name_the_file)
{
    char path[] = "/tmp/fg_gwcfg_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char body[] = "services:\n  - name: a\nroutes:\n  - prefix: /\n    service: b\n";
    cr_assert_eq(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    close(fd);
    struct gw_config *c = NULL;
    char *err = NULL;
    cr_assert_eq(gw_config_load_file(path, &c, &err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:5: routes[0].service: unknown service 'b'", path);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);
    free(err);
    unlink(path);

    err = NULL;
    cr_assert_eq(gw_config_load_file("/nonexistent/gw.yaml", &c, &err), -1);
    cr_assert_null(c);
    cr_assert(strncmp(err, "/nonexistent/gw.yaml: cannot open", 33) == 0, "%s", err);
    free(err);
}

/* ---- errors: the listed cases ------------------------------------------ */

Test(gwconfig_errors, unknown_key)
{
    load_err("services:\n"
             "  - name: a\n"
             "    health:\n"
             "      path: /h\n"
             "      intreval: 2s\n",
             "gw.yaml:5: services[0].health.intreval: unknown key; did you mean 'interval'?");
    load_err("listen: :80\nthreds: 2\n" MIN_SVC, "gw.yaml:2: threds: unknown key; did you mean 'threads'?");
    load_err(MIN_SVC "    strip: true\n", "gw.yaml:7: routes[0].strip: unknown key; did you mean 'strip_prefix'?");
}

Test(gwconfig_errors, wrong_type)
{
    load_err("timeouts: 5s\n" MIN_SVC, "gw.yaml:1: timeouts: expected a mapping, got a value");
    load_err("threads: many\n" MIN_SVC, "gw.yaml:1: threads: expected an integer, not 'many'");
    load_err("services:\n  name: a\n", "gw.yaml:1: services: expected a list, got a mapping");
    load_err("timeouts:\n  client_idle: 60\n" MIN_SVC,
             "gw.yaml:2: timeouts.client_idle: expected a duration like 500ms, 2s or 1m, not '60'");
    load_err("limits:\n  max_body_bytes: lots\n" MIN_SVC,
             "gw.yaml:2: limits.max_body_bytes: expected a size like 512, 16k, 1m or 1g");
    load_err(MIN_SVC "    strip_prefix: maybe\n", "gw.yaml:7: routes[0].strip_prefix: expected true or false");
    load_err("listen: [[a]]\n" MIN_SVC, "gw.yaml:1: listen[0]: expected a string, got a list");
    load_err("services:\n  - name: a\n    servers:\n      - [1, 2]\n",
             "gw.yaml:4: services[0].servers[0]: expected an address like 127.0.0.1:9001 or a mapping");
    load_err("- a\n- b\n", "gw.yaml:1: expected a mapping of settings");
}

Test(gwconfig_errors, out_of_range)
{
    load_err("threads: 5000\n" MIN_SVC, "gw.yaml:1: threads: '5000' is out of range: must be between 0 and 1024");
    load_err("timeouts:\n  client_header: 0\n" MIN_SVC,
             "gw.yaml:2: timeouts.client_header: '0' is out of range: must be between 1ms and 1h");
    load_err("limits:\n  max_header_bytes: 100\n" MIN_SVC,
             "gw.yaml:2: limits.max_header_bytes: '100' is out of range: must be between 1k and 16m");
    load_err("limits:\n  max_headers: 0\n" MIN_SVC, "gw.yaml:2: limits.max_headers: '0' is out of range");
    load_err("upstream:\n  keepalive: -1\n" MIN_SVC, "gw.yaml:2: upstream.keepalive: '-1' is out of range");
    load_err("services:\n"
             "  - name: a\n"
             "    health:\n"
             "      rise: 0\n",
             "gw.yaml:4: services[0].health.rise: '0' is out of range: must be between 1 and 100");
    load_err("services:\n"
             "  - name: a\n"
             "    health:\n"
             "      expect_status: 600\n",
             "gw.yaml:4: services[0].health.expect_status: '600' is out of range");
    load_err("services:\n"
             "  - name: a\n"
             "    health:\n"
             "      expect_status: 6xx\n",
             "gw.yaml:4: services[0].health.expect_status: expected a status code like 200 or a class like 2xx");
    load_err("services:\n"
             "  - name: a\n"
             "    servers:\n"
             "      - { address: 127.0.0.1:1, weight: 0 }\n",
             "gw.yaml:4: services[0].servers[0].weight: '0' is out of range: must be between 1 and 1000");
    load_err("services:\n"
             "  - name: a\n"
             "    balance: consistent_hash\n"
             "    bound_load: 0.5\n",
             "gw.yaml:4: services[0].bound_load: must be 0 (off) or at least 1, like 1.25");
    load_err("services:\n"
             "  - name: a\n"
             "    passive:\n"
             "      eject_for: 10ms\n",
             "gw.yaml:4: services[0].passive.eject_for: '10ms' is out of range: must be between 100ms and 1d");
}

Test(gwconfig_errors, unknown_service_in_route)
{
    load_err("services:\n"
             "  - name: auth\n"
             "  - name: orders\n"
             "routes:\n"
             "  - prefix: /a\n"
             "    service: auth\n"
             "  - prefix: /o\n"
             "    service: ordrs\n",
             "gw.yaml:8: routes[1].service: unknown service 'ordrs'; did you mean 'orders'? (services: auth, orders)");
    load_err("services:\n  - name: a\nroutes:\n  - prefix: /\n", "gw.yaml:4: routes[0]: missing required key 'service'");
}

Test(gwconfig_errors, duplicate_service)
{
    load_err("services:\n"
             "  - name: auth\n"
             "  - name: orders\n"
             "  - name: auth\n",
             "gw.yaml:4: services[2].name: duplicate service 'auth' (already defined at line 2)");
}

Test(gwconfig_errors, bad_address)
{
    load_err("services:\n"
             "  - name: a\n"
             "    servers:\n"
             "      - 127.0.0.1:9001\n"
             "      - 127.0.0.1:99999\n",
             "gw.yaml:5: services[0].servers[1]: bad address '127.0.0.1:99999'");
    load_err("services:\n"
             "  - name: a\n"
             "    servers:\n"
             "      - { weight: 2, address: 9001 }\n",
             "gw.yaml:4: services[0].servers[0].address: bad address '9001': expected host:port");
    load_err("services:\n"
             "  - name: a\n"
             "    servers:\n"
             "      - 127.0.0.1:0\n",
             "gw.yaml:4: services[0].servers[0]: bad address '127.0.0.1:0': port 0");
    load_err("listen: \"0.0.0.0:http\"\n" MIN_SVC, "gw.yaml:1: listen: bad address '0.0.0.0:http'");
    load_err("admin: \"[::1\"\n" MIN_SVC, "gw.yaml:1: admin: bad address '[::1'");
}

Test(gwconfig_errors, duplicate_server_and_listen)
{
    load_err("services:\n"
             "  - name: a\n"
             "    servers:\n"
             "      - 127.0.0.1:9001\n"
             "      - 127.0.0.1:9002\n"
             "      - { address: 127.0.0.1:9001, weight: 2 }\n",
             "gw.yaml:6: services[0].servers[2].address: duplicate server '127.0.0.1:9001' (already listed at line 4)");
    /* The same address in two services is fine. */
    struct gw_config *c = load_ok("services:\n"
                                  "  - { name: a, servers: [127.0.0.1:9001] }\n"
                                  "  - { name: b, servers: [127.0.0.1:9001] }\n"
                                  "routes:\n  - { prefix: /, service: a }\n");
    gw_config_free(c);
    load_err("listen:\n  - :8080\n  - \"0.0.0.0:8080\"\n" MIN_SVC, "gw.yaml:3: listen[1]: '0.0.0.0:8080' is listed twice");
    load_err("listen: 127.0.0.1:9901\n" MIN_SVC, "gw.yaml:1: listen: '127.0.0.1:9901' is both a listen and the admin");
}

Test(gwconfig_errors, bad_algo)
{
    load_err("services:\n"
             "  - name: a\n"
             "    balance: round_robbin\n",
             "gw.yaml:3: services[0].balance: unknown value 'round_robbin'; did you mean 'round_robin'? (expected one "
             "of: round_robin, weighted, least_conn, two_random, consistent_hash)");
    load_err("services:\n"
             "  - name: a\n"
             "    balance: random\n",
             "gw.yaml:3: services[0].balance: unknown value 'random' (expected one of:");
    load_err("services:\n"
             "  - name: a\n"
             "    hash_key: path\n",
             "gw.yaml:3: services[0].hash_key: only applies to balance: consistent_hash (this service uses round_robin)");
    load_err("services:\n"
             "  - name: a\n"
             "    balance: consistent_hash\n"
             "    hash_key: \"header:\"\n",
             "gw.yaml:4: services[0].hash_key: expected client_ip, path, header:NAME or cookie:NAME");
    load_err("services:\n"
             "  - name: a\n"
             "    balance: consistent_hash\n"
             "    hash_key: \"header:bad name\"\n",
             "gw.yaml:4: services[0].hash_key: expected client_ip, path, header:NAME or cookie:NAME");
    load_err("log_level: verbose\n" MIN_SVC, "gw.yaml:1: log_level: unknown value 'verbose'");
}

Test(gwconfig_errors, duplicate_key)
{
    load_err("services:\n"
             "  - name: a\n"
             "    balance: weighted\n"
             "    servers: []\n"
             "    balance: least_conn\n",
             "gw.yaml:5: services[0].balance: duplicate key (first defined at line 3)");
}

Test(gwconfig_errors, malformed_yaml)
{
    load_err("services:\n"
             "  - name: a\n"
             "    servers: [127.0.0.1:1\n"
             "routes: []\n",
             "gw.yaml:4: malformed YAML: did not find expected ',' or ']'");
    load_err("listen: \"unterminated\n", "gw.yaml:2: malformed YAML: found unexpected end of stream");
}

Test(gwconfig_errors, empty_file)
{
    load_err("", "gw.yaml:1: empty document");
    load_err("# just a comment\n", "gw.yaml:1: empty document");
    load_err("---\n", "gw.yaml:1: empty document");
}

/* ---- errors: other rules ------------------------------------------------ */

Test(gwconfig_errors, required_sections)
{
    load_err("listen: :8080\n", "gw.yaml:1: missing required key 'services'");
    load_err("services:\n  - name: a\n", "gw.yaml:1: missing required key 'routes'");
    load_err("services: []\n", "gw.yaml:1: services: expected at least one service");
    load_err("services:\n  - name: a\nroutes: []\n", "gw.yaml:3: routes: expected at least one route");
    load_err("services:\n  - balance: weighted\n", "gw.yaml:2: services[0]: missing required key 'name'");
    load_err("listen: []\n" MIN_SVC, "gw.yaml:1: listen: expected at least one address");
}

Test(gwconfig_errors, names_and_paths)
{
    load_err("services:\n  - name: Auth\n", "gw.yaml:2: services[0].name: 'Auth' is not a valid service name");
    load_err("services:\n  - name: \"\"\n", "gw.yaml:2: services[0].name: '' is not a valid service name");
    load_err("services:\n  - name: a\nroutes:\n  - prefix: auth\n    service: a\n",
             "gw.yaml:4: routes[0].prefix: must start with '/'");
    load_err("services:\n  - name: a\n    health:\n      path: \"/h?x=1\"\n",
             "gw.yaml:4: services[0].health.path: must start with '/'");
    load_err(MIN_SVC "    host: api.example.com:8080\n", "gw.yaml:7: routes[0].host: must not include a port");
    load_err(MIN_SVC "    host: \"*.\"\n", "gw.yaml:7: routes[0].host: expected a host name");
    load_err(MIN_SVC "  - prefix: /\n    service: a\n",
             "gw.yaml:7: routes[1].prefix: duplicate route: same host and prefix as the route at line 5");
    struct gw_config *c = load_ok(MIN_SVC "  - prefix: /\n    host: a.example\n    service: a\n");
    cr_assert_eq(c->nroutes, 2);
    gw_config_free(c);
}

Test(gwconfig_errors, route_names)
{
    load_err(MIN_SVC "    name: Admin\n", "gw.yaml:7: routes[0].name: expected 1..64 characters of [a-z0-9_-]");
    load_err(MIN_SVC "    name: \"\"\n", "gw.yaml:7: routes[0].name: expected 1..64 characters of [a-z0-9_-]");
    load_err(MIN_SVC "    name: r\n  - prefix: /x\n    service: a\n    name: r\n",
             "gw.yaml:10: routes[1].name: duplicate route name 'r' (first at line 5)");
    struct gw_config *c = load_ok(MIN_SVC "    name: root\n  - prefix: /x\n    service: a\n");
    cr_assert_str_eq(c->routes[0].name, "root");
    cr_assert_null(c->routes[1].name);
    gw_config_free(c);
}

Test(gwconfig_resil, server_breaker)
{
    struct gw_config *c = load_ok("services:\n"
                                  "  - name: a\n"
                                  "    servers: [127.0.0.1:9001]\n"
                                  "    server_breaker:\n"
                                  "      consecutive_failures: 0\n"
                                  "      slow_call: 250ms\n"
                                  "      slow_rate: 80\n"
                                  "      open_for: 2s\n"
                                  "      half_open_probes: 1\n"
                                  "  - name: b\n"
                                  "routes:\n"
                                  "  - prefix: /\n"
                                  "    service: a\n");
    const struct gw_cfg_resil *r = &c->services[0].resil;
    cr_assert(r->server_breaker_on);
    cr_assert_not(r->breaker_on);
    cr_assert_eq(r->server_breaker.consecutive_failures, 0);
    cr_assert_eq(r->server_breaker.slow_call_us, 250000);
    cr_assert_eq(r->server_breaker.slow_rate_pct, 80);
    cr_assert_eq(r->server_breaker.open_wait_us, 2000000);
    cr_assert_eq(r->server_breaker.half_open_probes, 1);
    cr_assert_eq(r->server_breaker.failure_rate_pct, 50, "defaults for the rest");
    cr_assert_eq(r->server_breaker.min_calls, 20);
    cr_assert_not(c->services[1].resil.server_breaker_on);
    gw_config_free(c);
    load_err("services:\n  - name: a\n    server_breaker:\n      failure_rate: 101\n",
             "gw.yaml:4: services[0].server_breaker.failure_rate:");
    load_err("services:\n  - name: a\n    server_breaker:\n      probes: 1\n",
             "gw.yaml:4: services[0].server_breaker.probes: unknown key");
}

/* The checks the config loader shares with the admin API: the loader's
 * message is FILE:LINE: KEY: plus exactly what the check says. */
static void same_words(const char *yaml, const char *check_msg)
{
    struct gw_config *c = NULL;
    char *err = NULL;
    cr_assert_eq(gw_config_load_string(yaml, strlen(yaml), "gw.yaml", &c, &err), -1);
    size_t n = strlen(err), m = strlen(check_msg);
    cr_assert(n > m && strcmp(err + n - m, check_msg) == 0, "config says '%s', the check '%s'", err, check_msg);
    free(err);
}

#define SVC_WITH(server) "services:\n  - name: a\n    servers:\n      - " server "\nroutes:\n  - prefix: /\n    service: a\n"

Test(gwconfig_checks, server_address_and_weight)
{
    struct net_addr a;
    char *m = gw_check_server_address("127.0.0.1:0", &a);
    cr_assert_str_eq(m, "bad address '127.0.0.1:0': port 0 cannot be connected to");
    same_words(SVC_WITH("127.0.0.1:0"), m);
    free(m);
    m = gw_check_server_address("9001", &a);
    cr_assert_str_eq(m, "bad address '9001': expected host:port");
    same_words(SVC_WITH("\"9001\""), m);
    free(m);
    cr_assert_null(gw_check_server_address("127.0.0.1:9001", &a));
    cr_assert_eq(net_addr_port(&a), 9001);

    int w = 0;
    m = gw_check_weight("0", &w);
    cr_assert_str_eq(m, "'0' is out of range: must be between 1 and 1000");
    same_words(SVC_WITH("{address: \"127.0.0.1:1\", weight: 0}"), m);
    free(m);
    m = gw_check_weight("1.5", &w);
    cr_assert_str_eq(m, "expected an integer, not '1.5'");
    same_words(SVC_WITH("{address: \"127.0.0.1:1\", weight: 1.5}"), m);
    free(m);
    m = gw_check_weight("", &w);
    cr_assert_str_eq(m, "expected an integer, not ''");
    free(m);
    cr_assert_null(gw_check_weight("1000", &w));
    cr_assert_eq(w, 1000);
}

Test(gwconfig_checks, names_balance_paths_hosts_cidrs_keys)
{
    char *m = gw_check_service_name("Bad Name");
    cr_assert_str_eq(m, "'Bad Name' is not a valid service name: use 1 to 64 of a-z, 0-9, '_' and '-'");
    free(m);
    cr_assert_null(gw_check_service_name("ok_1-x"));

    int algo = -1;
    cr_assert_null(gw_check_balance("Least_Conn", &algo));
    cr_assert_eq(algo, 2);
    m = gw_check_balance("round_robn", &algo);
    cr_assert_str_eq(m, "unknown value 'round_robn'; did you mean 'round_robin'? (expected one of: round_robin, "
                        "weighted, least_conn, two_random, consistent_hash)");
    same_words("services:\n  - name: a\n    balance: round_robn\nroutes:\n  - prefix: /\n    service: a\n", m);
    free(m);

    m = gw_check_path("/a b");
    cr_assert_str_eq(m, "must start with '/' and hold no spaces, control characters, '?' or '#'");
    free(m);
    cr_assert_null(gw_check_path("/api/v1"));

    char h1[] = "API.Example.com", h2[] = "a.example.com:80", h3[] = "[::1";
    cr_assert_null(gw_check_host(h1));
    cr_assert_str_eq(h1, "api.example.com");
    m = gw_check_host(h2);
    cr_assert_str_eq(m, "must not include a port (ports are ignored when matching)");
    free(m);
    m = gw_check_host(h3);
    cr_assert_str_eq(m, "expected an IPv6 literal like [::1]");
    free(m);

    cr_assert_null(gw_check_cidr("10.0.0.0/8"));
    m = gw_check_cidr("10.0.0.0/33");
    cr_assert_not_null(m);
    free(m);

    static const char *const keys[] = {"address", "weight", NULL};
    cr_assert_null(gw_check_key("weight", keys));
    m = gw_check_key("wieght", keys);
    cr_assert_str_eq(m, "unknown key; did you mean 'weight'? (valid keys: address, weight)");
    same_words(SVC_WITH("{address: \"127.0.0.1:1\", wieght: 2}"), m);
    free(m);
}

/* ---- admin: the mapping form ------------------------------------------ */

Test(gw_config, admin_mapping_token_and_hosts)
{
    char path[] = "/tmp/fg-token-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "  0123456789abcdef0123\n", 23), 23);
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "admin:\n  listen: 127.0.0.1:9911\n  token_file: %s\n  allowed_hosts: [gw.example.com, Admin.Internal]\n"
             MIN_SVC,
             path);
    struct gw_config *c = load_ok(yaml);
    cr_assert_str_eq(c->admin, "127.0.0.1:9911");
    cr_assert_str_eq(c->admin_access.token, "0123456789abcdef0123");
    cr_assert_eq(c->admin_access.nhosts, 2);
    cr_assert_str_eq(c->admin_access.hosts[1], "Admin.Internal");
    gw_config_free(c);

    /* Without listen, the default address; the string form has no token. */
    c = load_ok("admin: {allowed_hosts: [a.example]}\n" MIN_SVC);
    cr_assert_str_eq(c->admin, "127.0.0.1:9901");
    cr_assert_null(c->admin_access.token);
    gw_config_free(c);
    c = load_ok("admin: 127.0.0.1:9912\n" MIN_SVC);
    cr_assert_null(c->admin_access.token);
    cr_assert_eq(c->admin_access.nhosts, 0);
    gw_config_free(c);

    load_err("admin: {listen: off, allowed_hosts: [a.example:80]}\n" MIN_SVC,
             "gw.yaml:1: admin.allowed_hosts[0]: 'a.example:80': expected a host name without a port");
    load_err("admin: {listen: 127.0.0.1:1, bogus: 1}\n" MIN_SVC, "gw.yaml:1: admin.bogus: unknown key");
    load_err("admin: {token_file: /nonexistent/fg-token}\n" MIN_SVC,
             "gw.yaml:1: admin.token_file: cannot read token file '/nonexistent/fg-token'");
    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_eq(write(fd, "short\n", 6), 6);
    close(fd);
    snprintf(yaml, sizeof yaml, "admin: {token_file: %s}\n" MIN_SVC, path);
    load_err(yaml, "gw.yaml:1: admin.token_file: token file");
    unlink(path);
}
