/* libFuzzer target for the chunked decoder. The input is decoded whole,
 * in pieces of a size taken from the data (each an exact-size copy, so
 * over-reads are caught), and byte by byte: the three must agree on the
 * bytes consumed, the end of the body and the payload (an FNV-1a digest).
 * The byte-by-byte run feeds views of the input, not copies, to keep the
 * run fast. */
#include "core/http1.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
    uint64_t h;
    size_t n;
};

static void eat(void *ud, const char *p, size_t n)
{
    struct digest *d = ud;
    if (n == 0)
        abort();
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ (uint8_t)p[i]) * UINT64_C(0x100000001b3);
    d->n += n;
}

static ssize_t run(const uint8_t *data, size_t size, size_t step, bool copy, struct digest *d,
                   bool *done)
{
    struct http_chunked c;
    http_chunked_init(&c, 256);
    *d = (struct digest){UINT64_C(0xcbf29ce484222325), 0};
    ssize_t total = 0;
    for (size_t off = 0; off < size && total >= 0; off += step) {
        size_t k = FG_MIN(step, size - off);
        char *piece = copy ? memcpy(malloc(k), data + off, k) : (char *)data + off;
        ssize_t r = http_chunked_feed(&c, piece, k, eat, d);
        if (copy)
            free(piece);
        if (r > (ssize_t)k || (r >= 0 && (size_t)r < k && !c.done))
            abort();
        total = r < 0 ? -1 : total + r;
    }
    *done = c.done;
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct digest a, b, c;
    bool da, db, dc;
    ssize_t whole = run(data, size, size ? size : 1, true, &a, &da);
    ssize_t split = run(data, size, size ? 1 + (data[0] * 7u + size / 3) % size : 1, true, &b, &db);
    ssize_t bytes = run(data, size, 1, false, &c, &dc);
    if (whole != split || whole != bytes || da != db || da != dc || a.h != b.h || a.h != c.h ||
        a.n != b.n || a.n != c.n || (whole >= 0 && a.n > (size_t)whole))
        abort();
    return 0;
}
