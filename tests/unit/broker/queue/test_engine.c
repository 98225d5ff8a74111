/* The queue engine on a controlled clock: send, receive, delete,
 * visibility and delay timers, retention, stale receipt handles, long-poll
 * wakeups, batches and queue attributes. */
#include "broker/bk_test.h"

static struct memj J;
static struct bk_engine *E;

static void setup(void)
{
    memj_init(&J);
    struct bk_engine_opts o = test_opts();
    E = engine_new(&J, &o);
}

static void teardown(void)
{
    bk_engine_free(E);
    memj_free(&J);
}

TestSuite(engine, .init = setup, .fini = teardown);

Test(engine, send_receive_delete)
{
    create_queue(E, "jobs", NULL);
    send_body(E, T0, "jobs", "hello");
    cr_assert_eq(qcount(E, "jobs", 0), 1);
    cJSON *msgs = receive(E, T0 + 10, "jobs", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(msgs), 1);
    cJSON *m = cJSON_GetArrayItem(msgs, 0);
    cr_assert_str_eq(msg_field(m, "Body"), "hello");
    cr_assert_str_eq(msg_field(m, "MD5OfBody"), "5d41402abc4b2a76b9719d911017c592");
    cr_assert_str_eq(msg_attr(m, "ApproximateReceiveCount"), "1");
    cr_assert_str_eq(msg_attr(m, "SentTimestamp"), "1700000000000");
    cr_assert_eq(qcount(E, "jobs", 0), 0);
    cr_assert_eq(qcount(E, "jobs", 1), 1);
    cr_assert_eq(delete_handle(E, T0 + 20, "jobs", msg_field(m, "ReceiptHandle")), SQS_OK);
    cr_assert_eq(qcount(E, "jobs", 1), 0);
    cJSON_Delete(msgs);
    /* Deleting again (already gone) still succeeds, as in SQS. */
}

Test(engine, visibility_timeout_redelivers)
{
    create_queue(E, "jobs", NULL);
    send_body(E, T0, "jobs", "a");
    cJSON *m1 = receive(E, T0, "jobs", 1, 30);
    cr_assert_eq(cJSON_GetArraySize(m1), 1);
    bk_engine_tick(E, T0 + 29999);
    cJSON *none = receive(E, T0 + 29999, "jobs", 1, 30);
    cr_assert_eq(cJSON_GetArraySize(none), 0);
    cr_assert_eq(bk_engine_next_due(E), T0 + 30000);
    bk_engine_tick(E, T0 + 30000);
    cr_assert_eq(qcount(E, "jobs", 0), 1);
    cJSON *m2 = receive(E, T0 + 30000, "jobs", 1, 30);
    cr_assert_eq(cJSON_GetArraySize(m2), 1);
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(m2, 0), "ApproximateReceiveCount"), "2");
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(m2, 0), "ApproximateFirstReceiveTimestamp"),
                     "1700000000000");
    /* The first delivery's handle is stale: deleting with it succeeds but
     * deletes nothing; the latest handle deletes. */
    cr_assert_eq(delete_handle(E, T0 + 30001, "jobs", msg_field(cJSON_GetArrayItem(m1, 0), "ReceiptHandle")),
                 SQS_OK);
    cr_assert_eq(qcount(E, "jobs", 1), 1);
    cr_assert_eq(delete_handle(E, T0 + 30001, "jobs", msg_field(cJSON_GetArrayItem(m2, 0), "ReceiptHandle")),
                 SQS_OK);
    cr_assert_eq(qcount(E, "jobs", 1), 0);
    cJSON_Delete(m1);
    cJSON_Delete(m2);
    cJSON_Delete(none);
}

