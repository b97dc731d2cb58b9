/* webp_decode.h - WebP bytes to 8-bit gray+alpha pixels, for image.c,
 * through libwebp. The header's dimensions (WebPGetFeatures) are checked
 * against the limits before any pixel is decoded; big opaque images come
 * out of libwebp's rescaler already scaled down. Still images only, lossy
 * (VP8, with or without an alpha plane) and lossless (VP8L). */
#ifndef MN_WEBP_DECODE_H
#define MN_WEBP_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "image.h"

/* Whether p starts like a WebP: a RIFF header of form type "WEBP". */
bool webp_sniff(const unsigned char *p, size_t len);

/* Decodes webp (len bytes) into *img. An opaque image whose longer side is
 * over min_side is scaled to min_side (INT_MAX: full size); one with alpha
 * is decoded at full size, so that a transparent pixel's hidden colour
 * never blends into its neighbours. Errors: MN_EFORMAT (not a WebP, an
 * animation, a feature libwebp cannot decode), MN_ECORRUPT (truncated or
 * bad data), MN_ELIMIT (dimensions or decoder memory over lim, named in
 * the message), MN_ENOMEM. */
int webp_decode_gray_alpha(const unsigned char *webp, size_t len, const ImageLimits *lim,
                           int min_side, GrayAlpha *img, MnError *err);

#endif
