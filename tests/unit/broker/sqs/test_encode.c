/* Rendering SQS results and errors (src/broker/sqs/xml.c, sqs/proto.c):
 * XML exactly as SQS writes it for the query protocol, JSON 1.0 bodies,
 * error bodies and the x-amzn-query-error header, XML escaping. */
#include <criterion/criterion.h>

#include "broker/sqs/sqs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS "xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\""
#define META(id) "<ResponseMetadata><RequestId>" id "</RequestId></ResponseMetadata>"

static void expect_buf(struct buf *b, const char *want)
{
    cr_expect(buf_len(b) == strlen(want) && memcmp(buf_rptr(b), want, buf_len(b)) == 0,
              "got  %.*s\nwant %s", (int)buf_len(b), buf_rptr(b), want);
}

static void expect_xml(const char *action, const char *result_json, const char *want)
{
    cJSON *r = result_json ? cJSON_Parse(result_json) : NULL;
    cr_assert(!result_json || r, "bad test JSON %s", result_json);
    struct buf b;
    buf_init(&b);
    const char *ct = NULL;
    sqs_encode_result(SQS_PROTO_QUERY, action, r, "req-1", &b, &ct);
    cr_expect_str_eq(ct, "text/xml");
    expect_buf(&b, want);
    buf_free(&b);
    cJSON_Delete(r);
}

Test(sqs_encode, xml_escape)
{
    struct buf b;
    buf_init(&b);
    const char in[] = "a&b<c>d\"e'f\r\n\tg\x01h\xc3\xa9\xff\xef\xbf\xbei\xf0\x9f\x98\x80";
    sqs__xml_escape(&b, in, sizeof in - 1);
    expect_buf(&b, "a&amp;b&lt;c&gt;d&quot;e&apos;f&#xD;\n\tg\xef\xbf\xbdh\xc3\xa9\xef\xbf\xbd"
                   "\xef\xbf\xbdi\xf0\x9f\x98\x80");
    buf_reset(&b);
    sqs__xml_escape(&b, "\x00z", 2);
    expect_buf(&b, "\xef\xbf\xbdz");
    buf_free(&b);
}

Test(sqs_encode, xml_no_result_actions)
{
    expect_xml("DeleteQueue", NULL,
               "<?xml version=\"1.0\"?><DeleteQueueResponse " NS
               ">" META("req-1") "</DeleteQueueResponse>");
    expect_xml("ChangeMessageVisibility", "{}",
               "<?xml version=\"1.0\"?><ChangeMessageVisibilityResponse " NS
               ">" META("req-1") "</ChangeMessageVisibilityResponse>");
}

Test(sqs_encode, xml_queue_results)
{
    expect_xml("CreateQueue", "{\"QueueUrl\":\"http://h:1/000000000000/q&1\"}",
               "<?xml version=\"1.0\"?><CreateQueueResponse " NS "><CreateQueueResult>"
               "<QueueUrl>http://h:1/000000000000/q&amp;1</QueueUrl></CreateQueueResult>" META(
                   "req-1") "</CreateQueueResponse>");
    expect_xml("ListQueues", "{\"QueueUrls\":[\"u1\",\"u2\"],\"NextToken\":\"t\"}",
               "<?xml version=\"1.0\"?><ListQueuesResponse " NS "><ListQueuesResult>"
               "<QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl><NextToken>t</NextToken>"
               "</ListQueuesResult>" META("req-1") "</ListQueuesResponse>");
    expect_xml("ListQueues", NULL,
               "<?xml version=\"1.0\"?><ListQueuesResponse " NS "><ListQueuesResult>"
               "</ListQueuesResult>" META("req-1") "</ListQueuesResponse>");
    expect_xml("ListDeadLetterSourceQueues", "{\"queueUrls\":[\"u1\"]}",
               "<?xml version=\"1.0\"?><ListDeadLetterSourceQueuesResponse " NS ">"
               "<ListDeadLetterSourceQueuesResult><QueueUrl>u1</QueueUrl>"
               "</ListDeadLetterSourceQueuesResult>" META(
                   "req-1") "</ListDeadLetterSourceQueuesResponse>");
    expect_xml("GetQueueAttributes",
               "{\"Attributes\":{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":"
               "\"{\\\"maxReceiveCount\\\":\\\"3\\\"}\"}}",
               "<?xml version=\"1.0\"?><GetQueueAttributesResponse " NS
               "><GetQueueAttributesResult>"
               "<Attribute><Name>VisibilityTimeout</Name><Value>30</Value></Attribute>"
               "<Attribute><Name>RedrivePolicy</Name><Value>{&quot;maxReceiveCount&quot;:"
               "&quot;3&quot;}</Value></Attribute></GetQueueAttributesResult>" META(
                   "req-1") "</GetQueueAttributesResponse>");
    expect_xml("ListQueueTags", "{\"Tags\":{\"team\":\"a<b\"}}",
               "<?xml version=\"1.0\"?><ListQueueTagsResponse " NS "><ListQueueTagsResult>"
               "<Tag><Key>team</Key><Value>a&lt;b</Value></Tag></ListQueueTagsResult>" META(
                   "req-1") "</ListQueueTagsResponse>");
}

