/* Implementation of httpc.h: non-blocking socket driven by poll(2) so that
 * every step honours the one deadline. */
#include "core/httpc.h"
#include "core/buf.h"
#include "core/ev.h"
#include "core/http1.h"
#include "core/net.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int httpc_split_url(const char *url, char **hostport, char **path, char **err)
{
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://")) {
        *err = xasprintf("'%s': only http:// URLs are supported", url);
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0) {
        *err = xasprintf("'%s': no host", url);
        return -1;
    }
    *hostport = xstrndup(p, hl);
    *path = xstrdup(slash ? slash : "/");
    return 0;
}

static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = ev_clock_ns() / 1000000;
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        struct pollfd pfd = {fd, events, 0};
        int n = poll(&pfd, 1, (int)(deadline_ms - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int httpc_request(const char *hostport, const char *method, const char *path, const char *body,
                  int timeout_ms, int *status, char **body_out, char **err)
{
    return httpc_request_h(hostport, method, path, NULL, body, timeout_ms, status, body_out, err);
}

/* The request head (and body) into out: Connection: close, so the
 * response ends at EOF. */
static void build_request(struct buf *out, const char *hostport, const char *method, const char *path,
                          const char *headers, const char *body)
{
    size_t blen = body ? strlen(body) : 0;
    buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: floodgate\r\nConnection: close\r\n", method,
               path, hostport);
    if (body)
        buf_printf(out, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    if (headers)
        buf_append_str(out, headers);
    buf_append(out, "\r\n", 2);
    if (body)
        buf_append(out, body, blen);
}

/* Writes all of out by the deadline. Returns 0 or -errno. */
static int send_all(int fd, struct buf *out, uint64_t deadline)
{
    while (buf_len(out)) {
        ssize_t n = write(fd, buf_rptr(out), buf_len(out));
        if (n > 0) {
            buf_consume(out, (size_t)n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc != 0)
                return rc;
        } else {
            return -errno;
        }
    }
    return 0;
}

/* Reads to EOF into in by the deadline, bounded. Returns 0, -errno, or 1
 * when the response is over HTTPC_MAX_RESPONSE bytes. */
static int read_all(int fd, struct buf *in, uint64_t deadline)
{
    for (;;) {
        if (buf_len(in) > HTTPC_MAX_RESPONSE)
            return 1;
        char *p = buf_reserve(in, 4096);
        ssize_t n = read(fd, p, 4096);
        if (n > 0) {
            buf_commit(in, (size_t)n);
        } else if (n == 0) {
            return 0;
        } else if (errno == EAGAIN || errno == EINTR) {
            int rc = wait_fd(fd, POLLIN, deadline);
            if (rc != 0)
                return rc;
        } else {
            return -errno;
        }
    }
}

/* The status and (when body_out is not NULL) the body of the response in
 * in. Returns 0 or -1 with *err set. */
static int parse_reply(const struct buf *in, const char *hostport, int *status, char **body_out, char **err)
{
    struct http_header hdrs[64];
    struct http_response resp;
    int hl = http_parse_response(buf_rptr(in), buf_len(in), &resp, hdrs, 64, 65536);
    if (hl < 0) {
        *err = xasprintf("%s: malformed response", hostport);
        return -1;
    }
    *status = resp.status;
    if (body_out) {
        size_t n = buf_len(in) - (size_t)hl;
        if (resp.flags & HTTP_F_HAS_CL && (uint64_t)resp.content_length < n)
            n = (size_t)resp.content_length;
        *body_out = xstrndup(buf_rptr(in) + hl, n);
    }
    return 0;
}

int httpc_request_h(const char *hostport, const char *method, const char *path, const char *headers,
                    const char *body, int timeout_ms, int *status, char **body_out, char **err)
{
    struct net_addr a;
    if (net_parse_addr(hostport, &a, err) != 0)
        return -1;
    uint64_t deadline = ev_clock_ns() / 1000000 + (uint64_t)timeout_ms;
    bool inprog;
    int fd = net_connect(&a, NULL, &inprog);
    if (fd < 0) {
        *err = xasprintf("connect %s: %s", hostport, strerror(-fd));
        return -1;
    }
    int rc, ret = -1;
    struct buf out, in;
    buf_init(&out);
    buf_init(&in);
    if (inprog && ((rc = wait_fd(fd, POLLOUT, deadline)) != 0 || (rc = net_connect_result(fd)) != 0)) {
        *err = xasprintf("connect %s: %s", hostport, strerror(-rc));
        goto out;
    }
    build_request(&out, hostport, method, path, headers, body);
    if ((rc = send_all(fd, &out, deadline)) == 0)
        rc = read_all(fd, &in, deadline);
    if (rc == 1)
        *err = xasprintf("%s: response over %u bytes", hostport, HTTPC_MAX_RESPONSE);
    else if (rc != 0)
        *err = xasprintf("%s %s%s: %s", method, hostport, path, strerror(-rc));
    else
        ret = parse_reply(&in, hostport, status, body_out, err);
out:
    close(fd);
    buf_free(&out);
    buf_free(&in);
    return ret;
}