Test(engine, delete_after_timeout_with_latest_handle)
{
    create_queue(E, "jobs", NULL);
    send_body(E, T0, "jobs", "a");
    cJSON *m = receive(E, T0, "jobs", 1, 1);
    bk_engine_tick(E, T0 + 1000);
    cr_assert_eq(qcount(E, "jobs", 0), 1);
    /* Visible again but not received again: the handle is still the
     * latest, so it deletes. */
    cr_assert_eq(delete_handle(E, T0 + 1500, "jobs", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")),
                 SQS_OK);
    cr_assert_eq(qcount(E, "jobs", 0), 0);
    cJSON_Delete(m);
}

Test(engine, forged_handle_is_invalid)
{
    create_queue(E, "jobs", NULL);
    send_body(E, T0, "jobs", "a");
    cJSON *m = receive(E, T0, "jobs", 1, 30);
    char h[64];
    snprintf(h, sizeof h, "%s", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle"));
    h[5] = h[5] == 'A' ? 'B' : 'A';
    cr_assert_eq(delete_handle(E, T0, "jobs", h), SQS_E_RECEIPT_HANDLE_INVALID);
    cr_assert_eq(delete_handle(E, T0, "jobs", "garbage"), SQS_E_RECEIPT_HANDLE_INVALID);
    create_queue(E, "other", NULL);
    cr_assert_eq(delete_handle(E, T0, "other", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")),
                 SQS_E_RECEIPT_HANDLE_INVALID);
    cr_assert_eq(qcount(E, "jobs", 1), 1);
    cJSON_Delete(m);
}

Test(engine, delays_queue_and_message)
{
    create_queue(E, "d", "{\"DelaySeconds\":\"5\"}");
    send_body(E, T0, "d", "x");
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/d\",\"MessageBody\":\"y\",\"DelaySeconds\":1}", &rc));
    cr_assert_eq(rc, SQS_OK);
    cr_assert_eq(qcount(E, "d", 2), 2);
    cr_assert_eq(bk_engine_next_due(E), T0 + 1000);
    bk_engine_tick(E, T0 + 1000);
    cJSON *m = receive(E, T0 + 1000, "d", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 1);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m, 0), "Body"), "y");
    bk_engine_tick(E, T0 + 5000);
    cJSON *m2 = receive(E, T0 + 5000, "d", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m2), 1);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m2, 0), "Body"), "x");
    cJSON_Delete(m);
    cJSON_Delete(m2);
}

Test(engine, change_visibility)
{
    create_queue(E, "v", NULL);
    send_body(E, T0, "v", "x");
    cJSON *m = receive(E, T0, "v", 1, 30);
    const char *h = msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle");
    char p[512];
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/v\",\"ReceiptHandle\":\"%s\",\"VisibilityTimeout\":100}", h);
    cJSON_Delete(act_ok(E, T0 + 10000, "ChangeMessageVisibility", p));
    cr_assert_eq(bk_engine_next_due(E), T0 + 110000);
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/v\",\"ReceiptHandle\":\"%s\",\"VisibilityTimeout\":0}", h);
    cJSON_Delete(act_ok(E, T0 + 10000, "ChangeMessageVisibility", p));
    cr_assert_eq(qcount(E, "v", 0), 1);
    /* No longer in flight. */
    enum sqs_err rc;
    cJSON_Delete(act(E, T0 + 10000, "ChangeMessageVisibility", p, &rc));
    cr_assert_eq(rc, SQS_E_MESSAGE_NOT_INFLIGHT);
    /* Beyond 12 hours from the receive. */
    cJSON *m2 = receive(E, T0 + 20000, "v", 1, 30);
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/v\",\"ReceiptHandle\":\"%s\",\"VisibilityTimeout\":43200}",
             msg_field(cJSON_GetArrayItem(m2, 0), "ReceiptHandle"));
    cJSON_Delete(act(E, T0 + 30000, "ChangeMessageVisibility", p, &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
    cJSON_Delete(m);
    cJSON_Delete(m2);
}

Test(engine, retention_expires)
{
    create_queue(E, "r", "{\"MessageRetentionPeriod\":\"60\"}");
    send_body(E, T0, "r", "old");
    send_body(E, T0 + 30000, "r", "new");
    bk_engine_housekeep(E, T0 + 59999);
    cr_assert_eq(qcount(E, "r", 0), 2);
    bk_engine_housekeep(E, T0 + 60000);
    cr_assert_eq(qcount(E, "r", 0), 1);
    cJSON *m = receive(E, T0 + 60000, "r", 10, 30);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m, 0), "Body"), "new");
    bk_engine_housekeep(E, T0 + 90000);
    cr_assert_eq(qcount(E, "r", 1), 0, "in-flight messages expire too");
    cJSON_Delete(m);
}