Test(sqs_encode, xml_send_results)
{
    /* members in the model's order, whatever the JSON order */
    expect_xml(
        "SendMessage",
        "{\"MessageId\":\"m1\",\"MD5OfMessageAttributes\":\"aa\",\"MD5OfMessageBody\":\"bb\","
        "\"SequenceNumber\":\"1\"}",
        "<?xml version=\"1.0\"?><SendMessageResponse " NS "><SendMessageResult>"
        "<MD5OfMessageBody>bb</MD5OfMessageBody><MD5OfMessageAttributes>aa"
        "</MD5OfMessageAttributes><MessageId>m1</MessageId><SequenceNumber>1"
        "</SequenceNumber></SendMessageResult>" META("req-1") "</SendMessageResponse>");
    expect_xml("SendMessageBatch",
               "{\"Successful\":[{\"Id\":\"a\",\"MessageId\":\"m\",\"MD5OfMessageBody\":\"x\"}],"
               "\"Failed\":[{\"Id\":\"b\",\"SenderFault\":true,\"Code\":\"InvalidParameterValue\","
               "\"Message\":\"bad\"}],\"Extra\":1}",
               "<?xml version=\"1.0\"?><SendMessageBatchResponse " NS "><SendMessageBatchResult>"
               "<SendMessageBatchResultEntry><Id>a</Id><MessageId>m</MessageId>"
               "<MD5OfMessageBody>x</MD5OfMessageBody></SendMessageBatchResultEntry>"
               "<BatchResultErrorEntry><Id>b</Id><SenderFault>true</SenderFault>"
               "<Code>InvalidParameterValue</Code><Message>bad</Message></BatchResultErrorEntry>"
               "</SendMessageBatchResult>" META("req-1") "</SendMessageBatchResponse>");
    expect_xml(
        "DeleteMessageBatch", "{\"Successful\":[{\"Id\":\"a\"},{\"Id\":\"b\"}],\"Failed\":[]}",
        "<?xml version=\"1.0\"?><DeleteMessageBatchResponse " NS "><DeleteMessageBatchResult>"
        "<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>"
        "<DeleteMessageBatchResultEntry><Id>b</Id></DeleteMessageBatchResultEntry>"
        "</DeleteMessageBatchResult>" META("req-1") "</DeleteMessageBatchResponse>");
    expect_xml(
        "ChangeMessageVisibilityBatch",
        "{\"Successful\":[],\"Failed\":[{\"Id\":\"a\",\"SenderFault\":false,\"Code\":\"c\"}]}",
        "<?xml version=\"1.0\"?><ChangeMessageVisibilityBatchResponse " NS ">"
        "<ChangeMessageVisibilityBatchResult><BatchResultErrorEntry><Id>a</Id>"
        "<SenderFault>false</SenderFault><Code>c</Code></BatchResultErrorEntry>"
        "</ChangeMessageVisibilityBatchResult>" META(
            "req-1") "</ChangeMessageVisibilityBatchResponse>");
}

