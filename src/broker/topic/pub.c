/* Publish and PublishBatch: validation as SNS does it, FIFO sequence
 * numbers and deduplication, filter policies, and the fan-out itself.
 *
 * Fan-out: for each confirmed subscription whose filter policy accepts the
 * message, one SendMessage through the queue engine: to the subscribed
 * queue (sqs), or to the subscription's push queue (http), whose scheduler
 * POSTs it later. All of a publish's sends happen here, in the request's
 * loop iteration, so they share one group commit and the publish is
 * answered once all of them are durable. The envelope is signed once per
 * distinct message text (SNS signs fields every subscription shares), and
 * only when some delivery needs it. A delivery the queue refuses (the
 * queue was deleted, the message is too large for it) goes to the
 * subscription's dead-letter queue if it has one, and is counted as
 * dropped otherwise, as SNS drops what it cannot deliver. */
#include "broker/topic/topic.h"

#include "broker/sns/sns_sign.h"
#include "core/json.h"
#include "core/log.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pstr(const cJSON *p, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Appends s URL-encoded (RFC 3986 unreserved characters kept). */
static void url_encode(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* ---- attributes ---- */

static bool attr_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 256 || n[0] == '.' || n[len - 1] == '.' || strstr(n, "..") ||
        strncasecmp(n, "AWS.", 4) == 0 || strncasecmp(n, "Amazon.", 7) == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool type_is(const char *dt, const char *base)
{
    size_t n = strlen(base);
    return strncmp(dt, base, n) == 0 && (dt[n] == '\0' || (dt[n] == '.' && dt[n + 1]));
}

enum sns_err tp__check_attrs(const cJSON *attrs, size_t *bytes, struct sns_error *err)
{
    int n = attrs ? cJSON_GetArraySize(attrs) : 0;
    if (n > TP_MAX_ATTRS)
        return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                        "Number of message attributes [%d] exceeds the allowed maximum [%d].", n,
                        TP_MAX_ATTRS);
    for (const cJSON *a = attrs ? attrs->child : NULL; a; a = a->next) {
        const char *name = a->string;
        if (!attr_name_ok(name))
            return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                            "Message attribute name '%.256s' is invalid: names are 1 to 256 of "
                            "A-Z a-z 0-9 _ - . (no leading, trailing or doubled '.', no AWS. or "
                            "Amazon. prefix).", name);
        const char *dt = pstr(a, "DataType");
        const char *sv = pstr(a, "StringValue");
        const char *bv = pstr(a, "BinaryValue");
        if (!dt || strlen(dt) > 256 ||
            !(type_is(dt, "String") || type_is(dt, "Number") || type_is(dt, "Binary")))
            return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                            "The message attribute '%.256s' has an invalid message attribute "
                            "type, the set of supported type prefixes is Binary, Number, and "
                            "String.", name);
        bool binary = type_is(dt, "Binary");
        const char *v = binary ? bv : sv;
        if (!v || !*v)
            return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                            "The message attribute '%.256s' must contain non-empty message "
                            "attribute value for message attribute type '%.256s'.", name, dt);
        if (type_is(dt, "Number")) {
            char *end;
            double d = strtod(v, &end);
            if (*end || !isfinite(d) || strpbrk(v, "xXpPnN"))
                return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                                "Could not cast message attribute '%.256s' value to number.", name);
        }
        if (strcmp(dt, "String.Array") == 0) {
            cJSON *arr = json_parse_strict(v, strlen(v));
            bool ok = cJSON_IsArray(arr);
            for (const cJSON *e = ok ? arr->child : NULL; e && ok; e = e->next)
                ok = !cJSON_IsObject(e) && !cJSON_IsArray(e);
            cJSON_Delete(arr);
            if (!ok)
                return sns_fail(err, SNS_E_INVALID_PARAMETER,
                                "Invalid parameter: MessageAttributes Reason: the value of "
                                "String.Array attribute '%.256s' must be a JSON array of strings, "
                                "numbers, booleans or nulls.", name);
        }
        if (!binary && !sns_utf8_valid(v, strlen(v)))
            return sns_fail(err, SNS_E_INVALID_PARAMETER_VALUE,
                            "The message attribute '%.256s' holds invalid UTF-8.", name);
        *bytes += strlen(name) + strlen(dt) + strlen(v);
    }
    return SNS_OK;
}

/* ---- one message ---- */

