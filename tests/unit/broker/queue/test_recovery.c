/* The engine over the real store in a temporary directory: state written,
 * the store closed (or its last segment cut in the middle of a record, or
 * followed by garbage, as a crash leaves it), reopened and replayed. */
#include "broker/bk_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fg-bk-recovery-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TestSuite(recovery, .init = setup, .fini = teardown);

static struct store_pos s_append(void *ud, uint8_t t, const void *p, uint32_t n) { return store_append(ud, t, p, n); }
static void s_retain(void *ud, struct store_pos pos, uint32_t n) { store_retain(ud, pos, n); }
static void s_release(void *ud, struct store_pos pos, uint32_t n) { store_release(ud, pos, n); }
static ssize_t s_read(void *ud, struct store_pos pos, void *b, size_t cap) { return store_read(ud, pos, b, cap); }

struct node {
    struct store *st;
    struct bk_engine *e;
};

static struct node open_node(uint64_t now)
{
    struct store_opts so = {.dir = dir, .fsync = STORE_FSYNC_ALWAYS, .segment_bytes = 1u << 20};
    char err[256];
    struct node n;
    n.st = store_open(&so, err, sizeof err);
    cr_assert_not_null(n.st, "%s", err);
    struct bk_journal j = {n.st, s_append, s_retain, s_release, s_read};
    struct bk_engine_opts o = test_opts();
    n.e = bk_engine_new(&o, &j);
    bk_engine_replay_begin(n.e, now);
    cr_assert_eq(store_replay(n.st, bk_engine_replay, n.e, err, sizeof err), 0, "%s", err);
    bk_engine_replay_end(n.e, now);
    return n;
}

static void close_node(struct node *n)
{
    bk_engine_free(n->e);
    store_close(n->st);
}

/* Path of the newest segment file. */
static void last_segment(char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char best[256] = "";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    snprintf(out, cap, "%s/%s", dir, best);
}

Test(recovery, clean_close_and_reopen)
{
    struct node n = open_node(T0);
    create_queue(n.e, "r", "{\"VisibilityTimeout\":\"60\"}");
    for (int i = 0; i < 50; i++)
        send_body(n.e, T0, "r", "payload");
    cJSON *m = receive(n.e, T0, "r", 10, 60);
    cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, m) if (k++ < 5) cr_assert_eq(delete_handle(n.e, T0, "r", msg_field(it, "ReceiptHandle")), SQS_OK);
    cJSON_Delete(m);
    close_node(&n);

    n = open_node(T0 + 1000);
    cr_assert_eq(qcount(n.e, "r", 0), 40);
    cr_assert_eq(qcount(n.e, "r", 1), 5);
    bk_engine_tick(n.e, T0 + 60000);
    cr_assert_eq(qcount(n.e, "r", 0), 45);
    close_node(&n);
}

Test(recovery, torn_last_record_and_garbage_tail)
{
    struct node n = open_node(T0);
    create_queue(n.e, "t", NULL);
    for (int i = 0; i < 10; i++)
        send_body(n.e, T0, "t", "complete");
    close_node(&n);
    char seg[600];
    last_segment(seg, sizeof seg);
    struct stat sb;
    cr_assert_eq(stat(seg, &sb), 0);
    off_t complete = sb.st_size;

    n = open_node(T0);
    send_body(n.e, T0, "t", "this one will be torn in half");
    close_node(&n);
    cr_assert_eq(stat(seg, &sb), 0);
    cr_assert_gt(sb.st_size, complete);
    /* Cut inside the last record (the SEND just written). */
    cr_assert_eq(truncate(seg, sb.st_size - 10), 0);
    n = open_node(T0);
    cr_assert_eq(qcount(n.e, "t", 0), 10, "the torn send is gone, the rest intact");
    send_body(n.e, T0, "t", "after the tear");
    close_node(&n);

    /* Garbage after the last record: a torn tail too. */
    int fd = open(seg, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "\x55\x00\x00\x00garbage!", 12), 12);
    close(fd);
    n = open_node(T0);
    cr_assert_eq(qcount(n.e, "t", 0), 11);
    cJSON *m = receive(n.e, T0, "t", 10, 30);
    cr_assert_eq(cJSON_GetArraySize(m), 10);
    cJSON_Delete(m);
    close_node(&n);
}
