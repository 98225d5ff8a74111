/* YAML configuration loading (see config.h). libyaml's event parser feeds
 * a recursive builder that stops as soon as the input breaks one of our
 * rules (alias, non-scalar key, nesting, duplicate key), so a hostile file
 * costs at most one pass over CFG_MAX_BYTES. Node paths are not stored:
 * they are rebuilt from the parent links only when a message needs one.
 * Value syntax and the typed getters are in config_value.c. */
#include "core/config.h"
#include "core/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ---- nodes ------------------------------------------------------------ */

static void node_free(struct cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->key);
    free(n->str);
    free(n);
}

void cfg_doc_free(struct cfg_doc *d)
{
    if (!d)
        return;
    node_free(d->root);
    free(d->name);
    free(d);
}

static void node_append(struct cfg_node *parent, struct cfg_node *kid)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 4;
        parent->kids = xrealloc(parent->kids, parent->cap * sizeof *parent->kids);
    }
    kid->parent = parent;
    kid->idx = parent->n;
    parent->kids[parent->n++] = kid;
}

/* Appends the path of n to out (bounded, truncating long keys). Recursion
 * depth is bounded by CFG_MAX_DEPTH. */
static void path_build(const struct cfg_node *n, char *out, size_t cap, size_t *len)
{
    if (!n || !n->parent)
        return;
    path_build(n->parent, out, cap, len);
    if (*len >= cap)
        return;
    int w;
    if (n->key)
        w = snprintf(out + *len, cap - *len, "%s%.64s%s", *len ? "." : "", n->key,
                     strlen(n->key) > 64 ? "..." : "");
    else
        w = snprintf(out + *len, cap - *len, "[%zu]", n->idx);
    if (w > 0)
        *len = FG_MIN(cap - 1, *len + (size_t)w);
}

char *cfg_path(const struct cfg_node *n)
{
    char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    path_build(n, buf, sizeof buf, &len);
    return xstrdup(buf);
}

static char *verrorf(const struct cfg_node *n, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char *path = cfg_path(n);
    char *s = path[0] ? xasprintf("%s:%d: %s: %s", n->file, n->line, path, msg)
                      : xasprintf("%s:%d: %s", n->file, n->line, msg);
    free(path);
    return s;
}

char *cfg_errorf(const struct cfg_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = verrorf(n, fmt, ap);
    va_end(ap);
    return s;
}

