/* The topics' metrics for the broker's /metrics page: topics,
 * subscriptions by state, publishes, deliveries by protocol, filtering,
 * HTTP failures and retries, dead-lettering and drops, and the publish to
 * acknowledged push latency. */
#include "broker/topic/topic.h"

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    metrics_family(b, name, "counter", help);
    metrics_sample_u64(b, name, NULL, v);
}

void tp_metrics_render(const struct tp_engine *t, struct buf *b)
{
    uint64_t subs = 0, pending = 0;
    for (const struct tp_topic *tp = t->topics; tp; tp = tp->next) {
        subs += tp->nsubs;
        pending += tp->npending;
    }
    metrics_family(b, "floodgate_broker_sns_topics", "gauge", "Topics.");
    metrics_sample_u64(b, "floodgate_broker_sns_topics", NULL, t->ntopics);
    metrics_family(b, "floodgate_broker_sns_subscriptions", "gauge", "Subscriptions by state.");
    metrics_sample_u64(b, "floodgate_broker_sns_subscriptions",
                       (const char *const[]){"state", "confirmed", NULL}, subs - pending);
    metrics_sample_u64(b, "floodgate_broker_sns_subscriptions",
                       (const char *const[]){"state", "pending", NULL}, pending);
    counter(b, "floodgate_broker_sns_publishes_total", "Messages published.", t->st.publishes);
    counter(b, "floodgate_broker_sns_publish_errors_total", "Publishes refused.", t->st.publish_errors);
    metrics_family(b, "floodgate_broker_sns_deliveries_total", "counter",
                   "Deliveries made, by protocol (http: acknowledged by the endpoint).");
    metrics_sample_u64(b, "floodgate_broker_sns_deliveries_total",
                       (const char *const[]){"protocol", "sqs", NULL}, t->st.deliveries_sqs);
    metrics_sample_u64(b, "floodgate_broker_sns_deliveries_total",
                       (const char *const[]){"protocol", "http", NULL}, t->st.deliveries_http);
    counter(b, "floodgate_broker_sns_filtered_total", "Deliveries a filter policy skipped.", t->st.filtered);
    counter(b, "floodgate_broker_sns_http_failures_total", "HTTP delivery attempts that failed.",
            t->st.http_failures);
    counter(b, "floodgate_broker_sns_http_retries_total", "HTTP deliveries scheduled for a retry.",
            t->st.http_retries);
    counter(b, "floodgate_broker_sns_dead_lettered_total", "Deliveries sent to a dead-letter queue.",
            t->st.dead_lettered);
    counter(b, "floodgate_broker_sns_dropped_total", "Deliveries given up without a dead-letter queue.",
            t->st.dropped);
    metrics_family(b, "floodgate_broker_sns_push_latency_seconds", "histogram",
                   "Publish to acknowledged HTTP delivery.");
    metrics_hist_write(b, "floodgate_broker_sns_push_latency_seconds", NULL, &t->st.push_latency);
}
