/* SNS query-protocol answers: the XML of results and errors, written from
 * the canonical JSON result by the action's output shape (sns/model.c).
 * Lists are wrapped (<Topics><member>...</member></Topics>), maps are
 * <Attributes><entry><key>k</key><value>v</value></entry></Attributes>,
 * as SNS writes them:
 *
 *   <CreateTopicResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
 *     <CreateTopicResult><TopicArn>...</TopicArn></CreateTopicResult>
 *     <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
 *   </CreateTopicResponse>
 *
 *   <ErrorResponse xmlns="..."><Error><Type>Sender</Type><Code>NotFound</Code>
 *     <Message>Topic does not exist</Message></Error><RequestId>...</RequestId>
 *   </ErrorResponse> */
#include "broker/sns/sns_int.h"

#include <stdio.h>
#include <string.h>

/* The code point of the UTF-8 sequence at s[0..n), or -1 (*used = 1). */
static int32_t utf8_char(const unsigned char *s, size_t n, size_t *used)
{
    unsigned char c = s[0];
    *used = 1;
    if (c < 0x80)
        return c;
    size_t len;
    int32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n < len)
        return -1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *used = len;
    return cp;
}

bool sns_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t used;
        if (utf8_char(p + i, n - i, &used) < 0)
            return false;
        i += used;
    }
    return true;
}

void sns_xml_escape(struct buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t used;
        int32_t cp = utf8_char(p + i, n - i, &used);
        switch (cp) {
        case '&': buf_append_str(out, "&amp;"); break;
        case '<': buf_append_str(out, "&lt;"); break;
        case '>': buf_append_str(out, "&gt;"); break;
        case '"': buf_append_str(out, "&quot;"); break;
        case '\'': buf_append_str(out, "&apos;"); break;
        case '\r': buf_append_str(out, "&#xD;"); break;
        default:
            if (cp < 0 || (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xfffe || cp == 0xffff)
                buf_append_str(out, "\xef\xbf\xbd"); /* U+FFFD */
            else
                buf_append(out, p + i, used);
        }
        i += used;
    }
}

static void text(struct buf *out, const char *s) { sns_xml_escape(out, s, strlen(s)); }

static void open_tag(struct buf *out, const char *name) { buf_printf(out, "<%s>", name); }
static void close_tag(struct buf *out, const char *name) { buf_printf(out, "</%s>", name); }

static void members(struct buf *out, const cJSON *obj, const struct sns_shape *sh, int depth);

/* The content of one element of shape sh holding v. */
static void content(struct buf *out, const cJSON *v, const struct sns_shape *sh, int depth)
{
    if (depth > 8)
        return;
    switch (sh->kind) {
    case SNS_K_STR:
    case SNS_K_BLOB:
        if (cJSON_IsString(v))
            text(out, v->valuestring);
        else if (cJSON_IsNumber(v))
            buf_printf(out, "%.17g", v->valuedouble);
        break;
    case SNS_K_BOOL:
        buf_append_str(out, cJSON_IsTrue(v) ? "true" : "false");
        break;
    case SNS_K_STRUCT:
        members(out, v, sh, depth + 1);
        break;
    case SNS_K_LIST:
        for (const cJSON *c = cJSON_IsArray(v) ? v->child : NULL; c; c = c->next) {
            open_tag(out, "member");
            content(out, c, sh->elem, depth + 1);
            close_tag(out, "member");
        }
        break;
    case SNS_K_MAP:
        for (const cJSON *c = cJSON_IsObject(v) ? v->child : NULL; c; c = c->next) {
            open_tag(out, "entry");
            open_tag(out, sh->key_name);
            text(out, c->string ? c->string : "");
            close_tag(out, sh->key_name);
            open_tag(out, sh->val_name);
            content(out, c, sh->elem, depth + 1);
            close_tag(out, sh->val_name);
            close_tag(out, "entry");
        }
        break;
    }
}

/* A struct's members, in the model's order; absent and null ones left out. */
static void members(struct buf *out, const cJSON *obj, const struct sns_shape *sh, int depth)
{
    if (!cJSON_IsObject(obj))
        return;
    for (unsigned i = 0; i < sh->nmembers; i++) {
        const struct sns_member *m = &sh->members[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, m->name);
        if (!v || cJSON_IsNull(v))
            continue;
        open_tag(out, m->name);
        content(out, v, m->shape, depth);
        close_tag(out, m->name);
    }
}

void sns_encode_result(const char *action, const cJSON *result, const char *request_id,
                       struct buf *out)
{
    const struct sns_action *a = sns__action(action, strlen(action));
    const char *name = a ? a->name : "Unknown";
    buf_printf(out, "<?xml version=\"1.0\"?>\n<%sResponse xmlns=\"" SNS_XMLNS "\">", name);
    if (a && a->out) {
        if (a->out->nmembers == 0) {
            buf_printf(out, "<%sResult/>", name);
        } else {
            buf_printf(out, "<%sResult>", name);
            members(out, result, a->out, 0);
            buf_printf(out, "</%sResult>", name);
        }
    }
    buf_append_str(out, "<ResponseMetadata><RequestId>");
    text(out, request_id ? request_id : "");
    buf_printf(out, "</RequestId></ResponseMetadata></%sResponse>\n", name);
}

void sns_encode_error(const struct sns_error *err, const char *request_id, struct buf *out,
                      int *status)
{
    buf_append_str(out, "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"" SNS_XMLNS "\">"
                        "<Error><Type>");
    buf_append_str(out, sns_err_sender(err->code) ? "Sender" : "Receiver");
    buf_append_str(out, "</Type><Code>");
    text(out, sns_err_code(err->code));
    buf_append_str(out, "</Code><Message>");
    text(out, err->message);
    buf_append_str(out, "</Message></Error><RequestId>");
    text(out, request_id ? request_id : "");
    buf_append_str(out, "</RequestId></ErrorResponse>\n");
    *status = sns_err_status(err->code);
}
