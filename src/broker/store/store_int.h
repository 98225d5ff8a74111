/* The store's private parts, shared by store.c (appends, reads,
 * compaction), store/sync.c (the sync thread) and store/replay.c (open,
 * recovery, close). Nothing outside src/broker/store/ includes this. */
#ifndef FG_BROKER_STORE_INT_H
#define FG_BROKER_STORE_INT_H

#include "broker/store/store.h"

#include "core/ev.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define STORE_MAGIC "FGLOG001"
#define STORE_SEG_HDR 16u  /* magic + u64 seq */
#define STORE_REC_HDR 9u   /* u32 len, u32 crc, u8 type */
#define STORE_REPLAY_MAX (1u << 30) /* largest record length replay accepts */
#define STORE_MANIFEST "MANIFEST"   /* the live segment range (store/manifest.c) */
#define STORE_SECTOR 512u           /* the unit a torn write loses (store__looks_torn) */

struct store_seg {
    uint64_t seq;
    uint64_t size;      /* bytes, on disk plus still pending */
    uint64_t live;      /* retained bytes (payload + record header) */
    uint64_t end_total; /* sealed in this session: app_total once the next
                           segment's header was appended (0 when recovered) */
    int fd;             /* O_RDWR, open while the segment exists */
};

/* One segment's bytes appended during a loop iteration. */
struct store_batch {
    struct store_batch *next;  /* free list or in-flight list (loop thread) */
    struct store_batch *qnext; /* sync queue (under mu) */
    uint8_t *data;
    size_t len, cap;
    uint64_t seq;       /* segment */
    int fd;
    uint64_t off;       /* file offset of data[0] */
    uint64_t end_total; /* app_total after the batch's last byte */
    uint32_t nrec;      /* records in it */
    bool new_seg;       /* starts a segment: fsync the directory too */
};

struct store_commit {
    store_commit_fn cb;
    void *ud;
    uint64_t target; /* app_total when store_commit() was called */
};

struct store {
    struct store_opts o;
    char *dir;
    int dirfd;                 /* holds the flock */
    struct store_seg *segs;    /* oldest first, consecutive seqs */
    size_t nsegs, capsegs;
    bool replayed;             /* store_replay ran (appends allowed) */
    uint32_t max_len_seen;     /* largest record replay met (bounds resync) */
    bool broken;               /* replay stopped early: no appends */
    int err;                   /* write error seen by the loop (-errno), until a retry works */
    uint64_t write_errors, recoveries;
    /* free-space watermark (loop thread) */
    struct ev_timer disk_timer;
    uint64_t disk_free;        /* at the last check */
    bool disk_low;
    uint64_t disk_alarms, rolls_deferred;
    uint64_t roll_retry_ns;    /* a segment could not be created: not before this */
    uint64_t app_total;        /* bytes appended this session */
    uint64_t appends, commits;
    struct store_batch *fill;  /* this iteration's appends (loop only) */
    struct store_batch *inflight_head, *inflight_tail; /* handed off, not retired */
    struct store_batch *freelist;
    int nfree;
    struct store_commit *cq;   /* ring of waiting commits */
    size_t cq_head, cq_len, cq_cap;

    /* The sync thread and what it shares with the loop. */
    struct ev_loop *loop;
    int efd;                   /* eventfd: the thread wakes the loop */
    pthread_t thr;
    bool thread_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* CLOCK_MONOTONIC */
    struct store_batch *q_head, *q_tail; /* under mu */
    uint64_t q_recs;           /* records in the queue (under mu) */
    bool stop;                 /* under mu */
    _Atomic uint64_t done_total; /* durable under the policy (release/acquire) */
    _Atomic int thr_err;
    _Atomic uint64_t syncs, sync_ns;

