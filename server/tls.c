/* tls.c - see tls.h. */
#include "tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Tls {
    char *cert, *key; /* PEM text, NUL-terminated */
};

/* The whole file, NUL-terminated; NULL with err naming flag and path. */
static char *read_pem(const char *flag, const char *path, size_t *len, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n, "%s %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    char *text = malloc(TLS_PEM_MAX_BYTES + 1);
    size_t got = text ? fread(text, 1, TLS_PEM_MAX_BYTES + 1, f) : 0;
    bool failed = !text || ferror(f);
    fclose(f);
    if (failed || got == 0 || got > TLS_PEM_MAX_BYTES) {
        snprintf(err, n, "%s %s: %s", flag, path,
                 !text ? "out of memory"
                 : failed ? "cannot be read"
                 : got == 0 ? "is empty"
                            : "larger than 1 MiB (TLS_PEM_MAX_BYTES)");
        free(text);
        return NULL;
    }
    text[got] = '\0';
    *len = got;
    return text;
}

/* Each file parsed on its own first, so the message names the one at fault;
 * then the pair, which GnuTLS refuses when the key is not the certificate's. */
static int check_pair(const Tls *t, size_t cert_len, size_t key_len, const char *cert_path,
                      const char *key_path, char *err, size_t n)
{
    gnutls_datum_t cert = {(unsigned char *)t->cert, (unsigned)cert_len};
    gnutls_datum_t key = {(unsigned char *)t->key, (unsigned)key_len};
    gnutls_x509_crt_t *chain = NULL;
    unsigned n_chain = 0;
    int rc = gnutls_x509_crt_list_import2(&chain, &n_chain, &cert, GNUTLS_X509_FMT_PEM, 0);
    for (unsigned i = 0; i < n_chain; i++)
        gnutls_x509_crt_deinit(chain[i]);
    gnutls_free(chain);
    if (rc < 0) {
        snprintf(err, n, "--tls-cert %s: not a PEM certificate (%s)", cert_path,
                 gnutls_strerror(rc));
        return -1;
    }
    gnutls_x509_privkey_t pk;
    if ((rc = gnutls_x509_privkey_init(&pk)) == 0) {
        rc = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
        gnutls_x509_privkey_deinit(pk);
    }
    if (rc < 0) {
        snprintf(err, n, "--tls-key %s: not an unencrypted PEM private key (%s)", key_path,
                 gnutls_strerror(rc));
        return -1;
    }
    gnutls_certificate_credentials_t cred;
    if ((rc = gnutls_certificate_allocate_credentials(&cred)) == 0) {
        rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
        gnutls_certificate_free_credentials(cred);
    }
    if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
        snprintf(err, n, "--tls-key %s is not the key of the certificate in --tls-cert %s",
                 key_path, cert_path);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, n, "--tls-cert %s with --tls-key %s: %s", cert_path, key_path,
                 gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

Tls *tls_load(const char *cert_path, const char *key_path, char *err, size_t err_len)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, err_len, "--tls-cert: this libmicrohttpd was built without TLS");
        return NULL;
    }
    Tls *t = calloc(1, sizeof *t);
    size_t cert_len = 0, key_len = 0;
    if (!t) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (!(t->cert = read_pem("--tls-cert", cert_path, &cert_len, err, err_len)) ||
        !(t->key = read_pem("--tls-key", key_path, &key_len, err, err_len)) ||
        check_pair(t, cert_len, key_len, cert_path, key_path, err, err_len)) {
        tls_free(t);
        return NULL;
    }
    return t;
}

const char *tls_cert_pem(const Tls *t)
{
    return t->cert;
}

const char *tls_key_pem(const Tls *t)
{
    return t->key;
}

void tls_free(Tls *t)
{
    if (!t)
        return;
    free(t->cert);
    if (t->key) /* the key leaves no copy in freed memory */
        explicit_bzero(t->key, strlen(t->key));
    free(t->key);
    free(t);
}
