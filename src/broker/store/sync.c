/* The store's sync thread (see store.c for how batches reach it): it
 * writes the batches handed off by store_flush() at their offsets, makes
 * them durable under the policy and publishes the new done_total, waking
 * the loop through the store's eventfd.
 *
 * The thread takes every queued batch at once, writes them with pwrite at
 * their offsets, fdatasyncs each segment it wrote (ALWAYS and BATCH; BATCH
 * first waits batch_us for more batches), fsyncs the directory after a new
 * segment and records it in MANIFEST (store/manifest.c), then publishes.
 * Under INTERVAL it publishes after the writes and fdatasyncs every
 * interval_ms; a segment it leaves for a newer one is synced at once.
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
 * durable the error clears and appends resume, without a restart. */
#include "broker/store/store_int.h"

#include "core/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_CHUNK (1u << 20) /* zeros written ahead of the log at a time */
#define ZERO_LOW (256u << 10) /* ... when fewer than this are left */

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

int store__sync_start(struct store *s)
{
    /* The sync thread takes no signals: they stay with the loop threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    s->thread_running = true;
    int rc = pthread_create(&s->thr, NULL, sync_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        s->thread_running = false;
    return -rc;
}

void store__sync_stop(struct store *s)
{
    if (s->thread_running) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thr, NULL);
        s->thread_running = false;
        return;
    }
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
