/* test_upload.c - models in and out over HTTP, on the real server with a
 * token: GET /models/{name}/versions/{n}/model.onnx gives an ONNX file that
 * imports to the served model; POST /models/{name}/versions publishes an
 * ONNX or .mnm body as the next version (token first, its own size limit,
 * 415/400/413/422 for what it refuses, and nothing published then). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "model_file.h"
#include "onnx_export.h"
#include "onnx_import.h"
#include "server.h"

#define TOKEN "s3cret"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define MAX_UPLOAD (1024 * 1024) /* fashion-cnn is 505 KB of ONNX */

static Server srv;
static char *store;

static void setup(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
    check_server_config(&srv, store);
    srv.cfg.max_body = 8192; /* smaller than any model: the upload has its own limit */
    srv.cfg.max_upload = MAX_UPLOAD;
    snprintf(srv.cfg.token, sizeof srv.cfg.token, "%s", TOKEN);
    check_server_start(&srv);
}

static void teardown(void) { check_server_stop(&srv, store); }

static HttpReply upload(const char *path, const char *type, const char *extra, const void *body,
                        size_t len)
{
    return check_http_request(srv.cfg.port, "POST", path, type, extra, body, len);
}

static HttpReply get(const char *path)
{
    return check_http_request(srv.cfg.port, "GET", path, NULL, NULL, NULL, 0);
}

static bool published(const char *name, int version)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/v%d.mnm", store, name, version);
    return stat(path, &st) == 0;
}

/* The ONNX of a served version, as a client downloads it. */
static HttpReply download(const char *name, int version)
{
    char path[160];
    snprintf(path, sizeof path, "/models/%s/versions/%d/model.onnx", name, version);
    HttpReply r = get(path);
    ck_assert_msg(r.status == 200, "%s: %d %s", path, r.status, r.raw);
    ck_assert_ptr_nonnull(strstr(r.raw, "Content-Type: application/octet-stream"));
    ck_assert_ptr_nonnull(strstr(r.raw, "filename=\""));
    return r;
}

/* The probability of class 0 for an all-zero image and a bright bar, from /predict. */
static void predict(const char *name, double out[10])
{
    char path[128], body[8192];
    snprintf(path, sizeof path, "/predict?model=%s", name);
    size_t n = (size_t)snprintf(body, sizeof body, "{\"pixels\": [");
    for (int i = 0; i < 784; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s%s", i ? "," : "",
                              i % 28 > 10 && i % 28 < 16 ? "0.9" : "0");
    n += (size_t)snprintf(body + n, sizeof body - n, "]}");
    HttpReply r = check_http_request(srv.cfg.port, "POST", path, "application/json", NULL, body, n);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.raw);
    cJSON *o = cJSON_Parse(r.body), *p = cJSON_GetObjectItem(o, "probabilities");
    if (cJSON_IsArray(cJSON_GetArrayItem(p, 0))) /* one image of a batch */
        p = cJSON_GetArrayItem(p, 0);
    ck_assert_int_eq(cJSON_GetArraySize(p), 10);
    for (int c = 0; c < 10; c++)
        out[c] = cJSON_GetArrayItem(p, c)->valuedouble;
    cJSON_Delete(o);
    check_http_free(&r);
}

START_TEST(test_download_imports_to_the_served_model)
{
    HttpReply r = download("mnist-cnn", 1);
    OnnxImportOptions opt;
    onnx_import_options_default(&opt);
    opt.name = "back";
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_msg(onnx_import(r.body, r.body_len, &opt, &lim, &m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m->n_params, 24186); /* the seed's MNISTBasicCNN */
    ck_assert_int_eq(m->spec.image_preprocess, IMAGE_PRE_DIGIT);
    model_free(m);
    check_http_free(&r);
    r = get("/models/mnist-cnn/versions/9/model.onnx");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
}
END_TEST

START_TEST(test_upload_publishes_the_next_version)
{
    HttpReply onnx = download("fashion-cnn", 1);
    /* past the limit of a request body, within the upload's */
    ck_assert_uint_gt(onnx.body_len, 8192);
    HttpReply r = upload("/models/uploaded/versions", "application/octet-stream", NULL, onnx.body,
                         onnx.body_len);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.body, "Bearer"));
    check_http_free(&r);
    r = upload("/models/uploaded/versions", "application/octet-stream",
               "Authorization: Bearer wrong\r\n", onnx.body, onnx.body_len);
    ck_assert_int_eq(r.status, 403);
    check_http_free(&r);
    ck_assert(!published("uploaded", 1));

    r = upload("/models/uploaded/versions", "application/octet-stream", AUTH, onnx.body,
               onnx.body_len);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.raw);
    ck_assert_ptr_nonnull(strstr(r.raw, "Location: /models/uploaded/versions/1"));
    cJSON *o = cJSON_Parse(r.body);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "version")->valueint, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "format")->valuestring, "onnx");
    cJSON_Delete(o);
    check_http_free(&r);
    ck_assert(published("uploaded", 1));

    /* served at once, as fashion-cnn is, with its class names and preprocessing */
    double a[10], b[10];
    predict("uploaded", a);
    predict("fashion-cnn", b);
    for (int c = 0; c < 10; c++)
        ck_assert_double_eq_tol(a[c], b[c], 1e-5);
    r = get("/models/uploaded");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"image_preprocess\":\"frame\""));
    ck_assert_ptr_nonnull(strstr(r.body, "Ankle boot"));
    check_http_free(&r);

    /* the next upload is the next version; query options apply */
    r = upload("/models/uploaded/versions?preprocess=none&classes=a,b,c,d,e,f,g,h,i,j", "", AUTH,
               onnx.body, onnx.body_len);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.raw);
    check_http_free(&r);
    r = get("/models/uploaded/versions/2");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"image_preprocess\":\"none\""));
    ck_assert_ptr_nonnull(strstr(r.body, "[\"a\",\"b\""));
    check_http_free(&r);
    check_http_free(&onnx);
}
END_TEST

