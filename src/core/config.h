/* Generic YAML configuration loading. A document is parsed with libyaml
 * into a small tree of nodes (mapping, sequence, scalar), each of which
 * remembers the line it came from; typed getters then turn scalars into
 * durations, sizes, numbers, booleans, strings and enums, and every
 * failure is reported as
 *
 *     FILE:LINE: KEY.PATH: message
 *     gw.yaml:12: services[1].health.interval: expected a duration like 500ms, 2s or 1m, not '5'
 *
 * This module knows nothing about any server: each server's config.c walks
 * the tree and builds its own plain structs with these helpers.
 *
 * Accepted YAML is a deliberate subset: one document, no aliases (anchors
 * are ignored), scalar keys only, no duplicate keys in a mapping, at most
 * CFG_MAX_DEPTH nested collections, at most CFG_MAX_BYTES of input.
 *
 * Value syntax (shared by every server's configuration):
 *   duration  a number with a unit: ms, s, m, h or d, and sums of them such
 *             as 1m30s. A unit is required except for a bare 0, because a
 *             bare number means milliseconds to HAProxy and seconds to nginx
 *             and a guess either way is a silent bug. Stored as ms.
 *   size      a number with an optional binary unit k, m, g or t (any case,
 *             optionally followed by b or ib: 16k = 16K = 16KiB = 16384).
 *             A bare number is bytes.
 *   bool      true/false, yes/no, on/off (any case).
 *   int       decimal, optional sign.
 *
 * Conventions: startup functions return 0, or -1 with *err set to a
 * message the caller frees (HAProxy style). Getters take the node found by
 * cfg_get(); a NULL node (key absent) returns 0 and leaves *out untouched,
 * so callers store the default first and then let the file override it.
 * Nothing here is thread-safe or meant for the data path. */
#ifndef FG_CONFIG_H
#define FG_CONFIG_H

#include "core/common.h"

#define CFG_MAX_BYTES (4u << 20) /* larger inputs are rejected outright */
#define CFG_MAX_DEPTH 64         /* nested mappings/sequences, root = 1 */

enum cfg_type { CFG_SCALAR = 0, CFG_MAP, CFG_SEQ };

struct cfg_node {
    enum cfg_type type;
    int line;                 /* 1-based: the key's line for a mapping value, else the node's own */
    const char *file;         /* document name for messages, owned by the cfg_doc */
    struct cfg_node *parent;  /* NULL for the root */
    char *key;                /* key in the parent mapping; NULL in a sequence or at the root */
    size_t idx;               /* position in the parent (sequence index in paths) */
    char *str;                /* scalar text, NUL-terminated; NULL for collections */
    size_t len;               /* scalar length in bytes (may exceed strlen on embedded NUL) */
    bool plain;               /* unquoted scalar, so "", ~ and null read as null */
    size_t n;                 /* number of children of a mapping or sequence */
    size_t cap;               /* allocated slots in kids */
    struct cfg_node **kids;   /* children in document order */
};

struct cfg_doc {
    char *name;               /* as given to the loader, used in every message */
    struct cfg_node *root;    /* never NULL after a successful load */
};

/* Parses len bytes of YAML. name prefixes every message (usually the file
 * path). An input with no content ("", only comments, a lone "---" or
 * "~") is an error. On success *out owns the tree (free with
 * cfg_doc_free). */
int cfg_load_string(const char *yaml, size_t len, const char *name, struct cfg_doc **out, char **err);
/* Reads path (at most CFG_MAX_BYTES) and parses it, naming it path. */
int cfg_load_file(const char *path, struct cfg_doc **out, char **err);
void cfg_doc_free(struct cfg_doc *d);

/* "services[1].health.interval"; "" for the root. Caller frees. */
char *cfg_path(const struct cfg_node *n);
/* Builds "FILE:LINE: PATH: message" (PATH omitted for the root) for
 * checks the caller makes itself. Caller frees. */
