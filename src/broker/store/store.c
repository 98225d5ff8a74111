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
 * The sync thread (store/sync.c) writes, syncs and publishes; a failed
 * write is retried there, and the loop refuses appends while it stands.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define BATCH_INIT_CAP (64u << 10)
#define BATCH_KEEP_CAP (4u << 20) /* larger buffers are freed, not recycled */
#define BATCH_KEEP_N 4

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
    /* The error first: the thread publishes a round's error after the
     * done_total of the rounds before it, so done_total read after the
     * error covers them, and their commits, durable, do not fail. */
    int terr = atomic_load_explicit(&s->thr_err, memory_order_acquire);
    uint64_t done = atomic_load_explicit(&s->done_total, memory_order_acquire);
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
    rc = store__sync_start(s);
    if (rc) {
        ev_timer_stop(loop, &s->disk_timer);
        ev_io_stop(loop, s->efd);
        close(s->efd);
        s->efd = -1;
        s->loop = NULL;
        return rc;
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
    bool threaded = s->thread_running;
    store__sync_stop(s); /* the final sync */
    if (threaded) {
        ev_io_stop(s->loop, s->efd);
        ev_timer_stop(s->loop, &s->disk_timer);
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
