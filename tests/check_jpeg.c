/* check_jpeg.c - JPEG fixtures (see check_jpeg.h). */
#include "check_jpeg.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The EXIF APP1 payload holding one Orientation tag (0x0112, SHORT). */
static size_t exif_orientation_payload(unsigned char *p, int orientation, bool be)
{
    static const unsigned char head[6] = {'E', 'x', 'i', 'f', 0, 0};
    memcpy(p, head, 6);
    unsigned char *t = p + 6;
    size_t n = 0;
#define PUT16(v) (be ? (t[n] = (unsigned char)((v) >> 8), t[n + 1] = (unsigned char)(v)) \
                     : (t[n] = (unsigned char)(v), t[n + 1] = (unsigned char)((v) >> 8)), n += 2)
#define PUT32(v) (be ? (PUT16((v) >> 16), PUT16((v) & 0xFFFF)) : (PUT16((v) & 0xFFFF), PUT16((v) >> 16)))
    t[n++] = be ? 'M' : 'I';
    t[n++] = be ? 'M' : 'I';
    PUT16(42);
    PUT32(8u);           /* IFD0 right after the header */
    PUT16(1);            /* one entry */
    PUT16(0x0112);
    PUT16(3);            /* SHORT */
    PUT32(1u);
    PUT16(orientation);
    PUT16(0);            /* the value field's other half */
    PUT32(0u);           /* no next IFD */
#undef PUT16
#undef PUT32
    return 6 + n;
}

unsigned char *check_jpeg_write(const unsigned char *px, int w, int h, const JpegKind *k,
                                 size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = k->in == JCS_GRAYSCALE ? 1 : k->in == JCS_RGB ? 3 : 4;
    c.in_color_space = k->in;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, k->quality ? k->quality : 95, TRUE);
    jpeg_scan_info *script = NULL;
    if (k->scans > 0) {
        script = calloc((size_t)k->scans, sizeof *script);
        for (int s = 0; s < k->scans; s++) {
            script[s].comps_in_scan = 1;
            script[s].component_index[0] = 0;
            script[s].Ss = s == 0 ? 0 : s;
            script[s].Se = s == 0 ? 0 : s == k->scans - 1 ? 63 : s;
        }
        c.scan_info = script;
        c.num_scans = k->scans;
    } else if (k->progressive) {
        jpeg_simple_progression(&c);
    }
    jpeg_start_compress(&c, TRUE);
    if (k->orientation) {
        unsigned char exif[64];
        size_t n = exif_orientation_payload(exif, k->orientation, k->big_endian);
        jpeg_write_marker(&c, JPEG_APP0 + 1, exif, (unsigned)n);
    }
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * w * c.input_components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(script);
    *len = size;
    return out;
}

