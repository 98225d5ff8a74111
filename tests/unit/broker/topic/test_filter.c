/* Unit tests for subscription filter policies (src/broker/topic/filter.c, filter_match.c),
 * following the examples of the Amazon SNS developer guide (message
 * filtering: string, numeric, key matching, AND/OR logic, $or, IP
 * addresses, payload-based filtering, constraints) on both scopes.
 *
 * To keep the JSON readable, policies, attributes and bodies are written
 * with single quotes, turned into double quotes before parsing. Attributes
 * are given in the shape of the SNS envelope ({"name": {"Type": "String",
 * "Value": "v"}}); a String.Array's Value may be written as a JSON array
 * and a Number's as a JSON number. */
#include <criterion/criterion.h>

#include "broker/topic/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dq(const char *s)
{
    char *t = strdup(s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

/* The doc-shaped attribute map to the canonical MessageAttributes map. */
static cJSON *canon_attrs(const char *doc)
{
    char *t = dq(doc);
    cJSON *in = cJSON_Parse(t);
    cr_assert(in, "bad test attributes: %s", t);
    free(t);
    cJSON *out = cJSON_CreateObject();
    for (cJSON *a = in->child; a; a = a->next) {
        cJSON *type = cJSON_GetObjectItem(a, "Type");
        cJSON *val = cJSON_GetObjectItem(a, "Value");
        cJSON *o = cJSON_AddObjectToObject(out, a->string);
        cJSON_AddStringToObject(o, "DataType", type->valuestring);
        if (strncmp(type->valuestring, "Binary", 6) == 0) {
            cJSON_AddStringToObject(o, "BinaryValue", val->valuestring);
        } else if (cJSON_IsString(val)) {
            cJSON_AddStringToObject(o, "StringValue", val->valuestring);
        } else {
            char *p = cJSON_PrintUnformatted(val);
            cJSON_AddStringToObject(o, "StringValue", p);
            free(p);
        }
    }
    cJSON_Delete(in);
    return out;
}

static struct filter_policy *compile(const char *policy, enum filter_scope scope)
{
    char *t = dq(policy);
    char err[256] = "";
    struct filter_policy *p = filter_compile(t, strlen(t), scope, err, sizeof err);
    cr_assert(p, "policy %s refused: %s", t, err);
    free(t);
    return p;
}

/* Does the policy (attributes scope) accept a message with attrs? */
static bool ma(const char *policy, const char *attrs)
{
    struct filter_policy *p = compile(policy, FILTER_SCOPE_ATTRIBUTES);
    cJSON *a = attrs ? canon_attrs(attrs) : NULL;
    struct filter_msg m;
    filter_msg_init(&m, a, "body", 4);
    bool ok = filter_match(p, &m);
    filter_msg_close(&m);
    cJSON_Delete(a);
    filter_free(p);
    return ok;
}

/* Does the policy (body scope) accept the body? */
static bool mb(const char *policy, const char *body)
{
    struct filter_policy *p = compile(policy, FILTER_SCOPE_BODY);
    char *b = dq(body);
    struct filter_msg m;
    filter_msg_init(&m, NULL, b, strlen(b));
    bool ok = filter_match(p, &m);
    filter_msg_close(&m);
    free(b);
    filter_free(p);
    return ok;
}

/* The policy is refused, with a message containing want. */
static void refused(const char *policy, enum filter_scope scope, const char *want)
{
    char *t = dq(policy);
    char err[256] = "";
    struct filter_policy *p = filter_compile(t, strlen(t), scope, err, sizeof err);
    cr_assert_null(p, "policy %s accepted", t);
    cr_assert(strstr(err, want), "policy %s: error '%s', want '%s'", t, err, want);
    free(t);
}

#define REFUSED_A(p, w) refused(p, FILTER_SCOPE_ATTRIBUTES, w)
#define REFUSED_B(p, w) refused(p, FILTER_SCOPE_BODY, w)

static unsigned combos(const char *policy, enum filter_scope scope)
{
    struct filter_policy *p = compile(policy, scope);
    unsigned n = filter_combinations(p);
    filter_free(p);
    return n;
}

/* The transaction of the guide's example filter policies page. */
#define TXN_ATTRS                                                                    \
    "{'customer_interests': {'Type': 'String.Array', 'Value': ['soccer', 'rugby', 'hockey']}," \
    " 'store': {'Type': 'String', 'Value': 'example_corp'},"                          \
    " 'event': {'Type': 'String', 'Value': 'order_placed'},"                          \
    " 'price_usd': {'Type': 'Number', 'Value': '210.75'}}"
#define TXN_BODY                                                                     \
    "{'customer_interests': ['soccer', 'rugby', 'hockey'], 'store': 'example_corp',"  \
    " 'event': 'order_placed', 'price_usd': 210.75}"

Test(filter_examples, transaction_accepted_both_scopes)
{
    const char *pol = "{'store': ['example_corp'], 'event': [{'anything-but': 'order_cancelled'}],"
                      " 'customer_interests': ['rugby', 'football', 'baseball'],"
                      " 'price_usd': [{'numeric': ['>=', 100]}]}";
    cr_assert(ma(pol, TXN_ATTRS));
    cr_assert(mb(pol, TXN_BODY));
}

Test(filter_examples, transaction_rejected_both_scopes)
{
    /* Each policy fails on one key. */
    const char *pols[] = {
        "{'store': ['example_corp'], 'event': ['order_cancelled']}",
        "{'customer_interests': ['baseball']}",
        "{'price_usd': [{'numeric': ['<', 100]}]}",
        "{'store': [{'prefix': 'other'}], 'event': ['order_placed']}",
        "{'encrypted': [false], 'store': ['example_corp']}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(pols); i++) {
        cr_assert_not(ma(pols[i], TXN_ATTRS), "%s", pols[i]);
        cr_assert_not(mb(pols[i], TXN_BODY), "%s", pols[i]);
    }
}

Test(filter_examples, keys_not_in_policy_are_ignored)
{
    cr_assert(ma("{'store': ['example_corp']}", TXN_ATTRS));
    cr_assert(mb("{'event': ['order_placed']}", TXN_BODY));
    cr_assert(ma("{}", TXN_ATTRS), "an empty policy accepts everything");
}

/* ---- string matching ---- */

Test(filter_string, exact)
{
    const char *pol = "{'customer_interests': ['rugby', 'tennis']}";
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'}}"));
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'tennis'}}"));
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String.Array', 'Value': ['rugby', 'tennis']}}"));
    cr_assert_not(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'baseball'}}"));
    cr_assert_not(ma(pol, "{'customer_interests': {'Type': 'String.Array', 'Value': ['baseball']}}"));
    cr_assert(mb(pol, "{'customer_interests': 'rugby'}"));
    cr_assert(mb(pol, "{'customer_interests': 'tennis'}"));
    cr_assert_not(mb(pol, "{'customer_interests': 'baseball'}"));
    cr_assert_not(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'Rugby'}}"),
                  "string matching is case-sensitive");
    cr_assert_not(ma(pol, "{'other': {'Type': 'String', 'Value': 'rugby'}}"));
}

