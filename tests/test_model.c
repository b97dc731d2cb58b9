/* test_model.c - the model as a whole: every loss's gradient through
 * model_backward against central differences, a convolution stack run in
 * sample chunks against its samples alone, determinism for a seed, an
 * allocation-free training loop, and the model file (round trip; refusal
 * of truncated, bit-flipped and wrong-version files). */
#include <malloc.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "model.h"
#include "model_dir.h"
#include "model_file.h"
#include "step.h"
#include "train.h"

static Model *build(const char *json) { return check_util_build_model(json); }

/* ---- inputs ---- */

/* Every pixel value becomes the float k / 255 rounds to, whichever way the
 * clone computes it; and a decoded image's unit floats give the same. */
START_TEST(test_pixels_scaled_as_divided)
{
    Model *m = build("{\"name\":\"p\",\"input_shape\":[16,16,1],\"layers\":[{\"type\":\"flatten\"},"
                     "{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}],\"seed\":1}");
    uint8_t pixels[256];
    float x[256], unit[256], from_unit[256];
    for (int k = 0; k < 256; k++)
        pixels[k] = (uint8_t)k;
    model_prepare_inputs(m, pixels, 1, x);
    for (int k = 0; k < 256; k++) {
        float want = (float)k / 255.0f;
        ck_assert_msg(x[k] == want, "pixel %d: %.9g, want %.9g", k, x[k], want);
        unit[k] = want;
    }
    model_prepare_unit_inputs(m, unit, 1, from_unit);
    ck_assert_mem_eq(from_unit, x, sizeof x);
    model_free(m);
}
END_TEST

/* ---- loss gradients through the whole model ---- */

static const struct {
    const char *name;
    const char *json;
} loss_cases[] = {
    {"softmax+crossentropy (fused)",
     "{\"name\":\"g\",\"input_shape\":[2,3,1],\"layers\":[{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"tanh\"},"
     "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],\"seed\":3}"},
    {"sigmoid head + crossentropy (Keras renormalised)",
     "{\"name\":\"g\",\"input_shape\":[2,3,1],\"layers\":[{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"sigmoid\"},"
     "{\"type\":\"dense\",\"units\":4,\"activation\":\"sigmoid\"}],\"seed\":4}"},
    {"softmax + mean squared error",
     "{\"name\":\"g\",\"input_shape\":[2,3,1],\"layers\":[{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"tanh\"},"
     "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],"
     "\"loss\":\"mean_squared_error\",\"seed\":5}"},
    {"linear head + mean squared error",
     "{\"name\":\"g\",\"input_shape\":[2,3,1],\"layers\":[{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"sigmoid\"},"
     "{\"type\":\"dense\",\"units\":4}],\"loss\":\"mse\",\"seed\":6}"},
};

