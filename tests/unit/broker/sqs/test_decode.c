/* Decoding SQS requests in both AWS protocols into the canonical form
 * (src/broker/sqs/proto.c, sqs/query.c, sqs/model.c): every request real
 * clients sent (test_sqs_captured.h) decodes, the query and JSON forms of
 * the same boto3 call decode to the same canonical JSON, and malformed or
 * hostile input is refused with the right error. */
#include <criterion/criterion.h>

#include "broker/sqs/sqs_int.h"
#include "broker/sqs/test_captured.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct decoded {
    enum sqs_err rc;
    enum sqs_proto proto;
    char action[64];
    cJSON *params;
    struct sqs_error err;
};

static struct decoded decode_raw(const char *raw, size_t len)
{
    struct http_header h[32];
    struct http_request req;
    struct decoded d = { 0 };
    int n = http_parse_request(raw, len, &req, h, 32, 16384);
    cr_assert(n > 0, "bad test request (%d): %.*s", n, (int)len, raw);
    /* a form without Action is not taken for SQS; decoding it must still
     * answer MissingParameter */
    cr_assert(sqs_is_sqs_request(&req, raw + n, len - (size_t)n) ||
              !memmem(raw + n, len - (size_t)n, "Action=", 7));
    d.rc = sqs_decode(&req, raw + n, len - (size_t)n, &d.proto, d.action, &d.params, &d.err);
    cr_assert((d.rc == SQS_OK) == (d.params != NULL));
    return d;
}

/* A query POST with the given form body. */
static struct decoded query(const char *body)
{
    char *raw = xasprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1:9324\r\n"
                          "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          strlen(body), body);
    struct decoded d = decode_raw(raw, strlen(raw));
    free(raw);
    return d;
}

/* A JSON 1.0 POST of target AmazonSQS.<action>. */
static struct decoded json(const char *action, const char *body)
{
    char *raw = xasprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1:9324\r\n"
                          "Content-Type: application/x-amz-json-1.0\r\n"
                          "X-Amz-Target: AmazonSQS.%s\r\nContent-Length: %zu\r\n\r\n%s",
                          action, strlen(body), body);
    struct decoded d = decode_raw(raw, strlen(raw));
    free(raw);
    return d;
}

static void expect_params(struct decoded *d, const char *want_json)
{
    cr_assert_eq(d->rc, SQS_OK, "%s: %s", sqs_err_name(d->rc), d->err.message);
    cJSON *want = cJSON_Parse(want_json);
    cr_assert_not_null(want);
    char *got = cJSON_PrintUnformatted(d->params);
    cr_expect(cJSON_Compare(d->params, want, true), "got %s\nwant %s", got, want_json);
    free(got);
    cJSON_Delete(want);
    cJSON_Delete(d->params);
    d->params = NULL;
}

static void expect_err(struct decoded d, enum sqs_err code, enum sqs_proto proto)
{
    cr_expect_eq(d.rc, code, "got %s (%s), want %s", sqs_err_name(d.rc), d.err.message,
                 sqs_err_name(code));
    cr_expect_eq(d.proto, proto);
    cr_expect(d.rc == SQS_OK || d.err.message[0], "an error needs a message");
    cJSON_Delete(d.params);
}

/* ---- captured requests ---- */

Test(sqs_decode, every_captured_request)
{
    for (size_t i = 0; i < ARRAY_SIZE(CAPTURED); i++) {
        const struct captured *c = &CAPTURED[i];
        struct decoded d = decode_raw(c->raw, c->len);
        cr_expect_eq(d.rc, SQS_OK, "%s: %s %s", c->name, sqs_err_name(d.rc), d.err.message);
        bool is_json = strstr(c->name, "-json-json-") != NULL;
        cr_expect_eq(d.proto, is_json ? SQS_PROTO_JSON : SQS_PROTO_QUERY, "%s", c->name);
        const char *act = strrchr(c->name, '-') + 1;
        cr_expect_str_eq(d.action, act, "%s", c->name);
        cJSON_Delete(d.params);
    }
}

