/* store.h - the model store: every MODELS/NAME/vN.mnm loaded at start and
 * at each rescan, each version reference-counted so a request that holds
 * one keeps it alive while a newer version is added or an old one deleted.
 * Thread-safe. */
#ifndef MN_STORE_H
#define MN_STORE_H

#include <stdbool.h>

#include "error.h"
#include "model.h"
#include "run_pool.h"

typedef struct Store Store;

struct cJSON;

typedef struct {
    char name[64];
    int version;
    Model *model;   /* read-only while held */
    RunPool *runs;  /* arenas for predictions on this version */
    /* the class names as a JSON array, made once: each answer that lists
     * them refers to it (infer_result_json) instead of copying ten names */
    const struct cJSON *classes;
} StoreEntry;

/* Loads every valid model under dir; a file that fails its checks is
 * skipped with a line on stderr (never served). */
Store *store_open(const char *dir, const SpecLimits *lim, MnError *err);
void store_close(Store *s);
/* Copies every NAME/vN.mnm under from into dir (each through a temporary
 * file and a rename): how an empty store gets the shipped models. */
int store_seed(const char *dir, const char *from, MnError *err);
/* Loads the versions whose files appeared since the last scan (published
 * by another process: a training Job, another replica) and takes out of
 * service those whose files are gone. A refused file is reported once and
 * read again only when it changes. One scanner at a time. */
int store_rescan(Store *s, int *added, int *dropped, MnError *err);
/* Files refused so far (bad checksum, truncated, ...). */
int store_load_errors(const Store *s);

/* The entry for name at version (0: the latest), held until store_release;
 * NULL with MN_ENOTFOUND in err when absent. */
const StoreEntry *store_acquire(Store *s, const char *name, int version, MnError *err);
void store_release(Store *s, const StoreEntry *e);

/* Adds a version (taking ownership of m); it is visible to the next
 * acquire of that name, while holders of older versions keep theirs. A
 * version already there stays, and m is freed. */
int store_add(Store *s, const char *name, int version, Model *m, MnError *err);
const char *store_dir(const Store *s);
/* Takes a version out of service and deletes its file; requests holding it
 * finish on it. MN_ENOTFOUND when absent. */
int store_remove(Store *s, const char *name, int version, MnError *err);

/* Names (sorted, deduplicated) and each one's versions, for listings:
 * calls fn once per name with its versions ascending. */
void store_each(Store *s, void (*fn)(const char *name, const int *versions, int n, void *ctx),
                void *ctx);
int store_count(Store *s);

#endif
