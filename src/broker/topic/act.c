/* The SNS actions over the canonical form (sns_proto.h): topics,
 * subscriptions, confirmation, tags, and the dispatch table. Publish and
 * PublishBatch live in topic/pub.c. Every change to topics or
 * subscriptions is written to the snapshot before it is acknowledged. */
#include "broker/topic/topic.h"

#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 50

static const char *pstr(const cJSON *p, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum sns_err saved(struct tp_engine *t, struct sns_error *err)
{
    int rc = tp__save(t);
    if (rc == 0)
        return SNS_OK;
    log_at(LOG_ERROR, "sns: cannot write the topic snapshot: %s", strerror(-rc));
    return sns_fail(err, SNS_E_INTERNAL, "The broker could not make the change durable.");
}

static struct tp_topic *param_topic(struct tp_engine *t, const cJSON *p, const char *member,
                                    struct sns_error *err)
{
    const char *arn = pstr(p, member);
    static const char prefix[] = TP_ARN_PREFIX;
    if (!arn || strncmp(arn, prefix, sizeof prefix - 1) != 0 || strchr(arn + sizeof prefix - 1, ':')) {
        sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: %s", member);
        return NULL;
    }
    struct tp_topic *tp = tp_find_topic_arn(t, arn);
    if (!tp)
        sns_fail(err, SNS_E_NOT_FOUND, "Topic does not exist");
    return tp;
}

static struct tp_sub *param_sub(struct tp_engine *t, const cJSON *p, struct sns_error *err)
{
    const char *arn = pstr(p, "SubscriptionArn");
    static const char prefix[] = TP_ARN_PREFIX;
    if (!arn || strncmp(arn, prefix, sizeof prefix - 1) != 0 || !strchr(arn + sizeof prefix - 1, ':')) {
        sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: SubscriptionArn");
        return NULL;
    }
    struct tp_sub *s = tp_find_sub_arn(t, arn);
    if (!s)
        sns_fail(err, SNS_E_NOT_FOUND, "Subscription does not exist");
    return s;
}

/* ---- tags ---- */

static enum sns_err check_tags(const cJSON *tags, const cJSON *existing, struct sns_error *err)
{
    size_t n = existing ? (size_t)cJSON_GetArraySize(existing) : 0;
    for (const cJSON *tg = tags ? tags->child : NULL; tg; tg = tg->next) {
        const char *k = pstr(tg, "Key"), *v = pstr(tg, "Value");
        if (!k || !v || !*k || strlen(k) > 128 || strlen(v) > 256)
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: Tags Reason: keys are 1 to 128 characters, values "
                            "at most 256");
        if (!existing || !cJSON_GetObjectItemCaseSensitive(existing, k))
            n++;
    }
    if (n > MAX_TAGS)
        return sns_fail(err, SNS_E_TAG_LIMIT,
                        "Could not complete request: tag quota of per resource exceeded");
    return SNS_OK;
}

static void apply_tags(cJSON *dst, const cJSON *tags)
{
    for (const cJSON *tg = tags ? tags->child : NULL; tg; tg = tg->next) {
        const char *k = pstr(tg, "Key"), *v = pstr(tg, "Value");
        if (cJSON_GetObjectItemCaseSensitive(dst, k))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, k, cJSON_CreateString(v));
        else
            cJSON_AddStringToObject(dst, k, v);
    }
}

/* ---- topics ---- */

static bool same_attr(const struct tp_topic *tp, const char *name, const char *value)
{
    if (strcmp(name, "FifoTopic") == 0)
        return (strcasecmp(value, "true") == 0) == tp->fifo;
    if (strcmp(name, "ContentBasedDeduplication") == 0)
        return (strcasecmp(value, "true") == 0) == tp->content_dedup;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tp->attrs, name);
    return cJSON_IsString(v) ? strcmp(v->valuestring, value) == 0 : *value == '\0';
}

