/* Tests for flood/config: the YAML file (templates, profile, sources,
 * attacker) and its file:line errors. */
#include "flood/flood.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_yaml(const char *text)
{
    snprintf(path, sizeof path, "/tmp/fl-cfg-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void defaults(struct fl_config *c)
{
    memset(c, 0, sizeof *c);
    c->conns = 10;
    c->threads = 2;
    c->duration_ms = FL_DEFAULT_DURATION_MS;
    c->timeout_ms = FL_DEFAULT_TIMEOUT_MS;
}

Test(flood_config, full_file)
{
    write_yaml("url: http://127.0.0.1:8080\n"
               "connections: 40\n"
               "threads: 4\n"
               "rate: 200\n"
               "profile:\n"
               "  kind: spike\n"
               "  stages:\n"
               "    - {rate: 1x, for: 2s}\n"
               "    - {rate: 10x, for: 3s}\n"
               "    - {rate: 200, for: 2s}\n"
               "priority_header: X-Priority\n"
               "templates:\n"
               "  - {name: browse, weight: 80, path: /products}\n"
               "  - name: cart\n"
               "    weight: 15\n"
               "    method: POST\n"
               "    path: /cart\n"
               "    body: '{\"sku\": 1}'\n"
               "    headers: {Content-Type: application/json}\n"
               "    priority: high\n"
               "sources: [127.0.1.0/24, 127.0.2.1-127.0.2.10]\n"
               "attacker: {share: 0.25, sources: 127.9.9.1-127.9.9.2, rate: 1000}\n");
    struct fl_config c;
    defaults(&c);
    char *err = NULL;
    cr_assert_eq(fl_config_load(&c, path, &err), 0, "%s", err);
    cr_assert_eq(c.nurls, 1); /* url: */
    cr_assert_eq(fl_config_finish(&c, &err), 0, "%s", err);
    cr_assert_eq(c.conns, 40);
    cr_assert_eq(c.group_conns[FL_ATTACKERS], 10);
    cr_assert_eq(c.group_conns[FL_USERS], 30);
    cr_assert(c.open);
    cr_assert_eq(c.profile.n, 3);
    cr_assert_float_eq(c.profile.stages[1].from, 2000, 1e-9);
    cr_assert_eq(c.duration_ms, 7000); /* the profile's length */
    cr_assert_eq(c.mix.n, 2);
    cr_assert_str_eq(c.mix.t[0].name, "browse");
    char *r = xstrndup(buf_rptr(&c.mix.t[1].req), buf_len(&c.mix.t[1].req));
    cr_assert(strstr(r, "X-Priority: high\r\n"), "%s", r);
    cr_assert(strstr(r, "Content-Type: application/json\r\n"));
    cr_assert(strstr(r, "\r\n\r\n{\"sku\": 1}"));
    free(r);
    cr_assert_eq(c.sources.total, 254 + 10);
    cr_assert_eq(c.attacker_sources.total, 2);
    cr_assert_float_eq(c.attacker_rate, 1000, 1e-9);
    fl_config_free(&c);
    unlink(path);
}

static void expect_error(const char *yaml, const char *needle)
{
    write_yaml(yaml);
    struct fl_config c;
    defaults(&c);
    char *err = NULL;
    cr_assert_eq(fl_config_load(&c, path, &err), -1, "accepted: %s", yaml);
    cr_assert(strstr(err, needle), "'%s' not in '%s'", needle, err);
    cr_assert(strstr(err, path), "no file name in '%s'", err);
    free(err);
    fl_config_free(&c);
    unlink(path);
}

Test(flood_config, errors_name_file_and_line)
{
    expect_error("url: http://x\nconnectons: 5\n", ":2:");
    expect_error("templates:\n  - {path: /a}\n  - {path: b}\n", ":3:");
    expect_error("profile:\n  stages:\n    - {rate: 2, for: 5}\n", ":3:");
    expect_error("sources: 127.0.0.300\n", ":1:");
    expect_error("attacker: {share: 2}\n", "share");
    expect_error("profile: {kind: spike, stages: [{rate: 1x, to: 2x, for: 1s}]}\n", "either rate");
}

Test(flood_config, urls_become_templates_and_checks)
{
    struct fl_config c;
    defaults(&c);
    char *err = NULL;
    c.urls = xcalloc(2, sizeof *c.urls);
    c.urls[0] = xstrdup("http://127.0.0.1:9/a");
    c.urls[1] = xstrdup("http://127.0.0.1:9/b?q=1");
    c.nurls = 2;
    cr_assert_eq(fl_config_finish(&c, &err), 0, "%s", err);
    cr_assert_eq(c.mix.n, 2);
    cr_assert_str_eq(c.mix.t[1].path, "/b?q=1");
    cr_assert(!c.open);
    cr_assert_eq(c.duration_ms, FL_DEFAULT_DURATION_MS);
    fl_config_free(&c);

    defaults(&c);
    c.urls = xcalloc(2, sizeof *c.urls);
    c.urls[0] = xstrdup("http://127.0.0.1:9/a");
    c.urls[1] = xstrdup("http://127.0.0.1:10/b");
    c.nurls = 2;
    cr_assert_eq(fl_config_finish(&c, &err), -1);
    free(err);
    fl_config_free(&c);

    defaults(&c);
    c.urls = xcalloc(1, sizeof *c.urls);
    c.urls[0] = xstrdup("https://127.0.0.1/");
    c.nurls = 1;
    cr_assert_eq(fl_config_finish(&c, &err), -1);
    cr_assert(strstr(err, "https"));
    free(err);
    fl_config_free(&c);
}
