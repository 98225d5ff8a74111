/* The load-balancing tests' shared pools of servers and tallies.
 * Header only, every function static inline, so each test file gets its
 * own copy; a failure fails the calling test. */
#ifndef TEST_BALANCE_H
#define TEST_BALANCE_H

#include <criterion/criterion.h>

#include "gateway/balance/balance.h"
#include "gateway/balance/backend.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The servers made here share one slot numbering (as a process's do). */
static struct gw_servers servers = {.retired_lock = PTHREAD_MUTEX_INITIALIZER};

#define NOW 1000000u /* an arbitrary "now" in ms, well past 0 */
#define MAXS 16

static inline struct gw_server *mk_server(int idx, int weight)
{
    char addr[64];
    snprintf(addr, sizeof addr, "10.0.%d.%d:8080", idx / 200, idx % 200 + 1);
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr(addr, &a, &err), 0, "parse %s: %s", addr, err ? err : "");
    struct gw_server *s = gw_server_new(&servers, "svc", &a, weight);
    cr_assert_not_null(s);
    return s;
}

/* Builds n servers with weights w[] (NULL: all 1), numbered from first. */
static inline void mk_pool(struct gw_server **s, size_t n, const int *w, int first)
{
    for (size_t i = 0; i < n; i++)
        s[i] = mk_server(first + (int)i, w ? w[i] : 1);
}

static inline void free_pool(struct gw_server **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gw_server_unref(s[i]);
}

static inline size_t index_of(struct gw_server **s, size_t n, const struct gw_server *x)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == x)
            return i;
    cr_assert_fail("picked a server outside the pool");
    return SIZE_MAX;
}

/* Picks count times with no exclusions, tallying into counts[]. */
static inline void tally(struct gw_lb *lb, struct gw_server **s, size_t n, size_t count, uint64_t now,
                  size_t *counts)
{
    memset(counts, 0, n * sizeof *counts);
    for (size_t k = 0; k < count; k++) {
        struct gw_server *p = gw_lb_pick(lb, 0, now, NULL, 0);
        cr_assert_not_null(p);
        counts[index_of(s, n, p)]++;
    }
}

static inline void set_inflight(struct gw_server *s, int v)
{
    atomic_store(&s->inflight, v);
}

/* The hash of the key "user-K". */
static inline uint64_t key_hash(int k)
{
    char key[32];
    int len = snprintf(key, sizeof key, "user-%d", k);
    return gw_lb_hash(key, (size_t)len);
}

#endif
