/* FIFO queues: order within a group, one in-flight batch per group,
 * other groups unaffected, deduplication by id and by content over five
 * minutes, and the FIFO-only parameters. */
#include "broker/bk_test.h"

static struct memj J;
static struct bk_engine *E;

static void setup(void)
{
    memj_init(&J);
    struct bk_engine_opts o = test_opts();
    E = engine_new(&J, &o);
    create_queue(E, "f.fifo", "{\"FifoQueue\":\"true\"}");
    create_queue(E, "c.fifo", "{\"FifoQueue\":\"true\",\"ContentBasedDeduplication\":\"true\"}");
}

static void teardown(void)
{
    bk_engine_free(E);
    memj_free(&J);
}

TestSuite(fifo, .init = setup, .fini = teardown);

static cJSON *fsend(uint64_t now, const char *q, const char *group, const char *dedup, const char *body,
                    enum sqs_err *rc)
{
    char p[1024];
    if (dedup)
        snprintf(p, sizeof p,
                 "{\"QueueUrl\":\"http://x/000000000000/%s\",\"MessageBody\":\"%s\",\"MessageGroupId\":\"%s\","
                 "\"MessageDeduplicationId\":\"%s\"}", q, body, group, dedup);
    else
        snprintf(p, sizeof p,
                 "{\"QueueUrl\":\"http://x/000000000000/%s\",\"MessageBody\":\"%s\",\"MessageGroupId\":\"%s\"}",
                 q, body, group);
    return act(E, now, "SendMessage", p, rc);
}

static void fsend_ok(uint64_t now, const char *group, const char *dedup, const char *body)
{
    enum sqs_err rc;
    cJSON_Delete(fsend(now, "f.fifo", group, dedup, body, &rc));
    cr_assert_eq(rc, SQS_OK);
}

Test(fifo, order_within_group_and_one_batch_in_flight)
{
    fsend_ok(T0, "g1", "1", "a1");
    fsend_ok(T0, "g1", "2", "a2");
    fsend_ok(T0, "g2", "3", "b1");
    fsend_ok(T0, "g1", "4", "a3");
    /* One receive of 2 takes g1's first two in order. */
    cJSON *m = receive(E, T0, "f.fifo", 2, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 2);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m, 0), "Body"), "a1");
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m, 1), "Body"), "a2");
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(m, 0), "MessageGroupId"), "g1");
    cr_assert_not_null(msg_attr(cJSON_GetArrayItem(m, 0), "SequenceNumber"));
    /* g1 is locked while those are in flight: only g2 comes out. */
    cJSON *m2 = receive(E, T0, "f.fifo", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m2), 1);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m2, 0), "Body"), "b1");
    cJSON *none = receive(E, T0, "f.fifo", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(none), 0);
    /* Deleting one of the two is not enough; both unlock the group. */
    cr_assert_eq(delete_handle(E, T0, "f.fifo", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")), SQS_OK);
    cJSON *none2 = receive(E, T0, "f.fifo", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(none2), 0);
    cr_assert_eq(delete_handle(E, T0, "f.fifo", msg_field(cJSON_GetArrayItem(m, 1), "ReceiptHandle")), SQS_OK);
    cJSON *m3 = receive(E, T0, "f.fifo", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m3), 1);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m3, 0), "Body"), "a3");
    cJSON_Delete(m);
    cJSON_Delete(m2);
    cJSON_Delete(m3);
    cJSON_Delete(none);
    cJSON_Delete(none2);
}

Test(fifo, timeout_returns_to_the_head_of_its_group)
{
    fsend_ok(T0, "g", "1", "first");
    fsend_ok(T0, "g", "2", "second");
    cJSON *m = receive(E, T0, "f.fifo", 1, 5);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m, 0), "Body"), "first");
    cJSON *none = receive(E, T0 + 1000, "f.fifo", 1, 5);
    cr_assert_eq(cJSON_GetArraySize(none), 0, "the second waits for the first");
    bk_engine_tick(E, T0 + 5000);
    cJSON *again = receive(E, T0 + 5000, "f.fifo", 10, 5);
    cr_assert_eq(cJSON_GetArraySize(again), 2);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(again, 0), "Body"), "first");
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(again, 0), "ApproximateReceiveCount"), "2");
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(again, 1), "Body"), "second");
    cJSON_Delete(m);
    cJSON_Delete(none);
    cJSON_Delete(again);
}

