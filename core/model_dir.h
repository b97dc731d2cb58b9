/* model_dir.h - where model versions live: MODELS_DIR/NAME/vN.mnm.
 * Names are checked (letters, digits, '-', '_', '.', not starting with a
 * dot) before any path is made, so a reference cannot leave the directory. */
#ifndef MN_MODEL_DIR_H
#define MN_MODEL_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "model.h"

/* Version numbers run from 1 to this. */
#define MODEL_DIR_VERSION_MAX 1000000

/* Parses "NAME" or "NAME:VERSION"; version 0 means the latest. */
int model_ref_parse(const char *ref, char *name, size_t name_len, int *version, MnError *err);
/* Highest version present for name (0 when none). */
int model_dir_latest(const char *models_dir, const char *name);
/* Path of NAME's version (latest when version is 0); MN_ENOTFOUND if absent. */
int model_dir_path(const char *models_dir, const char *name, int version, char *path, size_t n,
                   int *resolved, MnError *err);
/* Creates MODELS_DIR/NAME if needed; the path and number of the next
 * version: above every number NAME ever had (its mark, below), so a
 * deleted version's number is never given again (another process may take
 * it first: publish with the next). */
int model_dir_next(const char *models_dir, const char *name, char *path, size_t n, int *version,
                   MnError *err);

/* Version numbers are never reused: caches, clients and replicas take a
 * number for the identity of one set of weights. NAME/.version-mark holds
 * the highest number NAME ever had; it survives restarts, crashes (written
 * to a temporary file, fsynced, renamed) and the deletion of every version.
 * Writers of it (publish, delete, seed), in any process sharing the store,
 * hold an exclusive flock on NAME/.version-lock while they read, decide
 * and write. Neither file is a version. */
#define MODEL_DIR_MARK ".version-mark"
#define MODEL_DIR_LOCK ".version-lock"
/* The lock (NAME's directory must exist): a descriptor to pass to
 * model_dir_unlock, or a negative MnCode. Blocks while another holds it. */
int model_dir_lock(const char *models_dir, const char *name, MnError *err);
void model_dir_unlock(int fd);
/* The highest number NAME ever had: its mark, or its highest file when that
 * is higher (a version published before marks existed, or copied in by
 * hand); 0 for a name never published. MN_EIO
 * when the mark is not a number. */
int model_dir_mark(const char *models_dir, const char *name, int *mark, MnError *err);
/* Raises NAME's mark to version (never lowers it); with the lock held. */
int model_dir_mark_raise_locked(const char *models_dir, const char *name, int version,
                                MnError *err);
/* The same, taking and releasing the lock: before a version is deleted. */
int model_dir_mark_raise(const char *models_dir, const char *name, int version, MnError *err);

/* model_dir_publish's private file, NAME/.publish-XXXXXX, until linked. */
#define MODEL_DIR_TEMP_PREFIX ".publish-"

/* Saves m as NAME's next version, never over another's: several processes
 * may publish into one store at once (server jobs, training Jobs on a
 * shared volume). Readers see no version or the whole file. Fills path and
 * version. */
int model_dir_publish(const Model *m, const char *models_dir, const char *name, char *path,
                      size_t n, int *version, MnError *err);
/* True for a writer's temporary file in a model directory (publish's
 * .publish-XXXXXX, model_save's and store_seed's vN.mnm.tmp...): never a
 * version; left behind only by a writer that died. Each writer holds an
 * exclusive flock on its file while the name exists. */
bool model_dir_is_temp(const char *file);

#endif
