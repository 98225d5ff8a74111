/* The store's sync threads (see store.c for how batches reach them):
 * they write the batches handed off by store_flush() at their offsets,
 * make them durable under the policy and publish the new done_total,
 * waking the loop through the store's eventfd.
 *
 * Rounds overlap. A round takes every queued batch at once and has two
 * phases. The write phase (one round at a time, the `writing` flag under
 * mu) writes the batches with pwrite, zeros ahead of the log and seals a
 * segment the round leaves (cut at its last record and fdatasync'ed before
 * the next segment gets a byte). The sync phase fdatasyncs the segment the
 * round wrote last (ALWAYS and BATCH; BATCH first waits batch_us for more
 * batches, in the write phase), fsyncs the directory after a new segment
 * and records it in MANIFEST (store/manifest.c). Several threads
 * (STORE_SYNCERS) run rounds: while round N is in its fdatasync, round N+1
 * is written and synced by another thread, so a commit that arrives during
 * an fdatasync waits for its own, not for the end of that one first. The
 * rounds are numbered as they are taken and published strictly in that
 * order: a round that finishes early waits for its turn, so done_total
 * only covers bytes of which every earlier byte is durable too (an
 * fdatasync started after round N's writes covers them, but round N's own
 * may fail). Under INTERVAL one thread runs: it publishes after the
 * writes and fdatasyncs every interval_ms; a segment it leaves for a newer
 * one is synced at once.
 *
 * Each thread fdatasyncs through its own open file of the segment, opened
 * before the round writes to it: Linux reports a writeback error to every
 * open file once, so an fdatasync of another round (or the seal) that saw
 * the error first cannot hide it from this round's.
 *
 * Write errors (ENOSPC, EIO) are not sticky. A round that fails publishes
 * nothing: the loop fails the commits waiting on it and refuses appends
 * while the error stands. Its batches (the loop cannot retire them,
 * done_total did not cover them) go to the retry list, and so do those of
 * the rounds after it, which depend on its bytes, whether they succeeded
 * or not. No round starts while the error stands and a round is in flight;
 * then one round takes the whole retry list (and whatever is queued) and
 * writes all of it again at its offsets and syncs, at once when new
 * batches come, else every STORE_RETRY_MS: rewriting from our own
 * buffers, not re-syncing, because after a failed fsync Linux may have
 * dropped the dirty pages. pwrite at a fixed offset is idempotent, so a
 * partial earlier write is simply overwritten, and nothing acknowledged
 * before lies in those bytes. When the rewrite is durable the error clears
 * and appends resume, without a restart. */
#include "broker/store/store_int.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_CHUNK (1u << 20) /* zeros written ahead of the log at a time */
#define ZERO_LOW (256u << 10) /* ... when fewer than this are left */
#define SYNCER_IDLE_MS 1000   /* an idle thread closes its segment file after this */

/* One round: the batches it took and what it must sync. */
struct round {
    struct store_batch *list, *last;
    uint64_t nrec;    /* records in list (BATCH: its gather target) */
    uint64_t id;      /* its place in the publication order */
    uint64_t end;     /* end_total of its last batch (0: none) */
    uint64_t new_seq; /* a segment it starts: directory fsync, MANIFEST */
    bool retry;       /* an error stood when it began: it carries the retry list */
    bool final;       /* the store is closing: INTERVAL syncs too */
    int err;
};

/* A thread's own open file of the segment it writes (see above). */
struct syncer {
    uint64_t seq; /* 0: none open */
    int fd;
};

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
    int rc = s->datasync(fd) == 0 ? 0 : -errno;
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


static void syncer_close(struct syncer *me)
{
    if (me->seq)
        close(me->fd);
    me->seq = 0;
    me->fd = -1;
}

static int syncer_open(struct store *s, struct syncer *me, uint64_t seq)
{
    if (me->seq == seq)
        return 0;
    syncer_close(me);
    char name[32];
    store__seg_name(name, sizeof name, seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    me->seq = seq;
    me->fd = fd;
    return 0;
}

/* Write phase: batch b at its offset. */
static int write_batch(struct store *s, struct syncer *me, struct round *r, struct store_batch *b)
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
    int rc = syncer_open(s, me, b->seq); /* before the bytes: see above */
    if (rc)
        return rc;
    s->cur_dirty = true;
    if (b->new_seg)
        r->new_seq = b->seq;
    if (s->o.fsync == STORE_FSYNC_INTERVAL && !s->next_sync_ns)
        s->next_sync_ns = ev_clock_ns() + (uint64_t)s->o.interval_ms * 1000000ull;
    rc = write_full(b->fd, b->data, b->len, b->off);
    if (rc)
        return rc;
    s->cur_end = FG_MAX(s->cur_end, b->off + b->len);
    zero_ahead(s);
    return 0;
}

