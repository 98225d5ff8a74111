/* The broker's append-only segment log (see store.h for the contract and
 * the on-disk format).
 *
 * Memory: appends go into the "fill" batch, a growable buffer holding one
 * segment's bytes for the current loop iteration. store_flush() hands the
 * fill batch to the sync thread through a mutex-protected queue and keeps
 * it on the loop's in-flight list (so store_read can still find its
 * records) until the sync thread reports it done; retired buffers are
 * recycled. The loop never touches a batch's bytes after the handoff, and
 * the sync thread never frees one, so the data needs no lock.
 *
 * Progress is counted in "totals": bytes appended in this session across
 * all segments. A commit waits for done_total (bytes the sync thread has
 * made durable under the policy) to reach the total at its call; the sync
 * thread publishes done_total with a release store and wakes the loop
 * through the store's own eventfd.
 *
 * The sync thread takes every queued batch at once, writes them with
 * pwrite at their offsets, fdatasyncs each segment it wrote (ALWAYS and
 * BATCH; BATCH first waits batch_us for more batches), fsyncs the
 * directory after a new segment and records it in MANIFEST
 * (store/manifest.c), then publishes. Under INTERVAL it
 * publishes after the writes and fdatasyncs every interval_ms; a segment
 * it leaves for a newer one is synced at once.
 *
 * Write errors (ENOSPC, EIO) are not sticky. A round that fails publishes
 * nothing: the loop fails the commits waiting on it and refuses appends
 * while the error stands. The thread keeps the round's batches (the loop
 * cannot retire them, done_total did not cover them) and every
 * STORE_RETRY_MS writes all of them again at their offsets and syncs:
 * rewriting from our own buffers, not re-syncing, because after a failed
 * fsync Linux may have dropped the dirty pages. pwrite at a fixed offset
 * is idempotent, so a partial earlier write is simply overwritten, and
 * nothing acknowledged before lies in those bytes. When the rewrite is
 * durable the error clears and appends resume, without a restart.
 *
 * Free space: a loop timer compares statvfs of the directory with
 * opts.disk_free_limit (store_disk_low); while it is low, the active
 * segment is not rolled, so that receives and deletes write into its
 * zeros written ahead, space already allocated.
 *
 * Recovery (store_replay) is in store/replay.c. */
#include "broker/store/store_int.h"

#include "core/crc32c.h"
#include "core/ev.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define BATCH_INIT_CAP (64u << 10)
#define BATCH_KEEP_CAP (4u << 20) /* larger buffers are freed, not recycled */
#define BATCH_KEEP_N 4
#define ZERO_CHUNK (1u << 20) /* zeros written ahead of the log at a time */
#define ZERO_LOW (256u << 10) /* ... when fewer than this are left */

/* ---- segments ---- */

struct store_seg *store__seg_find(struct store *s, uint64_t seq)
{
    if (!s->nsegs || seq < s->segs[0].seq || seq - s->segs[0].seq >= s->nsegs)
        return NULL;
    return &s->segs[seq - s->segs[0].seq];
}

struct store_seg *store__seg_push(struct store *s, uint64_t seq, int fd, uint64_t size)
{
    if (s->nsegs == s->capsegs) {
        s->capsegs = s->capsegs ? s->capsegs * 2 : 16;
        s->segs = xrealloc(s->segs, s->capsegs * sizeof *s->segs);
    }
    struct store_seg *g = &s->segs[s->nsegs++];
    memset(g, 0, sizeof *g);
    g->seq = seq;
    g->fd = fd;
    g->size = size;
    return g;
}

void store__seg_name(char *out, size_t cap, uint64_t seq)
{
    snprintf(out, cap, "%016llx.seg", (unsigned long long)seq);
}

void store__seg_header(uint8_t out[STORE_SEG_HDR], uint64_t seq)
{
    memcpy(out, STORE_MAGIC, 8);
    store__put64(out + 8, seq);
}

/* ---- batches ---- */

static struct store_batch *batch_get(struct store *s, struct store_seg *g)
{
    struct store_batch *b = s->freelist;
    if (b) {
        s->freelist = b->next;
        s->nfree--;
    } else {
        b = xcalloc(1, sizeof *b);
        b->cap = BATCH_INIT_CAP;
        b->data = xmalloc(b->cap);
    }
    b->next = b->qnext = NULL;
    b->len = 0;
    b->seq = g->seq;
    b->fd = g->fd;
    b->off = g->size;
    b->end_total = s->app_total;
    b->nrec = 0;
    b->new_seg = false;
    return b;
}

