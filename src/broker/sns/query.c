/* SNS query-protocol requests: form-urlencoded parameters (a POST body
 * and/or the URL's query string) rebuilt into the canonical JSON shape.
 *
 * Decoding is strict about bytes and bounded (aws/query.c, shared with
 * SQS): percent-escapes must be two hex digits, '+' is a space, at most
 * SNS_MAX_PARAMS parameters, names of at most SNS_MAX_KEY bytes, no NUL
 * in names or values. Each parameter
 * name is walked down the action's input shape (sns/model.c): struct
 * members by name, lists as Name.member.N, maps as Name.entry.N.key and
 * Name.entry.N.value (message attributes: .Name and .Value.<member>), N a
 * decimal 1..SNS_MAX_INDEX without leading zeros. Items come out in index
 * order (gaps allowed). Names the model does not know are ignored, as AWS
 * ignores them (Version, AWSAccessKeyId, X-Amz-*...); a malformed index
 * under a known list or map is an error. botocore sends an empty list or
 * map as the bare name with an empty value. */
#include "broker/aws/aws.h"
#include "broker/sns/sns_int.h"
#include "core/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the parameter tree ---- */

struct qent;

struct qn {
    const struct sns_shape *sh;
    const char *val;        /* scalar value (in the arena), NULL when unset */
    size_t vlen;
    struct qn **kids;       /* struct: one slot per member */
    struct qent *ents;      /* list / map entries */
    size_t n, cap;
};

struct qent {
    unsigned idx;
    const char *key;        /* map: the entry's key, NULL until seen */
    struct qn *val;
};

static struct qn *qn_new(const struct sns_shape *sh)
{
    struct qn *n = xcalloc(1, sizeof *n);
    n->sh = sh;
    if (sh->kind == SNS_K_STRUCT && sh->nmembers)
        n->kids = xcalloc(sh->nmembers, sizeof *n->kids);
    return n;
}

static void qn_free(struct qn *n)
{
    if (!n)
        return;
    if (n->kids)
        for (unsigned i = 0; i < n->sh->nmembers; i++)
            qn_free(n->kids[i]);
    free(n->kids);
    for (size_t i = 0; i < n->n; i++)
        qn_free(n->ents[i].val);
    free(n->ents);
    free(n);
}

static bool scalar(const struct sns_shape *sh)
{
    return sh->kind == SNS_K_STR || sh->kind == SNS_K_BOOL || sh->kind == SNS_K_BLOB;
}

static struct qent *entry(struct qn *n, unsigned idx)
{
    for (size_t i = 0; i < n->n; i++)
        if (n->ents[i].idx == idx)
            return &n->ents[i];
    if (n->n == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 4;
        n->ents = xrealloc(n->ents, n->cap * sizeof *n->ents);
    }
    struct qent *e = &n->ents[n->n++];
    *e = (struct qent){ .idx = idx, .val = qn_new(n->sh->elem) };
    return e;
}

/* ---- decoding parameters ---- */

struct qctx {
    const char *action;
    struct qn *root;        /* built once the action is known */
    struct sns_error *err;
};

/* Splits one form-encoded string into aq (aws/query.c). */
static enum sns_err split(struct qctx *q, struct aws_query *aq, const char *s, size_t n)
{
    enum aws_qerr rc = aws_query_split(aq, s, n);
    char why[160];
    if (rc == AWS_Q_OK)
        return SNS_OK;
    aws_query_why(aq, rc, why, sizeof why);
    return sns_fail(q->err, SNS_E_MALFORMED_QUERY, "%s", why);
}

/* Next dot-separated segment of *p (advanced past it and its dot). */
static bool segment(const char **p, const char **seg, size_t *len)
{
    if (!*p)
        return false;
    const char *dot = strchr(*p, '.');
    *seg = *p;
    *len = dot ? (size_t)(dot - *p) : strlen(*p);
    *p = dot ? dot + 1 : NULL;
    return true;
}

static bool seg_is(const char *seg, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(seg, lit, len) == 0;
}

