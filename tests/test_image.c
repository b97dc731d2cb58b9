/* test_image.c - PNG decoding of every colour type, bit depth and tRNS form,
 * the ink polarity rules (inverted, transparent either way round, rounded
 * corners), digit and frame preprocessing (MNIST itself must pass through
 * unchanged), and refusal of truncated, garbage and non-PNG files, dimension,
 * IDAT and zTXt bombs. Every fixture is written here, mostly with libpng's
 * own writer, so the cases are exact; bombs are assembled chunk by chunk. */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "check_util.h"
#include "image.h"

enum { W = 28, H = 28 };

typedef struct {
    unsigned char *data;
    size_t len, cap;
} Buffer;

static void buffer_reserve(Buffer *b, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        ck_assert_ptr_nonnull(b->data);
    }
}

static void buffer_write(png_structp png, png_bytep data, png_size_t n)
{
    Buffer *b = png_get_io_ptr(png);
    buffer_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void buffer_flush(png_structp png) { (void)png; }

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

typedef struct {
    const char *name;
    int color, depth;
    bool interlace, trns; /* trns: black (palette index 0) is transparent */
    double gamma;         /* a gAMA chunk (0: none); samples are read as stored anyway */
} PngKind;

static const PngKind kinds[] = {
    {"gray 1", PNG_COLOR_TYPE_GRAY, 1, false, false, 0},
    {"gray 2", PNG_COLOR_TYPE_GRAY, 2, false, false, 0},
    {"gray 4", PNG_COLOR_TYPE_GRAY, 4, false, false, 0},
    {"gray 8", PNG_COLOR_TYPE_GRAY, 8, false, false, 0},
    {"gray 16", PNG_COLOR_TYPE_GRAY, 16, false, false, 0},
    {"gray 8 + tRNS", PNG_COLOR_TYPE_GRAY, 8, false, true, 0},
    {"gray 16 + tRNS", PNG_COLOR_TYPE_GRAY, 16, false, true, 0},
    {"gray+alpha 8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false, 0},
    {"gray+alpha 16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, false, 0},
    {"palette 1", PNG_COLOR_TYPE_PALETTE, 1, false, false, 0},
    {"palette 2", PNG_COLOR_TYPE_PALETTE, 2, false, false, 0},
    {"palette 4", PNG_COLOR_TYPE_PALETTE, 4, false, false, 0},
    {"palette 8", PNG_COLOR_TYPE_PALETTE, 8, false, false, 0},
    {"palette 1 + tRNS", PNG_COLOR_TYPE_PALETTE, 1, false, true, 0},
    {"palette 2 + tRNS", PNG_COLOR_TYPE_PALETTE, 2, false, true, 0},
    {"palette 4 + tRNS", PNG_COLOR_TYPE_PALETTE, 4, false, true, 0},
    {"palette 8 + tRNS", PNG_COLOR_TYPE_PALETTE, 8, false, true, 0},
    {"rgb 8", PNG_COLOR_TYPE_RGB, 8, false, false, 0},
    {"rgb 16", PNG_COLOR_TYPE_RGB, 16, false, false, 0},
    {"rgb 8 + tRNS", PNG_COLOR_TYPE_RGB, 8, false, true, 0},
    {"rgba 8", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false, 0},
    {"rgba 16", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, false, 0},
    {"gray 1 interlaced", PNG_COLOR_TYPE_GRAY, 1, true, false, 0},
    {"gray 8 interlaced", PNG_COLOR_TYPE_GRAY, 8, true, false, 0},
    {"gray+alpha 16 interlaced", PNG_COLOR_TYPE_GRAY_ALPHA, 16, true, false, 0},
    {"palette 4 interlaced", PNG_COLOR_TYPE_PALETTE, 4, true, false, 0},
    {"rgb 16 interlaced", PNG_COLOR_TYPE_RGB, 16, true, false, 0},
    {"rgba 8 interlaced", PNG_COLOR_TYPE_RGB_ALPHA, 8, true, false, 0},
    {"gray 8 + gAMA 1.0", PNG_COLOR_TYPE_GRAY, 8, false, false, 1.0},
    {"gray 16 + gAMA 1/2.2", PNG_COLOR_TYPE_GRAY, 16, false, false, 1 / 2.2},
    {"rgba 16 interlaced + gAMA 1.0", PNG_COLOR_TYPE_RGB_ALPHA, 16, true, false, 1.0},
};

static const PngKind GRAY8 = {"gray 8", PNG_COLOR_TYPE_GRAY, 8, false, false, 0};
static const PngKind RGBA8 = {"rgba 8", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false, 0};

static int levels(const PngKind *k) { return (1 << k->depth) - 1; }

/* The value a [0,1] intensity becomes at this bit depth. */
static float quantize(const PngKind *k, float v)
{
    int max = levels(k);
    return (float)lroundf(v * max) / max;
}

static void put_sample(png_bytep row, int index, int depth, unsigned v)
{
    if (depth == 16) {
        row[2 * index] = (png_byte)(v >> 8);
        row[2 * index + 1] = (png_byte)v;
    } else if (depth == 8) {
        row[index] = (png_byte)v;
    } else {
        int per = 8 / depth, shift = 8 - depth * (index % per + 1);
        row[index / per] |= (png_byte)(v << shift);
    }
}

/* Marks black transparent: palette index 0, or the gray/RGB colour 0. */
static void set_trns(png_structp png, png_infop info, const PngKind *k)
{
    if (k->color == PNG_COLOR_TYPE_PALETTE) {
        png_byte alpha[1] = {0};
        png_set_tRNS(png, info, alpha, 1, NULL);
    } else {
        png_color_16 black;
        memset(&black, 0, sizeof black);
        png_set_tRNS(png, info, NULL, 0, &black);
    }
}

/* Writes ink (w*h, [0,1]) as white on black in the given kind. */
static unsigned char *write_png(const float *ink, int w, int h, const PngKind *k, size_t *len)
{
    Buffer b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    png_bytep *rows = calloc((size_t)h, sizeof *rows);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng could not write the %s fixture", k->name);
    png_set_write_fn(png, &b, buffer_write, buffer_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, k->depth, k->color,
                 k->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    int max = levels(k);
    if (k->color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i <= max; i++)
            pal[i].red = pal[i].green = pal[i].blue = (png_byte)(i * 255 / max);
        png_set_PLTE(png, info, pal, max + 1);
    }
    if (k->trns)
        set_trns(png, info, k);
    if (k->gamma > 0.0)
        png_set_gAMA(png, info, k->gamma);
    png_write_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    bool alpha = k->color & PNG_COLOR_MASK_ALPHA;
    for (int y = 0; y < h; y++) {
        rows[y] = calloc(rowbytes, 1);
        for (int x = 0; x < w; x++) {
            unsigned v = (unsigned)lroundf(ink[y * w + x] * max);
            for (int c = 0; c < channels; c++)
                put_sample(rows[y], x * channels + c, k->depth,
                           alpha && c == channels - 1 ? (unsigned)max : v);
        }
    }
    png_set_interlace_handling(png);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    for (int y = 0; y < h; y++)
        free(rows[y]);
    free(rows);
    *len = b.len;
    return b.data;
}

/* RGBA pixels written directly: (gray, alpha) per pixel, 8 or 16 bits. */
static unsigned char *write_rgba(const float *gray, const float *alpha, int w, int h, bool wide,
                                 size_t *len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = wide ? PNG_FORMAT_LINEAR_RGB_ALPHA : PNG_FORMAT_RGBA;
    void *px = malloc(PNG_IMAGE_SIZE(im));
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 4; c++) {
            if (wide) /* the linear format is premultiplied */
                ((png_uint_16 *)px)[4 * i + c] =
                    (png_uint_16)lroundf((c == 3 ? 1.0f : gray[i]) * alpha[i] * 65535);
            else
                ((png_byte *)px)[4 * i + c] = (png_byte)lroundf((c == 3 ? alpha[i] : gray[i]) * 255);
        }
    png_alloc_size_t size = 0;
    ck_assert(png_image_write_get_memory_size(im, size, 0, px, 0, NULL));
    unsigned char *out = malloc(size);
    ck_assert(png_image_write_to_memory(&im, out, &size, 0, px, 0, NULL));
    free(px);
    *len = size;
    return out;
}

/* A digit-like stroke: a bar with anti-aliased edges and a foot. */
static void draw_digit(float *ink, int w, int h)
{
    memset(ink, 0, (size_t)w * h * sizeof *ink);
    for (int y = h / 5; y < h * 4 / 5; y++) {
        ink[y * w + w / 2 - 2] = 0.5f;
        ink[y * w + w / 2 - 1] = 1.0f;
        ink[y * w + w / 2] = 1.0f;
        ink[y * w + w / 2 + 1] = 0.5f;
    }
    for (int x = w / 2 - 4; x < w / 2 + 4; x++)
        ink[(h * 4 / 5) * w + x] = 1.0f;
}

static int decode(const unsigned char *png, size_t len, ImagePreprocess mode, float *out,
                  MnError *err)
{
    ImageLimits lim;
    image_limits_default(&lim);
    memset(err, 0, sizeof *err);
    return image_from_bytes(png, len, &lim, mode, H, W, out, NULL, err);
}

static void centre_of_mass(const float *img, double *cx, double *cy)
{
    double m = 0, x = 0, y = 0;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            m += img[r * W + c];
            x += img[r * W + c] * c;
            y += img[r * W + c] * r;
        }
    *cx = x / m;
    *cy = y / m;
}

/* The bounding box of pixels above 0.1: width and height. */
static void ink_box(const float *img, int *bw, int *bh)
{
    int x0 = W, x1 = -1, y0 = H, y1 = -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (img[y * W + x] > 0.1f) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
    *bw = x1 - x0 + 1;
    *bh = y1 - y0 + 1;
}

/* ---- decoding and polarity ---- */

START_TEST(test_every_kind_decodes)
{
    const PngKind *k = &kinds[_i];
    float ink[W * H], out[W * H];
    draw_digit(ink, W, H);
    size_t len;
    unsigned char *png = write_png(ink, W, H, k, &len);
    MnError err;
    /* "none" shows the raw values; with tRNS the background is transparent,
     * which "frame" (same size, so no resampling) reads as background. */
    ImagePreprocess mode = k->trns ? IMAGE_PRE_FRAME : IMAGE_PRE_NONE;
    ck_assert_msg(decode(png, len, mode, out, &err) == 0, "%s: %s", k->name, err.msg);
    float tol = k->color & PNG_COLOR_MASK_COLOR ? 2.5f / 255 : 0.6f / 255;
    for (int i = 0; i < W * H; i++) {
        float want = quantize(k, ink[i]);
        ck_assert_msg(fabsf(out[i] - want) <= tol, "%s: pixel %d = %g, want %g", k->name, i, out[i],
                      want);
    }
    free(png);
}
END_TEST

START_TEST(test_dark_on_light_is_inverted)
{
    float ink[W * H], inverted[W * H], a[W * H], b[W * H];
    draw_digit(ink, W, H);
    for (int i = 0; i < W * H; i++)
        inverted[i] = 1.0f - ink[i];
    size_t la, lb;
    unsigned char *pa = write_png(ink, W, H, &GRAY8, &la), *pb = write_png(inverted, W, H, &GRAY8, &lb);
    MnError err;
    ImagePreprocess modes[] = {IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME};
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(decode(pa, la, modes[m], a, &err), 0);
        ck_assert_int_eq(decode(pb, lb, modes[m], b, &err), 0);
        for (int i = 0; i < W * H; i++)
            ck_assert_msg(fabsf(a[i] - b[i]) < 2.5f / 255, "mode %d pixel %d: %g vs %g", m, i, a[i], b[i]);
    }
    ck_assert_float_eq_tol(b[14 * W + 13], 1.0f, 0.01f); /* the stroke is ink */
    ck_assert_float_eq_tol(b[0], 0.0f, 0.01f);
    /* "none" leaves the polarity alone */
    ck_assert_int_eq(decode(pb, lb, IMAGE_PRE_NONE, b, &err), 0);
    ck_assert_float_eq_tol(b[0], 1.0f, 1e-6f);
    free(pa);
    free(pb);
}
END_TEST

