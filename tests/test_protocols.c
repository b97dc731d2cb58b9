/* test_protocols.c - the other model servers' protocols as mnistd speaks
 * them, each refusal with its status and message: the Open Inference
 * Protocol's request keys and tensor names, Triton's config, statistics
 * (counted per version) and repository index, the /v2 and /v1 error shape
 * on every status, gzip and deflate bodies (bounded by --max-body) and
 * answers, TorchServe's PUT and raw bodies, TF Serving's status, metadata
 * and predict forms. The content codings' zlib side is tested on its own
 * first. The real clients run in tests/clients (make clients). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "content_coding.h"
#include "dataset.h"
#include "image.h"
#include "model_stats.h"
#include "server.h"

/* ---- content codings, without a server ---- */

/* in, compressed by zlib itself with the given windowBits (31 gzip, 15 zlib, -15 raw). */
static unsigned char *zlib_pack(const void *in, size_t len, int window, size_t *out_len)
{
    z_stream z = {0};
    ck_assert_int_eq(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 16;
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

START_TEST(test_inflate_each_coding_and_its_bounds)
{
    char text[3000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 7);
    static const struct {
        ContentCoding coding;
        int window;
    } forms[] = {{CODING_GZIP, 31}, {CODING_DEFLATE, 15}, {CODING_DEFLATE, -15}};
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        size_t zlen, n;
        unsigned char *z = zlib_pack(text, sizeof text, forms[f].window, &zlen);
        char *out = NULL;
        MnError err = {0};
        ck_assert_msg(content_coding_inflate(forms[f].coding, z, zlen, sizeof text, &out, &n,
                                             &err) == 0, "window %d: %s", forms[f].window, err.msg);
        ck_assert_uint_eq(n, sizeof text);
        ck_assert(memcmp(out, text, n) == 0 && out[n] == '\0');
        free(out);
        /* one byte short of what it inflates to */
        ck_assert_int_eq(content_coding_inflate(forms[f].coding, z, zlen, sizeof text - 1, &out,
                                                &n, &err), MN_ELIMIT);
        ck_assert_msg(strstr(err.msg, "--max-body"), "%s", err.msg);
        /* cut short, and with bytes after its end */
        ck_assert_int_eq(content_coding_inflate(forms[f].coding, z, zlen / 2, 1 << 20, &out, &n,
                                                &err), MN_EINVAL);
        unsigned char *longer = malloc(zlen + 3);
        memcpy(longer, z, zlen);
        memcpy(longer + zlen, "abc", 3);
        ck_assert_int_eq(content_coding_inflate(forms[f].coding, longer, zlen + 3, 1 << 20, &out,
                                                &n, &err), MN_EINVAL);
        ck_assert_msg(strstr(err.msg, "3 bytes follow"), "%s", err.msg);
        free(longer);
        free(z);
    }
    /* a bomb: 4 MiB of zeros in some 4 KiB, against a 1 MiB limit */
    size_t big = (size_t)4 << 20, zlen, n;
    char *zeros = calloc(1, big);
    unsigned char *bomb = zlib_pack(zeros, big, 31, &zlen);
    free(zeros);
    ck_assert_uint_lt(zlen, 16 * 1024);
    char *out = NULL;
    MnError err = {0};
    ck_assert_int_eq(content_coding_inflate(CODING_GZIP, bomb, zlen, 1 << 20, &out, &n, &err),
                     MN_ELIMIT);
    ck_assert_ptr_null(out);
    free(bomb);
    ck_assert_int_eq(content_coding_inflate(CODING_GZIP, "not gzip", 8, 1 << 20, &out, &n, &err),
                     MN_EINVAL);
    ck_assert_msg(strstr(err.msg, "not valid gzip"), "%s", err.msg);
    ck_assert_int_eq(content_coding_inflate(CODING_GZIP, "", 0, 1 << 20, &out, &n, &err), MN_EINVAL);
}
END_TEST

START_TEST(test_coding_names_and_accept_encoding)
{
    ck_assert_int_eq(content_coding_from_name("GZIP"), CODING_GZIP);
    ck_assert_int_eq(content_coding_from_name("x-gzip"), CODING_GZIP);
    ck_assert_int_eq(content_coding_from_name("deflate"), CODING_DEFLATE);
    ck_assert_int_eq(content_coding_from_name("identity"), CODING_IDENTITY);
    ck_assert_int_eq(content_coding_from_name("br"), -1);
    ck_assert_int_eq(content_coding_from_name("gzip, deflate"), -1);
    static const struct {
        const char *header;
        ContentCoding want;
    } cases[] = {
        {NULL, CODING_IDENTITY},
        {"", CODING_IDENTITY},
        {"gzip", CODING_GZIP},
        {"deflate", CODING_DEFLATE},
        {"gzip, deflate, br", CODING_GZIP},
        {"br;q=1.0, deflate;q=0.8, gzip;q=0.5", CODING_DEFLATE},
        {"gzip;q=0", CODING_IDENTITY},
        {"gzip;q=0, *", CODING_DEFLATE},
        {"*;q=0", CODING_IDENTITY},
        {"*", CODING_GZIP},
        {"identity", CODING_IDENTITY},
        {"br", CODING_IDENTITY},
        {" GZip ; q=0.3 ", CODING_GZIP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(content_coding_accepted(cases[i].header) == cases[i].want,
                      "Accept-Encoding \"%s\"", cases[i].header ? cases[i].header : "(none)");
    /* what compress writes, zlib reads back */
    const char text[] = "{\"outputs\": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3]}";
    for (int coding = CODING_GZIP; coding <= CODING_DEFLATE; coding++) {
        unsigned char *packed;
        size_t plen, n;
        ck_assert_int_eq(content_coding_compress((ContentCoding)coding, text, sizeof text, &packed,
                                                 &plen), 0);
        char *out;
        MnError err = {0};
        ck_assert_int_eq(content_coding_inflate((ContentCoding)coding, packed, plen, 1024, &out,
                                                &n, &err), 0);
        ck_assert(n == sizeof text && !memcmp(out, text, n));
        free(out);
        free(packed);
    }
}
END_TEST

/* ---- the server ---- */

static Server srv;
static char *store;
#define MAX_BODY (256 * 1024)

/* The shipped models, and mnist-cnn's file again as its version 2: two versions to tell apart. */
static void setup(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/mnist-cnn/v1.mnm", store);
    snprintf(to, sizeof to, "%s/mnist-cnn/v2.mnm", store);
    size_t len;
    char *bytes = check_util_read_file(from, &len);
    ck_assert_ptr_nonnull(bytes);
    FILE *f = fopen(to, "wb");
    ck_assert(f && fwrite(bytes, 1, len, f) == len && fclose(f) == 0);
    free(bytes);
    check_server_config(&srv, store);
    srv.cfg.max_body = MAX_BODY;
    srv.cfg.max_batch = 8;
    srv.cfg.watch_interval = 0;
    check_server_start(&srv);
}

static void teardown(void) { check_server_stop(&srv, store); }

static HttpReply http(const char *method, const char *path, const char *type, const char *extra,
                      const void *body, size_t len)
{
    return check_http_request(srv.cfg.port, method, path, type, extra, body, len);
}

static cJSON *json_of(const HttpReply *r)
{
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "not JSON (status %d): %s", r->status, r->body);
    return j;
}

/* The answer must be the status, {"error": "message"} with says in it. */
static void expect_protocol_error(HttpReply r, int status, const char *says)
{
    ck_assert_msg(r.status == status, "status %d, want %d: %s", r.status, status, r.body);
    cJSON *j = json_of(&r);
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
    ck_assert_msg(msg && strstr(msg, says), "want {\"error\": \"...%s...\"}: %s", says, r.body);
    cJSON_Delete(j);
    check_http_free(&r);
}

static Dataset digits;

/* The MNIST test digit i as JSON numbers in [0, 1], comma-separated. */
static char *digit_numbers(int i)
{
    MnError err = {0};
    if (!digits.n)
        ck_assert_msg(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &digits, &err) == 0,
                      "%s", err.msg);
    char *s = malloc(784 * 12 + 1);
    size_t o = 0;
    for (int p = 0; p < 784; p++)
        o += (size_t)sprintf(s + o, "%s%.6f", p ? "," : "", digits.images[i * 784 + p] / 255.0);
    return s;
}

/* A v2 request for digit 0 with the given input name and extra top-level keys. */
static char *v2_body(const char *input_name, const char *extra)
{
    char *px = digit_numbers(0);
    char *b = malloc(strlen(px) + 1024);
    sprintf(b, "{%s\"inputs\":[{\"name\":\"%s\",\"shape\":[1,784],\"datatype\":\"FP32\","
               "\"data\":[%s]}]}", extra, input_name, px);
    free(px);
    return b;
}

static HttpReply post_v2(const char *path, const char *body)
{
    return http("POST", path, "application/json", NULL, body, strlen(body));
}

START_TEST(test_v2_request_keys_and_names)
{
    /* KServe's InferRequest.to_rest() keys, and the version the body names */
    char *b = v2_body("input", "\"id\":\"k1\",\"model_name\":\"mnist-cnn\",\"model_version\":\"1\","
                               "\"parameters\":{\"binary_data_output\":false},"
                               "\"outputs\":[{\"name\":\"probabilities\"}],");
    HttpReply r = post_v2("/v2/models/mnist-cnn/infer", b);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_version")->valuestring, "1");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "k1");
    cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(out, "name")->valuestring, "probabilities");
    cJSON_Delete(j);
    check_http_free(&r);
    free(b);
    /* without model_version: the latest, 2 */
    b = v2_body("input", "\"model_name\":\"mnist-cnn\",");
    r = post_v2("/v2/models/mnist-cnn/infer", b);
    j = json_of(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_version")->valuestring, "2");
    cJSON_Delete(j);
    check_http_free(&r);
    free(b);

    static const struct {
        const char *path, *name, *extra;
        int status;
        const char *says;
    } bad[] = {
        {"/v2/models/mnist-cnn/infer", "input", "\"model\":\"mnist-cnn\",", 400,
         "unknown key \"model\""},
        {"/v2/models/mnist-cnn/infer", "input", "\"model_name\":\"fashion-cnn\",", 400,
         "model_name \"fashion-cnn\" but the path names model \"mnist-cnn\""},
        {"/v2/models/mnist-cnn/versions/1/infer", "input", "\"model_version\":\"2\",", 400,
         "model_version \"2\" but the path names version 1"},
        {"/v2/models/mnist-cnn/infer", "input", "\"model_version\":\"7\",", 404, "no version 7"},
        {"/v2/models/mnist-cnn/infer", "input", "\"model_name\":3,", 400,
         "model_name must be a string"},
        {"/v2/models/mnist-cnn/infer", "input", "\"parameters\":{\"sequence_id\":4},", 400,
         "parameters: sequence_id is not supported: the models keep no state"},
        {"/v2/models/mnist-cnn/infer", "input", "\"parameters\":{\"lora\":4},", 400,
         "parameters: unknown key \"lora\""},
        {"/v2/models/mnist-cnn/infer", "input", "\"parameters\":[],", 400,
         "parameters must be an object"},
        {"/v2/models/mnist-cnn/infer", "x", "", 400,
         "unknown input \"x\": the model's input is \"input\""},
        {"/v2/models/mnist-cnn/infer", "input", "\"outputs\":[{\"name\":\"logits\"}],", 400,
         "outputs[0]: unknown output \"logits\""},
        {"/v2/models/mnist-cnn/infer", "input",
         "\"outputs\":[{\"name\":\"probabilities\"},{\"name\":\"probabilities\"}],", 400,
         "outputs[1]: output \"probabilities\" is requested twice"},
        {"/v2/models/mnist-cnn/infer", "input", "\"outputs\":[{}],", 400, "outputs[0] needs a name"},
        {"/v2/models/mnist-cnn/infer", "input",
         "\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"top\":1}}],", 400,
         "outputs[0].parameters: unknown key \"top\""},
        {"/v2/models/mnist-cnn/infer", "input", "\"outputs\":{},", 400, "outputs must be an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b = v2_body(bad[i].name, bad[i].extra);
        expect_protocol_error(post_v2(bad[i].path, b), bad[i].status, bad[i].says);
        free(b);
    }
    /* an input without a name, and with parameters of its own that are not Triton's */
    const char *no_name = "{\"inputs\":[{\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[0]}]}";
    expect_protocol_error(post_v2("/v2/models/mnist-cnn/infer", no_name), 400,
                          "inputs[0] needs a name");
    const char *odd = "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\","
                      "\"parameters\":{\"content_type\":\"np\"},\"data\":[0]}]}";
    expect_protocol_error(post_v2("/v2/models/mnist-cnn/infer", odd), 400,
                          "inputs[0].parameters: unknown key \"content_type\"");
}
END_TEST

START_TEST(test_v2_every_status_in_its_shape)
{
    expect_protocol_error(http("GET", "/v2/nowhere", NULL, NULL, NULL, 0), 404, "no route");
    expect_protocol_error(http("DELETE", "/v2/models/mnist-cnn", NULL, NULL, NULL, 0), 405,
                          "DELETE is not allowed");
    expect_protocol_error(http("PUT", "/v2/models/mnist-cnn/infer", NULL, NULL, "{}", 2), 405,
                          "PUT is not allowed");
    expect_protocol_error(http("GET", "/v2/models/nosuch/config", NULL, NULL, NULL, 0), 404,
                          "nosuch");
    expect_protocol_error(post_v2("/v2/models/mnist-cnn/infer", "{"), 400, "not valid JSON");
    expect_protocol_error(http("POST", "/v2/models/mnist-cnn/infer", "text/plain", NULL, "{}", 2),
                          415, "text/plain");
    char *big = malloc(MAX_BODY + 10);
    memset(big, ' ', MAX_BODY + 10);
    expect_protocol_error(http("POST", "/v2/models/mnist-cnn/infer", "application/json", NULL,
                               big, MAX_BODY + 10), 413, "--max-body");
    free(big);
    /* the native routes keep their own shape */
    HttpReply r = http("GET", "/nowhere", NULL, NULL, NULL, 0);
    cJSON *j = json_of(&r);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
    check_http_free(&r);
}
END_TEST

/* A statistics entry's success count, inference count and fail count. */
static void stats_of(const char *path, const char *name, const char *version, double *success,
                     double *images, double *fail)
{
    HttpReply r = http("GET", path, NULL, NULL, NULL, 0);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r);
    bool found = false;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "model_stats"))
    {
        if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring, name) ||
            strcmp(cJSON_GetObjectItem(it, "version")->valuestring, version))
            continue;
        cJSON *s = cJSON_GetObjectItem(it, "inference_stats");
        *success = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "success"), "count")->valuedouble;
        *fail = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "fail"), "count")->valuedouble;
        *images = cJSON_GetObjectItem(it, "inference_count")->valuedouble;
        found = true;
    }
    ck_assert_msg(found, "%s %s not in %s: %s", name, version, path, r.body);
    cJSON_Delete(j);
    check_http_free(&r);
}

