/* The sift steps of an intrusive binary min-heap, shared by the event
 * loop's timers (core/ev.c) and the broker's message heaps
 * (broker/queue/queue.c).
 *
 * The caller owns the array of element pointers and its growth; each
 * element stores its own index (so it can be removed or re-keyed in
 * O(log n)). HEAP_DEFINE generates the steps for one element type, so the
 * comparison inlines: the timer heap is on every loop iteration, and a call
 * through a function pointer per comparison would cost there.
 *
 *   HEAP_DEFINE(prefix, T, CTX, LESS, SETIDX)
 *     T        element type (the array is T **)
 *     CTX      a context type passed through to LESS and SETIDX
 *     LESS     bool LESS(CTX ctx, const T *a, const T *b): a sorts first
 *     SETIDX   void SETIDX(CTX ctx, T *e, size_t i): e now sits at a[i]
 *
 * generates (static inline):
 *   prefix_up(ctx, a, i)         element i may be smaller than its parent
 *   prefix_down(ctx, a, n, i)    element i may be larger than its children
 *   prefix_fix(ctx, a, n, i)     element i's key changed either way
 *   prefix_push(ctx, a, n, e)    e goes in at a[n]; the caller counts n + 1
 *   prefix_remove(ctx, a, n, i)  a[i] leaves; the caller counts n - 1 */
#ifndef FG_CORE_HEAP_H
#define FG_CORE_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#define HEAP_DEFINE(prefix, T, CTX, LESS, SETIDX)                                  \
    static inline void prefix##_up(CTX ctx, T **a, size_t i)                       \
    {                                                                              \
        T *e = a[i];                                                               \
        while (i > 0) {                                                            \
            size_t p = (i - 1) / 2;                                                \
            if (!LESS(ctx, e, a[p]))                                               \
                break;                                                             \
            a[i] = a[p];                                                           \
            SETIDX(ctx, a[i], i);                                                  \
            i = p;                                                                 \
        }                                                                          \
        a[i] = e;                                                                  \
        SETIDX(ctx, e, i);                                                         \
    }                                                                              \
    static inline void prefix##_down(CTX ctx, T **a, size_t n, size_t i)           \
    {                                                                              \
        T *e = a[i];                                                               \
        for (;;) {                                                                 \
            size_t c = 2 * i + 1;                                                  \
            if (c >= n)                                                            \
                break;                                                             \
            if (c + 1 < n && LESS(ctx, a[c + 1], a[c]))                            \
                c++;                                                               \
            if (!LESS(ctx, a[c], e))                                               \
                break;                                                             \
            a[i] = a[c];                                                           \
            SETIDX(ctx, a[i], i);                                                  \
            i = c;                                                                 \
        }                                                                          \
        a[i] = e;                                                                  \
        SETIDX(ctx, e, i);                                                         \
    }                                                                              \
    static inline void prefix##_fix(CTX ctx, T **a, size_t n, size_t i)            \
    {                                                                              \
        if (i > 0 && LESS(ctx, a[i], a[(i - 1) / 2]))                              \
            prefix##_up(ctx, a, i);                                                \
        else                                                                       \
            prefix##_down(ctx, a, n, i);                                           \
    }                                                                              \
    static inline void prefix##_push(CTX ctx, T **a, size_t n, T *e)               \
    {                                                                              \
        a[n] = e;                                                                  \
        prefix##_up(ctx, a, n);                                                    \
    }                                                                              \
    static inline void prefix##_remove(CTX ctx, T **a, size_t n, size_t i)         \
    {                                                                              \
        T *last = a[n - 1];                                                        \
        if (i == n - 1)                                                            \
            return;                                                                \
        a[i] = last;                                                               \
        SETIDX(ctx, last, i);                                                      \
        prefix##_fix(ctx, a, n - 1, i);                                            \
    }

#endif
