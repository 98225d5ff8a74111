/* The byte level of the queue engine's log records (record.c), shared
 * with replay (replay.c): the META version, the payload reader and the
 * live-record swap. Private to broker/queue. */
#ifndef FG_BROKER_QUEUE_RECORD_H
#define FG_BROKER_QUEUE_RECORD_H

#include "broker/queue/engine.h"

#define BK_META_VERSION 1

/* A bounds-checked reader over a record's payload: a read past the end
 * sets bad and yields NULL or 0, so a decoder reads every field and checks
 * bad once. */
struct bk_rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static inline const uint8_t *bk_rd_bytes(struct bk_rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

/* A little-endian integer of n bytes. */
static inline uint64_t bk_rd_le(struct bk_rd *r, int n)
{
    const uint8_t *p = bk_rd_bytes(r, (size_t)n);
    uint64_t v = 0;
    for (int i = 0; p && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
#define bk_rd_u8(r) ((uint8_t)bk_rd_le((r), 1))
#define bk_rd_u16(r) ((uint16_t)bk_rd_le((r), 2))
#define bk_rd_u32(r) ((uint32_t)bk_rd_le((r), 4))
#define bk_rd_u64(r) bk_rd_le((r), 8)

/* Makes (pos, len) the live record in *old / *old_len: the previous one
 * is released, the new one retained (pos.seg 0: none). */
void bk__swap_live(struct bk_engine *e, struct store_pos *old, uint32_t *old_len,
                   struct store_pos pos, uint32_t len);

#endif
