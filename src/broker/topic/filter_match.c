/* Subscription filter policies (filter.h): matching a message's
 * attributes or JSON body against a compiled policy (topic/filter.c).
 *
 * Matching a body follows keys through nested objects with a set of
 * "context" nodes rather than one: where the path crosses an array, every
 * object in it is a context, so a leaf's values are all the scalars at
 * its path anywhere in the document, which is how SNS (and EventBridge)
 * look through arrays. */
#include "broker/topic/filter_int.h"

#include "core/json.h"

#include <stdlib.h>
#include <string.h>

/* ---- messages ---- */

static void val_from_json(const cJSON *e, struct filter_val *v)
{
    memset(v, 0, sizeof *v);
    if (cJSON_IsString(e)) {
        v->t = FV_STR;
        v->s = e->valuestring;
        v->len = strlen(e->valuestring);
    } else if (cJSON_IsNumber(e)) {
        v->t = FV_NUM;
        v->num = q5(e->valuedouble);
    } else if (cJSON_IsBool(e)) {
        v->t = FV_BOOL;
        v->b = cJSON_IsTrue(e);
    } else {
        v->t = FV_NULL;
    }
}

static bool is_scalar(const cJSON *e)
{
    return cJSON_IsString(e) || cJSON_IsNumber(e) || cJSON_IsBool(e) || cJSON_IsNull(e);
}

/* A Number attribute's value: the whole string a decimal number. */
static bool parse_number(const char *s, double *out)
{
    if (!*s || strlen(s) > 64)
        return false;
    char *end;
    double d = strtod(s, &end);
    if (*end || end == s || !isfinite(d) || strpbrk(s, "xXpP") || strspn(s, " \t\n") > 0)
        return false;
    *out = d;
    return true;
}

static void attr_init(struct filter_attr *a, const char *name, const char *type, const char *sv)
{
    memset(a, 0, sizeof *a);
    a->name = name;
    if (strcmp(type, "String.Array") == 0) {
        cJSON *arr = json_parse_strict(sv, strlen(sv));
        if (cJSON_IsArray(arr)) {
            a->arr = arr;
            size_t n = (size_t)cJSON_GetArraySize(arr);
            a->v = xcalloc(n ? n : 1, sizeof *a->v);
            for (const cJSON *e = arr->child; e; e = e->next)
                if (is_scalar(e))
                    val_from_json(e, &a->v[a->nv++]);
            return;
        }
        cJSON_Delete(arr);
    }
    a->v = xcalloc(1, sizeof *a->v);
    a->nv = 1;
    double d;
    if (strncmp(type, "Number", 6) == 0 && parse_number(sv, &d)) {
        a->v[0].t = FV_NUM;
        a->v[0].num = q5(d);
    } else {
        a->v[0].t = FV_STR;
        a->v[0].s = sv;
        a->v[0].len = strlen(sv);
    }
}

void filter_msg_init(struct filter_msg *m, const cJSON *attrs, const char *body, size_t body_len)
{
    memset(m, 0, sizeof *m);
    m->body = body;
    m->body_len = body_len;
    size_t n = attrs ? (size_t)cJSON_GetArraySize(attrs) : 0;
    if (!n)
        return;
    m->a = xcalloc(n, sizeof *m->a);
    for (const cJSON *e = attrs->child; e; e = e->next) {
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "DataType");
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(e, "StringValue");
        if (!e->string || !cJSON_IsString(dt) || strncmp(dt->valuestring, "Binary", 6) == 0 ||
            !cJSON_IsString(sv))
            continue; /* SNS ignores Binary attributes in filter policies */
        attr_init(&m->a[m->na++], e->string, dt->valuestring, sv->valuestring);
    }
}

void filter_msg_close(struct filter_msg *m)
{
    for (size_t i = 0; i < m->na; i++) {
        free(m->a[i].v);
        cJSON_Delete(m->a[i].arr);
    }
    free(m->a);
    cJSON_Delete(m->json);
    memset(m, 0, sizeof *m);
}

/* ---- matching ---- */

static bool icase_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

static bool cidr_match(const struct cidr_set *set, const char *s, size_t len)
{
    char buf[64];
    uint8_t a[16];
    if (len == 0 || len >= sizeof buf || memchr(s, '/', len))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return cidr_addr16(buf, a) == 0 && cidr_set_match16(set, a);
}

static bool cond_val(const struct fcond *c, const struct filter_val *v)
{
    bool str = v->t == FV_STR;
    switch (c->kind) {
    case FC_STR:
        return str && v->len == c->len && memcmp(v->s, c->s, c->len) == 0;
    case FC_NUM:
        return v->t == FV_NUM && v->num == c->num;
    case FC_BOOL:
        return v->t == FV_BOOL && v->b == c->b;
    case FC_NULL:
        return v->t == FV_NULL;
    case FC_PREFIX:
        return str && v->len >= c->len && memcmp(v->s, c->s, c->len) == 0;
    case FC_SUFFIX:
        return str && v->len >= c->len && memcmp(v->s + v->len - c->len, c->s, c->len) == 0;
    case FC_ICASE:
        return str && v->len == c->len && icase_eq(v->s, c->s, c->len);
    case FC_NUMERIC:
        if (v->t != FV_NUM)
            return false;
        if (c->lo_incl ? v->num < c->lo : v->num <= c->lo)
            return false;
        if (c->hi_incl ? v->num > c->hi : v->num >= c->hi)
            return false;
        return true;
    case FC_ANYBUT:
        for (size_t i = 0; i < c->nsub; i++) {
            const struct fcond *s = &c->sub[i];
            bool pattern = s->kind == FC_PREFIX || s->kind == FC_SUFFIX || s->kind == FC_ICASE;
            if (pattern && !str)
                return false; /* pattern exclusions speak about strings only */
            if (cond_val(s, v))
                return false;
        }
        return true;
    case FC_CIDR:
        return str && cidr_match(c->cidr, v->s, v->len);
    default:
        return false;
    }
}

