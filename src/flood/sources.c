/* Source address ranges. A connection binds to the next address of its
 * group's ranges before connecting (net_connect sets
 * IP_BIND_ADDRESS_NO_PORT, so addresses can be shared without running out
 * of ports early), which makes a run on loopback look like traffic from
 * many clients: all of 127.0.0.0/8 is local on Linux. Ranges are kept as
 * (first, count) pairs, so even a /8 costs nothing. */
#include "flood/flood.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_ip(const char *s, size_t n, uint32_t *out)
{
    char tmp[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

static void add_range(struct fl_sources *s, uint32_t first, uint64_t count)
{
    while (count) {
        /* A /0 has 2^32 addresses; split to keep count in 32 bits. */
        uint32_t c = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
        s->r = xrealloc(s->r, (s->n + 1) * sizeof *s->r);
        s->r[s->n].first = first;
        s->r[s->n].count = c;
        s->n++;
        s->total += c;
        count -= c;
        first += c;
    }
}

int fl_sources_parse(struct fl_sources *s, const char *spec, char **err)
{
    const char *p = spec;
    if (!*p) {
        *err = xstrdup("empty source address list");
        return -1;
    }
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *dash = memchr(p, '-', n), *slash = memchr(p, '/', n);
        uint32_t a, b;
        if (dash) {
            if (parse_ip(p, (size_t)(dash - p), &a) != 0 ||
                parse_ip(dash + 1, n - (size_t)(dash - p) - 1, &b) != 0 || b < a) {
                *err = xasprintf("sources '%.*s': expected A.B.C.D-E.F.G.H with the first address "
                                 "not above the last",
                                 (int)n, p);
                return -1;
            }
            add_range(s, a, (uint64_t)b - a + 1);
        } else if (slash) {
            char *end;
            errno = 0;
            long len = strtol(slash + 1, &end, 10);
            if (parse_ip(p, (size_t)(slash - p), &a) != 0 || end != p + n || slash + 1 == end || len < 0 ||
                len > 32) {
                *err = xasprintf("sources '%.*s': expected A.B.C.D/LEN with LEN 0..32", (int)n, p);
                return -1;
            }
            uint32_t mask = len ? ~(uint32_t)0 << (32 - len) : 0;
            uint64_t count = (uint64_t)1 << (32 - len);
            uint32_t first = a & mask;
            if (len < 31) {
                first += 1;   /* not the network address */
                count -= 2;   /* nor the broadcast address */
            }
            add_range(s, first, count);
        } else {
            if (parse_ip(p, n, &a) != 0) {
                *err = xasprintf("sources '%.*s': expected an IPv4 address, a range A-B or a prefix A/LEN",
                                 (int)n, p);
                return -1;
            }
            add_range(s, a, 1);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

void fl_sources_free(struct fl_sources *s)
{
    free(s->r);
    memset(s, 0, sizeof *s);
}

uint32_t fl_sources_at(const struct fl_sources *s, uint64_t i)
{
    ASSERT(s->total > 0);
    i %= s->total;
    for (size_t k = 0; k < s->n; k++) {
        if (i < s->r[k].count)
            return s->r[k].first + (uint32_t)i;
        i -= s->r[k].count;
    }
    return s->r[0].first; /* not reached: total is the sum of the counts */
}
