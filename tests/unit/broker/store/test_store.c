/* Unit tests for the store's reads and accounting
 * (src/broker/store/store.c): reads of pending and written records,
 * live-byte accounting and compaction, the directory lock, the record
 * size limit, and the CRC-32C it checks records with. */
#include "broker/store/store_test.h"

#include "core/crc32c.h"

TestSuite(store, .init = setup, .fini = teardown);

Test(store, read_pending_and_flushed)
{
    struct store *s = open_dir(sub("d"));
    replay_all(s);
    struct store_pos pos[50];
    append_n(s, 0, 50, pos);
    uint8_t buf[512], want[512];
    /* still in the fill buffer */
    uint32_t len = mkpayload(3, want);
    cr_assert_eq(store_read(s, pos[3], buf, sizeof buf), len);
    cr_assert_eq(memcmp(buf, want, len), 0);
    /* handed off, not written (no sync thread yet) */
    store_flush(s);
    len = mkpayload(49, want);
    cr_assert_eq(store_read(s, pos[49], buf, sizeof buf), len);
    cr_assert_eq(memcmp(buf, want, len), 0);
    /* a short buffer gets the start and the full length */
    cr_assert_eq(store_read(s, pos[49], buf, 2), len);
    cr_assert(buf[0] == want[0] && buf[1] == want[1]);
    /* bad positions */
    cr_assert_eq(store_read(s, (struct store_pos){ 1, pos[3].off + 1 }, buf, sizeof buf), -1);
    cr_assert_eq(store_read(s, (struct store_pos){ 99, 16 }, buf, sizeof buf), -1);
    cr_assert_eq(store_read(s, (struct store_pos){ 1, 1u << 30 }, buf, sizeof buf), -1);

    /* written and durable: read back from the file */
    struct ev_loop *loop = ev_loop_new();
    cr_assert_eq(store_start(s, loop), 0);
    ev_set_before_poll(loop, before_poll, s);
    struct cbstate st = { .want = 1, .loop = loop };
    struct cbarg a = { &st, 0 };
    store_commit(s, commit_cb, &a);
    run_for(loop, &st, 5000);
    cr_assert_eq(st.next, 1);
    cr_assert_null(s->inflight_head, "retired");
    for (int i = 0; i < 50; i++) {
        len = mkpayload(i, want);
        cr_assert_eq(store_read(s, pos[i], buf, sizeof buf), len, "record %d", i);
        cr_assert_eq(memcmp(buf, want, len), 0);
    }
    cr_assert_eq(store_read(s, pos[49], buf, 3), len);
    cr_assert_eq(memcmp(buf, want, 3), 0);
    store_close(s);
    ev_loop_free(loop);

    /* after a restart, and a record damaged on disk reads as -1 */
    s = open_dir(sub("d"));
    replay_all(s);
    len = mkpayload(10, want);
    cr_assert_eq(store_read(s, pos[10], buf, sizeof buf), len);
    int fd = open(seg_path(sub("d"), 1), O_RDWR);
    uint8_t x = 0xff;
    cr_assert_eq(pwrite(fd, &x, 1, (off_t)pos[10].off + STORE_REC_HDR), 1);
    close(fd);
    cr_assert_eq(store_read(s, pos[10], buf, sizeof buf), -1);
    store_close(s);
}

