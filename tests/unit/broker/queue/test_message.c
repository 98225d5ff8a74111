/* The engine's typed calls, without any JSON: bk_queue_create with parsed
 * attributes, bk_send, bk_receive, bk_delete, bk_change_visibility, and
 * the enum bk_err each refusal returns (body characters, sizes, delays, FIFO ids and
 * deduplication, receipts, long-poll waits, queue limits). */
#include "broker/bk_test.h"

static struct memj J;
static struct bk_engine *E;

static void setup(void)
{
    memj_init(&J);
    struct bk_engine_opts o = test_opts();
    o.max_queues = 3;
    E = engine_new(&J, &o);
}

static void teardown(void)
{
    bk_engine_free(E);
    memj_free(&J);
}

TestSuite(message, .init = setup, .fini = teardown);

static struct bk_ctx ctx_at(uint64_t now)
{
    return (struct bk_ctx){.now = now, .no_wait = true};
}

static struct bk_queue *new_queue(const char *name, bool fifo, bool content_dedup)
{
    struct bk_qattrs a;
    bk_qattrs_defaults(&a, &E->o, fifo);
    a.content_dedup = content_dedup;
    struct bk_ctx ctx = ctx_at(T0);
    struct bk_queue *q = NULL;
    struct bk_error err;
    cr_assert_eq(bk_queue_create(E, &ctx, name, &a, NULL, &q, &err), BK_OK, "%s", err.message);
    cr_assert(q && ctx.need_sync);
    return q;
}

static enum bk_err send(struct bk_queue *q, uint64_t now, const struct bk_send_args *a,
                        struct bk_send_result *r)
{
    struct bk_ctx ctx = ctx_at(now);
    struct bk_error err;
    return bk_send(E, &ctx, q, a, r, &err);
}

static struct bk_send_args body_args(const char *body)
{
    return (struct bk_send_args){.body = body, .body_len = strlen(body)};
}

Test(message, send_receive_delete)
{
    struct bk_queue *q = new_queue("plain", false, false);
    struct bk_send_args a = body_args("hello");
    a.attrs = "opaque";
    a.attrs_len = 6;
    struct bk_send_result r;
    cr_assert_eq(send(q, T0, &a, &r), BK_OK);
    cr_assert(!r.duplicate && r.message_id[0]);

    struct bk_ctx ctx = ctx_at(T0 + 1);
    struct bk_receive_args ra = {.max = 10};
    struct bk_receive_result rr;
    struct bk_error err;
    cr_assert_eq(bk_receive(E, &ctx, q, &ra, &rr, &err), BK_OK);
    cr_assert_eq(rr.n, 1);
    const struct bk_msg *m = rr.msgs[0].m;
    cr_assert_eq(m->mid, r.mid);
    cr_assert_eq(m->recv_count, 1);
    /* attributes stay as the caller encoded them, before the body */
    cr_assert(!memcmp(rr.msgs[0].data, "opaque", 6));
    cr_assert(!memcmp(rr.msgs[0].data + m->attrs_len + m->sys_len, "hello", 5));
    char receipt[64];
    bk_handle_make(E, m, receipt);
    bk_receive_done(&rr);

    cr_assert_eq(bk_delete(E, &ctx, q, receipt, &err), BK_OK);
    cr_assert_eq(q->nmsgs, 0);
    /* deleting again: gone already, still fine */
    cr_assert_eq(bk_delete(E, &ctx, q, receipt, &err), BK_OK);
    cr_assert_eq(bk_delete(E, &ctx, q, "not-a-receipt", &err), BK_E_RECEIPT);
    cr_assert_eq(bk_delete(E, &ctx, q, NULL, &err), BK_E_MISSING);
}

Test(message, digests_are_kept_as_given)
{
    struct bk_queue *q = new_queue("digests", false, false);
    struct bk_send_args a = body_args("x");
    struct bk_send_result r;
    cr_assert_eq(send(q, T0, &a, &r), BK_OK);
    static const uint8_t zero[16];
    cr_assert(!memcmp(bk_queue_lookup(q, r.mid)->md5_body, zero, 16));
    a.has_md5 = true;
    memset(a.md5_body, 0xab, 16);
    cr_assert_eq(send(q, T0, &a, &r), BK_OK);
    cr_assert_eq(bk_queue_lookup(q, r.mid)->md5_body[7], 0xab);
}

