/* A simulated backend for the resilience tests, on a controlled clock.
 *
 * The service has `cap` workers. A request that finds a free worker is
 * served for service_us (plus or minus jitter_pct, uniformly); otherwise
 * it waits in a FIFO queue, so under load latency grows by queueing just
 * as a real server's does (Little: latency ~ service_us * concurrency /
 * cap once concurrency exceeds cap). With max_queue set, a request that
 * finds the queue full is refused after reject_us: a drop, like a 503.
 * Completions come out in time order through simb_next()/simb_pop(). The
 * caller keys its own per-request data by the id it passes in. Header
 * only, every function static inline, so several test files can use it. */
#ifndef TEST_SIM_BACKEND_H
#define TEST_SIM_BACKEND_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct simb_ev {
    uint64_t at_us;
    uint32_t id;
    bool dropped;
};

struct simb {
    uint32_t cap;
    uint64_t service_us;
    uint32_t jitter_pct;
    uint32_t max_queue;  /* 0: unbounded */
    uint64_t reject_us;  /* latency of a refusal */
    uint32_t busy;
    uint32_t *wait;      /* FIFO ring of waiting ids */
    uint32_t wait_cap, wait_head, wait_n;
    struct simb_ev *heap; /* completions, earliest first */
    uint32_t heap_n, heap_cap;
    uint64_t rng;
    uint64_t served, refused;
};

static inline uint64_t sim_rand(uint64_t *s)
{
    /* xorshift64*: deterministic, good enough for a simulation */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, 1). */
static inline double sim_unif(uint64_t *s)
{
    return (double)(sim_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Exponential with the given mean (Poisson arrivals). */
static inline uint64_t sim_exp_us(uint64_t *s, double mean_us)
{
    double u = sim_unif(s);
    uint64_t v = (uint64_t)(-log(1.0 - u) * mean_us);
    return v ? v : 1;
}

static inline void simb_init(struct simb *b, uint32_t cap, uint64_t service_us, uint32_t jitter_pct,
                             uint64_t seed)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
    b->service_us = service_us;
    b->jitter_pct = jitter_pct;
    b->reject_us = 1000;
    b->wait_cap = 1u << 16;
    b->wait = calloc(b->wait_cap, sizeof(*b->wait));
    b->heap_cap = 1u << 17;
    b->heap = calloc(b->heap_cap, sizeof(*b->heap));
    b->rng = seed ? seed : 88172645463325252ull;
}

static inline void simb_close(struct simb *b)
{
    free(b->wait);
    free(b->heap);
}

static inline void simb__push(struct simb *b, uint64_t at, uint32_t id, bool dropped)
{
    if (b->heap_n == b->heap_cap)
        abort();
    uint32_t i = b->heap_n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (b->heap[p].at_us <= at)
            break;
        b->heap[i] = b->heap[p];
        i = p;
    }
    b->heap[i] = (struct simb_ev){at, id, dropped};
}

static inline struct simb_ev simb__pop(struct simb *b)
{
    struct simb_ev top = b->heap[0];
    struct simb_ev last = b->heap[--b->heap_n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= b->heap_n)
            break;
        if (c + 1 < b->heap_n && b->heap[c + 1].at_us < b->heap[c].at_us)
            c++;
        if (last.at_us <= b->heap[c].at_us)
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (b->heap_n)
        b->heap[i] = last;
    return top;
}

static inline uint64_t simb__service(struct simb *b)
{
    if (!b->jitter_pct)
        return b->service_us;
    double j = (sim_unif(&b->rng) * 2.0 - 1.0) * b->jitter_pct / 100.0;
    return (uint64_t)((double)b->service_us * (1.0 + j));
}

/* Sends request id at now_us. */
static inline void simb_send(struct simb *b, uint64_t now_us, uint32_t id)
{
    if (b->busy < b->cap) {
        b->busy++;
        simb__push(b, now_us + simb__service(b), id, false);
    } else if (b->max_queue && b->wait_n >= b->max_queue) {
        b->refused++;
        simb__push(b, now_us + b->reject_us, id, true);
    } else {
        if (b->wait_n == b->wait_cap)
            abort();
        b->wait[(b->wait_head + b->wait_n++) % b->wait_cap] = id;
    }
}

/* Time of the next completion, UINT64_MAX when nothing is in flight. */
static inline uint64_t simb_next(const struct simb *b)
{
    return b->heap_n ? b->heap[0].at_us : UINT64_MAX;
}

/* Takes the next completion; a served one frees its worker, and waiting
 * requests start while workers are free (cap may have been changed). */
static inline struct simb_ev simb_pop(struct simb *b)
{
    struct simb_ev e = simb__pop(b);
    if (!e.dropped) {
        b->served++;
        b->busy--;
        while (b->wait_n && b->busy < b->cap) {
            uint32_t id = b->wait[b->wait_head];
            b->wait_head = (b->wait_head + 1) % b->wait_cap;
            b->wait_n--;
            b->busy++;
            simb__push(b, e.at_us + simb__service(b), id, false);
        }
    }
    return e;
}

#endif
