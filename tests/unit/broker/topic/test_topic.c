/* Unit tests for topics (src/broker/topic*.c) over a real queue engine
 * with an in-memory journal, on a controlled clock: topics and
 * attributes, subscriptions, fan-out into queues (envelope, raw, filter
 * policies, FIFO groups and deduplication), dead-letter queues, batches,
 * http subscriptions' confirmation and push queues (without a loop: no
 * POSTs), paging, and the snapshot across a reload. */
#include "broker/bk_test.h"

#include "broker/topic/topic.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct memj J;
static struct bk_engine *E;
static struct tp_engine *T;

static void setup(void)
{
    memj_init(&J);
    struct bk_engine_opts o = test_opts();
    E = engine_new(&J, &o);
    T = tp_engine_new(E, NULL);
}

static void teardown(void)
{
    tp_engine_free(T);
    bk_engine_free(E);
    memj_free(&J);
}

TestSuite(topic, .init = setup, .fini = teardown);

#define ARN(name) "arn:aws:sns:us-east-1:000000000000:" name
#define QARN(name) "arn:aws:sqs:us-east-1:000000000000:" name

/* Runs an SNS action with params as JSON text (single quotes allowed). */
static cJSON *tact_at(uint64_t now, const char *action, const char *params, enum sns_err *rc,
                      struct sns_error *err, bool *sync)
{
    char *t = strdup(params);
    for (char *c = t; *c; c++)
        if (*c == '\'')
            *c = '"';
    cJSON *p = cJSON_Parse(t);
    cr_assert(p, "bad test JSON: %s", t);
    free(t);
    struct tp_ctx ctx = {.now = now, .base_url = "http://127.0.0.1:9324"};
    cJSON *res = NULL;
    *rc = tp_action(T, &ctx, action, p, &res, err);
    if (sync)
        *sync = ctx.need_sync;
    cJSON_Delete(p);
    return res;
}

static cJSON *tok(const char *action, const char *params)
{
    enum sns_err rc;
    struct sns_error err;
    cJSON *r = tact_at(T0, action, params, &rc, &err, NULL);
    cr_assert_eq(rc, SNS_OK, "%s %s: %s", action, params, err.message);
    return r;
}

