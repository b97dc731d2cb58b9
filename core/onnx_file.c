/* onnx_file.c - ONNX bytes unpacked by protobuf-c within bounds: nesting
 * depth checked first (protobuf-c recurses without a limit), every
 * allocation counted against a budget proportional to the file, and the
 * tensors' dims checked against the data they carry before the importer
 * allocates anything from them. */
#include "onnx_file.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* --- nesting depth, before protobuf-c sees the bytes --- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Walks the wire format of one message of type d: only the framing (tags,
 * lengths), using protobuf-c's own descriptors to know which
 * length-delimited fields are messages. Values are left to protobuf-c. */
static int check_depth(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                       int depth, MnError *err)
{
    if (depth > ONNX_MAX_DEPTH)
        return mn_fail(err, MN_ELIMIT, "ONNX messages nest deeper than %d levels", ONNX_MAX_DEPTH);
    while (p < end) {
        uint64_t tag, n;
        if (read_varint(&p, end, &tag))
            return mn_fail(err, MN_EINVAL, "not an ONNX model: truncated field tag");
        switch (tag & 7) {
        case 0:
            if (read_varint(&p, end, &n))
                return mn_fail(err, MN_EINVAL, "not an ONNX model: truncated varint");
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return mn_fail(err, MN_EINVAL, "not an ONNX model: truncated fixed field");
            p += w;
            break;
        }
        case 2: {
            if (read_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return mn_fail(err, MN_EINVAL, "not an ONNX model: a field runs past the end");
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                                       : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = check_depth(p, p + n, f->descriptor, depth + 1, err);
                if (rc)
                    return rc;
            }
            p += n;
            break;
        }
        default: /* groups (3, 4) are not in onnx.proto; 6 and 7 do not exist */
            return mn_fail(err, MN_EINVAL, "not an ONNX model: wire type %d",
                           (int)(tag & 7));
        }
    }
    return 0;
}

/* --- protobuf-c's allocations, counted --- */

typedef struct {
    size_t used, cap;
    bool refused; /* an allocation went past cap */
} Budget;

#define HEADER 16 /* keeps the caller's memory 16-byte aligned; holds the size */

static void *budget_alloc(void *data, size_t size)
{
    Budget *b = data;
    if (size > b->cap - b->used || size > SIZE_MAX - HEADER) {
        b->refused = true;
        return NULL;
    }
    unsigned char *p = malloc(size + HEADER);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    b->used += size;
    return p + HEADER;
}

static void budget_free(void *data, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HEADER;
    if (data) {
        size_t size;
        memcpy(&size, p, sizeof size);
        ((Budget *)data)->used -= size;
    }
    free(p);
}

/* After unpacking nothing more is counted: freeing needs no budget. */
static ProtobufCAllocator release_allocator = {budget_alloc, budget_free, NULL};

Onnx__ModelProto *onnx_file_unpack(const void *buf, size_t len, MnError *err)
{
    if (check_depth(buf, (const uint8_t *)buf + len, &onnx__model_proto__descriptor, 0, err))
        return NULL;
    size_t cap = len > SIZE_MAX / ONNX_UNPACK_BYTES_PER_BYTE - 4096
                     ? SIZE_MAX
                     : len * ONNX_UNPACK_BYTES_PER_BYTE + 4096;
    Budget b = {0, cap, false};
    ProtobufCAllocator a = {budget_alloc, budget_free, &b};
    Onnx__ModelProto *m = onnx__model_proto__unpack(&a, len, buf);
    if (!m) {
        /* protobuf-c tells no reason: a failed allocation is ours to tell */
        if (b.refused)
            mn_fail(err, MN_ELIMIT, "the ONNX model would take more than %zu bytes to unpack",
                    b.cap);
        else
            mn_fail(err, MN_EINVAL, "not an ONNX model (protobuf-c could not unpack its %zu "
                    "bytes)", len);
        return NULL;
    }
    if (!m->graph) {
        onnx_file_free(m);
        mn_fail(err, MN_EINVAL, "the ONNX model has no graph");
        return NULL;
    }
    return m;
}

void onnx_file_free(Onnx__ModelProto *m)
{
    if (m)
        onnx__model_proto__free_unpacked(m, &release_allocator);
}

/* --- tensors --- */

static int check_dims(const Onnx__TensorProto *t, size_t max, size_t *numel, const char *what,
                      MnError *err)
{
    size_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return mn_fail(err, MN_EINVAL, "%s: dimension %zu is %lld", what, i,
                           (long long)t->dims[i]);
        if (t->dims[i] > 0 && n > max / (size_t)t->dims[i])
            return mn_fail(err, MN_ELIMIT, "%s: dims claim more than %zu elements", what, max);
        n *= (size_t)t->dims[i];
    }
    *numel = n;
    return 0;
}

static int check_local(const Onnx__TensorProto *t, const char *what, MnError *err)
{
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        t->n_external_data > 0)
        return mn_fail(err, MN_ESPEC, "%s: external data is not supported (the weights "
                       "must be inside the .onnx file)", what);
    if (t->segment)
        return mn_fail(err, MN_ESPEC, "%s: segmented tensors are not supported", what);
    return 0;
}

int onnx_tensor_check_float(const Onnx__TensorProto *t, size_t max, size_t *numel,
                            const char *what, MnError *err)
{
    int rc;
    if ((rc = check_local(t, what, err)))
        return rc;
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return mn_fail(err, MN_ESPEC, "%s: data type %d is not FLOAT (1)", what,
                       (int)t->data_type);
    if ((rc = check_dims(t, max, numel, what, err)))
        return rc;
    size_t have = t->has_raw_data ? t->raw_data.len / 4 : t->n_float_data;
    if ((t->has_raw_data && (t->raw_data.len % 4 || t->n_float_data)) || have != *numel)
        return mn_fail(err, MN_EINVAL, "%s: dims say %zu floats, the data holds %s%zu", what,
                       *numel, t->has_raw_data && t->raw_data.len % 4 ? "a fraction over " : "",
                       have);
    return 0;
}

float onnx_tensor_float(const Onnx__TensorProto *t, size_t i)
{
    if (!t->has_raw_data)
        return t->float_data[i];
    const uint8_t *p = t->raw_data.data + 4 * i; /* little-endian, whatever the host */
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int onnx_tensor_int64s(const Onnx__TensorProto *t, int64_t *out, size_t max, size_t *n,
                       const char *what, MnError *err)
{
    int rc;
    size_t numel = 0;
    if ((rc = check_local(t, what, err)))
        return rc;
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return mn_fail(err, MN_ESPEC, "%s: data type %d is not INT64 (7)", what,
                       (int)t->data_type);
    if ((rc = check_dims(t, max, &numel, what, err)))
        return rc;
    size_t have = t->has_raw_data ? t->raw_data.len / 8 : t->n_int64_data;
    if ((t->has_raw_data && t->raw_data.len % 8) || have != numel)
        return mn_fail(err, MN_EINVAL, "%s: dims say %zu values, the data holds %zu", what, numel,
                       have);
    for (size_t i = 0; i < numel; i++) {
        if (!t->has_raw_data) {
            out[i] = t->int64_data[i];
            continue;
        }
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--)
            u = u << 8 | t->raw_data.data[8 * i + (size_t)k];
        memcpy(&out[i], &u, sizeof u);
    }
    *n = numel;
    return 0;
}