/* An entry's batch_stats as "size:executions ..." (each size's three durations
 * counting the same executions), into out. */
static void batch_stats_of(const char *path, const char *name, const char *version, char *out,
                           size_t n)
{
    HttpReply r = http("GET", path, NULL, NULL, NULL, 0);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = json_of(&r), *it, *b;
    size_t used = 0;
    out[0] = '\0';
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "model_stats"))
    {
        if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring, name) ||
            strcmp(cJSON_GetObjectItem(it, "version")->valuestring, version))
            continue;
        cJSON_ArrayForEach(b, cJSON_GetObjectItem(it, "batch_stats"))
        {
            double count = -1;
            const char *const parts[] = {"compute_input", "compute_infer", "compute_output"};
            for (int k = 0; k < 3; k++) {
                double c = cJSON_GetObjectItem(cJSON_GetObjectItem(b, parts[k]), "count")->valuedouble;
                ck_assert_msg(count < 0 || c == count, "%s: %s", parts[k], r.body);
                count = c;
            }
            ck_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "compute_infer"), "ns")->valuedouble > 0);
            used += (size_t)snprintf(out + used, n - used, "%s%d:%g", used ? " " : "",
                                     cJSON_GetObjectItem(b, "batch_size")->valueint, count);
        }
    }
    cJSON_Delete(j);
    check_http_free(&r);
}

