/* The native HTTP/JSON API of topics, for curl and small scripts. Every
 * route maps onto the SNS actions (topic/act.c, topic/pub.c), with plain
 * names in and out, in the style of the queues' native API:
 *
 *   GET    /v1/topics                           list
 *   PUT    /v1/topics/NAME                      create {"attributes":{..},"tags":{..}}
 *                                               (a NAME ending in .fifo is a FIFO topic)
 *   GET    /v1/topics/NAME                      attributes and tags
 *   PATCH  /v1/topics/NAME                      set {"attributes":{..}}
 *   DELETE /v1/topics/NAME                      delete with its subscriptions
 *   POST   /v1/topics/NAME/publish              a JSON object {"message":..,"subject":..,
 *          "attributes":{..},"group":..,"dedup":..,"structure":"json"},
 *          {"messages":[..]} for a batch (with "id"s), or any other content
 *          type: the raw body is the message (query: subject, group, dedup)
 *   GET    /v1/topics/NAME/subscriptions        list the topic's subscriptions
 *   POST   /v1/topics/NAME/subscriptions        subscribe {"protocol":"sqs"|"http",
 *          "endpoint": queue ARN, queue name or http URL, "attributes":{..}}
 *   GET    /v1/subscriptions/ID                 attributes (ID: the ARN or its last part)
 *   PATCH  /v1/subscriptions/ID                 set {"attributes":{..}}
 *   DELETE /v1/subscriptions/ID                 unsubscribe
 *
 * Message attributes: "v" is a String, 5 a Number, ["a", 1] a String.Array,
 * {"DataType": .., "StringValue"|"BinaryValue": ..} any type. Errors are
 * {"error": message, "code": SNS error code} with the SNS status. */
#include "broker/http/native.h"
#include "broker/topic/topic.h"

#include "core/admin.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEG_MAX 400

static void respond_json(struct bk_conn *c, int status, cJSON *j, bool hold)
{
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    size_t n = strlen(t);
    t = xrealloc(t, n + 2);
    t[n] = '\n';
    t[n + 1] = '\0';
    bk_respond(c, status, "application/json", t, n + 1, NULL, hold);
    if (hold)
        bk_commit_join(c);
    free(t);
}

static void native_error(struct bk_conn *c, const struct sns_error *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", e->message);
    cJSON_AddStringToObject(j, "code", sns_err_code(e->code));
    /* 507 Insufficient Storage: the only throttling is a low disk. */
    respond_json(c, e->code == SNS_E_THROTTLED ? 507 : sns_err_status(e->code), j, false);
}

static void fail(struct bk_conn *c, enum sns_err code, const char *msg)
{
    struct sns_error e;
    sns_fail(&e, code, "%s", msg);
    native_error(c, &e);
}

/* Runs action (params taken over); shape turns the canonical result into
 * the answer (NULL: {"ok": true}). */
static void run(struct tp_engine *t, struct bk_conn *c, const char *action, cJSON *params,
                cJSON *(*shape)(const cJSON *))
{
    cJSON *res = NULL;
    struct sns_error err;
    bool hold;
    enum sns_err rc = tp_server_run(t, c, action, params, &res, &err, &hold);
    cJSON_Delete(params);
    if (rc != SNS_OK) {
        native_error(c, &err);
        return;
    }
    cJSON *o;
    if (shape) {
        o = shape(res);
    } else {
        o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", true);
    }
    cJSON_Delete(res);
    respond_json(c, 200, o, hold);
}

static cJSON *topic_params(const char *name)
{
    cJSON *p = cJSON_CreateObject();
    char *arn = xasprintf(TP_ARN_PREFIX "%s", name);
    cJSON_AddStringToObject(p, "TopicArn", arn);
    free(arn);
    return p;
}

