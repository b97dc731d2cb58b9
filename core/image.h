/* image.h - PNG bytes to a model input image: h x w floats in [0, 1],
 * white ink on black like MNIST. Limits on bytes and dimensions are checked
 * before any pixel is decoded, and decoding is bounded, so a small file
 * cannot claim a huge image or inflate to a gigabyte.
 * IMAGE_PRE_DIGIT: invert a light background, crop to the ink, fit into
 *   20x20 keeping the aspect ratio, centre by centre of mass in 28x28.
 * IMAGE_PRE_FRAME: invert a light background, resize the whole frame.
 * IMAGE_PRE_NONE:  gray conversion only; the image must already be h x w.
 * Transparent pixels count as background whichever way round the ink is. */
#ifndef MN_IMAGE_H
#define MN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

typedef struct {
    size_t max_bytes;   /* encoded size */
    int max_width, max_height;
} ImageLimits;

/* 8 MiB, 4096 x 4096. */
void image_limits_default(ImageLimits *lim);

/* Decodes a PNG and preprocesses it into out (out_h * out_w floats).
 * Errors: MN_EFORMAT (not a PNG), MN_ECORRUPT (truncated or bad data),
 * MN_ELIMIT (over a limit, named in the message). */
int image_from_png(const void *png, size_t len, const ImageLimits *lim, ImagePreprocess mode,
                   int out_h, int out_w, float *out, MnError *err);

/* Encodes an 8-bit gray image as PNG into *png (malloc'd, caller frees). */
int image_encode_png_gray8(const uint8_t *pixels, int h, int w, uint8_t **png, size_t *len,
                           MnError *err);

#endif
