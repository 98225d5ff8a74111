/* MD5 digests as SQS computes them, base64, character checks and message
 * attribute validation (src/broker/sqs/md5.c).
 *
 * The attribute digests were computed by an independent Python
 * implementation of the documented algorithm (hashlib; sorted names, each
 * of name, type and value with a 4-byte big-endian length, transport byte 1
 * or 2 before the value). Two of them are the digests AWS itself returned
 * in the aws CLI's receive-message example, which prints their first and
 * last eight hex digits (9424c491...26bc3ae7, b8e89563...e088e74f). */
#include <criterion/criterion.h>

#include "broker/sqs/sqs_int.h"
#include "core/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *J(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    cr_assert_not_null(j, "bad test JSON: %s", s);
    return j;
}

static void check_attrs_md5(const char *json, const char *want)
{
    char hex[33];
    cJSON *a = J(json);
    cr_assert(sqs_md5_attributes(a, hex));
    cr_expect_str_eq(hex, want, "%s", json);
    cJSON_Delete(a);
}

Test(sqs_md5, body_digests)
{
    char hex[33];
    sqs_md5_hex("", 0, hex);
    cr_expect_str_eq(hex, "d41d8cd98f00b204e9800998ecf8427e");
    sqs_md5_hex("hello", 5, hex);
    cr_expect_str_eq(hex, "5d41402abc4b2a76b9719d911017c592");
    const char *b = "hello & <world> \"q\" 'a' \xc3\xa9 \xe2\x9c\x93";
    sqs_md5_hex(b, strlen(b), hex);
    cr_expect_str_eq(hex, "7806ade40e3e8af1828ff5d69c9e6364");
    /* The aws CLI send-message example: 51b0a325...39163aa0 */
    b = "Information about the largest city in Any Region.";
    sqs_md5_hex(b, strlen(b), hex);
    cr_expect_str_eq(hex, "51b0a3256d59467f973009b739163aa0");
}

Test(sqs_md5, attribute_digests_match_aws)
{
    check_attrs_md5("{\"PostalCode\":{\"DataType\":\"String\",\"StringValue\":\"ABC123\"},"
                    "\"City\":{\"DataType\":\"String\",\"StringValue\":\"Any City\"}}",
                    "9424c491ff2bbec06ecbc9d226bc3ae7");
    check_attrs_md5("{\"PostalCode\":{\"DataType\":\"String\",\"StringValue\":\"ABC123\"}}",
                    "b8e89563a83b6381835710c1e088e74f");
}

Test(sqs_md5, attribute_digests_reference)
{
    check_attrs_md5("{\"s\":{\"DataType\":\"String\",\"StringValue\":\"v1\"}}",
                    "17b03f57ac31905da48c0056433e82a2");
    /* binary AAH/ = 00 01 ff; custom Number type; order is by name */
    check_attrs_md5("{\"s\":{\"DataType\":\"String\",\"StringValue\":\"v1\"},"
                    "\"n\":{\"DataType\":\"Number.int\",\"StringValue\":\"42\"},"
                    "\"b\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAH/\"}}",
                    "75c13f58f68f4b7733019be781e427c2");
    /* byte order: "Alpha" < "alpha" < "zeta"; UTF-8 and XML specials */
    check_attrs_md5("{\"zeta\":{\"DataType\":\"String\","
                    "\"StringValue\":\"\xc3\xa9 \xe2\x9c\x93 \\\"<&>\\\"\"},"
                    "\"Alpha\":{\"DataType\":\"Binary.gz\",\"BinaryValue\":\"aGVsbG8gd29ybGQ=\"},"
                    "\"alpha\":{\"DataType\":\"Number\",\"StringValue\":\"-1.5e3\"}}",
                    "f05ce5de133ae093b7e1ba052d66a1ea");
    /* MD5OfMessageSystemAttributes uses the same algorithm */
    check_attrs_md5("{\"AWSTraceHeader\":{\"DataType\":\"String\","
                    "\"StringValue\":\"Root=1-5759e988-bd862e3fe1be46a994272793\"}}",
                    "62a56dd927315f2b2e12832b84617ea5");
}

Test(sqs_md5, no_attributes)
{
    char hex[33] = "x";
    cr_expect_not(sqs_md5_attributes(NULL, hex));
    cr_expect_str_eq(hex, "");
    cJSON *e = J("{}");
    hex[0] = 'x';
    cr_expect_not(sqs_md5_attributes(e, hex));
    cr_expect_str_eq(hex, "");
    cJSON_Delete(e);
}

Test(sqs_md5, base64)
{
    unsigned char out[16];
    cr_expect_eq(base64_decode("", 0, out), 0);
    cr_expect_eq(base64_decode("AAH/", 4, out), 3);
    cr_expect(out[0] == 0 && out[1] == 1 && out[2] == 0xff);
    cr_expect_eq(base64_decode("aGk=", 4, out), 2);
    cr_expect(memcmp(out, "hi", 2) == 0);
    cr_expect_eq(base64_decode("aA==", 4, out), 1);
    cr_expect_eq(base64_decode("aGk", 3, NULL), -1);      /* unpadded */
    cr_expect_eq(base64_decode("a===", 4, NULL), -1);     /* too much padding */
    cr_expect_eq(base64_decode("aGk=aGk=", 8, NULL), -1); /* padding inside */
    cr_expect_eq(base64_decode("aGl=", 4, NULL), -1);     /* non-zero pad bits */
    cr_expect_eq(base64_decode("a b=", 4, NULL), -1);
    cr_expect_eq(base64_decode("aG-_", 4, NULL), -1); /* URL alphabet */
    struct buf b;
    buf_init(&b);
    base64_encode(&b, "\x00\x01\xff", 3);
    base64_encode(&b, "hi", 2);
    base64_encode(&b, "h", 1);
    cr_expect(buf_len(&b) == 12 && memcmp(buf_rptr(&b), "AAH/aGk=aA==", 12) == 0);
    buf_free(&b);
}