    /* Sync thread only (or the loop when no thread runs). */
    int cur_fd;                /* segment last written */
    uint64_t cur_end;          /* its last written byte + 1 */
    uint64_t zero_end;         /* its file size: zeros from cur_end on */
    bool cur_dirty;            /* written since its last fdatasync */
    bool dir_dirty;            /* a segment was created: fsync the directory */
    uint64_t next_sync_ns;     /* INTERVAL: when to sync cur_fd */
    uint64_t last_round_recs;  /* BATCH: records the previous round made durable */
    struct store_batch *retry_head, *retry_tail; /* failed round: rewritten whole */
    uint64_t new_seq;          /* a segment this round created (manifest) */

    /* The manifest: written by the sync thread when a segment becomes
     * durable and by the loop when the oldest one is dropped. */
    pthread_mutex_t man_mu;
    uint64_t man_first, man_last; /* the range MANIFEST names (under man_mu) */
};

/* A buffered window [boff, boff + blen) over one segment file. */
struct store_reader {
    int fd;
    uint64_t fsize;
    uint8_t *buf;
    size_t cap, blen;
    uint64_t boff;
};

static inline void store__put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void store__put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t store__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t store__get64(const uint8_t *p)
{
    return (uint64_t)store__get32(p) | (uint64_t)store__get32(p + 4) << 32;
}

struct store_seg *store__seg_find(struct store *s, uint64_t seq);
struct store_seg *store__seg_push(struct store *s, uint64_t seq, int fd, uint64_t size);
void store__seg_name(char *out, size_t cap, uint64_t seq);
void store__seg_header(uint8_t out[STORE_SEG_HDR], uint64_t seq);
/* Starts segment last+1 (seq 1 in an empty store) as the active one, its
 * header queued as the first bytes of a fresh fill batch. 0 or -errno. */
int store__create_segment(struct store *s);
/* Replays with no callback, for an owner that appends without replaying. */
int store__implicit_replay(struct store *s);
/* Makes bytes [off, off + n) of the file readable; NULL on a read error.
 * The caller has checked that they lie inside the file. */
const uint8_t *store__reader_get(struct store_reader *r, uint64_t off, size_t n);
/* Whether a valid record (len fits, type set, checksum matches) starts at
 * off of a file of size bytes: 1 (its len field in *len), 0 (why says
 * why), -1 on a read error. */
int store__rec_at(struct store_reader *r, uint64_t off, uint64_t size, uint32_t maxlen,
                  uint32_t *len, const char **why);
/* The first offset at or after from where a valid record starts: 1 with
 * it in *at, 0 when there is none, -1 on a read error. */
int store__resync(struct store_reader *r, uint64_t from, uint64_t size, uint32_t maxlen,
                  uint64_t *at);
/* Whether the invalid record at off could be a torn write (1) or must be
 * damage (0); -1 on a read error. See store/replay.c. */
int store__looks_torn(struct store_reader *r, uint64_t off, uint64_t size, uint32_t maxlen);
/* 1 when bytes [off, end) of fd are all zero, 0 when not, -1 on error. */
int store__zero_tail(int fd, uint64_t off, uint64_t end);
/* 1 when name is <16 hex digits>.seg, with its seq in *seq. */
int store__parse_seg_name(const char *name, uint64_t *seq);
/* Reads MANIFEST in dirfd: 1 with the range, 0 when absent, -EINVAL when
 * unreadable, another -errno on an I/O error. */
int store__manifest_read(int dirfd, uint64_t *first, uint64_t *last);
/* Replaces MANIFEST atomically (temporary file, fsync, rename, directory
 * fsync). 0 or -errno. */
int store__manifest_write(int dirfd, uint64_t first, uint64_t last);
/* Records s->new_seq as the last segment (sync thread, after the segment
 * and the directory were synced). 0 or -errno. */
int store__manifest_roll(struct store *s);
/* Starts the sync thread (signals blocked in it). 0 or -errno. */
int store__sync_start(struct store *s);
/* The final sync: stops the sync thread once it has written what was
 * handed off (or, when none runs, writes and syncs it here), retries a
 * failed write once more and cuts the active segment at its last record.
 * An error is left in thr_err. Loop thread. */
void store__sync_stop(struct store *s);
/* Frees everything (files closed, lock released); the thread is stopped. */
void store__free(struct store *s);

#endif
