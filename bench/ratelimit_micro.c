/* Micro-benchmark of the rate-limiting engine: nanoseconds per check for
 * the bare algorithms, the sharded store (distinct keys and one hot key
 * shared by every thread), key building and header formatting. Not part
 * of the build; compile it on demand from the repository root:
 *
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/ratelimit_micro.c \
 *      src/gateway/limit/ratelimit.c src/gateway/limit/store.c src/gateway/limit/key.c \
 *      src/gateway/limit/headers.c src/core/common.c src/core/buf.c \
 *      -lxxhash -lpthread -o /tmp/rl_micro
 *   /tmp/rl_micro [threads] [checks per thread] [keys per thread]
 *
 * Each thread runs its checks back to back with a simulated clock that
 * advances 1 us per check (the gateway reads its loop's cached clock, so a
 * check makes no system call). Reported: the thread CPU time per check,
 * averaged over the threads (the cost of a check while all threads run,
 * not counting time the threads spent descheduled), and the total rate
 * over wall time. */
#include "core/buf.h"
#include "gateway/limit/ratelimit.h"
#include "gateway/limit/key.h"
#include "gateway/limit/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0 (100ull * 3600 * 1000000)
static int keys_per_thread = 50000;

enum scenario {
    SC_BARE_PRIVATE,  /* rl_check on a state per thread */
    SC_BARE_SHARED,   /* rl_check on one state shared by all threads */
    SC_STORE_KEYS,    /* store, random keys out of keys_per_thread per thread */
    SC_STORE_HOT,     /* store, every thread on the same key */
    SC_KEY_BUILD,     /* rl_key_build for ip/24 + header */
    SC_HEADERS,       /* rl_headers_append for one rule */
};

struct job {
    enum scenario sc;
    const struct rl_rule *rule;
    struct rl_store *store;
    struct rl_state *shared;
    pthread_barrier_t *bar;
    int id;
    long n;
    long admitted;
    uint64_t ns;  /* wall */
    uint64_t cpu; /* thread CPU time */
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *run(void *p)
{
    struct job *j = p;
    char (*keys)[24] = NULL;
    uint8_t *klen = NULL;
    struct rl_state *own = NULL;
    if (j->sc == SC_STORE_KEYS) {
        keys = malloc(sizeof *keys * (size_t)keys_per_thread);
        klen = malloc((size_t)keys_per_thread);
        for (int i = 0; i < keys_per_thread; i++)
            klen[i] = (uint8_t)snprintf(keys[i], sizeof keys[i], "10.%d.%d.%d", j->id,
                                        (i >> 8) & 255, i & 255);
    }
    if (j->sc == SC_BARE_PRIVATE) {
        own = malloc(rl_state_size(j->rule));
        rl_state_init(j->rule, own);
    }
    struct http_header hs[] = {
        { "Host", 4, "shop.example", 12 },
        { "User-Agent", 10, "bench/1.0", 9 },
        { "X-Api-Key", 9, "k-3f9a0c2e7b", 12 },
    };
    struct rl_key_spec spec;
    char *err = NULL;
    rl_key_spec_parse(&spec, "ip/24+header:X-Api-Key", &err);
    struct rl_key_input in = { .ip = "203.0.113.77", .ip_len = 12, .headers = hs, .nheaders = 3 };
    char kbuf[RL_KEY_MAX];
    struct buf b;
    buf_init(&b);
    const struct rl_rule *rules[] = { j->rule };
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(j->id + 1);

    pthread_barrier_wait(j->bar);
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < j->n; i++) {
        struct rl_decision d;
        uint64_t now = T0 + (uint64_t)i;
        switch (j->sc) {
        case SC_BARE_PRIVATE:
            j->admitted += rl_check(j->rule, own, now, 1, &d);
            break;
        case SC_BARE_SHARED:
            j->admitted += rl_check(j->rule, j->shared, now, 1, &d);
            break;
        case SC_STORE_KEYS: {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t k = x % (uint64_t)keys_per_thread;
            rl_store_check(j->store, j->rule, keys[k], klen[k], now, 1, &d);
            j->admitted += d.allowed;
            break;
        }
        case SC_STORE_HOT:
            rl_store_check(j->store, j->rule, "hot", 3, now, 1, &d);
            j->admitted += d.allowed;
            break;
        case SC_KEY_BUILD:
            j->admitted += rl_key_build(&spec, &in, kbuf) > 0;
            break;
        case SC_HEADERS:
            d = (struct rl_decision){ .allowed = false, .retry_after_us = 1500000,
                                      .remaining = 0, .reset_us = 1500000 };
            rl_headers_append(&b, rules, &d, 1);
            j->admitted += buf_len(&b) > 0;
            buf_reset(&b);
            break;
        }
    }
    j->cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    j->ns = clock_ns(CLOCK_MONOTONIC) - t0;
    buf_free(&b);
    free(keys);
    free(klen);
    free(own);
    return NULL;
}

