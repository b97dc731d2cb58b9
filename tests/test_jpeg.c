/* test_jpeg.c - JPEG decoding through core/image.c and core/jpeg_decode.c:
 * grayscale, YCbCr and CMYK (Adobe's inverted inks), baseline and
 * progressive, all eight EXIF orientations in both byte orders, DCT
 * scaling of big images, and refusal of truncated and corrupt files,
 * dimension bombs, scan bombs and files over the decoder memory limit.
 * Every fixture is written here with libjpeg's own compressor. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "check_jpeg.h"
#include "check_util.h"
#include "image.h"
#include "jpeg_decode.h"

/* A smooth gray ramp with a bright square: every value is exact-ish at quality 95. */
static void gray_pattern(unsigned char *px, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            px[y * w + x] = (unsigned char)(40 + 150 * x / (w - 1));
    for (int y = h / 4; y < h / 2; y++)
        for (int x = w / 4; x < w / 2; x++)
            px[y * w + x] = 240;
}

static int decode_none(const unsigned char *jpeg, size_t len, int w, int h, float *out, MnError *err)
{
    ImageLimits lim;
    image_limits_default(&lim);
    memset(err, 0, sizeof *err);
    return image_from_bytes(jpeg, len, &lim, IMAGE_PRE_NONE, h, w, out, NULL, err);
}

static float max_diff(const float *out, const unsigned char *want, int n)
{
    float d = 0.0f;
    for (int i = 0; i < n; i++)
        d = fmaxf(d, fabsf(out[i] - want[i] / 255.0f));
    return d;
}

enum { PW = 48, PH = 32 };

START_TEST(test_gray_baseline_and_progressive)
{
    unsigned char px[PW * PH];
    gray_pattern(px, PW, PH);
    for (int prog = 0; prog < 2; prog++) {
        JpegKind k = {.in = JCS_GRAYSCALE, .progressive = prog};
        size_t len;
        unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
        ck_assert_str_eq(image_sniff(jpeg, len), "image/jpeg");
        float out[PW * PH];
        MnError err;
        ck_assert_msg(decode_none(jpeg, len, PW, PH, out, &err) == 0, "%s", err.msg);
        float d = max_diff(out, px, PW * PH);
        ck_assert_msg(d < 12.0f / 255, "%s: max difference %g", prog ? "progressive" : "baseline", d);
        free(jpeg);
    }
}
END_TEST

START_TEST(test_ycbcr_gives_luma)
{
    /* Saturated colours of known luma (BT.601): red 76, green 150, blue 29. */
    static const unsigned char colours[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    static const unsigned char luma[3] = {76, 150, 29};
    unsigned char rgb[PW * PH * 3], want[PW * PH];
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            int c = x / (PW / 3);
            memcpy(rgb + 3 * (y * PW + x), colours[c], 3);
            want[y * PW + x] = luma[c];
        }
    for (int prog = 0; prog < 2; prog++) {
        JpegKind k = {.in = JCS_RGB, .progressive = prog};
        size_t len;
        unsigned char *jpeg = check_jpeg_write(rgb, PW, PH, &k, &len);
        float out[PW * PH];
        MnError err;
        ck_assert_msg(decode_none(jpeg, len, PW, PH, out, &err) == 0, "%s", err.msg);
        /* away from the colour edges, where chroma subsampling blurs nothing of luma */
        for (int y = 0; y < PH; y++)
            for (int x = 0; x < PW; x++)
                if (x % (PW / 3) > 2 && x % (PW / 3) < PW / 3 - 3)
                    ck_assert_msg(fabsf(out[y * PW + x] - want[y * PW + x] / 255.0f) < 6.0f / 255,
                                  "(%d, %d) = %g, want %d/255", x, y, out[y * PW + x] * 255,
                                  want[y * PW + x]);
        free(jpeg);
    }
}
END_TEST