Test(engine, long_poll_wakes_on_send)
{
    create_queue(E, "lp", NULL);
    struct bk_ctx ctx = {.now = T0, .base_url = "http://h"};
    enum sqs_err rc;
    cJSON *r = act_ctx(E, &ctx, "ReceiveMessage",
                       "{\"QueueUrl\":\"http://x/000000000000/lp\",\"WaitTimeSeconds\":5}", &rc);
    cr_assert_eq(rc, SQS_OK);
    cr_assert_null(r);
    cr_assert_eq(ctx.wait_ms, 5000);
    cr_assert_not_null(ctx.wait_q);
    struct bk_waiter w = {0};
    bk_waiter_add(ctx.wait_q, &w);
    cr_assert_null(bk_engine_pop_wake(E));
    send_body(E, T0 + 100, "lp", "wake");
    struct bk_queue *q = bk_engine_pop_wake(E);
    cr_assert_eq(q, ctx.wait_q);
    cr_assert_null(bk_engine_pop_wake(E), "a queue is on the wake list once");
    bk_waiter_remove(E, &w);
    /* Deleting a queue orphans its waiters. */
    bk_waiter_add(q, &w);
    cJSON_Delete(act_ok(E, T0, "DeleteQueue", "{\"QueueUrl\":\"http://x/000000000000/lp\"}"));
    cr_assert_eq(bk_engine_pop_orphan(E), &w);
    cr_assert_null(w.q);
}

Test(engine, delayed_message_wakes_waiter_at_its_time)
{
    create_queue(E, "lp", NULL);
    cJSON_Delete(act_ok(E, T0, "SendMessage",
                        "{\"QueueUrl\":\"http://x/000000000000/lp\",\"MessageBody\":\"x\",\"DelaySeconds\":2}"));
    struct bk_waiter w = {0};
    bk_waiter_add(bk_engine_find(E, "lp", 2), &w);
    cr_assert_null(bk_engine_pop_wake(E));
    bk_engine_tick(E, T0 + 2000);
    cr_assert_not_null(bk_engine_pop_wake(E));
    bk_waiter_remove(E, &w);
}

Test(engine, batches)
{
    create_queue(E, "b", NULL);
    cJSON *r = act_ok(E, T0, "SendMessageBatch",
                      "{\"QueueUrl\":\"http://x/000000000000/b\",\"Entries\":["
                      "{\"Id\":\"a\",\"MessageBody\":\"one\"},"
                      "{\"Id\":\"b\",\"MessageBody\":\"\"},"
                      "{\"Id\":\"c\",\"MessageBody\":\"three\",\"DelaySeconds\":1000}]}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Successful")), 1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Failed")), 2);
    cJSON_Delete(r);
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "SendMessageBatch",
                     "{\"QueueUrl\":\"http://x/000000000000/b\",\"Entries\":[]}", &rc));
    cr_assert_eq(rc, SQS_E_EMPTY_BATCH);
    cJSON_Delete(act(E, T0, "SendMessageBatch",
                     "{\"QueueUrl\":\"http://x/000000000000/b\",\"Entries\":["
                     "{\"Id\":\"a\",\"MessageBody\":\"1\"},{\"Id\":\"a\",\"MessageBody\":\"2\"}]}", &rc));
    cr_assert_eq(rc, SQS_E_BATCH_IDS_NOT_DISTINCT);
    cJSON_Delete(act(E, T0, "SendMessageBatch",
                     "{\"QueueUrl\":\"http://x/000000000000/b\",\"Entries\":["
                     "{\"Id\":\"a b\",\"MessageBody\":\"1\"}]}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_BATCH_ENTRY_ID);
    char p[4096] = "{\"QueueUrl\":\"http://x/000000000000/b\",\"Entries\":[";
    for (int i = 0; i < 11; i++)
        snprintf(p + strlen(p), sizeof p - strlen(p), "%s{\"Id\":\"i%d\",\"MessageBody\":\"x\"}", i ? "," : "", i);
    strcat(p, "]}");
    cJSON_Delete(act(E, T0, "SendMessageBatch", p, &rc));
    cr_assert_eq(rc, SQS_E_TOO_MANY_ENTRIES);

    /* Delete batch: one good handle, one forged. */
    cJSON *m = receive(E, T0, "b", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 1);
    snprintf(p, sizeof p,
             "{\"QueueUrl\":\"http://x/000000000000/b\",\"Entries\":[{\"Id\":\"1\",\"ReceiptHandle\":\"%s\"},"
             "{\"Id\":\"2\",\"ReceiptHandle\":\"nope\"}]}",
             msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle"));
    r = act_ok(E, T0, "DeleteMessageBatch", p);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Successful")), 1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Failed")), 1);
    cr_assert_eq(qcount(E, "b", 1), 0);
    cJSON_Delete(r);
    cJSON_Delete(m);
}