static struct sns_error tfail(const char *action, const char *params, enum sns_err want)
{
    enum sns_err rc;
    struct sns_error err;
    cJSON *r = tact_at(T0, action, params, &rc, &err, NULL);
    cr_assert_eq(rc, want, "%s %s: got %s (%s)", action, params, sns_err_code(rc), err.message);
    cr_assert_null(r);
    return err;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *sub_arn(const char *params)
{
    cJSON *r = tok("Subscribe", params);
    char *arn = strdup(str(r, "SubscriptionArn"));
    cJSON_Delete(r);
    return arn;
}

/* Bodies in queue q, in receive order, deleted as they are read. */
static cJSON *bodies(const char *q)
{
    cJSON *out = cJSON_CreateArray();
    for (;;) {
        cJSON *msgs = receive(E, T0 + 1, q, 10, 30);
        int n = cJSON_GetArraySize(msgs);
        for (int i = 0; i < n; i++) {
            cJSON *m = cJSON_GetArrayItem(msgs, i);
            cJSON_AddItemToArray(out, cJSON_Duplicate(m, true));
            delete_handle(E, T0 + 1, q, msg_field(m, "ReceiptHandle"));
        }
        cJSON_Delete(msgs);
        if (n == 0)
            return out;
    }
}

Test(topic, lifecycle_and_attributes)
{
    cJSON *r = tok("CreateTopic", "{'Name':'orders','Attributes':{'DisplayName':'Orders'},"
                                  "'Tags':[{'Key':'k','Value':'v'}]}");
    cr_assert_str_eq(str(r, "TopicArn"), ARN("orders"));
    cJSON_Delete(r);
    cJSON_Delete(tok("CreateTopic", "{'Name':'orders'}"));
    cr_assert_eq(T->ntopics, 1);
    tfail("CreateTopic", "{'Name':'orders','Attributes':{'DisplayName':'X'}}", SNS_E_INVALID_PARAMETER);
    tfail("CreateTopic", "{'Name':'a.fifo'}", SNS_E_INVALID_PARAMETER);
    tfail("CreateTopic", "{'Name':'x','Attributes':{'Nope':'1'}}", SNS_E_INVALID_PARAMETER);
    cr_assert_eq(T->ntopics, 1, "a refused create leaves nothing behind");
    r = tok("GetTopicAttributes", "{'TopicArn':'" ARN("orders") "'}");
    const cJSON *a = cJSON_GetObjectItem(r, "Attributes");
    cr_assert_str_eq(str(a, "DisplayName"), "Orders");
    cr_assert_str_eq(str(a, "SubscriptionsConfirmed"), "0");
    cr_assert_null(cJSON_GetObjectItem(a, "FifoTopic"));
    cJSON_Delete(r);
    cJSON_Delete(tok("SetTopicAttributes", "{'TopicArn':'" ARN("orders") "','AttributeName':'DeliveryPolicy',"
                                           "'AttributeValue':'{\\'http\\':{\\'defaultHealthyRetryPolicy\\':"
                                           "{\\'numRetries\\':7}}}'}"));
    cr_assert_eq(tp_find_topic(T, "orders")->http_defaults.num_retries, 7);
    tfail("SetTopicAttributes", "{'TopicArn':'" ARN("orders") "','AttributeName':'SignatureVersion',"
                                "'AttributeValue':'3'}", SNS_E_INVALID_PARAMETER);
    tfail("GetTopicAttributes", "{'TopicArn':'" ARN("none") "'}", SNS_E_NOT_FOUND);
    tfail("GetTopicAttributes", "{'TopicArn':'arn:aws:sns:us-east-1:000000000000:a:b'}",
          SNS_E_INVALID_PARAMETER);
    cJSON_Delete(tok("DeleteTopic", "{'TopicArn':'" ARN("orders") "'}"));
    cJSON_Delete(tok("DeleteTopic", "{'TopicArn':'" ARN("orders") "'}"));
    cr_assert_eq(T->ntopics, 0);
    tfail("Frobnicate", "{}", SNS_E_INVALID_ACTION);
}

Test(topic, fifo_topic_attributes)
{
    cJSON_Delete(tok("CreateTopic", "{'Name':'jobs.fifo','Attributes':{'FifoTopic':'true'}}"));
    struct tp_topic *tp = tp_find_topic(T, "jobs.fifo");
    cr_assert(tp && tp->fifo && !tp->content_dedup);
    cJSON_Delete(tok("SetTopicAttributes", "{'TopicArn':'" ARN("jobs.fifo") "','AttributeName':"
                                           "'ContentBasedDeduplication','AttributeValue':'true'}"));
    cr_assert(tp->content_dedup);
    cJSON_Delete(tok("CreateTopic", "{'Name':'std'}"));
    tfail("SetTopicAttributes", "{'TopicArn':'" ARN("std") "','AttributeName':'ContentBasedDeduplication',"
                                "'AttributeValue':'true'}", SNS_E_INVALID_PARAMETER);
}

Test(topic, fanout_envelope_raw_and_filters)
{
    create_queue(E, "all", NULL);
    create_queue(E, "raw", NULL);
    create_queue(E, "big", NULL);
    cJSON_Delete(tok("CreateTopic", "{'Name':'pay'}"));
    free(sub_arn("{'TopicArn':'" ARN("pay") "','Protocol':'sqs','Endpoint':'" QARN("all") "'}"));
    free(sub_arn("{'TopicArn':'" ARN("pay") "','Protocol':'sqs','Endpoint':'" QARN("raw") "',"
                 "'Attributes':{'RawMessageDelivery':'true'}}"));
    free(sub_arn("{'TopicArn':'" ARN("pay") "','Protocol':'sqs','Endpoint':'" QARN("big") "',"
                 "'Attributes':{'FilterPolicy':'{\\'amount\\':[{\\'numeric\\':[\\'>\\',100]}]}'}}"));
    enum sns_err rc;
    struct sns_error err;
    bool sync = false;
    cJSON *r = tact_at(T0, "Publish", "{'TopicArn':'" ARN("pay") "','Message':'small','Subject':'S',"
                       "'MessageAttributes':{'amount':{'DataType':'Number','StringValue':'5'}}}",
                       &rc, &err, &sync);
    cr_assert_eq(rc, SNS_OK, "%s", err.message);
    cr_assert(sync, "a publish that sent to queues waits for their commit");
    char mid[40];
    snprintf(mid, sizeof mid, "%s", str(r, "MessageId"));
    cJSON_Delete(r);
    cJSON_Delete(tok("Publish", "{'TopicArn':'" ARN("pay") "','Message':'large',"
                                "'MessageAttributes':{'amount':{'DataType':'Number','StringValue':'500'}}}"));
    cJSON *all = bodies("all"), *raw = bodies("raw"), *big = bodies("big");
    cr_assert_eq(cJSON_GetArraySize(all), 2);
    cr_assert_eq(cJSON_GetArraySize(raw), 2);
    cr_assert_eq(cJSON_GetArraySize(big), 1);
    cJSON *env = cJSON_Parse(msg_field(cJSON_GetArrayItem(all, 0), "Body"));
    cr_assert_str_eq(str(env, "Type"), "Notification");
    cr_assert_str_eq(str(env, "MessageId"), mid);
    cr_assert_str_eq(str(env, "Message"), "small");
    cr_assert_str_eq(str(env, "Subject"), "S");
    cr_assert_null(cJSON_GetObjectItem(env, "Signature"), "no signer: unsigned");
    cJSON *ea = cJSON_GetObjectItem(cJSON_GetObjectItem(env, "MessageAttributes"), "amount");
    cr_assert_str_eq(str(ea, "Type"), "Number");
    cr_assert_str_eq(str(ea, "Value"), "5");
    cJSON_Delete(env);
    const cJSON *rm = cJSON_GetArrayItem(raw, 0);
    cr_assert_str_eq(msg_field(rm, "Body"), "small");
    const cJSON *ma = cJSON_GetObjectItem(cJSON_GetObjectItem(rm, "MessageAttributes"), "amount");
    cr_assert_str_eq(str(ma, "StringValue"), "5");
    env = cJSON_Parse(msg_field(cJSON_GetArrayItem(big, 0), "Body"));
    cr_assert_str_eq(str(env, "Message"), "large");
    cJSON_Delete(env);
    cJSON_Delete(all);
    cJSON_Delete(raw);
    cJSON_Delete(big);
    struct tp_topic *tp = tp_find_topic(T, "pay");
    cr_assert_eq(tp->st.published, 2);
    cr_assert_eq(tp->st.filtered, 1);
    cr_assert_eq(tp->st.deliveries, 5);
}

Test(topic, publish_without_subscribers_writes_nothing)
{
    cJSON_Delete(tok("CreateTopic", "{'Name':'quiet'}"));
    enum sns_err rc;
    struct sns_error err;
    bool sync = true;
    cJSON_Delete(tact_at(T0, "Publish", "{'TopicArn':'" ARN("quiet") "','Message':'m'}", &rc, &err, &sync));
    cr_assert_eq(rc, SNS_OK);
    cr_assert_not(sync);
}

Test(topic, fifo_groups_and_deduplication)
{
    create_queue(E, "l.fifo", "{\"FifoQueue\":\"true\"}");
    cJSON_Delete(tok("CreateTopic", "{'Name':'l.fifo','Attributes':{'FifoTopic':'true',"
                                    "'ContentBasedDeduplication':'true'}}"));
    tfail("Subscribe", "{'TopicArn':'" ARN("l.fifo") "','Protocol':'sqs','Endpoint':'" QARN("std") "'}",
          SNS_E_INVALID_PARAMETER);
    free(sub_arn("{'TopicArn':'" ARN("l.fifo") "','Protocol':'sqs','Endpoint':'" QARN("l.fifo") "',"
                 "'Attributes':{'RawMessageDelivery':'true'}}"));
    cJSON *a = tok("Publish", "{'TopicArn':'" ARN("l.fifo") "','Message':'one','MessageGroupId':'g'}");
    cJSON *b = tok("Publish", "{'TopicArn':'" ARN("l.fifo") "','Message':'two','MessageGroupId':'g'}");
    cJSON *dup = tok("Publish", "{'TopicArn':'" ARN("l.fifo") "','Message':'one','MessageGroupId':'g'}");
    cr_assert_str_eq(str(dup, "MessageId"), str(a, "MessageId"));
    cr_assert_str_eq(str(dup, "SequenceNumber"), str(a, "SequenceNumber"));
    cr_assert(strcmp(str(b, "SequenceNumber"), str(a, "SequenceNumber")) > 0);
    cr_assert_eq(strlen(str(a, "SequenceNumber")), 20);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(dup);
    cJSON *got = bodies("l.fifo");
    cr_assert_eq(cJSON_GetArraySize(got), 2, "the duplicate is not delivered");
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(got, 0), "Body"), "one");
    cr_assert_str_eq(msg_attr(cJSON_GetArrayItem(got, 0), "MessageGroupId"), "g");
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(got, 1), "Body"), "two");
    cJSON_Delete(got);
    /* After five minutes the same content is a new message. */
    enum sns_err rc;
    struct sns_error err;
    cJSON *later = tact_at(T0 + TP_DEDUP_WINDOW_MS + 1, "Publish",
                           "{'TopicArn':'" ARN("l.fifo") "','Message':'one','MessageGroupId':'g',"
                           "'MessageDeduplicationId':'fresh'}", &rc, &err, NULL);
    cr_assert_eq(rc, SNS_OK, "%s", err.message);
    cJSON_Delete(later);
    cr_assert_null(tp_find_topic(T, "l.fifo")->dedup->next, "expired entries were dropped");
}

