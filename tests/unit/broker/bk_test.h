/* Shared fixtures for the broker engine's unit tests: an in-memory
 * journal (records in an array, split into "segments" like the store,
 * with live-byte accounting and reads by position), a way to replay it
 * into a fresh engine, and a helper that runs an action from a JSON text
 * on a controlled clock. Header only, every function static, so each test
 * file gets its own copy. */
#ifndef TEST_BK_TEST_H
#define TEST_BK_TEST_H

#include "broker/queue/engine.h"
#include "broker/sqs/actions.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000ull /* the tests' epoch: a plausible wall clock, ms */

struct memrec {
    uint8_t type;
    char *p;
    uint32_t len;
    struct store_pos pos;
};

struct memj {
    struct memrec *recs;
    size_t n, cap;
    uint64_t seg, off;
    uint64_t seg_bytes;     /* roll to a new segment past this */
    int64_t live[4096];     /* live bytes per segment */
    uint64_t size[4096];    /* bytes per segment */
    uint64_t first_seg;     /* oldest not dropped */
    bool fail;              /* refuse appends */
    bool lax;               /* damaged records replayed: no accounting checks */
};

static inline struct store_pos memj_append(void *ud, uint8_t type, const void *p, uint32_t len)
{
    struct memj *j = ud;
    if (j->fail)
        return (struct store_pos){0, 0};
    if (j->off + len + 9 > j->seg_bytes && j->off > 16) {
        j->seg++;
        j->off = 16;
    }
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 256;
        j->recs = realloc(j->recs, j->cap * sizeof *j->recs);
    }
    struct memrec *r = &j->recs[j->n++];
    r->type = type;
    r->p = malloc(len ? len : 1);
    memcpy(r->p, p, len);
    r->len = len;
    r->pos = (struct store_pos){j->seg, j->off};
    j->off += len + 9;
    j->size[j->seg] = j->off;
    return r->pos;
}

static inline void memj_retain(void *ud, struct store_pos pos, uint32_t len)
{
    struct memj *j = ud;
    j->live[pos.seg] += len + 9;
}

static inline void memj_release(void *ud, struct store_pos pos, uint32_t len)
{
    struct memj *j = ud;
    j->live[pos.seg] -= len + 9;
    cr_assert(j->lax || j->live[pos.seg] >= 0, "live bytes of segment %llu went negative",
              (unsigned long long)pos.seg);
}

static inline ssize_t memj_read(void *ud, struct store_pos pos, void *buf, size_t cap)
{
    struct memj *j = ud;
    for (size_t i = 0; i < j->n; i++) {
        if (j->recs[i].pos.seg == pos.seg && j->recs[i].pos.off == pos.off) {
            memcpy(buf, j->recs[i].p, FG_MIN(cap, j->recs[i].len));
            return j->recs[i].len;
        }
    }
    return -1;
}

static inline void memj_init(struct memj *j)
{
    memset(j, 0, sizeof *j);
    j->seg = j->first_seg = 1;
    j->off = 16;
    j->seg_bytes = 1u << 20;
}

static inline void memj_free(struct memj *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->recs[i].p);
    free(j->recs);
}

/* Drops the oldest segment's records (what the store's compaction does). */
static inline void memj_drop_oldest(struct memj *j)
{
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (j->recs[i].pos.seg == j->first_seg)
            free(j->recs[i].p);
        else
            j->recs[k++] = j->recs[i];
    }
    j->n = k;
    j->first_seg++;
}

static inline struct bk_journal memj_journal(struct memj *j)
{
    return (struct bk_journal){j, memj_append, memj_retain, memj_release, memj_read};
}

static inline struct bk_engine_opts test_opts(void)
{
    return (struct bk_engine_opts){.max_message_bytes = 262144, .body_cache_bytes = 1u << 30};
}

static inline struct bk_engine *engine_new(struct memj *j, const struct bk_engine_opts *o)
{
    struct bk_journal jj = memj_journal(j);
    struct bk_engine *e = bk_engine_new(o, &jj);
    bk_engine_replay_begin(e, T0);
    bk_engine_replay_end(e, T0);
    return e;
}

/* A new engine rebuilt from j's records, as after a restart at now. The
 * live-byte counts start again from zero, as the store's do. */
