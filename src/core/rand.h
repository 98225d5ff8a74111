/* A small non-cryptographic random generator for the data path: xorshift64*
 * (Vigna), one 64-bit state per thread, no locking. Fast and good enough
 * for load-test choices, error rolls and jitter; never for anything an
 * attacker could profit from guessing. */
#ifndef FG_RAND_H
#define FG_RAND_H

#include <stdint.h>

/* The next number of the sequence in *state (which must not be 0). */
static inline uint64_t fg_rand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif
