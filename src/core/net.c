/* Implementation of net.h. */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int net_parse_addr(const char *s, struct net_addr *a, char **err)
{
    char host[256];
    const char *port;
    memset(a, 0, sizeof *a);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) {
            *err = xasprintf("bad address '%s': expected [v6addr]:port", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            host[0] = '\0';
            port = s;
        } else {
            if ((size_t)(colon - s) >= sizeof host) {
                *err = xasprintf("bad address '%s': host too long", s);
                return -1;
            }
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            port = colon + 1;
        }
    }
    char *endp;
    long p = strtol(port, &endp, 10);
    if (!*port || *endp || p < 0 || p > 65535) {
        *err = xasprintf("bad address '%s': port must be 0..65535", s);
        return -1;
    }
    if (!host[0] || strcmp(host, "*") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        a->len = sizeof *in;
        return 0;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        *err = xasprintf("bad address '%s': %s", s, gai_strerror(rc));
        return -1;
    }
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->len = res->ai_addrlen;
    freeaddrinfo(res);
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)p);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)p);
    return 0;
}

void net_addr_host(const struct net_addr *a, char *out, size_t outlen)
{
    if (a->ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, out, (socklen_t)outlen);
    else if (a->ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, out, (socklen_t)outlen);
    else
        snprintf(out, outlen, "unknown");
}

int net_addr_port(const struct net_addr *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return 0;
}

void net_addr_str(const struct net_addr *a, char *out, size_t outlen)
{
    char h[INET6_ADDRSTRLEN];
    net_addr_host(a, h, sizeof h);
    if (a->ss.ss_family == AF_INET6)
        snprintf(out, outlen, "[%s]:%d", h, net_addr_port(a));
    else
        snprintf(out, outlen, "%s:%d", h, net_addr_port(a));
}

bool net_addr_equal(const struct net_addr *a, const struct net_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family || net_addr_port(a) != net_addr_port(b))
        return false;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                  &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16) == 0;
}

bool net_addr_is_loopback(const struct net_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    return a->ss.ss_family == AF_INET6 &&
           (IN6_IS_ADDR_LOOPBACK(v6) || (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127));
}

/* How listen_one() treats SO_REUSEPORT. */
enum reuse {
    REUSE_NONE,  /* never: the address is this socket's alone */
    REUSE_JOIN,  /* set before bind: joins a group that allows it */
    REUSE_LEAD,  /* set after bind: binds only where nothing listens, then
                  * starts a group that the process's next sockets join */
};

/* One non-blocking listening socket on *a: fd or -errno. REUSE_LEAD also
 * writes the port the kernel chose into *a when it was 0.
 *
 * REUSE_LEAD is net_listen_shared()'s exclusivity check: a bind without
 * SO_REUSEPORT is refused (EADDRINUSE) when any socket holds the address,
 * with or without the option, and it is atomic. The option set after the
 * bind and before listen() makes the kernel start a reuseport group with
 * this socket, while another process's own leading bind still fails. */
static int listen_one(struct net_addr *a, enum reuse reuse, int backlog)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse == REUSE_JOIN && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0)
        goto fail;
    if (reuse == REUSE_LEAD && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    /* Port 0: every other socket of the group takes the port this one got. */
    if (reuse == REUSE_LEAD && net_addr_port(a) == 0 && net_local_addr(fd, a) != 0)
        goto fail;
    if (listen(fd, backlog) != 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int net_listen(const struct net_addr *a, bool reuseport, int backlog)
{
    struct net_addr copy = *a; /* never written: REUSE_LEAD alone learns ports */
    return listen_one(&copy, reuseport ? REUSE_JOIN : REUSE_NONE, backlog);
}

int net_listen_shared(struct net_addr *a, int n, int backlog, int *fds)
{
    ASSERT(n > 0);
    for (int i = 0; i < n; i++) {
        int fd = listen_one(a, i == 0 ? REUSE_LEAD : REUSE_JOIN, backlog);
        if (fd < 0) {
            for (int j = 0; j < i; j++)
                close(fds[j]);
            return fd;
        }
        fds[i] = fd;
    }
    return 0;
}

int net_accept(int lfd, struct net_addr *peer)
{
    struct net_addr tmp;
    struct net_addr *p = peer ? peer : &tmp;
    p->len = sizeof p->ss;
    int fd = accept4(lfd, (struct sockaddr *)&p->ss, &p->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return fd;
}

int net_connect(const struct net_addr *a, const struct net_addr *src, bool *in_progress)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (src) {
        int one = 1;
        /* Lets many connections share a source address with distinct
         * ephemeral ports chosen at connect time. */
        setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)&src->ss, src->len) != 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    *in_progress = false;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            return -e;
        }
        *in_progress = true;
    }
    return fd;
}

int net_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    return -err;
}

void net_set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int net_local_addr(int fd, struct net_addr *a)
{
    a->len = sizeof a->ss;
    if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) != 0)
        return -errno;
    return 0;
}
