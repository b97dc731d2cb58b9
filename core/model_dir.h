/* model_dir.h - where model versions live: MODELS_DIR/NAME/vN.mnm.
 * Names are checked (letters, digits, '-', '_', '.', not starting with a
 * dot) before any path is made, so a reference cannot leave the directory. */
#ifndef MN_MODEL_DIR_H
#define MN_MODEL_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "model.h"

/* Parses "NAME" or "NAME:VERSION"; version 0 means the latest. */
int model_ref_parse(const char *ref, char *name, size_t name_len, int *version, MnError *err);
/* Highest version present for name (0 when none). */
int model_dir_latest(const char *models_dir, const char *name);
/* Path of NAME's version (latest when version is 0); MN_ENOTFOUND if absent. */
int model_dir_path(const char *models_dir, const char *name, int version, char *path, size_t n,
                   int *resolved, MnError *err);
/* Creates MODELS_DIR/NAME if needed; the path and number of the next
 * version (another process may take it first: publish with the next). */
int model_dir_next(const char *models_dir, const char *name, char *path, size_t n, int *version,
                   MnError *err);

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
