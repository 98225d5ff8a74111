/* Command-line helpers (see cli.h). */
#include "core/cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

int cli_usage(int opt, const char *usage)
{
    if (opt == 'h') {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}

int cli_no_operands(const char *cmd, int argc, char **argv)
{
    if (optind < argc) {
        fprintf(stderr, "floodgate %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    return -1;
}

int cli_bad(const char *cmd, const char *flag, const char *val, const char *why)
{
    fprintf(stderr, "floodgate %s: bad %s '%s': %s\n", cmd, flag, val, why);
    return 2;
}

int cli_parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void cli_block_stop_signals(sigset_t *set, sigset_t *old)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, old);
    signal(SIGPIPE, SIG_IGN);
}
