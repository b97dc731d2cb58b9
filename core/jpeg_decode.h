/* jpeg_decode.h - JPEG bytes to 8-bit gray+alpha pixels, for image.c,
 * through libjpeg-turbo. The header's dimensions are checked against the
 * limits before any pixel is decoded; big images come out of the DCT
 * already scaled down; the EXIF orientation is applied, so the pixels are
 * upright as the camera's user saw them. */
#ifndef MN_JPEG_DECODE_H
#define MN_JPEG_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "image.h"

/* Whether p starts like a JPEG (SOI and a marker). */
bool jpeg_sniff(const unsigned char *p, size_t len);

/* Decodes jpeg (len bytes) into *img (alpha all opaque). The DCT scales
 * the image down by 2, 4 or 8 while its longer side stays >= min_side
 * (INT_MAX: full size). Baseline, progressive and lossless-free
 * arithmetic files; grayscale, YCbCr, RGB, CMYK and YCCK (converted).
 * Errors: MN_EFORMAT (not a JPEG), MN_ECORRUPT (truncated or bad data:
 * every libjpeg warning is one), MN_ELIMIT (dimensions, scans or
 * decoder memory over lim, named in the message), MN_ENOMEM. */
int jpeg_decode_gray_alpha(const unsigned char *jpeg, size_t len, const ImageLimits *lim,
                           int min_side, GrayAlpha *img, MnError *err);

#endif