START_TEST(test_transparent_backgrounds)
{
    bool wide = _i; /* 8-bit, then 16-bit (premultiplied inside libpng) */
    float ink[W * H], gray[W * H], out[W * H];
    draw_digit(ink, W, H);
    /* Dark strokes on a transparent canvas (what a browser exports), then
     * light ones; the colour under alpha 0 is the stroke's, as canvases do. */
    for (int light = 0; light < 2; light++) {
        for (int i = 0; i < W * H; i++)
            gray[i] = light ? 1.0f : 0.0f;
        size_t len;
        unsigned char *png = write_rgba(gray, ink, W, H, wide, &len);
        MnError err;
        ck_assert_msg(decode(png, len, IMAGE_PRE_FRAME, out, &err) == 0, "%s", err.msg);
        for (int i = 0; i < W * H; i++)
            ck_assert_msg(fabsf(out[i] - ink[i]) < 2.0f / 255, "%d-bit %s ink: pixel %d = %g, want %g",
                          wide ? 16 : 8, light ? "light" : "dark", i, out[i], ink[i]);
        free(png);
    }
}
END_TEST

START_TEST(test_faint_pen_on_transparent)
{
    bool wide = _i;
    /* A black pen at 40% opacity: no pixel is opaque, the ink is still dark. */
    float ink[W * H], gray[W * H] = {0}, alpha[W * H], out[W * H];
    draw_digit(ink, W, H);
    for (int i = 0; i < W * H; i++)
        alpha[i] = 0.4f * ink[i];
    size_t len;
    unsigned char *png = write_rgba(gray, alpha, W, H, wide, &len);
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_FRAME, out, &err) == 0, "%s", err.msg);
    for (int i = 0; i < W * H; i++)
        ck_assert_msg(fabsf(out[i] - alpha[i]) < 1.0f / 255, "%d-bit: pixel %d = %g, want %g",
                      wide ? 16 : 8, i, out[i], alpha[i]);
    free(png);
}
END_TEST

