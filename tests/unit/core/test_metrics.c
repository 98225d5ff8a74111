/* Tests for core/metrics: exact Prometheus text output (families, counters,
 * gauges, labels, escaping, value formatting, histograms) and the
 * histogram's exactness under concurrent observers. */
#include "core/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

/* The buffer's contents as a C string (caller frees). */
static char *text(struct buf *b) { return xstrndup(buf_rptr(b), buf_len(b)); }

static void expect_text(struct buf *b, const char *want)
{
    char *got = text(b);
    cr_expect_str_eq(got, want);
    free(got);
}

Test(metrics_text, counter_without_labels)
{
    struct buf b;
    buf_init(&b);
    metrics_family(&b, "floodgate_gateway_requests_total", "counter", "Requests received.");
    metrics_sample_u64(&b, "floodgate_gateway_requests_total", NULL, 1027);
    expect_text(&b, "# HELP floodgate_gateway_requests_total Requests received.\n"
                    "# TYPE floodgate_gateway_requests_total counter\n"
                    "floodgate_gateway_requests_total 1027\n");
    buf_free(&b);
}

Test(metrics_text, counter_with_labels)
{
    struct buf b;
    buf_init(&b);
    metrics_family(&b, "floodgate_gateway_responses_total", "counter", "Responses sent.");
    metrics_sample_u64(&b, "floodgate_gateway_responses_total",
                       (const char *const[]){"route", "api", "code", "200", NULL}, 3);
    metrics_sample_u64(&b, "floodgate_gateway_responses_total",
                       (const char *const[]){"route", "api", "code", "503", NULL}, 0);
    metrics_sample_u64(&b, "floodgate_gateway_responses_total",
                       (const char *const[]){"route", "", "code", "200", NULL},
                       UINT64_MAX);
    expect_text(&b, "# HELP floodgate_gateway_responses_total Responses sent.\n"
                    "# TYPE floodgate_gateway_responses_total counter\n"
                    "floodgate_gateway_responses_total{route=\"api\",code=\"200\"} 3\n"
                    "floodgate_gateway_responses_total{route=\"api\",code=\"503\"} 0\n"
                    "floodgate_gateway_responses_total{route=\"\",code=\"200\"} "
                    "18446744073709551615\n");
    buf_free(&b);
}

Test(metrics_text, gauge_values)
{
    struct buf b;
    buf_init(&b);
    metrics_family(&b, "floodgate_kv_ring_load_ratio", "gauge", NULL);
    const char *name = "floodgate_kv_ring_load_ratio";
    metrics_sample(&b, name, (const char *const[]){"n", "a", NULL}, 0.1);
    metrics_sample(&b, name, (const char *const[]){"n", "b", NULL}, 3.0);
    metrics_sample(&b, name, (const char *const[]){"n", "c", NULL}, -2.5);
    metrics_sample(&b, name, (const char *const[]){"n", "d", NULL}, 0.0);
    metrics_sample(&b, name, (const char *const[]){"n", "e", NULL}, 1e21);
    metrics_sample(&b, name, (const char *const[]){"n", "f", NULL}, 1.0 / 3.0);
    metrics_sample(&b, name, (const char *const[]){"n", "g", NULL}, INFINITY);
    metrics_sample(&b, name, (const char *const[]){"n", "h", NULL}, -INFINITY);
    metrics_sample(&b, name, (const char *const[]){"n", "i", NULL}, NAN);
    metrics_sample(&b, name, (const char *const[]){"n", "j", NULL}, 123456.5);
    metrics_sample(&b, name, (const char *const[]){"n", "k", NULL}, 1e6);
    metrics_sample(&b, name, (const char *const[]){"n", "l", NULL}, 0.0001);
    metrics_sample(&b, name, (const char *const[]){"n", "m", NULL}, 0.00001234);
    metrics_sample(&b, name, NULL, 123456789.0);
    expect_text(&b, "# TYPE floodgate_kv_ring_load_ratio gauge\n"
                    "floodgate_kv_ring_load_ratio{n=\"a\"} 0.1\n"
                    "floodgate_kv_ring_load_ratio{n=\"b\"} 3\n"
                    "floodgate_kv_ring_load_ratio{n=\"c\"} -2.5\n"
                    "floodgate_kv_ring_load_ratio{n=\"d\"} 0\n"
                    "floodgate_kv_ring_load_ratio{n=\"e\"} 1e+21\n"
                    "floodgate_kv_ring_load_ratio{n=\"f\"} 0.3333333333333333\n"
                    "floodgate_kv_ring_load_ratio{n=\"g\"} +Inf\n"
                    "floodgate_kv_ring_load_ratio{n=\"h\"} -Inf\n"
                    "floodgate_kv_ring_load_ratio{n=\"i\"} NaN\n"
                    "floodgate_kv_ring_load_ratio{n=\"j\"} 123456.5\n"
                    "floodgate_kv_ring_load_ratio{n=\"k\"} 1e+06\n"
                    "floodgate_kv_ring_load_ratio{n=\"l\"} 0.0001\n"
                    "floodgate_kv_ring_load_ratio{n=\"m\"} 1.234e-05\n"
                    "floodgate_kv_ring_load_ratio 1.23456789e+08\n");
    buf_free(&b);
}