Test(filter_string, anything_but)
{
    const char *pol = "{'customer_interests': [{'anything-but': ['rugby', 'tennis']}]}";
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'baseball'}}"));
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'football'}}"));
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String.Array', 'Value': ['rugby', 'baseball']}}"),
              "an array holding a value that is neither matches");
    cr_assert_not(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'}}"));
    cr_assert_not(ma(pol, "{'customer_interests': {'Type': 'String.Array', 'Value': ['rugby', 'tennis']}}"));
    cr_assert_not(ma(pol, "{'other': {'Type': 'String', 'Value': 'x'}}"),
                  "anything-but needs the key");
    cr_assert(mb(pol, "{'customer_interests': 'baseball'}"));
    cr_assert(mb(pol, "{'customer_interests': ['rugby', 'baseball']}"));
    cr_assert_not(mb(pol, "{'customer_interests': 'rugby'}"));
    cr_assert_not(mb(pol, "{'x': 1}"));
    /* A single value instead of a list. */
    cr_assert(ma("{'event': [{'anything-but': 'order_cancelled'}]}",
                 "{'event': {'Type': 'String', 'Value': 'order_placed'}}"));
    cr_assert_not(ma("{'event': [{'anything-but': 'order_cancelled'}]}",
                     "{'event': {'Type': 'String', 'Value': 'order_cancelled'}}"));
}

Test(filter_string, anything_but_with_exists_false)
{
    /* anything-but combined with exists: false also takes messages
     * without the key. */
    const char *pol = "{'store': [{'anything-but': ['example_corp']}, {'exists': false}]}";
    cr_assert(ma(pol, "{'other': {'Type': 'String', 'Value': 'x'}}"));
    cr_assert(ma(pol, "{'store': {'Type': 'String', 'Value': 'acme'}}"));
    cr_assert_not(ma(pol, "{'store': {'Type': 'String', 'Value': 'example_corp'}}"));
}

