/* test_explain_http.c - explanations through the real server on a free
 * port: POST /explain with every /predict input form, TorchServe's
 * /explanations/{name} and KServe v1's :explain giving the same map, the
 * numbers of an explanation agreeing with its map, completeness on a
 * served model whose batch normalization the store folded, and each
 * refusal with its status and message. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "dataset.h"
#include "model_file.h"
#include "server.h"

#define MAX_STEPS 2048

static Server srv;
static char *store;

/* A served model with batch normalization (scrambled, so nothing is the
 * identity): the store folds it into the conv2d before it. */
static void add_batchnorm_model(void)
{
    Model *m = check_util_build_model(
        "{\"name\":\"bn-explain\",\"layers\":["
        "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"strides\":2},"
        "{\"type\":\"batch_normalization\"},{\"type\":\"activation\",\"activation\":\"relu\"},"
        "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
        "\"seed\":5}");
    Rng rng;
    rng_seed(&rng, 11);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = rng_uniform(&rng) - 0.5f;
    for (size_t i = 0; i < m->n_state; i++)
        m->state[i] = 0.3f + rng_uniform(&rng);
    char path[1024];
    snprintf(path, sizeof path, "%s/bn-explain", store);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/bn-explain/v1.mnm", store);
    MnError err = {0};
    ck_assert_msg(model_save(m, path, &err) == 0, "%s", err.msg);
    model_free(m);
}

static void setup(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
    add_batchnorm_model();
    check_server_config(&srv, store);
    srv.cfg.max_batch = 8;
    srv.cfg.max_explain_steps = MAX_STEPS;
    srv.cfg.watch_interval = 0;
    check_server_start(&srv);
}

static void teardown(void) { check_server_stop(&srv, store); }

static HttpReply post(const char *path, const char *type, const void *body, size_t len)
{
    return check_http_request(srv.cfg.port, "POST", path, type, NULL, body, len);
}

static cJSON *json_ok(HttpReply *r)
{
    ck_assert_msg(r->status == 200, "status %d: %s", r->status, r->body);
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "not JSON: %s", r->body);
    check_http_free(r);
    return j;
}

static cJSON *explain_png(const char *path, int index, int *label)
{
    size_t len, body_len;
    unsigned char *png = check_util_digit_png(index, &len, label);
    char *body = check_http_multipart("image", &png, &len, 1, &body_len);
    HttpReply r = post(path, CHECK_HTTP_MULTIPART, body, body_len);
    free(png);
    free(body);
    return json_ok(&r);
}

static double number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(v), "no number \"%s\"", key);
    return v->valuedouble;
}

/* A rows x cols array of numbers; their sum. */
static double map_sum(const cJSON *map, int rows, int cols)
{
    ck_assert_int_eq(cJSON_GetArraySize(map), rows);
    double sum = 0.0;
    for (const cJSON *row = map->child; row; row = row->next) {
        ck_assert_int_eq(cJSON_GetArraySize(row), cols);
        for (const cJSON *v = row->child; v; v = v->next) {
            ck_assert(cJSON_IsNumber(v));
            sum += v->valuedouble;
        }
    }
    return sum;
}

/* The explanation of /explain's answer: its map adds up to its sum, delta
 * is what the sum misses the score gap by, and when `complete` (steps
 * enough), by no more than 1% of it. */
static const cJSON *check_explanation(const cJSON *o, bool complete)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "explanation");
    ck_assert_ptr_nonnull(x);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(x, "method")->valuestring,
                     "integrated_gradients");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(x, "score")->valuestring, "logit");
    double sum = map_sum(cJSON_GetObjectItemCaseSensitive(x, "attributions"), 28, 28);
    double gap = number(x, "score_input") - number(x, "score_baseline");
    ck_assert_msg(fabs(sum - number(x, "attribution_sum")) <= 1e-4 * (fabs(sum) + 1.0),
                  "map adds to %g, attribution_sum %g", sum, number(x, "attribution_sum"));
    if (complete)
        ck_assert_msg(fabs(sum - gap) <= 0.01 * fabs(gap), "attributions %g, score gap %g", sum,
                      gap);
    ck_assert_float_eq_tol(number(x, "delta"), sum - gap, 1e-3);
    /* the image the model saw, in [0, 1] */
    ck_assert_double_gt(map_sum(cJSON_GetObjectItemCaseSensitive(o, "image"), 28, 28), 10.0);
    return x;
}

START_TEST(test_explain_png_predicted_and_chosen_class)
{
    /* the CNN's completeness to 1% takes a thousand steps (test_explain
     * checks it); here a few, the numbers' consistency */
    int label;
    cJSON *o = explain_png("/explain?steps=100", 0, &label);
    ck_assert_int_eq((int)number(o, "prediction"), label);
    const cJSON *x = check_explanation(o, false);
    ck_assert_int_eq((int)number(x, "class"), label);
    ck_assert_int_eq((int)number(x, "steps"), 100);
    ck_assert_double_lt(fabs(number(x, "delta")),
                        0.1 * fabs(number(x, "score_input") - number(x, "score_baseline")));
    cJSON_Delete(o);

    o = explain_png("/explain?steps=100&class=3", 0, NULL);
    x = check_explanation(o, false);
    ck_assert_int_eq((int)number(x, "class"), 3);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(x, "label")->valuestring, "3");
    ck_assert_int_eq((int)number(o, "prediction"), label); /* still the model's answer */
    cJSON_Delete(o);

    o = explain_png("/explain", 1, NULL); /* the default steps */
    x = cJSON_GetObjectItemCaseSensitive(o, "explanation");
    ck_assert_int_eq((int)number(x, "steps"), 64);
    cJSON_Delete(o);
}
END_TEST