static void batch_put(struct store *s, struct store_batch *b)
{
    if (s->nfree >= BATCH_KEEP_N || b->cap > BATCH_KEEP_CAP) {
        free(b->data);
        free(b);
        return;
    }
    b->next = s->freelist;
    s->freelist = b;
    s->nfree++;
}

static void batch_reserve(struct store_batch *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap;
    while (cap < b->len + more)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

/* Queues b for the sync thread (or for store_start / store_close when the
 * thread is not running) and keeps it readable on the in-flight list. */
static void handoff(struct store *s, struct store_batch *b)
{
    if (s->inflight_tail)
        s->inflight_tail->next = b;
    else
        s->inflight_head = b;
    s->inflight_tail = b;
    pthread_mutex_lock(&s->mu);
    if (s->q_tail)
        s->q_tail->qnext = b;
    else
        s->q_head = b;
    s->q_tail = b;
    s->q_recs += b->nrec;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the sync thread ---- */

static int write_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int sync_fd(struct store *s, int fd)
{
    uint64_t t0 = ev_clock_ns();
    int rc = fdatasync(fd) == 0 ? 0 : -errno;
    atomic_fetch_add_explicit(&s->syncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sync_ns, ev_clock_ns() - t0, memory_order_relaxed);
    return rc;
}

/* Syncs the segment the thread last wrote, if it has unsynced writes. */
static int sync_cur(struct store *s)
{
    if (s->cur_fd < 0 || !s->cur_dirty)
        return 0;
    int rc = sync_fd(s, s->cur_fd);
    s->cur_dirty = rc != 0; /* failed: the retry syncs again */
    return rc;
}

/* Leaves the segment last written: cuts off the zeros written ahead of
 * its last record and syncs it (it is sealed, or the store is closing). */
static int leave_cur(struct store *s)
{
    if (s->cur_fd < 0)
        return 0;
    if (s->zero_end > s->cur_end) {
        if (ftruncate(s->cur_fd, (off_t)s->cur_end) != 0)
            return -errno;
        s->zero_end = s->cur_end;
        s->cur_dirty = true;
    }
    return sync_cur(s);
}

/* Keeps at least ZERO_LOW bytes of zeros written past the end of the log.
 * Records then overwrite allocated, already written blocks, so the
 * fdatasync that makes them durable flushes data only: appending would
 * also change the file size, which costs a journal commit on ext4 and
 * xfs. The zeros read as the end of the log (a record length of 0). */
static void zero_ahead(struct store *s)
{
    static const uint8_t zeros[64 << 10];
    if (s->cur_end + ZERO_LOW <= s->zero_end)
        return;
    /* Not past where the segment will roll (small segments, in tests),
     * unless the segment already grew past it: it is not rolled while the
     * disk is low, and then these zeros are the space its records use. */
    uint64_t from = FG_MAX(s->zero_end, s->cur_end);
    uint64_t to = from + ZERO_CHUNK;
    if (s->cur_end < s->o.segment_bytes)
        to = FG_MIN(to, s->o.segment_bytes + sizeof zeros);
    for (uint64_t off = from; off < to; off += sizeof zeros) {
        size_t n = (size_t)FG_MIN((uint64_t)sizeof zeros, to - off);
        /* A failure (disk full) is no error: the zeros only save the
         * sync a size change; records written past them extend the file. */
        if (write_full(s->cur_fd, zeros, n, off) != 0) {
            struct stat st; /* part of the chunk may be there: cut on leaving */
            if (fstat(s->cur_fd, &st) == 0)
                s->zero_end = FG_MAX(s->zero_end, (uint64_t)st.st_size);
            return;
        }
        s->zero_end = FG_MAX(s->zero_end, off + n);
    }
}

static int write_batch(struct store *s, struct store_batch *b)
{
    if (b->fd != s->cur_fd) {
        int rc = leave_cur(s); /* the segment being left is sealed */
        if (rc)
            return rc;
        struct stat st;
        if (fstat(b->fd, &st) != 0)
            return -errno;
        s->cur_fd = b->fd;
        s->cur_end = b->off;
        s->zero_end = (uint64_t)st.st_size;
    }
    s->cur_dirty = true;
    if (b->new_seg) {
        s->dir_dirty = true;
        s->new_seq = b->seq;
    }
    if (s->o.fsync == STORE_FSYNC_INTERVAL && !s->next_sync_ns)
        s->next_sync_ns = ev_clock_ns() + (uint64_t)s->o.interval_ms * 1000000ull;
    int rc = write_full(b->fd, b->data, b->len, b->off);
    if (rc)
        return rc;
    s->cur_end = FG_MAX(s->cur_end, b->off + b->len);
    zero_ahead(s);
    return 0;
}

static struct store_batch *take_queue(struct store *s, uint64_t *nrec)
{
    struct store_batch *l = s->q_head;
    s->q_head = s->q_tail = NULL;
    if (nrec)
        *nrec += s->q_recs;
    s->q_recs = 0;
    return l;
}

/* BATCH: after writing what it took, the round waits up to batch_us for
 * more records before its fdatasync, but no longer than it takes for the
 * round to hold as many records as were recently active: the previous
 * round's plus those already queued when this one began. Clients whose
 * requests the previous round acknowledged come back with their next ones
 * and join this round, instead of the two cohorts taking turns (each
 * request waiting for two syncs). When fewer come back, the round waits
 * out batch_us once and its smaller count becomes the next target. */
static struct store_batch *gather(struct store *s, uint64_t *nrec)
{
    uint64_t want = s->last_round_recs + *nrec;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += (long)s->o.batch_us * 1000;
    dl.tv_sec += dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    pthread_mutex_lock(&s->mu);
    while (!s->stop && *nrec + s->q_recs < want &&
           pthread_cond_timedwait(&s->cv, &s->mu, &dl) != ETIMEDOUT)
        ;
    struct store_batch *list = take_queue(s, nrec);
    pthread_mutex_unlock(&s->mu);
    return list;
}

/* Writes list (nrec records; under BATCH, also whatever gather() adds),
 * makes it durable under the policy and publishes the new done_total.
 * The batches of a round that failed before go first and are written
 * again whole; a round that fails keeps all of its batches for the next
 * try and publishes nothing but the error. Runs on the sync thread, or
 * on the loop thread when no thread was started. */
static void sync_round(struct store *s, struct store_batch *list, uint64_t nrec, bool final)
{
    int prev = atomic_load_explicit(&s->thr_err, memory_order_relaxed);
    if (s->retry_head) {
        s->retry_tail->qnext = list;
        list = s->retry_head;
        s->retry_head = s->retry_tail = NULL;
    }
    int err = 0;
    uint64_t end = 0;
    struct store_batch *last = NULL;
    for (struct store_batch *b = list; b; b = b->qnext) {
        if (!err)
            err = write_batch(s, b);
        end = b->end_total;
        last = b;
    }
    if (!err && s->o.fsync == STORE_FSYNC_BATCH && s->o.batch_us && s->thread_running) {
        struct store_batch *more = gather(s, &nrec);
        if (last)
            last->qnext = more;
        else
            list = more;
        for (struct store_batch *b = more; b; b = b->qnext) {
            if (!err)
                err = write_batch(s, b);
            end = b->end_total;
            last = b;
        }
        s->last_round_recs = nrec;
    }
    /* INTERVAL syncs here too when recovering: the failure may have been
     * the timed sync, whose data is already reported done. */
    if (!err && (s->o.fsync != STORE_FSYNC_INTERVAL || final || prev))
        err = sync_cur(s);
    if (!err && s->dir_dirty) {
        if (fsync(s->dirfd) != 0)
            err = -errno;
        else if (s->new_seq)
            err = store__manifest_roll(s); /* before any record in it is acknowledged */
        if (!err)
            s->dir_dirty = false; /* else the retry fsyncs (and records) again */
    }
    if (err) {
        s->retry_head = list;
        s->retry_tail = list ? last : NULL;
        atomic_store_explicit(&s->thr_err, err, memory_order_release);
    } else {
        if (end)
            atomic_store_explicit(&s->done_total, end, memory_order_release);
        if (prev) /* after done_total: the loop must not fail what is now durable */
            atomic_store_explicit(&s->thr_err, 0, memory_order_release);
    }
    if (s->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w; /* EAGAIN: a wakeup is already pending */
    }
}

static void *sync_main(void *arg)
{
    struct store *s = arg;
    snprintf(log_thread_name, sizeof log_thread_name, "store");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->q_head && !s->stop) {
            if (atomic_load_explicit(&s->thr_err, memory_order_relaxed)) {
                /* The last round failed: try it again every STORE_RETRY_MS
                 * (new batches join the retry at once). */
                uint64_t at = ev_clock_ns() + STORE_RETRY_MS * 1000000ull;
                struct timespec dl = { .tv_sec = (time_t)(at / 1000000000ull),
                                       .tv_nsec = (long)(at % 1000000000ull) };
                if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT && !s->q_head && !s->stop) {
                    pthread_mutex_unlock(&s->mu);
                    sync_round(s, NULL, 0, false);
                    pthread_mutex_lock(&s->mu);
                }
            } else if (s->o.fsync == STORE_FSYNC_INTERVAL && s->cur_dirty) {
                struct timespec dl = { .tv_sec = (time_t)(s->next_sync_ns / 1000000000ull),
                                       .tv_nsec = (long)(s->next_sync_ns % 1000000000ull) };
                if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) {
                    pthread_mutex_unlock(&s->mu);
                    if (!atomic_load_explicit(&s->thr_err, memory_order_relaxed)) {
                        int rc = sync_cur(s);
                        if (rc)
                            atomic_store_explicit(&s->thr_err, rc, memory_order_release);
                    }
                    s->next_sync_ns = 0;
                    pthread_mutex_lock(&s->mu);
                }
            } else {
                pthread_cond_wait(&s->cv, &s->mu);
            }
            continue;
        }
        if (!s->q_head)
            break; /* stopping, nothing left */
        uint64_t nrec = 0;
        struct store_batch *list = take_queue(s, &nrec);
        bool final = s->stop;
        pthread_mutex_unlock(&s->mu);
        sync_round(s, list, nrec, final);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (atomic_load_explicit(&s->thr_err, memory_order_relaxed))
        sync_round(s, NULL, 0, true); /* a last try for what failed */
    if (!atomic_load_explicit(&s->thr_err, memory_order_relaxed)) {
        int rc = leave_cur(s); /* the active segment ends at its last record */
        if (rc)
            atomic_store_explicit(&s->thr_err, rc, memory_order_release);
    }
    return NULL;
}