static enum sns_err act_create(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                               struct sns_error *err)
{
    const char *name = pstr(p, "Name");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(p, "Attributes");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(p, "Tags");
    const char *fifo_s = pstr(attrs, "FifoTopic");
    bool fifo = fifo_s && strcasecmp(fifo_s, "true") == 0;
    if (!name || !tp__topic_name_valid(name, fifo))
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Topic Name");
    struct tp_topic *tp = tp_find_topic(t, name);
    if (tp) {
        for (const cJSON *a = attrs ? attrs->child : NULL; a; a = a->next)
            if (cJSON_IsString(a) && !same_attr(tp, a->string, a->valuestring))
                return sns_fail(err, SNS_E_INVALID_PARAMETER,
                                "Invalid parameter: Attributes Reason: Topic already exists with "
                                "different attributes");
        *res = cJSON_CreateObject();
        cJSON_AddStringToObject(*res, "TopicArn", tp->arn);
        return SNS_OK;
    }
    if (t->ntopics >= t->max_topics)
        return sns_fail(err, SNS_E_TOPIC_LIMIT, "Topic limit exceeded");
    enum sns_err rc = check_tags(tags, NULL, err);
    if (rc != SNS_OK)
        return rc;
    tp = tp__topic_new(t, name, fifo, ctx->now);
    for (const cJSON *a = attrs ? attrs->child : NULL; a && rc == SNS_OK; a = a->next)
        rc = tp__topic_set_attr(t, tp, a->string, cJSON_IsString(a) ? a->valuestring : "", true, err);
    const char *dpp = pstr(p, "DataProtectionPolicy");
    if (rc == SNS_OK && dpp)
        rc = tp__topic_set_attr(t, tp, "DataProtectionPolicy", dpp, true, err);
    if (rc != SNS_OK) {
        /* Not kept: unlink the new tail. */
        struct tp_topic **pp = &t->topics, *prev = NULL;
        while (*pp != tp) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = NULL;
        t->tail = prev;
        t->ntopics--;
        tp__topic_free(t, tp);
        return rc;
    }
    apply_tags(tp->tags, tags);
    *res = cJSON_CreateObject();
    cJSON_AddStringToObject(*res, "TopicArn", tp->arn);
    return saved(t, err);
}

static enum sns_err act_delete(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                               struct sns_error *err)
{
    FG_UNUSED(ctx);
    FG_UNUSED(res);
    struct tp_topic *tp = param_topic(t, p, "TopicArn", err);
    if (!tp)
        return err->code == SNS_E_NOT_FOUND ? SNS_OK : err->code; /* idempotent, as SNS */
    while (tp->subs)
        tp__sub_remove(t, tp->subs);
    struct tp_topic **pp = &t->topics, *prev = NULL;
    while (*pp != tp) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = tp->next;
    if (t->tail == tp)
        t->tail = prev;
    t->ntopics--;
    tp__topic_free(t, tp);
    return saved(t, err);
}

/* NextToken: the decimal position of the next item. */
static enum sns_err page_start(const cJSON *p, size_t *start, struct sns_error *err)
{
    const char *tok = pstr(p, "NextToken");
    *start = 0;
    if (!tok)
        return SNS_OK;
    char *end;
    unsigned long v = strtoul(tok, &end, 10);
    if (!*tok || *end || v > 100000000ul)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: NextToken");
    *start = v;
    return SNS_OK;
}

static void page_token(cJSON *res, size_t next, bool more)
{
    if (!more)
        return;
    char b[32];
    snprintf(b, sizeof b, "%zu", next);
    cJSON_AddStringToObject(res, "NextToken", b);
}

static enum sns_err act_list(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                             struct sns_error *err)
{
    FG_UNUSED(ctx);
    size_t start, i = 0, n = 0;
    enum sns_err rc = page_start(p, &start, err);
    if (rc != SNS_OK)
        return rc;
    *res = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(*res, "Topics");
    struct tp_topic *tp = t->topics;
    for (; tp && i < start; tp = tp->next)
        i++;
    for (; tp && n < TP_PAGE; tp = tp->next, n++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "TopicArn", tp->arn);
        cJSON_AddItemToArray(list, o);
    }
    page_token(*res, start + n, tp != NULL);
    return SNS_OK;
}

static enum sns_err act_get_attrs(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_topic *tp = param_topic(t, p, "TopicArn", err);
    if (!tp)
        return err->code;
    *res = cJSON_CreateObject();
    cJSON_AddItemToObject(*res, "Attributes", tp__topic_attrs(tp));
    return SNS_OK;
}

