/* Queue attributes: defaults, validation of CreateQueue and
 * SetQueueAttributes maps, rendering for GetQueueAttributes, and the JSON
 * form kept in QUEUE records.
 *
 * Values arrive as strings (the canonical form of the API); numbers are
 * accepted too, for the native API. Ranges and names follow the SQS API
 * reference; an unknown or read-only name is InvalidAttributeName, a bad
 * value InvalidAttributeValue. A queue name ending in .fifo makes a FIFO
 * queue even without FifoQueue=true (SQS insists on both; being lenient
 * here costs nothing and makes `PUT /v1/queues/jobs.fifo` work). */
#include "broker/queue/engine.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETENTION_S 345600
#define DEFAULT_VISIBILITY_S 30

static const char *const all_names[] = {
    "Policy", "VisibilityTimeout", "MaximumMessageSize", "MessageRetentionPeriod",
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "CreatedTimestamp",
    "LastModifiedTimestamp", "QueueArn", "ApproximateNumberOfMessagesDelayed", "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "FifoQueue", "ContentBasedDeduplication",
    "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "DeduplicationScope", "FifoThroughputLimit",
    "RedriveAllowPolicy", "SqsManagedSseEnabled", NULL,
};

void bk_qattrs_defaults(struct bk_qattrs *a, const struct bk_engine_opts *o, bool fifo)
{
    memset(a, 0, sizeof *a);
    a->max_size = o->max_message_bytes ? o->max_message_bytes : 262144;
    a->retention_s = DEFAULT_RETENTION_S;
    a->visibility_s = DEFAULT_VISIBILITY_S;
    a->fifo = fifo;
}

void bk_qattrs_free(struct bk_qattrs *a)
{
    free(a->redrive_policy);
    free(a->dlq_name);
    free(a->redrive_allow);
    free(a->policy);
    free(a->kms_key);
    free(a->kms_reuse);
    free(a->sse);
    free(a->dedup_scope);
    free(a->throughput_limit);
    memset(a, 0, sizeof *a);
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

void bk_qattrs_copy(struct bk_qattrs *dst, const struct bk_qattrs *src)
{
    *dst = *src;
    dst->redrive_policy = dup_or_null(src->redrive_policy);
    dst->dlq_name = dup_or_null(src->dlq_name);
    dst->redrive_allow = dup_or_null(src->redrive_allow);
    dst->policy = dup_or_null(src->policy);
    dst->kms_key = dup_or_null(src->kms_key);
    dst->kms_reuse = dup_or_null(src->kms_reuse);
    dst->sse = dup_or_null(src->sse);
    dst->dedup_scope = dup_or_null(src->dedup_scope);
    dst->throughput_limit = dup_or_null(src->throughput_limit);
}

bool bk_qname_valid(const char *name, bool *fifo)
{
    size_t len = strlen(name);
    *fifo = len > 5 && strcmp(name + len - 5, ".fifo") == 0;
    size_t base = *fifo ? len - 5 : len;
    if (len == 0 || len > BK_MAX_QNAME || base == 0)
        return false;
    for (size_t i = 0; i < base; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

/* ---- parsing values ---- */

/* The value as text: strings as they are, numbers and booleans printed. */
static const char *value_text(const cJSON *v, char *tmp, size_t cap)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != (double)(int64_t)v->valuedouble)
            return NULL;
        snprintf(tmp, cap, "%" PRId64, (int64_t)v->valuedouble);
        return tmp;
    }
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    return NULL;
}

static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT32_MAX)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true"))
        *out = true;
    else if (!strcasecmp(s, "false"))
        *out = false;
    else
        return false;
    return true;
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = *s ? xstrdup(s) : NULL;
}

/* RedrivePolicy: {"deadLetterTargetArn": ARN, "maxReceiveCount": 1..1000};
 * "" removes it. */