Test(metrics_text, format_double_round_trips)
{
    const double vals[] = {0.1, 0.2 + 0.1, 1e-300, 5e-324, 1.7976931348623157e308, 2.5e-4,
                           123.456, -0.0005};
    for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
        char s[32];
        metrics_format_double(s, sizeof s, vals[i]);
        cr_expect(strtod(s, NULL) == vals[i], "%s does not read back as %.17g", s, vals[i]);
    }
    char s[32];
    metrics_format_double(s, sizeof s, 0.2 + 0.1);
    cr_expect_str_eq(s, "0.30000000000000004");
    metrics_format_double(s, sizeof s, 0.0005);
    cr_expect_str_eq(s, "0.0005");
}

Test(metrics_text, label_values_escaped)
{
    struct buf b;
    buf_init(&b);
    metrics_sample_u64(&b, "floodgate_broker_queue_messages",
                       (const char *const[]){"queue", "a\\b\"c\nd", "plain", "x'y{}=,", NULL}, 7);
    expect_text(&b, "floodgate_broker_queue_messages{queue=\"a\\\\b\\\"c\\nd\","
                    "plain=\"x'y{}=,\"} 7\n");
    buf_free(&b);
}

Test(metrics_text, help_escaped)
{
    struct buf b;
    buf_init(&b);
    /* HELP escapes backslash and line feed, but not double quotes. */
    metrics_family(&b, "floodgate_scale_replicas", "gauge", "Say \"hi\"\\now\nnext line");
    expect_text(&b, "# HELP floodgate_scale_replicas Say \"hi\"\\\\now\\nnext line\n"
                    "# TYPE floodgate_scale_replicas gauge\n");
    buf_free(&b);
}

Test(metrics_text, invalid_metric_name_asserts, .signal = SIGABRT)
{
    struct buf b;
    buf_init(&b);
    metrics_sample_u64(&b, "floodgate-gateway", NULL, 1);
}

Test(metrics_text, reserved_label_name_asserts, .signal = SIGABRT)
{
    struct buf b;
    buf_init(&b);
    metrics_sample_u64(&b, "floodgate_x", (const char *const[]){"__name__", "y", NULL}, 1);
}

Test(metrics_text, bad_type_asserts, .signal = SIGABRT)
{
    struct buf b;
    buf_init(&b);
    metrics_family(&b, "floodgate_x", "meter", NULL);
}

Test(metrics_hist, buckets_cumulative_with_sum_and_count)
{
    struct metrics_hist h;
    metrics_hist_init(&h);
    metrics_hist_observe_ns(&h, 0);              /* le 0.0005 */
    metrics_hist_observe_ns(&h, 500000);         /* exactly 0.0005: same bucket */
    metrics_hist_observe_ns(&h, 500001);         /* le 0.001 */
    metrics_hist_observe_ns(&h, 3000000);        /* le 0.005 */
    metrics_hist_observe_ns(&h, 200000000);      /* le 0.25 */
    metrics_hist_observe_ns(&h, 10000000000ull); /* exactly 10 s: le 10 */
    metrics_hist_observe_ns(&h, 12000000000ull); /* +Inf only */
    cr_expect_eq(metrics_hist_count(&h), 7);

    struct buf b;
    buf_init(&b);
    metrics_family(&b, "floodgate_gateway_request_duration_seconds", "histogram",
                   "Time from request head to last response byte.");
    metrics_hist_write(&b, "floodgate_gateway_request_duration_seconds",
                       (const char *const[]){"route", "api", NULL}, &h);
    expect_text(
        &b,
        "# HELP floodgate_gateway_request_duration_seconds Time from request head to last "
        "response byte.\n"
        "# TYPE floodgate_gateway_request_duration_seconds histogram\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.0005\"} 2\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.001\"} 3\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.0025\"} 3\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.005\"} 4\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.01\"} 4\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.025\"} 4\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.05\"} 4\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.1\"} 4\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.25\"} 5\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.5\"} 5\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"1\"} 5\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"2.5\"} 5\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"5\"} 5\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"10\"} 6\n"
        "floodgate_gateway_request_duration_seconds_bucket{route=\"api\",le=\"+Inf\"} 7\n"
        "floodgate_gateway_request_duration_seconds_sum{route=\"api\"} 22.204000001\n"
        "floodgate_gateway_request_duration_seconds_count{route=\"api\"} 7\n");
    buf_free(&b);
}

