/* model_file.h - the .mnm model file.
 *   magic "MNISTDM\0" (8 bytes) | format version u32 LE | header length u32 LE
 *   | JSON header (spec, class names, preprocessing, meta: history, test
 *   metrics, n_params, n_state) | n_params float32 LE (trainable) | n_state
 *   float32 LE (moving statistics) | CRC32 (zlib) of everything before it.
 * Version 2 added n_state; version 1 files (no state) still load.
 * Written to PATH.tmp.PID (locked while written), fsynced, renamed over the
 * target, directory fsynced: a reader sees the old file or the new one,
 * never half of one.
 * A truncated, corrupted or wrong-version file is refused with the file
 * name and the problem. */
#ifndef MN_MODEL_FILE_H
#define MN_MODEL_FILE_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"
#include "model.h"

#define MODEL_FILE_VERSION 2
#define MODEL_FILE_VERSION_OLDEST 1

/* True when buf starts with the file's magic (an upload tells .mnm from ONNX so). */
bool model_file_has_magic(const void *buf, size_t len);

int model_save(const Model *m, const char *path, MnError *err);
/* The file's bytes into f, flushed and fsynced (f stays open); name is for
 * messages. model_save and model_dir_publish write through it. */
int model_write(const Model *m, FILE *f, const char *name, MnError *err);
int model_load(const char *path, const SpecLimits *lim, Model **out, MnError *err);
/* fsyncs the directory holding path, so a name just made there (a rename,
 * a link) survives a crash; -1 when it cannot. */
int model_file_fsync_dir(const char *path);
/* The same from bytes in memory (tests, uploads). */
int model_load_buffer(const void *buf, size_t len, const char *name, const SpecLimits *lim,
                      Model **out, MnError *err);

#endif