/* See config_int.h. */
int cfg__fail(char **err, const struct cfg_node *n, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        *err = verrorf(n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

bool cfg_is_null(const struct cfg_node *n)
{
    if (!n || n->type != CFG_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *cfg_kind(const struct cfg_node *n)
{
    switch (n->type) {
    case CFG_MAP: return "a mapping";
    case CFG_SEQ: return "a list";
    case CFG_SCALAR: break;
    }
    return cfg_is_null(n) ? "nothing" : "a value";
}

/* ---- parsing ---------------------------------------------------------- */

struct cfg_parser {
    yaml_parser_t yp;
    struct cfg_doc *doc;
    const char *buf;
    size_t len;
    char *err;
};

/* 1-based line of a byte offset, for reader errors that carry no mark. */
static int line_of_offset(const struct cfg_parser *p, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off && i < p->len; i++)
        line += p->buf[i] == '\n';
    return line;
}

static void set_yaml_error(struct cfg_parser *p)
{
    const yaml_parser_t *y = &p->yp;
    const char *name = p->doc->name;
    if (y->error == YAML_MEMORY_ERROR) {
        p->err = xasprintf("%s: out of memory while parsing YAML", name);
        return;
    }
    const char *problem = y->problem ? y->problem : "unknown error";
    if (y->error == YAML_READER_ERROR) {
        p->err = xasprintf("%s:%d: malformed YAML: %s", name, line_of_offset(p, y->problem_offset), problem);
        return;
    }
    int line = (int)y->problem_mark.line + 1;
    if (y->context && y->context_mark.line != y->problem_mark.line)
        p->err = xasprintf("%s:%d: malformed YAML: %s (%s at line %d)", name, line, problem, y->context,
                           (int)y->context_mark.line + 1);
    else if (y->context)
        p->err = xasprintf("%s:%d: malformed YAML: %s (%s)", name, line, problem, y->context);
    else
        p->err = xasprintf("%s:%d: malformed YAML: %s", name, line, problem);
}

static int next_event(struct cfg_parser *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->yp, ev)) {
        set_yaml_error(p);
        return -1;
    }
    return 0;
}

static struct cfg_node *node_new(struct cfg_parser *p, enum cfg_type t, struct cfg_node *parent, char *key, int line)
{
    struct cfg_node *n = xcalloc(1, sizeof *n);
    n->type = t;
    n->line = line;
    n->file = p->doc->name;
    n->key = key;
    if (parent)
        node_append(parent, n);
    else
        p->doc->root = n;
    return n;
}

static int cmp_key_index(const void *a, const void *b, void *arg)
{
    const struct cfg_node *m = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(m->kids[i]->key, m->kids[j]->key);
    return c ? c : (i < j ? -1 : i > j);
}

/* Duplicate keys: sort indices by (key, position) so equal keys are
 * adjacent, then report the earliest second occurrence in the document.
 * O(n log n), so a file with a huge mapping cannot stall the loader. */
static int check_duplicates(struct cfg_parser *p, struct cfg_node *m)
{
    if (m->n < 2)
        return 0;
    size_t *ix = xmalloc(m->n * sizeof *ix);
    for (size_t i = 0; i < m->n; i++)
        ix[i] = i;
    qsort_r(ix, m->n, sizeof *ix, cmp_key_index, m);
    size_t dup = SIZE_MAX, first = 0, run = 0;
    for (size_t i = 1; i < m->n; i++) {
        if (strcmp(m->kids[ix[i]]->key, m->kids[ix[i - 1]]->key) != 0) {
            run = i;
            continue;
        }
        if (ix[i] < dup) {
            dup = ix[i];
            first = ix[run];
        }
    }
    free(ix);
    if (dup == SIZE_MAX)
        return 0;
    return cfg__fail(&p->err, m->kids[dup], "duplicate key (first defined at line %d)", m->kids[first]->line);
}

/* Builds the node that starts with *ev (which this function consumes and
 * deletes) under parent, or as the root. key (owned, may be NULL) and
 * key_line describe the mapping entry the node is the value of. */
static int parse_node(struct cfg_parser *p, yaml_event_t *ev, struct cfg_node *parent, char *key, int key_line,
                      int depth)
{
    int line = key ? key_line : (int)ev->start_mark.line + 1;
    struct cfg_node *n;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = node_new(p, CFG_SCALAR, parent, key, line);
        n->len = ev->data.scalar.length;
        n->str = xstrndup((const char *)ev->data.scalar.value, n->len);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        yaml_event_delete(ev);
        return 0;

    case YAML_ALIAS_EVENT:
        n = node_new(p, CFG_SCALAR, parent, key, line);
        n->str = xstrdup("");
        p->err = cfg_errorf(n, "aliases (*%s) are not supported", (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return -1;

    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        break;

    default:
        free(key);
        p->err = xasprintf("%s:%d: malformed YAML: unexpected event", p->doc->name, line);
        yaml_event_delete(ev);
        return -1;
    }

    bool is_map = ev->type == YAML_MAPPING_START_EVENT;
    n = node_new(p, is_map ? CFG_MAP : CFG_SEQ, parent, key, line);
    yaml_event_delete(ev);
    if (depth > CFG_MAX_DEPTH)
        return cfg__fail(&p->err, n, "nesting deeper than %d levels", CFG_MAX_DEPTH);

    yaml_event_t e;
    for (;;) {
        if (next_event(p, &e) < 0)
            return -1;
        if (e.type == (is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&e);
            break;
        }
        if (!is_map) {
            if (parse_node(p, &e, n, NULL, 0, depth + 1) < 0)
                return -1;
            continue;
        }
        int kline = (int)e.start_mark.line + 1;
        if (e.type != YAML_SCALAR_EVENT) {
            char *path = cfg_path(n);
            p->err = xasprintf("%s:%d: %s%skeys must be plain values, not %s", p->doc->name, kline, path,
                               path[0] ? ": " : "", e.type == YAML_ALIAS_EVENT ? "aliases" : "collections");
            free(path);
            yaml_event_delete(&e);
            return -1;
        }
        char *k = xstrndup((const char *)e.data.scalar.value, e.data.scalar.length);
        bool has_nul = strlen(k) != e.data.scalar.length;
        yaml_event_delete(&e);
        if (has_nul) {
            char *path = cfg_path(n);
            p->err = xasprintf("%s:%d: %s%skey with a NUL byte", p->doc->name, kline, path, path[0] ? ": " : "");
            free(path);
            free(k);
            return -1;
        }
        if (next_event(p, &e) < 0) {
            free(k);
            return -1;
        }
        if (parse_node(p, &e, n, k, kline, depth + 1) < 0)
            return -1;
    }
    return is_map ? check_duplicates(p, n) : 0;
}

int cfg_load_string(const char *yaml, size_t len, const char *name, struct cfg_doc **out, char **err)
{
    *out = NULL;
    if (len > CFG_MAX_BYTES) {
        *err = xasprintf("%s: too large (%zu bytes, the limit is %u MiB)", name, len, CFG_MAX_BYTES >> 20);
        return -1;
    }
    struct cfg_parser p = {.buf = yaml, .len = len};
    p.doc = xcalloc(1, sizeof *p.doc);
    p.doc->name = xstrdup(name);
    if (!yaml_parser_initialize(&p.yp)) {
        cfg_doc_free(p.doc);
        *err = xasprintf("%s: cannot initialize the YAML parser", name);
        return -1;
    }
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)yaml, len);

    /* stream-start, then document-start or stream-end (empty input). */
    yaml_event_t e;
    int rc = -1;
    if (next_event(&p, &e) < 0)
        goto done;
    yaml_event_delete(&e);
    if (next_event(&p, &e) < 0)
        goto done;
    if (e.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&e);
        p.err = xasprintf("%s:1: empty document: no configuration found", name);
        goto done;
    }
    int doc_line = (int)e.start_mark.line + 1;
    yaml_event_delete(&e);
    if (next_event(&p, &e) < 0 || parse_node(&p, &e, NULL, NULL, 0, 1) < 0)
        goto done;
    if (cfg_is_null(p.doc->root)) { /* "---" alone, or "~" */
        p.err = xasprintf("%s:%d: empty document: no configuration found", name, doc_line);
        goto done;
    }
    if (next_event(&p, &e) < 0) /* document-end */
        goto done;
    yaml_event_delete(&e);
    if (next_event(&p, &e) < 0)
        goto done;
    if (e.type != YAML_STREAM_END_EVENT) {
        p.err = xasprintf("%s:%d: only one YAML document is allowed", name, (int)e.start_mark.line + 1);
        yaml_event_delete(&e);
        goto done;
    }
    yaml_event_delete(&e);
    rc = 0;

