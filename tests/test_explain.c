/* test_explain.c - the input gradient (model_input_gradient) against
 * central differences of the class score, one spec per row covering every
 * layer type and activation (served folded, and not), and integrated
 * gradients' completeness on the shipped and small trained models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "dataset.h"
#include "explain.h"
#include "model_file.h"

typedef struct {
    const char *spec;
    const char *types;  /* each layer type the row covers, as spec names, space-separated */
    bool fold;          /* served: model_fold_for_serving, and something must fold */
} GradientCase;

#define SMALL "\"input_shape\":[6,6,1],\"seed\":3,"

static const GradientCase cases[] = {
    {"{\"name\":\"g\"," SMALL "\"layers\":[{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":7,\"activation\":\"relu\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"softmax\"}]}",
     "flatten dense", false},
    {"{\"name\":\"g\"," SMALL "\"layers\":[{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":6,\"activation\":\"sigmoid\"},"
     "{\"type\":\"dense\",\"units\":6,\"activation\":\"tanh\"},"
     "{\"type\":\"dense\",\"units\":4,\"activation\":\"sigmoid\"}]}",
     "flatten dense", false},
    {"{\"name\":\"g\"," SMALL "\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3,\"padding\":\"same\",\"activation\":\"relu\"},"
     "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":1,\"activation\":\"elu\"},"
     "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"strides\":2,\"activation\":\"gelu\"},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}",
     "conv2d flatten dense", false},
    {"{\"name\":\"g\"," SMALL "\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":2,\"activation\":\"swish\"},"
     "{\"type\":\"maxpool2d\",\"pool_size\":2},"
     "{\"type\":\"dropout\",\"rate\":0.5},{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"leaky_relu\"},"
     "{\"type\":\"dense\",\"units\":3}]}",
     "conv2d maxpool2d dropout flatten dense", false},
    {"{\"name\":\"g\"," SMALL "\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"padding\":\"same\",\"activation\":\"tanh\"},"
     "{\"type\":\"average_pooling2d\",\"pool_size\":2},"
     "{\"type\":\"global_average_pooling2d\"},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}",
     "conv2d average_pooling2d global_average_pooling2d dense", false},
    /* a residual graph: the input read by two layers, one output by two */
    {"{\"name\":\"g\"," SMALL "\"layers\":["
     "{\"name\":\"a\",\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\","
     "\"activation\":\"sigmoid\",\"inputs\":[\"input\"]},"
     "{\"name\":\"b\",\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":1,\"inputs\":[\"input\"]},"
     "{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"a\",\"b\"]},"
     "{\"name\":\"c\",\"type\":\"concatenate\",\"inputs\":[\"s\",\"a\"]},"
     "{\"type\":\"activation\",\"activation\":\"tanh\"},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}",
     "conv2d add concatenate activation flatten dense", false},
    /* augmentation is the identity at inference; its backward too */
    {"{\"name\":\"g\"," SMALL "\"layers\":["
     "{\"type\":\"random_translation\",\"height_factor\":0.2,\"width_factor\":0.2},"
     "{\"type\":\"random_rotation\",\"factor\":0.1},{\"type\":\"random_zoom\",\"height_factor\":0.2},"
     "{\"type\":\"random_flip\"},{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}]}",
     "random_translation random_rotation random_zoom random_flip flatten dense", false},
    /* batch normalization unfolded: on the input, and after a relu */
    {"{\"name\":\"g\"," SMALL "\"layers\":[{\"type\":\"batch_normalization\"},"
     "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3,\"activation\":\"relu\"},"
     "{\"type\":\"batch_normalization\",\"center\":false},{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}",
     "batch_normalization conv2d flatten dense", true},
    /* folded into the conv2d and the dense before them, as served */
    {"{\"name\":\"g\"," SMALL "\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3},"
     "{\"type\":\"batch_normalization\"},{\"type\":\"activation\",\"activation\":\"relu\"},"
     "{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":5},{\"type\":\"batch_normalization\"},"
     "{\"type\":\"activation\",\"activation\":\"relu\"},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}",
     "conv2d batch_normalization flatten dense activation", true},
};

/* Random weights and moving statistics (variances positive), so no
 * layer is the identity it starts as. */
