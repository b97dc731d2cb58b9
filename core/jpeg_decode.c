/* jpeg_decode.c - JPEG bytes to 8-bit gray+alpha (see jpeg_decode.h).
 * libjpeg reads the header; the dimensions, and for a progressive file
 * the coefficient memory it will hold, are checked before a pixel is
 * decoded. libjpeg would otherwise pad a truncated file with gray and
 * carry on after corrupt data with a warning: here every warning stops
 * the decode (as TurboJPEG's TJFLAG_STOPONWARNING does). A progressive
 * file's scans are counted as they arrive (libjpeg-turbo's own advice
 * against "scan bombs", each scan costing a pass over the image). The
 * EXIF orientation tag comes from libexif, reading the APP1 marker. */
#include "jpeg_decode.h"

#include <libexif/exif-data.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

bool jpeg_sniff(const unsigned char *p, size_t len)
{
    return len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF;
}

/* libjpeg's error manager, extended with where to jump and why. */
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int code;              /* MN_ECORRUPT unless a limit said otherwise */
    char message[JMSG_LENGTH_MAX + 64];
} Trap;

static void trap_error(j_common_ptr cinfo)
{
    Trap *t = (Trap *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, text);
    if (!t->message[0])
        snprintf(t->message, sizeof t->message, "%s", text);
    if (cinfo->err->msg_code == JERR_OUT_OF_MEMORY && !t->code)
        t->code = MN_ELIMIT;
    longjmp(t->jump, 1);
}

/* Level -1 is a warning (corrupt data, premature end): an error here.
 * Higher levels are trace messages, never produced at trace_level 0. */
static void trap_message(j_common_ptr cinfo, int level)
{
    if (level < 0)
        trap_error(cinfo);
}

typedef struct {
    struct jpeg_progress_mgr pub;
    int max_scans;
} ScanLimit;

static void count_scans(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    const ScanLimit *s = (const ScanLimit *)cinfo->progress;
    if (d->input_scan_number > s->max_scans) {
        Trap *t = (Trap *)cinfo->err;
        t->code = MN_ELIMIT;
        snprintf(t->message, sizeof t->message,
                 "JPEG has more than %d scans, the limit (a progressive-scan bomb)", s->max_scans);
        longjmp(t->jump, 1);
    }
}

/* The EXIF orientation (1-8) in the file's APP1 markers; 1 if none. */
static int exif_orientation(j_decompress_ptr cinfo)
{
    static const unsigned char exif_id[6] = {'E', 'x', 'i', 'f', 0, 0};
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length < sizeof exif_id ||
            memcmp(m->data, exif_id, sizeof exif_id) != 0)
            continue;
        ExifData *ed = exif_data_new();
        if (!ed)
            return 1;
        /* read what is there; never "repair" the data into a specification's shape */
        exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
        exif_data_load_data(ed, m->data, m->data_length);
        ExifEntry *e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION);
        int o = 1;
        if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->size >= 2)
            o = exif_get_short(e->data, exif_data_get_byte_order(ed));
        exif_data_unref(ed);
        return o >= 1 && o <= 8 ? o : 1;
    }
    return 1;
}

/* The coefficient arrays libjpeg keeps for a whole progressive image. */
static uint64_t coefficient_bytes(j_decompress_ptr cinfo)
{
    uint64_t blocks = 0;
    for (int c = 0; c < cinfo->num_components; c++) {
        const jpeg_component_info *ci = &cinfo->comp_info[c];
        uint64_t bw = ci->width_in_blocks + ci->h_samp_factor;
        uint64_t bh = ci->height_in_blocks + ci->v_samp_factor; /* rounded up to an MCU row */
        blocks += bw * bh;
    }
    return blocks * DCTSIZE2 * sizeof(JCOEF);
}

/* Gray from what libjpeg gives: gray itself, or CMYK. Adobe's CMYK files
 * (all of them in practice, marked by APP14) store the inks inverted. */
static void gray_from_output(const unsigned char *px, int comps, bool inverted, size_t n,
                             unsigned char *ga)
{
    for (size_t i = 0; i < n; i++) {
        unsigned g;
        if (comps == 1) {
            g = px[i];
        } else {
            const unsigned char *p = px + 4 * i;
            unsigned c = p[0], m = p[1], y = p[2], k = p[3];
            if (!inverted)
                c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
            /* c, m, y, k are now 255 for no ink: R = C'K'/255, ... then BT.601 luma */
            unsigned r = c * k, gr = m * k, b = y * k;
            g = (299 * r + 587 * gr + 114 * b + 127500) / 255000;
        }
        ga[2 * i] = (unsigned char)g;
        ga[2 * i + 1] = 255;
    }
}