/* boto3 made the same calls, in the same order, once per protocol: the
 * canonical forms agree. */
Test(sqs_decode, query_and_json_agree)
{
    const struct captured *q[64], *j[64];
    size_t nq = 0, nj = 0;
    for (size_t i = 0; i < ARRAY_SIZE(CAPTURED); i++) {
        if (strstr(CAPTURED[i].name, "-boto3-query-") && nq < 64)
            q[nq++] = &CAPTURED[i];
        if (strstr(CAPTURED[i].name, "-json-json-") && nj < 64)
            j[nj++] = &CAPTURED[i];
    }
    cr_assert_eq(nq, nj);
    cr_assert_geq(nq, 29);
    for (size_t i = 0; i < nq; i++) {
        cr_assert_str_eq(strrchr(q[i]->name, '-'), strrchr(j[i]->name, '-'));
        struct decoded dq = decode_raw(q[i]->raw, q[i]->len);
        struct decoded dj = decode_raw(j[i]->raw, j[i]->len);
        cr_assert_eq(dq.rc, SQS_OK, "%s: %s", q[i]->name, dq.err.message);
        cr_assert_eq(dj.rc, SQS_OK, "%s: %s", j[i]->name, dj.err.message);
        cr_expect_str_eq(dq.action, dj.action);
        char *a = cJSON_PrintUnformatted(dq.params), *b = cJSON_PrintUnformatted(dj.params);
        cr_expect(cJSON_Compare(dq.params, dj.params, true), "%s vs %s:\n%s\n%s", q[i]->name,
                  j[i]->name, a, b);
        free(a);
        free(b);
        cJSON_Delete(dq.params);
        cJSON_Delete(dj.params);
    }
}

/* The first capture whose name ends with suffix ("-cli-query-ReceiveMessage"). */
static const struct captured *captured(const char *suffix)
{
    for (size_t i = 0; i < ARRAY_SIZE(CAPTURED); i++) {
        size_t n = strlen(CAPTURED[i].name), k = strlen(suffix);
        if (n >= k && strcmp(CAPTURED[i].name + n - k, suffix) == 0)
            return &CAPTURED[i];
    }
    cr_assert_fail("no capture %s", suffix);
    return NULL;
}

Test(sqs_decode, send_message_with_attributes)
{
    const struct captured *c = captured("10-boto3-query-SendMessage"); /* with attributes */
    struct decoded d = decode_raw(c->raw, c->len);
    cr_assert_eq(d.rc, SQS_OK);
    cJSON *url = cJSON_GetObjectItem(d.params, "QueueUrl");
    cr_assert(cJSON_IsString(url));
    char *want =
        xasprintf("{\"QueueUrl\":\"%s\",\"MessageBody\":\"with attrs\",\"DelaySeconds\":5,"
                  "\"MessageAttributes\":{\"s\":{\"StringValue\":\"v1\",\"DataType\":\"String\"},"
                  "\"n\":{\"StringValue\":\"42\",\"DataType\":\"Number.int\"},"
                  "\"b\":{\"BinaryValue\":\"AAH/\",\"DataType\":\"Binary\"}},"
                  "\"MessageSystemAttributes\":{\"AWSTraceHeader\":{\"StringValue\":"
                  "\"Root=1-5759e988-bd862e3fe1be46a994272793\",\"DataType\":\"String\"}}}",
                  url->valuestring);
    expect_params(&d, want);
    free(want);
}

