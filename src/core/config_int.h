/* The configuration loader's private helpers, shared by config.c (the
 * YAML tree, lookups and key checks) and config_value.c (value syntax and
 * typed getters). Nothing outside src/core/config*.c includes this. */
#ifndef FG_CORE_CONFIG_INT_H
#define FG_CORE_CONFIG_INT_H

#include "core/config.h"

/* Sets *err (when err is non-NULL) to "FILE:LINE: PATH: message" for
 * node n and returns -1. */
int cfg__fail(char **err, const struct cfg_node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Length of a NULL-terminated list of names. */
size_t cfg__list_len(const char *const *l);
/* "a, b, c" into out (truncated to cap). */
void cfg__join_names(const char *const *names, char *out, size_t cap);

#endif