static enum bk_err apply_redrive(struct bk_engine *e, struct bk_qattrs *a, const char *v,
                                  struct bk_error *err)
{
    if (!*v) {
        set_str(&a->redrive_policy, "");
        set_str(&a->dlq_name, "");
        a->max_receive = 0;
        return BK_OK;
    }
    cJSON *j = cJSON_Parse(v);
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(j, "deadLetterTargetArn");
    const cJSON *mrc = cJSON_GetObjectItemCaseSensitive(j, "maxReceiveCount");
    char tmp[32];
    const char *mt = mrc ? value_text(mrc, tmp, sizeof tmp) : NULL;
    uint32_t n;
    size_t pl = strlen(BK_ARN_PREFIX);
    bool fifo;
    if (!cJSON_IsObject(j) || !cJSON_IsString(arn) || !mt || !parse_u32(mt, 1, 1000, &n) ||
        strncmp(arn->valuestring, BK_ARN_PREFIX, pl) != 0 ||
        !bk_qname_valid(arn->valuestring + pl, &fifo)) {
        cJSON_Delete(j);
        return bk_fail(err, BK_E_ATTR_VALUE,
                        "Value %s for parameter RedrivePolicy is invalid. Reason: expected "
                        "{\"deadLetterTargetArn\":\"" BK_ARN_PREFIX "<queue>\",\"maxReceiveCount\":1..1000}.",
                        v);
    }
    if (fifo != a->fifo) {
        cJSON_Delete(j);
        return bk_fail(err, BK_E_ATTR_VALUE,
                        "Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter queue "
                        "must be same type of queue as the source.", v);
    }
    if (!e->replaying && !bk_engine_find_arn(e, arn->valuestring)) {
        cJSON_Delete(j);
        return bk_fail(err, BK_E_ATTR_VALUE,
                        "Value %s for parameter RedrivePolicy is invalid. Reason: Dead letter target "
                        "does not exist.", v);
    }
    cJSON *norm = cJSON_CreateObject();
    cJSON_AddStringToObject(norm, "deadLetterTargetArn", arn->valuestring);
    cJSON_AddNumberToObject(norm, "maxReceiveCount", n);
    char *text = cJSON_PrintUnformatted(norm);
    cJSON_Delete(norm);
    free(a->redrive_policy);
    a->redrive_policy = text;
    set_str(&a->dlq_name, arn->valuestring + pl);
    a->max_receive = n;
    cJSON_Delete(j);
    return BK_OK;
}

/* RedriveAllowPolicy: {"redrivePermission": "allowAll"|"denyAll"|"byQueue",
 * "sourceQueueArns": [up to 10 ARNs, byQueue only]}. */
static enum bk_err apply_redrive_allow(struct bk_qattrs *a, const char *v, struct bk_error *err)
{
    if (!*v) {
        set_str(&a->redrive_allow, "");
        return BK_OK;
    }
    cJSON *j = cJSON_Parse(v);
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(j, "redrivePermission");
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(j, "sourceQueueArns");
    bool ok = cJSON_IsObject(j) && cJSON_IsString(perm);
    if (ok) {
        const char *p = perm->valuestring;
        if (!strcmp(p, "byQueue")) {
            ok = cJSON_IsArray(srcs) && cJSON_GetArraySize(srcs) >= 1 && cJSON_GetArraySize(srcs) <= 10;
            const cJSON *s;
            cJSON_ArrayForEach(s, srcs) if (!cJSON_IsString(s)) ok = false;
        } else {
            ok = (!strcmp(p, "allowAll") || !strcmp(p, "denyAll")) && !srcs;
        }
    }
    cJSON_Delete(j);
    if (!ok)
        return bk_fail(err, BK_E_ATTR_VALUE,
                        "Value %s for parameter RedriveAllowPolicy is invalid.", v);
    set_str(&a->redrive_allow, v);
    return BK_OK;
}

