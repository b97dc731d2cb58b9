/* run_pool.h - activation arenas kept between requests, one pool per model
 * version. A CNN's arena is close to a megabyte: made and freed per
 * request it cost a fresh mmap, page faults and a memset every time, which
 * on these virtual machines took longer than the forward pass itself. A
 * pool holds at most as many runs as requests ran at once, and frees them
 * with its model version. Thread-safe. */
#ifndef MN_RUN_POOL_H
#define MN_RUN_POOL_H

#include "error.h"
#include "model.h"

/* Samples a pooled run takes at once: bigger requests go through in chunks. */
#define RUN_POOL_BATCH 16

typedef struct RunPool RunPool;

RunPool *run_pool_new(const Model *m);
void run_pool_free(RunPool *p);
/* A run for up to RUN_POOL_BATCH samples: a kept one, or a new one. */
ModelRun *run_pool_take(RunPool *p, MnError *err);
/* Back into the pool for the next request. */
void run_pool_give(RunPool *p, ModelRun *r);

#endif
