/* Checking and repairing the broker's store offline (`floodgate broker
 * --check` and `--repair`, see store.h).
 *
 * The check walks every segment as replay does, but does not stop at the
 * first invalid record: it resynchronises on the next offset where a
 * record verifies (store__resync) and notes each damaged range, so that it
 * can say exactly what a start would refuse and what a repair would drop.
 * It also checks the segment files against MANIFEST. It changes nothing.
 *
 * The repair keeps every record that verifies. A damaged segment is
 * rewritten (its header and its valid records, in order, into a temporary
 * file that is fsync'ed), the original is hard-linked into
 * <dir>/damaged-<UTC time>/ and the rewritten file renamed over it, so
 * that the name always holds either the original or the repaired file.
 * Records move to new offsets; nothing refers to a record by its offset
 * on disk (the engine rebuilds its index on replay). A missing segment
 * cannot be brought back: one in the middle is replaced by an empty
 * segment (the numbering stays consecutive), and at either end the range
 * shrinks; MANIFEST is rewritten to what remains. The loss is reported.
 *
 * Thread context: a process of its own, before any store is open (it
 * takes the directory lock, so it refuses to run beside a broker). */
#include "broker/store/store_int.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ck_range {
    uint64_t off, end;
    const char *why;
};

struct ck_seg {
    uint64_t seq;
    int fd;                  /* -1: missing */
    uint64_t size;           /* file size */
    uint64_t nrec, bytes;    /* records that verify */
    struct ck_range *bad;    /* damaged ranges, in order */
    size_t nbad;
    struct ck_range *keep;   /* runs of valid records, in order */
    size_t nkeep;
    bool bad_header;
    bool torn;               /* the last range is a torn tail a start cuts */
    bool reset;              /* a torn header a start rewrites */
};

struct ck {
    const struct store_opts *o;
    const char *dir;
    int dirfd;
    FILE *out;
    struct ck_seg *segs;     /* first..last of the expected range */
    size_t nsegs;
    int man;                 /* store__manifest_read's result */
    uint64_t mf, ml;
    size_t nleft;            /* files below the manifest's first */
    uint32_t maxlen;
    bool damaged;            /* a start would refuse */
};

static void add_range(struct ck_range **v, size_t *n, uint64_t off, uint64_t end, const char *why)
{
    if (*n && !why && (*v)[*n - 1].end == off && !(*v)[*n - 1].why) {
        (*v)[*n - 1].end = end; /* extend a run of valid records */
        return;
    }
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = (struct ck_range){ off, end, why };
}

