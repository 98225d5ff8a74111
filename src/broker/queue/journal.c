/* Log records: how the engine's state becomes durable and comes back.
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
 * Replay applies records in log order and is idempotent in the ways
 * compaction needs: a SEND for a message that exists replaces it (a
 * re-appended SEND carries the message's whole current state), and
 * records for unknown messages are skipped (their SEND was in a segment
 * compaction dropped because they were gone). Compaction moves records
 * to the end of the log, so a queue's only QUEUE record may come after
 * SENDs of its messages: a SEND therefore names its queue, and replay
 * creates the queue (defaults) when it meets a SEND first; the QUEUE
 * record sets its attributes when it comes. FIFO deduplication entries
 * (from SENDs and DEDUP records) are collected and added at the end of
 * replay, once every queue's attributes are known.
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
 * A META record reserves a range above the ids in use; replay resumes
 * above the last reservation. */
#include "broker/queue/engine.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_VERSION 1
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

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *get_bytes(struct rd *r, size_t n)
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
static uint64_t get_le(struct rd *r, int n)
{
    const uint8_t *p = get_bytes(r, (size_t)n);
    uint64_t v = 0;
    for (int i = 0; p && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
#define get_u8(r) ((uint8_t)get_le((r), 1))
#define get_u16(r) ((uint16_t)get_le((r), 2))
#define get_u32(r) ((uint32_t)get_le((r), 4))
#define get_u64(r) get_le((r), 8)

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

static void swap_live(struct bk_engine *e, struct store_pos *old, uint32_t *old_len,
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
    put_u8(&e->rec, META_VERSION);
    buf_append(&e->rec, e->secret, sizeof e->secret);
    put_u64(&e->rec, e->reserved_mid);
    put_u32(&e->rec, e->reserved_qid);
    uint32_t len = (uint32_t)buf_len(&e->rec);
    struct store_pos pos = emit(e, BK_REC_META);
    if (!pos.seg)
        return false;
    swap_live(e, &e->meta_pos, &e->meta_len, pos, len);
    return true;
}

uint64_t bk__next_mid(struct bk_engine *e)
{
    if (e->next_mid >= e->reserved_mid)
        bk__log_meta(e);
    return e->next_mid++;
}

uint32_t bk__next_qid(struct bk_engine *e)
{
    if (e->next_qid >= e->reserved_qid && !e->replaying)
        bk__log_meta(e);
    return e->next_qid++;
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
    swap_live(e, &q->pos, &q->rec_len, pos, len);
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
    swap_live(e, &m->pos, &m->rec_len, pos, len);
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
    swap_live(e, &m->spos, &m->srec_len, pos, len);
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
    struct rd r = {p, len, false};
    memset(s, 0, sizeof *s);
    s->qid = get_u32(&r);
    s->qname_len = get_u8(&r);
    s->qname = (const char *)get_bytes(&r, s->qname_len);
    s->mid = get_u64(&r);
    s->sent_ms = get_u64(&r);
    s->visible_at = get_u64(&r);
    s->first_recv_ms = get_u64(&r);
    s->recv_count = get_u32(&r);
    s->origin_qid = get_u32(&r);
    uint8_t flags = get_u8(&r);
    const uint8_t *md5 = get_bytes(&r, 48);
    if (md5) {
        memcpy(s->md5_body, md5, 16);
        memcpy(s->md5_attrs, md5 + 16, 16);
        memcpy(s->md5_sys, md5 + 32, 16);
    }
    s->has_attrs_md5 = flags & SEND_F_ATTRS_MD5;
    s->has_sys_md5 = flags & SEND_F_SYS_MD5;
    s->group_len = get_u16(&r);
    s->group = (const char *)get_bytes(&r, s->group_len);
    s->dedup_len = get_u16(&r);
    s->dedup = (const char *)get_bytes(&r, s->dedup_len);
    s->attrs_len = get_u32(&r);
    s->sys_len = get_u32(&r);
    s->body_len = get_u32(&r);
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

/* ---- replay ---- */

void bk_engine_replay_begin(struct bk_engine *e, uint64_t now)
{
    e->replaying = true;
    e->replay_now = now;
}

static int replay_meta(struct bk_engine *e, struct rd *r, struct store_pos pos, uint32_t len)
{
    uint8_t ver = get_u8(r);
    const uint8_t *sec = get_bytes(r, 32);
    uint64_t rmid = get_u64(r);
    uint32_t rqid = get_u32(r);
    if (r->bad || ver != META_VERSION)
        return -1;
    memcpy(e->secret, sec, 32);
    e->have_meta = true;
    e->next_mid = FG_MAX(e->next_mid, rmid);
    e->next_qid = FG_MAX(e->next_qid, rqid);
    swap_live(e, &e->meta_pos, &e->meta_len, pos, len);
    return 0;
}

static int replay_queue(struct bk_engine *e, struct rd *r, struct store_pos pos, uint32_t len)
{
    uint32_t qid = get_u32(r);
    uint64_t created = get_u64(r), modified = get_u64(r);
    uint8_t nl = get_u8(r);
    const char *name = (const char *)get_bytes(r, nl);
    uint32_t al = get_u32(r);
    const char *at = (const char *)get_bytes(r, al);
    uint32_t tl = get_u32(r);
    const char *tt = (const char *)get_bytes(r, tl);
    if (r->bad || !qid || !nl || nl > BK_MAX_QNAME)
        return -1;
    char qname[BK_MAX_QNAME + 1];
    memcpy(qname, name, nl);
    qname[nl] = '\0';
    cJSON *attrs = cJSON_ParseWithLength(at, al);
    cJSON *tags = cJSON_ParseWithLength(tt, tl);
    if (!cJSON_IsObject(attrs) || !cJSON_IsObject(tags)) {
        cJSON_Delete(attrs);
        cJSON_Delete(tags);
        return -1;
    }
    bool fifo = false;
    if (strlen(qname) != nl || !bk_qname_valid(qname, &fifo)) {
        cJSON_Delete(attrs);
        cJSON_Delete(tags);
        return -1;
    }
    struct bk_qattrs a;
    bk_qattrs_defaults(&a, &e->o, fifo);
    struct bk_error err;
    if (bk_qattrs_apply(e, &a, attrs, qname, true, &err) != BK_OK)
        log_at(LOG_WARN, "broker: queue %s: stored attributes: %s (defaults kept)", qname, err.message);
    cJSON_Delete(attrs);
    struct bk_queue *q = bk_engine_find_id(e, qid);
    if (q) {
        bk_qattrs_free(&q->a);
        q->a = a;
        cJSON_Delete(q->tags);
        q->tags = tags;
    } else {
        struct bk_queue *old = bk_engine_find(e, qname, nl);
        if (old) /* its QUEUE_DEL was lost with a torn tail: the newer wins */
            bk_engine_delete(e, old, e->replay_now);
        q = bk_engine_create(e, qname, &a, tags, qid, created);
    }
    q->created_ms = created;
    q->modified_ms = modified;
    swap_live(e, &q->pos, &q->rec_len, pos, len);
    e->next_qid = FG_MAX(e->next_qid, qid + 1);
    return 0;
}

static int replay_send(struct bk_engine *e, const void *p, uint32_t len, struct store_pos pos)
{
    struct bk_send_rec s;
    int de = bk__decode_send(p, len, &s);
    if (de < 0)
        return -1;
    e->next_mid = FG_MAX(e->next_mid, s.mid + 1);
    struct bk_queue *q = bk_engine_find_id(e, s.qid);
    if (!q) {
        /* Its QUEUE record comes later (see the top of the file). */
        char qname[BK_MAX_QNAME + 1];
        memcpy(qname, s.qname, s.qname_len);
        qname[s.qname_len] = '\0';
        bool fifo;
        if (!bk_qname_valid(qname, &fifo))
            return -1;
        struct bk_queue *old = bk_engine_find(e, qname, s.qname_len);
        if (old)
            bk_engine_delete(e, old, e->replay_now);
        struct bk_qattrs a;
        bk_qattrs_defaults(&a, &e->o, fifo);
        q = bk_engine_create(e, qname, &a, NULL, s.qid, e->replay_now);
        e->next_qid = FG_MAX(e->next_qid, s.qid + 1);
    }
    struct bk_msg *old = bk_queue_lookup(q, s.mid);
    if (old)
        bk__msg_delete(e, old, false);
    struct bk_msg *m = xcalloc(1, sizeof *m);
    m->mid = s.mid;
    m->sent_ms = s.sent_ms;
    m->visible_at = s.visible_at;
    m->first_recv_ms = s.first_recv_ms;
    m->recv_count = s.recv_count;
    m->origin_qid = s.origin_qid;
    m->attrs_len = s.attrs_len;
    m->sys_len = s.sys_len;
    m->body_len = s.body_len;
    memcpy(m->md5_body, s.md5_body, 16);
    memcpy(m->md5_attrs, s.md5_attrs, 16);
    memcpy(m->md5_sys, s.md5_sys, 16);
    m->has_attrs_md5 = s.has_attrs_md5;
    m->has_sys_md5 = s.has_sys_md5;
    if (q->a.fifo) {
        m->grp = bk__group_get(q, s.group_len ? s.group : "", s.group_len, true);
        if (s.dedup_len)
            m->dedup_id = xstrndup(s.dedup, s.dedup_len);
    }
    m->pos = pos;
    m->rec_len = len;
    e->j.retain(e->j.ud, pos, len);
    bk__msg_cache(e, m, s.attrs);
    bk__queue_insert(e, q, m, e->replay_now);
    if (de == 1 && q->a.fifo && m->dedup_id && s.sent_ms + BK_DEDUP_WINDOW_MS > e->replay_now) {
        struct bk_pending_dedup *pd = xcalloc(1, sizeof *pd);
        pd->qid = q->qid;
        pd->at_ms = s.sent_ms;
        pd->mid = s.mid;
        pd->pos = pos;
        pd->group = xstrndup(m->grp->id, m->grp->id_len);
        pd->id = xstrdup(m->dedup_id);
        pd->next = e->pdedup;
        e->pdedup = pd;
    }
    return 0;
}

static int replay_state(struct bk_engine *e, struct rd *r, struct store_pos pos, uint32_t len)
{
    uint32_t qid = get_u32(r);
    uint64_t mid = get_u64(r);
    uint32_t cnt = get_u32(r);
    uint64_t vis = get_u64(r), first = get_u64(r);
    if (r->bad)
        return -1;
    struct bk_queue *q = bk_engine_find_id(e, qid);
    struct bk_msg *m = q ? bk_queue_lookup(q, mid) : NULL;
    if (!m)
        return 0;
    swap_live(e, &m->spos, &m->srec_len, pos, len);
    m->recv_count = cnt;
    m->first_recv_ms = first;
    bk__msg_set_visible(e, m, vis, e->replay_now);
    return 0;
}

int bk_engine_replay(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos)
{
    struct bk_engine *e = ud;
    struct rd r = {payload, len, false};
    switch (type) {
    case BK_REC_META:
        return replay_meta(e, &r, pos, len);
    case BK_REC_QUEUE:
        return replay_queue(e, &r, pos, len);
    case BK_REC_QUEUE_DEL: {
        uint32_t qid = get_u32(&r);
        if (r.bad)
            return -1;
        struct bk_queue *q = bk_engine_find_id(e, qid);
        if (q)
            bk_engine_delete(e, q, e->replay_now);
        return 0;
    }
    case BK_REC_SEND:
        return replay_send(e, payload, len, pos);
    case BK_REC_STATE:
        return replay_state(e, &r, pos, len);
    case BK_REC_DELETE: {
        uint32_t qid = get_u32(&r);
        uint64_t mid = get_u64(&r);
        if (r.bad)
            return -1;
        struct bk_queue *q = bk_engine_find_id(e, qid);
        struct bk_msg *m = q ? bk_queue_lookup(q, mid) : NULL;
        if (m)
            bk__msg_delete(e, m, false);
        return 0;
    }
    case BK_REC_PURGE: {
        uint32_t qid = get_u32(&r);
        if (r.bad)
            return -1;
        struct bk_queue *q = bk_engine_find_id(e, qid);
        if (q)
            bk__queue_clear(e, q);
        return 0;
    }
    case BK_REC_DEDUP: {
        uint32_t qid = get_u32(&r);
        uint64_t at = get_u64(&r), mid = get_u64(&r);
        uint16_t kl = get_u16(&r);
        const char *key = (const char *)get_bytes(&r, kl);
        if (r.bad)
            return -1;
        if (at + BK_DEDUP_WINDOW_MS > e->replay_now) {
            struct bk_pending_dedup *pd = xcalloc(1, sizeof *pd);
            pd->qid = qid;
            pd->at_ms = at;
            pd->mid = mid;
            pd->pos = pos;
            pd->key = xstrndup(key, kl);
            pd->next = e->pdedup;
            e->pdedup = pd;
        }
        return 0;
    }
    default:
        log_at(LOG_ERROR, "broker: unknown log record type %u", type);
        return -1;
    }
}

/* Adds the deduplication entries replay collected, oldest first. */
static void add_pending_dedup(struct bk_engine *e)
{
    struct bk_pending_dedup *rev = NULL;
    while (e->pdedup) {
        struct bk_pending_dedup *pd = e->pdedup;
        e->pdedup = pd->next;
        pd->next = rev;
        rev = pd;
    }
    while (rev) {
        struct bk_pending_dedup *pd = rev;
        rev = pd->next;
        struct bk_queue *q = bk_engine_find_id(e, pd->qid);
        if (q && q->a.fifo) {
            char key[300];
            if (pd->key)
                snprintf(key, sizeof key, "%s", pd->key);
            else
                bk__dedup_key(q, pd->group, strlen(pd->group), pd->id, key, sizeof key);
            bk__dedup_add(q, key, pd->at_ms, pd->mid, pd->pos);
        }
        free(pd->key);
        free(pd->group);
        free(pd->id);
        free(pd);
    }
}

void bk_engine_replay_end(struct bk_engine *e, uint64_t now)
{
    add_pending_dedup(e);
    e->replaying = false;
    if (!e->have_meta) {
        bk_random_bytes(e->secret, sizeof e->secret);
        e->have_meta = true;
    }
    /* A fresh reservation above everything replay saw. */
    e->reserved_mid = e->reserved_qid = 0;
    bk__log_meta(e);
    bk_engine_tick(e, now);
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
