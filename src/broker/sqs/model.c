/* The SQS API model: every action's parameters and results, transcribed
 * from the 2012-11-05 service model the AWS SDKs ship (botocore's
 * data/sqs/2012-11-05/service-2.json). Member order is the model's, which
 * is also the element order of SQS's XML responses. qname is the name in
 * the query protocol and in XML: for flattened lists and maps it is the
 * element name (AttributeName.1, SendMessageBatchRequestEntry.1.Id,
 * Attribute.1.Name / Attribute.1.Value, MessageAttribute.1.Value.DataType).
 *
 * Also the JSON side of the canonical form: sqs__json_canon() checks a
 * JSON 1.0 body against the same shapes. */
#include "broker/sqs/sqs_int.h"
#include "core/base64.h"

#include <math.h>
#include <string.h>

#define N(a) (unsigned)ARRAY_SIZE(a)
/* clang-format off */
#define STRUCT(m) { .kind = SQS_K_STRUCT, .members = (m), .nmembers = N(m) }
/* clang-format on */

static const struct sqs_shape S_STR = { .kind = SQS_K_STR };
static const struct sqs_shape S_INT = { .kind = SQS_K_INT };
static const struct sqs_shape S_LONG = { .kind = SQS_K_LONG };
static const struct sqs_shape S_BOOL = { .kind = SQS_K_BOOL };
static const struct sqs_shape S_BLOB = { .kind = SQS_K_BLOB };
static const struct sqs_shape S_STR_LIST = { .kind = SQS_K_LIST, .elem = &S_STR };
static const struct sqs_shape S_BLOB_LIST = { .kind = SQS_K_LIST, .elem = &S_BLOB };
/* Attribute.N.Name / Attribute.N.Value (queue and system attributes). */
static const struct sqs_shape S_NAME_MAP = {
    .kind = SQS_K_MAP, .elem = &S_STR, .key_name = "Name", .val_name = "Value"
};
/* Tag.N.Key / Tag.N.Value. */
static const struct sqs_shape S_TAG_MAP = {
    .kind = SQS_K_MAP, .elem = &S_STR, .key_name = "Key", .val_name = "Value"
};

static const struct sqs_member M_ATTR_VALUE[] = {
    { "StringValue", "StringValue", &S_STR, false },
    { "BinaryValue", "BinaryValue", &S_BLOB, false },
    { "StringListValues", "StringListValue", &S_STR_LIST, false },
    { "BinaryListValues", "BinaryListValue", &S_BLOB_LIST, false },
    { "DataType", "DataType", &S_STR, true },
};
static const struct sqs_shape S_ATTR_VALUE = STRUCT(M_ATTR_VALUE);
/* MessageAttribute.N.Name / MessageAttribute.N.Value.{StringValue,...}. */
static const struct sqs_shape S_ATTR_MAP = {
    .kind = SQS_K_MAP, .elem = &S_ATTR_VALUE, .key_name = "Name", .val_name = "Value"
};

/* ---- requests ---- */

static const struct sqs_member M_QUEUE_ONLY[] = { { "QueueUrl", "QueueUrl", &S_STR, true } };
static const struct sqs_shape S_QUEUE_ONLY = STRUCT(M_QUEUE_ONLY);