Test(sqs_encode, xml_receive)
{
    expect_xml(
        "ReceiveMessage",
        "{\"Messages\":[{\"MessageId\":\"m1\",\"ReceiptHandle\":\"r+/=\",\"MD5OfBody\":\"d\","
        "\"Body\":\"<b>\\r\\n\",\"Attributes\":{\"ApproximateReceiveCount\":\"2\","
        "\"SentTimestamp\":\"1700000000000\"},\"MD5OfMessageAttributes\":\"e\","
        "\"MessageAttributes\":{\"s\":{\"DataType\":\"String\",\"StringValue\":\"v\"},"
        "\"b\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAH/\"}}},"
        "{\"MessageId\":\"m2\",\"ReceiptHandle\":\"r2\",\"MD5OfBody\":\"d2\",\"Body\":\"\"}]}",
        "<?xml version=\"1.0\"?><ReceiveMessageResponse " NS "><ReceiveMessageResult>"
        "<Message><MessageId>m1</MessageId><ReceiptHandle>r+/=</ReceiptHandle>"
        "<MD5OfBody>d</MD5OfBody><Body>&lt;b&gt;&#xD;\n</Body>"
        "<Attribute><Name>ApproximateReceiveCount</Name><Value>2</Value></Attribute>"
        "<Attribute><Name>SentTimestamp</Name><Value>1700000000000</Value></Attribute>"
        "<MD5OfMessageAttributes>e</MD5OfMessageAttributes>"
        "<MessageAttribute><Name>s</Name><Value><StringValue>v</StringValue>"
        "<DataType>String</DataType></Value></MessageAttribute>"
        "<MessageAttribute><Name>b</Name><Value><BinaryValue>AAH/</BinaryValue>"
        "<DataType>Binary</DataType></Value></MessageAttribute></Message>"
        "<Message><MessageId>m2</MessageId><ReceiptHandle>r2</ReceiptHandle>"
        "<MD5OfBody>d2</MD5OfBody><Body></Body></Message>"
        "</ReceiveMessageResult>" META("req-1") "</ReceiveMessageResponse>");
    expect_xml("ReceiveMessage", "{\"Messages\":[]}",
               "<?xml version=\"1.0\"?><ReceiveMessageResponse " NS "><ReceiveMessageResult>"
               "</ReceiveMessageResult>" META("req-1") "</ReceiveMessageResponse>");
}

Test(sqs_encode, xml_move_tasks)
{
    expect_xml("StartMessageMoveTask", "{\"TaskHandle\":\"t\"}",
               "<?xml version=\"1.0\"?><StartMessageMoveTaskResponse " NS ">"
               "<StartMessageMoveTaskResult><TaskHandle>t</TaskHandle>"
               "</StartMessageMoveTaskResult>" META("req-1") "</StartMessageMoveTaskResponse>");
    expect_xml("CancelMessageMoveTask", "{\"ApproximateNumberOfMessagesMoved\":1700000000123}",
               "<?xml version=\"1.0\"?><CancelMessageMoveTaskResponse " NS ">"
               "<CancelMessageMoveTaskResult><ApproximateNumberOfMessagesMoved>1700000000123"
               "</ApproximateNumberOfMessagesMoved></CancelMessageMoveTaskResult>" META(
                   "req-1") "</CancelMessageMoveTaskResponse>");
    expect_xml("ListMessageMoveTasks",
               "{\"Results\":[{\"TaskHandle\":\"t\",\"Status\":\"RUNNING\","
               "\"ApproximateNumberOfMessagesMoved\":3,\"StartedTimestamp\":1700000000000}]}",
               "<?xml version=\"1.0\"?><ListMessageMoveTasksResponse " NS ">"
               "<ListMessageMoveTasksResult><ListMessageMoveTasksResultEntry>"
               "<TaskHandle>t</TaskHandle><Status>RUNNING</Status>"
               "<ApproximateNumberOfMessagesMoved>3</ApproximateNumberOfMessagesMoved>"
               "<StartedTimestamp>1700000000000</StartedTimestamp>"
               "</ListMessageMoveTasksResultEntry></ListMessageMoveTasksResult>" META(
                   "req-1") "</ListMessageMoveTasksResponse>");
}

Test(sqs_encode, json_result)
{
    struct buf b;
    buf_init(&b);
    const char *ct = NULL;
    cJSON *r = cJSON_Parse("{\"QueueUrls\":[\"u\"],\"N\":1700000000000}");
    sqs_encode_result(SQS_PROTO_JSON, "ListQueues", r, "id", &b, &ct);
    cr_expect_str_eq(ct, "application/x-amz-json-1.0");
    expect_buf(&b, "{\"QueueUrls\":[\"u\"],\"N\":1700000000000}");
    buf_reset(&b);
    sqs_encode_result(SQS_PROTO_JSON, "DeleteQueue", NULL, "id", &b, &ct);
    expect_buf(&b, "{}");
    cJSON_Delete(r);
    buf_free(&b);
}

