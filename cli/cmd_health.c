/* cmd_health.c - `mnistd health`: asks a running server whether it is live
 * (GET /v2/health/live) and exits 0 if it answers 200, 1 otherwise. The
 * container's HEALTHCHECK runs it: the runtime image has no curl. The port
 * is MNISTD_PORT's (8080), the address 127.0.0.1: the check runs beside
 * the server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"

int cmd_health(int argc, char **argv)
{
    const char *env = getenv("MNISTD_PORT");
    long port = env && *env ? strtol(env, NULL, 10) : 8080;
    const char *path = "/v2/health/live";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--ready")) {
            path = "/v2/health/ready";
        } else {
            fprintf(stderr, "usage: mnistd health [--port P] [--ready]\n");
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
             write(fd, request, strlen(request)) == (ssize_t)strlen(request) &&
             read(fd, reply, sizeof reply - 1) > 12 && !strncmp(reply + 8, " 200", 4);
    if (fd >= 0)
        close(fd);
    if (!ok)
        fprintf(stderr, "mnistd health: 127.0.0.1:%ld%s did not answer 200\n", port, path);
    return ok ? 0 : 1;
}
