/* acceptor.c - see acceptor.h. The thread blocks in accept(); closing
 * shuts the listening socket down, which wakes it (EINVAL) for good. The
 * count of connections is MHD's own, read before each accept; a close
 * wakes the wait, which also looks again every 20 ms, as MHD counts a
 * connection gone a moment after it says so. */
#include "acceptor.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct Acceptor {
    int fd;
    long port;
    struct MHD_Daemon *daemon;
    unsigned max_connections;
    pthread_mutex_t lock;
    pthread_cond_t room;
    pthread_t thread;
    bool running;
    atomic_bool stopping; /* set before the shutdown() that wakes accept() */
};

Acceptor *acceptor_open(const char *host, long port, char *err, size_t err_len)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, err_len, "--host \"%s\" is not an IPv4 address", host);
        return NULL;
    }
    Acceptor *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    int on = 1;
    socklen_t len = sizeof addr;
    a->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a->fd < 0 || setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
        bind(a->fd, (struct sockaddr *)&addr, sizeof addr) || listen(a->fd, SOMAXCONN) ||
        getsockname(a->fd, (struct sockaddr *)&addr, &len)) {
        snprintf(err, err_len, "cannot listen on %s:%ld: %s", host, port, strerror(errno));
        if (a->fd >= 0)
            close(a->fd);
        free(a);
        return NULL;
    }
    a->port = ntohs(addr.sin_port);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->room, NULL);
    return a;
}

long acceptor_port(const Acceptor *a)
{
    return a->port;
}

static bool full(const Acceptor *a)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info && info->num_connections >= a->max_connections;
}

static void wait_for_room(Acceptor *a)
{
    pthread_mutex_lock(&a->lock);
    while (!a->stopping && full(a)) {
        cond_wait_ms(&a->room, &a->lock, 20);
    }
    pthread_mutex_unlock(&a->lock);
}

static void *accept_loop(void *arg)
{
    Acceptor *a = arg;
    while (!a->stopping) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept(a->fd, (struct sockaddr *)&peer, &len);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL); /* let some close */
            continue; /* EINTR, ECONNABORTED; EINVAL once shut down ends the loop */
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        /* at the limit, the client waits unanswered as if in the backlog */
        wait_for_room(a);
        if (a->stopping) {
            close(fd);
            break;
        }
        /* MHD closes the socket itself when it cannot take it */
        MHD_add_connection(a->daemon, fd, (struct sockaddr *)&peer, len);
    }
    return NULL;
}

int acceptor_run(Acceptor *a, struct MHD_Daemon *daemon, long max_connections)
{
    a->daemon = daemon;
    a->max_connections = (unsigned)max_connections;
    a->running = pthread_create(&a->thread, NULL, accept_loop, a) == 0;
    return a->running ? 0 : -1;
}

void acceptor_connection_closed(Acceptor *a)
{
    pthread_mutex_lock(&a->lock);
    pthread_cond_signal(&a->room);
    pthread_mutex_unlock(&a->lock);
}

void acceptor_stop(Acceptor *a)
{
    if (!a || a->fd < 0)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_signal(&a->room);
    pthread_mutex_unlock(&a->lock);
    shutdown(a->fd, SHUT_RDWR);
    if (a->running)
        pthread_join(a->thread, NULL);
    a->running = false;
    close(a->fd);
    a->fd = -1;
}

void acceptor_free(Acceptor *a)
{
    if (!a)
        return;
    acceptor_stop(a);
    pthread_cond_destroy(&a->room);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
