/* Unit tests for the broker's segment log (src/broker/store*.c): round
 * trips, replay order, torn tails cut at every byte of the last record and
 * at random points, flipped bits in the last and in a sealed segment,
 * zero-filled tails, segment roll, group commit through a real event loop,
 * the INTERVAL policy, reads of pending and written records, live-byte
 * accounting and compaction, the directory lock, the record size limit, a
 * write error that fails commits and clears once a retry succeeds, and the
 * free-space watermark. */
#include <criterion/criterion.h>

#include "broker/store/store_int.h"
#include "core/crc32c.h"
#include "core/ev.h"
#include "core/log.h"
#include "broker/test_files.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static char tdir[64];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void setup(void)
{
    log_level = LOG_ERROR; /* torn tails are expected here: no warnings */
    strcpy(tdir, "/tmp/fgstore.XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
}

static void teardown(void)
{
    nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

static char *sub(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tdir, name);
    return path;
}

static struct store *open_opts(const char *dir, struct store_opts o)
{
    char err[256] = "";
    o.dir = dir;
    struct store *s = store_open(&o, err, sizeof err);
    cr_assert_not_null(s, "store_open: %s", err);
    return s;
}

static struct store *open_dir(const char *dir)
{
    return open_opts(dir, (struct store_opts){ 0 });
}

#define MAXREC 8192

struct rec {
    uint8_t type;
    uint32_t len;
    uint8_t data[512];
    struct store_pos pos;
};

struct recs {
    struct rec r[MAXREC];
    int n;
    int stop_at; /* 0: never */
};

static int collect(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos)
{
    struct recs *rs = ud;
    cr_assert_lt(rs->n, MAXREC);
    struct rec *r = &rs->r[rs->n++];
    r->type = type;
    r->len = len;
    memcpy(r->data, payload, FG_MIN(len, sizeof r->data));
    r->pos = pos;
    return rs->stop_at && rs->n == rs->stop_at ? 42 : 0;
}

static struct recs *replay_all(struct store *s)
{
    static struct recs rs;
    memset(&rs, 0, sizeof rs);
    char err[256] = "";
    int rc = store_replay(s, collect, &rs, err, sizeof err);
    cr_assert_eq(rc, 0, "store_replay: %s", err);
    return &rs;
}

/* Payload i: a recognisable pattern of a length that varies with i. */
static uint32_t mkpayload(int i, uint8_t *buf)
{
    uint32_t len = (uint32_t)(i * 37 % 200) + 1;
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 31 + k);
    return len;
}

static void append_n(struct store *s, int from, int n, struct store_pos *pos)
{
    uint8_t buf[512];
    for (int i = from; i < from + n; i++) {
        uint32_t len = mkpayload(i, buf);
        struct store_pos p = store_append(s, (uint8_t)(i % 255 + 1), buf, len);
        cr_assert_neq(p.seg, 0, "append %d refused", i);
        if (pos)
            pos[i] = p;
    }
}

static void check_prefix(const struct recs *rs, int from, int n)
{
    cr_assert_geq(rs->n, n, "replayed %d records, want at least %d", rs->n, n);
    uint8_t buf[512];
    for (int i = 0; i < n; i++) {
        uint32_t len = mkpayload(from + i, buf);
        cr_assert_eq(rs->r[i].type, (from + i) % 255 + 1, "record %d type", i);
        cr_assert_eq(rs->r[i].len, len, "record %d len", i);
        cr_assert_eq(memcmp(rs->r[i].data, buf, len), 0, "record %d payload", i);
    }
}

static void check_recs(const struct recs *rs, int from, int n)
{
    cr_assert_eq(rs->n, n, "replayed %d records, want %d", rs->n, n);
    check_prefix(rs, from, n);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (uint64_t)st.st_size;
}

static char *seg_path(const char *dir, uint64_t seq)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%016llx.seg", dir, (unsigned long long)seq);
    return path;
}

/* Writes n records through a closed store and returns the segment's bytes
 * and the offsets where each record starts (ends[i] = start of i + 1). */