START_TEST(test_cmyk_converted)
{
    /* Adobe's convention, which libjpeg's APP14 marker announces: inks
     * stored inverted (255 = no ink). Left half: no ink but 50% black;
     * right half: full cyan only, R = 0, G = B = 255, luma 179. */
    unsigned char cmyk[PW * PH * 4];
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            unsigned char *p = cmyk + 4 * (y * PW + x);
            bool left = x < PW / 2;
            p[0] = left ? 255 : 0; /* C inverted */
            p[1] = 255, p[2] = 255;
            p[3] = left ? 128 : 255; /* K inverted */
        }
    JpegKind k = {.in = JCS_CMYK};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(cmyk, PW, PH, &k, &len);
    float out[PW * PH];
    MnError err;
    ck_assert_msg(decode_none(jpeg, len, PW, PH, out, &err) == 0, "%s", err.msg);
    ck_assert_msg(fabsf(out[PH / 2 * PW + 4] * 255 - 128) < 6, "50%% black: %g", out[PH / 2 * PW + 4] * 255);
    ck_assert_msg(fabsf(out[PH / 2 * PW + PW - 5] * 255 - 179) < 6, "cyan: %g",
                  out[PH / 2 * PW + PW - 5] * 255);
    free(jpeg);
}
END_TEST

START_TEST(test_exif_orientation)
{
    /* A bright block in the stored image's top-left corner, in an image
     * wider than high: where it shows, and the shape, say the turn. */
    int o = _i % 8 + 1;
    bool be = _i >= 8;
    enum { SW = 48, SH = 24, B = 8 };
    unsigned char px[SW * SH];
    memset(px, 30, sizeof px);
    for (int y = 0; y < B; y++)
        for (int x = 0; x < B; x++)
            px[y * SW + x] = 230;
    JpegKind k = {.in = JCS_GRAYSCALE, .orientation = o, .big_endian = be};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, SW, SH, &k, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    GrayAlpha img;
    MnError err = {0};
    ck_assert_msg(jpeg_decode_gray_alpha(jpeg, len, &lim, 1 << 30, &img, &err) == 0, "%s", err.msg);
    bool swap = o >= 5;
    ck_assert_int_eq(img.w, swap ? SH : SW);
    ck_assert_int_eq(img.h, swap ? SW : SH);
    /* where the stored (0, 0) corner is displayed: right side for 2, 3, 6, 7; bottom for 3, 4, 7, 8 */
    bool right = o == 2 || o == 3 || o == 6 || o == 7, bottom = o == 3 || o == 4 || o == 7 || o == 8;
    int cx = right ? img.w - 1 - B / 2 : B / 2, cy = bottom ? img.h - 1 - B / 2 : B / 2;
    ck_assert_msg(img.ga[2 * (cy * img.w + cx)] > 200, "orientation %d (%s): corner (%d, %d) = %d", o,
                  be ? "MM" : "II", cx, cy, img.ga[2 * (cy * img.w + cx)]);
    int ox = img.w - 1 - cx, oy = img.h - 1 - cy; /* the opposite corner is dark */
    ck_assert_int_lt(img.ga[2 * (oy * img.w + ox)], 60);
    ck_assert_int_eq(img.ga[1], 255);
    free(img.ga);
    free(jpeg);
}
END_TEST

START_TEST(test_big_images_scaled_by_the_dct)
{
    enum { BW = 2048, BH = 1024 };
    unsigned char *px = malloc(BW * BH);
    gray_pattern(px, BW, BH);
    JpegKind k = {.in = JCS_GRAYSCALE, .quality = 80};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, BW, BH, &k, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    GrayAlpha img;
    MnError err = {0};
    /* 2048 / 8 = 256, still the 256 asked for: 1/8 */
    ck_assert_int_eq(jpeg_decode_gray_alpha(jpeg, len, &lim, 256, &img, &err), 0);
    ck_assert_int_eq(img.w, 256);
    ck_assert_int_eq(img.h, 128);
    free(img.ga);
    /* 257 needs 2048 / 4 */
    ck_assert_int_eq(jpeg_decode_gray_alpha(jpeg, len, &lim, 257, &img, &err), 0);
    ck_assert_int_eq(img.w, 512);
    free(img.ga);
    ck_assert_int_eq(jpeg_decode_gray_alpha(jpeg, len, &lim, 1 << 30, &img, &err), 0);
    ck_assert_int_eq(img.w, BW);
    ck_assert_int_eq(img.h, BH);
    free(img.ga);
    /* and the preprocessing asks for a small decode: the frame still holds
     * the ramp (dark on the left: not inverted), right column's mean */
    float out[28 * 28];
    ck_assert_msg(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err) == 0,
                  "%s", err.msg);
    ck_assert_float_eq_tol(out[14 * 28 + 27], (40 + 150 * 27.5f / 28) / 255, 0.02f);
    ck_assert_float_eq_tol(out[14 * 28 + 0], (40 + 150 * 0.5f / 28) / 255, 0.02f);
    free(jpeg);
    free(px);
}
END_TEST

