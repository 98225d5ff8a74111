/* libFuzzer harness for the filter-policy compiler and matcher
 * (src/broker/topic/filter.c). The input is a policy, optionally followed by a
 * NUL byte and a message body: the policy is compiled for both scopes, and
 * each compiled policy is matched against the body (as a JSON payload) and
 * against a fixed set of attributes of every data type. */
#include "broker/topic/filter.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ATTRS[] =
    "{\"store\":{\"DataType\":\"String\",\"StringValue\":\"example_corp\"},"
    "\"price\":{\"DataType\":\"Number\",\"StringValue\":\"210.75\"},"
    "\"tags\":{\"DataType\":\"String.Array\",\"StringValue\":\"[\\\"a\\\",5,true,null,[1],{}]\"},"
    "\"ip\":{\"DataType\":\"String\",\"StringValue\":\"10.0.0.7\"},"
    "\"bin\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAE=\"}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, '\0', size);
    size_t plen = nul ? (size_t)(nul - p) : size;
    const char *body = nul ? nul + 1 : "{\"store\":\"example_corp\",\"n\":[1,{\"a\":2}]}";
    size_t blen = nul ? size - plen - 1 : strlen(body);

    cJSON *attrs = cJSON_Parse(ATTRS);
    struct filter_msg m;
    filter_msg_init(&m, attrs, body, blen);
    for (int scope = 0; scope < 2; scope++) {
        char err[256];
        struct filter_policy *f = filter_compile(p, plen, (enum filter_scope)scope, err, sizeof err);
        if (f) {
            (void)filter_match(f, &m);
            filter_free(f);
        }
    }
    filter_msg_close(&m);
    cJSON_Delete(attrs);
    return 0;
}