/* {"k": "v"} to the canonical map of string values. */
static cJSON *string_map(const cJSON *a)
{
    cJSON *o = cJSON_CreateObject();
    for (const cJSON *it = a ? a->child : NULL; it; it = it->next) {
        if (cJSON_IsString(it)) {
            cJSON_AddStringToObject(o, it->string, it->valuestring);
        } else if (cJSON_IsBool(it)) {
            cJSON_AddStringToObject(o, it->string, cJSON_IsTrue(it) ? "true" : "false");
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it) || cJSON_IsNumber(it)) {
            /* Policies may be given as JSON rather than as text. */
            char *s = cJSON_PrintUnformatted(it);
            cJSON_AddStringToObject(o, it->string, s);
            free(s);
        }
    }
    return o;
}

static cJSON *message_attrs(const cJSON *a)
{
    cJSON *o = cJSON_CreateObject();
    for (const cJSON *it = a ? a->child : NULL; it; it = it->next) {
        cJSON *v = cJSON_CreateObject();
        if (cJSON_IsString(it)) {
            cJSON_AddStringToObject(v, "DataType", "String");
            cJSON_AddStringToObject(v, "StringValue", it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            char n[64];
            snprintf(n, sizeof n, "%.17g", it->valuedouble);
            cJSON_AddStringToObject(v, "DataType", "Number");
            cJSON_AddStringToObject(v, "StringValue", n);
        } else if (cJSON_IsArray(it)) {
            char *s = cJSON_PrintUnformatted(it);
            cJSON_AddStringToObject(v, "DataType", "String.Array");
            cJSON_AddStringToObject(v, "StringValue", s);
            free(s);
        } else if (cJSON_IsObject(it)) {
            cJSON_Delete(v);
            v = cJSON_Duplicate(it, true);
        }
        cJSON_AddItemToObject(o, it->string, v);
    }
    return o;
}

/* ---- shapes ---- */

static cJSON *shape_arn(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "TopicArn");
    if (!a)
        a = cJSON_GetObjectItemCaseSensitive(r, "SubscriptionArn");
    cJSON_AddStringToObject(o, "arn", cJSON_GetStringValue(a) ? a->valuestring : "");
    return o;
}

static cJSON *shape_published(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    json_copy_str(o, "id", r, "Id");
    json_copy_str(o, "message_id", r, "MessageId");
    json_copy_str(o, "sequence", r, "SequenceNumber");
    return o;
}

static cJSON *shape_batch(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(o, "published");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "Successful"))
        cJSON_AddItemToArray(ok, shape_published(it));
    cJSON *bad = cJSON_AddArrayToObject(o, "failed");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "Failed"))
    {
        cJSON *f = cJSON_CreateObject();
        json_copy_str(f, "id", it, "Id");
        json_copy_str(f, "code", it, "Code");
        json_copy_str(f, "error", it, "Message");
        cJSON_AddItemToArray(bad, f);
    }
    return o;
}

static cJSON *shape_attrs(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "attributes",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "Attributes"), true));
    return o;
}

static cJSON *shape_subs(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "subscriptions");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "Subscriptions"))
    {
        cJSON *s = cJSON_CreateObject();
        const char *arn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "SubscriptionArn"));
        cJSON_AddStringToObject(s, "arn", arn ? arn : "");
        cJSON_AddBoolToObject(s, "confirmed", arn && strcmp(arn, "PendingConfirmation") != 0);
        json_copy_str(s, "protocol", it, "Protocol");
        json_copy_str(s, "endpoint", it, "Endpoint");
        cJSON_AddItemToArray(arr, s);
    }
    return o;
}

/* ---- routes ---- */

static void list_topics(struct tp_engine *t, struct bk_conn *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "topics");
    for (const struct tp_topic *tp = t->topics; tp; tp = tp->next) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", tp->name);
        cJSON_AddStringToObject(j, "arn", tp->arn);
        cJSON_AddBoolToObject(j, "fifo", tp->fifo);
        cJSON_AddNumberToObject(j, "subscriptions", tp->nsubs);
        cJSON_AddNumberToObject(j, "pending", tp->npending);
        cJSON_AddNumberToObject(j, "published", (double)tp->st.published);
        cJSON_AddItemToArray(arr, j);
    }
    respond_json(c, 200, o, false);
}

