/* Unit tests for damage to the broker's log (src/broker/store/replay.c,
 * store/manifest.c, store/check.c): a byte flipped at every offset of the
 * active segment, the active segment cut at every byte, and the first, a
 * middle and the last segment deleted. Each case either replays with
 * every record the file still holds whole, or refuses with a message
 * naming the damage; then store_check(repair) recovers every intact
 * record and the store opens and appends again. Also: a log without a
 * MANIFEST (written before it existed), a leftover of an interrupted
 * compaction, a damaged MANIFEST, a torn write whose lost sectors read
 * as zeros, and a crash just after a roll (the segment before the new,
 * empty one is still the end of the log). */
#include <criterion/criterion.h>

#include "broker/store/store_int.h"
#include "core/log.h"
#include "broker/test_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tdir[64];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void setup(void)
{
    log_level = LOG_ERROR; /* torn tails and repairs are expected here */
    /* Thousands of small stores, each synced: on tmpfs where there is one
     * (what is tested is the logic, not the disk). */
    strcpy(tdir, "/dev/shm/fgdamage.XXXXXX");
    if (!mkdtemp(tdir)) {
        strcpy(tdir, "/tmp/fgdamage.XXXXXX");
        cr_assert_not_null(mkdtemp(tdir));
    }
}

static void teardown(void)
{
    nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(damage, .init = setup, .fini = teardown);

#define NREC 40
#define SEGB 1024

struct rec {
    uint32_t len;
    uint8_t data[256];
    struct store_pos pos;
};

struct recs {
    struct rec r[NREC * 2];
    int n;
};

static int collect(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos)
{
    struct recs *rs = ud;
    cr_assert_lt(rs->n, NREC * 2);
    struct rec *r = &rs->r[rs->n++];
    cr_assert_leq(len, sizeof r->data);
    r->len = len;
    memcpy(r->data, payload, len);
    r->pos = pos;
    return 0;
}

static uint32_t mkpayload(int i, uint8_t *buf)
{
    uint32_t len = (uint32_t)(i * 53 % 120) + 1;
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 29 + k + 1);
    return len;
}

/* The index of the record a payload belongs to, -1 when none. */
static int which(const struct rec *r)
{
    uint8_t buf[256];
    for (int i = 0; i < NREC; i++)
        if (mkpayload(i, buf) == r->len && memcmp(buf, r->data, r->len) == 0)
            return i;
    return -1;
}

static char *path(const char *dir, const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static char *seg_name(uint64_t seq)
{
    static char n[32];
    store__seg_name(n, sizeof n, seq);
    return n;
}

/* Copies the regular files of src into a fresh dst. */
static void copy_dir(const char *src, const char *dst)
{
    cr_assert_eq(mkdir(dst, 0755), 0);
    DIR *d = opendir(src);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t n;
        uint8_t *b = slurp(path(src, e->d_name), &n);
        spit(path(dst, e->d_name), b, n);
        free(b);
    }
    closedir(d);
}

static struct store *open_dir(const char *dir, char *err, size_t errlen)
{
    struct store_opts o = { .dir = dir, .segment_bytes = SEGB };
    return store_open(&o, err, errlen);
}

/* Writes NREC records through a closed store with small segments; the
 * positions in pos. Returns the number of segments. */
