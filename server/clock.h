/* clock.h - time for the server's threads: monotonic seconds for
 * durations and deadlines, and a condition wait that gives up after a few
 * milliseconds (threads that also poll: a signal may come just before the
 * wait, or a count they read may lag). */
#ifndef MN_CLOCK_H
#define MN_CLOCK_H

#include <pthread.h>
#include <time.h>

static inline double clock_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* pthread_cond_timedwait for at most ms milliseconds, the mutex held. */
static inline void cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the clock a default condition waits on */
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cond, lock, &ts);
}

#endif