START_TEST(test_digit_mode_on_a_jpeg_photo)
{
    /* dark ink on light paper, through the digit preprocessing with a trace */
    enum { DW = 120, DH = 100 };
    unsigned char px[DW * DH];
    for (int y = 0; y < DH; y++)
        for (int x = 0; x < DW; x++) {
            bool ink = (x >= 55 && x < 63 && y >= 20 && y < 80);
            px[y * DW + x] = ink ? 40 : (unsigned char)(150 + x / 2);
        }
    JpegKind k = {.in = JCS_GRAYSCALE, .quality = 75};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, DW, DH, &k, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    float out[28 * 28];
    ImageTrace *trace = calloc(1, sizeof *trace);
    MnError err = {0};
    ck_assert_msg(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, trace, &err) == 0,
                  "%s", err.msg);
    ck_assert_float_eq_tol(out[14 * 28 + 14], 1.0f, 0.05f); /* the bar, centred */
    ck_assert_float_eq_tol(out[14 * 28 + 3], 0.0f, 0.02f);  /* the paper, black */
    ck_assert_int_ge(trace->n, 5);
    ck_assert_str_eq(trace->steps[0].step, "decoded");
    ck_assert_str_eq(trace->steps[trace->n - 1].step, "input");
    free(trace);
    free(jpeg);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_truncated_refused)
{
    unsigned char px[PW * PH];
    gray_pattern(px, PW, PH);
    for (int prog = 0; prog < 2; prog++) {
        JpegKind k = {.in = JCS_GRAYSCALE, .progressive = prog};
        size_t len;
        unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
        /* every cut: inside the header, inside the scans, just before EOI */
        for (size_t cut = 3; cut < len; cut += cut < 40 ? 7 : 23) {
            float out[PW * PH];
            MnError err;
            int rc = decode_none(jpeg, cut, PW, PH, out, &err);
            ck_assert_msg(rc == MN_ECORRUPT, "cut at %zu of %zu: rc %d (%s)", cut, len, rc, err.msg);
            ck_assert_msg(strstr(err.msg, "truncated or corrupt JPEG"), "%s", err.msg);
        }
        float out[PW * PH];
        MnError err;
        ck_assert_int_eq(decode_none(jpeg, len - 2, PW, PH, out, &err), MN_ECORRUPT);
        free(jpeg);
    }
}
END_TEST

START_TEST(test_corrupt_refused)
{
    unsigned char px[PW * PH];
    gray_pattern(px, PW, PH);
    JpegKind k = {.in = JCS_GRAYSCALE};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
    float out[PW * PH];
    MnError err;
    /* a 12-bit precision in SOF0, which this libjpeg cannot decode */
    unsigned char *bad = malloc(len);
    memcpy(bad, jpeg, len);
    size_t sof = 2;
    while (sof + 4 < len && !(bad[sof] == 0xFF && bad[sof + 1] == 0xC0))
        sof += 2 + (size_t)(bad[sof + 2] << 8 | bad[sof + 3]);
    ck_assert_uint_lt(sof + 4, len);
    bad[sof + 4] = 12;
    ck_assert_int_eq(decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "precision"), "%s", err.msg);
    /* a restart marker in the middle of the scan, where none belongs */
    memcpy(bad, jpeg, len);
    bad[len - 40] = 0xFF, bad[len - 39] = 0xD3;
    ck_assert_int_eq(decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "truncated or corrupt JPEG: "), "%s", err.msg);
    /* SOI and then nothing a JPEG has */
    ck_assert_int_eq(decode_none((const unsigned char *)"\xff\xd8\xff\xe0 JFIF", 9, PW, PH, out, &err),
                     MN_ECORRUPT);
    free(bad);
    free(jpeg);
}
END_TEST