/* batch_stats stays bounded: sizes past MODEL_STATS_EXACT_BATCH by powers of two. */
START_TEST(test_batch_stats_slots)
{
    ModelStats *st = model_stats_new();
    const int sizes[] = {3, 1, 64, 65, 128, 129, 300, 65536, 100000, 3};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        model_stats_record(st, "m", 1, sizes[i], true, 1e-3);
    model_stats_record(st, "m", 1, 7, false, 1e-3); /* a failure: no execution */
    model_stats_record(st, "m", 2, 5, true, 2e-3);
    BatchCounters b[MODEL_STATS_BATCH_SLOTS];
    int n = model_stats_batches(st, "m", 1, b);
    const int want_size[] = {1, 3, 64, 128, 256, 512, 65536};
    const int want_count[] = {1, 2, 1, 2, 1, 1, 2};
    ck_assert_int_eq(n, 7);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(b[i].batch_size, want_size[i]);
        ck_assert_int_eq(b[i].count, want_count[i]);
        ck_assert_int_eq(b[i].ns, want_count[i] * 1000000);
    }
    ck_assert_int_eq(model_stats_batches(st, "m", 2, b), 1);
    ck_assert(b[0].batch_size == 5 && b[0].ns == 2000000);
    ck_assert_int_eq(model_stats_batches(st, "other", 1, b), 0);
    model_stats_free(st);
}
END_TEST

