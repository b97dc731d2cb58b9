/* onnx_export.h - any mnistd Model written as an ONNX model (opset 13,
 * IR version 7) that ONNX Runtime and onnx.checker accept: input "input",
 * float (N, C, H, W) pixels in [0, 1] as mnistd's image preprocessing
 * leaves them (standardization, when the model has it, is in the graph);
 * output "probabilities" (N, classes). Class names, the image
 * preprocessing and the dataset go in metadata_props (onnx_file.h's
 * keys), which onnx_import reads back. */
#ifndef MN_ONNX_EXPORT_H
#define MN_ONNX_EXPORT_H

#include <stddef.h>

#include "error.h"
#include "model.h"

#define ONNX_EXPORT_OPSET 13
#define ONNX_EXPORT_IR_VERSION 7

/* The file's bytes in *buf (malloc'd: the caller frees) and *len. */
int onnx_export(const Model *m, unsigned char **buf, size_t *len, MnError *err);

#endif