static void create_topic(struct tp_engine *t, struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *b = bk_native_body_object(c, &bad);
    if (bad) {
        fail(c, SNS_E_INVALID_PARAMETER, "the body must be a JSON object");
        return;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "Name", name);
    cJSON *attrs = string_map(cJSON_GetObjectItemCaseSensitive(b, "attributes"));
    size_t n = strlen(name);
    if (n > 5 && !strcmp(name + n - 5, ".fifo") && !cJSON_GetObjectItemCaseSensitive(attrs, "FifoTopic"))
        cJSON_AddStringToObject(attrs, "FifoTopic", "true");
    cJSON_AddItemToObject(p, "Attributes", attrs);
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(b, "tags");
    if (cJSON_IsObject(tags)) {
        cJSON *list = cJSON_AddArrayToObject(p, "Tags");
        for (const cJSON *tg = tags->child; tg; tg = tg->next) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "Key", tg->string);
            cJSON_AddStringToObject(e, "Value", cJSON_IsString(tg) ? tg->valuestring : "");
            cJSON_AddItemToArray(list, e);
        }
    }
    cJSON_Delete(b);
    run(t, c, "CreateTopic", p, shape_arn);
}

static void get_topic(struct tp_engine *t, struct bk_conn *c, const char *name)
{
    struct tp_topic *tp = tp_find_topic(t, name);
    if (!tp) {
        fail(c, SNS_E_NOT_FOUND, "Topic does not exist");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", tp->name);
    cJSON_AddStringToObject(o, "arn", tp->arn);
    cJSON_AddItemToObject(o, "attributes", tp__topic_attrs(tp));
    cJSON_AddItemToObject(o, "tags", cJSON_Duplicate(tp->tags, true));
    respond_json(c, 200, o, false);
}

/* PATCH: one Set*Attributes per attribute, stopping at the first error. */
static void set_attrs(struct tp_engine *t, struct bk_conn *c, const char *action,
                      const char *arn_member, const char *arn)
{
    bool bad;
    cJSON *b = bk_native_body_object(c, &bad);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(b, "attributes");
    if (bad || !cJSON_IsObject(attrs)) {
        cJSON_Delete(b);
        fail(c, SNS_E_INVALID_PARAMETER, "the body must be {\"attributes\": {...}}");
        return;
    }
    cJSON *vals = string_map(attrs);
    cJSON_Delete(b);
    for (const cJSON *a = vals->child; a; a = a->next) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, arn_member, arn);
        cJSON_AddStringToObject(p, "AttributeName", a->string);
        cJSON_AddStringToObject(p, "AttributeValue", a->valuestring);
        cJSON *res = NULL;
        struct sns_error err;
        bool hold;
        enum sns_err rc = tp_server_run(t, c, action, p, &res, &err, &hold);
        cJSON_Delete(p);
        cJSON_Delete(res);
        if (rc != SNS_OK) {
            cJSON_Delete(vals);
            native_error(c, &err);
            return;
        }
    }
    cJSON_Delete(vals);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", true);
    respond_json(c, 200, o, false);
}

/* One native message object into canonical Publish fields of p. */
static void message_fields(const cJSON *m, cJSON *p)
{
    static const char *const map[][2] = {{"message", "Message"}, {"subject", "Subject"},
                                         {"group", "MessageGroupId"}, {"dedup", "MessageDeduplicationId"},
                                         {"structure", "MessageStructure"}, {"id", "Id"}};
    for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, map[i][0]);
        if (cJSON_IsString(v))
            cJSON_AddStringToObject(p, map[i][1], v->valuestring);
        else if (v && !strcmp(map[i][0], "message")) {
            char *s = cJSON_PrintUnformatted(v); /* a JSON message given as JSON */
            cJSON_AddStringToObject(p, "Message", s);
            free(s);
        }
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, "attributes");
    if (cJSON_IsObject(a))
        cJSON_AddItemToObject(p, "MessageAttributes", message_attrs(a));
}