static uint64_t build(const char *dir, struct store_pos *pos)
{
    char err[512];
    struct store *s = open_dir(dir, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(store_replay(s, NULL, NULL, err, sizeof err), 0, "%s", err);
    uint8_t buf[256];
    for (int i = 0; i < NREC; i++) {
        pos[i] = store_append(s, (uint8_t)(i % 200 + 1), buf, mkpayload(i, buf));
        cr_assert_neq(pos[i].seg, 0);
    }
    store_close(s);
    cr_assert_gt(pos[NREC - 1].seg, 2, "several segments");
    return pos[NREC - 1].seg;
}

/* Opens and replays dir. 0 with the records in rs, or -1 with err. */
static int try_replay(const char *dir, struct recs *rs, char *err, size_t errlen)
{
    memset(rs, 0, sizeof *rs);
    struct store *s = open_dir(dir, err, errlen);
    if (!s)
        return -1;
    int rc = store_replay(s, collect, rs, err, errlen);
    store_close(s);
    return rc;
}

/* Replays dir, which must work, and checks that it holds exactly the
 * records i with want[i] set, in order; then appends one and reopens. */
static void expect(const char *dir, const bool *want, const char *ctx)
{
    struct recs rs;
    char err[512] = "";
    cr_assert_eq(try_replay(dir, &rs, err, sizeof err), 0, "%s: %s", ctx, err);
    int k = 0;
    for (int i = 0; i < NREC; i++) {
        if (!want[i])
            continue;
        cr_assert_lt(k, rs.n, "%s: record %d missing", ctx, i);
        cr_assert_eq(which(&rs.r[k]), i, "%s: record %d: got %d", ctx, i, which(&rs.r[k]));
        k++;
    }
    cr_assert_eq(k, rs.n, "%s: %d records, want %d", ctx, rs.n, k);
    struct store *s = open_dir(dir, err, sizeof err);
    cr_assert_not_null(s, "%s: %s", ctx, err);
    cr_assert_eq(store_replay(s, NULL, NULL, err, sizeof err), 0, "%s: %s", ctx, err);
    cr_assert_neq(store_append(s, 1, "z", 1).seg, 0, "%s: appends again", ctx);
    store_close(s);
    cr_assert_eq(try_replay(dir, &rs, err, sizeof err), 0, "%s: %s", ctx, err);
    cr_assert_eq(rs.n, k + 1, "%s", ctx);
}

/* Runs store_check; returns its result, the report in out (malloc'ed). */
static int check(const char *dir, bool repair, char **out)
{
    size_t n;
    FILE *f = open_memstream(out, &n);
    struct store_opts o = { .dir = dir, .segment_bytes = SEGB };
    int rc = store_check(&o, repair, f);
    fclose(f);
    return rc;
}

Test(damage, byte_flipped_at_every_offset_of_the_active_segment)
{
    struct store_pos pos[NREC];
    char base[100];
    snprintf(base, sizeof base, "%s/base", tdir);
    uint64_t last = build(base, pos);
    size_t size;
    uint8_t *img = slurp(path(base, seg_name(last)), &size);
    static const uint8_t flips[] = { 0xff, 0x01, 0x80 };
    int refused = 0, cases = 0;
    for (size_t off = 0; off < size; off++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            char dir[100], ctx[64];
            snprintf(dir, sizeof dir, "%s/f%zu-%zu", tdir, off, f);
            snprintf(ctx, sizeof ctx, "offset %zu ^0x%02x", off, flips[f]);
            copy_dir(base, dir);
            img[off] ^= flips[f];
            spit(path(dir, seg_name(last)), img, size);
            img[off] ^= flips[f];
            cases++;

            /* The record the byte belongs to (-1: the segment header). */
            int hit = -1;
            for (int i = 0; i < NREC; i++)
                if (pos[i].seg == last && pos[i].off <= off)
                    hit = i;
            bool want[NREC];
            for (int i = 0; i < NREC; i++)
                want[i] = i != hit;

            struct recs rs;
            char err[512] = "";
            if (try_replay(dir, &rs, err, sizeof err) == 0) {
                /* Started: then nothing may be lost. */
                bool all[NREC];
                memset(all, 1, sizeof all);
                expect(dir, all, ctx);
                continue;
            }
            refused++;
            char where[64];
            snprintf(where, sizeof where, "offset %llu",
                     (unsigned long long)(hit < 0 ? 0 : pos[hit].off));
            cr_assert(strstr(err, seg_name(last)) && strstr(err, where), "%s: %s", ctx, err);
            char *out = NULL;
            cr_assert_eq(check(dir, false, &out), 1, "%s: %s", ctx, out);
            free(out);
            cr_assert_eq(check(dir, true, &out), 0, "%s: %s", ctx, out);
            cr_assert(strstr(out, "dropped") || strstr(out, "header"), "%s: %s", ctx, out);
            free(out);
            expect(dir, want, ctx);
        }
    }
    cr_assert_eq(refused, cases, "every flip is caught: %d of %d", refused, cases);
    free(img);
}

