/* Unit tests for the store's recovery (src/broker/store/replay.c): round
 * trips, replay order, torn tails cut at every byte of the last record and
 * at random points, flipped bits in the last and in a sealed segment,
 * zero-filled tails, torn and garbage segment headers, a missing segment,
 * and replay across segment rolls. */
#include "broker/store/store_test.h"

TestSuite(store_replay, .init = setup, .fini = teardown);

Test(store_replay, round_trip_and_order)
{
    struct store *s = open_dir(sub("d"));
    cr_assert_eq(replay_all(s)->n, 0);
    struct store_pos pos[200];
    append_n(s, 0, 200, pos);
    for (int i = 1; i < 200; i++)
        cr_assert(pos[i].seg == pos[0].seg && pos[i].off > pos[i - 1].off);
    cr_assert_eq(pos[0].off, STORE_SEG_HDR);
    store_close(s);

    s = open_dir(sub("d"));
    struct recs *rs = replay_all(s);
    check_recs(rs, 0, 200);
    for (int i = 0; i < 200; i++)
        cr_assert(rs->r[i].pos.seg == pos[i].seg && rs->r[i].pos.off == pos[i].off);
    /* appending goes on after the replayed records */
    append_n(s, 200, 10, NULL);
    store_close(s);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 210);
    store_close(s);
}

Test(store_replay, empty_payload_and_replay_stop)
{
    struct store *s = open_dir(sub("d"));
    replay_all(s);
    cr_assert_neq(store_append(s, 9, NULL, 0).seg, 0);
    append_n(s, 0, 5, NULL);
    cr_assert_eq(store_append(s, 0, "x", 1).seg, 0, "type 0 is refused");
    store_close(s);

    s = open_dir(sub("d"));
    struct recs rs = { .stop_at = 3 };
    char err[128];
    cr_assert_eq(store_replay(s, collect, &rs, err, sizeof err), 42);
    cr_assert_eq(rs.n, 3);
    cr_assert_eq(rs.r[0].type, 9);
    cr_assert_eq(rs.r[0].len, 0);
    cr_assert_eq(store_append(s, 1, "x", 1).seg, 0, "no appends after a stopped replay");
    store_close(s);
}

Test(store_replay, torn_tail_every_byte_of_last_record)
{
    uint64_t starts[8];
    size_t size;
    uint8_t *img = build_log(sub("base"), 8, starts, &size);
    for (uint64_t cut = starts[7]; cut < size; cut++) {
        char dir[96];
        snprintf(dir, sizeof dir, "%s/cut%llu", tdir, (unsigned long long)cut);
        mkdir(dir, 0755);
        spit(seg_path(dir, 1), img, cut);
        struct store *s = open_dir(dir);
        check_recs(replay_all(s), 0, 7);
        cr_assert_eq(file_size(seg_path(dir, 1)), starts[7], "truncated at the record start");
        append_n(s, 100, 2, NULL);
        store_close(s);
        s = open_dir(dir);
        struct recs *rs = replay_all(s);
        cr_assert_eq(rs->n, 9);
        check_prefix(rs, 0, 7);
        uint8_t buf[512];
        uint32_t len = mkpayload(101, buf);
        cr_assert(rs->r[8].len == len && memcmp(rs->r[8].data, buf, len) == 0);
        store_close(s);
    }
    free(img);
}

Test(store_replay, torn_tail_random_points)
{
    uint64_t starts[40];
    size_t size;
    uint8_t *img = build_log(sub("base"), 40, starts, &size);
    srand(7);
    for (int k = 0; k < 60; k++) {
        uint64_t cut = k == 0 ? 0 : k == 1 ? 5 : (uint64_t)rand() % (size + 1);
        int want = 0;
        while (want < 40 && (want + 1 < 40 ? starts[want + 1] : size) <= cut)
            want++;
        char dir[96];
        snprintf(dir, sizeof dir, "%s/r%d", tdir, k);
        mkdir(dir, 0755);
        spit(seg_path(dir, 1), img, cut);
        struct store *s = open_dir(dir);
        check_recs(replay_all(s), 0, want);
        append_n(s, 0, 1, NULL);
        store_close(s);
        s = open_dir(dir);
        cr_assert_eq(replay_all(s)->n, want + 1, "cut %llu", (unsigned long long)cut);
        store_close(s);
    }
    free(img);
}

Test(store_replay, flipped_bit_in_active_segment_refuses)
{
    uint64_t starts[10];
    size_t size;
    uint8_t *img = build_log(sub("d"), 10, starts, &size);
    img[starts[6] + 12] ^= 0x10; /* inside record 6's payload */
    spit(seg_path(sub("d"), 1), img, size);
    struct store *s = open_dir(sub("d"));
    struct recs rs = { 0 };
    char err[512] = "", want[64];
    cr_assert_eq(store_replay(s, collect, &rs, err, sizeof err), -1);
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)starts[6]);
    cr_assert(strstr(err, "0000000000000001.seg") && strstr(err, want) &&
              strstr(err, "3 intact records"), "err: %s", err);
    cr_assert_eq(file_size(seg_path(sub("d"), 1)), size, "nothing cut");
    cr_assert_eq(store_append(s, 1, "x", 1).seg, 0);
    store_close(s);
    free(img);
}

Test(store_replay, flipped_bit_in_sealed_segment_fails)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 1024 });
    replay_all(s);
    append_n(s, 0, 60, NULL);
    store_close(s);
    cr_assert(access(seg_path(sub("d"), 3), F_OK) == 0, "several segments");
    size_t n;
    uint8_t *img = slurp(seg_path(sub("d"), 1), &n);
    img[n - 3] ^= 1;
    spit(seg_path(sub("d"), 1), img, n);
    free(img);
    s = open_dir(sub("d"));
    struct recs rs = { 0 };
    char err[256] = "";
    cr_assert_eq(store_replay(s, collect, &rs, err, sizeof err), -1);
    cr_assert(strstr(err, "0000000000000001.seg") && strstr(err, "offset"), "err: %s", err);
    cr_assert_eq(store_append(s, 1, "x", 1).seg, 0);
    store_close(s);
}

