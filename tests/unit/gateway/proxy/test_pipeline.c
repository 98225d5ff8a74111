/* Unit tests for the request pipeline's shape (proxy/pipeline.c): the
 * stages are listed in the order the architecture states, and the driver
 * runs a table from a given stage until a stage answers or waits, so a
 * waiting stage's event resumes exactly where it should. Stub stages
 * record their calls; no connection is involved. */
#include <criterion/criterion.h>

#include "gateway/proxy/pipeline.h"

#include <string.h>

Test(pipeline, stage_order)
{
    static const char *const want[] = {"route", "acl", "limit", "prio", "rewrite",
                                       "hold", "shed", "breaker", "balance", "send"};
    cr_assert_eq(ARRAY_SIZE(want), GW_NSTAGES);
    for (int i = 0; i < GW_NSTAGES; i++)
        cr_assert_str_eq(gw_pipeline_stage_name((enum gw_stage_id)i), want[i]);
    cr_assert_null(gw_pipeline_stage_name(GW_NSTAGES));
    cr_assert_eq(GW_ST_LIMIT, GW_ST_ROUTE + 2, "limits are per route: routing comes first");
    cr_assert(GW_ST_HOLD > GW_ST_REWRITE, "a request waits only once its head is consumed");
    cr_assert(GW_ST_SHED < GW_ST_BREAKER && GW_ST_BREAKER < GW_ST_BALANCE);
}

static char trace[16];
static size_t ntrace;
static int results[4];

static int step(int i)
{
    trace[ntrace++] = (char)('a' + i);
    return results[i];
}
static int s0(struct gw_req *r) { (void)r; return step(0); }
static int s1(struct gw_req *r) { (void)r; return step(1); }
static int s2(struct gw_req *r) { (void)r; return step(2); }
static int s3(struct gw_req *r) { (void)r; return step(3); }

static const struct gw_stage table[] = {{"a", s0}, {"b", s1}, {"c", s2}, {"d", s3}};

static void reset(int r0, int r1, int r2, int r3)
{
    memset(trace, 0, sizeof trace);
    ntrace = 0;
    results[0] = r0;
    results[1] = r1;
    results[2] = r2;
    results[3] = r3;
}

Test(pipeline, runs_every_stage_in_order)
{
    reset(GW_NEXT, GW_NEXT, GW_NEXT, GW_NEXT);
    cr_assert_eq(gw__pipeline_run(table, 4, NULL, 0), GW_NEXT);
    cr_assert_str_eq(trace, "abcd");
}

Test(pipeline, stops_where_a_stage_answers)
{
    reset(GW_NEXT, GW_ANSWERED, GW_NEXT, GW_NEXT);
    cr_assert_eq(gw__pipeline_run(table, 4, NULL, 0), GW_ANSWERED);
    cr_assert_str_eq(trace, "ab", "nothing runs after an answer");
}

Test(pipeline, wait_then_resume_from_the_next_stage)
{
    reset(GW_NEXT, GW_NEXT, GW_WAIT, GW_NEXT);
    cr_assert_eq(gw__pipeline_run(table, 4, NULL, 0), GW_WAIT);
    cr_assert_str_eq(trace, "abc");
    /* The event the stage waited for arrived: on from the stage after it. */
    results[2] = GW_NEXT;
    cr_assert_eq(gw__pipeline_run(table, 4, NULL, 3), GW_NEXT);
    cr_assert_str_eq(trace, "abcd", "earlier stages are not run again");
}

Test(pipeline, resume_at_a_waiting_stage_runs_it_again)
{
    /* The hold stage's shape: it runs again on resume and passes once
     * what it waited for is there. */
    reset(GW_NEXT, GW_WAIT, GW_NEXT, GW_WAIT);
    cr_assert_eq(gw__pipeline_run(table, 4, NULL, 0), GW_WAIT);
    results[1] = GW_NEXT;
    cr_assert_eq(gw__pipeline_run(table, 4, NULL, 1), GW_WAIT);
    cr_assert_str_eq(trace, "abbcd");
}