START_TEST(test_opaque_page_with_transparent_corners)
{
    /* A white page with rounded, transparent corners: the page is the
     * background, not the ink, though most opaque pixels are white. */
    float ink[W * H], gray[W * H], alpha[W * H], out[W * H];
    draw_digit(ink, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int dx = x < 4 ? 4 - x : x > W - 5 ? x - (W - 5) : 0;
            int dy = y < 4 ? 4 - y : y > H - 5 ? y - (H - 5) : 0;
            gray[y * W + x] = 1.0f - ink[y * W + x];
            alpha[y * W + x] = dx * dx + dy * dy > 16 ? 0.0f : 1.0f;
        }
    size_t len;
    unsigned char *png = write_rgba(gray, alpha, W, H, false, &len);
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_FRAME, out, &err) == 0, "%s", err.msg);
    for (int i = 0; i < W * H; i++)
        ck_assert_msg(fabsf(out[i] - ink[i]) < 1.0f / 255, "pixel %d = %g, want %g", i, out[i],
                      ink[i]);
    free(png);
}
END_TEST

START_TEST(test_blank_image_is_black)
{
    float ink[W * H] = {0}, out[W * H];
    size_t len;
    unsigned char *png = write_png(ink, W, H, &GRAY8, &len);
    MnError err;
    ImagePreprocess modes[] = {IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME, IMAGE_PRE_NONE};
    for (int m = 0; m < 3; m++) {
        ck_assert_int_eq(decode(png, len, modes[m], out, &err), 0);
        for (int i = 0; i < W * H; i++)
            ck_assert_float_eq(out[i], 0.0f);
    }
    free(png);
    /* and so is a fully transparent canvas */
    float zero[W * H] = {0};
    png = write_rgba(zero, zero, W, H, false, &len);
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_DIGIT, out, &err), 0);
    for (int i = 0; i < W * H; i++)
        ck_assert_float_eq(out[i], 0.0f);
    free(png);
}
END_TEST

/* ---- digit and frame preprocessing ---- */

/* Draws a 1-valued rectangle [x0,x1) x [y0,y1) into a w-wide canvas. */
static void fill(float *img, int w, int x0, int x1, int y0, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            img[y * w + x] = 1.0f;
}