static enum sns_err act_set_attrs(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    FG_UNUSED(res);
    struct tp_topic *tp = param_topic(t, p, "TopicArn", err);
    if (!tp)
        return err->code;
    enum sns_err rc = tp__topic_set_attr(t, tp, pstr(p, "AttributeName"), pstr(p, "AttributeValue"),
                                         false, err);
    return rc == SNS_OK ? saved(t, err) : rc;
}

/* ---- subscriptions ---- */

static enum sns_err check_endpoint(struct tp_engine *t, struct tp_topic *tp, uint8_t proto,
                                   const char *ep, struct sns_error *err)
{
    FG_UNUSED(t);
    if (!ep || !*ep)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Endpoint");
    if (proto == TP_HTTP) {
        struct push_endpoint pe;
        char why[200];
        if (push_endpoint_parse(&pe, ep, why, sizeof why) < 0)
            return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Endpoint Reason: %s", why);
        push_endpoint_free(&pe);
        if (tp->fifo)
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: Invalid protocol type: http for FIFO topics");
        return SNS_OK;
    }
    static const char prefix[] = BK_ARN_PREFIX;
    size_t n = strlen(ep);
    if (strncmp(ep, prefix, sizeof prefix - 1) != 0 || n == sizeof prefix - 1 || n > 200)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: SQS endpoint ARN");
    bool qfifo = n > 5 && strcmp(ep + n - 5, ".fifo") == 0;
    if (qfifo && !tp->fifo)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO SQS Queues can "
                        "not be subscribed to standard SNS topics");
    if (!qfifo && tp->fifo)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: Invalid parameter: Endpoint Reason: Please use FIFO SQS "
                        "queue");
    return SNS_OK;
}

static bool sub_attrs_match(const struct tp_sub *s, const cJSON *attrs)
{
    cJSON *cur = tp__sub_attrs(s);
    bool same = true;
    for (const cJSON *a = attrs ? attrs->child : NULL; a && same; a = a->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cur, a->string);
        const char *want = cJSON_IsString(a) ? a->valuestring : "";
        if (strcmp(a->string, "RawMessageDelivery") == 0)
            same = (strcasecmp(want, "true") == 0) == s->raw;
        else
            same = cJSON_IsString(v) ? strcmp(v->valuestring, want) == 0 : *want == '\0';
    }
    cJSON_Delete(cur);
    return same;
}

static void sub_result(cJSON **res, const struct tp_sub *s, bool return_arn)
{
    *res = cJSON_CreateObject();
    cJSON_AddStringToObject(*res, "SubscriptionArn",
                            s->confirmed || return_arn ? s->arn : "pending confirmation");
}

static enum sns_err act_subscribe(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sns_error *err)
{
    struct tp_topic *tp = param_topic(t, p, "TopicArn", err);
    if (!tp)
        return err->code;
    const char *proto_s = pstr(p, "Protocol"), *ep = pstr(p, "Endpoint");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(p, "Attributes");
    const cJSON *ret = cJSON_GetObjectItemCaseSensitive(p, "ReturnSubscriptionArn");
    uint8_t proto;
    if (proto_s && strcmp(proto_s, "sqs") == 0)
        proto = TP_SQS;
    else if (proto_s && strcmp(proto_s, "http") == 0)
        proto = TP_HTTP;
    else if (proto_s && strcmp(proto_s, "https") == 0)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: Protocol Reason: https endpoints are not supported by "
                        "this broker (use http)");
    else
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: Amazon SNS does not support this protocol string: %.32s",
                        proto_s ? proto_s : "");
    enum sns_err rc = check_endpoint(t, tp, proto, ep, err);
    if (rc != SNS_OK)
        return rc;
    for (struct tp_sub *s = tp->subs; s; s = s->next)
        if (s->proto == proto && strcmp(s->endpoint, ep) == 0) {
            if (!sub_attrs_match(s, attrs))
                return sns_fail(err, SNS_E_INVALID_PARAMETER,
                                "Invalid parameter: Attributes Reason: Subscription already exists "
                                "with different attributes");
            sub_result(res, s, cJSON_IsTrue(ret));
            return SNS_OK;
        }
    if (tp->nsubs >= TP_MAX_SUBS)
        return sns_fail(err, SNS_E_SUBSCRIPTION_LIMIT, "Subscription limit exceeded");
    struct tp_sub *s = tp__sub_new(tp, proto, ep, ctx->now);
    /* FilterPolicyScope first, so that the policy compiles for it. */
    const char *scope = pstr(attrs, "FilterPolicyScope");
    if (scope)
        rc = tp__sub_set_attr(t, s, "FilterPolicyScope", scope, true, err);
    for (const cJSON *a = attrs ? attrs->child : NULL; a && rc == SNS_OK; a = a->next)
        if (strcmp(a->string, "FilterPolicyScope") != 0)
            rc = tp__sub_set_attr(t, s, a->string, cJSON_IsString(a) ? a->valuestring : "", true, err);
    if (rc == SNS_OK && proto == TP_HTTP) {
        bk_random_bytes(s->token, 64);
        for (int i = 63; i >= 0; i--) {
            static const char hex[] = "0123456789abcdef";
            uint8_t b = (uint8_t)s->token[i];
            s->token[2 * i] = hex[b >> 4];
            s->token[2 * i + 1] = hex[b & 15];
        }
        s->token[128] = '\0';
        tp->npending++;
        rc = tp__push_queue_ensure(t, s, ctx->now, err);
        if (rc == SNS_OK)
            rc = tp__send_confirmation(t, ctx, s, err);
        if (rc == SNS_OK)
            tp__push_sub_changed(t, s);
    } else if (rc == SNS_OK) {
        s->confirmed = true;
    }
    if (rc != SNS_OK) {
        if (!s->token[0])
            s->confirmed = true; /* never counted as pending: removing it must not uncount */
        tp__sub_remove(t, s);
        tp->subs_deleted--;
        return rc;
    }
    sub_result(res, s, cJSON_IsTrue(ret));
    return saved(t, err);
}