static const struct sqs_member M_CREATE_QUEUE[] = {
    { "QueueName", "QueueName", &S_STR, true },
    { "Attributes", "Attribute", &S_NAME_MAP, false },
    { "tags", "Tag", &S_TAG_MAP, false },
};
static const struct sqs_member M_LIST_QUEUES[] = {
    { "QueueNamePrefix", "QueueNamePrefix", &S_STR, false },
    { "NextToken", "NextToken", &S_STR, false },
    { "MaxResults", "MaxResults", &S_INT, false },
};
static const struct sqs_member M_GET_QUEUE_URL[] = {
    { "QueueName", "QueueName", &S_STR, true },
    { "QueueOwnerAWSAccountId", "QueueOwnerAWSAccountId", &S_STR, false },
};
static const struct sqs_member M_GET_QUEUE_ATTRS[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "AttributeNames", "AttributeName", &S_STR_LIST, false },
};
static const struct sqs_member M_SET_QUEUE_ATTRS[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Attributes", "Attribute", &S_NAME_MAP, true },
};
static const struct sqs_member M_SEND[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "MessageBody", "MessageBody", &S_STR, true },
    { "DelaySeconds", "DelaySeconds", &S_INT, false },
    { "MessageAttributes", "MessageAttribute", &S_ATTR_MAP, false },
    { "MessageSystemAttributes", "MessageSystemAttribute", &S_ATTR_MAP, false },
    { "MessageDeduplicationId", "MessageDeduplicationId", &S_STR, false },
    { "MessageGroupId", "MessageGroupId", &S_STR, false },
};
static const struct sqs_member M_SEND_ENTRY[] = {
    { "Id", "Id", &S_STR, true },
    { "MessageBody", "MessageBody", &S_STR, true },
    { "DelaySeconds", "DelaySeconds", &S_INT, false },
    { "MessageAttributes", "MessageAttribute", &S_ATTR_MAP, false },
    { "MessageSystemAttributes", "MessageSystemAttribute", &S_ATTR_MAP, false },
    { "MessageDeduplicationId", "MessageDeduplicationId", &S_STR, false },
    { "MessageGroupId", "MessageGroupId", &S_STR, false },
};
static const struct sqs_shape S_SEND_ENTRY = STRUCT(M_SEND_ENTRY);
static const struct sqs_shape S_SEND_ENTRIES = { .kind = SQS_K_LIST, .elem = &S_SEND_ENTRY };
static const struct sqs_member M_SEND_BATCH[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Entries", "SendMessageBatchRequestEntry", &S_SEND_ENTRIES, true },
};
static const struct sqs_member M_RECEIVE[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "AttributeNames", "AttributeName", &S_STR_LIST, false },
    { "MessageSystemAttributeNames", "MessageSystemAttributeName", &S_STR_LIST, false },
    { "MessageAttributeNames", "MessageAttributeName", &S_STR_LIST, false },
    { "MaxNumberOfMessages", "MaxNumberOfMessages", &S_INT, false },
    { "VisibilityTimeout", "VisibilityTimeout", &S_INT, false },
    { "WaitTimeSeconds", "WaitTimeSeconds", &S_INT, false },
    { "ReceiveRequestAttemptId", "ReceiveRequestAttemptId", &S_STR, false },
};
static const struct sqs_member M_RECEIPT[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "ReceiptHandle", "ReceiptHandle", &S_STR, true },
};
static const struct sqs_member M_DELETE_ENTRY[] = {
    { "Id", "Id", &S_STR, true },
    { "ReceiptHandle", "ReceiptHandle", &S_STR, true },
};
static const struct sqs_shape S_DELETE_ENTRY = STRUCT(M_DELETE_ENTRY);
static const struct sqs_shape S_DELETE_ENTRIES = { .kind = SQS_K_LIST, .elem = &S_DELETE_ENTRY };
static const struct sqs_member M_DELETE_BATCH[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Entries", "DeleteMessageBatchRequestEntry", &S_DELETE_ENTRIES, true },
};
static const struct sqs_member M_CHANGE_VIS[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "ReceiptHandle", "ReceiptHandle", &S_STR, true },
    { "VisibilityTimeout", "VisibilityTimeout", &S_INT, true },
};
static const struct sqs_member M_CHANGE_ENTRY[] = {
    { "Id", "Id", &S_STR, true },
    { "ReceiptHandle", "ReceiptHandle", &S_STR, true },
    { "VisibilityTimeout", "VisibilityTimeout", &S_INT, false },
};
static const struct sqs_shape S_CHANGE_ENTRY = STRUCT(M_CHANGE_ENTRY);
static const struct sqs_shape S_CHANGE_ENTRIES = { .kind = SQS_K_LIST, .elem = &S_CHANGE_ENTRY };
static const struct sqs_member M_CHANGE_BATCH[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Entries", "ChangeMessageVisibilityBatchRequestEntry", &S_CHANGE_ENTRIES, true },
};
static const struct sqs_member M_LIST_DLQ_SOURCES[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "NextToken", "NextToken", &S_STR, false },
    { "MaxResults", "MaxResults", &S_INT, false },
};
static const struct sqs_member M_TAG_QUEUE[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Tags", "Tag", &S_TAG_MAP, true },
};
static const struct sqs_member M_UNTAG_QUEUE[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "TagKeys", "TagKey", &S_STR_LIST, true },
};
static const struct sqs_member M_START_MOVE[] = {
    { "SourceArn", "SourceArn", &S_STR, true },
    { "DestinationArn", "DestinationArn", &S_STR, false },
    { "MaxNumberOfMessagesPerSecond", "MaxNumberOfMessagesPerSecond", &S_INT, false },
};
static const struct sqs_member M_LIST_MOVES[] = {
    { "SourceArn", "SourceArn", &S_STR, true },
    { "MaxResults", "MaxResults", &S_INT, false },
};
static const struct sqs_member M_CANCEL_MOVE[] = { { "TaskHandle", "TaskHandle", &S_STR, true } };
static const struct sqs_member M_ADD_PERMISSION[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Label", "Label", &S_STR, true },
    { "AWSAccountIds", "AWSAccountId", &S_STR_LIST, true },
    { "Actions", "ActionName", &S_STR_LIST, true },
};
static const struct sqs_member M_REMOVE_PERMISSION[] = {
    { "QueueUrl", "QueueUrl", &S_STR, true },
    { "Label", "Label", &S_STR, true },
};

