/* png_decode.c - PNG bytes to 8-bit gray+alpha (see png_decode.h).
 * png_walk checks the signature, IHDR's dimensions against the limits and
 * that every chunk is whole up to IEND, decoding nothing. Then libpng's
 * progressive reader inflates the image data, once: it stops at the first
 * byte of output past the last row, so an IDAT bomb costs a row. (The
 * sequential reader, which the simplified API uses, inflates all the rest
 * to look for the stream's end: 2.5 s a GiB.) Every ancillary chunk but
 * tRNS is skipped unread: libpng would inflate each zTXt, iTXt and iCCP (up
 * to 8 MB apiece) for nothing, and without gAMA, sRGB and cHRM it converts
 * no gamma, so samples are read as stored, as MNIST's were. */
#include "png_decode.h"

#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What IHDR declares. */
typedef struct {
    uint32_t w, h;
    int depth, color;
    bool interlaced;
} Header;

static int channels_of(int color)
{
    return color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : 4;
}

/* The rows of pass `pass` that hold pixels: Adam7's passes 0-6, or the
 * whole image as pass 0 when not interlaced. */
static uint32_t pass_rows(const Header *hd, int pass)
{
    if (!hd->interlaced)
        return pass == 0 ? hd->h : 0;
    return PNG_PASS_COLS(hd->w, pass) ? PNG_PASS_ROWS(hd->h, pass) : 0;
}

/* The filtered bytes the header's image inflates to: each row of each
 * pass, plus its filter byte. */
static uint64_t image_data_bytes(const Header *hd)
{
    uint64_t n = 0;
    for (int pass = 0; pass < 7; pass++) {
        uint64_t cols = hd->interlaced ? PNG_PASS_COLS(hd->w, pass) : hd->w;
        n += pass_rows(hd, pass) * (1 + (cols * channels_of(hd->color) * hd->depth + 7) / 8);
    }
    return n;
}

/* The bit depths PNG allows for a colour type. */
static bool depth_valid(int color, int depth)
{
    switch (color) {
    case 0: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: case 4: case 6: return depth == 8 || depth == 16;
    default: return false;
    }
}

/* Checks the IHDR chunk's 13 bytes against the limits. */
static int ihdr_check(const unsigned char *d, const ImageLimits *lim, Header *hd, MnError *err)
{
    hd->w = be32(d), hd->h = be32(d + 4);
    hd->depth = d[8], hd->color = d[9];
    hd->interlaced = d[12] != 0;
    if (hd->w == 0 || hd->h == 0)
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: image is %ux%u", hd->w, hd->h);
    int rc = image_check_dimensions(hd->w, hd->h, lim, err);
    if (rc)
        return rc;
    if (!depth_valid(hd->color, hd->depth))
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: bit depth %d with colour type %d",
                       hd->depth, hd->color);
    return 0;
}

/* Walks the chunks of p (len bytes) up to IEND without decoding any: *hd
 * is IHDR's, and *feed the bytes libpng is given: through the IDAT chunks
 * and the next chunk's length and type, which it reads to see that the
 * image data is over, as the sequential reader did. Later chunks are never
 * read (a bad CRC there harms no pixel). */
static int png_walk(const unsigned char *p, size_t len, const ImageLimits *lim, Header *hd,
                    size_t *feed, MnError *err)
{
    bool in_idat = false;
    *feed = 0;
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (len < 8 || memcmp(p, sig, 8) != 0)
        return mn_fail(err, MN_EFORMAT, "not a PNG file (bad signature)");
    for (size_t pos = 8;;) {
        if (len - pos < 12)
            return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: the file ends at byte %zu "
                           "without an IEND chunk", len);
        uint32_t n = be32(p + pos);
        const unsigned char *type = p + pos + 4;
        if (n > 0x7fffffffu || len - pos - 12 < n)
            return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: a chunk of %u bytes at "
                           "byte %zu runs past the end of the file", n, pos);
        if (pos == 8) {
            if (memcmp(type, "IHDR", 4) != 0 || n != 13)
                return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: IHDR is not the "
                               "first chunk");
            int rc = ihdr_check(p + pos + 8, lim, hd, err);
            if (rc)
                return rc;
        }
        bool idat = memcmp(type, "IDAT", 4) == 0;
        if (in_idat && !idat && !*feed)
            *feed = pos + 8;
        in_idat = idat;
        pos += 12 + (size_t)n;
        if (memcmp(type, "IEND", 4) == 0) {
            *feed = *feed ? *feed : pos;
            /* Nothing follows IEND: bytes there would be taken without a look. */
            if (pos != len)
                return mn_fail(err, MN_ECORRUPT,
                               "corrupt PNG: %zu trailing bytes after the IEND chunk", len - pos);
            return 0;
        }
    }
}