static enum sns_err act_confirm(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_topic *tp = param_topic(t, p, "TopicArn", err);
    if (!tp)
        return err->code;
    const char *token = pstr(p, "Token");
    for (struct tp_sub *s = tp->subs; token && s; s = s->next) {
        if (s->proto != TP_HTTP || strcmp(s->token, token) != 0)
            continue;
        *res = cJSON_CreateObject();
        cJSON_AddStringToObject(*res, "SubscriptionArn", s->arn);
        if (s->confirmed)
            return SNS_OK;
        s->confirmed = true;
        tp->npending--;
        return saved(t, err);
    }
    return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Token");
}

static enum sns_err act_unsubscribe(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                    cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    FG_UNUSED(res);
    struct tp_sub *s = param_sub(t, p, err);
    if (!s)
        return err->code == SNS_E_NOT_FOUND ? SNS_OK : err->code;
    tp__sub_remove(t, s);
    return saved(t, err);
}

static cJSON *sub_entry(const struct tp_sub *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "SubscriptionArn", s->confirmed ? s->arn : "PendingConfirmation");
    cJSON_AddStringToObject(o, "Owner", BK_ACCOUNT);
    cJSON_AddStringToObject(o, "Protocol", s->proto == TP_SQS ? "sqs" : "http");
    cJSON_AddStringToObject(o, "Endpoint", s->endpoint);
    cJSON_AddStringToObject(o, "TopicArn", s->t->arn);
    return o;
}

static enum sns_err list_subs(struct tp_engine *t, struct tp_topic *only, const cJSON *p,
                              cJSON **res, struct sns_error *err)
{
    size_t start, i = 0, n = 0;
    enum sns_err rc = page_start(p, &start, err);
    if (rc != SNS_OK)
        return rc;
    *res = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(*res, "Subscriptions");
    bool more = false;
    for (struct tp_topic *tp = only ? only : t->topics; tp && !more; tp = only ? NULL : tp->next)
        for (struct tp_sub *s = tp->subs; s; s = s->next, i++) {
            if (i < start)
                continue;
            if (n == TP_PAGE) {
                more = true;
                break;
            }
            cJSON_AddItemToArray(list, sub_entry(s));
            n++;
        }
    page_token(*res, start + n, more);
    return SNS_OK;
}

static enum sns_err act_list_subs(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    return list_subs(t, NULL, p, res, err);
}

static enum sns_err act_list_subs_topic(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                        cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_topic *tp = param_topic(t, p, "TopicArn", err);
    if (!tp)
        return err->code;
    return list_subs(t, tp, p, res, err);
}