/* ---- results ---- */

static const struct sqs_member M_QUEUE_URL_RESULT[] = { { "QueueUrl", "QueueUrl", &S_STR, false } };
static const struct sqs_member M_LIST_QUEUES_RESULT[] = {
    { "QueueUrls", "QueueUrl", &S_STR_LIST, false },
    { "NextToken", "NextToken", &S_STR, false },
};
static const struct sqs_member M_DLQ_SOURCES_RESULT[] = {
    { "queueUrls", "QueueUrl", &S_STR_LIST, false },
    { "NextToken", "NextToken", &S_STR, false },
};
static const struct sqs_member M_ATTRS_RESULT[] = { { "Attributes", "Attribute", &S_NAME_MAP,
                                                      false } };
static const struct sqs_member M_TAGS_RESULT[] = { { "Tags", "Tag", &S_TAG_MAP, false } };
static const struct sqs_member M_SEND_RESULT[] = {
    { "MD5OfMessageBody", "MD5OfMessageBody", &S_STR, false },
    { "MD5OfMessageAttributes", "MD5OfMessageAttributes", &S_STR, false },
    { "MD5OfMessageSystemAttributes", "MD5OfMessageSystemAttributes", &S_STR, false },
    { "MessageId", "MessageId", &S_STR, false },
    { "SequenceNumber", "SequenceNumber", &S_STR, false },
};
static const struct sqs_member M_SEND_RESULT_ENTRY[] = {
    { "Id", "Id", &S_STR, false },
    { "MessageId", "MessageId", &S_STR, false },
    { "MD5OfMessageBody", "MD5OfMessageBody", &S_STR, false },
    { "MD5OfMessageAttributes", "MD5OfMessageAttributes", &S_STR, false },
    { "MD5OfMessageSystemAttributes", "MD5OfMessageSystemAttributes", &S_STR, false },
    { "SequenceNumber", "SequenceNumber", &S_STR, false },
};
static const struct sqs_shape S_SEND_RESULT_ENTRY = STRUCT(M_SEND_RESULT_ENTRY);
static const struct sqs_shape S_SEND_RESULT_ENTRIES = { .kind = SQS_K_LIST,
                                                        .elem = &S_SEND_RESULT_ENTRY };