Test(sqs_encode, errors_both_protocols)
{
    struct sqs_error e;
    struct buf b;
    buf_init(&b);
    const char *ct, *hdr = "x";
    int status = 0;
    sqs_fail(&e, SQS_E_NONEXISTENT_QUEUE, "The specified queue does not exist <%s>.", "q&");
    sqs_encode_error(SQS_PROTO_QUERY, &e, "rid", &b, &ct, &status, &hdr);
    cr_expect_eq(status, 400);
    cr_expect_null(hdr);
    cr_expect_str_eq(ct, "text/xml");
    expect_buf(&b, "<?xml version=\"1.0\"?><ErrorResponse " NS "><Error><Type>Sender</Type>"
                   "<Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified "
                   "queue does not exist &lt;q&amp;&gt;.</Message><Detail/></Error>"
                   "<RequestId>rid</RequestId></ErrorResponse>");
    buf_reset(&b);
    sqs_encode_error(SQS_PROTO_JSON, &e, "rid", &b, &ct, &status, &hdr);
    cr_expect_eq(status, 400);
    cr_expect_str_eq(ct, "application/x-amz-json-1.0");
    cr_expect_str_eq(hdr, "AWS.SimpleQueueService.NonExistentQueue;Sender");
    expect_buf(&b, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
                   "\"message\":\"The specified queue does not exist <q&>.\"}");
    buf_reset(&b);
    /* a message echoing input cut inside a character stays UTF-8 JSON */
    sqs_fail(&e, SQS_E_INVALID_PARAMETER_VALUE, "bad %.3s|\x01", "\xe2\x9c\x93\xe2\x9c");
    sqs_encode_error(SQS_PROTO_JSON, &e, "rid", &b, &ct, &status, &hdr);
    expect_buf(&b, "{\"__type\":\"com.amazonaws.sqs#InvalidParameterValue\","
                   "\"message\":\"bad \xe2\x9c\x93|\\u0001\"}");
    buf_reset(&b);
    sqs_fail(&e, SQS_E_INVALID_PARAMETER_VALUE, "cut %.4s", "\xe2\x9c\x93\xe2\x9c");
    sqs_encode_error(SQS_PROTO_JSON, &e, "rid", &b, &ct, &status, &hdr);
    expect_buf(&b, "{\"__type\":\"com.amazonaws.sqs#InvalidParameterValue\","
                   "\"message\":\"cut \xe2\x9c\x93\xef\xbf\xbd\"}");
    buf_reset(&b);
    sqs_fail(&e, SQS_E_INTERNAL, "boom");
    sqs_encode_error(SQS_PROTO_QUERY, &e, "rid", &b, &ct, &status, &hdr);
    cr_expect_eq(status, 500);
    cr_expect(memmem(buf_rptr(&b), buf_len(&b), "<Type>Receiver</Type><Code>InternalError</Code>",
                     47) != NULL);
    buf_free(&b);
}

/* The table: each error's status, query code and JSON type as the SQS
 * model and API reference give them. */
