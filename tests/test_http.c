/* test_http.c - the real server on a free port with the shipped models,
 * exercised by real requests over a socket: predictions in every input
 * form (and equal to `mnistd predict`), the KServe v2 routes in every
 * accepted datatype, the aliases, and each error status with its message. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blas.h"
#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "connections.h"
#include "dataset.h"
#include "image.h"
#include "server.h"
#include "version.h"
#include "model_file.h"
#include "model_dir.h"

static Server srv;
static char *store; /* a copy of the shipped models: jobs write versions and a journal */

static void start_server(const char *token, long max_jobs)
{
    check_server_config(&srv, store);
    srv.cfg.max_body = 1 << 20;
    srv.cfg.max_batch = 8;
    srv.cfg.max_jobs = max_jobs;
    snprintf(srv.cfg.token, sizeof srv.cfg.token, "%s", token ? token : "");
    check_server_start(&srv);
    ck_assert_int_gt(srv.cfg.port, 0);
}

static void make_store(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
}

static void setup(void)
{
    make_store();
    start_server(NULL, 16);
}

static void teardown(void) { check_server_stop(&srv, store); }

/* One request over a fresh connection (check_http.h), no extra headers. */
static HttpReply http(const char *method, const char *path, const char *type, const void *body,
                      size_t len)
{
    return check_http_request(srv.cfg.port, method, path, type, NULL, body, len);
}

static HttpReply get(const char *path) { return http("GET", path, NULL, NULL, 0); }

static cJSON *json_of(const HttpReply *r)
{
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "not JSON (status %d): %s", r->status, r->body);
    return j;
}


START_TEST(test_predict_multipart_equals_cli)
{
    size_t len;
    int label;
    uint8_t *png = check_util_digit_png(0, &len, &label);
    size_t body_len;
    char *body = check_http_multipart("image", &png, &len, 1, &body_len);
    HttpReply r = http("POST", "/predict", CHECK_HTTP_MULTIPART, body, body_len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "prediction")->valueint, label);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "digits");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "classes")), 10);

    /* the same file through the command line */
    char path[4096], cmd[8192];
    char *dir = check_util_tmpdir();
    snprintf(path, sizeof path, "%s/d.png", dir);
    FILE *f = fopen(path, "wb");
    fwrite(png, 1, len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s predict --models %s %s", check_util_bin(), srv.cfg.models_dir,
             path);
    int status;
    char *out = check_util_run_cmd(cmd, &status);
    ck_assert_int_eq(status, 0);
    cJSON *c = cJSON_Parse(out);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(cJSON_GetObjectItem(c, "prediction")->valueint,
                     cJSON_GetObjectItem(j, "prediction")->valueint);
    /* Within float rounding, not bit for bit: the command runs on the real
     * CPU, while under valgrind this process sees another, whose BLAS
     * kernel sums in another order. */
    cJSON *ps = cJSON_GetObjectItem(j, "probabilities"), *pc = cJSON_GetObjectItem(c, "probabilities");
    for (int i = 0; i < 10; i++) {
        double server = cJSON_GetArrayItem(ps, i)->valuedouble;
        double cli = cJSON_GetArrayItem(pc, i)->valuedouble;
        ck_assert_double_eq_tol(server, cli, 1e-5 * fabs(cli) + 1e-9);
    }
    cJSON_Delete(c);
    free(out);
    check_util_rmtree(dir);
    free(dir);
    cJSON_Delete(j);
    check_http_free(&r);
    free(body);
    free(png);
}
END_TEST

START_TEST(test_predict_batch_raw_and_pixels)
{
    uint8_t *pngs[3];
    size_t lens[3];
    int labels[3];
    for (int i = 0; i < 3; i++)
        pngs[i] = check_util_digit_png(i + 1, &lens[i], &labels[i]);
    size_t body_len;
    char *body = check_http_multipart("image", pngs, lens, 3, &body_len);
    HttpReply r = http("POST", "/predict", CHECK_HTTP_MULTIPART, body, body_len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    ck_assert(cJSON_IsArray(j));
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, i), "prediction")->valueint,
                         labels[i]);
    cJSON_Delete(j);
    check_http_free(&r);
    free(body);

    r = http("POST", "/predict?model=mnist-cnn&version=1&trace=1", "image/png", pngs[0], lens[0]);
    ck_assert_int_eq(r.status, 200);
    j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "prediction")->valueint, labels[0]);
    cJSON *layers = cJSON_GetObjectItem(j, "layers");
    ck_assert_int_eq(cJSON_GetArraySize(layers), 8);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 0), "values")),
                     28 * 28 * 32);
    cJSON_Delete(j);
    check_http_free(&r);

    /* JSON pixels: a flat image, then a batch of two */
    Dataset test;
    MnError err = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err), 0);
    char *px = malloc(64 * 1024);
    size_t off = (size_t)sprintf(px, "{\"pixels\": [[");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 784; i++)
            off += (size_t)sprintf(px + off, "%s%.4f", i ? "," : (k ? "],[" : ""),
                                   test.images[(k + 1) * 784 + i] / 255.0);
    off += (size_t)sprintf(px + off, "]]}");
    r = http("POST", "/predict", "application/json", px, off);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = json_of(&r);
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "prediction")->valueint,
                     test.labels[2]);
    cJSON_Delete(j);
    check_http_free(&r);
    free(px);
    dataset_free(&test);
    for (int i = 0; i < 3; i++)
        free(pngs[i]);
}
END_TEST

START_TEST(test_v2_routes)
{
    HttpReply r = get("/v2/health/live");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    r = get("/v2/health/ready");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    r = get("/v2");
    cJSON *j = json_of(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "mnistd");
    cJSON_Delete(j);
    check_http_free(&r);
    r = get("/v2/models/mnist-cnn");
    j = json_of(&r);
    cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "inputs"), 0);
    ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(in, "shape"), 0)->valueint, -1);
    cJSON_Delete(j);
    check_http_free(&r);
    r = get("/v2/models/mnist-cnn/versions/1/ready");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    r = get("/v2/models/nosuch");
    ck_assert_int_eq(r.status, 404);
    j = json_of(&r);
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
    check_http_free(&r);
}
END_TEST

