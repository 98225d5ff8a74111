/* Unit tests for the store's group commit through a real event loop
 * (src/broker/store/store.c, sync.c): one iteration's appends share an
 * fdatasync, commits across iterations run in order, callbacks that
 * append are flushed, zeros are written ahead of the log, and the
 * INTERVAL policy. */
#include "broker/store/store_test.h"

TestSuite(store_commit, .init = setup, .fini = teardown);

static void group_commit(enum store_fsync mode)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ .fsync = mode }, &loop);
    enum { N = 5000 };
    static struct cbarg args[N];
    struct cbstate st = { .want = N, .loop = loop };
    uint8_t buf[512];
    for (int i = 0; i < N; i++) {
        uint32_t len = mkpayload(i, buf);
        cr_assert_neq(store_append(s, 1, buf, len).seg, 0);
        args[i] = (struct cbarg){ &st, i };
        store_commit(s, commit_cb, &args[i]);
    }
    cr_assert_eq(st.next, 0, "no callback before the data is written");
    run_for(loop, &st, 10000);
    cr_assert(!st.timed_out, "only %d of %d callbacks", st.next, N);
    cr_assert_eq(st.errs, 0);
    struct store_stats ss;
    store_get_stats(s, &ss);
    cr_assert_eq(ss.appends, N);
    cr_assert_eq(ss.commits, N);
    cr_assert_leq(ss.syncs, 3, "%llu fdatasyncs for one iteration's appends",
                  (unsigned long long)ss.syncs);
    cr_assert_geq(ss.syncs, 1);
    cr_assert_eq(ss.pending_bytes, 0);
    store_close(s);
    ev_loop_free(loop);
    s = open_dir(sub("d"));
    cr_assert_eq(replay_all(s)->n, N);
    store_close(s);
}

Test(store_commit, group_commit_always)
{
    group_commit(STORE_FSYNC_ALWAYS);
}

Test(store_commit, group_commit_batch)
{
    group_commit(STORE_FSYNC_BATCH);
}

/* Commits issued over several iterations: each round's appends share
 * fdatasyncs, and later commits wait for later data. */
struct feeder {
    struct store *s;
    struct cbstate *st;
    struct cbarg *args;
    int rounds, per_round, issued;
    struct ev_timer t;
};

static void feed(struct ev_loop *loop, struct ev_timer *t)
{
    struct feeder *f = t->ud;
    uint8_t buf[512];
    for (int k = 0; k < f->per_round; k++) {
        int i = f->issued++;
        uint32_t len = mkpayload(i, buf);
        cr_assert_neq(store_append(f->s, 2, buf, len).seg, 0);
        f->args[i] = (struct cbarg){ f->st, i };
        store_commit(f->s, commit_cb, &f->args[i]);
    }
    if (--f->rounds > 0)
        ev_timer_start(loop, t, 0);
}

Test(store_commit, commits_across_iterations_in_order)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ 0 }, &loop);
    enum { R = 50, P = 40 };
    static struct cbarg args[R * P];
    struct cbstate st = { .want = R * P, .loop = loop };
    struct feeder f = { .s = s, .st = &st, .args = args, .rounds = R, .per_round = P };
    ev_timer_init(&f.t, feed, &f);
    ev_timer_start(loop, &f.t, 0);
    run_for(loop, &st, 20000);
    cr_assert(!st.timed_out, "only %d of %d callbacks", st.next, R * P);
    struct store_stats ss;
    store_get_stats(s, &ss);
    cr_assert_leq(ss.syncs, R + 1);
    store_close(s);
    ev_loop_free(loop);
    s = open_dir(sub("d"));
    cr_assert_eq(replay_all(s)->n, R * P);
    store_close(s);
}

Test(store_commit, commit_with_nothing_pending_runs_on_next_flush)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ 0 }, &loop);
    struct cbstate st = { .want = 1, .loop = loop };
    struct cbarg a = { &st, 0 };
    store_commit(s, commit_cb, &a);
    cr_assert_eq(st.next, 0, "not run inside store_commit");
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 1);
    store_close(s);
    ev_loop_free(loop);
}

