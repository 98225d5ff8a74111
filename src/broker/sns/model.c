/* The SNS API model for the actions the broker serves: every request and
 * result shape, as in the 2010-03-31 service model (botocore's
 * sns/2010-03-31/service-2.json), with members in the model's order (the
 * XML renderer writes them in this order). */
#include "broker/sns/sns_int.h"

#include <string.h>

#define M(n, s) { .name = n, .shape = &(s), .required = false }
#define R(n, s) { .name = n, .shape = &(s), .required = true }
#define STRUCT(var, arr) \
    static const struct sns_shape var = { .kind = SNS_K_STRUCT, .members = arr, .nmembers = ARRAY_SIZE(arr) }

static const struct sns_shape str = { .kind = SNS_K_STR };
static const struct sns_shape boolean = { .kind = SNS_K_BOOL };
static const struct sns_shape blob = { .kind = SNS_K_BLOB };
static const struct sns_shape empty = { .kind = SNS_K_STRUCT };

/* Attributes maps: Name.entry.N.key / .value. */
static const struct sns_shape attr_map = { .kind = SNS_K_MAP, .elem = &str, .key_name = "key",
                                           .val_name = "value" };

static const struct sns_member tag_m[] = { R("Key", str), R("Value", str) };
STRUCT(tag, tag_m);
static const struct sns_shape tag_list = { .kind = SNS_K_LIST, .elem = &tag };
static const struct sns_shape str_list = { .kind = SNS_K_LIST, .elem = &str };

static const struct sns_member mattr_m[] = { R("DataType", str), M("StringValue", str),
                                             M("BinaryValue", blob) };
STRUCT(mattr, mattr_m);
static const struct sns_shape mattr_map = { .kind = SNS_K_MAP, .elem = &mattr, .key_name = "Name",
                                            .val_name = "Value" };

/* ---- requests ---- */

static const struct sns_member create_topic_in_m[] = {
    R("Name", str), M("Attributes", attr_map), M("Tags", tag_list),
    M("DataProtectionPolicy", str),
};
STRUCT(create_topic_in, create_topic_in_m);

static const struct sns_member topic_arn_in_m[] = { R("TopicArn", str) };
STRUCT(topic_arn_in, topic_arn_in_m);

static const struct sns_member next_token_in_m[] = { M("NextToken", str) };
STRUCT(next_token_in, next_token_in_m);

static const struct sns_member set_topic_attrs_in_m[] = {
    R("TopicArn", str), R("AttributeName", str), M("AttributeValue", str),
};
STRUCT(set_topic_attrs_in, set_topic_attrs_in_m);

static const struct sns_member subscribe_in_m[] = {
    R("TopicArn", str), R("Protocol", str), M("Endpoint", str), M("Attributes", attr_map),
    M("ReturnSubscriptionArn", boolean),
};
STRUCT(subscribe_in, subscribe_in_m);

static const struct sns_member confirm_in_m[] = {
    R("TopicArn", str), R("Token", str), M("AuthenticateOnUnsubscribe", str),
};
STRUCT(confirm_in, confirm_in_m);

static const struct sns_member sub_arn_in_m[] = { R("SubscriptionArn", str) };
STRUCT(sub_arn_in, sub_arn_in_m);

static const struct sns_member list_by_topic_in_m[] = { R("TopicArn", str), M("NextToken", str) };
STRUCT(list_by_topic_in, list_by_topic_in_m);

static const struct sns_member set_sub_attrs_in_m[] = {
    R("SubscriptionArn", str), R("AttributeName", str), M("AttributeValue", str),
};
STRUCT(set_sub_attrs_in, set_sub_attrs_in_m);

static const struct sns_member publish_in_m[] = {
    M("TopicArn", str), M("TargetArn", str), M("PhoneNumber", str), R("Message", str),
    M("Subject", str), M("MessageStructure", str), M("MessageAttributes", mattr_map),
    M("MessageDeduplicationId", str), M("MessageGroupId", str),
};
STRUCT(publish_in, publish_in_m);

static const struct sns_member batch_entry_m[] = {
    R("Id", str), R("Message", str), M("Subject", str), M("MessageStructure", str),
    M("MessageAttributes", mattr_map), M("MessageDeduplicationId", str),
    M("MessageGroupId", str),
};
STRUCT(batch_entry, batch_entry_m);
static const struct sns_shape batch_entry_list = { .kind = SNS_K_LIST, .elem = &batch_entry };

static const struct sns_member publish_batch_in_m[] = {
    R("TopicArn", str), R("PublishBatchRequestEntries", batch_entry_list),
};
STRUCT(publish_batch_in, publish_batch_in_m);

