/* test_backprop.c - the homework's Problem 2 through core/backprop: the
 * forward values, and every gradient against central differences of the
 * loss (computed by perturbing the input document itself). Also what the
 * notebook's hand calculation got wrong, and the refusals. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backprop.h"
#include "check_util.h"

static const char *const PROBLEM2 =
    "{\"input\": [1, -1], \"target\": [1], \"loss\": \"mse_half\","
    " \"layers\": [{\"weights\": [[0.25, 0.1], [-0.2, 0.9]], \"biases\": [0.1, -0.2], \"activation\": \"relu\"},"
    "            {\"weights\": [[0.5, 0.8], [0.3, 0.7]], \"biases\": [-0.3, 0.1], \"activation\": \"relu\"},"
    "            {\"weights\": [[0.1, -0.2]], \"biases\": [0.3], \"activation\": \"sigmoid\"}]}";

static cJSON *run(const char *json)
{
    char *out = NULL;
    MnError err = {0};
    ck_assert_msg(backprop_run_json(json, strlen(json), &out, &err) == 0, "%s", err.msg);
    cJSON *j = cJSON_Parse(out);
    free(out);
    ck_assert_ptr_nonnull(j);
    return j;
}

static double at(const cJSON *j, const char *path)
{
    /* path like "layers.2.d_weights.0.1" */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(cur, atoi(tok))
                                           : cJSON_GetObjectItem(cur, tok);
    ck_assert_msg(cJSON_IsNumber(cur), "%s is not a number", path);
    return cur->valuedouble;
}

