/* idx.c - IDX files (the MNIST format): big-endian header, unsigned bytes.
 * zlib's gzread reads gzip and plain files alike. The header's size is
 * checked against max_bytes before allocating, and against what arrives. */
#include "idx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int idx_load(const char *path, size_t max_bytes, IdxArray *out, MnError *err)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return mn_fail(err, errno == ENOENT ? MN_ENOTFOUND : MN_EIO, "%s: cannot open: %s", path,
                       strerror(errno ? errno : EIO));
    unsigned char head[4];
    int rc = 0;
    if (gzread(f, head, 4) != 4) {
        rc = mn_fail(err, MN_ECORRUPT, "%s: truncated IDX header", path);
        goto done;
    }
    if (head[0] || head[1] || head[2] != 0x08) {
        rc = mn_fail(err, MN_EFORMAT, "%s: not an unsigned-byte IDX file (magic %02x%02x%02x%02x)",
                     path, head[0], head[1], head[2], head[3]);
        goto done;
    }
    if (head[3] < 1 || head[3] > IDX_MAX_DIMS) {
        rc = mn_fail(err, MN_EFORMAT, "%s: %d dimensions, at most %d supported", path, head[3],
                     IDX_MAX_DIMS);
        goto done;
    }
    out->ndims = head[3];
    size_t size = 1;
    for (int i = 0; i < out->ndims; i++) {
        unsigned char d[4];
        if (gzread(f, d, 4) != 4) {
            rc = mn_fail(err, MN_ECORRUPT, "%s: truncated IDX header", path);
            goto done;
        }
        out->dims[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (out->dims[i] && size > max_bytes / out->dims[i]) {
            rc = mn_fail(err, MN_ELIMIT, "%s: header claims more than the %zu-byte limit", path,
                         max_bytes);
            goto done;
        }
        size *= out->dims[i];
    }
    out->size = size;
    out->data = malloc(size ? size : 1);
    if (!out->data) {
        rc = mn_fail(err, MN_ENOMEM, "%s: %zu bytes: out of memory", path, size);
        goto done;
    }
    size_t got = 0;
    while (got < size) {
        unsigned chunk = size - got > (1u << 30) ? 1u << 30 : (unsigned)(size - got);
        int n = gzread(f, out->data + got, chunk);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != size) {
        int zerr;
        const char *why = gzerror(f, &zerr);
        rc = mn_fail(err, MN_ECORRUPT, "%s: truncated: header says %zu bytes of data, file has %zu%s%s",
                     path, size, got, zerr < 0 ? ": " : "", zerr < 0 ? why : "");
        goto done;
    }
    unsigned char extra;
    if (gzread(f, &extra, 1) != 0) {
        rc = mn_fail(err, MN_ECORRUPT, "%s: trailing bytes after %zu bytes of data", path, size);
        goto done;
    }
done:
    gzclose(f);
    if (rc)
        idx_free(out);
    return rc;
}

void idx_free(IdxArray *a)
{
    free(a->data);
    a->data = NULL;
    a->size = 0;
}
