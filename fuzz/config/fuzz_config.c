/* libFuzzer harness for core/config.c: parses the input as YAML and runs
 * every typed getter, path and key check over every node, freeing all
 * messages. Addresses are not resolved here (that would reach DNS), so
 * the gateway's own checks are covered by its unit tests instead. */
#include "core/config.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void visit(const struct cfg_node *n)
{
    static const char *const names[] = {"round_robin", "weighted", "least_conn", NULL};
    char *err = NULL, *s = NULL;
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    int e = 0;
#define TRY(call) do { if ((call) < 0) { free(err); err = NULL; } } while (0)
    TRY(cfg_duration(n, 0, UINT64_MAX, &u, &err));
    TRY(cfg_size(n, 1, 1 << 20, &u, &err));
    TRY(cfg_int(n, -5, 5, &i, &err));
    TRY(cfg_double(n, 0, 10, &d, &err));
    TRY(cfg_bool(n, &b, &err));
    TRY(cfg_string(n, &s, &err));
    TRY(cfg_enum(n, names, &e, &err));
    TRY(cfg_check_keys(n, names, &err));
    TRY(cfg_expect(n, CFG_MAP, &err));
#undef TRY
    free(s);
    free(cfg_path(n));
    free(cfg_errorf(n, "%s", cfg_kind(n)));
    for (size_t k = 0; k < n->n; k++)
        visit(n->kids[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_doc *d = NULL;
    char *err = NULL;
    if (cfg_load_string((const char *)data, size, "fuzz.yaml", &d, &err) < 0) {
        free(err);
        return 0;
    }
    visit(d->root);
    cfg_doc_free(d);
    return 0;
}
