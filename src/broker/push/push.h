/* HTTP push delivery for SNS http subscriptions: the delivery policy (how
 * often and how long to retry), the per-subscription rate limit, and a
 * small non-blocking HTTP/1.1 client on the broker's event loop.
 *
 * Delivery policy (SNS's, for HTTP/S): after a failed first attempt,
 *   numNoDelayRetries  retries at once,
 *   numMinDelayRetries retries minDelayTarget seconds apart,
 *   the backoff phase  (numRetries minus the other three phases) with
 *                      delays growing from minDelayTarget to
 *                      maxDelayTarget by backoffFunction,
 *   numMaxDelayRetries retries maxDelayTarget seconds apart.
 * Every delay gets +-10% jitter, so endpoints recovering from an outage are
 * not hit by every subscriber's retries in the same instant. SNS's default
 * is 3 retries 20 seconds apart. throttlePolicy.maxReceivesPerSecond
 * paces deliveries to the endpoint (evenly spaced, so a worker that takes
 * 10 per second never sees more than 10 in any second, plus one), and
 * requestPolicy.headerContentType sets the Content-Type of the POST.
 *
 * A topic's DeliveryPolicy ({"http": {"defaultHealthyRetryPolicy": ...,
 * "defaultThrottlePolicy": ..., "defaultRequestPolicy": ...,
 * "disableSubscriptionOverrides": false}}) gives the defaults; a
 * subscription's DeliveryPolicy ({"healthyRetryPolicy": ...,
 * "throttlePolicy": ..., "requestPolicy": ...}) overrides them unless the
 * topic disables overrides.
 *
 * Thread context: everything runs on the broker loop's thread. */
#ifndef FG_BROKER_PUSH_H
#define FG_BROKER_PUSH_H

#include "core/buf.h"
#include "core/common.h"
#include "core/net.h"

#include <cjson/cJSON.h>

struct ev_loop;

/* ---- delivery policy ---- */

enum push_backoff { PUSH_BACKOFF_LINEAR = 0, PUSH_BACKOFF_ARITHMETIC, PUSH_BACKOFF_GEOMETRIC,
                    PUSH_BACKOFF_EXPONENTIAL };

#define PUSH_MAX_RETRIES 100
#define PUSH_MAX_DELAY_S 3600
#define PUSH_MAX_POLICY_S 3600   /* SNS: total retry time of an HTTP/S policy */

struct push_policy {
    uint32_t num_retries;
    uint32_t num_no_delay;
    uint32_t num_min_delay;
    uint32_t num_max_delay;
    uint32_t min_delay_s;
    uint32_t max_delay_s;
    uint8_t backoff;            /* enum push_backoff */
    uint32_t max_per_second;    /* 0: not throttled */
    char content_type[128];     /* "" : text/plain; charset=UTF-8 */
};

void push_policy_default(struct push_policy *p);
/* Applies a topic's DeliveryPolicy JSON (its "http" part) to p and tells
 * whether subscription overrides are disabled. Returns 0, or -1 with an
 * SNS-style reason in err ("DeliveryPolicy: ..."). */
int push_policy_apply_topic(struct push_policy *p, const char *json, bool *no_overrides, char *err,
                            size_t errlen);
/* Applies a subscription's DeliveryPolicy JSON to p. 0 or -1 with err. */
int push_policy_apply_sub(struct push_policy *p, const char *json, char *err, size_t errlen);
/* Total attempts the policy makes (first attempt plus retries). */
uint32_t push_policy_attempts(const struct push_policy *p);
/* The delay before retry number n (1 = the first retry), in ms, without
 * jitter; -1 when the policy allows no retry n. */
int64_t push_retry_delay_ms(const struct push_policy *p, uint32_t n);
/* The same with jitter: rnd is a uniform random 32-bit value. */
int64_t push_retry_delay_jitter_ms(const struct push_policy *p, uint32_t n, uint32_t rnd);

/* ---- rate limit ---- */

/* Even pacing at per_second deliveries a second: the theoretical arrival
 * time of the next allowed delivery (GCRA with no burst beyond one). */
struct push_pace {
    uint64_t tat_us;
};

/* True (and the slot taken) when a delivery may start at now_us. */
bool push_pace_take(struct push_pace *p, uint32_t per_second, uint64_t now_us);
/* Microseconds until the next slot (0 when one is free now). */
uint64_t push_pace_wait_us(const struct push_pace *p, uint32_t per_second, uint64_t now_us);

/* ---- HTTP client ---- */

/* One endpoint: where to connect and what to put in the request line. */
struct push_endpoint {
    struct net_addr addr;
    char *hostport;             /* Host header */
    char *path;                 /* request target */
};

/* Parses an http:// URL (host resolved once, synchronously). 0, or -1
 * with a reason in err. */
int push_endpoint_parse(struct push_endpoint *ep, const char *url, char *err, size_t errlen);
void push_endpoint_free(struct push_endpoint *ep);

struct push_client;
struct push_req;

/* The outcome of one POST: status (100..999) or a negative errno
 * (-ETIMEDOUT, -ECONNREFUSED, -EPROTO for an unreadable answer). */
typedef void (*push_done_cb)(void *ud, int status);

/* A client owns the connections to one endpoint: at most max_conns at
 * once, idle keep-alive ones reused. timeout_ms bounds each request from
 * its start to the end of the response. */
struct push_client *push_client_new(struct ev_loop *loop, const struct push_endpoint *ep,
                                    unsigned max_conns, uint32_t timeout_ms);
/* Closes every connection; requests in flight complete with -ECANCELED
 * (callbacks run before this returns). */
void push_client_free(struct push_client *c);
/* Starts a POST of body with extra header lines (each "Name: value\r\n",
 * NULL for none). Returns 0, or -EBUSY when max_conns requests are in
 * flight. cb runs later on the loop, never from inside this call. */
int push_post(struct push_client *c, const char *headers, const char *body, size_t len,
              push_done_cb cb, void *ud);
unsigned push_client_inflight(const struct push_client *c);

#endif