Test(filter_string, prefix_and_suffix)
{
    const char *pre = "{'customer_interests': [{'prefix': 'bas'}]}";
    cr_assert(ma(pre, "{'customer_interests': {'Type': 'String', 'Value': 'baseball'}}"));
    cr_assert(ma(pre, "{'customer_interests': {'Type': 'String', 'Value': 'basketball'}}"));
    cr_assert_not(ma(pre, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'}}"));
    cr_assert(mb(pre, "{'customer_interests': 'basketball'}"));
    cr_assert_not(mb(pre, "{'customer_interests': 'rugby'}"));
    const char *suf = "{'customer_interests': [{'suffix': 'ball'}]}";
    cr_assert(ma(suf, "{'customer_interests': {'Type': 'String', 'Value': 'baseball'}}"));
    cr_assert(ma(suf, "{'customer_interests': {'Type': 'String.Array', 'Value': ['rugby', 'netball']}}"));
    cr_assert_not(ma(suf, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'}}"));
    cr_assert_not(ma(suf, "{'customer_interests': {'Type': 'String', 'Value': 'all'}}"));
    cr_assert(mb(suf, "{'customer_interests': 'baseball'}"));
}

Test(filter_string, equals_ignore_case)
{
    const char *pol = "{'customer_interests': [{'equals-ignore-case': 'tennis'}]}";
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'TENNIS'}}"));
    cr_assert(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'Tennis'}}"));
    cr_assert_not(ma(pol, "{'customer_interests': {'Type': 'String', 'Value': 'tennis2'}}"));
    cr_assert(mb(pol, "{'customer_interests': 'tEnNiS'}"));
    cr_assert_not(mb(pol, "{'customer_interests': 'baseball'}"));
}

Test(filter_string, anything_but_patterns)
{
    const char *pol = "{'event': [{'anything-but': {'prefix': 'order-'}}]}";
    cr_assert(ma(pol, "{'event': {'Type': 'String', 'Value': 'data-entry'}}"));
    cr_assert(ma(pol, "{'event': {'Type': 'String', 'Value': 'order_cancelled'}}"));
    cr_assert_not(ma(pol, "{'event': {'Type': 'String', 'Value': 'order-cancelled'}}"));
    cr_assert(mb(pol, "{'event': 'data-entry'}"));
    cr_assert_not(mb(pol, "{'event': 'order-placed'}"));
    cr_assert_not(mb(pol, "{'event': 17}"), "pattern exclusions speak about strings only");
    const char *suf = "{'f': [{'anything-but': {'suffix': '.png'}}]}";
    cr_assert(mb(suf, "{'f': 'a.jpg'}"));
    cr_assert_not(mb(suf, "{'f': 'a.png'}"));
    const char *ic = "{'f': [{'anything-but': {'equals-ignore-case': ['Ab', 'cD']}}]}";
    cr_assert(mb(ic, "{'f': 'ef'}"));
    cr_assert_not(mb(ic, "{'f': 'AB'}"));
    cr_assert_not(mb(ic, "{'f': 'cd'}"));
}

Test(filter_string, escaped_characters)
{
    /* Quotes and backslashes in values compare after JSON decoding. */
    cr_assert(ma("{'k': ['a\\\\b\\u0022c']}", "{'k': {'Type': 'String', 'Value': 'a\\\\b\\u0022c'}}"));
    cr_assert(mb("{'k': ['caf\\u00e9']}", "{'k': 'caf\\u00e9'}"));
}

/* ---- numeric matching ---- */

Test(filter_numeric, exact)
{
    const char *pol = "{'price_usd': [{'numeric': ['=', 301.5]}]}";
    cr_assert(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 301.5}}"));
    cr_assert(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': '3.015e2'}}"));
    cr_assert_not(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 301.6}}"));
    cr_assert(mb(pol, "{'price_usd': 301.5}"));
    cr_assert(mb(pol, "{'price_usd': 3.015e2}"));
    cr_assert_not(mb(pol, "{'price_usd': '301.5'}"), "a string is not a number");
    /* A bare number in the list is an exact numeric match too. */
    cr_assert(ma("{'price_usd': [301.5]}", "{'price_usd': {'Type': 'Number', 'Value': '301.50'}}"));
    cr_assert_not(ma("{'price_usd': [301.5]}", "{'price_usd': {'Type': 'String', 'Value': '301.5'}}"));
    /* Custom Number types are numbers. */
    cr_assert(ma(pol, "{'price_usd': {'Type': 'Number.float', 'Value': '301.5'}}"));
}

Test(filter_numeric, five_decimal_places)
{
    cr_assert(mb("{'n': [{'numeric': ['=', 0.3]}]}", "{'n': 0.30000000000000004}"));
    cr_assert(mb("{'n': [{'numeric': ['=', 1]}]}", "{'n': 1.000001}"));
    cr_assert_not(mb("{'n': [{'numeric': ['=', 1]}]}", "{'n': 1.00001}"));
    cr_assert(mb("{'n': [{'numeric': ['>=', -1000000000, '<=', 1000000000]}]}", "{'n': -1e9}"));
}