static enum bk_err bad_value(struct bk_error *err, const char *name, const char *v)
{
    return bk_fail(err, BK_E_ATTR_VALUE, "Invalid value for the parameter %s: %s",
                    name, v ? v : "(not a string)");
}

static enum bk_err apply_one(struct bk_engine *e, struct bk_qattrs *a, const char *name,
                              const char *v, bool creating, struct bk_error *err)
{
    uint32_t max_size = e->o.max_message_bytes ? e->o.max_message_bytes : 262144;
    bool b;
    if (!strcmp(name, "DelaySeconds")) {
        if (!parse_u32(v, 0, BK_MAX_DELAY_S, &a->delay_s))
            return bad_value(err, name, v);
    } else if (!strcmp(name, "MaximumMessageSize")) {
        if (!parse_u32(v, BK_MIN_MESSAGE_BYTES, max_size, &a->max_size))
            return bad_value(err, name, v);
    } else if (!strcmp(name, "MessageRetentionPeriod")) {
        if (!parse_u32(v, 60, 1209600, &a->retention_s))
            return bad_value(err, name, v);
    } else if (!strcmp(name, "ReceiveMessageWaitTimeSeconds")) {
        if (!parse_u32(v, 0, BK_MAX_WAIT_S, &a->wait_s))
            return bad_value(err, name, v);
    } else if (!strcmp(name, "VisibilityTimeout")) {
        if (!parse_u32(v, 0, BK_MAX_VISIBILITY_S, &a->visibility_s))
            return bad_value(err, name, v);
    } else if (!strcmp(name, "RedrivePolicy")) {
        return apply_redrive(e, a, v, err);
    } else if (!strcmp(name, "RedriveAllowPolicy")) {
        return apply_redrive_allow(a, v, err);
    } else if (!strcmp(name, "Policy")) {
        if (*v) {
            cJSON *j = cJSON_Parse(v);
            bool ok = cJSON_IsObject(j);
            cJSON_Delete(j);
            if (!ok)
                return bad_value(err, name, v);
        }
        set_str(&a->policy, v);
    } else if (!strcmp(name, "KmsMasterKeyId")) {
        set_str(&a->kms_key, v);
    } else if (!strcmp(name, "KmsDataKeyReusePeriodSeconds")) {
        uint32_t n;
        if (!parse_u32(v, 60, 86400, &n))
            return bad_value(err, name, v);
        set_str(&a->kms_reuse, v);
    } else if (!strcmp(name, "SqsManagedSseEnabled")) {
        if (!parse_bool(v, &b))
            return bad_value(err, name, v);
        set_str(&a->sse, b ? "true" : "false");
    } else if (!strcmp(name, "FifoQueue")) {
        if (!parse_bool(v, &b))
            return bad_value(err, name, v);
        if (!creating && b != a->fifo)
            return bk_fail(err, BK_E_ATTR_NAME,
                            "Unknown Attribute FifoQueue: it can only be set when the queue is created.");
        if (b != a->fifo)
            return bk_fail(err, BK_E_INVALID,
                            "The name of a FIFO queue must end with the .fifo suffix, and only a "
                            "FIFO queue's name may.");
    } else if (!strcmp(name, "ContentBasedDeduplication") || !strcmp(name, "DeduplicationScope") ||
               !strcmp(name, "FifoThroughputLimit")) {
        if (!a->fifo)
            return bk_fail(err, BK_E_ATTR_NAME, "Unknown Attribute %s.", name);
        if (name[0] == 'C') {
            if (!parse_bool(v, &a->content_dedup))
                return bad_value(err, name, v);
        } else if (name[0] == 'D') {
            if (strcmp(v, "messageGroup") && strcmp(v, "queue"))
                return bad_value(err, name, v);
            set_str(&a->dedup_scope, v);
        } else {
            if (strcmp(v, "perQueue") && strcmp(v, "perMessageGroupId"))
                return bad_value(err, name, v);
            set_str(&a->throughput_limit, v);
        }
    } else {
        return bk_fail(err, BK_E_ATTR_NAME, "Unknown Attribute %s.", name);
    }
    return BK_OK;
}

