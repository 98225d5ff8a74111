/* The AWS query-form decoder (src/broker/aws/query.c) that the SQS and
 * SNS front ends share: splitting, percent-decoding, the limits, and the
 * refusal of a decoded NUL in a name or a value. */
#include <criterion/criterion.h>

#include "broker/aws/aws.h"

#include <string.h>

static enum aws_qerr split(struct aws_query *q, const char *s)
{
    aws_query_init(q, 4, 8, strlen(s));
    return aws_query_split(q, s, strlen(s));
}

Test(aws_query, decodes_in_order)
{
    struct aws_query q;
    cr_assert_eq(split(&q, "Action=Send&&b=x+y%2Bz&c&d="), AWS_Q_OK);
    cr_assert_eq(q.n, 4);
    cr_expect_str_eq(q.p[0].k, "Action");
    cr_expect_str_eq(q.p[0].v, "Send");
    cr_expect_str_eq(q.p[1].v, "x y+z");
    cr_expect_eq(q.p[1].vn, 5);
    cr_expect_str_eq(q.p[2].k, "c");
    cr_expect_str_eq(q.p[2].v, "");
    cr_expect_str_eq(q.p[3].k, "d");
    cr_expect_eq(q.p[3].vn, 0);
    aws_query_free(&q);
}

Test(aws_query, appends_a_second_string)
{
    struct aws_query q;
    aws_query_init(&q, 4, 8, 7);
    cr_assert_eq(aws_query_split(&q, "a=1", 3), AWS_Q_OK);
    cr_assert_eq(aws_query_split(&q, NULL, 0), AWS_Q_OK);
    cr_assert_eq(aws_query_split(&q, "a=2", 3), AWS_Q_OK);
    cr_assert_eq(q.n, 2, "duplicates are the caller's to judge");
    cr_expect_str_eq(q.p[1].v, "2");
    aws_query_free(&q);
}

Test(aws_query, refuses_what_is_hostile)
{
    struct {
        const char *s;
        enum aws_qerr rc;
    } cases[] = {
        { "a=%G1", AWS_Q_BAD_ESCAPE },      { "a=%4", AWS_Q_BAD_ESCAPE },
        { "a%zz=1", AWS_Q_BAD_ESCAPE },     { "=x", AWS_Q_BAD_NAME },
        { "abcdefghi=1", AWS_Q_BAD_NAME },  { "a%00b=1", AWS_Q_BAD_NAME },
        { "a=1&b=x%00", AWS_Q_NUL_VALUE },  { "a&b&c&d&e", AWS_Q_TOO_MANY },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct aws_query q;
        cr_expect_eq(split(&q, cases[i].s), cases[i].rc, "%s", cases[i].s);
        char why[160];
        aws_query_why(&q, cases[i].rc, why, sizeof why);
        cr_expect(why[0], "%s: a reason", cases[i].s);
        if (cases[i].rc == AWS_Q_NUL_VALUE) {
            cr_expect_str_eq(q.bad, "b");
            cr_expect(strstr(why, "parameter b."), "%s", why);
        }
        aws_query_free(&q);
    }
}