Test(sqs_decode, cli_receive_message)
{
    const struct captured *c = captured("-cli-query-ReceiveMessage");
    struct decoded d = decode_raw(c->raw, c->len);
    cr_assert_eq(d.rc, SQS_OK);
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(d.params, "WaitTimeSeconds")));
    cr_expect_eq(cJSON_GetObjectItem(d.params, "WaitTimeSeconds")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(d.params, "MaxNumberOfMessages")->valueint, 10);
    cJSON *names = cJSON_GetObjectItem(d.params, "AttributeNames");
    cr_expect(cJSON_IsArray(names) && cJSON_GetArraySize(names) == 1);
    cJSON_Delete(d.params);
}

/* ---- query protocol ---- */

Test(sqs_decode, query_lists_maps_and_types)
{
    struct decoded d = query(
        "Action=SendMessageBatch&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fq"
        "&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two+2"
        "&SendMessageBatchRequestEntry.10.Id=c&SendMessageBatchRequestEntry.10.MessageBody=ten"
        "&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=%E2%9C%93"
        "&SendMessageBatchRequestEntry.1.DelaySeconds=-0"
        "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k"
        "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String"
        "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=a%2bb");
    expect_params(&d, "{\"QueueUrl\":\"http://h/000000000000/q\",\"Entries\":["
                      "{\"Id\":\"a\",\"MessageBody\":\"\xe2\x9c\x93\",\"DelaySeconds\":0,"
                      "\"MessageAttributes\":{\"k\":{\"StringValue\":\"a+b\","
                      "\"DataType\":\"String\"}}},"
                      "{\"Id\":\"b\",\"MessageBody\":\"two 2\"},"
                      "{\"Id\":\"c\",\"MessageBody\":\"ten\"}]}");
}

Test(sqs_decode, query_queue_attributes_and_tags)
{
    struct decoded d = query("Action=CreateQueue&Version=2012-11-05&QueueName=f.fifo"
                             "&Attribute.1.Name=FifoQueue&Attribute.1.Value=true"
                             "&Attribute.2.Name=Policy&Tag.1.Key=team&Tag.1.Value=");
    expect_params(&d, "{\"QueueName\":\"f.fifo\",\"Attributes\":{\"FifoQueue\":\"true\","
                      "\"Policy\":\"\"},\"tags\":{\"team\":\"\"}}");
    d = query("Action=GetQueueAttributes&QueueUrl=u&AttributeName.2=B&AttributeName.1=A");
    expect_params(&d, "{\"QueueUrl\":\"u\",\"AttributeNames\":[\"A\",\"B\"]}");
    d = query("Action=UntagQueue&QueueUrl=u&TagKey.1=x");
    expect_params(&d, "{\"QueueUrl\":\"u\",\"TagKeys\":[\"x\"]}");
    d = query("Action=TagQueue&QueueUrl=u&Tag.1.Key=x&Tag.1.Value=y");
    expect_params(&d, "{\"QueueUrl\":\"u\",\"Tags\":{\"x\":\"y\"}}");
}

Test(sqs_decode, query_all_actions_known)
{
    static const char *const acts[] = {
        "Action=ListQueues",
        "Action=ListQueues&MaxResults=5&NextToken=t&QueueNamePrefix=p",
        "Action=GetQueueUrl&QueueName=q",
        "Action=DeleteQueue&QueueUrl=u",
        "Action=PurgeQueue&QueueUrl=u",
        "Action=SetQueueAttributes&QueueUrl=u&Attribute.1.Name=a",
        "Action=SendMessage&QueueUrl=u&MessageBody=b",
        "Action=ReceiveMessage&QueueUrl=u&WaitTimeSeconds=20",
        "Action=DeleteMessage&QueueUrl=u&ReceiptHandle=r",
        "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.1.Id=a"
        "&DeleteMessageBatchRequestEntry.1.ReceiptHandle=r",
        "Action=ChangeMessageVisibility&QueueUrl=u&ReceiptHandle=r&VisibilityTimeout=0",
        "Action=ChangeMessageVisibilityBatch&QueueUrl=u"
        "&ChangeMessageVisibilityBatchRequestEntry.1.Id=a"
        "&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=r",
        "Action=ListDeadLetterSourceQueues&QueueUrl=u",
        "Action=ListQueueTags&QueueUrl=u",
        "Action=StartMessageMoveTask&SourceArn=arn:a&MaxNumberOfMessagesPerSecond=5",
        "Action=ListMessageMoveTasks&SourceArn=arn:a",
        "Action=CancelMessageMoveTask&TaskHandle=t",
        "Action=AddPermission&QueueUrl=u&Label=l&AWSAccountId.1=1&ActionName.1=SendMessage",
        "Action=RemovePermission&QueueUrl=u&Label=l",
    };
    for (size_t i = 0; i < ARRAY_SIZE(acts); i++) {
        struct decoded d = query(acts[i]);
        cr_expect_eq(d.rc, SQS_OK, "%s: %s", acts[i], d.err.message);
        cJSON_Delete(d.params);
    }
}