/* Walks one segment; tail: a torn write may end it (see replay_seg). */
static int walk(struct ck *c, struct ck_seg *g, bool last, bool tail, struct store_reader *r)
{
    struct stat st;
    if (fstat(g->fd, &st) != 0)
        return -1;
    g->size = (uint64_t)st.st_size;
    r->fd = g->fd;
    r->fsize = g->size;
    r->blen = r->boff = 0;
    uint8_t want[STORE_SEG_HDR];
    store__seg_header(want, g->seq);
    size_t hn = (size_t)FG_MIN(g->size, (uint64_t)STORE_SEG_HDR);
    const uint8_t *h = hn ? store__reader_get(r, 0, hn) : want;
    if (!h)
        return -1;
    if (hn < STORE_SEG_HDR || memcmp(h, want, STORE_SEG_HDR) != 0) {
        bool torn = true;
        for (size_t i = 0; i < hn; i++)
            torn &= h[i] == want[i] || h[i] == 0;
        int z = hn < STORE_SEG_HDR ? 1 : store__zero_tail(g->fd, STORE_SEG_HDR, g->size);
        if (z < 0)
            return -1;
        if (last && torn && z) {
            g->reset = true;
            return 0;
        }
        g->bad_header = true;
        c->damaged = true;
    }
    uint64_t off = STORE_SEG_HDR;
    while (off < g->size) {
        uint32_t len;
        const char *why;
        int v = store__rec_at(r, off, g->size, STORE_REPLAY_MAX, &len, &why);
        if (v < 0)
            return -1;
        if (v) {
            c->maxlen = FG_MAX(c->maxlen, len);
            g->nrec++;
            g->bytes += 8 + (uint64_t)len;
            add_range(&g->keep, &g->nkeep, off, off + 8 + len, NULL);
            off += 8 + (uint64_t)len;
            continue;
        }
        int z = store__zero_tail(g->fd, off, g->size);
        if (z < 0)
            return -1;
        if (z)
            break;
        uint64_t at;
        int y = store__resync(r, off + 1, g->size, c->maxlen, &at);
        if (y < 0)
            return -1;
        if (y) {
            add_range(&g->bad, &g->nbad, off, at, why);
            c->damaged = true;
            off = at;
            continue;
        }
        add_range(&g->bad, &g->nbad, off, g->size, why);
        int t = tail && g->nbad == 1 && !g->bad_header ? store__looks_torn(r, off, g->size, c->maxlen) : 0;
        if (t < 0)
            return -1;
        g->torn = t;
        if (!t)
            c->damaged = true;
        break;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the files and lays out the expected range (missing ones fd -1). */
static int scan(struct ck *c)
{
    int dfd = dup(c->dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    rewinddir(d); /* the dup shares its offset with dirfd: a second scan starts over */
    uint64_t *seqs = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t seq;
        if (store__parse_seg_name(e->d_name, &seq)) {
            seqs = xrealloc(seqs, (n + 1) * sizeof *seqs);
            seqs[n++] = seq;
        }
    }
    closedir(d);
    if (n)
        qsort(seqs, n, sizeof *seqs, cmp_u64);
    c->man = store__manifest_read(c->dirfd, &c->mf, &c->ml);
    size_t i0 = 0;
    if (c->man > 0)
        while (i0 < n && seqs[i0] < c->mf)
            i0++;
    c->nleft = i0;
    uint64_t lo, hi;
    if (c->man > 0) {
        lo = c->mf;
        hi = FG_MAX(c->ml, n > i0 ? seqs[n - 1] : 0);
    } else {
        lo = n ? seqs[0] : 1;
        hi = n ? seqs[n - 1] : 0;
    }
    if (hi >= lo && hi - lo > (1u << 24)) { /* a range no log reaches: refuse to lay it out */
        free(seqs);
        errno = ERANGE;
        return -1;
    }
    c->nsegs = hi >= lo ? (size_t)(hi - lo + 1) : 0;
    c->segs = xcalloc(c->nsegs ? c->nsegs : 1, sizeof *c->segs);
    for (size_t i = 0; i < c->nsegs; i++) {
        c->segs[i].seq = lo + i;
        c->segs[i].fd = -1;
    }
    for (size_t i = i0; i < n; i++) {
        char name[32];
        store__seg_name(name, sizeof name, seqs[i]);
        struct ck_seg *g = &c->segs[seqs[i] - lo];
        g->fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (g->fd < 0) {
            free(seqs);
            return -1;
        }
    }
    free(seqs);
    return 0;
}

static int check(struct ck *c)
{
    if (scan(c) != 0)
        return -1;
    if (c->man < 0 && c->man != -EINVAL)
        return -1;
    if (c->man == -EINVAL)
        c->damaged = true;
    struct store_reader r = { .cap = 1u << 20, .fd = -1 };
    r.buf = xmalloc(r.cap);
    int rc = 0;
    size_t lastp = c->nsegs;
    for (size_t i = 0; i < c->nsegs; i++)
        if (c->segs[i].fd >= 0)
            lastp = i;
    for (size_t i = 0; i < c->nsegs && !rc; i++) {
        struct ck_seg *g = &c->segs[i];
        if (g->fd < 0) {
            c->damaged = true;
            continue;
        }
        bool last = i == lastp && i + 1 == c->nsegs, tail = last;
        if (i + 2 == c->nsegs && c->segs[i + 1].fd >= 0) {
            struct stat st;
            int z = fstat(c->segs[i + 1].fd, &st) != 0 ? -1
                    : (uint64_t)st.st_size <= STORE_SEG_HDR
                        ? 1
                        : store__zero_tail(c->segs[i + 1].fd, STORE_SEG_HDR, (uint64_t)st.st_size);
            if (z < 0)
                rc = -1;
            tail = z == 1;
        }
        if (!rc)
            rc = walk(c, g, last, tail, &r);
    }
    free(r.buf);
    return rc;
}

static void report(struct ck *c)
{
    FILE *o = c->out;
    if (c->man == 0)
        fprintf(o, "%s: no %s (a log written before it existed): a start records the segments found\n",
                c->dir, STORE_MANIFEST);
    else if (c->man == -EINVAL)
        fprintf(o, "%s/%s: DAMAGED: not a valid manifest\n", c->dir, STORE_MANIFEST);
    else
        fprintf(o, "%s: %s lists segments %016llx to %016llx\n", c->dir, STORE_MANIFEST,
                (unsigned long long)c->mf, (unsigned long long)c->ml);
    if (c->nleft)
        fprintf(o, "%s: %zu segment file(s) below the manifest's range, left by an interrupted "
                "compaction: a start removes them\n", c->dir, c->nleft);
    uint64_t recs = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        struct ck_seg *g = &c->segs[i];
        char name[32];
        store__seg_name(name, sizeof name, g->seq);
        recs += g->nrec;
        if (g->fd < 0) {
            fprintf(o, "%s: MISSING: the records in it are lost\n", name);
            continue;
        }
        if (g->reset) {
            fprintf(o, "%s: header torn (its creation was interrupted): a start rewrites it empty\n",
                    name);
            continue;
        }
        fprintf(o, "%s: %llu records verify (%llu bytes)%s\n", name, (unsigned long long)g->nrec,
                (unsigned long long)g->bytes, g->bad_header || (g->nbad && !g->torn) ? "" : ", ok");
        if (g->bad_header)
            fprintf(o, "%s: DAMAGED: bad segment header at offset 0\n", name);
        for (size_t k = 0; k < g->nbad; k++) {
            struct ck_range *b = &g->bad[k];
            if (g->torn && k + 1 == g->nbad)
                fprintf(o, "%s: torn tail at offset %llu (%llu bytes, %s): never acknowledged, a "
                        "start cuts it\n", name, (unsigned long long)b->off,
                        (unsigned long long)(b->end - b->off), b->why);
            else
                fprintf(o, "%s: DAMAGED: bytes %llu to %llu (%llu bytes): %s at offset %llu\n", name,
                        (unsigned long long)b->off, (unsigned long long)b->end,
                        (unsigned long long)(b->end - b->off), b->why, (unsigned long long)b->off);
        }
    }
    fprintf(o, "%llu records verify in %zu segments\n", (unsigned long long)recs, c->nsegs);
}

static void ck_free(struct ck *c)
{
    for (size_t i = 0; i < c->nsegs; i++) {
        if (c->segs[i].fd >= 0)
            close(c->segs[i].fd);
        free(c->segs[i].bad);
        free(c->segs[i].keep);
    }
    free(c->segs);
    c->segs = NULL;
    c->nsegs = 0;
}

static int copy_range(int from, int to, uint64_t off, uint64_t end, uint64_t *wpos)
{
    uint8_t buf[64 << 10];
    while (off < end) {
        size_t n = (size_t)FG_MIN((uint64_t)sizeof buf, end - off);
        ssize_t got = pread(from, buf, n, (off_t)off);
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        if (pwrite(to, buf, (size_t)got, (off_t)*wpos) != got)
            return -errno ? -errno : -EIO;
        off += (uint64_t)got;
        *wpos += (uint64_t)got;
    }
    return 0;
}

/* Writes segment seq as name: its header and the runs in keep (of src),
 * through a temporary file that replaces the name atomically. */
static int rewrite(struct ck *c, uint64_t seq, int src, const struct ck_range *keep, size_t nkeep)
{
    char name[32], tmp[48];
    store__seg_name(name, sizeof name, seq);
    snprintf(tmp, sizeof tmp, "%s.repair", name);
    int fd = openat(c->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    uint8_t hdr[STORE_SEG_HDR];
    store__seg_header(hdr, seq);
    int rc = pwrite(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr ? 0 : -EIO;
    uint64_t w = STORE_SEG_HDR;
    for (size_t i = 0; i < nkeep && !rc; i++)
        rc = copy_range(src, fd, keep[i].off, keep[i].end, &w);
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && renameat(c->dirfd, tmp, c->dirfd, name) != 0)
        rc = -errno;
    if (rc)
        unlinkat(c->dirfd, tmp, 0);
    return rc;
}

/* Hard-links dir/name into the damaged directory (the original stays). */
static int set_aside(struct ck *c, int ddfd, const char *name)
{
    if (linkat(c->dirfd, name, ddfd, name, 0) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Creates <dir>/damaged-<UTC time>[-k]/ (its name in dname) and returns
 * an fd on it, or -1 (reported). */
static int damaged_dir(struct ck *c, char *dname, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t dl = strftime(dname, cap, "damaged-%Y%m%dT%H%M%SZ", &tm);
    for (int k = 2; mkdirat(c->dirfd, dname, 0755) != 0; k++) {
        if (errno != EEXIST || k > 99) {
            fprintf(c->out, "cannot create %s/%s: %s\n", c->dir, dname, strerror(errno));
            return -1;
        }
        snprintf(dname + dl, cap - dl, "-%d", k);
    }
    int ddfd = openat(c->dirfd, dname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ddfd < 0)
        fprintf(c->out, "cannot open %s/%s: %s\n", c->dir, dname, strerror(errno));
    return ddfd;
}

/* Repairs segment i: a missing one inside the range [lo, hi] of present
 * segments is replaced by an empty one (outside it, the range shrinks);
 * a damaged one is set aside in ddfd and rewritten with what verifies.
 * Reports what it did. 0 or -errno. */
static int repair_seg(struct ck *c, size_t i, size_t lo, size_t hi, int ddfd, const char *dname)
{
    FILE *o = c->out;
    struct ck_seg *g = &c->segs[i];
    char name[32];
    store__seg_name(name, sizeof name, g->seq);
    if (g->fd < 0) {
        if (i < lo || i > hi) {
            fprintf(o, "%s: missing, its records are lost; the log now %s without it\n", name,
                    i < lo ? "starts" : "ends");
            return 0;
        }
        int rc = rewrite(c, g->seq, -1, NULL, 0);
        if (!rc)
            fprintf(o, "%s: missing, its records are lost; replaced by an empty segment\n", name);
        return rc;
    }
    if (!g->bad_header && (!g->nbad || g->torn))
        return 0;
    int rc = set_aside(c, ddfd, name);
    if (!rc)
        rc = rewrite(c, g->seq, g->fd, g->keep, g->nkeep);
    if (rc)
        return rc;
    if (g->bad_header)
        fprintf(o, "%s: dropped the damaged segment header (rewritten)\n", name);
    uint64_t dropped = 0;
    for (size_t k = 0; k < g->nbad; k++) {
        struct ck_range *b = &g->bad[k];
        dropped += b->end - b->off;
        fprintf(o, "%s: dropped bytes %llu to %llu (%llu bytes: %s)\n", name,
                (unsigned long long)b->off, (unsigned long long)b->end,
                (unsigned long long)(b->end - b->off), b->why);
    }
    fprintf(o, "%s: kept %llu records (%llu bytes), dropped %llu bytes; the original is in "
            "%s/%s/\n", name, (unsigned long long)g->nrec, (unsigned long long)g->bytes,
            (unsigned long long)dropped, c->dir, dname);
    return 0;
}

/* Rewrites MANIFEST for the present range [lo, hi] (a damaged one is set
 * aside first), or removes it when no segment is left. 0 or -errno. */
static int repair_manifest(struct ck *c, size_t lo, size_t hi, int ddfd, const char *dname)
{
    FILE *o = c->out;
    int rc = 0;
    if (c->man == -EINVAL) {
        rc = set_aside(c, ddfd, STORE_MANIFEST);
        if (rc)
            return rc;
        fprintf(o, "%s: damaged, set aside in %s/%s/ and rewritten\n", STORE_MANIFEST, c->dir, dname);
    }
    if (lo < c->nsegs) {
        rc = store__manifest_write(c->dirfd, c->segs[lo].seq, c->segs[hi].seq);
        if (!rc)
            fprintf(o, "%s: segments %016llx to %016llx\n", STORE_MANIFEST,
                    (unsigned long long)c->segs[lo].seq, (unsigned long long)c->segs[hi].seq);
        return rc;
    }
    if (unlinkat(c->dirfd, STORE_MANIFEST, 0) != 0 && errno != ENOENT)
        return -errno;
    fprintf(o, "no segment is left: the log starts empty\n");
    return 0;
}

static int repair(struct ck *c)
{
    char dname[64];
    int ddfd = damaged_dir(c, dname, sizeof dname);
    if (ddfd < 0)
        return -1;
    size_t lo = c->nsegs, hi = 0; /* indexes of the first and last present segment */
    for (size_t i = 0; i < c->nsegs; i++)
        if (c->segs[i].fd >= 0) {
            lo = FG_MIN(lo, i);
            hi = i;
        }
    int rc = 0;
    for (size_t i = 0; i < c->nsegs && !rc; i++)
        rc = repair_seg(c, i, lo, hi, ddfd, dname);
    if (!rc)
        rc = repair_manifest(c, lo, hi, ddfd, dname);
    if (!rc && (fsync(c->dirfd) != 0 || fsync(ddfd) != 0))
        rc = -errno;
    close(ddfd);
    if (rc)
        fprintf(c->out, "repair failed: %s\n", strerror(-rc));
    return rc ? -1 : 0;
}

int store_check(const struct store_opts *o, bool fix, FILE *out)
{
    struct ck c = { .o = o, .dir = o->dir && *o->dir ? o->dir : "./floodgate-broker-data", .out = out };
    c.maxlen = (o->max_record_bytes ? o->max_record_bytes : 2u << 20) + 1;
    c.dirfd = open(c.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c.dirfd < 0) {
        fprintf(out, "cannot open %s: %s\n", c.dir, strerror(errno));
        return -1;
    }
    if (flock(c.dirfd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(out, "%s is in use by a broker (locked): stop it first\n", c.dir);
        close(c.dirfd);
        return -1;
    }
    int rc = check(&c);
    if (rc != 0) {
        fprintf(out, "%s: cannot read the log: %s\n", c.dir, strerror(errno ? errno : EIO));
        ck_free(&c);
        close(c.dirfd);
        return -1;
    }
    report(&c);
    if (!c.damaged) {
        fprintf(out, "result: ok, the broker starts on this log%s\n", fix ? " (nothing to repair)" : "");
        rc = 0;
    } else if (!fix) {
        fprintf(out, "result: DAMAGED: the broker refuses to start; `floodgate broker --repair` keeps "
                "every record that verifies and sets the damaged files aside\n");
        rc = 1;
    } else {
        fprintf(out, "repairing:\n");
        rc = repair(&c);
        ck_free(&c);
        if (!rc) {
            struct ck v = { .o = o, .dir = c.dir, .dirfd = c.dirfd, .out = out, .maxlen = c.maxlen };
            rc = check(&v);
            if (rc == 0 && v.damaged) {
                fprintf(out, "the repaired log still fails its check:\n");
                report(&v);
                rc = -1;
            } else if (rc == 0) {
                fprintf(out, "result: repaired, the broker starts on this log\n");
            }
            ck_free(&v);
        }
    }
    ck_free(&c);
    close(c.dirfd);
    return rc;
}