/* ---- loop side: completions and callbacks ---- */

static void run_commits(struct store *s)
{
    uint64_t done = atomic_load_explicit(&s->done_total, memory_order_acquire);
    while (s->cq_len) {
        struct store_commit c = s->cq[s->cq_head];
        int rc;
        if (c.target <= done)
            rc = 0;
        else if (s->err)
            rc = s->err;
        else
            break;
        s->cq_head = (s->cq_head + 1) % s->cq_cap;
        s->cq_len--;
        c.cb(c.ud, rc); /* may append or commit again: the ring is re-read */
    }
}

/* Retires batches the sync thread is done with and runs due callbacks. */
static void reap(struct store *s)
{
    uint64_t done = atomic_load_explicit(&s->done_total, memory_order_acquire);
    int terr = atomic_load_explicit(&s->thr_err, memory_order_acquire);
    if (terr && !s->err) {
        s->err = terr;
        s->write_errors++;
        log_error("store %s: write failed: %s; commits not yet durable fail, appends are refused "
                  "and the write is retried every %d ms", s->dir, strerror(-terr), STORE_RETRY_MS);
    } else if (!terr && s->err) {
        s->err = 0;
        s->recoveries++;
        log_info("store %s: the failed write is now durable; appends resume", s->dir);
    }
    while (s->inflight_head && s->inflight_head->end_total <= done) {
        struct store_batch *b = s->inflight_head;
        s->inflight_head = b->next;
        if (!s->inflight_head)
            s->inflight_tail = NULL;
        batch_put(s, b);
    }
    run_commits(s);
}

