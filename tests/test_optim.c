/* test_optim.c - optimisation as Keras does it: the schedules' rates at
 * chosen steps, one hand-computed step of each optimizer option, label
 * smoothing's gradient against central differences, ReduceLROnPlateau on
 * a scripted val_loss, the learning rate in the history, refusals that
 * name the key, and determinism with all of it on. Expected values are
 * worked out by hand from Keras 3's formulas (the comments show how). */
#include <cJSON.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "plateau.h"
#include "rng.h"
#include "schedule.h"
#include "spec.h"
#include "train.h"
#include "train_report.h"

/* A spec with this optimizer (and extra top-level keys), parsed. */
static int parse_with(const char *optimizer, const char *extra, ModelSpec *s, MnError *err)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"name\":\"o\",\"input_shape\":[6,6,1],\"layers\":[{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}],"
             "\"optimizer\":%s%s%s}",
             optimizer, *extra ? "," : "", extra);
    SpecLimits lim;
    spec_limits_default(&lim);
    return spec_parse(json, strlen(json), &lim, s, err);
}

static LrSchedule schedule_of(const char *optimizer)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(parse_with(optimizer, "", &s, &err) == 0, "%s: %s", optimizer, err.msg);
    return s.optim.schedule;
}

/* ---- schedules ---- */

static const struct {
    const char *optimizer;
    long long step;
    double rate;
} schedule_cases[] = {
    /* CosineDecay(0.1, 100, alpha=0.1): 0.1 * (0.9 * 0.5 (1 + cos(pi t / 100)) + 0.1), t <= 100 */
#define COSINE "{\"type\":\"sgd\",\"learning_rate\":{\"class_name\":\"CosineDecay\",\"config\":" \
    "{\"initial_learning_rate\":0.1,\"decay_steps\":100,\"alpha\":0.1,\"name\":\"CosineDecay\"}," \
    "\"module\":\"keras.optimizers.schedules\",\"registered_name\":null}}"
    {COSINE, 0, 0.1},
    {COSINE, 25, 0.1 * (0.9 * 0.5 * (1.0 + 0.70710678118654752) + 0.1)},
    {COSINE, 50, 0.055},
    {COSINE, 100, 0.01},
    {COSINE, 150, 0.01}, /* past decay_steps: held at the floor */
    /* warmup_steps without warmup_target: ignored, as Keras does */
    {"{\"type\":\"sgd\",\"learning_rate\":{\"type\":\"cosine_decay\",\"initial_learning_rate\":0.1,"
     "\"decay_steps\":100,\"warmup_steps\":10}}", 0, 0.1},
    /* warmup from 0 to 0.1 over 10 steps, then a cosine over 100 from 0.1 to 0 */
#define WARMUP "{\"type\":\"adam\",\"learning_rate\":{\"type\":\"CosineDecay\"," \
    "\"initial_learning_rate\":0,\"decay_steps\":100,\"warmup_target\":0.1,\"warmup_steps\":10}}"
    {WARMUP, 0, 0.0},
    {WARMUP, 5, 0.05},
    {WARMUP, 10, 0.1},
    {WARMUP, 60, 0.05},
    {WARMUP, 110, 0.0},
    {WARMUP, 500, 0.0},
    /* ExponentialDecay(0.1, 10, 0.5): 0.1 * 0.5^(t / 10), floored with staircase */
#define EXPONENTIAL(stair) "{\"type\":\"sgd\",\"learning_rate\":{\"class_name\":\"ExponentialDecay\"," \
    "\"config\":{\"initial_learning_rate\":0.1,\"decay_steps\":10,\"decay_rate\":0.5," \
    "\"staircase\":" stair "}}}"
    {EXPONENTIAL("false"), 0, 0.1},
    {EXPONENTIAL("false"), 5, 0.070710678118654752},
    {EXPONENTIAL("false"), 20, 0.025},
    {EXPONENTIAL("true"), 15, 0.05},
    {EXPONENTIAL("true"), 9, 0.1},
    /* PiecewiseConstantDecay([10, 20], [1, 0.5, 0.1]): a boundary belongs to the step before */
#define PIECEWISE "{\"type\":\"sgd\",\"learning_rate\":{\"type\":\"piecewise_constant_decay\"," \
    "\"boundaries\":[10,20],\"values\":[1,0.5,0.1]}}"
    {PIECEWISE, 0, 1.0},
    {PIECEWISE, 10, 1.0},
    {PIECEWISE, 11, 0.5},
    {PIECEWISE, 20, 0.5},
    {PIECEWISE, 21, 0.1},
};

