/* base64.h - standard base64 (RFC 4648) decoding, for BYTES tensors. */
#ifndef MN_BASE64_H
#define MN_BASE64_H

#include <stddef.h>

/* Decodes text (len chars, padding optional, no white space) into a malloc'd
 * buffer; NULL when text is not base64. */
unsigned char *base64_decode(const char *text, size_t len, size_t *out_len);

#endif
