/* test_predict_photo.c - photos through the real server on a free port
 * with the shipped models: MNIST test digits photographed (dark ink on
 * paper lit from one side, then JPEG) must be read as the digits they
 * are, as a raw body whatever the declared image type, and as a
 * multipart file; ?trace=1 shows each preprocessing step; bad JPEGs get
 * the right status and a message, and the JPEG limits are the server's
 * configuration. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_http.h"
#include "check_server.h"
#include "check_jpeg.h"
#include "check_util.h"
#include "dataset.h"
#include "server.h"

static Server srv;
static char *store;
static Dataset test;

static void start(long max_jpeg_scans)
{
    check_server_config(&srv, store);
    srv.cfg.max_jpeg_scans = max_jpeg_scans;
    check_server_start(&srv);
}

static void setup(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
    MnError err = {0};
    if (!test.n)
        ck_assert_msg(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err) == 0,
                      "%s", err.msg);
    start(64);
}

static void teardown(void) { check_server_stop(&srv, store); }

static HttpReply post(const char *path, const char *type, const void *body, size_t len)
{
    return check_http_request(srv.cfg.port, "POST", path, type, NULL, body, len);
}


enum { PW = 150, PH = 130, SCALE = 4 };

/* MNIST test digit i photographed: its 28x28 grown 4x (bilinear) onto
 * cream paper 150x130, off-centre, lit from the left, as an RGB JPEG. */
static unsigned char *photo_jpeg(int i, bool progressive, size_t *len)
{
    const uint8_t *d = test.images + (size_t)i * 784;
    unsigned char *rgb = malloc(PW * PH * 3);
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            /* digit pixel under (x, y), with its top-left at (30, 10) */
            double u = (x - 30 + 0.5) / SCALE - 0.5, v = (y - 10 + 0.5) / SCALE - 0.5, ink = 0.0;
            int u0 = (int)floor(u), v0 = (int)floor(v);
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int px = u0 + dx, py = v0 + dy;
                    if (px >= 0 && px < 28 && py >= 0 && py < 28)
                        ink += (dx ? u - u0 : 1 - (u - u0)) * (dy ? v - v0 : 1 - (v - v0)) *
                               d[py * 28 + px] / 255.0;
                }
            double light = 0.95 - 0.35 * x / (PW - 1), reflect = 1.0 - 0.8 * ink;
            static const double paper[3] = {1.0, 0.96, 0.86};
            for (int c = 0; c < 3; c++)
                rgb[3 * (y * PW + x) + c] = (unsigned char)lround(255 * light * reflect * paper[c]);
        }
    JpegKind k = {.in = JCS_RGB, .progressive = progressive, .quality = 80};
    unsigned char *jpeg = check_jpeg_write(rgb, PW, PH, &k, len);
    free(rgb);
    return jpeg;
}

static int prediction_of(const HttpReply *r)
{
    ck_assert_msg(r->status == 200, "%d %s", r->status, r->body);
    cJSON *j = check_http_json(r);
    int p = cJSON_GetObjectItem(j, "prediction")->valueint;
    cJSON_Delete(j);
    return p;
}

START_TEST(test_photographed_digits_read)
{
    for (int i = 0; i < 6; i++) {
        size_t len;
        unsigned char *jpeg = photo_jpeg(i, i % 2, &len);
        HttpReply r = post("/predict?model=mnist-cnn", "image/jpeg", jpeg, len);
        ck_assert_msg(prediction_of(&r) == test.labels[i], "digit %d (a %d) read as %s", i,
                      test.labels[i], r.body);
        check_http_free(&r);
        /* the bytes say JPEG whatever the Content-Type says */
        r = post("/predict?model=mnist-cnn", "image/png", jpeg, len);
        ck_assert_int_eq(prediction_of(&r), test.labels[i]);
        check_http_free(&r);
        free(jpeg);
    }
}
END_TEST

START_TEST(test_multipart_jpeg)
{
    size_t len;
    unsigned char *jpeg = photo_jpeg(7, false, &len);
    size_t cap = len + 512, off = 0;
    char *body = malloc(cap);
    off += (size_t)sprintf(body, "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"image\"; "
                                 "filename=\"phone.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n");
    memcpy(body + off, jpeg, len);
    off += len;
    off += (size_t)sprintf(body + off, "\r\n--XbOuNdArY--\r\n");
    HttpReply r = post("/predict", "multipart/form-data; boundary=XbOuNdArY", body, off);
    ck_assert_int_eq(prediction_of(&r), test.labels[7]);
    check_http_free(&r);
    free(body);
    free(jpeg);
}
END_TEST