Test(topic, refused_delivery_goes_to_the_dead_letter_queue)
{
    create_queue(E, "dlq", NULL);
    cJSON_Delete(tok("CreateTopic", "{'Name':'t'}"));
    free(sub_arn("{'TopicArn':'" ARN("t") "','Protocol':'sqs','Endpoint':'" QARN("missing") "',"
                 "'Attributes':{'RedrivePolicy':'{\\'deadLetterTargetArn\\':\\'" QARN("dlq") "\\'}'}}"));
    free(sub_arn("{'TopicArn':'" ARN("t") "','Protocol':'sqs','Endpoint':'" QARN("missing2") "'}"));
    cJSON_Delete(tok("Publish", "{'TopicArn':'" ARN("t") "','Message':'lost?'}"));
    cJSON *got = bodies("dlq");
    cr_assert_eq(cJSON_GetArraySize(got), 1);
    cJSON_Delete(got);
    cr_assert_eq(T->st.dead_lettered, 1);
    cr_assert_eq(T->st.dropped, 1);
    tfail("SetSubscriptionAttributes", "{'SubscriptionArn':'" ARN("t") ":x','AttributeName':'RedrivePolicy',"
                                       "'AttributeValue':'{}'}", SNS_E_NOT_FOUND);
}

Test(topic, batch_with_a_failed_entry)
{
    create_queue(E, "q", NULL);
    cJSON_Delete(tok("CreateTopic", "{'Name':'b'}"));
    free(sub_arn("{'TopicArn':'" ARN("b") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
                 "'Attributes':{'RawMessageDelivery':'true'}}"));
    cJSON *r = tok("PublishBatch", "{'TopicArn':'" ARN("b") "','PublishBatchRequestEntries':["
                                   "{'Id':'a','Message':'1'},{'Id':'b','Message':''},{'Id':'c','Message':'3'}]}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Successful")), 2);
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "Failed"), 0);
    cr_assert_str_eq(str(f, "Id"), "b");
    cr_assert_str_eq(str(f, "Code"), "InvalidParameter");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(f, "SenderFault")));
    cJSON_Delete(r);
    cJSON *got = bodies("q");
    cr_assert_eq(cJSON_GetArraySize(got), 2);
    cJSON_Delete(got);
    tfail("PublishBatch", "{'TopicArn':'" ARN("b") "','PublishBatchRequestEntries':[]}", SNS_E_EMPTY_BATCH);
}

