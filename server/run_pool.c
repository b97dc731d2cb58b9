/* run_pool.c - a stack of idle runs under a mutex (see run_pool.h). */
#include "run_pool.h"

#include <pthread.h>
#include <stdlib.h>

#define RUN_POOL_MAX 64 /* idle runs kept; more concurrent requests free theirs */

struct RunPool {
    const Model *m;
    pthread_mutex_t lock;
    ModelRun *idle[RUN_POOL_MAX];
    int n_idle;
};

RunPool *run_pool_new(const Model *m)
{
    RunPool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->m = m;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

void run_pool_free(RunPool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_idle; i++)
        model_run_free(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

ModelRun *run_pool_take(RunPool *p, MnError *err)
{
    ModelRun *r = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->n_idle > 0)
        r = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->lock);
    return r ? r : model_run_new(p->m, RUN_POOL_BATCH, false, err);
}

void run_pool_give(RunPool *p, ModelRun *r)
{
    pthread_mutex_lock(&p->lock);
    if (p->n_idle < RUN_POOL_MAX) {
        p->idle[p->n_idle++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    model_run_free(r);
}