START_TEST(test_schedule_rates)
{
    LrSchedule s = schedule_of(schedule_cases[_i].optimizer);
    float got = schedule_rate(&s, schedule_cases[_i].step);
    ck_assert_msg(fabs(got - schedule_cases[_i].rate) <= 1e-7 * fmax(1.0, schedule_cases[_i].rate),
                  "case %d, step %lld: %.9g, want %.9g", _i, schedule_cases[_i].step, got,
                  schedule_cases[_i].rate);
}
END_TEST

/* What spec_to_json writes parses back to the same schedule, in Keras's form. */
START_TEST(test_schedule_round_trip)
{
    const char *optimizers[] = {COSINE, WARMUP, EXPONENTIAL("true"), PIECEWISE};
    for (int k = 0; k < 4; k++) {
        ModelSpec a, b;
        MnError err = {0};
        ck_assert_int_eq(parse_with(optimizers[k], "", &a, &err), 0);
        cJSON *j = spec_to_json(&a);
        cJSON *rate = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "optimizer"), "learning_rate");
        ck_assert(cJSON_IsString(cJSON_GetObjectItem(rate, "class_name")));
        char *text = cJSON_PrintUnformatted(j);
        SpecLimits lim;
        spec_limits_default(&lim);
        ck_assert_msg(spec_parse(text, strlen(text), &lim, &b, &err) == 0, "%s: %s", text, err.msg);
        for (long long t = 0; t < 130; t++)
            ck_assert(schedule_rate(&a.optim.schedule, t) == schedule_rate(&b.optim.schedule, t));
        free(text);
        cJSON_Delete(j);
    }
}
END_TEST

/* The rest of the new keys survive spec_to_json and back (the model file keeps the spec so). */
START_TEST(test_spec_round_trip)
{
    ModelSpec a, b;
    MnError err = {0};
    ck_assert_int_eq(parse_with("{\"type\":\"adamw\",\"weight_decay\":0.01,\"clipnorm\":2}",
                                "\"loss\":{\"type\":\"categorical_crossentropy\",\"label_smoothing\":0.1},"
                                "\"validation_split\":0.1,\"reduce_lr_on_plateau\":{\"monitor\":\"val_accuracy\","
                                "\"factor\":0.2,\"patience\":3,\"cooldown\":2,\"min_lr\":1e-5,\"mode\":\"max\"}",
                                &a, &err), 0);
    cJSON *j = spec_to_json(&a);
    char *text = cJSON_PrintUnformatted(j);
    SpecLimits lim;
    spec_limits_default(&lim);
    ck_assert_msg(spec_parse(text, strlen(text), &lim, &b, &err) == 0, "%s: %s", text, err.msg);
    ck_assert_int_eq(b.optim.type, OPT_ADAMW);
    ck_assert_float_eq(b.optim.weight_decay, 0.01f);
    ck_assert_float_eq(b.optim.clipnorm, 2.0f);
    ck_assert_float_eq(b.label_smoothing, 0.1f);
    ck_assert(b.reduce_lr.enabled && b.reduce_lr.maximize && b.reduce_lr.monitor_accuracy);
    ck_assert(b.reduce_lr.factor == 0.2 && b.reduce_lr.patience == 3 && b.reduce_lr.cooldown == 2);
    ck_assert(b.reduce_lr.min_lr == 1e-5 && b.reduce_lr.mode_given);
    free(text);
    cJSON_Delete(j);
}
END_TEST

