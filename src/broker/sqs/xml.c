/* XML responses of the AWS query protocol, shaped as SQS writes them:
 *
 *   <?xml version="1.0"?>
 *   <SendMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
 *     <SendMessageResult><MD5OfMessageBody>..</MD5OfMessageBody>..</SendMessageResult>
 *     <ResponseMetadata><RequestId>..</RequestId></ResponseMetadata>
 *   </SendMessageResponse>
 *
 * (without whitespace between elements). The result element is there for
 * every action the model gives a result, even an empty one; flattened lists
 * repeat their element (<QueueUrl>, <Message>, <BatchResultErrorEntry>),
 * maps are <Attribute><Name/><Value/></Attribute> and
 * <MessageAttribute><Name/><Value><StringValue/><DataType/></Value></MessageAttribute>.
 * Element names and order come from the model (sqs/model.c); members the
 * model does not know are not rendered. Every string is escaped. */
#include "broker/sqs/sqs_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define XMLNS "http://queue.amazonaws.com/doc/2012-11-05/"

static bool xml_ok(int32_t cp)
{
    return cp == 0x9 || cp == 0xa || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

void sqs__xml_escape(struct buf *out, const char *s, size_t n)
{
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        size_t used = 1;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        case '\r': rep = "&#xD;"; break;
        default:
            if (c >= 0x20 && c < 0x80) {
                i++;
                continue;
            }
            if (c == '\t' || c == '\n') {
                i++;
                continue;
            }
            int32_t cp = sqs__utf8_char(s + i, n - i, &used);
            if (cp >= 0x80 && xml_ok(cp)) {
                i += used;
                continue;
            }
            rep = "\xEF\xBF\xBD"; /* U+FFFD */
        }
        buf_append(out, s + run, i - run);
        buf_append_str(out, rep);
        i += used;
        run = i;
    }
    buf_append(out, s + run, n - run);
}

static void open_tag(struct buf *out, const char *name)
{
    buf_append_str(out, "<");
    buf_append_str(out, name);
    buf_append_str(out, ">");
}

static void close_tag(struct buf *out, const char *name)
{
    buf_append_str(out, "</");
    buf_append_str(out, name);
    buf_append_str(out, ">");
}

static void text(struct buf *out, const char *s)
{
    sqs__xml_escape(out, s, strlen(s));
}

static void scalar(struct buf *out, const cJSON *v, const struct sqs_shape *s)
{
    if (cJSON_IsString(v)) {
        text(out, v->valuestring);
    } else if (cJSON_IsBool(v)) {
        buf_append_str(out, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (s->kind == SQS_K_INT || s->kind == SQS_K_LONG || d == floor(d))
            buf_printf(out, "%lld", (long long)d);
        else
            buf_printf(out, "%.17g", d);
    }
}

static void members(struct buf *out, const cJSON *obj, const struct sqs_shape *s, int depth);

/* The content of one value: text for scalars, child elements for
 * structures. */
static void content(struct buf *out, const cJSON *v, const struct sqs_shape *s, int depth)
{
    if (s->kind == SQS_K_STRUCT)
        members(out, v, s, depth + 1);
    else
        scalar(out, v, s);
}

static void members(struct buf *out, const cJSON *obj, const struct sqs_shape *s, int depth)
{
    if (!cJSON_IsObject(obj) || depth > SQS_MAX_DEPTH)
        return;
    for (unsigned i = 0; i < s->nmembers; i++) {
        const struct sqs_member *m = &s->members[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, m->name);
        if (!v || cJSON_IsNull(v))
            continue;
        switch (m->shape->kind) {
        case SQS_K_LIST:
            for (const cJSON *c = cJSON_IsArray(v) ? v->child : NULL; c; c = c->next) {
                open_tag(out, m->qname);
                content(out, c, m->shape->elem, depth);
                close_tag(out, m->qname);
            }
            break;
        case SQS_K_MAP:
            for (const cJSON *c = cJSON_IsObject(v) ? v->child : NULL; c; c = c->next) {
                open_tag(out, m->qname);
                open_tag(out, m->shape->key_name);
                text(out, c->string);
                close_tag(out, m->shape->key_name);
                open_tag(out, m->shape->val_name);
                content(out, c, m->shape->elem, depth);
                close_tag(out, m->shape->val_name);
                close_tag(out, m->qname);
            }
            break;
        default:
            open_tag(out, m->qname);
            content(out, v, m->shape, depth);
            close_tag(out, m->qname);
        }
    }
}

void sqs__xml_result(const struct sqs_action *a, const char *action, const cJSON *result,
                     const char *request_id, struct buf *out)
{
    /* The root is named after the action; an action the model does not know
     * (the engine should never pass one) still gives well-formed XML. */
    const char *name = a ? a->name : "Unknown";
    FG_UNUSED(action);
    buf_printf(out, "<?xml version=\"1.0\"?><%sResponse xmlns=\"" XMLNS "\">", name);
    if (a && a->out) {
        buf_printf(out, "<%sResult>", name);
        members(out, result, a->out, 0);
        buf_printf(out, "</%sResult>", name);
    }
    buf_append_str(out, "<ResponseMetadata><RequestId>");
    text(out, request_id ? request_id : "");
    buf_printf(out, "</RequestId></ResponseMetadata></%sResponse>", name);
}

void sqs__xml_error(const struct sqs_error *err, const char *request_id, struct buf *out)
{
    buf_append_str(out, "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" XMLNS "\"><Error><Type>");
    buf_append_str(out, sqs__err_sender(err->code) ? "Sender" : "Receiver");
    buf_append_str(out, "</Type><Code>");
    text(out, sqs__err_query_code(err->code));
    buf_append_str(out, "</Code><Message>");
    text(out, err->message);
    buf_append_str(out, "</Message><Detail/></Error><RequestId>");
    text(out, request_id ? request_id : "");
    buf_append_str(out, "</RequestId></ErrorResponse>");
}
