/* Unit tests for the store's write errors and free space
 * (src/broker/store/sync.c, store.c): a write error fails commits and
 * clears once a retry succeeds (also across a segment roll), the
 * free-space watermark defers rolls, and a store closed without a sync
 * thread writes everything. */
#include "broker/store/store_test.h"

TestSuite(store_errors, .init = setup, .fini = teardown);

Test(store_errors, write_error_fails_commits_then_recovers)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ 0 }, &loop);
    struct cbstate st = { .want = 2, .loop = loop };
    struct cbarg a0 = { &st, 0 }, a1 = { &st, 1 };
    append_n(s, 0, 3, NULL);
    store_commit(s, commit_cb, &a0);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 1);
    cr_assert_eq(st.errs, 0);
    /* the segment's descriptor now refuses writes, as a failing disk would */
    int real = dup(s->segs[0].fd);
    int ro = open("/dev/null", O_RDONLY);
    cr_assert_eq(dup2(ro, s->segs[0].fd), s->segs[0].fd);
    close(ro);
    append_n(s, 3, 2, NULL);
    store_commit(s, commit_cb, &a1);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 2);
    cr_assert_eq(st.errs, 1, "a commit whose records were not written fails");
    cr_assert_lt(st.last_err, 0);
    cr_assert_eq(store_error(s), st.last_err);
    cr_assert_eq(store_append(s, 1, "x", 1).seg, 0, "appends are refused while writes fail");
    struct cbarg a2 = { &st, 2 };
    st.want = 3;
    store_commit(s, commit_cb, &a2);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 3);
    cr_assert_eq(st.errs, 2, "commits fail while the error stands");
    /* still failing after several retries */
    cr_assert(!wait_error(loop, s, false, 5 * STORE_RETRY_MS));
    /* the disk works again: the retry rewrites the failed round, by itself */
    cr_assert_eq(dup2(real, s->segs[0].fd), s->segs[0].fd);
    close(real);
    cr_assert(wait_error(loop, s, false, 10000), "the store recovers without a restart");
    struct store_stats ss;
    store_get_stats(s, &ss);
    cr_assert_eq(ss.write_errors, 1);
    cr_assert_eq(ss.recoveries, 1);
    cr_assert_eq(ss.pending_bytes, 0);
    append_n(s, 5, 2, NULL);
    struct cbarg a3 = { &st, 3 };
    st.want = 4;
    store_commit(s, commit_cb, &a3);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 4);
    cr_assert_eq(st.errs, 2, "commits succeed again");
    store_close(s);
    ev_loop_free(loop);
    /* records 3 and 4 were never acknowledged, yet the retry wrote them
     * where they belong: the log holds every record once, in order */
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 7);
    store_close(s);
}

Test(store_errors, write_error_across_a_roll_recovers)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ .segment_bytes = 600 }, &loop);
    struct cbstate st = { .want = 1, .loop = loop };
    struct cbarg a0 = { &st, 0 }, a1 = { &st, 1 }, a2 = { &st, 2 };
    append_n(s, 0, 3, NULL);
    store_commit(s, commit_cb, &a0);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.errs, 0);
    size_t before = s->nsegs;
    /* One iteration's appends that roll into new segments, the newest of
     * which refuses writes: the round spans segments and fails. */
    append_n(s, 3, 12, NULL);
    cr_assert_gt(s->nsegs, before, "the appends rolled");
    struct store_seg *last = &s->segs[s->nsegs - 1];
    int real = dup(last->fd);
    int ro = open("/dev/null", O_RDONLY);
    cr_assert_eq(dup2(ro, last->fd), last->fd);
    close(ro);
    st.want = 2;
    store_commit(s, commit_cb, &a1);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.errs, 1);
    cr_assert(wait_error(loop, s, true, 1000));
    cr_assert_eq(dup2(real, s->segs[s->nsegs - 1].fd), s->segs[s->nsegs - 1].fd);
    close(real);
    cr_assert(wait_error(loop, s, false, 10000), "the store recovers without a restart");
    append_n(s, 15, 5, NULL);
    st.want = 3;
    store_commit(s, commit_cb, &a2);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 3);
    cr_assert_eq(st.errs, 1);
    store_close(s);
    ev_loop_free(loop);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 20);
    store_close(s);
}

Test(store_errors, disk_low_defers_rolls_and_clears)
{
    struct ev_loop *loop;
    struct store *s = start_store(sub("d"), (struct store_opts){ .segment_bytes = 600, .disk_free_limit = 1 },
                                  &loop);
    cr_assert(!store_disk_low(s), "one free byte is there");
    struct store_stats ss;
    store_get_stats(s, &ss);
    cr_assert_gt(ss.disk_free, 0);
    s->o.disk_free_limit = UINT64_MAX; /* no file system has that much free */
    cr_assert_eq(store_disk_check(s), 0);
    cr_assert(store_disk_low(s));
    append_n(s, 0, 40, NULL);
    store_get_stats(s, &ss);
    cr_assert_eq(ss.segments, 1, "no roll while the disk is low: %llu segments",
                 (unsigned long long)ss.segments);
    cr_assert(ss.disk_low);
    cr_assert_eq(ss.disk_alarms, 1);
    s->o.disk_free_limit = 1;
    struct cbstate idle = { .want = -1, .loop = loop };
    run_for(loop, &idle, 3 * STORE_DISK_CHECK_MS); /* the timer sees it */
    cr_assert(!store_disk_low(s));
    s->roll_retry_ns = 0;
    append_n(s, 40, 40, NULL);
    store_get_stats(s, &ss);
    cr_assert_gt(ss.segments, 1, "rolls resume once space is back");
    store_close(s);
    ev_loop_free(loop);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 80);
    store_close(s);
}

Test(store_errors, close_without_start_writes_everything)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 600 });
    replay_all(s);
    append_n(s, 0, 40, NULL);
    store_flush(s);
    append_n(s, 40, 40, NULL);
    store_close(s);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 80);
    store_close(s);
}
