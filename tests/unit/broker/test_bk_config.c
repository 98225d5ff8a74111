/* The broker's configuration: the embedded default, overrides, derived
 * limits, and errors that name FILE:LINE and the key. */
#include "broker/broker.h"

#include "core/log.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static struct bk_config *parse(const char *yaml, char **err)
{
    *err = NULL;
    return bk_config_parse(yaml, strlen(yaml), "t.yaml", err);
}

Test(bk_config, embedded_default)
{
    char *err = NULL;
    struct bk_config *c = bk_config_load(NULL, &err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(c->listen, "127.0.0.1:9324");
    cr_assert_str_eq(c->data, "./floodgate-broker-data");
    cr_assert_eq(c->fsync, STORE_FSYNC_ALWAYS);
    cr_assert_eq(c->max_message_bytes, 262144);
    cr_assert_eq(c->body_cache_bytes, 256ull << 20);
    cr_assert_eq(c->limits.max_request_bytes, 4ull << 20);
    cr_assert_null(c->access_key);
    bk_config_free(c);
}

Test(bk_config, overrides_and_derived_limits)
{
    char *err;
    struct bk_config *c = parse("broker:\n"
                                "  listen: 0.0.0.0:9000\n"
                                "  fsync: interval\n"
                                "  fsync_interval: 250ms\n"
                                "  max_message_bytes: 1m\n"
                                "  segment_bytes: 128k\n"
                                "  log_level: debug\n"
                                "  auth: {access_key: AK, secret_key: SK}\n"
                                "  limits:\n"
                                "    max_connections: 50\n"
                                "    idle_timeout: 5s\n",
                                &err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(c->listen, "0.0.0.0:9000");
    cr_assert_eq(c->fsync, STORE_FSYNC_INTERVAL);
    cr_assert_eq(c->fsync_interval_ms, 250);
    cr_assert_eq(c->max_message_bytes, 1u << 20);
    cr_assert_eq(c->segment_bytes, 128u << 10);
    cr_assert_eq(c->log_level, LOG_DEBUG);
    cr_assert_str_eq(c->access_key, "AK");
    cr_assert_eq(c->limits.max_connections, 50);
    cr_assert_eq(c->limits.idle_timeout_ms, 5000);
    /* Room for a 1 MiB message URL-encoded. */
    cr_assert_geq(c->limits.max_request_bytes, 3u << 20);
    bk_config_free(c);
}

Test(bk_config, errors_name_file_line_and_key)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"broker:\n  fsync: sometimes\n", "t.yaml:2: broker.fsync"},
        {"broker:\n  max_message_bytes: 2m\n", "t.yaml:2: broker.max_message_bytes"},
        {"broker:\n  listne: x\n", "listen"},
        {"brokers: {}\n", "broker"},
        {"broker:\n  limits:\n    header_timeout: 5\n", "t.yaml:3: broker.limits.header_timeout"},
        {"broker:\n  auth:\n    access_key: only\n", "secret_key"},
        {"broker:\n  listen: \"not an address\"\n", "t.yaml:2: broker.listen"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        struct bk_config *c = parse(cases[i].yaml, &err);
        cr_assert_null(c, "case %zu parsed", i);
        cr_assert(err && strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err ? err : "",
                  cases[i].want);
        free(err);
    }
}

Test(bk_config, disk_free_limit)
{
    char *err = NULL;
    struct bk_config *c = bk_config_load(NULL, &err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(c->disk_free_limit, 50ull << 20, "RabbitMQ's default");
    bk_config_free(c);
    c = parse("broker:\n  disk_free_limit: 4m\n", &err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(c->disk_free_limit, 4ull << 20);
    bk_config_free(c);
    c = parse("broker:\n  disk_free_limit: 0\n", &err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(c->disk_free_limit, 0, "0 turns the watermark off");
    bk_config_free(c);
    c = parse("broker:\n  disk_free_limit: lots\n", &err);
    cr_assert_null(c);
    cr_assert(strstr(err, "t.yaml:2") && strstr(err, "disk_free_limit"), "%s", err);
    free(err);
}

Test(bk_config, browser_access_settings)
{
    char *err;
    struct bk_config *c = parse("broker:\n  allowed_hosts: [sqs.internal, broker.example.com]\n"
                                "  cors:\n    allow_origins: [\"http://localhost:3000\", \"https://app.example.com\"]\n"
                                "  admin: {listen: \"127.0.0.1:9325\", allowed_hosts: [ops.example.com]}\n",
                                &err);
    cr_assert_not_null(c, "%s", err ? err : "");
    cr_assert_eq(c->nallowed_hosts, 2);
    cr_assert_str_eq(c->allowed_hosts[0], "sqs.internal");
    cr_assert_eq(c->ncors_origins, 2);
    cr_assert_str_eq(c->cors_origins[1], "https://app.example.com");
    cr_assert_str_eq(c->admin, "127.0.0.1:9325");
    cr_assert_eq(c->admin_access.nhosts, 1);
    cr_assert_null(c->admin_access.token);
    bk_config_free(c);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"broker:\n  cors:\n    allow_origins: [\"https://app.example.com/\"]\n",
         "t.yaml:3: broker.cors.allow_origins[0]"},
        {"broker:\n  cors:\n    allow_origin: []\n", "t.yaml:3: broker.cors.allow_origin: unknown key"},
        {"broker:\n  allowed_hosts: [\"a.example:9324\"]\n", "t.yaml:2: broker.allowed_hosts[0]"},
        {"broker:\n  allowed_hosts: [a.example, A.example]\n", "listed twice"},
        {"broker:\n  admin: {allowed_hosts: [a.example]}\n", "needs listen"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = parse(bad[i].yaml, &err);
        cr_assert_null(c, "case %zu parsed", i);
        cr_assert(err && strstr(err, bad[i].want), "case %zu: '%s' lacks '%s'", i, err ? err : "", bad[i].want);
        free(err);
    }
}
