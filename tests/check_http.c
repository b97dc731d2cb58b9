/* check_http.c - the raw HTTP client of the server suites (see check_http.h). */
#include "check_http.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check_util.h"

int check_http_connect(int port)
{
    return check_http_connect_from(NULL, port);
}

int check_http_connect_from(const char *source, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (source) {
        struct sockaddr_in from = {.sin_family = AF_INET};
        inet_pton(AF_INET, source, &from.sin_addr);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10 * check_util_slowdown(), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

HttpReply check_http_read(int fd)
{
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    ssize_t r;
    while ((r = read(fd, buf + got, cap - got - 1)) > 0) {
        got += (size_t)r;
        if (got + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[got] = '\0';
    HttpReply rep = {0};
    rep.raw = buf;
    sscanf(buf, "HTTP/1.%*d %d", &rep.status);
    char *sep = strstr(buf, "\r\n\r\n");
    rep.body = sep ? sep + 4 : buf + got;
    rep.body_len = (size_t)(buf + got - rep.body);
    return rep;
}

HttpReply check_http_send(int port, const char *head, const void *body, size_t len)
{
    int fd = check_http_connect(port);
    /* MSG_NOSIGNAL: a server that closes early is an answer, not a SIGPIPE */
    size_t hlen = strlen(head);
    ck_assert_int_eq(send(fd, head, hlen, MSG_NOSIGNAL), (ssize_t)hlen);
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, (const char *)body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* answered (413) and closed before reading it all */
        off += (size_t)w;
    }
    HttpReply rep = check_http_read(fd);
    close(fd);
    return rep;
}

HttpReply check_http_request(int port, const char *method, const char *path, const char *type,
                             const char *extra, const void *body, size_t len)
{
    /* sized for the path and headers, which some tests make huge on purpose */
    size_t hlen = strlen(method) + strlen(path) + 512 + (type ? strlen(type) : 0) +
                  (extra ? strlen(extra) : 0);
    char *head = malloc(hlen);
    ck_assert_ptr_nonnull(head);
    snprintf(head, hlen,
             "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s%s"
             "Content-Length: %zu\r\n\r\n",
             method, path, type ? "Content-Type: " : "", type ? type : "", type ? "\r\n" : "",
             extra ? extra : "", len);
    HttpReply r = check_http_send(port, head, body, len);
    free(head);
    return r;
}

void check_http_free(HttpReply *r)
{
    free(r->raw);
    r->raw = r->body = NULL;
}

char *check_http_multipart(const char *field, unsigned char *const *files, const size_t *lens,
                           int n, size_t *out_len)
{
    size_t cap = 4096;
    for (int i = 0; i < n; i++)
        cap += lens[i] + 256;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        off += (size_t)sprintf(b + off,
                               "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"%s\"; "
                               "filename=\"d%d.png\"\r\nContent-Type: image/png\r\n\r\n",
                               field, i);
        memcpy(b + off, files[i], lens[i]);
        off += lens[i];
        off += (size_t)sprintf(b + off, "\r\n");
    }
    off += (size_t)sprintf(b + off, "--XbOuNdArY--\r\n");
    *out_len = off;
    return b;
}

cJSON *check_http_json(const HttpReply *r)
{
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "not JSON (status %d): %s", r->status, r->body);
    return j;
}

void check_http_expect_error(HttpReply r, int status, const char *code, const char *in_message)
{
    ck_assert_msg(r.status == status, "status %d, want %d: %s", r.status, status, r.body);
    cJSON *j = check_http_json(&r);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    ck_assert_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, code);
    const char *msg = cJSON_GetObjectItem(e, "message")->valuestring;
    ck_assert_msg(strstr(msg, in_message), "message \"%s\" lacks \"%s\"", msg, in_message);
    cJSON_Delete(j);
    check_http_free(&r);
}
