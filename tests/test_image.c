/* test_image.c - PNG decoding of every colour type and bit depth, the ink
 * polarity rules (inverted, transparent either way round), the digit and
 * frame preprocessing, and refusal of truncated files, non-PNGs, dimension
 * bombs and decompression bombs. Every fixture is written here with libpng's
 * own writer, so the cases are exact. */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "check_util.h"
#include "dataset.h"
#include "image.h"

enum { W = 28, H = 28 };

typedef struct {
    unsigned char *data;
    size_t len, cap;
} Buffer;

static void buffer_write(png_structp png, png_bytep data, png_size_t n)
{
    Buffer *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void buffer_flush(png_structp png) { (void)png; }

typedef struct {
    const char *name;
    int color, depth;
    bool interlace, trns;
} PngKind;

static const PngKind kinds[] = {
    {"gray 1", PNG_COLOR_TYPE_GRAY, 1, false, false},
    {"gray 2", PNG_COLOR_TYPE_GRAY, 2, false, false},
    {"gray 4", PNG_COLOR_TYPE_GRAY, 4, false, false},
    {"gray 8", PNG_COLOR_TYPE_GRAY, 8, false, false},
    {"gray 16", PNG_COLOR_TYPE_GRAY, 16, false, false},
    {"gray+alpha 8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false},
    {"gray+alpha 16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, false},
    {"palette 1", PNG_COLOR_TYPE_PALETTE, 1, false, false},
    {"palette 2", PNG_COLOR_TYPE_PALETTE, 2, false, false},
    {"palette 4", PNG_COLOR_TYPE_PALETTE, 4, false, false},
    {"palette 8", PNG_COLOR_TYPE_PALETTE, 8, false, false},
    {"palette 8 + tRNS", PNG_COLOR_TYPE_PALETTE, 8, false, true},
    {"rgb 8", PNG_COLOR_TYPE_RGB, 8, false, false},
    {"rgb 16", PNG_COLOR_TYPE_RGB, 16, false, false},
    {"rgba 8", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false},
    {"rgba 16", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, false},
    {"gray 8 interlaced", PNG_COLOR_TYPE_GRAY, 8, true, false},
    {"rgba 8 interlaced", PNG_COLOR_TYPE_RGB_ALPHA, 8, true, false},
    {"palette 4 interlaced", PNG_COLOR_TYPE_PALETTE, 4, true, false},
};

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

/* Writes ink (w*h, [0,1]) as white on black in the given kind. With tRNS on
 * a palette, index 0 (the background) is transparent. */
static unsigned char *write_png(const float *ink, int w, int h, const PngKind *k, size_t *len)
{
    Buffer b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(!setjmp(png_jmpbuf(png)));
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
        if (k->trns) {
            png_byte alpha[1] = {0};
            png_set_tRNS(png, info, alpha, 1, NULL);
        }
    }
    png_write_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    for (int y = 0; y < h; y++) {
        rows[y] = calloc(rowbytes, 1);
        for (int x = 0; x < w; x++) {
            unsigned v = (unsigned)lroundf(ink[y * w + x] * max);
            bool alpha = k->color & PNG_COLOR_MASK_ALPHA;
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
    return image_from_png(png, len, &lim, mode, H, W, out, err);
}

START_TEST(test_every_kind_decodes)
{
    const PngKind *k = &kinds[_i];
    float ink[W * H], out[W * H];
    draw_digit(ink, W, H);
    size_t len;
    unsigned char *png = write_png(ink, W, H, k, &len);
    MnError err;
    /* Palettes with transparency go through the transparent-background rule: use frame. */
    ImagePreprocess mode = k->trns ? IMAGE_PRE_FRAME : IMAGE_PRE_NONE;
    ck_assert_msg(decode(png, len, mode, out, &err) == 0, "%s: %s", k->name, err.msg);
    float tol = k->color & PNG_COLOR_MASK_COLOR ? 2.5f / 255 : 0.6f / 255;
    for (int i = 0; i < W * H; i++) {
        float want = quantize(k, ink[i]);
        if (k->trns && want == 0.0f)
            want = 0.0f; /* transparent background */
        ck_assert_msg(fabsf(out[i] - want) <= tol, "%s: pixel %d = %g, want %g", k->name, i, out[i],
                      want);
    }
    free(png);
}
END_TEST

static const PngKind GRAY8 = {"gray 8", PNG_COLOR_TYPE_GRAY, 8, false, false};
static const PngKind RGBA8 = {"rgba 8", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false};

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
    /* "none" leaves the polarity alone */
    ck_assert_int_eq(decode(pb, lb, IMAGE_PRE_NONE, b, &err), 0);
    ck_assert_float_eq_tol(b[0], 1.0f, 1e-6f);
    free(pa);
    free(pb);
}
END_TEST

/* RGBA pixels written directly: (gray, alpha) per pixel. */
static unsigned char *write_rgba(const float *gray, const float *alpha, int w, int h, size_t *len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_RGBA;
    unsigned char *px = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = (unsigned char)lroundf(gray[i] * 255);
        px[4 * i + 3] = (unsigned char)lroundf(alpha[i] * 255);
    }
    png_alloc_size_t size = 0;
    ck_assert(png_image_write_get_memory_size(im, size, 0, px, 0, NULL));
    unsigned char *out = malloc(size);
    ck_assert(png_image_write_to_memory(&im, out, &size, 0, px, 0, NULL));
    free(px);
    *len = size;
    return out;
}

START_TEST(test_transparent_backgrounds)
{
    float ink[W * H], gray[W * H], out[W * H];
    draw_digit(ink, W, H);
    /* Dark strokes on a transparent canvas (what a browser exports), then light strokes. */
    for (int light = 0; light < 2; light++) {
        for (int i = 0; i < W * H; i++)
            gray[i] = light ? 1.0f : 0.0f;
        size_t len;
        unsigned char *png = write_rgba(gray, ink, W, H, &len);
        MnError err;
        ck_assert_msg(decode(png, len, IMAGE_PRE_FRAME, out, &err) == 0, "%s", err.msg);
        for (int i = 0; i < W * H; i++)
            ck_assert_msg(fabsf(out[i] - ink[i]) < 2.0f / 255, "%s ink: pixel %d = %g, want %g",
                          light ? "light" : "dark", i, out[i], ink[i]);
        free(png);
    }
}
END_TEST

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

START_TEST(test_digit_mode_fits_and_centres)
{
    /* A small digit drawn off-centre in a large canvas. */
    enum { BW = 120, BH = 90 };
    float *big = calloc(BW * BH, sizeof *big);
    for (int y = 10; y < 40; y++)
        for (int x = 70; x < 78; x++)
            big[y * BW + x] = 1.0f;
    for (int x = 62; x < 86; x++)
        for (int y = 40; y < 44; y++)
            big[y * BW + x] = 1.0f;
    size_t len;
    unsigned char *png = write_png(big, BW, BH, &GRAY8, &len);
    float out[W * H];
    MnError err;
    ck_assert_msg(decode(png, len, IMAGE_PRE_DIGIT, out, &err) == 0, "%s", err.msg);
    int x0 = W, x1 = -1, y0 = H, y1 = -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (out[y * W + x] > 0.1f) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
    ck_assert_msg(y1 - y0 + 1 <= 20 && y1 - y0 + 1 >= 19, "height %d", y1 - y0 + 1);
    ck_assert_msg(x1 - x0 + 1 <= 20, "width %d", x1 - x0 + 1);
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    ck_assert_msg(fabs(cx - 14.0) <= 0.6 && fabs(cy - 14.0) <= 0.6, /* whole-pixel shifts */ "centre of mass (%g, %g)", cx, cy);
    free(png);
    free(big);
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
    ck_assert_ptr_nonnull(strstr(err.msg, "56x56"));
    free(png);
}
END_TEST

START_TEST(test_mnist_digits_change_next_to_nothing)
{
    Dataset test;
    MnError err = {0};
    ck_assert_msg(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err) == 0,
                  "%s (run `make data`)", err.msg);
    double total = 0.0;
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        uint8_t *png;
        size_t len;
        ck_assert_int_eq(image_encode_png_gray8(test.images + i * 784, 28, 28, &png, &len, &err), 0);
        float out[784];
        ck_assert_int_eq(decode(png, len, IMAGE_PRE_DIGIT, out, &err), 0);
        double diff = 0.0;
        for (int p = 0; p < 784; p++)
            diff += fabs(out[p] - test.images[i * 784 + p] / 255.0);
        total += diff / 784;
        free(png);
    }
    double mean = total / N;
    ck_assert_msg(mean < 0.01, "mean absolute change %.4f per pixel", mean);
    dataset_free(&test);
}
END_TEST

