/* Broker configuration: the `broker:` section of a YAML file (or the
 * embedded default, so `floodgate broker` runs without one), walked with
 * the helpers of core/config.h into struct bk_config. Every key is
 * checked for name, type and range; errors name FILE:LINE and the key.
 * Defaults are stored first and the file overrides them. */
#include "broker/broker.h"

#include "core/config.h"
#include "core/log.h"
#include "core/xsite.h"

#include <stdlib.h>
#include <string.h>

const char bk_default_config[] =
    "# floodgate broker: the embedded default configuration.\n"
    "broker:\n"
    "  listen: \"" BK_DEFAULT_LISTEN "\"\n"
    "  data: \"" BK_DEFAULT_DATA "\"\n"
    "  fsync: always\n"
    "  max_message_bytes: 256k\n"
    "  body_cache_bytes: 256m\n";

static const char *const top_keys[] = {"broker", NULL};
static const char *const broker_keys[] = {"listen", "admin", "data", "fsync", "fsync_batch_us",
                                          "fsync_interval", "segment_bytes", "max_message_bytes",
                                          "body_cache_bytes", "compact_ratio", "disk_free_limit", "auth",
                                          "log_level", "limits", "allowed_hosts", "cors", NULL};
static const char *const cors_keys[] = {"allow_origins", NULL};
static const char *const auth_keys[] = {"access_key", "secret_key", NULL};
static const char *const limit_keys[] = {"max_connections", "max_request_bytes", "max_header_bytes",
                                         "max_headers", "header_timeout", "body_timeout", "idle_timeout",
                                         "max_queues", "max_messages", "max_inflight", "max_waiters", NULL};
