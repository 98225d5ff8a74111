/* libFuzzer harness for the SQS wire protocols: parses the input as an
 * HTTP request with core http1 (the body is the rest of the input), then
 * runs what the broker runs on an SQS request: detection, sqs_decode,
 * signature checking, and rendering in the decoded protocol (the decoded
 * parameters are rendered back as if they were a result, which exercises
 * the XML writer on hostile strings). Checks the contract: a decoded
 * request is an object with a known action, a refused one has a message
 * and no parameters, and rendering never fails. */
#include "broker/sqs/sqs_proto.h"

#include <stdlib.h>
#include <string.h>

#define MAXH 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header h[MAXH];
    struct http_request req;
    const char *in = (const char *)data;
    int n = http_parse_request(in, size, &req, h, MAXH, 16384);
    if (n < 0)
        return 0;
    const char *body = in + n;
    size_t len = size - (size_t)n;
    sqs_is_sqs_request(&req, body, len);

    enum sqs_proto proto = 0;
    char action[64];
    cJSON *params = NULL;
    struct sqs_error err;
    enum sqs_err rc = sqs_decode(&req, body, len, &proto, action, &params, &err);
    if ((rc == SQS_OK) != (params != NULL) || (rc != SQS_OK && !err.message[0]))
        abort();
    if (rc == SQS_OK && (!cJSON_IsObject(params) || !action[0] || strlen(action) >= 64))
        abort();

    struct buf out;
    buf_init(&out);
    const char *ct = NULL, *hdr = NULL;
    int status = 0;
    if (rc == SQS_OK) {
        char hex[33];
        size_t bytes = 0;
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(params, "MessageAttributes");
        sqs_md5_attributes(attrs, hex);
        if (sqs_check_attributes(attrs, &bytes, &err) != SQS_OK && !err.message[0])
            abort();
        sqs_encode_result(proto, action, params, "fuzz", &out, &ct);
        if (!ct)
            abort();
        /* the body and attributes as a received message, in XML */
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(params, "MessageBody");
        if (cJSON_IsString(b)) {
            cJSON *r = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(r, "Messages");
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "Body", b->valuestring);
            if (attrs)
                cJSON_AddItemToObject(m, "MessageAttributes", cJSON_Duplicate(attrs, true));
            cJSON_AddItemToArray(msgs, m);
            sqs_encode_result(SQS_PROTO_QUERY, "ReceiveMessage", r, "fuzz", &out, &ct);
            cJSON_Delete(r);
        }
    } else {
        sqs_encode_error(proto ? proto : SQS_PROTO_QUERY, &err, "fuzz", &out, &ct, &status, &hdr);
        if (status < 400 || status > 599 || buf_len(&out) == 0)
            abort();
    }
    sqs_sigv4_check(&req, body, len, "AKIDEXAMPLE", "secret", 1795467545, &err);
    buf_free(&out);
    cJSON_Delete(params);
    return 0;
}
