/* /metrics for the broker: per-queue message gauges, counters and latency
 * histograms, the store's group commit and fsync figures, connections and
 * long polls. Names follow floodgate_broker_<thing>_<unit>; everything is
 * read on the loop thread, so plain counters need no atomics. */
#include "broker/broker.h"
#include "broker/topic/topic.h"

#include <stdio.h>

struct qcounter {
    const char *name, *help;
    size_t off;
};

#define QC(field, n, h) {"floodgate_broker_" n, h, offsetof(struct bk_qstats, field)}
static const struct qcounter qcounters[] = {
    QC(sent, "messages_sent_total", "Messages sent (duplicates of FIFO queues not counted)."),
    QC(received, "messages_received_total", "Deliveries (every receive of every message)."),
    QC(deleted, "messages_deleted_total", "Messages deleted by their consumers."),
    QC(expired, "messages_expired_total", "Messages removed at the end of their retention period."),
    QC(redriven, "messages_dead_lettered_total", "Messages moved to the dead-letter queue."),
    QC(moved, "messages_moved_total", "Messages moved out by message move tasks."),
    QC(changed_vis, "visibility_changes_total", "ChangeMessageVisibility calls that took effect."),
    QC(purged, "messages_purged_total", "Messages removed by PurgeQueue."),
    QC(dedup_hits, "messages_deduplicated_total", "FIFO sends dropped as duplicates."),
};

static void write_u64(struct buf *b, const char *name, const char *help, const char *type, uint64_t v)
{
    metrics_family(b, name, type, help);
    metrics_sample_u64(b, name, NULL, v);
}

static void queue_metrics(struct bk_server *s, struct buf *b)
{
    const struct bk_engine *e = s->engine;
    metrics_family(b, "floodgate_broker_queue_messages", "gauge",
                   "Messages in each queue by state: visible (receivable), in_flight, delayed.");
    for (const struct bk_queue *q = e->qhead; q; q = q->lnext) {
        static const char *const states[] = {"visible", "in_flight", "delayed"};
        const uint64_t v[] = {q->n_ready, q->n_inflight, q->n_delayed};
        for (int i = 0; i < 3; i++)
            metrics_sample_u64(b, "floodgate_broker_queue_messages",
                               (const char *const[]){"queue", q->name, "state", states[i], NULL}, v[i]);
    }
    for (size_t k = 0; k < ARRAY_SIZE(qcounters); k++) {
        metrics_family(b, qcounters[k].name, "counter", qcounters[k].help);
        for (const struct bk_queue *q = e->qhead; q; q = q->lnext) {
            uint64_t v = *(const uint64_t *)((const char *)&q->st + qcounters[k].off);
            metrics_sample_u64(b, qcounters[k].name, (const char *const[]){"queue", q->name, NULL}, v);
        }
    }
    metrics_family(b, "floodgate_broker_send_to_receive_seconds", "histogram",
                   "Time from send to a message's first delivery.");
    for (const struct bk_queue *q = e->qhead; q; q = q->lnext)
        metrics_hist_write(b, "floodgate_broker_send_to_receive_seconds",
                           (const char *const[]){"queue", q->name, NULL}, &q->st.send_to_receive);
    metrics_family(b, "floodgate_broker_receive_to_delete_seconds", "histogram",
                   "Time from a message's last delivery to its deletion (processing time).");
    for (const struct bk_queue *q = e->qhead; q; q = q->lnext)
        metrics_hist_write(b, "floodgate_broker_receive_to_delete_seconds",
                           (const char *const[]){"queue", q->name, NULL}, &q->st.receive_to_delete);
}

