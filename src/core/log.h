/* Logging: leveled, to stderr, one line per call, with a timestamp and the
 * thread's name. log_at() checks the level before evaluating its
 * arguments, so disabled levels cost one comparison. Debug logging
 * compiles out of NDEBUG builds. */
#ifndef FG_LOG_H
#define FG_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern _Atomic int log_level;      /* current threshold, default LOG_INFO; any thread may change it */
extern _Thread_local char log_thread_name[16]; /* e.g. "w3", "main" */

void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_parse_level(const char *name); /* -1 when unknown */

#define log_at(level, ...)                         \
    do {                                           \
        if ((level) <= log_level)                  \
            log_write((level), __VA_ARGS__);       \
    } while (0)

#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#ifdef NDEBUG
#define log_debug(...) do { } while (0)
#else
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#endif

#endif