START_TEST(test_problem2_forward)
{
    cJSON *j = run(PROBLEM2);
    const struct {
        const char *path;
        double want;
    } expect[] = {
        {"layers.0.z.0", 0.25},  {"layers.0.z.1", -1.3},   {"layers.0.a.0", 0.25},
        {"layers.0.a.1", 0.0},   {"layers.1.z.0", -0.175}, {"layers.1.z.1", 0.175},
        {"layers.1.a.0", 0.0},   {"layers.1.a.1", 0.175},
        /* The notebook fed a1 into layer 3; with the right input a2 = (0, 0.175),
         * z3 = -0.2 * 0.175 + 0.3 = 0.265 (the notebook's 0.265 is right by accident). */
        {"layers.2.z.0", 0.265}, {"output.0", 0.5658648}, {"loss", 0.0942366},
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        ck_assert_msg(fabs(at(j, expect[i].path) - expect[i].want) < 1e-6, "%s = %.9g, want %.9g",
                      expect[i].path, at(j, expect[i].path), expect[i].want);
    cJSON_Delete(j);
}
END_TEST

/* The notebook's hand calculation, corrected. It used (y - y_hat) = +0.434
 * where the chain rule needs (y_hat - y) = -0.434, so every gradient it gives
 * has the wrong sign; it multiplied by W3 where dW3 needs a2 (giving
 * [0.0107, 0.0213] instead of [0, -0.0187]); and its dW2, db2 have the wrong
 * shapes (1x2 and a scalar for a 2x2 matrix and a 2-vector), as it noticed. */
START_TEST(test_problem2_gradients_corrected)
{
    cJSON *j = run(PROBLEM2);
    double dz3 = (0.5658648 - 1.0) * 0.5658648 * (1.0 - 0.5658648);
    const struct {
        const char *path;
        double want;
    } expect[] = {
        {"layers.2.d_biases.0", dz3},
        {"layers.2.d_weights.0.0", 0.0},
        {"layers.2.d_weights.0.1", dz3 * 0.175},
        {"layers.1.d_biases.0", 0.0},
        {"layers.1.d_biases.1", -0.2 * dz3},
        {"layers.1.d_weights.1.0", -0.2 * dz3 * 0.25},
        {"layers.1.d_weights.1.1", 0.0},
        {"layers.0.d_biases.0", 0.3 * -0.2 * dz3},
        {"layers.0.d_biases.1", 0.0},
        {"layers.0.d_weights.0.0", 0.3 * -0.2 * dz3},
        {"layers.0.d_weights.0.1", -0.3 * -0.2 * dz3},
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        ck_assert_msg(fabs(at(j, expect[i].path) - expect[i].want) < 1e-6, "%s = %.9g, want %.9g",
                      expect[i].path, at(j, expect[i].path), expect[i].want);
    cJSON_Delete(j);
}
END_TEST

/* Every weight and bias: the analytic gradient against (L(p+h) - L(p-h)) / 2h. */
static void check_against_finite_differences(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    cJSON *result = run(json);
    cJSON *layers = cJSON_GetObjectItem(doc, "layers");
    const double h = 1e-6;
    int checked = 0;
    for (int li = 0; li < cJSON_GetArraySize(layers); li++) {
        cJSON *layer = cJSON_GetArrayItem(layers, li);
        cJSON *rows = cJSON_GetObjectItem(layer, "weights");
        for (int r = 0; r <= cJSON_GetArraySize(rows); r++) {
            /* r == rows: the biases */
            cJSON *vec = r < cJSON_GetArraySize(rows) ? cJSON_GetArrayItem(rows, r)
                                                      : cJSON_GetObjectItem(layer, "biases");
            for (int c = 0; c < cJSON_GetArraySize(vec); c++) {
                cJSON *num = cJSON_GetArrayItem(vec, c);
                double v = num->valuedouble;
                double loss[2];
                for (int s = 0; s < 2; s++) {
                    cJSON_SetNumberValue(num, v + (s ? -h : h));
                    char *text = cJSON_PrintUnformatted(doc);
                    cJSON *out = run(text);
                    loss[s] = at(out, "loss");
                    cJSON_Delete(out);
                    free(text);
                }
                cJSON_SetNumberValue(num, v);
                char path[64];
                if (r < cJSON_GetArraySize(rows))
                    snprintf(path, sizeof path, "layers.%d.d_weights.%d.%d", li, r, c);
                else
                    snprintf(path, sizeof path, "layers.%d.d_biases.%d", li, c);
                double numeric = (loss[0] - loss[1]) / (2 * h), analytic = at(result, path);
                ck_assert_msg(fabs(numeric - analytic) < 1e-6, "%s: analytic %.9g numeric %.9g",
                              path, analytic, numeric);
                checked++;
            }
        }
    }
    ck_assert_int_gt(checked, 0);
    cJSON_Delete(doc);
    cJSON_Delete(result);
}

START_TEST(test_problem2_finite_differences) { check_against_finite_differences(PROBLEM2); }
END_TEST

START_TEST(test_softmax_crossentropy_finite_differences)
{
    check_against_finite_differences(
        "{\"input\": [0.5, -1.5, 2.0], \"target\": [0, 1, 0], \"loss\": \"crossentropy\","
        " \"layers\": [{\"weights\": [[0.3, -0.1, 0.2], [0.5, 0.4, -0.6], [-0.2, 0.1, 0.05], [0.7, -0.3, 0.2]],"
        "   \"biases\": [0.1, 0, -0.1, 0.2], \"activation\": \"tanh\"},"
        "  {\"weights\": [[0.2, -0.5, 0.1, 0.3], [0.4, 0.1, -0.2, 0.6], [-0.3, 0.2, 0.5, 0.1]],"
        "   \"biases\": [0, 0.1, -0.1], \"activation\": \"softmax\"}]}");
}
END_TEST

START_TEST(test_mse_sigmoid_finite_differences)
{
    check_against_finite_differences(
        "{\"input\": [0.2, 0.7], \"target\": [0.3, 0.9], \"loss\": \"mse\","
        " \"layers\": [{\"weights\": [[0.3, -0.8], [0.5, 0.4], [-0.6, 0.2]], \"biases\": [0.1, 0, -0.1],"
        "   \"activation\": \"sigmoid\"},"
        "  {\"weights\": [[0.2, -0.5, 0.1], [0.4, 0.1, -0.2]], \"biases\": [0, 0.1]}]}");
}
END_TEST

static const struct {
    const char *json;
    int code;
    const char *says;
} refused[] = {
    {"{\"input\": [1, -1], \"target\": [1], \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0]}]} x",
     MN_EINVAL, "trailing bytes"},
    {"{\"input\": [1, -1], \"target\": [1], \"layers\": [{\"weights\": [[1, 2, 3]], \"biases\": [0]}]}",
     MN_ESPEC, "layers[0].weights[0] has 3 columns"},
    {"{\"input\": [1, -1], \"target\": [1, 2], \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0]}]}",
     MN_ESPEC, "target has 2 values"},
    {"{\"input\": [1, -1], \"target\": [1], \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0, 1]}]}",
     MN_ESPEC, "layers[0].biases has 2 entries"},
    {"{\"input\": [1, -1], \"target\": [1], \"lr\": 0.1, \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0]}]}",
     MN_EINVAL, "unknown key \"lr\""},
    {"{\"input\": [1, NaN], \"target\": [1], \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0]}]}",
     MN_EINVAL, "not valid JSON"},
    {"{\"input\": [1, \"a\"], \"target\": [1], \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0]}]}",
     MN_EINVAL, "input[1] must be a finite number"},
    {"{\"input\": [1, -1], \"target\": [1], \"layers\": [{\"weights\": [[1, 2]], \"biases\": [0], \"activation\": \"gelu\"}]}",
     MN_EINVAL, "layers[0].activation"},
};

START_TEST(test_refused)
{
    char *out = NULL;
    MnError err = {0};
    int rc = backprop_run_json(refused[_i].json, strlen(refused[_i].json), &out, &err);
    ck_assert_msg(rc == refused[_i].code, "case %d: rc %d (%s)", _i, rc, err.msg);
    ck_assert_msg(strstr(err.msg, refused[_i].says), "case %d: \"%s\" lacks \"%s\"", _i, err.msg,
                  refused[_i].says);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_too_many_layers_refused)
{
    char json[8192] = "{\"input\": [1], \"target\": [1], \"layers\": [";
    for (int i = 0; i <= BACKPROP_MAX_LAYERS; i++)
        strcat(json, i ? ", {\"weights\": [[1]], \"biases\": [0]}" : "{\"weights\": [[1]], \"biases\": [0]}");
    strcat(json, "]}");
    char *out = NULL;
    MnError err = {0};
    ck_assert_int_eq(backprop_run_json(json, strlen(json), &out, &err), MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "at most 16"));
}
END_TEST

START_TEST(test_cli_backprop)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s backprop %s/specs/backprop-problem2.json", check_util_bin(),
             check_util_src_dir());
    int status;
    char *out = check_util_run_cmd(cmd, &status);
    ck_assert_msg(out && status == 0, "%s failed (status %d)", cmd, status);
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert(fabs(at(j, "loss") - 0.0942366) < 1e-6);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "layers")), 3);
    cJSON_Delete(j);
    free(out);
}
END_TEST

static Suite *backprop_suite(void)
{
    Suite *s = suite_create("backprop");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_problem2_forward);
    tcase_add_test(tc, test_problem2_gradients_corrected);
    tcase_add_test(tc, test_problem2_finite_differences);
    tcase_add_test(tc, test_softmax_crossentropy_finite_differences);
    tcase_add_test(tc, test_mse_sigmoid_finite_differences);
    tcase_add_test(tc, test_cli_backprop);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("Limits");
    tcase_add_loop_test(lim, test_refused, 0, sizeof refused / sizeof *refused);
    tcase_add_test(lim, test_too_many_layers_refused);
    suite_add_tcase(s, lim);
    return s;
}

MN_TEST_MAIN(backprop_suite)