START_TEST(test_trace_shows_the_steps)
{
    size_t len;
    unsigned char *jpeg = photo_jpeg(0, false, &len);
    HttpReply r = post("/predict?trace=1", "image/jpeg", jpeg, len);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = check_http_json(&r);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "layers"));
    const cJSON *steps = cJSON_GetObjectItem(j, "preprocessing");
    ck_assert(cJSON_IsArray(steps));
    static const char *const want[] = {"decoded", "illumination", "ink", "digit"};
    int n = cJSON_GetArraySize(steps);
    ck_assert_int_ge(n, 5);
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(steps, i);
        const char *name = cJSON_GetObjectItem(s, "step")->valuestring;
        if (i < 4)
            ck_assert_str_eq(name, want[i]);
        int w = cJSON_GetObjectItem(s, "width")->valueint, h = cJSON_GetObjectItem(s, "height")->valueint;
        ck_assert(w >= 1 && w <= 64 && h >= 1 && h <= 64);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(s, "pixels")), w * h);
    }
    /* the photo arrives 150x130: shown at 64x55 */
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 0), "width")->valueint, 64);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 0), "height")->valueint, 55);
    const cJSON *last = cJSON_GetArrayItem(steps, n - 1);
    ck_assert_str_eq(cJSON_GetObjectItem(last, "step")->valuestring, "input");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(last, "pixels")), 784);
    cJSON_Delete(j);
    check_http_free(&r);
    /* without trace, no steps */
    r = post("/predict", "image/jpeg", jpeg, len);
    j = check_http_json(&r);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "preprocessing"));
    cJSON_Delete(j);
    check_http_free(&r);
    free(jpeg);
}
END_TEST


START_TEST(test_bad_jpegs_refused)
{
    size_t len;
    unsigned char *jpeg = photo_jpeg(0, true, &len);
    check_http_expect_error(post("/predict", "image/jpeg", jpeg, len / 2), 400, "corrupt_file",
                 "truncated or corrupt JPEG");
    /* SOF claims 60000x50000 */
    unsigned char *bomb = malloc(len);
    memcpy(bomb, jpeg, len);
    size_t sof = 2;
    while (sof + 9 < len && !(bomb[sof] == 0xFF && (bomb[sof + 1] == 0xC0 || bomb[sof + 1] == 0xC2)))
        sof += 2 + (size_t)(bomb[sof + 2] << 8 | bomb[sof + 3]);
    bomb[sof + 5] = 50000 >> 8, bomb[sof + 6] = 50000 & 0xFF;
    bomb[sof + 7] = 60000 >> 8, bomb[sof + 8] = 60000 & 0xFF;
    check_http_expect_error(post("/predict", "image/jpeg", bomb, len), 413, "limit_exceeded",
                 "image 60000x50000 exceeds the 4096x4096 limit");
    check_http_expect_error(post("/predict", "image/jpeg", "GIF89a", 6), 415, "unsupported_media_type",
                 "not a PNG, JPEG or WebP");
    free(bomb);
    /* --max-jpeg-scans: libjpeg's simple progression has 10 scans for YCbCr */
    server_stop(&srv);
    start(4);
    check_http_expect_error(post("/predict", "image/jpeg", jpeg, len), 413, "limit_exceeded",
                 "more than 4 scans");
    free(jpeg);
    jpeg = photo_jpeg(0, false, &len); /* a baseline file: one scan */
    HttpReply r = post("/predict", "image/jpeg", jpeg, len);
    ck_assert_int_eq(prediction_of(&r), test.labels[0]);
    check_http_free(&r);
    free(jpeg);
}
END_TEST

static Suite *predict_photo_suite(void)
{
    Suite *s = suite_create("predict_photo");
    TCase *tc = tcase_create("Server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_photographed_digits_read);
    tcase_add_test(tc, test_multipart_jpeg);
    tcase_add_test(tc, test_trace_shows_the_steps);
    tcase_add_test(tc, test_bad_jpegs_refused);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(predict_photo_suite)
