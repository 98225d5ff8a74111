/* The rate-limiting algorithms of ratelimit.h over one key's state.
 *
 * Every algorithm answers the same question first: given the state, how
 * long from now until `cost` units could be admitted (the "wait")? A wait
 * of 0 admits now; a wait within max_delay_us admits with that delay and
 * books the units at the admission time; anything else is rejected with
 * the wait as retry_after. The effective window reported in reset_us is
 * the wait for one unit more than what remains, i.e. the time until the
 * available quota grows; when the whole quota is available, it is the
 * algorithm's natural period (the emission interval for GCRA, the rest of
 * the window for the fixed window, the window for the sliding ones). */
#include "gateway/limit/ratelimit.h"

#include <string.h>
#include <strings.h>

typedef unsigned __int128 rl_u128;

static inline uint64_t sat_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint64_t ceil_us(uint64_t ns) { return ns / 1000 + (ns % 1000 != 0); }

static bool is_gcra(enum rl_algo a)
{
    return a == RL_TOKEN_BUCKET || a == RL_LEAKY_BUCKET || a == RL_LEAKY_QUEUE;
}

/* ---- rules ---------------------------------------------------------- */

static int fail(char **err, const char *name, const char *msg)
{
    *err = xasprintf("rate limit%s%s: %s", name ? " " : "", name ? name : "", msg);
    return -1;
}

