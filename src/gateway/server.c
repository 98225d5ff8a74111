/* Lifetime of struct gw_server (see server.h). */
#include "gateway/server.h"

#include <stdio.h>
#include <stdlib.h>

static atomic_size_t next_slot;

struct gw_server *gw_server_new(const char *service, const struct net_addr *addr, int weight)
{
    struct gw_server *s = xcalloc(1, sizeof *s);
    s->service = xstrdup(service);
    s->addr = *addr;
    net_addr_str(addr, s->addr_str, sizeof s->addr_str);
    s->weight = weight > 0 ? weight : 1;
    s->slot = atomic_fetch_add(&next_slot, 1);
    atomic_init(&s->refcnt, 1);
    atomic_init(&s->health, GW_UP);
    return s;
}

void gw_server_unref(struct gw_server *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    free(s->service);
    free(s);
}