static const struct sqs_member M_ERROR_ENTRY[] = {
    { "Id", "Id", &S_STR, false },
    { "SenderFault", "SenderFault", &S_BOOL, false },
    { "Code", "Code", &S_STR, false },
    { "Message", "Message", &S_STR, false },
};
static const struct sqs_shape S_ERROR_ENTRY = STRUCT(M_ERROR_ENTRY);
static const struct sqs_shape S_ERROR_ENTRIES = { .kind = SQS_K_LIST, .elem = &S_ERROR_ENTRY };
static const struct sqs_member M_SEND_BATCH_RESULT[] = {
    { "Successful", "SendMessageBatchResultEntry", &S_SEND_RESULT_ENTRIES, false },
    { "Failed", "BatchResultErrorEntry", &S_ERROR_ENTRIES, false },
};
static const struct sqs_member M_ID_ENTRY[] = { { "Id", "Id", &S_STR, false } };
static const struct sqs_shape S_ID_ENTRY = STRUCT(M_ID_ENTRY);
static const struct sqs_shape S_ID_ENTRIES = { .kind = SQS_K_LIST, .elem = &S_ID_ENTRY };
static const struct sqs_member M_DELETE_BATCH_RESULT[] = {
    { "Successful", "DeleteMessageBatchResultEntry", &S_ID_ENTRIES, false },
    { "Failed", "BatchResultErrorEntry", &S_ERROR_ENTRIES, false },
};
static const struct sqs_member M_CHANGE_BATCH_RESULT[] = {
    { "Successful", "ChangeMessageVisibilityBatchResultEntry", &S_ID_ENTRIES, false },
    { "Failed", "BatchResultErrorEntry", &S_ERROR_ENTRIES, false },
};
static const struct sqs_member M_MESSAGE[] = {
    { "MessageId", "MessageId", &S_STR, false },
    { "ReceiptHandle", "ReceiptHandle", &S_STR, false },
    { "MD5OfBody", "MD5OfBody", &S_STR, false },
    { "Body", "Body", &S_STR, false },
    { "Attributes", "Attribute", &S_NAME_MAP, false },
    { "MD5OfMessageAttributes", "MD5OfMessageAttributes", &S_STR, false },
    { "MessageAttributes", "MessageAttribute", &S_ATTR_MAP, false },
};
static const struct sqs_shape S_MESSAGE = STRUCT(M_MESSAGE);
static const struct sqs_shape S_MESSAGES = { .kind = SQS_K_LIST, .elem = &S_MESSAGE };
static const struct sqs_member M_RECEIVE_RESULT[] = { { "Messages", "Message", &S_MESSAGES,
                                                        false } };
static const struct sqs_member M_START_MOVE_RESULT[] = { { "TaskHandle", "TaskHandle", &S_STR,
                                                           false } };
static const struct sqs_member M_CANCEL_MOVE_RESULT[] = {
    { "ApproximateNumberOfMessagesMoved", "ApproximateNumberOfMessagesMoved", &S_LONG, false }
};
static const struct sqs_member M_MOVE_TASK[] = {
    { "TaskHandle", "TaskHandle", &S_STR, false },
    { "Status", "Status", &S_STR, false },
    { "SourceArn", "SourceArn", &S_STR, false },
    { "DestinationArn", "DestinationArn", &S_STR, false },
    { "MaxNumberOfMessagesPerSecond", "MaxNumberOfMessagesPerSecond", &S_INT, false },
    { "ApproximateNumberOfMessagesMoved", "ApproximateNumberOfMessagesMoved", &S_LONG, false },
    { "ApproximateNumberOfMessagesToMove", "ApproximateNumberOfMessagesToMove", &S_LONG, false },
    { "FailureReason", "FailureReason", &S_STR, false },
    { "StartedTimestamp", "StartedTimestamp", &S_LONG, false },
};
static const struct sqs_shape S_MOVE_TASK = STRUCT(M_MOVE_TASK);
static const struct sqs_shape S_MOVE_TASKS = { .kind = SQS_K_LIST, .elem = &S_MOVE_TASK };
static const struct sqs_member M_LIST_MOVES_RESULT[] = {
    { "Results", "ListMessageMoveTasksResultEntry", &S_MOVE_TASKS, false }
};