Test(sqs_decode, query_get_and_query_string)
{
    const char *raw = "GET /?Action=GetQueueUrl&QueueName=q%2D1 HTTP/1.1\r\nHost: h\r\n\r\n";
    struct decoded d = decode_raw(raw, strlen(raw));
    expect_params(&d, "{\"QueueName\":\"q-1\"}");
    cr_expect_str_eq(d.action, "GetQueueUrl");
}

Test(sqs_decode, query_queue_url_from_path)
{
    const char *raw = "POST /000000000000/orders HTTP/1.1\r\nHost: 127.0.0.1:9324\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 30\r\n"
                      "\r\nAction=SendMessage&MessageBody";
    struct decoded d = decode_raw(raw, strlen(raw));
    expect_params(&d, "{\"MessageBody\":\"\",\"QueueUrl\":"
                      "\"http://127.0.0.1:9324/000000000000/orders\"}");
    /* an explicit QueueUrl wins; a path that is not /<account>/<name> gives none */
    raw = "POST /000000000000/orders HTTP/1.1\r\nHost: h\r\n"
          "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 34\r\n"
          "\r\nAction=PurgeQueue&QueueUrl=http:x";
    d = decode_raw(raw, strlen(raw));
    expect_params(&d, "{\"QueueUrl\":\"http:x\"}");
    raw = "POST /a/b/c HTTP/1.1\r\nHost: h\r\n"
          "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n"
          "\r\nAction=PurgeQueue";
    expect_err(decode_raw(raw, strlen(raw)), SQS_E_MISSING_PARAMETER, SQS_PROTO_QUERY);
}

Test(sqs_decode, query_empty_list_marker)
{
    struct decoded d = query("Action=DeleteMessageBatch&QueueUrl=u&Entries=");
    expect_params(&d, "{\"QueueUrl\":\"u\",\"Entries\":[]}");
}

Test(sqs_decode, query_ignores_unknown_top_level)
{
    struct decoded d = query("Version=2012-11-05&AWSAccessKeyId=x&Action=DeleteQueue&QueueUrl=u"
                             "&X-Amz-Date=1&Foo.1.Bar=2");
    expect_params(&d, "{\"QueueUrl\":\"u\"}");
}