START_TEST(test_triton_config_stats_and_index)
{
    HttpReply r = http("GET", "/v2/models/fashion-cnn/versions/1/config", NULL, NULL, NULL, 0);
    cJSON *j = json_of(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "fashion-cnn");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_batch_size")->valueint, 8); /* --max-batch */
    cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "input"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(in, "name")->valuestring, "input");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(in, "dims")), 3);
    cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "output"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(out, "name")->valuestring, "probabilities");
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(out, "labels"), 0)->valuestring,
                     "T-shirt/top");
    cJSON_Delete(j);
    check_http_free(&r);

    r = http("POST", "/v2/repository/index", NULL, NULL, NULL, 0);
    j = json_of(&r);
    /* digits 1, fashion 1, fashion-cnn 1, mnist-cnn 1 and 2 */
    ck_assert_int_eq(cJSON_GetArraySize(j), 5);
    cJSON *last = cJSON_GetArrayItem(j, 4);
    ck_assert_str_eq(cJSON_GetObjectItem(last, "version")->valuestring, "2");
    ck_assert_str_eq(cJSON_GetObjectItem(last, "state")->valuestring, "READY");
    cJSON_Delete(j);
    check_http_free(&r);
    r = http("POST", "/v2/repository/index", "application/json", NULL, "{\"ready\":true}", 14);
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    expect_protocol_error(http("POST", "/v2/repository/index", "application/json", NULL,
                               "{\"loaded\":1}", 12), 400, "unknown key \"loaded\"");

    /* counted per version: two on v1 (a batch of 2 and 1), one on v2, one v1 refusal */
    double s1, n1, f1, s2, n2, f2;
    stats_of("/v2/models/mnist-cnn/stats", "mnist-cnn", "1", &s1, &n1, &f1);
    ck_assert(s1 == 0 && n1 == 0 && f1 == 0);
    char *px = digit_numbers(0);
    char *b = malloc(2 * strlen(px) + 256);
    sprintf(b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,784],\"datatype\":\"FP32\","
               "\"data\":[%s,%s]}]}", px, px);
    r = post_v2("/v2/models/mnist-cnn/versions/1/infer", b);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    free(b);
    b = malloc(strlen(px) + 32);
    sprintf(b, "{\"pixels\":[%s]}", px);
    r = http("POST", "/predict?model=mnist-cnn&version=1", "application/json", NULL, b, strlen(b));
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    r = http("POST", "/v1/models/mnist-cnn/versions/2:predict", "application/json", NULL,
             "{\"instances\":[[0]]}", 18);
    ck_assert_int_eq(r.status, 400); /* 1 number, not 784: a failure on v2 */
    check_http_free(&r);
    sprintf(b, "{\"instances\":[[%s]]}", px);
    r = http("POST", "/v1/models/mnist-cnn/versions/2:predict", "application/json", NULL, b,
             strlen(b));
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    free(b);
    free(px);
    stats_of("/v2/models/mnist-cnn/versions/1/stats", "mnist-cnn", "1", &s1, &n1, &f1);
    stats_of("/v2/models/stats", "mnist-cnn", "2", &s2, &n2, &f2);
    ck_assert_msg(s1 == 2 && n1 == 3 && f1 == 0, "v1: %g %g %g", s1, n1, f1);
    ck_assert_msg(s2 == 1 && n2 == 1 && f2 == 1, "v2: %g %g %g", s2, n2, f2);
    /* per batch size: v1's batch of 2 and of 1; v2's failure is not an execution */
    char batches[256];
    batch_stats_of("/v2/models/mnist-cnn/stats", "mnist-cnn", "1", batches, sizeof batches);
    ck_assert_str_eq(batches, "1:1 2:1");
    batch_stats_of("/v2/models/stats", "mnist-cnn", "2", batches, sizeof batches);
    ck_assert_str_eq(batches, "1:1");
    expect_protocol_error(http("GET", "/v2/models/mnist-cnn/versions/9/stats", NULL, NULL, NULL, 0),
                          404, "no version 9");
}
END_TEST