struct pub {
    struct tp_topic *tp;
    const char *message;        /* the Message parameter */
    cJSON *structure;           /* MessageStructure json: the parsed message */
    const char *subject;
    const cJSON *attrs;
    const char *group, *dedup;
    char dedup_buf[72];
    char message_id[40];
    char seq[24];
    uint64_t ts;
    /* signatures per message text (default, sqs, http) */
    const char *signed_text[3];
    char *sig[3];
};

static void pub_free(struct pub *m)
{
    cJSON_Delete(m->structure);
    for (int i = 0; i < 3; i++)
        free(m->sig[i]);
}

static bool subject_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 100)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static bool group_ok(const char *g)
{
    size_t n = strlen(g);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)g[i] < 0x21 || (unsigned char)g[i] > 0x7e)
            return false;
    return true;
}

/* Checks one message (a Publish, or one entry of a batch). */
static enum sns_err pub_check(struct pub *m, const cJSON *p, struct sns_error *err)
{
    struct tp_topic *tp = m->tp;
    m->message = pstr(p, "Message");
    m->subject = pstr(p, "Subject");
    m->attrs = cJSON_GetObjectItemCaseSensitive(p, "MessageAttributes");
    m->group = pstr(p, "MessageGroupId");
    m->dedup = pstr(p, "MessageDeduplicationId");
    if (!m->message || !*m->message)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Empty message");
    size_t mlen = strlen(m->message);
    if (!sns_utf8_valid(m->message, mlen))
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: Message Reason: the message is not valid UTF-8");
    if (m->subject && !subject_ok(m->subject))
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Subject");
    const char *structure = pstr(p, "MessageStructure");
    if (structure) {
        if (strcmp(structure, "json") != 0)
            return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: MessageStructure");
        m->structure = json_parse_strict(m->message, mlen);
        if (!cJSON_IsObject(m->structure))
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: Message Structure - JSON message body failed to parse");
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m->structure, "default")))
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: Message Structure - No default entry in JSON message body");
    }
    size_t bytes = mlen;
    enum sns_err rc = tp__check_attrs(m->attrs, &bytes, err);
    if (rc != SNS_OK)
        return rc;
    if (bytes > TP_MAX_MESSAGE)
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: Message too long");
    if (!tp->fifo) {
        if (m->group)
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: MessageGroupId Reason: The request includes "
                            "MessageGroupId parameter that is not valid for this topic type");
        if (m->dedup)
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: MessageDeduplicationId Reason: The request includes "
                            "MessageDeduplicationId parameter that is not valid for this topic type");
        return SNS_OK;
    }
    if (!m->group)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics");
    if (!group_ok(m->group))
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: MessageGroupId");
    if (m->dedup && !group_ok(m->dedup))
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: MessageDeduplicationId");
    if (!m->dedup) {
        if (!tp->content_dedup)
            return sns_fail(err, SNS_E_INVALID_PARAMETER,
                            "Invalid parameter: The topic should either have "
                            "ContentBasedDeduplication enabled or MessageDeduplicationId provided "
                            "explicitly");
        unsigned char md[32];
        EVP_Digest(m->message, mlen, md, NULL, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
            snprintf(m->dedup_buf + 2 * i, 3, "%02x", md[i]);
        m->dedup = m->dedup_buf;
    }
    return SNS_OK;
}

/* The message text for a protocol (MessageStructure json picks its own). */
static const char *text_for(const struct pub *m, uint8_t proto, int *slot)
{
    *slot = 0;
    if (!m->structure)
        return m->message;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->structure, proto == TP_SQS ? "sqs" : "http");
    if (cJSON_IsString(v)) {
        *slot = proto == TP_SQS ? 1 : 2;
        return v->valuestring;
    }
    return cJSON_GetObjectItemCaseSensitive(m->structure, "default")->valuestring;
}

static const char *sig_version(const struct tp_topic *tp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tp->attrs, "SignatureVersion");
    return cJSON_IsString(v) ? v->valuestring : "1";
}

