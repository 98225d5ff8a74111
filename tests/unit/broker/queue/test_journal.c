/* Recovery and compaction of the engine's log records: replaying the
 * records rebuilds every queue exactly (messages, states, in-flight
 * deadlines, receive counts, deletes, purges, attributes, FIFO dedup);
 * compaction re-appends what an old segment still holds so it can be
 * dropped; the body cache bound reads bodies back from the log; and the
 * decoder refuses damaged records. */
#include "broker/bk_test.h"

static struct memj J;
static struct bk_engine *E;
static struct bk_engine_opts O;

static void setup(void)
{
    memj_init(&J);
    O = test_opts();
    E = engine_new(&J, &O);
}

static void teardown(void)
{
    bk_engine_free(E);
    memj_free(&J);
}

TestSuite(journal, .init = setup, .fini = teardown);

static struct bk_engine *restart(uint64_t now)
{
    bk_engine_free(E);
    E = engine_replay(&J, &O, now);
    return E;
}

Test(journal, replay_rebuilds_queues_and_messages)
{
    create_queue(E, "a", "{\"VisibilityTimeout\":\"60\"}");
    create_queue(E, "gone", NULL);
    for (int i = 0; i < 6; i++) {
        char b[16];
        snprintf(b, sizeof b, "m%d", i);
        send_body(E, T0 + (uint64_t)i, "a", b);
    }
    cJSON_Delete(act_ok(E, T0, "SendMessage",
                        "{\"QueueUrl\":\"http://x/000000000000/a\",\"MessageBody\":\"later\",\"DelaySeconds\":100,"
                        "\"MessageAttributes\":{\"k\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}}"));
    cJSON *m = receive(E, T0 + 1000, "a", 3, 60);
    cr_assert_eq(cJSON_GetArraySize(m), 3);
    /* Delete the first received, leave two in flight. */
    cr_assert_eq(delete_handle(E, T0 + 2000, "a", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")), SQS_OK);
    cJSON_Delete(act_ok(E, T0, "DeleteQueue", "{\"QueueUrl\":\"http://x/000000000000/gone\"}"));
    char handle[64];
    snprintf(handle, sizeof handle, "%s", msg_field(cJSON_GetArrayItem(m, 1), "ReceiptHandle"));
    cJSON_Delete(m);

    restart(T0 + 3000);
    cr_assert_null(bk_engine_find(E, "gone", 4));
    struct bk_queue *q = bk_engine_find(E, "a", 1);
    cr_assert_not_null(q);
    cr_assert_eq(q->a.visibility_s, 60);
    cr_assert_eq(q->nmsgs, 6);
    cr_assert_eq(q->n_inflight, 2, "in flight until their recorded deadline");
    cr_assert_eq(q->n_delayed, 1);
    cr_assert_eq(q->n_ready, 3);
    /* A receipt handle from before the restart still works. */
    cr_assert_eq(delete_handle(E, T0 + 4000, "a", handle), SQS_OK);
    cr_assert_eq(q->n_inflight, 1);
    /* The in-flight one comes back at its deadline with its count. */
    bk_engine_tick(E, T0 + 61000);
    cr_assert_eq(q->n_inflight, 0);
    cJSON *all = receive(E, T0 + 61000, "a", 10, 300);
    cr_assert_eq(cJSON_GetArraySize(all), 4);
    int twice = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, all) twice += !strcmp(msg_attr(it, "ApproximateReceiveCount"), "2");
    cr_assert_eq(twice, 1);
    cJSON_Delete(all);
    bk_engine_tick(E, T0 + 100000);
    cJSON *late = receive(E, T0 + 100000, "a", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(late), 1);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(late, 0), "Body"), "later");
    cr_assert_not_null(cJSON_GetObjectItem(cJSON_GetArrayItem(late, 0), "MessageAttributes"));
    cJSON_Delete(late);
}

