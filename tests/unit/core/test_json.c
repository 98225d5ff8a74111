/* Unit tests for core/json: json_parse_strict() takes exactly one JSON
 * value with only whitespace around it, within the given length. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/json.h"

static cJSON *parse(const char *s) { return json_parse_strict(s, strlen(s)); }

Test(json_parse_strict, one_value_with_whitespace)
{
    const char *ok[] = {"{}", " [1, 2]\r\n\t ", "\"s\"", "0", "true", "{\"a\":{\"b\":[null]}}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cJSON *j = parse(ok[i]);
        cr_assert_not_null(j, "%s", ok[i]);
        cJSON_Delete(j);
    }
}

Test(json_parse_strict, refuses_garbage_empty_and_nul)
{
    const char *bad[] = {"", " ", "{} {}", "{}x", "[1,]", "{\"a\":1,}", "nul", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_null(parse(bad[i]), "%s", bad[i]);
    /* A NUL inside the length ends cJSON's parse early: refused. */
    cr_assert_null(json_parse_strict("{}\0 ", 4));
    cr_assert_null(json_parse_strict("{\"a\":\0}", 7));
}

Test(json_parse_strict, length_bounds_the_input)
{
    /* Only s[0..len) is read: "[1]" inside a longer string. */
    cJSON *j = json_parse_strict("[1]garbage", 3);
    cr_assert_not_null(j);
    cr_assert(cJSON_IsArray(j));
    cJSON_Delete(j);
    cr_assert_null(json_parse_strict("[1]garbage", 2));
}

Test(json_copy_str, renames_strings_only)
{
    cJSON *src = parse("{\"A\":\"x\",\"N\":1}");
    cJSON *dst = cJSON_CreateObject();
    json_copy_str(dst, "a", src, "A");
    json_copy_str(dst, "n", src, "N");
    json_copy_str(dst, "m", src, "Missing");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dst, "a")), "x");
    cr_assert_eq(cJSON_GetArraySize(dst), 1);
    cJSON_Delete(src);
    cJSON_Delete(dst);
}