/* A learning-rate grid replaces the schedule's peak: initial rate, or warmup target. */
START_TEST(test_grid_replaces_peak)
{
    ModelSpec s, t;
    MnError err = {0};
    ck_assert_int_eq(parse_with(WARMUP, "\"grid\":{\"learning_rate\":[0.2,0.4]}", &s, &err), 0);
    ck_assert_int_eq(spec_grid_size(&s), 2);
    spec_grid_trial(&s, 1, &t);
    ck_assert_float_eq(t.optim.learning_rate, 0.4f);
    ck_assert_float_eq(schedule_rate(&t.optim.schedule, 10), 0.4f);
    ck_assert_float_eq(schedule_rate(&t.optim.schedule, 5), 0.2f); /* halfway up from 0 */
    ck_assert_int_eq(parse_with(EXPONENTIAL("false"), "\"grid\":{\"learning_rate\":[0.2]}", &s, &err), 0);
    spec_grid_trial(&s, 0, &t);
    ck_assert_float_eq(schedule_rate(&t.optim.schedule, 0), 0.2f);
    /* no schedule: the rate itself, as before */
    ck_assert_int_eq(parse_with("\"sgd\"", "\"grid\":{\"learning_rate\":[0.3]}", &s, &err), 0);
    spec_grid_trial(&s, 0, &t);
    ck_assert_float_eq(t.optim.learning_rate, 0.3f);
}
END_TEST

/* ---- one step of each option on three parameters: a kernel of 2, a bias of 1 ---- */

static const ParamSpan SPANS[] = {{0, 2}, {2, 1}};

static void step_once(const char *optimizer, float p[3], float g[3], int steps)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(parse_with(optimizer, "", &s, &err) == 0, "%s", err.msg);
    Optimizer o;
    ck_assert_int_eq(optim_init(&o, &s.optim, 3, SPANS, 2, &err), 0);
    for (int k = 0; k < steps; k++) {
        float gk[3] = {g[0], g[1], g[2]};
        optim_step(&o, p, gk);
        if (k == 0)
            memcpy(g, gk, sizeof gk); /* the first step's clipped gradient */
    }
    optim_free(&o);
}

#define ck_assert_near(got, want) \
    ck_assert_msg(fabs((double)(got) - (want)) < 1e-6, "%s = %.9g, want %.9g", #got, (double)(got), \
                  (double)(want))

START_TEST(test_sgd_weight_decay)
{
    /* p - p * 0.5 * 0.1 first, then - 0.1 g: [0.95 - 0.05, -1.9 - 0.05, 2.85 - 0.1] */
    float p[3] = {1, -2, 3}, g[3] = {0.5f, 0.5f, 1};
    step_once("{\"type\":\"sgd\",\"learning_rate\":0.1,\"weight_decay\":0.5}", p, g, 1);
    ck_assert_near(p[0], 0.9);
    ck_assert_near(p[1], -1.95);
    ck_assert_near(p[2], 2.75);
}
END_TEST

START_TEST(test_adamw_step)
{
    /* AdamW's default weight_decay 0.004: p = 1 - 1 * 0.004 * 0.01 = 0.99996; then Adam's
     * first step, m = 0.05, v = 0.00025, lr_t = 0.01 sqrt(0.001) / 0.1, so
     * p -= lr_t * 0.05 / (sqrt(0.00025) + 1e-7). */
    float p[3] = {1, 0, -1}, g[3] = {0.5f, 0, 0};
    step_once("{\"type\":\"adamw\",\"learning_rate\":0.01}", p, g, 1);
    double lr_t = 0.01 * sqrt(0.001) / 0.1;
    ck_assert_near(p[0], 0.99996 - lr_t * 0.05 / (sqrt(0.00025) + 1e-7));
    ck_assert_near(p[1], 0.0);
    ck_assert_near(p[2], -1.0 + 0.00004); /* decayed though its gradient is 0, as Keras does */
}
END_TEST

/* Clipping with lr 1 and nothing else: the step is minus the clipped gradient. */
static const struct {
    const char *optimizer;
    float g[3], want[3];
} clip_cases[] = {
    /* per variable: kernel [3, 4] (norm 5) becomes [0.6, 0.8]; bias [0.5] is under 1 and stays */
    {"{\"type\":\"sgd\",\"learning_rate\":1,\"clipnorm\":1}", {3, 4, 0.5f}, {0.6f, 0.8f, 0.5f}},
    /* all together: norm sqrt(9 + 0 + 16) = 5, so every gradient times 1/5 */
    {"{\"type\":\"sgd\",\"learning_rate\":1,\"global_clipnorm\":1}", {3, 0, 4}, {0.6f, 0, 0.8f}},
    /* under the norm: untouched */
    {"{\"type\":\"sgd\",\"learning_rate\":1,\"clipnorm\":10}", {3, 4, 0.5f}, {3, 4, 0.5f}},
};

