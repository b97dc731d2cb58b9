/* cmd_health.c - `mnistd health`: asks a running server whether it is live
 * (GET /v2/health/live) and exits 0 if it answers 200, 1 otherwise. The
 * container's HEALTHCHECK runs it: the runtime image has no curl. The port
 * is MNISTD_PORT's (8080), the address 127.0.0.1: the check runs beside
 * the server. A server with MNISTD_TLS_CERT set (or --tls) is asked over
 * TLS, through GnuTLS like the server; its certificate is not checked, as
 * the question is only whether our own process on this machine answers. */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"

/* Sends request and reads the start of the answer into reply over fd, in
 * TLS when tls: the bytes read, or -1. */
static ssize_t exchange(int fd, bool tls, const char *request, char *reply, size_t n)
{
    size_t len = strlen(request);
    if (!tls)
        return write(fd, request, len) == (ssize_t)len ? read(fd, reply, n) : -1;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    ssize_t got = -1;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return -1;
    if (gnutls_init(&s, GNUTLS_CLIENT) == 0) {
        int rc;
        gnutls_set_default_priority(s);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
        gnutls_transport_set_int(s, fd);
        gnutls_handshake_set_timeout(s, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
        do
            rc = gnutls_handshake(s);
        while (rc < 0 && !gnutls_error_is_fatal(rc));
        if (rc == 0 && gnutls_record_send(s, request, len) == (ssize_t)len)
            got = gnutls_record_recv(s, reply, n);
        gnutls_deinit(s);
    }
    gnutls_certificate_free_credentials(cred);
    return got;
}

int cmd_health(int argc, char **argv)
{
    const char *env = getenv("MNISTD_PORT");
    const char *tls_env = getenv("MNISTD_TLS_CERT");
    long port = env && *env ? strtol(env, NULL, 10) : 8080;
    bool tls = tls_env && *tls_env;
    const char *path = "/v2/health/live";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--ready")) {
            path = "/v2/health/ready";
        } else if (!strcmp(argv[i], "--tls")) {
            tls = true;
        } else {
            fprintf(stderr, "usage: mnistd health [--port P] [--ready] [--tls]\n");
            return 2;
        }
    }
    if (port < 1 || port > 65535) {
        fprintf(stderr, "mnistd health: port %ld out of range\n", port);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval limit = {2, 0};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char request[128], reply[64] = {0};
    snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    int ok = fd >= 0 && !setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) &&
             !setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) &&
             !connect(fd, (struct sockaddr *)&addr, sizeof addr) &&
             exchange(fd, tls, request, reply, sizeof reply - 1) > 12 &&
             !strncmp(reply + 8, " 200", 4);
    if (fd >= 0)
        close(fd);
    if (!ok)
        fprintf(stderr, "mnistd health: %s://127.0.0.1:%ld%s did not answer 200\n",
                tls ? "https" : "http", port, path);
    return ok ? 0 : 1;
}
