/* Subscription filter policies (filter.h): compiling the SNS FilterPolicy
 * JSON into a small tree (ANDs of keys, ORs of conditions, $or branches),
 * checking SNS's limits on the way. Matching a message against the tree
 * is topic/filter_match.c. */
#include "broker/topic/filter_int.h"

#include "core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
