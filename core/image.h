/* image.h - PNG, JPEG or WebP bytes (told apart by their first bytes) to a model
 * input image: h x w floats in [0, 1], white ink on black like MNIST.
 * Limits on bytes and dimensions are checked before any pixel is decoded,
 * and decoding is bounded, so a small file cannot claim a huge image or
 * inflate to a gigabyte.
 * IMAGE_PRE_DIGIT: invert a light background; for photos and scans remove
 *   the illumination, separate ink from paper, keep the digit's ink
 *   (photo.h); crop to the ink, bring the stroke width toward MNIST's pen,
 *   fit into 20x20 keeping the aspect ratio, centre by mass in 28x28.
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
    int max_jpeg_scans;       /* a progressive JPEG's scans: each one costs a pass over the image */
    long max_decoder_memory;  /* bytes a decoder may hold for one image (a progressive JPEG's
                               * coefficients, a lossless WebP's pixels) */
} ImageLimits;

/* Gray and alpha per pixel, 8 bits each, not premultiplied: what each
 * decoder (png_decode.c, jpeg_decode.c, webp_decode.c) hands this file. */
typedef struct {
    unsigned char *ga; /* (h, w, 2), malloc'd: the caller frees it */
    int w, h;
} GrayAlpha;

/* 8 MiB, 4096 x 4096, 64 scans, 256 MiB of decoder memory. */
void image_limits_default(ImageLimits *lim);

/* The intermediate images of one preprocessing, each reduced to at most
 * IMAGE_TRACE_SIDE a side, 0-255 white ink on black: what ?trace=1 shows. */
enum { IMAGE_TRACE_STEPS = 8, IMAGE_TRACE_SIDE = 64 };
typedef struct {
    int n;
    struct {
        const char *step; /* "decoded", "illumination", "ink", "digit", "stroke", "input" */
        int w, h;
        unsigned char px[IMAGE_TRACE_SIDE * IMAGE_TRACE_SIDE];
    } steps[IMAGE_TRACE_STEPS];
} ImageTrace;

/* The media type of an encoded image from its first bytes: "image/png",
 * "image/jpeg", "image/webp", or NULL for anything else. */
const char *image_sniff(const void *bytes, size_t len);

/* For the decoders: MN_ELIMIT, naming the limit, when an encoded image's
 * size, or the dimensions its header declares, are over lim; else 0. */
int image_check_bytes(size_t len, const ImageLimits *lim, MnError *err);
int image_check_dimensions(unsigned long w, unsigned long h, const ImageLimits *lim, MnError *err);

/* Decodes a PNG, JPEG or WebP and preprocesses it into out (out_h * out_w
 * floats); trace (may be NULL) receives the steps. Errors: MN_EFORMAT
 * (none of them, or an animated WebP), MN_ECORRUPT (truncated or bad data), MN_ELIMIT (over a
 * limit, named in the message). */
int image_from_bytes(const void *bytes, size_t len, const ImageLimits *lim, ImagePreprocess mode,
                     int out_h, int out_w, float *out, ImageTrace *trace, MnError *err);

/* Encodes an 8-bit gray image as PNG into *png (malloc'd, caller frees). */
int image_encode_png_gray8(const uint8_t *pixels, int h, int w, uint8_t **png, size_t *len,
                           MnError *err);

#endif