Test(topic, http_subscription_confirmation_and_push_queue)
{
    cJSON_Delete(tok("CreateTopic", "{'Name':'h'}"));
    cJSON *r = tok("Subscribe", "{'TopicArn':'" ARN("h") "','Protocol':'http','Endpoint':'http://127.0.0.1:1/x'}");
    cr_assert_str_eq(str(r, "SubscriptionArn"), "pending confirmation");
    cJSON_Delete(r);
    struct tp_sub *s = tp_find_topic(T, "h")->subs;
    cr_assert_not(s->confirmed);
    cr_assert_eq(strlen(s->token), 128);
    cr_assert_not_null(bk_engine_find(E, s->push_queue, strlen(s->push_queue)));
    char q[64];
    snprintf(q, sizeof q, "%s", s->push_queue);
    /* The confirmation is the push queue's first message. */
    cJSON *msgs = receive(E, T0 + 1, q, 10, 30);
    cr_assert_eq(cJSON_GetArraySize(msgs), 1);
    const cJSON *m = cJSON_GetArrayItem(msgs, 0);
    const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "MessageAttributes"), "t");
    cr_assert_str_eq(str(t, "StringValue"), "SubscriptionConfirmation");
    cJSON *env = cJSON_Parse(msg_field(m, "Body"));
    cr_assert_str_eq(str(env, "Token"), s->token);
    cr_assert(strstr(str(env, "SubscribeURL"), "http://127.0.0.1:9324/?Action=ConfirmSubscription&TopicArn="
                                               "arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Ah&Token="));
    cJSON_Delete(env);
    delete_handle(E, T0 + 1, q, msg_field(m, "ReceiptHandle"));
    cJSON_Delete(msgs);
    /* Nothing is pushed before the confirmation. */
    cJSON_Delete(tok("Publish", "{'TopicArn':'" ARN("h") "','Message':'early'}"));
    cr_assert_eq(qcount(E, q, 0), 0);
    tfail("ConfirmSubscription", "{'TopicArn':'" ARN("h") "','Token':'wrong'}", SNS_E_INVALID_PARAMETER);
    char params[512];
    snprintf(params, sizeof params, "{'TopicArn':'" ARN("h") "','Token':'%s'}", s->token);
    r = tok("ConfirmSubscription", params);
    cr_assert_str_eq(str(r, "SubscriptionArn"), s->arn);
    cJSON_Delete(r);
    cr_assert(s->confirmed);
    cJSON_Delete(tok("ConfirmSubscription", params)); /* again: same answer */
    cJSON_Delete(tok("Publish", "{'TopicArn':'" ARN("h") "','Message':'late'}"));
    cr_assert_eq(qcount(E, q, 0), 1);
    tfail("SetSubscriptionAttributes", "{'SubscriptionArn':'x','AttributeName':'RawMessageDelivery',"
                                       "'AttributeValue':'true'}", SNS_E_INVALID_PARAMETER);
    char arn[256];
    snprintf(arn, sizeof arn, "{'SubscriptionArn':'%s','AttributeName':'DeliveryPolicy','AttributeValue':"
             "'{\\'throttlePolicy\\':{\\'maxReceivesPerSecond\\':7}}'}", s->arn);
    cJSON_Delete(tok("SetSubscriptionAttributes", arn));
    cr_assert_eq(s->policy.max_per_second, 7);
    snprintf(arn, sizeof arn, "{'SubscriptionArn':'%s'}", s->arn);
    cJSON_Delete(tok("Unsubscribe", arn));
    cr_assert_null(bk_engine_find(E, q, strlen(q)), "the push queue goes with the subscription");
}