static void scramble(Model *m, uint64_t seed)
{
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = rng_uniform(&rng) * 1.6f - 0.8f;
    for (size_t i = 0; i < m->n_state; i++)
        m->state[i] = 0.2f + rng_uniform(&rng);
}

static bool has_type(const Model *m, const char *name)
{
    for (int i = 0; i < m->spec.n_layers; i++)
        if (!strcmp(layer_ops(m->spec.layers[i].type)->name, name))
            return true;
    return false;
}

static double score_at(const Model *m, ModelRun *plain, const float *x, int cls)
{
    memcpy(model_run_input(plain), x, shape_numel(m->spec.input) * sizeof *x);
    model_forward(m, plain, 1, false);
    return model_class_score(m, plain, 0, cls);
}

START_TEST(test_input_gradient_against_differences)
{
    enum { N = 3 };
    const GradientCase *c = &cases[_i];
    Model *m = check_util_build_model(c->spec);
    scramble(m, 40 + (uint64_t)_i);
    char types[160];
    snprintf(types, sizeof types, "%s", c->types);
    for (char *t = strtok(types, " "); t; t = strtok(NULL, " "))
        ck_assert_msg(has_type(m, t), "case %d: no %s layer", _i, t);
    MnError err = {0};
    if (c->fold) {
        ck_assert_int_eq(model_fold_for_serving(m, &err), 0);
        bool any = false, all = true;
        for (int i = 0; i < m->spec.n_layers; i++)
            if (m->spec.layers[i].type == LAYER_BATCHNORM) {
                any = any || m->folded[i];
                all = all && m->folded[i];
            }
        /* case 7 keeps its normalizations as affines, case 8 folds them all */
        ck_assert_msg(_i == 7 ? !any : all, "case %d: folded %d of them", _i, any);
    }
    size_t d = shape_numel(m->spec.input);
    float *x = malloc(N * d * sizeof *x), *g = malloc(N * d * sizeof *g);
    Rng rng;
    rng_seed(&rng, 7 + (uint64_t)_i);
    for (size_t i = 0; i < N * d; i++)
        x[i] = rng_uniform(&rng);
    ModelRun *run = model_run_new_input_gradient(m, N, &err);
    ModelRun *plain = model_run_new(m, 1, false, &err);
    ck_assert_ptr_nonnull(run);
    ck_assert_ptr_nonnull(plain);
    int classes[N];
    for (int i = 0; i < N; i++)
        classes[i] = i % m->n_classes;
    memcpy(model_run_input(run), x, N * d * sizeof *x);
    model_forward(m, run, N, false);
    for (int i = 0; i < N; i++) /* the gradient run's forward is the plain one's */
        ck_assert_float_eq_tol(model_class_score(m, run, i, classes[i]),
                               score_at(m, plain, x + (size_t)i * d, classes[i]), 1e-5);
    model_input_gradient(m, run, N, classes, g);
    /* A ReLU or a pooling tie within eps of x makes the two one-sided
     * differences disagree: the derivative is not defined there, and the
     * point is skipped (ggml's grad_expect has the same worry); no more
     * than a tenth may be. */
    const double eps = 1e-3, atol = 2e-3;
    double largest = 0.0;
    int skipped = 0;
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < d; j++) {
            float *xi = x + (size_t)i * d, x0 = xi[j];
            double mid = score_at(m, plain, xi, classes[i]);
            xi[j] = x0 + (float)eps;
            double up = score_at(m, plain, xi, classes[i]);
            xi[j] = x0 - (float)eps;
            double down = score_at(m, plain, xi, classes[i]);
            xi[j] = x0;
            double right = (up - mid) / eps, left = (mid - down) / eps;
            double num = (up - down) / (2.0 * eps), ana = g[(size_t)i * d + j];
            largest = fabs(ana) > largest ? fabs(ana) : largest;
            if (fabs(right - left) > 0.1 * (fabs(right) + fabs(left)) + atol) {
                skipped++;
                continue;
            }
            ck_assert_msg(fabs(num - ana) <= 2e-2 * (fabs(num) + fabs(ana)) + atol,
                          "case %d (%s): sample %d input %zu: analytic %.6g numeric %.6g", _i,
                          c->types, i, j, ana, num);
        }
    ck_assert_msg(skipped * 10 <= N * (int)d, "case %d: %d of %zu points at a kink", _i, skipped,
                  N * d);
    ck_assert_msg(largest > 1e-3, "case %d: the gradient is all but zero (%g)", _i, largest);
    model_run_free(run);
    model_run_free(plain);
    free(x);
    free(g);
    model_free(m);
}
END_TEST

