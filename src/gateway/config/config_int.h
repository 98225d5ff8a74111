/* Internals of the config loader shared between its files (config.c,
 * check.c). Included by those two only. */
#ifndef GW_CONFIG_INT_H
#define GW_CONFIG_INT_H

/* Balance algorithm names in enum gw_lb_algo order, NULL-terminated. */
extern const char *const gw__cfg_lb_names[];
#define GW__CFG_LB_CONSISTENT_HASH 4 /* index of "consistent_hash" */

#endif