START_TEST(test_blank_image_is_black)
{
    float ink[W * H] = {0}, out[W * H];
    size_t len;
    unsigned char *png = write_png(ink, W, H, &GRAY8, &len);
    MnError err;
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_DIGIT, out, &err), 0);
    for (int i = 0; i < W * H; i++)
        ck_assert_float_eq(out[i], 0.0f);
    free(png);
}
END_TEST

START_TEST(test_encode_round_trip)
{
    uint8_t px[W * H];
    for (int i = 0; i < W * H; i++)
        px[i] = (uint8_t)(i * 7);
    uint8_t *png;
    size_t len;
    MnError err;
    ck_assert_int_eq(image_encode_png_gray8(px, H, W, &png, &len, &err), 0);
    float out[W * H];
    ck_assert_int_eq(decode(png, len, IMAGE_PRE_NONE, out, &err), 0);
    for (int i = 0; i < W * H; i++)
        ck_assert_float_eq_tol(out[i], px[i] / 255.0f, 1e-6f);
    free(png);
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
        ck_assert_ptr_nonnull(strstr(err.msg, "PNG"));
    }
    free(png);
}
END_TEST

START_TEST(test_not_a_png_refused)
{
    const char *texts[] = {"GIF89a...", "\xff\xd8\xff\xe0 JFIF", "", "hello, world"};
    float out[W * H];
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        MnError err;
        ck_assert_int_eq(decode((const unsigned char *)texts[i], strlen(texts[i]), IMAGE_PRE_DIGIT,
                                out, &err),
                         MN_EFORMAT);
        ck_assert_ptr_nonnull(strstr(err.msg, "not a PNG"));
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
    if (b->len + n + 12 > b->cap) {
        b->cap = (b->len + n + 12) * 2;
        b->data = realloc(b->data, b->cap);
    }
    unsigned char *p = b->data + b->len;
    put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n)
        memcpy(p + 8, data, n);
    put_be32(p + 8 + n, (uint32_t)crc32(crc32(0, Z_NULL, 0), p + 4, n + 4));
    b->len += n + 12;
}

