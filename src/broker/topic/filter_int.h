/* Internals of subscription filter policies (filter.h), shared by the
 * compiler (topic/filter.c) and the matcher (topic/filter_match.c): the
 * values a message offers and the compiled tree a policy becomes. */
#ifndef FG_BROKER_FILTER_INT_H
#define FG_BROKER_FILTER_INT_H

#include "broker/topic/filter.h"
#include "core/cidr.h"

#include <math.h>

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
static inline double q5(double v)
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

#endif
