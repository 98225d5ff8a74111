/* Shared helpers of the store's unit tests (tests/unit/broker/store/):
 * a fresh directory per test, opening and replaying, recognisable
 * payloads and their checks, and an event loop that runs commits.
 * Header only, every function static inline, so each test file gets its
 * own copy; a failure fails the calling test. */
#ifndef STORE_TEST_H
#define STORE_TEST_H

#include <criterion/criterion.h>

#include "broker/store/store_int.h"
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

/* ---- a directory per test, records and their checks ---- */

static char tdir[64] __attribute__((unused));

static inline int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static inline void setup(void)
{
    log_level = LOG_ERROR; /* torn tails are expected here: no warnings */
    strcpy(tdir, "/tmp/fgstore.XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
}

static inline void teardown(void)
{
    nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *sub(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tdir, name);
    return path;
}

static inline struct store *open_opts(const char *dir, struct store_opts o)
{
    char err[256] = "";
    o.dir = dir;
    struct store *s = store_open(&o, err, sizeof err);
    cr_assert_not_null(s, "store_open: %s", err);
    return s;
}

static inline struct store *open_dir(const char *dir)
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

static inline int collect(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos)
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

static inline struct recs *replay_all(struct store *s)
{
    static struct recs rs;
    memset(&rs, 0, sizeof rs);
    char err[256] = "";
    int rc = store_replay(s, collect, &rs, err, sizeof err);
    cr_assert_eq(rc, 0, "store_replay: %s", err);
    return &rs;
}

/* Payload i: a recognisable pattern of a length that varies with i. */
static inline uint32_t mkpayload(int i, uint8_t *buf)
{
    uint32_t len = (uint32_t)(i * 37 % 200) + 1;
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 31 + k);
    return len;
}

static inline void append_n(struct store *s, int from, int n, struct store_pos *pos)
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

static inline void check_prefix(const struct recs *rs, int from, int n)
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

static inline void check_recs(const struct recs *rs, int from, int n)
{
    cr_assert_eq(rs->n, n, "replayed %d records, want %d", rs->n, n);
    check_prefix(rs, from, n);
}

static inline uint64_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (uint64_t)st.st_size;
}

static inline char *seg_path(const char *dir, uint64_t seq)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%016llx.seg", dir, (unsigned long long)seq);
    return path;
}

/* Writes n records through a closed store and returns the segment's bytes
 * and the offsets where each record starts (ends[i] = start of i + 1). */
static inline uint8_t *build_log(const char *dir, int n, uint64_t *starts, size_t *size)
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

static inline void commit_cb(void *ud, int err)
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

static inline void before_poll(struct ev_loop *loop, void *ud)
{
    store_flush(ud);
}

static inline void guard_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct cbstate *st = t->ud;
    st->timed_out = true;
    ev_break(loop);
}

/* Runs loop until st->want callbacks ran, at most ms milliseconds. */
static inline void run_for(struct ev_loop *loop, struct cbstate *st, uint64_t ms)
{
    struct ev_timer t;
    ev_timer_init(&t, guard_timer, st);
    ev_timer_start(loop, &t, ms);
    ev_run(loop);
    ev_timer_stop(loop, &t);
}

static inline struct store *start_store(const char *dir, struct store_opts o, struct ev_loop **loopp)
{
    struct store *s = open_opts(dir, o);
    replay_all(s);
    struct ev_loop *loop = ev_loop_new();
    cr_assert_eq(store_start(s, loop), 0);
    ev_set_before_poll(loop, before_poll, s);
    *loopp = loop;
    return s;
}

/* Runs loop in short slices until the store's write error is what want
 * says (set or clear), at most about ms milliseconds. */
static inline bool wait_error(struct ev_loop *loop, struct store *s, bool want, int ms)
{
    struct cbstate idle = { .want = -1, .loop = loop };
    for (int waited = 0; waited < ms; waited += 20) {
        if ((store_error(s) != 0) == want)
            return true;
        run_for(loop, &idle, 20);
    }
    return (store_error(s) != 0) == want;
}

#endif
