/* Opening and recovering the broker's store (see store.h): the directory
 * lock, the segment scan, and store_replay, which checks every record and
 * cuts a torn tail off the last segment. Also store__free, the teardown
 * store_close ends with.
 *
 * A torn write can only be at the end of the last segment: a record is
 * acknowledged only after everything before it was written (and, by
 * default, fdatasync'ed), and a new segment is created only after the
 * previous one was complete. So the first invalid record of the last
 * segment marks where the crash interrupted the log, and nothing after it
 * was ever acknowledged. The same damage in a sealed segment cannot come
 * from a crash; it is reported and replay fails rather than guess. */
#include "broker/store/store_int.h"

#include "core/crc32c.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READER_INIT_CAP (1u << 20)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* mkdir -p: every missing component of path, mode 0755. */
static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = -errno;
        *c = '/';
        if (rc)
            break;
    }
    if (!rc && mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = -errno;
    free(p);
    return rc;
}

int store__parse_seg_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    if (strcmp(name + 16, ".seg") != 0 || v == 0)
        return 0;
    *seq = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* "segment X" or "segments X to Y", for messages. */
static void seg_range(char *out, size_t cap, uint64_t a, uint64_t b)
{
    if (a == b)
        snprintf(out, cap, "segment %016llx.seg is", (unsigned long long)a);
    else
        snprintf(out, cap, "segments %016llx.seg to %016llx.seg are", (unsigned long long)a,
                 (unsigned long long)b);
}

/* Checks the segment files against MANIFEST. Files below its first are
 * leftovers of a drop a crash interrupted (removed); every segment of its
 * range must exist; files after its last are segments whose creation the
 * manifest had not recorded yet. A directory without a manifest (a log
 * written before it existed) is accepted. Then records the range found.
 * On return *i0 is the index of the first live file. */
static int check_manifest(struct store *s, const uint64_t *seqs, size_t n, size_t *i0, char *err,
                          size_t errlen)
{
    uint64_t mf = 0, ml = 0;
    char what[96];
    int m = store__manifest_read(s->dirfd, &mf, &ml);
    if (m < 0) {
        seterr(err, errlen, "%s/%s: %s", s->dir, STORE_MANIFEST,
               m == -EINVAL ? "damaged (not a valid manifest)" : strerror(-m));
        return -1;
    }
    *i0 = 0;
    if (m > 0) {
        for (; *i0 < n && seqs[*i0] < mf; (*i0)++) {
            char name[32];
            store__seg_name(name, sizeof name, seqs[*i0]);
            log_warn("store %s: removing %s, left by an interrupted compaction (the log starts at "
                     "%016llx)", s->dir, name, (unsigned long long)mf);
            if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT) {
                seterr(err, errlen, "%s/%s: cannot remove: %s", s->dir, name, strerror(errno));
                return -1;
            }
        }
        if (*i0 && fsync(s->dirfd) != 0) {
            seterr(err, errlen, "%s: fsync: %s", s->dir, strerror(errno));
            return -1;
        }
        uint64_t lo = *i0 < n ? seqs[*i0] : 0, hi = *i0 < n ? seqs[n - 1] : 0;
        if (*i0 == n || lo > mf || hi < ml) {
            uint64_t a = *i0 == n ? mf : lo > mf ? mf : hi + 1;
            uint64_t b = *i0 == n ? ml : lo > mf ? lo - 1 : ml;
            seg_range(what, sizeof what, a, b);
            seterr(err, errlen, "%s: %s missing (%s lists %016llx to %016llx): the records in it "
                   "are lost", s->dir, what, STORE_MANIFEST, (unsigned long long)mf,
                   (unsigned long long)ml);
            return -1;
        }
    }
    for (size_t i = *i0 + 1; i < n; i++) {
        if (seqs[i] != seqs[i - 1] + 1) {
            seg_range(what, sizeof what, seqs[i - 1] + 1, seqs[i] - 1);
            seterr(err, errlen, "%s: %s missing (between %016llx.seg and %016llx.seg): the records "
                   "in it are lost", s->dir, what, (unsigned long long)seqs[i - 1],
                   (unsigned long long)seqs[i]);
            return -1;
        }
    }
    if (*i0 == n)
        return 0; /* an empty log: the first segment's creation writes it */
    uint64_t lo = seqs[*i0], hi = seqs[n - 1];
    if (m == 0)
        log_info("store %s: no %s (a log written before it existed): recording segments %016llx "
                 "to %016llx", s->dir, STORE_MANIFEST, (unsigned long long)lo,
                 (unsigned long long)hi);
    else if (hi > ml + 1)
        log_warn("store %s: %s lists up to %016llx, segments up to %016llx exist", s->dir,
                 STORE_MANIFEST, (unsigned long long)ml, (unsigned long long)hi);
    if (m == 0 || lo != mf || hi != ml) {
        int rc = store__manifest_write(s->dirfd, lo, hi);
        if (rc) {
            seterr(err, errlen, "%s/%s: cannot write: %s", s->dir, STORE_MANIFEST, strerror(-rc));
            return -1;
        }
    }
    s->man_first = lo;
    s->man_last = hi;
    return 0;
}

