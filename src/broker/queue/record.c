/* Log records: how the engine's state becomes durable (encoding, live-
 * record accounting, compaction) and the decoding replay.c builds on.
 *
 * Every record is little-endian binary (see enum bk_rec for the kinds):
 *   META       u8 version, secret[32], u64 reserved_mid, u32 reserved_qid
 *   QUEUE      u32 qid, u64 created, u64 modified, u8 name_len, name,
 *              u32 attrs_len, attrs JSON, u32 tags_len, tags JSON
 *   QUEUE_DEL  u32 qid
 *   SEND       u32 qid, u8 qname_len, qname, u64 mid, u64 sent, u64 visible_at,
 *              u64 first_recv,
 *              u32 recv_count, u32 origin_qid, u8 flags, md5 body/attrs/sys
 *              (16 bytes each), u16 group_len, group, u16 dedup_len, dedup,
 *              u32 attrs_len, u32 sys_len, u32 body_len, attrs, sys, body
 *   STATE      u32 qid, u64 mid, u32 recv_count, u64 visible_at,
 *              u64 first_recv
 *   DELETE     u32 qid, u64 mid
 *   PURGE      u32 qid
 *   DEDUP      u32 qid, u64 at, u64 mid, u16 key_len, key
 * attrs, sys and body are contiguous at the end of a SEND, so a message's
 * cached data and a SEND read back from disk have the same layout.
 *
 * Live records (accounted with journal.retain/release so the store knows
 * how much of each segment is still needed): the latest META, each
 * queue's QUEUE, each message's SEND and latest STATE. DELETE, PURGE and
 * QUEUE_DEL records are never live: they only matter while the records
 * they cancel exist, and those are always older, and segments are dropped
 * oldest first. DEDUP entries are re-appended by compaction while their
 * five minutes last.
 *
 * Ids: message and queue ids must never repeat (a receipt handle names
 * them), yet the records holding the highest ids may be compacted away.
 * A META record reserves a range above the ids in use (bk__log_meta,
 * called by the id allocators in engine.c); replay resumes above the last
 * reservation. */
#include "broker/queue/engine.h"
#include "broker/queue/record.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MID_BLOCK (1u << 20)
#define QID_BLOCK 1024u
#define SEND_F_ATTRS_MD5 1
#define SEND_F_SYS_MD5 2
#define SEND_F_DEDUP 4 /* this send created a deduplication entry */

/* ---- encoding ---- */

static void put_u8(struct buf *b, uint8_t v) { buf_append(b, &v, 1); }
static void put_u16(struct buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_append(b, x, 2);
}
static void put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, x, 4);
}
static void put_u64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, x, 8);
}

/* Appends the record in e->rec; pos.seg == 0 on failure. */
static struct store_pos emit(struct bk_engine *e, uint8_t type)
{
    ASSERT(!e->replaying);
    struct store_pos pos = e->j.append(e->j.ud, type, buf_rptr(&e->rec), (uint32_t)buf_len(&e->rec));
    if (!pos.seg) {
        e->journal_errors++;
        log_at(LOG_ERROR, "broker: log append of a %zu-byte record failed", buf_len(&e->rec));
    }
    return pos;
}

void bk__swap_live(struct bk_engine *e, struct store_pos *old, uint32_t *old_len,
                      struct store_pos pos, uint32_t len)
{
    if (old->seg)
        e->j.release(e->j.ud, *old, *old_len);
    *old = pos;
    *old_len = len;
    if (pos.seg)
        e->j.retain(e->j.ud, pos, len);
}

bool bk__log_meta(struct bk_engine *e)
{
    if (e->reserved_mid < e->next_mid + MID_BLOCK / 2)
        e->reserved_mid = e->next_mid + MID_BLOCK;
    if (e->reserved_qid < e->next_qid + QID_BLOCK / 2)
        e->reserved_qid = e->next_qid + QID_BLOCK;
    buf_reset(&e->rec);
    put_u8(&e->rec, BK_META_VERSION);
    buf_append(&e->rec, e->secret, sizeof e->secret);
    put_u64(&e->rec, e->reserved_mid);
    put_u32(&e->rec, e->reserved_qid);
    uint32_t len = (uint32_t)buf_len(&e->rec);
    struct store_pos pos = emit(e, BK_REC_META);
    if (!pos.seg)
        return false;
    bk__swap_live(e, &e->meta_pos, &e->meta_len, pos, len);
    return true;
}

