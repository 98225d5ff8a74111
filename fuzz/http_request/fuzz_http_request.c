/* libFuzzer target for http_parse_request. Besides memory safety it checks
 * the contract: a prefix (an exact-size copy, so over-reads are caught)
 * never gives a result the whole input contradicts, and a complete head
 * is self-contained and consistent with its flags. */
#include "core/http1.h"

#include <stdlib.h>
#include <string.h>

#define MAXH 24
#define MAXB 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header h[MAXH], hp[MAXH];
    struct http_request r, rp;
    int n = http_parse_request((const char *)data, size, &r, h, MAXH, MAXB);
    size_t cut = size ? (data[size - 1] * 257u + size / 2) % size : 0;
    char *pre = malloc(cut ? cut : 1);
    memcpy(pre, data, cut);
    int p = http_parse_request(pre, cut, &rp, hp, MAXH, MAXB);
    free(pre);
    if (p != HTTP_INCOMPLETE && (p != n || (n >= 0 && rp.flags != r.flags)))
        abort();
    if (n >= 0) {
        if ((size_t)n > size || r.nheaders > MAXH || r.minor > 1 || (r.minor == 1 && !r.host))
            abort();
        if ((r.content_length >= 0) != !!(r.flags & HTTP_F_HAS_CL) ||
            ((r.flags & HTTP_F_CHUNKED) && (r.flags & HTTP_F_HAS_CL)))
            abort();
        if (http_parse_request((const char *)data, (size_t)n, &rp, hp, MAXH, MAXB) != n)
            abort();
        http_request_body(&r);
        http_connection_has(h, r.nheaders, "close", 5);
        for (size_t i = 0; i < r.nheaders; i++)
            http_is_hop_by_hop(h[i].name, h[i].name_len);
    }
    return 0;
}