Test(filter_numeric, anything_but)
{
    const char *pol = "{'price': [{'anything-but': [100, 500]}]}";
    cr_assert(ma(pol, "{'price': {'Type': 'Number', 'Value': 101}}"));
    cr_assert(ma(pol, "{'price': {'Type': 'Number', 'Value': 100.1}}"));
    cr_assert(ma(pol, "{'price': {'Type': 'String.Array', 'Value': [100, 50]}}"));
    cr_assert_not(ma(pol, "{'price': {'Type': 'Number', 'Value': 100}}"));
    cr_assert(mb(pol, "{'price': 101}"));
    cr_assert(mb(pol, "{'price': [100, 50]}"));
    cr_assert_not(mb(pol, "{'price': 100}"));
    cr_assert_not(mb(pol, "{'price': 500.0}"));
}

Test(filter_numeric, ranges)
{
    const char *pol = "{'price_usd': [{'numeric': ['>', 0, '<=', 150]}]}";
    cr_assert(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 100}}"));
    cr_assert(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 150}}"));
    cr_assert(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 0.00001}}"));
    cr_assert_not(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 0}}"));
    cr_assert_not(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 150.5}}"));
    cr_assert_not(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': -3}}"));
    cr_assert(mb(pol, "{'price_usd': 100}"));
    cr_assert_not(mb(pol, "{'price_usd': 200}"));
    cr_assert(mb("{'v': [{'numeric': ['<', 0]}]}", "{'v': -0.5}"));
    cr_assert_not(mb("{'v': [{'numeric': ['<', 0]}]}", "{'v': 0}"));
    cr_assert(mb("{'v': [{'numeric': ['<=', 0]}]}", "{'v': 0}"));
    cr_assert(mb("{'v': [{'numeric': ['>=', 10, '<', 20]}]}", "{'v': 10}"));
    cr_assert_not(mb("{'v': [{'numeric': ['>=', 10, '<', 20]}]}", "{'v': 20}"));
    cr_assert_not(ma(pol, "{'price_usd': {'Type': 'String', 'Value': '100'}}"),
                  "only numbers match numeric conditions");
    cr_assert_not(ma(pol, "{'price_usd': {'Type': 'Number', 'Value': 'abc'}}"));
}

/* ---- key matching ---- */

Test(filter_exists, attributes)
{
    const char *yes = "{'store': [{'exists': true}]}";
    cr_assert(ma(yes, "{'store': {'Type': 'String', 'Value': 'fans'},"
                      " 'customer_interests': {'Type': 'String.Array', 'Value': ['baseball']}}"));
    cr_assert_not(ma(yes, "{'customer_interests': {'Type': 'String.Array', 'Value': ['baseball']}}"));
    const char *no = "{'store': [{'exists': false}]}";
    cr_assert_not(ma(no, "{'store': {'Type': 'String', 'Value': 'fans'}}"));
    cr_assert(ma(no, "{'customer_interests': {'Type': 'String.Array', 'Value': ['baseball']}}"));
    cr_assert_not(ma(no, NULL), "exists: false needs at least one attribute");
    cr_assert_not(ma(no, "{}"));
}

Test(filter_exists, body)
{
    const char *yes = "{'store': [{'exists': true}]}";
    cr_assert(mb(yes, "{'store': 'fans', 'customer_interests': ['baseball', 'basketball']}"));
    cr_assert_not(mb(yes, "{'customer_interests': ['baseball', 'basketball']}"));
    cr_assert_not(mb(yes, "{'store': null}"), "exists: true needs a non-null value");
    cr_assert_not(mb(yes, "{'store': {'a': 1}}"), "exists works on leaves only");
    const char *no = "{'store': [{'exists': false}]}";
    cr_assert_not(mb(no, "{'store': 'fans'}"));
    cr_assert(mb(no, "{'customer_interests': ['baseball']}"));
    cr_assert(mb(no, "{'store': []}"), "an empty array holds nothing");
    cr_assert(mb("{'a': {'b': [{'exists': false}]}}", "{'c': 1}"), "absent parent");
    cr_assert(mb("{'a': {'b': [{'exists': false}]}}", "{'a': {'c': 1}}"));
    cr_assert_not(mb("{'a': {'b': [{'exists': false}]}}", "{'a': {'b': 1}}"));
}

/* ---- AND / OR ---- */

Test(filter_logic, and_or)
{
    const char *and_pol = "{'customer_interests': ['rugby'], 'price_usd': [{'numeric': ['>', 100]}]}";
    cr_assert(ma(and_pol, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'},"
                          " 'price_usd': {'Type': 'Number', 'Value': 101}}"));
    cr_assert_not(ma(and_pol, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'},"
                              " 'price_usd': {'Type': 'Number', 'Value': 100}}"));
    cr_assert_not(ma(and_pol, "{'customer_interests': {'Type': 'String', 'Value': 'rugby'}}"));
    cr_assert(mb(and_pol, "{'customer_interests': 'rugby', 'price_usd': 200}"));
    const char *or_pol = "{'customer_interests': ['rugby', 'football', 'baseball']}";
    cr_assert(mb(or_pol, "{'customer_interests': 'football'}"));
    cr_assert_not(mb(or_pol, "{'customer_interests': 'golf'}"));
}

