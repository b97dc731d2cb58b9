/* test_webp.c - WebP decoding through core/image.c and core/webp_decode.c:
 * lossless (exact) and lossy (luma), alpha as PNG's, scaling of big opaque
 * images by libwebp's rescaler, the digit preprocessing on a WebP photo;
 * refusal of truncated, corrupt and animated files, dimension bombs read
 * from the header and files over the decoder memory limit; and the real
 * server taking WebP wherever it takes JPEG (raw /predict bodies whatever
 * the declared image type, multipart, TorchServe's /predictions, /explain)
 * with the right statuses for bad ones. Every fixture is written here
 * with libwebp's own encoder. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <webp/encode.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "image.h"
#include "png_decode.h"
#include "server.h"
#include "webp_decode.h"

/* RGBA (w*h*4) as a WebP: lossless when quality < 0. *len bytes; WebPFree it. */
static unsigned char *webp_encode(const unsigned char *rgba, int w, int h, int quality, size_t *len)
{
    uint8_t *out = NULL;
    *len = quality < 0 ? WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &out)
                       : WebPEncodeRGBA(rgba, w, h, w * 4, (float)quality, &out);
    ck_assert_msg(*len > 0 && out, "libwebp could not encode a %dx%d image", w, h);
    return out;
}

/* gray (w*h) opaque as RGBA, malloc'd */
static unsigned char *rgba_of_gray(const unsigned char *gray, int w, int h)
{
    unsigned char *rgba = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++)
        rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = gray[i], rgba[4 * i + 3] = 255;
    return rgba;
}

static unsigned char *gray_webp(const unsigned char *gray, int w, int h, int quality, size_t *len)
{
    unsigned char *rgba = rgba_of_gray(gray, w, h);
    unsigned char *webp = webp_encode(rgba, w, h, quality, len);
    free(rgba);
    return webp;
}

/* check_util_gray_pattern as a WebP, lossless when quality < 0. */
static unsigned char *pattern_webp(int w, int h, int quality, size_t *len)
{
    unsigned char *px = malloc((size_t)w * h);
    check_util_gray_pattern(px, w, h);
    unsigned char *webp = gray_webp(px, w, h, quality, len);
    free(px);
    return webp;
}

enum { PW = 48, PH = 32 };

START_TEST(test_lossless_exact_lossy_close)
{
    unsigned char px[PW * PH];
    check_util_gray_pattern(px, PW, PH);
    for (int lossy = 0; lossy < 2; lossy++) {
        size_t len;
        unsigned char *webp = gray_webp(px, PW, PH, lossy ? 95 : -1, &len);
        ck_assert_str_eq(image_sniff(webp, len), "image/webp");
        float out[PW * PH];
        MnError err;
        ck_assert_msg(check_util_decode_none(webp, len, PW, PH, out, &err) == 0, "%s", err.msg);
        float d = check_util_max_diff(out, px, PW * PH);
        if (lossy)
            ck_assert_msg(d < 12.0f / 255, "lossy: max difference %g", d);
        else
            ck_assert_msg(d == 0.0f, "lossless: max difference %g", d);
        WebPFree(webp);
    }
}
END_TEST

