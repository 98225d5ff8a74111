/* HTTP push delivery policies (push.h): parsing SNS DeliveryPolicy JSON
 * for topics and subscriptions, the retry schedule with its four phases
 * and backoff functions, jitter, and even pacing for the rate limit.
 *
 * Backoff functions over the backoff phase's n retries (i = 1..n), from
 * minDelayTarget (lo) to maxDelayTarget (hi):
 *   linear       lo + (hi - lo) * i / n                  equal steps
 *   arithmetic   lo + (hi - lo) * i(i+1) / (n(n+1))      steps growing by a constant
 *   geometric    lo * (hi / lo) ^ (i / n)                constant ratio
 *   exponential  lo + (hi - lo) * (2^i - 1) / (2^n - 1)  steps doubling */
#include "broker/push/push.h"

#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void push_policy_default(struct push_policy *p)
{
    memset(p, 0, sizeof *p);
    p->num_retries = 3;
    p->min_delay_s = 20;
    p->max_delay_s = 20;
    p->backoff = PUSH_BACKOFF_LINEAR;
}

uint32_t push_policy_attempts(const struct push_policy *p) { return p->num_retries + 1; }

int64_t push_retry_delay_ms(const struct push_policy *p, uint32_t n)
{
    if (n == 0 || n > p->num_retries)
        return -1;
    uint32_t no = p->num_no_delay, mind = p->num_min_delay, maxd = p->num_max_delay;
    uint32_t back = p->num_retries - no - mind - maxd;
    double lo = p->min_delay_s, hi = p->max_delay_s;
    if (n <= no)
        return 0;
    if (n <= no + mind)
        return (int64_t)(lo * 1000);
    if (n > no + mind + back)
        return (int64_t)(hi * 1000);
    double i = n - no - mind, k = back, d;
    switch (p->backoff) {
    case PUSH_BACKOFF_ARITHMETIC:
        d = lo + (hi - lo) * i * (i + 1) / (k * (k + 1));
        break;
    case PUSH_BACKOFF_GEOMETRIC:
        d = lo * pow(hi / lo, i / k);
        break;
    case PUSH_BACKOFF_EXPONENTIAL:
        d = lo + (hi - lo) * (pow(2, i) - 1) / (pow(2, k) - 1);
        break;
    default:
        d = lo + (hi - lo) * i / k;
    }
    return (int64_t)llround(d * 1000);
}

int64_t push_retry_delay_jitter_ms(const struct push_policy *p, uint32_t n, uint32_t rnd)
{
    int64_t d = push_retry_delay_ms(p, n);
    if (d <= 0)
        return d;
    double u = rnd / 4294967296.0;
    return (int64_t)llround((double)d * (0.9 + 0.2 * u));
}

/* ---- parsing ---- */

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "DeliveryPolicy: %s", what);
    return -1;
}

/* An integer member in [min, max]; absent leaves *out. */
static int get_int(const cJSON *o, const char *name, uint32_t min, uint32_t max, uint32_t *out,
                   char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v)
        return 0;
    char msg[160];
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max) {
        snprintf(msg, sizeof msg, "%s must be an integer from %u to %u", name, min, max);
        return bad(err, errlen, msg);
    }
    *out = (uint32_t)v->valuedouble;
    return 0;
}

static int retry_policy(const cJSON *o, struct push_policy *p, char *err, size_t errlen)
{
    if (!o)
        return 0;
    if (!cJSON_IsObject(o))
        return bad(err, errlen, "the retry policy must be an object");
    static const char *const fns[] = {"linear", "arithmetic", "geometric", "exponential"};
    if (get_int(o, "numRetries", 0, PUSH_MAX_RETRIES, &p->num_retries, err, errlen) ||
        get_int(o, "numNoDelayRetries", 0, PUSH_MAX_RETRIES, &p->num_no_delay, err, errlen) ||
        get_int(o, "numMinDelayRetries", 0, PUSH_MAX_RETRIES, &p->num_min_delay, err, errlen) ||
        get_int(o, "numMaxDelayRetries", 0, PUSH_MAX_RETRIES, &p->num_max_delay, err, errlen) ||
        get_int(o, "minDelayTarget", 1, PUSH_MAX_DELAY_S, &p->min_delay_s, err, errlen) ||
        get_int(o, "maxDelayTarget", 1, PUSH_MAX_DELAY_S, &p->max_delay_s, err, errlen))
        return -1;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(o, "backoffFunction");
    if (fn) {
        bool ok = false;
        for (size_t i = 0; i < ARRAY_SIZE(fns) && cJSON_IsString(fn); i++)
            if (strcmp(fn->valuestring, fns[i]) == 0) {
                p->backoff = (uint8_t)i;
                ok = true;
            }
        if (!ok)
            return bad(err, errlen, "backoffFunction must be one of linear, arithmetic, "
                                    "geometric, exponential");
    }
    return 0;
}