Test(sqs_md5, valid_chars)
{
    cr_expect(sqs_valid_chars("a\tb\nc\rd", 7));
    cr_expect(sqs_valid_chars("\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", 9));
    cr_expect(sqs_valid_chars("\xee\x80\x80\xef\xbf\xbd", 6)); /* U+E000, U+FFFD */
    cr_expect_not(sqs_valid_chars("a\x01", 2));
    cr_expect_not(sqs_valid_chars("\x00", 1));
    cr_expect_not(sqs_valid_chars("\x7f"
                                  "a\x1f",
                                  3));
    cr_expect_not(sqs_valid_chars("\xef\xbf\xbe", 3));     /* U+FFFE */
    cr_expect_not(sqs_valid_chars("\xed\xa0\x80", 3));     /* surrogate */
    cr_expect_not(sqs_valid_chars("\xc0\xaf", 2));         /* overlong */
    cr_expect_not(sqs_valid_chars("\xe2\x9c", 2));         /* truncated */
    cr_expect_not(sqs_valid_chars("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    cr_expect_not(sqs_valid_chars("\xff", 1));
}

static enum sqs_err check(const char *json, size_t *bytes)
{
    struct sqs_error err = { 0 };
    cJSON *a = J(json);
    enum sqs_err rc = sqs_check_attributes(a, bytes, &err);
    cJSON_Delete(a);
    return rc;
}

Test(sqs_md5, check_attributes_ok)
{
    size_t bytes = 0;
    cr_expect_eq(check("{\"s\":{\"DataType\":\"String\",\"StringValue\":\"v1\"},"
                       "\"n.x\":{\"DataType\":\"Number.int\",\"StringValue\":\"-4.2e10\"},"
                       "\"b_-\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAH/\"}}",
                       &bytes),
                 SQS_OK);
    /* names + types + values: 1+6+2 + 3+10+7 + 3+6+3 */
    cr_expect_eq(bytes, 41);
    struct sqs_error err;
    cr_expect_eq(sqs_check_attributes(NULL, &bytes, &err), SQS_OK);
}

Test(sqs_md5, check_attributes_refused)
{
    static const char *const bad[] = {
        "{\"\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\"AWS.x\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\"amazon.x\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\".a\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\"a.\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\"a..b\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\"a b\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}",
        "{\"a\":{\"StringValue\":\"v\"}}",
        "{\"a\":{\"DataType\":\"Text\",\"StringValue\":\"v\"}}",
        "{\"a\":{\"DataType\":\"Strings\",\"StringValue\":\"v\"}}",
        "{\"a\":{\"DataType\":\"String.\",\"StringValue\":\"v\"}}",
        "{\"a\":{\"DataType\":\"String\",\"StringValue\":\"\"}}",
        "{\"a\":{\"DataType\":\"String\"}}",
        "{\"a\":{\"DataType\":\"String\",\"StringValue\":\"\\u0001\"}}",
        "{\"a\":{\"DataType\":\"Number\",\"StringValue\":\"12a\"}}",
        "{\"a\":{\"DataType\":\"Number\",\"StringValue\":\"1e\"}}",
        "{\"a\":{\"DataType\":\"Number\",\"StringValue\":"
        "\"123456789012345678901234567890123456789\"}}",
        "{\"a\":{\"DataType\":\"Binary\",\"StringValue\":\"v\"}}",
        "{\"a\":{\"DataType\":\"Binary\",\"BinaryValue\":\"\"}}",
        "{\"a\":{\"DataType\":\"Binary\",\"BinaryValue\":\"!!!!\"}}",
        "{\"a\":{\"DataType\":\"String\",\"StringValue\":\"v\",\"StringListValues\":[\"x\"]}}",
        "{\"a\":1}",
        "{\"a\":{\"DataType\":\"String\",\"StringValue\":\"v\"},"
        "\"a\":{\"DataType\":\"String\",\"StringValue\":\"w\"}}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        size_t bytes = 0;
        cr_expect_eq(check(bad[i], &bytes), SQS_E_INVALID_PARAMETER_VALUE, "%s", bad[i]);
    }
}

Test(sqs_md5, check_attributes_at_most_ten)
{
    char json[2048] = "{";
    for (int i = 0; i < 11; i++)
        snprintf(json + strlen(json), sizeof json - strlen(json),
                 "%s\"a%d\":{\"DataType\":\"String\",\"StringValue\":\"v\"}", i ? "," : "", i);
    strcat(json, "}");
    size_t bytes = 0;
    cr_expect_eq(check(json, &bytes), SQS_E_INVALID_PARAMETER_VALUE);
    char *ten = strstr(json, ",\"a10\"");
    strcpy(ten, "}");
    cr_expect_eq(check(json, &bytes), SQS_OK);
}