static const char *const fsync_names[] = {"always", "batch", "interval", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

void bk_config_free(struct bk_config *c)
{
    if (!c)
        return;
    free(c->listen);
    free(c->admin);
    cfg_access_free(&c->admin_access);
    cfg_strings_free(c->allowed_hosts, c->nallowed_hosts);
    cfg_strings_free(c->cors_origins, c->ncors_origins);
    free(c->data);
    free(c->access_key);
    free(c->secret_key);
    free(c);
}

static void set_defaults(struct bk_config *c)
{
    c->listen = xstrdup(BK_DEFAULT_LISTEN);
    c->data = xstrdup(BK_DEFAULT_DATA);
    c->fsync = STORE_FSYNC_ALWAYS;
    c->fsync_batch_us = 200;
    c->fsync_interval_ms = 1000;
    c->segment_bytes = 64ull << 20;
    c->max_message_bytes = 262144;
    c->body_cache_bytes = 256ull << 20;
    c->compact_ratio = 0.5;
    c->disk_free_limit = 50ull << 20; /* RabbitMQ's disk_free_limit default */
    c->log_level = LOG_INFO;
    c->limits = (struct bk_limits){
        .max_connections = 10000,
        .max_request_bytes = 0, /* derived from max_message_bytes below */
        .max_header_bytes = 16 * 1024,
        .max_headers = 100,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 30000,
        .idle_timeout_ms = 60000,
        .max_queues = 10000,
        .max_messages = 50000000,
        .max_inflight = 120000,
        .max_waiters = 10000,
    };
}

static int get_u32(const struct cfg_node *n, int64_t min, int64_t max, uint32_t *out, char **err)
{
    int64_t v = *out;
    if (cfg_int(n, min, max, &v, err) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int load_addr(const struct cfg_node *n, char **out, char **err)
{
    if (!n)
        return 0;
    char *s = NULL;
    if (cfg_string(n, &s, err) < 0)
        return -1;
    struct net_addr a;
    char *e = NULL;
    if (net_parse_addr(s, &a, &e) != 0) {
        *err = cfg_errorf(n, "%s", e);
        free(e);
        free(s);
        return -1;
    }
    free(*out);
    *out = s;
    return 0;
}

static int load_limits(struct bk_limits *l, const struct cfg_node *n, char **err)
{
    if (cfg_section(n, limit_keys, err) < 0)
        return -1;
    if (!n)
        return 0;
    uint64_t v;
    if (get_u32(cfg_get(n, "max_connections"), 1, 1000000, &l->max_connections, err) < 0 ||
        cfg_size(cfg_get(n, "max_request_bytes"), 64 * 1024, 64ull << 20, &l->max_request_bytes, err) < 0)
        return -1;
    v = l->max_header_bytes;
    if (cfg_size(cfg_get(n, "max_header_bytes"), 1024, 1u << 20, &v, err) < 0)
        return -1;
    l->max_header_bytes = (uint32_t)v;
    if (get_u32(cfg_get(n, "max_headers"), 8, 1000, &l->max_headers, err) < 0 ||
        cfg_duration(cfg_get(n, "header_timeout"), 100, 3600000, &l->header_timeout_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "body_timeout"), 100, 3600000, &l->body_timeout_ms, err) < 0 ||
        cfg_duration(cfg_get(n, "idle_timeout"), 100, 24 * 3600000ull, &l->idle_timeout_ms, err) < 0 ||
        get_u32(cfg_get(n, "max_queues"), 1, 1000000, &l->max_queues, err) < 0 ||
        get_u32(cfg_get(n, "max_inflight"), 1, 10000000, &l->max_inflight, err) < 0 ||
        get_u32(cfg_get(n, "max_waiters"), 1, 1000000, &l->max_waiters, err) < 0)
        return -1;
    int64_t mm = (int64_t)l->max_messages;
    if (cfg_int(cfg_get(n, "max_messages"), 1, INT64_MAX, &mm, err) < 0)
        return -1;
    l->max_messages = (uint64_t)mm;
    return 0;
}

static int load_auth(struct bk_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_section(n, auth_keys, err) < 0)
        return -1;
    if (!n)
        return 0;
    if (cfg_string(cfg_get(n, "access_key"), &c->access_key, err) < 0 ||
        cfg_string(cfg_get(n, "secret_key"), &c->secret_key, err) < 0)
        return -1;
    if (!c->access_key != !c->secret_key || (c->access_key && (!*c->access_key || !*c->secret_key))) {
        *err = cfg_errorf(n, "access_key and secret_key go together, both non-empty");
        return -1;
    }
    return 0;
}

/* admin: an address, or a mapping with listen, token_file and
 * allowed_hosts (core/config.h). */
static int load_admin(struct bk_config *c, const struct cfg_node *n, char **err)
{
    const struct cfg_node *listen;
    if (cfg_access(n, &listen, &c->admin_access, err) < 0)
        return -1;
    if (n && n->type == CFG_MAP && !listen) {
        *err = cfg_errorf(n, "the admin mapping needs listen: an address");
        return -1;
    }
    return load_addr(listen, &c->admin, err);
}

static int load_cors(struct bk_config *c, const struct cfg_node *n, char **err)
{
    if (cfg_section(n, cors_keys, err) < 0)
        return -1;
    if (!n)
        return 0;
    return cfg_string_list(cfg_get(n, "allow_origins"), xsite_origin_invalid, &c->cors_origins, &c->ncors_origins,
                           err);
}

static int load_broker(struct bk_config *c, const struct cfg_node *b, char **err)
{
    if (cfg_section(b, broker_keys, err) < 0)
        return -1;
    if (!b)
        return 0;
    int fs = (int)c->fsync;
    uint64_t v;
    if (load_addr(cfg_get(b, "listen"), &c->listen, err) < 0 ||
        load_admin(c, cfg_get(b, "admin"), err) < 0 ||
        cfg_string_list(cfg_get(b, "allowed_hosts"), xsite_name_invalid, &c->allowed_hosts, &c->nallowed_hosts,
                        err) < 0 ||
        load_cors(c, cfg_get(b, "cors"), err) < 0 ||
        cfg_string(cfg_get(b, "data"), &c->data, err) < 0 ||
        cfg_enum(cfg_get(b, "fsync"), fsync_names, &fs, err) < 0 ||
        get_u32(cfg_get(b, "fsync_batch_us"), 0, 100000, &c->fsync_batch_us, err) < 0)
        return -1;
    c->fsync = (enum store_fsync)fs;
    v = c->fsync_interval_ms;
    if (cfg_duration(cfg_get(b, "fsync_interval"), 1, 60000, &v, err) < 0)
        return -1;
    c->fsync_interval_ms = (uint32_t)v;
    if (cfg_size(cfg_get(b, "segment_bytes"), 64u << 10, 4ull << 30, &c->segment_bytes, err) < 0)
        return -1;
    v = c->max_message_bytes;
    if (cfg_size(cfg_get(b, "max_message_bytes"), BK_MIN_MESSAGE_BYTES, BK_HARD_MAX_MESSAGE_BYTES, &v,
                 err) < 0)
        return -1;
    c->max_message_bytes = (uint32_t)v;
    if (cfg_size(cfg_get(b, "body_cache_bytes"), 0, 1ull << 40, &c->body_cache_bytes, err) < 0 ||
        cfg_double(cfg_get(b, "compact_ratio"), 0.05, 0.95, &c->compact_ratio, err) < 0 ||
        cfg_size(cfg_get(b, "disk_free_limit"), 0, 1ull << 50, &c->disk_free_limit, err) < 0 ||
        cfg_enum(cfg_get(b, "log_level"), level_names, &c->log_level, err) < 0 ||
        load_auth(c, cfg_get(b, "auth"), err) < 0 || load_limits(&c->limits, cfg_get(b, "limits"), err) < 0)
        return -1;
    if (c->data && !*c->data) {
        *err = cfg_errorf(cfg_get(b, "data"), "expected a directory path");
        return -1;
    }
    return 0;
}

static struct bk_config *load_doc(const struct cfg_doc *d, char **err)
{
    const struct cfg_node *r = d->root;
    struct bk_config *c = xcalloc(1, sizeof *c);
    set_defaults(c);
    if (r->type != CFG_MAP) {
        *err = cfg_errorf(r, "expected a mapping with a broker section, got %s", cfg_kind(r));
        goto fail;
    }
    if (cfg_check_keys(r, top_keys, err) < 0 || load_broker(c, cfg_get(r, "broker"), err) < 0)
        goto fail;
    if (!c->limits.max_request_bytes) {
        /* Room for the largest message URL-encoded (three bytes per byte
         * at worst) plus the rest of a request. */
        c->limits.max_request_bytes = FG_MAX(4ull << 20, (uint64_t)c->max_message_bytes * 3 + (64u << 10));
    }
    return c;
fail:
    bk_config_free(c);
    return NULL;
}

struct bk_config *bk_config_parse(const char *yaml, size_t len, const char *name, char **err)
{
    struct cfg_doc *d;
    if (cfg_load_string(yaml, len, name, &d, err) < 0)
        return NULL;
    struct bk_config *c = load_doc(d, err);
    cfg_doc_free(d);
    return c;
}

struct bk_config *bk_config_load(const char *path, char **err)
{
    if (!path)
        return bk_config_parse(bk_default_config, strlen(bk_default_config), "(default)", err);
    struct cfg_doc *d;
    if (cfg_load_file(path, &d, err) < 0)
        return NULL;
    struct bk_config *c = load_doc(d, err);
    cfg_doc_free(d);
    return c;
}