static uint8_t *build_log(const char *dir, int n, uint64_t *starts, size_t *size)
{
    struct store *s = open_dir(dir);
    replay_all(s);
    struct store_pos pos[64];
    append_n(s, 0, n, pos);
    store_close(s);
    for (int i = 0; i < n; i++)
        starts[i] = pos[i].off;
    return slurp(seg_path(dir, 1), size);
}

/* ---- the tests ---- */

Test(store, round_trip_and_order)
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

Test(store, empty_payload_and_replay_stop)
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

Test(store, torn_tail_every_byte_of_last_record)
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

Test(store, torn_tail_random_points)
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

Test(store, flipped_bit_in_active_segment_refuses)
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

Test(store, flipped_bit_in_sealed_segment_fails)
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

Test(store, zero_filled_tail)
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

Test(store, sealed_segment_with_zero_tail_is_accepted)
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

Test(store, torn_segment_header_of_last_segment)
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

Test(store, garbage_header_and_missing_segment_fail)
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

Test(store, segment_roll_and_replay_across)
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

/* ---- event-loop driven tests ---- */

struct cbstate {
    int next;     /* next expected callback index */
    int want;     /* break the loop after this many */
    int errs;
    int last_err;
    struct ev_loop *loop;
    bool timed_out;
};

struct cbarg {
    struct cbstate *st;
    int idx;
};

static void commit_cb(void *ud, int err)
{
    struct cbarg *a = ud;
    cr_assert_eq(a->idx, a->st->next, "callback %d ran before %d", a->idx, a->st->next);
    a->st->next++;
    if (err) {
        a->st->errs++;
        a->st->last_err = err;
    }
    if (a->st->next == a->st->want)
        ev_break(a->st->loop);
}

static void before_poll(struct ev_loop *loop, void *ud)
{
    store_flush(ud);
}

static void guard_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct cbstate *st = t->ud;
    st->timed_out = true;
    ev_break(loop);
}

/* Runs loop until st->want callbacks ran, at most ms milliseconds. */
static void run_for(struct ev_loop *loop, struct cbstate *st, uint64_t ms)
{
    struct ev_timer t;
    ev_timer_init(&t, guard_timer, st);
    ev_timer_start(loop, &t, ms);
    ev_run(loop);
    ev_timer_stop(loop, &t);
}

static struct store *start_store(const char *dir, struct store_opts o, struct ev_loop **loopp)
{
    struct store *s = open_opts(dir, o);
    replay_all(s);
    struct ev_loop *loop = ev_loop_new();
    cr_assert_eq(store_start(s, loop), 0);
    ev_set_before_poll(loop, before_poll, s);
    *loopp = loop;
    return s;
}

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

Test(store, group_commit_always)
{
    group_commit(STORE_FSYNC_ALWAYS);
}

Test(store, group_commit_batch)
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

Test(store, commits_across_iterations_in_order)
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

Test(store, commit_with_nothing_pending_runs_on_next_flush)
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

Test(store, callbacks_that_append_from_flush_are_flushed)
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

Test(store, zeros_written_ahead_while_running)
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

Test(store, interval_policy)
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

/* Runs loop in short slices until the store's write error is what want
 * says (set or clear), at most about ms milliseconds. */
static bool wait_error(struct ev_loop *loop, struct store *s, bool want, int ms)
{
    struct cbstate idle = { .want = -1, .loop = loop };
    for (int waited = 0; waited < ms; waited += 20) {
        if ((store_error(s) != 0) == want)
            return true;
        run_for(loop, &idle, 20);
    }
    return (store_error(s) != 0) == want;
}

Test(store, write_error_fails_commits_then_recovers)
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

Test(store, write_error_across_a_roll_recovers)
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

Test(store, disk_low_defers_rolls_and_clears)
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

Test(store, close_without_start_writes_everything)
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

Test(store, crc32c_vectors)
{
    cr_assert_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c(0, "", 0), 0);
}