Test(metrics_hist, empty_without_labels)
{
    static struct metrics_hist h; /* zeroed storage is an empty histogram */
    struct buf b;
    buf_init(&b);
    metrics_hist_write(&b, "floodgate_flood_latency_seconds", NULL, &h);
    char *got = text(&b);
    cr_expect(strstr(got, "floodgate_flood_latency_seconds_bucket{le=\"0.0005\"} 0\n") == got);
    cr_expect(strstr(got, "floodgate_flood_latency_seconds_bucket{le=\"+Inf\"} 0\n"
                          "floodgate_flood_latency_seconds_sum 0\n"
                          "floodgate_flood_latency_seconds_count 0\n") != NULL);
    /* 14 bounds + Inf + sum + count */
    size_t lines = 0;
    for (char *p = got; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, METRICS_HIST_NBOUNDS + 3);
    free(got);
    buf_free(&b);
}

Test(metrics_hist, snapshots_merge)
{
    struct metrics_hist a, c;
    metrics_hist_init(&a);
    metrics_hist_init(&c);
    metrics_hist_observe_ns(&a, 1500000); /* le 0.0025 */
    metrics_hist_observe_ns(&c, 1500000);
    metrics_hist_observe_ns(&c, 60000000000ull); /* one minute: +Inf */
    struct metrics_hist_snap s;
    memset(&s, 0, sizeof s);
    metrics_hist_snapshot(&a, &s);
    metrics_hist_snapshot(&c, &s);
    cr_expect_eq(s.count, 3);
    cr_expect_eq(s.buckets[2], 2);
    cr_expect_eq(s.buckets[METRICS_HIST_NBOUNDS], 1);
    cr_expect_eq(s.sum_ns, 60003000000ull);

    struct buf b;
    buf_init(&b);
    metrics_hist_write_snap(&b, "floodgate_x_seconds", (const char *const[]){"a", "b", NULL}, &s);
    char *got = text(&b);
    cr_expect(strstr(got, "floodgate_x_seconds_bucket{a=\"b\",le=\"0.001\"} 0\n"
                          "floodgate_x_seconds_bucket{a=\"b\",le=\"0.0025\"} 2\n") != NULL);
    cr_expect(strstr(got, "floodgate_x_seconds_bucket{a=\"b\",le=\"10\"} 2\n"
                          "floodgate_x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3\n"
                          "floodgate_x_seconds_sum{a=\"b\"} 60.003\n"
                          "floodgate_x_seconds_count{a=\"b\"} 3\n") != NULL,
              "%s", got);
    free(got);
    buf_free(&b);
}

#define OBS_THREADS 8
#define OBS_PER_THREAD 200000

static struct metrics_hist shared_hist;

static void *observer(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < OBS_PER_THREAD; i++) {
        /* Spread over every bucket, including +Inf: 0 .. ~16.7 s. */
        uint64_t ns = ((i * 2654435761u + seed) % 16777216u) * 1000u;
        metrics_hist_observe_ns(&shared_hist, ns);
    }
    return NULL;
}


Test(metrics_hist, concurrent_observers_sum_exactly)
{
    metrics_hist_init(&shared_hist);
    pthread_t t[OBS_THREADS];
    for (uintptr_t i = 0; i < OBS_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, observer, (void *)(i * 7919)), 0);

    /* A reader scraping while the writers run always sees +Inf == _count. */
    struct buf b;
    buf_init(&b);
    for (int k = 0; k < 50; k++) {
        struct metrics_hist_snap s;
        memset(&s, 0, sizeof s);
        metrics_hist_snapshot(&shared_hist, &s);
        uint64_t total = 0;
        for (size_t i = 0; i <= METRICS_HIST_NBOUNDS; i++)
            total += s.buckets[i];
        cr_assert_eq(total, s.count);
        buf_reset(&b);
        metrics_hist_write(&b, "floodgate_x_seconds", NULL, &shared_hist);
    }
    buf_free(&b);

    for (int i = 0; i < OBS_THREADS; i++)
        pthread_join(t[i], NULL);

    /* The same observations made by one thread, for the expected values. */
    static struct metrics_hist want;
    uint64_t want_sum = 0;
    for (uintptr_t t_i = 0; t_i < OBS_THREADS; t_i++) {
        for (uint64_t i = 0; i < OBS_PER_THREAD; i++) {
            uint64_t ns = ((i * 2654435761u + t_i * 7919) % 16777216u) * 1000u;
            metrics_hist_observe_ns(&want, ns);
            want_sum += ns;
        }
    }
    cr_expect_eq(metrics_hist_count(&shared_hist), (uint64_t)OBS_THREADS * OBS_PER_THREAD);
    cr_expect_eq(atomic_load(&shared_hist.sum_ns), want_sum);
    struct metrics_hist_snap s, w;
    memset(&s, 0, sizeof s);
    memset(&w, 0, sizeof w);
    metrics_hist_snapshot(&shared_hist, &s);
    metrics_hist_snapshot(&want, &w);
    cr_expect_eq(s.count, (uint64_t)OBS_THREADS * OBS_PER_THREAD);
    cr_expect_eq(s.sum_ns, want_sum);
    for (size_t i = 0; i <= METRICS_HIST_NBOUNDS; i++) {
        cr_expect_eq(s.buckets[i], w.buckets[i], "bucket %zu", i);
        cr_expect_gt(s.buckets[i], 0, "bucket %zu", i);
    }
}