/* A callback run by store_flush itself (its commit had nothing to wait
 * for) appends and commits again: that data must leave with the same flush,
 * not wait for an unrelated wakeup. */
static struct store *chain_store;

static void chain_cb(void *ud, int err)
{
    struct cbarg *a = ud;
    commit_cb(ud, err);
    if (a->idx < 5) {
        append_n(chain_store, a->idx, 1, NULL);
        a[1].st = a->st;
        a[1].idx = a->idx + 1;
        store_commit(chain_store, chain_cb, &a[1]);
    }
}

Test(store_commit, callbacks_that_append_from_flush_are_flushed)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ 0 }, &loop);
    chain_store = s;
    struct cbstate st0 = { .want = 1, .loop = loop };
    struct cbarg a0 = { &st0, 0 };
    store_commit(s, commit_cb, &a0); /* the new segment's header, written */
    run_for(loop, &st0, 3000);
    cr_assert_eq(st0.next, 1);
    struct cbstate st = { .want = 6, .loop = loop };
    static struct cbarg args[8];
    args[0] = (struct cbarg){ &st, 0 };
    store_commit(s, chain_cb, &args[0]);
    run_for(loop, &st, 3000);
    cr_assert(!st.timed_out, "stalled after %d callbacks", st.next);
    cr_assert_eq(st.next, 6);
    store_close(s);
    ev_loop_free(loop);
}

Test(store_commit, zeros_written_ahead_while_running)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ .segment_bytes = 4096 }, &loop);
    struct cbstate st = { .want = 1, .loop = loop };
    struct cbarg a = { &st, 0 };
    append_n(s, 0, 10, NULL);
    store_commit(s, commit_cb, &a);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 1);
    struct store_stats ss;
    store_get_stats(s, &ss);
    cr_assert_gt(file_size(seg_path(sub("d"), 1)), ss.disk_bytes + 50000,
                 "zeros ahead of the records");
    /* a crash now leaves the zeros: replay sees exactly the records */
    size_t n;
    uint8_t *img = slurp(seg_path(sub("d"), 1), &n);
    mkdir(sub("copy"), 0755);
    spit(seg_path(sub("copy"), 1), img, n);
    free(img);
    struct store *c = open_dir(sub("copy"));
    check_recs(replay_all(c), 0, 10);
    store_close(c);

    /* rolling cuts the sealed segment at its last record */
    st.want = 2;
    struct cbarg b = { &st, 1 };
    append_n(s, 10, 140, NULL);
    store_commit(s, commit_cb, &b);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 2);
    store_get_stats(s, &ss);
    cr_assert_gt(ss.segments, 2);
    cr_assert_lt(file_size(seg_path(sub("d"), 1)), 4096 + 300);
    store_close(s);
    ev_loop_free(loop);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 150);
    store_close(s);
}

Test(store_commit, interval_policy)
{
    struct ev_loop *loop;
    struct store *s = start_store(
        sub("d"), (struct store_opts){ .fsync = STORE_FSYNC_INTERVAL, .interval_ms = 30 }, &loop);
    struct cbstate st = { .want = 100, .loop = loop };
    static struct cbarg args[100];
    append_n(s, 0, 100, NULL);
    for (int i = 0; i < 100; i++) {
        args[i] = (struct cbarg){ &st, i };
        store_commit(s, commit_cb, &args[i]);
    }
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 100);
    /* written, so a reader of the file sees it before any fdatasync */
    size_t n;
    free(slurp(seg_path(sub("d"), 1), &n));
    cr_assert_gt(n, 100 * STORE_REC_HDR);
    /* the periodic sync follows within the interval (bounded wait) */
    struct store_stats ss;
    for (int k = 0; k < 200; k++) {
        store_get_stats(s, &ss);
        if (ss.syncs)
            break;
        struct cbstate idle = { .want = -1, .loop = loop };
        run_for(loop, &idle, 10);
    }
    cr_assert_geq(ss.syncs, 1, "interval fdatasync happened");
    store_close(s);
    ev_loop_free(loop);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 100);
    store_close(s);
}