Test(sqs_encode, error_table)
{
    struct {
        enum sqs_err c;
        int status;
        const char *q, *j;
    } t[] = {
        { SQS_E_INVALID_ACTION, 400, "InvalidAction", "UnknownOperationException" },
        { SQS_E_MISSING_PARAMETER, 400, "MissingParameter", "MissingParameter" },
        { SQS_E_INVALID_PARAMETER_VALUE, 400, "InvalidParameterValue", "InvalidParameterValue" },
        { SQS_E_INVALID_ATTRIBUTE_NAME, 400, "InvalidAttributeName", "InvalidAttributeName" },
        { SQS_E_INVALID_ATTRIBUTE_VALUE, 400, "InvalidAttributeValue", "InvalidAttributeValue" },
        { SQS_E_MALFORMED_QUERY, 400, "MalformedQueryString", "SerializationException" },
        { SQS_E_NONEXISTENT_QUEUE, 400, "AWS.SimpleQueueService.NonExistentQueue",
          "QueueDoesNotExist" },
        { SQS_E_QUEUE_NAME_EXISTS, 400, "QueueAlreadyExists", "QueueNameExists" },
        { SQS_E_QUEUE_DELETED_RECENTLY, 400, "AWS.SimpleQueueService.QueueDeletedRecently",
          "QueueDeletedRecently" },
        { SQS_E_PURGE_IN_PROGRESS, 403, "AWS.SimpleQueueService.PurgeQueueInProgress",
          "PurgeQueueInProgress" },
        { SQS_E_RECEIPT_HANDLE_INVALID, 404, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid" },
        { SQS_E_MESSAGE_NOT_INFLIGHT, 400, "AWS.SimpleQueueService.MessageNotInflight",
          "MessageNotInflight" },
        { SQS_E_EMPTY_BATCH, 400, "AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest" },
        { SQS_E_TOO_MANY_ENTRIES, 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
          "TooManyEntriesInBatchRequest" },
        { SQS_E_BATCH_IDS_NOT_DISTINCT, 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
          "BatchEntryIdsNotDistinct" },
        { SQS_E_INVALID_BATCH_ENTRY_ID, 400, "AWS.SimpleQueueService.InvalidBatchEntryId",
          "InvalidBatchEntryId" },
        { SQS_E_BATCH_TOO_LONG, 400, "AWS.SimpleQueueService.BatchRequestTooLong",
          "BatchRequestTooLong" },
        { SQS_E_INVALID_MESSAGE_CONTENTS, 400, "InvalidMessageContents", "InvalidMessageContents" },
        { SQS_E_UNSUPPORTED_OPERATION, 400, "AWS.SimpleQueueService.UnsupportedOperation",
          "UnsupportedOperation" },
        { SQS_E_OVER_LIMIT, 403, "OverLimit", "OverLimit" },
        { SQS_E_RESOURCE_NOT_FOUND, 404, "ResourceNotFoundException", "ResourceNotFoundException" },
        { SQS_E_ACCESS_DENIED, 403, "AccessDenied", "AccessDeniedException" },
        { SQS_E_SIGNATURE_DOES_NOT_MATCH, 403, "SignatureDoesNotMatch",
          "InvalidSignatureException" },
        { SQS_E_INVALID_CLIENT_TOKEN, 403, "InvalidClientTokenId", "UnrecognizedClientException" },
        { SQS_E_THROTTLED, 400, "RequestThrottled", "RequestThrottled" },
        { SQS_E_INTERNAL, 500, "InternalError", "InternalFailure" },
        { SQS_E_SERVICE_UNAVAILABLE, 503, "ServiceUnavailable", "ServiceUnavailableException" },
    };
    cr_assert_eq(ARRAY_SIZE(t), SQS_E__COUNT - 1, "every error is listed");
    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        cr_expect_eq(sqs_err_status(t[i].c), t[i].status, "%s", t[i].q);
        cr_expect_str_eq(sqs__err_query_code(t[i].c), t[i].q);
        const char *j = strchr(sqs__err_json_type(t[i].c), '#');
        cr_expect(j && strcmp(j + 1, t[i].j) == 0, "%s: %s", t[i].q, sqs__err_json_type(t[i].c));
        /* the header botocore reads: "<query code>;Sender|Receiver" */
        struct sqs_error e;
        struct buf b;
        buf_init(&b);
        const char *ct, *hdr;
        int status;
        sqs_fail(&e, t[i].c, "m");
        sqs_encode_error(SQS_PROTO_JSON, &e, "r", &b, &ct, &status, &hdr);
        char want[128];
        snprintf(want, sizeof want, "%s;%s", t[i].q, t[i].status >= 500 ? "Receiver" : "Sender");
        cr_expect_str_eq(hdr, want);
        buf_free(&b);
    }
    cr_expect_str_eq(sqs_err_name(SQS_E_NONEXISTENT_QUEUE), "QueueDoesNotExist");
    cr_expect_str_eq(sqs_err_name(SQS_E_RECEIPT_HANDLE_INVALID), "ReceiptHandleIsInvalid");
    cr_expect_eq(sqs_err_status((enum sqs_err)999), 500);
}
