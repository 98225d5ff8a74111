/* flood's YAML file (--config, see docs/flood.md): url, load settings,
 * templates with headers and bodies, profile, sources and the attacker
 * group, into struct fl_config before the flags override it. Every error
 * names the file, line and key. */
#include "flood/flood.h"

#include "core/config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"url", "connections", "threads", "duration", "timeout", "rate",
                                       "profile", "templates", "headers", "priority_header",
                                       "conn_per_request", "sources", "attacker", NULL};
static const char *const tpl_keys[] = {"name", "weight", "method", "path", "headers", "body", "priority", NULL};
static const char *const atk_keys[] = {"share", "sources", "rate", NULL};
static const char *const prof_keys[] = {"kind", "stages", NULL};
static const char *const stage_keys[] = {"rate", "from", "to", "for", NULL};

/* Appends a level ("2x" stays, a bare number becomes "N/s") to spec. */
static int level_text(const struct cfg_node *n, struct buf *spec, char **err)
{
    if (!n || n->type != CFG_SCALAR || cfg_is_null(n)) {
        *err = cfg_errorf(n, "expected a rate: a number of requests/s, N/s, or Nx (times rate)");
        return -1;
    }
    const char *s = n->str;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0) {
        *err = cfg_errorf(n, "expected a rate like 500, 500/s or 2x, not '%s'", s);
        return -1;
    }
    if (*end == '\0')
        buf_printf(spec, "%s/s", s);
    else
        buf_append_str(spec, s);
    return 0;
}

/* Headers as a mapping {Name: value} or a list of "Name: value". */
static int load_headers(const struct cfg_node *n, char ***arr, size_t *cnt, char **err)
{
    if (!n)
        return 0;
    if (n->type == CFG_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            const struct cfg_node *v = n->kids[i];
            if (v->type != CFG_SCALAR) {
                *err = cfg_errorf(v, "expected a header value, got %s", cfg_kind(v));
                return -1;
            }
            char *line = xasprintf("%s: %s", v->key, v->str ? v->str : "");
            *arr = xrealloc(*arr, (*cnt + 1) * sizeof **arr);
            (*arr)[(*cnt)++] = line;
        }
        return 0;
    }
    if (n->type == CFG_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            char *s = NULL;
            if (cfg_expect(n->kids[i], CFG_SCALAR, err) != 0 || cfg_string(n->kids[i], &s, err) != 0)
                return -1;
            if (!strchr(s, ':')) {
                *err = cfg_errorf(n->kids[i], "expected 'Name: value', not '%s'", s);
                free(s);
                return -1;
            }
            *arr = xrealloc(*arr, (*cnt + 1) * sizeof **arr);
            (*arr)[(*cnt)++] = s;
        }
        return 0;
    }
    *err = cfg_errorf(n, "expected a mapping of headers or a list of 'Name: value', got %s", cfg_kind(n));
    return -1;
}