int rl_rule_prepare(struct rl_rule *r, char **err)
{
    *err = NULL;
    if ((unsigned)r->algo >= RL_ALGO_COUNT)
        return fail(err, r->name, "unknown algorithm");
    if (r->name) {
        if (!r->name[0])
            return fail(err, r->name, "empty name");
        for (const char *p = r->name; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                return fail(err, r->name, "name must be printable ASCII");
    }
    if (r->limit == 0 || r->limit > RL_LIMIT_MAX)
        return fail(err, r->name, "limit must be between 1 and 2^40");
    if (r->window_us == 0 || r->window_us > RL_WINDOW_MAX_US)
        return fail(err, r->name, "window must be between 1us and 366 days");
    if (r->max_delay_us > RL_WINDOW_MAX_US)
        return fail(err, r->name, "max_delay must be at most 366 days");
    if ((unsigned)r->on_full > RL_FULL_DENY)
        return fail(err, r->name, "unknown full-store policy");

    r->t_ns = r->dvt_ns = r->free_ns = 0;
    if (is_gcra(r->algo)) {
        if (r->burst > RL_BURST_MAX)
            return fail(err, r->name, "burst must be at most 2^32");
        r->t_ns = r->window_us * 1000 / r->limit;
        if (r->t_ns == 0)
            return fail(err, r->name, "rate above one request per nanosecond");
        r->capacity = r->algo == RL_TOKEN_BUCKET ? r->limit + r->burst : 1 + r->burst;
        /* TAT values stay below now + 2^62 + max_delay: no overflow. */
        if (r->capacity > (UINT64_MAX >> 2) / r->t_ns)
            return fail(err, r->name, "capacity times emission interval overflows");
        r->dvt_ns = r->capacity * r->t_ns;
        if (r->algo == RL_LEAKY_QUEUE)
            r->free_ns = (r->nodelay ? r->burst : FG_MIN(r->delay, r->burst)) * r->t_ns;
    } else {
        if (r->burst)
            return fail(err, r->name, "burst applies to the bucket algorithms only");
        if (r->algo == RL_SLIDING_LOG && r->limit > RL_LOG_LIMIT_MAX)
            return fail(err, r->name, "sliding_log limit must be at most 65536");
        r->capacity = r->limit;
    }
    return 0;
}

size_t rl_state_size(const struct rl_rule *r)
{
    size_t n = sizeof(struct rl_state);
    if (r->algo == RL_SLIDING_LOG)
        n += (size_t)r->limit * sizeof(uint64_t);
    return n;
}

void rl_state_init(const struct rl_rule *r, struct rl_state *st)
{
    memset(st, 0, rl_state_size(r));
    if (is_gcra(r->algo))
        atomic_init(&st->u.tat_ns, 0);
}

/* ---- GCRA: token bucket, leaky bucket, leaky queue ------------------ */

/* Remaining units and effective window (ns) when the bucket is x ns
 * "deep" (TAT - now, clamped at 0). */
static void gcra_window(const struct rl_rule *r, uint64_t x, struct rl_decision *d)
{
    const uint64_t T = r->t_ns, dvt = r->dvt_ns;
    uint64_t rem = x < dvt ? (dvt - x) / T : 0;
    d->remaining = rem;
    d->reset_us = ceil_us(rem >= r->capacity ? T : x + (rem + 1) * T - dvt);
}

/* The virtual-scheduling GCRA: a request of `cost` units conforms when
 * max(TAT, now) + cost*T - now <= capacity*T; it then moves TAT there.
 * The compare-and-swap makes concurrent checks on one state linearizable:
 * each admission is one successful CAS that consumed exactly its share. */
static bool gcra_check(const struct rl_rule *r, struct rl_state *st, uint64_t now_us,
                       uint32_t cost, struct rl_decision *d)
{
    const uint64_t now = now_us * 1000;
    const uint64_t inc = (uint64_t)cost * r->t_ns;
    const bool queue = r->algo == RL_LEAKY_QUEUE;
    const uint64_t max_delay = queue ? 0 : r->max_delay_us * 1000;
    uint64_t tat = atomic_load_explicit(&st->u.tat_ns, memory_order_relaxed);
    uint64_t base, ntat, over;

    for (;;) {
        base = max_u64(tat, now);
        ntat = base + inc;
        over = sat_sub(ntat - now, r->dvt_ns); /* wait until it conforms */
        if (over > max_delay) {
            d->allowed = false;
            d->delay_us = 0;
            d->retry_after_us = ceil_us(over);
            gcra_window(r, base - now, d);
            return false;
        }
        if (cost == 0)
            break;
        if (atomic_compare_exchange_weak_explicit(&st->u.tat_ns, &tat, ntat,
                                                  memory_order_relaxed, memory_order_relaxed))
            break;
    }
    d->allowed = true;
    d->retry_after_us = 0;
    if (over)
        d->delay_us = ceil_us(over);
    else if (queue && cost)
        d->delay_us = ceil_us(sat_sub(base - now, r->free_ns));
    else
        d->delay_us = 0;
    gcra_window(r, ntat - now, d);
    return true;
}

/* ---- fixed window --------------------------------------------------- */

/* Moves the state to the window holding now (windows are aligned to
 * multiples of W). Units booked beyond the current window carry over:
 * each window that passes releases `limit` of them. Returns now, raised
 * to the window start when a late caller's clock is behind. */
static uint64_t fw_roll(const struct rl_rule *r, struct rl_state *st, uint64_t now)
{
    const uint64_t W = r->window_us, L = r->limit;
    uint64_t ws = now - now % W;
    if (ws > st->u.fw.start_us) {
        uint64_t k = (ws - st->u.fw.start_us) / W;
        st->u.fw.count = k > st->u.fw.count / L ? 0 : st->u.fw.count - k * L;
        st->u.fw.start_us = ws;
    }
    return max_u64(now, st->u.fw.start_us);
}

/* Wait until c more units fit: unit number i (0-based, counting every
 * unit booked from the current window on) belongs to window i / limit. */
static uint64_t fw_wait(const struct rl_rule *r, const struct rl_state *st, uint64_t now,
                        uint64_t c)
{
    const uint64_t L = r->limit, count = st->u.fw.count;
    if (count + c <= L)
        return 0;
    return st->u.fw.start_us + (count + c - 1) / L * r->window_us - now;
}

/* The verdict of a counting algorithm that waits w us for cost: allowed
 * (after a delay of w, none for a zero-cost peek) or refused (retry after
 * w). Returns allowed, for the caller to take the cost. */
static bool decide(struct rl_decision *d, bool allowed, uint64_t w, uint32_t cost)
{
    d->allowed = allowed;
    d->delay_us = allowed && cost ? w : 0;
    d->retry_after_us = allowed ? 0 : w;
    return allowed;
}

static bool fw_check(const struct rl_rule *r, struct rl_state *st, uint64_t now, uint32_t cost,
                     struct rl_decision *d)
{
    now = fw_roll(r, st, now);
    uint64_t w = fw_wait(r, st, now, cost);
    if (decide(d, w <= r->max_delay_us, w, cost))
        st->u.fw.count += cost;
    uint64_t L = r->limit, count = st->u.fw.count;
    d->remaining = count < L ? L - count : 0;
    d->reset_us = fw_wait(r, st, now, d->remaining + 1);
    return d->allowed;
}

/* ---- sliding log ---------------------------------------------------- */

/* The i-th entry from the oldest (i < n). */
static inline uint64_t log_at(const struct rl_state *st, uint64_t L, uint64_t i)
{
    uint64_t k = st->u.log.head + i;
    return st->ring[k >= L ? k - L : k];
}

/* Entries inside the window ending at now, (now - W, now], counting booked
 * future ones: the ring is sorted, so binary search for the first. */
static uint64_t log_in_window(const struct rl_rule *r, const struct rl_state *st, uint64_t now)
{
    uint64_t lo = 0, hi = st->u.log.n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (log_at(st, r->limit, mid) + r->window_us > now)
            hi = mid;
        else
            lo = mid + 1;
    }
    return st->u.log.n - lo;
}

