/* check_http.h - the raw HTTP/1.1 client the server suites (test_http,
 * test_hostile, test_recovery) share: plain sockets on 127.0.0.1, so a test
 * can send exactly the bytes it means to, lies and all. */
#ifndef MN_CHECK_HTTP_H
#define MN_CHECK_HTTP_H

#include <stddef.h>

#include <cJSON.h>

typedef struct {
    int status;    /* 0 if no status line came */
    char *raw;     /* headers and body, NUL-terminated */
    char *body;    /* into raw, after the blank line */
    size_t body_len;
} HttpReply;

/* A connection to 127.0.0.1:port with a 10 s receive timeout, so that a
 * server that hangs fails the test instead of stalling it. */
int check_http_connect(int port);
/* The same from a source address of the loopback range (127.0.0.2, ...),
 * as another client machine would connect; NULL: any. */
int check_http_connect_from(const char *source, int port);
/* Reads the answer to EOF (or the receive timeout); the fd stays open. */
HttpReply check_http_read(int fd);
/* Sends head as is, then body (stopping if the server stops reading, as when
 * it answers 413 early), and reads the answer over a fresh connection. */
HttpReply check_http_send(int port, const char *head, const void *body, size_t len);
/* One request with Connection: close and Content-Length. type (Content-Type)
 * and extra (more header lines, each ending in \r\n) may be NULL. */
HttpReply check_http_request(int port, const char *method, const char *path, const char *type,
                             const char *extra, const void *body, size_t len);
void check_http_free(HttpReply *r);

/* r's body as JSON (the caller deletes it); fails the test if it is not. */
cJSON *check_http_json(const HttpReply *r);
/* Fails the test unless r has this status and the error body
 * {"error": {"code": code, "message": ...in_message...}}; frees r. */
void check_http_expect_error(HttpReply r, int status, const char *code, const char *in_message);

/* A multipart/form-data body (malloc'd) of n PNG files, each in `field`,
 * with the boundary CHECK_HTTP_MULTIPART names. */
#define CHECK_HTTP_MULTIPART "multipart/form-data; boundary=XbOuNdArY"
char *check_http_multipart(const char *field, unsigned char *const *files, const size_t *lens,
                           int n, size_t *out_len);

#endif
