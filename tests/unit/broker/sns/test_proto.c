/* Unit tests for the SNS wire protocol (src/broker/sns_*.c): query
 * decoding into the canonical JSON shape (lists, maps, message attributes,
 * batches, booleans, blobs, required members, hostile input), XML results
 * and errors, request recognition, base64, timestamps, the delivery
 * envelopes and their signatures. The form bodies are the ones botocore
 * 1.29 sends for these calls. */
#include <criterion/criterion.h>

#include "broker/sns/sns_int.h"
#include "core/base64.h"
#include "broker/sns/sns_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cJSON *decode_ok(const char *form, char action[64])
{
    cJSON *p = NULL;
    struct sns_error err = {0};
    enum sns_err e = sns_decode_form(NULL, 0, form, strlen(form), action, &p, &err);
    cr_assert_eq(e, SNS_OK, "%s: %s %s", form, sns_err_code(e), err.message);
    cr_assert_not_null(p);
    return p;
}

static struct sns_error decode_err(const char *form, enum sns_err want)
{
    cJSON *p = NULL;
    char action[64];
    struct sns_error err = {0};
    enum sns_err e = sns_decode_form(NULL, 0, form, strlen(form), action, &p, &err);
    cr_assert_eq(e, want, "%s: got %s (%s)", form, sns_err_code(e), err.message);
    cr_assert_null(p);
    return err;
}

/* The canonical JSON of p, unformatted, compared with want (single quotes
 * for double). */
static void json_is(const cJSON *p, const char *want)
{
    char *got = cJSON_PrintUnformatted(p);
    char *w = strdup(want);
    for (char *c = w; *c; c++)
        if (*c == '\'')
            *c = '"';
    cr_assert_str_eq(got, w);
    free(got);
    free(w);
}

Test(sns_decode, create_topic_with_attributes_and_tags)
{
    char action[64];
    cJSON *p = decode_ok("Action=CreateTopic&Version=2010-03-31&Name=t"
                         "&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true"
                         "&Attributes.entry.2.key=DisplayName&Attributes.entry.2.value=x+y%21"
                         "&Tags.member.1.Key=a&Tags.member.1.Value=b", action);
    cr_assert_str_eq(action, "CreateTopic");
    json_is(p, "{'Name':'t','Attributes':{'FifoTopic':'true','DisplayName':'x y!'},"
               "'Tags':[{'Key':'a','Value':'b'}]}");
    cJSON_Delete(p);
}

Test(sns_decode, publish_with_message_attributes)
{
    char action[64];
    cJSON *p = decode_ok("Action=Publish&Version=2010-03-31&TopicArn=arn&Message=hi"
                         "&MessageAttributes.entry.1.Name=k"
                         "&MessageAttributes.entry.1.Value.DataType=String"
                         "&MessageAttributes.entry.1.Value.StringValue=v"
                         "&MessageAttributes.entry.2.Name=b"
                         "&MessageAttributes.entry.2.Value.DataType=Binary"
                         "&MessageAttributes.entry.2.Value.BinaryValue=AAE%3D", action);
    json_is(p, "{'TopicArn':'arn','Message':'hi','MessageAttributes':{"
               "'k':{'DataType':'String','StringValue':'v'},"
               "'b':{'DataType':'Binary','BinaryValue':'AAE='}}}");
    cJSON_Delete(p);
}

Test(sns_decode, publish_batch_in_index_order)
{
    char action[64];
    /* Items come in index order whatever the parameter order; gaps close. */
    cJSON *p = decode_ok("Action=PublishBatch&TopicArn=arn"
                         "&PublishBatchRequestEntries.member.10.Id=ten"
                         "&PublishBatchRequestEntries.member.10.Message=m10"
                         "&PublishBatchRequestEntries.member.2.Id=two"
                         "&PublishBatchRequestEntries.member.2.Message=m2"
                         "&PublishBatchRequestEntries.member.2.MessageGroupId=g"
                         "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Name=n"
                         "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.DataType=Number"
                         "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.StringValue=1"
                         "&PublishBatchRequestEntries.member.1.Message=m1"
                         "&PublishBatchRequestEntries.member.1.Id=one", action);
    json_is(p, "{'TopicArn':'arn','PublishBatchRequestEntries':["
               "{'Id':'one','Message':'m1'},"
               "{'Id':'two','Message':'m2','MessageAttributes':{'n':{'DataType':'Number','StringValue':'1'}},"
               "'MessageGroupId':'g'},"
               "{'Id':'ten','Message':'m10'}]}");
    cJSON_Delete(p);
}