/* The same digit in every datatype and shape the v2 infer route accepts. */
START_TEST(test_v2_infer_datatypes)
{
    Dataset test;
    MnError err = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err), 0);
    const uint8_t *img = test.images + 4 * 784;
    int label = test.labels[4];
    const char *shapes[] = {"[1,784]", "[1,28,28]", "[1,28,28,1]"};
    char *body = malloc(64 * 1024);
    for (int s = 0; s < 3; s++)
        for (int uint8 = 0; uint8 < 2; uint8++) {
            size_t off = (size_t)sprintf(body,
                                         "{\"id\":\"r%d\",\"inputs\":[{\"name\":\"input\",\"shape\":%s,"
                                         "\"datatype\":\"%s\",\"data\":[",
                                         s, shapes[s], uint8 ? "UINT8" : "FP32");
            for (int i = 0; i < 784; i++)
                off += uint8 ? (size_t)sprintf(body + off, "%s%d", i ? "," : "", img[i])
                             : (size_t)sprintf(body + off, "%s%.5f", i ? "," : "", img[i] / 255.0);
            off += (size_t)sprintf(body + off, "]}]}");
            HttpReply r = http("POST", "/v2/models/mnist-cnn/infer", "application/json", body, off);
            ck_assert_msg(r.status == 200, "%s %s: %d %s", shapes[s], uint8 ? "UINT8" : "FP32",
                          r.status, r.body);
            cJSON *j = json_of(&r);
            ck_assert_str_eq(cJSON_GetObjectItem(j, "model_name")->valuestring, "mnist-cnn");
            ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "id")));
            cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
            cJSON *data = cJSON_GetObjectItem(out, "data");
            ck_assert_int_eq(cJSON_GetArraySize(data), 10);
            int best = 0;
            for (int c = 1; c < 10; c++)
                if (cJSON_GetArrayItem(data, c)->valuedouble >
                    cJSON_GetArrayItem(data, best)->valuedouble)
                    best = c;
            ck_assert_int_eq(best, label);
            cJSON_Delete(j);
            check_http_free(&r);
        }
    /* BYTES: base64 PNG, shape [-1], with the classification extension */
    size_t len;
    uint8_t *png = check_util_digit_png(4, &len, NULL);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t off = (size_t)sprintf(body, "{\"inputs\":[{\"name\":\"input\",\"shape\":[-1],\"datatype\":"
                                       "\"BYTES\",\"data\":[\"");
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)png[i] << 16 | (i + 1 < len ? (unsigned)png[i + 1] << 8 : 0) |
                     (i + 2 < len ? png[i + 2] : 0);
        body[off++] = b64[v >> 18 & 63];
        body[off++] = b64[v >> 12 & 63];
        body[off++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        body[off++] = i + 2 < len ? b64[v & 63] : '=';
    }
    off += (size_t)sprintf(body + off,
                           "\"]}],\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"classification\":3}}]}");
    HttpReply r =
        http("POST", "/v2/models/mnist-cnn/versions/1/infer", "application/json", body, off);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(out, "datatype")->valuestring, "BYTES");
    const char *top = cJSON_GetArrayItem(cJSON_GetObjectItem(out, "data"), 0)->valuestring;
    char want[16];
    snprintf(want, sizeof want, ":%d:%d", label, label);
    ck_assert_msg(strstr(top, want), "top class %s, want %s", top, want);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "data")), 3);
    cJSON_Delete(j);
    check_http_free(&r);

    /* v2 errors use the protocol's {"error": "..."} */
    const char *bad = "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,5],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5]}]}";
    r = http("POST", "/v2/models/mnist-cnn/infer", "application/json", bad, strlen(bad));
    ck_assert_int_eq(r.status, 400);
    j = json_of(&r);
    ck_assert_msg(strstr(cJSON_GetObjectItem(j, "error")->valuestring, "shape must be"), "%s", r.body);
    cJSON_Delete(j);
    check_http_free(&r);
    free(png);
    free(body);
    dataset_free(&test);
}
END_TEST

/* Triton's binary tensor extension, as tritonclient uses it by default:
 * a JSON header, raw little-endian inputs after it, binary outputs back. */
START_TEST(test_v2_binary_extension)
{
    Dataset test;
    MnError err = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err), 0);
    const uint8_t *img = test.images + 6 * 784;
    for (int uint8 = 0; uint8 < 2; uint8++) {
        char header[512];
        size_t raw_len = uint8 ? 784 : 784 * 4;
        int hlen = snprintf(header, sizeof header,
                            "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,28,28,1],\"datatype\":\"%s\","
                            "\"parameters\":{\"binary_data_size\":%zu}}],\"outputs\":[{\"name\":\"probabilities\","
                            "\"parameters\":{\"binary_data\":true}}]}",
                            uint8 ? "UINT8" : "FP32", raw_len);
        unsigned char *body = malloc((size_t)hlen + raw_len);
        memcpy(body, header, (size_t)hlen);
        for (int i = 0; i < 784; i++) {
            if (uint8) {
                body[hlen + i] = img[i];
                continue;
            }
            float f = img[i] / 255.0f;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            for (int b = 0; b < 4; b++)
                body[hlen + 4 * i + b] = (unsigned char)(bits >> (8 * b));
        }
        char type[128];
        snprintf(type, sizeof type, "application/octet-stream\r\nInference-Header-Content-Length: %d", hlen);
        HttpReply r =
            http("POST", "/v2/models/mnist-cnn/infer", type, body, (size_t)hlen + raw_len);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        int out_hlen = 0;
        char *h = strstr(r.raw, "Inference-Header-Content-Length: ");
        ck_assert_ptr_nonnull(h);
        sscanf(h + 33, "%d", &out_hlen);
        ck_assert_ptr_nonnull(strstr(r.body, "\"binary_data_size\":40"));
        ck_assert_int_eq(r.body_len, (size_t)out_hlen + 40);
        float probs[10];
        for (int c = 0; c < 10; c++) {
            const unsigned char *p = (const unsigned char *)r.body + out_hlen + 4 * c;
            uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            memcpy(&probs[c], &bits, 4);
        }
        int best = 0;
        for (int c = 1; c < 10; c++)
            best = probs[c] > probs[best] ? c : best;
        ck_assert_int_eq(best, test.labels[6]);
        check_http_free(&r);
        free(body);
    }
    /* a header length past the body is refused in the protocol's shape */
    HttpReply r = http("POST", "/v2/models/mnist-cnn/infer",
                   "application/octet-stream\r\nInference-Header-Content-Length: 999", "{}", 2);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "\"error\":\"Inference-Header-Content-Length"));
    check_http_free(&r);
    dataset_free(&test);
}
END_TEST

