/* Socket helpers: address parsing and formatting, non-blocking listen
 * (optionally SO_REUSEPORT), accept and connect. I/O calls return a
 * descriptor or 0 on success, -errno on failure (libuv); parsing functions
 * return -1 and fill *err. */
#ifndef FG_NET_H
#define FG_NET_H

#include "core/common.h"
#include <netinet/in.h>
#include <sys/socket.h>

struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "host:port", "[v6]:port" or ":port"/"port" (all addresses).
 * host is a numeric address or a name resolved once, synchronously.
 * Returns 0, or -1 with *err set (caller frees). */
int net_parse_addr(const char *s, struct net_addr *a, char **err);
/* "1.2.3.4:80" or "[::1]:80" into out (at least 64 bytes). */
void net_addr_str(const struct net_addr *a, char *out, size_t outlen);
/* Numeric host only, no port. */
void net_addr_host(const struct net_addr *a, char *out, size_t outlen);
int net_addr_port(const struct net_addr *a);
bool net_addr_equal(const struct net_addr *a, const struct net_addr *b);
/* 127.0.0.0/8, ::1 or a v4-mapped 127.x address. */
bool net_addr_is_loopback(const struct net_addr *a);

/* Non-blocking listening socket. Returns fd or -errno. */
int net_listen(const struct net_addr *a, bool reuseport, int backlog);
/* n non-blocking listeners on one address, for n threads of this process
 * (SO_REUSEPORT), into fds[0..n). Fails with -EADDRINUSE when any socket,
 * of this process or another, already holds the address: only the sockets
 * opened here share it. A port 0 in *a is replaced by the port the kernel
 * chose. Returns 0, or -errno with no descriptor left open. */
int net_listen_shared(struct net_addr *a, int n, int backlog, int *fds);
/* Non-blocking accept4; returns fd, -EAGAIN when none pending, or -errno. */
int net_accept(int lfd, struct net_addr *peer);
/* Starts a non-blocking connect; returns fd (connected or in progress) or
 * -errno. *in_progress is set when the caller must wait for writability. */
int net_connect(const struct net_addr *a, const struct net_addr *src, bool *in_progress);
/* After writability: 0 when the connect succeeded, else -errno. */
int net_connect_result(int fd);
void net_set_nodelay(int fd);
int net_local_addr(int fd, struct net_addr *a);

#endif
