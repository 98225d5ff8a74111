/* Unit tests for core/config.c and core/config_value.c: value syntax (durations, sizes, booleans),
 * the node tree and its lines, typed getters and their messages, and the
 * loader's limits and error reporting. */
#include <criterion/criterion.h>

#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct cfg_doc *load(const char *yaml)
{
    struct cfg_doc *d = NULL;
    char *err = NULL;
    int rc = cfg_load_string(yaml, strlen(yaml), "t.yaml", &d, &err);
    cr_assert_eq(rc, 0, "load failed: %s", err ? err : "(no message)");
    cr_assert_null(err);
    cr_assert_not_null(d);
    return d;
}

/* Loading must fail with a message starting with prefix. */
static void load_fails(const char *yaml, size_t len, const char *prefix)
{
    struct cfg_doc *d = (struct cfg_doc *)1;
    char *err = NULL;
    int rc = cfg_load_string(yaml, len, "t.yaml", &d, &err);
    cr_assert_eq(rc, -1, "expected failure for <%s>", yaml);
    cr_assert_null(d);
    cr_assert_not_null(err);
    cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "got '%s', want prefix '%s'", err, prefix);
    free(err);
}

static void starts_with(const char *err, const char *prefix)
{
    cr_assert_not_null(err);
    cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "got '%s', want prefix '%s'", err, prefix);
}

/* ---- durations -------------------------------------------------------- */

Test(config_duration, accepts_units)
{
    static const struct { const char *s; uint64_t ms; } ok[] = {
        {"0", 0},          {"0s", 0},         {"250ms", 250},      {"2s", 2000},
        {"1m", 60000},     {"1h", 3600000},   {"1d", 86400000},    {"1m30s", 90000},
        {"1s500ms", 1500}, {"90s", 90000},    {"1h1m1s1ms", 3661001},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        cr_assert_eq(cfg_parse_duration(ok[i].s, &v), 0, "'%s' rejected", ok[i].s);
        cr_assert_eq(v, ok[i].ms, "'%s' -> %llu", ok[i].s, (unsigned long long)v);
    }
}

Test(config_duration, rejects_bad_syntax)
{
    static const char *const bad[] = {
        "", "5", "500", "s", "ms", "2 s", " 2s", "2s ", "1.5s", "-1s", "+1s", "2S", "2sec",
        "2x", "1m30", "2ss", "18446744073709551615s", "99999999999999999999ms", "0x10s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        cr_assert_eq(cfg_parse_duration(bad[i], &v), -1, "'%s' accepted", bad[i]);
        cr_assert_eq(v, 7, "'%s' changed the output", bad[i]);
    }
}

Test(config_duration, formats_shortest)
{
    char b[32];
    cfg_format_duration(0, b, sizeof b);
    cr_assert_str_eq(b, "0");
    cfg_format_duration(250, b, sizeof b);
    cr_assert_str_eq(b, "250ms");
    cfg_format_duration(90000, b, sizeof b);
    cr_assert_str_eq(b, "90s");
    cfg_format_duration(3600000, b, sizeof b);
    cr_assert_str_eq(b, "1h");
    cfg_format_duration(86400000, b, sizeof b);
    cr_assert_str_eq(b, "1d");
}

/* ---- sizes ------------------------------------------------------------ */

Test(config_size, accepts_binary_units)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        {"0", 0},       {"512", 512},          {"512b", 512},          {"16k", 16384},
        {"16K", 16384}, {"16kb", 16384},       {"16KiB", 16384},       {"1m", 1 << 20},
        {"1M", 1 << 20}, {"1g", 1ull << 30},   {"1t", 1ull << 40},     {"32k", 32768},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        cr_assert_eq(cfg_parse_size(ok[i].s, &v), 0, "'%s' rejected", ok[i].s);
        cr_assert_eq(v, ok[i].v, "'%s' -> %llu", ok[i].s, (unsigned long long)v);
    }
}

Test(config_size, rejects_bad_syntax)
{
    static const char *const bad[] = {
        "", "k", "1.5k", "-1", "+1", "1q", "16kk", "16 k", "16ki", "1kib2", "1e3",
        "17179869184g", "99999999999999999999", "0x10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        cr_assert_eq(cfg_parse_size(bad[i], &v), -1, "'%s' accepted", bad[i]);
        cr_assert_eq(v, 7);
    }
}