static const struct sns_member tag_in_m[] = { R("ResourceArn", str), R("Tags", tag_list) };
STRUCT(tag_in, tag_in_m);
static const struct sns_member untag_in_m[] = { R("ResourceArn", str), R("TagKeys", str_list) };
STRUCT(untag_in, untag_in_m);
static const struct sns_member list_tags_in_m[] = { R("ResourceArn", str) };
STRUCT(list_tags_in, list_tags_in_m);

/* ---- results ---- */

static const struct sns_member topic_arn_out_m[] = { M("TopicArn", str) };
STRUCT(topic_arn_out, topic_arn_out_m);

static const struct sns_member topic_m[] = { M("TopicArn", str) };
STRUCT(topic, topic_m);
static const struct sns_shape topic_list = { .kind = SNS_K_LIST, .elem = &topic };
static const struct sns_member list_topics_out_m[] = { M("Topics", topic_list), M("NextToken", str) };
STRUCT(list_topics_out, list_topics_out_m);

static const struct sns_member attrs_out_m[] = { M("Attributes", attr_map) };
STRUCT(attrs_out, attrs_out_m);

static const struct sns_member sub_arn_out_m[] = { M("SubscriptionArn", str) };
STRUCT(sub_arn_out, sub_arn_out_m);

static const struct sns_member subscription_m[] = {
    M("SubscriptionArn", str), M("Owner", str), M("Protocol", str), M("Endpoint", str),
    M("TopicArn", str),
};
STRUCT(subscription, subscription_m);
static const struct sns_shape subscription_list = { .kind = SNS_K_LIST, .elem = &subscription };
static const struct sns_member list_subs_out_m[] = {
    M("Subscriptions", subscription_list), M("NextToken", str),
};
STRUCT(list_subs_out, list_subs_out_m);

static const struct sns_member publish_out_m[] = { M("MessageId", str), M("SequenceNumber", str) };
STRUCT(publish_out, publish_out_m);

static const struct sns_member batch_ok_m[] = {
    M("Id", str), M("MessageId", str), M("SequenceNumber", str),
};
STRUCT(batch_ok, batch_ok_m);
static const struct sns_shape batch_ok_list = { .kind = SNS_K_LIST, .elem = &batch_ok };
static const struct sns_member batch_err_m[] = {
    R("Id", str), R("Code", str), M("Message", str), R("SenderFault", boolean),
};
STRUCT(batch_err, batch_err_m);
static const struct sns_shape batch_err_list = { .kind = SNS_K_LIST, .elem = &batch_err };
static const struct sns_member publish_batch_out_m[] = {
    M("Successful", batch_ok_list), M("Failed", batch_err_list),
};
STRUCT(publish_batch_out, publish_batch_out_m);

static const struct sns_member list_tags_out_m[] = { M("Tags", tag_list) };
STRUCT(list_tags_out, list_tags_out_m);

/* ---- actions ---- */

static const struct sns_action actions[] = {
    { "ConfirmSubscription", &confirm_in, &sub_arn_out },
    { "CreateTopic", &create_topic_in, &topic_arn_out },
    { "DeleteTopic", &topic_arn_in, NULL },
    { "GetSubscriptionAttributes", &sub_arn_in, &attrs_out },
    { "GetTopicAttributes", &topic_arn_in, &attrs_out },
    { "ListSubscriptions", &next_token_in, &list_subs_out },
    { "ListSubscriptionsByTopic", &list_by_topic_in, &list_subs_out },
    { "ListTagsForResource", &list_tags_in, &list_tags_out },
    { "ListTopics", &next_token_in, &list_topics_out },
    { "Publish", &publish_in, &publish_out },
    { "PublishBatch", &publish_batch_in, &publish_batch_out },
    { "SetSubscriptionAttributes", &set_sub_attrs_in, NULL },
    { "SetTopicAttributes", &set_topic_attrs_in, NULL },
    { "Subscribe", &subscribe_in, &sub_arn_out },
    { "TagResource", &tag_in, &empty },
    { "Unsubscribe", &sub_arn_in, NULL },
    { "UntagResource", &untag_in, &empty },
};

const struct sns_action *sns__action(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
        if (strlen(actions[i].name) == len && memcmp(actions[i].name, name, len) == 0)
            return &actions[i];
    return NULL;
}

bool sns_action_known(const char *name) { return sns__action(name, strlen(name)) != NULL; }

const struct sns_member *sns__member(const struct sns_shape *s, const char *name, size_t len,
                                     unsigned *idx)
{
    for (unsigned i = 0; i < s->nmembers; i++) {
        const struct sns_member *m = &s->members[i];
        if (strlen(m->name) == len && memcmp(m->name, name, len) == 0) {
            if (idx)
                *idx = i;
            return m;
        }
    }
    return NULL;
}
