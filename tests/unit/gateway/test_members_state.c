/* Tests for the state file of the admin-made changes
 * (gateway/members_state.c, state_file:): what gw_members_restore()
 * accepts and refuses, and that gw__members_save() writes back what it
 * read (a round trip, atomically replaced). */
#include <criterion/criterion.h>

#include "gateway/members_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];
static struct gw_members mem;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fg-state-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state.json", dir);
}

static void teardown(void)
{
    gw_members_free(&mem);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    unlink(path);
    rmdir(dir);
}

static void put(const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static int count_ops(void)
{
    int n = 0;
    for (struct gw_member_op *o = mem.ops; o; o = o->next)
        n++;
    return n;
}

TestSuite(members_state, .init = setup, .fini = teardown);

Test(members_state, missing_file_is_empty_state)
{
    char *err = NULL;
    cr_assert_eq(gw_members_restore(&mem, path, &err), 0);
    cr_assert_str_eq(mem.state_path, path);
    cr_assert_eq(count_ops(), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0); /* written at once: a bad path fails the start */
    gw_members_free(&mem);
    char bad[200];
    snprintf(bad, sizeof bad, "%s/missing/state.json", dir);
    cr_assert_eq(gw_members_restore(&mem, bad, &err), -1);
    cr_assert_not_null(strstr(err, "missing/state.json.tmp"), "%s", err);
    cr_assert_null(mem.state_path);
    free(err);
}

static const char every_kind[] =
    "{\"version\":1,\"changes\":["
    "{\"op\":\"add_service\",\"service\":\"more\",\"balance\":\"Least_Conn\",\"prefix\":\"/more\",\"strip_prefix\":true},"
    "{\"op\":\"add_server\",\"service\":\"more\",\"address\":\"127.0.0.1:9001\",\"weight\":3},"
    "{\"op\":\"add_server\",\"service\":\"more\",\"address\":\"127.0.0.1:9002\",\"weight\":1,\"ttl_ms\":10000},"
    "{\"op\":\"drain\",\"service\":\"more\",\"address\":\"127.0.0.1:9001\"},"
    "{\"op\":\"remove_server\",\"service\":\"app\",\"address\":\"127.0.0.1:8001\"},"
    "{\"op\":\"cidr\",\"list\":\"deny\",\"add\":true,\"cidr\":\"203.0.113.0/24\"},"
    "{\"op\":\"route_cidr\",\"route\":\"/web\",\"host\":\"API.example.com\",\"list\":\"allow\",\"add\":false,"
    "\"cidr\":\"10.0.0.0/8\"},"
    "{\"op\":\"remove_service\",\"service\":\"old\"}]}";

Test(members_state, round_trip)
{
    put(every_kind);
    char *err = NULL;
    cr_assert_eq(gw_members_restore(&mem, path, &err), 8, "%s", err ? err : "");
    struct gw_member_op *o = mem.ops;
    cr_assert_str_eq(o->balance, "least_conn"); /* canonical, as the admin API stores it */
    cr_assert(o->strip);
    o = o->next->next;
    cr_assert_eq(o->ttl_ms, 10000);
    cr_assert(o->expires_ms > 0);
    /* gw__members_save() writes what was read; reading that gives the same. */
    cr_assert_eq(gw__members_save(&mem, &err), 0, "%s", err ? err : "");
    struct stat st;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_neq(stat(tmp, &st), 0); /* renamed away */
    gw_members_free(&mem);
    cr_assert_eq(gw_members_restore(&mem, path, &err), 8, "%s", err ? err : "");
    o = mem.ops;
    for (int i = 0; i < 6; i++)
        o = o->next;
    cr_assert_eq(o->kind, OP_ROUTE_CIDR);
    cr_assert_str_eq(o->host, "api.example.com");
    cr_assert_str_eq(o->route, "/web");
    cr_assert(!o->add && !o->deny);
}

static void refused(const char *text, const char *words)
{
    put(text);
    char *err = NULL;
    cr_assert_eq(gw_members_restore(&mem, path, &err), -1, "accepted: %s", text);
    cr_assert_not_null(strstr(err, path), "%s", err);
    cr_assert_not_null(strstr(err, words), "'%s' lacks '%s'", err, words);
    cr_assert_null(mem.state_path);
    cr_assert_eq(count_ops(), 0);
    free(err);
}

Test(members_state, corrupt_files_are_refused)
{
    refused("", "is corrupt");
    refused("{\"version\":1,\"changes\":[", "is corrupt");
    refused("[]", "is corrupt");
    refused("{\"version\":2,\"changes\":[]}", "is corrupt");
    refused("{\"version\":1,\"changes\":[{\"op\":\"nope\"}]}", "change 0");
    refused("{\"version\":1,\"changes\":[{\"op\":\"add_server\",\"service\":\"a\",\"address\":\"127.0.0.1:0\","
            "\"weight\":1}]}",
            "port 0 cannot be connected to");
    refused("{\"version\":1,\"changes\":[{\"op\":\"add_server\",\"service\":\"a\",\"address\":\"127.0.0.1:1\","
            "\"weight\":1,\"ttl_ms\":5}]}",
            "ttl_ms");
    refused("{\"version\":1,\"changes\":[{\"op\":\"cidr\",\"list\":\"deny\",\"add\":true,\"cidr\":\"10.0.0.0/33\"}]}",
            "change 0");
    refused("{\"version\":1,\"changes\":[{\"op\":\"add_service\",\"service\":\"Bad Name\",\"balance\":\"weighted\"}]}",
            "is not a valid service name");
}

Test(members_state, ttl_check)
{
    uint64_t ms = 0;
    cr_assert_null(gw_check_ttl("10s", &ms));
    cr_assert_eq(ms, 10000);
    char *m = gw_check_ttl("500ms", &ms);
    cr_assert_str_eq(m, "'500ms' is out of range: must be between 1s and 1h");
    free(m);
    m = gw_check_ttl("10", &ms);
    cr_assert_str_eq(m, "expected a duration like 500ms, 2s or 1m, not '10'");
    free(m);
}