START_TEST(test_loss_gradients)
{
    Model *m = build(loss_cases[_i].json);
    enum { N = 3 };
    Rng rng;
    rng_seed(&rng, 99);
    float x[N * 6];
    for (int i = 0; i < N * 6; i++)
        x[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    uint8_t labels[N] = {0, 3, 2};
    check_util_model_gradients(m, x, labels, N, loss_cases[_i].name);
    model_free(m);
}
END_TEST

/* A convolution stack whose outputs are big per sample runs a few samples
 * at a time through its layers (model.c, stages), and the convolution
 * applies its own activation per chunk, both ways. These stacks run in
 * chunks of 2 samples; the activations are not relu's. */
#define STACK_HEAD                                                                            \
    "{\"name\":\"g\",\"input_shape\":[28,28,1],\"layers\":["                                   \
    "{\"type\":\"conv2d\",\"filters\":64,\"kernel_size\":2,\"padding\":\"same\","              \
    "\"activation\":\"sigmoid\"},"
#define STACK_TAIL                                                                            \
    "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":1,\"activation\":\"tanh\"},"          \
    "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],"    \
    "\"seed\":8}"
/* with the tutorial's pooling */
static const char pooled_stack_json[] =
    STACK_HEAD "{\"type\":\"maxpool2d\",\"pool_size\":2}," STACK_TAIL;
/* smooth everywhere, for central differences (a max has kinks, where
 * they disagree with the true gradient by a few percent) */
static const char smooth_stack_json[] =
    STACK_HEAD "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":2,\"strides\":2,"
               "\"activation\":\"tanh\"}," STACK_TAIL;

enum { STACK_N = 5, STACK_PIX = 28 * 28, STACK_K = 3 };

static void stack_inputs(float *x)
{
    Rng rng;
    rng_seed(&rng, 7);
    for (int i = 0; i < STACK_N * STACK_PIX; i++)
        x[i] = rng_uniform(&rng);
}

static const uint8_t stack_labels[STACK_N] = {0, 2, 1, 1, 0};

/* Each sample's output and gradient from the chunked batch are what the
 * sample gives alone. */
START_TEST(test_conv_stack_chunks_match_samples_alone)
{
    Model *m = build(pooled_stack_json);
    MnError err = {0};
    ModelRun *r = model_run_new(m, STACK_N, true, &err), *one = model_run_new(m, 1, true, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(one);
    static float x[STACK_N * STACK_PIX];
    stack_inputs(x);
    float *batch_grads = calloc(m->n_params, sizeof(float));
    float *alone_grads = calloc(m->n_params, sizeof(float));
    memcpy(model_run_input(r), x, sizeof x);
    const float *batch_out = model_forward(m, r, STACK_N, true);
    model_backward(m, r, stack_labels, STACK_N, STACK_N, batch_grads);
    for (int b = 0; b < STACK_N; b++) {
        memcpy(model_run_input(one), x + b * STACK_PIX, STACK_PIX * sizeof *x);
        const float *alone = model_forward(m, one, 1, true);
        for (int k = 0; k < STACK_K; k++)
            ck_assert_float_eq_tol(batch_out[b * STACK_K + k], alone[k], 1e-6f);
        model_backward(m, one, stack_labels + b, 1, STACK_N, alone_grads);
    }
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert_msg(fabsf(batch_grads[i] - alone_grads[i]) <=
                          1e-4f * fmaxf(1e-3f, fabsf(alone_grads[i])),
                      "dparam[%zu]: batch %.7g, samples alone %.7g", i, batch_grads[i],
                      alone_grads[i]);
    free(batch_grads);
    free(alone_grads);
    model_run_free(one);
    model_run_free(r);
    model_free(m);
}
END_TEST

START_TEST(test_conv_stack_gradients)
{
    Model *m = build(smooth_stack_json);
    static float x[STACK_N * STACK_PIX];
    stack_inputs(x);
    /* every third parameter: all of each layer's kinds, in a second */
    check_util_model_gradients_every(m, x, stack_labels, STACK_N, 3, "conv stack");
    model_free(m);
}
END_TEST

/* The fused loss stays finite where log(softmax) in float would not. */
START_TEST(test_fused_loss_extreme_logits)
{
    Model *m = build("{\"name\":\"g\",\"input_shape\":[1,1,2],\"layers\":[{\"type\":\"dense\","
                     "\"units\":3,\"activation\":\"softmax\"}]}");
    MnError err = {0};
    ModelRun *r = model_run_new(m, 1, true, &err);
    /* Weights that give logits 400, -400 and 0: float softmax underflows to 0. */
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = 0.0f;
    m->params[0] = 400.0f;
    m->params[4] = -400.0f;
    float *x = model_run_input(r);
    x[0] = 1.0f;
    x[1] = 1.0f;
    model_forward(m, r, 1, true);
    uint8_t label = 1;
    float grads[9] = {0};
    double loss = model_backward(m, r, &label, 1, 1, grads);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(loss, 800.0, 1e-3); /* logsumexp(400, -400, 0) - (-400) */
    for (int i = 0; i < 9; i++)
        ck_assert(isfinite(grads[i]));
    model_run_free(r);
    model_free(m);
}
END_TEST

/* ---- a small synthetic dataset: class = which quadrant is brightest ---- */

static void make_dataset(Dataset *d, int n, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "quadrants");
    d->n = n;
    d->shape = shape_make(8, 8, 1);
    d->images = malloc((size_t)n * 64);
    d->labels = malloc((size_t)n);
    d->n_classes = 4;
    for (int c = 0; c < 4; c++)
        snprintf(d->class_names[c], sizeof d->class_names[c], "q%d", c);
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        int c = (int)rng_below(&rng, 4);
        d->labels[i] = (uint8_t)c;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                int q = (y >= 4) * 2 + (x >= 4);
                int v = (int)rng_below(&rng, 120) + (q == c ? 120 : 0);
                d->images[i * 64 + y * 8 + x] = (uint8_t)v;
            }
    }
}

