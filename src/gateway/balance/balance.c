/* Load-balancing algorithms over a pool's servers (see balance.h and
 * docs/internals/balance.md).
 *
 * Every algorithm follows the same pattern: one pass over candidate
 * servers that keeps the best server that is usable and not excluded, and
 * as a fallback the best usable server that is excluded, so that a retry
 * prefers a server it has not tried yet but never fails while something is
 * usable. Usability, in-flight counts and slow-start times are read from
 * the gw_server atomics with relaxed ordering: a pick that races with a
 * health change may still choose the server once, which the proxy handles
 * like any failed attempt.
 *
 * Weights are handled in thousandths (gw_lb_effective_weight) so that slow
 * start can scale them without losing the exact integer behaviour of
 * smooth weighted round robin. */
#include "gateway/balance/balance.h"
#include "gateway/balance/backend.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define GW_LB_WEIGHT_SCALE 1000
#define GW_LB_SAMPLE_TRIES 16 /* rejection-sampling rounds before the exact O(n) draw */

struct gw_lb_point {
    uint64_t hash;         /* position on the ring */
    struct gw_server *srv; /* owner of this point */
};

struct gw_lb {
    enum gw_lb_algo algo;
    size_t n;                  /* number of servers */
    struct gw_server **srv;    /* copy of the caller's array, no references */
    double bound_load;         /* consistent_hash bounded-load factor, 0: off */
    uint64_t slow_start_ms;    /* 0: off */
    int64_t max_weight;        /* largest configured weight, in thousandths */
    int64_t *cur;              /* weighted: current weights, under lock */
    struct gw_lb_point *ring;  /* consistent_hash: points sorted by hash */
    size_t nring;

    /* The two words written by every pick sit on their own cache lines so
     * that they do not make the read-only fields above bounce between
     * cores. */
    char pad0[64];
    atomic_uint_fast64_t rr;   /* round-robin cursor (round_robin, least_conn ties) */
    char pad1[64];
    atomic_flag lock;          /* weighted: protects cur[] */
    char pad2[64];
};

static const char *const gw__lb_names[] = {
    [GW_LB_ROUND_ROBIN] = "round_robin",
    [GW_LB_WEIGHTED] = "weighted",
    [GW_LB_LEAST_CONN] = "least_conn",
    [GW_LB_TWO_RANDOM] = "two_random",
    [GW_LB_CONSISTENT_HASH] = "consistent_hash",
};