START_TEST(test_dimension_bomb_refused)
{
    /* a real 48x32 file whose SOF0 claims 60000x50000: refused from the header */
    unsigned char px[PW * PH];
    gray_pattern(px, PW, PH);
    JpegKind k = {.in = JCS_GRAYSCALE};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
    size_t sof = 2;
    while (sof + 9 < len && !(jpeg[sof] == 0xFF && jpeg[sof + 1] == 0xC0))
        sof += 2 + (size_t)(jpeg[sof + 2] << 8 | jpeg[sof + 3]);
    jpeg[sof + 5] = 50000 >> 8, jpeg[sof + 6] = 50000 & 0xFF;
    jpeg[sof + 7] = 60000 >> 8, jpeg[sof + 8] = 60000 & 0xFF;
    ImageLimits lim;
    image_limits_default(&lim);
    float out[28 * 28];
    MnError err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, &err),
                     MN_ELIMIT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_str_eq(err.msg, "image 60000x50000 exceeds the 4096x4096 limit");
    ck_assert_double_lt((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, 50.0);
    /* the configured side, named */
    lim.max_width = 47;
    jpeg[sof + 5] = 0, jpeg[sof + 6] = PH, jpeg[sof + 7] = 0, jpeg[sof + 8] = PW;
    ck_assert_int_eq(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, &err),
                     MN_ELIMIT);
    ck_assert_str_eq(err.msg, "image 48x32 exceeds the 47x4096 limit");
    lim.max_width = 48;
    ck_assert_int_eq(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, &err), 0);
    /* and the byte limit */
    lim.max_bytes = len - 1;
    ck_assert_int_eq(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, &err),
                     MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "byte limit"));
    free(jpeg);
}
END_TEST

START_TEST(test_scan_limit)
{
    /* 64 scans (one DC, 63 single-coefficient AC): the default limit takes
     * exactly that many; one fewer allowed refuses it. */
    unsigned char px[PW * PH];
    gray_pattern(px, PW, PH);
    JpegKind k = {.in = JCS_GRAYSCALE, .scans = 64};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    ck_assert_int_eq(lim.max_jpeg_scans, 64);
    float out[PW * PH];
    MnError err = {0};
    ck_assert_msg(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_NONE, PH, PW, out, NULL, &err) == 0,
                  "%s", err.msg);
    ck_assert_float_le(max_diff(out, px, PW * PH), 12.0f / 255);
    lim.max_jpeg_scans = 63;
    ck_assert_int_eq(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_NONE, PH, PW, out, NULL, &err),
                     MN_ELIMIT);
    ck_assert_str_eq(err.msg, "JPEG has more than 63 scans, the limit (a progressive-scan bomb)");
    free(jpeg);
}
END_TEST

START_TEST(test_decoder_memory_limit)
{
    /* a progressive 1024x1024 gray image holds 2 MiB of coefficients */
    enum { S = 1024 };
    unsigned char *px = malloc(S * S);
    gray_pattern(px, S, S);
    JpegKind k = {.in = JCS_GRAYSCALE, .progressive = true, .quality = 50};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, S, S, &k, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_decoder_memory = 1L << 20;
    float out[28 * 28];
    MnError err = {0};
    ck_assert_int_eq(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err),
                     MN_ELIMIT);
    ck_assert_msg(strstr(err.msg, "over the 1048576-byte decoder memory limit"), "%s", err.msg);
    lim.max_decoder_memory = 8L << 20;
    ck_assert_msg(image_from_bytes(jpeg, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err) == 0,
                  "%s", err.msg);
    free(jpeg);
    free(px);
}
END_TEST

static Suite *jpeg_suite(void)
{
    Suite *s = suite_create("jpeg");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_gray_baseline_and_progressive);
    tcase_add_test(tc, test_ycbcr_gives_luma);
    tcase_add_test(tc, test_cmyk_converted);
    tcase_add_loop_test(tc, test_exif_orientation, 0, 16);
    tcase_add_test(tc, test_big_images_scaled_by_the_dct);
    tcase_add_test(tc, test_digit_mode_on_a_jpeg_photo);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("Limits");
    tcase_add_test(lim, test_truncated_refused);
    tcase_add_test(lim, test_corrupt_refused);
    tcase_add_test(lim, test_dimension_bomb_refused);
    tcase_add_test(lim, test_scan_limit);
    tcase_add_test(lim, test_decoder_memory_limit);
    suite_add_tcase(s, lim);
    return s;
}

MN_TEST_MAIN(jpeg_suite)