/* libpng's progressive reader reports these two as warnings and stops
 * inflating (pngpread.c, png_process_IDAT_data): output past the last
 * row, and a zlib error (a bad Adler-32) once every row is in. */
static const char EXTRA_DATA[] = "Extra compressed data in IDAT";
static const char TRUNCATED_DATA[] = "Truncated compressed data in IDAT";

typedef struct {
    Header hd;
    GrayAlpha *img;
    bool wide;            /* 16-bit samples: read as 16-bit, narrowed here */
    uint64_t rows, want;  /* rows delivered, rows the header declares */
    bool started;         /* the image data has been reached */
    bool extra, truncated;
    char message[192];    /* libpng's error, or its first warning on the image data */
} Decode;

static void on_error(png_structp png, png_const_charp msg)
{
    Decode *d = png_get_error_ptr(png);
    snprintf(d->message, sizeof d->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    Decode *d = png_get_error_ptr(png);
    if (d->rows == d->want) {
        d->extra |= strcmp(msg, EXTRA_DATA) == 0;
        d->truncated |= strcmp(msg, TRUNCATED_DATA) == 0;
    } else if (d->started && !d->message[0]) {
        /* png_benign_error puts the chunk's name before a text that has it */
        if (strncmp(msg, "IDAT: IDAT: ", 12) == 0)
            msg += 6;
        snprintf(d->message, sizeof d->message, "%s", msg);
    }
}

/* The transforms png_image_finish_read sets for PNG_FORMAT_GA (8-bit and
 * smaller files) or PNG_FORMAT_LINEAR_Y_ALPHA (16-bit), in its order, for
 * a file without gamma chunks: the pixels are the ones the simplified API
 * gave. 16-bit files are read as 16-bit: libpng 1.6's narrowing to 8 bits
 * garbles Adam7-interlaced ones (pnggroup/libpng#853). */
static void set_transforms(png_structp png, png_infop info, bool wide)
{
    int color = png_get_color_type(png, info);
    bool alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);
    png_fixed_point gamma = wide ? PNG_GAMMA_LINEAR : PNG_DEFAULT_sRGB;
    png_set_expand(png);
    if (color & PNG_COLOR_MASK_COLOR)
        png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, PNG_RGB_TO_GRAY_DEFAULT,
                                  PNG_RGB_TO_GRAY_DEFAULT);
    png_set_alpha_mode_fixed(png, PNG_ALPHA_PNG, gamma); /* the file's gamma */
    if (!alpha)
        png_set_add_alpha(png, wide ? 65535 : 255, PNG_FILLER_AFTER);
    /* 16-bit: linear, with the alpha premultiplied */
    png_set_alpha_mode_fixed(png, wide && alpha ? PNG_ALPHA_STANDARD : PNG_ALPHA_PNG, gamma);
    const uint16_t one = 1;
    if (wide && *(const unsigned char *)&one)
        png_set_swap(png); /* samples in this machine's order */
}

static void on_info(png_structp png, png_infop info)
{
    Decode *d = png_get_progressive_ptr(png);
    d->started = true;
    set_transforms(png, info, d->wide);
    /* No png_set_interlace_handling: each pass's rows come once, as they
     * are, and on_row puts their pixels in place. */
    png_read_update_info(png, info);
    if (png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY_ALPHA ||
        png_get_bit_depth(png, info) != (d->wide ? 16 : 8))
        png_error(png, "gray+alpha transformation failed"); /* our bug, not the file's */
}