static Buffer png_header(uint32_t w, uint32_t h)
{
    Buffer b = {malloc(64), 0, 64};
    memcpy(b.data, "\x89PNG\r\n\x1a\n", 8);
    b.len = 8;
    unsigned char ihdr[13] = {0};
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = 8; /* 8-bit gray */
    chunk(&b, "IHDR", ihdr, 13);
    return b;
}

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
    ck_assert_ptr_nonnull(strstr(err.msg, "100000x100000 exceeds the 4096x4096 limit"));
    free(b.data);
}
END_TEST

/* A 1x1 image whose IDAT inflates to 1 GiB of zeros. The stream is built
 * from one deflated megabyte repeated: after a full flush, deflate's output
 * for the same input is the same, so 1 GiB costs about a megabyte. */
START_TEST(test_decompression_bomb_refused)
{
    enum { MB = 1 << 20, REPEAT = 1024 };
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
    Buffer b = png_header(1, 1);
    chunk(&b, "IDAT", first, (uint32_t)first_len);
    for (int i = 1; i < REPEAT; i++)
        chunk(&b, "IDAT", again, (uint32_t)again_len);
    chunk(&b, "IEND", NULL, 0);
    ck_assert_msg(b.len < 8u * MB, "bomb of %zu bytes", b.len);
    float out[W * H];
    MnError err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_bytes = b.len;
    memset(&err, 0, sizeof err);
    int rc = image_from_png(b.data, b.len, &lim, IMAGE_PRE_DIGIT, H, W, out, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq(rc, MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "decompression bomb"));
    /* Reported, not asserted: these machines are shared. */
    printf("decompression bomb of %zu bytes (1 GiB inflated) refused in %.3f ms\n", b.len,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    free(zeros), free(first), free(again), free(b.data);
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
    lim.max_bytes = len - 1;
    float out[W * H];
    MnError err = {0};
    ck_assert_int_eq(image_from_png(png, len, &lim, IMAGE_PRE_DIGIT, H, W, out, &err), MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "byte limit"));
    lim.max_bytes = len;
    lim.max_width = 27;
    ck_assert_int_eq(image_from_png(png, len, &lim, IMAGE_PRE_DIGIT, H, W, out, &err), MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "28x28 exceeds the 27x4096 limit"));
    free(png);
}
END_TEST

static Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("Core");
    tcase_add_loop_test(tc, test_every_kind_decodes, 0, sizeof kinds / sizeof *kinds);
    tcase_add_test(tc, test_dark_on_light_is_inverted);
    tcase_add_test(tc, test_transparent_backgrounds);
    tcase_add_test(tc, test_digit_mode_fits_and_centres);
    tcase_add_test(tc, test_frame_mode_resizes_whole_image);
    tcase_add_test(tc, test_mnist_digits_change_next_to_nothing);
    tcase_add_test(tc, test_blank_image_is_black);
    tcase_add_test(tc, test_encode_round_trip);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("Limits");
    tcase_set_timeout(lim, 60);
    tcase_add_test(lim, test_truncated_refused);
    tcase_add_test(lim, test_not_a_png_refused);
    tcase_add_test(lim, test_dimension_bomb_refused);
    tcase_add_test(lim, test_decompression_bomb_refused);
    tcase_add_test(lim, test_byte_limit_refused);
    suite_add_tcase(s, lim);
    return s;
}

MN_TEST_MAIN(image_suite)