/* Earliest time >= now at which c units can be logged: then at most
 * limit - c earlier entries may lie in the window, so the (limit-c+1)-th
 * most recent one must have left it. Never before the newest entry, which
 * keeps the ring sorted (and booked requests in order). */
static uint64_t log_start(const struct rl_rule *r, const struct rl_state *st, uint64_t now,
                          uint64_t c)
{
    const uint64_t L = r->limit, n = st->u.log.n, m = L - c;
    uint64_t s = now;
    if (n == 0)
        return s;
    s = max_u64(s, log_at(st, L, n - 1));
    if (n > m)
        s = max_u64(s, log_at(st, L, n - 1 - m) + r->window_us);
    return s;
}

static void log_push(const struct rl_rule *r, struct rl_state *st, uint64_t t, uint32_t c)
{
    const uint64_t L = r->limit;
    for (uint32_t i = 0; i < c; i++) {
        if (st->u.log.n < L) {
            uint64_t k = st->u.log.head + st->u.log.n;
            st->ring[k >= L ? k - L : k] = t;
            st->u.log.n++;
        } else {
            st->ring[st->u.log.head] = t;
            st->u.log.head = st->u.log.head + 1 == L ? 0 : st->u.log.head + 1;
        }
    }
}

static bool log_check(const struct rl_rule *r, struct rl_state *st, uint64_t now, uint32_t cost,
                      struct rl_decision *d)
{
    uint64_t s = log_start(r, st, now, cost);
    uint64_t w = s - now;
    if (decide(d, w <= r->max_delay_us, w, cost))
        log_push(r, st, s, cost);
    uint64_t in = log_in_window(r, st, now);
    d->remaining = r->limit - in;
    d->reset_us = d->remaining < r->limit ? log_start(r, st, now, d->remaining + 1) - now
                                          : r->window_us;
    return d->allowed;
}

/* ---- sliding window counter ----------------------------------------- */

/* The estimate at time start + x (0 <= x < W) is
 *     prev * (W - x) / W + cur,
 * and in the next two windows cur * (2W - x) / W + next and
 * next * (3W - x) / W. */