bool bk__log_queue(struct bk_engine *e, struct bk_queue *q)
{
    cJSON *a = bk_qattrs_to_json(&q->a);
    char *at = cJSON_PrintUnformatted(a);
    char *tt = cJSON_PrintUnformatted(q->tags);
    cJSON_Delete(a);
    buf_reset(&e->rec);
    put_u32(&e->rec, q->qid);
    put_u64(&e->rec, q->created_ms);
    put_u64(&e->rec, q->modified_ms);
    put_u8(&e->rec, (uint8_t)q->name_len);
    buf_append(&e->rec, q->name, q->name_len);
    put_u32(&e->rec, (uint32_t)strlen(at));
    buf_append_str(&e->rec, at);
    put_u32(&e->rec, (uint32_t)strlen(tt));
    buf_append_str(&e->rec, tt);
    free(at);
    free(tt);
    uint32_t len = (uint32_t)buf_len(&e->rec);
    struct store_pos pos = emit(e, BK_REC_QUEUE);
    if (!pos.seg)
        return false;
    bk__swap_live(e, &q->pos, &q->rec_len, pos, len);
    return true;
}

bool bk__log_queue_del(struct bk_engine *e, struct bk_queue *q)
{
    buf_reset(&e->rec);
    put_u32(&e->rec, q->qid);
    return emit(e, BK_REC_QUEUE_DEL).seg != 0;
}

bool bk__log_send(struct bk_engine *e, struct bk_msg *m, const char *data, bool dedup_entry)
{
    struct buf *b = &e->rec;
    buf_reset(b);
    put_u32(b, m->q->qid);
    put_u8(b, (uint8_t)m->q->name_len);
    buf_append(b, m->q->name, m->q->name_len);
    put_u64(b, m->mid);
    put_u64(b, m->sent_ms);
    put_u64(b, m->visible_at);
    put_u64(b, m->first_recv_ms);
    put_u32(b, m->recv_count);
    put_u32(b, m->origin_qid);
    uint8_t flags = (m->has_attrs_md5 ? SEND_F_ATTRS_MD5 : 0) | (m->has_sys_md5 ? SEND_F_SYS_MD5 : 0);
    if (dedup_entry)
        flags |= SEND_F_DEDUP;
    put_u8(b, flags);
    buf_append(b, m->md5_body, 16);
    buf_append(b, m->md5_attrs, 16);
    buf_append(b, m->md5_sys, 16);
    size_t gl = m->grp ? m->grp->id_len : 0, dl = m->dedup_id ? strlen(m->dedup_id) : 0;
    put_u16(b, (uint16_t)gl);
    if (gl)
        buf_append(b, m->grp->id, gl);
    put_u16(b, (uint16_t)dl);
    if (dl)
        buf_append(b, m->dedup_id, dl);
    put_u32(b, m->attrs_len);
    put_u32(b, m->sys_len);
    put_u32(b, m->body_len);
    buf_append(b, data, (size_t)m->attrs_len + m->sys_len + m->body_len);
    uint32_t len = (uint32_t)buf_len(b);
    struct store_pos pos = emit(e, BK_REC_SEND);
    if (!pos.seg)
        return false;
    bk__swap_live(e, &m->pos, &m->rec_len, pos, len);
    if (m->spos.seg) {
        e->j.release(e->j.ud, m->spos, m->srec_len);
        m->spos = (struct store_pos){0, 0};
        m->srec_len = 0;
    }
    return true;
}

bool bk__log_state(struct bk_engine *e, struct bk_msg *m)
{
    if (e->replaying)
        return true;
    buf_reset(&e->rec);
    put_u32(&e->rec, m->q->qid);
    put_u64(&e->rec, m->mid);
    put_u32(&e->rec, m->recv_count);
    put_u64(&e->rec, m->visible_at);
    put_u64(&e->rec, m->first_recv_ms);
    uint32_t len = (uint32_t)buf_len(&e->rec);
    struct store_pos pos = emit(e, BK_REC_STATE);
    if (!pos.seg)
        return false;
    bk__swap_live(e, &m->spos, &m->srec_len, pos, len);
    return true;
}

bool bk__log_delete(struct bk_engine *e, uint32_t qid, uint64_t mid)
{
    if (e->replaying)
        return true;
    buf_reset(&e->rec);
    put_u32(&e->rec, qid);
    put_u64(&e->rec, mid);
    return emit(e, BK_REC_DELETE).seg != 0;
}

bool bk__log_purge(struct bk_engine *e, struct bk_queue *q)
{
    buf_reset(&e->rec);
    put_u32(&e->rec, q->qid);
    return emit(e, BK_REC_PURGE).seg != 0;
}

bool bk__log_dedup(struct bk_engine *e, struct bk_queue *q, struct bk_dedup *d)
{
    buf_reset(&e->rec);
    put_u32(&e->rec, q->qid);
    put_u64(&e->rec, d->at_ms);
    put_u64(&e->rec, d->mid);
    size_t kl = strlen(d->id);
    put_u16(&e->rec, (uint16_t)kl);
    buf_append(&e->rec, d->id, kl);
    struct store_pos pos = emit(e, BK_REC_DEDUP);
    if (!pos.seg)
        return false;
    d->pos = pos;
    return true;
}