/* The JSON envelope of m for subscription s, into out. */
static void envelope(struct tp_engine *t, struct tp_ctx *ctx, struct pub *m, struct tp_sub *s,
                     const char *text, int slot, struct buf *out)
{
    struct buf unsub, cert;
    buf_init(&unsub);
    buf_init(&cert);
    const char *base = ctx->base_url ? ctx->base_url : "http://localhost";
    buf_printf(&unsub, "%s/?Action=Unsubscribe&SubscriptionArn=", base);
    url_encode(&unsub, s->arn);
    buf_append(&unsub, "", 1);
    struct sns_note n = {
        .type = "Notification", .message_id = m->message_id, .topic_arn = m->tp->arn,
        .subject = m->subject, .message = text, .message_len = strlen(text), .timestamp_ms = m->ts,
        .unsubscribe_url = buf_rptr(&unsub), .attrs = m->attrs,
        .sequence_number = m->tp->fifo ? m->seq : NULL,
    };
    if (t->signer && !m->tp->fifo) {
        if (!m->sig[slot]) {
            struct buf sts, sig;
            buf_init(&sts);
            buf_init(&sig);
            sns_string_to_sign(&n, &sts);
            if (sns_sign(t->signer, atoi(sig_version(m->tp)), buf_rptr(&sts), buf_len(&sts), &sig) == 0) {
                buf_append(&sig, "", 1);
                m->sig[slot] = xstrdup(buf_rptr(&sig));
            }
            buf_free(&sts);
            buf_free(&sig);
        }
        buf_printf(&cert, "%s/%s", base, sns_signer_cert_name(t->signer));
        buf_append(&cert, "", 1);
        n.signature_version = sig_version(m->tp);
        n.signature = m->sig[slot] ? m->sig[slot] : "";
        n.signing_cert_url = buf_rptr(&cert);
    }
    sns_envelope(&n, out);
    buf_free(&unsub);
    buf_free(&cert);
}

static cJSON *str_attr(const char *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "DataType", "String");
    cJSON_AddStringToObject(o, "StringValue", v);
    return o;
}

/* Queues an HTTP POST body for s's push scheduler. */
static enum bk_err push_enqueue(struct tp_engine *t, struct tp_ctx *ctx, struct tp_sub *s,
                                const char *type, const char *message_id, const char *body,
                                size_t len, bool raw, struct bk_error *err)
{
    cJSON *a = cJSON_CreateObject();
    char ts[32];
    snprintf(ts, sizeof ts, "%llu", (unsigned long long)ctx->now);
    cJSON_AddItemToObject(a, "t", str_attr(type));
    cJSON_AddItemToObject(a, "m", str_attr(message_id));
    cJSON_AddItemToObject(a, "p", str_attr(ts));
    if (raw)
        cJSON_AddItemToObject(a, "r", str_attr("1"));
    enum bk_err rc = tp__queue_send(t, ctx, s->push_queue, body, len, a, NULL, NULL, err);
    cJSON_Delete(a);
    return rc;
}

static void deliver(struct tp_engine *t, struct tp_ctx *ctx, struct pub *m, struct tp_sub *s,
                    struct buf *scratch)
{
    int slot;
    const char *text = text_for(m, s->proto, &slot);
    const char *body = text;
    size_t len = strlen(text);
    if (!s->raw) {
        buf_reset(scratch);
        envelope(t, ctx, m, s, text, slot, scratch);
        body = buf_rptr(scratch);
        len = buf_len(scratch);
    }
    struct bk_error err;
    enum bk_err rc;
    if (s->proto == TP_SQS) {
        rc = tp__queue_send(t, ctx, s->endpoint, body, len, s->raw ? m->attrs : NULL,
                            m->tp->fifo ? m->group : NULL, m->tp->fifo ? m->dedup : NULL, &err);
        if (rc == BK_OK) {
            t->st.deliveries_sqs++;
            s->st.delivered++;
        }
    } else {
        rc = push_enqueue(t, ctx, s, "Notification", m->message_id, body, len, s->raw, &err);
        if (rc == BK_OK)
            tp_push_kick(t);
    }
    if (rc == BK_OK) {
        m->tp->st.deliveries++;
        return;
    }
    m->tp->st.delivery_errors++;
    s->st.failed++;
    if (s->dlq_arn && tp__queue_send(t, ctx, s->dlq_arn, body, len, s->raw ? m->attrs : NULL, NULL,
                                     NULL, &err) == BK_OK) {
        s->st.dead_lettered++;
        t->st.dead_lettered++;
        return;
    }
    t->st.dropped++;
    log_at(LOG_WARN, "sns: delivery to %s failed and was dropped: %s", s->endpoint, err.message);
}

/* FIFO: a publish seen in the last five minutes answers as it did. */
static struct tp_dedup *dedup_find(struct tp_topic *tp, const char *id, uint64_t now)
{
    struct tp_dedup **pp = &tp->dedup;
    while (*pp) {
        struct tp_dedup *d = *pp;
        if (d->at_ms + TP_DEDUP_WINDOW_MS <= now) {
            /* Entries are newest first: this one and all after it expired. */
            *pp = NULL;
            while (d) {
                struct tp_dedup *n = d->next;
                free(d->id);
                free(d);
                d = n;
            }
            return NULL;
        }
        if (strcmp(d->id, id) == 0)
            return d;
        pp = &d->next;
    }
    return NULL;
}

