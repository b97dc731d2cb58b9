/* workers.c - see workers.h. A worker waits on an epoll set of two: its
 * daemon's epoll descriptor (readable when any connection or MHD's
 * inter-thread channel has an event) and an eventfd the acceptor writes
 * when it queues a socket. It waits no longer than MHD_get_timeout says
 * (0 while MHD has data in hand), then adds the queued sockets (when the
 * eventfd is among the events) and lets MHD_run do one pass that does not
 * block. */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* The longest wait with nothing due: how soon a worker sees it must stop. */
#define IDLE_WAIT_MS 1000

typedef struct {
    int fd;
    struct sockaddr_in peer;
    Connection *rec;
} Handed;

typedef struct {
    int index;
    Connections *conns;
    struct MHD_Daemon *daemon;
    int epoll_fd, wake_fd;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards queue, n_queued and cap */
    Handed *queue, *spare; /* filled by the acceptor; the one being added from */
    size_t n_queued, cap, spare_cap;
} Worker;

struct Workers {
    int n;
    Connections *conns;
    Worker *w;
};

/* Adds what the acceptor queued, in the order it came: the two buffers
 * swap, so the acceptor never waits while MHD takes the sockets. */
static void add_queued(Worker *w)
{
    uint64_t ignored;
    (void)!read(w->wake_fd, &ignored, sizeof ignored);
    pthread_mutex_lock(&w->lock);
    Handed *batch = w->queue;
    size_t n = w->n_queued, cap = w->cap;
    w->queue = w->spare;
    w->cap = w->spare_cap;
    w->n_queued = 0;
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++) {
        connections_handing(w->conns, w->index, batch[i].rec);
        /* MHD closes the socket itself when it cannot take it. */
        MHD_add_connection(w->daemon, batch[i].fd, (const struct sockaddr *)&batch[i].peer,
                           sizeof batch[i].peer);
        connections_handed(w->conns, w->index);
    }
    pthread_mutex_lock(&w->lock);
    w->spare = batch;
    w->spare_cap = cap;
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    while (!atomic_load(&w->stop)) {
        MHD_UNSIGNED_LONG_LONG due;
        int wait_ms = IDLE_WAIT_MS;
        if (MHD_get_timeout(w->daemon, &due) == MHD_YES && due < (MHD_UNSIGNED_LONG_LONG)wait_ms)
            wait_ms = (int)due;
        struct epoll_event ev[2];
        int n = epoll_wait(w->epoll_fd, ev, 2, wait_ms); /* EINTR or not, the pass below is due */
        /* The eventfd stays readable until add_queued reads it, so a wake-up
         * not reported here is reported on the next wait: no read (and no
         * EAGAIN) on the passes that only serve connections. */
        for (int i = 0; i < n; i++)
            if (ev[i].data.fd == w->wake_fd)
                add_queued(w);
        MHD_run(w->daemon);
    }
    return NULL;
}

/* A socket no daemon got: closed, and its place in the table given up. */
static void drop(Connections *conns, int worker, int fd, Connection *rec)
{
    connections_handing(conns, worker, rec);
    close(fd);
    connections_handed(conns, worker);
}

static void worker_close(Worker *w)
{
    if (w->daemon)
        MHD_stop_daemon(w->daemon); /* closes its connections, each notified */
    for (size_t i = 0; i < w->n_queued; i++)
        drop(w->conns, w->index, w->queue[i].fd, w->queue[i].rec);
    free(w->queue);
    free(w->spare);
    if (w->epoll_fd >= 0)
        close(w->epoll_fd);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    pthread_mutex_destroy(&w->lock);
}

static int worker_open(Worker *w, int index, Connections *conns, WorkerDaemonStart start,
                       void *cls)
{
    *w = (Worker){.index = index, .conns = conns, .epoll_fd = -1, .wake_fd = -1};
    pthread_mutex_init(&w->lock, NULL);
    if (!(w->daemon = start(cls, index)))
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!info || w->epoll_fd < 0 || w->wake_fd < 0)
        return -1;
    struct epoll_event mhd = {.events = EPOLLIN, .data.fd = info->epoll_fd};
    struct epoll_event wake = {.events = EPOLLIN, .data.fd = w->wake_fd};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, info->epoll_fd, &mhd) ||
        epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->wake_fd, &wake))
        return -1;
    w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
    return w->started ? 0 : -1;
}

Workers *workers_start(int n, Connections *conns, WorkerDaemonStart start, void *cls, char *err,
                       size_t err_len)
{
    Workers *ws = calloc(1, sizeof *ws);
    if (ws)
        ws->w = calloc((size_t)n, sizeof *ws->w);
    if (!ws || !ws->w) {
        free(ws);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    ws->conns = conns;
    for (; ws->n < n; ws->n++) {
        if (worker_open(&ws->w[ws->n], ws->n, conns, start, cls)) {
            snprintf(err, err_len, "cannot start HTTP worker %d: %s", ws->n, strerror(errno));
            ws->n++; /* closed with the others */
            workers_stop(ws, 0);
            return NULL;
        }
    }
    return ws;
}

void workers_hand(Workers *ws, int worker, int fd, const struct sockaddr_in *peer,
                  Connection *rec)
{
    Worker *w = &ws->w[worker];
    pthread_mutex_lock(&w->lock);
    if (w->n_queued == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        Handed *grown = realloc(w->queue, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&w->lock);
            drop(ws->conns, worker, fd, rec);
            return;
        }
        w->queue = grown;
        w->cap = cap;
    }
    w->queue[w->n_queued++] = (Handed){.fd = fd, .peer = *peer, .rec = rec};
    pthread_mutex_unlock(&w->lock);
    uint64_t one = 1;
    (void)!write(w->wake_fd, &one, sizeof one);
}

bool workers_stop(Workers *ws, double deadline)
{
    if (!ws)
        return true;
    while (connections_busy(ws->conns) > 0 && clock_seconds() < deadline)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    bool drained = connections_busy(ws->conns) == 0;
    for (int i = 0; i < ws->n; i++) {
        Worker *w = &ws->w[i];
        atomic_store(&w->stop, true);
        uint64_t one = 1;
        if (w->wake_fd >= 0)
            (void)!write(w->wake_fd, &one, sizeof one);
    }
    for (int i = 0; i < ws->n; i++) {
        if (ws->w[i].started)
            pthread_join(ws->w[i].thread, NULL);
        worker_close(&ws->w[i]);
    }
    free(ws->w);
    free(ws);
    return drained;
}
