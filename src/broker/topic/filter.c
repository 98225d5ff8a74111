/* Subscription filter policies (filter.h): compiling the SNS FilterPolicy
 * JSON into a small tree (ANDs of keys, ORs of conditions, $or branches)
 * and matching a message's attributes or JSON body against it.
 *
 * Matching a body follows keys through nested objects with a set of
 * "context" nodes rather than one: where the path crosses an array, every
 * object in it is a context, so a leaf's values are all the scalars at
 * its path anywhere in the document, which is how SNS (and EventBridge)
 * look through arrays. */
#include "broker/topic/filter.h"

#include "core/cidr.h"
#include "core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ---- */

enum fv_type { FV_STR = 0, FV_NUM, FV_BOOL, FV_NULL };

struct filter_val {
    uint8_t t;
    bool b;          /* FV_BOOL */
    const char *s;   /* FV_STR (not owned) */
    size_t len;
    double num;      /* FV_NUM, rounded to 5 decimal places (scaled by 1e5) */
};

/* SNS compares numbers to five decimal places: keep them scaled by 1e5
 * and rounded, so equal-looking values compare equal (301.5 and 3.015e2,
 * 0.1+0.2 and 0.3). */
static double q5(double v)
{
    if (!isfinite(v))
        return v;
    return round(v * 1e5);
}

/* ---- compiled form ---- */

enum fc_kind {
    FC_STR = 0, FC_NUM, FC_BOOL, FC_NULL, FC_PREFIX, FC_SUFFIX, FC_ICASE, FC_NUMERIC,
    FC_EXISTS, FC_ANYBUT, FC_CIDR,
};

struct fcond {
    uint8_t kind;
    bool b;                  /* FC_BOOL: the value; FC_EXISTS: true/false */
    bool lo_incl, hi_incl;   /* FC_NUMERIC */
    char *s;                 /* FC_STR, FC_PREFIX, FC_SUFFIX, FC_ICASE (owned) */
    size_t len;
    double num;              /* FC_NUM (scaled) */
    double lo, hi;           /* FC_NUMERIC bounds (scaled; +-INFINITY when open) */
    struct fcond *sub;       /* FC_ANYBUT: a value matching any of these is excluded */
    size_t nsub;
    struct cidr_set *cidr;   /* FC_CIDR */
};

enum fn_kind { FN_LEAF = 0, FN_NEST, FN_OR };

struct fand;

struct fnode {
    uint8_t kind;
    char *key;               /* FN_LEAF, FN_NEST */
    struct fcond *c;         /* FN_LEAF: conditions, ORed */
    size_t nc;
    struct fand *kids;       /* FN_NEST: one object; FN_OR: the branches */
    size_t nkids;
};

struct fand {
    struct fnode *m;         /* members, ANDed */
    size_t n;
};

struct filter_policy {
    struct fand root;
    enum filter_scope scope;
    unsigned combos;
};

/* ---- scope names ---- */

bool filter_scope_parse(const char *s, enum filter_scope *out)
{
    if (strcmp(s, "MessageAttributes") == 0)
        *out = FILTER_SCOPE_ATTRIBUTES;
    else if (strcmp(s, "MessageBody") == 0)
        *out = FILTER_SCOPE_BODY;
    else
        return false;
    return true;
}

const char *filter_scope_name(enum filter_scope s)
{
    return s == FILTER_SCOPE_BODY ? "MessageBody" : "MessageAttributes";
}

/* ---- freeing ---- */

static void and_free(struct fand *a);

static void cond_free(struct fcond *c)
{
    free(c->s);
    for (size_t i = 0; i < c->nsub; i++)
        cond_free(&c->sub[i]);
    free(c->sub);
    if (c->cidr) {
        cidr_set_free(c->cidr);
        free(c->cidr);
    }
}

static void node_free(struct fnode *n)
{
    free(n->key);
    for (size_t i = 0; i < n->nc; i++)
        cond_free(&n->c[i]);
    free(n->c);
    for (size_t i = 0; i < n->nkids; i++)
        and_free(&n->kids[i]);
    free(n->kids);
}

static void and_free(struct fand *a)
{
    for (size_t i = 0; i < a->n; i++)
        node_free(&a->m[i]);
    free(a->m);
    a->m = NULL;
    a->n = 0;
}

void filter_free(struct filter_policy *p)
{
    if (!p)
        return;
    and_free(&p->root);
    free(p);
}

enum filter_scope filter_policy_scope(const struct filter_policy *p) { return p->scope; }
unsigned filter_combinations(const struct filter_policy *p) { return p->combos; }

/* ---- compiling ---- */

