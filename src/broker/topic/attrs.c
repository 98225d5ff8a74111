/* Topic and subscription attributes: which names may be set, how each
 * value is checked (filter policies compiled, delivery and redrive
 * policies parsed), and what Get*Attributes returns, with SNS's names,
 * defaults and error texts. */
#include "broker/topic/topic.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_str_attr(cJSON *o, const char *name, const char *value)
{
    if (cJSON_GetObjectItemCaseSensitive(o, name))
        cJSON_ReplaceItemInObjectCaseSensitive(o, name, cJSON_CreateString(value));
    else
        cJSON_AddStringToObject(o, name, value);
}

static const char *attr_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool bool_text(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* ---- topics ---- */

/* One settable topic attribute. set checks the value and applies it;
 * pre is the error text's prefix ("Invalid parameter: ", plus
 * "Attributes Reason: " while creating); a and b are the two values a
 * set_one_of attribute accepts. */
struct topic_attr {
    const char *name;
    enum sns_err (*set)(const struct topic_attr *at, struct tp_topic *tp, const char *value,
                        bool creating, const char *pre, struct sns_error *err);
    const char *a, *b;
};

static enum sns_err set_fifo(const struct topic_attr *at, struct tp_topic *tp, const char *value,
                             bool creating, const char *pre, struct sns_error *err)
{
    bool b;
    FG_UNUSED(at);
    if (!creating)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: AttributeName");
    if (!bool_text(value, &b) || b != tp->fifo)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "%sFifoTopic: Invalid value [%.64s]: FIFO topic names end in .fifo", pre,
                        value);
    return SNS_OK;
}

static enum sns_err set_content_dedup(const struct topic_attr *at, struct tp_topic *tp,
                                      const char *value, bool creating, const char *pre,
                                      struct sns_error *err)
{
    bool b;
    FG_UNUSED(creating);
    if (!tp->fifo)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "%sContentBasedDeduplication: Content-based deduplication can only "
                        "be set for FIFO topics", pre);
    if (!bool_text(value, &b))
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "%sContentBasedDeduplication: Invalid value [%.64s]. Must be true or "
                        "false.", pre, value);
    tp->content_dedup = b;
    set_str_attr(tp->attrs, at->name, b ? "true" : "false");
    return SNS_OK;
}

static enum sns_err set_delivery(const struct topic_attr *at, struct tp_topic *tp,
                                 const char *value, bool creating, const char *pre,
                                 struct sns_error *err)
{
    struct push_policy p;
    bool no_over = false;
    char why[256];
    FG_UNUSED(creating);
    push_policy_default(&p);
    if (*value && push_policy_apply_topic(&p, value, &no_over, why, sizeof why) < 0)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "%s%s", pre, why);
    tp->http_defaults = p;
    tp->no_overrides = no_over;
    if (*value)
        set_str_attr(tp->attrs, at->name, value);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(tp->attrs, at->name);
    for (struct tp_sub *s = tp->subs; s; s = s->next)
        tp__sub_policy(s);
    return SNS_OK;
}

static enum sns_err set_one_of(const struct topic_attr *at, struct tp_topic *tp, const char *value,
                               bool creating, const char *pre, struct sns_error *err)
{
    FG_UNUSED(creating);
    if (strcmp(value, at->a) != 0 && strcmp(value, at->b) != 0)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "%s%s: Invalid value [%.64s]. Must be %s or %s.", pre, at->name, value,
                        at->a, at->b);
    set_str_attr(tp->attrs, at->name, value);
    return SNS_OK;
}

/* A JSON object, or "" to remove the attribute. */
static enum sns_err set_json(const struct topic_attr *at, struct tp_topic *tp, const char *value,
                             bool creating, const char *pre, struct sns_error *err)
{
    FG_UNUSED(creating);
    if (!*value) {
        cJSON_DeleteItemFromObjectCaseSensitive(tp->attrs, at->name);
        return SNS_OK;
    }
    cJSON *j = json_parse_strict(value, strlen(value));
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!ok)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "%s%s: the value is not a JSON object", pre,
                        at->name);
    set_str_attr(tp->attrs, at->name, value);
    return SNS_OK;
}

