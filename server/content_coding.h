/* content_coding.h - HTTP content codings through zlib: request bodies
 * sent with Content-Encoding gzip or deflate are inflated with a bound
 * (what comes out counts against the body limit, so a small body cannot
 * inflate to a gigabyte), and answers are compressed for an
 * Accept-Encoding that asks for it (RFC 9110 8.4, 12.5.3). */
#ifndef MN_CONTENT_CODING_H
#define MN_CONTENT_CODING_H

#include <stddef.h>

#include "error.h"

typedef enum { CODING_IDENTITY, CODING_GZIP, CODING_DEFLATE } ContentCoding;

/* The coding a Content-Encoding value names ("gzip", "x-gzip", "deflate",
 * "identity", any case); -1 for anything else, a list of several included. */
int content_coding_from_name(const char *name);

/* Inflates len bytes in the coding (deflate is the zlib format, as RFC
 * 9110 says; raw deflate, which some clients send, is taken too) into
 * *out (malloc'd, NUL-terminated past *out_len). MN_ELIMIT when more
 * than limit bytes would come out, MN_EINVAL when the data is not in the
 * coding or is cut short, with what was wrong. */
int content_coding_inflate(ContentCoding coding, const void *in, size_t len, size_t limit,
                           char **out, size_t *out_len, MnError *err);

/* The coding to answer in for an Accept-Encoding value (NULL: none sent):
 * gzip or deflate when listed with a q above 0 (or "*"), gzip first;
 * identity otherwise. */
ContentCoding content_coding_accepted(const char *accept_encoding);

/* Compresses len bytes into *out (malloc'd); 0, or -1 out of memory. */
int content_coding_compress(ContentCoding coding, const void *in, size_t len,
                            unsigned char **out, size_t *out_len);

#endif