static uint64_t sc_roll(const struct rl_rule *r, struct rl_state *st, uint64_t now)
{
    const uint64_t W = r->window_us;
    uint64_t ws = now - now % W;
    if (ws > st->u.sc.start_us) {
        uint64_t k = (ws - st->u.sc.start_us) / W;
        if (k == 1) {
            st->u.sc.prev = st->u.sc.cur;
            st->u.sc.cur = st->u.sc.next;
        } else if (k == 2) {
            st->u.sc.prev = st->u.sc.next;
            st->u.sc.cur = 0;
        } else {
            st->u.sc.prev = st->u.sc.cur = 0;
        }
        st->u.sc.next = 0;
        st->u.sc.start_us = ws;
    }
    return max_u64(now, st->u.sc.start_us);
}

/* Smallest x with count * (end - x) <= room * W (x relative to the
 * window start; 0 when any x will do). */
static uint64_t sc_x_min(uint64_t count, uint64_t room, uint64_t W, uint64_t end)
{
    if (count == 0)
        return 0;
    rl_u128 a = (rl_u128)room * W / count;
    return a >= end ? 0 : end - (uint64_t)a;
}

/* Wait from now (x = e into the current window) until c units fit under
 * the estimate: in the current window, the next, or the one after. */
static uint64_t sc_wait(const struct rl_rule *r, const struct rl_state *st, uint64_t e, uint64_t c)
{
    const uint64_t L = r->limit, W = r->window_us;
    const uint64_t prev = st->u.sc.prev, cur = st->u.sc.cur, next = st->u.sc.next;
    uint64_t x;
    if (cur + c <= L) {
        x = sc_x_min(prev, L - cur - c, W, W);
        if (x <= e)
            return 0;
        if (x < W)
            return x - e;
    }
    if (next + c <= L) {
        x = max_u64(W, sc_x_min(cur, L - next - c, W, 2 * W));
        if (x < 2 * W)
            return x - e;
    }
    x = max_u64(2 * W, sc_x_min(next, L - c, W, 3 * W));
    return x - e;
}

static bool sc_check(const struct rl_rule *r, struct rl_state *st, uint64_t now, uint32_t cost,
                     struct rl_decision *d)
{
    const uint64_t L = r->limit, W = r->window_us;
    now = sc_roll(r, st, now);
    uint64_t e = now - st->u.sc.start_us;
    uint64_t w = sc_wait(r, st, e, cost);
    /* Units can be booked in the current or the next window only. */
    if (decide(d, w <= r->max_delay_us && e + w < 2 * W, w, cost)) {
        if (e + w < W)
            st->u.sc.cur += cost;
        else
            st->u.sc.next += cost;
    }
    rl_u128 pw = (rl_u128)st->u.sc.prev * (W - e);
    uint64_t pe = (uint64_t)(pw / W) + (pw % W != 0); /* ceil of the weighted share */
    uint64_t used = st->u.sc.cur + pe;
    d->remaining = used >= L ? 0 : L - used;
    d->reset_us = d->remaining < L ? sc_wait(r, st, e, d->remaining + 1) : W;
    return d->allowed;
}

/* ---- dispatch ------------------------------------------------------- */

static bool dispatch_algo(const struct rl_rule *r, struct rl_state *st, uint64_t now_us,
                         uint32_t cost, struct rl_decision *d)
{
    switch (r->algo) {
    case RL_TOKEN_BUCKET:
    case RL_LEAKY_BUCKET:
    case RL_LEAKY_QUEUE:
        return gcra_check(r, st, now_us, cost, d);
    case RL_FIXED_WINDOW:
        return fw_check(r, st, now_us, cost, d);
    case RL_SLIDING_LOG:
        return log_check(r, st, now_us, cost, d);
    case RL_SLIDING_COUNTER:
        return sc_check(r, st, now_us, cost, d);
    }
    ASSERT(!"unknown rate-limit algorithm");
    return false;
}

