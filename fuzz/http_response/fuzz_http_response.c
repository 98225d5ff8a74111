/* libFuzzer target for http_parse_response: memory safety, prefix
 * consistency, flag consistency, and the body that follows a complete head
 * run through the framing the head selects for a request method taken from
 * the data (chunked decoder included). */
#include "core/http1.h"

#include <stdlib.h>
#include <string.h>

#define MAXH 24
#define MAXB 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header h[MAXH], hp[MAXH];
    struct http_response r, rp;
    int n = http_parse_response((const char *)data, size, &r, h, MAXH, MAXB);
    size_t cut = size ? (data[size - 1] * 257u + size / 2) % size : 0;
    char *pre = malloc(cut ? cut : 1);
    memcpy(pre, data, cut);
    int p = http_parse_response(pre, cut, &rp, hp, MAXH, MAXB);
    free(pre);
    if (p != HTTP_INCOMPLETE && (p != n || (n >= 0 && rp.flags != r.flags)))
        abort();
    if (n < 0)
        return 0;
    if ((size_t)n > size || r.status < 100 || r.status > 999 || r.nheaders > MAXH ||
        (r.content_length >= 0) != !!(r.flags & HTTP_F_HAS_CL) ||
        ((r.flags & HTTP_F_HAS_TE) && (r.flags & HTTP_F_HAS_CL)))
        abort();
    enum http_method m = (enum http_method)((data[size - 1] + size) % (HTTP_M_PATCH + 1));
    if (http_response_body(&r, m) == HTTP_BODY_CHUNKED) {
        struct http_chunked c;
        http_chunked_init(&c, 1024);
        ssize_t k = http_chunked_feed(&c, (const char *)data + n, size - (size_t)n, NULL, NULL);
        if (k > (ssize_t)(size - (size_t)n))
            abort();
    }
    return 0;
}