START_TEST(test_colour_gives_luma)
{
    /* Saturated colours of known luma (BT.601): red 76, green 150, blue 29. */
    static const unsigned char colours[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    static const unsigned char luma[3] = {76, 150, 29};
    unsigned char rgba[PW * PH * 4];
    for (int i = 0; i < PW * PH; i++) {
        memcpy(rgba + 4 * i, colours[(i % PW) / (PW / 3)], 3);
        rgba[4 * i + 3] = 255;
    }
    for (int lossy = 0; lossy < 2; lossy++) {
        size_t len;
        unsigned char *webp = webp_encode(rgba, PW, PH, lossy ? 95 : -1, &len);
        float out[PW * PH];
        MnError err;
        ck_assert_msg(check_util_decode_none(webp, len, PW, PH, out, &err) == 0, "%s", err.msg);
        /* away from the colour edges, which 4:2:0 chroma blurs */
        for (int y = 0; y < PH; y++)
            for (int x = 0; x < PW; x++) {
                int c = x / (PW / 3);
                if (x % (PW / 3) < 3 || x % (PW / 3) >= PW / 3 - 3)
                    continue;
                float got = out[y * PW + x] * 255, tol = lossy ? 8.0f : 0.5f;
                ck_assert_msg(fabsf(got - luma[c]) <= tol, "%s (%d, %d) = %g, want %d",
                              lossy ? "lossy" : "lossless", x, y, got, luma[c]);
            }
        WebPFree(webp);
    }
}
END_TEST

START_TEST(test_alpha_as_png)
{
    /* a white stroke on a transparent canvas whose hidden colour is white
     * too: only alpha tells ink from background, as a canvas export's */
    enum { S = 40 };
    unsigned char rgba[S * S * 4];
    for (int i = 0; i < S * S; i++) {
        int x = i % S, y = i / S;
        bool ink = x >= 16 && x < 24 && y >= 6 && y < 34;
        rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = 255;
        rgba[4 * i + 3] = ink ? 255 : x == 0 ? 128 : 0;
    }
    for (int lossy = 0; lossy < 2; lossy++) {
        size_t len;
        unsigned char *webp = webp_encode(rgba, S, S, lossy ? 90 : -1, &len);
        ImageLimits lim;
        image_limits_default(&lim);
        GrayAlpha img;
        MnError err = {0};
        /* min_side below the image: alpha still decodes at full size */
        ck_assert_msg(webp_decode_gray_alpha(webp, len, &lim, 16, &img, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(img.w, S);
        ck_assert_int_eq(img.h, S);
        for (int i = 0; i < S * S; i++)
            ck_assert_msg(img.ga[2 * i + 1] == rgba[4 * i + 3], "%s: alpha at %d is %d, want %d",
                          lossy ? "lossy" : "lossless", i, img.ga[2 * i + 1], rgba[4 * i + 3]);
        ck_assert_int_ge(img.ga[2 * (20 * S + 20)], 245);
        free(img.ga);
        /* and through the digit preprocessing: the stroke, centred, is the ink */
        float out[28 * 28];
        ck_assert_msg(image_from_bytes(webp, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, &err) == 0,
                      "%s", err.msg);
        ck_assert_float_eq_tol(out[14 * 28 + 14], 1.0f, 0.05f);
        ck_assert_float_eq_tol(out[14 * 28 + 2], 0.0f, 0.02f);
        WebPFree(webp);
    }
}
END_TEST

START_TEST(test_big_opaque_images_scaled)
{
    enum { BW = 2048, BH = 1024 };
    unsigned char *px = malloc(BW * BH);
    check_util_gray_pattern(px, BW, BH);
    size_t len;
    unsigned char *webp = gray_webp(px, BW, BH, 80, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    GrayAlpha img;
    MnError err = {0};
    ck_assert_int_eq(webp_decode_gray_alpha(webp, len, &lim, 256, &img, &err), 0);
    ck_assert_int_eq(img.w, 256);
    ck_assert_int_eq(img.h, 128);
    /* the ramp survives the rescaler: a column's mean at 1/4 of the width */
    ck_assert_int_le(abs(img.ga[2 * (100 * 256 + 64)] - (40 + 150 * 64 / 255)), 3);
    free(img.ga);
    ck_assert_int_eq(webp_decode_gray_alpha(webp, len, &lim, 300, &img, &err), 0);
    ck_assert_int_eq(img.w, 300);
    ck_assert_int_eq(img.h, 150);
    free(img.ga);
    ck_assert_int_eq(webp_decode_gray_alpha(webp, len, &lim, 1 << 30, &img, &err), 0);
    ck_assert_int_eq(img.w, BW);
    ck_assert_int_eq(img.h, BH);
    free(img.ga);
    check_util_expect_ramp_framed(webp, len);
    WebPFree(webp);
    free(px);
}
END_TEST

START_TEST(test_digit_mode_on_a_webp_photo)
{
    unsigned char px[CHECK_PHOTO_W * CHECK_PHOTO_H];
    check_util_bar_photo(px);
    size_t len;
    unsigned char *webp = gray_webp(px, CHECK_PHOTO_W, CHECK_PHOTO_H, 75, &len);
    check_util_expect_bar_read(webp, len);
    WebPFree(webp);
}
END_TEST

/* ---- refusals ---- */

static void le24(unsigned char *p, uint32_t v) { p[0] = v & 0xFF, p[1] = v >> 8 & 0xFF, p[2] = v >> 16; }
static void le32(unsigned char *p, uint32_t v) { le24(p, v), p[3] = v >> 24; }

/* A still lossy WebP (RIFF, one "VP8 " chunk) wrapped as a one-frame
 * animation: VP8X with the animation flag, ANIM, ANMF holding the frame. */
static unsigned char *animated_of(const unsigned char *still, size_t len, int w, int h,
                                  size_t *out_len)
{
    ck_assert(len > 20 && memcmp(still + 12, "VP8 ", 4) == 0);
    size_t frame = len - 12; /* the "VP8 " chunk, header and padding included */
    size_t n = 12 + 18 + 14 + 24 + frame;
    unsigned char *p = calloc(1, n), *q = p;
    memcpy(q, "RIFF", 4), le32(q + 4, (uint32_t)(n - 8)), memcpy(q + 8, "WEBP", 4), q += 12;
    memcpy(q, "VP8X", 4), le32(q + 4, 10), q[8] = 0x02, le24(q + 12, w - 1), le24(q + 15, h - 1);
    q += 18;
    memcpy(q, "ANIM", 4), le32(q + 4, 6), q += 14;
    memcpy(q, "ANMF", 4), le32(q + 4, (uint32_t)(16 + frame));
    le24(q + 14, w - 1), le24(q + 17, h - 1), le24(q + 20, 100);
    q += 24;
    memcpy(q, still + 12, frame);
    *out_len = n;
    return p;
}

START_TEST(test_truncated_refused)
{
    for (int lossy = 0; lossy < 2; lossy++) {
        size_t len;
        unsigned char *webp = pattern_webp(PW, PH, lossy ? 90 : -1, &len);
        /* every cut: inside the RIFF header, the chunk header, the frame header, the data */
        check_util_expect_cuts_refused(webp, len, 12, PW, PH, "truncated or corrupt WebP");
        WebPFree(webp);
    }
}
END_TEST

START_TEST(test_corrupt_and_animated_refused)
{
    float out[PW * PH];
    MnError err;
    size_t len;
    unsigned char *lossy = pattern_webp(PW, PH, 90, &len);
    unsigned char *bad = malloc(len);
    /* the VP8 key frame's start code (9d 01 2a) broken */
    memcpy(bad, lossy, len);
    ck_assert_int_eq(bad[23], 0x9d);
    bad[23] = 0x9c;
    ck_assert_int_eq(check_util_decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "truncated or corrupt WebP: bad header"), "%s", err.msg);
    /* a RIFF WEBP whose one chunk is no image */
    static const unsigned char junk[] = "RIFF\x0c\0\0\0WEBPJUNK\0\0\0\0";
    ck_assert_int_eq(check_util_decode_none(junk, sizeof junk - 1, PW, PH, out, &err), MN_ECORRUPT);
    /* one frame, as an animation */
    size_t alen;
    unsigned char *anim = animated_of(lossy, len, PW, PH, &alen);
    ck_assert_str_eq(image_sniff(anim, alen), "image/webp");
    ck_assert_int_eq(check_util_decode_none(anim, alen, PW, PH, out, &err), MN_EFORMAT);
    ck_assert_str_eq(err.msg, "animated WebP (48x32 canvas) is not supported: send one frame as a "
                              "still image");
    free(anim);
    WebPFree(lossy);
    /* a lossless file's signature (0x2f) broken, then its entropy codes */
    unsigned char *lossless = pattern_webp(PW, PH, -1, &len);
    bad = realloc(bad, len);
    memcpy(bad, lossless, len);
    ck_assert_int_eq(bad[20], 0x2f);
    bad[20] = 0x2e;
    ck_assert_int_eq(check_util_decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    memcpy(bad, lossless, len);
    memset(bad + 25, 0xFF, len - 25);
    ck_assert_int_eq(check_util_decode_none(bad, len, PW, PH, out, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "truncated or corrupt WebP: bad lossless image data"), "%s",
                  err.msg);
    free(bad);
    WebPFree(lossless);
}
END_TEST

START_TEST(test_dimension_bomb_refused)
{
    /* a real 48x32 lossy file whose frame header claims 16383x16000 (the
     * most VP8's 14 bits say): refused from the header */
    size_t len;
    unsigned char *webp = pattern_webp(PW, PH, 90, &len);
    webp[26] = 16383 & 0xFF, webp[27] = 16383 >> 8;
    webp[28] = 16000 & 0xFF, webp[29] = 16000 >> 8;
    check_util_expect_bomb_refused(webp, len, "image 16383x16000 exceeds the 4096x4096 limit");
    /* the configured side and bytes, named */
    webp[26] = PW, webp[27] = 0, webp[28] = PH, webp[29] = 0;
    check_util_expect_limits_exact(webp, len, PW, PH);
    WebPFree(webp);
}
END_TEST

START_TEST(test_decoder_memory_limit)
{
    /* a lossless 1024x1024 image is decoded whole: 4 MiB */
    enum { S = 1024 };
    size_t len;
    unsigned char *webp = pattern_webp(S, S, -1, &len);
    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_decoder_memory = (4L << 20) - 1;
    float out[28 * 28];
    MnError err = {0};
    ck_assert_int_eq(image_from_bytes(webp, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err),
                     MN_ELIMIT);
    ck_assert_str_eq(err.msg, "lossless WebP 1024x1024 needs 4194304 bytes decoded whole, over "
                              "the 4194303-byte decoder memory limit");
    lim.max_decoder_memory = 4L << 20;
    ck_assert_msg(image_from_bytes(webp, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err) == 0,
                  "%s", err.msg);
    WebPFree(webp);
    /* a lossy one streams by rows: the same limit takes it */
    webp = pattern_webp(S, S, 80, &len);
    lim.max_decoder_memory = 1L << 20;
    ck_assert_msg(image_from_bytes(webp, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err) == 0,
                  "%s", err.msg);
    WebPFree(webp);
}
END_TEST

/* ---- through the server ---- */

static Server srv;
static char *store;

static void start(long max_decoder_memory)
{
    check_server_config(&srv, store);
    srv.cfg.max_decoder_memory = max_decoder_memory;
    check_server_start(&srv);
}

static void setup(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
    start(256L << 20);
}

static void teardown(void) { check_server_stop(&srv, store); }

static HttpReply post(const char *path, const char *type, const void *body, size_t len)
{
    return check_http_request(srv.cfg.port, "POST", path, type, NULL, body, len);
}

/* The probabilities an answer holds, as JSON text, after checking it is 200. */
static char *probabilities_of(HttpReply r)
{
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = check_http_json(&r);
    char *p = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "probabilities"));
    cJSON_Delete(j);
    check_http_free(&r);
    return p;
}

/* MNIST test digit i as a PNG and as a lossless WebP of the same pixels. */
static unsigned char *digit_webp(int i, unsigned char **png, size_t *png_len, size_t *len)
{
    *png = check_util_digit_png(i, png_len, NULL);
    ImageLimits lim;
    image_limits_default(&lim);
    GrayAlpha img;
    MnError err = {0};
    ck_assert_msg(png_decode_gray_alpha(*png, *png_len, &lim, &img, &err) == 0, "%s", err.msg);
    unsigned char gray[28 * 28];
    for (int k = 0; k < 28 * 28; k++)
        gray[k] = img.ga[2 * k];
    free(img.ga);
    return gray_webp(gray, 28, 28, -1, len);
}

START_TEST(test_server_takes_webp_as_png)
{
    /* the same pixels as PNG and as lossless WebP: the same probabilities,
     * bit for bit, through every way in */
    unsigned char *png;
    size_t png_len, len;
    unsigned char *webp = digit_webp(0, &png, &png_len, &len);
    char *want = probabilities_of(post("/predict?model=digits", "image/png", png, png_len));
    char *got[4];
    got[0] = probabilities_of(post("/predict?model=digits", "image/webp", webp, len));
    got[1] = probabilities_of(post("/predict?model=digits", "image/jpeg", webp, len));
    size_t mlen;
    unsigned char *files[1] = {webp};
    char *multi = check_http_multipart("image", files, &len, 1, &mlen);
    got[2] = probabilities_of(post("/predict?model=digits", CHECK_HTTP_MULTIPART, multi, mlen));
    HttpReply r = post("/predictions/digits", "application/octet-stream", webp, len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = check_http_json(&r);
    got[3] = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "probabilities"));
    cJSON_Delete(j);
    check_http_free(&r);
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(got[k] && strcmp(got[k], want) == 0, "way %d: %s, PNG %s", k, got[k], want);
        free(got[k]);
    }
    /* /explain takes it too */
    r = post("/explain?model=digits&steps=8", CHECK_HTTP_MULTIPART, multi, mlen);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    free(multi);
    free(want);
    free(png);
    WebPFree(webp);
}
END_TEST