Test(sns_decode, subscribe_boolean_and_lists)
{
    char action[64];
    cJSON *p = decode_ok("Action=Subscribe&Version=2010-03-31&TopicArn=a&Protocol=sqs&Endpoint=e"
                         "&ReturnSubscriptionArn=true&Attributes.entry.1.key=RawMessageDelivery"
                         "&Attributes.entry.1.value=true", action);
    json_is(p, "{'TopicArn':'a','Protocol':'sqs','Endpoint':'e','Attributes':{'RawMessageDelivery':'true'},"
               "'ReturnSubscriptionArn':true}");
    cJSON_Delete(p);
    p = decode_ok("Action=UntagResource&ResourceArn=a&TagKeys.member.1=x&TagKeys.member.2=y", action);
    json_is(p, "{'ResourceArn':'a','TagKeys':['x','y']}");
    cJSON_Delete(p);
    p = decode_ok("Action=TagResource&ResourceArn=a&Tags=", action);
    json_is(p, "{'ResourceArn':'a','Tags':[]}");
    cJSON_Delete(p);
}

Test(sns_decode, query_string_and_body_together)
{
    /* An HTTP endpoint follows a SubscribeURL with a GET. */
    char action[64];
    cJSON *p = NULL;
    struct sns_error err;
    const char *qs = "Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A0%3At&Token=abc";
    cr_assert_eq(sns_decode_form(qs, strlen(qs), NULL, 0, action, &p, &err), SNS_OK);
    json_is(p, "{'TopicArn':'arn:aws:sns:us-east-1:0:t','Token':'abc'}");
    cJSON_Delete(p);
}

Test(sns_decode, ignores_unknown_parameters)
{
    char action[64];
    cJSON *p = decode_ok("Action=ListTopics&Version=2010-03-31&AWSAccessKeyId=x&Foo.Bar=1"
                         "&NextToken=t&NextToken.x=1", action);
    json_is(p, "{'NextToken':'t'}");
    cJSON_Delete(p);
    p = decode_ok("Action=Publish&Message=m&MessageAttributes.entry.1.Name=k"
                  "&MessageAttributes.entry.1.Value.DataType=String"
                  "&MessageAttributes.entry.1.Value.Other=z"
                  "&MessageAttributes.entry.1.Value.StringValue=v", action);
    json_is(p, "{'Message':'m','MessageAttributes':{'k':{'DataType':'String','StringValue':'v'}}}");
    cJSON_Delete(p);
}

Test(sns_decode, later_map_entry_wins)
{
    char action[64];
    cJSON *p = decode_ok("Action=CreateTopic&Name=t&Attributes.entry.1.key=A&Attributes.entry.1.value=1"
                         "&Attributes.entry.2.key=A&Attributes.entry.2.value=2", action);
    json_is(p, "{'Name':'t','Attributes':{'A':'2'}}");
    cJSON_Delete(p);
}

