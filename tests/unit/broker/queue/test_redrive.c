/* Dead-letter queues: the move after maxReceiveCount deliveries, the
 * policies that allow or refuse it, ListDeadLetterSourceQueues, and
 * message move tasks back to the source. */
#include "broker/bk_test.h"

static struct memj J;
static struct bk_engine *E;

static void setup(void)
{
    memj_init(&J);
    struct bk_engine_opts o = test_opts();
    E = engine_new(&J, &o);
    create_queue(E, "dlq", NULL);
    create_queue(E, "work",
                 "{\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"arn:aws:sqs:us-east-1:000000000000:dlq\\\","
                 "\\\"maxReceiveCount\\\":2}\"}");
}

static void teardown(void)
{
    bk_engine_free(E);
    memj_free(&J);
}

TestSuite(redrive, .init = setup, .fini = teardown);

Test(redrive, moves_after_max_receives)
{
    send_body(E, T0, "work", "poison");
    for (int i = 0; i < 2; i++) {
        cJSON *m = receive(E, T0 + i * 1000, "work", 1, 0);
        cr_assert_eq(cJSON_GetArraySize(m), 1, "delivery %d", i + 1);
        cJSON_Delete(m);
    }
    /* The third receive finds it over the limit: moved, not delivered. */
    cJSON *m = receive(E, T0 + 3000, "work", 1, 0);
    cr_assert_eq(cJSON_GetArraySize(m), 0);
    cJSON_Delete(m);
    cr_assert_eq(bk_engine_find(E, "work", 4)->nmsgs, 0);
    cr_assert_eq(bk_engine_find(E, "work", 4)->st.redriven, 1);
    cJSON *d = receive(E, T0 + 4000, "dlq", 1, 30);
    cr_assert_eq(cJSON_GetArraySize(d), 1);
    cJSON *msg = cJSON_GetArrayItem(d, 0);
    cr_assert_str_eq(msg_field(msg, "Body"), "poison");
    cr_assert_str_eq(msg_attr(msg, "SentTimestamp"), "1700000000000", "original send time kept");
    cr_assert_str_eq(msg_attr(msg, "ApproximateReceiveCount"), "3");
    cr_assert_str_eq(msg_attr(msg, "DeadLetterQueueSourceArn"), "arn:aws:sqs:us-east-1:000000000000:work");
    cJSON_Delete(d);
}