/* profile: "spike:1x20s,..." or {kind: spike, stages: [{rate: 1x, for: 20s}, ...]}. */
static int load_profile(struct fl_config *cfg, const struct cfg_node *n, char **err)
{
    if (!n)
        return 0;
    if (n->type == CFG_SCALAR)
        return cfg_string(n, &cfg->profile_spec, err);
    if (cfg_expect(n, CFG_MAP, err) != 0 || cfg_check_keys(n, prof_keys, err) != 0)
        return -1;
    static const char *const kinds[] = {"constant", "ramp", "step", "spike", NULL};
    int kind = FL_PROF_STEP;
    if (cfg_enum(cfg_get(n, "kind"), kinds, &kind, err) != 0)
        return -1;
    const struct cfg_node *stages = cfg_require(n, "stages", err);
    if (!stages || cfg_expect(stages, CFG_SEQ, err) != 0)
        return -1;
    if (!stages->n) {
        *err = cfg_errorf(stages, "expected at least one stage");
        return -1;
    }
    struct buf spec;
    buf_init(&spec);
    buf_printf(&spec, "%s:", kind == FL_PROF_CONSTANT ? "step" : kinds[kind]);
    for (size_t i = 0; i < stages->n; i++) {
        const struct cfg_node *st = stages->kids[i];
        if (cfg_expect(st, CFG_MAP, err) != 0 || cfg_check_keys(st, stage_keys, err) != 0)
            goto fail;
        const struct cfg_node *rate = cfg_get(st, "rate"), *from = cfg_get(st, "from"), *to = cfg_get(st, "to");
        if (i)
            buf_append_str(&spec, ",");
        if (rate && !from && !to) {
            if (level_text(rate, &spec, err) != 0)
                goto fail;
        } else if (!rate && from && to) {
            if (level_text(from, &spec, err) != 0)
                goto fail;
            buf_append_str(&spec, "-");
            if (level_text(to, &spec, err) != 0)
                goto fail;
        } else {
            *err = cfg_errorf(st, "a stage has either rate, or from and to");
            goto fail;
        }
        const struct cfg_node *f = cfg_require(st, "for", err);
        uint64_t ms;
        if (!f || cfg_duration(f, 1, FL_MAX_DURATION_MS, &ms, err) != 0)
            goto fail;
        buf_printf(&spec, "%lums", (unsigned long)ms);
    }
    buf_append(&spec, "", 1);
    fl__set_str(&cfg->profile_spec, buf_rptr(&spec));
    buf_free(&spec);
    /* Check it now, so an error points at the file. */
    struct fl_profile p = {0};
    char *perr = NULL;
    double base = cfg->rate > 0 ? cfg->rate : 1;
    if (fl_profile_parse(cfg->profile_spec, base, &p, &perr) != 0) {
        *err = cfg_errorf(n, "%s", perr);
        free(perr);
        return -1;
    }
    fl_profile_free(&p);
    return 0;
fail:
    buf_free(&spec);
    return -1;
}

static int load_sources(const struct cfg_node *n, struct fl_sources *s, char **err)
{
    if (!n)
        return 0;
    const struct cfg_node *items[1] = {n};
    const struct cfg_node *const *list = items;
    size_t cnt = 1;
    if (n->type == CFG_SEQ) {
        list = (const struct cfg_node *const *)n->kids;
        cnt = n->n;
    }
    fl_sources_free(s);
    for (size_t i = 0; i < cnt; i++) {
        char *v = NULL, *perr = NULL;
        if (cfg_expect(list[i], CFG_SCALAR, err) != 0 || cfg_string(list[i], &v, err) != 0)
            return -1;
        int rc = fl_sources_parse(s, v, &perr);
        free(v);
        if (rc != 0) {
            *err = cfg_errorf(list[i], "%s", perr);
            free(perr);
            return -1;
        }
    }
    return 0;
}

/* A template's string fields, read in this order. */
enum { TS_METHOD, TS_PATH, TS_NAME, TS_BODY, TS_PRIO, TS_N };
static const char *const tpl_str_keys[TS_N] = {"method", "path", "name", "body", "priority"};

/* Adds the template at node t to cfg's mix. */
static int load_template(struct fl_config *cfg, const struct cfg_node *t, char **err)
{
    if (cfg_expect(t, CFG_MAP, err) != 0 || cfg_check_keys(t, tpl_keys, err) != 0)
        return -1;
    char *v[TS_N] = {[TS_METHOD] = xstrdup("GET")};
    double weight = 1;
    int rc = -1;
    for (int k = 0; k < TS_N; k++)
        if (cfg_string(cfg_get(t, tpl_str_keys[k]), &v[k], err) != 0)
            goto out;
    if (cfg_double(cfg_get(t, "weight"), 1e-9, 1e9, &weight, err) != 0)
        goto out;
    if (!v[TS_PATH]) {
        *err = cfg_errorf(t, "a template needs a path, e.g. path: /products");
        goto out;
    }
    if (v[TS_PATH][0] != '/') {
        *err = cfg_errorf(cfg_get(t, "path"), "the path must start with '/'");
        goto out;
    }
    struct fl_template *tp = fl_mix_add(&cfg->mix, v[TS_METHOD], v[TS_PATH], weight);
    tp->name = v[TS_NAME];
    tp->priority = v[TS_PRIO];
    v[TS_NAME] = v[TS_PRIO] = NULL;
    if (v[TS_BODY]) {
        tp->body_len = strlen(v[TS_BODY]);
        tp->body = v[TS_BODY];
        tp->has_body = true;
        v[TS_BODY] = NULL;
    }
    if (load_headers(cfg_get(t, "headers"), &tp->headers, &tp->nheaders, err) != 0)
        goto out;
    rc = 0;
out:
    for (int k = 0; k < TS_N; k++)
        free(v[k]);
    return rc;
}