Test(damage, active_segment_cut_at_every_byte)
{
    struct store_pos pos[NREC];
    char base[100];
    snprintf(base, sizeof base, "%s/base", tdir);
    uint64_t last = build(base, pos);
    size_t size;
    uint8_t *img = slurp(path(base, seg_name(last)), &size);
    for (size_t cut = 0; cut < size; cut++) {
        char dir[100], ctx[64];
        snprintf(dir, sizeof dir, "%s/c%zu", tdir, cut);
        snprintf(ctx, sizeof ctx, "cut at %zu", cut);
        copy_dir(base, dir);
        spit(path(dir, seg_name(last)), img, cut);
        /* Every record the file still holds whole comes back: a torn
         * tail is never refused. */
        bool want[NREC];
        uint8_t buf[256];
        for (int i = 0; i < NREC; i++)
            want[i] = pos[i].seg < last || pos[i].off + STORE_REC_HDR + mkpayload(i, buf) <= cut;
        expect(dir, want, ctx);
    }
    free(img);
}

Test(damage, torn_write_lost_sectors_read_as_zeros)
{
    /* One record across two sectors; the second never reached the disk
     * and reads as the zeros written ahead of the log. */
    char dir[100], err[512];
    snprintf(dir, sizeof dir, "%s/z", tdir);
    struct store_opts o = { .dir = dir };
    struct store *s = store_open(&o, err, sizeof err);
    cr_assert_not_null(s);
    cr_assert_eq(store_replay(s, NULL, NULL, err, sizeof err), 0);
    uint8_t big[900];
    memset(big, 7, sizeof big);
    cr_assert_neq(store_append(s, 1, "a", 1).seg, 0);
    struct store_pos p = store_append(s, 2, big, sizeof big);
    store_close(s);
    size_t n;
    uint8_t *img = slurp(path(dir, seg_name(1)), &n);
    uint8_t *z = calloc(1, 8192);
    memcpy(z, img, 512);
    cr_assert_lt(p.off, 512);
    spit(path(dir, seg_name(1)), z, 8192);
    struct recs rs;
    cr_assert_eq(try_replay(dir, &rs, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs.n, 1);
    free(z);
    free(img);
}

static void deleted(uint64_t victim_of_last, const char *tag)
{
    struct store_pos pos[NREC];
    char base[100], dir[100];
    snprintf(base, sizeof base, "%s/base", tdir);
    snprintf(dir, sizeof dir, "%s/%s", tdir, tag);
    uint64_t last = build(base, pos);
    uint64_t victim = victim_of_last ? victim_of_last == 1 ? 1 : last / 2 + 1 : last;
    copy_dir(base, dir);
    cr_assert_eq(unlink(path(dir, seg_name(victim))), 0);

    char err[512] = "";
    struct store_opts o = { .dir = dir, .segment_bytes = SEGB };
    cr_assert_null(store_open(&o, err, sizeof err), "%s: opened", tag);
    cr_assert(strstr(err, seg_name(victim)) && strstr(err, "missing"), "%s: %s", tag, err);
    char *out = NULL;
    cr_assert_eq(check(dir, false, &out), 1, "%s: %s", tag, out);
    cr_assert(strstr(out, seg_name(victim)) && strstr(out, "MISSING"), "%s: %s", tag, out);
    free(out);
    cr_assert_eq(check(dir, true, &out), 0, "%s: %s", tag, out);
    cr_assert(strstr(out, seg_name(victim)) && strstr(out, "lost"), "%s: %s", tag, out);
    free(out);
    bool want[NREC];
    for (int i = 0; i < NREC; i++)
        want[i] = pos[i].seg != victim;
    expect(dir, want, tag);
}

Test(damage, deleted_first_segment) { deleted(1, "first"); }
Test(damage, deleted_middle_segment) { deleted(2, "middle"); }
Test(damage, deleted_last_segment) { deleted(0, "last"); }

Test(damage, manifest_absent_leftover_and_damaged)
{
    struct store_pos pos[NREC];
    char base[100], dir[100], err[512];
    snprintf(base, sizeof base, "%s/base", tdir);
    uint64_t last = build(base, pos);
    bool all[NREC];
    memset(all, 1, sizeof all);

    /* A log written before the manifest existed: accepted, then recorded
     * (and a missing first segment is caught from then on). */
    snprintf(dir, sizeof dir, "%s/old", tdir);
    copy_dir(base, dir);
    cr_assert_eq(unlink(path(dir, STORE_MANIFEST)), 0);
    expect(dir, all, "no manifest");
    uint64_t f, l;
    cr_assert_eq(store__manifest_read(open(dir, O_RDONLY | O_DIRECTORY), &f, &l), 1);
    cr_assert(f == 1 && l == last, "%llu..%llu", (unsigned long long)f, (unsigned long long)l);

    /* A drop the crash interrupted after the manifest moved on. */
    snprintf(dir, sizeof dir, "%s/left", tdir);
    copy_dir(base, dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    cr_assert_eq(store__manifest_write(dfd, 2, last), 0);
    close(dfd);
    bool want[NREC];
    for (int i = 0; i < NREC; i++)
        want[i] = pos[i].seg != 1;
    expect(dir, want, "leftover");
    cr_assert_neq(access(path(dir, seg_name(1)), F_OK), 0, "the leftover is removed");

    /* A damaged manifest: refused, repaired from the files. */
    snprintf(dir, sizeof dir, "%s/bad", tdir);
    copy_dir(base, dir);
    spit(path(dir, STORE_MANIFEST), (const uint8_t *)"fglog-manifest 1 first=1\n", 25);
    struct store_opts o = { .dir = dir, .segment_bytes = SEGB };
    cr_assert_null(store_open(&o, err, sizeof err));
    cr_assert(strstr(err, STORE_MANIFEST), "%s", err);
    char *out = NULL;
    cr_assert_eq(check(dir, true, &out), 0, "%s", out);
    free(out);
    expect(dir, all, "bad manifest");
}

Test(damage, check_of_a_sound_log_changes_nothing)
{
    struct store_pos pos[NREC];
    char base[100];
    snprintf(base, sizeof base, "%s/base", tdir);
    build(base, pos);
    char *out = NULL;
    cr_assert_eq(check(base, false, &out), 0, "%s", out);
    cr_assert(strstr(out, "result: ok"), "%s", out);
    free(out);
    cr_assert_eq(check(base, true, &out), 0, "%s", out);
    cr_assert(strstr(out, "nothing to repair"), "%s", out);
    free(out);
    DIR *d = opendir(base);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert_null(strstr(e->d_name, "damaged"), "no damaged directory");
    closedir(d);
}

Test(damage, crash_just_after_a_roll_tears_the_previous_segment)
{
    /* The new segment exists (its header, maybe not even that) but holds
     * no record yet: the one before it is still the end of the log, and
     * a torn write there is cut, while a flipped byte is refused. */
    struct store_pos pos[NREC];
    char base[100], dir[100], err[512];
    snprintf(base, sizeof base, "%s/base", tdir);
    uint64_t last = build(base, pos);
    uint8_t hdr[STORE_SEG_HDR];
    store__seg_header(hdr, last + 1);
    spit(path(base, seg_name(last + 1)), hdr, 7); /* its header torn too */
    size_t size;
    uint8_t *img = slurp(path(base, seg_name(last)), &size);
    int lastrec = NREC - 1;
    uint8_t buf[256];
    uint64_t cut = pos[lastrec].off + STORE_REC_HDR + mkpayload(lastrec, buf) / 2;

    snprintf(dir, sizeof dir, "%s/torn", tdir);
    copy_dir(base, dir);
    spit(path(dir, seg_name(last)), img, cut);
    bool want[NREC];
    for (int i = 0; i < NREC; i++)
        want[i] = i != lastrec;
    expect(dir, want, "torn before an empty segment");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t f, l;
    cr_assert_eq(store__manifest_read(dfd, &f, &l), 1);
    close(dfd);
    cr_assert_eq(l, last + 1, "the new segment recorded");

    snprintf(dir, sizeof dir, "%s/flip", tdir);
    copy_dir(base, dir);
    img[cut] ^= 0xff;
    spit(path(dir, seg_name(last)), img, size);
    struct recs rs;
    cr_assert_eq(try_replay(dir, &rs, err, sizeof err), -1);
    cr_assert(strstr(err, seg_name(last)) && strstr(err, "not a torn write"), "%s", err);
    free(img);
}