#define SHAPE(name, m) static const struct sqs_shape name = STRUCT(m)
SHAPE(IN_CREATE_QUEUE, M_CREATE_QUEUE);
SHAPE(IN_LIST_QUEUES, M_LIST_QUEUES);
SHAPE(IN_GET_QUEUE_URL, M_GET_QUEUE_URL);
SHAPE(IN_GET_QUEUE_ATTRS, M_GET_QUEUE_ATTRS);
SHAPE(IN_SET_QUEUE_ATTRS, M_SET_QUEUE_ATTRS);
SHAPE(IN_SEND, M_SEND);
SHAPE(IN_SEND_BATCH, M_SEND_BATCH);
SHAPE(IN_RECEIVE, M_RECEIVE);
SHAPE(IN_RECEIPT, M_RECEIPT);
SHAPE(IN_DELETE_BATCH, M_DELETE_BATCH);
SHAPE(IN_CHANGE_VIS, M_CHANGE_VIS);
SHAPE(IN_CHANGE_BATCH, M_CHANGE_BATCH);
SHAPE(IN_LIST_DLQ_SOURCES, M_LIST_DLQ_SOURCES);
SHAPE(IN_TAG_QUEUE, M_TAG_QUEUE);
SHAPE(IN_UNTAG_QUEUE, M_UNTAG_QUEUE);
SHAPE(IN_START_MOVE, M_START_MOVE);
SHAPE(IN_LIST_MOVES, M_LIST_MOVES);
SHAPE(IN_CANCEL_MOVE, M_CANCEL_MOVE);
SHAPE(IN_ADD_PERMISSION, M_ADD_PERMISSION);
SHAPE(IN_REMOVE_PERMISSION, M_REMOVE_PERMISSION);
SHAPE(OUT_QUEUE_URL, M_QUEUE_URL_RESULT);
SHAPE(OUT_LIST_QUEUES, M_LIST_QUEUES_RESULT);
SHAPE(OUT_DLQ_SOURCES, M_DLQ_SOURCES_RESULT);
SHAPE(OUT_ATTRS, M_ATTRS_RESULT);
SHAPE(OUT_TAGS, M_TAGS_RESULT);
SHAPE(OUT_SEND, M_SEND_RESULT);
SHAPE(OUT_SEND_BATCH, M_SEND_BATCH_RESULT);
SHAPE(OUT_DELETE_BATCH, M_DELETE_BATCH_RESULT);
SHAPE(OUT_CHANGE_BATCH, M_CHANGE_BATCH_RESULT);
SHAPE(OUT_RECEIVE, M_RECEIVE_RESULT);
SHAPE(OUT_START_MOVE, M_START_MOVE_RESULT);
SHAPE(OUT_CANCEL_MOVE, M_CANCEL_MOVE_RESULT);
SHAPE(OUT_LIST_MOVES, M_LIST_MOVES_RESULT);

static const struct sqs_action ACTIONS[] = {
    { "AddPermission", &IN_ADD_PERMISSION, NULL },
    { "CancelMessageMoveTask", &IN_CANCEL_MOVE, &OUT_CANCEL_MOVE },
    { "ChangeMessageVisibility", &IN_CHANGE_VIS, NULL },
    { "ChangeMessageVisibilityBatch", &IN_CHANGE_BATCH, &OUT_CHANGE_BATCH },
    { "CreateQueue", &IN_CREATE_QUEUE, &OUT_QUEUE_URL },
    { "DeleteMessage", &IN_RECEIPT, NULL },
    { "DeleteMessageBatch", &IN_DELETE_BATCH, &OUT_DELETE_BATCH },
    { "DeleteQueue", &S_QUEUE_ONLY, NULL },
    { "GetQueueAttributes", &IN_GET_QUEUE_ATTRS, &OUT_ATTRS },
    { "GetQueueUrl", &IN_GET_QUEUE_URL, &OUT_QUEUE_URL },
    { "ListDeadLetterSourceQueues", &IN_LIST_DLQ_SOURCES, &OUT_DLQ_SOURCES },
    { "ListMessageMoveTasks", &IN_LIST_MOVES, &OUT_LIST_MOVES },
    { "ListQueueTags", &S_QUEUE_ONLY, &OUT_TAGS },
    { "ListQueues", &IN_LIST_QUEUES, &OUT_LIST_QUEUES },
    { "PurgeQueue", &S_QUEUE_ONLY, NULL },
    { "ReceiveMessage", &IN_RECEIVE, &OUT_RECEIVE },
    { "RemovePermission", &IN_REMOVE_PERMISSION, NULL },
    { "SendMessage", &IN_SEND, &OUT_SEND },
    { "SendMessageBatch", &IN_SEND_BATCH, &OUT_SEND_BATCH },
    { "SetQueueAttributes", &IN_SET_QUEUE_ATTRS, NULL },
    { "StartMessageMoveTask", &IN_START_MOVE, &OUT_START_MOVE },
    { "TagQueue", &IN_TAG_QUEUE, NULL },
    { "UntagQueue", &IN_UNTAG_QUEUE, NULL },
};

const struct sqs_action *sqs__action(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(ACTIONS); i++)
        if (strlen(ACTIONS[i].name) == len && memcmp(ACTIONS[i].name, name, len) == 0)
            return &ACTIONS[i];
    return NULL;
}

const struct sqs_member *sqs__member(const struct sqs_shape *s, const char *name)
{
    for (unsigned i = 0; i < s->nmembers; i++)
        if (strcmp(s->members[i].name, name) == 0)
            return &s->members[i];
    return NULL;
}

/* ---- JSON 1.0 bodies -> canonical form ---- */

static cJSON *canon(const cJSON *v, const struct sqs_shape *s, const char *what, int depth,
                    struct sqs_error *err);