START_TEST(test_models_and_aliases)
{
    HttpReply r = get("/models");
    cJSON *j = json_of(&r);
    cJSON *models = cJSON_GetObjectItem(j, "models");
    ck_assert_int_ge(cJSON_GetArraySize(models), 2);
    cJSON_Delete(j);
    check_http_free(&r);
    r = get("/models/fashion-cnn");
    ck_assert_int_eq(r.status, 200);
    j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "params")->valueint, 125770);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "classes"), 0)->valuestring,
                     "T-shirt/top");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "layers")), 4);
    cJSON *test = cJSON_GetObjectItem(j, "test");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(test, "confusion_matrix")), 10);
    cJSON_Delete(j);
    check_http_free(&r);

    r = get("/ping");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    size_t len, body_len;
    int label;
    uint8_t *png = check_util_digit_png(7, &len, &label);
    char *body = check_http_multipart("data", &png, &len, 1, &body_len);
    r = http("POST", "/predictions/mnist-cnn", CHECK_HTTP_MULTIPART, body, body_len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "prediction")->valueint, label);
    cJSON_Delete(j);
    check_http_free(&r);
    free(body);
    free(png);

    const char *bp = "{\"input\":[1,-1],\"target\":[1],\"layers\":[{\"weights\":[[0.5,0.5]],"
                     "\"biases\":[0],\"activation\":\"sigmoid\"}]}";
    r = http("POST", "/backprop", "application/json", bp, strlen(bp));
    ck_assert_int_eq(r.status, 200);
    j = json_of(&r);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(j, "loss")->valuedouble, 0.125, 1e-12);
    cJSON_Delete(j);
    check_http_free(&r);
    r = get("/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.raw, "text/html"));
    check_http_free(&r);

    /* TF Serving: nested 28x28 numbers, and a b64 PNG */
    Dataset digits;
    MnError derr = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &digits, &derr), 0);
    char *tf = malloc(64 * 1024);
    size_t off = (size_t)sprintf(tf, "{\"instances\": [[");
    for (int y = 0; y < 28; y++) {
        off += (size_t)sprintf(tf + off, "%s[", y ? "," : "");
        for (int x = 0; x < 28; x++)
            off += (size_t)sprintf(tf + off, "%s%.4f", x ? "," : "", digits.images[9 * 784 + y * 28 + x] / 255.0);
        off += (size_t)sprintf(tf + off, "]");
    }
    off += (size_t)sprintf(tf + off, "]]}");
    r = http("POST", "/v1/models/mnist-cnn:predict", "application/json", tf, off);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = json_of(&r);
    cJSON *pred = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "predictions"), 0);
    int best = 0;
    for (int c = 1; c < 10; c++)
        if (cJSON_GetArrayItem(pred, c)->valuedouble > cJSON_GetArrayItem(pred, best)->valuedouble)
            best = c;
    ck_assert_int_eq(best, digits.labels[9]);
    cJSON_Delete(j);
    check_http_free(&r);
    free(tf);
    dataset_free(&digits);
    r = http("POST", "/v1/models/mnist-cnn:classify", "application/json", "{}", 2);
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);

    /* the prediction above is counted, and so is its request */
    r = get("/metrics");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.raw, "text/plain; version=0.0.4"));
    /* one from /predictions, one from the TF Serving route */
    ck_assert(strstr(r.body, "mnistd_predictions_total{model=\"mnist-cnn\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_http_requests_total{route=\"/predictions/*\",status=\"200\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_http_request_duration_seconds_bucket{route=\"/ping\",le=\"+Inf\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_jobs{state=\"running\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_models 4\n")); /* the shipped four */
    /* the CPU and the kernel this process runs, as a build-info gauge */
    const BlasInfo *b = blas_info();
    char info[512];
    snprintf(info, sizeof info,
             "mnistd_build_info{version=\"%s\",cpu=\"%s\",isa=\"%s\",kernel=\"%s\","
             "kernel_chosen_by=\"%s\",conv_kernel=\"direct-%s+winograd\"} 1\n",
             MNISTD_VERSION, b->cpu.brand, b->isa, b->kernel, b->chosen_by, b->conv_isa);
    ck_assert_msg(strstr(r.body, info), "no %s in %s", info, r.body);
    check_http_free(&r);

    /* no CORS headers unless origins are configured */
    r = http("GET", "/v2/health/live", "text/plain\r\nOrigin: http://example.test", NULL, 0);
    ck_assert_ptr_null(strstr(r.raw, "Access-Control-Allow-Origin"));
    check_http_free(&r);
}
END_TEST

