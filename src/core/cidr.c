/* Implementation of cidr.h: ranges of 128-bit addresses, sorted by their
 * first address and merged, then binary-searched. */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

void cidr_set_init(struct cidr_set *s) { memset(s, 0, sizeof *s); }

void cidr_set_free(struct cidr_set *s)
{
    free(s->r);
    cidr_set_init(s);
}

static void v4_mapped(const void *in4, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, in4, 4);
}

int cidr_addr16(const char *text, uint8_t out[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        v4_mapped(&a4, out);
        return 0;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, text, &a6) == 1) {
        memcpy(out, &a6, 16);
        return 0;
    }
    return -1;
}

bool cidr_sa16(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        v4_mapped(&((const struct sockaddr_in *)sa)->sin_addr, out);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

int cidr_set_add(struct cidr_set *s, const char *text, char **err)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof addr) {
        *err = xasprintf("bad CIDR '%s'", text);
        return -1;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    uint8_t a[16];
    if (cidr_addr16(addr, a) != 0) {
        *err = xasprintf("bad CIDR '%s': not an IPv4 or IPv6 address", text);
        return -1;
    }
    bool v4 = strchr(addr, ':') == NULL;
    int maxbits = v4 ? 32 : 128;
    int bits = maxbits;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > maxbits) {
            *err = xasprintf("bad CIDR '%s': prefix length must be 0..%d", text, maxbits);
            return -1;
        }
        bits = (int)b;
    }
    int pbits = v4 ? bits + 96 : bits; /* prefix length in the 128-bit form */
    struct cidr_range r;
    for (int i = 0; i < 16; i++) {
        int keep = pbits - i * 8; /* bits of this byte inside the prefix */
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        if (a[i] & ~mask) {
            *err = xasprintf("bad CIDR '%s': address has bits set beyond /%d", text, bits);
            return -1;
        }
        r.lo[i] = a[i];
        r.hi[i] = (uint8_t)(a[i] | ~mask);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->r = xrealloc(s->r, s->cap * sizeof *s->r);
    }
    s->r[s->n++] = r;
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    return memcmp(((const struct cidr_range *)a)->lo, ((const struct cidr_range *)b)->lo, 16);
}

/* a + 1 == b, as 128-bit big-endian numbers (adjacent ranges merge). */
static bool next_of(const uint8_t a[16], const uint8_t b[16])
{
    uint8_t t[16];
    memcpy(t, a, 16);
    for (int i = 15; i >= 0; i--)
        if (++t[i] != 0)
            break;
    return memcmp(t, b, 16) == 0;
}

void cidr_set_finish(struct cidr_set *s)
{
    if (s->n < 2)
        return;
    qsort(s->r, s->n, sizeof *s->r, range_cmp);
    size_t o = 0;
    for (size_t i = 1; i < s->n; i++) {
        struct cidr_range *cur = &s->r[o];
        if (memcmp(s->r[i].lo, cur->hi, 16) <= 0 || next_of(cur->hi, s->r[i].lo)) {
            if (memcmp(s->r[i].hi, cur->hi, 16) > 0)
                memcpy(cur->hi, s->r[i].hi, 16);
        } else {
            s->r[++o] = s->r[i];
        }
    }
    s->n = o + 1;
}

bool cidr_set_match16(const struct cidr_set *s, const uint8_t addr[16])
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* first range whose lo > addr */
        size_t mid = (lo + hi) / 2;
        if (memcmp(s->r[mid].lo, addr, 16) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && memcmp(addr, s->r[lo - 1].hi, 16) <= 0;
}

bool cidr_set_match_sa(const struct cidr_set *s, const struct sockaddr *sa)
{
    uint8_t a[16];
    return cidr_sa16(sa, a) && cidr_set_match16(s, a);
}