Test(config_size, formats_shortest)
{
    char b[32];
    cfg_format_size(16384, b, sizeof b);
    cr_assert_str_eq(b, "16k");
    cfg_format_size(1000, b, sizeof b);
    cr_assert_str_eq(b, "1000");
    cfg_format_size(1ull << 30, b, sizeof b);
    cr_assert_str_eq(b, "1g");
    cfg_format_size(0, b, sizeof b);
    cr_assert_str_eq(b, "0");
}

/* ---- booleans --------------------------------------------------------- */

Test(config_bool, words)
{
    static const char *const t[] = {"true", "True", "yes", "YES", "on", "On"};
    static const char *const f[] = {"false", "FALSE", "no", "No", "off", "OFF"};
    bool b;
    for (size_t i = 0; i < 6; i++) {
        b = false;
        cr_assert_eq(cfg_parse_bool(t[i], &b), 0);
        cr_assert(b, "%s", t[i]);
        b = true;
        cr_assert_eq(cfg_parse_bool(f[i], &b), 0);
        cr_assert(!b, "%s", f[i]);
    }
    cr_assert_eq(cfg_parse_bool("1", &b), -1);
    cr_assert_eq(cfg_parse_bool("", &b), -1);
    cr_assert_eq(cfg_parse_bool("maybe", &b), -1);
}

/* ---- the tree --------------------------------------------------------- */

Test(config_tree, structure_and_lines)
{
    struct cfg_doc *d = load("# comment\n"
                             "name: gw\n"                   /* 2 */
                             "quoted: \"\"\n"               /* 3 */
                             "empty:\n"                     /* 4 */
                             "list:\n"                      /* 5 */
                             "  - a\n"                      /* 6 */
                             "  - { k: v, n: 2 }\n"         /* 7 */
                             "  -\n"                        /* 8 */
                             "    deep:\n"                  /* 9 */
                             "      deeper: [x, y]\n");     /* 10 */
    const struct cfg_node *r = d->root;
    cr_assert_eq(r->type, CFG_MAP);
    cr_assert_eq(r->n, 4);
    cr_assert_str_eq(d->name, "t.yaml");

    const struct cfg_node *name = cfg_get(r, "name");
    cr_assert_not_null(name);
    cr_assert_eq(name->type, CFG_SCALAR);
    cr_assert_str_eq(name->str, "gw");
    cr_assert_eq(name->line, 2);
    cr_assert(name->plain);

    const struct cfg_node *q = cfg_get(r, "quoted");
    cr_assert_eq(q->len, 0);
    cr_assert(!q->plain);
    cr_assert(!cfg_is_null(q), "a quoted empty string is a value");
    cr_assert(cfg_is_null(cfg_get(r, "empty")));
    cr_assert_eq(cfg_get(r, "empty")->line, 4);

    const struct cfg_node *l = cfg_get(r, "list");
    cr_assert_eq(l->type, CFG_SEQ);
    cr_assert_eq(l->n, 3);
    cr_assert_eq(l->line, 5);
    cr_assert_eq(l->kids[0]->line, 6);
    cr_assert_null(l->kids[0]->key);
    cr_assert_eq(l->kids[1]->type, CFG_MAP);
    cr_assert_eq(l->kids[1]->line, 7);
    cr_assert_str_eq(cfg_get(l->kids[1], "k")->str, "v");
    cr_assert_str_eq(cfg_get(l->kids[1], "n")->str, "2");
    cr_assert_null(cfg_get(l->kids[1], "v"));
    cr_assert_eq(l->kids[2]->line, 9);

    const struct cfg_node *y = cfg_get(cfg_get(l->kids[2], "deep"), "deeper")->kids[1];
    cr_assert_str_eq(y->str, "y");
    cr_assert_eq(y->line, 10);
    char *path = cfg_path(y);
    cr_assert_str_eq(path, "list[2].deep.deeper[1]");
    free(path);
    path = cfg_path(r);
    cr_assert_str_eq(path, "");
    free(path);

    char *msg = cfg_errorf(y, "bad %s", "thing");
    cr_assert_str_eq(msg, "t.yaml:10: list[2].deep.deeper[1]: bad thing");
    free(msg);
    msg = cfg_errorf(r, "top");
    cr_assert_str_eq(msg, "t.yaml:2: top");
    free(msg);

    cr_assert_null(cfg_get(r, "missing"));
    cr_assert_null(cfg_get(NULL, "name"));
    cr_assert_null(cfg_get(name, "x"), "a scalar has no keys");
    cfg_doc_free(d);
}