static void free_dataset(Dataset *d)
{
    free(d->images);
    free(d->labels);
}

static const char *const SMALL_SPEC =
    "{\"name\":\"small\",\"input_shape\":[8,8,1],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"strides\":2,\"padding\":\"same\","
    "\"activation\":\"relu\"},{\"type\":\"maxpool2d\",\"pool_size\":2},"
    "{\"type\":\"flatten\"},{\"type\":\"dropout\",\"rate\":0.2},"
    "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],"
    "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01},\"epochs\":3,\"batch_size\":16,"
    "\"validation_split\":0.2,\"preprocess\":\"standardize\",\"seed\":7}";

static Model *train_small(const char *json, const Dataset *d, TrainResult *tr)
{
    Model *m = build(json);
    MnError err = {0};
    ck_assert_msg(train_fit(m, d, NULL, NULL, tr, &err) == 0, "%s", err.msg);
    return m;
}

START_TEST(test_training_deterministic)
{
    Dataset d;
    make_dataset(&d, 400, 1);
    TrainResult t1, t2;
    Model *a = train_small(SMALL_SPEC, &d, &t1);
    Model *b = train_small(SMALL_SPEC, &d, &t2);
    ck_assert_uint_eq(a->n_params, b->n_params);
    ck_assert_msg(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0,
                  "two trainings with one seed differ");
    ck_assert(t1.history[2].accuracy == t2.history[2].accuracy);
    ck_assert(t1.history[2].val_loss == t2.history[2].val_loss);
    /* ... and it learned something: 4 classes, chance is 25%. */
    ck_assert_msg(t1.history[2].val_accuracy > 0.6, "val_accuracy %.3f",
                  t1.history[2].val_accuracy);

    char other[1024];
    snprintf(other, sizeof other, "%s", SMALL_SPEC);
    char *seed = strstr(other, "\"seed\":7");
    seed[7] = '8';
    TrainResult t3;
    Model *c = train_small(other, &d, &t3);
    ck_assert_msg(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0,
                  "another seed gave the same weights");
    train_result_free(&t1);
    train_result_free(&t2);
    train_result_free(&t3);
    model_free(a);
    model_free(b);
    model_free(c);
    free_dataset(&d);
}
END_TEST

/* ---- lanes: a batch in two halves, on one thread or two ---- */

/* Big enough per batch for two lanes (step.c's LANE_MIN_MACS). */
static const char *const LANES_SPEC =
    "{\"name\":\"lanes\",\"input_shape\":[8,8,1],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":32,\"kernel_size\":3,\"padding\":\"same\","
    "\"activation\":\"relu\"},{\"type\":\"conv2d\",\"filters\":32,\"kernel_size\":3,"
    "\"padding\":\"same\",\"activation\":\"relu\"},{\"type\":\"maxpool2d\",\"pool_size\":2},"
    "{\"type\":\"flatten\"},{\"type\":\"dropout\",\"rate\":0.2},"
    "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],"
    "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01},\"epochs\":2,\"batch_size\":16,"
    "\"seed\":5}";

/* Augmentation draws each lane's transforms from the lane's own Rng: first
 * and mid-network (where its backward matters). */
static const char *const AUGMENTED_LANES_SPEC =
    "{\"name\":\"augmented\",\"input_shape\":[8,8,1],\"layers\":["
    "{\"type\":\"random_translation\",\"height_factor\":0.2,\"width_factor\":0.2},"
    "{\"type\":\"random_zoom\",\"height_factor\":0.2,\"fill_mode\":\"constant\"},"
    "{\"type\":\"conv2d\",\"filters\":32,\"kernel_size\":3,\"padding\":\"same\","
    "\"activation\":\"relu\"},"
    "{\"type\":\"random_rotation\",\"factor\":0.1,\"fill_mode\":\"nearest\"},"
    "{\"type\":\"random_flip\",\"mode\":\"horizontal\"},"
    "{\"type\":\"conv2d\",\"filters\":32,\"kernel_size\":3,\"padding\":\"same\","
    "\"activation\":\"relu\"},{\"type\":\"maxpool2d\",\"pool_size\":2},"
    "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],"
    "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01},\"epochs\":2,\"batch_size\":16,"
    "\"seed\":5}";

