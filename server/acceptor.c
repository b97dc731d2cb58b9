/* acceptor.c - see acceptor.h. One epoll set holds the listening socket
 * (level-triggered: what one pass leaves is seen at the next), an eventfd
 * that says stop, and the sockets held here: newcomers at the limit parked
 * for PARK_SECONDS until their request head arrives (connections.h says
 * why), and refused sockets that linger: answered, shut for writing, read
 * and discarded until the client closes or LINGER_SECONDS pass. At most
 * ACCEPTOR_HELD_MAX are held; past that a newcomer at the limit is refused at once
 * and a refused socket closed at once. */
#include "acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* A client that sends its request with its connect has it here within a
 * round trip; one that takes longer is not the one to make room for. */
#define PARK_SECONDS 0.2
#define LINGER_SECONDS 2.0
/* The wait a refusal asks for, in seconds (Retry-After). */
#define RETRY_AFTER_S 1
/* Sockets accepted in one pass before the thread looks at the others. */
#define ACCEPT_BATCH 64
/* A request head this long counts as arrived, whole or not: no trickle. */
#define PEEK_BYTES 8192

typedef struct {
    int fd;          /* -1: free */
    bool parked;     /* waiting for its head; else lingering after a refusal */
    double deadline; /* monotonic seconds */
    struct sockaddr_in peer;
} Held;

struct Acceptor {
    int fd, epoll_fd, stop_fd;
    long port;
    bool tls;
    Connections *conns;
    Workers *workers;
    ConnectionLimits lim;
    pthread_t thread;
    bool running;
    Held held[ACCEPTOR_HELD_MAX];
    int n_held;
};

Acceptor *acceptor_open(const char *host, long port, bool tls, char *err, size_t err_len)
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
    a->epoll_fd = a->stop_fd = -1;
    for (int i = 0; i < ACCEPTOR_HELD_MAX; i++)
        a->held[i].fd = -1;
    int on = 1;
    socklen_t len = sizeof addr;
    a->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
    a->tls = tls;
    return a;
}

long acceptor_port(const Acceptor *a)
{
    return a->port;
}

/* ---- sockets held here ---- */

/* Takes h's socket back out of the table (and the epoll set): its fd. */
static int unhold(Acceptor *a, Held *h)
{
    int fd = h->fd;
    epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    h->fd = -1;
    a->n_held--;
    return fd;
}

/* Reads and drops what the client has sent, at most max_reads times;
 * the last recv's result (0: the client closed; -1 with errno). */
static ssize_t discard_input(int fd, int max_reads)
{
    char sink[4096];
    ssize_t n = -1;
    for (int i = 0; i < max_reads && (n = recv(fd, sink, sizeof sink, MSG_DONTWAIT)) > 0; i++)
        ;
    return n;
}