Test(message, send_refusals)
{
    struct bk_queue *q = new_queue("limits", false, false);
    struct bk_send_result r;
    struct bk_send_args a = body_args("");
    cr_assert_eq(send(q, T0, &a, &r), BK_E_MISSING);
    a = body_args("bell \x07");
    cr_assert_eq(send(q, T0, &a, &r), BK_E_CONTENTS);
    a = body_args("\xc3\x28"); /* not UTF-8 */
    cr_assert_eq(send(q, T0, &a, &r), BK_E_CONTENTS);
    a = body_args("small");
    a.attrs_size = q->a.max_size; /* body plus attributes over the limit */
    cr_assert_eq(send(q, T0, &a, &r), BK_E_INVALID);
    a = body_args("late");
    a.has_delay = true;
    a.delay_s = BK_MAX_DELAY_S + 1;
    cr_assert_eq(send(q, T0, &a, &r), BK_E_INVALID);
    a.delay_s = -1;
    cr_assert_eq(send(q, T0, &a, &r), BK_E_INVALID);
    a = body_args("dedup on a standard queue");
    a.dedup = "d1";
    cr_assert_eq(send(q, T0, &a, &r), BK_E_INVALID);
    cr_assert_eq(q->nmsgs, 0);
}

Test(message, delay_hides_until_due)
{
    struct bk_queue *q = new_queue("later", false, false);
    struct bk_send_args a = body_args("soon");
    a.has_delay = true;
    a.delay_s = 5;
    struct bk_send_result r;
    cr_assert_eq(send(q, T0, &a, &r), BK_OK);
    cr_assert_eq(q->n_delayed, 1);
    bk_engine_tick(E, T0 + 5000);
    cr_assert_eq(q->n_ready, 1);
}

Test(message, fifo_rules_and_dedup)
{
    struct bk_queue *q = new_queue("f.fifo", true, false);
    struct bk_send_result r1, r2;
    struct bk_send_args a = body_args("one");
    cr_assert_eq(send(q, T0, &a, &r1), BK_E_MISSING); /* no group */
    a.group = "g";
    cr_assert_eq(send(q, T0, &a, &r1), BK_E_INVALID); /* no dedup id, no content dedup */
    a.dedup = "bad id with spaces";
    cr_assert_eq(send(q, T0, &a, &r1), BK_E_INVALID);
    a.dedup = "d1";
    a.has_delay = true;
    a.delay_s = 3; /* FIFO queues take the queue's delay only */
    cr_assert_eq(send(q, T0, &a, &r1), BK_E_INVALID);
    a.has_delay = false;
    cr_assert_eq(send(q, T0, &a, &r1), BK_OK);
    cr_assert(!r1.duplicate);
    cr_assert_eq(send(q, T0 + 1000, &a, &r2), BK_OK);
    cr_assert(r2.duplicate);
    cr_assert_eq(r2.mid, r1.mid);
    cr_assert_str_eq(r2.message_id, r1.message_id);
    cr_assert_eq(q->nmsgs, 1);
    /* past the five-minute window the same id is a new message */
    bk_engine_housekeep(E, T0 + BK_DEDUP_WINDOW_MS + 1000);
    cr_assert_eq(send(q, T0 + BK_DEDUP_WINDOW_MS + 1000, &a, &r2), BK_OK);
    cr_assert(!r2.duplicate && r2.mid != r1.mid);
}

Test(message, fifo_content_dedup)
{
    struct bk_queue *q = new_queue("c.fifo", true, true);
    struct bk_send_args a = body_args("same body");
    a.group = "g";
    struct bk_send_result r1, r2;
    cr_assert_eq(send(q, T0, &a, &r1), BK_OK);
    cr_assert_eq(send(q, T0, &a, &r2), BK_OK);
    cr_assert(r2.duplicate && r2.mid == r1.mid);
    cr_assert_eq(strlen(bk_queue_lookup(q, r1.mid)->dedup_id), 64); /* the body's SHA-256 */
}