static void bench(const char *name, enum scenario sc, const struct rl_rule *rule, int threads,
                  long n)
{
    struct rl_store *store = rl_store_new(NULL);
    struct rl_state *shared = malloc(rl_state_size(rule));
    rl_state_init(rule, shared);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    struct job jobs[64];
    pthread_t th[64];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){ .sc = sc, .rule = rule, .store = store, .shared = shared,
                                .bar = &bar, .id = i, .n = n };
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    uint64_t ns = 0, cpu = 0;
    long admitted = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ns = jobs[i].ns > ns ? jobs[i].ns : ns;
        cpu += jobs[i].cpu;
        admitted += jobs[i].admitted;
    }
    printf("%-44s %2d threads  %6.1f ns/check  %6.2f M checks/s total  (%.0f%% admitted)\n",
           name, threads, (double)cpu / threads / (double)n,
           (double)n * threads / (double)ns * 1e3,
           100.0 * (double)admitted / ((double)n * threads));
    pthread_barrier_destroy(&bar);
    free(shared);
    rl_store_free(store);
}

static struct rl_rule rule(enum rl_algo algo, uint64_t limit, uint64_t window_us)
{
    struct rl_rule r = { .algo = algo, .id = 1, .name = "bench", .limit = limit,
                         .window_us = window_us };
    char *err = NULL;
    if (rl_rule_prepare(&r, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    long n = argc > 2 ? atol(argv[2]) : 2000000;
    keys_per_thread = argc > 3 ? atoi(argv[3]) : 50000;
    if (threads < 1 || threads > 64 || n < 1 || keys_per_thread < 1 || keys_per_thread > 65536) {
        fprintf(stderr,
                "usage: %s [threads 1..64] [checks per thread] [keys per thread 1..65536]\n",
                argv[0]);
        return 2;
    }
    /* 100 per 10 ms per key: with keys drawn at random out of 1000 or
     * more, most checks pass and write the state (the usual case). The
     * hot key gets a limit it rarely reaches. */
    struct rl_rule tb = rule(RL_TOKEN_BUCKET, 100, 10000);
    struct rl_rule hot = rule(RL_TOKEN_BUCKET, 1000000, 1000000);
    struct rl_rule lq = rule(RL_LEAKY_QUEUE, 100, 10000);
    struct rl_rule fw = rule(RL_FIXED_WINDOW, 100, 10000);
    struct rl_rule lg = rule(RL_SLIDING_LOG, 100, 10000);
    struct rl_rule sc = rule(RL_SLIDING_COUNTER, 100, 10000);

    bench("rl_check token_bucket, own state", SC_BARE_PRIVATE, &hot, threads, n);
    bench("rl_check token_bucket, one shared state", SC_BARE_SHARED, &hot, threads, n);
    bench("rl_check sliding_counter, own state", SC_BARE_PRIVATE, &sc, threads, n);
    bench("rl_check sliding_log(100), own state", SC_BARE_PRIVATE, &lg, threads, n);
    char name[5][64];
    snprintf(name[0], sizeof name[0], "store token_bucket, %d keys/thread", keys_per_thread);
    snprintf(name[1], sizeof name[1], "store leaky_queue, %d keys/thread", keys_per_thread);
    snprintf(name[2], sizeof name[2], "store fixed_window, %d keys/thread", keys_per_thread);
    snprintf(name[3], sizeof name[3], "store sliding_log(100), %d keys/thread", keys_per_thread);
    snprintf(name[4], sizeof name[4], "store sliding_counter, %d keys/thread", keys_per_thread);
    bench(name[0], SC_STORE_KEYS, &tb, threads, n);
    bench(name[1], SC_STORE_KEYS, &lq, threads, n);
    bench(name[2], SC_STORE_KEYS, &fw, threads, n);
    bench(name[3], SC_STORE_KEYS, &lg, threads, n);
    bench(name[4], SC_STORE_KEYS, &sc, threads, n);
    bench("store token_bucket, one hot key", SC_STORE_HOT, &hot, threads, n);
    bench("rl_key_build ip/24+header", SC_KEY_BUILD, &tb, threads, n);
    bench("rl_headers_append, one rule", SC_HEADERS, &tb, threads, n);
    return 0;
}
