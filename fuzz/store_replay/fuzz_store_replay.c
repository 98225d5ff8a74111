/* libFuzzer target for the broker store's recovery (src/broker/store*.c).
 * The input becomes segment 1 of a fresh store directory; byte 0 chooses
 * helpers that let the fuzzer get past the outer checks: bit 0 writes a
 * correct segment header in front, bit 1 recomputes every record's
 * checksum (so record contents, lengths and types are what get fuzzed).
 * Besides memory safety it checks the contract: replay either fails with a
 * message or succeeds; after success every replayed record reads back
 * alike, an append works and a second replay sees exactly one more
 * record. After a failure, store_check must find the damage, and after
 * its repair the store must replay (with no more records than a check
 * counted as verifying) and take an append. */
#include "broker/store/store_int.h"
#include "core/crc32c.h"
#include "core/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXPOS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    int n;
    struct store_pos pos[MAXPOS];
    uint32_t len[MAXPOS];
};

static int count(void *ud, uint8_t type, const void *payload, uint32_t len, struct store_pos pos)
{
    struct seen *s = ud;
    if (type == 0)
        abort();
    if (s->n < MAXPOS) {
        s->pos[s->n] = pos;
        s->len[s->n] = len;
    }
    s->n++;
    return 0;
}

/* Recomputes each record's checksum in place while the lengths fit. */
static void fix_crcs(uint8_t *b, size_t n)
{
    size_t off = STORE_SEG_HDR;
    while (off + STORE_REC_HDR <= n) {
        uint32_t len = store__get32(b + off);
        if (len == 0 || len > n - off - 8)
            break;
        store__put32(b + off + 4, crc32c(0, b + off + 8, len));
        off += 8 + (size_t)len;
    }
}

static char work[64];

static void work_remove(void)
{
    rmdir(work);
}

static const char *workdir(void)
{
    if (!work[0]) {
        strcpy(work, "/tmp/fgfuzz-store.XXXXXX");
        if (!mkdtemp(work))
            abort();
        atexit(work_remove);
        log_level = LOG_ERROR;
    }
    return work;
}

/* Removes every file the run left (the input segment, any it rolled to,
 * MANIFEST, and a repair's damaged-* directory). */
static void clean(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        abort();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            continue;
        char sub[600];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        clean(sub);
        unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* store_check into a throwaway stream: its result. */
static int check(const char *dir, bool repair)
{
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        abort();
    struct store_opts o = { .dir = dir, .max_record_bytes = 1 << 16, .segment_bytes = 1 << 16 };
    int rc = store_check(&o, repair, f);
    fclose(f);
    return rc;
}

static struct store *open_store(const char *dir)
{
    struct store_opts o = { .dir = dir, .max_record_bytes = 1 << 16, .segment_bytes = 1 << 16 };
    char err[256];
    struct store *s = store_open(&o, err, sizeof err);
    if (!s)
        abort(); /* one segment, unlocked directory: opening cannot fail */
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20))
        return 0;
    const char *dir = workdir();
    char path[128];
    snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
    size_t n = size - 1 + ((data[0] & 1) ? STORE_SEG_HDR : 0);
    uint8_t *img = malloc(n ? n : 1);
    size_t at = 0;
    if (data[0] & 1) {
        store__seg_header(img, 1);
        at = STORE_SEG_HDR;
    }
    memcpy(img + at, data + 1, size - 1);
    if (data[0] & 2)
        fix_crcs(img, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, img, n) != (ssize_t)n)
        abort();
    close(fd);
    free(img);

    struct store *s = open_store(dir);
    struct seen *a = calloc(1, sizeof *a);
    char err[256];
    int rc = store_replay(s, count, a, err, sizeof err);
    if (rc == 0) {
        uint8_t *buf = malloc(1 << 16);
        for (int i = 0; i < a->n && i < MAXPOS; i++)
            if (store_read(s, a->pos[i], buf, 1 << 16) != (ssize_t)a->len[i])
                abort();
        struct store_pos p = store_append(s, 7, "fuzz", 4);
        if (p.seg == 0 || store_read(s, p, buf, 4) != 4 || memcmp(buf, "fuzz", 4) != 0)
            abort();
        free(buf);
    } else if (rc != -1 || !err[0]) {
        abort();
    }
    store_close(s);
    if (rc == 0) {
        s = open_store(dir);
        struct seen *b = calloc(1, sizeof *b);
        if (store_replay(s, count, b, err, sizeof err) != 0 || b->n != a->n + 1)
            abort();
        store_close(s);
        free(b);
    } else {
        if (check(dir, false) != 1 || check(dir, true) != 0)
            abort();
        s = open_store(dir);
        struct seen *b = calloc(1, sizeof *b);
        if (store_replay(s, count, b, err, sizeof err) != 0 ||
            store_append(s, 7, "fuzz", 4).seg == 0)
            abort();
        store_close(s);
        free(b);
    }
    free(a);
    clean(dir);
    return 0;
}