static void publish(struct tp_engine *t, struct bk_conn *c, const char *name, const char *query,
                    size_t qlen)
{
    cJSON *p = topic_params(name);
    if (bk_native_json_body(c)) {
        bool bad;
        cJSON *b = bk_native_body_object(c, &bad);
        if (bad || !b) {
            cJSON_Delete(p);
            fail(c, SNS_E_INVALID_PARAMETER, "the body must be a JSON object");
            return;
        }
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(b, "messages");
        if (cJSON_IsArray(msgs)) {
            cJSON *entries = cJSON_AddArrayToObject(p, "PublishBatchRequestEntries");
            int i = 0;
            const cJSON *m;
            cJSON_ArrayForEach(m, msgs)
            {
                cJSON *e = cJSON_CreateObject();
                message_fields(m, e);
                if (!cJSON_GetObjectItemCaseSensitive(e, "Id")) {
                    char id[16];
                    snprintf(id, sizeof id, "%d", i);
                    cJSON_AddStringToObject(e, "Id", id);
                }
                cJSON_AddItemToArray(entries, e);
                i++;
            }
            cJSON_Delete(b);
            run(t, c, "PublishBatch", p, shape_batch);
            return;
        }
        message_fields(b, p);
        cJSON_Delete(b);
    } else {
        cJSON *m = cJSON_CreateString("");
        free(m->valuestring);
        m->valuestring = xstrndup(buf_rptr(&c->h.body), buf_len(&c->h.body));
        cJSON_AddItemToObject(p, "Message", m);
        struct admin_req ar = {0};
        ar.query = query;
        ar.query_len = qlen;
        static const char *const q[][2] = {{"subject", "Subject"}, {"group", "MessageGroupId"},
                                           {"dedup", "MessageDeduplicationId"}};
        for (size_t i = 0; i < ARRAY_SIZE(q); i++) {
            char v[256];
            if (admin_query_param(&ar, q[i][0], v, sizeof v))
                cJSON_AddStringToObject(p, q[i][1], v);
        }
    }
    run(t, c, "Publish", p, shape_published);
}

static void subscribe(struct tp_engine *t, struct bk_conn *c, const char *name)
{
    bool bad;
    cJSON *b = bk_native_body_object(c, &bad);
    const char *proto = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "protocol"));
    const char *ep = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "endpoint"));
    if (bad || !proto || !ep) {
        cJSON_Delete(b);
        fail(c, SNS_E_INVALID_PARAMETER, "the body must be {\"protocol\": .., \"endpoint\": ..}");
        return;
    }
    cJSON *p = topic_params(name);
    cJSON_AddStringToObject(p, "Protocol", proto);
    if (!strcmp(proto, "sqs") && !strchr(ep, ':')) {
        char *arn = xasprintf(BK_ARN_PREFIX "%s", ep); /* a bare queue name */
        cJSON_AddStringToObject(p, "Endpoint", arn);
        free(arn);
    } else {
        cJSON_AddStringToObject(p, "Endpoint", ep);
    }
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(b, "attributes");
    if (cJSON_IsObject(attrs))
        cJSON_AddItemToObject(p, "Attributes", string_map(attrs));
    cJSON_AddTrueToObject(p, "ReturnSubscriptionArn");
    cJSON_Delete(b);
    run(t, c, "Subscribe", p, shape_arn);
}

static struct tp_sub *find_sub(struct tp_engine *t, const char *id)
{
    if (strchr(id, ':'))
        return tp_find_sub_arn(t, id);
    for (struct tp_topic *tp = t->topics; tp; tp = tp->next)
        for (struct tp_sub *s = tp->subs; s; s = s->next)
            if (!strcmp(s->id, id))
                return s;
    return NULL;
}