Test(topic, list_subscriptions_pages)
{
    cJSON_Delete(tok("CreateTopic", "{'Name':'p1'}"));
    cJSON_Delete(tok("CreateTopic", "{'Name':'p2'}"));
    char params[256];
    for (int i = 0; i < 150; i++) {
        snprintf(params, sizeof params, "{'TopicArn':'%s','Protocol':'sqs','Endpoint':'" QARN("q%d") "'}",
                 i % 2 ? ARN("p1") : ARN("p2"), i);
        free(sub_arn(params));
    }
    cJSON *r = tok("ListSubscriptions", "{}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Subscriptions")), 100);
    snprintf(params, sizeof params, "{'NextToken':'%s'}", str(r, "NextToken"));
    cJSON_Delete(r);
    r = tok("ListSubscriptions", params);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Subscriptions")), 50);
    cr_assert_null(cJSON_GetObjectItem(r, "NextToken"));
    cJSON_Delete(r);
    r = tok("ListSubscriptionsByTopic", "{'TopicArn':'" ARN("p1") "'}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Subscriptions")), 75);
    cJSON_Delete(r);
    cJSON_Delete(tok("DeleteTopic", "{'TopicArn':'" ARN("p1") "'}"));
    r = tok("ListSubscriptions", "{}");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Subscriptions")), 75);
    cJSON_Delete(r);
}