Test(fifo, dedup_by_id_for_five_minutes)
{
    enum sqs_err rc;
    cJSON *r1 = fsend(T0, "f.fifo", "g", "same", "x", &rc);
    cJSON *r2 = fsend(T0 + 299999, "f.fifo", "g", "same", "x", &rc);
    cr_assert_eq(rc, SQS_OK);
    cr_assert_str_eq(msg_field(r1, "MessageId"), msg_field(r2, "MessageId"));
    cr_assert_str_eq(msg_field(r1, "SequenceNumber"), msg_field(r2, "SequenceNumber"));
    struct bk_queue *q = bk_engine_find(E, "f.fifo", 6);
    cr_assert_eq(q->nmsgs, 1);
    /* Even after the first one is consumed, the id stays taken. */
    cJSON *m = receive(E, T0 + 1000, "f.fifo", 1, 30);
    cr_assert_eq(delete_handle(E, T0 + 1000, "f.fifo", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")), SQS_OK);
    cJSON *r3 = fsend(T0 + 2000, "f.fifo", "g", "same", "x", &rc);
    cr_assert_eq(q->nmsgs, 0);
    bk_engine_housekeep(E, T0 + 300000);
    cJSON *r4 = fsend(T0 + 300000, "f.fifo", "g", "same", "x", &rc);
    cr_assert_eq(q->nmsgs, 1);
    cr_assert_str_neq(msg_field(r1, "MessageId"), msg_field(r4, "MessageId"));
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    cJSON_Delete(r3);
    cJSON_Delete(r4);
    cJSON_Delete(m);
}

Test(fifo, content_based_dedup)
{
    enum sqs_err rc;
    cJSON *r1 = fsend(T0, "c.fifo", "g", NULL, "payload", &rc);
    cr_assert_eq(rc, SQS_OK);
    cJSON *r2 = fsend(T0 + 10, "c.fifo", "other", NULL, "payload", &rc);
    cr_assert_eq(rc, SQS_OK);
    cr_assert_str_eq(msg_field(r1, "MessageId"), msg_field(r2, "MessageId"), "queue-wide scope by default");
    cJSON *r3 = fsend(T0 + 20, "c.fifo", "g", NULL, "payload2", &rc);
    cr_assert_str_neq(msg_field(r1, "MessageId"), msg_field(r3, "MessageId"));
    cr_assert_eq(bk_engine_find(E, "c.fifo", 6)->nmsgs, 2);
    /* Without content dedup, an id is required. */
    cJSON_Delete(fsend(T0, "f.fifo", "g", NULL, "x", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    cJSON_Delete(r3);
}

Test(fifo, dedup_scope_message_group)
{
    create_queue(E, "s.fifo", "{\"FifoQueue\":\"true\",\"DeduplicationScope\":\"messageGroup\"}");
    enum sqs_err rc;
    cJSON_Delete(fsend(T0, "s.fifo", "g1", "d", "x", &rc));
    cJSON_Delete(fsend(T0, "s.fifo", "g2", "d", "x", &rc));
    cJSON_Delete(fsend(T0, "s.fifo", "g2", "d", "x", &rc));
    cr_assert_eq(bk_engine_find(E, "s.fifo", 6)->nmsgs, 2);
}

Test(fifo, fifo_only_parameters)
{
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/f.fifo\",\"MessageBody\":\"x\",\"MessageDeduplicationId\":\"d\"}",
                     &rc));
    cr_assert_eq(rc, SQS_E_MISSING_PARAMETER, "group id is required");
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/f.fifo\",\"MessageBody\":\"x\",\"MessageGroupId\":\"g\","
                     "\"MessageDeduplicationId\":\"d\",\"DelaySeconds\":5}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE, "no per-message delay on FIFO");
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/f.fifo\",\"MessageBody\":\"x\",\"MessageGroupId\":\"g\","
                     "\"MessageDeduplicationId\":\"d0\",\"DelaySeconds\":0}", &rc));
    cr_assert_eq(rc, SQS_OK, "DelaySeconds=0 is no delay of its own: accepted");
    create_queue(E, "std", NULL);
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/std\",\"MessageBody\":\"x\",\"MessageDeduplicationId\":\"d\"}",
                     &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE);
    cJSON_Delete(act(E, T0, "CreateQueue", "{\"QueueName\":\"x\",\"Attributes\":{\"FifoQueue\":\"true\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE, "FIFO queue names end in .fifo");
    cJSON_Delete(act(E, T0, "CreateQueue", "{\"QueueName\":\"y\",\"Attributes\":{\"ContentBasedDeduplication\":\"true\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_NAME);
    cr_assert(bk_engine_find(E, "f.fifo", 6)->a.fifo);
}

Test(fifo, many_groups_interleave)
{
    char g[8], d[8];
    for (int i = 0; i < 30; i++) {
        snprintf(g, sizeof g, "g%d", i % 3);
        snprintf(d, sizeof d, "d%d", i);
        fsend_ok(T0, g, d, d);
    }
    /* Drain with vis 30, deleting as we go: each group's bodies arrive in order. */
    int last[3] = {-1, -1, -1}, got = 0;
    for (int round = 0; round < 40 && got < 30; round++) {
        cJSON *m = receive(E, T0, "f.fifo", 3, 30);
        cJSON *it;
        cJSON_ArrayForEach(it, m)
        {
            int n = atoi(msg_field(it, "Body") + 1);
            int grp = atoi(msg_attr(it, "MessageGroupId") + 1);
            cr_assert_gt(n, last[grp]);
            last[grp] = n;
            cr_assert_eq(delete_handle(E, T0, "f.fifo", msg_field(it, "ReceiptHandle")), SQS_OK);
            got++;
        }
        cJSON_Delete(m);
    }
    cr_assert_eq(got, 30);
    cr_assert_eq(bk_engine_find(E, "f.fifo", 6)->ngroups, 0, "empty groups are freed");
}

Test(fifo, delay_zero_keeps_the_queue_delay)
{
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "CreateQueue",
                     "{\"QueueName\":\"d.fifo\",\"Attributes\":{\"FifoQueue\":\"true\",\"DelaySeconds\":\"5\"}}", &rc));
    cr_assert_eq(rc, SQS_OK);
    cJSON_Delete(act(E, T0, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/d.fifo\",\"MessageBody\":\"x\",\"MessageGroupId\":\"g\","
                     "\"MessageDeduplicationId\":\"d\",\"DelaySeconds\":0}", &rc));
    cr_assert_eq(rc, SQS_OK);
    bk_engine_tick(E, T0 + 1000);
    cJSON *m = receive(E, T0 + 1000, "d.fifo", 1, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 0, "the queue's 5 s delay still applies");
    cJSON_Delete(m);
    bk_engine_tick(E, T0 + 5000);
    m = receive(E, T0 + 5000, "d.fifo", 1, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 1);
    cJSON_Delete(m);
}

Test(fifo, all_attributes_show_the_fifo_defaults)
{
    cJSON *r = act_ok(E, T0, "GetQueueAttributes",
                      "{\"QueueUrl\":\"http://x/000000000000/f.fifo\",\"AttributeNames\":[\"All\"]}");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "Attributes");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(a, "DeduplicationScope")->valuestring, "queue");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(a, "FifoThroughputLimit")->valuestring, "perQueue");
    cJSON_Delete(r);
    create_queue(E, "plain", NULL);
    r = act_ok(E, T0, "GetQueueAttributes",
               "{\"QueueUrl\":\"http://x/000000000000/plain\",\"AttributeNames\":[\"All\"]}");
    a = cJSON_GetObjectItemCaseSensitive(r, "Attributes");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(a, "DeduplicationScope"), "standard queues have none");
    cJSON_Delete(r);
}
