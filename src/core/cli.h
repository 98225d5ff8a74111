/* Helpers shared by the commands (`floodgate broker`, `echo`, `flood`):
 * the end of a getopt switch and of its loop, a refused flag value, a
 * strict number, and the stop signals' mask. Messages go to stderr as "floodgate CMD:
 * ...", and the return values are the commands' own convention: -1 to go
 * on, or the exit status (0 after --help, 2 for a usage error). */
#ifndef FG_CLI_H
#define FG_CLI_H

#include <signal.h>

/* For the switch's 'h' and default cases: the usage on stdout and 0 for
 * -h, on stderr and 2 for a flag getopt refused (it said which). */
int cli_usage(int opt, const char *usage);

/* After the getopt loop of a command that takes no operands: -1 when none
 * is left, else 2 after "floodgate CMD: unexpected argument 'X'". */
int cli_no_operands(const char *cmd, int argc, char **argv);

/* Prints "floodgate CMD: bad FLAG 'VALUE': WHY" and returns 2. */
int cli_bad(const char *cmd, const char *flag, const char *val, const char *why);

/* All of s as a finite number (strtod syntax) in [min, max]: 0, or -1. */
int cli_parse_double(const char *s, double min, double max, double *out);

/* Blocks SIGINT and SIGTERM (put in *set) in the calling thread, so that
 * the threads it starts afterwards inherit the mask and the command waits
 * for them (sigwait, sigtimedwait) with no handler interrupting any loop;
 * ignores SIGPIPE. The previous mask goes to *old unless old is NULL. */
void cli_block_stop_signals(sigset_t *set, sigset_t *old);

#endif