/* The sum of the attributions against score(x) - score(black): within 1%. */
static void check_completeness(const Model *m, const float *unit, int cls, int steps,
                               const char *what)
{
    MnError err = {0};
    Explainer *e = explainer_new(m, &err);
    ck_assert_msg(e != NULL, "%s", err.msg);
    size_t d = shape_numel(m->spec.input);
    float *attr = malloc(d * sizeof *attr);
    Explanation ex;
    ck_assert_int_eq(explain_integrated_gradients(e, unit, cls, steps, attr, &ex, &err), 0);
    double want = (double)ex.score - ex.baseline_score;
    ck_assert_msg(fabs(want) > 1e-3, "%s: score gap %g too small to test", what, want);
    ck_assert_msg(fabs(ex.sum - want) <= 0.01 * fabs(want),
                  "%s: class %d: attributions add to %.6g, score(x) - score(0) = %.6g - %.6g = %.6g",
                  what, ex.cls, ex.sum, ex.score, ex.baseline_score, want);
    double total = 0.0;
    for (size_t j = 0; j < d; j++)
        total += attr[j];
    ck_assert_float_eq_tol(total, ex.sum, 1e-6 * (fabs(total) + 1.0));
    free(attr);
    explainer_free(e);
}

/* The first class from start on (cyclically) whose score at the image is
 * at least MIN_GAP from its score at black. A 1% check of a smaller gap is
 * finer than the path's 1,024 steps resolve: a shipped CNN had a gap of
 * 0.027 for one class, and 1% of it is less than the Riemann sum's error. */
#define MIN_GAP 0.5
static int class_with_gap(const Model *m, const float *unit, int start)
{
    MnError err = {0};
    Explainer *e = explainer_new(m, &err);
    ck_assert_msg(e != NULL, "%s", err.msg);
    float *attr = malloc(shape_numel(m->spec.input) * sizeof *attr);
    int found = -1;
    for (int k = 0; k < m->n_classes && found < 0; k++) {
        int cls = (start + k) % m->n_classes;
        Explanation ex;
        ck_assert_int_eq(explain_integrated_gradients(e, unit, cls, 1, attr, &ex, &err), 0);
        if (fabs((double)ex.score - ex.baseline_score) >= MIN_GAP)
            found = cls;
    }
    ck_assert_msg(found >= 0, "no class's score moves by %g from black", MIN_GAP);
    free(attr);
    explainer_free(e);
    return found;
}

static Model *shipped(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s/v1.mnm", check_util_src_dir(), name);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_msg(model_load(path, &lim, &m, &err) == 0, "%s: %s", path, err.msg);
    ck_assert_int_eq(model_fold_for_serving(m, &err), 0); /* as the store serves it */
    return m;
}

static void test_images(const char *dataset, int n, float *unit, uint8_t *labels)
{
    Dataset ds;
    MnError err = {0};
    ck_assert_msg(dataset_load(check_util_data_dir(), dataset, SPLIT_TEST, &ds, &err) == 0, "%s",
                  err.msg);
    size_t d = shape_numel(ds.shape);
    for (size_t i = 0; i < (size_t)n * d; i++)
        unit[i] = ds.images[i] / 255.0f;
    memcpy(labels, ds.labels, (size_t)n);
    dataset_free(&ds);
}

START_TEST(test_completeness_shipped_models)
{
    enum { N = 4 };
    static const char *const models[][2] = {{"mnist-cnn", "mnist"}, {"fashion-cnn", "fashion-mnist"}};
    Model *m = shipped(models[_i][0]);
    size_t d = shape_numel(m->spec.input);
    float *unit = malloc(N * d * sizeof *unit);
    uint8_t labels[N];
    test_images(models[_i][1], N, unit, labels);
    char what[96];
    int n = check_util_quick() ? 1 : N; /* make asan: a thousand steps are slow */
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof what, "%s, test image %d", models[_i][0], i);
        check_completeness(m, unit + (size_t)i * d, -1, 1024, what);
        int other = class_with_gap(m, unit + (size_t)i * d, (labels[i] + 1) % m->n_classes);
        check_completeness(m, unit + (size_t)i * d, other, 1024, what);
    }
    free(unit);
    model_free(m);
}
END_TEST

