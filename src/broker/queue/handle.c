/* Receipt handles, message ids and request ids.
 *
 * A receipt handle names one delivery of one message: queue id, message
 * id and the receive count at that delivery (the generation), plus a
 * 64-bit keyed hash of the three under the broker's secret (kept in the
 * log's META record, so handles survive restarts). That makes handles
 * opaque and unforgeable enough for a broker that does not authenticate
 * by default: a client cannot delete a message it never received by
 * guessing ids. The three fields are masked with a keyed hash of the
 * MAC so handles look random and say nothing about message counts. 24
 * bytes, base64url without padding: 32 characters.
 *
 * Message ids are UUID-shaped: the low half is the message id itself (so
 * ids are unique for the life of the log), the high half a keyed hash of
 * it, so they look like the random UUIDs SQS hands out. */
#include "broker/queue/engine.h"
#include "core/base64.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#define HANDLE_RAW 24

void bk_random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* No entropy source: fall back to the clock, which only makes
             * handles guessable, never wrong. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)p;
            for (; n; n--, b++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                *b = (uint8_t)(x >> 56);
            }
            return;
        }
        b += r;
        n -= (size_t)r;
    }
}

static uint64_t handle_mac(const struct bk_engine *e, const uint8_t fields[16])
{
    uint8_t in[16 + sizeof e->secret];
    memcpy(in, fields, 16);
    memcpy(in + 16, e->secret, sizeof e->secret);
    uint64_t seed;
    memcpy(&seed, e->secret, sizeof seed);
    return XXH3_64bits_withSeed(in, sizeof in, seed);
}

/* XORs the 16 field bytes with a keystream derived from the MAC. */
static void mask_fields(const struct bk_engine *e, uint8_t raw[HANDLE_RAW])
{
    uint64_t seed;
    memcpy(&seed, e->secret + 16, sizeof seed);
    XXH128_hash_t k = XXH3_128bits_withSeed(raw + 16, 8, seed);
    for (int i = 0; i < 8; i++) {
        raw[i] ^= (uint8_t)(k.low64 >> (8 * i));
        raw[8 + i] ^= (uint8_t)(k.high64 >> (8 * i));
    }
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void bk_handle_make(const struct bk_engine *e, const struct bk_msg *m, char out[64])
{
    uint8_t raw[HANDLE_RAW];
    put_le(raw, m->q->qid, 4);
    put_le(raw + 4, m->mid, 8);
    put_le(raw + 12, m->recv_count, 4);
    put_le(raw + 16, handle_mac(e, raw), 8);
    mask_fields(e, raw);
    /* 24 bytes are 8 groups of 3: exactly 32 characters, no padding. */
    base64url_encode(out, raw, HANDLE_RAW);
}

bool bk_handle_parse(const struct bk_engine *e, const char *h, uint32_t *qid, uint64_t *mid,
                     uint32_t *gen)
{
    if (!h || strlen(h) != HANDLE_RAW / 3 * 4)
        return false;
    uint8_t raw[HANDLE_RAW];
    if (base64url_decode(h, HANDLE_RAW / 3 * 4, raw) != HANDLE_RAW)
        return false;
    mask_fields(e, raw);
    if (get_le(raw + 16, 8) != handle_mac(e, raw))
        return false;
    *qid = (uint32_t)get_le(raw, 4);
    *mid = get_le(raw + 4, 8);
    *gen = (uint32_t)get_le(raw + 12, 4);
    return true;
}

static void format_uuid(uint64_t hi, uint64_t lo, char out[40])
{
    hi = (hi & ~0xF000ull) | 0x4000ull;  /* version 4 */
    lo = (lo & ~(3ull << 62)) | (2ull << 62); /* RFC 4122 variant */
    snprintf(out, 40, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xFFFF,
             (unsigned)hi & 0xFFFF, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xFFFFFFFFFFFFull));
}

void bk_message_id(const struct bk_engine *e, uint64_t mid, char out[40])
{
    uint64_t seed;
    memcpy(&seed, e->secret + 8, sizeof seed);
    format_uuid(XXH3_64bits_withSeed(&mid, sizeof mid, seed), mid, out);
}

void bk_request_id(uint64_t seq, char out[40])
{
    static _Thread_local uint64_t salt;
    if (!salt)
        bk_random_bytes(&salt, sizeof salt);
    format_uuid(XXH3_64bits_withSeed(&seq, sizeof seq, salt), seq ^ salt, out);
}
