/* Subscription filter policies, as Amazon SNS defines them: a JSON object
 * whose keys name message attributes (FilterPolicyScope MessageAttributes,
 * the default) or properties of a JSON message body (scope MessageBody,
 * where keys may nest), and whose leaves are arrays of conditions:
 *
 *   "a": ["x", 12, true, null]                exact string, number, boolean, null
 *   "a": [{"prefix": "x"}], [{"suffix": "x"}], [{"equals-ignore-case": "x"}]
 *   "a": [{"anything-but": ["x", 3]}], [{"anything-but": "x"}],
 *        [{"anything-but": {"prefix": "x"}}] (also suffix, equals-ignore-case)
 *   "a": [{"numeric": ["=", 5]}], [{"numeric": [">", 0, "<=", 150]}]
 *   "a": [{"exists": true}], [{"exists": false}]
 *   "a": [{"cidr": "10.0.0.0/24"}]
 *   "$or": [{...}, {...}]                     OR of whole sub-policies
 *
 * Keys are ANDed, the conditions of one key are ORed. A key's value set is
 * the attribute's value (String, Number), every element of a String.Array
 * (typed as in its JSON), or, in a body, every scalar found at the key's
 * path (arrays at any level are looked through: a condition on a key
 * matches when any value there satisfies it, independently of the other
 * keys). Binary attributes are ignored, as SNS does. Conditions other than
 * exists need a value: an absent key fails them. Strings compare
 * byte-exact (equals-ignore-case folds ASCII letters); numbers compare
 * after rounding to five decimal places, and only numbers match numeric
 * conditions (a String attribute "5" is a string).
 *
 * Limits (SNS's): at most 5 keys per object level counted at the top and
 * in each $or branch, at most 150 combinations (the product, over the
 * leaf arrays, of each array's length times its nesting depth; $or
 * branches add up), nesting at most FILTER_MAX_DEPTH levels, 256 KiB of
 * JSON, no nesting in the MessageAttributes scope, no empty arrays.
 * Invalid policies are refused with the text SNS puts after "Invalid
 * parameter: " in its InvalidParameter error.
 *
 * A compiled policy is immutable; any thread may match with it. A
 * filter_msg prepares one message (attribute values decoded once, the body
 * parsed on first need) for matching against many policies. */
#ifndef FG_BROKER_FILTER_H
#define FG_BROKER_FILTER_H

#include "core/common.h"

#include <cjson/cJSON.h>

#define FILTER_MAX_KEYS 5
#define FILTER_MAX_COMBINATIONS 150
#define FILTER_MAX_DEPTH 10
#define FILTER_MAX_BYTES (256 * 1024)

enum filter_scope { FILTER_SCOPE_ATTRIBUTES = 0, FILTER_SCOPE_BODY = 1 };

struct filter_policy;

/* "MessageAttributes" / "MessageBody" to the scope; false when neither. */
bool filter_scope_parse(const char *s, enum filter_scope *out);
const char *filter_scope_name(enum filter_scope s);

/* Compiles policy JSON text json[0..len) for scope. Returns the policy
 * (caller frees with filter_free), or NULL with the reason in err, e.g.
 * "FilterPolicy: Filter policy can not have more than 5 keys" (the
 * caller prefixes "Invalid parameter: "). */
struct filter_policy *filter_compile(const char *json, size_t len, enum filter_scope scope,
                                     char *err, size_t errlen);
void filter_free(struct filter_policy *p);
enum filter_scope filter_policy_scope(const struct filter_policy *p);
/* The policy's combination count as SNS computes it (for tests). */
unsigned filter_combinations(const struct filter_policy *p);

/* A message being matched. attrs is the canonical MessageAttributes map
 * ({"name": {"DataType": "String", "StringValue": "v"}}; NULL for none);
 * body is the message text. Both must outlive the filter_msg. */
struct filter_val;
struct filter_attr {
    const char *name;
    struct filter_val *v;  /* decoded values (String.Array: each element) */
    size_t nv;
    cJSON *arr;            /* parsed String.Array, owns the element strings */
};
struct filter_msg {
    struct filter_attr *a;
    size_t na;             /* attributes other than Binary ones */
    const char *body;
    size_t body_len;
    cJSON *json;           /* body, parsed on first MessageBody match */
    int json_state;        /* 0 not tried, 1 parsed object, -1 not a JSON object */
};

void filter_msg_init(struct filter_msg *m, const cJSON *attrs, const char *body, size_t body_len);
void filter_msg_close(struct filter_msg *m);

/* Does the message pass the policy? A NULL policy passes everything. */
bool filter_match(const struct filter_policy *p, struct filter_msg *m);

#endif