static void store_metrics(struct bk_server *s, struct buf *b)
{
    struct store_stats st;
    store_get_stats(s->store, &st);
    write_u64(b, "floodgate_broker_store_appends_total", "Records appended to the log.", "counter", st.appends);
    write_u64(b, "floodgate_broker_store_commits_total", "Commit requests (one per loop iteration with writes).",
              "counter", st.commits);
    write_u64(b, "floodgate_broker_store_fsyncs_total", "fdatasync calls of the log's sync thread.", "counter",
              st.syncs);
    metrics_family(b, "floodgate_broker_store_fsync_seconds_total", "counter", "Time spent in fdatasync.");
    metrics_sample(b, "floodgate_broker_store_fsync_seconds_total", NULL, (double)st.sync_ns_total / 1e9);
    write_u64(b, "floodgate_broker_store_segments", "Segment files of the log.", "gauge", st.segments);
    write_u64(b, "floodgate_broker_store_disk_bytes", "Bytes of the log on disk.", "gauge", st.disk_bytes);
    write_u64(b, "floodgate_broker_store_live_bytes", "Bytes of log records still needed.", "gauge",
              st.live_bytes);
    write_u64(b, "floodgate_broker_store_pending_bytes", "Bytes appended but not yet durable.", "gauge",
              st.pending_bytes);
    write_u64(b, "floodgate_broker_store_compactions_total", "Oldest segments compacted and removed.",
              "counter", s->st.dropped_segments);
    write_u64(b, "floodgate_broker_disk_free_bytes", "Free bytes of the data directory's file system.",
              "gauge", st.disk_free);
    write_u64(b, "floodgate_broker_disk_free_limit_bytes",
              "disk_free_limit: under it new messages are refused.", "gauge", st.disk_free_limit);
    write_u64(b, "floodgate_broker_disk_alarm", "1 while free space is under disk_free_limit.", "gauge",
              st.disk_low ? 1 : 0);
    write_u64(b, "floodgate_broker_disk_alarms_total", "Times free space fell under disk_free_limit.",
              "counter", st.disk_alarms);
    write_u64(b, "floodgate_broker_store_write_failing", "1 while a write of the log fails (it is retried).",
              "gauge", store_error(s->store) ? 1 : 0);
    write_u64(b, "floodgate_broker_store_write_errors_total", "Failed writes or syncs of the log.", "counter",
              st.write_errors);
    write_u64(b, "floodgate_broker_store_write_recoveries_total",
              "Failed writes of the log that a retry made durable.", "counter", st.recoveries);
    metrics_family(b, "floodgate_broker_writes_refused_total", "counter",
                   "Requests refused up front: disk_low (new messages under disk_free_limit), "
                   "log_failed (a log write is failing).");
    metrics_sample_u64(b, "floodgate_broker_writes_refused_total",
                       (const char *const[]){"reason", "disk_low", NULL}, s->st.refused_disk_low);
    metrics_sample_u64(b, "floodgate_broker_writes_refused_total",
                       (const char *const[]){"reason", "log_failed", NULL}, s->st.refused_log_failed);
    write_u64(b, "floodgate_broker_commit_groups_total", "Groups of answers released by one durable commit.",
              "counter", s->st.commits);
    write_u64(b, "floodgate_broker_commit_acked_total", "Answers released by durable commits.", "counter",
              s->st.commit_acked);
    write_u64(b, "floodgate_broker_commit_group_size", "Answers released by the last commit.", "gauge",
              s->st.last_group);
    metrics_family(b, "floodgate_broker_commit_seconds", "histogram",
                   "Time from a group's commit request to its durability (what a send waits).");
    metrics_hist_write(b, "floodgate_broker_commit_seconds", NULL, &s->st.commit_latency);
}

void bk_metrics_render(struct bk_server *s, struct buf *b)
{
    const struct bk_engine *e = s->engine;
    write_u64(b, "floodgate_broker_queues", "Queues.", "gauge", e->nqueues);
    write_u64(b, "floodgate_broker_messages", "Messages in all queues.", "gauge", e->nmsgs);
    write_u64(b, "floodgate_broker_body_cache_bytes", "Message bytes kept in memory.", "gauge", e->cache_bytes);
    const struct httpd_stats *hs = httpd_stats(s->httpd);
    write_u64(b, "floodgate_broker_connections", "Open client connections.", "gauge", httpd_nconns(s->httpd));
    write_u64(b, "floodgate_broker_connections_total", "Client connections accepted.", "counter", hs->accepted);
    write_u64(b, "floodgate_broker_connections_refused_total", "Connections closed at once (limit, stopping).",
              "counter", hs->refused);
    write_u64(b, "floodgate_broker_requests_total", "HTTP requests.", "counter", hs->requests);
    metrics_family(b, "floodgate_broker_api_requests_total", "counter", "Requests by API.");
    metrics_sample_u64(b, "floodgate_broker_api_requests_total", (const char *const[]){"api", "sqs", NULL},
                       s->st.sqs_requests);
    metrics_sample_u64(b, "floodgate_broker_api_requests_total", (const char *const[]){"api", "native", NULL},
                       s->st.native_requests);
    metrics_family(b, "floodgate_broker_errors_total", "counter", "Error answers by class.");
    metrics_sample_u64(b, "floodgate_broker_errors_total", (const char *const[]){"class", "4xx", NULL},
                       s->st.errors_4xx);
    metrics_sample_u64(b, "floodgate_broker_errors_total", (const char *const[]){"class", "5xx", NULL},
                       s->st.errors_5xx);
    write_u64(b, "floodgate_broker_long_polls", "Receives waiting for a message.", "gauge", s->nwaiters);
    write_u64(b, "floodgate_broker_long_polls_total", "Receives that waited.", "counter", s->st.polls);
    write_u64(b, "floodgate_broker_long_polls_timed_out_total", "Waits that ended empty.", "counter",
              s->st.polls_timed_out);
    store_metrics(s, b);
    queue_metrics(s, b);
    if (s->topics)
        tp_metrics_render(s->topics, b);
}