/* A key's conditions against its values. has: the key is there (for
 * exists: false); has_value: it holds a non-null value (exists: true). */
static bool leaf_match(const struct fnode *n, const struct filter_val *v, size_t nv, bool has,
                       bool has_value)
{
    for (size_t i = 0; i < n->nc; i++) {
        const struct fcond *c = &n->c[i];
        if (c->kind == FC_EXISTS) {
            if (c->b ? has_value : !has)
                return true;
            continue;
        }
        for (size_t k = 0; k < nv; k++)
            if (cond_val(c, &v[k]))
                return true;
    }
    return false;
}

/* Attributes scope: one level of keys. */
static bool attrs_and(const struct fand *a, const struct filter_msg *m)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct fnode *n = &a->m[i];
        bool ok = false;
        if (n->kind == FN_OR) {
            for (size_t b = 0; b < n->nkids && !ok; b++)
                ok = attrs_and(&n->kids[b], m);
        } else if (n->kind == FN_LEAF) {
            const struct filter_attr *at = NULL;
            for (size_t k = 0; k < m->na && !at; k++)
                if (strcmp(m->a[k].name, n->key) == 0)
                    at = &m->a[k];
            ok = leaf_match(n, at ? at->v : NULL, at ? at->nv : 0, at != NULL, at != NULL);
        }
        if (!ok)
            return false;
    }
    return true;
}

/* Growable arrays of JSON nodes and of values, for the body scope. */
struct nodes {
    const cJSON **a;
    size_t n, cap;
};

static void nodes_push(struct nodes *s, const cJSON *j)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->a = xrealloc(s->a, s->cap * sizeof *s->a);
    }
    s->a[s->n++] = j;
}

struct vals {
    struct filter_val *a;
    size_t n, cap;
};

static void vals_push(struct vals *s, const cJSON *j)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->a = xrealloc(s->a, s->cap * sizeof *s->a);
    }
    val_from_json(j, &s->a[s->n++]);
}

/* Objects reachable from j, looking through arrays. */
static void collect_objects(const cJSON *j, struct nodes *out)
{
    if (cJSON_IsObject(j)) {
        nodes_push(out, j);
    } else if (cJSON_IsArray(j)) {
        for (const cJSON *e = j->child; e; e = e->next)
            collect_objects(e, out);
    }
}

/* Scalars reachable from j, looking through arrays. */
static void collect_values(const cJSON *j, struct vals *out)
{
    if (cJSON_IsArray(j)) {
        for (const cJSON *e = j->child; e; e = e->next)
            collect_values(e, out);
    } else if (is_scalar(j)) {
        vals_push(out, j);
    }
}

static bool body_and(const struct fand *a, const struct nodes *ctx)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct fnode *n = &a->m[i];
        bool ok = false;
        if (n->kind == FN_OR) {
            for (size_t b = 0; b < n->nkids && !ok; b++)
                ok = body_and(&n->kids[b], ctx);
        } else if (n->kind == FN_NEST) {
            struct nodes sub = {0};
            for (size_t k = 0; k < ctx->n; k++)
                collect_objects(cJSON_GetObjectItemCaseSensitive(ctx->a[k], n->key), &sub);
            ok = body_and(&n->kids[0], &sub);
            free(sub.a);
        } else {
            struct vals v = {0};
            for (size_t k = 0; k < ctx->n; k++)
                collect_values(cJSON_GetObjectItemCaseSensitive(ctx->a[k], n->key), &v);
            bool has_value = false;
            for (size_t k = 0; k < v.n && !has_value; k++)
                has_value = v.a[k].t != FV_NULL;
            ok = leaf_match(n, v.a, v.n, v.n > 0, has_value);
            free(v.a);
        }
        if (!ok)
            return false;
    }
    return true;
}

bool filter_match(const struct filter_policy *p, struct filter_msg *m)
{
    if (!p || p->root.n == 0)
        return true;
    if (p->scope == FILTER_SCOPE_ATTRIBUTES) {
        /* SNS: a message without attributes matches no policy (not even
         * one made only of "exists": false). */
        return m->na > 0 && attrs_and(&p->root, m);
    }
    if (m->json_state == 0) {
        m->json = json_parse_strict(m->body, m->body_len);
        m->json_state = cJSON_IsObject(m->json) ? 1 : -1;
    }
    if (m->json_state < 0)
        return false; /* a body filter needs a JSON object */
    struct nodes root = {0};
    nodes_push(&root, m->json);
    bool ok = body_and(&p->root, &root);
    free(root.a);
    return ok;
}