Test(redrive, sources_and_policies)
{
    cJSON *r = act_ok(E, T0, "ListDeadLetterSourceQueues", "{\"QueueUrl\":\"http://x/000000000000/dlq\"}");
    cJSON *urls = cJSON_GetObjectItem(r, "queueUrls");
    cr_assert_eq(cJSON_GetArraySize(urls), 1);
    cr_assert_str_eq(cJSON_GetArrayItem(urls, 0)->valuestring, "http://127.0.0.1:9324/000000000000/work");
    cJSON_Delete(r);
    enum sqs_err rc;
    /* A DLQ that does not exist, or of the other type. */
    cJSON_Delete(act(E, T0, "CreateQueue",
                     "{\"QueueName\":\"x\",\"Attributes\":{\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":"
                     "\\\"arn:aws:sqs:us-east-1:000000000000:nope\\\",\\\"maxReceiveCount\\\":\\\"3\\\"}\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_VALUE);
    create_queue(E, "fd.fifo", "{\"FifoQueue\":\"true\"}");
    cJSON_Delete(act(E, T0, "CreateQueue",
                     "{\"QueueName\":\"y\",\"Attributes\":{\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":"
                     "\\\"arn:aws:sqs:us-east-1:000000000000:fd.fifo\\\",\\\"maxReceiveCount\\\":3}\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_VALUE);
    /* denyAll on the DLQ refuses new sources. */
    cJSON_Delete(act_ok(E, T0, "SetQueueAttributes",
                        "{\"QueueUrl\":\"http://x/000000000000/dlq\",\"Attributes\":{\"RedriveAllowPolicy\":"
                        "\"{\\\"redrivePermission\\\":\\\"denyAll\\\"}\"}}"));
    cJSON_Delete(act(E, T0, "CreateQueue",
                     "{\"QueueName\":\"z\",\"Attributes\":{\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":"
                     "\\\"arn:aws:sqs:us-east-1:000000000000:dlq\\\",\\\"maxReceiveCount\\\":3}\"}}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_ATTRIBUTE_VALUE);
    /* Removing a policy with "". */
    cJSON_Delete(act_ok(E, T0, "SetQueueAttributes",
                        "{\"QueueUrl\":\"http://x/000000000000/work\",\"Attributes\":{\"RedrivePolicy\":\"\"}}"));
    cr_assert_null(bk_engine_find(E, "work", 4)->a.dlq_name);
}

Test(redrive, move_task_back_to_source)
{
    for (int i = 0; i < 5; i++)
        send_body(E, T0, "work", "m");
    for (int round = 0; round < 3; round++)
        cJSON_Delete(receive(E, T0 + round, "work", 10, 0));
    cr_assert_eq(bk_engine_find(E, "dlq", 3)->nmsgs, 5);
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "StartMessageMoveTask", "{\"SourceArn\":\"arn:aws:sqs:us-east-1:000000000000:work\"}", &rc));
    cr_assert_eq(rc, SQS_E_INVALID_PARAMETER_VALUE, "the source must be a DLQ");
    cJSON *r = act_ok(E, T0 + 10, "StartMessageMoveTask",
                      "{\"SourceArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\"}");
    cr_assert_not_null(msg_field(r, "TaskHandle"));
    cJSON_Delete(r);
    cr_assert_eq(bk_engine_find(E, "dlq", 3)->nmsgs, 0);
    struct bk_queue *w = bk_engine_find(E, "work", 4);
    cr_assert_eq(w->nmsgs, 5);
    r = act_ok(E, T0 + 20, "ListMessageMoveTasks", "{\"SourceArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\"}");
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "Results"), 0);
    cr_assert_str_eq(msg_field(t, "Status"), "COMPLETED");
    cr_assert_eq(cJSON_GetObjectItem(t, "ApproximateNumberOfMessagesMoved")->valuedouble, 5);
    cJSON_Delete(r);
    /* Moved back messages count receives afresh. */
    cJSON *m = receive(E, T0 + 30, "work", 1, 30);
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(m, 0), "ApproximateReceiveCount"), "1");
    cJSON_Delete(m);
}

Test(redrive, rate_limited_task_and_cancel)
{
    for (int i = 0; i < 10; i++)
        send_body(E, T0, "work", "m");
    for (int round = 0; round < 3; round++)
        cJSON_Delete(receive(E, T0 + round, "work", 10, 0));
    cJSON *r = act_ok(E, T0, "StartMessageMoveTask",
                      "{\"SourceArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\",\"MaxNumberOfMessagesPerSecond\":2,"
                      "\"DestinationArn\":\"arn:aws:sqs:us-east-1:000000000000:work\"}");
    char handle[64];
    snprintf(handle, sizeof handle, "%s", msg_field(r, "TaskHandle"));
    cJSON_Delete(r);
    cr_assert_eq(bk_engine_find(E, "work", 4)->nmsgs, 2);
    bk_engine_housekeep(E, T0 + 1000);
    bk_engine_housekeep(E, T0 + 2000);
    cr_assert_eq(bk_engine_find(E, "work", 4)->nmsgs, 6);
    char p[128];
    snprintf(p, sizeof p, "{\"TaskHandle\":\"%s\"}", handle);
    r = act_ok(E, T0 + 2000, "CancelMessageMoveTask", p);
    cr_assert_eq(cJSON_GetObjectItem(r, "ApproximateNumberOfMessagesMoved")->valuedouble, 6);
    cJSON_Delete(r);
    bk_engine_housekeep(E, T0 + 3000);
    cr_assert_eq(bk_engine_find(E, "work", 4)->nmsgs, 6);
}