static enum sns_err act_get_sub_attrs(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                      cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_sub *s = param_sub(t, p, err);
    if (!s)
        return err->code;
    *res = cJSON_CreateObject();
    cJSON_AddItemToObject(*res, "Attributes", tp__sub_attrs(s));
    return SNS_OK;
}

static enum sns_err act_set_sub_attrs(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                      cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    FG_UNUSED(res);
    struct tp_sub *s = param_sub(t, p, err);
    if (!s)
        return err->code;
    enum sns_err rc = tp__sub_set_attr(t, s, pstr(p, "AttributeName"), pstr(p, "AttributeValue"),
                                       false, err);
    return rc == SNS_OK ? saved(t, err) : rc;
}

/* ---- tags ---- */

static struct tp_topic *tag_topic(struct tp_engine *t, const cJSON *p, struct sns_error *err)
{
    struct tp_topic *tp = tp_find_topic_arn(t, pstr(p, "ResourceArn"));
    if (!tp)
        sns_fail(err, SNS_E_RESOURCE_NOT_FOUND, "Resource does not exist");
    return tp;
}

static enum sns_err act_tag(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                            struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_topic *tp = tag_topic(t, p, err);
    if (!tp)
        return err->code;
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(p, "Tags");
    enum sns_err rc = check_tags(tags, tp->tags, err);
    if (rc != SNS_OK)
        return rc;
    apply_tags(tp->tags, tags);
    *res = cJSON_CreateObject();
    return saved(t, err);
}

static enum sns_err act_untag(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                              struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_topic *tp = tag_topic(t, p, err);
    if (!tp)
        return err->code;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(p, "TagKeys");
    for (const cJSON *k = keys ? keys->child : NULL; k; k = k->next)
        if (cJSON_IsString(k))
            cJSON_DeleteItemFromObjectCaseSensitive(tp->tags, k->valuestring);
    *res = cJSON_CreateObject();
    return saved(t, err);
}

static enum sns_err act_list_tags(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                  cJSON **res, struct sns_error *err)
{
    FG_UNUSED(ctx);
    struct tp_topic *tp = tag_topic(t, p, err);
    if (!tp)
        return err->code;
    *res = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(*res, "Tags");
    for (const cJSON *tg = tp->tags->child; tg; tg = tg->next) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "Key", tg->string);
        cJSON_AddStringToObject(o, "Value", tg->valuestring);
        cJSON_AddItemToArray(list, o);
    }
    return SNS_OK;
}

/* ---- dispatch ---- */

typedef enum sns_err (*tp_action_fn)(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                                     cJSON **res, struct sns_error *err);

static const struct {
    const char *name;
    tp_action_fn fn;
} actions[] = {
    {"Publish", tp__publish},
    {"PublishBatch", tp__publish_batch},
    {"CreateTopic", act_create},
    {"DeleteTopic", act_delete},
    {"ListTopics", act_list},
    {"GetTopicAttributes", act_get_attrs},
    {"SetTopicAttributes", act_set_attrs},
    {"Subscribe", act_subscribe},
    {"ConfirmSubscription", act_confirm},
    {"Unsubscribe", act_unsubscribe},
    {"ListSubscriptions", act_list_subs},
    {"ListSubscriptionsByTopic", act_list_subs_topic},
    {"GetSubscriptionAttributes", act_get_sub_attrs},
    {"SetSubscriptionAttributes", act_set_sub_attrs},
    {"TagResource", act_tag},
    {"UntagResource", act_untag},
    {"ListTagsForResource", act_list_tags},
};

enum sns_err tp_action(struct tp_engine *t, struct tp_ctx *ctx, const char *action,
                       const cJSON *params, cJSON **result, struct sns_error *err)
{
    *result = NULL;
    err->code = SNS_OK;
    err->message[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        if (strcmp(actions[i].name, action) != 0)
            continue;
        if (!cJSON_IsObject(params))
            return sns_fail(err, SNS_E_MALFORMED_QUERY, "The request parameters must be an object.");
        enum sns_err rc = actions[i].fn(t, ctx, params, result, err);
        if (rc != SNS_OK) {
            cJSON_Delete(*result);
            *result = NULL;
        }
        return rc;
    }
    return sns_fail(err, SNS_E_INVALID_ACTION,
                    "Could not find operation %.64s for version " SNS_VERSION, action);
}