START_TEST(test_cors_and_model_delete)
{
    server_stop(&srv);
    memset(&srv, 0, sizeof srv);
    setenv("MNISTD_CORS_ORIGINS", "http://a.test,http://b.test", 1);
    start_server("tok", 16);
    unsetenv("MNISTD_CORS_ORIGINS");
    HttpReply r = http("OPTIONS", "/predict", "text/plain\r\nOrigin: http://b.test", NULL, 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_ptr_nonnull(strstr(r.raw, "Access-Control-Allow-Origin: http://b.test"));
    ck_assert_ptr_nonnull(strstr(r.raw, "Access-Control-Allow-Methods"));
    check_http_free(&r);
    r = http("GET", "/models", "text/plain\r\nOrigin: http://c.test", NULL, 0);
    ck_assert_ptr_null(strstr(r.raw, "Access-Control-Allow-Origin"));
    check_http_free(&r);

    /* deleting a version needs the token, removes the file, and 404s after */
    r = http("DELETE", "/models/fashion-cnn/versions/1", NULL, NULL, 0);
    ck_assert_int_eq(r.status, 401);
    check_http_free(&r);
    r = http("DELETE", "/models/fashion-cnn/versions/1", "text/plain\r\nAuthorization: Bearer tok", NULL, 0);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    char path[4200];
    snprintf(path, sizeof path, "%s/fashion-cnn/v1.mnm", store);
    ck_assert_int_ne(access(path, F_OK), 0);
    r = get("/models/fashion-cnn");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
    r = http("DELETE", "/models/fashion-cnn/versions/1", "text/plain\r\nAuthorization: Bearer tok", NULL, 0);
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
}
END_TEST

START_TEST(test_datasets_and_samples)
{
    HttpReply r = get("/datasets");
    cJSON *j = json_of(&r);
    cJSON *sets = cJSON_GetObjectItem(j, "datasets");
    ck_assert_int_eq(cJSON_GetArraySize(sets), 2);
    cJSON *fashion = cJSON_GetArrayItem(sets, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(fashion, "name")->valuestring, "fashion-mnist");
    ck_assert_int_eq(cJSON_GetObjectItem(fashion, "train_samples")->valueint, 60000);
    ck_assert_int_eq(cJSON_GetObjectItem(fashion, "test_samples")->valueint, 10000);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(fashion, "classes"), 9)->valuestring,
                     "Ankle boot");
    cJSON_Delete(j);
    check_http_free(&r);

    Dataset test;
    MnError err = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err), 0);
    r = get("/datasets/mnist/samples/3");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.raw, "image/png"));
    char want[32];
    snprintf(want, sizeof want, "X-Label: %d", test.labels[3]);
    ck_assert_msg(strstr(r.raw, want), "%s", r.raw);
    float px[784];
    ImageLimits lim;
    image_limits_default(&lim);
    ck_assert_int_eq(image_from_bytes(r.body, r.body_len, &lim, IMAGE_PRE_NONE, 28, 28, px, NULL, &err), 0);
    for (int i = 0; i < 784; i++)
        ck_assert_float_eq_tol(px[i], test.images[3 * 784 + i] / 255.0f, 1e-6f);
    check_http_free(&r);
    r = get("/datasets/mnist/samples/3?format=json");
    j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "label")->valueint, test.labels[3]);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "pixels")), 784);
    cJSON_Delete(j);
    check_http_free(&r);
    r = get("/datasets/mnist/samples/10000");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
    r = get("/datasets/nosuch/samples/0");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
    dataset_free(&test);
}
END_TEST

static void expect_error(HttpReply r, int status, const char *code, const char *says)
{
    ck_assert_msg(r.status == status, "status %d, want %d: %s", r.status, status, r.body);
    cJSON *j = json_of(&r);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    ck_assert_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, code);
    ck_assert_msg(strstr(cJSON_GetObjectItem(e, "message")->valuestring, says),
                  "message \"%s\" lacks \"%s\"", cJSON_GetObjectItem(e, "message")->valuestring,
                  says);
    cJSON_Delete(j);
    check_http_free(&r);
}

START_TEST(test_error_statuses)
{
    expect_error(get("/nope"), 404, "not_found", "no route for GET /nope");
    expect_error(http("DELETE", "/predict", NULL, NULL, 0), 405, "method_not_allowed", "DELETE");
    expect_error(http("POST", "/predict", "text/plain", "x", 1), 415, "unsupported_media_type",
                 "text/plain");
    expect_error(http("POST", "/predict", "application/json", "{\"pixels\": [1,", 14), 400,
                 "invalid_argument", "not valid JSON");
    expect_error(http("POST", "/predict", "application/json", "{\"pixels\": [0.5]}", 17), 400,
                 "invalid_argument", "784");
    expect_error(http("POST", "/predict", "application/json", "{\"pixls\": []}", 13), 400,
                 "invalid_argument", "unknown key \"pixls\"");
    expect_error(http("POST", "/predict", "image/png", "GIF89a", 6), 415,
                 "unsupported_media_type", "not a PNG");
    expect_error(http("POST", "/predict?model=nosuch", "image/png", "x", 1), 404, "not_found",
                 "nosuch");
    expect_error(http("POST", "/predict?version=x", "image/png", "x", 1), 400, "invalid_argument",
                 "version");
    size_t len, body_len;
    uint8_t *png = check_util_digit_png(0, &len, NULL);
    char *body = check_http_multipart("file", &png, &len, 1, &body_len);
    expect_error(http("POST", "/predict", CHECK_HTTP_MULTIPART, body, body_len), 400, "invalid_argument",
                 "\"image\"");
    free(body);
    uint8_t *many[9];
    size_t lens[9];
    for (int i = 0; i < 9; i++)
        many[i] = png, lens[i] = len;
    body = check_http_multipart("image", many, lens, 9, &body_len);
    expect_error(http("POST", "/predict", CHECK_HTTP_MULTIPART, body, body_len), 413, "limit_exceeded",
                 "batch limit of 8");
    free(body);
    free(png);
    /* a body over --max-body: 413 naming the limit, and the server keeps serving */
    size_t big = (1 << 20) + 10;
    char *huge = calloc(big, 1);
    expect_error(http("POST", "/predict", "image/png", huge, big), 413, "payload_too_large",
                 "1048576-byte limit");
    free(huge);
    HttpReply r = get("/v2/health/live");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
}
END_TEST

/* ---- training jobs ---- */

static const char *const TINY_SPEC =
    "{\"name\":\"tiny\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":16,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
    "\"epochs\":2,\"batch_size\":128,\"validation_split\":0.1,\"seed\":3}";

/* A job long enough to cancel: a CNN for many epochs. */
static const char *const LONG_SPEC =
    "{\"name\":\"long\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"conv2d\","
    "\"filters\":32,\"kernel_size\":3,\"activation\":\"relu\"},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"epochs\":50}";

static HttpReply post_json(const char *path, const char *json, const char *token)
{
    if (!token)
        return http("POST", path, "application/json", json, strlen(json));
    char type[512];
    snprintf(type, sizeof type, "application/json\r\nAuthorization: Bearer %s", token);
    return http("POST", path, type, json, strlen(json));
}