static void check_digit_fit(const unsigned char *png, size_t len, int want_h, const char *what)
{
    float out[W * H];
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_DIGIT, out, &err) == 0, "%s: %s", what, err.msg);
    int bw, bh;
    ink_box(out, &bw, &bh);
    ck_assert_msg(bh <= 20 && bh >= want_h, "%s: ink height %d", what, bh);
    ck_assert_msg(bw <= 20, "%s: ink width %d", what, bw);
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    /* whole-pixel shifts, as MNIST's own preparation did */
    ck_assert_msg(fabs(cx - 14.0) <= 0.501 && fabs(cy - 14.0) <= 0.501, "%s: centre of mass (%g, %g)",
                  what, cx, cy);
}

START_TEST(test_digit_mode_fits_and_centres)
{
    /* A tall digit drawn off-centre in a large canvas: shrunk to 20 high. */
    enum { BW = 120, BH = 90 };
    float *big = calloc(BW * BH, sizeof *big);
    fill(big, BW, 70, 78, 10, 40);
    fill(big, BW, 62, 86, 40, 44);
    size_t len;
    unsigned char *png = write_png(big, BW, BH, &GRAY8, &len);
    check_digit_fit(png, len, 19, "120x90 canvas");
    free(png);
    /* The brief's 56x40, dark on white. */
    float mid[56 * 40];
    for (int i = 0; i < 56 * 40; i++)
        mid[i] = 1.0f;
    for (int y = 3; y < 37; y++)
        for (int x = 30; x < 36; x++)
            mid[y * 56 + x] = 0.0f;
    for (int y = 30; y < 34; y++)
        for (int x = 24; x < 44; x++)
            mid[y * 56 + x] = 0.0f;
    png = write_png(mid, 56, 40, &GRAY8, &len);
    check_digit_fit(png, len, 19, "56x40 dark on white");
    free(png);
    /* A small digit in a 28x28 frame is grown to 20 high (bilinear). */
    float small[W * H] = {0};
    fill(small, W, 3, 5, 2, 10);
    fill(small, W, 2, 7, 9, 10);
    png = write_png(small, W, H, &GRAY8, &len);
    check_digit_fit(png, len, 19, "8-pixel digit");
    free(png);
    free(big);
}
END_TEST

/* A faint gray drawing on black (a gray pen, or a small drawing whose
 * strokes blur when grown) comes out at full strength, as MNIST's pen is
 * at its core. */
START_TEST(test_digit_mode_faint_stroke_full_strength)
{
    float faint[W * H] = {0}, out[W * H];
    fill(faint, W, 10, 14, 4, 24);
    fill(faint, W, 6, 18, 20, 24);
    for (int i = 0; i < W * H; i++)
        faint[i] *= 0.4f;
    size_t len;
    unsigned char *png = write_png(faint, W, H, &GRAY8, &len);
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_DIGIT, out, &err) == 0, "%s", err.msg);
    float peak = 0.0f;
    for (int i = 0; i < W * H; i++)
        peak = out[i] > peak ? out[i] : peak;
    ck_assert_msg(fabsf(peak - 1.0f) < 0.02f, "peak %g, want 1", peak);
    free(png);
}
END_TEST

START_TEST(test_frame_mode_resizes_whole_image)
{
    /* 56x56 of 2x2 blocks: the box filter gives the 28x28 pattern back exactly. */
    float ink[W * H], big[56 * 56], out[W * H];
    draw_digit(ink, W, H);
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 56; x++)
            big[y * 56 + x] = ink[(y / 2) * W + x / 2];
    size_t len;
    unsigned char *png = write_png(big, 56, 56, &GRAY8, &len);
    MnError err;
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_FRAME, out, &err), 0);
    for (int i = 0; i < W * H; i++)
        ck_assert_msg(fabsf(out[i] - quantize(&GRAY8, ink[i])) < 1e-3f, "pixel %d", i);
    /* none refuses another size, naming both */
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_NONE, out, &err), MN_ESPEC);
    ck_assert_str_eq(err.msg, "image is 56x56; preprocessing \"none\" needs 28x28");
    free(png);
}
END_TEST

START_TEST(test_frame_mode_non_square)
{
    /* 56 wide, 40 high: a block at x [20,36), y [10,30) lands exactly on
     * x [10,18) (scale 2) and y [7,21) (scale 10/7); no cropping, no aspect. */
    float big[56 * 40] = {0}, out[W * H];
    fill(big, 56, 20, 36, 10, 30);
    size_t len;
    unsigned char *png = write_png(big, 56, 40, &GRAY8, &len);
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_FRAME, out, &err) == 0, "%s", err.msg);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float want = x >= 10 && x < 18 && y >= 7 && y < 21 ? 1.0f : 0.0f;
            ck_assert_msg(fabsf(out[y * W + x] - want) < 1e-4f, "(%d, %d) = %g, want %g", x, y,
                          out[y * W + x], want);
        }
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_NONE, out, &err), MN_ESPEC);
    ck_assert_str_eq(err.msg, "image is 56x40; preprocessing \"none\" needs 28x28");
    free(png);
}
END_TEST