static enum sns_err set_text(const struct topic_attr *at, struct tp_topic *tp, const char *value,
                             bool creating, const char *pre, struct sns_error *err)
{
    FG_UNUSED(creating);
    if (strlen(value) > 256)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "%s%s: too long", pre, at->name);
    set_str_attr(tp->attrs, at->name, value);
    return SNS_OK;
}

static const struct topic_attr TOPIC_ATTRS[] = {
    {"FifoTopic", set_fifo, NULL, NULL},
    {"ContentBasedDeduplication", set_content_dedup, NULL, NULL},
    {"DeliveryPolicy", set_delivery, NULL, NULL},
    {"SignatureVersion", set_one_of, "1", "2"},
    {"TracingConfig", set_one_of, "PassThrough", "Active"},
    {"Policy", set_json, NULL, NULL},
    {"ArchivePolicy", set_json, NULL, NULL},
    {"DataProtectionPolicy", set_json, NULL, NULL},
    {"DisplayName", set_text, NULL, NULL},
    {"KmsMasterKeyId", set_text, NULL, NULL},
};

enum sns_err tp__topic_set_attr(struct tp_engine *t, struct tp_topic *tp, const char *name,
                                const char *value, bool creating, struct sns_error *err)
{
    FG_UNUSED(t);
    const char *pre = creating ? "Invalid parameter: Attributes Reason: " : "Invalid parameter: ";
    for (size_t i = 0; i < ARRAY_SIZE(TOPIC_ATTRS); i++)
        if (strcmp(name, TOPIC_ATTRS[i].name) == 0)
            return TOPIC_ATTRS[i].set(&TOPIC_ATTRS[i], tp, value ? value : "", creating, pre, err);
    return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: AttributeName");
}

static char *default_policy(const struct tp_topic *tp)
{
    return xasprintf(
        "{\"Version\":\"2008-10-17\",\"Id\":\"__default_policy_ID\",\"Statement\":[{\"Sid\":"
        "\"__default_statement_ID\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":"
        "[\"SNS:GetTopicAttributes\",\"SNS:SetTopicAttributes\",\"SNS:AddPermission\","
        "\"SNS:RemovePermission\",\"SNS:DeleteTopic\",\"SNS:Subscribe\","
        "\"SNS:ListSubscriptionsByTopic\",\"SNS:Publish\"],\"Resource\":\"%s\",\"Condition\":"
        "{\"StringEquals\":{\"AWS:SourceOwner\":\"" BK_ACCOUNT "\"}}}]}",
        tp->arn);
}

static cJSON *retry_json(const struct push_policy *p)
{
    static const char *const fns[] = {"linear", "arithmetic", "geometric", "exponential"};
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "minDelayTarget", p->min_delay_s);
    cJSON_AddNumberToObject(r, "maxDelayTarget", p->max_delay_s);
    cJSON_AddNumberToObject(r, "numRetries", p->num_retries);
    cJSON_AddNumberToObject(r, "numMaxDelayRetries", p->num_max_delay);
    cJSON_AddNumberToObject(r, "numNoDelayRetries", p->num_no_delay);
    cJSON_AddNumberToObject(r, "numMinDelayRetries", p->num_min_delay);
    cJSON_AddStringToObject(r, "backoffFunction", fns[p->backoff & 3]);
    return r;
}

/* Adds p's throttle policy (when it has one) and request policy to o
 * under the names given: a topic's "default..." ones or a subscription's. */
static void add_throttle_request(cJSON *o, const struct push_policy *p, const char *throttle,
                                 const char *request)
{
    if (p->max_per_second) {
        cJSON *th = cJSON_AddObjectToObject(o, throttle);
        cJSON_AddNumberToObject(th, "maxReceivesPerSecond", p->max_per_second);
    }
    cJSON *r = cJSON_AddObjectToObject(o, request);
    cJSON_AddStringToObject(r, "headerContentType",
                            p->content_type[0] ? p->content_type : "text/plain; charset=UTF-8");
}