static void subscription(struct tp_engine *t, struct bk_conn *c, const char *id)
{
    struct tp_sub *s = find_sub(t, id);
    if (!s) {
        fail(c, SNS_E_NOT_FOUND, "Subscription does not exist");
        return;
    }
    char arn[512];
    snprintf(arn, sizeof arn, "%s", s->arn);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "SubscriptionArn", arn);
    switch (c->h.req.m) {
    case HTTP_M_GET:
    case HTTP_M_HEAD:
        run(t, c, "GetSubscriptionAttributes", p, shape_attrs);
        return;
    case HTTP_M_PATCH:
        cJSON_Delete(p);
        set_attrs(t, c, "SetSubscriptionAttributes", "SubscriptionArn", arn);
        return;
    case HTTP_M_DELETE:
        run(t, c, "Unsubscribe", p, NULL);
        return;
    default:
        cJSON_Delete(p);
        bk_respond_error(c, 405, "MethodNotAllowed", "use GET, PATCH or DELETE on a subscription");
    }
}

static void topic_route(struct tp_engine *t, struct bk_conn *c, const char *name, const char *sub,
                        const char *query, size_t qlen)
{
    enum http_method m = c->h.req.m;
    bool get = m == HTTP_M_GET || m == HTTP_M_HEAD;
    if (!sub) {
        if (m == HTTP_M_PUT)
            create_topic(t, c, name);
        else if (get)
            get_topic(t, c, name);
        else if (m == HTTP_M_PATCH) {
            char *arn = xasprintf(TP_ARN_PREFIX "%s", name);
            set_attrs(t, c, "SetTopicAttributes", "TopicArn", arn);
            free(arn);
        } else if (m == HTTP_M_DELETE)
            run(t, c, "DeleteTopic", topic_params(name), NULL);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use PUT, GET, PATCH or DELETE on a topic");
    } else if (!strcmp(sub, "publish")) {
        if (m == HTTP_M_POST)
            publish(t, c, name, query, qlen);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use POST to publish");
    } else if (!strcmp(sub, "subscriptions")) {
        if (m == HTTP_M_POST)
            subscribe(t, c, name);
        else if (get)
            run(t, c, "ListSubscriptionsByTopic", topic_params(name), shape_subs);
        else
            bk_respond_error(c, 405, "MethodNotAllowed", "use GET or POST on subscriptions");
    } else {
        bk_respond_error(c, 404, "NotFound", "no such resource");
    }
}

void tp_native(struct tp_engine *t, struct bk_conn *c, const char *path, size_t plen,
               const char *query, size_t qlen)
{
    struct sqs_error err;
    if (!bk__native_signed(c, &err)) {
        fail(c, SNS_E_AUTHORIZATION, err.message);
        return;
    }
    const char *p = path + 3, *end = path + plen; /* after "/v1" */
    char kind[32], name[SEG_MAX], sub[SEG_MAX];
    if (!bk__native_segment(&p, end, kind, sizeof kind)) {
        bk_respond_error(c, 404, "NotFound", "no such resource: see /v1/topics");
        return;
    }
    bool topics = !strcmp(kind, "topics");
    if (p == end || (p + 1 == end && *p == '/')) {
        if (topics && (c->h.req.m == HTTP_M_GET || c->h.req.m == HTTP_M_HEAD))
            list_topics(t, c);
        else if (topics)
            bk_respond_error(c, 405, "MethodNotAllowed", "use GET /v1/topics");
        else
            bk_respond_error(c, 404, "NotFound", "use /v1/subscriptions/ID");
        return;
    }
    if (!bk__native_segment(&p, end, name, sizeof name)) {
        fail(c, SNS_E_INVALID_PARAMETER, "bad name in the path");
        return;
    }
    if (!topics) {
        if (p == end)
            subscription(t, c, name);
        else
            bk_respond_error(c, 404, "NotFound", "no such resource");
        return;
    }
    if (p == end) {
        topic_route(t, c, name, NULL, query, qlen);
        return;
    }
    if (!bk__native_segment(&p, end, sub, sizeof sub) || p != end) {
        bk_respond_error(c, 404, "NotFound", "no such resource");
        return;
    }
    topic_route(t, c, name, sub, query, qlen);
}