static void on_done(struct ev_loop *loop, int fd, void *ud, int events)
{
    struct store *s = ud;
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0)
        ;
    reap(s);
}

/* ---- public API ---- */

int store__create_segment(struct store *s)
{
    uint64_t seq = s->nsegs ? s->segs[s->nsegs - 1].seq + 1 : 1;
    char name[32];
    store__seg_name(name, sizeof name, seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = -errno;
        log_error("store %s: cannot create %s: %s", s->dir, name, strerror(errno));
        return e;
    }
    if (s->fill) {
        handoff(s, s->fill);
        s->fill = NULL;
    }
    if (s->nsegs)
        s->segs[s->nsegs - 1].end_total = s->app_total + STORE_SEG_HDR;
    struct store_seg *g = store__seg_push(s, seq, fd, 0);
    struct store_batch *b = batch_get(s, g);
    b->new_seg = true;
    store__seg_header(b->data, seq);
    b->len = STORE_SEG_HDR;
    g->size = STORE_SEG_HDR;
    s->app_total += STORE_SEG_HDR;
    b->end_total = s->app_total;
    s->fill = b;
    return 0;
}

static const struct store_pos no_pos = { 0, 0 };

/* May the active segment, full, be rolled now? Not while the disk is low:
 * a new segment takes fresh space, while the zeros written ahead in the
 * active one are allocated already. Not soon after a failed create. */
