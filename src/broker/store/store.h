/* The broker's store: an append-only log split into segment files, with
 * group-commit fsync and recovery. The store knows nothing of queues: it
 * keeps typed, checksummed records (the queue engine defines the types and
 * payloads) and gives each one a position.
 *
 * On disk (little-endian), in <dir>/<seq:016x>.seg files:
 *   segment header: magic "FGLOG001" (8 bytes), u64 seq
 *   record:         u32 len (of type+payload), u32 crc32c(type+payload),
 *                   u8 type, payload[len-1]
 * A record is valid only when its length fits and its checksum matches.
 * Zeros up to the end of a file end its records: the store writes zeros
 * ahead of the log, so that records overwrite allocated blocks and
 * fdatasync need not commit a file-size change; a segment is cut at its
 * last record when sealed and on close.
 * Recovery reads segments in order. An invalid record at the end of the
 * LAST segment, followed by nothing valid and looking like a write that
 * did not reach the disk (the file ends inside it, or a sector of it reads
 * as zeros), is a torn write: the file is truncated there and appending
 * goes on. Anything else is corruption: an invalid record followed by a
 * valid one, a complete record failing its checksum, damage in an earlier
 * (sealed) segment, a segment of MANIFEST's range missing. store_open() or
 * store_replay() then fails with a message naming the file, the offset and
 * what cutting there would lose; store_check() reports and repairs.
 *
 * Durability: store_append() copies the record into the active segment's
 * pending buffer and returns at once. store_commit() asks for a callback
 * once everything appended so far is on disk. The owner calls
 * store_flush() once per event-loop iteration (a before-poll hook); it
 * hands the pending bytes of the whole iteration to the sync thread, which
 * writes them and fdatasyncs once for all of them (group commit), then
 * wakes the loop, which runs the callbacks in append order. Policies:
 *   STORE_FSYNC_ALWAYS   callbacks run after the data is fdatasync'ed
 *                        (default; nothing acknowledged is lost on a crash
 *                        of the machine);
 *   STORE_FSYNC_BATCH    same, but the sync thread waits up to batch_us
 *                        for more appends before syncing (bigger groups;
 *                        it stops waiting once the group holds as many
 *                        records as were active in the previous one);
 *   STORE_FSYNC_INTERVAL callbacks run once written (survives kill -9 of
 *                        the process); fdatasync every interval_ms.
 *
 * Compaction: the engine tells the store which records stay live
 * (store_retain/store_release account live bytes per segment). The oldest
 * sealed segment whose live bytes fall under a fraction of its size is a
 * compaction candidate: the engine re-appends the still-live state it holds
 * from it (fresh records in the active segment) and calls
 * store_drop_oldest(). Only the oldest segment is ever removed, so a record
 * in a removed segment can only refer to state in it or before it.
 *
 * Thread context: everything but the sync thread's work runs on the owner's
 * loop thread. */
#ifndef FG_BROKER_STORE_H
#define FG_BROKER_STORE_H

#include "core/common.h"

#include <stdio.h>

struct ev_loop;
struct store;

enum store_fsync { STORE_FSYNC_ALWAYS = 0, STORE_FSYNC_BATCH, STORE_FSYNC_INTERVAL };

struct store_opts {
    const char *dir;            /* created if missing */
    enum store_fsync fsync;
    uint32_t batch_us;          /* BATCH: wait for more appends, default 200 */
    uint32_t interval_ms;       /* INTERVAL: fdatasync period, default 1000 */
    uint64_t segment_bytes;     /* roll to a new segment past this, default 64 MiB */
    uint32_t max_record_bytes;  /* larger payloads are refused, default 2 MiB */
    uint64_t disk_free_limit;   /* free bytes under which the disk is low (0: never) */
};

/* A record's place: segment sequence number and byte offset of the record
 * (its header) in that segment. */
struct store_pos {
    uint64_t seg;
    uint64_t off;
};

/* Opens (creating if needed) the store in opts->dir; takes an exclusive
 * lock on the directory (a second broker on it fails). No I/O threads start
 * until store_start(). NULL with a message in err on failure. */
struct store *store_open(const struct store_opts *opts, char *err, size_t errlen);

/* Calls fn for every valid record, oldest first, truncating a torn tail.
 * fn returns 0 to go on, non-zero to stop (store_replay returns it).
 * Returns 0, fn's non-zero result, or -1 with a message in err. Call once,
 * after store_open() and before any append. */
typedef int (*store_replay_fn)(void *ud, uint8_t type, const void *payload, uint32_t len,
                               struct store_pos pos);
int store_replay(struct store *s, store_replay_fn fn, void *ud, char *err, size_t errlen);

