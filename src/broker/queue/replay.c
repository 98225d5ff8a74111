/* Replay: the engine rebuilt at start-up from its log records (record.c
 * has their layout), over the engine's own entry points (create, delete,
 * insert, set_visible).
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
 * replay, once every queue's attributes are known. */
#include "broker/queue/engine.h"
#include "broker/queue/record.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bk_engine_replay_begin(struct bk_engine *e, uint64_t now)
{
    e->replaying = true;
    e->replay_now = now;
}

static int replay_meta(struct bk_engine *e, struct bk_rd *r, struct store_pos pos, uint32_t len)
{
    uint8_t ver = bk_rd_u8(r);
    const uint8_t *sec = bk_rd_bytes(r, 32);
    uint64_t rmid = bk_rd_u64(r);
    uint32_t rqid = bk_rd_u32(r);
    if (r->bad || ver != BK_META_VERSION)
        return -1;
    memcpy(e->secret, sec, 32);
    e->have_meta = true;
    e->next_mid = FG_MAX(e->next_mid, rmid);
    e->next_qid = FG_MAX(e->next_qid, rqid);
    bk__swap_live(e, &e->meta_pos, &e->meta_len, pos, len);
    return 0;
}

static int replay_queue(struct bk_engine *e, struct bk_rd *r, struct store_pos pos, uint32_t len)
{
    uint32_t qid = bk_rd_u32(r);
    uint64_t created = bk_rd_u64(r), modified = bk_rd_u64(r);
    uint8_t nl = bk_rd_u8(r);
    const char *name = (const char *)bk_rd_bytes(r, nl);
    uint32_t al = bk_rd_u32(r);
    const char *at = (const char *)bk_rd_bytes(r, al);
    uint32_t tl = bk_rd_u32(r);
    const char *tt = (const char *)bk_rd_bytes(r, tl);
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
    bk__swap_live(e, &q->pos, &q->rec_len, pos, len);
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

static int replay_state(struct bk_engine *e, struct bk_rd *r, struct store_pos pos, uint32_t len)
{
    uint32_t qid = bk_rd_u32(r);
    uint64_t mid = bk_rd_u64(r);
    uint32_t cnt = bk_rd_u32(r);
    uint64_t vis = bk_rd_u64(r), first = bk_rd_u64(r);
    if (r->bad)
        return -1;
    struct bk_queue *q = bk_engine_find_id(e, qid);
    struct bk_msg *m = q ? bk_queue_lookup(q, mid) : NULL;
    if (!m)
        return 0;
    bk__swap_live(e, &m->spos, &m->srec_len, pos, len);
    m->recv_count = cnt;
    m->first_recv_ms = first;
    bk__msg_set_visible(e, m, vis, e->replay_now);
    return 0;
}

int bk_engine_replay(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos)
{
    struct bk_engine *e = ud;
    struct bk_rd r = {payload, len, false};
    switch (type) {
    case BK_REC_META:
        return replay_meta(e, &r, pos, len);
    case BK_REC_QUEUE:
        return replay_queue(e, &r, pos, len);
    case BK_REC_QUEUE_DEL: {
        uint32_t qid = bk_rd_u32(&r);
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
        uint32_t qid = bk_rd_u32(&r);
        uint64_t mid = bk_rd_u64(&r);
        if (r.bad)
            return -1;
        struct bk_queue *q = bk_engine_find_id(e, qid);
        struct bk_msg *m = q ? bk_queue_lookup(q, mid) : NULL;
        if (m)
            bk__msg_delete(e, m, false);
        return 0;
    }
    case BK_REC_PURGE: {
        uint32_t qid = bk_rd_u32(&r);
        if (r.bad)
            return -1;
        struct bk_queue *q = bk_engine_find_id(e, qid);
        if (q)
            bk__queue_clear(e, q);
        return 0;
    }
    case BK_REC_DEDUP: {
        uint32_t qid = bk_rd_u32(&r);
        uint64_t at = bk_rd_u64(&r), mid = bk_rd_u64(&r);
        uint16_t kl = bk_rd_u16(&r);
        const char *key = (const char *)bk_rd_bytes(&r, kl);
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
