/* Implementation of metrics.h: the histogram's bucket search and the text
 * exposition writers. The format's rules that matter here: one HELP and one
 * TYPE line per family, before its samples; HELP text escapes backslash and
 * line feed; label values escape backslash, double quote and line feed;
 * values are floats as Go writes and parses them (NaN, +Inf, -Inf); histogram buckets are
 * cumulative, carry an "le" label and end with le="+Inf", which must equal
 * _count. */
#include "core/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_hist_bounds[METRICS_HIST_NBOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* The same bounds in nanoseconds, so an observation is placed with integer
 * comparisons and a value exactly on a bound lands in that bound's bucket. */
static const uint64_t hist_bounds_ns[METRICS_HIST_NBOUNDS] = {
    500000ull,     1000000ull,    2500000ull,    5000000ull,     10000000ull,
    25000000ull,   50000000ull,   100000000ull,  250000000ull,   500000000ull,
    1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};

void metrics_hist_init(struct metrics_hist *h)
{
    for (size_t i = 0; i < ARRAY_SIZE(h->buckets); i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum_ns, 0);
}

/* The bucket of an observation of ns nanoseconds. Linear scan: proxy
 * latencies cluster in the first few buckets, where this exits after one
 * or two comparisons. */
static size_t hist_bucket(uint64_t ns)
{
    size_t i = 0;
    while (i < METRICS_HIST_NBOUNDS && ns > hist_bounds_ns[i])
        i++;
    return i;
}

void metrics_hist_observe_ns(struct metrics_hist *h, uint64_t ns)
{
    size_t i = hist_bucket(ns);
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void metrics_hist_observe_owned_ns(struct metrics_hist *h, uint64_t ns)
{
    _Atomic uint64_t *b = &h->buckets[hist_bucket(ns)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1, memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns, atomic_load_explicit(&h->sum_ns, memory_order_relaxed) + ns,
                          memory_order_relaxed);
}

uint64_t metrics_hist_count(const struct metrics_hist *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(h->buckets); i++)
        n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return n;
}

void metrics_hist_snapshot(const struct metrics_hist *h, struct metrics_hist_snap *snap)
{
    for (size_t i = 0; i < ARRAY_SIZE(h->buckets); i++) {
        uint64_t v = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        snap->buckets[i] += v;
        snap->count += v;
    }
    snap->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}

/* ---- names and escaping ---- */

static bool valid_metric_name(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}

/* Label names are metric names without ':'; names starting with "__" are
 * reserved for Prometheus itself. */
static bool valid_label_name(const char *s)
{
    return valid_metric_name(s) && !strchr(s, ':') && strncmp(s, "__", 2) != 0;
}

/* Appends s with backslash and line feed escaped, and double quote too
 * when quote is set (label values; HELP text leaves quotes alone). */
static void append_escaped(struct buf *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        if (!esc)
            continue;
        buf_append(b, run, (size_t)(s - run));
        buf_append(b, esc, 2);
        run = s + 1;
    }
    buf_append(b, run, (size_t)(s - run));
}

/* Appends {k="v",...} for labels plus an optional extra pair (the "le" of
 * a histogram bucket, always last); nothing when there are no labels. */
static void append_labels(struct buf *b, const char *const *labels, const char *ek,
                          const char *ev)
{
    bool any = false;
    if (labels) {
        for (size_t i = 0; labels[i]; i += 2) {
            ASSERT(valid_label_name(labels[i]));
            ASSERT(labels[i + 1] != NULL);
            buf_append(b, any ? "," : "{", 1);
            buf_append_str(b, labels[i]);
            buf_append(b, "=\"", 2);
            append_escaped(b, labels[i + 1], true);
            buf_append(b, "\"", 1);
            any = true;
        }
    }
    if (ek) {
        buf_append(b, any ? "," : "{", 1);
        buf_append_str(b, ek);
        buf_append(b, "=\"", 2);
        append_escaped(b, ev, true);
        buf_append(b, "\"", 1);
        any = true;
    }
    if (any)
        buf_append(b, "}", 1);
}

