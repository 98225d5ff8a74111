/* Rate-limit response header fields: Retry-After (RFC 9110 10.2.3) and
 * RateLimit-Policy / RateLimit as defined by
 * draft-ietf-httpapi-ratelimit-headers-11, serialized as Structured Field
 * Lists (RFC 9651): each member a String naming the policy, parameters
 * q (quota) and w (window, seconds) for the policy, r (available quota)
 * and t (effective window, seconds) for the current limit. Members are
 * joined by ", " as the Structured Fields serializer does. Numbers go
 * through buf_append_u64(): this runs on the request path, where the
 * gateway avoids printf. */
#include "gateway/limit/ratelimit.h"

#include "core/buf.h"

static uint64_t secs_ceil(uint64_t us) { return us / 1000000 + (us % 1000000 != 0); }

/* sf-string: DQUOTE, printable ASCII with '"' and '\' escaped, DQUOTE.
 * rl_rule_prepare() admits only printable names; anything else is left
 * out here rather than emitting an invalid field. */
static void put_sf_string(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        char c = *s;
        if (c < 0x20 || c > 0x7e)
            continue;
        if (c == '"' || c == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, &c, 1);
    }
    buf_append(b, "\"", 1);
}

static const char *rule_name(const struct rl_rule *r) { return r->name ? r->name : "default"; }

void rl_format_policy(struct buf *b, const struct rl_rule *const *rules, size_t n)
{
    buf_append_str(b, "RateLimit-Policy: ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append(b, ", ", 2);
        put_sf_string(b, rule_name(rules[i]));
        buf_append(b, ";q=", 3);
        buf_append_u64(b, rules[i]->limit);
        buf_append(b, ";w=", 3);
        buf_append_u64(b, FG_MAX(secs_ceil(rules[i]->window_us), 1));
    }
    buf_append(b, "\r\n", 2);
}

void rl_format_ratelimit(struct buf *b, const struct rl_rule *r, const struct rl_decision *d)
{
    buf_append_str(b, "RateLimit: ");
    put_sf_string(b, rule_name(r));
    buf_append(b, ";r=", 3);
    buf_append_u64(b, d->remaining);
    buf_append(b, ";t=", 3);
    buf_append_u64(b, secs_ceil(d->reset_us));
    buf_append(b, "\r\n", 2);
}

void rl_format_retry_after(struct buf *b, const struct rl_decision *d)
{
    buf_append_str(b, "Retry-After: ");
    buf_append_u64(b, FG_MAX(secs_ceil(d->retry_after_us), 1));
    buf_append(b, "\r\n", 2);
}

void rl_headers_append(struct buf *b, const struct rl_rule *const *rules,
                       const struct rl_decision *ds, size_t n)
{
    struct rl_decision all;
    size_t worst = rl_combine(ds, n, &all);
    rl_format_policy(b, rules, n);
    rl_format_ratelimit(b, rules[worst], &ds[worst]);
    if (!all.allowed)
        rl_format_retry_after(b, &all);
}