Test(config_tree, scalar_and_list_roots)
{
    struct cfg_doc *d = load("hello\n");
    cr_assert_eq(d->root->type, CFG_SCALAR);
    cr_assert_str_eq(d->root->str, "hello");
    cfg_doc_free(d);
    d = load("- 1\n- 2\n");
    cr_assert_eq(d->root->type, CFG_SEQ);
    cr_assert_eq(d->root->n, 2);
    cfg_doc_free(d);
}

Test(config_tree, anchors_ignored)
{
    struct cfg_doc *d = load("a: &x 1\nb: 2\n");
    cr_assert_str_eq(cfg_get(d->root, "a")->str, "1");
    cfg_doc_free(d);
}

/* ---- loader errors ---------------------------------------------------- */

Test(config_errors, malformed_yaml_has_line)
{
    const char *y = "a: 1\nb: [1, 2\nc: 3\n";
    load_fails(y, strlen(y), "t.yaml:3: malformed YAML: did not find expected ',' or ']'");
    y = "a: 1\nb:\n  - x\n   bad: y\n";
    load_fails(y, strlen(y), "t.yaml:4: malformed YAML:");
    y = "a: 1\n\tb: 2\n";
    load_fails(y, strlen(y), "t.yaml:2: malformed YAML: found a tab character that violates indentation");
    y = "a: \"open\n";
    load_fails(y, strlen(y), "t.yaml:2: malformed YAML:");
}

Test(config_errors, invalid_utf8_has_line)
{
    const char y[] = "a: 1\nb: \xc3\x28\n";
    load_fails(y, sizeof y - 1, "t.yaml:2: malformed YAML:");
}

Test(config_errors, empty_inputs)
{
    load_fails("", 0, "t.yaml:1: empty document");
    load_fails("# nothing\n\n", 11, "t.yaml:1: empty document");
    load_fails("---\n", 4, "t.yaml:1: empty document");
    load_fails("\n\n---\n~\n", 8, "t.yaml:3: empty document");
}

Test(config_errors, duplicate_key)
{
    const char *y = "a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n";
    load_fails(y, strlen(y), "t.yaml:5: b.x: duplicate key (first defined at line 3)");
    y = "a: 1\nb: 2\na: 3\nb: 4\n";
    load_fails(y, strlen(y), "t.yaml:3: a: duplicate key (first defined at line 1)");
}

Test(config_errors, unsupported_features)
{
    const char *y = "a: &x 1\nb: *x\n";
    load_fails(y, strlen(y), "t.yaml:2: b: aliases (*x) are not supported");
    y = "a: 1\n---\nb: 2\n";
    load_fails(y, strlen(y), "t.yaml:2: only one YAML document is allowed");
    y = "m:\n  [a, b]: 1\n";
    load_fails(y, strlen(y), "t.yaml:2: m: keys must be plain values, not collections");
    y = "a: 1\n\"b\\0c\": 2\n";
    load_fails(y, strlen(y), "t.yaml:2: key with a NUL byte");
}

static char *nested(int levels)
{
    size_t len = (size_t)levels * 2 + 8;
    char *s = calloc(1, len);
    strcpy(s, "a: ");
    for (int i = 1; i < levels; i++) /* the root mapping is level 1 */
        strcat(s, "[");
    for (int i = 1; i < levels; i++)
        strcat(s, "]");
    strcat(s, "\n");
    return s;
}

Test(config_errors, nesting_limit)
{
    char *ok = nested(CFG_MAX_DEPTH);
    struct cfg_doc *d = load(ok);
    cfg_doc_free(d);
    free(ok);

    char *bad = nested(CFG_MAX_DEPTH + 1);
    load_fails(bad, strlen(bad), "t.yaml:1: a[0]");
    char *err = NULL;
    cr_assert_eq(cfg_load_string(bad, strlen(bad), "t.yaml", &d, &err), -1);
    cr_assert(strstr(err, "nesting deeper than 64 levels"), "%s", err);
    free(err);
    free(bad);
}

