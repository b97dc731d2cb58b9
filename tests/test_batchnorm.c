/* test_batchnorm.c - batch normalization through the whole model: its
 * backward in training against central differences (after a conv and a
 * dense layer, and with the relu layer after it that training fuses into
 * it), fused training against every layer run apart (the same bits),
 * whole-batch statistics however lanes and threads split a
 * batch (the same bits on one thread and two), folding for serving against
 * the unfolded affine, spec refusals, and model files with moving
 * statistics (and version 1 files, which have none, still loading). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "model.h"
#include "model_file.h"
#include "step.h"

static Model *build(const char *json) { return check_util_build_model(json); }

/* Moves every parameter and moving statistic off its starting value, the
 * variances kept positive, so folding and files have something to show. */
static void scramble(Model *m, uint64_t seed)
{
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.2f * (2.0f * rng_uniform(&rng) - 1.0f);
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        float *st = m->state + l->state_offset;
        for (size_t k = 0; k < l->state_count; k++)
            st[k] = k < l->state_count / 2 ? 0.5f * (2.0f * rng_uniform(&rng) - 1.0f)
                                           : 0.5f + 1.5f * rng_uniform(&rng);
    }
}

static void fill_inputs(float *x, size_t n, uint64_t seed)
{
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = rng_uniform(&rng);
}

/* ---- backward in training mode ---- */

static const char *const grad_specs[] = {
    /* after a linear conv, as Keras users write it (smooth layers after
     * it: a max-pool's or a relu's kinks move when the statistics do) */
    "{\"name\":\"g\",\"input_shape\":[6,6,2],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3},"
    "{\"type\":\"batch_normalization\"},"
    "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":2,\"strides\":2,"
    "\"activation\":\"tanh\"},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],\"seed\":3}",
    /* after a dense layer, without beta; and one without gamma */
    "{\"name\":\"g\",\"input_shape\":[4,4,1],\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":5,\"activation\":\"tanh\"},"
    "{\"type\":\"batch_normalization\",\"center\":false},"
    "{\"type\":\"dense\",\"units\":4},"
    "{\"type\":\"batch_normalization\",\"scale\":false,\"epsilon\":0.01},"
    "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],\"seed\":4}",
    /* a relu layer after each: training does its work in the
     * normalization's passes (LayerOps.takes_relu); seed 5 put an input
     * of a relu within eps of its kink, fused or not */
    "{\"name\":\"g\",\"input_shape\":[6,6,2],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3,\"use_bias\":false},"
    "{\"type\":\"batch_normalization\"},{\"type\":\"activation\",\"activation\":\"relu\"},"
    "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":4},"
    "{\"type\":\"batch_normalization\",\"center\":false},"
    "{\"type\":\"activation\",\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],\"seed\":6}",
};

START_TEST(test_backward_against_differences)
{
    enum { N = 5 };
    Model *m = build(grad_specs[_i]);
    scramble(m, 10 + _i);
    size_t d = shape_numel(m->spec.input);
    float *x = malloc(N * d * sizeof *x);
    fill_inputs(x, N * d, 20 + _i);
    unsigned char labels[N] = {0, 1, 2, 1, 0};
    check_util_model_gradients(m, x, labels, N, grad_specs[_i]);
    free(x);
    model_free(m);
}
END_TEST

/* ---- lanes: whole-batch statistics, the same bits on one thread and two ---- */

