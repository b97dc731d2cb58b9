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

#include "check_jpeg.h"
#include "check_util.h"
#include "image.h"
#include "jpeg_decode.h"

enum { PW = 48, PH = 32 };

START_TEST(test_gray_baseline_and_progressive)
{
    unsigned char px[PW * PH];
    check_util_gray_pattern(px, PW, PH);
    for (int prog = 0; prog < 2; prog++) {
        JpegKind k = {.in = JCS_GRAYSCALE, .progressive = prog};
        size_t len;
        unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
        ck_assert_str_eq(image_sniff(jpeg, len), "image/jpeg");
        float out[PW * PH];
        MnError err;
        ck_assert_msg(check_util_decode_none(jpeg, len, PW, PH, out, &err) == 0, "%s", err.msg);
        float d = check_util_max_diff(out, px, PW * PH);
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
        ck_assert_msg(check_util_decode_none(jpeg, len, PW, PH, out, &err) == 0, "%s", err.msg);
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
    ck_assert_msg(check_util_decode_none(jpeg, len, PW, PH, out, &err) == 0, "%s", err.msg);
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
    check_util_gray_pattern(px, BW, BH);
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
    /* and the preprocessing asks for a small decode: the frame still holds the ramp */
    check_util_expect_ramp_framed(jpeg, len);
    free(jpeg);
    free(px);
}
END_TEST

START_TEST(test_digit_mode_on_a_jpeg_photo)
{
    unsigned char px[CHECK_PHOTO_W * CHECK_PHOTO_H];
    check_util_bar_photo(px);
    JpegKind k = {.in = JCS_GRAYSCALE, .quality = 75};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, CHECK_PHOTO_W, CHECK_PHOTO_H, &k, &len);
    check_util_expect_bar_read(jpeg, len);
    free(jpeg);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_truncated_refused)
{
    unsigned char px[PW * PH];
    check_util_gray_pattern(px, PW, PH);
    for (int prog = 0; prog < 2; prog++) {
        JpegKind k = {.in = JCS_GRAYSCALE, .progressive = prog};
        size_t len;
        unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
        /* every cut: inside the header, inside the scans, just before EOI */
        check_util_expect_cuts_refused(jpeg, len, 3, PW, PH, "truncated or corrupt JPEG");
        free(jpeg);
    }
}
END_TEST

START_TEST(test_corrupt_refused)
{
    unsigned char px[PW * PH];
    check_util_gray_pattern(px, PW, PH);
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
    ck_assert_int_eq(check_util_decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "precision"), "%s", err.msg);
    /* a restart marker in the middle of the scan, where none belongs */
    memcpy(bad, jpeg, len);
    bad[len - 40] = 0xFF, bad[len - 39] = 0xD3;
    ck_assert_int_eq(check_util_decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "truncated or corrupt JPEG: "), "%s", err.msg);
    /* SOI and then nothing a JPEG has */
    ck_assert_int_eq(check_util_decode_none((const unsigned char *)"\xff\xd8\xff\xe0 JFIF", 9, PW, PH, out, &err),
                     MN_ECORRUPT);
    free(bad);
    free(jpeg);
}
END_TEST

START_TEST(test_dimension_bomb_refused)
{
    /* a real 48x32 file whose SOF0 claims 60000x50000: refused from the header */
    unsigned char px[PW * PH];
    check_util_gray_pattern(px, PW, PH);
    JpegKind k = {.in = JCS_GRAYSCALE};
    size_t len;
    unsigned char *jpeg = check_jpeg_write(px, PW, PH, &k, &len);
    size_t sof = 2;
    while (sof + 9 < len && !(jpeg[sof] == 0xFF && jpeg[sof + 1] == 0xC0))
        sof += 2 + (size_t)(jpeg[sof + 2] << 8 | jpeg[sof + 3]);
    jpeg[sof + 5] = 50000 >> 8, jpeg[sof + 6] = 50000 & 0xFF;
    jpeg[sof + 7] = 60000 >> 8, jpeg[sof + 8] = 60000 & 0xFF;
    check_util_expect_bomb_refused(jpeg, len, "image 60000x50000 exceeds the 4096x4096 limit");
    /* the configured side and bytes, named */
    jpeg[sof + 5] = 0, jpeg[sof + 6] = PH, jpeg[sof + 7] = 0, jpeg[sof + 8] = PW;
    check_util_expect_limits_exact(jpeg, len, PW, PH);
    free(jpeg);
}
END_TEST

START_TEST(test_scan_limit)
{
    /* 64 scans (one DC, 63 single-coefficient AC): the default limit takes
     * exactly that many; one fewer allowed refuses it. */
    unsigned char px[PW * PH];
    check_util_gray_pattern(px, PW, PH);
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
    ck_assert_float_le(check_util_max_diff(out, px, PW * PH), 12.0f / 255);
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
    check_util_gray_pattern(px, S, S);
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