START_TEST(test_clipping)
{
    float p[3] = {0, 0, 0}, g[3];
    memcpy(g, clip_cases[_i].g, sizeof g);
    step_once(clip_cases[_i].optimizer, p, g, 1);
    for (int k = 0; k < 3; k++) {
        ck_assert_near(g[k], clip_cases[_i].want[k]);
        ck_assert_near(p[k], -clip_cases[_i].want[k]);
    }
}
END_TEST

START_TEST(test_schedule_drives_steps)
{
    /* ExponentialDecay(0.1, 1, 0.5): step 0 at 0.1, step 1 at 0.05, and each
     * step's weight decay uses that step's rate: p -= p * 0.1 * lr, then lr g. */
    float p[3] = {1, 0, 0}, g[3] = {1, 1, 1};
    step_once("{\"type\":\"sgd\",\"weight_decay\":0.1,\"learning_rate\":{\"type\":\"exponential_decay\","
              "\"initial_learning_rate\":0.1,\"decay_steps\":1,\"decay_rate\":0.5}}",
              p, g, 2);
    double p0 = 1.0;
    p0 = p0 - p0 * 0.1 * 0.1 - 0.1;
    p0 = p0 - p0 * 0.1 * 0.05 - 0.05;
    ck_assert_near(p[0], p0);
    ck_assert_near(p[1], -0.1 + 0.1 * 0.1 * 0.05 - 0.05); /* 0, then -0.1 decayed and stepped */
}
END_TEST

/* ---- label smoothing ---- */

/* Central differences of the mean loss against the analytic gradient. */
static void check_loss_gradient(bool fused, float smoothing)
{
    enum { N = 3, K = 5 };
    float z[N * K], d[N * K];
    uint8_t labels[N] = {0, 3, 4};
    Rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < N * K; i++)
        z[i] = fused ? 2.0f * (float)rng_uniform(&rng) - 1.0f : 0.1f + 0.8f * (float)rng_uniform(&rng);
    double (*loss)(const float *, const uint8_t *, int, int, int, float, float *) =
        fused ? loss_softmax_crossentropy : loss_crossentropy;
    loss(z, labels, N, K, N, smoothing, d);
    for (int i = 0; i < N * K; i++) {
        const float h = 1e-3f;
        float keep = z[i];
        z[i] = keep + h;
        double up = loss(z, labels, N, K, N, smoothing, NULL);
        z[i] = keep - h;
        double down = loss(z, labels, N, K, N, smoothing, NULL);
        z[i] = keep;
        double numeric = (up - down) / (2.0 * h);
        ck_assert_msg(fabs(numeric - d[i]) < 2e-4, "%s, ls %.2f, element %d: %.6g analytic, %.6g numeric",
                      fused ? "fused" : "probabilities", smoothing, i, d[i], numeric);
    }
}

START_TEST(test_label_smoothing_gradient)
{
    check_loss_gradient(true, 0.1f);
    check_loss_gradient(true, 0.0f);
    check_loss_gradient(false, 0.2f);
    check_loss_gradient(false, 0.0f);
}
END_TEST

/* Through a whole model: every parameter's gradient with smoothed targets,
 * for the fused softmax head and a sigmoid one, against central differences. */
START_TEST(test_label_smoothing_model_gradients)
{
    static const char *const heads[] = {"softmax", "sigmoid"};
    for (int h = 0; h < 2; h++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"name\":\"ls\",\"input_shape\":[4,4,1],\"layers\":[{\"type\":\"flatten\"},"
                 "{\"type\":\"dense\",\"units\":5,\"activation\":\"tanh\"},"
                 "{\"type\":\"dense\",\"units\":3,\"activation\":\"%s\"}],"
                 "\"loss\":{\"type\":\"categorical_crossentropy\",\"label_smoothing\":0.2}}",
                 heads[h]);
        SpecLimits lim;
        spec_limits_default(&lim);
        ModelSpec s;
        MnError err = {0};
        ck_assert_msg(spec_parse(json, strlen(json), &lim, &s, &err) == 0, "%s", err.msg);
        Model *m = NULL;
        ck_assert_int_eq(model_build(&s, &lim, &m, &err), 0);
        float x[3 * 16];
        uint8_t labels[3] = {0, 2, 1};
        Rng rng;
        rng_seed(&rng, 21);
        for (int i = 0; i < 3 * 16; i++)
            x[i] = 2.0f * rng_uniform(&rng) - 1.0f;
        check_util_model_gradients(m, x, labels, 3, heads[h]);
        model_free(m);
    }
}
END_TEST

