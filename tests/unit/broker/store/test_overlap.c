/* Unit tests for overlapping sync rounds (src/broker/store/sync.c): the
 * store's fdatasync is replaced by one that holds a chosen call until the
 * test releases it, and fails chosen calls, so that round N+1 is written
 * and synced while round N's fdatasync still runs. Completions still come
 * in order, an error in round N fails the commits that depend on it and
 * not earlier ones, a later round fails with an earlier one, a segment
 * cut while a round is in flight keeps the log whole, and the store
 * recovers from all of it without a restart. */
#include "broker/store/store_test.h"

#include <pthread.h>

TestSuite(store_overlap, .init = setup, .fini = teardown);

/* The fault: call `hold` (1-based) waits until released; calls in
 * fail_mask (bit n-1 for call n) fail with EIO. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, returned;
    int hold;
    bool released;
    uint32_t fail_mask;
} fx = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static int fx_datasync(int fd)
{
    pthread_mutex_lock(&fx.mu);
    int n = ++fx.calls;
    while (n == fx.hold && !fx.released)
        pthread_cond_wait(&fx.cv, &fx.mu);
    pthread_mutex_unlock(&fx.mu);
    bool fail = n <= 32 && (fx.fail_mask >> (n - 1) & 1);
    int rc = fail ? -1 : fdatasync(fd);
    int e = fail ? EIO : errno;
    pthread_mutex_lock(&fx.mu);
    fx.returned++;
    pthread_mutex_unlock(&fx.mu);
    errno = e;
    return rc;
}

static void fx_release(void)
{
    pthread_mutex_lock(&fx.mu);
    fx.released = true;
    pthread_cond_broadcast(&fx.cv);
    pthread_mutex_unlock(&fx.mu);
}

static int fx_get(const int *v)
{
    pthread_mutex_lock(&fx.mu);
    int n = *v;
    pthread_mutex_unlock(&fx.mu);
    return n;
}

/* Runs loop in short slices until *v (a counter of fx) reaches n, at most
 * about ms milliseconds. */
static bool wait_fx(struct ev_loop *loop, const int *v, int n, int ms)
{
    struct cbstate idle = { .want = -1, .loop = loop };
    for (int waited = 0; waited < ms; waited += 20) {
        if (fx_get(v) >= n)
            return true;
        run_for(loop, &idle, 20);
    }
    return fx_get(v) >= n;
}

/* Each commit's result, by index, besides the order commit_cb checks. */
static int results[8];

static void result_cb(void *ud, int err)
{
    struct cbarg *a = ud;
    results[a->idx] = err;
    commit_cb(ud, err);
}

/* Round 1 (the segment header and records 0..2, commit 0) is held in its
 * fdatasync; round 2 (records 3..4, commit 1) is written and synced
 * meanwhile. Returns the store with both rounds in flight. */
static struct store *two_rounds(struct ev_loop **loopp, struct cbstate *st, struct cbarg *a,
                                struct store_opts o, int round2_recs)
{
    struct store *s = start_store(sub("d"), o, loopp);
    s->datasync = fx_datasync;
    append_n(s, 0, 3, NULL);
    store_commit(s, result_cb, &a[0]);
    cr_assert(wait_fx(*loopp, &fx.calls, 1, 10000), "round 1 reaches its fdatasync");
    int before = fx_get(&fx.calls);
    append_n(s, 3, round2_recs, NULL);
    store_commit(s, result_cb, &a[1]);
    cr_assert(wait_fx(*loopp, &fx.returned, before, 10000),
              "round 2 is written and synced while round 1's fdatasync runs");
    cr_assert_eq(st->next, 0, "no completion while round 1 is not durable");
    return s;
}

static void check_log(int n)
{
    struct store *s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, n);
    store_close(s);
}

