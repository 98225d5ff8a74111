/* The store's manifest: a small file, MANIFEST, naming the range of live
 * segments (first and last sequence numbers). Segment files alone cannot
 * show that the oldest or the newest one went missing; with the manifest,
 * store_open checks that every segment of the range exists.
 *
 * One line of text: "fglog-manifest 1 first=<hex16> last=<hex16>
 * crc=<hex8>\n", the crc a CRC-32C of everything before " crc=". It is
 * replaced atomically (a temporary file, fsync, rename, directory fsync):
 * by the sync thread once a new segment and the directory entry naming it
 * are durable, before any record in it is acknowledged (so "last" lags
 * the files by one segment at most, and only by a segment holding nothing
 * acknowledged), and by store_drop_oldest before it unlinks the oldest
 * segment (a crash in between leaves a file below "first", which
 * store_open removes). man_mu serialises the two writers. */
#include "broker/store/store_int.h"

#include "core/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_TMP STORE_MANIFEST ".tmp"
#define MANIFEST_MAX 128

static int format(char *out, size_t cap, uint64_t first, uint64_t last)
{
    int n = snprintf(out, cap, "fglog-manifest 1 first=%016" PRIx64 " last=%016" PRIx64, first, last);
    uint32_t crc = crc32c(0, out, (size_t)n);
    return n + snprintf(out + n, cap - (size_t)n, " crc=%08" PRIx32 "\n", crc);
}

int store__manifest_read(int dirfd, uint64_t *first, uint64_t *last)
{
    int fd = openat(dirfd, STORE_MANIFEST, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    char buf[MANIFEST_MAX + 1];
    ssize_t n = read(fd, buf, MANIFEST_MAX);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    uint64_t f, l;
    char want[MANIFEST_MAX];
    if (sscanf(buf, "fglog-manifest 1 first=%16" SCNx64 " last=%16" SCNx64, &f, &l) != 2 || !f ||
        l < f)
        return -EINVAL;
    format(want, sizeof want, f, l);
    if (strcmp(buf, want) != 0) /* the checksum, or anything else, differs */
        return -EINVAL;
    *first = f;
    *last = l;
    return 1;
}

int store__manifest_write(int dirfd, uint64_t first, uint64_t last)
{
    char buf[MANIFEST_MAX];
    int n = format(buf, sizeof buf, first, last);
    int fd = openat(dirfd, MANIFEST_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    ssize_t w = write(fd, buf, (size_t)n);
    if (w != n)
        rc = w < 0 ? -errno : -EIO;
    else if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && renameat(dirfd, MANIFEST_TMP, dirfd, STORE_MANIFEST) != 0)
        rc = -errno;
    if (!rc && fsync(dirfd) != 0)
        rc = -errno;
    return rc;
}

int store__manifest_roll(struct store *s)
{
    uint64_t seq = s->new_seq;
    pthread_mutex_lock(&s->man_mu);
    int rc = 0;
    if (seq > s->man_last) {
        rc = store__manifest_write(s->dirfd, s->man_first, seq);
        if (!rc)
            s->man_last = seq;
    }
    pthread_mutex_unlock(&s->man_mu);
    if (!rc) /* a failed write is retried with the round (store.c) */
        s->new_seq = 0;
    return rc;
}