struct cc {
    enum filter_scope scope;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static bool fail(struct cc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* A short printable rendering of a JSON value for error messages. */
static void json_brief(const cJSON *v, char *out, size_t cap)
{
    char *t = cJSON_PrintUnformatted(v);
    snprintf(out, cap, "%s", t ? t : "?");
    if (strlen(out) == cap - 1 && cap > 4)
        memcpy(out + cap - 4, "...", 4);
    free(t);
}

static bool is_reserved(const char *k)
{
    static const char *const words[] = {"prefix", "suffix", "anything-but", "numeric", "exists",
                                        "equals-ignore-case", "cidr", "wildcard"};
    for (size_t i = 0; i < ARRAY_SIZE(words); i++)
        if (strcmp(k, words[i]) == 0)
            return true;
    return false;
}

/* SNS reads "$or" as the operator only when its value is an array of at
 * least two objects none of which uses a reserved word as a key;
 * otherwise "$or" is an ordinary key name. */
static bool is_or(const char *key, const cJSON *v)
{
    if (strcmp(key, "$or") != 0 || !cJSON_IsArray(v) || cJSON_GetArraySize(v) < 2)
        return false;
    for (const cJSON *b = v->child; b; b = b->next) {
        if (!cJSON_IsObject(b))
            return false;
        for (const cJSON *k = b->child; k; k = k->next)
            if (k->string && is_reserved(k->string))
                return false;
    }
    return true;
}

static void set_str(struct fcond *o, uint8_t kind, const char *s)
{
    o->kind = kind;
    o->len = strlen(s);
    o->s = xstrndup(s, o->len);
}

/* An exact value: string, number, true, false or null. */
static bool literal(const cJSON *v, struct fcond *o)
{
    memset(o, 0, sizeof *o);
    if (cJSON_IsString(v)) {
        set_str(o, FC_STR, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        o->kind = FC_NUM;
        o->num = q5(v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        o->kind = FC_BOOL;
        o->b = cJSON_IsTrue(v);
    } else if (cJSON_IsNull(v)) {
        o->kind = FC_NULL;
    } else {
        return false;
    }
    return true;
}

static bool bad_match_value(struct cc *c)
{
    return fail(c, "FilterPolicy: Match value must be String, number, true, false, or null");
}

static bool numeric_op(const char *s, bool *lower, bool *incl, bool *eq)
{
    *eq = *lower = *incl = false;
    if (strcmp(s, "=") == 0)
        *eq = *incl = true;
    else if (strcmp(s, ">") == 0)
        *lower = true;
    else if (strcmp(s, ">=") == 0)
        *lower = *incl = true;
    else if (strcmp(s, "<") == 0)
        ;
    else if (strcmp(s, "<=") == 0)
        *incl = true;
    else
        return false;
    return true;
}

/* {"numeric": ["=", 5]}, [">", 0], ["<=", 9], [">", 0, "<", 10]. */
static bool numeric(struct cc *c, const cJSON *v, struct fcond *o)
{
    char b[64];
    o->kind = FC_NUMERIC;
    o->lo = -INFINITY;
    o->hi = INFINITY;
    if (!cJSON_IsArray(v))
        return fail(c, "FilterPolicy: Value of numeric must be an array.");
    const cJSON *e = v->child;
    if (!e)
        return fail(c, "FilterPolicy: Invalid member in numeric match: ]");
    if (!cJSON_IsString(e)) {
        json_brief(e, b, sizeof b);
        return fail(c, "FilterPolicy: Invalid member in numeric match: %s", b);
    }
    bool lower, incl, eq;
    const char *op = e->valuestring;
    if (!numeric_op(op, &lower, &incl, &eq))
        return fail(c, "FilterPolicy: Unrecognized numeric range operator: %s", op);
    e = e->next;
    if (!e || !cJSON_IsNumber(e))
        return fail(c, "FilterPolicy: Value of %s must be numeric", eq ? "equals" : op);
    double first = e->valuedouble;
    if (eq) {
        o->lo = o->hi = q5(first);
        o->lo_incl = o->hi_incl = true;
    } else if (lower) {
        o->lo = q5(first);
        o->lo_incl = incl;
    } else {
        o->hi = q5(first);
        o->hi_incl = incl;
    }
    e = e->next;
    if (!e)
        return true;
    if (!lower)
        return fail(c, "FilterPolicy: Too many elements in numeric expression");
    if (!cJSON_IsString(e)) {
        json_brief(e, b, sizeof b);
        return fail(c, "FilterPolicy: Bad value in numeric range: %s", b);
    }
    const char *op2 = e->valuestring;
    bool lower2, incl2, eq2;
    if (!numeric_op(op2, &lower2, &incl2, &eq2) || lower2 || eq2)
        return fail(c, "FilterPolicy: Bad numeric range operator: %s", op2);
    e = e->next;
    if (!e || !cJSON_IsNumber(e))
        return fail(c, "FilterPolicy: Value of %s must be numeric", op2);
    if (e->valuedouble <= first)
        return fail(c, "FilterPolicy: Bottom must be less than top");
    o->hi = q5(e->valuedouble);
    o->hi_incl = incl2;
    if (e->next)
        return fail(c, "FilterPolicy: Too many terms in numeric range expression");
    return true;
}

static bool cidr(struct cc *c, const cJSON *v, struct fcond *o)
{
    o->kind = FC_CIDR;
    if (!cJSON_IsString(v))
        return fail(c, "FilterPolicy: prefix match pattern must be a string");
    const char *s = v->valuestring;
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/'))
        return fail(c, "FilterPolicy: Malformed CIDR, one '/' required");
    const char *p = slash + 1;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 3)
        return fail(c, "FilterPolicy: Malformed CIDR, mask bits must be an integer");
    o->cidr = xmalloc(sizeof *o->cidr);
    cidr_set_init(o->cidr);
    char *err = NULL;
    if (cidr_set_add(o->cidr, s, &err) < 0) {
        free(err);
        int n = (int)FG_MIN((size_t)(slash - s), (size_t)64);
        return fail(c, "FilterPolicy: Nonstandard IP address: %.*s", n, s);
    }
    cidr_set_finish(o->cidr);
    return true;
}

/* The pattern inside {"anything-but": {...}}: prefix, suffix or
 * equals-ignore-case (a string, or for the last a list of strings). */
static bool anything_but_pattern(struct cc *c, const cJSON *v, struct fcond *o)
{
    if (cJSON_GetArraySize(v) != 1)
        return fail(c, "FilterPolicy: Only one key allowed in match expression");
    const cJSON *k = v->child;
    uint8_t kind;
    if (strcmp(k->string, "prefix") == 0)
        kind = FC_PREFIX;
    else if (strcmp(k->string, "suffix") == 0)
        kind = FC_SUFFIX;
    else if (strcmp(k->string, "equals-ignore-case") == 0)
        kind = FC_ICASE;
    else
        return fail(c, "FilterPolicy: Unsupported anything-but pattern: %s", k->string);
    if (kind == FC_ICASE && cJSON_IsArray(k)) {
        size_t n = (size_t)cJSON_GetArraySize(k);
        if (n == 0)
            return fail(c, "FilterPolicy: Empty arrays are not allowed");
        o->sub = xcalloc(n, sizeof *o->sub);
        for (const cJSON *e = k->child; e; e = e->next) {
            if (!cJSON_IsString(e))
                return fail(c, "FilterPolicy: equals-ignore-case match pattern must be a string");
            set_str(&o->sub[o->nsub++], kind, e->valuestring);
        }
        return true;
    }
    if (!cJSON_IsString(k))
        return fail(c, "FilterPolicy: %s match pattern must be a string", k->string);
    o->sub = xcalloc(1, sizeof *o->sub);
    set_str(&o->sub[o->nsub++], kind, k->valuestring);
    return true;
}

static bool anything_but(struct cc *c, const cJSON *v, struct fcond *o)
{
    o->kind = FC_ANYBUT;
    if (cJSON_IsObject(v))
        return anything_but_pattern(c, v, o);
    if (cJSON_IsArray(v)) {
        size_t n = (size_t)cJSON_GetArraySize(v);
        if (n == 0)
            return fail(c, "FilterPolicy: Empty arrays are not allowed");
        o->sub = xcalloc(n, sizeof *o->sub);
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!literal(e, &o->sub[o->nsub]))
                return bad_match_value(c);
            o->nsub++;
        }
        return true;
    }
    o->sub = xcalloc(1, sizeof *o->sub);
    if (!literal(v, &o->sub[0]))
        return bad_match_value(c);
    o->nsub = 1;
    return true;
}

/* One element of a key's array. */
static bool cond(struct cc *c, const cJSON *v, struct fcond *o)
{
    if (literal(v, o))
        return true;
    if (!cJSON_IsObject(v))
        return bad_match_value(c);
    if (cJSON_GetArraySize(v) != 1)
        return fail(c, "FilterPolicy: Only one key allowed in match expression");
    const cJSON *k = v->child;
    const char *op = k->string;
    if (strcmp(op, "prefix") == 0 || strcmp(op, "suffix") == 0 ||
        strcmp(op, "equals-ignore-case") == 0) {
        if (!cJSON_IsString(k))
            return fail(c, "FilterPolicy: %s match pattern must be a string", op);
        set_str(o, op[0] == 'p' ? FC_PREFIX : op[0] == 's' ? FC_SUFFIX : FC_ICASE, k->valuestring);
        return true;
    }
    if (strcmp(op, "exists") == 0) {
        o->kind = FC_EXISTS;
        if (!cJSON_IsBool(k))
            return fail(c, "FilterPolicy: exists match pattern must be either true or false.");
        o->b = cJSON_IsTrue(k);
        return true;
    }
    if (strcmp(op, "anything-but") == 0)
        return anything_but(c, k, o);
    if (strcmp(op, "numeric") == 0)
        return numeric(c, k, o);
    if (strcmp(op, "cidr") == 0)
        return cidr(c, k, o);
    return fail(c, "FilterPolicy: Unrecognized match type %s", op);
}

/* Saturating arithmetic for combination counts (a hostile policy must not
 * overflow them into something small). */
#define COMBO_CAP 1000000000.0

static bool object(struct cc *c, const cJSON *obj, int depth, bool counted, struct fand *out,
                   double *combos);

static bool member(struct cc *c, const char *key, const cJSON *v, int depth, struct fnode *o,
                   double *combos)
{
    o->key = xstrdup(key);
    if (is_or(key, v)) {
        o->kind = FN_OR;
        o->kids = xcalloc((size_t)cJSON_GetArraySize(v), sizeof *o->kids);
        double sum = 0;
        for (const cJSON *b = v->child; b; b = b->next) {
            double bc = 1;
            if (!object(c, b, depth, true, &o->kids[o->nkids++], &bc))
                return false;
            sum = FG_MIN(sum + bc, COMBO_CAP);
        }
        *combos = sum;
        return true;
    }
    if (cJSON_IsArray(v)) {
        o->kind = FN_LEAF;
        size_t n = (size_t)cJSON_GetArraySize(v);
        if (n == 0)
            return fail(c, "FilterPolicy: Empty arrays are not allowed");
        o->c = xcalloc(n, sizeof *o->c);
        for (const cJSON *e = v->child; e; e = e->next)
            if (!cond(c, e, &o->c[o->nc++]))
                return false;
        *combos = FG_MIN((double)n * depth, COMBO_CAP);
        return true;
    }
    if (cJSON_IsObject(v)) {
        if (c->scope == FILTER_SCOPE_ATTRIBUTES)
            return fail(c, "Filter policy scope MessageAttributes does not support nested "
                           "filter policy");
        if (depth >= FILTER_MAX_DEPTH)
            return fail(c, "FilterPolicy: Filter policy is nested more than %d levels deep",
                        FILTER_MAX_DEPTH);
        o->kind = FN_NEST;
        o->kids = xcalloc(1, sizeof *o->kids);
        o->nkids = 1;
        return object(c, v, depth + 1, false, &o->kids[0], combos);
    }
    char k[72];
    snprintf(k, sizeof k, "%s", key);
    return fail(c, "FilterPolicy: \"%s\" must be an object or an array", k);
}

/* A JSON object: its keys ANDed. counted: the object is the top level or
 * an $or branch, where SNS's five-key limit applies. */
static bool object(struct cc *c, const cJSON *obj, int depth, bool counted, struct fand *out,
                   double *combos)
{
    if (!cJSON_IsObject(obj))
        return fail(c, "FilterPolicy: Filter policy must be a JSON object");
    size_t n = (size_t)cJSON_GetArraySize(obj);
    if (counted && n > FILTER_MAX_KEYS)
        return fail(c, "FilterPolicy: Filter policy can not have more than %d keys",
                    FILTER_MAX_KEYS);
    out->m = n ? xcalloc(n, sizeof *out->m) : NULL;
    double prod = 1;
    for (const cJSON *k = obj->child; k; k = k->next) {
        double mc = 1;
        if (!member(c, k->string ? k->string : "", k, depth, &out->m[out->n++], &mc))
            return false;
        prod = FG_MIN(prod * mc, COMBO_CAP);
    }
    *combos = prod;
    return true;
}

struct filter_policy *filter_compile(const char *json, size_t len, enum filter_scope scope,
                                     char *err, size_t errlen)
{
    struct cc c = {.scope = scope, .err = err, .errlen = errlen};
    if (len > FILTER_MAX_BYTES) {
        fail(&c, "FilterPolicy: Filter policy is larger than %d bytes", FILTER_MAX_BYTES);
        return NULL;
    }
    cJSON *j = json_parse_strict(json, len);
    if (!j) {
        fail(&c, "FilterPolicy: failed to parse JSON.");
        return NULL;
    }
    struct filter_policy *p = xcalloc(1, sizeof *p);
    p->scope = scope;
    double combos = 1;
    bool ok = object(&c, j, 1, true, &p->root, &combos);
    cJSON_Delete(j);
    if (ok && combos > FILTER_MAX_COMBINATIONS)
        ok = fail(&c, "FilterPolicy: Filter policy is too complex");
    if (!ok) {
        filter_free(p);
        return NULL;
    }
    p->combos = (unsigned)combos;
    return p;
}

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