/* Every row's model, scrambled, served folded where it folds: the same
 * sum on a random image, for its predicted class and for another one. */
START_TEST(test_completeness_every_layer_type)
{
    const GradientCase *c = &cases[_i];
    Model *m = check_util_build_model(c->spec);
    scramble(m, 40 + (uint64_t)_i);
    MnError err = {0};
    if (c->fold)
        ck_assert_int_eq(model_fold_for_serving(m, &err), 0);
    size_t d = shape_numel(m->spec.input);
    float *unit = malloc(d * sizeof *unit);
    Rng rng;
    rng_seed(&rng, 70 + (uint64_t)_i);
    for (size_t j = 0; j < d; j++)
        unit[j] = rng_uniform(&rng);
    char what[64];
    snprintf(what, sizeof what, "case %d (%s)", _i, c->types);
    for (int cls = 0; cls < 2; cls++)
        check_completeness(m, unit, cls, 2048, what);
    free(unit);
    model_free(m);
}
END_TEST

/* More steps, a closer sum: the midpoint rule converges. */
START_TEST(test_more_steps_closer)
{
    Model *m = shipped("mnist-cnn");
    float unit[28 * 28];
    uint8_t label;
    test_images("mnist", 1, unit, &label);
    MnError err = {0};
    Explainer *e = explainer_new(m, &err);
    float attr[28 * 28];
    Explanation few, many;
    ck_assert_int_eq(explain_integrated_gradients(e, unit, label, 2, attr, &few, &err), 0);
    ck_assert_int_eq(explain_integrated_gradients(e, unit, label, 300, attr, &many, &err), 0);
    double want = (double)many.score - many.baseline_score;
    ck_assert_int_eq(many.predicted, label);
    ck_assert_msg(fabs(many.sum - want) < fabs(few.sum - want),
                  "2 steps off by %g, 300 by %g", fabs(few.sum - want), fabs(many.sum - want));
    /* black pixels have nothing to attribute: the baseline is black */
    for (int j = 0; j < 28 * 28; j++)
        if (unit[j] == 0.0f)
            ck_assert_float_eq(attr[j], 0.0f);
    explainer_free(e);
    model_free(m);
}
END_TEST

START_TEST(test_refusals)
{
    Model *m = check_util_build_model(cases[0].spec);
    MnError err = {0};
    Explainer *e = explainer_new(m, &err);
    float unit[36] = {0}, attr[36];
    Explanation ex;
    ck_assert_int_eq(explain_integrated_gradients(e, unit, 0, 0, attr, &ex, &err), MN_EINVAL);
    ck_assert_str_eq(err.msg, "steps must be at least 1, got 0");
    ck_assert_int_eq(explain_integrated_gradients(e, unit, 5, 8, attr, &ex, &err), MN_EINVAL);
    ck_assert_str_eq(err.msg, "class must be from 0 to 4, got 5");
    ck_assert_int_eq(explain_integrated_gradients(e, unit, -2, 8, attr, &ex, &err), MN_EINVAL);
    ck_assert_int_eq(explain_integrated_gradients(e, unit, -1, 1, attr, &ex, &err), 0);
    ck_assert_int_eq(ex.cls, ex.predicted);
    explainer_free(e);
    model_free(m);
}
END_TEST

static Suite *explain_suite(void)
{
    Suite *s = suite_create("explain");
    TCase *grad = tcase_create("InputGradient");
    tcase_set_timeout(grad, 30);
    tcase_add_loop_test(grad, test_input_gradient_against_differences, 0,
                        sizeof cases / sizeof *cases);
    suite_add_tcase(s, grad);
    TCase *ig = tcase_create("IntegratedGradients");
    tcase_set_timeout(ig, 60);
    tcase_add_loop_test(ig, test_completeness_every_layer_type, 0, sizeof cases / sizeof *cases);
    tcase_add_loop_test(ig, test_completeness_shipped_models, 0, 2);
    tcase_add_test(ig, test_more_steps_closer);
    tcase_add_test(ig, test_refusals);
    suite_add_tcase(s, ig);
    return s;
}

MN_TEST_MAIN(explain_suite)