START_TEST(test_label_smoothing_value)
{
    /* logits [0, ln 2, ln 5]: softmax [1/8, 2/8, 5/8]; label 2, ls 0.3 over 3
     * classes: targets [0.1, 0.1, 0.8]; loss -sum t log p. */
    float z[3] = {0.0f, (float)log(2.0), (float)log(5.0)};
    uint8_t label = 2;
    double want = -(0.1 * log(1.0 / 8) + 0.1 * log(2.0 / 8) + 0.8 * log(5.0 / 8));
    double got = loss_softmax_crossentropy(z, &label, 1, 3, 1, 0.3f, NULL);
    ck_assert_msg(fabs(got - want) < 1e-6, "%.9g, want %.9g", got, want);
    /* the same targets from the probabilities themselves (a softmax written out) */
    float p[3] = {0.125f, 0.25f, 0.625f};
    ck_assert_msg(fabs(loss_crossentropy(p, &label, 1, 3, 1, 0.3f, NULL) - want) < 1e-6, "unfused");
}
END_TEST

/* ---- ReduceLROnPlateau ---- */

START_TEST(test_plateau_script)
{
    /* factor 0.5, patience 2, min_delta 0.01, cooldown 1, min_lr 0.02, from 0.1.
     * Worked through Keras 3's on_epoch_end epoch by epoch:
     *  0.9 after 1.0 improves; 0.895 is within min_delta (wait 1); 0.95 (wait 2):
     *  0.05, cooldown 1; 0.8 improves; 0.85, 0.85: 0.025; one epoch of cooldown,
     *  then 0.85 twice: max(0.0125, 0.02) = 0.02; at min_lr it stays. */
    static const double val_loss[] = {1.0, 0.9, 0.895, 0.95, 0.8, 0.85,
                                      0.85, 0.85, 0.85, 0.85, 0.85, 0.85};
    static const float want[] = {0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f,
                                 0.025f, 0.025f, 0.02f, 0.02f, 0.02f, 0.02f};
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(parse_with("{\"type\":\"sgd\",\"learning_rate\":0.1}",
                             "\"validation_split\":0.2,\"reduce_lr_on_plateau\":{\"factor\":0.5,"
                             "\"patience\":2,\"min_delta\":0.01,\"cooldown\":1,\"min_lr\":0.02}",
                             &s, &err) == 0, "%s", err.msg);
    ck_assert(s.reduce_lr.enabled && !s.reduce_lr.maximize && s.reduce_lr.monitor_validation);
    Plateau p;
    plateau_start(&p, &s.reduce_lr);
    float lr = s.optim.learning_rate;
    for (int e = 0; e < 12; e++) {
        lr = plateau_epoch_end(&p, val_loss[e], lr);
        ck_assert_msg(lr == want[e], "epoch %d: %.9g, want %.9g", e + 1, lr, want[e]);
    }
    /* defaults are Keras's; an accuracy monitor in auto mode maximises */
    ck_assert_int_eq(parse_with("\"adam\"", "\"reduce_lr_on_plateau\":{\"monitor\":\"accuracy\"}", &s, &err), 0);
    ck_assert(s.reduce_lr.maximize);
    ck_assert_double_eq(s.reduce_lr.factor, 0.1);
    ck_assert_int_eq(s.reduce_lr.patience, 10);
    ck_assert_double_eq(s.reduce_lr.min_delta, 1e-4);
}
END_TEST

/* ---- training: the history's learning rate, and determinism ---- */

/* 6x6 images, 3 classes: the class is the brightest band of two rows. */
static void make_bands(Dataset *d, int n)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "bands");
    d->n = n;
    d->shape = shape_make(6, 6, 1);
    d->n_classes = 3;
    d->images = malloc((size_t)n * 36);
    d->labels = malloc((size_t)n);
    for (int c = 0; c < 3; c++)
        snprintf(d->class_names[c], sizeof d->class_names[c], "band%d", c);
    Rng rng;
    rng_seed(&rng, 5);
    for (int i = 0; i < n; i++) {
        d->labels[i] = (uint8_t)rng_below(&rng, 3);
        for (int px = 0; px < 36; px++)
            d->images[i * 36 + px] =
                (uint8_t)(rng_below(&rng, 100) + (px / 12 == d->labels[i] ? 150 : 0));
    }
}

