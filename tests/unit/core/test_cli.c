/* Unit tests for core/cli and core/rand: the exit statuses of the end of
 * a getopt switch and loop, the strict number parser's refusals, the stop
 * signals' mask, and the xorshift64* sequence. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>

#include "core/cli.h"
#include "core/rand.h"

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

Test(cli, usage_status_by_flag, .init = quiet)
{
    cr_assert_eq(cli_usage('h', "usage\n"), 0);
    cr_assert_eq(cli_usage('?', "usage\n"), 2);
    fflush(stdout);
    cr_assert_stdout_eq_str("usage\n");
}

Test(cli, operands_left_are_refused, .init = quiet)
{
    char *argv[] = {"x", "-q", "extra", NULL};
    optind = 2;
    cr_assert_eq(cli_no_operands("x", 3, argv), 2);
    optind = 3;
    cr_assert_eq(cli_no_operands("x", 3, argv), -1);
    cr_assert_eq(cli_bad("x", "--n", "v", "why"), 2);
}

Test(cli, parse_double)
{
    double d = -1;
    cr_assert_eq(cli_parse_double("0.25", 0, 1, &d), 0);
    cr_assert_eq(d, 0.25);
    const char *bad[] = {"", "x", "1x", "2", "-0.5", "nan", "inf", "1e999", " 0.5 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        d = -1;
        cr_assert_eq(cli_parse_double(bad[i], 0, 1, &d), -1, "'%s'", bad[i]);
        cr_assert_eq(d, -1, "'%s' wrote the result", bad[i]);
    }
}

Test(cli, stop_signals_blocked_and_old_mask_kept)
{
    sigset_t set, old, now;
    cli_block_stop_signals(&set, &old);
    cr_assert(sigismember(&set, SIGINT) && sigismember(&set, SIGTERM));
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    cr_assert(sigismember(&now, SIGINT) && sigismember(&now, SIGTERM));
    cr_assert(!sigismember(&old, SIGINT));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

Test(rand, xorshift64star_sequence)
{
    /* The first outputs of xorshift64* from state 1 (shift 12, 25, 27). */
    uint64_t s = 1;
    cr_assert_eq(fg_rand_next(&s), 0x47e4ce4b896cdd1dull);
    cr_assert_eq(s, 0x2000001ull);
    uint64_t a = 42, b = 42;
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(fg_rand_next(&a), fg_rand_next(&b));
    cr_assert_neq(a, 0);
}