Test(sns_decode, errors)
{
    struct sns_error e = decode_err("Version=2010-03-31", SNS_E_INVALID_ACTION);
    cr_assert(strstr(e.message, "Action"));
    e = decode_err("Action=CreateQueue", SNS_E_INVALID_ACTION);
    cr_assert_str_eq(e.message, "Could not find operation CreateQueue for version 2010-03-31");
    e = decode_err("Action=CreateTopic", SNS_E_VALIDATION);
    cr_assert_str_eq(e.message, "1 validation error detected: Value null at 'name' failed to "
                                "satisfy constraint: Member must not be null");
    e = decode_err("Action=PublishBatch&TopicArn=a&PublishBatchRequestEntries.member.1.Id=x",
                   SNS_E_VALIDATION);
    cr_assert(strstr(e.message, "'publishBatchRequestEntries.1.member.message'"), "%s", e.message);
    decode_err("Action=Publish&Message=%zz", SNS_E_MALFORMED_QUERY);
    decode_err("Action=Publish&Message=a%00b", SNS_E_MALFORMED_QUERY);
    decode_err("Action=Publish&Message=a%4", SNS_E_MALFORMED_QUERY);
    decode_err("Action=Subscribe&TopicArn=a&Protocol=p&ReturnSubscriptionArn=yes",
               SNS_E_INVALID_PARAMETER);
    decode_err("Action=Publish&Message=m&MessageAttributes.entry.1.Name=b"
               "&MessageAttributes.entry.1.Value.DataType=Binary"
               "&MessageAttributes.entry.1.Value.BinaryValue=%21%21", SNS_E_INVALID_PARAMETER_VALUE);
    decode_err("Action=UntagResource&ResourceArn=a&TagKeys.member.0=x", SNS_E_MALFORMED_QUERY);
    decode_err("Action=UntagResource&ResourceArn=a&TagKeys.member.01=x", SNS_E_MALFORMED_QUERY);
    decode_err("Action=UntagResource&ResourceArn=a&TagKeys.member.1001=x", SNS_E_MALFORMED_QUERY);
    decode_err("Action=UntagResource&ResourceArn=a&TagKeys.1=x", SNS_E_MALFORMED_QUERY);
    decode_err("Action=CreateTopic&Name=t&Attributes.entry.1.value=v", SNS_E_VALIDATION);
    decode_err("Action=CreateTopic&Name=t&Tags.member.1.Key=k", SNS_E_VALIDATION);
}

Test(sns_decode, parameter_count_is_bounded)
{
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "Action=ListTopics");
    for (int i = 0; i < SNS_MAX_PARAMS + 5; i++)
        buf_printf(&b, "&p%d=v", i);
    cJSON *p = NULL;
    char action[64];
    struct sns_error err;
    cr_assert_eq(sns_decode_form(NULL, 0, buf_rptr(&b), buf_len(&b), action, &p, &err),
                 SNS_E_MALFORMED_QUERY);
    buf_free(&b);
}

static struct http_request req_of(const char *method, enum http_method m, const char *target,
                                  struct http_header *h, size_t nh)
{
    struct http_request r = {0};
    r.method = method;
    r.method_len = strlen(method);
    r.m = m;
    r.target = target;
    r.target_len = strlen(target);
    r.minor = 1;
    r.headers = h;
    r.nheaders = nh;
    r.content_length = -1;
    return r;
}