void bk__release_msg(struct bk_engine *e, struct bk_msg *m)
{
    if (m->pos.seg)
        e->j.release(e->j.ud, m->pos, m->rec_len);
    if (m->spos.seg)
        e->j.release(e->j.ud, m->spos, m->srec_len);
    m->pos = m->spos = (struct store_pos){0, 0};
}

/* ---- decoding ---- */

int bk__decode_send(const void *p, uint32_t len, struct bk_send_rec *s)
{
    struct bk_rd r = {p, len, false};
    memset(s, 0, sizeof *s);
    s->qid = bk_rd_u32(&r);
    s->qname_len = bk_rd_u8(&r);
    s->qname = (const char *)bk_rd_bytes(&r, s->qname_len);
    s->mid = bk_rd_u64(&r);
    s->sent_ms = bk_rd_u64(&r);
    s->visible_at = bk_rd_u64(&r);
    s->first_recv_ms = bk_rd_u64(&r);
    s->recv_count = bk_rd_u32(&r);
    s->origin_qid = bk_rd_u32(&r);
    uint8_t flags = bk_rd_u8(&r);
    const uint8_t *md5 = bk_rd_bytes(&r, 48);
    if (md5) {
        memcpy(s->md5_body, md5, 16);
        memcpy(s->md5_attrs, md5 + 16, 16);
        memcpy(s->md5_sys, md5 + 32, 16);
    }
    s->has_attrs_md5 = flags & SEND_F_ATTRS_MD5;
    s->has_sys_md5 = flags & SEND_F_SYS_MD5;
    s->group_len = bk_rd_u16(&r);
    s->group = (const char *)bk_rd_bytes(&r, s->group_len);
    s->dedup_len = bk_rd_u16(&r);
    s->dedup = (const char *)bk_rd_bytes(&r, s->dedup_len);
    s->attrs_len = bk_rd_u32(&r);
    s->sys_len = bk_rd_u32(&r);
    s->body_len = bk_rd_u32(&r);
    if (r.bad || (uint64_t)s->attrs_len + s->sys_len + s->body_len != r.left || !s->qname_len ||
        s->qname_len > BK_MAX_QNAME)
        return -1;
    s->attrs = (const char *)r.p;
    s->sys = s->attrs + s->attrs_len;
    s->body = s->sys + s->sys_len;
    return flags & SEND_F_DEDUP ? 1 : 0;
}

const char *bk__msg_data(struct bk_engine *e, const struct bk_msg *m, char **tmp)
{
    *tmp = NULL;
    if (m->data)
        return m->data;
    if (!m->pos.seg)
        return NULL;
    char *buf = xmalloc(m->rec_len ? m->rec_len : 1);
    ssize_t n = e->j.read(e->j.ud, m->pos, buf, m->rec_len);
    struct bk_send_rec s;
    if (n != (ssize_t)m->rec_len || bk__decode_send(buf, (uint32_t)n, &s) < 0 || s.mid != m->mid ||
        s.body_len != m->body_len) {
        log_at(LOG_ERROR, "broker: cannot read message %llu back from the log",
               (unsigned long long)m->mid);
        free(buf);
        return NULL;
    }
    *tmp = buf;
    return s.attrs;
}

void bk__msg_cache(struct bk_engine *e, struct bk_msg *m, const char *data)
{
    uint64_t n = (uint64_t)m->attrs_len + m->sys_len + m->body_len;
    if (m->data || e->cache_bytes + n > e->o.body_cache_bytes)
        return;
    m->data = xmalloc(n ? n : 1);
    memcpy(m->data, data, n);
    e->cache_bytes += n;
}

/* ---- compaction ---- */

void bk_engine_compact(struct bk_engine *e, uint64_t seg, uint64_t now)
{
    if (e->meta_pos.seg == seg)
        bk__log_meta(e);
    for (struct bk_queue *q = e->qhead; q; q = q->lnext) {
        if (q->pos.seg == seg)
            bk__log_queue(e, q);
        for (size_t i = 0; i < q->nbuckets; i++) {
            for (struct bk_msg *m = q->mbuckets[i]; m; m = m->hnext) {
                if (m->pos.seg == seg) {
                    char *tmp;
                    const char *data = bk__msg_data(e, m, &tmp);
                    if (data)
                        bk__log_send(e, m, data, false);
                    free(tmp);
                } else if (m->spos.seg == seg) {
                    bk__log_state(e, m);
                }
            }
        }
        for (struct bk_dedup *d = q->dhead; d; d = d->lnext)
            if (d->pos.seg == seg && d->at_ms + BK_DEDUP_WINDOW_MS > now)
                bk__log_dedup(e, q, d);
    }
    e->compactions++;
}
