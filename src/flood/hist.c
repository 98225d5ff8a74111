/* The log-linear histogram of hist.h: index arithmetic, merging,
 * percentiles and the sparse form kept for each second of a run. */
#include "flood/hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fl_hist_init(struct fl_hist *h, unsigned sub_bits, uint64_t highest)
{
    ASSERT(sub_bits >= 1 && sub_bits <= 14);
    ASSERT(highest >= (UINT64_C(2) << sub_bits) && highest < (UINT64_C(1) << 62));
    memset(h, 0, sizeof *h);
    h->sub_bits = sub_bits;
    h->highest = highest;
    h->n = fl_hist_index(h, highest) + 1;
    h->counts = xcalloc(h->n, sizeof *h->counts);
    h->min = UINT64_MAX;
}

void fl_hist_free(struct fl_hist *h)
{
    free(h->counts);
    h->counts = NULL;
    h->n = 0;
}

void fl_hist_reset(struct fl_hist *h)
{
    memset(h->counts, 0, h->n * sizeof *h->counts);
    h->total = h->sum = h->max = 0;
    h->sumsq = 0;
    h->min = UINT64_MAX;
}

uint64_t fl_hist_lowest(const struct fl_hist *h, size_t idx)
{
    unsigned S = h->sub_bits;
    if (idx < ((size_t)2 << S))
        return idx;
    /* idx = (b << S) + (v >> b) with (v >> b) in [2^S, 2^(S+1)). */
    size_t b = (idx >> S) - 1;
    uint64_t sub = (uint64_t)(idx - (b << S));
    return sub << b;
}

uint64_t fl_hist_highest(const struct fl_hist *h, size_t idx)
{
    unsigned S = h->sub_bits;
    if (idx < ((size_t)2 << S))
        return idx;
    size_t b = (idx >> S) - 1;
    return fl_hist_lowest(h, idx) + (UINT64_C(1) << b) - 1;
}

void fl_hist_add(struct fl_hist *dst, const struct fl_hist *src)
{
    ASSERT(dst->sub_bits == src->sub_bits && dst->highest == src->highest);
    if (!src->total)
        return;
    for (size_t i = 0; i < src->n; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t fl_hist_percentile(const struct fl_hist *h, double p)
{
    if (!h->total)
        return 0;
    if (p >= 100)
        return h->max;
    if (p < 0)
        p = 0;
    /* Nearest rank: the ceil(p/100 * N)-th smallest value, at least the first. */
    double r = ceil(p / 100.0 * (double)h->total);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->total)
        rank = h->total;
    uint64_t seen = 0;
    for (size_t i = 0; i < h->n; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = fl_hist_highest(h, i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double fl_hist_mean(const struct fl_hist *h)
{
    return h->total ? (double)h->sum / (double)h->total : 0;
}

double fl_hist_stdev(const struct fl_hist *h)
{
    if (h->total < 2)
        return 0;
    double m = fl_hist_mean(h);
    double var = h->sumsq / (double)h->total - m * m;
    return var > 0 ? sqrt(var) : 0;
}

void fl_hist_compact(const struct fl_hist *h, struct fl_hist_sparse *sp)
{
    fl_hist_sparse_free(sp);
    uint32_t n = 0;
    if (h->total)
        for (size_t i = 0; i < h->n; i++)
            n += h->counts[i] != 0;
    sp->n = n;
    sp->idx = n ? xmalloc(n * sizeof *sp->idx) : NULL;
    sp->cnt = n ? xmalloc(n * sizeof *sp->cnt) : NULL;
    uint32_t k = 0;
    for (size_t i = 0; k < n; i++) {
        if (h->counts[i]) {
            sp->idx[k] = (uint32_t)i;
            sp->cnt[k] = h->counts[i];
            k++;
        }
    }
    sp->total = h->total;
    sp->min = h->min;
    sp->max = h->max;
    sp->sum = h->sum;
    sp->sumsq = h->sumsq;
}

void fl_hist_add_sparse(struct fl_hist *h, const struct fl_hist_sparse *sp)
{
    if (!sp->total)
        return;
    for (uint32_t k = 0; k < sp->n; k++) {
        ASSERT(sp->idx[k] < h->n);
        h->counts[sp->idx[k]] += sp->cnt[k];
    }
    h->total += sp->total;
    h->sum += sp->sum;
    h->sumsq += sp->sumsq;
    if (sp->min < h->min)
        h->min = sp->min;
    if (sp->max > h->max)
        h->max = sp->max;
}

void fl_hist_sparse_free(struct fl_hist_sparse *sp)
{
    free(sp->idx);
    free(sp->cnt);
    memset(sp, 0, sizeof *sp);
}
