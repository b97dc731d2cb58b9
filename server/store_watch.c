/* store_watch.c - the store's rescanning thread (see store_watch.h).
 * Polling rather than inotify: inotify does not see what other machines
 * write to a network volume (NFS, a Kubernetes ReadWriteMany claim), and
 * a rescan that finds nothing new is a few directory reads. */
#include "store_watch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct StoreWatch {
    Store *store;
    long interval_s;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* signalled by stop */
    bool stopping;
};

static void *watch_main(void *arg)
{
    StoreWatch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += w->interval_s;
        while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->lock, &until) == 0)
            ;
        if (w->stopping)
            break;
        pthread_mutex_unlock(&w->lock);
        int added, dropped;
        MnError err = {0};
        if (store_rescan(w->store, &added, &dropped, &err))
            fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"store rescan failed\",\"error\":\"%s\"}\n",
                    err.msg);
        else if (added || dropped)
            fprintf(stderr, "{\"level\":\"info\",\"msg\":\"store rescanned\",\"added\":%d,"
                    "\"dropped\":%d}\n", added, dropped);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

StoreWatch *store_watch_start(Store *store, long interval_s)
{
    if (interval_s <= 0)
        return NULL;
    StoreWatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->store = store;
    w->interval_s = interval_s;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&w->thread, NULL, watch_main, w)) {
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"store watch thread not started\"}\n");
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

void store_watch_stop(StoreWatch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