Test(store, live_bytes_and_compaction)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 2000 });
    replay_all(s);
    struct store_pos pos[100];
    uint32_t lens[100];
    uint8_t buf[512];
    for (int i = 0; i < 100; i++) {
        lens[i] = mkpayload(i, buf);
        pos[i] = store_append(s, 1, buf, lens[i]);
        store_retain(s, pos[i], lens[i]);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    uint64_t want = 0;
    for (int i = 0; i < 100; i++)
        want += lens[i] + STORE_REC_HDR;
    cr_assert_eq(st.live_bytes, want);
    cr_assert_eq(st.disk_bytes, want + st.segments * STORE_SEG_HDR);
    cr_assert_eq(store_compact_candidate(s, 0.5), 0, "all live");

    /* release everything in segment 1 but one record */
    int keep = -1;
    for (int i = 0; i < 100 && pos[i].seg == 1; i++) {
        if (keep < 0) {
            keep = i;
            continue;
        }
        store_release(s, pos[i], lens[i]);
    }
    cr_assert_eq(store_compact_candidate(s, 0.5), 1);
    cr_assert_eq(store_drop_oldest(s, 2), -EINVAL, "only the oldest");
    cr_assert_eq(store_drop_oldest(s, 1), -EBUSY, "not durable yet");

    /* the engine re-appends the live record, commits, then drops */
    struct store_pos np = store_append(s, 1, buf, mkpayload(keep, buf));
    store_retain(s, np, lens[keep]);
    store_release(s, pos[keep], lens[keep]);
    struct ev_loop *loop = ev_loop_new();
    cr_assert_eq(store_start(s, loop), 0);
    ev_set_before_poll(loop, before_poll, s);
    struct cbstate cs = { .want = 1, .loop = loop };
    struct cbarg a = { &cs, 0 };
    store_commit(s, commit_cb, &a);
    run_for(loop, &cs, 5000);
    cr_assert_eq(cs.next, 1);
    cr_assert_eq(store_drop_oldest(s, 1), 0);
    cr_assert_neq(access(seg_path(sub("d"), 1), F_OK), 0, "file removed");
    cr_assert_eq(store_read(s, pos[keep], buf, sizeof buf), -1);
    cr_assert_eq(store_read(s, np, buf, sizeof buf), lens[keep]);
    struct store_stats st2;
    store_get_stats(s, &st2);
    cr_assert_eq(st2.segments, st.segments - 1);
    uint64_t live = (uint64_t)lens[keep] + STORE_REC_HDR;
    for (int i = 0; i < 100; i++)
        if (pos[i].seg != 1)
            live += lens[i] + STORE_REC_HDR;
    cr_assert_eq(st2.live_bytes, live);
    /* releasing a record of a dropped segment is harmless */
    store_release(s, pos[0], lens[0]);
    store_get_stats(s, &st2);
    cr_assert_eq(st2.live_bytes, live);
    /* with one segment left, nothing is a candidate: the active one stays */
    while (st2.segments > 1) {
        uint64_t c = store_compact_candidate(s, 2.0);
        cr_assert_neq(c, 0);
        cr_assert_eq(store_drop_oldest(s, c), 0);
        store_get_stats(s, &st2);
    }
    cr_assert_eq(store_compact_candidate(s, 2.0), 0);
    store_close(s);
    ev_loop_free(loop);

    s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 2000 });
    struct recs *rs = replay_all(s);
    cr_assert_gt(rs->n, 0);
    cr_assert_eq(rs->r[rs->n - 1].len, lens[keep]);
    store_close(s);
}

Test(store, second_open_is_locked_out)
{
    struct store *s = open_dir(sub("d"));
    struct store_opts o = { .dir = sub("d") };
    char err[256] = "";
    cr_assert_null(store_open(&o, err, sizeof err));
    cr_assert(strstr(err, "locked"), "err: %s", err);
    store_close(s);
    struct store *s2 = store_open(&o, err, sizeof err);
    cr_assert_not_null(s2, "free again after close: %s", err);
    store_close(s2);
}

Test(store, record_size_limit)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .max_record_bytes = 1000 });
    replay_all(s);
    uint8_t *big = calloc(1, 1001);
    cr_assert_eq(store_append(s, 1, big, 1001).seg, 0);
    cr_assert_neq(store_append(s, 1, big, 1000).seg, 0);
    cr_assert_eq(store_error(s), 0, "a refused record is no I/O error");
    store_close(s);
    free(big);
    s = open_dir(sub("d"));
    struct recs *rs = replay_all(s);
    cr_assert_eq(rs->n, 1);
    cr_assert_eq(rs->r[0].len, 1000);
    store_close(s);
}

Test(store, crc32c_vectors)
{
    cr_assert_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c(0, "", 0), 0);
}