/* Turns img upright for EXIF orientation o (2-8: mirrored and/or rotated). */
static int orient(GrayAlpha *img, int o, MnError *err)
{
    if (o == 1)
        return 0;
    int w = img->w, h = img->h;
    bool swap = o >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    unsigned char *out = malloc((size_t)ow * oh * 2);
    if (!out)
        return mn_fail(err, MN_ENOMEM, "out of memory turning a %dx%d JPEG upright", w, h);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx, sy; /* the source pixel shown at (x, y) */
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            default: sx = w - 1 - y, sy = x; break; /* 8 */
            }
            memcpy(out + 2 * ((size_t)y * ow + x), img->ga + 2 * ((size_t)sy * w + sx), 2);
        }
    free(img->ga);
    img->ga = out;
    img->w = ow;
    img->h = oh;
    return 0;
}

/* The largest DCT reduction (8, 4, 2, 1) keeping the longer side >= min_side. */
static int scale_denominator(unsigned w, unsigned h, int min_side)
{
    unsigned side = w > h ? w : h;
    for (unsigned d = 8; d > 1; d /= 2)
        if ((side + d - 1) / d >= (unsigned)min_side)
            return (int)d;
    return 1;
}

int jpeg_decode_gray_alpha(const unsigned char *jpeg, size_t len, const ImageLimits *lim,
                           int min_side, GrayAlpha *img, MnError *err)
{
    img->ga = NULL;
    int rc = image_check_bytes(len, lim, err);
    if (rc)
        return rc;
    if (!jpeg_sniff(jpeg, len))
        return mn_fail(err, MN_EFORMAT, "not a JPEG file (no SOI marker)");
    struct jpeg_decompress_struct cinfo;
    Trap trap = {0};
    ScanLimit scans = {.pub.progress_monitor = count_scans, .max_scans = lim->max_jpeg_scans};
    /* volatile: read after a longjmp back into this frame */
    unsigned char *volatile px = NULL;
    cinfo.err = jpeg_std_error(&trap.pub);
    trap.pub.error_exit = trap_error;
    trap.pub.emit_message = trap_message;
    if (setjmp(trap.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        free(img->ga);
        img->ga = NULL;
        if (trap.code == MN_ELIMIT && strstr(trap.message, "scans"))
            return mn_fail(err, MN_ELIMIT, "%s", trap.message);
        if (trap.code == MN_ELIMIT)
            return mn_fail(err, MN_ELIMIT, "JPEG needs more than the %ld-byte decoder memory "
                           "limit (%s)", lim->max_decoder_memory, trap.message);
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt JPEG: %s", trap.message);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.mem->max_memory_to_use = lim->max_decoder_memory;
    cinfo.progress = &scans.pub;
    jpeg_mem_src(&cinfo, jpeg, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    rc = image_check_dimensions(cinfo.image_width, cinfo.image_height, lim, err);
    if (rc)
        ; /* named by image_check_dimensions */
    else if (cinfo.progressive_mode && coefficient_bytes(&cinfo) > (uint64_t)lim->max_decoder_memory)
        rc = mn_fail(err, MN_ELIMIT, "progressive JPEG %ux%u needs %llu bytes of coefficients, "
                     "over the %ld-byte decoder memory limit", cinfo.image_width,
                     cinfo.image_height, (unsigned long long)coefficient_bytes(&cinfo),
                     lim->max_decoder_memory);
    else if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK)
        cinfo.out_color_space = JCS_CMYK; /* libjpeg converts CMYK to nothing but itself */
    else if (cinfo.jpeg_color_space == JCS_GRAYSCALE || cinfo.jpeg_color_space == JCS_YCbCr ||
             cinfo.jpeg_color_space == JCS_RGB)
        cinfo.out_color_space = JCS_GRAYSCALE; /* from YCbCr: the Y plane, chroma never decoded */
    else
        rc = mn_fail(err, MN_EFORMAT, "JPEG colour space %d with %d components is not supported",
                     (int)cinfo.jpeg_color_space, cinfo.num_components);
    if (rc) {
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    int orientation = exif_orientation(&cinfo);
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)scale_denominator(cinfo.image_width, cinfo.image_height, min_side);
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    int comps = cinfo.output_components;
    px = malloc(w * h * (size_t)comps);
    img->ga = malloc(w * h * 2);
    if (!px || !img->ga) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        free(img->ga);
        img->ga = NULL;
        return mn_fail(err, MN_ENOMEM, "out of memory decoding a %zux%zu JPEG", w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * w * comps;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    /* reads to EOI, so a file cut after the last scanline is still seen as cut */
    jpeg_finish_decompress(&cinfo);
    gray_from_output(px, comps, cinfo.saw_Adobe_marker, w * h, img->ga);
    jpeg_destroy_decompress(&cinfo);
    free(px);
    img->w = (int)w;
    img->h = (int)h;
    rc = orient(img, orientation, err);
    if (rc) {
        free(img->ga);
        img->ga = NULL;
    }
    return rc;
}