static cJSON *bad_type(const char *what, const char *want, struct sqs_error *err)
{
    sqs_fail(err, SQS_E_MALFORMED_QUERY, "Value for %.100s must be %s.", what, want);
    return NULL;
}

static cJSON *canon_struct(const cJSON *v, const struct sqs_shape *s, int depth,
                           struct sqs_error *err)
{
    if (!cJSON_IsObject(v))
        return bad_type("the request", "an object", err);
    cJSON *out = cJSON_CreateObject();
    for (unsigned i = 0; i < s->nmembers; i++) {
        const struct sqs_member *m = &s->members[i];
        const cJSON *mv = NULL;
        for (const cJSON *c = v->child; c; c = c->next) {
            if (strcmp(c->string, m->name) != 0)
                continue;
            if (mv) {
                sqs_fail(err, SQS_E_MALFORMED_QUERY, "Member %s appears twice.", m->name);
                goto fail;
            }
            mv = c;
        }
        if (!mv || cJSON_IsNull(mv))
            continue;
        cJSON *cv = canon(mv, m->shape, m->name, depth + 1, err);
        if (!cv)
            goto fail;
        cJSON_AddItemToObject(out, m->name, cv);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

static cJSON *canon(const cJSON *v, const struct sqs_shape *s, const char *what, int depth,
                    struct sqs_error *err)
{
    if (depth > SQS_MAX_DEPTH)
        return bad_type(what, "less deeply nested", err);
    switch (s->kind) {
    case SQS_K_STR:
        if (!cJSON_IsString(v))
            return bad_type(what, "a string", err);
        if (!sqs__utf8_valid(v->valuestring, strlen(v->valuestring))) {
            sqs__bad_utf8(what, SQS_E_MALFORMED_QUERY, err);
            return NULL;
        }
        return cJSON_CreateString(v->valuestring);
    case SQS_K_BLOB:
        if (!cJSON_IsString(v) || base64_decode(v->valuestring, strlen(v->valuestring), NULL) < 0)
            return bad_type(what, "base64 text", err);
        return cJSON_CreateString(v->valuestring);
    case SQS_K_INT:
    case SQS_K_LONG: {
        double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        double lim = s->kind == SQS_K_INT ? 2147483648.0 : 9007199254740992.0;
        if (!(d >= -lim && d < lim) || d != floor(d))
            return bad_type(what, "an integer", err);
        return cJSON_CreateNumber(d);
    }
    case SQS_K_BOOL:
        if (!cJSON_IsBool(v))
            return bad_type(what, "a boolean", err);
        return cJSON_CreateBool(cJSON_IsTrue(v));
    case SQS_K_STRUCT: return canon_struct(v, s, depth, err);
    case SQS_K_LIST: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > SQS_MAX_INDEX)
            return bad_type(what, "a list of at most 1000 items", err);
        cJSON *out = cJSON_CreateArray();
        for (const cJSON *c = v->child; c; c = c->next) {
            cJSON *cv = canon(c, s->elem, what, depth + 1, err);
            if (!cv) {
                cJSON_Delete(out);
                return NULL;
            }
            cJSON_AddItemToArray(out, cv);
        }
        return out;
    }
    case SQS_K_MAP: {
        /* At most SQS_MAX_INDEX keys, which also bounds the quadratic
         * duplicate check. */
        if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) > SQS_MAX_INDEX)
            return bad_type(what, "a map of at most 1000 keys", err);
        cJSON *out = cJSON_CreateObject();
        for (const cJSON *c = v->child; c; c = c->next) {
            cJSON *cv = NULL;
            if (cJSON_GetObjectItemCaseSensitive(out, c->string))
                sqs_fail(err, SQS_E_MALFORMED_QUERY, "Key %.100s appears twice in %s.", c->string,
                         what);
            else if (!sqs__utf8_valid(c->string, strlen(c->string)))
                sqs__bad_utf8(what, SQS_E_MALFORMED_QUERY, err);
            else
                cv = canon(c, s->elem, what, depth + 1, err);
            if (!cv) {
                cJSON_Delete(out);
                return NULL;
            }
            cJSON_AddItemToObject(out, c->string, cv);
        }
        return out;
    }
    }
    return bad_type(what, "known", err);
}

cJSON *sqs__json_canon(const cJSON *body, const struct sqs_shape *in, struct sqs_error *err)
{
    return canon_struct(body, in, 0, err);
}