START_TEST(test_compressed_bodies_and_answers)
{
    char *b = v2_body("input", "");
    size_t zlen;
    unsigned char *z = zlib_pack(b, strlen(b), 31, &zlen);
    HttpReply r = http("POST", "/v2/models/mnist-cnn/infer", "application/json",
                       "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\n", z, zlen);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert_msg(strstr(r.raw, "Content-Encoding: gzip"), "%.300s", r.raw);
    char *plain;
    size_t n;
    MnError err = {0};
    ck_assert_int_eq(content_coding_inflate(CODING_GZIP, r.body, r.body_len, 1 << 20, &plain, &n,
                                            &err), 0);
    ck_assert_msg(strstr(plain, "\"model_name\":\"mnist-cnn\""), "%s", plain);
    free(plain);
    check_http_free(&r);
    free(z);
    /* deflate as zlib wraps it, on a native route, and no compression asked: none */
    z = zlib_pack(b, strlen(b), 15, &zlen);
    r = http("POST", "/v2/models/mnist-cnn/infer", "application/json",
             "Content-Encoding: deflate\r\nAccept-Encoding: gzip;q=0\r\n", z, zlen);
    ck_assert_msg(r.status == 200 && !strstr(r.raw, "Content-Encoding"), "%.300s", r.raw);
    check_http_free(&r);
    free(z);
    free(b);

    /* a body that inflates past --max-body: 413, counted on what comes out */
    size_t big = (size_t)2 << 20;
    char *spaces = malloc(big);
    memset(spaces, ' ', big);
    spaces[0] = '{';
    z = zlib_pack(spaces, big, 31, &zlen);
    free(spaces);
    ck_assert_uint_lt(zlen, MAX_BODY);
    expect_protocol_error(http("POST", "/v2/models/mnist-cnn/infer", "application/json",
                               "Content-Encoding: gzip\r\n", z, zlen), 413, "--max-body");
    /* gzip that is not */
    expect_protocol_error(http("POST", "/v2/models/mnist-cnn/infer", "application/json",
                               "Content-Encoding: gzip\r\n", "{\"inputs\":[]}", 13), 400,
                          "not valid gzip");
    expect_protocol_error(http("POST", "/v2/models/mnist-cnn/infer", "application/json",
                               "Content-Encoding: br\r\n", z, zlen), 415, "Content-Encoding \"br\"");
    free(z);
    r = http("POST", "/predict", "multipart/form-data; boundary=X", "Content-Encoding: gzip\r\n",
             "x", 1);
    ck_assert_msg(r.status == 415 && strstr(r.body, "multipart"), "%d %s", r.status, r.body);
    check_http_free(&r);
}
END_TEST

