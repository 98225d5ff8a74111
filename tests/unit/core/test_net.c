/* Unit tests for core/net: net_listen_shared() lets the process's own
 * listeners share an address and refuses one that any other socket holds,
 * SO_REUSEPORT or not. */
#include <criterion/criterion.h>
#include <errno.h>
#include <unistd.h>

#include "core/net.h"

static struct net_addr loopback0(void)
{
    struct net_addr a;
    char *err = NULL;
    cr_assert_eq(net_parse_addr("127.0.0.1:0", &a, &err), 0);
    return a;
}

Test(net_listen_shared, own_sockets_share_port_zero_is_resolved)
{
    struct net_addr a = loopback0();
    int fds[3];
    cr_assert_eq(net_listen_shared(&a, 3, 16, fds), 0);
    int port = net_addr_port(&a);
    cr_assert_neq(port, 0);
    for (int i = 0; i < 3; i++) {
        struct net_addr b;
        cr_assert_eq(net_local_addr(fds[i], &b), 0);
        cr_assert_eq(net_addr_port(&b), port);
        close(fds[i]);
    }
}

Test(net_listen_shared, refuses_address_held_by_another_group)
{
    struct net_addr a = loopback0();
    int first[2], second[2];
    cr_assert_eq(net_listen_shared(&a, 2, 16, first), 0);
    /* A second group is what another process would open. */
    cr_assert_eq(net_listen_shared(&a, 2, 16, second), -EADDRINUSE);
    close(first[0]);
    close(first[1]);
}

Test(net_listen_shared, refuses_address_held_with_reuseport)
{
    struct net_addr a = loopback0();
    int fd = net_listen(&a, true, 16);
    cr_assert_geq(fd, 0);
    cr_assert_eq(net_local_addr(fd, &a), 0);
    int fds[1];
    cr_assert_eq(net_listen_shared(&a, 1, 16, fds), -EADDRINUSE);
    close(fd);
}

Test(net_listen_shared, refuses_address_held_without_reuseport)
{
    struct net_addr a = loopback0();
    int fd = net_listen(&a, false, 16);
    cr_assert_geq(fd, 0);
    cr_assert_eq(net_local_addr(fd, &a), 0);
    int fds[2];
    cr_assert_eq(net_listen_shared(&a, 2, 16, fds), -EADDRINUSE);
    close(fd);
}

/* The kernel spreads connections over the group (by the 4-tuple hash):
 * with 64 connections, both sockets get some unless the group was never
 * formed (odds of 2^-63 otherwise). */
Test(net_listen_shared, group_shares_connections)
{
    struct net_addr a = loopback0();
    int fds[2], got[2] = {0, 0}, cs[64];
    cr_assert_eq(net_listen_shared(&a, 2, 128, fds), 0);
    for (int i = 0; i < 64; i++) {
        bool in_progress;
        cs[i] = net_connect(&a, NULL, &in_progress);
        cr_assert_geq(cs[i], 0);
    }
    for (int tries = 0; tries < 30000 && got[0] + got[1] < 64; tries++) { /* generous: a busy machine */
        for (int k = 0; k < 2; k++) {
            int fd = net_accept(fds[k], NULL);
            if (fd >= 0) {
                got[k]++;
                close(fd);
            }
        }
        if (got[0] + got[1] < 64)
            usleep(1000);
    }
    cr_assert_eq(got[0] + got[1], 64);
    cr_assert(got[0] > 0 && got[1] > 0, "one socket took all: %d/%d", got[0], got[1]);
    for (int i = 0; i < 64; i++)
        close(cs[i]);
    close(fds[0]);
    close(fds[1]);
}