Test(sns_request, recognised)
{
    struct http_request r = req_of("POST", HTTP_M_POST, "/", NULL, 0);
    const char *b = "Action=Publish&Version=2010-03-31&Message=x";
    cr_assert(sns_is_sns_request(&r, b, strlen(b)));
    const char *sqs = "Action=SendMessage&Version=2012-11-05";
    cr_assert_not(sns_is_sns_request(&r, sqs, strlen(sqs)));
    cr_assert_not(sns_is_sns_request(&r, "", 0));
    const char *late = "Version=2010-03-31&TopicArn=a&Action=DeleteTopic";
    cr_assert(sns_is_sns_request(&r, late, strlen(late)));
    struct http_request g = req_of("GET", HTTP_M_GET, "/?Action=ConfirmSubscription&Token=t", NULL, 0);
    cr_assert(sns_is_sns_request(&g, NULL, 0));
    struct http_request s = req_of("POST", HTTP_M_POST, "/sns", NULL, 0);
    cr_assert(sns_is_sns_request(&s, NULL, 0));
    struct http_request s2 = req_of("GET", HTTP_M_GET, "/snsx", NULL, 0);
    cr_assert_not(sns_is_sns_request(&s2, NULL, 0));
    struct http_request q = req_of("GET", HTTP_M_GET, "/000000000000/q?Action=ReceiveMessage", NULL, 0);
    cr_assert_not(sns_is_sns_request(&q, NULL, 0));
    /* An SQS JSON 1.0 request whose body happens to hold "&Action=Publish&". */
    struct http_header hj[] = {{"Content-Type", 12, "application/x-amz-json-1.0", 26},
                               {"X-Amz-Target", 12, "AmazonSQS.SendMessage", 21}};
    struct http_request j = req_of("POST", HTTP_M_POST, "/", hj, 2);
    const char *jb = "{\"QueueUrl\":\"q\",\"MessageBody\":\"a&Action=Publish&b\"}";
    cr_assert_not(sns_is_sns_request(&j, jb, strlen(jb)));
    struct http_request j1 = req_of("POST", HTTP_M_POST, "/", hj, 1);
    cr_assert_not(sns_is_sns_request(&j1, jb, strlen(jb)), "a JSON body is not a form");
    struct http_header hf[] = {{"Content-Type", 12, "application/x-www-form-urlencoded", 33}};
    struct http_request f = req_of("POST", HTTP_M_POST, "/", hf, 1);
    cr_assert(sns_is_sns_request(&f, b, strlen(b)));
}

Test(sns_request, decode_from_http)
{
    struct http_header h[] = {{ "Content-Type", 12, "application/x-www-form-urlencoded; charset=utf-8", 48 }};
    struct http_request r = req_of("POST", HTTP_M_POST, "/", h, 1);
    const char *b = "Action=DeleteTopic&TopicArn=x";
    char action[64];
    cJSON *p = NULL;
    struct sns_error err;
    cr_assert_eq(sns_decode(&r, b, strlen(b), action, &p, &err), SNS_OK);
    json_is(p, "{'TopicArn':'x'}");
    cJSON_Delete(p);
    /* A JSON body is not a form: only the URL's parameters count. */
    struct http_header hj[] = {{ "Content-Type", 12, "application/json", 16 }};
    struct http_request rj = req_of("POST", HTTP_M_POST, "/?Action=ListTopics", hj, 1);
    cr_assert_eq(sns_decode(&rj, "{}", 2, action, &p, &err), SNS_OK);
    cr_assert_str_eq(action, "ListTopics");
    cJSON_Delete(p);
}

/* ---- XML ---- */

static void xml_is(const char *action, const char *result_json, const char *want_inner)
{
    cJSON *r = NULL;
    if (result_json) {
        char *t = strdup(result_json);
        for (char *c = t; *c; c++)
            if (*c == '\'')
                *c = '"';
        r = cJSON_Parse(t);
        free(t);
    }
    struct buf b;
    buf_init(&b);
    sns_encode_result(action, r, "rid-1", &b);
    buf_append(&b, "", 1);
    char want[4096];
    snprintf(want, sizeof want,
             "<?xml version=\"1.0\"?>\n<%sResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
             "%s<ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></%sResponse>\n",
             action, want_inner, action);
    cr_assert_str_eq(buf_rptr(&b), want);
    buf_free(&b);
    cJSON_Delete(r);
}

