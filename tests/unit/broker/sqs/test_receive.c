/* ReceiveMessage in typed form (act_msg.c: bk__receive_args,
 * bk__receive_render), as a parked long poll uses it: the parameters are
 * decoded once, the receive asks to wait, the queue wakes, the same typed
 * arguments run again and the messages are shown by the attribute
 * selection; a deleted queue is gone for a poll that keeps its id. */
#include "broker/bk_test.h"

static struct memj MJ;
static struct bk_engine *E;

static void setup(void)
{
    memj_init(&MJ);
    struct bk_engine_opts o = test_opts();
    E = engine_new(&MJ, &o);
}

static void teardown(void)
{
    bk_engine_free(E);
    memj_free(&MJ);
}

TestSuite(receive, .init = setup, .fini = teardown);

#define LP_URL "\"QueueUrl\":\"http://x/000000000000/lp\""

/* Decodes params (JSON text) into typed form, asserting success. */
static struct bk_queue *typed(const char *params, struct bk_receive_args *a, struct bk_recv_select *sel)
{
    cJSON *p = cJSON_Parse(params);
    cr_assert(p, "bad test JSON: %s", params);
    struct bk_queue *q;
    struct sqs_error err;
    cr_assert_eq(bk__receive_args(E, p, &q, a, sel, &err), SQS_OK);
    cJSON_Delete(p);
    return q;
}

Test(receive, parks_wakes_and_runs_again_typed)
{
    create_queue(E, "lp", NULL);
    struct bk_receive_args a;
    struct bk_recv_select sel;
    struct bk_queue *q = typed("{" LP_URL ",\"WaitTimeSeconds\":5,\"MaxNumberOfMessages\":3,"
                               "\"AttributeNames\":[\"SentTimestamp\"],"
                               "\"MessageSystemAttributeNames\":[\"ApproximateReceiveCount\"],"
                               "\"MessageAttributeNames\":[\"color.*\"]}",
                               &a, &sel);
    cr_assert_eq(a.max, 3);
    cr_assert(a.has_wait && a.wait_s == 5 && !a.has_visibility);

    struct bk_ctx ctx = {.now = T0};
    struct bk_receive_result r;
    struct bk_error be;
    cr_assert_eq(bk_receive(E, &ctx, q, &a, &r, &be), BK_OK);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(ctx.wait_ms, 5000);
    cr_assert_eq(ctx.wait_q, q);
    struct bk_waiter w = {0};
    bk_waiter_add(q, &w);

    cJSON_Delete(act_ok(E, T0 + 100, "SendMessage",
                        "{" LP_URL ",\"MessageBody\":\"hi\",\"MessageAttributes\":{"
                        "\"color.x\":{\"DataType\":\"String\",\"StringValue\":\"red\"},"
                        "\"size\":{\"DataType\":\"Number\",\"StringValue\":\"3\"}}}"));
    cr_assert_eq(bk_engine_pop_wake(E), q);
    bk_waiter_remove(E, &w);

    struct bk_ctx again = {.now = T0 + 200};
    cr_assert_eq(bk_receive(E, &again, bk_engine_find_id(E, q->qid), &a, &r, &be), BK_OK);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(again.wait_ms, 0);
    cJSON *res = bk__receive_render(E, &r, &sel);
    bk_receive_done(&r);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "Messages"), 0);
    cr_assert_str_eq(msg_field(m, "Body"), "hi");
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(m, "Attributes");
    cr_assert_eq(cJSON_GetArraySize(sa), 2, "one system attribute from each list");
    cr_assert_str_eq(bk__param_str(sa, "SentTimestamp"), "1700000000100");
    cr_assert_str_eq(bk__param_str(sa, "ApproximateReceiveCount"), "1");
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(m, "MessageAttributes");
    cr_assert_eq(cJSON_GetArraySize(ma), 1);
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(ma, "color.x"));
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(m, "MD5OfMessageAttributes"));
    cJSON_Delete(res);
    bk__recv_select_free(&sel);
}

Test(receive, renders_as_the_action_does)
{
    create_queue(E, "lp", NULL);
    send_body(E, T0, "lp", "same");
    const char *params = "{" LP_URL ",\"AttributeNames\":[\"All\"],\"MessageAttributeNames\":[\"All\"]}";
    struct bk_receive_args a;
    struct bk_recv_select sel;
    struct bk_queue *q = typed(params, &a, &sel);
    cr_assert_eq(sel.nmnames, 1);
    struct bk_ctx ctx = {.now = T0 + 10, .no_wait = true};
    struct bk_receive_result r;
    struct bk_error be;
    cr_assert_eq(bk_receive(E, &ctx, q, &a, &r, &be), BK_OK);
    cJSON *typed_res = bk__receive_render(E, &r, &sel);
    bk_receive_done(&r);
    bk__recv_select_free(&sel);
    /* Received again once visible: the action shows it the same way,
     * but for the count and the receipt. */
    bk_engine_tick(E, T0 + 40000);
    cJSON *act_res = act_ok(E, T0 + 40000, "ReceiveMessage", params);
    const cJSON *m1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(typed_res, "Messages"), 0);
    const cJSON *m2 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(act_res, "Messages"), 0);
    cr_assert_str_eq(msg_field(m1, "MessageId"), msg_field(m2, "MessageId"));
    cr_assert_str_eq(msg_field(m1, "MD5OfBody"), msg_field(m2, "MD5OfBody"));
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m1, "Attributes")),
                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m2, "Attributes")));
    cJSON_Delete(typed_res);
    cJSON_Delete(act_res);
}

Test(receive, a_parked_poll_outlives_its_queue)
{
    create_queue(E, "lp", NULL);
    struct bk_receive_args a;
    struct bk_recv_select sel;
    struct bk_queue *q = typed("{" LP_URL ",\"WaitTimeSeconds\":2}", &a, &sel);
    uint32_t qid = q->qid;
    struct bk_waiter w = {0};
    bk_waiter_add(q, &w);
    cJSON_Delete(act_ok(E, T0, "DeleteQueue", "{" LP_URL "}"));
    cr_assert_eq(bk_engine_pop_orphan(E), &w);
    cr_assert_null(bk_engine_find_id(E, qid), "the run finds no queue: NonExistentQueue");
    create_queue(E, "lp", NULL);
    cr_assert_null(bk_engine_find_id(E, qid), "a queue of the same name is another queue");
    bk__recv_select_free(&sel);
}