static Model *fit(const char *optimizer, const char *extra, const Dataset *d, TrainResult *tr)
{
    char more[512];
    snprintf(more, sizeof more, "\"epochs\":4,\"batch_size\":10,\"seed\":3%s%s", *extra ? "," : "",
             extra);
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(parse_with(optimizer, more, &s, &err) == 0, "%s", err.msg);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    ck_assert_msg(model_build(&s, &lim, &m, &err) == 0, "%s", err.msg);
    ck_assert_msg(train_fit(m, d, NULL, NULL, tr, &err) == 0, "%s", err.msg);
    return m;
}

START_TEST(test_history_learning_rate)
{
    Dataset d;
    make_bands(&d, 100); /* 10 batches an epoch */
    TrainResult tr;
    Model *m = fit(PIECEWISE, "", &d, &tr);
    /* at each epoch's end the optimizer has taken 10, 20, 30, 40 steps */
    static const float want[] = {1.0f, 0.5f, 0.1f, 0.1f};
    for (int e = 0; e < 4; e++)
        ck_assert_msg(tr.history[e].learning_rate == want[e], "epoch %d: %g", e + 1,
                      tr.history[e].learning_rate);
    train_result_free(&tr);
    model_free(m);

    /* a constant rate, lowered by the plateau on the training loss (patience 0: every
     * epoch that does not improve by 10 halves it) */
    m = fit("{\"type\":\"sgd\",\"learning_rate\":0.05}",
            "\"reduce_lr_on_plateau\":{\"monitor\":\"loss\",\"patience\":0,\"factor\":0.5,"
            "\"min_delta\":10}",
            &d, &tr);
    ck_assert_float_eq(tr.history[0].learning_rate, 0.05f); /* the first epoch improves on inf */
    for (int e = 1; e < 4; e++)
        ck_assert_float_eq(tr.history[e].learning_rate, 0.05f / (float)(1 << (e - 1)));
    cJSON *epoch = train_report_epoch(2, &tr.history[1], false);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(epoch, "learning_rate")));
    cJSON_Delete(epoch);
    train_result_free(&tr);
    model_free(m);
    free(d.images);
    free(d.labels);
}
END_TEST

START_TEST(test_deterministic_with_everything)
{
    Dataset d;
    make_bands(&d, 100);
    const char *opt = "{\"type\":\"adamw\",\"clipnorm\":0.5,\"learning_rate\":{\"type\":\"cosine_decay\","
                      "\"initial_learning_rate\":0.001,\"decay_steps\":30,\"warmup_target\":0.02,"
                      "\"warmup_steps\":5}}";
    const char *extra = "\"loss\":{\"type\":\"categorical_crossentropy\",\"label_smoothing\":0.1}";
    TrainResult t1, t2;
    Model *a = fit(opt, extra, &d, &t1), *b = fit(opt, extra, &d, &t2);
    ck_assert_msg(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0,
                  "one seed trained to two sets of weights");
    ck_assert(t1.history[3].loss == t2.history[3].loss);
    ck_assert_msg(t1.history[3].accuracy > 0.8, "accuracy %.3f", t1.history[3].accuracy);
    train_result_free(&t1);
    train_result_free(&t2);
    model_free(a);
    model_free(b);
    free(d.images);
    free(d.labels);
}
END_TEST

/* The heap in use stays the same from the second batch on, across epochs
 * (validation and the plateau's epoch end included): the loop allocates nothing. */
static void heap_steady(const TrainProgress *p, void *ctx)
{
    size_t *first = ctx, now = mallinfo2().uordblks;
    if (p->epoch == 1 && p->batch == 2)
        *first = now;
    else if (*first)
        ck_assert_msg(now == *first, "epoch %d, batch %d: %zu bytes in use, %zu at batch 2",
                      p->epoch, p->batch, now, *first);
}