Test(store_replay, zero_filled_tail)
{
    uint64_t starts[6];
    size_t size;
    uint8_t *img = build_log(sub("d"), 5, starts, &size);
    cr_assert_eq(size, starts[4] + STORE_REC_HDR + mkpayload(4, (uint8_t[512]){ 0 }),
                 "closed: no zeros left past the last record");
    uint8_t *big = calloc(1, size + 8192);
    memcpy(big, img, size);
    spit(seg_path(sub("d"), 1), big, size + 8192);
    struct store *s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 5);
    /* zeros are the end of the log, kept to be overwritten */
    cr_assert_eq(file_size(seg_path(sub("d"), 1)), size + 8192);
    append_n(s, 5, 1, NULL);
    store_close(s);
    cr_assert_lt(file_size(seg_path(sub("d"), 1)), size + 300, "cut at close");
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 6);
    store_close(s);

    free(big);
    free(img);

    /* A torn record followed by zeros is still a torn record: the sectors
     * of a write that never reached the disk read as the zeros written
     * ahead. Record 5 (offsets 436 to 631) crosses the sector at 512. */
    img = build_log(sub("t"), 6, starts, &size);
    cr_assert(starts[5] < 512 && size > 512);
    big = calloc(1, size + 8192);
    memcpy(big, img, 512);
    spit(seg_path(sub("t"), 1), big, size + 8192);
    s = open_dir(sub("t"));
    check_recs(replay_all(s), 0, 5);
    cr_assert_eq(file_size(seg_path(sub("t"), 1)), starts[5]);
    store_close(s);
    free(big);
    free(img);
}

Test(store_replay, sealed_segment_with_zero_tail_is_accepted)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 1024 });
    replay_all(s);
    append_n(s, 0, 30, NULL);
    store_close(s);
    size_t n;
    uint8_t *img = slurp(seg_path(sub("d"), 1), &n);
    uint8_t *big = calloc(1, n + 4096);
    memcpy(big, img, n);
    spit(seg_path(sub("d"), 1), big, n + 4096); /* a crash before the cut */
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, 30);
    store_close(s);
    free(big);
    free(img);
}

Test(store_replay, torn_segment_header_of_last_segment)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 512 });
    replay_all(s);
    append_n(s, 0, 20, NULL);
    store_close(s);
    int last = 1;
    while (access(seg_path(sub("d"), (uint64_t)last + 1), F_OK) == 0)
        last++;
    cr_assert_gt(last, 2);
    int before = 0;
    s = open_dir(sub("d"));
    struct recs *rs = replay_all(s);
    for (int i = 0; i < rs->n; i++)
        before += rs->r[i].pos.seg < (uint64_t)last;
    store_close(s);
    /* the last segment's creation was cut short: 5 bytes of its header */
    uint8_t hdr[STORE_SEG_HDR];
    store__seg_header(hdr, (uint64_t)last);
    spit(seg_path(sub("d"), (uint64_t)last), hdr, 5);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, before);
    cr_assert_eq(file_size(seg_path(sub("d"), (uint64_t)last)), STORE_SEG_HDR);
    append_n(s, before, 3, NULL);
    store_close(s);
    s = open_dir(sub("d"));
    check_recs(replay_all(s), 0, before + 3);
    store_close(s);
}

Test(store_replay, garbage_header_and_missing_segment_fail)
{
    mkdir(sub("g"), 0755);
    spit(seg_path(sub("g"), 1), (const uint8_t *)"NOTALOG!\1\0\0\0\0\0\0\0", 16);
    struct store *s = open_dir(sub("g"));
    char err[256] = "";
    cr_assert_eq(store_replay(s, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "header"), "err: %s", err);
    store_close(s);

    s = open_opts(sub("m"), (struct store_opts){ .segment_bytes = 256 });
    replay_all(s);
    append_n(s, 0, 30, NULL);
    store_close(s);
    cr_assert_eq(unlink(seg_path(sub("m"), 2)), 0);
    struct store_opts o = { .dir = sub("m") };
    cr_assert_null(store_open(&o, err, sizeof err));
    cr_assert(strstr(err, "missing"), "err: %s", err);
}

Test(store_replay, segment_roll_and_replay_across)
{
    struct store *s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 1000 });
    replay_all(s);
    struct store_pos pos[300];
    append_n(s, 0, 300, pos);
    struct store_stats st;
    store_get_stats(s, &st);
    cr_assert_gt(st.segments, 10);
    for (int i = 1; i < 300; i++) {
        cr_assert(pos[i].seg >= pos[i - 1].seg);
        if (pos[i].seg != pos[i - 1].seg) {
            cr_assert_eq(pos[i].seg, pos[i - 1].seg + 1);
            cr_assert_eq(pos[i].off, STORE_SEG_HDR);
        }
    }
    /* a segment only passes segment_bytes by its last record */
    for (uint64_t q = 1; q < st.segments; q++)
        cr_assert_lt(file_size(seg_path(sub("d"), q)), 1000 + STORE_REC_HDR + 200);
    store_close(s);
    s = open_opts(sub("d"), (struct store_opts){ .segment_bytes = 1000 });
    struct recs *rs = replay_all(s);
    check_recs(rs, 0, 300);
    for (int i = 0; i < 300; i++)
        cr_assert(rs->r[i].pos.seg == pos[i].seg && rs->r[i].pos.off == pos[i].off);
    store_close(s);
}