/* the first normalization's relu layer is fused into it in training */
static const char *const lanes_spec =
    "{\"name\":\"l\",\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":12,\"kernel_size\":3},"
    "{\"type\":\"batch_normalization\",\"momentum\":0.5},"
    "{\"type\":\"activation\",\"activation\":\"relu\"},"
    "{\"type\":\"maxpool2d\",\"pool_size\":2},"
    "{\"type\":\"conv2d\",\"filters\":8,\"kernel_size\":3,\"activation\":\"relu\"},"
    "{\"type\":\"batch_normalization\"},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":16},{\"type\":\"batch_normalization\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"seed\":9}";

enum { LANE_SAMPLES = 80, LANE_BATCH = 37, LANE_STEPS = 3 };

static void synthetic(Dataset *d)
{
    memset(d, 0, sizeof *d);
    d->n = LANE_SAMPLES;
    d->shape = shape_make(28, 28, 1);
    d->n_classes = 10;
    size_t numel = shape_numel(d->shape);
    d->images = malloc(LANE_SAMPLES * numel);
    d->labels = malloc(LANE_SAMPLES);
    Rng rng;
    rng_seed(&rng, 5);
    for (size_t i = 0; i < LANE_SAMPLES * numel; i++)
        d->images[i] = (uint8_t)(rng_uniform(&rng) * 256.0f);
    for (int i = 0; i < LANE_SAMPLES; i++)
        d->labels[i] = (uint8_t)(i % 10);
}

/* A few plain gradient steps in lanes on `threads` threads. */
static Model *train_in_lanes(const Dataset *d, int threads)
{
    Model *m = build(lanes_spec);
    MnError err = {0};
    StepLanes *s = step_lanes_new(m, LANE_BATCH, threads, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    ck_assert_int_eq(step_lanes_count(s), 2);
    ck_assert_int_eq(step_lanes_slice(s), (LANE_BATCH + 1) / 2); /* no slices */
    float *grads = malloc(m->n_params * sizeof *grads);
    Metrics mt;
    metrics_reset(&mt, m->n_classes, NULL);
    for (int step = 0; step < LANE_STEPS; step++) {
        step_lanes_run(s, d, NULL, (size_t)step * 20, LANE_BATCH, grads, &mt);
        for (size_t i = 0; i < m->n_params; i++)
            m->params[i] -= 0.05f * grads[i];
        step_lanes_update_state(s, m);
    }
    free(grads);
    step_lanes_free(s);
    return m;
}

START_TEST(test_one_thread_and_two_same_bits)
{
    Dataset d;
    synthetic(&d);
    Model *one = train_in_lanes(&d, 1), *two = train_in_lanes(&d, 2);
    ck_assert(one->n_state > 0);
    ck_assert_mem_eq(one->params, two->params, one->n_params * sizeof *one->params);
    ck_assert_mem_eq(one->state, two->state, one->n_state * sizeof *one->state);
    model_free(one);
    model_free(two);
    free(d.images);
    free(d.labels);
}
END_TEST

static double rel_diff(double a, double b) { return fabs(a - b) / fmax(1e-4, fabs(a) + fabs(b)); }

/* Two lanes give the statistics and gradient of the batch in one piece. */
START_TEST(test_lanes_use_whole_batch_statistics)
{
    Dataset d;
    synthetic(&d);
    Model *split = build(lanes_spec), *whole = build(lanes_spec);
    MnError err = {0};
    StepLanes *s = step_lanes_new(split, LANE_BATCH, 2, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    float *g_split = malloc(split->n_params * sizeof(float));
    float *g_whole = calloc(whole->n_params, sizeof(float));
    Metrics mt;
    metrics_reset(&mt, split->n_classes, NULL);
    double loss_split = step_lanes_run(s, &d, NULL, 0, LANE_BATCH, g_split, &mt);
    step_lanes_update_state(s, split);

    ModelRun *r = model_run_new(whole, LANE_BATCH, true, &err);
    uint8_t labels[LANE_BATCH];
    step_gather(whole, &d, NULL, 0, LANE_BATCH, model_run_input(r), labels);
    model_forward(whole, r, LANE_BATCH, true);
    double loss_whole = model_backward(whole, r, labels, LANE_BATCH, LANE_BATCH, g_whole);
    model_update_state(whole, r);

    ck_assert_double_eq_tol(loss_split, loss_whole, 1e-5);
    for (size_t i = 0; i < whole->n_state; i++)
        ck_assert_msg(rel_diff(split->state[i], whole->state[i]) < 1e-5,
                      "state[%zu]: lanes %.8g, whole batch %.8g", i, split->state[i],
                      whole->state[i]);
    for (size_t i = 0; i < whole->n_params; i++)
        ck_assert_msg(fabs(g_split[i] - g_whole[i]) < 1e-5 + 1e-3 * fabs(g_whole[i]),
                      "grad[%zu]: lanes %.8g, whole batch %.8g", i, g_split[i], g_whole[i]);
    model_run_free(r);
    step_lanes_free(s);
    free(g_split);
    free(g_whole);
    model_free(split);
    model_free(whole);
    free(d.images);
    free(d.labels);
}
END_TEST

/* ---- a relu layer fused into the normalization before it ---- */

/* Augmented data (whose layers need no gradient), normalizations after a
 * conv without bias, a conv with one and a dense layer, each followed by
 * a relu layer that training fuses into it; and one whose output a second
 * layer reads too, which keeps its relu layer apart. */
static const char *const fused_spec =
    "{\"name\":\"r\",\"input_shape\":[12,12,1],\"layers\":["
    "{\"type\":\"random_translation\",\"height_factor\":0.1,\"width_factor\":0.1,"
    "\"fill_mode\":\"constant\"},{\"type\":\"random_flip\",\"mode\":\"horizontal\"},"
    "{\"type\":\"conv2d\",\"filters\":6,\"kernel_size\":3,\"padding\":\"same\","
    "\"use_bias\":false},"
    "{\"type\":\"batch_normalization\"},{\"type\":\"activation\",\"activation\":\"relu\"},"
    "{\"type\":\"maxpool2d\",\"pool_size\":2},"
    "{\"type\":\"conv2d\",\"filters\":5,\"kernel_size\":3,\"padding\":\"same\"},"
    "{\"type\":\"batch_normalization\",\"name\":\"twice\",\"scale\":false},"
    "{\"type\":\"activation\",\"activation\":\"relu\",\"name\":\"r1\"},"
    "{\"type\":\"add\",\"inputs\":[\"r1\",\"twice\"]},"
    "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":8},"
    "{\"type\":\"batch_normalization\",\"center\":false},"
    "{\"type\":\"activation\",\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],\"seed\":7}";

enum { FUSED_BATCH = 9, FUSED_STEPS = 4 };

/* A few gradient steps on one run, the moving statistics updated after
 * each; the last step's loss. */
static double train_run(Model *m, ModelRun *r)
{
    size_t d = shape_numel(m->spec.input);
    float *grads = malloc(m->n_params * sizeof *grads);
    uint8_t labels[FUSED_BATCH];
    double loss = 0.0;
    for (int step = 0; step < FUSED_STEPS; step++) {
        fill_inputs(model_run_input(r), FUSED_BATCH * d, 40 + step);
        for (int i = 0; i < FUSED_BATCH; i++)
            labels[i] = (uint8_t)((i + step) % 4);
        memset(grads, 0, m->n_params * sizeof *grads);
        model_forward(m, r, FUSED_BATCH, true);
        loss = model_backward(m, r, labels, FUSED_BATCH, FUSED_BATCH, grads);
        for (size_t i = 0; i < m->n_params; i++)
            m->params[i] -= 0.1f * grads[i];
        model_update_state(m, r);
    }
    free(grads);
    return loss;
}

START_TEST(test_fused_relu_same_bits)
{
    Model *fused = build(fused_spec), *apart = build(fused_spec);
    MnError err = {0};
    ModelRun *rf = model_run_new(fused, FUSED_BATCH, true, &err);
    ck_assert_msg(rf != NULL, "%s", err.msg);
    ModelRun *ra = model_run_new_unfused(apart, FUSED_BATCH, &err);
    ck_assert_msg(ra != NULL, "%s", err.msg);
    double lf = train_run(fused, rf), la = train_run(apart, ra);
    ck_assert_mem_eq(&lf, &la, sizeof lf);
    ck_assert_mem_eq(fused->params, apart->params, fused->n_params * sizeof *fused->params);
    ck_assert_mem_eq(fused->state, apart->state, fused->n_state * sizeof *fused->state);
    /* the output of the last forward, and the relu layers' outputs */
    int last = fused->spec.n_layers - 1;
    ck_assert_mem_eq(model_run_activation(rf, last), model_run_activation(ra, last),
                     FUSED_BATCH * (size_t)fused->n_classes * sizeof(float));
    for (int i = 0; i < last; i++)
        if (fused->spec.layers[i].type == LAYER_ACTIVATION)
            ck_assert_mem_eq(model_run_activation(rf, i), model_run_activation(ra, i),
                             FUSED_BATCH * shape_numel(fused->spec.layers[i].out) *
                                 sizeof(float));
    model_run_free(rf);
    model_run_free(ra);
    model_free(fused);
    model_free(apart);
}
END_TEST

/* ---- folding for serving ---- */

START_TEST(test_folding_equals_unfolded)
{
    enum { N = 6 };
    /* folds: after the linear conv and the linear dense; does not: after
     * the model's input, after a relu conv, after a conv read twice */
    Model *m = build("{\"name\":\"f\",\"input_shape\":[8,8,1],\"layers\":["
                     "{\"type\":\"batch_normalization\"},"
                     "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"padding\":\"same\"},"
                     "{\"type\":\"batch_normalization\"},"
                     "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"activation\":\"relu\"},"
                     "{\"type\":\"batch_normalization\",\"center\":false},"
                     "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"name\":\"c3\"},"
                     "{\"type\":\"batch_normalization\",\"name\":\"b3\"},"
                     "{\"type\":\"add\",\"inputs\":[\"c3\",\"b3\"]},"
                     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":6},"
                     "{\"type\":\"batch_normalization\",\"scale\":false},"
                     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],\"seed\":2}");
    scramble(m, 31);
    size_t d = shape_numel(m->spec.input);
    MnError err = {0};
    ModelRun *r = model_run_new(m, N, false, &err);
    fill_inputs(model_run_input(r), N * d, 32);
    float want[N * 3];
    memcpy(want, model_forward(m, r, N, false), sizeof want);
    float *params = malloc(m->n_params * sizeof *params);
    memcpy(params, m->params, m->n_params * sizeof *params);

    ck_assert_int_eq(model_fold_for_serving(m, &err), 0);
    bool expect[] = {false, false, true, false, false, false, false, false, false, false, true, false};
    for (int i = 0; i < m->spec.n_layers; i++)
        ck_assert_msg(m->folded[i] == expect[i], "layer %d folded %d", i, m->folded[i]);
    ck_assert_mem_eq(params, m->params, m->n_params * sizeof *params); /* a copy was folded */
    ModelRun *served = model_run_new(m, N, false, &err);
    memcpy(model_run_input(served), model_run_input(r), N * d * sizeof(float));
    const float *got = model_forward(m, served, N, false);
    for (int i = 0; i < N * 3; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-5f, "p[%d]: folded %.8g, unfolded %.8g", i,
                      got[i], want[i]);
    free(params);
    model_run_free(r);
    model_run_free(served);
    model_free(m);
}
END_TEST

/* A layer with no bias (use_bias false: its kernel alone) cannot take the
 * shift: it refuses, its weights untouched, and the normalization runs. */
START_TEST(test_no_fold_without_bias)
{
    Layer dense = {.type = LAYER_DENSE, .in = shape_make(1, 1, 3), .param_count = 6};
    dense.cfg.dense.units = 2;
    Layer conv = {.type = LAYER_CONV2D, .in = shape_make(4, 4, 3), .param_count = 6};
    conv.cfg.conv = (Conv2dConfig){.filters = 2, .win = {1, 1, 1, 1, false, 0, 0}};
    const Layer *layers[] = {&dense, &conv};
    for (int i = 0; i < 2; i++) {
        float w[6] = {1, 2, 3, 4, 5, 6}, scale[2] = {2, 2}, shift[2] = {1, 1};
        ck_assert(!layer_ops(layers[i]->type)->fold_affine(layers[i], w, scale, shift));
        for (int k = 0; k < 6; k++)
            ck_assert(w[k] == (float)(k + 1));
    }
}
END_TEST

/* A model with nothing to fold serves its trained weights, not a copy. */
START_TEST(test_nothing_to_fold_no_copy)
{
    Model *m = check_util_build_model(
        "{\"name\":\"n\",\"input_shape\":[2,2,1],\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],\"seed\":1}");
    MnError err = {0};
    ck_assert_int_eq(model_fold_for_serving(m, &err), 0);
    ck_assert_ptr_null(m->serve_params);
    model_free(m);
}
END_TEST

/* ---- spec ---- */

typedef struct {
    const char *keys, *message;
} Refusal;

static const Refusal refusals[] = {
    {"\"momentum\":1.5", "layers[1].momentum must be between 0 and 1, got 1.5"},
    {"\"momentum\":-0.1", "layers[1].momentum must be between 0 and 1"},
    {"\"epsilon\":0", "layers[1].epsilon must be between"},
    {"\"epsilon\":\"small\"", "layers[1].epsilon must be a number"},
    {"\"center\":1", "layers[1].center must be true or false"},
    {"\"scale\":null", "layers[1].scale must be true or false"},
    {"\"axis\":-1", "layers[1]: unknown key \"axis\""},
};

START_TEST(test_spec_refusals)
{
    const Refusal *c = &refusals[_i];
    char json[512];
    snprintf(json, sizeof json,
             "{\"name\":\"r\",\"layers\":[{\"type\":\"flatten\"},"
             "{\"type\":\"batch_normalization\",%s},"
             "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}]}",
             c->keys);
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    MnError err = {0};
    ck_assert_int_ne(spec_parse(json, strlen(json), &lim, &s, &err), 0);
    ck_assert_msg(strstr(err.msg, c->message), "%s: got \"%s\"", c->keys, err.msg);
}
END_TEST

START_TEST(test_spec_defaults_as_keras)
{
    Model *m = build("{\"name\":\"k\",\"layers\":[{\"type\":\"flatten\"},"
                     "{\"type\":\"BatchNormalization\"},"
                     "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}]}");
    const Layer *l = &m->spec.layers[1];
    ck_assert_float_eq(l->cfg.bn.momentum, 0.99f);
    ck_assert_float_eq(l->cfg.bn.epsilon, 0.001f);
    ck_assert(l->cfg.bn.center && l->cfg.bn.scale);
    ck_assert_str_eq(l->name, "batch_normalization");
    ck_assert_uint_eq(l->param_count, 2 * 784); /* gamma, beta */
    ck_assert_uint_eq(l->state_count, 2 * 784); /* moving mean, moving variance */
    const float *gamma = m->params + l->param_offset, *mv = m->state + l->state_offset + 784;
    ck_assert(gamma[0] == 1.0f && gamma[784] == 0.0f && mv[0] == 1.0f && m->state[0] == 0.0f);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    model_summary(m, f);
    fclose(f);
    ck_assert_msg(strstr(text, "Trainable params: 9,418\nNon-trainable params: 1,568\n"), "%s",
                  text);
    ck_assert_msg(strstr(text, "Total params: 10,986\n"), "%s", text);
    free(text);
    /* written back as given, and parsed back to the same layer */
    cJSON *j = spec_to_json(&m->spec);
    char *written = cJSON_PrintUnformatted(j);
    ck_assert_msg(strstr(written, "\"momentum\":0.99,\"epsilon\":0.001,\"center\":true,"
                                  "\"scale\":true"), "%s", written);
    Model *back = build(written);
    const BatchNormConfig *b = &back->spec.layers[1].cfg.bn;
    ck_assert(b->momentum == l->cfg.bn.momentum && b->epsilon == l->cfg.bn.epsilon &&
              b->center == l->cfg.bn.center && b->scale == l->cfg.bn.scale);
    model_free(back);
    cJSON_free(written);
    cJSON_Delete(j);
    model_free(m);
}
END_TEST

/* ---- files ---- */

static Model *load_path(const char *path)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    MnError err = {0};
    Model *m = NULL;
    ck_assert_msg(model_load(path, &lim, &m, &err) == 0, "%s", err.msg);
    return m;
}

