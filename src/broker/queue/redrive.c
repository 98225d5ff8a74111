/* Dead-letter queues: moving a message that was received too often to its
 * queue's dead-letter queue (at the receive that finds it over
 * maxReceiveCount, as SQS does), and message move tasks that take
 * messages back out of a dead-letter queue (StartMessageMoveTask).
 *
 * A move keeps the message's id, body, attributes and original send time
 * (so retention still counts from the first send). In the log it is a
 * SEND into the destination followed by a DELETE from the source: a torn
 * write can lose the DELETE, never the SEND, so a crash mid-move leaves a
 * duplicate (at-least-once), never a loss.
 *
 * Move tasks are kept in memory: a restart ends them (the messages moved
 * so far stay moved); ListMessageMoveTasks then no longer shows them. */
#include "broker/queue/engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_BURST 1000 /* moves per housekeeping pass when no rate is set */
#define TASKS_KEEP 100  /* finished tasks remembered for ListMessageMoveTasks */

void bk__msg_move(struct bk_engine *e, struct bk_msg *m, struct bk_queue *dst, bool reset_count,
                  uint64_t now)
{
    struct bk_queue *src = m->q;
    char *tmp;
    const char *data = bk__msg_data(e, m, &tmp);
    if (!data) {
        /* Body unreadable: nothing to move, and keeping it would loop. */
        src->st.expired++;
        bk__msg_delete(e, m, true);
        return;
    }
    char *gid = m->grp ? xstrndup(m->grp->id, m->grp->id_len) : NULL;
    size_t gl = m->grp ? m->grp->id_len : 0;
    bk__queue_unlink(e, m);
    m->grp = NULL;
    m->origin_qid = reset_count ? 0 : src->qid;
    if (reset_count) {
        m->recv_count = 0;
        m->first_recv_ms = 0;
    }
    m->visible_at = now;
    m->q = dst;
    if (dst->a.fifo) {
        m->grp = bk__group_get(dst, gid ? gid : "", gl, true);
    } else {
        free(m->dedup_id);
        m->dedup_id = NULL;
    }
    free(gid);
    /* Releases the source records; DELETE after SEND (see above). */
    bk__log_send(e, m, data, false);
    bk__log_delete(e, src->qid, m->mid);
    free(tmp);
    bk__queue_insert(e, dst, m, now);
}

struct bk_queue *bk__dlq_of(struct bk_engine *e, const struct bk_queue *q)
{
    if (!q->a.dlq_name || !q->a.max_receive)
        return NULL;
    struct bk_queue *d = bk_engine_find(e, q->a.dlq_name, strlen(q->a.dlq_name));
    if (!d || d == q || d->a.fifo != q->a.fifo)
        return NULL;
    return d;
}

bool bk__redrive_allowed(const struct bk_queue *dlq, const struct bk_queue *src)
{
    if (!dlq->a.redrive_allow)
        return true;
    cJSON *j = cJSON_Parse(dlq->a.redrive_allow);
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(j, "redrivePermission");
    bool ok = true;
    if (cJSON_IsString(perm) && !strcmp(perm->valuestring, "denyAll")) {
        ok = false;
    } else if (cJSON_IsString(perm) && !strcmp(perm->valuestring, "byQueue")) {
        char arn[160];
        snprintf(arn, sizeof arn, "%s%s", BK_ARN_PREFIX, src->name);
        ok = false;
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(j, "sourceQueueArns"))
            if (cJSON_IsString(s) && !strcmp(s->valuestring, arn))
                ok = true;
    }
    cJSON_Delete(j);
    return ok;
}

/* ---- move tasks ---- */

struct bk_move_task *bk__task_find(struct bk_engine *e, const char *handle)
{
    for (struct bk_move_task *t = e->tasks; t; t = t->next)
        if (handle && !strcmp(t->handle, handle))
            return t;
    return NULL;
}

