/* content_coding.c - zlib under the HTTP content codings (see content_coding.h). */
#include "content_coding.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* zlib's windowBits: 15 with 16 added reads or writes the gzip wrapper,
 * negative means no wrapper at all (raw deflate). */
#define ZLIB_WINDOW 15
#define GZIP_WINDOW (ZLIB_WINDOW + 16)
#define RAW_WINDOW (-ZLIB_WINDOW)

int content_coding_from_name(const char *name)
{
    if (!strcasecmp(name, "identity") || !*name)
        return CODING_IDENTITY;
    if (!strcasecmp(name, "gzip") || !strcasecmp(name, "x-gzip"))
        return CODING_GZIP;
    if (!strcasecmp(name, "deflate"))
        return CODING_DEFLATE;
    return -1;
}

/* One pass of inflate over all of in with the given window; 0 done, 1 the
 * data is not in this wrapper (try another), or an MnCode. */
static int inflate_with(int window, const unsigned char *in, size_t len, size_t limit,
                        char **out, size_t *out_len, MnError *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window) != Z_OK)
        return mn_fail(err, MN_ENOMEM, "out of memory (zlib)");
    size_t cap = len * 4 + 256 < limit + 1 ? len * 4 + 256 : limit + 1, n = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    z.next_in = (unsigned char *)in;
    /* a body past 4 GiB never gets here: the body limit is far below */
    z.avail_in = (uInt)len;
    while (rc == Z_OK) {
        if (n == cap) {
            if (cap > limit)
                break; /* more than limit came out: refused below */
            size_t grown_cap = cap * 2 < limit + 1 ? cap * 2 : limit + 1;
            char *grown = realloc(buf, grown_cap + 1);
            if (!grown) {
                rc = Z_MEM_ERROR;
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        z.next_out = (unsigned char *)buf + n;
        z.avail_out = (uInt)(cap - n);
        rc = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (rc == Z_BUF_ERROR && z.avail_in == 0)
            break; /* input used up before the stream's end */
        if (rc == Z_BUF_ERROR)
            rc = Z_OK; /* room ran out: grow and go on */
    }
    size_t left = z.avail_in;
    inflateEnd(&z);
    int ret = 0;
    if (rc == Z_MEM_ERROR)
        ret = mn_fail(err, MN_ENOMEM, "out of memory inflating the request body");
    else if (n > limit)
        ret = mn_fail(err, MN_ELIMIT, "the request body inflates past the %zu-byte limit "
                      "(--max-body)", limit);
    else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
        ret = 1;
    else if (rc != Z_STREAM_END)
        ret = mn_fail(err, MN_EINVAL, "the compressed request body is cut short");
    else if (left)
        ret = mn_fail(err, MN_EINVAL, "%zu bytes follow the end of the compressed request body",
                      left);
    if (ret) {
        free(buf);
        return ret;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

int content_coding_inflate(ContentCoding coding, const void *in, size_t len, size_t limit,
                           char **out, size_t *out_len, MnError *err)
{
    int rc = inflate_with(coding == CODING_GZIP ? GZIP_WINDOW : ZLIB_WINDOW, in, len, limit, out,
                          out_len, err);
    if (rc == 1 && coding == CODING_DEFLATE)
        rc = inflate_with(RAW_WINDOW, in, len, limit, out, out_len, err);
    if (rc == 1)
        rc = mn_fail(err, MN_EINVAL, "the request body is not valid %s data (Content-Encoding)",
                     coding == CODING_GZIP ? "gzip" : "deflate");
    return rc;
}

/* The q of one Accept-Encoding element ("gzip;q=0.5"): 1 when none. */
static double quality(const char *params, size_t len)
{
    for (const char *p = params; p < params + len; p++)
        if ((*p == 'q' || *p == 'Q') && p[1] == '=')
            return strtod(p + 2, NULL);
    return 1.0;
}

ContentCoding content_coding_accepted(const char *accept)
{
    double q_gzip = -1, q_deflate = -1, q_any = -1;
    for (const char *p = accept; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ","), name = strcspn(p, " \t;,");
        double q = quality(p + name, len - name);
        if (name == 4 && !strncasecmp(p, "gzip", 4))
            q_gzip = q;
        else if (name == 6 && !strncasecmp(p, "x-gzip", 6))
            q_gzip = q;
        else if (name == 7 && !strncasecmp(p, "deflate", 7))
            q_deflate = q;
        else if (name == 1 && *p == '*')
            q_any = q;
        p += len;
    }
    if (q_gzip < 0)
        q_gzip = q_any;
    if (q_deflate < 0)
        q_deflate = q_any;
    if (q_gzip > 0 && q_gzip >= q_deflate)
        return CODING_GZIP;
    return q_deflate > 0 ? CODING_DEFLATE : CODING_IDENTITY;
}

int content_coding_compress(ContentCoding coding, const void *in, size_t len,
                            unsigned char **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* level 1: an answer is small and compressed on the request's time */
    if (deflateInit2(&z, 1, Z_DEFLATED, coding == CODING_GZIP ? GZIP_WINDOW : ZLIB_WINDOW, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH); /* deflateBound's room: one call ends it */
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}