static void on_row(png_structp png, png_bytep row, png_uint_32 y, int pass)
{
    Decode *d = png_get_progressive_ptr(png);
    const Header *hd = &d->hd;
    size_t px = d->wide ? 4 : 2;
    if (!row || pass > 6 || y >= pass_rows(hd, pass))
        png_error(png, "row outside the image"); /* libpng's bug, never trusted */
    unsigned char *ga = d->img->ga;
    if (!hd->interlaced) {
        memcpy(ga + (size_t)y * hd->w * px, row, hd->w * px);
    } else {
        size_t out_y = PNG_ROW_FROM_PASS_ROW(y, pass);
        for (uint32_t i = 0; i < PNG_PASS_COLS(hd->w, pass); i++)
            memcpy(ga + (out_y * hd->w + PNG_COL_FROM_PASS_COL(i, pass)) * px, row + i * px, px);
    }
    d->rows++;
}

/* 16-bit files come out of libpng as linear, premultiplied 16-bit (as
 * stored, with no gamma chunk read); this unpremultiplies and narrows them
 * to 8-bit gray+alpha in place (pixel i's 2 bytes never pass pixel i's 4). */
static void narrow_linear(png_byte *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        png_uint_16 px[2];
        memcpy(px, buf + 4 * i, sizeof px);
        uint32_t a = px[1], y = px[0];
        uint32_t g = a ? (y * 65535u + a / 2) / a : 0;
        g = g > 65535u ? 65535u : g;
        buf[2 * i] = (png_byte)((g * 255u + 32767u) / 65535u);
        buf[2 * i + 1] = (png_byte)((a * 255u + 32767u) / 65535u);
    }
}

/* Runs libpng over p[0, len); 0, or a code with d->message set. */
static int png_inflate_rows(const unsigned char *p, size_t len, const ImageLimits *lim, Decode *d)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return MN_ENOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return MN_ECORRUPT;
    }
    /* png_walk has checked both limits; libpng checks them again. PLTE and
     * tRNS are the only chunks read, into libpng's own small buffers;
     * should any other ever be, it gets no more than this. */
    png_set_user_limits(png, (png_uint_32)lim->max_width, (png_uint_32)lim->max_height);
    png_set_chunk_malloc_max(png, 64 << 10);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_progressive_read_fn(png, d, on_info, on_row, NULL);
    /* libpng only reads the buffer it is pushed */
    png_process_data(png, info, (png_bytep)p, len);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int png_decode_gray_alpha(const unsigned char *png, size_t len, const ImageLimits *lim,
                          GrayAlpha *img, MnError *err)
{
    int rc = image_check_bytes(len, lim, err);
    if (rc)
        return rc;
    Decode d = {.img = img};
    size_t feed = 0;
    rc = png_walk(png, len, lim, &d.hd, &feed, err);
    if (rc)
        return rc;
    d.wide = d.hd.depth == 16;
    for (int pass = 0; pass < 7; pass++)
        d.want += pass_rows(&d.hd, pass);
    img->w = (int)d.hd.w;
    img->h = (int)d.hd.h;
    img->ga = malloc((size_t)d.hd.w * d.hd.h * (d.wide ? 4 : 2));
    if (!img->ga)
        return mn_fail(err, MN_ENOMEM, "out of memory decoding a %ux%u image", d.hd.w, d.hd.h);
    rc = png_inflate_rows(png, feed, lim, &d);
    if (d.extra) /* whatever libpng found after */
        rc = mn_fail(err, MN_ELIMIT, "PNG data inflates past the %llu bytes its header needs "
                     "(decompression bomb)", (unsigned long long)image_data_bytes(&d.hd));
    else if (rc == MN_ENOMEM)
        rc = mn_fail(err, MN_ENOMEM, "out of memory reading a PNG of %zu bytes", len);
    else if (rc)
        rc = mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: %s", d.message);
    else if (d.truncated || (d.rows < d.want && d.message[0]))
        rc = mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: bad image data (%s)",
                     d.truncated ? TRUNCATED_DATA : d.message);
    else if (d.rows < d.want)
        rc = mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: the image data ends after "
                     "%llu of its %llu rows", (unsigned long long)d.rows,
                     (unsigned long long)d.want);
    if (rc) {
        free(img->ga);
        img->ga = NULL;
        return rc;
    }
    if (d.wide)
        narrow_linear(img->ga, (size_t)d.hd.w * d.hd.h);
    return 0;
}
