/* CIDR sets for allow/deny lists: IPv4 and IPv6 prefixes, matched against
 * an address in O(log n). IPv4 addresses are kept as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one sorted table of 128-bit ranges serves both and
 * an IPv4 rule also matches a v4-mapped peer. A set is immutable once
 * built (cidr_set_finish), so any number of threads may match against it. */
#ifndef FG_CIDR_H
#define FG_CIDR_H

#include "core/common.h"
#include <sys/socket.h>

struct cidr_range {
    uint8_t lo[16]; /* first address, network order */
    uint8_t hi[16]; /* last address */
};

struct cidr_set {
    struct cidr_range *r;
    size_t n, cap;
};

void cidr_set_init(struct cidr_set *s);
void cidr_set_free(struct cidr_set *s);
/* Adds "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Host bits below the prefix must be zero ("10.0.0.1/8" is refused as a
 * likely typo). Returns 0, or -1 with *err (caller frees). */
int cidr_set_add(struct cidr_set *s, const char *text, char **err);
/* Sorts and merges overlapping ranges; call once after the last add. */
void cidr_set_finish(struct cidr_set *s);
/* Matches a binary address (16 bytes, v4 mapped) or a sockaddr. */
bool cidr_set_match16(const struct cidr_set *s, const uint8_t addr[16]);
bool cidr_set_match_sa(const struct cidr_set *s, const struct sockaddr *sa);
/* Parses a textual IPv4/IPv6 address into the 16-byte form. */
int cidr_addr16(const char *text, uint8_t out[16]);
/* The 16-byte form of a sockaddr (AF_INET or AF_INET6); false otherwise. */
bool cidr_sa16(const struct sockaddr *sa, uint8_t out[16]);

#endif
