/* SNS message signatures (sns_sign.h) with OpenSSL: key and certificate
 * kept in one PEM file, written atomically (temporary file, fsync,
 * rename) so a crash never leaves half a key behind. */
#include "broker/sns/sns_sign.h"
#include "core/base64.h"

#include "broker/sns/sns_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sns_signer {
    EVP_PKEY *key;
    X509 *cert;
    char *pem;          /* the certificate, PEM */
    size_t pem_len;
    char name[80];      /* SimpleNotificationService-<md5>.pem */
};

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive serial number */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    bool ok = bn && X509_set_version(x, 2) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) &&
              X509_set_pubkey(x, key);
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(x);
    ok = ok &&
         X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"floodgate", -1, -1, 0) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"sns.floodgate.local", -1, -1, 0) &&
         X509_set_issuer_name(x, name) && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int write_file(const char *dir, EVP_PKEY *key, X509 *cert, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, SNS_SIGN_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    bool ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) &&
              PEM_write_X509(f, cert) && fflush(f) == 0 && fsync(fd) == 0;
    if (f)
        fclose(f);
    else
        close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write the signing key", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int read_file(const char *path, EVP_PKEY **key, X509 **cert)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 1 : -1;
    *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    *cert = *key ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    fclose(f);
    return *key && *cert ? 0 : -1;
}

static void cert_text(struct sns_signer *s)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, s->cert);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    s->pem = xstrndup(p, (size_t)(n > 0 ? n : 0));
    s->pem_len = strlen(s->pem);
    BIO_free(b);
    unsigned char md[16];
    EVP_Digest(s->pem, s->pem_len, md, NULL, EVP_md5(), NULL);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(s->name, sizeof s->name, "SimpleNotificationService-%s.pem", hex);
}

struct sns_signer *sns_signer_new(const char *dir, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int r = 1;
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, SNS_SIGN_FILE);
        r = read_file(path, &key, &cert);
        if (r < 0) {
            snprintf(err, errlen, "%s: unreadable signing key or certificate", path);
            EVP_PKEY_free(key);
            X509_free(cert);
            return NULL;
        }
    }
    if (r == 1) {
        key = EVP_RSA_gen(2048);
        cert = key ? self_signed(key) : NULL;
        if (!cert || (dir && write_file(dir, key, cert, err, errlen) < 0)) {
            if (!cert)
                snprintf(err, errlen, "cannot make an RSA signing key");
            EVP_PKEY_free(key);
            X509_free(cert);
            return NULL;
        }
    }
    struct sns_signer *s = xcalloc(1, sizeof *s);
    s->key = key;
    s->cert = cert;
    cert_text(s);
    return s;
}

void sns_signer_free(struct sns_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    X509_free(s->cert);
    free(s->pem);
    free(s);
}

static const EVP_MD *md_of(int version)
{
    return version == 1 ? EVP_sha1() : version == 2 ? EVP_sha256() : NULL;
}

int sns_sign(const struct sns_signer *s, int version, const void *data, size_t len,
             struct buf *out)
{
    const EVP_MD *md = md_of(version);
    if (!md)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    bool ok = ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, s->key) == 1 &&
              EVP_DigestSign(ctx, sig, &siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    base64_encode(out, sig, siglen);
    return 0;
}

bool sns_verify(const struct sns_signer *s, int version, const void *data, size_t len,
                const char *sig_b64)
{
    const EVP_MD *md = md_of(version);
    unsigned char sig[1024];
    size_t n = strlen(sig_b64);
    if (!md || n / 4 * 3 > sizeof sig)
        return false;
    ssize_t sl = base64_decode(sig_b64, n, sig);
    if (sl <= 0)
        return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY *pub = X509_get0_pubkey(s->cert);
    bool ok = ctx && pub && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, (size_t)sl, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

const char *sns_signer_cert_pem(const struct sns_signer *s, size_t *len)
{
    if (len)
        *len = s->pem_len;
    return s->pem;
}

const char *sns_signer_cert_name(const struct sns_signer *s) { return s->name; }