START_TEST(test_upload_mnm)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/models/mnist-cnn/v1.mnm", check_util_src_dir());
    size_t len;
    char *buf = check_util_read_file(path, &len);
    ck_assert_ptr_nonnull(buf);
    HttpReply r = upload("/models/copy/versions", "application/octet-stream", AUTH, buf, len);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.raw);
    ck_assert_ptr_nonnull(strstr(r.body, "\"format\":\"mnm\""));
    check_http_free(&r);
    buf[len - 1] ^= 1; /* its CRC no longer holds: 4xx, nothing published */
    r = upload("/models/copy/versions", "application/octet-stream", AUTH, buf, len);
    ck_assert_int_ge(r.status, 400);
    ck_assert_int_lt(r.status, 500);
    check_http_free(&r);
    ck_assert(!published("copy", 2));
    free(buf);
}
END_TEST

START_TEST(test_upload_refusals)
{
    HttpReply r = upload("/models/bad/versions", "image/png", AUTH, "x", 1);
    ck_assert_int_eq(r.status, 415);
    ck_assert_ptr_nonnull(strstr(r.body, "image/png"));
    check_http_free(&r);
    r = upload("/models/bad/versions", "application/octet-stream", AUTH, "", 0);
    ck_assert_int_eq(r.status, 400);
    check_http_free(&r);
    r = upload("/models/bad/versions", "application/octet-stream", AUTH, "\x08\x07\xff\xff", 4);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "not an ONNX model"));
    check_http_free(&r);
    r = upload("/models/bad/versions?preprocess=sepia", "application/octet-stream", AUTH, "x", 1);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "sepia"));
    check_http_free(&r);
    r = upload("/models/.hidden/versions", "application/octet-stream", AUTH, "x", 1);
    ck_assert_int_eq(r.status, 400);
    check_http_free(&r);

    /* an operator mnistd has no layer for: 422, naming it and its node */
    Model *m = check_util_build_model(
        "{\"name\": \"g\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 8,"
        " \"activation\": \"swish\"}, {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}");
    unsigned char *buf;
    size_t len;
    MnError err = {0};
    ck_assert_int_eq(onnx_export(m, &buf, &len, &err), 0);
    model_free(m);
    r = upload("/models/bad/versions", "application/octet-stream", AUTH, buf, len);
    ck_assert_int_eq(r.status, 422);
    ck_assert_ptr_nonnull(strstr(r.body, "operator Mul is not supported")); /* swish's x * sigmoid(x) */
    ck_assert_ptr_nonnull(strstr(r.body, "node "));
    check_http_free(&r);
    free(buf);

    /* over --max-upload: 413 naming the limit */
    size_t big = MAX_UPLOAD + 100;
    char *junk = calloc(1, big);
    r = upload("/models/bad/versions", "application/octet-stream", AUTH, junk, big);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "--max-upload"));
    check_http_free(&r);
    free(junk);
    ck_assert(!published("bad", 1));
    r = get("/models/bad");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
}
END_TEST

static Suite *upload_suite(void)
{
    Suite *s = suite_create("upload");
    TCase *tc = tcase_create("Server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_download_imports_to_the_served_model);
    tcase_add_test(tc, test_upload_publishes_the_next_version);
    tcase_add_test(tc, test_upload_mnm);
    tcase_add_test(tc, test_upload_refusals);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(upload_suite)