/* Publishes a checked message: returns the result object. */
static cJSON *pub_run(struct tp_engine *t, struct tp_ctx *ctx, struct pub *m)
{
    struct tp_topic *tp = m->tp;
    m->ts = ctx->now;
    if (tp->fifo) {
        struct tp_dedup *d = dedup_find(tp, m->dedup, ctx->now);
        if (d) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "MessageId", d->message_id);
            cJSON_AddStringToObject(r, "SequenceNumber", d->seq);
            return r;
        }
        /* Increasing across restarts as long as the clock does not jump
         * back by more than the numbers used since. */
        uint64_t seq = ctx->now << 16;
        tp->last_seq = seq > tp->last_seq ? seq : tp->last_seq + 1;
        snprintf(m->seq, sizeof m->seq, "%020llu", (unsigned long long)tp->last_seq);
    }
    tp__uuid(m->message_id);
    tp->st.published++;
    t->st.publishes++;
    struct filter_msg fm;
    filter_msg_init(&fm, m->attrs, m->message, strlen(m->message));
    struct buf scratch;
    buf_init(&scratch);
    for (struct tp_sub *s = tp->subs; s; s = s->next) {
        if (!s->confirmed)
            continue;
        if (!filter_match(s->filter, &fm)) {
            s->st.filtered++;
            tp->st.filtered++;
            t->st.filtered++;
            continue;
        }
        s->st.matched++;
        deliver(t, ctx, m, s, &scratch);
    }
    buf_free(&scratch);
    filter_msg_close(&fm);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "MessageId", m->message_id);
    if (tp->fifo) {
        cJSON_AddStringToObject(r, "SequenceNumber", m->seq);
        struct tp_dedup *d = xcalloc(1, sizeof *d);
        d->id = xstrdup(m->dedup);
        snprintf(d->message_id, sizeof d->message_id, "%s", m->message_id);
        snprintf(d->seq, sizeof d->seq, "%s", m->seq);
        d->at_ms = ctx->now;
        d->next = tp->dedup;
        tp->dedup = d;
    }
    return r;
}

static struct tp_topic *publish_topic(struct tp_engine *t, const cJSON *p, struct sns_error *err)
{
    if (pstr(p, "PhoneNumber"))
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: PhoneNumber Reason: SMS is not supported by this broker"),
               NULL;
    const char *arn = pstr(p, "TopicArn");
    if (!arn)
        arn = pstr(p, "TargetArn");
    if (!arn)
        return sns_fail(err, SNS_E_INVALID_PARAMETER,
                        "Invalid parameter: TopicArn or TargetArn Reason: no value for required "
                        "parameter"),
               NULL;
    static const char prefix[] = TP_ARN_PREFIX;
    if (strncmp(arn, prefix, sizeof prefix - 1) != 0 || strchr(arn + sizeof prefix - 1, ':'))
        return sns_fail(err, SNS_E_INVALID_PARAMETER, "Invalid parameter: TopicArn"), NULL;
    struct tp_topic *tp = tp_find_topic_arn(t, arn);
    if (!tp)
        sns_fail(err, SNS_E_NOT_FOUND, "Topic does not exist");
    return tp;
}

enum sns_err tp__publish(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p, cJSON **res,
                         struct sns_error *err)
{
    struct pub m = {0};
    m.tp = publish_topic(t, p, err);
    if (!m.tp) {
        t->st.publish_errors++;
        return err->code;
    }
    enum sns_err rc = pub_check(&m, p, err);
    if (rc == SNS_OK)
        *res = pub_run(t, ctx, &m);
    else
        t->st.publish_errors++;
    pub_free(&m);
    return rc;
}

static bool batch_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 80)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

