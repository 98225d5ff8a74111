/* libFuzzer harness for the SNS query decoder and XML writer
 * (src/broker/sns/query.c, sns/xml.c): the input is a form body, split at
 * a first NUL byte into a URL query string and a body when it has one.
 * What decodes is rendered back as the action's result (the decoded
 * parameters stand in for a result of any shape) and as an error. */
#include "broker/sns/sns_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, '\0', size);
    const char *qs = nul ? p : NULL;
    size_t qslen = nul ? (size_t)(nul - p) : 0;
    const char *form = nul ? nul + 1 : p;
    size_t flen = nul ? size - qslen - 1 : size;
    char action[64];
    cJSON *params = NULL;
    struct sns_error err;
    struct buf out;
    buf_init(&out);
    if (sns_decode_form(qs, qslen, form, flen, action, &params, &err) == SNS_OK) {
        sns_encode_result(action, params, "rid", &out);
        cJSON_Delete(params);
    } else {
        int status;
        sns_encode_error(&err, "rid", &out, &status);
    }
    buf_free(&out);
    return 0;
}