/* o as compact JSON text (caller frees); o is freed. */
static char *print_free(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *effective_topic_policy(const struct tp_topic *tp)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *h = cJSON_AddObjectToObject(o, "http");
    cJSON_AddItemToObject(h, "defaultHealthyRetryPolicy", retry_json(&tp->http_defaults));
    cJSON_AddBoolToObject(h, "disableSubscriptionOverrides", tp->no_overrides);
    add_throttle_request(h, &tp->http_defaults, "defaultThrottlePolicy", "defaultRequestPolicy");
    return print_free(o);
}

cJSON *tp__topic_attrs(const struct tp_topic *tp)
{
    cJSON *o = cJSON_CreateObject();
    char n[32];
    const char *policy = attr_of(tp->attrs, "Policy");
    char *dp = policy ? NULL : default_policy(tp);
    cJSON_AddStringToObject(o, "Policy", policy ? policy : dp);
    free(dp);
    cJSON_AddStringToObject(o, "Owner", BK_ACCOUNT);
    snprintf(n, sizeof n, "%u", tp->npending);
    cJSON_AddStringToObject(o, "SubscriptionsPending", n);
    cJSON_AddStringToObject(o, "TopicArn", tp->arn);
    char *eff = effective_topic_policy(tp);
    cJSON_AddStringToObject(o, "EffectiveDeliveryPolicy", eff);
    free(eff);
    snprintf(n, sizeof n, "%u", tp->nsubs - tp->npending);
    cJSON_AddStringToObject(o, "SubscriptionsConfirmed", n);
    const char *dn = attr_of(tp->attrs, "DisplayName");
    cJSON_AddStringToObject(o, "DisplayName", dn ? dn : "");
    snprintf(n, sizeof n, "%llu", (unsigned long long)tp->subs_deleted);
    cJSON_AddStringToObject(o, "SubscriptionsDeleted", n);
    if (tp->fifo) {
        cJSON_AddStringToObject(o, "FifoTopic", "true");
        cJSON_AddStringToObject(o, "ContentBasedDeduplication", tp->content_dedup ? "true" : "false");
    }
    static const char *const extra[] = {"DeliveryPolicy", "KmsMasterKeyId", "SignatureVersion",
                                        "TracingConfig", "ArchivePolicy", "DataProtectionPolicy"};
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
        const char *v = attr_of(tp->attrs, extra[i]);
        if (v)
            cJSON_AddStringToObject(o, extra[i], v);
    }
    return o;
}

/* ---- subscriptions ---- */

static enum sns_err set_filter(struct tp_sub *s, const char *json, uint8_t scope, const char *pre,
                               struct sns_error *err)
{
    if (!json || !*json) {
        filter_free(s->filter);
        s->filter = NULL;
        free(s->filter_json);
        s->filter_json = NULL;
        s->scope = scope;
        return SNS_OK;
    }
    char why[300];
    struct filter_policy *f = filter_compile(json, strlen(json), (enum filter_scope)scope, why,
                                             sizeof why);
    if (!f)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "%s%s", pre, why);
    filter_free(s->filter);
    s->filter = f;
    if (s->filter_json != json) {
        free(s->filter_json);
        s->filter_json = xstrdup(json);
    }
    s->scope = scope;
    return SNS_OK;
}

static enum sns_err set_redrive(struct tp_sub *s, const char *value, const char *pre,
                                struct sns_error *err)
{
    if (!*value) {
        free(s->redrive_json);
        free(s->dlq_arn);
        s->redrive_json = s->dlq_arn = NULL;
        return SNS_OK;
    }
    cJSON *j = json_parse_strict(value, strlen(value));
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(j, "deadLetterTargetArn");
    static const char sqs_prefix[] = BK_ARN_PREFIX;
    bool ok = cJSON_IsObject(j) && cJSON_IsString(arn) &&
              strncmp(arn->valuestring, sqs_prefix, sizeof sqs_prefix - 1) == 0 &&
              arn->valuestring[sizeof sqs_prefix - 1] != '\0';
    if (!ok) {
        cJSON_Delete(j);
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "%sRedrivePolicy: deadLetterTargetArn is an invalid arn", pre);
    }
    free(s->dlq_arn);
    s->dlq_arn = xstrdup(arn->valuestring);
    free(s->redrive_json);
    s->redrive_json = xstrdup(value);
    cJSON_Delete(j);
    return SNS_OK;
}

