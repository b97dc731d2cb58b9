/* onnx_import.h - an ONNX graph (what torch.onnx.export and tf2onnx
 * write) turned into an mnistd Model: the operators mnistd has layers for
 * (the table in README.md), NCHW/OIHW converted to mnistd's NHWC and Keras
 * kernels. Anything else - an operator, an attribute value, external
 * data - is refused with the node's index, name and operator. Bounded: the
 * byte limit first, then onnx_file.h's unpacking limits, then each
 * tensor's dims against the data it carries before anything is allocated. */
#ifndef MN_ONNX_IMPORT_H
#define MN_ONNX_IMPORT_H

#include <stddef.h>

#include "error.h"
#include "model.h"

#define ONNX_MAX_BYTES_DEFAULT (64u << 20) /* 64 MiB: 16M float32 weights */
#define ONNX_MAX_NODES 1024

typedef struct {
    size_t max_bytes;              /* the file's size limit */
    const char *name;              /* the model's name (its spec's "name") */
    /* NULL or < 0: the file's metadata_props (an mnistd export's), else
     * digit and the dataset that goes with the preprocessing. */
    const char *dataset;
    int image_preprocess;          /* ImagePreprocess, or -1 */
    /* n_classes names, or NULL: the metadata's, else "0".."n-1". */
    const char *const *class_names;
    int n_class_names;
} OnnxImportOptions;

void onnx_import_options_default(OnnxImportOptions *opt);

/* Builds *out (the caller frees it with model_free) from len bytes of
 * ONNX; its spec is the graph as mnistd layers, trained by nobody here. */
int onnx_import(const void *buf, size_t len, const OnnxImportOptions *opt, const SpecLimits *lim,
                Model **out, MnError *err);

#endif
