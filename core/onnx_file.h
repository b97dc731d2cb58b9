/* onnx_file.h - ONNX bytes to protobuf-c's ModelProto, bounded, and what
 * the importer and exporter share: metadata keys and tensor access.
 * Internal to core's onnx_*.c files (it names protobuf-c's generated
 * types); the rest of mnistd uses onnx_import.h and onnx_export.h. */
#ifndef MN_ONNX_FILE_H
#define MN_ONNX_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "onnx.pb-c.h"

/* metadata_props written on export, read on import. */
#define ONNX_META_CLASSES "mnistd.class_names"          /* a JSON array of strings */
#define ONNX_META_PREPROCESS "mnistd.image_preprocess"  /* digit | frame | none */
#define ONNX_META_DATASET "mnistd.dataset"
#define ONNX_META_INPUT "mnistd.input"                  /* what the input tensor holds, for people */

/* Messages nest (a graph in a node's attribute, ...); protobuf-c unpacks
 * them recursively with no limit of its own, so deeper files are refused
 * before it sees them. mnistd's graphs have no subgraphs: 2 levels in a
 * tensor's shape within a graph within a model, a few more for types. */
#define ONNX_MAX_DEPTH 16
/* What protobuf-c may allocate while unpacking, per byte of the file. */
#define ONNX_UNPACK_BYTES_PER_BYTE 8

/* Unpacks len bytes (the caller has checked len against its limit);
 * NULL and err set when the bytes are not an ONNX model, nest too deep or
 * would need more memory than the bound. Free with onnx_file_free. */
Onnx__ModelProto *onnx_file_unpack(const void *buf, size_t len, MnError *err);
void onnx_file_free(Onnx__ModelProto *m);

/* A FLOAT tensor's numel from its dims, checked against the data it
 * carries before anything is allocated: dims non-negative, product within
 * max, raw_data or float_data holding exactly that many floats, no
 * external data. Fills *numel; 0 or err naming the tensor (what). */
int onnx_tensor_check_float(const Onnx__TensorProto *t, size_t max, size_t *numel,
                            const char *what, MnError *err);
/* Element i of a checked FLOAT tensor. */
float onnx_tensor_float(const Onnx__TensorProto *t, size_t i);
/* An INT64 tensor's values (Reshape's shape): up to max of them into out. */
int onnx_tensor_int64s(const Onnx__TensorProto *t, int64_t *out, size_t max, size_t *n,
                       const char *what, MnError *err);

#endif