int gw_lb_parse_algo(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(gw__lb_names); i++)
        if (strcmp(name, gw__lb_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *gw_lb_algo_name(enum gw_lb_algo algo)
{
    if ((unsigned)algo >= ARRAY_SIZE(gw__lb_names))
        return "unknown";
    return gw__lb_names[algo];
}

uint64_t gw_lb_hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

enum gw_lb_algo gw_lb_algo(const struct gw_lb *lb)
{
    return lb->algo;
}

int64_t gw_lb_effective_weight(struct gw_server *s, uint64_t slow_start_ms, uint64_t now_ms)
{
    int64_t full = (int64_t)s->weight * GW_LB_WEIGHT_SCALE;
    if (slow_start_ms == 0)
        return full;

    /* The server last became usable either when it came up or when its
     * passive ejection expired, whichever is later. */
    uint64_t since = atomic_load_explicit(&s->up_since_ms, memory_order_relaxed);
    uint64_t until = atomic_load_explicit(&s->down_until_ms, memory_order_relaxed);
    if (until <= now_ms && until > since)
        since = until;
    if (since == 0)
        return full;
    uint64_t elapsed = now_ms > since ? now_ms - since : 0;
    if (elapsed >= slow_start_ms)
        return full;

    double frac = (double)elapsed / (double)slow_start_ms;
    if (frac < GW_LB_SLOW_START_FLOOR)
        frac = GW_LB_SLOW_START_FLOOR;
    int64_t w = (int64_t)((double)full * frac);
    return w > 0 ? w : 1;
}

static bool gw__lb_excluded(const struct gw_server *s, struct gw_server *const *exclude,
                            size_t nexclude)
{
    for (size_t i = 0; i < nexclude; i++)
        if (exclude[i] == s)
            return true;
    return false;
}

static int gw__lb_load(struct gw_server *s)
{
    int v = atomic_load_explicit(&s->inflight, memory_order_relaxed);
    return v > 0 ? v : 0;
}

/* ---- per-thread random numbers (two_random) ---- */

static _Thread_local uint64_t gw__rng_state;
static atomic_uint_fast64_t gw__rng_seq;

/* wyrand: one 64x64->128 multiply per number, 2^64 period, plenty for
 * load balancing. Seeded lazily per thread from the clock, the thread's
 * state address and a process-wide sequence, so no two threads share a
 * stream. */
static uint64_t gw__lb_rand(void)
{
    if (unlikely(gw__rng_state == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t seed[3] = {
            (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
            (uint64_t)(uintptr_t)&gw__rng_state,
            atomic_fetch_add_explicit(&gw__rng_seq, 1, memory_order_relaxed),
        };
        gw__rng_state = XXH3_64bits(seed, sizeof seed) | 1;
    }
    gw__rng_state += 0xa0761d6478bd642fULL;
    unsigned __int128 t = (unsigned __int128)gw__rng_state * (gw__rng_state ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* Uniform in [0, n) by multiply-shift (Lemire); the bias is below 2^-40
 * for any pool size. */
static uint64_t gw__lb_rand_below(uint64_t n)
{
    return (uint64_t)(((unsigned __int128)gw__lb_rand() * n) >> 64);
}

/* ---- construction ---- */

static int gw__lb_point_cmp(const void *a, const void *b)
{
    const struct gw_lb_point *pa = a, *pb = b;
    if (pa->hash != pb->hash)
        return pa->hash < pb->hash ? -1 : 1;
    /* Equal hashes are all but impossible; ordering them by address keeps
     * the ring independent of the order servers were listed in. */
    int c = strcmp(pa->srv->addr_str, pb->srv->addr_str);
    if (c)
        return c;
    return (uintptr_t)pa->srv < (uintptr_t)pb->srv ? -1 : (pa->srv != pb->srv);
}

/* Ring of points: server i owns vnodes * weight_i points at
 * XXH3("addr#j"), so a server keeps its points whatever else is in the
 * pool, and adding or removing one only moves that server's keys. */
static void gw__lb_build_ring(struct gw_lb *lb, int vnodes)
{
    uint64_t total_weight = 0;
    for (size_t i = 0; i < lb->n; i++)
        total_weight += (uint64_t)lb->srv[i]->weight;
    if (total_weight == 0)
        return;

    double scale = 1.0;
    double wanted = (double)vnodes * (double)total_weight;
    if (wanted > GW_LB_MAX_RING_POINTS)
        scale = GW_LB_MAX_RING_POINTS / wanted;

    size_t *points = xcalloc(lb->n, sizeof *points);
    size_t nring = 0;
    for (size_t i = 0; i < lb->n; i++) {
        double p = floor((double)vnodes * (double)lb->srv[i]->weight * scale + 0.5);
        points[i] = p >= 1.0 ? (size_t)p : 1;
        nring += points[i];
    }

    lb->ring = xcalloc(nring, sizeof *lb->ring);
    size_t k = 0;
    for (size_t i = 0; i < lb->n; i++) {
        struct gw_server *s = lb->srv[i];
        char key[96];
        for (size_t j = 0; j < points[i]; j++) {
            int len = snprintf(key, sizeof key, "%s#%zu", s->addr_str, j);
            ASSERT(len > 0 && (size_t)len < sizeof key);
            lb->ring[k].hash = XXH3_64bits(key, (size_t)len);
            lb->ring[k].srv = s;
            k++;
        }
    }
    ASSERT(k == nring);
    lb->nring = nring;
    qsort(lb->ring, nring, sizeof *lb->ring, gw__lb_point_cmp);
    free(points);
}

struct gw_lb *gw_lb_new(enum gw_lb_algo algo, struct gw_server **servers, size_t n,
                        const struct gw_lb_opts *opts)
{
    ASSERT((unsigned)algo < ARRAY_SIZE(gw__lb_names));
    ASSERT(n == 0 || servers != NULL);

    struct gw_lb *lb = xcalloc(1, sizeof *lb);
    lb->algo = algo;
    lb->n = n;
    lb->srv = xcalloc(n ? n : 1, sizeof *lb->srv);
    if (n)
        memcpy(lb->srv, servers, n * sizeof *servers);
    atomic_init(&lb->rr, 0);
    atomic_flag_clear(&lb->lock);

    int vnodes = GW_LB_DEFAULT_VNODES;
    if (opts) {
        if (opts->vnodes > 0)
            vnodes = opts->vnodes;
        if (opts->bound_load > 0)
            lb->bound_load = opts->bound_load < 1.0 ? 1.0 : opts->bound_load;
        lb->slow_start_ms = opts->slow_start_ms;
    }

    for (size_t i = 0; i < n; i++) {
        ASSERT(servers[i] != NULL);
        int64_t w = (int64_t)servers[i]->weight * GW_LB_WEIGHT_SCALE;
        if (w > lb->max_weight)
            lb->max_weight = w;
    }

    if (algo == GW_LB_WEIGHTED)
        lb->cur = xcalloc(n ? n : 1, sizeof *lb->cur);
    if (algo == GW_LB_CONSISTENT_HASH)
        gw__lb_build_ring(lb, vnodes);
    return lb;
}

void gw_lb_free(struct gw_lb *lb)
{
    if (!lb)
        return;
    free(lb->ring);
    free(lb->cur);
    free(lb->srv);
    free(lb);
}

/* ---- round robin ---- */

/* Ticket t goes to slot t mod n when that server is usable and not
 * excluded, which is the whole cost in a healthy pool. A ticket that lands
 * on an unusable slot is handed to the k-th eligible server, with k moving
 * by one each round and offset by the slot, so the traffic of a down
 * server is spread evenly over the others instead of all landing on its
 * neighbour in the list. */
static struct gw_server *gw__lb_pick_rr(struct gw_lb *lb, uint64_t now_ms,
                                        struct gw_server *const *exclude, size_t nexclude)
{
    uint64_t t = atomic_fetch_add_explicit(&lb->rr, 1, memory_order_relaxed);
    size_t slot = (size_t)(t % lb->n);
    struct gw_server *s = lb->srv[slot];
    if (gw_server_usable(s, now_ms) && !gw__lb_excluded(s, exclude, nexclude))
        return s;

    size_t eligible = 0, usable = 0;
    for (size_t i = 0; i < lb->n; i++) {
        if (!gw_server_usable(lb->srv[i], now_ms))
            continue;
        usable++;
        if (!gw__lb_excluded(lb->srv[i], exclude, nexclude))
            eligible++;
    }
    bool use_excluded = eligible == 0;
    size_t m = use_excluded ? usable : eligible;
    if (m == 0)
        return NULL;

    size_t k = (size_t)((t / lb->n + slot) % m);
    struct gw_server *last = NULL;
    for (size_t i = 0; i < lb->n; i++) {
        s = lb->srv[i];
        if (!gw_server_usable(s, now_ms))
            continue;
        if (!use_excluded && gw__lb_excluded(s, exclude, nexclude))
            continue;
        last = s;
        if (k-- == 0)
            return s;
    }
    /* Health changed between the passes. */
    return last;
}

/* ---- smooth weighted round robin ---- */

static inline void gw__lb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void gw__lb_lock(struct gw_lb *lb)
{
    while (atomic_flag_test_and_set_explicit(&lb->lock, memory_order_acquire))
        gw__lb_cpu_relax();
}

static void gw__lb_unlock(struct gw_lb *lb)
{
    atomic_flag_clear_explicit(&lb->lock, memory_order_release);
}

/* nginx's smooth weighted round robin: every candidate's current weight
 * grows by its effective weight, the largest wins and pays back the total.
 * Over one cycle each server is chosen exactly weight times, interleaved
 * as evenly as possible (5:1:1 gives a a b a c a a). Servers that are not
 * candidates keep their current weight unchanged. The first pass leaves
 * excluded servers out; only when that finds no candidate does a second
 * pass include them. Locked: cur[] is shared by all threads. */
static struct gw_server *gw__lb_pick_weighted(struct gw_lb *lb, uint64_t now_ms,
                                              struct gw_server *const *exclude, size_t nexclude)
{
    struct gw_server *picked = NULL;

    gw__lb_lock(lb);
    bool any_excluded = false;
    for (int pass = 0; pass < 2 && !picked; pass++) {
        if (pass == 1 && !any_excluded)
            break;
        int64_t total = 0;
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < lb->n; i++) {
            struct gw_server *s = lb->srv[i];
            if (!gw_server_usable(s, now_ms))
                continue;
            if (pass == 0 && gw__lb_excluded(s, exclude, nexclude)) {
                any_excluded = true;
                continue;
            }
            int64_t w = gw_lb_effective_weight(s, lb->slow_start_ms, now_ms);
            lb->cur[i] += w;
            total += w;
            if (best == SIZE_MAX || lb->cur[i] > lb->cur[best])
                best = i;
        }
        if (best != SIZE_MAX) {
            lb->cur[best] -= total;
            picked = lb->srv[best];
        }
    }
    gw__lb_unlock(lb);
    return picked;
}

/* ---- least connections ---- */

/* Lowest in-flight count per unit of effective weight. The scan starts at
 * a rotating offset and keeps the first strict minimum, so servers with
 * equal scores share requests round-robin instead of the first one in the
 * list taking all of them. */
static struct gw_server *gw__lb_pick_least_conn(struct gw_lb *lb, uint64_t now_ms,
                                                struct gw_server *const *exclude,
                                                size_t nexclude)
{
    size_t start = (size_t)(atomic_fetch_add_explicit(&lb->rr, 1, memory_order_relaxed) % lb->n);
    struct gw_server *best = NULL, *fallback = NULL;
    double best_score = 0, fallback_score = 0;

    for (size_t k = 0; k < lb->n; k++) {
        struct gw_server *s = lb->srv[(start + k) % lb->n];
        if (!gw_server_usable(s, now_ms))
            continue;
        double score = (double)gw__lb_load(s) /
                       (double)gw_lb_effective_weight(s, lb->slow_start_ms, now_ms);
        if (!gw__lb_excluded(s, exclude, nexclude)) {
            if (!best || score < best_score) {
                best = s;
                best_score = score;
            }
        } else if (!fallback || score < fallback_score) {
            fallback = s;
            fallback_score = score;
        }
    }
    return best ? best : fallback;
}

/* ---- power of two random choices ---- */

static bool gw__lb_eligible(struct gw_server *s, uint64_t now_ms, struct gw_server *const *exclude,
                            size_t nexclude)
{
    return gw_server_usable(s, now_ms) && !gw__lb_excluded(s, exclude, nexclude);
}

/* Draws one eligible server other than srv[skip] with probability
 * proportional to its effective weight; returns its index (and weight in
 * *wout), or SIZE_MAX when there is none. Rejection sampling first
 * (uniform index, accepted with probability weight / max weight), which
 * is O(1) expected for a healthy pool; after GW_LB_SAMPLE_TRIES misses,
 * an exact two-pass draw. Both draw from the same distribution, so the
 * mix does too. */
static size_t gw__lb_sample(struct gw_lb *lb, uint64_t now_ms, struct gw_server *const *exclude,
                            size_t nexclude, size_t skip, int64_t *wout)
{
    for (int t = 0; t < GW_LB_SAMPLE_TRIES; t++) {
        size_t i = (size_t)gw__lb_rand_below(lb->n);
        if (i == skip || !gw__lb_eligible(lb->srv[i], now_ms, exclude, nexclude))
            continue;
        int64_t w = gw_lb_effective_weight(lb->srv[i], lb->slow_start_ms, now_ms);
        if (w >= lb->max_weight || (int64_t)gw__lb_rand_below((uint64_t)lb->max_weight) < w) {
            *wout = w;
            return i;
        }
    }

    uint64_t total = 0;
    for (size_t i = 0; i < lb->n; i++)
        if (i != skip && gw__lb_eligible(lb->srv[i], now_ms, exclude, nexclude))
            total += (uint64_t)gw_lb_effective_weight(lb->srv[i], lb->slow_start_ms, now_ms);
    if (total == 0)
        return SIZE_MAX;

    /* Health may change between the passes: if the walk runs off the end,
     * the last eligible server seen stands in. */
    uint64_t r = gw__lb_rand_below(total);
    size_t last = SIZE_MAX;
    int64_t last_w = 0;
    for (size_t i = 0; i < lb->n; i++) {
        if (i == skip || !gw__lb_eligible(lb->srv[i], now_ms, exclude, nexclude))
            continue;
        int64_t w = gw_lb_effective_weight(lb->srv[i], lb->slow_start_ms, now_ms);
        last = i;
        last_w = w;
        if (r < (uint64_t)w)
            break;
        r -= (uint64_t)w;
    }
    *wout = last_w;
    return last;
}

/* Two distinct servers drawn by weight; the one with fewer in-flight
 * requests per unit of weight wins, the first drawn on a tie (so an idle
 * pool is split exactly by weight). */
static struct gw_server *gw__lb_pick_two_random(struct gw_lb *lb, uint64_t now_ms,
                                                struct gw_server *const *exclude,
                                                size_t nexclude)
{
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (nexclude == 0)
                break;
            exclude = NULL;
            nexclude = 0;
        }
        int64_t wa = 0, wb = 0;
        size_t a = gw__lb_sample(lb, now_ms, exclude, nexclude, SIZE_MAX, &wa);
        if (a == SIZE_MAX)
            continue;
        size_t b = gw__lb_sample(lb, now_ms, exclude, nexclude, a, &wb);
        if (b == SIZE_MAX)
            return lb->srv[a];
        double la = (double)gw__lb_load(lb->srv[a]) / (double)wa;
        double lb_ = (double)gw__lb_load(lb->srv[b]) / (double)wb;
        return lb_ < la ? lb->srv[b] : lb->srv[a];
    }
    return NULL;
}

/* ---- consistent hashing ---- */

/* Walks the ring clockwise from the first point at or after hash and
 * returns the first server that is usable, not excluded and, with bounded
 * loads, not full. A server is full when taking this request would put it
 * above c times its fair share of the load of the usable servers:
 *     inflight + 1 > ceil(c * (total_inflight + 1) * weight / total_weight)
 * which, with equal weights, is Mirrokni et al.'s ceil(c * (m + 1) / n).
 * Since the fair shares add up to more than the total, some server is
 * always under its cap; the fallbacks only matter when exclusions leave
 * only full servers or the in-flight counts move during the walk (first
 * usable non-excluded point, then first usable point). */
static struct gw_server *gw__lb_pick_chash(struct gw_lb *lb, uint64_t hash, uint64_t now_ms,
                                           struct gw_server *const *exclude, size_t nexclude)
{
    if (lb->nring == 0)
        return NULL;

    uint64_t total_load = 0, total_weight = 0;
    if (lb->bound_load > 0) {
        for (size_t i = 0; i < lb->n; i++) {
            struct gw_server *s = lb->srv[i];
            if (!gw_server_usable(s, now_ms))
                continue;
            total_load += (uint64_t)gw__lb_load(s);
            total_weight += (uint64_t)s->weight;
        }
        if (total_weight == 0)
            return NULL;
    }

    size_t lo = 0, hi = lb->nring;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lb->ring[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }

    struct gw_server *unbounded = NULL, *excluded = NULL;
    for (size_t k = 0; k < lb->nring; k++) {
        size_t idx = lo + k;
        if (idx >= lb->nring)
            idx -= lb->nring;
        struct gw_server *s = lb->ring[idx].srv;
        if (!gw_server_usable(s, now_ms))
            continue;
        if (gw__lb_excluded(s, exclude, nexclude)) {
            if (!excluded)
                excluded = s;
            continue;
        }
        if (lb->bound_load > 0) {
            double cap = ceil(lb->bound_load * (double)(total_load + 1) * (double)s->weight /
                              (double)total_weight);
            if ((double)gw__lb_load(s) + 1 > cap) {
                if (!unbounded)
                    unbounded = s;
                continue;
            }
        }
        return s;
    }
    return unbounded ? unbounded : excluded;
}

struct gw_server *gw_lb_pick(struct gw_lb *lb, uint64_t hash, uint64_t now_ms,
                             struct gw_server *const *exclude, size_t nexclude)
{
    if (unlikely(lb->n == 0))
        return NULL;
    if (!exclude)
        nexclude = 0;

    switch (lb->algo) {
    case GW_LB_ROUND_ROBIN:
        return gw__lb_pick_rr(lb, now_ms, exclude, nexclude);
    case GW_LB_WEIGHTED:
        return gw__lb_pick_weighted(lb, now_ms, exclude, nexclude);
    case GW_LB_LEAST_CONN:
        return gw__lb_pick_least_conn(lb, now_ms, exclude, nexclude);
    case GW_LB_TWO_RANDOM:
        return gw__lb_pick_two_random(lb, now_ms, exclude, nexclude);
    case GW_LB_CONSISTENT_HASH:
        return gw__lb_pick_chash(lb, hash, now_ms, exclude, nexclude);
    }
    ASSERT(!"unknown balancing algorithm");
    return NULL;
}