/* Lists the segment files, oldest first, checks them against the manifest
 * and opens them. */
static int scan_segments(struct store *s, char *err, size_t errlen)
{
    int dfd = dup(s->dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        seterr(err, errlen, "%s: %s", s->dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t seq;
        if (!store__parse_seg_name(e->d_name, &seq))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            seqs = xrealloc(seqs, cap * sizeof *seqs);
        }
        seqs[n++] = seq;
    }
    closedir(d);
    if (n)
        qsort(seqs, n, sizeof *seqs, cmp_u64);
    size_t i0 = 0;
    int rc = check_manifest(s, seqs, n, &i0, err, errlen);
    for (size_t i = i0; i < n && !rc; i++) {
        char name[32];
        store__seg_name(name, sizeof name, seqs[i]);
        int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            seterr(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
            rc = -1;
            break;
        }
        store__seg_push(s, seqs[i], fd, 0);
    }
    free(seqs);
    return rc;
}

struct store *store_open(const struct store_opts *opts, char *err, size_t errlen)
{
    struct store *s = xcalloc(1, sizeof *s);
    s->o = *opts;
    if (!s->o.dir || !*s->o.dir)
        s->o.dir = "./floodgate-broker-data";
    if (!s->o.batch_us && s->o.fsync == STORE_FSYNC_BATCH)
        s->o.batch_us = 200;
    if (!s->o.interval_ms)
        s->o.interval_ms = 1000;
    if (!s->o.segment_bytes)
        s->o.segment_bytes = 64ull << 20;
    if (!s->o.max_record_bytes)
        s->o.max_record_bytes = 2u << 20;
    if (s->o.max_record_bytes > STORE_REPLAY_MAX - 1)
        s->o.max_record_bytes = STORE_REPLAY_MAX - 1;
    s->dir = xstrdup(s->o.dir);
    s->o.dir = s->dir;
    s->dirfd = s->efd = s->cur_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->man_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    int rc = mkdir_p(s->dir);
    if (rc) {
        seterr(err, errlen, "cannot create %s: %s", s->dir, strerror(-rc));
        goto fail;
    }
    s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        seterr(err, errlen, "cannot open %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (flock(s->dirfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            seterr(err, errlen, "%s is in use by another broker (locked)", s->dir);
        else
            seterr(err, errlen, "cannot lock %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (scan_segments(s, err, errlen) != 0)
        goto fail;
    return s;
fail:
    store__free(s);
    return NULL;
}

const uint8_t *store__reader_get(struct store_reader *r, uint64_t off, size_t n)
{
    if (off >= r->boff && off + n <= r->boff + r->blen)
        return r->buf + (off - r->boff);
    size_t keep = 0;
    if (off >= r->boff && off < r->boff + r->blen) {
        keep = (size_t)(r->boff + r->blen - off);
        memmove(r->buf, r->buf + (off - r->boff), keep);
    }
    if (n > r->cap) {
        size_t cap = r->cap;
        while (cap < n)
            cap *= 2;
        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
    r->boff = off;
    r->blen = keep;
    while (r->blen < n) {
        size_t want = (size_t)FG_MIN((uint64_t)(r->cap - r->blen), r->fsize - (off + r->blen));
        ssize_t got = pread(r->fd, r->buf + r->blen, want, (off_t)(off + r->blen));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return NULL;
        r->blen += (size_t)got;
    }
    return r->buf;
}

/* The last segment's header is torn when it is short or each byte is either
 * the expected one or zero (never written): the segment was being created. */
static bool header_torn(const uint8_t *got, size_t n, const uint8_t *want)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && got[i] != 0)
            return false;
    return true;
}

static int truncate_tail(struct store *s, struct store_seg *g, uint64_t off, const char *name,
                         const char *why, char *err, size_t errlen)
{
    log_warn("store %s/%s: torn tail at offset %llu (%s): %llu bytes dropped", s->dir, name,
             (unsigned long long)off, why, (unsigned long long)(g->size - off));
    if (ftruncate(g->fd, (off_t)off) != 0 || fdatasync(g->fd) != 0) {
        seterr(err, errlen, "%s/%s: cannot truncate: %s", s->dir, name, strerror(errno));
        return -1;
    }
    g->size = off;
    return 0;
}

/* Rewrites the header of a last segment whose creation was interrupted. */
static int reset_segment(struct store *s, struct store_seg *g, const uint8_t *hdr,
                         const char *name, char *err, size_t errlen)
{
    log_warn("store %s/%s: segment header torn, segment restarted empty", s->dir, name);
    if (ftruncate(g->fd, 0) != 0 || pwrite(g->fd, hdr, STORE_SEG_HDR, 0) != STORE_SEG_HDR ||
        fdatasync(g->fd) != 0) {
        seterr(err, errlen, "%s/%s: cannot rewrite the header: %s", s->dir, name,
               strerror(errno ? errno : EIO));
        return -1;
    }
    g->size = STORE_SEG_HDR;
    return 0;
}

int store__zero_tail(int fd, uint64_t off, uint64_t end)
{
    uint8_t buf[16 << 10];
    while (off < end) {
        size_t n = (size_t)FG_MIN((uint64_t)sizeof buf, end - off);
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i])
                return 0;
        off += (uint64_t)r;
    }
    return 1;
}