enum bk_err bk_qattrs_apply(struct bk_engine *e, struct bk_qattrs *a, const cJSON *attrs,
                             const char *qname, bool creating, struct bk_error *err)
{
    FG_UNUSED(qname);
    if (!attrs)
        return BK_OK;
    if (!cJSON_IsObject(attrs))
        return bk_fail(err, BK_E_INVALID, "Attributes must be a map.");
    const cJSON *it;
    cJSON_ArrayForEach(it, attrs)
    {
        char tmp[32];
        const char *v = value_text(it, tmp, sizeof tmp);
        if (!v)
            return bad_value(err, it->string, NULL);
        enum bk_err rc = apply_one(e, a, it->string, v, creating, err);
        if (rc != BK_OK)
            return rc;
    }
    return BK_OK;
}

cJSON *bk_qattrs_to_json(const struct bk_qattrs *a)
{
    cJSON *o = cJSON_CreateObject();
    char n[16];
#define ADD_U32(name, v)                      \
    do {                                      \
        snprintf(n, sizeof n, "%u", (v));     \
        cJSON_AddStringToObject(o, name, n);  \
    } while (0)
    ADD_U32("DelaySeconds", a->delay_s);
    ADD_U32("MaximumMessageSize", a->max_size);
    ADD_U32("MessageRetentionPeriod", a->retention_s);
    ADD_U32("ReceiveMessageWaitTimeSeconds", a->wait_s);
    ADD_U32("VisibilityTimeout", a->visibility_s);
#undef ADD_U32
    if (a->fifo) {
        cJSON_AddStringToObject(o, "FifoQueue", "true");
        cJSON_AddStringToObject(o, "ContentBasedDeduplication", a->content_dedup ? "true" : "false");
    }
    const struct {
        const char *name, *v;
    } strs[] = {
        {"RedrivePolicy", a->redrive_policy}, {"RedriveAllowPolicy", a->redrive_allow},
        {"Policy", a->policy}, {"KmsMasterKeyId", a->kms_key},
        {"KmsDataKeyReusePeriodSeconds", a->kms_reuse}, {"SqsManagedSseEnabled", a->sse},
        /* A FIFO queue shows its defaults, as SQS does: deduplication per
         * queue, throughput limit per queue. */
        {"DeduplicationScope", a->dedup_scope ? a->dedup_scope : a->fifo ? "queue" : NULL},
        {"FifoThroughputLimit", a->throughput_limit ? a->throughput_limit : a->fifo ? "perQueue" : NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
        if (strs[i].v)
            cJSON_AddStringToObject(o, strs[i].name, strs[i].v);
    return o;
}

bool bk_qattrs_differ(const struct bk_qattrs *a, const cJSON *attrs)
{
    if (!cJSON_IsObject(attrs))
        return false;
    cJSON *cur = bk_qattrs_to_json(a);
    bool differ = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, attrs)
    {
        char tmp[32];
        const char *v = value_text(it, tmp, sizeof tmp);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cur, it->string);
        const char *cv = cJSON_IsString(c) ? c->valuestring : "";
        if (!strcmp(it->string, "FifoQueue") || !strcmp(it->string, "ContentBasedDeduplication") ||
            !strcmp(it->string, "SqsManagedSseEnabled")) {
            bool x, y;
            if (v && parse_bool(v, &x) && parse_bool(*cv ? cv : "false", &y) && x == y)
                continue;
        } else if (!strcmp(it->string, "RedrivePolicy") && v && *v) {
            /* Compare parsed, since spacing and number form may differ. */
            cJSON *x = cJSON_Parse(v), *y = cJSON_Parse(cv);
            const cJSON *xa = cJSON_GetObjectItemCaseSensitive(x, "deadLetterTargetArn");
            const cJSON *ya = cJSON_GetObjectItemCaseSensitive(y, "deadLetterTargetArn");
            char t1[32], t2[32];
            const cJSON *xm = cJSON_GetObjectItemCaseSensitive(x, "maxReceiveCount");
            const cJSON *ym = cJSON_GetObjectItemCaseSensitive(y, "maxReceiveCount");
            const char *xs = xm ? value_text(xm, t1, sizeof t1) : NULL;
            const char *ys = ym ? value_text(ym, t2, sizeof t2) : NULL;
            bool same = cJSON_IsString(xa) && cJSON_IsString(ya) && xs && ys &&
                        !strcmp(xa->valuestring, ya->valuestring) && !strcmp(xs, ys);
            cJSON_Delete(x);
            cJSON_Delete(y);
            if (same)
                continue;
        } else if (v && !strcmp(v, cv)) {
            continue;
        }
        differ = true;
        break;
    }
    cJSON_Delete(cur);
    return differ;
}