/* Write phase: appends list to the round and writes it (after an error,
 * the rest is only kept for the retry). */
static void write_list(struct store *s, struct syncer *me, struct round *r, struct store_batch *list)
{
    if (r->last)
        r->last->qnext = list;
    else
        r->list = list;
    for (struct store_batch *b = list; b; b = b->qnext) {
        if (!r->err)
            r->err = write_batch(s, me, r, b);
        r->end = b->end_total;
        r->last = b;
    }
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

/* The write phase of r, whose batches were taken (mu not held). */
static void write_round(struct store *s, struct syncer *me, struct round *r)
{
    struct store_batch *list = r->list;
    r->list = NULL;
    write_list(s, me, r, list);
    if (!r->err && s->o.fsync == STORE_FSYNC_BATCH && s->o.batch_us && !r->final) {
        write_list(s, me, r, gather(s, &r->nrec));
        s->last_round_recs = r->nrec;
    }
    /* INTERVAL retries a failed timed sync, whose data is already
     * reported done, with a round that may hold no batch. */
    if (!r->err && !r->list && r->retry)
        r->err = sync_cur(s);
}

/* The sync phase of r (mu not held; other rounds may be writing). */
static int sync_round(struct store *s, struct syncer *me, struct round *r)
{
    if (r->err || !r->list)
        return r->err;
    int err = 0;
    if (s->o.fsync != STORE_FSYNC_INTERVAL || r->final || r->retry)
        err = sync_fd(s, me->fd);
    if (!err && r->new_seq) {
        if (fsync(s->dirfd) != 0)
            err = -errno;
        else
            err = store__manifest_roll(s, r->new_seq); /* before any record in it is acknowledged */
    }
    return err;
}

/* Publishes r in its turn (mu held): its end becomes done_total, or its
 * batches join the retry list when it or an earlier round failed. */
static void publish(struct store *s, struct round *r)
{
    while (s->next_pub != r->id)
        pthread_cond_wait(&s->cv, &s->mu);
    int prev = atomic_load_explicit(&s->thr_err, memory_order_relaxed);
    if (r->err || (prev && !r->retry)) {
        if (r->list) {
            if (s->retry_tail)
                s->retry_tail->qnext = r->list;
            else
                s->retry_head = r->list;
            s->retry_tail = r->last;
        }
        if (r->err)
            atomic_store_explicit(&s->thr_err, r->err, memory_order_release);
    } else {
        if (r->end)
            atomic_store_explicit(&s->done_total, r->end, memory_order_release);
        if (prev) /* after done_total: the loop must not fail what is now durable */
            atomic_store_explicit(&s->thr_err, 0, memory_order_release);
    }
    s->next_pub++;
    pthread_cond_broadcast(&s->cv);
    if (s->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w; /* EAGAIN: a wakeup is already pending */
    }
}

/* Takes the queue (after an error, with the retry list in front) and runs
 * a round through both phases. mu held on entry and on return; released
 * while writing and syncing. Runs on a sync thread, or on the loop thread
 * when none runs. */
static void run_round(struct store *s, struct syncer *me, bool final)
{
    struct round r = { .id = s->next_group++, .final = final };
    r.retry = atomic_load_explicit(&s->thr_err, memory_order_relaxed) != 0;
    if (r.retry && s->retry_head) {
        s->retry_tail->qnext = s->q_head;
        s->q_head = s->retry_head;
        if (!s->q_tail)
            s->q_tail = s->retry_tail;
        s->retry_head = s->retry_tail = NULL;
    }
    r.list = take_queue(s, &r.nrec);
    s->writing = true;
    pthread_mutex_unlock(&s->mu);
    write_round(s, me, &r);
    pthread_mutex_lock(&s->mu);
    s->writing = false;
    pthread_cond_broadcast(&s->cv); /* the next round may be written */
    pthread_mutex_unlock(&s->mu);
    r.err = sync_round(s, me, &r);
    pthread_mutex_lock(&s->mu);
    publish(s, &r);
}

/* Waits on cv (mu held) for at most until `at` (CLOCK_MONOTONIC ns);
 * true when it timed out. */
static bool wait_until(struct store *s, uint64_t at)
{
    struct timespec dl = { .tv_sec = (time_t)(at / 1000000000ull),
                           .tv_nsec = (long)(at % 1000000000ull) };
    return pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT;
}

/* A thread with no round to run waits (mu held): for a retry every
 * STORE_RETRY_MS while an error stands, for the next timed sync under
 * INTERVAL, else for batches. */
static void idle(struct store *s, struct syncer *me)
{
    bool busy = s->writing || s->next_pub != s->next_group;
    if (atomic_load_explicit(&s->thr_err, memory_order_relaxed) && !busy) {
        /* The last round failed: try it again (new batches join the
         * retry at once). */
        if (wait_until(s, ev_clock_ns() + STORE_RETRY_MS * 1000000ull) && !s->q_head && !s->stop &&
            !s->writing && s->next_pub == s->next_group)
            run_round(s, me, false);
    } else if (s->o.fsync == STORE_FSYNC_INTERVAL && s->cur_dirty && !busy) {
        if (wait_until(s, s->next_sync_ns) && !s->writing) {
            pthread_mutex_unlock(&s->mu); /* the only thread under INTERVAL */
            if (!atomic_load_explicit(&s->thr_err, memory_order_relaxed)) {
                int rc = sync_cur(s);
                if (rc)
                    atomic_store_explicit(&s->thr_err, rc, memory_order_release);
            }
            s->next_sync_ns = 0;
            pthread_mutex_lock(&s->mu);
        }
    } else if (me->seq && !s->q_head) {
        /* Idle for a while: let the segment file go, not to hold one that
         * compaction removes (a busy thread moves on with its next round). */
        if (wait_until(s, ev_clock_ns() + SYNCER_IDLE_MS * 1000000ull))
            syncer_close(me);
    } else {
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

static void *sync_main(void *arg)
{
    struct store *s = arg;
    struct syncer me = { .fd = -1 };
    snprintf(log_thread_name, sizeof log_thread_name, "store");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* While an error stands, the retry waits for every round in
         * flight: their batches join the retry list in order. */
        bool err = atomic_load_explicit(&s->thr_err, memory_order_relaxed);
        bool ready = !s->writing && (!err || s->next_pub == s->next_group);
        if (s->q_head && ready)
            run_round(s, &me, s->stop);
        else if (!s->q_head && s->stop)
            break; /* a failed round is tried once more by store__sync_stop */
        else
            idle(s, &me);
    }
    pthread_mutex_unlock(&s->mu);
    syncer_close(&me);
    return NULL;
}

int store__sync_start(struct store *s)
{
    int n = s->o.fsync == STORE_FSYNC_INTERVAL ? 1 : STORE_SYNCERS;
    /* The sync threads take no signals: they stay with the loop threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    pthread_mutex_lock(&s->mu); /* nthr is read by a running thread (gather) */
    while (s->nthr < n && !(rc = pthread_create(&s->thr[s->nthr], NULL, sync_main, s)))
        s->nthr++;
    pthread_mutex_unlock(&s->mu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc && !s->nthr)
        return -rc;
    return 0; /* fewer threads only overlap less */
}

void store__sync_stop(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->nthr) {
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < s->nthr; i++)
            pthread_join(s->thr[i], NULL);
        pthread_mutex_lock(&s->mu);
        s->nthr = 0;
    }
    /* What is left: the batches of a round that failed, or everything
     * when no thread ran. */
    struct syncer me = { .fd = -1 };
    if (s->q_head || s->retry_head)
        run_round(s, &me, true);
    pthread_mutex_unlock(&s->mu);
    syncer_close(&me);
    if (!atomic_load_explicit(&s->thr_err, memory_order_relaxed)) {
        int rc = leave_cur(s); /* the active segment ends at its last record */
        if (rc)
            atomic_store_explicit(&s->thr_err, rc, memory_order_release);
    }
}