Test(config_errors, size_limit)
{
    size_t n = CFG_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, '#', n);
    big[n - 1] = '\n';
    load_fails(big, n, "t.yaml: too large");
    /* Exactly at the limit is accepted by the size check (and then is
     * only a comment, so it is empty). */
    load_fails(big, CFG_MAX_BYTES, "t.yaml:1: empty document");
    free(big);
}

/* ---- files ------------------------------------------------------------ */

static char *write_tmp(const char *content, size_t len)
{
    char *path = strdup("/tmp/fg_cfg_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(config_file, loads_and_names_file)
{
    char *path = write_tmp("a: 1\nb: x\n", 10);
    struct cfg_doc *d = NULL;
    char *err = NULL;
    cr_assert_eq(cfg_load_file(path, &d, &err), 0, "%s", err);
    cr_assert_str_eq(d->name, path);
    char *msg = cfg_errorf(cfg_get(d->root, "b"), "oops");
    char *want = NULL;
    cr_assert(asprintf(&want, "%s:2: b: oops", path) > 0);
    cr_assert_str_eq(msg, want);
    free(want);
    free(msg);
    cfg_doc_free(d);
    unlink(path);
    free(path);
}

Test(config_file, missing_and_too_large)
{
    struct cfg_doc *d = NULL;
    char *err = NULL;
    cr_assert_eq(cfg_load_file("/nonexistent/gw.yaml", &d, &err), -1);
    starts_with(err, "/nonexistent/gw.yaml: cannot open: No such file");
    free(err);

    size_t n = CFG_MAX_BYTES + 10;
    char *big = malloc(n);
    memset(big, '#', n);
    char *path = write_tmp(big, n);
    err = NULL;
    cr_assert_eq(cfg_load_file(path, &d, &err), -1);
    cr_assert_null(d);
    cr_assert(strstr(err, "too large"), "%s", err);
    free(err);
    unlink(path);
    free(path);
    free(big);
}

/* ---- getters ---------------------------------------------------------- */

static struct cfg_doc *getter_doc(void)
{
    return load("d: 2s\n"          /* 1 */
                "bare: 5\n"        /* 2 */
                "sz: 16k\n"        /* 3 */
                "i: 42\n"          /* 4 */
                "neg: -3\n"        /* 5 */
                "f: 1.25\n"        /* 6 */
                "b: yes\n"         /* 7 */
                "s: hello\n"       /* 8 */
                "e: Least_Conn\n"  /* 9 */
                "m: {x: 1}\n"      /* 10 */
                "nul:\n"           /* 11 */
                "typo: round_robbin\n" /* 12 */
                "huge: 99999999999999999999\n" /* 13 */
                "nan: nan\n");     /* 14 */
}

Test(config_getters, absent_keeps_default)
{
    struct cfg_doc *d = getter_doc();
    char *err = NULL;
    uint64_t u = 77;
    int64_t i = -5;
    double f = 0.5;
    bool b = true;
    char *s = NULL;
    int e = 3;
    const struct cfg_node *none = cfg_get(d->root, "absent");
    cr_assert_eq(cfg_duration(none, 0, 1000, &u, &err), 0);
    cr_assert_eq(cfg_size(none, 0, 1000, &u, &err), 0);
    cr_assert_eq(u, 77);
    cr_assert_eq(cfg_int(none, 0, 10, &i, &err), 0);
    cr_assert_eq(i, -5);
    cr_assert_eq(cfg_double(none, 0, 1, &f, &err), 0);
    cr_assert_eq(cfg_bool(none, &b, &err), 0);
    cr_assert(b);
    cr_assert_eq(cfg_string(none, &s, &err), 0);
    cr_assert_null(s);
    static const char *const names[] = {"a", NULL};
    cr_assert_eq(cfg_enum(none, names, &e, &err), 0);
    cr_assert_eq(e, 3);
    cr_assert_null(err);
    cfg_doc_free(d);
}

Test(config_getters, values)
{
    struct cfg_doc *d = getter_doc();
    const struct cfg_node *r = d->root;
    char *err = NULL;
    uint64_t u = 0;
    cr_assert_eq(cfg_duration(cfg_get(r, "d"), 0, 10000, &u, &err), 0);
    cr_assert_eq(u, 2000);
    cr_assert_eq(cfg_size(cfg_get(r, "sz"), 0, 1 << 20, &u, &err), 0);
    cr_assert_eq(u, 16384);
    int64_t i = 0;
    cr_assert_eq(cfg_int(cfg_get(r, "i"), 0, 100, &i, &err), 0);
    cr_assert_eq(i, 42);
    cr_assert_eq(cfg_int(cfg_get(r, "neg"), -10, 10, &i, &err), 0);
    cr_assert_eq(i, -3);
    double f = 0;
    cr_assert_eq(cfg_double(cfg_get(r, "f"), 0, 10, &f, &err), 0);
    cr_assert_float_eq(f, 1.25, 1e-12);
    bool b = false;
    cr_assert_eq(cfg_bool(cfg_get(r, "b"), &b, &err), 0);
    cr_assert(b);
    char *s = strdup("old");
    cr_assert_eq(cfg_string(cfg_get(r, "s"), &s, &err), 0);
    cr_assert_str_eq(s, "hello");
    free(s);
    static const char *const algos[] = {"round_robin", "weighted", "least_conn", NULL};
    int e = -1;
    cr_assert_eq(cfg_enum(cfg_get(r, "e"), algos, &e, &err), 0);
    cr_assert_eq(e, 2);
    cr_assert_null(err);
    cfg_doc_free(d);
}

Test(config_getters, errors_name_line_and_key)
{
    struct cfg_doc *d = getter_doc();
    const struct cfg_node *r = d->root;
    char *err = NULL;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    char *s = NULL;
    int e = 0;
    static const char *const algos[] = {"round_robin", "weighted", "least_conn", NULL};

#define EXPECT(call, msg)                      \
    do {                                       \
        err = NULL;                            \
        cr_assert_eq((call), -1, "%s", #call); \
        cr_assert_str_eq(err, msg);            \
        free(err);                             \
    } while (0)

    EXPECT(cfg_duration(cfg_get(r, "bare"), 0, 10000, &u, &err),
           "t.yaml:2: bare: expected a duration like 500ms, 2s or 1m, not '5' (a unit is required)");
    EXPECT(cfg_duration(cfg_get(r, "s"), 0, 10000, &u, &err),
           "t.yaml:8: s: expected a duration like 500ms, 2s or 1m, not 'hello'");
    EXPECT(cfg_duration(cfg_get(r, "d"), 5000, 60000, &u, &err),
           "t.yaml:1: d: '2s' is out of range: must be between 5s and 1m");
    EXPECT(cfg_duration(cfg_get(r, "m"), 0, 1, &u, &err),
           "t.yaml:10: m: expected a duration like 500ms, 2s or 1m, got a mapping");
    EXPECT(cfg_duration(cfg_get(r, "nul"), 0, 1, &u, &err),
           "t.yaml:11: nul: expected a duration like 500ms, 2s or 1m, got nothing");
    EXPECT(cfg_size(cfg_get(r, "sz"), 0, 1024, &u, &err),
           "t.yaml:3: sz: '16k' is out of range: must be between 0 and 1k");
    EXPECT(cfg_size(cfg_get(r, "f"), 0, 1024, &u, &err),
           "t.yaml:6: f: expected a size like 512, 16k, 1m or 1g, not '1.25'");
    EXPECT(cfg_int(cfg_get(r, "i"), 0, 10, &i, &err), "t.yaml:4: i: '42' is out of range: must be between 0 and 10");
    EXPECT(cfg_int(cfg_get(r, "i"), 100, INT64_MAX, &i, &err),
           "t.yaml:4: i: '42' is out of range: must be at least 100");
    EXPECT(cfg_int(cfg_get(r, "f"), 0, 10, &i, &err), "t.yaml:6: f: expected an integer, not '1.25'");
    EXPECT(cfg_int(cfg_get(r, "huge"), 0, INT64_MAX, &i, &err),
           "t.yaml:13: huge: '99999999999999999999' is out of range: must be at least 0");
    EXPECT(cfg_double(cfg_get(r, "f"), 2, 10, &f, &err), "t.yaml:6: f: '1.25' is out of range: must be between 2 and 10");
    EXPECT(cfg_double(cfg_get(r, "nan"), 0, 10, &f, &err), "t.yaml:14: nan: expected a number, not 'nan'");
    EXPECT(cfg_bool(cfg_get(r, "i"), &b, &err), "t.yaml:4: i: expected true or false (or yes/no, on/off), not '42'");
    EXPECT(cfg_string(cfg_get(r, "m"), &s, &err), "t.yaml:10: m: expected a string, got a mapping");
    EXPECT(cfg_enum(cfg_get(r, "typo"), algos, &e, &err),
           "t.yaml:12: typo: unknown value 'round_robbin'; did you mean 'round_robin'? "
           "(expected one of: round_robin, weighted, least_conn)");
    EXPECT(cfg_enum(cfg_get(r, "s"), algos, &e, &err),
           "t.yaml:8: s: unknown value 'hello' (expected one of: round_robin, weighted, least_conn)");
    EXPECT(cfg_expect(cfg_get(r, "m"), CFG_SEQ, &err), "t.yaml:10: m: expected a list, got a mapping");
    cr_assert_null(s);
    cr_assert_eq(u, 0);
    cr_assert_eq(i, 0);
#undef EXPECT
    cfg_doc_free(d);
}

Test(config_getters, nul_byte_rejected)
{
    struct cfg_doc *d = load("s: \"a\\0b\"\n");
    const struct cfg_node *n = cfg_get(d->root, "s");
    cr_assert_eq(n->len, 3);
    char *s = NULL, *err = NULL;
    cr_assert_eq(cfg_string(n, &s, &err), -1);
    starts_with(err, "t.yaml:1: s: expected a string, got a value with a NUL byte");
    free(err);
    cfg_doc_free(d);
}

Test(config_keys, unknown_key_suggests)
{
    struct cfg_doc *d = load("health:\n"
                             "  path: /h\n"
                             "  intreval: 2s\n"
                             "  xyzzy: 1\n");
    static const char *const keys[] = {"path", "interval", "timeout", NULL};
    const struct cfg_node *h = cfg_get(d->root, "health");
    char *err = NULL;
    cr_assert_eq(cfg_check_keys(h, keys, &err), -1);
    cr_assert_str_eq(err, "t.yaml:3: health.intreval: unknown key; did you mean 'interval'? "
                          "(valid keys: path, interval, timeout)");
    free(err);

    static const char *const keys2[] = {"path", "interval", "intreval", NULL};
    err = NULL;
    cr_assert_eq(cfg_check_keys(h, keys2, &err), -1);
    cr_assert_str_eq(err, "t.yaml:4: health.xyzzy: unknown key (valid keys: path, interval, intreval)");
    free(err);

    static const char *const all[] = {"path", "intreval", "xyzzy", NULL};
    cr_assert_eq(cfg_check_keys(h, all, &err), 0);
    cr_assert_eq(cfg_check_keys(NULL, all, &err), 0);
    cfg_doc_free(d);
}

Test(config_keys, require_and_suggest)
{
    struct cfg_doc *d = load("top: 1\nsvc:\n  a: 1\n");
    char *err = NULL;
    const struct cfg_node *svc = cfg_get(d->root, "svc");
    cr_assert_not_null(cfg_require(svc, "a", &err));
    cr_assert_null(cfg_require(svc, "name", &err));
    cr_assert_str_eq(err, "t.yaml:2: svc: missing required key 'name'");
    free(err);
    err = NULL;
    cr_assert_null(cfg_require(d->root, "services", &err));
    cr_assert_str_eq(err, "t.yaml:1: missing required key 'services'");
    free(err);
    cfg_doc_free(d);

    static const char *const c[] = {"auth", "orders", "payments"};
    cr_assert_str_eq(cfg_suggest("auht", c, 3), "auth");
    cr_assert_str_eq(cfg_suggest("order", c, 3), "orders");
    cr_assert_str_eq(cfg_suggest("pay", c, 3), "payments");
    cr_assert_null(cfg_suggest("zzz", c, 3));
    cr_assert_null(cfg_suggest("or", c, 3));
    cr_assert_null(cfg_suggest("x", c, 0));
}