Test(filter_logic, or_operator)
{
    const char *pol = "{'source': ['aws.cloudwatch'],"
                      " '$or': [{'metricName': ['CPUUtilization']}, {'namespace': ['AWS/EC2']}]}";
    cr_assert(ma(pol, "{'source': {'Type': 'String', 'Value': 'aws.cloudwatch'},"
                      " 'metricName': {'Type': 'String', 'Value': 'CPUUtilization'}}"));
    cr_assert(ma(pol, "{'source': {'Type': 'String', 'Value': 'aws.cloudwatch'},"
                      " 'namespace': {'Type': 'String', 'Value': 'AWS/EC2'}}"));
    cr_assert_not(ma(pol, "{'source': {'Type': 'String', 'Value': 'aws.cloudwatch'},"
                          " 'metricName': {'Type': 'String', 'Value': 'ReadLatency'}}"));
    cr_assert_not(ma(pol, "{'source': {'Type': 'String', 'Value': 'aws.ec2'},"
                          " 'namespace': {'Type': 'String', 'Value': 'AWS/EC2'}}"));
    cr_assert(mb(pol, "{'source': 'aws.cloudwatch', 'namespace': 'AWS/EC2'}"));
    cr_assert_not(mb(pol, "{'source': 'aws.cloudwatch'}"));
}

Test(filter_logic, nested_or)
{
    /* The guide's example: source && (metricName || (metricType && (metricId || spaceId))). */
    const char *pol =
        "{'source': ['aws.cloudwatch'], '$or': ["
        " {'metricName': ['CPUUtilization', 'ReadLatency']},"
        " {'metricType': ['MetricType'], '$or': [{'metricId': [1234, 4321]}, {'spaceId': [1000, 2000, 3000]}]}]}";
    cr_assert_eq(combos(pol, FILTER_SCOPE_ATTRIBUTES), 7);
    cr_assert(mb(pol, "{'source': 'aws.cloudwatch', 'metricName': 'ReadLatency'}"));
    cr_assert(mb(pol, "{'source': 'aws.cloudwatch', 'metricType': 'MetricType', 'spaceId': 2000}"));
    cr_assert(mb(pol, "{'source': 'aws.cloudwatch', 'metricType': 'MetricType', 'metricId': 4321}"));
    cr_assert_not(mb(pol, "{'source': 'aws.cloudwatch', 'metricType': 'MetricType', 'metricId': 1}"));
    cr_assert_not(mb(pol, "{'source': 'aws.cloudwatch', 'spaceId': 1000}"));
    cr_assert(ma(pol, "{'source': {'Type': 'String', 'Value': 'aws.cloudwatch'},"
                      " 'metricType': {'Type': 'String', 'Value': 'MetricType'},"
                      " 'metricId': {'Type': 'Number', 'Value': 1234}}"));
}

Test(filter_logic, or_not_recognised_is_a_key)
{
    /* One branch only, or reserved words in a branch: "$or" is a plain
     * key, and these values are then invalid conditions or plain values. */
    cr_assert(mb("{'$or': ['x']}", "{'$or': 'x'}"));
    REFUSED_A("{'$or': [{'numeric': 123}, {'prefix': 'abc'}]}", "numeric");
    REFUSED_A("{'$or': [{'a': ['x']}]}", "Unrecognized match type a");
}

/* ---- IP addresses ---- */

Test(filter_cidr, ipv4_and_ipv6)
{
    const char *pol = "{'source_ip': [{'cidr': '10.0.0.0/24'}]}";
    cr_assert(ma(pol, "{'source_ip': {'Type': 'String', 'Value': '10.0.0.0'}}"));
    cr_assert(ma(pol, "{'source_ip': {'Type': 'String', 'Value': '10.0.0.255'}}"));
    cr_assert_not(ma(pol, "{'source_ip': {'Type': 'String', 'Value': '10.1.1.0'}}"));
    cr_assert_not(ma(pol, "{'source_ip': {'Type': 'String', 'Value': 'not an address'}}"));
    cr_assert(mb(pol, "{'source_ip': '10.0.0.7'}"));
    cr_assert(mb("{'ip': [{'cidr': '2001:db8::/32'}]}", "{'ip': '2001:db8::1'}"));
    cr_assert_not(mb("{'ip': [{'cidr': '2001:db8::/32'}]}", "{'ip': '2001:db9::1'}"));
}

/* ---- payload-based filtering ---- */