size_t metrics_format_double(char *out, size_t outlen, double v)
{
    ASSERT(outlen >= 32);
    int n;
    if (isnan(v)) {
        n = snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        n = snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        /* Go's strconv.FormatFloat(v, 'g', -1, 64), which the reference
         * client writes and the server parses: the fewest significant
         * digits that read back as v, in exponent form when the decimal
         * exponent is below -4 or at least 6, else in plain form. */
        char e[32];
        int prec = 1;
        for (; prec < 17; prec++) {
            snprintf(e, sizeof e, "%.*e", prec - 1, v);
            if (strtod(e, NULL) == v)
                break;
        }
        n = snprintf(e, sizeof e, "%.*e", prec - 1, v);
        int exp = atoi(strchr(e, 'e') + 1);
        if (exp < -4 || exp >= 6)
            n = snprintf(out, outlen, "%s", e);
        else
            n = snprintf(out, outlen, "%.*f", FG_MAX(prec - 1 - exp, 0), v);
    }
    ASSERT(n > 0 && (size_t)n < outlen);
    return (size_t)n;
}

/* ---- writers ---- */

void metrics_family(struct buf *b, const char *name, const char *type, const char *help)
{
    ASSERT(valid_metric_name(name));
    ASSERT(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
           strcmp(type, "histogram") == 0 || strcmp(type, "summary") == 0 ||
           strcmp(type, "untyped") == 0);
    if (help) {
        buf_append_str(b, "# HELP ");
        buf_append_str(b, name);
        buf_append(b, " ", 1);
        append_escaped(b, help, false);
        buf_append(b, "\n", 1);
    }
    buf_append_str(b, "# TYPE ");
    buf_append_str(b, name);
    buf_append(b, " ", 1);
    buf_append_str(b, type);
    buf_append(b, "\n", 1);
}

/* name + suffix, labels, a space, the preformatted value and a line feed. */
static void sample_line(struct buf *b, const char *name, const char *suffix,
                        const char *const *labels, const char *ek, const char *ev,
                        const char *value, size_t vlen)
{
    ASSERT(valid_metric_name(name));
    buf_append_str(b, name);
    if (suffix)
        buf_append_str(b, suffix);
    append_labels(b, labels, ek, ev);
    buf_append(b, " ", 1);
    buf_append(b, value, vlen);
    buf_append(b, "\n", 1);
}

void metrics_sample(struct buf *b, const char *name, const char *const *labels, double value)
{
    char v[32];
    size_t n = metrics_format_double(v, sizeof v, value);
    sample_line(b, name, NULL, labels, NULL, NULL, v, n);
}

void metrics_sample_u64(struct buf *b, const char *name, const char *const *labels, uint64_t value)
{
    char v[32];
    int n = snprintf(v, sizeof v, "%" PRIu64, value);
    sample_line(b, name, NULL, labels, NULL, NULL, v, (size_t)n);
}

void metrics_hist_write_snap(struct buf *b, const char *name, const char *const *labels,
                             const struct metrics_hist_snap *snap)
{
    char le[32], v[32];
    uint64_t cum = 0;
    for (size_t i = 0; i <= METRICS_HIST_NBOUNDS; i++) {
        cum += snap->buckets[i];
        if (i < METRICS_HIST_NBOUNDS)
            metrics_format_double(le, sizeof le, metrics_hist_bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        int n = snprintf(v, sizeof v, "%" PRIu64, cum);
        sample_line(b, name, "_bucket", labels, "le", le, v, (size_t)n);
    }
    size_t n = metrics_format_double(v, sizeof v, (double)snap->sum_ns / 1e9);
    sample_line(b, name, "_sum", labels, NULL, NULL, v, n);
    /* The running total, not snap->count, so that _count equals the +Inf
     * bucket even for a hand-built snapshot. */
    int m = snprintf(v, sizeof v, "%" PRIu64, cum);
    sample_line(b, name, "_count", labels, NULL, NULL, v, (size_t)m);
}

void metrics_hist_write(struct buf *b, const char *name, const char *const *labels,
                        const struct metrics_hist *h)
{
    struct metrics_hist_snap snap;
    memset(&snap, 0, sizeof snap);
    metrics_hist_snapshot(h, &snap);
    metrics_hist_write_snap(b, name, labels, &snap);
}
