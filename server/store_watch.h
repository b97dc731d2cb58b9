/* store_watch.h - serves the model versions that other processes publish
 * into the store (a training Job on the shared volume, another replica's
 * job) without a restart: a thread rescans the store every few seconds. */
#ifndef MN_STORE_WATCH_H
#define MN_STORE_WATCH_H

#include "store.h"

typedef struct StoreWatch StoreWatch;

/* Rescans every interval_s seconds until stopped; NULL when interval_s is
 * 0 (watching off) or the thread cannot start (reported on stderr). */
StoreWatch *store_watch_start(Store *store, long interval_s);
/* Wakes the thread, waits for it to end and frees it; NULL is a no-op. */
void store_watch_stop(StoreWatch *w);

#endif
