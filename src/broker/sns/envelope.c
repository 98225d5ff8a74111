/* What SNS delivers: the JSON envelope of a Notification (to an sqs
 * subscription without RawMessageDelivery, and as the body of an HTTP
 * push), of a SubscriptionConfirmation and of an UnsubscribeConfirmation,
 * written as SNS writes them (two-space indent, " : " separators, fields
 * in SNS's order), and the canonical string SNS signs for each. */
#include "broker/sns/sns_int.h"

#include <stdio.h>
#include <string.h>

/* Appends s[0..n) as a JSON string literal. */
static void json_str(struct buf *out, const char *s, size_t n)
{
    buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (!esc) {
            run++;
            continue;
        }
        buf_append(out, s + i - run, run);
        run = 0;
        buf_append_str(out, esc);
    }
    buf_append(out, s + n - run, run);
    buf_append(out, "\"", 1);
}

static void field(struct buf *out, bool *first, const char *name, const char *v, size_t n)
{
    buf_append_str(out, *first ? "{\n  \"" : ",\n  \"");
    *first = false;
    buf_append_str(out, name);
    buf_append_str(out, "\" : ");
    json_str(out, v, n);
}

static void field_s(struct buf *out, bool *first, const char *name, const char *v)
{
    if (v)
        field(out, first, name, v, strlen(v));
}

/* One message attribute in the SQS shape ({"DataType", "StringValue" |
 * "BinaryValue"}): its type and value, or false when it has no name or type. */
static bool attr_parts(const cJSON *a, const char **type, const char **value)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(a, "DataType");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(a, "StringValue");
    const cJSON *bv = cJSON_GetObjectItemCaseSensitive(a, "BinaryValue");
    if (!a->string || !cJSON_IsString(dt))
        return false;
    const cJSON *v = cJSON_IsString(sv) ? sv : bv;
    *type = dt->valuestring;
    *value = cJSON_IsString(v) ? v->valuestring : "";
    return true;
}

cJSON *sns_envelope_attrs(const cJSON *attrs)
{
    cJSON *o = cJSON_CreateObject();
    for (const cJSON *a = attrs ? attrs->child : NULL; a; a = a->next) {
        const char *type, *val;
        if (!attr_parts(a, &type, &val))
            continue;
        cJSON *e = cJSON_AddObjectToObject(o, a->string);
        cJSON_AddStringToObject(e, "Type", type);
        cJSON_AddStringToObject(e, "Value", val);
    }
    return o;
}

/* "MessageAttributes" : {"n" : {"Type" : "String", "Value" : "v"}, ...} */
static void attrs_field(struct buf *out, const cJSON *attrs)
{
    buf_append_str(out, ",\n  \"MessageAttributes\" : {");
    bool first = true;
    for (const cJSON *a = attrs->child; a; a = a->next) {
        const char *type, *val;
        if (!attr_parts(a, &type, &val))
            continue;
        buf_append_str(out, first ? "\n    " : ",\n    ");
        first = false;
        json_str(out, a->string, strlen(a->string));
        buf_append_str(out, " : {\"Type\":");
        json_str(out, type, strlen(type));
        buf_append_str(out, ",\"Value\":");
        json_str(out, val, strlen(val));
        buf_append_str(out, "}");
    }
    buf_append_str(out, first ? "}" : "\n  }");
}

void sns_envelope(const struct sns_note *n, struct buf *out)
{
    char ts[32];
    sns_timestamp(n->timestamp_ms, ts);
    bool first = true;
    bool note = strcmp(n->type, "Notification") == 0;
    field_s(out, &first, "Type", n->type);
    field_s(out, &first, "MessageId", n->message_id);
    if (note) {
        field_s(out, &first, "SequenceNumber", n->sequence_number);
    } else {
        field_s(out, &first, "Token", n->token);
    }
    field_s(out, &first, "TopicArn", n->topic_arn);
    if (note)
        field_s(out, &first, "Subject", n->subject);
    field(out, &first, "Message", n->message, n->message_len);
    if (!note)
        field_s(out, &first, "SubscribeURL", n->subscribe_url);
    field_s(out, &first, "Timestamp", ts);
    if (n->signature_version) {
        field_s(out, &first, "SignatureVersion", n->signature_version);
        field_s(out, &first, "Signature", n->signature ? n->signature : "");
        field_s(out, &first, "SigningCertURL", n->signing_cert_url);
    }
    if (note)
        field_s(out, &first, "UnsubscribeURL", n->unsubscribe_url);
    if (note && n->attrs && n->attrs->child)
        attrs_field(out, n->attrs);
    buf_append_str(out, "\n}");
}

static void sign_line(struct buf *out, const char *name, const char *v, size_t n)
{
    buf_append_str(out, name);
    buf_append(out, "\n", 1);
    buf_append(out, v, n);
    buf_append(out, "\n", 1);
}

void sns_string_to_sign(const struct sns_note *n, struct buf *out)
{
    char ts[32];
    sns_timestamp(n->timestamp_ms, ts);
    bool note = strcmp(n->type, "Notification") == 0;
    sign_line(out, "Message", n->message, n->message_len);
    sign_line(out, "MessageId", n->message_id, strlen(n->message_id));
    if (note && n->subject)
        sign_line(out, "Subject", n->subject, strlen(n->subject));
    if (!note && n->subscribe_url)
        sign_line(out, "SubscribeURL", n->subscribe_url, strlen(n->subscribe_url));
    sign_line(out, "Timestamp", ts, strlen(ts));
    if (!note && n->token)
        sign_line(out, "Token", n->token, strlen(n->token));
    sign_line(out, "TopicArn", n->topic_arn, strlen(n->topic_arn));
    sign_line(out, "Type", n->type, strlen(n->type));
}

void sns_confirm_text(const char *type, const char *arn, struct buf *out)
{
    if (strcmp(type, "UnsubscribeConfirmation") == 0)
        buf_printf(out, "You have chosen to deactivate subscription %s.\nTo cancel this operation "
                        "and restore the subscription, visit the SubscribeURL included in this "
                        "message.", arn);
    else
        buf_printf(out, "You have chosen to subscribe to the topic %s.\nTo confirm the "
                        "subscription, visit the SubscribeURL included in this message.", arn);
}
