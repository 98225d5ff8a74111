/* Small shared definitions for every floodgate module: always-on
 * assertions, allocation wrappers that abort on failure, branch hints and
 * a few helpers. Everything here is header-only or in common.c. */
#ifndef FG_COMMON_H
#define FG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FG_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FG_UNUSED(x) ((void)(x))
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Always-on invariant check (Redis serverAssert, HAProxy BUG_ON). */
#define ASSERT(cond)                                                     \
    do {                                                                 \
        if (unlikely(!(cond)))                                           \
            fg_assert_fail(#cond, __FILE__, __LINE__);                   \
    } while (0)

/* Defensive branches in the SQLite style: ALWAYS(x) is expected true,
 * NEVER(x) expected false; both still evaluate x in release builds. */
#define ALWAYS(x) likely(x)
#define NEVER(x) unlikely(x)

__attribute__((noreturn)) void fg_assert_fail(const char *expr, const char *file, int line);

/* Allocation wrappers: abort with a message on failure. Memory growth is
 * bounded by configured limits, not by checking every malloc. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Formats into a freshly allocated string (caller frees). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Case-insensitive comparison of a length-carrying string with a C
 * string (usually a literal: inline, so its length folds to a constant and
 * most mismatches cost one compare). */
static inline bool fg_strieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return alen == n && strncasecmp(a, lit, n) == 0;
}

#endif