Test(store_overlap, completions_in_order)
{
    fx.hold = 1;
    struct ev_loop *loop;
    struct cbstate st = { .want = 2 };
    struct cbarg a[2] = { { &st, 0 }, { &st, 1 } };
    struct store *s = two_rounds(&loop, &st, a, (struct store_opts){ 0 }, 2);
    st.loop = loop;
    fx_release();
    run_for(loop, &st, 10000);
    cr_assert_eq(st.next, 2, "both commits complete, round 1's first (commit_cb checks)");
    cr_assert_eq(st.errs, 0);
    store_close(s);
    ev_loop_free(loop);
    check_log(5);
}

Test(store_overlap, error_fails_later_commits_not_earlier)
{
    fx.hold = 1;
    fx.fail_mask = 1u << 1; /* round 2's fdatasync */
    struct ev_loop *loop;
    struct cbstate st = { .want = 2 };
    struct cbarg a[3] = { { &st, 0 }, { &st, 1 }, { &st, 2 } };
    struct store *s = two_rounds(&loop, &st, a, (struct store_opts){ 0 }, 2);
    st.loop = loop;
    cr_assert_eq(store_error(s), 0, "round 2's error waits for round 1");
    fx_release();
    run_for(loop, &st, 10000);
    cr_assert_eq(st.next, 2);
    cr_assert_eq(results[0], 0, "round 1 is durable: its commit succeeds");
    cr_assert_eq(results[1], -EIO, "round 2 failed: its commit fails");
    cr_assert(wait_error(loop, s, false, 10000), "the retry rewrites round 2");
    append_n(s, 5, 1, NULL);
    st.want = 3;
    store_commit(s, result_cb, &a[2]);
    run_for(loop, &st, 10000);
    cr_assert_eq(st.next, 3);
    cr_assert_eq(results[2], 0);
    store_close(s);
    ev_loop_free(loop);
    check_log(6);
}

Test(store_overlap, earlier_error_fails_the_later_round)
{
    fx.hold = 1;
    fx.fail_mask = 1u << 0; /* round 1's fdatasync, after round 2's succeeded */
    struct ev_loop *loop;
    struct cbstate st = { .want = 2 };
    struct cbarg a[3] = { { &st, 0 }, { &st, 1 }, { &st, 2 } };
    struct store *s = two_rounds(&loop, &st, a, (struct store_opts){ 0 }, 2);
    st.loop = loop;
    fx_release();
    run_for(loop, &st, 10000);
    cr_assert_eq(st.next, 2);
    cr_assert_eq(results[0], -EIO);
    cr_assert_eq(results[1], -EIO, "round 2's bytes follow round 1's: its commit fails too");
    cr_assert(wait_error(loop, s, false, 10000), "the retry rewrites both rounds");
    struct store_stats ss;
    store_get_stats(s, &ss);
    cr_assert_eq(ss.write_errors, 1);
    cr_assert_eq(ss.recoveries, 1);
    cr_assert_eq(ss.pending_bytes, 0);
    append_n(s, 5, 1, NULL);
    st.want = 3;
    store_commit(s, result_cb, &a[2]);
    run_for(loop, &st, 10000);
    cr_assert_eq(results[2], 0);
    store_close(s);
    ev_loop_free(loop);
    check_log(6);
}

Test(store_overlap, segment_cut_while_a_round_is_in_flight)
{
    fx.hold = 1;
    struct ev_loop *loop;
    struct cbstate st = { .want = 2 };
    struct cbarg a[2] = { { &st, 0 }, { &st, 1 } };
    /* round 2 fills the segment round 1 wrote and rolls into new ones:
     * it seals the segment (an fdatasync of its own) while round 1's
     * fdatasync of it is held */
    struct store *s = two_rounds(&loop, &st, a, (struct store_opts){ .segment_bytes = 600 }, 12);
    st.loop = loop;
    cr_assert_gt(s->nsegs, 1, "round 2 rolled");
    fx_release();
    run_for(loop, &st, 10000);
    cr_assert_eq(st.next, 2);
    cr_assert_eq(st.errs, 0);
    store_close(s);
    ev_loop_free(loop);
    check_log(15);
}