START_TEST(test_server_refuses_bad_webps)
{
    enum { S = 600 };
    size_t len;
    unsigned char *lossy = pattern_webp(S, S, 80, &len);
    check_http_expect_error(post("/predict", "image/webp", lossy, len / 2), 400, "corrupt_file",
                 "truncated or corrupt WebP");
    size_t alen;
    unsigned char *anim = animated_of(lossy, len, S, S, &alen);
    check_http_expect_error(post("/predict", "image/webp", anim, alen), 415, "unsupported_media_type",
                 "animated WebP");
    free(anim);
    lossy[26] = 16383 & 0xFF, lossy[27] = 16383 >> 8;
    check_http_expect_error(post("/predict", "image/webp", lossy, len), 413, "limit_exceeded",
                 "image 16383x600 exceeds the 4096x4096 limit");
    WebPFree(lossy);
    /* --max-decoder-memory: a lossless 600x600 holds 1.4 MB whole */
    unsigned char *lossless = pattern_webp(S, S, -1, &len);
    HttpReply r = post("/predict", "image/webp", lossless, len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    server_stop(&srv);
    start(1L << 20);
    check_http_expect_error(post("/predict", "image/webp", lossless, len), 413, "limit_exceeded",
                 "over the 1048576-byte decoder memory limit");
    WebPFree(lossless);
}
END_TEST

static Suite *webp_suite(void)
{
    Suite *s = suite_create("webp");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_lossless_exact_lossy_close);
    tcase_add_test(tc, test_colour_gives_luma);
    tcase_add_test(tc, test_alpha_as_png);
    tcase_add_test(tc, test_big_opaque_images_scaled);
    tcase_add_test(tc, test_digit_mode_on_a_webp_photo);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("Limits");
    tcase_add_test(lim, test_truncated_refused);
    tcase_add_test(lim, test_corrupt_and_animated_refused);
    tcase_add_test(lim, test_dimension_bomb_refused);
    tcase_add_test(lim, test_decoder_memory_limit);
    suite_add_tcase(s, lim);
    TCase *http = tcase_create("Server");
    tcase_add_checked_fixture(http, setup, teardown);
    tcase_add_test(http, test_server_takes_webp_as_png);
    tcase_add_test(http, test_server_refuses_bad_webps);
    suite_add_tcase(s, http);
    return s;
}

MN_TEST_MAIN(webp_suite)