static bool may_roll(struct store *s)
{
    if (s->roll_retry_ns) {
        if (ev_clock_ns() < s->roll_retry_ns)
            return false;
        s->roll_retry_ns = 0;
    }
    if (!s->o.disk_free_limit)
        return true;
    store_disk_check(s); /* fresh, not up to STORE_DISK_CHECK_MS old */
    if (s->disk_low)
        s->roll_retry_ns = ev_clock_ns() + STORE_DISK_CHECK_MS * 1000000ull;
    return !s->disk_low;
}

struct store_pos store_append(struct store *s, uint8_t type, const void *payload, uint32_t len)
{
    if (unlikely(s->err || s->broken || type == 0 || len > s->o.max_record_bytes))
        return no_pos;
    if (unlikely(!s->replayed) && store__implicit_replay(s) != 0)
        return no_pos;
    struct store_seg *g = &s->segs[s->nsegs - 1];
    if (g->size >= s->o.segment_bytes && g->size > STORE_SEG_HDR && may_roll(s)) {
        if (store__create_segment(s) != 0) /* logged; the active segment grows meanwhile */
            s->roll_retry_ns = ev_clock_ns() + STORE_RETRY_MS * 1000000ull;
        g = &s->segs[s->nsegs - 1];
    }
    struct store_batch *b = s->fill;
    if (!b)
        b = s->fill = batch_get(s, g);
    size_t need = STORE_REC_HDR + (size_t)len;
    batch_reserve(b, need);
    uint8_t *p = b->data + b->len;
    uint32_t crc = crc32c(0, &type, 1);
    if (len)
        crc = crc32c(crc, payload, len);
    store__put32(p, len + 1);
    store__put32(p + 4, crc);
    p[8] = type;
    if (len)
        memcpy(p + STORE_REC_HDR, payload, len);
    struct store_pos pos = { g->seq, g->size };
    b->nrec++;
    b->len += need;
    g->size += need;
    s->app_total += need;
    b->end_total = s->app_total;
    s->appends++;
    return pos;
}

void store_commit(struct store *s, store_commit_fn cb, void *ud)
{
    if (s->cq_len == s->cq_cap) {
        size_t ncap = s->cq_cap ? s->cq_cap * 2 : 64;
        struct store_commit *n = xmalloc(ncap * sizeof *n);
        for (size_t i = 0; i < s->cq_len; i++)
            n[i] = s->cq[(s->cq_head + i) % s->cq_cap];
        free(s->cq);
        s->cq = n;
        s->cq_cap = ncap;
        s->cq_head = 0;
    }
    s->cq[(s->cq_head + s->cq_len) % s->cq_cap] =
        (struct store_commit){ .cb = cb, .ud = ud, .target = s->app_total };
    s->cq_len++;
    s->commits++;
}

void store_flush(struct store *s)
{
    /* Callbacks first: those due may append and commit again, and what
     * they append must leave with this flush, or it would wait for some
     * unrelated wakeup of the loop. */
    reap(s);
    if (s->fill && s->fill->len) {
        handoff(s, s->fill);
        s->fill = NULL;
    }
}