Test(sns_xml, results)
{
    xml_is("CreateTopic", "{'TopicArn':'arn:aws:sns:us-east-1:000000000000:t'}",
           "<CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:000000000000:t</TopicArn></CreateTopicResult>");
    xml_is("DeleteTopic", NULL, "");
    xml_is("TagResource", "{}", "<TagResourceResult/>");
    xml_is("ListTopics", "{'NextToken':'n','Topics':[{'TopicArn':'a'},{'TopicArn':'b'}]}",
           "<ListTopicsResult><Topics><member><TopicArn>a</TopicArn></member><member><TopicArn>b"
           "</TopicArn></member></Topics><NextToken>n</NextToken></ListTopicsResult>");
    xml_is("GetTopicAttributes", "{'Attributes':{'Policy':'{\\'a\\':1}','Owner':'0'}}",
           "<GetTopicAttributesResult><Attributes><entry><key>Policy</key><value>{&quot;a&quot;:1}"
           "</value></entry><entry><key>Owner</key><value>0</value></entry></Attributes>"
           "</GetTopicAttributesResult>");
    xml_is("PublishBatch",
           "{'Successful':[{'Id':'1','MessageId':'m'}],'Failed':[{'Id':'2','Code':'InvalidParameter',"
           "'Message':'bad <x>','SenderFault':true}]}",
           "<PublishBatchResult><Successful><member><Id>1</Id><MessageId>m</MessageId></member>"
           "</Successful><Failed><member><Id>2</Id><Code>InvalidParameter</Code><Message>bad &lt;x&gt;"
           "</Message><SenderFault>true</SenderFault></member></Failed></PublishBatchResult>");
    xml_is("ListSubscriptions",
           "{'Subscriptions':[{'TopicArn':'t','Protocol':'sqs','SubscriptionArn':'s','Owner':'0','Endpoint':'e'}]}",
           "<ListSubscriptionsResult><Subscriptions><member><SubscriptionArn>s</SubscriptionArn><Owner>0"
           "</Owner><Protocol>sqs</Protocol><Endpoint>e</Endpoint><TopicArn>t</TopicArn></member>"
           "</Subscriptions></ListSubscriptionsResult>");
}

Test(sns_xml, error)
{
    struct sns_error e;
    sns_fail(&e, SNS_E_NOT_FOUND, "Topic does not exist");
    struct buf b;
    buf_init(&b);
    int status = 0;
    sns_encode_error(&e, "r", &b, &status);
    buf_append(&b, "", 1);
    cr_assert_eq(status, 404);
    cr_assert_str_eq(buf_rptr(&b),
                     "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
                     "<Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist"
                     "</Message></Error><RequestId>r</RequestId></ErrorResponse>\n");
    buf_free(&b);
    cr_assert_eq(sns_err_status(SNS_E_INTERNAL), 500);
    cr_assert_not(sns_err_sender(SNS_E_INTERNAL));
    cr_assert_str_eq(sns_err_code(SNS_E_INVALID_PARAMETER_VALUE), "ParameterValueInvalid");
}

Test(sns_xml, escaping)
{
    struct buf b;
    buf_init(&b);
    const char in[] = "a&<>\"'\r\n\t\x01\xff\xc3\xa9\xef\xbf\xbe";
    sns_xml_escape(&b, in, sizeof in - 1);
    buf_append(&b, "", 1);
    cr_assert_str_eq(buf_rptr(&b), "a&amp;&lt;&gt;&quot;&apos;&#xD;\n\t\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9"
                                   "\xef\xbf\xbd");
    buf_free(&b);
}

/* ---- base64, time ---- */

Test(sns_util, base64)
{
    const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="}, {"\x00\x01", "AAE="}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t n = i == 5 ? 2 : strlen(cases[i][0]);
        struct buf b;
        buf_init(&b);
        base64_encode(&b, cases[i][0], n);
        cr_assert_eq(buf_len(&b), strlen(cases[i][1]));
        cr_assert(n == 0 || memcmp(buf_rptr(&b), cases[i][1], buf_len(&b)) == 0);
        unsigned char out[16];
        cr_assert_eq(base64_decode(cases[i][1], strlen(cases[i][1]), out), (ssize_t)n);
        cr_assert(n == 0 || memcmp(out, cases[i][0], n) == 0);
        buf_free(&b);
    }
    cr_assert_eq(base64_decode("Zg=", 3, NULL), -1);
    cr_assert_eq(base64_decode("Z===", 4, NULL), -1);
    cr_assert_eq(base64_decode("Zg==Zg==", 8, NULL), -1);
    cr_assert_eq(base64_decode("Z!9v", 4, NULL), -1);
    cr_assert_eq(base64_decode("Zm=v", 4, NULL), -1);
}

