/* png_decode.h - PNG bytes to 8-bit gray+alpha pixels, for image.c. The
 * limits on bytes and dimensions are checked before libpng sees a byte,
 * and decoding stops at the end of the image the header declares, so a
 * small file can neither claim a huge image nor inflate to a gigabyte. */
#ifndef MN_PNG_DECODE_H
#define MN_PNG_DECODE_H

#include <stddef.h>

#include "error.h"
#include "image.h"

/* Decodes png (len bytes) into *img. Errors as image_from_bytes's. */
int png_decode_gray_alpha(const unsigned char *png, size_t len, const ImageLimits *lim,
                          GrayAlpha *img, MnError *err);

#endif