static int throttle_policy(const cJSON *o, struct push_policy *p, char *err, size_t errlen)
{
    if (!o)
        return 0;
    if (!cJSON_IsObject(o))
        return bad(err, errlen, "the throttle policy must be an object");
    return get_int(o, "maxReceivesPerSecond", 1, 1000000, &p->max_per_second, err, errlen);
}

static int request_policy(const cJSON *o, struct push_policy *p, char *err, size_t errlen)
{
    if (!o)
        return 0;
    const cJSON *ct = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "headerContentType")
                                        : NULL;
    if (!cJSON_IsObject(o) || (ct && !cJSON_IsString(ct)))
        return bad(err, errlen, "requestPolicy.headerContentType must be a string");
    if (!ct)
        return 0;
    const char *s = ct->valuestring;
    size_t n = strlen(s);
    bool printable = true;
    /* It becomes a header line: printable ASCII only, nothing to smuggle. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            printable = false;
    if (!printable || n == 0 || n >= sizeof p->content_type)
        return bad(err, errlen, "requestPolicy.headerContentType is not a valid content type");
    memcpy(p->content_type, s, n + 1);
    return 0;
}

/* Phase counts must fit the total and the whole schedule one hour. */
static int check(const struct push_policy *p, char *err, size_t errlen)
{
    if (p->min_delay_s > p->max_delay_s)
        return bad(err, errlen, "minDelayTarget must be less than or equal to maxDelayTarget");
    if ((uint64_t)p->num_no_delay + p->num_min_delay + p->num_max_delay > p->num_retries)
        return bad(err, errlen, "numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries "
                                "must not exceed numRetries");
    uint64_t total = 0;
    for (uint32_t n = 1; n <= p->num_retries; n++)
        total += (uint64_t)push_retry_delay_ms(p, n);
    if (total > (uint64_t)PUSH_MAX_POLICY_S * 1000)
        return bad(err, errlen, "the total retry time must not exceed 3600 seconds");
    return 0;
}

int push_policy_apply_topic(struct push_policy *p, const char *json, bool *no_overrides, char *err,
                            size_t errlen)
{
    *no_overrides = false;
    cJSON *j = json_parse_strict(json, strlen(json));
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bad(err, errlen, "must be a JSON object");
    }
    struct push_policy t = *p;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "http");
    int r = 0;
    if (h && !cJSON_IsObject(h))
        r = bad(err, errlen, "http must be an object");
    if (h && r == 0) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(h, "disableSubscriptionOverrides");
        if (d && !cJSON_IsBool(d))
            r = bad(err, errlen, "disableSubscriptionOverrides must be true or false");
        else if (d)
            *no_overrides = cJSON_IsTrue(d);
        if (r == 0)
            r = retry_policy(cJSON_GetObjectItemCaseSensitive(h, "defaultHealthyRetryPolicy"), &t,
                             err, errlen);
        if (r == 0)
            r = throttle_policy(cJSON_GetObjectItemCaseSensitive(h, "defaultThrottlePolicy"), &t,
                                err, errlen);
        if (r == 0)
            r = request_policy(cJSON_GetObjectItemCaseSensitive(h, "defaultRequestPolicy"), &t,
                               err, errlen);
    }
    if (r == 0)
        r = check(&t, err, errlen);
    if (r == 0)
        *p = t;
    cJSON_Delete(j);
    return r;
}

int push_policy_apply_sub(struct push_policy *p, const char *json, char *err, size_t errlen)
{
    cJSON *j = json_parse_strict(json, strlen(json));
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bad(err, errlen, "must be a JSON object");
    }
    struct push_policy t = *p;
    int r = retry_policy(cJSON_GetObjectItemCaseSensitive(j, "healthyRetryPolicy"), &t, err, errlen);
    if (r == 0)
        r = throttle_policy(cJSON_GetObjectItemCaseSensitive(j, "throttlePolicy"), &t, err, errlen);
    if (r == 0)
        r = request_policy(cJSON_GetObjectItemCaseSensitive(j, "requestPolicy"), &t, err, errlen);
    if (r == 0)
        r = check(&t, err, errlen);
    if (r == 0)
        *p = t;
    cJSON_Delete(j);
    return r;
}

/* ---- pacing ---- */

bool push_pace_take(struct push_pace *p, uint32_t per_second, uint64_t now_us)
{
    if (per_second == 0)
        return true;
    uint64_t interval = 1000000ull / per_second;
    if (p->tat_us > now_us)
        return false;
    /* Keep the schedule when the loop woke a little late (so the rate does
     * not drift under the target); after an idle period no burst is
     * earned: the next slot counts from now. */
    if (now_us - p->tat_us < interval)
        p->tat_us += interval;
    else
        p->tat_us = now_us + interval;
    return true;
}

uint64_t push_pace_wait_us(const struct push_pace *p, uint32_t per_second, uint64_t now_us)
{
    if (per_second == 0 || p->tat_us <= now_us)
        return 0;
    return p->tat_us - now_us;
}