/* Starts the sync thread, waking loop (through a store-owned eventfd
 * watcher) when a group is durable. */
int store_start(struct store *s, struct ev_loop *loop);

/* Appends a record (type 1..255, payload of len bytes). Returns its
 * position; pos.seg == 0 means the record was refused (too large) or the
 * store failed (disk full, I/O error: see store_error()). */
struct store_pos store_append(struct store *s, uint8_t type, const void *payload, uint32_t len);

/* cb(ud, 0) once every record appended before this call is durable under
 * the policy; cb(ud, -errno) if writing failed. Callbacks run on the loop
 * thread, in the order store_commit() was called. */
typedef void (*store_commit_fn)(void *ud, int err);
void store_commit(struct store *s, store_commit_fn cb, void *ud);

/* Hands this iteration's appends to the sync thread (call before poll). */
void store_flush(struct store *s);

/* Reads the payload of the record at pos into buf (up to cap bytes);
 * returns the payload length, or -1 (bad position, checksum mismatch, I/O
 * error). Works for records still pending in memory too. A payload longer
 * than cap is still checked whole; its first cap bytes are copied and the
 * full length returned. */
ssize_t store_read(struct store *s, struct store_pos pos, void *buf, size_t cap);

/* Live-byte accounting for compaction: a record counts as live from
 * store_retain() until store_release(). len is the payload length given to
 * store_append (the store adds its record header); positions in segments
 * already dropped are ignored. */
void store_retain(struct store *s, struct store_pos pos, uint32_t len);
void store_release(struct store *s, struct store_pos pos, uint32_t len);

/* The oldest sealed segment if its live bytes are under ratio of its size
 * (0 when there is none). */
uint64_t store_compact_candidate(const struct store *s, double ratio);
/* Removes the oldest segment (which must be seg). Records in it must have
 * been re-appended (if still wanted) and made durable first. */
int store_drop_oldest(struct store *s, uint64_t seg);

struct store_stats {
    uint64_t segments, disk_bytes, live_bytes;
    uint64_t appends, commits, syncs, sync_ns_total;
    uint64_t pending_bytes;
    uint64_t disk_free;        /* free bytes at the last check (unprivileged) */
    uint64_t disk_free_limit;  /* opts.disk_free_limit */
    bool disk_low;             /* disk_free < disk_free_limit at the last check */
    uint64_t disk_alarms;      /* times disk_low was set */
    uint64_t write_errors;     /* failed writes or syncs seen by the loop */
    uint64_t recoveries;       /* a write succeeded again after one failed */
    uint64_t rolls_deferred;   /* segment rolls put off (disk low, create failed) */
};
void store_get_stats(const struct store *s, struct store_stats *st);
/* The current write error (-errno), 0 when healthy. Not sticky: the sync
 * thread rewrites what failed every STORE_RETRY_MS, and the error clears
 * once that succeeds. Appends are refused while it is set. */
int store_error(const struct store *s);

/* Free-space watermark. store_start() checks the data directory's file
 * system (statvfs) every STORE_DISK_CHECK_MS and before each segment roll;
 * below opts.disk_free_limit the disk is "low": the store logs it once,
 * keeps appending into the active segment rather than roll (its zeros
 * written ahead are space already allocated, kept for the records that
 * let consumers drain: receives, deletes), and the owner should refuse
 * writes that grow the log (new messages). It clears, with a log line,
 * at the first check that finds the limit free again. */
#define STORE_DISK_CHECK_MS 200
#define STORE_RETRY_MS 100
bool store_disk_low(const struct store *s);
/* Checks free space now (the timer does it too). Returns 0 or -errno. */
int store_disk_check(struct store *s);
/* Checks the log in opts->dir offline, without changing it, and reports
 * to out: every segment of MANIFEST's range present, every record
 * verifying, damaged ranges found by resynchronising on the next record
 * that verifies. With repair, keeps every record that verifies: damaged
 * segments are rewritten without the damaged ranges (the originals are
 * hard-linked into <dir>/damaged-<UTC time>/), a missing segment is
 * replaced by an empty one (or the range shrinks at either end), MANIFEST
 * is rewritten; what was dropped is reported. Takes the directory lock.
 * Returns 0 when the log starts as it is (or was repaired), 1 when the
 * check found damage a start refuses, -1 on an error (reported). */
int store_check(const struct store_opts *opts, bool repair, FILE *out);

/* Stops the sync thread after a final flush+sync, then closes the files.
 * Commit callbacks still waiting run before it returns (0 when the final
 * sync covered them, -errno otherwise). Call it before freeing the loop
 * given to store_start(). */
void store_close(struct store *s);

#endif