/* Polls the job until its status is one of the wanted ones (or 120 s pass,
 * times the slowdown). */
static cJSON *wait_job(int id, const char *want1, const char *want2)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    for (int tries = 0; tries < 1200 * check_util_slowdown(); tries++) {
        HttpReply r = get(path);
        cJSON *j = json_of(&r);
        check_http_free(&r);
        const char *status = cJSON_GetObjectItem(j, "status")->valuestring;
        if (!strcmp(status, want1) || (want2 && !strcmp(status, want2)))
            return j;
        ck_assert_msg(strcmp(status, "failed"), "job %d failed: %s", id,
                      cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")));
        cJSON_Delete(j);
        usleep(100 * 1000);
    }
    ck_abort_msg("job %d never became %s", id, want1);
    return NULL;
}

static int submit(const char *spec, const char *token)
{
    HttpReply r = post_json("/train", spec, token);
    ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
    ck_assert_ptr_nonnull(strstr(r.raw, "Location: /jobs/"));
    cJSON *j = json_of(&r);
    int id = cJSON_GetObjectItem(j, "id")->valueint;
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "queued");
    cJSON_Delete(j);
    check_http_free(&r);
    return id;
}

START_TEST(test_train_job_then_serve)
{
    int id = submit(TINY_SPEC, NULL);
    cJSON *job = wait_job(id, "succeeded", NULL);
    cJSON *result = cJSON_GetObjectItem(job, "result");
    ck_assert_str_eq(cJSON_GetObjectItem(result, "model")->valuestring, "tiny");
    ck_assert_int_eq(cJSON_GetObjectItem(result, "version")->valueint, 1);
    ck_assert_msg(cJSON_GetObjectItem(result, "test_accuracy")->valuedouble > 0.85, "%s",
                  cJSON_PrintUnformatted(result));
    cJSON *history = cJSON_GetObjectItem(job, "history");
    ck_assert_int_eq(cJSON_GetArraySize(history), 2);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetArrayItem(history, 1), "val_accuracy")));
    cJSON_Delete(job);

    /* served at once, and saved in the store */
    size_t len;
    int label;
    uint8_t *png = check_util_digit_png(0, &len, &label);
    HttpReply r = http("POST", "/predict?model=tiny", "image/png", png, len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "version")->valueint, 1);
    cJSON_Delete(j);
    check_http_free(&r);
    free(png);
    char path[4200];
    snprintf(path, sizeof path, "%s/tiny/v1.mnm", store);
    ck_assert_int_eq(access(path, F_OK), 0);
    r = get("/jobs");
    j = json_of(&r);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 1);
    cJSON_Delete(j);
    check_http_free(&r);
}
END_TEST

/* The event stream, read to its end: the epochs, then "done" (the stream
 * closes itself). A second reader after the job gets the history first. */
/* The homework's grid: every combination trained, a row each, the best saved. */
START_TEST(test_grid_search_job)
{
    const char *spec =
        "{\"name\":\"grid\",\"dataset\":\"fashion-mnist\",\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":20,\"activation\":\"relu\"},"
        "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"epochs\":1,"
        "\"batch_size\":128,\"validation_data\":\"test\",\"preprocess\":\"standardize\","
        "\"grid\":{\"learning_rate\":[0.0001,0.001,1],\"activation\":[\"relu\",\"sigmoid\"]}}";
    int id = submit(spec, NULL);
    cJSON *job = wait_job(id, "succeeded", NULL);
    ck_assert_int_eq(cJSON_GetObjectItem(job, "trials")->valueint, 6);
    cJSON *grid = cJSON_GetObjectItem(job, "grid");
    ck_assert_int_eq(cJSON_GetArraySize(grid), 6);
    double best = 0.0;
    for (int i = 0; i < 6; i++) {
        cJSON *row = cJSON_GetArrayItem(grid, i);
        ck_assert_str_eq(cJSON_GetObjectItem(row, "activation")->valuestring, i < 3 ? "relu" : "sigmoid");
        double acc = cJSON_GetObjectItem(row, "test_accuracy")->valuedouble;
        best = acc > best ? acc : best;
    }
    /* a learning rate of 1 does far worse than 0.001, as in the homework's table */
    ck_assert(cJSON_GetObjectItem(cJSON_GetArrayItem(grid, 2), "test_accuracy")->valuedouble <
              cJSON_GetObjectItem(cJSON_GetArrayItem(grid, 1), "test_accuracy")->valuedouble);
    /* validation is the test split here, so the kept model is the best row */
    cJSON *result = cJSON_GetObjectItem(job, "result");
    ck_assert_double_eq_tol(cJSON_GetObjectItem(result, "test_accuracy")->valuedouble, best, 1e-12);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(job, "history")), 6);
    cJSON_Delete(job);
}
END_TEST

START_TEST(test_job_event_stream)
{
    int id = submit(TINY_SPEC, NULL);
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d/events", id);
    for (int pass = 0; pass < 2; pass++) {
        HttpReply r = get(path);
        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_nonnull(strstr(r.raw, "text/event-stream"));
        char *first = strstr(r.body, "event: epoch\ndata: {\"epoch\":1,");
        char *second = strstr(r.body, "event: epoch\ndata: {\"epoch\":2,");
        char *done = strstr(r.body, "event: done\ndata: {\"id\":");
        ck_assert_msg(first && second && done && first < second && second < done, "%s", r.body);
        ck_assert_ptr_nonnull(strstr(done, "\"status\":\"succeeded\""));
        check_http_free(&r);
    }
    HttpReply r = get("/jobs/99/events");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
}
END_TEST