START_TEST(test_frame_mode_grows_small_images)
{
    /* 14x14 -> 28x28 is bilinear: a block inside keeps its mass (x4) and its place. */
    float small[14 * 14] = {0}, out[W * H];
    fill(small, 14, 5, 9, 5, 9);
    size_t len;
    unsigned char *png = write_png(small, 14, 14, &GRAY8, &len);
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_FRAME, out, &err) == 0, "%s", err.msg);
    double mass = 0.0;
    for (int i = 0; i < W * H; i++) {
        ck_assert(out[i] >= 0.0f && out[i] <= 1.0f);
        mass += out[i];
    }
    ck_assert_msg(fabs(mass - 64.0) < 1e-3, "mass %g, want 64", mass);
    ck_assert_float_eq_tol(out[14 * W + 14], 1.0f, 1e-5f);
    ck_assert_float_eq_tol(out[0], 0.0f, 1e-6f);
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    ck_assert(fabs(cx - 13.5) < 1e-3 && fabs(cy - 13.5) < 1e-3);
    free(png);
}
END_TEST

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The first n MNIST test images (28x28 bytes each), plain or gzipped;
 * fails the test without them. */
static uint8_t *mnist_test_images(uint32_t n)
{
    const char *names[] = {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/mnist/%s", check_util_data_dir(), names[i]);
        gzFile f = gzopen(path, "rb");
        if (!f)
            continue;
        unsigned char head[16];
        uint8_t *px = malloc((size_t)n * 784);
        bool ok = gzread(f, head, 16) == 16 && be32(head) == 0x803 && be32(head + 4) >= n &&
                  be32(head + 8) == 28 && be32(head + 12) == 28 &&
                  gzread(f, px, n * 784) == (int)(n * 784);
        gzclose(f);
        if (ok)
            return px;
        free(px);
    }
    ck_abort_msg("no MNIST test images in %s/mnist (run `make data`)", check_util_data_dir());
    return NULL;
}

START_TEST(test_mnist_digits_change_next_to_nothing)
{
    /* MNIST digits are already fit into 20x20 and mass-centred: digit mode
     * must leave them alone. Measured on all 10000: mean change 0.0003 per
     * pixel, 99.6% under 0.01; the rest move by one pixel (a rounding tie). */
    enum { N = 1000 };
    uint8_t *images = mnist_test_images(N);
    double total = 0.0;
    int moved = 0;
    for (int i = 0; i < N; i++) {
        uint8_t *png;
        size_t len;
        MnError err;
        ck_assert_int_eq(image_encode_png_gray8(images + i * 784, 28, 28, &png, &len, &err), 0);
        float out[784];
        ck_assert_int_eq(decode(png, len, IMAGE_PRE_DIGIT, out, &err), 0);
        double diff = 0.0;
        for (int p = 0; p < 784; p++)
            diff += fabs(out[p] - images[i * 784 + p] / 255.0);
        total += diff / 784;
        moved += diff / 784 > 0.01;
        free(png);
    }
    double mean = total / N;
    printf("MNIST through digit mode: mean change %.5f per pixel, %d of %d images > 0.01\n", mean,
           moved, N);
    ck_assert_msg(mean < 0.002, "mean absolute change %.4f per pixel", mean);
    ck_assert_msg(moved <= N / 50, "%d of %d images changed by more than 0.01 per pixel", moved, N);
    free(images);
}
END_TEST

/* The share of a's pixels above half strength that have one in b within
 * a pixel. */
static double stroke_match(const float *a, const float *b)
{
    int strong = 0, matched = 0;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            if (a[y * 28 + x] <= 0.5f)
                continue;
            strong++;
            bool near = false;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    near |= y + dy >= 0 && y + dy < 28 && x + dx >= 0 && x + dx < 28 &&
                            b[(y + dy) * 28 + x + dx] > 0.5f;
            matched += near;
        }
    return strong ? (double)matched / strong : 1.0;
}