static inline struct bk_engine *engine_replay(struct memj *j, const struct bk_engine_opts *o, uint64_t now)
{
    memset(j->live, 0, sizeof j->live);
    struct bk_journal jj = memj_journal(j);
    struct bk_engine *e = bk_engine_new(o, &jj);
    bk_engine_replay_begin(e, now);
    size_t n = j->n; /* replay_end appends a META: not part of the replay */
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(bk_engine_replay(e, j->recs[i].type, j->recs[i].p, j->recs[i].len, j->recs[i].pos), 0,
                     "record %zu (type %u) did not replay", i, j->recs[i].type);
    bk_engine_replay_end(e, now);
    return e;
}

/* Runs action with params given as JSON text; returns the result (caller
 * deletes) and the code through *rc. ctx may be NULL. */
static inline cJSON *act_ctx(struct bk_engine *e, struct bk_ctx *ctx, const char *action, const char *params,
                      enum sqs_err *rc)
{
    cJSON *p = cJSON_Parse(params);
    cr_assert(p, "bad test JSON: %s", params);
    cJSON *res = NULL;
    struct sqs_error err;
    *rc = bk_action(e, ctx, action, p, &res, &err);
    cJSON_Delete(p);
    return res;
}

static inline cJSON *act(struct bk_engine *e, uint64_t now, const char *action, const char *params, enum sqs_err *rc)
{
    struct bk_ctx ctx = {.now = now, .base_url = "http://127.0.0.1:9324", .no_wait = true};
    return act_ctx(e, &ctx, action, params, rc);
}

/* Same, asserting success. */
static inline cJSON *act_ok(struct bk_engine *e, uint64_t now, const char *action, const char *params)
{
    enum sqs_err rc;
    cJSON *r = act(e, now, action, params, &rc);
    cr_assert_eq(rc, SQS_OK, "%s %s failed with %d", action, params, rc);
    return r;
}

static inline void create_queue(struct bk_engine *e, const char *name, const char *attrs)
{
    char p[1024];
    snprintf(p, sizeof p, "{\"QueueName\":\"%s\",\"Attributes\":%s}", name, attrs ? attrs : "{}");
    cJSON_Delete(act_ok(e, T0, "CreateQueue", p));
}

static inline void send_body(struct bk_engine *e, uint64_t now, const char *q, const char *body)
{
    char p[2048];
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/%s\",\"MessageBody\":\"%s\"}", q, body);
    cJSON_Delete(act_ok(e, now, "SendMessage", p));
}

/* Receives up to max with visibility vis; returns the Messages array
 * detached (or an empty array). */
static inline cJSON *receive(struct bk_engine *e, uint64_t now, const char *q, int max, int vis)
{
    char p[512];
    snprintf(p, sizeof p,
             "{\"QueueUrl\":\"http://x/000000000000/%s\",\"MaxNumberOfMessages\":%d,"
             "\"VisibilityTimeout\":%d,\"AttributeNames\":[\"All\"],\"MessageAttributeNames\":[\"All\"]}",
             q, max, vis);
    cJSON *r = act_ok(e, now, "ReceiveMessage", p);
    cJSON *m = cJSON_DetachItemFromObject(r, "Messages");
    cJSON_Delete(r);
    return m ? m : cJSON_CreateArray();
}

static inline const char *msg_field(const cJSON *m, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline const char *msg_attr(const cJSON *m, const char *name)
{
    return msg_field(cJSON_GetObjectItemCaseSensitive(m, "Attributes"), name);
}

static inline enum sqs_err delete_handle(struct bk_engine *e, uint64_t now, const char *q, const char *handle)
{
    char p[512];
    snprintf(p, sizeof p, "{\"QueueUrl\":\"http://x/000000000000/%s\",\"ReceiptHandle\":\"%s\"}", q, handle);
    enum sqs_err rc;
    cJSON_Delete(act(e, now, "DeleteMessage", p, &rc));
    return rc;
}

static inline uint64_t qcount(struct bk_engine *e, const char *q, int which)
{
    struct bk_queue *qq = bk_engine_find(e, q, strlen(q));
    cr_assert(qq, "queue %s missing", q);
    return which == 0 ? qq->n_ready : which == 1 ? qq->n_inflight : qq->n_delayed;
}

#endif