Test(engine, message_size_limit)
{
    create_queue(E, "s", "{\"MaximumMessageSize\":\"1024\"}");
    char *big = malloc(2100), p[2300];
    memset(big, 'x', 1025);
    big[1025] = '\0';
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/s\",\"MessageBody\":\"%s\"}", big);
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "SendMessage", p, &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
    big[1024] = '\0';
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/s\",\"MessageBody\":\"%s\"}", big);
    cJSON_Delete(act(E, T0, "SendMessage", p, &rc));
    cr_assert_eq(rc, SQS_OK);
    free(big);
    cJSON_Delete(act(E, T0, "CreateQueue",
                     "{\"QueueName\":\"t\",\"Attributes\":{\"MaximumMessageSize\":\"262145\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_VALUE);
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/s\",\"MessageBody\":\"bad \\u0001\"}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_MESSAGE_CONTENTS);
}

Test(engine, queue_attributes_and_listing)
{
    create_queue(E, "alpha", "{\"VisibilityTimeout\":\"45\"}");
    create_queue(E, "alps", NULL);
    create_queue(E, "beta", NULL);
    enum sqs_err rc;
    /* Same name, same attributes: fine; different: QueueAlreadyExists. */
    cJSON_Delete(act(E, T0, "CreateQueue", "{\"QueueName\":\"alpha\",\"Attributes\":{\"VisibilityTimeout\":\"45\"}}", &rc));
    cr_assert_eq(rc, SQS_OK);
    cJSON_Delete(act(E, T0, "CreateQueue", "{\"QueueName\":\"alpha\",\"Attributes\":{\"VisibilityTimeout\":\"46\"}}", &rc));
    cr_assert_eq(rc, SQS_E_QUEUE_NAME_EXISTS);
    cJSON_Delete(act(E, T0, "CreateQueue", "{\"QueueName\":\"bad name\"}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
    cJSON *r = act_ok(E, T0, "ListQueues", "{\"QueueNamePrefix\":\"al\"}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "QueueUrls")), 2);
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "QueueUrls"), 0)->valuestring,
                     "http://127.0.0.1:9324/000000000000/alpha");
    cJSON_Delete(r);
    r = act_ok(E, T0, "ListQueues", "{\"MaxResults\":2}");
    cr_assert_str_eq(cJSON_GetObjectItem(r, "NextToken")->valuestring, "alps");
    cJSON_Delete(r);
    r = act_ok(E, T0, "ListQueues", "{\"MaxResults\":2,\"NextToken\":\"alps\"}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "QueueUrls")), 1);
    cr_assert_null(cJSON_GetObjectItem(r, "NextToken"));
    cJSON_Delete(r);

    send_body(E, T0, "alpha", "m");
    r = act_ok(E, T0, "GetQueueAttributes",
               "{\"QueueUrl\":\"http://x/000000000000/alpha\",\"AttributeNames\":[\"All\"]}");
    cJSON *a = cJSON_GetObjectItem(r, "Attributes");
    cr_assert_str_eq(cJSON_GetObjectItem(a, "VisibilityTimeout")->valuestring, "45");
    cr_assert_str_eq(cJSON_GetObjectItem(a, "ApproximateNumberOfMessages")->valuestring, "1");
    cr_assert_str_eq(cJSON_GetObjectItem(a, "QueueArn")->valuestring, "arn:aws:sqs:us-east-1:000000000000:alpha");
    cr_assert_str_eq(cJSON_GetObjectItem(a, "CreatedTimestamp")->valuestring, "1700000000");
    cJSON_Delete(r);
    cJSON_Delete(act(E, T0, "GetQueueAttributes",
                     "{\"QueueUrl\":\"http://x/000000000000/alpha\",\"AttributeNames\":[\"Nope\"]}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_NAME);
    cJSON_Delete(act_ok(E, T0 + 5000, "SetQueueAttributes",
                        "{\"QueueUrl\":\"http://x/000000000000/alpha\",\"Attributes\":{\"DelaySeconds\":\"3\"}}"));
    cJSON_Delete(act(E, T0, "SetQueueAttributes",
                     "{\"QueueUrl\":\"http://x/000000000000/alpha\",\"Attributes\":{\"DelaySeconds\":\"901\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_VALUE);
    cJSON_Delete(act(E, T0, "SetQueueAttributes",
                     "{\"QueueUrl\":\"http://x/000000000000/alpha\",\"Attributes\":{\"ApproximateNumberOfMessages\":\"3\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_NAME);
    cr_assert_eq(bk_engine_find(E, "alpha", 5)->a.delay_s, 3);
    cr_assert_eq(bk_engine_find(E, "alpha", 5)->modified_ms, T0 + 5000);
    /* Wrong account in the URL: no such queue. */
    cJSON_Delete(act(E, T0, "GetQueueAttributes", "{\"QueueUrl\":\"http://x/123456789012/alpha\"}", &rc));
    cr_assert_eq(rc, SQS_E_NONEXISTENT_QUEUE);
}

Test(engine, tags_and_purge)
{
    create_queue(E, "t", NULL);
    cJSON_Delete(act_ok(E, T0, "TagQueue", "{\"QueueUrl\":\"http://x/000000000000/t\",\"Tags\":{\"team\":\"pay\",\"env\":\"dev\"}}"));
    cJSON_Delete(act_ok(E, T0, "UntagQueue", "{\"QueueUrl\":\"http://x/000000000000/t\",\"TagKeys\":[\"env\"]}"));
    cJSON *r = act_ok(E, T0, "ListQueueTags", "{\"QueueUrl\":\"http://x/000000000000/t\"}");
    cJSON *tags = cJSON_GetObjectItem(r, "Tags");
    cr_assert_eq(cJSON_GetArraySize(tags), 1);
    cr_assert_str_eq(cJSON_GetObjectItem(tags, "team")->valuestring, "pay");
    cJSON_Delete(r);
    for (int i = 0; i < 5; i++)
        send_body(E, T0, "t", "x");
    cJSON_Delete(receive(E, T0, "t", 2, 30));
    cJSON_Delete(act_ok(E, T0, "PurgeQueue", "{\"QueueUrl\":\"http://x/000000000000/t\"}"));
    cr_assert_eq(qcount(E, "t", 0) + qcount(E, "t", 1), 0);
}

Test(engine, unknown_action_and_missing_params)
{
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "Frobnicate", "{}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ACTION);
    cJSON_Delete(act(E, T0, "SendMessage", "{\"MessageBody\":\"x\"}", &rc));
    cr_assert_eq(rc, SQS_E_MISSING_PARAMETER);
    cJSON_Delete(act(E, T0, "SendMessage", "{\"QueueUrl\":\"http://x/000000000000/none\",\"MessageBody\":\"x\"}", &rc));
    cr_assert_eq(rc, SQS_E_NONEXISTENT_QUEUE);
    create_queue(E, "q", NULL);
    cJSON_Delete(act(E, T0, "ReceiveMessage", "{\"QueueUrl\":\"http://x/000000000000/q\",\"MaxNumberOfMessages\":11}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
    cJSON_Delete(act(E, T0, "ReceiveMessage", "{\"QueueUrl\":\"http://x/000000000000/q\",\"WaitTimeSeconds\":21}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
}

Test(engine, message_attributes_filtered_on_receive)
{
    create_queue(E, "a", NULL);
    cJSON_Delete(act_ok(E, T0, "SendMessage",
                        "{\"QueueUrl\":\"http://x/000000000000/a\",\"MessageBody\":\"x\",\"MessageAttributes\":{"
                        "\"color.hue\":{\"DataType\":\"String\",\"StringValue\":\"red\"},"
                        "\"size\":{\"DataType\":\"Number\",\"StringValue\":\"3\"}}}"));
    cJSON *r = act_ok(E, T0, "ReceiveMessage",
                      "{\"QueueUrl\":\"http://x/000000000000/a\",\"MessageAttributeNames\":[\"color.*\"]}");
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "Messages"), 0);
    cJSON *ma = cJSON_GetObjectItem(m, "MessageAttributes");
    cr_assert_eq(cJSON_GetArraySize(ma), 1);
    cr_assert_not_null(cJSON_GetObjectItem(ma, "color.hue"));
    cr_assert_not_null(msg_field(m, "MD5OfMessageAttributes"));
    cr_assert_null(cJSON_GetObjectItem(m, "Attributes"));
    cJSON_Delete(r);
}

/* Drops j's records from n on, as a crash before they were durable would. */
static void lose_from(struct memj *j, size_t n)
{
    while (j->n > n)
        free(j->recs[--j->n].p);
}

/* A receive is answered without waiting for a commit (need_sync stays
 * false) although it appends a STATE record, after the message's SEND.
 * Lost in a crash, that record only makes the message receivable again;
 * the handle the receiver got still deletes it (its generation is above
 * the count the log knows) and the log replays cleanly after that. A
 * FIFO receive lost the same way gives up its group's lock. */
Test(engine, receive_needs_no_commit_and_a_lost_one_redelivers)
{
    create_queue(E, "jobs", NULL);
    create_queue(E, "jobs.fifo", "{\"FifoQueue\":\"true\",\"ContentBasedDeduplication\":\"true\"}");
    send_body(E, T0, "jobs", "a");
    cJSON_Delete(act_ok(E, T0, "SendMessage",
                        "{\"QueueUrl\":\"http://x/000000000000/jobs.fifo\",\"MessageBody\":\"f\","
                        "\"MessageGroupId\":\"g\"}"));
    size_t before = J.n;
    const char *queues[2] = {"jobs", "jobs.fifo"};
    char handles[2][128];
    for (int i = 0; i < 2; i++) {
        char p[256];
        snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/%s\",\"VisibilityTimeout\":60}", queues[i]);
        struct bk_ctx ctx = {.now = T0 + 10, .base_url = "http://127.0.0.1:9324", .no_wait = true};
        enum sqs_err rc;
        cJSON *r = act_ctx(E, &ctx, "ReceiveMessage", p, &rc);
        cr_assert_eq(rc, SQS_OK);
        cr_assert(!ctx.need_sync, "a receive is answered at once");
        cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "Messages"), 0);
        cr_assert_not_null(m);
        snprintf(handles[i], sizeof handles[i], "%s", msg_field(m, "ReceiptHandle"));
        cJSON_Delete(r);
        cr_assert_eq(J.n, before + (size_t)i + 1, "one record per receive");
        cr_assert_eq(J.recs[J.n - 1].type, BK_REC_STATE);
    }
    /* the crash loses both STATE records */
    lose_from(&J, before);
    bk_engine_free(E);
    struct bk_engine_opts o = test_opts();
    E = engine_replay(&J, &o, T0 + 20);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(qcount(E, queues[i], 0), 1, "%s: receivable again", queues[i]);
        cr_assert_eq(qcount(E, queues[i], 1), 0);
    }
    /* the first receiver's delete still works */
    cr_assert_eq(delete_handle(E, T0 + 30, "jobs", handles[0]), SQS_OK);
    cr_assert_eq(qcount(E, "jobs", 0), 0);
    /* the FIFO message is delivered again, count 1, its group locked anew */
    cJSON *msgs = receive(E, T0 + 30, "jobs.fifo", 10, 60);
    cr_assert_eq(cJSON_GetArraySize(msgs), 1);
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(msgs, 0), "ApproximateReceiveCount"), "1");
    cJSON_Delete(msgs);
    bk_engine_free(E);
    E = engine_replay(&J, &o, T0 + 40);
    cr_assert_eq(qcount(E, "jobs", 0) + qcount(E, "jobs", 1), 0, "the delete replays");
    cr_assert_eq(qcount(E, "jobs.fifo", 1), 1);
}
