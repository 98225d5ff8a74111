/* Tests for flood/mix (templates, rendering, weighted choice) and
 * flood/sources (address ranges). */
#include "flood/flood.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char *req_str(const struct fl_template *t) { return xstrndup(buf_rptr(&t->req), buf_len(&t->req)); }

Test(flood_mix, parse_and_render)
{
    struct fl_mix mix = {0};
    char *err = NULL;
    cr_assert_eq(fl_mix_parse(&mix, "80:GET:/products,15:POST:/cart:high,5:POST:/checkout:critical", &err), 0);
    cr_assert_eq(mix.n, 3);
    char *extra[] = {"X-Test: 1"};
    cr_assert_eq(fl_mix_prepare(&mix, "shop:8080", extra, 1, "X-Priority", false, &err), 0, "%s", err);
    char *r0 = req_str(&mix.t[0]);
    cr_assert_str_eq(r0, "GET /products HTTP/1.1\r\nHost: shop:8080\r\nX-Test: 1\r\n\r\n");
    char *r1 = req_str(&mix.t[1]);
    cr_assert_str_eq(r1, "POST /cart HTTP/1.1\r\nHost: shop:8080\r\nX-Test: 1\r\nX-Priority: high\r\n"
                         "Content-Length: 0\r\n\r\n");
    cr_assert_str_eq(mix.t[2].name, "POST /checkout");
    free(r0);
    free(r1);
    fl_mix_free(&mix);
}

Test(flood_mix, body_headers_and_close)
{
    struct fl_mix mix = {0};
    char *err = NULL;
    struct fl_template *t = fl_mix_add(&mix, "PUT", "/cart/1?x=2", 1);
    t->body = xstrdup("{\"sku\":42}");
    t->body_len = strlen(t->body);
    fl_template_add_header(t, "Content-Type: application/json");
    cr_assert_eq(fl_mix_prepare(&mix, "h", NULL, 0, NULL, true, &err), 0);
    char *r = req_str(t);
    cr_assert_str_eq(r, "PUT /cart/1?x=2 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                        "Content-Length: 10\r\nConnection: close\r\n\r\n{\"sku\":42}");
    free(r);
    fl_mix_free(&mix);
}

Test(flood_mix, bad_templates)
{
    struct fl_mix mix = {0};
    char *err = NULL;
    cr_assert_eq(fl_mix_parse(&mix, "80:GET", &err), -1);
    free(err);
    err = NULL;
    cr_assert_eq(fl_mix_parse(&mix, "0:GET:/", &err), -1);
    free(err);
    err = NULL;
    fl_mix_free(&mix);
    fl_mix_add(&mix, "GET", "no-slash", 1);
    cr_assert_eq(fl_mix_prepare(&mix, "h", NULL, 0, NULL, false, &err), -1);
    cr_assert(strstr(err, "path"));
    free(err);
    err = NULL;
    fl_mix_free(&mix);
    fl_mix_add(&mix, "G ET", "/", 1);
    cr_assert_eq(fl_mix_prepare(&mix, "h", NULL, 0, NULL, false, &err), -1);
    free(err);
    err = NULL;
    fl_mix_free(&mix);
    fl_mix_add(&mix, "GET", "/", 1);
    char *bad[] = {"NoColon"};
    cr_assert_eq(fl_mix_prepare(&mix, "h", bad, 1, NULL, false, &err), -1);
    free(err);
    fl_mix_free(&mix);
}

Test(flood_mix, weighted_choice_follows_weights)
{
    struct fl_mix mix = {0};
    char *err = NULL;
    cr_assert_eq(fl_mix_parse(&mix, "80:GET:/products,15:POST:/cart,5:POST:/checkout", &err), 0);
    cr_assert_eq(fl_mix_prepare(&mix, "h", NULL, 0, NULL, false, &err), 0);
    uint64_t count[3] = {0}, x = 88172645463325252ull;
    int n = 1000000;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        count[fl_mix_pick(&mix, (uint32_t)(x >> 32))]++;
    }
    cr_assert(labs((long)count[0] - 800000) < 3000, "%lu", count[0]);
    cr_assert(labs((long)count[1] - 150000) < 2000, "%lu", count[1]);
    cr_assert(labs((long)count[2] - 50000) < 1500, "%lu", count[2]);
    /* The extremes map inside the table. */
    cr_assert_eq(fl_mix_pick(&mix, 0), 0);
    cr_assert_eq(fl_mix_pick(&mix, UINT32_MAX), 2);
    fl_mix_free(&mix);
}

Test(flood_sources, ranges_cidr_and_lists)
{
    struct fl_sources s = {0};
    char *err = NULL;
    cr_assert_eq(fl_sources_parse(&s, "127.0.0.1-127.0.50.255", &err), 0);
    cr_assert_eq(s.total, 50 * 256 + 255);
    cr_assert_eq(fl_sources_at(&s, 0), 0x7f000001);
    cr_assert_eq(fl_sources_at(&s, 255), 0x7f000100);
    cr_assert_eq(fl_sources_at(&s, s.total), 0x7f000001); /* wraps */
    fl_sources_free(&s);
    cr_assert_eq(fl_sources_parse(&s, "127.1.0.0/24,127.9.9.9", &err), 0);
    cr_assert_eq(s.total, 254 + 1);
    cr_assert_eq(fl_sources_at(&s, 0), 0x7f010001); /* not the network address */
    cr_assert_eq(fl_sources_at(&s, 253), 0x7f0100fe);
    cr_assert_eq(fl_sources_at(&s, 254), 0x7f090909);
    fl_sources_free(&s);
    cr_assert_eq(fl_sources_parse(&s, "127.0.0.0/8", &err), 0);
    cr_assert_eq(s.total, (1u << 24) - 2);
    fl_sources_free(&s);
    cr_assert_eq(fl_sources_parse(&s, "10.0.0.5/32", &err), 0);
    cr_assert_eq(s.total, 1);
    fl_sources_free(&s);
    static const char *bad[] = {"127.0.0.9-127.0.0.1", "127.0.0.1/33", "::1", "1.2.3", "", "127.0.0.1-"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err = NULL;
        cr_assert_eq(fl_sources_parse(&s, bad[i], &err), -1, "'%s' accepted", bad[i]);
        free(err);
        fl_sources_free(&s);
    }
}