static bool parse_index(const char *seg, size_t len, unsigned *out)
{
    if (len == 0 || len > 4 || seg[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return false;
        v = v * 10 + (unsigned)(seg[i] - '0');
    }
    if (v > SNS_MAX_INDEX)
        return false;
    *out = v;
    return true;
}

static enum sns_err put(struct qctx *q, struct qn *n, const char *rest, const char *full,
                        const char *v, size_t vn);

/* The value (or what follows) of a list's or map's item at rest. */
static enum sns_err put_item(struct qctx *q, struct qn *n, const char *rest, const char *full,
                             const char *v, size_t vn)
{
    bool map = n->sh->kind == SNS_K_MAP;
    const char *seg;
    size_t len;
    unsigned idx;
    if (!segment(&rest, &seg, &len) || !seg_is(seg, len, map ? "entry" : "member") ||
        !segment(&rest, &seg, &len) || !parse_index(seg, len, &idx))
        return sns_fail(q->err, SNS_E_MALFORMED_QUERY, "Malformed %s parameter: %s",
                        map ? "map" : "list", full);
    if (!map) {
        struct qent *e = entry(n, idx);
        return put(q, e->val, rest, full, v, vn);
    }
    if (!segment(&rest, &seg, &len))
        return sns_fail(q->err, SNS_E_MALFORMED_QUERY, "Malformed map parameter: %s", full);
    if (seg_is(seg, len, n->sh->key_name)) {
        if (rest)
            return SNS_OK; /* Name.entry.1.key.x: not ours */
        entry(n, idx)->key = v;
        return SNS_OK;
    }
    if (seg_is(seg, len, n->sh->val_name))
        return put(q, entry(n, idx)->val, rest, full, v, vn);
    return SNS_OK;
}

/* Places value v at path rest below node n. */
static enum sns_err put(struct qctx *q, struct qn *n, const char *rest, const char *full,
                        const char *v, size_t vn)
{
    const struct sns_shape *sh = n->sh;
    if (scalar(sh)) {
        if (rest)
            return SNS_OK;
        n->val = v;
        n->vlen = vn;
        return SNS_OK;
    }
    if (!rest)
        return SNS_OK; /* a bare list or map name (botocore's empty list): stays empty */
    if (sh->kind == SNS_K_LIST || sh->kind == SNS_K_MAP)
        return put_item(q, n, rest, full, v, vn);
    const char *seg;
    size_t len;
    unsigned idx;
    segment(&rest, &seg, &len);
    const struct sns_member *m = sns__member(sh, seg, len, &idx);
    if (!m)
        return SNS_OK; /* unknown member: ignored */
    if (scalar(m->shape) && rest)
        return SNS_OK;
    if (!n->kids[idx])
        n->kids[idx] = qn_new(m->shape);
    return put(q, n->kids[idx], rest, full, v, vn);
}

/* ---- the tree to JSON ---- */

static int by_idx(const void *a, const void *b)
{
    const struct qent *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* AWS names members in validation messages in lower camel case. */
static void lower_camel(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s", name);
    if (out[0] >= 'A' && out[0] <= 'Z')
        out[0] = (char)(out[0] + 32);
}

static enum sns_err missing(struct sns_error *err, const char *path)
{
    return sns_fail(err, SNS_E_VALIDATION,
                    "1 validation error detected: Value null at '%s' failed to satisfy "
                    "constraint: Member must not be null", path);
}

static enum sns_err to_json(struct qn *n, const char *path, cJSON **out, struct sns_error *err);

static enum sns_err struct_json(struct qn *n, const char *path, cJSON **out,
                                struct sns_error *err)
{
    cJSON *o = cJSON_CreateObject();
    *out = o;
    for (unsigned i = 0; i < n->sh->nmembers; i++) {
        const struct sns_member *m = &n->sh->members[i];
        char sub[256], name[80];
        lower_camel(m->name, name, sizeof name);
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
        if (!n->kids || !n->kids[i]) {
            if (m->required)
                return missing(err, sub);
            continue;
        }
        cJSON *v = NULL;
        enum sns_err e = to_json(n->kids[i], sub, &v, err);
        if (e != SNS_OK) {
            cJSON_Delete(v);
            return e;
        }
        if (v)
            cJSON_AddItemToObject(o, m->name, v);
        else if (m->required)
            return missing(err, sub);
    }
    return SNS_OK;
}

static enum sns_err items_json(struct qn *n, const char *path, cJSON **out,
                               struct sns_error *err)
{
    bool map = n->sh->kind == SNS_K_MAP;
    cJSON *o = map ? cJSON_CreateObject() : cJSON_CreateArray();
    *out = o;
    if (n->n > 1)
        qsort(n->ents, n->n, sizeof *n->ents, by_idx);
    for (size_t i = 0; i < n->n; i++) {
        struct qent *e = &n->ents[i];
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%u.member", path, e->idx);
        if (map && !e->key) {
            snprintf(sub, sizeof sub, "%s.%u.%s", path, e->idx, n->sh->key_name);
            return missing(err, sub);
        }
        cJSON *v = NULL;
        enum sns_err r = to_json(e->val, sub, &v, err);
        if (r != SNS_OK) {
            cJSON_Delete(v);
            return r;
        }
        if (!v) {
            snprintf(sub, sizeof sub, "%s.%u.%s", path, e->idx, map ? n->sh->val_name : "member");
            return missing(err, sub);
        }
        if (!map)
            cJSON_AddItemToArray(o, v);
        else if (cJSON_GetObjectItemCaseSensitive(o, e->key))
            cJSON_ReplaceItemInObjectCaseSensitive(o, e->key, v); /* the later entry wins */
        else
            cJSON_AddItemToObject(o, e->key, v);
    }
    return SNS_OK;
}

/* Converts node n; *out NULL (and SNS_OK) for a scalar that was never set. */
static enum sns_err to_json(struct qn *n, const char *path, cJSON **out, struct sns_error *err)
{
    *out = NULL;
    switch (n->sh->kind) {
    case SNS_K_STR:
        if (n->val)
            *out = cJSON_CreateString(n->val);
        return SNS_OK;
    case SNS_K_BOOL:
        if (!n->val)
            return SNS_OK;
        if (strcmp(n->val, "true") == 0 || strcmp(n->val, "false") == 0) {
            *out = cJSON_CreateBool(n->val[0] == 't');
            return SNS_OK;
        }
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: %s must be true or false", path);
    case SNS_K_BLOB:
        if (!n->val)
            return SNS_OK;
        if (base64_decode(n->val, n->vlen, NULL) < 0)
            return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                            "Invalid binary value at %s: not valid base64", path);
        *out = cJSON_CreateString(n->val);
        return SNS_OK;
    case SNS_K_STRUCT:
        return struct_json(n, path, out, err);
    default:
        return items_json(n, path, out, err);
    }
}

/* ---- entry point ---- */

enum sns_err sns_decode_form(const char *qs, size_t qslen, const char *form, size_t flen,
                             char action[64], cJSON **params, struct sns_error *err)
{
    *params = NULL;
    action[0] = '\0';
    struct qctx q = { .err = err };
    struct aws_query aq;
    aws_query_init(&aq, SNS_MAX_PARAMS, SNS_MAX_KEY, qslen + flen);
    enum sns_err e = split(&q, &aq, qs, qslen);
    if (e == SNS_OK)
        e = split(&q, &aq, form, flen);
    const struct aws_qparam *p = aq.p;
    size_t np = aq.n;
    const struct sns_action *a = NULL;
    if (e == SNS_OK) {
        for (size_t i = 0; i < np; i++)
            if (strcmp(p[i].k, "Action") == 0)
                q.action = p[i].v;
        if (!q.action || !*q.action)
            e = sns_fail(err, SNS_E_INVALID_ACTION, "The request must contain the parameter Action.");
        else if (!(a = sns__action(q.action, strlen(q.action))))
            e = sns_fail(err, SNS_E_INVALID_ACTION,
                         "Could not find operation %.64s for version " SNS_VERSION, q.action);
    }
    if (e == SNS_OK) {
        snprintf(action, 64, "%s", a->name);
        struct qn *root = qn_new(a->in);
        for (size_t i = 0; i < np && e == SNS_OK; i++) {
            if (strcmp(p[i].k, "Action") == 0)
                continue;
            e = put(&q, root, p[i].k, p[i].k, p[i].v, p[i].vn);
        }
        if (e == SNS_OK)
            e = struct_json(root, "", params, err);
        qn_free(root);
        if (e != SNS_OK) {
            cJSON_Delete(*params);
            *params = NULL;
        }
    }
    aws_query_free(&aq);
    return e;
}

static bool form_body(const struct http_request *req)
{
    const struct http_header *ct = http_find_header(req->headers, req->nheaders, "Content-Type");
    if (!ct)
        return true;
    static const char form[] = "application/x-www-form-urlencoded";
    return ct->value_len >= sizeof form - 1 && strncasecmp(ct->value, form, sizeof form - 1) == 0;
}

enum sns_err sns_decode(const struct http_request *req, const char *body, size_t len,
                        char action[64], cJSON **params, struct sns_error *err)
{
    const char *q = memchr(req->target, '?', req->target_len);
    const char *qs = q ? q + 1 : NULL;
    size_t qslen = q ? req->target_len - (size_t)(qs - req->target) : 0;
    bool use_body = req->m == HTTP_M_POST && len > 0 && form_body(req);
    return sns_decode_form(qs, qslen, use_body ? body : NULL, use_body ? len : 0, action, params,
                           err);
}