Test(sqs_decode, query_malformed)
{
    struct {
        const char *body;
        enum sqs_err code;
    } cases[] = {
        { "Action=DeleteQueue&QueueUrl=%G1", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&QueueUrl=%4", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&QueueUrl=abc%", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&Queue%zzUrl=u", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&QueueUrl=a&QueueUrl=b", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&Queue%55rl=a&QueueUrl=b", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&=x&QueueUrl=u", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&Queue%00Url=u", SQS_E_MALFORMED_QUERY },
        { "Action=DeleteQueue&QueueUrl=a%00b", SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=SendMessage&QueueUrl=u&MessageBody=a%00b", SQS_E_INVALID_MESSAGE_CONTENTS },
        /* refused even where unused, as SNS does: one decoder (aws/query.c) */
        { "Action=DeleteQueue&QueueUrl=u&Version=a%00b", SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=SendMessage&QueueUrl=u&MessageBody=a%01b", SQS_E_INVALID_MESSAGE_CONTENTS },
        { "Action=SendMessage&QueueUrl=u&MessageBody=%C3", SQS_E_INVALID_MESSAGE_CONTENTS },
        { "Action=GetQueueUrl&QueueName=q%FF", SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=TagQueue&QueueUrl=u&Tag.1.Key=%C0%AF&Tag.1.Value=v",
          SQS_E_INVALID_PARAMETER_VALUE },
        { "QueueUrl=u", SQS_E_MISSING_PARAMETER },
        { "Action=Nope&QueueUrl=u", SQS_E_INVALID_ACTION },
        { "Action=sendmessage&QueueUrl=u", SQS_E_INVALID_ACTION },
        { "Action=SendMessage&QueueUrl=u", SQS_E_MISSING_PARAMETER },
        { "Action=CreateQueue", SQS_E_MISSING_PARAMETER },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.99999999.Id=a",
          SQS_E_MALFORMED_QUERY },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.1001.Id=a",
          SQS_E_MALFORMED_QUERY },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.0.Id=a",
          SQS_E_MALFORMED_QUERY },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.01.Id=a",
          SQS_E_MALFORMED_QUERY },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.x.Id=a",
          SQS_E_MALFORMED_QUERY },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.1.Id=a"
          "&DeleteMessageBatchRequestEntry.1.ReceiptHandle=r&DeleteMessageBatchRequestEntry.1.Foo="
          "1",
          SQS_E_MALFORMED_QUERY },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.1.Id=a",
          SQS_E_MISSING_PARAMETER },
        { "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.1=a",
          SQS_E_MALFORMED_QUERY },
        { "Action=GetQueueAttributes&QueueUrl=u&AttributeName.1.x=A", SQS_E_MALFORMED_QUERY },
        { "Action=SetQueueAttributes&QueueUrl=u&Attribute.1.Value=v", SQS_E_MISSING_PARAMETER },
        { "Action=SetQueueAttributes&QueueUrl=u&Attribute.1.Name=a&Attribute.2.Name=a",
          SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=ReceiveMessage&QueueUrl=u&WaitTimeSeconds=abc", SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=ReceiveMessage&QueueUrl=u&WaitTimeSeconds=", SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=ReceiveMessage&QueueUrl=u&WaitTimeSeconds=2147483648",
          SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=ReceiveMessage&QueueUrl=u&WaitTimeSeconds=99999999999999999999999",
          SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=ReceiveMessage&QueueUrl=u&WaitTimeSeconds=1.5", SQS_E_INVALID_PARAMETER_VALUE },
        { "Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=b"
          "&MessageAttribute.1.Value.DataType=Binary&MessageAttribute.1.Value.BinaryValue=%21",
          SQS_E_INVALID_PARAMETER_VALUE },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct decoded d = query(cases[i].body);
        cr_expect_eq(d.rc, cases[i].code, "%s: got %s (%s)", cases[i].body, sqs_err_name(d.rc),
                     d.err.message);
        cr_expect_eq(d.proto, SQS_PROTO_QUERY);
        cJSON_Delete(d.params);
    }
}

Test(sqs_decode, query_too_many_parameters)
{
    size_t cap = 16 * 2000;
    char *body = xmalloc(cap);
    size_t n = (size_t)snprintf(body, cap, "Action=ListQueues");
    for (int i = 0; i < 1100; i++)
        n += (size_t)snprintf(body + n, cap - n, "&p%d=x", i);
    struct decoded d = query(body);
    expect_err(d, SQS_E_MALFORMED_QUERY, SQS_PROTO_QUERY);
    free(body);
}

