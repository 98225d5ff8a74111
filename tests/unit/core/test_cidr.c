/* Unit tests for core/cidr: parsing, matching at range edges, IPv4 and
 * IPv6, merging, refusals. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "core/cidr.h"

static struct cidr_set build(const char *const *items)
{
    struct cidr_set s;
    cidr_set_init(&s);
    for (; *items; items++) {
        char *err = NULL;
        cr_assert_eq(cidr_set_add(&s, *items, &err), 0, "%s: %s", *items, err ? err : "");
    }
    cidr_set_finish(&s);
    return s;
}

static bool m(const struct cidr_set *s, const char *addr)
{
    uint8_t a[16];
    cr_assert_eq(cidr_addr16(addr, a), 0, "%s", addr);
    return cidr_set_match16(s, a);
}

Test(cidr_match, ipv4_edges)
{
    struct cidr_set s = build((const char *[]){"10.0.0.0/8", "192.168.1.0/24", "1.2.3.4", NULL});
    cr_assert(m(&s, "10.0.0.0"));
    cr_assert(m(&s, "10.255.255.255"));
    cr_assert(!m(&s, "11.0.0.0"));
    cr_assert(!m(&s, "9.255.255.255"));
    cr_assert(m(&s, "192.168.1.77"));
    cr_assert(!m(&s, "192.168.2.0"));
    cr_assert(m(&s, "1.2.3.4"));
    cr_assert(!m(&s, "1.2.3.5"));
    cr_assert(!m(&s, "::1"));
    cidr_set_free(&s);
}

Test(cidr_match, ipv6_and_mapped)
{
    struct cidr_set s = build((const char *[]){"2001:db8::/32", "::1", "127.0.0.0/8", NULL});
    cr_assert(m(&s, "2001:db8::1"));
    cr_assert(m(&s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_assert(!m(&s, "2001:db9::"));
    cr_assert(m(&s, "::1"));
    cr_assert(!m(&s, "::2"));
    cr_assert(m(&s, "127.9.9.9"));
    cr_assert(m(&s, "::ffff:127.0.0.1"), "an IPv4 rule matches a v4-mapped peer");
    cidr_set_free(&s);
}

Test(cidr_match, whole_space_and_empty)
{
    struct cidr_set all = build((const char *[]){"0.0.0.0/0", "::/0", NULL});
    cr_assert(m(&all, "8.8.8.8"));
    cr_assert(m(&all, "fe80::1"));
    cidr_set_free(&all);
    struct cidr_set none = build((const char *[]){NULL});
    cr_assert(!m(&none, "8.8.8.8"));
    cidr_set_free(&none);
}

Test(cidr_match, merges_overlaps_and_neighbours)
{
    struct cidr_set s = build((const char *[]){"10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/24",
                                               "10.0.0.7", "10.0.1.0/24", NULL});
    cr_assert_eq(s.n, 1, "adjacent and overlapping ranges merge into one, got %zu", s.n);
    cr_assert(m(&s, "10.0.1.255"));
    cr_assert(!m(&s, "10.0.2.0"));
    cidr_set_free(&s);
}

Test(cidr_match, sockaddr)
{
    struct cidr_set s = build((const char *[]){"127.0.0.0/8", NULL});
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(0x7f000005);
    cr_assert(cidr_set_match_sa(&s, (struct sockaddr *)&in));
    in.sin_addr.s_addr = htonl(0x80000005);
    cr_assert(!cidr_set_match_sa(&s, (struct sockaddr *)&in));
    cidr_set_free(&s);
}

Test(cidr_parse, refusals)
{
    const char *bad[] = {"", "/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.1/8",
                         "2001:db8::1/32", "::/129", "hello", "10.0.0.0/8x", NULL};
    for (const char **b = bad; *b; b++) {
        struct cidr_set s;
        cidr_set_init(&s);
        char *err = NULL;
        cr_assert_eq(cidr_set_add(&s, *b, &err), -1, "'%s' should be refused", *b);
        cr_assert_not_null(err);
        free(err);
        cidr_set_free(&s);
    }
}