Test(topic, snapshot_reload)
{
    char dir[] = "/tmp/fg-topic-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    tp_engine_free(T);
    T = tp_engine_new(E, dir);
    cJSON_Delete(tok("CreateTopic", "{'Name':'keep.fifo','Attributes':{'FifoTopic':'true','DisplayName':'K',"
                                    "'ContentBasedDeduplication':'true'},'Tags':[{'Key':'a','Value':'b'}]}"));
    cJSON_Delete(tok("CreateTopic", "{'Name':'web'}"));
    free(sub_arn("{'TopicArn':'" ARN("keep.fifo") "','Protocol':'sqs','Endpoint':'" QARN("k.fifo") "',"
                 "'Attributes':{'RawMessageDelivery':'true','FilterPolicyScope':'MessageBody',"
                 "'FilterPolicy':'{\\'a\\':{\\'b\\':[1]}}'}}"));
    free(sub_arn("{'TopicArn':'" ARN("web") "','Protocol':'http','Endpoint':'http://127.0.0.1:9/h',"
                 "'Attributes':{'DeliveryPolicy':'{\\'healthyRetryPolicy\\':{\\'numRetries\\':9}}'}}"));
    cJSON *before = tok("GetTopicAttributes", "{'TopicArn':'" ARN("keep.fifo") "'}");
    char sub1[256];
    snprintf(sub1, sizeof sub1, "%s", tp_find_topic(T, "keep.fifo")->subs->arn);
    char token[132];
    snprintf(token, sizeof token, "%s", tp_find_topic(T, "web")->subs->token);
    tp_engine_free(T);
    T = tp_engine_new(E, dir);
    char err[256];
    cr_assert_eq(tp_engine_load(T, T0, err, sizeof err), 0, "%s", err);
    cJSON *after = tok("GetTopicAttributes", "{'TopicArn':'" ARN("keep.fifo") "'}");
    cr_assert(cJSON_Compare(before, after, true), "topic attributes survive");
    cJSON_Delete(before);
    cJSON_Delete(after);
    struct tp_sub *s = tp_find_sub_arn(T, sub1);
    cr_assert_not_null(s);
    cr_assert(s->raw && s->scope == FILTER_SCOPE_BODY && s->filter && s->confirmed);
    struct tp_sub *h = tp_find_topic(T, "web")->subs;
    cr_assert_str_eq(h->token, token);
    cr_assert_not(h->confirmed);
    cr_assert_eq(h->policy.num_retries, 9);
    cr_assert_eq(tp_find_topic(T, "web")->npending, 1);
    cr_assert_str_eq(cJSON_GetObjectItem(tp_find_topic(T, "keep.fifo")->tags, "a")->valuestring, "b");
    /* A damaged snapshot stops the start instead of losing topics. */
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, TP_META_FILE);
    FILE *f = fopen(path, "w");
    fputs("{\"topics\": [{\"name\": \"bad name!\"}]}", f);
    fclose(f);
    struct tp_engine *t2 = tp_engine_new(E, dir);
    cr_assert_eq(tp_engine_load(t2, T0, err, sizeof err), -1);
    cr_assert(strstr(err, TP_META_FILE), "%s", err);
    tp_engine_free(t2);
    unlink(path);
    rmdir(dir);
}

