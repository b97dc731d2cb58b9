/* check_jpeg.h - JPEG fixtures for the tests (test_jpeg, test_predict_photo),
 * written with libjpeg's own compressor, EXIF orientation included. */
#ifndef MN_CHECK_JPEG_H
#define MN_CHECK_JPEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE and size_t */

typedef struct {
    J_COLOR_SPACE in;    /* JCS_GRAYSCALE, JCS_RGB (stored YCbCr) or JCS_CMYK */
    bool progressive;
    int quality;
    int orientation;     /* 0: no EXIF; 1-8 written in an APP1 marker */
    bool big_endian;     /* the EXIF's byte order */
    int scans;           /* > 0: a progressive script of one DC and scans-1 AC scans (gray only) */
} JpegKind;

/* px: w*h*components bytes in k->in's layout; *len bytes, malloc'd. */
unsigned char *check_jpeg_write(const unsigned char *px, int w, int h, const JpegKind *k,
                                size_t *len);

#endif