Test(filter_body, nested_keys)
{
    const char *pol = "{'order': {'status': ['paid'], 'amount': [{'numeric': ['>=', 10]}]}}";
    cr_assert(mb(pol, "{'order': {'status': 'paid', 'amount': 12, 'id': 'x'}, 'z': 1}"));
    cr_assert_not(mb(pol, "{'order': {'status': 'paid', 'amount': 9}}"));
    cr_assert_not(mb(pol, "{'status': 'paid', 'amount': 12}"), "keys nest");
    cr_assert_not(mb(pol, "{'order': 'paid'}"));
    const char *deep = "{'a': {'b': {'c': {'d': ['x']}}}}";
    cr_assert(mb(deep, "{'a': {'b': {'c': {'d': 'x'}}}}"));
    cr_assert_not(mb(deep, "{'a': {'b': {'c': {'d': 'y'}}}}"));
}

Test(filter_body, arrays_are_looked_through)
{
    const char *pol = "{'items': {'sku': ['B-2']}}";
    cr_assert(mb(pol, "{'items': [{'sku': 'A-1'}, {'sku': 'B-2'}]}"));
    cr_assert_not(mb(pol, "{'items': [{'sku': 'A-1'}, {'sku': 'C-3'}]}"));
    cr_assert(mb("{'tags': ['x']}", "{'tags': [['y'], ['x']]}"));
    /* Conditions on two keys need not hold in the same array element. */
    cr_assert(mb("{'a': {'b': [1], 'c': [4]}}", "{'a': [{'b': 1, 'c': 2}, {'b': 3, 'c': 4}]}"));
}

Test(filter_body, literal_kinds)
{
    cr_assert(mb("{'ok': [true]}", "{'ok': true}"));
    cr_assert_not(mb("{'ok': [true]}", "{'ok': 'true'}"));
    cr_assert(mb("{'ok': [false]}", "{'ok': false}"));
    cr_assert(mb("{'v': [null]}", "{'v': null}"));
    cr_assert_not(mb("{'v': [null]}", "{'w': 1}"));
}

Test(filter_body, not_a_json_object)
{
    cr_assert_not(mb("{'a': ['x']}", "plain text"));
    cr_assert_not(mb("{'a': ['x']}", "['x']"));
    cr_assert_not(mb("{'a': ['x']}", "{'a': 'x'} trailing"));
    cr_assert(mb("{}", "plain text"), "an empty policy takes everything");
}

Test(filter_body, keys_count_only_at_the_top)
{
    /* The guide's example: nested keys do not count toward the five. */
    const char *pol = "{'state': ['SUCCESS'], 'severity': [{'exists': true}], 'message': [{'exists': true}],"
                      " 'finding': {'standard_control': [{'exists': true}], 'region': [{'exists': true}],"
                      " 'account': [{'exists': true}]}}";
    struct filter_policy *p = compile(pol, FILTER_SCOPE_BODY);
    filter_free(p);
}

/* ---- attribute details ---- */

Test(filter_attrs, binary_is_ignored)
{
    cr_assert_not(ma("{'b': [{'exists': true}]}", "{'b': {'Type': 'Binary', 'Value': 'AAE='},"
                                                 " 'x': {'Type': 'String', 'Value': 'y'}}"));
    cr_assert(ma("{'b': [{'exists': false}]}", "{'b': {'Type': 'Binary', 'Value': 'AAE='},"
                                              " 'x': {'Type': 'String', 'Value': 'y'}}"));
    cr_assert_not(ma("{'b': [{'exists': false}]}", "{'b': {'Type': 'Binary', 'Value': 'AAE='}}"),
                  "only Binary attributes: as good as none");
}

Test(filter_attrs, string_array_element_types)
{
    const char *arr = "{'k': {'Type': 'String.Array', 'Value': ['a', 5, true, null, {'x': 1}, [2]]}}";
    cr_assert(ma("{'k': [5]}", arr));
    cr_assert(ma("{'k': ['a']}", arr));
    cr_assert(ma("{'k': [true]}", arr));
    cr_assert(ma("{'k': [null]}", arr));
    cr_assert(ma("{'k': [{'numeric': ['>', 4]}]}", arr));
    cr_assert_not(ma("{'k': [2]}", arr), "nested arrays in a String.Array are not looked into");
    cr_assert_not(ma("{'k': ['5']}", arr));
    /* Not a JSON array: the value is taken as a plain string. */
    cr_assert(ma("{'k': ['[oops']}", "{'k': {'Type': 'String.Array', 'Value': '[oops'}}"));
}

Test(filter_attrs, policy_on_body_does_not_read_attributes)
{
    cr_assert_not(mb("{'store': ['example_corp']}", "{'other': 1}"));
    cr_assert(ma("{'store': ['example_corp']}", TXN_ATTRS));
}