static unsigned file_version(const char *path)
{
    size_t len;
    unsigned char *b = (unsigned char *)check_util_read_file(path, &len);
    ck_assert(b && len > 12);
    unsigned v = b[8] | b[9] << 8 | b[10] << 16 | (unsigned)b[11] << 24;
    free(b);
    return v;
}

START_TEST(test_file_round_trip_with_moving_statistics)
{
    Model *m = build(grad_specs[1]);
    scramble(m, 41);
    char path[4200], *dir = check_util_tmpdir();
    snprintf(path, sizeof path, "%s/bn.mnm", dir);
    MnError err = {0};
    ck_assert_msg(model_save(m, path, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(file_version(path), MODEL_FILE_VERSION);
    Model *back = load_path(path);
    ck_assert_uint_eq(back->n_state, m->n_state);
    ck_assert_mem_eq(back->params, m->params, m->n_params * sizeof *m->params);
    ck_assert_mem_eq(back->state, m->state, m->n_state * sizeof *m->state);
    model_free(back);
    model_free(m);
    check_util_rmtree(dir);
    free(dir);
}
END_TEST

/* tests/fixtures/model-v1.mnm: written by mnistd at 8b7377c (format
 * version 1, no state) from maxpool2d 4, flatten, dense 10 softmax. */
START_TEST(test_version_1_file_loads)
{
    char path[4200], again[4200], *dir = check_util_tmpdir();
    snprintf(path, sizeof path, "%s/tests/fixtures/model-v1.mnm", check_util_src_dir());
    ck_assert_uint_eq(file_version(path), 1);
    Model *m = load_path(path);
    ck_assert_uint_eq(m->n_params, 500);
    ck_assert_uint_eq(m->n_state, 0);
    MnError err = {0};
    ModelRun *r = model_run_new(m, 1, false, &err);
    for (int i = 0; i < 784; i++)
        model_run_input(r)[i] = (float)(i % 28) / 28.0f;
    const float *p = model_forward(m, r, 1, false);
    float sum = 0.0f;
    for (int c = 0; c < 10; c++)
        sum += p[c];
    ck_assert_float_eq_tol(sum, 1.0f, 1e-5f);
    snprintf(again, sizeof again, "%s/again.mnm", dir);
    ck_assert_msg(model_save(m, again, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(file_version(again), MODEL_FILE_VERSION);
    Model *back = load_path(again);
    ck_assert_mem_eq(back->params, m->params, m->n_params * sizeof *m->params);
    model_run_free(r);
    model_free(back);
    model_free(m);
    check_util_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *batchnorm_suite(void)
{
    Suite *s = suite_create("batchnorm");
    TCase *grad = tcase_create("Backward");
    tcase_set_timeout(grad, 60);
    tcase_add_loop_test(grad, test_backward_against_differences, 0,
                        sizeof grad_specs / sizeof *grad_specs);
    suite_add_tcase(s, grad);
    TCase *fuse = tcase_create("Fused relu");
    tcase_add_test(fuse, test_fused_relu_same_bits);
    suite_add_tcase(s, fuse);
    TCase *lanes = tcase_create("Lanes");
    tcase_set_timeout(lanes, 60);
    tcase_add_test(lanes, test_one_thread_and_two_same_bits);
    tcase_add_test(lanes, test_lanes_use_whole_batch_statistics);
    suite_add_tcase(s, lanes);
    TCase *fold = tcase_create("Folding");
    tcase_add_test(fold, test_folding_equals_unfolded);
    tcase_add_test(fold, test_no_fold_without_bias);
    tcase_add_test(fold, test_nothing_to_fold_no_copy);
    suite_add_tcase(s, fold);
    TCase *spec = tcase_create("Spec");
    tcase_add_loop_test(spec, test_spec_refusals, 0, sizeof refusals / sizeof *refusals);
    tcase_add_test(spec, test_spec_defaults_as_keras);
    suite_add_tcase(s, spec);
    TCase *files = tcase_create("Files");
    tcase_add_test(files, test_file_round_trip_with_moving_statistics);
    tcase_add_test(files, test_version_1_file_loads);
    suite_add_tcase(s, files);
    return s;
}

MN_TEST_MAIN(batchnorm_suite)