Test(journal, message_ids_survive_and_never_repeat)
{
    create_queue(E, "a", NULL);
    cJSON *r1 = act_ok(E, T0, "SendMessage", "{\"QueueUrl\":\"http://x/000000000000/a\",\"MessageBody\":\"x\"}");
    cJSON *m = receive(E, T0, "a", 1, 30);
    cr_assert_str_eq(msg_field(r1, "MessageId"), msg_field(cJSON_GetArrayItem(m, 0), "MessageId"));
    cr_assert_eq(delete_handle(E, T0, "a", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")), SQS_OK);
    uint64_t before = E->next_mid;
    restart(T0 + 10);
    cr_assert_geq(E->next_mid, before, "ids above everything handed out");
    cJSON *r2 = act_ok(E, T0 + 20, "SendMessage", "{\"QueueUrl\":\"http://x/000000000000/a\",\"MessageBody\":\"x\"}");
    cr_assert_str_neq(msg_field(r1, "MessageId"), msg_field(r2, "MessageId"));
    /* The old handle names a deleted message: success, and it does not
     * touch the new one. */
    cr_assert_eq(delete_handle(E, T0 + 30, "a", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")), SQS_OK);
    cr_assert_eq(bk_engine_find(E, "a", 1)->nmsgs, 1);
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    cJSON_Delete(m);
}

Test(journal, purge_and_attributes_replay)
{
    create_queue(E, "p", NULL);
    for (int i = 0; i < 4; i++)
        send_body(E, T0, "p", "x");
    cJSON_Delete(act_ok(E, T0, "PurgeQueue", "{\"QueueUrl\":\"http://x/000000000000/p\"}"));
    send_body(E, T0 + 1, "p", "after");
    cJSON_Delete(act_ok(E, T0 + 5, "SetQueueAttributes",
                        "{\"QueueUrl\":\"http://x/000000000000/p\",\"Attributes\":{\"DelaySeconds\":\"7\"}}"));
    cJSON_Delete(act_ok(E, T0, "TagQueue", "{\"QueueUrl\":\"http://x/000000000000/p\",\"Tags\":{\"a\":\"b\"}}"));
    restart(T0 + 10);
    struct bk_queue *q = bk_engine_find(E, "p", 1);
    cr_assert_eq(q->nmsgs, 1);
    cr_assert_eq(q->a.delay_s, 7);
    cr_assert_eq(q->modified_ms, T0 + 5);
    cr_assert_str_eq(cJSON_GetObjectItem(q->tags, "a")->valuestring, "b");
}

Test(journal, fifo_dedup_survives_restart)
{
    create_queue(E, "f.fifo", "{\"FifoQueue\":\"true\"}");
    const char *send = "{\"QueueUrl\":\"http://x/000000000000/f.fifo\",\"MessageBody\":\"x\",\"MessageGroupId\":\"g\","
                       "\"MessageDeduplicationId\":\"once\"}";
    cJSON *r1 = act_ok(E, T0, "SendMessage", send);
    cJSON *m = receive(E, T0, "f.fifo", 1, 30);
    cr_assert_eq(delete_handle(E, T0, "f.fifo", msg_field(cJSON_GetArrayItem(m, 0), "ReceiptHandle")), SQS_OK);
    cJSON_Delete(m);
    restart(T0 + 60000);
    cJSON *r2 = act_ok(E, T0 + 60000, "SendMessage", send);
    cr_assert_str_eq(msg_field(r1, "MessageId"), msg_field(r2, "MessageId"));
    cr_assert_eq(bk_engine_find(E, "f.fifo", 6)->nmsgs, 0);
    cJSON_Delete(r2);
    restart(T0 + 300000);
    r2 = act_ok(E, T0 + 300000, "SendMessage", send);
    cr_assert_str_neq(msg_field(r1, "MessageId"), msg_field(r2, "MessageId"), "window over");
    cJSON_Delete(r1);
    cJSON_Delete(r2);
}

Test(journal, fifo_group_order_survives_restart)
{
    create_queue(E, "f.fifo", "{\"FifoQueue\":\"true\",\"ContentBasedDeduplication\":\"true\"}");
    for (int i = 0; i < 5; i++) {
        char p[256];
        snprintf(p, sizeof p,
                 "{\"QueueUrl\":\"http://x/000000000000/f.fifo\",\"MessageBody\":\"n%d\",\"MessageGroupId\":\"g\"}", i);
        cJSON_Delete(act_ok(E, T0, "SendMessage", p));
    }
    cJSON *m = receive(E, T0, "f.fifo", 2, 30);
    cJSON_Delete(m);
    restart(T0 + 1000);
    cJSON *none = receive(E, T0 + 1000, "f.fifo", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(none), 0, "the group is still locked by its in-flight batch");
    cJSON_Delete(none);
    bk_engine_tick(E, T0 + 30000);
    cJSON *all = receive(E, T0 + 30000, "f.fifo", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(all), 5);
    for (int i = 0; i < 5; i++) {
        char b[8];
        snprintf(b, sizeof b, "n%d", i);
        cr_assert_str_eq(msg_field(cJSON_GetArrayItem(all, i), "Body"), b);
    }
    cJSON_Delete(all);
}

/* Sums the live bytes the engine reports against what it holds. */
static int64_t live_total(void)
{
    int64_t t = 0;
    for (uint64_t s = J.first_seg; s <= J.seg; s++)
        t += J.live[s];
    return t;
}

Test(journal, compaction_keeps_live_state)
{
    J.seg_bytes = 4096;
    create_queue(E, "c", NULL);
    char body[200];
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    for (int i = 0; i < 100; i++)
        send_body(E, T0, "c", body);
    /* Consume 90 of them: most of the early segments are dead. */
    for (int i = 0; i < 9; i++) {
        cJSON *m = receive(E, T0, "c", 10, 30);
        cJSON *it;
        cJSON_ArrayForEach(it, m) cr_assert_eq(delete_handle(E, T0, "c", msg_field(it, "ReceiptHandle")), SQS_OK);
        cJSON_Delete(m);
    }
    cJSON *inflight = receive(E, T0, "c", 5, 300);
    cr_assert_eq(cJSON_GetArraySize(inflight), 5);
    uint64_t segs_before = J.seg - J.first_seg + 1;
    cr_assert_gt(segs_before, 5);
    /* Compact every sealed segment, oldest first. */
    while (J.first_seg < J.seg) {
        bk_engine_compact(E, J.first_seg, T0);
        cr_assert_eq(J.live[J.first_seg], 0, "segment %llu still live after compaction",
                     (unsigned long long)J.first_seg);
        memj_drop_oldest(&J);
    }
    cr_assert_gt(live_total(), 0);
    restart(T0 + 1000);
    struct bk_queue *q = bk_engine_find(E, "c", 1);
    cr_assert_eq(q->nmsgs, 10, "%zu messages", q->nmsgs);
    cr_assert_eq(q->n_inflight, 5);
    /* Handles given before compaction and restart still delete. */
    cJSON *it;
    cJSON_ArrayForEach(it, inflight) cr_assert_eq(delete_handle(E, T0 + 2000, "c", msg_field(it, "ReceiptHandle")),
                                                  SQS_OK);
    cr_assert_eq(q->nmsgs, 5);
    cJSON *rest = receive(E, T0 + 2000, "c", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(rest), 5);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(rest, 0), "Body"), body);
    cJSON_Delete(rest);
    cJSON_Delete(inflight);
}

Test(journal, body_cache_bound_reads_back)
{
    bk_engine_free(E);
    O.body_cache_bytes = 10;
    E = engine_replay(&J, &O, T0);
    create_queue(E, "m", NULL);
    send_body(E, T0, "m", "short");
    send_body(E, T0, "m", "this one does not fit");
    cr_assert_leq(E->cache_bytes, 10);
    cJSON *m = receive(E, T0, "m", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 2);
    cr_assert_str_eq(msg_field(cJSON_GetArrayItem(m, 1), "Body"), "this one does not fit");
    cJSON_Delete(m);
    /* After a restart nothing beyond the budget is cached either. */
    restart(T0 + 1);
    cr_assert_leq(E->cache_bytes, 10);
    bk_engine_tick(E, T0 + 30001);
    m = receive(E, T0 + 30001, "m", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 2);
    cJSON_Delete(m);
}

Test(journal, damaged_records_are_refused)
{
    create_queue(E, "a", NULL);
    send_body(E, T0, "a", "x");
    struct memrec *send = NULL;
    for (size_t i = 0; i < J.n; i++)
        if (J.recs[i].type == BK_REC_SEND)
            send = &J.recs[i];
    cr_assert_not_null(send);
    struct bk_send_rec s;
    cr_assert_geq(bk__decode_send(send->p, send->len, &s), 0);
    cr_assert_lt(bk__decode_send(send->p, send->len - 1, &s), 0);
    cr_assert_lt(bk__decode_send(send->p, 10, &s), 0);
    struct bk_journal jj = memj_journal(&J);
    struct bk_engine *e2 = bk_engine_new(&O, &jj);
    bk_engine_replay_begin(e2, T0);
    cr_assert_neq(bk_engine_replay(e2, 99, "x", 1, (struct store_pos){1, 16}), 0, "unknown type");
    cr_assert_neq(bk_engine_replay(e2, BK_REC_QUEUE, "abc", 3, (struct store_pos){1, 16}), 0);
    cr_assert_neq(bk_engine_replay(e2, BK_REC_STATE, "abc", 3, (struct store_pos){1, 16}), 0);
    bk_engine_replay_end(e2, T0);
    bk_engine_free(e2);
}

Test(journal, failed_append_fails_the_action)
{
    create_queue(E, "a", NULL);
    J.fail = true;
    enum sqs_err rc;
    cJSON_Delete(act(E, T0, "SendMessage", "{\"QueueUrl\":\"http://x/000000000000/a\",\"MessageBody\":\"x\"}", &rc));
    cr_assert_eq(rc, SQS_E_INTERNAL);
    cr_assert_eq(bk_engine_find(E, "a", 1)->nmsgs, 0, "nothing half-sent");
    J.fail = false;
}

Test(journal, fifo_compaction_moves_queue_record_after_its_messages)
{
    J.seg_bytes = 2048;
    create_queue(E, "g.fifo", "{\"FifoQueue\":\"true\",\"DeduplicationScope\":\"messageGroup\"}");
    /* Fill a few segments, with the QUEUE record in the first. */
    for (int i = 0; i < 30; i++) {
        char p[512];
        snprintf(p, sizeof p,
                 "{\"QueueUrl\":\"http://x/000000000000/g.fifo\",\"MessageBody\":\"body-%03d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
                 "\"MessageGroupId\":\"g%d\",\"MessageDeduplicationId\":\"d%d\"}", i, i % 2, i);
        cJSON_Delete(act_ok(E, T0, "SendMessage", p));
    }
    /* Compact the oldest segments: the QUEUE record ends up after SENDs
     * that stayed where they were. */
    for (int k = 0; k < 2 && J.first_seg < J.seg; k++) {
        bk_engine_compact(E, J.first_seg, T0);
        memj_drop_oldest(&J);
    }
    restart(T0 + 1000);
    struct bk_queue *q = bk_engine_find(E, "g.fifo", 6);
    cr_assert_not_null(q);
    cr_assert(q->a.fifo);
    cr_assert_str_eq(q->a.dedup_scope, "messageGroup");
    cr_assert_eq(q->nmsgs, 30);
    cr_assert_eq(q->ndedup, 30);
    /* Dedup keys were built with the right scope: same id in the same
     * group is a duplicate, in another group it is not. */
    enum sqs_err rc;
    cJSON_Delete(act(E, T0 + 2000, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/g.fifo\",\"MessageBody\":\"x\",\"MessageGroupId\":\"g0\","
                     "\"MessageDeduplicationId\":\"d0\"}", &rc));
    cr_assert_eq(q->nmsgs, 30);
    cJSON_Delete(act(E, T0 + 2000, "SendMessage",
                     "{\"QueueUrl\":\"http://x/000000000000/g.fifo\",\"MessageBody\":\"x\",\"MessageGroupId\":\"g1\","
                     "\"MessageDeduplicationId\":\"d0\"}", &rc));
    cr_assert_eq(q->nmsgs, 31);
    /* Order within each group survived. */
    cJSON *m = receive(E, T0 + 3000, "g.fifo", 10, 30);
    int last = -1;
    cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (strcmp(msg_attr(it, "MessageGroupId"), "g0") != 0)
            continue;
        int n = atoi(msg_field(it, "Body") + 5);
        cr_assert_gt(n, last);
        last = n;
    }
    cJSON_Delete(m);
}

/* Damaged records (as if a checksum had let them through) must be refused
 * or skipped, never read out of bounds: random payloads of every type, and
 * real records with bytes flipped and tails cut. */
Test(journal, hostile_records_never_crash_replay)
{
    create_queue(E, "h", NULL);
    create_queue(E, "h.fifo", "{\"FifoQueue\":\"true\"}");
    cJSON_Delete(act_ok(E, T0, "SendMessage",
                        "{\"QueueUrl\":\"http://x/000000000000/h\",\"MessageBody\":\"x\",\"MessageAttributes\":"
                        "{\"k\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}}"));
    cJSON_Delete(act_ok(E, T0, "SendMessage",
                        "{\"QueueUrl\":\"http://x/000000000000/h.fifo\",\"MessageBody\":\"y\",\"MessageGroupId\":\"g\","
                        "\"MessageDeduplicationId\":\"d\"}"));
    cJSON_Delete(receive(E, T0, "h", 1, 30));
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    J.lax = true; /* damaged copies share positions: accounting is meaningless here */
    for (int round = 0; round < 300; round++) {
        struct bk_journal jj = memj_journal(&J);
        struct bk_engine *e2 = bk_engine_new(&O, &jj);
        memset(J.live, 0, sizeof J.live);
        bk_engine_replay_begin(e2, T0);
        for (size_t i = 0; i < J.n; i++) {
            struct memrec *r = &J.recs[i];
            uint32_t len = r->len;
            char *p = malloc(len + 64);
            memcpy(p, r->p, len);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (round % 3 == 0 && len) {
                p[rng % len] ^= (char)(1 + (rng >> 8) % 255);
            } else if (round % 3 == 1) {
                len = (uint32_t)(rng % (len + 1));
            } else {
                len = (uint32_t)(rng % 64);
                for (uint32_t k = 0; k < len; k++)
                    p[k] = (char)(rng >> (k % 56));
            }
            uint8_t type = round % 3 == 2 ? (uint8_t)(1 + (rng >> 20) % 9) : r->type;
            bk_engine_replay(e2, type, p, len, r->pos); /* any result but a crash */
            free(p);
        }
        bk_engine_replay_end(e2, T0);
        bk_engine_free(e2);
        /* Drop what replay_end appended, to keep the log as it was. */
        while (J.n && J.recs[J.n - 1].type == BK_REC_META && J.recs[J.n - 1].pos.seg == J.seg &&
               J.n > 5) {
            free(J.recs[J.n - 1].p);
            J.n--;
        }
    }
}