Test(sqs_decode, query_long_key_refused)
{
    char body[600] = "Action=ListQueues&";
    memset(body + strlen(body), 'k', 300);
    strcat(body, "=v");
    expect_err(query(body), SQS_E_MALFORMED_QUERY, SQS_PROTO_QUERY);
}

/* ---- JSON 1.0 ---- */

Test(sqs_decode, json_types)
{
    struct decoded d =
        json("ReceiveMessage",
             "{\"QueueUrl\":\"u\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":0,"
             "\"AttributeNames\":[\"All\"],\"Unknown\":{\"x\":1},\"VisibilityTimeout\":null}");
    expect_params(&d, "{\"QueueUrl\":\"u\",\"AttributeNames\":[\"All\"],"
                      "\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":0}");
    d = json("ListQueues", "");
    expect_params(&d, "{}");
    d = json("ListQueues", " {} \r\n");
    expect_params(&d, "{}");
}

Test(sqs_decode, json_malformed)
{
    struct {
        const char *action, *body;
        enum sqs_err code;
    } cases[] = {
        { "DeleteQueue", "{\"QueueUrl\":", SQS_E_MALFORMED_QUERY },
        { "DeleteQueue", "{\"QueueUrl\":\"u\"} x", SQS_E_MALFORMED_QUERY },
        { "DeleteQueue", "[\"u\"]", SQS_E_MALFORMED_QUERY },
        { "DeleteQueue", "\"u\"", SQS_E_MALFORMED_QUERY },
        { "DeleteQueue", "{\"QueueUrl\":5}", SQS_E_MALFORMED_QUERY },
        { "DeleteQueue", "{\"QueueUrl\":\"u\",\"QueueUrl\":\"v\"}", SQS_E_MALFORMED_QUERY },
        { "DeleteQueue", "{}", SQS_E_MISSING_PARAMETER },
        { "ReceiveMessage", "{\"QueueUrl\":\"u\",\"WaitTimeSeconds\":\"5\"}",
          SQS_E_MALFORMED_QUERY },
        { "ReceiveMessage", "{\"QueueUrl\":\"u\",\"WaitTimeSeconds\":1.5}", SQS_E_MALFORMED_QUERY },
        { "ReceiveMessage", "{\"QueueUrl\":\"u\",\"WaitTimeSeconds\":1e20}",
          SQS_E_MALFORMED_QUERY },
        { "ReceiveMessage", "{\"QueueUrl\":\"u\",\"AttributeNames\":\"All\"}",
          SQS_E_MALFORMED_QUERY },
        { "ReceiveMessage", "{\"QueueUrl\":\"u\",\"AttributeNames\":[1]}", SQS_E_MALFORMED_QUERY },
        { "SendMessage", "{\"QueueUrl\":\"u\",\"MessageBody\":\"a\\u0000b\"}",
          SQS_E_INVALID_MESSAGE_CONTENTS },
        { "SendMessage", "{\"QueueUrl\":\"u\",\"MessageBody\":\"a\\u0001b\"}",
          SQS_E_INVALID_MESSAGE_CONTENTS },
        { "SendMessage", "{\"QueueUrl\":\"u\",\"MessageBody\":\"\\ud800\"}",
          SQS_E_MALFORMED_QUERY }, /* a lone surrogate is not JSON text */
        { "SendMessage",
          "{\"QueueUrl\":\"u\",\"MessageBody\":\"b\",\"MessageAttributes\":"
          "{\"a\":{\"DataType\":\"Binary\",\"BinaryValue\":\"***\"}}}",
          SQS_E_MALFORMED_QUERY },
        { "SendMessage",
          "{\"QueueUrl\":\"u\",\"MessageBody\":\"b\",\"MessageAttributes\":"
          "{\"a\":{\"DataType\":\"String\",\"StringValue\":\"x\"},"
          "\"a\":{\"DataType\":\"String\",\"StringValue\":\"y\"}}}",
          SQS_E_MALFORMED_QUERY },
        { "SendMessage",
          "{\"QueueUrl\":\"u\",\"MessageBody\":\"b\",\"MessageAttributes\":"
          "{\"a\":{\"StringValue\":\"x\"}}}",
          SQS_E_MISSING_PARAMETER },
        { "SendMessageBatch", "{\"QueueUrl\":\"u\",\"Entries\":[{\"Id\":\"a\"}]}",
          SQS_E_MISSING_PARAMETER },
        { "SendMessageBatch", "{\"QueueUrl\":\"u\",\"Entries\":{}}", SQS_E_MALFORMED_QUERY },
        { "TagQueue", "{\"QueueUrl\":\"u\",\"Tags\":{\"k\":\"\xff\"}}", SQS_E_MALFORMED_QUERY },
        { "TagQueue", "{\"QueueUrl\":\"u\",\"Tags\":{\"\xed\xa0\x80\":\"v\"}}",
          SQS_E_MALFORMED_QUERY },
        { "SendMessage", "{\"QueueUrl\":\"u\",\"MessageBody\":\"\xc3\"}",
          SQS_E_INVALID_MESSAGE_CONTENTS },
        { "Frobnicate", "{}", SQS_E_INVALID_ACTION },
        { "sendMessage", "{}", SQS_E_INVALID_ACTION },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct decoded d = json(cases[i].action, cases[i].body);
        cr_expect_eq(d.rc, cases[i].code, "%s %s: got %s (%s)", cases[i].action, cases[i].body,
                     sqs_err_name(d.rc), d.err.message);
        cr_expect_eq(d.proto, SQS_PROTO_JSON);
        cJSON_Delete(d.params);
    }
}