bool rl_check(const struct rl_rule *r, struct rl_state *st, uint64_t now_us, uint32_t cost,
              struct rl_decision *d)
{
    if (unlikely(cost > r->capacity)) {
        dispatch_algo(r, st, now_us, 0, d);
        d->allowed = false;
        d->delay_us = 0;
        d->retry_after_us = r->window_us;
        return false;
    }
    bool ok = dispatch_algo(r, st, now_us, cost, d);
    if (cost == 0) {
        d->allowed = ok = true;
        d->delay_us = d->retry_after_us = 0;
    }
    return ok;
}

uint64_t rl_state_expiry(const struct rl_rule *r, const struct rl_state *st)
{
    const uint64_t W = r->window_us;
    switch (r->algo) {
    case RL_TOKEN_BUCKET:
    case RL_LEAKY_BUCKET:
    case RL_LEAKY_QUEUE:
        return ceil_us(atomic_load_explicit(&st->u.tat_ns, memory_order_relaxed));
    case RL_FIXED_WINDOW:
        if (st->u.fw.count == 0)
            return 0;
        return st->u.fw.start_us + (st->u.fw.count + r->limit - 1) / r->limit * W;
    case RL_SLIDING_LOG:
        return st->u.log.n ? log_at(st, r->limit, st->u.log.n - 1) + W : 0;
    case RL_SLIDING_COUNTER:
        if (st->u.sc.next)
            return st->u.sc.start_us + 3 * W;
        if (st->u.sc.cur)
            return st->u.sc.start_us + 2 * W;
        return st->u.sc.prev ? st->u.sc.start_us + W : 0;
    }
    return 0;
}

/* ---- several rules -------------------------------------------------- */

static bool more_restrictive(const struct rl_decision *a, const struct rl_decision *b)
{
    if (a->allowed != b->allowed)
        return !a->allowed;
    if (!a->allowed)
        return a->retry_after_us > b->retry_after_us;
    if (a->remaining != b->remaining)
        return a->remaining < b->remaining;
    return a->reset_us > b->reset_us;
}

size_t rl_combine(const struct rl_decision *ds, size_t n, struct rl_decision *out)
{
    ASSERT(n >= 1);
    size_t worst = 0;
    struct rl_decision c = { .allowed = true, .remaining = UINT64_MAX };
    for (size_t i = 0; i < n; i++) {
        const struct rl_decision *d = &ds[i];
        if (!d->allowed) {
            c.allowed = false;
            c.retry_after_us = max_u64(c.retry_after_us, d->retry_after_us);
        }
        c.delay_us = max_u64(c.delay_us, d->delay_us);
        if (d->remaining < c.remaining)
            c.remaining = d->remaining;
        if (i && more_restrictive(d, &ds[worst]))
            worst = i;
    }
    if (!c.allowed)
        c.delay_us = 0;
    c.reset_us = ds[worst].reset_us;
    *out = c;
    return worst;
}

/* ---- names ---------------------------------------------------------- */

static const char *const algo_names[RL_ALGO_COUNT] = {
    [RL_TOKEN_BUCKET] = "token_bucket",       [RL_LEAKY_BUCKET] = "leaky_bucket",
    [RL_LEAKY_QUEUE] = "leaky_queue",         [RL_FIXED_WINDOW] = "fixed_window",
    [RL_SLIDING_LOG] = "sliding_log",         [RL_SLIDING_COUNTER] = "sliding_counter",
};

int rl_parse_algo(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < RL_ALGO_COUNT; i++)
        if (strcmp(name, algo_names[i]) == 0)
            return i;
    if (strcmp(name, "gcra") == 0)
        return RL_TOKEN_BUCKET;
    return -1;
}

const char *rl_algo_name(enum rl_algo algo)
{
    return (unsigned)algo < RL_ALGO_COUNT ? algo_names[algo] : "unknown";
}
