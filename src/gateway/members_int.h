/* Internals of the admin-made membership changes, shared by members.c
 * (the change log, its replay into snapshots, the admin API's changes)
 * and members_state.c (the state file that holds the log). Included by
 * those two and by tests/unit/gateway/test_members_state.c only. */
#ifndef GW_MEMBERS_INT_H
#define GW_MEMBERS_INT_H

#include "gateway/gw.h"

/* One recorded change. */
enum gw_member_op_kind {
    OP_ADD_SERVER, OP_REMOVE_SERVER, OP_DRAIN, OP_UNDRAIN, OP_ADD_SERVICE, OP_REMOVE_SERVICE,
    OP_CIDR,       /* global allow/deny list change; svc holds the CIDR text */
    OP_ROUTE_CIDR, /* a route's allow/deny list change; svc holds the CIDR text */
};

struct gw_member_op {
    enum gw_member_op_kind kind;
    char *svc;
    struct net_addr addr;   /* server ops */
    int weight;
    char *balance;          /* OP_ADD_SERVICE */
    char *prefix;           /* OP_ADD_SERVICE: optional route */
    bool strip;
    bool deny, add;         /* OP_CIDR, OP_ROUTE_CIDR: which list, add or remove */
    char *route;            /* OP_ROUTE_CIDR: route name or prefix */
    char *host;             /* OP_ROUTE_CIDR: the route's host, NULL: any */
    uint64_t ttl_ms;        /* OP_ADD_SERVER: a lease's TTL; 0: an operator's, never expires */
    uint64_t expires_ms;    /* a lease's end, on the monotonic clock */
    struct gw_member_op *next;
};

static inline bool gw__is_server_op(enum gw_member_op_kind k) { return k <= OP_UNDRAIN; }
void gw__member_op_free(struct gw_member_op *o);
/* Appends o to the log, dropping the earlier changes it makes irrelevant. */
void gw__members_append(struct gw_members *m, struct gw_member_op *o);
/* Replaces the state file (if any) with the log. Returns 0 or -1 with
 * *err. ctl_lock held (or the only thread). */
int gw__members_save(struct gw_members *m, char **err);

#endif