START_TEST(test_cancel_and_restart_keeps_history)
{
    int done = submit(TINY_SPEC, NULL);
    cJSON_Delete(wait_job(done, "succeeded", NULL));
    int id = submit(LONG_SPEC, NULL);
    cJSON_Delete(wait_job(id, "running", NULL));
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    HttpReply r = http("DELETE", path, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    cJSON_Delete(wait_job(id, "cancelled", NULL));
    r = http("DELETE", path, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 409);
    check_http_free(&r);

    /* A job that was running when the process died: the journal says started, no finish. */
    server_stop(&srv);
    char journal[4200];
    snprintf(journal, sizeof journal, "%s/.jobs.journal", store);
    FILE *f = fopen(journal, "a");
    fprintf(f, "{\"event\":\"submit\",\"id\":%d,\"created\":1,\"spec\":{\"name\":\"x\",\"epochs\":3}}\n"
               "{\"event\":\"start\",\"id\":%d,\"started\":2}\n{\"event\":\"epo", id + 1, id + 1);
    fclose(f);
    start_server(NULL, 16);
    r = get("/jobs");
    cJSON *j = json_of(&r);
    cJSON *jobs = cJSON_GetObjectItem(j, "jobs");
    ck_assert_int_eq(cJSON_GetArraySize(jobs), 3);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "status")->valuestring, "succeeded");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "history")), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 1), "status")->valuestring, "cancelled");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 2), "status")->valuestring, "interrupted");
    cJSON_Delete(j);
    check_http_free(&r);
    /* the trained model came back with the store, and new ids continue */
    r = get("/models/tiny");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    ck_assert_int_eq(submit(TINY_SPEC, NULL), id + 2);
}
END_TEST

/* A 10-class dataset under a 7-unit head (test_train's CLI case too). */
static const char *const SEVEN_CLASS_SPEC =
    "{\"name\":\"x\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":7,\"activation\":\"softmax\"},{\"type\":\"dropout\",\"rate\":0.1}]}";

START_TEST(test_train_refusals_auth_and_queue)
{
    expect_error(post_json("/train", "{\"name\":\"x\",\"layers\":[{\"type\":\"dense\",\"units\":16.5}]}", NULL),
                 400, "invalid_argument", "layers[0].units must be an integer");
    expect_error(post_json("/train", "{\"name\":\"x\",\"layers\":[{\"type\":\"conv2d\",\"filters\":2,"
                                     "\"kernel_size\":3},{\"type\":\"dense\",\"units\":10}]}", NULL),
                 422, "unprocessable", "layer 1 (dense)");
    expect_error(post_json("/train", "{\"name\":\"x\",\"layers\":[{\"type\":\"flatten\"},"
                                     "{\"type\":\"dense\",\"units\":20000},{\"type\":\"dense\",\"units\":10}]}", NULL),
                 422, "limit_exceeded", "over the limit");
    expect_error(post_json("/train", "{\"name\":\"x\",\"dataset\":\"cifar\",\"layers\":[{\"type\":\"flatten\"},"
                                     "{\"type\":\"dense\",\"units\":10}]}", NULL),
                 404, "not_found", "cifar");
    /* the output cannot fit the dataset's classes: refused before queueing */
    expect_error(post_json("/train", SEVEN_CLASS_SPEC, NULL), 422, "unprocessable",
                 "layer 1 (dense) has 7 outputs, but dataset \"mnist\" has 10 classes");
    expect_error(get("/jobs/99"), 404, "not_found", "job 99");
    server_stop(&srv);

    start_server("s3cret", 1);
    expect_error(post_json("/train", TINY_SPEC, NULL), 401, "unauthorized", "Bearer");
    expect_error(post_json("/train", TINY_SPEC, "wrong"), 403, "forbidden", "not valid");
    int id = submit(LONG_SPEC, "s3cret");
    cJSON_Delete(wait_job(id, "running", NULL));
    submit(LONG_SPEC, "s3cret"); /* queued: the queue holds one */
    HttpReply r = post_json("/train", LONG_SPEC, "s3cret");
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.raw, "Retry-After: "));
    check_http_free(&r);
    /* reads stay open; deletes need the token */
    r = get("/jobs");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    r = http("DELETE", path, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 401);
    check_http_free(&r);
}
END_TEST

/* ---- connection limits ---- */

