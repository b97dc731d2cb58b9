/* dataset_cache.h - datasets the server shows (the gallery's samples), each
 * split loaded on first use and kept until the server stops. Thread-safe. */
#ifndef MN_DATASET_CACHE_H
#define MN_DATASET_CACHE_H

#include "dataset.h"

typedef struct DatasetCache DatasetCache;

DatasetCache *dataset_cache_new(const char *data_dir);
void dataset_cache_free(DatasetCache *c);
/* The split, loaded once; valid until dataset_cache_free. NULL and err when absent. */
const Dataset *dataset_cache_get(DatasetCache *c, const char *name, DatasetSplit split,
                                 MnError *err);

#endif