static int load_templates(struct fl_config *cfg, const struct cfg_node *n, char **err)
{
    if (!n)
        return 0;
    if (cfg_expect(n, CFG_SEQ, err) != 0)
        return -1;
    if (n->n == 0 || n->n > FL_MAX_TEMPLATES) {
        *err = cfg_errorf(n, "expected 1 to %d templates", FL_MAX_TEMPLATES);
        return -1;
    }
    fl_mix_free(&cfg->mix);
    for (size_t i = 0; i < n->n; i++)
        if (load_template(cfg, n->kids[i], err) != 0)
            return -1;
    return 0;
}

int fl_config_load(struct fl_config *cfg, const char *path, char **err)
{
    struct cfg_doc *doc = NULL;
    if (cfg_load_file(path, &doc, err) != 0)
        return -1;
    const struct cfg_node *root = doc->root;
    int rc = -1;
    int64_t conns = cfg->conns, threads = cfg->threads;
    char *url = NULL;
    if (cfg_expect(root, CFG_MAP, err) != 0 || cfg_check_keys(root, top_keys, err) != 0)
        goto out;
    if (cfg_string(cfg_get(root, "url"), &url, err) != 0 ||
        cfg_int(cfg_get(root, "connections"), 1, FL_MAX_CONNS, &conns, err) != 0 ||
        cfg_int(cfg_get(root, "threads"), 1, FL_MAX_THREADS, &threads, err) != 0 ||
        cfg_duration(cfg_get(root, "duration"), 1, FL_MAX_DURATION_MS, &cfg->duration_ms, err) != 0 ||
        cfg_duration(cfg_get(root, "timeout"), 1, FL_MAX_DURATION_MS, &cfg->timeout_ms, err) != 0 ||
        cfg_double(cfg_get(root, "rate"), 0, FL_MAX_RATE, &cfg->rate, err) != 0 ||
        cfg_string(cfg_get(root, "priority_header"), &cfg->priority_header, err) != 0 ||
        cfg_bool(cfg_get(root, "conn_per_request"), &cfg->conn_per_request, err) != 0)
        goto out;
    if (cfg_get(root, "duration"))
        cfg->duration_set = true;
    cfg->conns = (int)conns;
    cfg->threads = (int)threads;
    if (url) {
        fl__free_strs(&cfg->urls, &cfg->nurls);
        fl__push_str(&cfg->urls, &cfg->nurls, url);
    }
    if (load_profile(cfg, cfg_get(root, "profile"), err) != 0 ||
        load_templates(cfg, cfg_get(root, "templates"), err) != 0 ||
        load_headers(cfg_get(root, "headers"), &cfg->headers, &cfg->nheaders, err) != 0 ||
        load_sources(cfg_get(root, "sources"), &cfg->sources, err) != 0)
        goto out;
    const struct cfg_node *atk = cfg_get(root, "attacker");
    if (atk) {
        if (cfg_expect(atk, CFG_MAP, err) != 0 || cfg_check_keys(atk, atk_keys, err) != 0 ||
            cfg_double(cfg_get(atk, "share"), 0, 0.9, &cfg->attacker_share, err) != 0 ||
            cfg_double(cfg_get(atk, "rate"), 0, FL_MAX_RATE, &cfg->attacker_rate, err) != 0 ||
            load_sources(cfg_get(atk, "sources"), &cfg->attacker_sources, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(url);
    cfg_doc_free(doc);
    return rc;
}