START_TEST(test_no_allocation_per_batch)
{
    Dataset d;
    make_bands(&d, 100);
    static const char *const optimizers[][2] = {
        {"{\"type\":\"adamw\",\"clipnorm\":0.5,\"learning_rate\":{\"type\":\"cosine_decay\","
         "\"initial_learning_rate\":0.01,\"decay_steps\":30}}",
         "\"loss\":{\"type\":\"categorical_crossentropy\",\"label_smoothing\":0.1}"},
        {"{\"type\":\"sgd\",\"global_clipnorm\":1,\"weight_decay\":0.01}",
         "\"validation_split\":0.2,\"reduce_lr_on_plateau\":{\"patience\":0}"},
    };
    for (int k = 0; k < 2; k++) {
        char more[512];
        snprintf(more, sizeof more, "\"epochs\":3,\"batch_size\":10,%s", optimizers[k][1]);
        ModelSpec s;
        MnError err = {0};
        ck_assert_msg(parse_with(optimizers[k][0], more, &s, &err) == 0, "%s", err.msg);
        SpecLimits lim;
        spec_limits_default(&lim);
        Model *m = NULL;
        ck_assert_int_eq(model_build(&s, &lim, &m, &err), 0);
        size_t first = 0;
        TrainCallbacks cb = {.on_batch = heap_steady, .ctx = &first};
        TrainResult tr;
        ck_assert_msg(train_fit(m, &d, NULL, &cb, &tr, &err) == 0, "%s", err.msg);
        /* first stays 0 where mallinfo2 does not see the heap (ASan's allocator) */
        train_result_free(&tr);
        model_free(m);
    }
    free(d.images);
    free(d.labels);
}
END_TEST

/* ---- refusals name the key ---- */

static const struct {
    const char *optimizer, *extra, *says;
} refused[] = {
    {"{\"type\":\"adam\",\"weight_decay\":-0.1}", "", "optimizer.weight_decay"},
    {"{\"type\":\"sgd\",\"clipnorm\":-1}", "", "optimizer.clipnorm"},
    {"{\"type\":\"sgd\",\"clipnorm\":1,\"global_clipnorm\":1}", "", "clipnorm or global_clipnorm"},
    {"{\"type\":\"sgd\",\"learning_rate\":{\"type\":\"cosine_decay\",\"initial_learning_rate\":0.1,"
     "\"decay_steps\":0}}", "", "optimizer.learning_rate.decay_steps"},
    {"{\"type\":\"sgd\",\"learning_rate\":{\"class_name\":\"ExponentialDecay\",\"config\":"
     "{\"initial_learning_rate\":0.1,\"decay_steps\":10}}}", "",
     "optimizer.learning_rate.config: missing key \"decay_rate\""},
    {"{\"type\":\"sgd\",\"learning_rate\":{\"type\":\"piecewise_constant_decay\","
     "\"boundaries\":[10,20],\"values\":[1,0.5]}}", "", "optimizer.learning_rate.values"},
    {"{\"type\":\"sgd\",\"learning_rate\":{\"type\":\"piecewise_constant_decay\","
     "\"boundaries\":[20,10],\"values\":[1,0.5,0.1]}}", "", "boundaries[] must increase"},
    {"{\"type\":\"sgd\",\"learning_rate\":{\"type\":\"polynomial_decay\"}}", "", "unknown schedule"},
    {"{\"type\":\"sgd\",\"learning_rate\":{\"class_name\":\"CosineDecay\",\"config\":"
     "{\"initial_learning_rate\":0.1,\"decay_steps\":10,\"decay_rate\":0.5}}}", "",
     "unknown key \"decay_rate\""},
    {PIECEWISE, "\"grid\":{\"learning_rate\":[0.1]}", "grid.learning_rate"},
    {COSINE, "\"reduce_lr_on_plateau\":{\"monitor\":\"loss\"}", "reduce_lr_on_plateau needs a number"},
    {"\"sgd\"", "\"reduce_lr_on_plateau\":{\"monitor\":\"loss\",\"factor\":1}", "reduce_lr_on_plateau.factor"},
    {"\"sgd\"", "\"reduce_lr_on_plateau\":{}", "reduce_lr_on_plateau monitors a val_ metric"},
    {"\"sgd\"", "\"reduce_lr_on_plateau\":{\"monitor\":\"loss\",\"cooldown\":-1}", "reduce_lr_on_plateau.cooldown"},
    {"\"sgd\"", "\"loss\":{\"type\":\"categorical_crossentropy\",\"label_smoothing\":1.5}", "loss.label_smoothing"},
    {"\"sgd\"", "\"loss\":{\"type\":\"mse\",\"label_smoothing\":0.1}", "loss.label_smoothing belongs"},
};

