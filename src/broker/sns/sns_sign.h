/* Signing what SNS delivers: an RSA key and a self-signed X.509
 * certificate, kept in the broker's data directory so that signatures stay
 * verifiable across restarts. A subscriber fetches the certificate from
 * the envelope's SigningCertURL (served by the broker) and checks the
 * Signature over sns_string_to_sign(): SignatureVersion 1 is SHA1withRSA,
 * 2 is SHA256withRSA, as in SNS.
 *
 * Thread context: a signer is read-only once made; signing from several
 * threads is safe (each call uses its own digest context). */
#ifndef FG_BROKER_SNS_SIGN_H
#define FG_BROKER_SNS_SIGN_H

#include "core/buf.h"
#include "core/common.h"

#define SNS_SIGN_FILE "sns-signing.pem"

struct sns_signer;

/* Loads the key and certificate from dir/SNS_SIGN_FILE, creating them
 * (RSA 2048, certificate valid ten years, file mode 0600) when the file is
 * missing. dir NULL: a fresh in-memory key (tests). NULL with a message in
 * err on failure. */
struct sns_signer *sns_signer_new(const char *dir, char *err, size_t errlen);
void sns_signer_free(struct sns_signer *s);

/* Signs data[0..len) (version 1: SHA1, 2: SHA256) and appends the base64
 * signature to out. Returns 0, or -1 (unknown version, OpenSSL failure). */
int sns_sign(const struct sns_signer *s, int version, const void *data, size_t len,
             struct buf *out);
/* Verifies a base64 signature (tests and examples). */
bool sns_verify(const struct sns_signer *s, int version, const void *data, size_t len,
                const char *sig_b64);

/* The certificate as PEM text, and the file name it is served under:
 * "SimpleNotificationService-<md5 of the PEM>.pem". */
const char *sns_signer_cert_pem(const struct sns_signer *s, size_t *len);
const char *sns_signer_cert_name(const struct sns_signer *s);

#endif
