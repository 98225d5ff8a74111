/* A high-dynamic-range histogram of non-negative integers (latencies in
 * microseconds), in the HdrHistogram shape: log-linear buckets, so that a
 * value is kept to a fixed relative precision whatever its magnitude, at a
 * fixed memory cost, with O(1) recording and exact merging.
 *
 * Layout, for a histogram with sub_bits S:
 *   values below 2^(S+1) each have their own counter (exact);
 *   above, the values whose highest set bit is m (m > S) share 2^S
 *   counters, each covering 2^(m-S) consecutive values.
 * So a counter's width is below 2^-S of its lowest value, and every
 * percentile is reported as the highest value of the counter that holds
 * the exact value v at that rank: v <= reported < v * (1 + 2^-S).
 *   S = 10: 3 significant decimal digits (error < 0.098%), about 190 KiB
 *           for values up to 2^32 us (71 minutes);
 *   S = 7:  2 significant digits (error < 0.79%), about 26 KiB.
 * Values above the configured maximum are counted at the maximum; the
 * exact minimum, maximum and sum are kept beside the counters, so max and
 * mean are exact.
 *
 * Thread context: a histogram belongs to one thread; merge with
 * fl_hist_add() after the writers are done. */
#ifndef FL_HIST_H
#define FL_HIST_H

#include "core/common.h"

#define FL_HIST_PRECISE 10 /* sub_bits of the whole-run histograms */
#define FL_HIST_COARSE 7   /* sub_bits of per-template and per-second ones */
#define FL_HIST_MAX_US (UINT64_C(1) << 32) /* default largest trackable value */

struct fl_hist {
    unsigned sub_bits;  /* S above */
    uint64_t highest;   /* largest trackable value; larger ones count here */
    size_t n;           /* number of counters */
    uint64_t *counts;   /* n counters, owned */
    uint64_t total;     /* values recorded */
    uint64_t min, max;  /* exact extremes (min is UINT64_MAX when empty) */
    uint64_t sum;       /* exact sum, for the mean */
    double sumsq;       /* sum of squares, for the standard deviation */
};

/* A histogram's non-zero counters, for keeping many of them (one per
 * second of a run) in little memory. */
struct fl_hist_sparse {
    uint32_t n;         /* non-zero counters */
    uint32_t *idx;      /* their indexes, ascending, owned */
    uint64_t *cnt;      /* their counts, owned */
    uint64_t total, min, max, sum;
    double sumsq;
};

/* sub_bits in 1..14; highest >= 2^(sub_bits+1). Allocates the counters. */
void fl_hist_init(struct fl_hist *h, unsigned sub_bits, uint64_t highest);
void fl_hist_free(struct fl_hist *h);
/* Forgets every value, keeping the configuration and the memory. */
void fl_hist_reset(struct fl_hist *h);

/* Index of the counter for v (v <= highest). */
static inline size_t fl_hist_index(const struct fl_hist *h, uint64_t v)
{
    unsigned S = h->sub_bits;
    if (v < (UINT64_C(2) << S))
        return (size_t)v;
    unsigned b = (unsigned)(63 - __builtin_clzll(v)) - S;
    return ((size_t)b << S) + (size_t)(v >> b);
}

static inline void fl_hist_record_n(struct fl_hist *h, uint64_t v, uint64_t count)
{
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->sum += v * count;
    h->sumsq += (double)v * (double)v * (double)count;
    h->total += count;
    h->counts[fl_hist_index(h, v > h->highest ? h->highest : v)] += count;
}

static inline void fl_hist_record(struct fl_hist *h, uint64_t v) { fl_hist_record_n(h, v, 1); }

/* Lowest and highest value that share counter idx. */
uint64_t fl_hist_lowest(const struct fl_hist *h, size_t idx);
uint64_t fl_hist_highest(const struct fl_hist *h, size_t idx);

/* Adds every value of src to dst. Both must have the same sub_bits and
 * highest (ASSERT). */
void fl_hist_add(struct fl_hist *dst, const struct fl_hist *src);

/* The value at percentile p (0..100) by nearest rank: the smallest
 * recorded value v such that at least p% of the values are <= v, reported
 * to the precision stated above and never above the exact maximum. 0 for
 * an empty histogram; p >= 100 gives the exact maximum. */
uint64_t fl_hist_percentile(const struct fl_hist *h, double p);
double fl_hist_mean(const struct fl_hist *h);
double fl_hist_stdev(const struct fl_hist *h);

/* Copies h's non-zero counters into sp (previous contents freed). */
void fl_hist_compact(const struct fl_hist *h, struct fl_hist_sparse *sp);
/* Adds sp's values to h (same configuration as the one compacted). */
void fl_hist_add_sparse(struct fl_hist *h, const struct fl_hist_sparse *sp);
void fl_hist_sparse_free(struct fl_hist_sparse *sp);

#endif