START_TEST(test_refusals_name_the_key)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(parse_with(refused[_i].optimizer, refused[_i].extra, &s, &err) != 0, "case %d parsed", _i);
    ck_assert_msg(strstr(err.msg, refused[_i].says), "case %d: \"%s\" lacks \"%s\"", _i, err.msg,
                  refused[_i].says);
}
END_TEST

/* Today's specs keep today's optimizer: no schedule, no decay, no clipping. */
START_TEST(test_defaults_unchanged)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_int_eq(parse_with("\"adam\"", "", &s, &err), 0);
    ck_assert_int_eq(s.optim.schedule.type, SCHEDULE_CONSTANT);
    ck_assert(s.optim.weight_decay == 0.0f && s.optim.clipnorm == 0.0f && s.optim.global_clipnorm == 0.0f);
    ck_assert(s.label_smoothing == 0.0f && !s.reduce_lr.enabled);
    ck_assert_int_eq(parse_with("\"AdamW\"", "", &s, &err), 0);
    ck_assert_int_eq(s.optim.type, OPT_ADAMW);
    ck_assert_float_eq(s.optim.weight_decay, 0.004f);
    ck_assert_float_eq(s.optim.learning_rate, 0.001f);
    cJSON *j = spec_to_json(&s);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "optimizer"), "type")->valuestring, "adamw");
    cJSON_Delete(j);
}
END_TEST

/* A dense layer's slice is its kernel, then its bias: clipnorm's variables. */
START_TEST(test_layer_variables)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_int_eq(parse_with("\"adam\"", "", &s, &err), 0);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    ck_assert_int_eq(model_build(&s, &lim, &m, &err), 0);
    size_t sizes[LAYER_MAX_VARIABLES];
    ck_assert_int_eq(layer_variables(&m->spec.layers[0], sizes), 0);
    ck_assert_int_eq(layer_variables(&m->spec.layers[1], sizes), 2);
    ck_assert_uint_eq(sizes[0], 36 * 3);
    ck_assert_uint_eq(sizes[1], 3);
    /* without a bias (use_bias false) the kernel is the one variable */
    Layer no_bias = m->spec.layers[1];
    no_bias.cfg.dense.no_bias = true;
    no_bias.param_count = 36 * 3;
    ck_assert_int_eq(layer_variables(&no_bias, sizes), 1);
    ck_assert_uint_eq(sizes[0], 36 * 3);
    model_free(m);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *sched = tcase_create("Schedules");
    tcase_add_loop_test(sched, test_schedule_rates, 0, sizeof schedule_cases / sizeof *schedule_cases);
    tcase_add_test(sched, test_schedule_round_trip);
    tcase_add_test(sched, test_grid_replaces_peak);
    tcase_add_test(sched, test_spec_round_trip);
    suite_add_tcase(s, sched);
    TCase *steps = tcase_create("Steps");
    tcase_add_test(steps, test_sgd_weight_decay);
    tcase_add_test(steps, test_adamw_step);
    tcase_add_loop_test(steps, test_clipping, 0, sizeof clip_cases / sizeof *clip_cases);
    tcase_add_test(steps, test_schedule_drives_steps);
    tcase_add_test(steps, test_layer_variables);
    suite_add_tcase(s, steps);
    TCase *loss = tcase_create("LabelSmoothing");
    tcase_add_test(loss, test_label_smoothing_gradient);
    tcase_add_test(loss, test_label_smoothing_value);
    tcase_add_test(loss, test_label_smoothing_model_gradients);
    suite_add_tcase(s, loss);
    TCase *train = tcase_create("Training");
    tcase_add_test(train, test_plateau_script);
    tcase_add_test(train, test_history_learning_rate);
    tcase_add_test(train, test_deterministic_with_everything);
    tcase_add_test(train, test_no_allocation_per_batch);
    tcase_set_timeout(train, 60);
    suite_add_tcase(s, train);
    TCase *limits = tcase_create("Limits");
    tcase_add_loop_test(limits, test_refusals_name_the_key, 0, sizeof refused / sizeof *refused);
    tcase_add_test(limits, test_defaults_unchanged);
    suite_add_tcase(s, limits);
    return s;
}

MN_TEST_MAIN(optim_suite)