Test(topic, subscribe_checks)
{
    cJSON_Delete(tok("CreateTopic", "{'Name':'c'}"));
    struct sns_error e = tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'x'}",
                               SNS_E_INVALID_PARAMETER);
    cr_assert_str_eq(e.message, "Invalid parameter: SQS endpoint ARN");
    e = tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'http','Endpoint':'ftp://h/'}",
              SNS_E_INVALID_PARAMETER);
    cr_assert(strstr(e.message, "Endpoint"));
    e = tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
              "'Attributes':{'FilterPolicy':'{\\'a\\':\\'x\\'}'}}", SNS_E_INVALID_PARAMETER);
    cr_assert_str_eq(e.message, "Invalid parameter: Attributes Reason: FilterPolicy: \"a\" must be an "
                                "object or an array");
    e = tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
              "'Attributes':{'DeliveryPolicy':'{}'}}", SNS_E_INVALID_PARAMETER);
    cr_assert(strstr(e.message, "does not support delivery policies"), "%s", e.message);
    e = tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
              "'Attributes':{'RawMessageDelivery':'maybe'}}", SNS_E_INVALID_PARAMETER);
    cr_assert(strstr(e.message, "RawMessageDelivery"));
    /* A pending http subscription stays counted when an sqs one is refused. */
    free(sub_arn("{'TopicArn':'" ARN("c") "','Protocol':'http','Endpoint':'http://127.0.0.1:1/'}"));
    cr_assert_eq(tp_find_topic(T, "c")->npending, 1);
    tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
          "'Attributes':{'RawMessageDelivery':'maybe'}}", SNS_E_INVALID_PARAMETER);
    cr_assert_eq(tp_find_topic(T, "c")->npending, 1);
    char arn[256];
    snprintf(arn, sizeof arn, "{'SubscriptionArn':'%s'}", tp_find_topic(T, "c")->subs->arn);
    cJSON_Delete(tok("Unsubscribe", arn));
    cr_assert_eq(tp_find_topic(T, "c")->npending, 0);
    tp_find_topic(T, "c")->subs_deleted = 0;
    cr_assert_eq(tp_find_topic(T, "c")->nsubs, 0, "refused subscriptions leave nothing");
    cr_assert_eq(tp_find_topic(T, "c")->subs_deleted, 0);
    char *a = sub_arn("{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
                      "'Attributes':{'RawMessageDelivery':'true'}}");
    char *b = sub_arn("{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "'}");
    cr_assert_str_eq(a, b, "the same endpoint again: the same subscription");
    tfail("Subscribe", "{'TopicArn':'" ARN("c") "','Protocol':'sqs','Endpoint':'" QARN("q") "',"
          "'Attributes':{'RawMessageDelivery':'false'}}", SNS_E_INVALID_PARAMETER);
    free(a);
    free(b);
}
