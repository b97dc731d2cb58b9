/* dataset_cache.c - a short list of loaded splits behind a mutex. */
#include "dataset_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 16

struct DatasetCache {
    pthread_mutex_t lock;
    char dir[1024];
    int n;
    Dataset sets[CACHE_MAX];
    DatasetSplit splits[CACHE_MAX];
};

DatasetCache *dataset_cache_new(const char *data_dir)
{
    DatasetCache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->dir, sizeof c->dir, "%s", data_dir);
    return c;
}

void dataset_cache_free(DatasetCache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        dataset_free(&c->sets[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const Dataset *dataset_cache_get(DatasetCache *c, const char *name, DatasetSplit split,
                                 MnError *err)
{
    const Dataset *found = NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->n && !found; i++)
        if (c->splits[i] == split && strcmp(c->sets[i].name, name) == 0)
            found = &c->sets[i];
    /* Loading under the lock: a second request for the same split waits
     * rather than loading it twice. */
    if (!found && c->n == CACHE_MAX)
        mn_fail(err, MN_ELIMIT, "too many datasets loaded");
    else if (!found && dataset_load(c->dir, name, split, &c->sets[c->n], err) == 0) {
        c->splits[c->n] = split;
        found = &c->sets[c->n++];
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}