enum sns_err tp__publish_batch(struct tp_engine *t, struct tp_ctx *ctx, const cJSON *p,
                               cJSON **res, struct sns_error *err)
{
    struct tp_topic *tp = publish_topic(t, p, err);
    if (!tp)
        return err->code;
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(p, "PublishBatchRequestEntries");
    int n = cJSON_IsArray(entries) ? cJSON_GetArraySize(entries) : 0;
    if (n == 0)
        return sns_fail(err, SNS_E_EMPTY_BATCH, "The batch request doesn't contain any entries");
    if (n > 10)
        return sns_fail(err, SNS_E_TOO_MANY_ENTRIES,
                        "The batch request contains more entries than permissible");
    size_t total = 0;
    for (const cJSON *e = entries->child; e; e = e->next) {
        const char *id = pstr(e, "Id");
        if (!id || !batch_id_ok(id))
            return sns_fail(err, SNS_E_INVALID_BATCH_ENTRY_ID,
                            "The Id of a batch entry in a batch request doesn't abide by the "
                            "specification");
        for (const cJSON *o = entries->child; o != e; o = o->next)
            if (strcmp(pstr(o, "Id"), id) == 0)
                return sns_fail(err, SNS_E_BATCH_IDS_NOT_DISTINCT,
                                "Two or more batch entries in the request have the same Id");
        const char *msg = pstr(e, "Message");
        total += msg ? strlen(msg) : 0;
        size_t ab = 0;
        struct sns_error ignore;
        tp__check_attrs(cJSON_GetObjectItemCaseSensitive(e, "MessageAttributes"), &ab, &ignore);
        total += ab;
    }
    if (total > TP_MAX_MESSAGE)
        return sns_fail(err, SNS_E_BATCH_TOO_LONG,
                        "The length of all the messages put together is more than the limit");
    *res = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(*res, "Successful");
    cJSON *failed = cJSON_AddArrayToObject(*res, "Failed");
    for (const cJSON *e = entries->child; e; e = e->next) {
        struct pub m = {0};
        m.tp = tp;
        struct sns_error eerr;
        if (pub_check(&m, e, &eerr) == SNS_OK) {
            cJSON *r = pub_run(t, ctx, &m);
            cJSON_AddStringToObject(r, "Id", pstr(e, "Id"));
            cJSON_AddItemToArray(ok, r);
        } else {
            t->st.publish_errors++;
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "Id", pstr(e, "Id"));
            cJSON_AddStringToObject(f, "Code", sns_err_code(eerr.code));
            cJSON_AddStringToObject(f, "Message", eerr.message);
            cJSON_AddBoolToObject(f, "SenderFault", sns_err_sender(eerr.code));
            cJSON_AddItemToArray(failed, f);
        }
        pub_free(&m);
    }
    return SNS_OK;
}

/* ---- confirmations ---- */

enum sns_err tp__send_confirmation(struct tp_engine *t, struct tp_ctx *ctx, struct tp_sub *s,
                                   struct sns_error *err)
{
    const char *base = ctx->base_url ? ctx->base_url : "http://localhost";
    struct buf msg, url, cert, body;
    buf_init(&msg);
    buf_init(&url);
    buf_init(&cert);
    buf_init(&body);
    sns_confirm_text("SubscriptionConfirmation", s->t->arn, &msg);
    buf_append(&msg, "", 1);
    buf_printf(&url, "%s/?Action=ConfirmSubscription&TopicArn=", base);
    url_encode(&url, s->t->arn);
    buf_append_str(&url, "&Token=");
    url_encode(&url, s->token);
    buf_append(&url, "", 1);
    char mid[40];
    tp__uuid(mid);
    struct sns_note n = {
        .type = "SubscriptionConfirmation", .message_id = mid, .topic_arn = s->t->arn,
        .message = buf_rptr(&msg), .message_len = strlen(buf_rptr(&msg)), .timestamp_ms = ctx->now,
        .token = s->token, .subscribe_url = buf_rptr(&url),
    };
    char *sig = NULL;
    if (t->signer) {
        struct buf sts, sb;
        buf_init(&sts);
        buf_init(&sb);
        sns_string_to_sign(&n, &sts);
        const char *ver = sig_version(s->t);
        if (sns_sign(t->signer, atoi(ver), buf_rptr(&sts), buf_len(&sts), &sb) == 0) {
            buf_append(&sb, "", 1);
            sig = xstrdup(buf_rptr(&sb));
        }
        buf_free(&sts);
        buf_free(&sb);
        buf_printf(&cert, "%s/%s", base, sns_signer_cert_name(t->signer));
        buf_append(&cert, "", 1);
        n.signature_version = ver;
        n.signature = sig ? sig : "";
        n.signing_cert_url = buf_rptr(&cert);
    }
    sns_envelope(&n, &body);
    struct bk_error qe;
    enum bk_err rc = push_enqueue(t, ctx, s, "SubscriptionConfirmation", mid, buf_rptr(&body),
                                  buf_len(&body), false, &qe);
    free(sig);
    buf_free(&msg);
    buf_free(&url);
    buf_free(&cert);
    buf_free(&body);
    if (rc != BK_OK)
        return sns_fail(err, SNS_E_INTERNAL, "Cannot queue the subscription confirmation: %s",
                        qe.message);
    tp_push_kick(t);
    return SNS_OK;
}
