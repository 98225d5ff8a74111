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
#include "broker/store_int.h"

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

/* 1 when name is <16 hex digits>.seg, with its seq in *seq. */
static int parse_seg_name(const char *name, uint64_t *seq)
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

/* Lists the segment files, oldest first, and opens them. */
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
        if (!parse_seg_name(e->d_name, &seq))
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
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char name[32];
        store__seg_name(name, sizeof name, seqs[i]);
        if (i && seqs[i] != seqs[i - 1] + 1) {
            seterr(err, errlen, "%s: segment %016llx is missing before %s", s->dir,
                   (unsigned long long)(seqs[i - 1] + 1), name);
            rc = -1;
            break;
        }
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

/* A buffered window [boff, boff + blen) over one segment file. */
struct reader {
    int fd;
    uint64_t fsize;
    uint8_t *buf;
    size_t cap, blen;
    uint64_t boff;
};

/* Makes bytes [off, off + n) of the file readable in r->buf; NULL on a read
 * error. The caller has checked that they lie inside the file. */
static const uint8_t *reader_get(struct reader *r, uint64_t off, size_t n)
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

/* 1 when bytes [off, end) of the file are all zero, 0 when not, -1 on a
 * read error. */
static int zero_tail(int fd, uint64_t off, uint64_t end)
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

/* Replays one segment. Returns 0, fn's non-zero result (with *stopped
 * set), or -1 with a message. */
static int replay_seg(struct store *s, size_t idx, struct reader *r, store_replay_fn fn, void *ud,
                      bool *stopped, char *err, size_t errlen)
{
    struct store_seg *g = &s->segs[idx];
    bool last = idx + 1 == s->nsegs;
    char name[32];
    store__seg_name(name, sizeof name, g->seq);
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

    uint8_t want[STORE_SEG_HDR];
    store__seg_header(want, g->seq);
    size_t hn = (size_t)FG_MIN(g->size, (uint64_t)STORE_SEG_HDR);
    const uint8_t *h = hn ? reader_get(r, 0, hn) : want;
    if (!h) {
        seterr(err, errlen, "%s/%s: read failed: %s", s->dir, name, strerror(errno ? errno : EIO));
        return -1;
    }
    if (hn < STORE_SEG_HDR || memcmp(h, want, STORE_SEG_HDR) != 0) {
        if (last && header_torn(h, hn, want))
            return reset_segment(s, g, want, name, err, errlen);
        seterr(err, errlen, "%s/%s: bad segment header", s->dir, name);
        return -1;
    }

    uint64_t off = STORE_SEG_HDR;
    const char *why = NULL;
    while (off < g->size) {
        uint64_t left = g->size - off;
        if (left < STORE_REC_HDR) {
            why = "short record header";
            break;
        }
        const uint8_t *p = reader_get(r, off, STORE_REC_HDR);
        if (!p) {
            seterr(err, errlen, "%s/%s: read failed at offset %llu", s->dir, name,
                   (unsigned long long)off);
            return -1;
        }
        uint32_t len = store__get32(p);
        if (len == 0 || len > STORE_REPLAY_MAX || len > left - 8) {
            why = len == 0 ? "zero length" : "length past the end";
            break;
        }
        p = reader_get(r, off, 8 + (size_t)len);
        if (!p) {
            seterr(err, errlen, "%s/%s: read failed at offset %llu", s->dir, name,
                   (unsigned long long)off);
            return -1;
        }
        if (crc32c(0, p + 8, len) != store__get32(p + 4)) {
            why = "checksum mismatch";
            break;
        }
        if (p[8] == 0) {
            why = "record type 0";
            break;
        }
        int rc = fn ? fn(ud, p[8], p + STORE_REC_HDR, len - 1, (struct store_pos){ g->seq, off })
                    : 0;
        if (rc) {
            *stopped = true;
            return rc;
        }
        off += 8 + (uint64_t)len;
    }
    if (!why)
        return 0;
    int z = zero_tail(g->fd, off, g->size);
    if (z < 0) {
        seterr(err, errlen, "%s/%s: read failed at offset %llu", s->dir, name,
               (unsigned long long)off);
        return -1;
    }
    if (z) {
        /* Zeros written ahead of the log (store.c, zero_ahead): the end of
         * the records, not damage. The last segment keeps them to
         * overwrite. */
        g->size = off;
        return 0;
    }
    if (!last) {
        seterr(err, errlen, "%s/%s: corrupt record at offset %llu (%s) in a sealed segment",
               s->dir, name, (unsigned long long)off, why);
        return -1;
    }
    return truncate_tail(s, g, off, name, why, err, errlen);
}

int store_replay(struct store *s, store_replay_fn fn, void *ud, char *err, size_t errlen)
{
    if (s->replayed || s->broken) {
        seterr(err, errlen, "store %s: replayed already", s->dir);
        return -1;
    }
    struct reader r = { .cap = READER_INIT_CAP, .fd = -1 };
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
    pthread_cond_destroy(&s->cv);
    if (s->dirfd >= 0)
        close(s->dirfd); /* releases the lock */
    free(s->dir);
    free(s);
}
