/* Metrics: a lock-free latency histogram and writers for the Prometheus
 * text exposition format, version 0.0.4.
 *
 * Servers keep their counters and gauges wherever suits them (usually
 * relaxed atomics in per-worker structures) and render them on each scrape
 * with the writers below into a struct buf. A scrape looks like:
 *
 *     metrics_family(b, "floodgate_gateway_requests_total", "counter",
 *                    "Requests received.");
 *     metrics_sample_u64(b, "floodgate_gateway_requests_total",
 *                        (const char *const[]){"route", "api", NULL}, n);
 *
 * Names follow floodgate_<server>_<thing>_<unit>: counters end in _total,
 * durations are in seconds (_seconds), sizes in bytes (_bytes). Metric and
 * label names are fixed by the code, so an invalid one is a bug and trips an
 * ASSERT; label values may come from configuration or peers and are escaped.
 *
 * Thread context: the writers touch only their buf. A histogram may be
 * observed from any number of threads at once while another thread writes
 * it out. */
#ifndef FG_METRICS_H
#define FG_METRICS_H

#include "core/buf.h"
#include "core/common.h"

#include <stdatomic.h>

/* Content-Type of a /metrics response in this format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Finite bucket upper bounds of every latency histogram, in seconds:
 * 0.5 ms .. 10 s in 1-2.5-5 steps, plus the implicit +Inf bucket. */
#define METRICS_HIST_NBOUNDS 14
extern const double metrics_hist_bounds[METRICS_HIST_NBOUNDS];

/* A latency histogram. Zero-initialised storage (static, xcalloc, or
 * metrics_hist_init) is an empty histogram. An observation is two relaxed
 * atomic additions (its bucket and the sum): no locks, no ordering between
 * fields. The count is not stored separately: it is the sum of the
 * buckets, which keeps _count and the +Inf bucket equal in every scrape
 * and saves a third contended add per observation. */
struct metrics_hist {
    _Atomic uint64_t buckets[METRICS_HIST_NBOUNDS + 1]; /* per bucket, not cumulative;
                                                           the last is (10 s, +Inf) */
    _Atomic uint64_t sum_ns;                            /* sum of observations, ns */
};

/* A plain copy of one or more histograms, taken for writing out. */
struct metrics_hist_snap {
    uint64_t buckets[METRICS_HIST_NBOUNDS + 1]; /* per bucket, not cumulative */
    uint64_t sum_ns;
    uint64_t count; /* always the sum of buckets[] */
};

void metrics_hist_init(struct metrics_hist *h);

/* Records one observation of ns nanoseconds. An observation equal to a
 * bound falls in that bound's bucket (Prometheus buckets are "le").
 * Callable from any thread; lock-free. */
void metrics_hist_observe_ns(struct metrics_hist *h, uint64_t ns);
/* The same for a histogram that only the calling thread observes into (a
 * per-thread one, merged with metrics_hist_snapshot when written out): a
 * relaxed load and store per field, no locked addition. Readers on other
 * threads may still snapshot it at any time. */
void metrics_hist_observe_owned_ns(struct metrics_hist *h, uint64_t ns);
/* Number of observations so far (a relaxed read of every bucket). */
uint64_t metrics_hist_count(const struct metrics_hist *h);

/* Adds h's current values into *snap (so per-worker histograms can be
 * merged into one series); zero *snap first for a plain copy. Observations
 * that race with the snapshot may be seen in the buckets but not yet in
 * the sum (or the reverse); the next scrape includes them. */
void metrics_hist_snapshot(const struct metrics_hist *h, struct metrics_hist_snap *snap);

/* Writes "# HELP name help" and "# TYPE name type", once per metric family,
 * before its samples. type is one of counter, gauge, histogram, summary,
 * untyped. help may be NULL (no HELP line); backslashes and line feeds in
 * it are escaped. */
void metrics_family(struct buf *b, const char *name, const char *type, const char *help);

/* Writes one sample line: name{k="v",...} value. labels is a NULL-ended
 * array of name/value pairs (k, v, k, v, NULL), or NULL for none. Doubles
 * are written as the Go client writes them: the fewest digits that read
 * back exactly, exponent form outside 1e-4 <= |v| < 1e6 (0.25, 3, 1e+06),
 * and NaN, +Inf, -Inf. Integer counts belong in metrics_sample_u64, which
 * writes every digit. */
void metrics_sample(struct buf *b, const char *name, const char *const *labels, double value);
void metrics_sample_u64(struct buf *b, const char *name, const char *const *labels, uint64_t value);

/* Writes the samples of one histogram series: name_bucket{...,le="..."}
 * for every bound and +Inf (cumulative), name_sum (seconds) and
 * name_count, all with labels (as in metrics_sample). The family line is
 * the caller's, written once for all the series of name. */
void metrics_hist_write(struct buf *b, const char *name, const char *const *labels,
                        const struct metrics_hist *h);
void metrics_hist_write_snap(struct buf *b, const char *name, const char *const *labels,
                             const struct metrics_hist_snap *snap);

/* Formats v as the format writes sample values, into out (at least 32
 * bytes). Returns the length. */
size_t metrics_format_double(char *out, size_t outlen, double v);

#endif