/* ?trace=1: the preprocessing's steps of the one file explained, ending
 * in the very image the model saw and the answer explains; no layers. */
START_TEST(test_explain_trace_shows_the_steps)
{
    cJSON *o = explain_png("/explain?steps=8&trace=1", 0, NULL);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(o, "layers"));
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(o, "preprocessing");
    ck_assert(cJSON_IsArray(steps));
    int n = cJSON_GetArraySize(steps);
    ck_assert_int_ge(n, 2);
    ck_assert_str_eq(cJSON_GetObjectItem(steps->child, "step")->valuestring, "decoded");
    const cJSON *last = cJSON_GetArrayItem(steps, n - 1);
    ck_assert_str_eq(cJSON_GetObjectItem(last, "step")->valuestring, "input");
    ck_assert_int_eq((int)number(last, "width"), 28);
    const cJSON *px = cJSON_GetObjectItem(last, "pixels")->child;
    int i = 0;
    for (const cJSON *row = cJSON_GetObjectItem(o, "image")->child; row; row = row->next)
        for (const cJSON *v = row->child; v; v = v->next, px = px->next, i++) {
            ck_assert_ptr_nonnull(px);
            ck_assert_msg(fabs(px->valuedouble - v->valuedouble * 255) <= 0.5 + 1e-3,
                          "input step pixel %d is %g, the image's %g", i, px->valuedouble,
                          v->valuedouble * 255);
        }
    ck_assert_int_eq(i, 784);
    cJSON_Delete(o);
    /* without it, and for JSON pixels, none */
    o = explain_png("/explain?steps=8", 0, NULL);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(o, "preprocessing"));
    cJSON_Delete(o);
    char body[784 * 2 + 16] = "{\"pixels\": [0";
    for (int k = 1; k < 784; k++)
        strcat(body, ",0");
    strcat(body, "]}");
    HttpReply r = post("/explain?steps=8&trace=1", "application/json", body, strlen(body));
    o = json_ok(&r);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(o, "preprocessing"));
    cJSON_Delete(o);
}
END_TEST

/* The served model is folded, and its explanation still adds up. */
START_TEST(test_explain_folded_batchnorm)
{
    MnError err = {0};
    const StoreEntry *e = store_acquire(srv.store, "bn-explain", 0, &err);
    ck_assert_msg(e != NULL, "%s", err.msg);
    ck_assert_msg(e->model->folded[1], "the store did not fold the normalization");
    store_release(srv.store, e);
    cJSON *o = explain_png("/explain?model=bn-explain&steps=2048", 2, NULL);
    check_explanation(o, true);
    cJSON_Delete(o);
}
END_TEST

/* JSON pixels, a batch: an array; TorchServe and KServe give the same maps. */
START_TEST(test_explain_routes_agree)
{
    char *body = malloc(64 * 1024);
    size_t off = (size_t)sprintf(body, "{\"pixels\":[");
    size_t len;
    unsigned char *png = check_util_digit_png(3, &len, NULL);
    free(png);
    /* digit 3's pixels from the dataset, as JSON numbers */
    Dataset ds;
    MnError err = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &ds, &err), 0);
    for (int j = 0; j < 784; j++)
        off += (size_t)sprintf(body + off, "%s%.6f", j ? "," : "", ds.images[3 * 784 + j] / 255.0);
    off += (size_t)sprintf(body + off, "]}");
    dataset_free(&ds);

    HttpReply r = post("/explain?model=mnist-cnn&steps=32", "application/json", body, off);
    cJSON *mine = json_ok(&r);
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(mine, "explanation"), "attributions");
    r = post("/explanations/mnist-cnn?steps=32", "application/json", body, off);
    cJSON *torch = json_ok(&r);
    ck_assert(cJSON_Compare(torch, want, true));

    /* {"instances": [pixels, pixels]}: the same body with another key, twice */
    char *inst = malloc(2 * off + 64);
    const char *arr = strchr(body, '[');
    int n = sprintf(inst, "{\"instances\":[%.*s,%.*s]}", (int)(off - 1 - (size_t)(arr - body)),
                    arr, (int)(off - 1 - (size_t)(arr - body)), arr);
    r = post("/v1/models/mnist-cnn:explain?steps=32", "application/json", inst, (size_t)n);
    cJSON *kserve = json_ok(&r);
    const cJSON *maps = cJSON_GetObjectItemCaseSensitive(kserve, "explanations");
    const cJSON *preds = cJSON_GetObjectItemCaseSensitive(kserve, "predictions");
    ck_assert_int_eq(cJSON_GetArraySize(maps), 2);
    ck_assert_int_eq(cJSON_GetArraySize(preds), 2);
    ck_assert(cJSON_Compare(cJSON_GetArrayItem(maps, 1), want, true));
    ck_assert(cJSON_Compare(cJSON_GetArrayItem(preds, 0),
                            cJSON_GetObjectItemCaseSensitive(mine, "probabilities"), true));

    /* two PNG files: an array of two answers */
    unsigned char *pngs[2];
    size_t lens[2], body_len;
    for (int i = 0; i < 2; i++)
        pngs[i] = check_util_digit_png(i, &lens[i], NULL);
    char *mp = check_http_multipart("image", pngs, lens, 2, &body_len);
    r = post("/explain?steps=16", CHECK_HTTP_MULTIPART, mp, body_len);
    cJSON *two = json_ok(&r);
    ck_assert(cJSON_IsArray(two));
    ck_assert_int_eq(cJSON_GetArraySize(two), 2);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(two, 1), "explanation"));
    for (int i = 0; i < 2; i++)
        free(pngs[i]);
    free(mp);
    cJSON_Delete(two);
    cJSON_Delete(kserve);
    cJSON_Delete(torch);
    cJSON_Delete(mine);
    free(inst);
    free(body);
}
END_TEST