Test(message, visibility)
{
    struct bk_queue *q = new_queue("vis", false, false);
    struct bk_send_args a = body_args("v");
    struct bk_send_result r;
    cr_assert_eq(send(q, T0, &a, &r), BK_OK);
    struct bk_ctx ctx = ctx_at(T0);
    struct bk_receive_args ra = {.max = 1, .has_visibility = true, .visibility_s = 30};
    struct bk_receive_result rr;
    struct bk_error err;
    cr_assert_eq(bk_receive(E, &ctx, q, &ra, &rr, &err), BK_OK);
    cr_assert_eq(rr.n, 1);
    char receipt[64];
    bk_handle_make(E, rr.msgs[0].m, receipt);
    bk_receive_done(&rr);
    cr_assert_eq(q->n_inflight, 1);

    struct bk_visibility_args va = {.receipt = receipt};
    cr_assert_eq(bk_change_visibility(E, &ctx, q, &va, &err), BK_E_MISSING);
    va.has_timeout = true;
    va.timeout_s = BK_MAX_VISIBILITY_S + 1;
    cr_assert_eq(bk_change_visibility(E, &ctx, q, &va, &err), BK_E_INVALID);
    va.timeout_s = 0; /* back to the queue at once */
    cr_assert_eq(bk_change_visibility(E, &ctx, q, &va, &err), BK_OK);
    cr_assert_eq(q->n_ready, 1);
    cr_assert_eq(bk_change_visibility(E, &ctx, q, &va, &err), BK_E_NOT_INFLIGHT);
}

Test(message, receive_limits_and_wait)
{
    struct bk_queue *q = new_queue("empty", false, false);
    struct bk_ctx ctx = {.now = T0};
    struct bk_receive_args ra = {.max = 0};
    struct bk_receive_result rr;
    struct bk_error err;
    cr_assert_eq(bk_receive(E, &ctx, q, &ra, &rr, &err), BK_E_INVALID);
    ra.max = BK_MAX_BATCH + 1;
    cr_assert_eq(bk_receive(E, &ctx, q, &ra, &rr, &err), BK_E_INVALID);
    ra = (struct bk_receive_args){.max = 1, .has_wait = true, .wait_s = 5};
    cr_assert_eq(bk_receive(E, &ctx, q, &ra, &rr, &err), BK_OK);
    cr_assert_eq(rr.n, 0);
    cr_assert_eq(ctx.wait_ms, 5000);
    cr_assert_eq(ctx.wait_q, q);
}

Test(message, queue_calls)
{
    struct bk_queue *q = new_queue("a", false, false);
    struct bk_qattrs a;
    bk_qattrs_defaults(&a, &E->o, false);
    struct bk_ctx ctx = ctx_at(T0);
    struct bk_queue *again;
    struct bk_error err;
    /* the same name: the existing queue */
    cr_assert_eq(bk_queue_create(E, &ctx, "a", &a, NULL, &again, &err), BK_OK);
    cr_assert_eq(again, q);
    bk_qattrs_defaults(&a, &E->o, false);
    cr_assert_eq(bk_queue_create(E, &ctx, "bad name!", &a, NULL, &again, &err), BK_E_INVALID);
    new_queue("b", false, false);
    new_queue("c", false, false);
    bk_qattrs_defaults(&a, &E->o, false);
    cr_assert_eq(bk_queue_create(E, &ctx, "d", &a, NULL, &again, &err), BK_E_OVER_LIMIT);

    struct bk_send_args sa = body_args("m");
    struct bk_send_result r;
    cr_assert_eq(send(q, T0, &sa, &r), BK_OK);
    cr_assert_eq(bk_queue_purge(E, &ctx, q, &err), BK_OK);
    cr_assert_eq(q->nmsgs, 0);
    bk_qattrs_copy(&a, &q->a);
    a.visibility_s = 7;
    cr_assert_eq(bk_queue_set_attrs(E, &ctx, q, &a, &err), BK_OK);
    cr_assert_eq(q->a.visibility_s, 7);
    cr_assert_eq(bk_queue_delete(E, &ctx, q, &err), BK_OK);
    cr_assert_null(bk_engine_find(E, "a", 1));
}

Test(message, journal_refusal)
{
    struct bk_queue *q = new_queue("j", false, false);
    J.fail = true;
    struct bk_send_args a = body_args("lost");
    struct bk_send_result r;
    cr_assert_eq(send(q, T0, &a, &r), BK_E_LOG);
    cr_assert_eq(q->nmsgs, 0);
    J.fail = false;
}