/* A prediction answer's predicted class, or -1 with the status when it is none. */
static int predicted(HttpReply r)
{
    int p = -1;
    if (r.status == 200) {
        cJSON *j = json_of(&r);
        p = cJSON_GetObjectItem(j, "prediction")->valueint;
        ck_assert_int_eq(cJSON_GetObjectItem(j, "version")->valueint, 1);
        cJSON_Delete(j);
    }
    check_http_free(&r);
    return p;
}

START_TEST(test_torchserve_put_raw_and_versions)
{
    uint8_t *png;
    size_t len;
    MnError err = {0};
    char *unused = digit_numbers(0);
    free(unused);
    ck_assert_int_eq(image_encode_png_gray8(digits.images, 28, 28, &png, &len, &err), 0);
    int label = digits.labels[0];
    /* curl -T (PUT, no type), --data-binary (form type), octet-stream, a version */
    ck_assert_int_eq(predicted(http("PUT", "/predictions/mnist-cnn/1", NULL, NULL, png, len)), label);
    ck_assert_int_eq(predicted(http("POST", "/predictions/mnist-cnn/1",
                                    "application/x-www-form-urlencoded", NULL, png, len)), label);
    ck_assert_int_eq(predicted(http("POST", "/predictions/mnist-cnn/1", "application/octet-stream",
                                    NULL, png, len)), label);
    char *px = digit_numbers(0), *b = malloc(strlen(px) + 32);
    sprintf(b, "  {\"pixels\":[%s]}", px);
    ck_assert_int_eq(predicted(http("PUT", "/predictions/mnist-cnn/1", NULL, NULL, b, strlen(b))),
                     label);
    free(b);
    free(px);
    HttpReply r = http("PUT", "/predictions/mnist-cnn", NULL, NULL, "GIF89a", 6);
    ck_assert_msg(r.status == 415 && strstr(r.body, "first bytes"), "%d %s", r.status, r.body);
    check_http_free(&r);
    r = http("PUT", "/predictions/mnist-cnn/3", NULL, NULL, png, len);
    ck_assert_msg(r.status == 404 && strstr(r.body, "no version 3"), "%d %s", r.status, r.body);
    check_http_free(&r);
    r = http("DELETE", "/predictions/mnist-cnn", NULL, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 405);
    check_http_free(&r);
    free(png);
}
END_TEST