typedef struct {
    const char *path, *type;
    int status;
    const char *message; /* a part of it */
} Refusal;

static const Refusal refusals[] = {
    {"/explain?class=10", NULL, 400, "class must be an integer from 0 to 9, not \"10\""},
    {"/explain?class=two", NULL, 400, "class must be an integer from 0 to 9, not \"two\""},
    {"/explain?steps=0", NULL, 400, "steps must be an integer from 1 to 1000000, not \"0\""},
    {"/explain?steps=2049", NULL, 413, "2049 steps, over the limit of 2048 a request (--max-explain-steps)"},
    {"/explain?model=nope", NULL, 404, "nope"},
    {"/explain", "text/plain", 415, "Content-Type \"text/plain\""},
    {"/explanations/nope", NULL, 404, "nope"},
    {"/v1/models/mnist-cnn:explain", "application/json", 400, "instances[0] holds 3 numbers, not 784"},
    {"/v1/models/mnist-cnn:explainer", "application/json", 404, ":predict or :explain"},
};

START_TEST(test_explain_refusals)
{
    const Refusal *c = &refusals[_i];
    size_t len, body_len;
    unsigned char *png = check_util_digit_png(0, &len, NULL);
    char *body = check_http_multipart("image", &png, &len, 1, &body_len);
    const char *instances = "{\"instances\":[[0,0,0]]}";
    bool json = c->type && !strcmp(c->type, "application/json");
    HttpReply r = json ? post(c->path, c->type, instances, strlen(instances))
                       : post(c->path, c->type ? c->type : CHECK_HTTP_MULTIPART, body, body_len);
    ck_assert_msg(r.status == c->status, "%s: status %d: %s", c->path, r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    /* mnistd's {"error": {"code", "message"}}, or /v1's {"error": "message"} */
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *msg = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, "message");
    ck_assert_msg(cJSON_IsString(msg) && strstr(msg->valuestring, c->message), "%s: %s", c->path,
                  r.body);
    cJSON_Delete(j);
    check_http_free(&r);
    free(png);
    free(body);
}
END_TEST

/* Steps count over a request's images: 8 of 300 are 2400, over 2048. */
START_TEST(test_explain_batch_over_step_limit)
{
    unsigned char *pngs[8];
    size_t lens[8], body_len;
    for (int i = 0; i < 8; i++)
        pngs[i] = check_util_digit_png(i, &lens[i], NULL);
    char *mp = check_http_multipart("image", pngs, lens, 8, &body_len);
    HttpReply r = post("/explain?steps=300", CHECK_HTTP_MULTIPART, mp, body_len);
    ck_assert_int_eq(r.status, 413);
    ck_assert_msg(strstr(r.body, "8 images of 300 steps each make 2400 steps, over the limit of "
                                 "2048 a request (--max-explain-steps)"),
                  "%s", r.body);
    check_http_free(&r);
    /* 2048: at the limit (on the small model: the steps are what counts) */
    r = post("/explain?model=bn-explain&steps=256", CHECK_HTTP_MULTIPART, mp, body_len);
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    for (int i = 0; i < 8; i++)
        free(pngs[i]);
    free(mp);
}
END_TEST

static Suite *explain_http_suite(void)
{
    Suite *s = suite_create("explain_http");
    TCase *tc = tcase_create("Explain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* a thousand steps of the CNN under make asan */
    tcase_add_test(tc, test_explain_png_predicted_and_chosen_class);
    tcase_add_test(tc, test_explain_trace_shows_the_steps);
    tcase_add_test(tc, test_explain_folded_batchnorm);
    tcase_add_test(tc, test_explain_routes_agree);
    tcase_add_loop_test(tc, test_explain_refusals, 0, sizeof refusals / sizeof *refusals);
    tcase_add_test(tc, test_explain_batch_over_step_limit);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(explain_http_suite)