static const char *const lanes_specs[] = {LANES_SPEC, AUGMENTED_LANES_SPEC};

START_TEST(test_lanes_same_weights_on_any_threads)
{
    Dataset d;
    make_dataset(&d, 200, 4);
    Model *one = build(lanes_specs[_i]), *two = build(lanes_specs[_i]);
    TrainCallbacks cb1 = {.threads = 1}, cb2 = {.threads = 2};
    TrainResult t1, t2;
    MnError err = {0};
    ck_assert_msg(train_fit(one, &d, NULL, &cb1, &t1, &err) == 0, "%s", err.msg);
    ck_assert_msg(train_fit(two, &d, NULL, &cb2, &t2, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(t1.lanes, 2);
    ck_assert_msg(memcmp(one->params, two->params, one->n_params * sizeof(float)) == 0,
                  "one thread and two gave different weights");
    ck_assert(t1.history[1].loss == t2.history[1].loss);
    train_result_free(&t1);
    train_result_free(&t2);
    model_free(one);
    model_free(two);
    free_dataset(&d);
}
END_TEST

/* The lanes' gradient of n samples against one run's over the whole batch. */
static void check_lanes_gradient(const char *spec, int n, int want_slice)
{
    Dataset d;
    make_dataset(&d, n, 5);
    Model *m = build(spec);
    MnError err = {0};
    StepLanes *lanes = step_lanes_new(m, n, 2, &err);
    ck_assert_ptr_nonnull(lanes);
    ck_assert_int_eq(step_lanes_count(lanes), 2);
    ck_assert_int_eq(step_lanes_slice(lanes), want_slice);
    float *split = calloc(m->n_params, sizeof *split), *whole = calloc(m->n_params, sizeof *whole);
    Metrics mt;
    metrics_reset(&mt, 4, NULL);
    double loss_split = step_lanes_run(lanes, &d, NULL, 0, n, split, &mt);
    ck_assert_int_eq(mt.n, n);

    ModelRun *r = model_run_new(m, n, true, &err);
    uint8_t *labels = malloc((size_t)n);
    step_gather(m, &d, NULL, 0, n, model_run_input(r), labels);
    const float *out = model_forward(m, r, n, true);
    double loss_whole = model_backward(m, r, labels, n, n, whole);
    Metrics whole_mt;
    metrics_reset(&whole_mt, 4, NULL);
    metrics_add(&whole_mt, out, labels, n, loss_whole);
    ck_assert_double_eq_tol(loss_split, loss_whole, 1e-6);
    ck_assert_double_eq_tol(metrics_loss(&mt), loss_whole, 1e-6);
    ck_assert_int_eq(mt.correct, whole_mt.correct);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert_msg(fabsf(split[i] - whole[i]) <= 1e-5f + 1e-4f * fabsf(whole[i]),
                      "dparam[%zu]: lanes %.8g, whole batch %.8g", i, split[i], whole[i]);
    free(split);
    free(whole);
    free(labels);
    model_run_free(r);
    step_lanes_free(lanes);
    model_free(m);
    free_dataset(&d);
}

/* The two halves' gradients add up to the whole batch's (dropout off: the
 * halves draw other masks than one run would). */
START_TEST(test_lanes_gradient_is_the_batch_gradient)
{
    char spec[1024];
    snprintf(spec, sizeof spec, "%s", LANES_SPEC);
    memcpy(strstr(spec, "\"rate\":0.2"), "\"rate\":0.0", 10);
    check_lanes_gradient(spec, 15, 8); /* each half in one slice */
}
END_TEST

/* A network whose activations outgrow the cache runs each half in slices
 * (8x8x512 after the first layer: 164 KB a sample, 25 to a 4 MiB slice);
 * the slices' gradients still add up to the batch's. */
START_TEST(test_lane_slices_add_up_to_the_batch_gradient)
{
    check_lanes_gradient("{\"name\":\"slices\",\"input_shape\":[8,8,1],\"layers\":["
                         "{\"type\":\"conv2d\",\"filters\":512,\"kernel_size\":1,"
                         "\"activation\":\"relu\"},{\"type\":\"maxpool2d\",\"pool_size\":2},"
                         "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":4,"
                         "\"activation\":\"softmax\"}]}",
                         80, 25);
}
END_TEST

/* ---- the training loop allocates nothing ---- */

typedef struct {
    size_t at_batch2;
    size_t at_last;
    int batches_seen;
} HeapWatch;

static void watch_batch(const TrainProgress *p, void *ctx)
{
    HeapWatch *w = ctx;
    size_t used = mallinfo2().uordblks;
    w->batches_seen++;
    if (p->epoch == 1 && p->batch == 2)
        w->at_batch2 = used;
    if (p->epoch == p->epochs && p->batch == p->batches)
        w->at_last = used;
}

START_TEST(test_training_loop_allocates_nothing)
{
    Dataset d;
    make_dataset(&d, 400, 2);
    Model *m = build(SMALL_SPEC);
    HeapWatch w = {0};
    TrainCallbacks cb = {watch_batch, NULL, &w, NULL, 1};
    TrainResult tr;
    MnError err = {0};
    /* No validation here: evaluation between epochs is outside the batch loop anyway. */
    m->spec.validation_split = 0.0f;
    ck_assert_int_eq(train_fit(m, &d, NULL, &cb, &tr, &err), 0);
    ck_assert_int_gt(w.batches_seen, 50);
    ck_assert_msg(w.at_batch2 == w.at_last, "heap in use grew from %zu to %zu bytes during training",
                  w.at_batch2, w.at_last);
    train_result_free(&tr);
    model_free(m);
    free_dataset(&d);
}
END_TEST

/* ---- early stopping and cancellation ---- */

START_TEST(test_early_stopping_and_restore)
{
    Dataset d;
    make_dataset(&d, 200, 3);
    /* min_delta far above any change: epoch 1 is the only "improvement". */
    Model *m = build("{\"name\":\"es\",\"input_shape\":[8,8,1],\"layers\":[{\"type\":\"flatten\"},"
                     "{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}],"
                     "\"epochs\":10,\"validation_split\":0.25,\"seed\":1,"
                     "\"early_stopping\":{\"monitor\":\"val_loss\",\"patience\":2,"
                     "\"min_delta\":100,\"restore_best\":true}}");
    TrainResult tr;
    MnError err = {0};
    ck_assert_int_eq(train_fit(m, &d, NULL, NULL, &tr, &err), 0);
    ck_assert_int_eq(tr.epochs_run, 3);
    ck_assert(tr.stopped_early);
    ck_assert_int_eq(tr.best_epoch, 1);
    /* Restored weights score epoch 1's validation loss again. */
    Dataset val = d;
    val.n = 50;
    val.images = d.images + 150 * 64;
    val.labels = d.labels + 150;
    EvalResult ev;
    ck_assert_int_eq(train_evaluate(m, &val, 0, &ev, &err), 0);
    ck_assert_double_eq_tol(ev.loss, tr.history[0].val_loss, 1e-6);
    eval_result_free(&ev);
    train_result_free(&tr);
    model_free(m);
    free_dataset(&d);
}
END_TEST

static void cancel_at_3(const TrainProgress *p, void *ctx)
{
    if (p->batch == 3)
        atomic_store((atomic_bool *)ctx, true);
}

START_TEST(test_cancellation)
{
    Dataset d;
    make_dataset(&d, 200, 4);
    Model *m = build(SMALL_SPEC);
    atomic_bool cancel = false;
    TrainCallbacks cb = {cancel_at_3, NULL, &cancel, &cancel, 1};
    TrainResult tr;
    MnError err = {0};
    ck_assert_int_eq(train_fit(m, &d, NULL, &cb, &tr, &err), MN_ECANCELLED);
    ck_assert_ptr_nonnull(strstr(err.msg, "cancelled"));
    model_free(m);
    free_dataset(&d);
}
END_TEST

/* ---- model files ---- */

static char *tmpdir;

static void files_setup(void) { tmpdir = check_util_tmpdir(); }
static void files_teardown(void)
{
    check_util_rmtree(tmpdir);
    free(tmpdir);
}

static Model *trained_for_file(void)
{
    Dataset d;
    make_dataset(&d, 200, 5);
    TrainResult tr;
    Model *m = train_small(SMALL_SPEC, &d, &tr);
    const char *names[4] = {"north-west", "north-east", "south-west", "south-east"};
    MnError err = {0};
    ck_assert_int_eq(model_set_class_names(m, names, 4, &err), 0);
    m->meta_json = strdup("{\"test\":{\"accuracy\":0.5}}");
    train_result_free(&tr);
    free_dataset(&d);
    return m;
}

START_TEST(test_model_file_round_trip)
{
    Model *m = trained_for_file();
    char path[4096];
    snprintf(path, sizeof path, "%s/v1.mnm", tmpdir);
    MnError err = {0};
    ck_assert_msg(model_save(m, path, &err) == 0, "%s", err.msg);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *back = NULL;
    ck_assert_msg(model_load(path, &lim, &back, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(back->n_params, m->n_params);
    ck_assert(memcmp(back->params, m->params, m->n_params * sizeof(float)) == 0);
    ck_assert_str_eq(back->class_names[2], "south-west");
    ck_assert_ptr_nonnull(back->input_mean);
    ck_assert(memcmp(back->input_mean, m->input_mean, 64 * sizeof(float)) == 0);
    ck_assert(memcmp(back->input_std, m->input_std, 64 * sizeof(float)) == 0);
    ck_assert_ptr_nonnull(strstr(back->meta_json, "\"accuracy\":0.5"));
    ck_assert_str_eq(back->spec.name, "small");
    ck_assert_int_eq(back->spec.n_layers, 5);
    /* no temporary file is left behind */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/v1.mnm.tmp.%ld", tmpdir, (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    model_free(back);
    model_free(m);
}
END_TEST

/* use_bias false: the file holds only the weights the spec has (conv
 * 3*3*1*4 = 36, dense 4*4*4*3 = 192, no biases), and they load back with
 * the spec that says so. */
START_TEST(test_model_file_round_trip_without_bias)
{
    static const char *const json =
        "{\"name\":\"nobias\",\"input_shape\":[6,6,1],\"layers\":["
        "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3,\"use_bias\":false,"
        "\"activation\":\"gelu\"},{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":3,\"use_bias\":false,\"activation\":\"softmax\"}]}";
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(spec_parse(json, strlen(json), &lim, &s, &err) == 0, "%s", err.msg);
    Model *m = NULL;
    ck_assert_msg(model_build(&s, &lim, &m, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(m->n_params, 36 + 192);
    ck_assert_uint_eq(m->spec.layers[2].param_offset, 36);
    char path[4096];
    snprintf(path, sizeof path, "%s/v1.mnm", tmpdir);
    ck_assert_msg(model_save(m, path, &err) == 0, "%s", err.msg);
    Model *back = NULL;
    ck_assert_msg(model_load(path, &lim, &back, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(back->n_params, m->n_params);
    ck_assert(memcmp(back->params, m->params, m->n_params * sizeof(float)) == 0);
    ck_assert(back->spec.layers[0].cfg.conv.no_bias);
    ck_assert(back->spec.layers[2].cfg.dense.no_bias);
    ck_assert_int_eq(back->spec.layers[0].act, ACT_GELU);
    model_free(back);
    model_free(m);
}
END_TEST

static unsigned char *saved_bytes(size_t *len)
{
    Model *m = trained_for_file();
    char path[4096];
    snprintf(path, sizeof path, "%s/v1.mnm", tmpdir);
    MnError err = {0};
    ck_assert_int_eq(model_save(m, path, &err), 0);
    model_free(m);
    unsigned char *buf = (unsigned char *)check_util_read_file(path, len);
    ck_assert_ptr_nonnull(buf);
    return buf;
}

START_TEST(test_model_file_truncated_refused)
{
    size_t len;
    unsigned char *buf = saved_bytes(&len);
    SpecLimits lim;
    spec_limits_default(&lim);
    size_t cuts[] = {0, 4, 15, 16, 100, len / 2, len - 5, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        MnError err = {0};
        Model *m = NULL;
        int rc = model_load_buffer(buf, cuts[i], "cut.mnm", &lim, &m, &err);
        ck_assert_msg(rc == MN_ECORRUPT, "cut at %zu: rc %d (%s)", cuts[i], rc, err.msg);
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(strstr(err.msg, "cut.mnm"));
    }
    /* and through a real file, whose name the message carries */
    char path[4096];
    snprintf(path, sizeof path, "%s/v2.mnm", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, len - 10, f);
    fclose(f);
    MnError err = {0};
    Model *m = NULL;
    ck_assert_int_eq(model_load(path, &lim, &m, &err), MN_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    free(buf);
}
END_TEST

START_TEST(test_model_file_bit_flips_refused)
{
    size_t len;
    unsigned char *buf = saved_bytes(&len);
    SpecLimits lim;
    spec_limits_default(&lim);
    /* a flip in the header, in the weights, in the checksum itself */
    size_t where[] = {20, 40, len / 2, len - 100, len - 2};
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        buf[where[i]] ^= 0x10;
        MnError err = {0};
        Model *m = NULL;
        int rc = model_load_buffer(buf, len, "flip.mnm", &lim, &m, &err);
        ck_assert_msg(rc == MN_ECORRUPT, "flip at %zu: rc %d", where[i], rc);
        ck_assert_ptr_nonnull(strstr(err.msg, "checksum"));
        buf[where[i]] ^= 0x10;
    }
    MnError err = {0};
    Model *m = NULL;
    ck_assert_int_eq(model_load_buffer(buf, len, "ok.mnm", &lim, &m, &err), 0);
    model_free(m);
    buf[0] = 'X';
    ck_assert_int_eq(model_load_buffer(buf, len, "magic.mnm", &lim, &m, &err), MN_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
    free(buf);
}
END_TEST

START_TEST(test_model_file_wrong_version_refused)
{
    size_t len;
    unsigned char *buf = saved_bytes(&len);
    SpecLimits lim;
    spec_limits_default(&lim);
    buf[8] = MODEL_FILE_VERSION + 1;
    MnError err = {0};
    Model *m = NULL;
    ck_assert_int_eq(model_load_buffer(buf, len, "new.mnm", &lim, &m, &err), MN_ECORRUPT);
    char want[32];
    snprintf(want, sizeof want, "format version %d,", MODEL_FILE_VERSION + 1);
    ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
    free(buf);
}
END_TEST

START_TEST(test_model_dir_versions)
{
    char path[4200];
    int v;
    MnError err = {0};
    ck_assert_int_eq(model_dir_next(tmpdir, "digits", path, sizeof path, &v, &err), 0);
    ck_assert_int_eq(v, 1);
    Model *m = trained_for_file();
    ck_assert_int_eq(model_save(m, path, &err), 0);
    ck_assert_int_eq(model_dir_next(tmpdir, "digits", path, sizeof path, &v, &err), 0);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(model_save(m, path, &err), 0);
    int resolved;
    ck_assert_int_eq(model_dir_path(tmpdir, "digits", 0, path, sizeof path, &resolved, &err), 0);
    ck_assert_int_eq(resolved, 2);
    ck_assert_int_eq(model_dir_path(tmpdir, "digits", 7, path, sizeof path, &resolved, &err),
                     MN_ENOTFOUND);
    char name[64];
    ck_assert_int_eq(model_ref_parse("digits:3", name, sizeof name, &v, &err), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(model_ref_parse("../etc:1", name, sizeof name, &v, &err), MN_EINVAL);
    ck_assert_int_eq(model_ref_parse("digits:x", name, sizeof name, &v, &err), MN_EINVAL);
    model_free(m);
}
END_TEST

/* Writers publishing one name at once (server jobs, training Jobs on a
 * shared volume) each get a version of their own, and leave no temporary
 * file behind. */
typedef struct {
    const Model *m;
    int versions[5];
    int rc;
} Publisher;

static void *publish_five(void *arg)
{
    Publisher *p = arg;
    for (int i = 0; i < 5 && p->rc == 0; i++) {
        char path[4200];
        MnError err = {0};
        p->rc = model_dir_publish(p->m, tmpdir, "shared", path, sizeof path, &p->versions[i],
                                  &err);
    }
    return NULL;
}

START_TEST(test_model_dir_publish_concurrent)
{
    Model *m = trained_for_file();
    enum { WRITERS = 4 };
    Publisher pubs[WRITERS];
    pthread_t threads[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pubs[w] = (Publisher){.m = m};
        ck_assert_int_eq(pthread_create(&threads[w], NULL, publish_five, &pubs[w]), 0);
    }
    bool seen[WRITERS * 5 + 1] = {false};
    for (int w = 0; w < WRITERS; w++) {
        pthread_join(threads[w], NULL);
        ck_assert_int_eq(pubs[w].rc, 0);
        for (int i = 0; i < 5; i++) {
            int v = pubs[w].versions[i];
            ck_assert_msg(v >= 1 && v <= WRITERS * 5 && !seen[v], "version %d given twice", v);
            seen[v] = true;
        }
    }
    SpecLimits lim;
    spec_limits_default(&lim);
    for (int v = 1; v <= WRITERS * 5; v++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shared/v%d.mnm", tmpdir, v);
        Model *back = NULL;
        MnError err = {0};
        ck_assert_msg(model_load(path, &lim, &back, &err) == 0, "%s", err.msg);
        model_free(back);
    }
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s/shared | grep -vxe %s -e %s | wc -l) -eq %d",
             tmpdir, MODEL_DIR_MARK, MODEL_DIR_LOCK, WRITERS * 5);
    ck_assert_msg(system(cmd) == 0, "temporary files left in %s/shared", tmpdir);
    model_free(m);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *inputs = tcase_create("Inputs");
    tcase_add_test(inputs, test_pixels_scaled_as_divided);
    suite_add_tcase(s, inputs);
    TCase *grad = tcase_create("Gradients");
    /* Central differences over a conv stack: seconds on a fast kernel, many
     * more on a CPU whose BLAS falls back to SSE3, or under sanitizers. */
    tcase_set_timeout(grad, 120);
    tcase_add_loop_test(grad, test_loss_gradients, 0, sizeof loss_cases / sizeof *loss_cases);
    tcase_add_test(grad, test_fused_loss_extreme_logits);
    tcase_add_test(grad, test_conv_stack_chunks_match_samples_alone);
    tcase_add_test(grad, test_conv_stack_gradients);
    suite_add_tcase(s, grad);
    TCase *train = tcase_create("Training");
    tcase_set_timeout(train, 120);
    tcase_add_test(train, test_training_deterministic);
    tcase_add_test(train, test_training_loop_allocates_nothing);
    tcase_add_test(train, test_early_stopping_and_restore);
    tcase_add_test(train, test_cancellation);
    tcase_add_loop_test(train, test_lanes_same_weights_on_any_threads, 0,
                        sizeof lanes_specs / sizeof *lanes_specs);
    tcase_add_test(train, test_lanes_gradient_is_the_batch_gradient);
    tcase_add_test(train, test_lane_slices_add_up_to_the_batch_gradient);
    suite_add_tcase(s, train);
    TCase *files = tcase_create("Files");
    tcase_add_checked_fixture(files, files_setup, files_teardown);
    tcase_set_timeout(files, 60);
    tcase_add_test(files, test_model_file_round_trip);
    tcase_add_test(files, test_model_file_round_trip_without_bias);
    tcase_add_test(files, test_model_file_truncated_refused);
    tcase_add_test(files, test_model_file_bit_flips_refused);
    tcase_add_test(files, test_model_file_wrong_version_refused);
    tcase_add_test(files, test_model_dir_versions);
    tcase_add_test(files, test_model_dir_publish_concurrent);
    suite_add_tcase(s, files);
    return s;
}

MN_TEST_MAIN(model_suite)