START_TEST(test_tf_serving_status_metadata_and_forms)
{
    HttpReply r = http("GET", "/v1/models/mnist-cnn", NULL, NULL, NULL, 0);
    cJSON *j = json_of(&r);
    cJSON *st = cJSON_GetObjectItem(j, "model_version_status");
    ck_assert_int_eq(cJSON_GetArraySize(st), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "version")->valuestring, "2");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 1), "state")->valuestring,
                     "AVAILABLE");
    cJSON_Delete(j);
    check_http_free(&r);
    r = http("GET", "/v1/models/mnist-cnn/versions/1", NULL, NULL, NULL, 0);
    j = json_of(&r);
    st = cJSON_GetObjectItem(j, "model_version_status");
    ck_assert(cJSON_GetArraySize(st) == 1 &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "version")->valuestring, "1"));
    cJSON_Delete(j);
    check_http_free(&r);
    r = http("GET", "/v1/models/mnist-cnn/versions/1/metadata", NULL, NULL, NULL, 0);
    j = json_of(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model_spec"), "version")->valuestring,
                     "1");
    ck_assert_ptr_nonnull(strstr(r.body, "\"serving_default\""));
    cJSON_Delete(j);
    check_http_free(&r);

    char *px = digit_numbers(0), *b = malloc(2 * strlen(px) + 128);
    int label = digits.labels[0];
    const char *forms[] = {"{\"inputs\":[[%s]]}", "{\"inputs\":{\"input\":[[%s]]}}",
                           "{\"signature_name\":\"serving_default\",\"instances\":[[%s]]}"};
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        sprintf(b, forms[f], px);
        r = http("POST", "/v1/models/mnist-cnn/versions/1:predict", "application/json", NULL, b,
                 strlen(b));
        ck_assert_msg(r.status == 200, "%s: %d %s", forms[f], r.status, r.body);
        j = json_of(&r);
        cJSON *rows = cJSON_GetObjectItem(j, f < 2 ? "outputs" : "predictions");
        cJSON *row = cJSON_GetArrayItem(rows, 0);
        int best = 0;
        for (int c = 1; c < 10; c++)
            if (cJSON_GetArrayItem(row, c)->valuedouble > cJSON_GetArrayItem(row, best)->valuedouble)
                best = c;
        ck_assert_int_eq(best, label);
        cJSON_Delete(j);
        check_http_free(&r);
    }
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *says;
    } bad[] = {
        {"POST", "/v1/models/mnist-cnn:predict", "{\"instances\":[[0]],\"inputs\":[[0]]}", 400,
         "not both"},
        {"POST", "/v1/models/mnist-cnn:predict", "{\"inputs\":{\"x\":[[0]]}}", 400, "only \"input\""},
        {"POST", "/v1/models/mnist-cnn:predict", "{\"signature_name\":\"other\",\"instances\":[[0]]}",
         400, "signature_name"},
        {"POST", "/v1/models/mnist-cnn:predict", "{\"instances\":[]}", 400, "non-empty"},
        {"POST", "/v1/models/mnist-cnn:predict", "{\"instances\":[[0]],\"x\":1}", 400,
         "unknown key \"x\""},
        {"POST", "/v1/models/mnist-cnn:classify", "{}", 404, "\":classify\" is not served"},
        {"POST", "/v1/models/mnist-cnn/versions/5:predict", "{\"instances\":[[0]]}", 404,
         "no version 5"},
        {"GET", "/v1/models/nosuch", NULL, 404, "nosuch"},
        {"GET", "/v1/models/mnist-cnn:predict", NULL, 404, "GET takes no"},
        {"DELETE", "/v1/models/mnist-cnn", NULL, 405, "not allowed"},
        {"GET", "/v1/other", NULL, 404, "no route"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_protocol_error(http(bad[i].method, bad[i].path, bad[i].body ? "application/json" : NULL,
                                   NULL, bad[i].body, bad[i].body ? strlen(bad[i].body) : 0),
                              bad[i].status, bad[i].says);
    free(b);
    free(px);
}
END_TEST

static Suite *protocols_suite(void)
{
    Suite *s = suite_create("protocols");
    TCase *coding = tcase_create("ContentCoding");
    tcase_add_test(coding, test_inflate_each_coding_and_its_bounds);
    tcase_add_test(coding, test_coding_names_and_accept_encoding);
    suite_add_tcase(s, coding);
    TCase *tc = tcase_create("Protocols");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_v2_request_keys_and_names);
    tcase_add_test(tc, test_v2_every_status_in_its_shape);
    tcase_add_test(tc, test_triton_config_stats_and_index);
    tcase_add_test(tc, test_batch_stats_slots);
    tcase_add_test(tc, test_compressed_bodies_and_answers);
    tcase_add_test(tc, test_torchserve_put_raw_and_versions);
    tcase_add_test(tc, test_tf_serving_status_metadata_and_forms);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(protocols_suite)
