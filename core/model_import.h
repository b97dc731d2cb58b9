/* model_import.h - a model from bytes somebody brings (an upload, `mnistd
 * import`): an .mnm file (told by its magic) or ONNX; and, as Keras's
 * model.load_weights, the weights of such a model put into a spec of the
 * same layer shapes. */
#ifndef MN_MODEL_IMPORT_H
#define MN_MODEL_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "model.h"
#include "onnx_import.h"

/* .mnm (loaded as model_load_buffer does, its name then set to opt->name)
 * or ONNX (onnx_import, opt->max_bytes applying). */
int model_import_bytes(const void *buf, size_t len, const OnnxImportOptions *opt,
                       const SpecLimits *lim, Model **out, MnError *err);

/* "a,b,c" (--classes, ?classes=) split in place into names, at most
 * MODEL_MAX_CLASSES of them: their count, or -1 when there are more. */
int model_import_split_classes(char *list, const char **names);

/* Builds spec and copies src's weights and moving statistics into it:
 * the layers that have any, in order, must match one for one in type and
 * shape (errors name both layers). Class names come from src. */
int model_import_weights(const ModelSpec *spec, const Model *src, const SpecLimits *lim,
                         Model **out, MnError *err);

#endif