int store__rec_at(struct store_reader *r, uint64_t off, uint64_t size, uint32_t maxlen,
                  uint32_t *lenp, const char **why)
{
    if (size - off < STORE_REC_HDR) {
        *why = "short record header";
        return 0;
    }
    const uint8_t *p = store__reader_get(r, off, STORE_REC_HDR);
    if (!p)
        return -1;
    uint32_t len = store__get32(p);
    if (len == 0 || len > maxlen || len > size - off - 8) {
        *why = len == 0 ? "zero length" : "length past the end";
        return 0;
    }
    p = store__reader_get(r, off, 8 + (size_t)len);
    if (!p)
        return -1;
    if (crc32c(0, p + 8, len) != store__get32(p + 4)) {
        *why = "checksum mismatch";
        return 0;
    }
    if (p[8] == 0) {
        *why = "record type 0";
        return 0;
    }
    *lenp = len;
    return 1;
}

int store__resync(struct store_reader *r, uint64_t from, uint64_t size, uint32_t maxlen,
                  uint64_t *at)
{
    for (uint64_t p = from; p < size && size - p >= STORE_REC_HDR; p++) {
        const uint8_t *h = store__reader_get(r, p, 4);
        if (!h)
            return -1;
        uint32_t len = store__get32(h);
        if (len == 0 || len > maxlen || len > size - p - 8)
            continue; /* most positions end here, without a checksum */
        uint32_t l;
        const char *why;
        int v = store__rec_at(r, p, size, maxlen, &l, &why);
        if (v)
            *at = p;
        if (v)
            return v;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A torn write leaves what never reached the disk as it was before: zeros
 * (the store writes zeros ahead of the log) or the end of the file, a
 * sector (STORE_SECTOR bytes, aligned) at a time. So the invalid record at
 * off is torn when the file ends inside it, when its length is zero, or
 * when one of the sectors it covers is all zero; a complete record with a
 * bad checksum is damage. Torn-looking records are damage after all when
 * changing one byte of the length field makes them verify: a flipped
 * length byte that points past the end, not a torn write. Only called
 * when no valid record follows off. */
int store__looks_torn(struct store_reader *r, uint64_t off, uint64_t size, uint32_t maxlen)
{
    if (size - off < STORE_REC_HDR)
        return 1;
    const uint8_t *p = store__reader_get(r, off, STORE_REC_HDR);
    if (!p)
        return -1;
    uint32_t len = store__get32(p);
    uint64_t room = size - off - 8;
    if (len == 0)
        return 1;
    if (len <= room) {
        bool hole = false;
        uint64_t end = off + 8 + len;
        for (uint64_t sec = (off / STORE_SECTOR + 1) * STORE_SECTOR; sec < end && !hole;
             sec += STORE_SECTOR) {
            int z = store__zero_tail(r->fd, sec, FG_MIN(sec + STORE_SECTOR, size));
            if (z < 0)
                return -1;
            hole = z;
        }
        if (!hole)
            return 0;
    }
    uint32_t cand[4 * 256];
    size_t nc = 0;
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t l = (len & ~(0xffu << (8 * k))) | v << (8 * k);
            if (l != len && l >= 1 && l <= room && l <= maxlen)
                cand[nc++] = l;
        }
    if (!nc)
        return 1;
    qsort(cand, nc, sizeof *cand, cmp_u32);
    p = store__reader_get(r, off, 8 + (size_t)cand[nc - 1]);
    if (!p)
        return -1;
    uint32_t want = store__get32(p + 4), crc = 0, done = 0;
    for (size_t i = 0; i < nc; i++) {
        if (cand[i] == done)
            continue;
        crc = crc32c(crc, p + 8 + done, cand[i] - done);
        done = cand[i];
        if (crc == want && p[8] != 0)
            return 0;
    }
    return 1;
}

/* What cutting the segment at `at` would lose: the valid records from
 * there on (walking past further damage), their bytes, and the end of the
 * last one. 0, or -1 on a read error. */
static int count_after(struct store *s, struct store_reader *r, uint64_t at, uint64_t size,
                       uint64_t *nrec, uint64_t *bytes, uint64_t *end)
{
    uint32_t maxlen = FG_MAX(s->o.max_record_bytes + 1, s->max_len_seen);
    *nrec = *bytes = 0;
    *end = at;
    uint64_t p = at;
    while (p < size) {
        uint32_t len;
        const char *why;
        int v = store__rec_at(r, p, size, STORE_REPLAY_MAX, &len, &why);
        if (v < 0)
            return -1;
        if (v) {
            (*nrec)++;
            *bytes += 8 + (uint64_t)len;
            p += 8 + (uint64_t)len;
            *end = p;
            continue;
        }
        int z = store__zero_tail(r->fd, p, size);
        if (z)
            return z < 0 ? -1 : 0;
        v = store__resync(r, p + 1, size, maxlen, &p);
        if (v <= 0)
            return v;
    }
    return 0;
}

/* 1 when segment g holds no record: a short header or zeros after it. */
static int seg_empty(struct store_seg *g)
{
    struct stat st;
    if (fstat(g->fd, &st) != 0)
        return -1;
    if ((uint64_t)st.st_size <= STORE_SEG_HDR)
        return 1;
    return store__zero_tail(g->fd, STORE_SEG_HDR, (uint64_t)st.st_size);
}

static int read_failed(struct store *s, const char *name, uint64_t off, char *err, size_t errlen)
{
    seterr(err, errlen, "%s/%s: read failed at offset %llu: %s", s->dir, name,
           (unsigned long long)off, strerror(errno ? errno : EIO));
    return -1;
}

/* Opens segment idx for replay: its size, the reader on it, and in *tail
 * whether a torn write may have reached it (below). 0, or -1 with a
 * message. */
static int replay_open(struct store *s, size_t idx, struct store_reader *r, bool *tail,
                       const char *name, char *err, size_t errlen)
{
    struct store_seg *g = &s->segs[idx];
    *tail = idx + 1 == s->nsegs;
    if (idx + 2 == s->nsegs) {
        int e = seg_empty(&s->segs[idx + 1]);
        if (e < 0)
            return read_failed(s, name, 0, err, errlen);
        *tail = e;
    }
    struct stat st;
    if (fstat(g->fd, &st) != 0) {
        seterr(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
        return -1;
    }
    g->size = (uint64_t)st.st_size;
    r->fd = g->fd;
    r->fsize = g->size;
    r->blen = 0;
    r->boff = 0;
    return 0;
}

/* Checks g's header. 0 when it is good; 1 when the segment is done with
 * (a torn header of the last segment, with nothing after it, was reset:
 * its result in *rc); -1 with a message. */
static int replay_header(struct store *s, struct store_seg *g, struct store_reader *r, bool last,
                         const char *name, int *rc, char *err, size_t errlen)
{
    uint8_t want[STORE_SEG_HDR];
    store__seg_header(want, g->seq);
    size_t hn = (size_t)FG_MIN(g->size, (uint64_t)STORE_SEG_HDR);
    const uint8_t *h = hn ? store__reader_get(r, 0, hn) : want;
    if (!h)
        return read_failed(s, name, 0, err, errlen);
    if (hn == STORE_SEG_HDR && memcmp(h, want, STORE_SEG_HDR) == 0)
        return 0;
    if (last && header_torn(h, hn, want)) {
        /* Only when nothing follows it: a header byte flipped to zero in
         * front of records is damage. */
        int z = hn < STORE_SEG_HDR ? 1 : store__zero_tail(g->fd, STORE_SEG_HDR, g->size);
        if (z < 0)
            return read_failed(s, name, STORE_SEG_HDR, err, errlen);
        if (z) {
            *rc = reset_segment(s, g, want, name, err, errlen);
            return 1;
        }
    }
    uint64_t n, bytes, end;
    if (count_after(s, r, STORE_SEG_HDR, g->size, &n, &bytes, &end) != 0)
        return read_failed(s, name, STORE_SEG_HDR, err, errlen);
    seterr(err, errlen, "%s/%s: bad segment header at offset 0, in front of %llu intact records "
           "(%llu bytes)", s->dir, name, (unsigned long long)n, (unsigned long long)bytes);
    return -1;
}

/* Calls fn for g's valid records from the header on; *off ends at the
 * first byte that is not one (why says what is wrong there). Returns 0,
 * fn's non-zero result (with *stopped set), or -1 with a message. */
static int replay_records(struct store *s, struct store_seg *g, struct store_reader *r,
                          store_replay_fn fn, void *ud, bool *stopped, uint64_t *off,
                          const char **why, const char *name, char *err, size_t errlen)
{
    *off = STORE_SEG_HDR;
    while (*off < g->size) {
        uint32_t len;
        int v = store__rec_at(r, *off, g->size, STORE_REPLAY_MAX, &len, why);
        if (v < 0)
            return read_failed(s, name, *off, err, errlen);
        if (!v)
            break;
        const uint8_t *p = store__reader_get(r, *off, 8 + (size_t)len);
        if (!p)
            return read_failed(s, name, *off, err, errlen);
        s->max_len_seen = FG_MAX(s->max_len_seen, len);
        int rc = fn ? fn(ud, p[8], p + STORE_REC_HDR, len - 1, (struct store_pos){ g->seq, *off })
                    : 0;
        if (rc) {
            *stopped = true;
            return rc;
        }
        *off += 8 + (uint64_t)len;
    }
    return 0;
}

/* What follows g's last valid record, at off (before its end): zeros
 * written ahead (the end), a torn write at the tail (cut off), or
 * corruption (-1, with a message naming what cutting would lose). */
static int replay_end(struct store *s, struct store_seg *g, struct store_reader *r, uint64_t off,
                      const char *why, bool tail, const char *name, char *err, size_t errlen)
{
    int z = store__zero_tail(g->fd, off, g->size);
    if (z < 0)
        return read_failed(s, name, off, err, errlen);
    if (z) {
        /* Zeros written ahead of the log (store/sync.c, zero_ahead): the
         * end of the records, not damage. The last segment keeps them to
         * overwrite. */
        g->size = off;
        return 0;
    }
    uint32_t maxlen = FG_MAX(s->o.max_record_bytes + 1, s->max_len_seen);
    uint64_t at;
    int y = store__resync(r, off + 1, g->size, maxlen, &at);
    if (y < 0)
        return read_failed(s, name, off, err, errlen);
    if (!y) {
        int t = tail ? store__looks_torn(r, off, g->size, maxlen) : 0;
        if (t < 0)
            return read_failed(s, name, off, err, errlen);
        if (t)
            return truncate_tail(s, g, off, name, why, err, errlen);
        seterr(err, errlen, "%s/%s: corrupt record at offset %llu (%s) in %s segment, not a torn "
               "write: cutting the log there would lose it and the %llu bytes after it",
               s->dir, name, (unsigned long long)off, why, tail ? "the active" : "a sealed",
               (unsigned long long)(g->size - off));
        return -1;
    }
    uint64_t n, bytes, end;
    if (count_after(s, r, at, g->size, &n, &bytes, &end) != 0)
        return read_failed(s, name, at, err, errlen);
    seterr(err, errlen, "%s/%s: corrupt record at offset %llu (%s) in %s segment, followed by %llu "
           "intact records (%llu bytes, offsets %llu to %llu) that cutting the log there would lose",
           s->dir, name, (unsigned long long)off, why, tail ? "the active" : "a sealed",
           (unsigned long long)n, (unsigned long long)bytes, (unsigned long long)at,
           (unsigned long long)end);
    return -1;
}

/* Replays one segment. Returns 0, fn's non-zero result (with *stopped
 * set), or -1 with a message.
 *
 * A torn write can only damage the end of the log: the last segment, or
 * the one before it when the last holds no record yet (a crash just after
 * a roll). There, an invalid record that looks torn (store__looks_torn)
 * and is followed by no valid record is cut off. Anything else (a valid
 * record after the damage, a complete record that fails its checksum, any
 * damage in an older segment) is corruption: replay fails, naming the
 * file, the offset and what cutting there would lose, and leaves the
 * decision to the operator (`floodgate broker --check`, `--repair`). */
static int replay_seg(struct store *s, size_t idx, struct store_reader *r, store_replay_fn fn,
                      void *ud, bool *stopped, char *err, size_t errlen)
{
    struct store_seg *g = &s->segs[idx];
    char name[32];
    store__seg_name(name, sizeof name, g->seq);
    bool tail;
    if (replay_open(s, idx, r, &tail, name, err, errlen) != 0)
        return -1;
    int rc = 0;
    int h = replay_header(s, g, r, idx + 1 == s->nsegs, name, &rc, err, errlen);
    if (h)
        return h < 0 ? -1 : rc;
    uint64_t off;
    const char *why = NULL;
    rc = replay_records(s, g, r, fn, ud, stopped, &off, &why, name, err, errlen);
    if (rc || off >= g->size)
        return rc;
    return replay_end(s, g, r, off, why, tail, name, err, errlen);
}

int store_replay(struct store *s, store_replay_fn fn, void *ud, char *err, size_t errlen)
{
    if (s->replayed || s->broken) {
        seterr(err, errlen, "store %s: replayed already", s->dir);
        return -1;
    }
    struct store_reader r = { .cap = READER_INIT_CAP, .fd = -1 };
    r.buf = xmalloc(r.cap);
    int rc = 0;
    bool stopped = false;
    for (size_t i = 0; i < s->nsegs && !rc; i++)
        rc = replay_seg(s, i, &r, fn, ud, &stopped, err, errlen);
    free(r.buf);
    if (rc) {
        s->broken = true; /* the tail is unknown: appending would be unsafe */
        return rc;
    }
    s->replayed = true;
    if (!s->nsegs) {
        s->man_first = 1; /* MANIFEST is written once segment 1 is durable */
        rc = store__create_segment(s);
        if (rc) {
            seterr(err, errlen, "%s: cannot create the first segment: %s", s->dir, strerror(-rc));
            s->broken = true;
            return -1;
        }
    }
    return 0;
}

int store__implicit_replay(struct store *s)
{
    char err[256];
    if (store_replay(s, NULL, NULL, err, sizeof err) == 0)
        return 0;
    log_error("store %s: %s", s->dir, err);
    return -1;
}

static void free_batches(struct store_batch *b)
{
    while (b) {
        struct store_batch *n = b->next;
        free(b->data);
        free(b);
        b = n;
    }
}

void store__free(struct store *s)
{
    for (size_t i = 0; i < s->nsegs; i++)
        close(s->segs[i].fd);
    if (s->fill)
        free_batches(s->fill);
    free_batches(s->inflight_head);
    free_batches(s->freelist);
    free(s->segs);
    free(s->cq);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->man_mu);
    pthread_cond_destroy(&s->cv);
    if (s->dirfd >= 0)
        close(s->dirfd); /* releases the lock */
    free(s->dir);
    free(s);
}