/* Parses the record at off inside a batch still in memory. */
static ssize_t read_mem(const struct store_batch *b, uint64_t off, void *buf, size_t cap)
{
    uint64_t rel = off - b->off;
    if (b->len - rel < STORE_REC_HDR)
        return -1;
    const uint8_t *p = b->data + rel;
    uint32_t len = store__get32(p);
    if (len == 0 || len > b->len - rel - 8)
        return -1;
    if (crc32c(0, p + 8, len) != store__get32(p + 4))
        return -1;
    memcpy(buf, p + STORE_REC_HDR, FG_MIN((size_t)len - 1, cap));
    return (ssize_t)len - 1;
}

static const struct store_batch *find_mem(const struct store *s, struct store_pos pos)
{
    const struct store_batch *b = s->fill;
    if (b && b->seq == pos.seg && pos.off >= b->off && pos.off < b->off + b->len)
        return b;
    for (b = s->inflight_head; b; b = b->next)
        if (b->seq == pos.seg && pos.off >= b->off && pos.off < b->off + b->len)
            return b;
    return NULL;
}

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

ssize_t store_read(struct store *s, struct store_pos pos, void *buf, size_t cap)
{
    struct store_seg *g = store__seg_find(s, pos.seg);
    if (!g || pos.off < STORE_SEG_HDR || pos.off >= g->size || g->size - pos.off < STORE_REC_HDR)
        return -1;
    const struct store_batch *b = find_mem(s, pos);
    if (b)
        return read_mem(b, pos.off, buf, cap);
    uint8_t h[STORE_REC_HDR];
    if (read_full(g->fd, h, sizeof h, pos.off) != 0)
        return -1;
    uint32_t len = store__get32(h);
    if (len == 0 || len > s->o.max_record_bytes + 1u || len > g->size - pos.off - 8)
        return -1;
    size_t plen = (size_t)len - 1;
    uint8_t *dst = buf, *tmp = NULL;
    if (plen > cap)
        dst = tmp = xmalloc(plen);
    int rc = plen ? read_full(g->fd, dst, plen, pos.off + STORE_REC_HDR) : 0;
    uint32_t crc = crc32c(crc32c(0, h + 8, 1), dst, plen);
    if (rc == 0 && crc == store__get32(h + 4) && tmp)
        memcpy(buf, tmp, cap);
    free(tmp);
    return rc == 0 && crc == store__get32(h + 4) ? (ssize_t)plen : -1;
}

void store_retain(struct store *s, struct store_pos pos, uint32_t len)
{
    struct store_seg *g = store__seg_find(s, pos.seg);
    if (g)
        g->live += (uint64_t)len + STORE_REC_HDR;
}

void store_release(struct store *s, struct store_pos pos, uint32_t len)
{
    struct store_seg *g = store__seg_find(s, pos.seg);
    if (g)
        g->live -= FG_MIN(g->live, (uint64_t)len + STORE_REC_HDR);
}

uint64_t store_compact_candidate(const struct store *s, double ratio)
{
    if (s->nsegs < 2)
        return 0;
    const struct store_seg *g = &s->segs[0];
    return (double)g->live < ratio * (double)g->size ? g->seq : 0;
}

int store_drop_oldest(struct store *s, uint64_t seq)
{
    if (s->nsegs < 2 || s->segs[0].seq != seq)
        return -EINVAL;
    struct store_seg *g = &s->segs[0];
    if (atomic_load_explicit(&s->done_total, memory_order_acquire) < g->end_total)
        return -EBUSY; /* its last bytes (or the next header) are not durable yet */
    /* The manifest first: a crash before the unlink leaves a file below
     * its range, which store_open removes; the other order would leave a
     * manifest naming a segment that is gone. */
    pthread_mutex_lock(&s->man_mu);
    int rc = store__manifest_write(s->dirfd, seq + 1, FG_MAX(s->man_last, seq + 1));
    if (!rc) {
        s->man_first = seq + 1;
        s->man_last = FG_MAX(s->man_last, seq + 1);
    }
    pthread_mutex_unlock(&s->man_mu);
    if (rc)
        return rc;
    char name[32];
    store__seg_name(name, sizeof name, seq);
    if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT)
        return -errno;
    close(g->fd);
    memmove(&s->segs[0], &s->segs[1], (s->nsegs - 1) * sizeof *s->segs);
    s->nsegs--;
    return fsync(s->dirfd) == 0 ? 0 : -errno;
}