/* True when the server closed fd (read sees EOF or a reset within the wait). */
static bool closed_by_server(int fd, int wait_ms)
{
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    ssize_t n = read(fd, &c, 1);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Sends one GET on fd and reads the answer (to EOF: Connection: close). */
static HttpReply get_on(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    return check_http_read(fd);
}

/* Waits until the server counts n connections open: a connect or a close
 * is the client's at once and the server's a moment later, longer on a
 * loaded machine, and each step below depends on the count before it. */
static void wait_for_open(long n)
{
    ConnectionStats st = {0};
    for (int i = 0; i < 1000; i++) {
        connections_stats(srv.connections, &st);
        if (st.open == n)
            return;
        usleep(10 * 1000);
    }
    ck_abort_msg("the server counts %ld connections open, not %ld", st.open, n);
}

/* At --max-connections a newcomer is answered 503, with Retry-After,
 * unless its request head has arrived and a connection has waited past
 * --evict-idle-ms for its own: then that one gives way. A newcomer that
 * sends nothing displaces no one. --max-connections-per-ip answers 429 to
 * one address while others are served; --header-timeout closes a
 * connection that sends no request head. */
START_TEST(test_connection_limits)
{
    server_stop(&srv);
    setenv("MNISTD_MAX_CONNECTIONS", "3", 1);
    setenv("MNISTD_MAX_CONNECTIONS_PER_IP", "2", 1);
    setenv("MNISTD_HEADER_TIMEOUT", "3", 1);
    setenv("MNISTD_EVICT_IDLE_MS", "1000", 1);
    setenv("MNISTD_MAX_IMAGE_SIDE", "16", 1);
    start_server(NULL, 16);
    unsetenv("MNISTD_MAX_CONNECTIONS");
    unsetenv("MNISTD_MAX_CONNECTIONS_PER_IP");
    unsetenv("MNISTD_HEADER_TIMEOUT");
    unsetenv("MNISTD_EVICT_IDLE_MS");
    unsetenv("MNISTD_MAX_IMAGE_SIDE");
    ck_assert_int_eq(srv.cfg.max_connections, 3);
    ck_assert_int_eq(srv.cfg.max_connections_per_ip, 2);

    /* Two idle connections from 127.0.0.1 fill its share: a third is 429. */
    int a = check_http_connect(srv.cfg.port);
    wait_for_open(1);
    usleep(100 * 1000); /* so that a has waited longest */
    int b = check_http_connect(srv.cfg.port);
    wait_for_open(2);
    usleep(100 * 1000);
    HttpReply r = get_on(check_http_connect(srv.cfg.port), "/v2/health/live");
    ck_assert_int_eq(r.status, 429);
    ck_assert_ptr_nonnull(strstr(r.raw, "Retry-After: 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"too_many_connections_from_address\""));
    ck_assert_ptr_nonnull(strstr(r.body, "--max-connections-per-ip"));
    check_http_free(&r);
    /* Another address is served, and its idle connection fills the server. */
    int c = check_http_connect_from("127.0.0.2", srv.cfg.port);
    wait_for_open(3);
    usleep(200 * 1000);
    int d = check_http_connect_from("127.0.0.3", srv.cfg.port);
    r = get_on(d, "/v2/health/live"); /* none has waited a second yet: refused */
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.raw, "Retry-After: 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"too_many_connections\""));
    ck_assert_ptr_nonnull(strstr(r.body, "limit of 3 connections (--max-connections)"));
    check_http_free(&r);
    close(d);

    /* Past --evict-idle-ms, the one that waited longest (a) gives way. */
    usleep(1000 * 1000);
    d = check_http_connect_from("127.0.0.3", srv.cfg.port);
    r = get_on(d, "/v2/health/live");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    close(d);
    ck_assert(closed_by_server(a, 1000));
    wait_for_open(2); /* b and c: d's close is counted before f comes */
    /* Full again (b, c, f): a newcomer that sends nothing is refused, b stays. */
    int f = check_http_connect_from("127.0.0.4", srv.cfg.port);
    wait_for_open(3);
    usleep(100 * 1000);
    int e = check_http_connect_from("127.0.0.5", srv.cfg.port);
    r = check_http_read(e);
    ck_assert_int_eq(r.status, 503);
    check_http_free(&r);
    close(e);
    ck_assert(!closed_by_server(b, 100));
    /* --header-timeout: the idle ones are closed 3 s after they connected. */
    ck_assert(closed_by_server(b, 3000));
    ck_assert(closed_by_server(c, 1000));
    ck_assert(closed_by_server(f, 3000));
    close(a);
    close(b);
    close(c);
    close(f);
    r = get("/metrics");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_connections_refused_total{reason=\"per_ip\"} 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_connections_refused_total{reason=\"full\"} 2"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_connections_evicted_total 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "mnistd_connections_timed_out_total{phase=\"header\"} 3"));
    check_http_free(&r);

    /* --max-image-side: a 28x28 PNG is over a 16-pixel limit, refused before decoding */
    size_t len;
    uint8_t *png = check_util_digit_png(0, &len, NULL);
    expect_error(http("POST", "/predict", "image/png", png, len), 413, "limit_exceeded",
                 "exceeds the 16x16 limit");
    free(png);
}
END_TEST

/* An empty store gets the shipped models; the page's files are served. */
START_TEST(test_empty_store_and_static_files)
{
    server_stop(&srv);
    check_util_rmtree(store);
    free(store);
    store = check_util_tmpdir(); /* empty */
    char shipped[4096], page[4096];
    snprintf(shipped, sizeof shipped, "%s/models", check_util_src_dir());
    snprintf(page, sizeof page, "%s/static", check_util_src_dir());
    setenv("MNISTD_SHIPPED_MODELS", shipped, 1);
    setenv("MNISTD_STATIC", page, 1);
    setenv("MNISTD_MAX_IMAGE_BYTES", "100", 1);
    start_server(NULL, 16);
    unsetenv("MNISTD_SHIPPED_MODELS");
    unsetenv("MNISTD_STATIC");
    unsetenv("MNISTD_MAX_IMAGE_BYTES");
    HttpReply r = get("/models/mnist-cnn");
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    char path[4200];
    snprintf(path, sizeof path, "%s/mnist-cnn/v1.mnm", store);
    ck_assert_int_eq(access(path, F_OK), 0);

    r = get("/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "<h1>mnistd</h1>"));
    check_http_free(&r);
    r = get("/static/index.html");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.raw, "text/html"));
    check_http_free(&r);
    r = get("/static/nothere.js");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
    r = get("/static/.hidden.html");
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);

    /* --max-image-bytes: a PNG over 100 bytes is refused, naming the limit */
    size_t len;
    uint8_t *png = check_util_digit_png(0, &len, NULL);
    ck_assert_int_gt(len, 100);
    expect_error(http("POST", "/predict", "image/png", png, len), 413, "limit_exceeded",
                 "100-byte limit");
    free(png);
}
END_TEST

/* The real binary: SIGTERM ends it cleanly with status 0. */
START_TEST(test_sigterm_exits_cleanly)
{
    char log[4200];
    snprintf(log, sizeof log, "%s/serve.log", store);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "w", stderr);
        execl(check_util_bin(), "mnistd", "serve", "--port", "0", "--models", store, (char *)NULL);
        _exit(127);
    }
    char *text = NULL;
    for (int i = 0; i < 100 && !(text && strstr(text, "listening")); i++) {
        usleep(50 * 1000);
        free(text);
        text = check_util_read_file(log, NULL);
    }
    ck_assert_msg(text && strstr(text, "listening"), "server did not start: %s", text ? text : "");
    /* Its start names the CPU, the instruction set and the kernel; as this
     * process does when both see the same CPU (under valgrind this one
     * sees valgrind's, the server the real one). */
    const char *at = strstr(text, "{\"level\":\"info\",\"msg\":\"kernel\"");
    ck_assert_msg(at, "no kernel line in %s", text);
    cJSON *got = cJSON_ParseWithOpts(at, NULL, 0);
    ck_assert_ptr_nonnull(got);
    for (const char *key = "cpu\0isa\0kernel\0kernel_chosen_by\0conv_kernel\0"; *key; key += strlen(key) + 1)
        ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(got, key)) &&
                          cJSON_GetObjectItem(got, key)->valuestring[0],
                      "no %s in %s", key, at);
    char kernel[256], line[300];
    blas_info_json(kernel, sizeof kernel);
    snprintf(line, sizeof line, "{\"level\":\"info\",\"msg\":\"kernel\",%s}", kernel);
    cJSON *mine = cJSON_Parse(line);
    ck_assert_ptr_nonnull(mine);
    if (!strcmp(cJSON_GetObjectItem(got, "cpu")->valuestring,
                cJSON_GetObjectItem(mine, "cpu")->valuestring))
        ck_assert_msg(cJSON_Compare(got, mine, 1), "%s, not %s", at, line);
    cJSON_Delete(got);
    cJSON_Delete(mine);
    free(text);
    kill(pid, SIGTERM);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    text = check_util_read_file(log, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\"signal\":\"SIGTERM\""));
    free(text);
}
END_TEST