Test(sns_util, timestamp)
{
    char ts[32];
    sns_timestamp(1572823681631ull, ts);
    cr_assert_str_eq(ts, "2019-11-03T23:28:01.631Z");
    sns_timestamp(0, ts);
    cr_assert_str_eq(ts, "1970-01-01T00:00:00.000Z");
}

/* ---- envelopes ---- */

static cJSON *attrs_fixture(void)
{
    return cJSON_Parse("{\"store\":{\"DataType\":\"String\",\"StringValue\":\"example_corp\"},"
                       "\"b\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAE=\"}}");
}

Test(sns_envelope, notification)
{
    cJSON *attrs = attrs_fixture();
    struct sns_note n = {
        .type = "Notification", .message_id = "mid", .topic_arn = "arn:t", .subject = "S",
        .message = "line1\n\"q\"", .message_len = 9, .timestamp_ms = 1572823681631ull,
        .unsubscribe_url = "http://h/?Action=Unsubscribe&SubscriptionArn=s", .attrs = attrs,
        .signature_version = "1", .signature = "c2ln", .signing_cert_url = "http://h/c.pem",
    };
    struct buf b;
    buf_init(&b);
    sns_envelope(&n, &b);
    buf_append(&b, "", 1);
    cr_assert_str_eq(buf_rptr(&b),
                     "{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"mid\",\n"
                     "  \"TopicArn\" : \"arn:t\",\n  \"Subject\" : \"S\",\n"
                     "  \"Message\" : \"line1\\n\\\"q\\\"\",\n"
                     "  \"Timestamp\" : \"2019-11-03T23:28:01.631Z\",\n"
                     "  \"SignatureVersion\" : \"1\",\n  \"Signature\" : \"c2ln\",\n"
                     "  \"SigningCertURL\" : \"http://h/c.pem\",\n"
                     "  \"UnsubscribeURL\" : \"http://h/?Action=Unsubscribe&SubscriptionArn=s\",\n"
                     "  \"MessageAttributes\" : {\n"
                     "    \"store\" : {\"Type\":\"String\",\"Value\":\"example_corp\"},\n"
                     "    \"b\" : {\"Type\":\"Binary\",\"Value\":\"AAE=\"}\n  }\n}");
    cJSON *j = cJSON_Parse(buf_rptr(&b));
    cr_assert_not_null(j, "the envelope is JSON");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "Message")->valuestring, "line1\n\"q\"");
    cJSON_Delete(j);
    buf_reset(&b);
    sns_string_to_sign(&n, &b);
    buf_append(&b, "", 1);
    cr_assert_str_eq(buf_rptr(&b), "Message\nline1\n\"q\"\nMessageId\nmid\nSubject\nS\n"
                                   "Timestamp\n2019-11-03T23:28:01.631Z\nTopicArn\narn:t\nType\nNotification\n");
    buf_free(&b);
    cJSON *ea = sns_envelope_attrs(attrs);
    json_is(ea, "{'store':{'Type':'String','Value':'example_corp'},'b':{'Type':'Binary','Value':'AAE='}}");
    cJSON_Delete(ea);
    cJSON_Delete(attrs);
}

Test(sns_envelope, fifo_and_control_characters)
{
    struct sns_note n = {
        .type = "Notification", .message_id = "m", .topic_arn = "t.fifo", .message = "a\x01" "b",
        .message_len = 3, .timestamp_ms = 0, .sequence_number = "10000000000000000001",
        .unsubscribe_url = "u",
    };
    struct buf b;
    buf_init(&b);
    sns_envelope(&n, &b);
    buf_append(&b, "", 1);
    cr_assert_str_eq(buf_rptr(&b), "{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"m\",\n"
                                   "  \"SequenceNumber\" : \"10000000000000000001\",\n"
                                   "  \"TopicArn\" : \"t.fifo\",\n  \"Message\" : \"a\\u0001b\",\n"
                                   "  \"Timestamp\" : \"1970-01-01T00:00:00.000Z\",\n"
                                   "  \"UnsubscribeURL\" : \"u\"\n}");
    buf_free(&b);
}