void store_get_stats(const struct store *s, struct store_stats *st)
{
    memset(st, 0, sizeof *st);
    st->segments = s->nsegs;
    for (size_t i = 0; i < s->nsegs; i++) {
        st->disk_bytes += s->segs[i].size;
        st->live_bytes += s->segs[i].live;
    }
    st->appends = s->appends;
    st->commits = s->commits;
    st->syncs = atomic_load_explicit(&s->syncs, memory_order_relaxed);
    st->sync_ns_total = atomic_load_explicit(&s->sync_ns, memory_order_relaxed);
    st->pending_bytes = s->app_total - atomic_load_explicit(&s->done_total, memory_order_acquire);
    st->disk_free = s->disk_free;
    st->disk_free_limit = s->o.disk_free_limit;
    st->disk_low = s->disk_low;
    st->disk_alarms = s->disk_alarms;
    st->write_errors = s->write_errors;
    st->recoveries = s->recoveries;
}

bool store_disk_low(const struct store *s)
{
    return s->disk_low;
}

int store_disk_check(struct store *s)
{
    struct statvfs v;
    if (fstatvfs(s->dirfd, &v) != 0)
        return -errno;
    s->disk_free = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
    bool low = s->o.disk_free_limit && s->disk_free < s->o.disk_free_limit;
    if (low == s->disk_low)
        return 0;
    s->disk_low = low;
    if (low) {
        s->disk_alarms++;
        log_warn("store %s: %llu bytes free, under disk_free_limit (%llu): new messages are refused "
                 "until space returns", s->dir, (unsigned long long)s->disk_free,
                 (unsigned long long)s->o.disk_free_limit);
    } else {
        log_info("store %s: %llu bytes free, disk_free_limit (%llu) met again: new messages accepted",
                 s->dir, (unsigned long long)s->disk_free, (unsigned long long)s->o.disk_free_limit);
    }
    return 0;
}

static void on_disk_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct store *s = t->ud;
    store_disk_check(s);
    ev_timer_start(loop, t, STORE_DISK_CHECK_MS);
}

int store_error(const struct store *s)
{
    if (s->err)
        return s->err;
    return atomic_load_explicit(&s->thr_err, memory_order_acquire);
}

int store_start(struct store *s, struct ev_loop *loop)
{
    ASSERT(!s->thread_running);
    if (!s->replayed && store__implicit_replay(s) != 0)
        return -EIO;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0)
        return -errno;
    int rc = ev_io_start(loop, s->efd, EV_READ, on_done, s);
    if (rc) {
        close(s->efd);
        s->efd = -1;
        return rc;
    }
    s->loop = loop;
    store_disk_check(s);
    ev_timer_init(&s->disk_timer, on_disk_timer, s);
    ev_timer_start(loop, &s->disk_timer, STORE_DISK_CHECK_MS);
    /* The sync thread takes no signals: they stay with the loop threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    s->thread_running = true;
    rc = pthread_create(&s->thr, NULL, sync_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        s->thread_running = false;
        ev_timer_stop(loop, &s->disk_timer);
        ev_io_stop(loop, s->efd);
        close(s->efd);
        s->efd = -1;
        s->loop = NULL;
        return -rc;
    }
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->fill && s->fill->len) {
        handoff(s, s->fill);
        s->fill = NULL;
    }
    if (s->thread_running) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thr, NULL);
        s->thread_running = false;
        ev_io_stop(s->loop, s->efd);
        ev_timer_stop(s->loop, &s->disk_timer);
    } else {
        if (s->q_head || s->retry_head) {
            uint64_t nrec = 0;
            struct store_batch *list = take_queue(s, &nrec);
            sync_round(s, list, nrec, true);
        }
        if (!atomic_load_explicit(&s->thr_err, memory_order_relaxed)) {
            int rc = leave_cur(s);
            if (rc)
                atomic_store_explicit(&s->thr_err, rc, memory_order_release);
        }
    }
    if (s->efd >= 0)
        close(s->efd);
    s->efd = -1;
    reap(s);
    /* Whatever could not be written fails now rather than never. */
    if (!s->err && s->cq_len)
        s->err = -EIO;
    run_commits(s);
    store__free(s);
}
