/* Rate-limit keys: which bucket a request counts against.
 *
 * A key spec is a list of parts, each taken from the request: the client
 * address (or its IPv4 /N and IPv6 /M network), a header value (an API
 * key), a cookie value, the route name, or a literal. rl_key_build()
 * encodes the parts in order into one opaque byte string, each part
 * framed so that the concatenation is unambiguous:
 *   address  'i' '4'|'6' <prefix bits, 1 byte> <the prefix's bytes, masked>
 *   text     <tag> <decimal length> ':' <bytes>       (tag h, c, r, l)
 *   long     <TAG> '#' <16-byte XXH3-128 of the bytes> (over RL_KEY_VALUE_MAX)
 *   absent   <tag> '-'                                (optional part missing)
 * so different requests give equal keys only when every part is equal
 * (or, for values over RL_KEY_VALUE_MAX bytes, equal in their 128-bit
 * digest). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as IPv4.
 *
 * When a part that is not optional is missing (no such header or cookie,
 * no usable address, no route), rl_key_build() returns RL_KEY_ABSENT and
 * the rule does not apply to the request, as with nginx's empty key.
 *
 * Spec text for configuration (rl_key_spec_parse), parts joined by '+':
 *   ip            the client address
 *   ip/24         IPv4 /24 (IPv6 stays /128)
 *   ip/24/64      IPv4 /24 and IPv6 /64
 *   header:NAME   the first NAME header's value (name case-insensitive)
 *   cookie:NAME   the first NAME cookie's value (name case-sensitive)
 *   route         the route name
 *   literal:TEXT  TEXT (no '+')
 * and a trailing '?' makes a part optional, e.g. "header:X-Api-Key?+ip". */
#ifndef GW_RLKEY_H
#define GW_RLKEY_H

#include "core/common.h"
#include "core/http1.h"

#include <sys/socket.h>

#define RL_KEY_MAX_PARTS 8
#define RL_KEY_NAME_MAX 64   /* header/cookie name or literal, incl. the NUL */
#define RL_KEY_VALUE_MAX 120 /* longer values are keyed by their digest */
#define RL_KEY_MAX 1024      /* longest encoded key (fits RL_STORE_KEY_MAX) */

#define RL_KEY_ABSENT (-1)

enum rl_key_kind {
    RL_KEY_IP,
    RL_KEY_HEADER,
    RL_KEY_COOKIE,
    RL_KEY_ROUTE,
    RL_KEY_LITERAL,
};

struct rl_key_part {
    enum rl_key_kind kind;
    uint8_t v4_prefix;          /* IP: IPv4 bits kept, 0..32 */
    uint8_t v6_prefix;          /* IP: IPv6 bits kept, 0..128 */
    bool optional;              /* missing: encode "absent" instead of skipping */
    uint8_t name_len;
    char name[RL_KEY_NAME_MAX]; /* header or cookie name, literal text; NUL-terminated */
};

struct rl_key_spec {
    unsigned nparts;
    struct rl_key_part parts[RL_KEY_MAX_PARTS];
};

/* What a key is built from; views, nothing is copied or kept. */
struct rl_key_input {
    const struct sockaddr *peer;       /* client address (AF_INET/AF_INET6); NULL: use ip */
    const char *ip;                    /* client address as text when peer is NULL */
    size_t ip_len;
    const struct http_header *headers; /* the request's headers */
    size_t nheaders;
    const char *route;                 /* route name; NULL: none */
    size_t route_len;
};

/* Encodes the key of in under spec into out (RL_KEY_MAX bytes). Returns
 * its length (>= 1), or RL_KEY_ABSENT when a required part is missing.
 * Pure; any thread. */
int rl_key_build(const struct rl_key_spec *spec, const struct rl_key_input *in, char *out);

/* Parses spec text (see the file comment) into *spec. Returns 0, or -1
 * with *err set (caller frees). Config-time. */
int rl_key_spec_parse(struct rl_key_spec *spec, const char *text, char **err);

/* Adds one part; returns 0, or -1 when spec is full or name does not fit
 * (name may be NULL for ip and route). */
int rl_key_spec_add(struct rl_key_spec *spec, enum rl_key_kind kind, const char *name,
                    uint8_t v4_prefix, uint8_t v6_prefix, bool optional);

#endif