static void add_u64(cJSON *obj, const char *name, uint64_t v)
{
    char n[24];
    snprintf(n, sizeof n, "%" PRIu64, v);
    cJSON_AddStringToObject(obj, name, n);
}

/* Adds one attribute of q to obj; false for an unknown name. */
static bool render_one(const struct bk_queue *q, const cJSON *settable, const char *name, cJSON *obj)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, name))
        return true;
    if (!strcmp(name, "ApproximateNumberOfMessages"))
        add_u64(obj, name, q->n_ready);
    else if (!strcmp(name, "ApproximateNumberOfMessagesNotVisible"))
        add_u64(obj, name, q->n_inflight);
    else if (!strcmp(name, "ApproximateNumberOfMessagesDelayed"))
        add_u64(obj, name, q->n_delayed);
    else if (!strcmp(name, "CreatedTimestamp"))
        add_u64(obj, name, q->created_ms / 1000);
    else if (!strcmp(name, "LastModifiedTimestamp"))
        add_u64(obj, name, q->modified_ms / 1000);
    else if (!strcmp(name, "QueueArn")) {
        char arn[160];
        snprintf(arn, sizeof arn, "%s%s", BK_ARN_PREFIX, q->name);
        cJSON_AddStringToObject(obj, name, arn);
    } else {
        bool known = false;
        for (size_t i = 0; all_names[i]; i++)
            if (!strcmp(all_names[i], name))
                known = true;
        if (!known)
            return false;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(settable, name);
        if (cJSON_IsString(v))
            cJSON_AddStringToObject(obj, name, v->valuestring);
    }
    return true;
}

enum bk_err bk_qattrs_render(const struct bk_queue *q, const cJSON *names, cJSON *obj,
                              struct bk_error *err)
{
    if (!names)
        return BK_OK;
    cJSON *settable = bk_qattrs_to_json(&q->a);
    const cJSON *it;
    bool all = false;
    if (cJSON_IsString(names)) {
        all = !strcmp(names->valuestring, "All");
        if (!all && !render_one(q, settable, names->valuestring, obj))
            goto unknown;
    } else {
        cJSON_ArrayForEach(it, names)
        {
            if (!cJSON_IsString(it))
                continue;
            if (!strcmp(it->valuestring, "All"))
                all = true;
            else if (!render_one(q, settable, it->valuestring, obj)) {
                names = it;
                goto unknown;
            }
        }
    }
    if (all)
        for (size_t i = 0; all_names[i]; i++)
            render_one(q, settable, all_names[i], obj);
    cJSON_Delete(settable);
    return BK_OK;
unknown:
    cJSON_Delete(settable);
    return bk_fail(err, BK_E_ATTR_NAME, "Unknown Attribute %s.",
                    cJSON_IsString(names) ? names->valuestring : "?");
}