done:
    yaml_parser_delete(&p.yp);
    if (rc < 0) {
        cfg_doc_free(p.doc);
        *err = p.err ? p.err : xasprintf("%s: malformed YAML", name);
        return -1;
    }
    *out = p.doc;
    return 0;
}

int cfg_load_file(const char *path, struct cfg_doc **out, char **err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = xasprintf("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* Read at most one byte past the limit: enough to know it is too big,
     * whatever kind of file this is. */
    size_t cap = 64 * 1024, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap > CFG_MAX_BYTES)
                break;
            cap = FG_MIN(cap * 2, (size_t)CFG_MAX_BYTES + 1);
            buf = xrealloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err) {
        free(buf);
        *err = xasprintf("%s: read error", path);
        return -1;
    }
    if (len > CFG_MAX_BYTES) {
        free(buf);
        *err = xasprintf("%s: too large (more than %u MiB)", path, CFG_MAX_BYTES >> 20);
        return -1;
    }
    int rc = cfg_load_string(buf, len, path, out, err);
    free(buf);
    return rc;
}

/* ---- lookups ---------------------------------------------------------- */

const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key)
{
    if (!map || map->type != CFG_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->kids[i]->key, key) == 0)
            return map->kids[i];
    return NULL;
}

const struct cfg_node *cfg_require(const struct cfg_node *map, const char *key, char **err)
{
    ASSERT(map);
    const struct cfg_node *n = cfg_get(map, key);
    if (!n)
        cfg__fail(err, map, "missing required key '%s'", key);
    return n;
}

int cfg_expect(const struct cfg_node *n, enum cfg_type t, char **err)
{
    if (n->type == t)
        return 0;
    static const char *const want[] = {[CFG_SCALAR] = "a value", [CFG_MAP] = "a mapping", [CFG_SEQ] = "a list"};
    return cfg__fail(err, n, "expected %s, got %s", want[t], cfg_kind(n));
}

/* Edit distance, capped: inputs are truncated to 32 bytes, which is plenty
 * for key names. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = FG_MIN(strlen(a), 32), lb = FG_MIN(strlen(b), 32);
    size_t row[33], prev;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            row[j] = FG_MIN(FG_MIN(row[j] + 1, row[j - 1] + 1), sub);
            prev = cur;
        }
    }
    return row[lb];
}

const char *cfg_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* Two edits for ordinary words, one for very short ones. */
    size_t wl = strlen(word), limit = wl <= 3 ? 1 : 2;
    if (best && best_d <= limit)
        return best;
    /* A shortened name ("strip" for "strip_prefix") is a typo too. */
    for (size_t i = 0; wl >= 3 && i < n; i++)
        if (strncasecmp(candidates[i], word, wl) == 0)
            return candidates[i];
    return NULL;
}

size_t cfg__list_len(const char *const *l)
{
    size_t n = 0;
    while (l[n])
        n++;
    return n;
}

/* "a, b, c" into out. */
void cfg__join_names(const char *const *names, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; names[i] && len < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

int cfg_check_keys(const struct cfg_node *map, const char *const *allowed, char **err)
{
    if (!map || map->type != CFG_MAP)
        return 0;
    size_t na = cfg__list_len(allowed);
    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_node *k = map->kids[i];
        bool ok = false;
        for (size_t j = 0; j < na && !ok; j++)
            ok = strcmp(k->key, allowed[j]) == 0;
        if (ok)
            continue;
        char valid[512];
        cfg__join_names(allowed, valid, sizeof valid);
        const char *s = cfg_suggest(k->key, allowed, na);
        if (s)
            return cfg__fail(err, k, "unknown key; did you mean '%s'? (valid keys: %s)", s, valid);
        return cfg__fail(err, k, "unknown key (valid keys: %s)", valid);
    }
    return 0;
}
