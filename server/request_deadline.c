/* request_deadline.c - the connections libmicrohttpd holds, each with the
 * time by which its request must have arrived, and a thread that cuts off
 * those past it. MHD notifies a connection's end before it closes the
 * socket, and the notification takes the same lock, so the thread never
 * touches a socket number after MHD has let go of it. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "request_deadline.h"

typedef struct Tracked {
    struct Tracked *prev, *next;
    MHD_socket fd;
    double deadline; /* monotonic seconds; 0 while a received request is answered */
} Tracked;

struct Deadlines {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    long timeout;
    Tracked *head;
};

static Tracked *tracked_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static void set_deadline(Deadlines *d, struct MHD_Connection *conn, double deadline)
{
    Tracked *t = tracked_of(conn);
    if (!t)
        return;
    pthread_mutex_lock(&d->lock);
    t->deadline = deadline;
    pthread_mutex_unlock(&d->lock);
}

void deadlines_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
    Deadlines *d = cls;
    Tracked *t = *socket_context;
    pthread_mutex_lock(&d->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info && (t = calloc(1, sizeof *t))) {
            t->fd = info->connect_fd;
            t->deadline = clock_seconds() + (double)d->timeout;
            t->next = d->head;
            if (d->head)
                d->head->prev = t;
            d->head = t;
            *socket_context = t;
        }
    } else if (t) {
        if (t->prev)
            t->prev->next = t->next;
        else
            d->head = t->next;
        if (t->next)
            t->next->prev = t->prev;
        free(t);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&d->lock);
}

static void *deadlines_main(void *arg)
{
    Deadlines *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        cond_wait_ms(&d->wake, &d->lock, 250);
        double now = clock_seconds();
        for (Tracked *t = d->head; t; t = t->next)
            if (t->deadline > 0.0 && now > t->deadline) {
                shutdown(t->fd, SHUT_RDWR);
                t->deadline = 0.0; /* once */
                fprintf(stderr,
                        "{\"level\":\"warn\",\"msg\":\"request not received within "
                        "--request-timeout: connection closed\",\"seconds\":%ld}\n",
                        d->timeout);
            }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

Deadlines *deadlines_start(long timeout)
{
    Deadlines *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    d->timeout = timeout;
    if (pthread_create(&d->thread, NULL, deadlines_main, d) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

void deadlines_stop(Deadlines *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

void deadline_clear(Deadlines *d, struct MHD_Connection *conn)
{
    set_deadline(d, conn, 0.0);
}

void deadline_restart(Deadlines *d, struct MHD_Connection *conn)
{
    set_deadline(d, conn, clock_seconds() + (double)d->timeout);
}