START_TEST(test_mnist_digits_cropped_to_their_ink)
{
    /* A drawing cropped to its ink touches every edge, its strokes can
     * outweigh its paper and a stroke can span it: neither inverted nor
     * cut as a ruled line or a frame's edge, it must come out as the
     * digit does uncropped. */
    enum { N = 1000 };
    uint8_t *images = mnist_test_images(N);
    int apart = 0;
    for (int i = 0; i < N; i++) {
        const uint8_t *im = images + i * 784;
        int x0 = 28, x1 = -1, y0 = 28, y1 = -1;
        for (int p = 0; p < 784; p++)
            if (im[p] > 30) {
                int x = p % 28, y = p / 28;
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
        int cw = x1 - x0 + 1, ch = y1 - y0 + 1;
        uint8_t crop[784];
        for (int y = 0; y < ch; y++)
            memcpy(crop + y * cw, im + (y0 + y) * 28 + x0, (size_t)cw);
        uint8_t *png[2];
        size_t len[2];
        float out[2][784];
        MnError err;
        ck_assert_int_eq(image_encode_png_gray8(im, 28, 28, &png[0], &len[0], &err), 0);
        ck_assert_int_eq(image_encode_png_gray8(crop, ch, cw, &png[1], &len[1], &err), 0);
        for (int k = 0; k < 2; k++) {
            ck_assert_msg(decode(png[k], len[k], IMAGE_PRE_DIGIT, out[k], &err) == 0, "%s", err.msg);
            free(png[k]);
        }
        /* the same strokes, give or take a pixel (the photo steps may
         * change their gray levels and shift them) */
        apart += stroke_match(out[0], out[1]) < 0.8 || stroke_match(out[1], out[0]) < 0.8;
    }
    printf("MNIST cropped to the ink: %d of %d images apart from the uncropped\n", apart, N);
    /* 17 here; 53 when the corners and the size of the paper were not asked */
    ck_assert_msg(apart <= N / 50, "%d of %d cropped digits differ from the uncropped", apart, N);
    free(images);
}
END_TEST

START_TEST(test_encode_round_trip)
{
    /* Not square, so a swapped h and w would show. */
    enum { EH = 40, EW = 56 };
    uint8_t px[EH * EW];
    for (int i = 0; i < EH * EW; i++)
        px[i] = (uint8_t)(i * 7);
    uint8_t *png;
    size_t len;
    MnError err = {0};
    ck_assert_int_eq(image_encode_png_gray8(px, EH, EW, &png, &len, &err), 0);
    float out[EH * EW];
    ImageLimits lim;
    image_limits_default(&lim);
    ck_assert_int_eq(image_from_bytes(png, len, &lim, IMAGE_PRE_NONE, EH, EW, out, NULL, &err), 0);
    for (int i = 0; i < EH * EW; i++)
        ck_assert_float_eq_tol(out[i], px[i] / 255.0f, 1e-6f);
    free(png);
    /* nothing to encode */
    png = (uint8_t *)&err;
    ck_assert_int_eq(image_encode_png_gray8(px, 0, EW, &png, &len, &err), MN_EINVAL);
    ck_assert_ptr_null(png);
    ck_assert_ptr_nonnull(strstr(err.msg, "56x0"));
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_truncated_refused)
{
    float ink[W * H];
    draw_digit(ink, W, H);
    size_t len;
    unsigned char *png = write_png(ink, W, H, &RGBA8, &len);
    float out[W * H];
    size_t cuts[] = {8, 20, 33, len / 2, len - 13, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        MnError err;
        int rc = decode(png, cuts[i], IMAGE_PRE_DIGIT, out, &err);
        ck_assert_msg(rc == MN_ECORRUPT, "cut at %zu: rc %d (%s)", cuts[i], rc, err.msg);
        ck_assert_msg(strncmp(err.msg, "truncated or corrupt PNG: ", 26) == 0, "%s", err.msg);
    }
    free(png);
}
END_TEST

START_TEST(test_not_a_png_refused)
{
    /* (a JPEG's first bytes make a JPEG: test_jpeg.c) */
    const char *texts[] = {"GIF89a...", "\xff\xd8 JFIF", "", "hello, world", "\x89PNG"};
    float out[W * H];
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        MnError err;
        ck_assert_int_eq(decode((const unsigned char *)texts[i], strlen(texts[i]), IMAGE_PRE_DIGIT,
                                out, &err),
                         MN_EFORMAT);
        ck_assert_str_eq(err.msg, "not a PNG, JPEG or WebP file (unrecognised first bytes)");
    }
}
END_TEST

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Appends a chunk with its CRC to b. */
static void chunk(Buffer *b, const char *type, const unsigned char *data, uint32_t n)
{
    buffer_reserve(b, (size_t)n + 12);
    unsigned char *p = b->data + b->len;
    put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n)
        memcpy(p + 8, data, n);
    put_be32(p + 8 + n, (uint32_t)crc32(crc32(0, Z_NULL, 0), p + 4, n + 4));
    b->len += (size_t)n + 12;
}

/* The signature and an IHDR for an 8-bit gray (or other) image. */
static Buffer png_header_kind(uint32_t w, uint32_t h, int depth, int color)
{
    Buffer b = {malloc(64), 0, 64};
    memcpy(b.data, "\x89PNG\r\n\x1a\n", 8);
    b.len = 8;
    unsigned char ihdr[13] = {0};
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (unsigned char)depth;
    ihdr[9] = (unsigned char)color;
    chunk(&b, "IHDR", ihdr, 13);
    return b;
}

static Buffer png_header(uint32_t w, uint32_t h) { return png_header_kind(w, h, 8, 0); }

START_TEST(test_garbage_refused)
{
    float out[W * H];
    MnError err;
    /* a signature, then noise */
    unsigned char noise[200];
    memcpy(noise, "\x89PNG\r\n\x1a\n", 8);
    for (size_t i = 8; i < sizeof noise; i++)
        noise[i] = (unsigned char)(i * 2654435761u >> 13);
    ck_assert_int_eq(decode(noise, sizeof noise, IMAGE_PRE_DIGIT, out, &err), MN_ECORRUPT);
    /* IDAT that is not a zlib stream */
    Buffer b = png_header(28, 28);
    chunk(&b, "IDAT", (const unsigned char *)"definitely not zlib", 19);
    chunk(&b, "IEND", NULL, 0);
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_DIGIT, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "bad image data"), "%s", err.msg);
    free(b.data);
    /* a bit depth PNG does not have */
    b = png_header_kind(28, 28, 3, 0);
    chunk(&b, "IEND", NULL, 0);
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_DIGIT, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "bit depth 3"), "%s", err.msg);
    free(b.data);
    /* a damaged CRC on IDAT: libpng's check, after ours */
    float ink[W * H];
    draw_digit(ink, W, H);
    size_t len;
    unsigned char *png = write_png(ink, W, H, &GRAY8, &len);
    size_t idat = 33; /* signature + IHDR */
    ck_assert(memcmp(png + idat + 4, "IDAT", 4) == 0);
    png[idat + 8 + be32(png + idat)] ^= 0x55;
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_DIGIT, out, &err), MN_ECORRUPT);
    ck_assert_msg(strncmp(err.msg, "truncated or corrupt PNG: ", 26) == 0, "%s", err.msg);
    free(png);
}
END_TEST