enum sns_err tp__sub_set_attr(struct tp_engine *t, struct tp_sub *s, const char *name,
                              const char *value, bool subscribing, struct sns_error *err)
{
    const char *pre = subscribing ? "Invalid parameter: Attributes Reason: " : "Invalid parameter: ";
    if (!value)
        value = "";
    if (strcmp(name, "RawMessageDelivery") == 0) {
        bool b;
        if (!bool_text(value, &b))
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "%sRawMessageDelivery: Invalid value [%.64s]. Must be true or false.",
                            pre, value);
        s->raw = b;
        return SNS_OK;
    }
    if (strcmp(name, "FilterPolicy") == 0)
        return set_filter(s, value, s->scope, pre, err);
    if (strcmp(name, "FilterPolicyScope") == 0) {
        enum filter_scope sc;
        if (!filter_scope_parse(value, &sc))
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "%sFilterPolicyScope: Invalid value [%.64s]. Please use either "
                            "MessageBody or MessageAttributes", pre, value);
        return set_filter(s, s->filter_json, (uint8_t)sc, pre, err);
    }
    if (strcmp(name, "DeliveryPolicy") == 0) {
        if (s->proto != TP_HTTP)
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "%sDeliveryPolicy: Delivery protocol [sqs] does not support delivery "
                            "policies", pre);
        if (*value) {
            struct push_policy p = s->t->http_defaults;
            char why[256];
            if (push_policy_apply_sub(&p, value, why, sizeof why) < 0)
                return sns_fail(err, SNS_E_INVALID_PARAMETER, "%s%s", pre, why);
        }
        free(s->delivery_json);
        s->delivery_json = *value ? xstrdup(value) : NULL;
        tp__sub_policy(s);
        return SNS_OK;
    }
    if (strcmp(name, "RedrivePolicy") == 0)
        return set_redrive(s, value, pre, err);
    FG_UNUSED(t);
    return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: AttributeName");
}

static char *effective_sub_policy(const struct tp_sub *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "healthyRetryPolicy", retry_json(&s->policy));
    add_throttle_request(o, &s->policy, "throttlePolicy", "requestPolicy");
    return print_free(o);
}

cJSON *tp__sub_attrs(const struct tp_sub *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "SubscriptionArn", s->arn);
    cJSON_AddStringToObject(o, "TopicArn", s->t->arn);
    cJSON_AddStringToObject(o, "Owner", BK_ACCOUNT);
    cJSON_AddStringToObject(o, "Protocol", s->proto == TP_SQS ? "sqs" : "http");
    cJSON_AddStringToObject(o, "Endpoint", s->endpoint);
    cJSON_AddStringToObject(o, "ConfirmationWasAuthenticated", s->proto == TP_SQS ? "true" : "false");
    cJSON_AddStringToObject(o, "PendingConfirmation", s->confirmed ? "false" : "true");
    cJSON_AddStringToObject(o, "RawMessageDelivery", s->raw ? "true" : "false");
    if (s->filter_json) {
        cJSON_AddStringToObject(o, "FilterPolicy", s->filter_json);
        cJSON_AddStringToObject(o, "FilterPolicyScope", filter_scope_name((enum filter_scope)s->scope));
    }
    if (s->delivery_json)
        cJSON_AddStringToObject(o, "DeliveryPolicy", s->delivery_json);
    if (s->proto == TP_HTTP) {
        char *eff = effective_sub_policy(s);
        cJSON_AddStringToObject(o, "EffectiveDeliveryPolicy", eff);
        free(eff);
    }
    if (s->redrive_json)
        cJSON_AddStringToObject(o, "RedrivePolicy", s->redrive_json);
    return o;
}