START_TEST(test_config_refuses_bad_values)
{
    ServerConfig cfg;
    char *bad_port[] = {"--port", "70000"};
    ck_assert_int_eq(config_load(&cfg, 2, bad_port), 2);
    char *bad_flag[] = {"--prot", "80"};
    ck_assert_int_eq(config_load(&cfg, 2, bad_flag), 2);
    char *bad_number[] = {"--max-body=12x"};
    ck_assert_int_eq(config_load(&cfg, 1, bad_number), 2);
    char *small_log[] = {"--log-buffer", "4095"}; /* under one pipe write of lines */
    ck_assert_int_eq(config_load(&cfg, 2, small_log), 2);
    char *good[] = {"--max-body=4096", "--port", "0", "--token", "t", "--log-buffer=65536"};
    ck_assert_int_eq(config_load(&cfg, 6, good), 0);
    ck_assert_int_eq(cfg.max_body, 4096);
    ck_assert_int_eq(cfg.log_buffer, 65536);
    ck_assert_str_eq(cfg.token, "t");
    setenv("MNISTD_MAX_BATCH", "0", 1);
    ck_assert_int_eq(config_load(&cfg, 0, NULL), 2);
    unsetenv("MNISTD_MAX_BATCH");
}
END_TEST

/* Polls a GET until it answers want (the store is rescanned every
 * --watch-interval seconds); the last status. */
static int wait_status(const char *path, int want, int seconds)
{
    int status = 0;
    for (int i = 0; i < seconds * 10 && status != want; i++) {
        HttpReply r = get(path);
        status = r.status;
        check_http_free(&r);
        if (status != want)
            usleep(100 * 1000);
    }
    return status;
}

/* A version another process publishes into the store is served without a
 * restart; a damaged file is refused and changes nothing; a version whose
 * file is removed leaves service. */
START_TEST(test_store_watch_picks_up_versions)
{
    server_stop(&srv);
    start_server(NULL, 16);
    char path[4200];
    snprintf(path, sizeof path, "%s/mnist-cnn/v1.mnm", store);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_msg(model_load(path, &lim, &m, &err) == 0, "%s", err.msg);
    int version;
    ck_assert_int_eq(model_dir_publish(m, store, "watched", path, sizeof path, &version, &err), 0);
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(wait_status("/v2/models/watched/versions/1/ready", 200, 10), 200);
    size_t len;
    int label;
    uint8_t *png = check_util_digit_png(0, &len, &label);
    HttpReply r = http("POST", "/predict?model=watched", "image/png", png, len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);

    /* a truncated v2: refused, v1 still the latest */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/watched/v2.mnm", store);
    FILE *f = fopen(bad, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("MNISTDMD", 1, 8, f);
    fclose(f);
    sleep((unsigned)srv.cfg.watch_interval + 1);
    ck_assert_int_eq(wait_status("/v2/models/watched/versions/2/ready", 404, 1), 404);
    r = http("POST", "/predict?model=watched", "image/png", png, len);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "version")->valueint, 1);
    cJSON_Delete(j);
    check_http_free(&r);

    /* the file of v1 removed: out of service */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(wait_status("/v2/models/watched/versions/1/ready", 404, 10), 404);
    free(png);
    model_free(m);
}
END_TEST

/* `mnistd health`, the container's HEALTHCHECK: 0 while the server is
 * live, 1 when nothing answers on the port. */
START_TEST(test_health_command)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "%s health --port %ld", check_util_bin(), srv.cfg.port);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
    snprintf(cmd, sizeof cmd, "%s health --ready --port %ld", check_util_bin(), srv.cfg.port);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
    long port = srv.cfg.port;
    server_stop(&srv);
    snprintf(cmd, sizeof cmd, "%s health --port %ld 2>/dev/null", check_util_bin(), port);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
    start_server(NULL, 16); /* for the teardown */
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("Server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_predict_multipart_equals_cli);
    tcase_add_test(tc, test_predict_batch_raw_and_pixels);
    tcase_add_test(tc, test_v2_routes);
    tcase_add_test(tc, test_v2_infer_datatypes);
    tcase_add_test(tc, test_v2_binary_extension);
    tcase_add_test(tc, test_models_and_aliases);
    tcase_add_test(tc, test_error_statuses);
    tcase_add_test(tc, test_datasets_and_samples);
    tcase_add_test(tc, test_cors_and_model_delete);
    tcase_add_test(tc, test_connection_limits);
    tcase_add_test(tc, test_config_refuses_bad_values);
    tcase_add_test(tc, test_empty_store_and_static_files);
    tcase_add_test(tc, test_sigterm_exits_cleanly);
    tcase_add_test(tc, test_store_watch_picks_up_versions);
    tcase_add_test(tc, test_health_command);
    suite_add_tcase(s, tc);
    TCase *jobs = tcase_create("Jobs");
    tcase_add_checked_fixture(jobs, setup, teardown);
    tcase_set_timeout(jobs, 300);
    tcase_add_test(jobs, test_train_job_then_serve);
    tcase_add_test(jobs, test_job_event_stream);
    tcase_add_test(jobs, test_grid_search_job);
    tcase_add_test(jobs, test_cancel_and_restart_keeps_history);
    tcase_add_test(jobs, test_train_refusals_auth_and_queue);
    suite_add_tcase(s, jobs);
    return s;
}

MN_TEST_MAIN(http_suite)