char *cfg_errorf(const struct cfg_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Readable name of the node's kind for messages: "a mapping", "a list",
 * "a value" or "nothing" (null). */
const char *cfg_kind(const struct cfg_node *n);

/* An unquoted empty, ~ or null scalar. */
bool cfg_is_null(const struct cfg_node *n);
/* The value for key in a mapping; NULL when map is NULL, not a mapping,
 * or has no such key. Linear in the mapping's size. */
const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key);
/* Like cfg_get, but a missing key is an error reported at the map's line. */
const struct cfg_node *cfg_require(const struct cfg_node *map, const char *key, char **err);
/* Fails unless n (non-NULL) has type t: "expected a mapping, got a list". */
int cfg_expect(const struct cfg_node *n, enum cfg_type t, char **err);
/* Every key of map must be in the NULL-terminated list allowed; the first
 * one that is not is reported at its own line, with the closest valid key
 * as a suggestion and the full list. A NULL map passes. */
int cfg_check_keys(const struct cfg_node *map, const char *const *allowed, char **err);
/* A section of a configuration: absent (NULL, every key keeps its
 * default), or a mapping with only the keys allowed. */
static inline int cfg_section(const struct cfg_node *n, const char *const *allowed, char **err)
{
    if (!n)
        return 0;
    if (cfg_expect(n, CFG_MAP, err) < 0)
        return -1;
    return cfg_check_keys(n, allowed, err);
}
/* The candidate closest to word by edit distance when close enough to be
 * a plausible typo, else the first candidate that word abbreviates (at
 * least 3 characters); NULL otherwise. */
const char *cfg_suggest(const char *word, const char *const *candidates, size_t n);

/* Typed getters. NULL node: return 0, *out untouched. Otherwise the node
 * must be a non-null scalar of the right syntax within [min, max]. */
int cfg_duration(const struct cfg_node *n, uint64_t min_ms, uint64_t max_ms, uint64_t *out, char **err);
int cfg_size(const struct cfg_node *n, uint64_t min, uint64_t max, uint64_t *out, char **err);
int cfg_int(const struct cfg_node *n, int64_t min, int64_t max, int64_t *out, char **err);
int cfg_double(const struct cfg_node *n, double min, double max, double *out, char **err);
int cfg_bool(const struct cfg_node *n, bool *out, char **err);
/* Frees the previous *out (may be NULL) and stores a copy of the text.
 * Text with an embedded NUL byte is rejected. */
int cfg_string(const struct cfg_node *n, char **out, char **err);
/* names is NULL-terminated; *out is the index of the match (case-insensitive). */
int cfg_enum(const struct cfg_node *n, const char *const *names, int *out, char **err);

/* Value syntax without a node, for other callers (admin API, tests).
 * Return 0 or -1 (syntax or overflow). */
/* A sequence of strings, each passed to check (NULL: any), which returns
 * NULL or why the string is refused. A NULL node leaves *out alone;
 * otherwise the old list is freed and replaced (caller frees with
 * cfg_strings_free). Duplicates are refused (case-insensitive). */
int cfg_string_list(const struct cfg_node *n, const char *(*check)(const char *), char ***out, size_t *nout,
                    char **err);
void cfg_strings_free(char **v, size_t n);

/* The access settings of an HTTP control plane (an admin listener), from
 * "admin: ADDR" or "admin: {listen: ADDR, token_file: PATH,
 * allowed_hosts: [NAME, ...]}". */
struct cfg_access {
    char **hosts;       /* allowed_hosts: names accepted in Host */
    size_t nhosts;
    char *token;        /* contents of token_file, trimmed; NULL when none */
    char *token_file;   /* as written, for messages */
};
/* Loads the admin node n (NULL: absent, nothing to do) into acc and sets
 * *listen to the node holding the address (n itself for the string form;
 * NULL when the mapping has none), for the caller to parse. The token
 * file (a path relative to the working directory) is read now: it must
 * hold one token of 16..4096 visible ASCII characters, surrounding
 * whitespace and a final newline ignored. */
int cfg_access(const struct cfg_node *n, const struct cfg_node **listen, struct cfg_access *acc, char **err);
void cfg_access_free(struct cfg_access *acc);

int cfg_parse_duration(const char *s, uint64_t *ms);
int cfg_parse_size(const char *s, uint64_t *bytes);
int cfg_parse_bool(const char *s, bool *out);
/* Shortest exact spelling: 90000 -> "90s", 3600000 -> "1h", 0 -> "0". */
void cfg_format_duration(uint64_t ms, char *out, size_t outlen);
/* 16384 -> "16k", 1000 -> "1000". */
void cfg_format_size(uint64_t bytes, char *out, size_t outlen);

#endif
