/* idx.h - the IDX format of the MNIST files (big-endian dims, ubyte data),
 * plain or gzip-compressed (zlib reads both). The header's counts are
 * checked against a size limit before any allocation, and against the bytes
 * that actually arrive. */
#ifndef MN_IDX_H
#define MN_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define IDX_MAX_DIMS 4

typedef struct {
    int ndims;
    uint32_t dims[IDX_MAX_DIMS];
    uint8_t *data; /* owned: product of dims bytes */
    size_t size;
} IdxArray;

/* Loads an unsigned-byte IDX file (type 0x08); max_bytes bounds the data. */
int idx_load(const char *path, size_t max_bytes, IdxArray *out, MnError *err);
void idx_free(IdxArray *a);

#endif