/* ---- constraints and invalid policies ---- */

Test(filter_limits, five_keys)
{
    REFUSED_A("{'a': ['1'], 'b': ['1'], 'c': ['1'], 'd': ['1'], 'e': ['1'], 'f': ['1']}",
              "FilterPolicy: Filter policy can not have more than 5 keys");
    REFUSED_B("{'a': ['1'], 'b': ['1'], 'c': ['1'], 'd': ['1'], 'e': ['1'], 'f': {'g': ['1']}}",
              "can not have more than 5 keys");
    REFUSED_A("{'$or': [{'a': ['1'], 'b': ['1'], 'c': ['1'], 'd': ['1'], 'e': ['1'], 'f': ['1']}, {'x': ['1']}]}",
              "more than 5 keys");
    filter_free(compile("{'a': ['1'], 'b': ['1'], 'c': ['1'], 'd': ['1'], 'e': ['1']}",
                        FILTER_SCOPE_ATTRIBUTES));
}

Test(filter_limits, combinations)
{
    /* 150 values in one key is the limit; 5 * 5 * 6 = 150 too. */
    char pol[4096] = "{'a': [";
    for (int i = 0; i < 150; i++)
        snprintf(pol + strlen(pol), sizeof pol - strlen(pol), "%s%d", i ? ", " : "", i);
    strcat(pol, "]}");
    cr_assert_eq(combos(pol, FILTER_SCOPE_ATTRIBUTES), 150);
    pol[strlen(pol) - 2] = '\0';
    strcat(pol, ", 150]}");
    REFUSED_A(pol, "FilterPolicy: Filter policy is too complex");
    cr_assert_eq(combos("{'a': [1,2,3,4,5], 'b': [1,2,3,4,5], 'c': [1,2,3,4,5,6]}",
                        FILTER_SCOPE_ATTRIBUTES), 150);
    REFUSED_A("{'a': [1,2,3,4,5], 'b': [1,2,3,4,5], 'c': [1,2,3,4,5,6,7]}", "too complex");
}

Test(filter_limits, nested_combinations_weigh_depth)
{
    /* The guide's example: 4 values at depth 3 and 3 at depth 2:
     * 3 x 4 x 2 x 3 = 72. */
    const char *pol = "{'key_a': {'key_b': {'key_c': ['value_one', 'value_two', 'value_three', 'value_four']}},"
                      " 'key_d': {'key_e': ['value_one', 'value_two', 'value_three']}}";
    cr_assert_eq(combos(pol, FILTER_SCOPE_BODY), 72);
    REFUSED_B("{'key_a': {'key_b': {'key_c': ['value_one', 'value_two', 'value_three', 'value_four']}},"
              " 'key_d': {'key_e': ['value_one', 'value_two', 'value_three']},"
              " 'key_f': ['value_one', 'value_two', 'value_three']}",
              "too complex");
}

Test(filter_limits, nesting)
{
    REFUSED_A("{'a': {'b': ['x']}}",
              "Filter policy scope MessageAttributes does not support nested filter policy");
    REFUSED_B("{'1':{'2':{'3':{'4':{'5':{'6':{'7':{'8':{'9':{'10':{'11':['x']}}}}}}}}}}}",
              "nested more than");
    filter_free(compile("{'1':{'2':{'3':{'4':{'5':{'6':{'7':{'8':{'9':{'10':['x']}}}}}}}}}}",
                        FILTER_SCOPE_BODY));
}

Test(filter_invalid, structure)
{
    REFUSED_A("not json", "FilterPolicy: failed to parse JSON");
    REFUSED_A("{'a': ['x']} {}", "failed to parse JSON");
    REFUSED_A("['a']", "must be a JSON object");
    REFUSED_A("{'a': []}", "FilterPolicy: Empty arrays are not allowed");
    REFUSED_A("{'a': 'x'}", "FilterPolicy: \"a\" must be an object or an array");
    REFUSED_A("{'a': 5}", "\"a\" must be an object or an array");
    REFUSED_A("{'a': [['x']]}", "Match value must be String, number, true, false, or null");
    REFUSED_A("{'a': [{'prefix': 'x', 'suffix': 'y'}]}", "Only one key allowed in match expression");
    REFUSED_A("{'a': [{}]}", "Only one key allowed in match expression");
    REFUSED_A("{'a': [{'regex': 'x'}]}", "FilterPolicy: Unrecognized match type regex");
    REFUSED_A("{'a': [{'wildcard': 'x*'}]}", "Unrecognized match type wildcard");
}