START_TEST(test_dimension_bomb_refused)
{
    Buffer b = png_header(100000, 100000);
    unsigned char idat[16];
    uLongf n = sizeof idat;
    unsigned char zero = 0;
    compress(idat, &n, &zero, 1);
    chunk(&b, "IDAT", idat, (uint32_t)n);
    chunk(&b, "IEND", NULL, 0);
    float out[W * H];
    MnError err;
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_DIGIT, out, &err), MN_ELIMIT);
    ck_assert_str_eq(err.msg, "image 100000x100000 exceeds the 4096x4096 limit");
    free(b.data);
    /* one side is enough */
    b = png_header(5000, 1);
    chunk(&b, "IEND", NULL, 0);
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_DIGIT, out, &err), MN_ELIMIT);
    ck_assert_str_eq(err.msg, "image 5000x1 exceeds the 4096x4096 limit");
    free(b.data);
}
END_TEST

/* An image whose IDAT inflates to 1 GiB of zeros: 1x1, then 1024x1024
 * (whose rows, zeros too, take the first MiB). The stream is built from one
 * deflated megabyte repeated: after a full flush, deflate's output for the
 * same input is the same, so 1 GiB costs about a megabyte. libpng's
 * simplified API on its own inflates all of it (seconds). */
START_TEST(test_decompression_bomb_refused)
{
    enum { MB = 1 << 20, REPEAT = 1024 };
    static const uint32_t sides[] = {1, 1024};
    static const char *const needs[] = {"past the 2 bytes", "past the 1049600 bytes"};
    unsigned char *zeros = calloc(MB, 1), *first = malloc(MB), *again = malloc(MB);
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit(&z, 9), Z_OK);
    size_t first_len, again_len;
    z.next_in = zeros, z.avail_in = MB, z.next_out = first, z.avail_out = MB;
    ck_assert_int_eq(deflate(&z, Z_FULL_FLUSH), Z_OK);
    first_len = MB - z.avail_out;
    z.next_in = zeros, z.avail_in = MB, z.next_out = again, z.avail_out = MB;
    ck_assert_int_eq(deflate(&z, Z_FULL_FLUSH), Z_OK);
    again_len = MB - z.avail_out;
    deflateEnd(&z);
    Buffer b = png_header(sides[_i], sides[_i]);
    chunk(&b, "IDAT", first, (uint32_t)first_len);
    for (int i = 1; i < REPEAT; i++)
        chunk(&b, "IDAT", again, (uint32_t)again_len);
    chunk(&b, "IEND", NULL, 0);
    ck_assert_msg(b.len < 8u * MB, "bomb of %zu bytes", b.len);
    float out[W * H];
    MnError err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = decode(b.data, b.len, IMAGE_PRE_DIGIT, out, &err);
    double ms = ms_since(&t0);
    ck_assert_int_eq(rc, MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "decompression bomb"));
    ck_assert_msg(strstr(err.msg, needs[_i]), "%s", err.msg);
    /* Reported, not asserted: these machines are shared. */
    printf("IDAT bomb of %zu bytes (1 GiB inflated) under a %ux%u header refused in %.3f ms\n",
           b.len, sides[_i], sides[_i], ms);
    free(zeros), free(first), free(again), free(b.data);
}
END_TEST

/* A 28x28 8-bit gray PNG whose IDAT is `raw` (n bytes) deflated, with the
 * stream's last byte (its Adler-32's) flipped if asked. */
static Buffer png_of_raw(const unsigned char *raw, size_t n, bool bad_adler)
{
    uLongf zlen = compressBound(n);
    unsigned char *z = malloc(zlen);
    ck_assert_int_eq(compress(z, &zlen, raw, n), Z_OK);
    if (bad_adler)
        z[zlen - 1] ^= 0x01;
    Buffer b = png_header(W, H);
    chunk(&b, "IDAT", z, (uint32_t)zlen);
    chunk(&b, "IEND", NULL, 0);
    free(z);
    return b;
}

/* The image data must be exactly what the header declares, checksum and
 * all: a row short, a byte over (the start of any bomb) or a bad Adler-32
 * are refused, each by libpng's progressive reader as it stops. */
START_TEST(test_image_data_must_fit_header)
{
    enum { ROWS = H * (1 + W) }; /* filter byte + 28 samples a row */
    unsigned char raw[ROWS + 1] = {0};
    float out[W * H];
    MnError err;
    Buffer b = png_of_raw(raw, ROWS, false);
    ck_assert_msg(decode(b.data, b.len, IMAGE_PRE_NONE, out, &err) == 0, "%s", err.msg);
    free(b.data);
    b = png_of_raw(raw, ROWS - (1 + W), false);
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_NONE, out, &err), MN_ECORRUPT);
    ck_assert_str_eq(err.msg, "truncated or corrupt PNG: the image data ends after 27 of its 28 rows");
    free(b.data);
    b = png_of_raw(raw, ROWS + 1, false);
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_NONE, out, &err), MN_ELIMIT);
    ck_assert_str_eq(err.msg, "PNG data inflates past the 812 bytes its header needs "
                              "(decompression bomb)");
    free(b.data);
    b = png_of_raw(raw, ROWS, true);
    ck_assert_int_eq(decode(b.data, b.len, IMAGE_PRE_NONE, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "bad image data"), "%s", err.msg);
    free(b.data);
}
END_TEST

/* A valid digit with 200 zTXt chunks spliced in after IHDR, each inflating
 * to 16 MiB of zeros. The pixels must decode; libpng on its own would
 * inflate each text (to its 8 MB cap), seconds of work for nothing. */