Test(sns_envelope, subscription_confirmation)
{
    struct buf msg;
    buf_init(&msg);
    sns_confirm_text("SubscriptionConfirmation", "arn:t", &msg);
    struct sns_note n = {
        .type = "SubscriptionConfirmation", .message_id = "m", .topic_arn = "arn:t",
        .message = buf_rptr(&msg), .message_len = buf_len(&msg), .timestamp_ms = 0, .token = "tok",
        .subscribe_url = "http://h/?Action=ConfirmSubscription&TopicArn=arn:t&Token=tok",
        .signature_version = "2", .signature = "x", .signing_cert_url = "c",
    };
    struct buf b;
    buf_init(&b);
    sns_envelope(&n, &b);
    buf_append(&b, "", 1);
    cJSON *j = cJSON_Parse(buf_rptr(&b));
    cr_assert_not_null(j);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "Type")->valuestring, "SubscriptionConfirmation");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "Token")->valuestring, "tok");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "Message")->valuestring,
                     "You have chosen to subscribe to the topic arn:t.\nTo confirm the subscription, "
                     "visit the SubscribeURL included in this message.");
    cr_assert_not_null(cJSON_GetObjectItem(j, "SubscribeURL"));
    cr_assert_null(cJSON_GetObjectItem(j, "UnsubscribeURL"));
    cJSON_Delete(j);
    buf_reset(&b);
    sns_string_to_sign(&n, &b);
    buf_append(&b, "", 1);
    char want[1024];
    snprintf(want, sizeof want, "Message\n%.*s\nMessageId\nm\nSubscribeURL\n%s\nTimestamp\n"
             "1970-01-01T00:00:00.000Z\nToken\ntok\nTopicArn\narn:t\nType\nSubscriptionConfirmation\n",
             (int)buf_len(&msg), buf_rptr(&msg), n.subscribe_url);
    cr_assert_str_eq(buf_rptr(&b), want);
    buf_free(&b);
    buf_free(&msg);
}

/* ---- signatures ---- */

Test(sns_sign, sign_verify_and_persist)
{
    char dir[] = "/tmp/fg-sns-sign-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char err[256];
    struct sns_signer *s = sns_signer_new(dir, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    const char *data = "Message\nhi\nType\nNotification\n";
    for (int v = 1; v <= 2; v++) {
        struct buf sig;
        buf_init(&sig);
        cr_assert_eq(sns_sign(s, v, data, strlen(data), &sig), 0);
        buf_append(&sig, "", 1);
        cr_assert(sns_verify(s, v, data, strlen(data), buf_rptr(&sig)));
        cr_assert_not(sns_verify(s, v, "other", 5, buf_rptr(&sig)));
        cr_assert_not(sns_verify(s, 3 - v, data, strlen(data), buf_rptr(&sig)));
        buf_free(&sig);
    }
    struct buf sig;
    buf_init(&sig);
    cr_assert_eq(sns_sign(s, 3, data, 1, &sig), -1);
    buf_free(&sig);
    size_t len;
    const char *pem = sns_signer_cert_pem(s, &len);
    cr_assert(len > 100 && strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
    cr_assert(strncmp(sns_signer_cert_name(s), "SimpleNotificationService-", 26) == 0);
    char name[128];
    snprintf(name, sizeof name, "%s", sns_signer_cert_name(s));
    sns_signer_free(s);
    /* Reopened: the same key and certificate. */
    s = sns_signer_new(dir, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_assert_str_eq(sns_signer_cert_name(s), name);
    sns_signer_free(s);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, SNS_SIGN_FILE);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* A damaged file is an error, not a silent new key. */
    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    cr_assert_null(sns_signer_new(dir, err, sizeof err));
    unlink(path);
    rmdir(dir);
}
