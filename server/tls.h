/* tls.h - the certificate and key `mnistd serve` serves HTTPS with
 * (--tls-cert, --tls-key): read, parsed and matched against each other at
 * start with GnuTLS, the library libmicrohttpd's TLS runs on, so a bad
 * file or a key of another certificate stops the start with a message
 * naming the file, instead of failing every handshake later. Owns the PEM
 * text, which the daemons read (MHD_OPTION_HTTPS_MEM_KEY/CERT). */
#ifndef MN_SERVER_TLS_H
#define MN_SERVER_TLS_H

#include <stddef.h>

typedef struct Tls Tls;

/* A PEM file larger than this is refused unread: a chain of a few
 * certificates is some kilobytes. */
#define TLS_PEM_MAX_BYTES (1 << 20)

/* Reads and checks both files; NULL with the problem in err (the file, and
 * what is wrong: unreadable, too large, not PEM, encrypted key, key not of
 * the certificate, or a libmicrohttpd built without TLS). */
Tls *tls_load(const char *cert_path, const char *key_path, char *err, size_t err_len);
const char *tls_cert_pem(const Tls *t);
const char *tls_key_pem(const Tls *t);
/* NULL is a no-op. */
void tls_free(Tls *t);

#endif