Test(filter_invalid, operators)
{
    REFUSED_A("{'a': [{'prefix': 5}]}", "prefix match pattern must be a string");
    REFUSED_A("{'a': [{'suffix': null}]}", "suffix match pattern must be a string");
    REFUSED_A("{'a': [{'equals-ignore-case': ['x']}]}", "equals-ignore-case match pattern must be a string");
    REFUSED_A("{'a': [{'exists': 'yes'}]}", "exists match pattern must be either true or false.");
    REFUSED_A("{'a': [{'anything-but': {'numeric': ['>', 1]}}]}", "Unsupported anything-but pattern: numeric");
    REFUSED_A("{'a': [{'anything-but': {'prefix': 1}}]}", "prefix match pattern must be a string");
    REFUSED_A("{'a': [{'anything-but': []}]}", "Empty arrays are not allowed");
    REFUSED_A("{'a': [{'anything-but': [{'prefix': 'x'}]}]}", "Match value must be");
    REFUSED_A("{'a': [{'cidr': 10}]}", "prefix match pattern must be a string");
    REFUSED_A("{'a': [{'cidr': '10.0.0.0'}]}", "Malformed CIDR, one '/' required");
    REFUSED_A("{'a': [{'cidr': '10.0.0.0/x'}]}", "Malformed CIDR, mask bits must be an integer");
    REFUSED_A("{'a': [{'cidr': '10.0.0.300/8'}]}", "Nonstandard IP address: 10.0.0.300");
}

Test(filter_invalid, numeric)
{
    REFUSED_A("{'a': [{'numeric': 5}]}", "Value of numeric must be an array");
    REFUSED_A("{'a': [{'numeric': []}]}", "Invalid member in numeric match: ]");
    REFUSED_A("{'a': [{'numeric': [5]}]}", "Invalid member in numeric match: 5");
    REFUSED_A("{'a': [{'numeric': ['!=', 5]}]}", "Unrecognized numeric range operator: !=");
    REFUSED_A("{'a': [{'numeric': ['=', 'x']}]}", "Value of equals must be numeric");
    REFUSED_A("{'a': [{'numeric': ['<']}]}", "Value of < must be numeric");
    REFUSED_A("{'a': [{'numeric': ['<', 5, '>', 1]}]}", "Too many elements in numeric expression");
    REFUSED_A("{'a': [{'numeric': ['=', 5, '<', 9]}]}", "Too many elements in numeric expression");
    REFUSED_A("{'a': [{'numeric': ['>', 1, 5]}]}", "Bad value in numeric range: 5");
    REFUSED_A("{'a': [{'numeric': ['>', 1, '>', 5]}]}", "Bad numeric range operator: >");
    REFUSED_A("{'a': [{'numeric': ['>', 1, '<', 'x']}]}", "Value of < must be numeric");
    REFUSED_A("{'a': [{'numeric': ['>', 5, '<', 5]}]}", "Bottom must be less than top");
    REFUSED_A("{'a': [{'numeric': ['>', 1, '<', 5, '=']}]}", "Too many terms in numeric range expression");
}

Test(filter_invalid, size)
{
    size_t n = FILTER_MAX_BYTES + 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{}", 2);
    big[n] = '\0';
    char err[256];
    cr_assert_null(filter_compile(big, n, FILTER_SCOPE_ATTRIBUTES, err, sizeof err));
    cr_assert(strstr(err, "larger than"), "%s", err);
    free(big);
}

Test(filter_scope, names)
{
    enum filter_scope s;
    cr_assert(filter_scope_parse("MessageBody", &s) && s == FILTER_SCOPE_BODY);
    cr_assert(filter_scope_parse("MessageAttributes", &s) && s == FILTER_SCOPE_ATTRIBUTES);
    cr_assert_not(filter_scope_parse("messagebody", &s));
    cr_assert_str_eq(filter_scope_name(FILTER_SCOPE_BODY), "MessageBody");
}

Test(filter_msg, one_message_many_policies)
{
    /* A prepared message is reused across policies of both scopes. */
    cJSON *a = canon_attrs(TXN_ATTRS);
    char *body = dq(TXN_BODY);
    struct filter_msg m;
    filter_msg_init(&m, a, body, strlen(body));
    struct filter_policy *p1 = compile("{'store': ['example_corp']}", FILTER_SCOPE_ATTRIBUTES);
    struct filter_policy *p2 = compile("{'price_usd': [{'numeric': ['>', 300]}]}", FILTER_SCOPE_BODY);
    struct filter_policy *p3 = compile("{'event': ['order_placed']}", FILTER_SCOPE_BODY);
    for (int round = 0; round < 3; round++) {
        cr_assert(filter_match(p1, &m));
        cr_assert_not(filter_match(p2, &m));
        cr_assert(filter_match(p3, &m));
        cr_assert(filter_match(NULL, &m));
    }
    filter_free(p1);
    filter_free(p2);
    filter_free(p3);
    filter_msg_close(&m);
    free(body);
    cJSON_Delete(a);
}