static void tasks_trim(struct bk_engine *e)
{
    size_t n = 0;
    struct bk_move_task **pp = &e->tasks;
    while (*pp) {
        struct bk_move_task *t = *pp;
        if (++n > TASKS_KEEP && t->status != BK_TASK_RUNNING) {
            *pp = t->next;
            free(t);
            continue;
        }
        pp = &t->next;
    }
}

struct bk_move_task *bk__task_start(struct bk_engine *e, struct bk_queue *src, struct bk_queue *dst,
                                    uint32_t rate, uint64_t now)
{
    struct bk_move_task *t = xcalloc(1, sizeof *t);
    e->task_seq++;
    uint8_t rnd[8];
    bk_random_bytes(rnd, sizeof rnd);
    uint64_t r;
    memcpy(&r, rnd, sizeof r);
    snprintf(t->handle, sizeof t->handle, "mt-%06" PRIx64 "-%016" PRIx64, e->task_seq, r);
    t->src_qid = src->qid;
    t->dst_qid = dst ? dst->qid : 0;
    snprintf(t->src_arn, sizeof t->src_arn, "%s%s", BK_ARN_PREFIX, src->name);
    if (dst)
        snprintf(t->dst_arn, sizeof t->dst_arn, "%s%s", BK_ARN_PREFIX, dst->name);
    t->rate = rate;
    t->started_ms = now;
    t->to_move = src->nmsgs;
    t->status = BK_TASK_RUNNING;
    /* Newest first, as ListMessageMoveTasks shows them. */
    t->next = e->tasks;
    e->tasks = t;
    tasks_trim(e);
    bk__tasks_run(e, now, 1000);
    return t;
}

static void task_fail(struct bk_move_task *t, const char *why)
{
    t->status = BK_TASK_FAILED;
    snprintf(t->failure, sizeof t->failure, "%s", why);
}

/* Moves up to budget messages of t; finishes it when its source has no
 * receivable message left or it moved what it set out to. */
static void task_step(struct bk_engine *e, struct bk_move_task *t, uint64_t budget, uint64_t now)
{
    struct bk_queue *src = bk_engine_find_id(e, t->src_qid);
    if (!src) {
        task_fail(t, "The source queue was deleted.");
        return;
    }
    struct bk_queue *fixed = NULL;
    if (t->dst_qid && !(fixed = bk_engine_find_id(e, t->dst_qid))) {
        task_fail(t, "The destination queue was deleted.");
        return;
    }
    while (budget && t->moved < t->to_move) {
        struct bk_msg *batch[BK_MAX_BATCH];
        size_t n = bk__queue_pick(e, src, batch, FG_MIN((uint64_t)BK_MAX_BATCH, budget), now);
        if (!n)
            break;
        for (size_t i = 0; i < n && budget; i++) {
            struct bk_queue *dst = fixed ? fixed : bk_engine_find_id(e, batch[i]->origin_qid);
            if (!dst || dst == src) {
                task_fail(t, "A message's source queue no longer exists.");
                return;
            }
            bk__msg_move(e, batch[i], dst, true, now);
            src->st.moved++;
            t->moved++;
            budget--;
        }
    }
    if (t->moved >= t->to_move || !bk_queue_receivable(src))
        t->status = BK_TASK_COMPLETED;
}

void bk__tasks_run(struct bk_engine *e, uint64_t now, uint64_t elapsed_ms)
{
    for (struct bk_move_task *t = e->tasks; t; t = t->next) {
        if (t->status != BK_TASK_RUNNING)
            continue;
        uint64_t budget = t->rate ? FG_MAX(1, (uint64_t)t->rate * elapsed_ms / 1000) : TASK_BURST;
        task_step(e, t, budget, now);
    }
}

void bk__tasks_drop_queue(struct bk_engine *e, uint32_t qid)
{
    for (struct bk_move_task *t = e->tasks; t; t = t->next)
        if (t->status == BK_TASK_RUNNING && (t->src_qid == qid || t->dst_qid == qid))
            task_fail(t, "A queue of the task was deleted.");
}