/* Keeps fd here until deadline, watching it for bytes; NULL when full. */
static Held *hold(Acceptor *a, int fd, bool parked, double seconds,
                  const struct sockaddr_in *peer)
{
    Held *h = NULL;
    for (int i = 0; i < ACCEPTOR_HELD_MAX && !h && a->n_held < ACCEPTOR_HELD_MAX; i++)
        if (a->held[i].fd < 0)
            h = &a->held[i];
    /* Edge-triggered: a trickle of bytes wakes the thread once a segment. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = h};
    if (!h || fcntl(fd, F_SETFL, O_NONBLOCK) || epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, fd, &ev))
        return NULL;
    *h = (Held){.fd = fd, .parked = parked, .deadline = clock_seconds() + seconds,
                .peer = *peer};
    a->n_held++;
    return h;
}

static void refuse(Acceptor *a, int fd, Admission why, const struct sockaddr_in *peer)
{
    char body[256], answer[512];
    bool per_ip = why == REFUSED_PER_IP;
    int blen = per_ip
        ? snprintf(body, sizeof body,
                   "{\"error\":{\"code\":\"too_many_connections_from_address\",\"message\":"
                   "\"this address holds its limit of %ld connections "
                   "(--max-connections-per-ip); retry in %d s\"}}",
                   a->lim.per_ip, RETRY_AFTER_S)
        : snprintf(body, sizeof body,
                   "{\"error\":{\"code\":\"too_many_connections\",\"message\":"
                   "\"the server holds its limit of %ld connections (--max-connections); "
                   "retry in %d s\"}}",
                   a->lim.max, RETRY_AFTER_S);
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nRetry-After: %d\r\n"
                     "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                     per_ip ? "429 Too Many Requests" : "503 Service Unavailable",
                     RETRY_AFTER_S, blen, body);
    /* A new socket's send buffer is empty: the answer fits. A TLS client
     * would take plain HTTP for a broken handshake: it only sees the close. */
    if (!a->tls)
        (void)!send(fd, answer, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    if (hold(a, fd, false, LINGER_SECONDS, peer))
        return;
    /* No room to linger: at least what has come is read, so the close
     * sends a FIN after the answer, not a reset (unread bytes make one). */
    discard_input(fd, 16);
    close(fd);
}

/* Whether a whole request head has arrived on fd (looked at, not read):
 * 1 yes, 0 not yet, -1 the client has gone. Over TLS the head is
 * encrypted and comes after the handshake: the client's first bytes, its
 * hello, are as near as this can see. */
static int head_arrived(int fd, bool tls)
{
    char buf[PEEK_BYTES];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return -1;
    if (n == (ssize_t)sizeof buf || (tls && n > 0))
        return 1;
    for (ssize_t i = 3; i < n; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return 1;
    return 0;
}

/* Admits fd, hands it over or refuses it; returns whether it left here. */
static bool settle(Acceptor *a, int fd, const struct sockaddr_in *peer, HeadArrival head)
{
    Connection *rec;
    int worker;
    Admission verdict = connections_admit(a->conns, fd, peer->sin_addr.s_addr, head, &rec, &worker);
    if (verdict == WAIT_FOR_HEAD) {
        int arrived = head_arrived(fd, a->tls);
        if (arrived < 0) {
            close(fd);
            return true;
        }
        verdict = connections_admit(a->conns, fd, peer->sin_addr.s_addr,
                                    arrived ? HEAD_READY : HEAD_NOT_YET, &rec, &worker);
        if (verdict == WAIT_FOR_HEAD)
            return false;
    }
    if (verdict == ADMITTED)
        workers_hand(a->workers, worker, fd, peer, rec);
    else
        refuse(a, fd, verdict, peer);
    return true;
}

/* Bytes came on a held socket: a parked one may now have its head; a
 * lingering one's are read and dropped until the client closes. */
static void held_readable(Acceptor *a, Held *h)
{
    if (h->parked) {
        int arrived = head_arrived(h->fd, a->tls);
        if (arrived == 0)
            return;
        struct sockaddr_in peer = h->peer;
        int fd = unhold(a, h);
        if (arrived < 0)
            close(fd);
        else
            settle(a, fd, &peer, HEAD_READY);
        return;
    }
    /* Edge-triggered: read until nothing is left. */
    ssize_t n = discard_input(h->fd, INT_MAX);
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        close(unhold(a, h));
}

/* Settles the parked and closes the lingering past their time; returns
 * the milliseconds to the next deadline (-1: none). */
static int held_expire(Acceptor *a)
{
    if (!a->n_held)
        return -1;
    double now = clock_seconds(), next = now + LINGER_SECONDS;
    for (int i = 0; i < ACCEPTOR_HELD_MAX; i++) {
        Held *h = &a->held[i];
        if (h->fd < 0)
            continue;
        if (h->deadline > now) {
            if (h->deadline < next)
                next = h->deadline;
        } else if (h->parked) {
            struct sockaddr_in peer = h->peer;
            settle(a, unhold(a, h), &peer, HEAD_OVERDUE);
        } else {
            close(unhold(a, h));
        }
    }
    return a->n_held ? (int)((next - now) * 1000.0) + 1 : -1;
}

/* ---- accepting ---- */

static void accept_some(Acceptor *a)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept(a->fd, (struct sockaddr *)&peer, &len);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL); /* let some close */
            return; /* EAGAIN: none left; EINTR, ECONNABORTED: the next pass */
        }
        /* Linux: an accepted socket takes none of the listener's flags. */
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (!settle(a, fd, &peer, HEAD_NOT_YET) && !hold(a, fd, true, PARK_SECONDS, &peer))
            settle(a, fd, &peer, HEAD_OVERDUE); /* no room to park it: refused */
    }
}

static void *accept_loop(void *arg)
{
    Acceptor *a = arg;
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(a->epoll_fd, ev, 64, held_expire(a));
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &a->stop_fd)
                return NULL;
            if (ev[i].data.ptr == &a->fd)
                accept_some(a);
            else if (((Held *)ev[i].data.ptr)->fd >= 0)
                held_readable(a, ev[i].data.ptr);
        }
    }
}

int acceptor_run(Acceptor *a, Connections *conns, Workers *workers, const ConnectionLimits *lim)
{
    a->conns = conns;
    a->workers = workers;
    a->lim = *lim;
    a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    a->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event listen_ev = {.events = EPOLLIN, .data.ptr = &a->fd};
    struct epoll_event stop_ev = {.events = EPOLLIN, .data.ptr = &a->stop_fd};
    if (a->epoll_fd < 0 || a->stop_fd < 0 ||
        epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->fd, &listen_ev) ||
        epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->stop_fd, &stop_ev))
        return -1;
    a->running = pthread_create(&a->thread, NULL, accept_loop, a) == 0;
    return a->running ? 0 : -1;
}

void acceptor_free(Acceptor *a)
{
    if (!a)
        return;
    if (a->running) {
        uint64_t one = 1;
        (void)!write(a->stop_fd, &one, sizeof one);
        pthread_join(a->thread, NULL);
    }
    for (int i = 0; i < ACCEPTOR_HELD_MAX; i++)
        if (a->held[i].fd >= 0)
            close(unhold(a, &a->held[i]));
    close(a->fd);
    if (a->epoll_fd >= 0)
        close(a->epoll_fd);
    if (a->stop_fd >= 0)
        close(a->stop_fd);
    free(a);
}