START_TEST(test_text_bomb_ignored)
{
    enum { RAW = 16 << 20, CHUNKS = 200 };
    float ink[W * H], out[W * H];
    draw_digit(ink, W, H);
    size_t len;
    unsigned char *png = write_png(ink, W, H, &GRAY8, &len);
    unsigned char *zeros = calloc(RAW, 1);
    uLongf zlen = compressBound(RAW);
    unsigned char *text = malloc(9 + zlen);
    memcpy(text, "Comment\0", 8); /* keyword, NUL, then the method byte (0) */
    text[8] = 0;
    ck_assert_int_eq(compress2(text + 9, &zlen, zeros, RAW, 9), Z_OK);
    Buffer b = {NULL, 0, 0};
    buffer_reserve(&b, len);
    memcpy(b.data, png, 33); /* signature + IHDR */
    b.len = 33;
    for (int i = 0; i < CHUNKS; i++)
        chunk(&b, "zTXt", text, (uint32_t)(9 + zlen));
    buffer_reserve(&b, len - 33);
    memcpy(b.data + b.len, png + 33, len - 33);
    b.len += len - 33;
    ck_assert_msg(b.len < 8u << 20, "text bomb of %zu bytes", b.len);
    MnError err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = decode(b.data, b.len, IMAGE_PRE_NONE, out, &err);
    double ms = ms_since(&t0);
    ck_assert_msg(rc == 0, "%s", err.msg);
    for (int i = 0; i < W * H; i++)
        ck_assert_float_eq_tol(out[i], quantize(&GRAY8, ink[i]), 0.6f / 255);
    printf("zTXt bomb of %zu bytes (%d x 16 MiB of text) decoded in %.3f ms\n", b.len, CHUNKS, ms);
    free(png), free(zeros), free(text), free(b.data);
}
END_TEST

START_TEST(test_byte_limit_refused)
{
    float ink[W * H];
    draw_digit(ink, W, H);
    size_t len;
    unsigned char *png = write_png(ink, W, H, &GRAY8, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    ck_assert_uint_eq(lim.max_bytes, 8u << 20);
    ck_assert_int_eq(lim.max_width, 4096);
    ck_assert_int_eq(lim.max_height, 4096);
    lim.max_bytes = len - 1;
    float out[W * H];
    MnError err = {0};
    ck_assert_int_eq(image_from_bytes(png, len, &lim, IMAGE_PRE_DIGIT, H, W, out, NULL, &err), MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "byte limit"));
    /* the byte limit comes first: even garbage is refused by size */
    ck_assert_int_eq(image_from_bytes("GIF89a", 6, &lim, IMAGE_PRE_DIGIT, H, W, out, NULL, &(MnError){0}),
                     MN_EFORMAT);
    lim.max_bytes = 5;
    ck_assert_int_eq(image_from_bytes("GIF89a", 6, &lim, IMAGE_PRE_DIGIT, H, W, out, NULL, &err), MN_ELIMIT);
    lim.max_bytes = len;
    lim.max_width = 27;
    ck_assert_int_eq(image_from_bytes(png, len, &lim, IMAGE_PRE_DIGIT, H, W, out, NULL, &err), MN_ELIMIT);
    ck_assert_str_eq(err.msg, "image 28x28 exceeds the 27x4096 limit");
    free(png);
}
END_TEST

static Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("Core");
    tcase_add_loop_test(tc, test_every_kind_decodes, 0, sizeof kinds / sizeof *kinds);
    tcase_add_test(tc, test_dark_on_light_is_inverted);
    tcase_add_loop_test(tc, test_transparent_backgrounds, 0, 2);
    tcase_add_loop_test(tc, test_faint_pen_on_transparent, 0, 2);
    tcase_add_test(tc, test_opaque_page_with_transparent_corners);
    tcase_add_test(tc, test_blank_image_is_black);
    tcase_add_test(tc, test_digit_mode_fits_and_centres);
    tcase_add_test(tc, test_digit_mode_faint_stroke_full_strength);
    tcase_add_test(tc, test_frame_mode_resizes_whole_image);
    tcase_add_test(tc, test_frame_mode_non_square);
    tcase_add_test(tc, test_frame_mode_grows_small_images);
    tcase_add_test(tc, test_encode_round_trip);
    suite_add_tcase(s, tc);
    /* 1000 digits through every step of digit preprocessing: 0.3 s of CPU
     * alone, but a loaded machine stretches it past Check's 4 s default */
    TCase *mnist = tcase_create("MNIST");
    tcase_set_timeout(mnist, 30);
    tcase_add_test(mnist, test_mnist_digits_change_next_to_nothing);
    tcase_add_test(mnist, test_mnist_digits_cropped_to_their_ink);
    suite_add_tcase(s, mnist);
    TCase *lim = tcase_create("Limits");
    tcase_set_timeout(lim, 60);
    tcase_add_test(lim, test_truncated_refused);
    tcase_add_test(lim, test_not_a_png_refused);
    tcase_add_test(lim, test_garbage_refused);
    tcase_add_test(lim, test_dimension_bomb_refused);
    tcase_add_loop_test(lim, test_decompression_bomb_refused, 0, 2);
    tcase_add_test(lim, test_image_data_must_fit_header);
    tcase_add_test(lim, test_text_bomb_ignored);
    tcase_add_test(lim, test_byte_limit_refused);
    suite_add_tcase(s, lim);
    return s;
}

MN_TEST_MAIN(image_suite)