Test(sqs_decode, json_without_target)
{
    const char *raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      "Content-Length: 2\r\n\r\n{}";
    expect_err(decode_raw(raw, strlen(raw)), SQS_E_INVALID_ACTION, SQS_PROTO_JSON);
    raw = "GET / HTTP/1.1\r\nHost: h\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n\r\n";
    expect_err(decode_raw(raw, strlen(raw)), SQS_E_INVALID_ACTION, SQS_PROTO_JSON);
}

Test(sqs_decode, json_big_list_refused)
{
    size_t cap = 8 * 1100 + 64;
    char *body = xmalloc(cap);
    size_t n = (size_t)snprintf(body, cap, "{\"QueueUrl\":\"u\",\"TagKeys\":[");
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s\"k\"", i ? "," : "");
    snprintf(body + n, cap - n, "]}");
    expect_err(json("UntagQueue", body), SQS_E_MALFORMED_QUERY, SQS_PROTO_JSON);
    free(body);
}

/* ---- detection ---- */

static bool detect(const char *raw)
{
    struct http_header h[16];
    struct http_request req;
    int n = http_parse_request(raw, strlen(raw), &req, h, 16, 8192);
    cr_assert(n > 0);
    return sqs_is_sqs_request(&req, raw + n, strlen(raw) - (size_t)n);
}

Test(sqs_decode, detection)
{
    cr_expect(detect("POST / HTTP/1.1\r\nHost: h\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n\r\n"));
    cr_expect_not(detect("POST / HTTP/1.1\r\nHost: h\r\nX-Amz-Target: AmazonSNS.Publish\r\n\r\n"));
    cr_expect(detect("GET /?Version=1&Action=ListQueues HTTP/1.1\r\nHost: h\r\n\r\n"));
    cr_expect(detect("POST /000000000000/q HTTP/1.1\r\nHost: h\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                     "Version=2012-11-05&Action=SendMessage"));
    cr_expect_not(detect("POST /q HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\r\n"
                         "{\"Action=\":1}"));
    cr_expect_not(detect("POST /q HTTP/1.1\r\nHost: h\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n\r\nXAction=1"));
    cr_expect_not(detect("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
}
