/* AWS Signature Version 4 checking (src/broker/aws/sigv4.c) against
 * requests botocore signed: every captured request (Authorization header,
 * key pair AKIDEXAMPLE / secret, the time in its X-Amz-Date) and a
 * presigned URL from boto3's generate_presigned_url (region eu-west-1,
 * signed at 2026-11-23T21:11:51Z, valid 300 s). */
#include <criterion/criterion.h>

#include "broker/sqs/sqs_int.h"
#include "broker/sqs/test_captured.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PRESIGNED_AT 1795468311 /* 20261123T211151Z */
/* botocore signs the model's method (POST), with an empty body */
static const char PRESIGNED[] =
    "POST /?Action=GetQueueUrl&Version=2012-11-05&QueueName=my%20queue%2Bx"
    "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIDEXAMPLE%2F20261123%2Feu-west-1%2Fsqs%2Faws4_request"
    "&X-Amz-Date=20261123T211151Z&X-Amz-SignedHeaders=host&X-Amz-Expires=300"
    "&X-Amz-Signature=5cff514cd1170617e9241b4fcfd9dae8b9fa20221452659fd52de6d3f5404840"
    " HTTP/1.1\r\nHost: 127.0.0.1:9324\r\nAccept-Encoding: identity\r\nContent-Length: 0\r\n\r\n";

static enum sqs_err check_raw(const char *raw, size_t len, const char *key, const char *secret,
                              int64_t now, struct sqs_error *err)
{
    struct http_header h[32];
    struct http_request req;
    int n = http_parse_request(raw, len, &req, h, 32, 16384);
    cr_assert(n > 0);
    return sqs_sigv4_check(&req, raw + n, len - (size_t)n, key, secret, now, err);
}

/* The Unix time of the request's X-Amz-Date header. */
static int64_t signed_at(const char *raw)
{
    const char *d = strstr(raw, "X-Amz-Date: ");
    cr_assert_not_null(d);
    struct tm tm = { 0 };
    cr_assert(sscanf(d + 12, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

Test(sqs_sigv4, captured_requests_verify)
{
    for (size_t i = 0; i < ARRAY_SIZE(CAPTURED); i++) {
        const struct captured *c = &CAPTURED[i];
        struct sqs_error err = { 0 };
        int64_t t = signed_at(c->raw);
        cr_expect_eq(check_raw(c->raw, c->len, "AKIDEXAMPLE", "secret", t + 60, &err), SQS_OK,
                     "%s: %s", c->name, err.message);
    }
}

Test(sqs_sigv4, presigned_url_verifies)
{
    struct sqs_error err = { 0 };
    size_t n = strlen(PRESIGNED);
    cr_expect_eq(check_raw(PRESIGNED, n, "AKIDEXAMPLE", "secret", PRESIGNED_AT + 299, &err), SQS_OK,
                 "%s", err.message);
    cr_expect_eq(check_raw(PRESIGNED, n, "AKIDEXAMPLE", "secret", PRESIGNED_AT + 301, &err),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    cr_expect_eq(check_raw(PRESIGNED, n, "AKIDEXAMPLE", "other", PRESIGNED_AT, &err),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    char *bad = xstrndup(PRESIGNED, n);
    *strstr(bad, "my%20queue") = 'M';
    cr_expect_eq(check_raw(bad, n, "AKIDEXAMPLE", "secret", PRESIGNED_AT, &err),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    free(bad);
}

/* A captured SendMessage, then variations of it. */
static const struct captured *send_message(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(CAPTURED); i++)
        if (strstr(CAPTURED[i].name, "-boto3-query-SendMessage"))
            return &CAPTURED[i];
    cr_assert_fail("no SendMessage capture");
    return NULL;
}

static enum sqs_err check_edited(const char *from, const char *to, int64_t skew, const char *key,
                                 const char *secret)
{
    const struct captured *c = send_message();
    char *raw = xstrndup(c->raw, c->len);
    size_t len = c->len;
    if (from) {
        char *at = strstr(raw, from);
        cr_assert_not_null(at, "%s", from);
        cr_assert_eq(strlen(from), strlen(to));
        memcpy(at, to, strlen(to));
    }
    struct sqs_error err = { 0 };
    enum sqs_err rc = check_raw(raw, len, key, secret, signed_at(c->raw) + skew, &err);
    cr_expect(rc == SQS_OK || err.message[0]);
    free(raw);
    return rc;
}

Test(sqs_sigv4, refusals)
{
    cr_expect_eq(check_edited(NULL, NULL, 0, "AKIDEXAMPLE", "secret"), SQS_OK);
    cr_expect_eq(check_edited(NULL, NULL, 899, "AKIDEXAMPLE", "secret"), SQS_OK);
    cr_expect_eq(check_edited(NULL, NULL, -899, "AKIDEXAMPLE", "secret"), SQS_OK);
    cr_expect_eq(check_edited(NULL, NULL, 0, "AKIDEXAMPLE", "secreT"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    cr_expect_eq(check_edited(NULL, NULL, 0, "AKIDOTHER", "secret"), SQS_E_INVALID_CLIENT_TOKEN);
    cr_expect_eq(check_edited(NULL, NULL, 901, "AKIDEXAMPLE", "secret"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    cr_expect_eq(check_edited(NULL, NULL, -901, "AKIDEXAMPLE", "secret"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    /* body, signed header, path and method changed */
    cr_expect_eq(
        check_edited("Action=SendMessage", "Action=SendMessagf", 0, "AKIDEXAMPLE", "secret"),
        SQS_E_SIGNATURE_DOES_NOT_MATCH);
    cr_expect_eq(check_edited("host: 127.0.0.1", "host: 127.0.0.2", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    cr_expect_eq(check_edited("POST / ", "POSX / ", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    /* an unsigned header may change */
    cr_expect_eq(check_edited("Accept-Encoding: identity", "Accept-Encoding: identitx", 0,
                              "AKIDEXAMPLE", "secret"),
                 SQS_OK);
    /* a signed header that is missing, the service, the algorithm */
    cr_expect_eq(check_edited("X-Amz-Date:", "X-Amz-Datf:", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_ACCESS_DENIED);
    cr_expect_eq(check_edited("/sqs/aws4_request", "/sns/aws4_request", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
    cr_expect_eq(check_edited("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 ", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_ACCESS_DENIED);
    cr_expect_eq(check_edited("Authorization:", "Authorizatiom:", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_ACCESS_DENIED);
    cr_expect_eq(check_edited("SignedHeaders=content-type;host;",
                              "SignedHeaders=content-type;hosT;", 0, "AKIDEXAMPLE", "secret"),
                 SQS_E_SIGNATURE_DOES_NOT_MATCH);
}

Test(sqs_sigv4, hostile_headers)
{
    static const char *const auths[] = {
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/sqs/aws4_request/x, "
        "SignedHeaders=host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/sqs/aws4_request, "
        "SignedHeaders=;;, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 ,,,,=,=,",
    };
    for (size_t i = 0; i < ARRAY_SIZE(auths); i++) {
        char *raw = xasprintf("POST / HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261123T205905Z\r\n"
                              "Authorization: %s\r\nContent-Length: 0\r\n\r\n",
                              auths[i]);
        struct sqs_error err = { 0 };
        enum sqs_err rc = check_raw(raw, strlen(raw), "AKIDEXAMPLE", "secret", 1795467545, &err);
        cr_expect(rc == SQS_E_ACCESS_DENIED || rc == SQS_E_SIGNATURE_DOES_NOT_MATCH, "%s: %s",
                  auths[i], sqs_err_name(rc));
        free(raw);
    }
}
