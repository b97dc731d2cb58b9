/* test_grad.c - every layer's and activation's backward pass against
 * central differences, one table row per case (kann/ggml style). The probe
 * loss L = sum_i r_i * y_i with fixed random r makes every output count.
 * Inputs are spaced apart so no ReLU sits on its kink and no pooling
 * window has a tie. Also: conv2d and maxpool2d forward against naive loops,
 * including Keras's asymmetric "same" padding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "layer.h"
#include "model.h"

typedef struct {
    const char *name;
    LayerType type;
    Shape in;
    int batch;
    /* conv2d: filters, kernel, stride; pooling: pool, stride; dense: units; dropout: rate*100;
     * augmentation: factor*100 (both axes), kh the FillMode, kw the Interpolation;
     * batch_normalization: 1 without beta, 2 without gamma; leaky_relu, elu: the slope*100 */
    int a, kh, kw, sh, sw;
    bool same;
    bool no_bias; /* dense, conv2d: use_bias false */
} GradCase;

static const GradCase cases[] = {
    {"dense 6->4", LAYER_DENSE, {1, 1, 6}, 3, 4, 0, 0, 0, 0, false, false},
    {"dense 6->4, one sample (matrix-vector path)", LAYER_DENSE, {1, 1, 6}, 1, 4, 0, 0, 0, 0, false, false},
    {"conv 3x3 valid", LAYER_CONV2D, {5, 5, 2}, 2, 3, 3, 3, 1, 1, false, false},
    {"conv 3x3 same", LAYER_CONV2D, {5, 5, 2}, 2, 3, 3, 3, 1, 1, true, false},
    {"conv 3x3 stride 2 same, odd input", LAYER_CONV2D, {7, 5, 3}, 2, 4, 3, 3, 2, 2, true, false},
    {"conv 2x2 same (padding at the end only)", LAYER_CONV2D, {4, 5, 1}, 2, 2, 2, 2, 1, 1, true, false},
    {"conv 1x1", LAYER_CONV2D, {3, 4, 3}, 3, 2, 1, 1, 1, 1, false, false},
    {"conv 3x2 stride 2x1 valid", LAYER_CONV2D, {6, 5, 2}, 2, 3, 3, 2, 2, 1, false, false},
    {"conv 2x3 same, 3 channels to 17 filters (dX as a convolution)", LAYER_CONV2D, {5, 6, 3}, 2, 17, 2, 3, 1, 1, true, false},
    {"conv 2x3 valid, 17 channels to 2 filters", LAYER_CONV2D, {5, 6, 17}, 2, 2, 2, 3, 1, 1, false, false},
    {"maxpool 2x2 valid", LAYER_MAXPOOL2D, {4, 6, 2}, 2, 0, 2, 2, 2, 2, false, false},
    {"maxpool 3x3 stride 2 same, odd input", LAYER_MAXPOOL2D, {7, 5, 2}, 2, 0, 3, 3, 2, 2, true, false},
    {"maxpool 2x2 valid, odd input", LAYER_MAXPOOL2D, {5, 5, 1}, 2, 0, 2, 2, 2, 2, false, false},
    {"dropout 0.3", LAYER_DROPOUT, {2, 3, 2}, 3, 30, 0, 0, 0, 0, false, false},
    {"dense 6->4 without bias", LAYER_DENSE, {1, 1, 6}, 9, 4, 0, 0, 0, 0, false, true},
    {"dense without bias, batch 3 (GEMM path)", LAYER_DENSE, {1, 1, 6}, 3, 4, 0, 0, 0, 0, false, true},
    {"dense without bias, one sample", LAYER_DENSE, {1, 1, 6}, 1, 4, 0, 0, 0, 0, false, true},
    {"conv 3x3 same without bias", LAYER_CONV2D, {5, 5, 2}, 2, 3, 3, 3, 1, 1, true, true},
    {"conv 3x3 same, 32 channels to 32 filters on 14x14 (Winograd: forward, dX, dW)",
     LAYER_CONV2D, {14, 14, 32}, 2, 32, 3, 3, 1, 1, true, false},
    {"avgpool 2x2 valid", LAYER_AVGPOOL2D, {4, 6, 2}, 2, 0, 2, 2, 2, 2, false, false},
    {"avgpool 3x3 stride 2 same, odd input", LAYER_AVGPOOL2D, {7, 5, 2}, 2, 0, 3, 3, 2, 2, true, false},
    /* rows and columns 2 and 5 fall between windows: their gradient is zero */
    {"avgpool 2x2 stride 3 same, pixels unread", LAYER_AVGPOOL2D, {7, 7, 2}, 2, 0, 2, 2, 3, 3, true, false},
    {"global average pooling", LAYER_GLOBAL_AVGPOOL2D, {3, 5, 3}, 2, 0, 0, 0, 0, 0, false, false},
    /* The Rng is reseeded for every probe: each sample's transform held fixed. */
    {"random_translation reflect bilinear", LAYER_RANDOM_TRANSLATION, {5, 4, 2}, 3, 40,
     FILL_REFLECT, INTERP_BILINEAR, 0, 0, false, false},
    {"random_rotation constant bilinear", LAYER_RANDOM_ROTATION, {5, 5, 1}, 3, 20, FILL_CONSTANT,
     INTERP_BILINEAR, 0, 0, false, false},
    {"random_rotation wrap nearest", LAYER_RANDOM_ROTATION, {4, 5, 2}, 2, 30, FILL_WRAP,
     INTERP_NEAREST, 0, 0, false, false},
    {"random_zoom nearest-fill bilinear", LAYER_RANDOM_ZOOM, {6, 5, 1}, 3, 40, FILL_NEAREST,
     INTERP_BILINEAR, 0, 0, false, false},
    {"random_flip", LAYER_RANDOM_FLIP, {3, 4, 2}, 4, 0, FILL_REFLECT, INTERP_NEAREST, 0, 0, false, false},
    {"batch_normalization, whole-batch statistics", LAYER_BATCHNORM, {2, 3, 3}, 3, 0, 0, 0, 0, 0, false, false},
    {"batch_normalization without beta", LAYER_BATCHNORM, {1, 1, 4}, 5, 1, 0, 0, 0, 0, false, false},
    {"batch_normalization without gamma", LAYER_BATCHNORM, {3, 2, 2}, 2, 2, 0, 0, 0, 0, false, false},
    {"leaky_relu negative_slope 0.1", LAYER_LEAKY_RELU, {2, 3, 2}, 2, 10, 0, 0, 0, 0, false, false},
    {"elu alpha 0.5", LAYER_ELU, {2, 3, 2}, 2, 50, 0, 0, 0, 0, false, false},
    {"elu alpha 1.7", LAYER_ELU, {1, 1, 7}, 3, 170, 0, 0, 0, 0, false, false},
};

static void configure(const GradCase *c, Layer *l)
{
    memset(l, 0, sizeof *l);
    l->type = c->type;
    switch (c->type) {
    case LAYER_DENSE:
        l->cfg.dense.units = c->a;
        l->cfg.dense.no_bias = c->no_bias;
        break;
    case LAYER_CONV2D:
        l->cfg.conv.filters = c->a;
        l->cfg.conv.win = (Window){.kh = c->kh, .kw = c->kw, .sh = c->sh, .sw = c->sw, .same = c->same};
        l->cfg.conv.no_bias = c->no_bias;
        break;
    case LAYER_MAXPOOL2D:
    case LAYER_AVGPOOL2D:
        l->cfg.pool = (Window){.kh = c->kh, .kw = c->kw, .sh = c->sh, .sw = c->sw, .same = c->same};
        break;
    case LAYER_DROPOUT:
        l->cfg.dropout.rate = c->a / 100.0f;
        break;
    case LAYER_RANDOM_TRANSLATION:
    case LAYER_RANDOM_ROTATION:
    case LAYER_RANDOM_ZOOM:
    case LAYER_RANDOM_FLIP: {
        float f = c->a / 100.0f;
        l->cfg.augment = (AugmentConfig){{-f, -f}, {f, f}, true, (FillMode)c->kh,
                                         (Interpolation)c->kw, 0.5f, true, true};
        break;
    }
    case LAYER_BATCHNORM:
        l->cfg.bn = (BatchNormConfig){.momentum = 0.99f, .epsilon = 1e-3f, .center = c->a != 1,
                                      .scale = c->a != 2};
        break;
    case LAYER_LEAKY_RELU:
    case LAYER_ELU:
        l->cfg.slope.alpha = c->a / 100.0f;
        break;
    default:
        break;
    }
}

typedef struct {
    Layer l;
    const LayerOps *ops;
    int batch;
    size_t nx, ny;
    float *x, *y, *params, *grads, *r, *dy, *dx, *ws;
    void *aux;
    Rng rng;
    uint64_t dropout_seed;
} Probe;

static double probe_loss(void *ctx)
{
    Probe *p = ctx;
    /* Dropout draws its mask from the Rng: the same seed each time, the same mask. */
    rng_seed(&p->rng, p->dropout_seed);
    LayerRun run = {.batch = p->batch, .training = true, .ws = p->ws, .aux = p->aux, .rng = &p->rng};
    p->ops->forward(&p->l, p->params, p->x, p->y, &run);
    double s = 0.0;
    for (size_t i = 0; i < p->ny; i++)
        s += (double)p->r[i] * p->y[i];
    return s;
}

static double rel_err(double a, double b)
{
    return fabs(a - b) / fmax(1e-2, fabs(a) + fabs(b));
}

static void check_numeric(Probe *p, float *v, size_t n, const float *analytic, const char *what,
                          const char *name)
{
    const float eps = 1e-2f;
    /* Every value of the small cases; some 256 spread over a big one
     * (the Winograd case's 21,792 would take minutes under the sanitizers). */
    size_t step = n > 512 ? n / 256 : 1;
    for (size_t i = 0; i < n; i += step) {
        double num = check_util_central_difference(&v[i], eps, probe_loss, p);
        ck_assert_msg(rel_err(num, analytic[i]) < 1e-2, "%s: d%s[%zu] analytic %.6g numeric %.6g",
                      name, what, i, analytic[i], num);
    }
}

START_TEST(test_layer_gradients)
{
    const GradCase *c = &cases[_i];
    Probe p = {0};
    MnError err = {0};
    configure(c, &p.l);
    p.ops = layer_ops(c->type);
    p.l.in = c->in;
    ck_assert_msg(p.ops->build(&p.l, &c->in, 1, &err) == 0, "%s: %s", c->name, err.msg);
    p.batch = c->batch;
    p.nx = shape_numel(c->in) * c->batch;
    p.ny = shape_numel(p.l.out) * c->batch;
    p.x = calloc(p.nx, sizeof *p.x);
    p.dx = calloc(p.nx, sizeof *p.dx);
    p.y = calloc(p.ny, sizeof *p.y);
    p.dy = calloc(p.ny, sizeof *p.dy);
    p.r = calloc(p.ny, sizeof *p.r);
    p.params = calloc(p.l.param_count + 1, sizeof *p.params);
    p.grads = calloc(p.l.param_count + 1, sizeof *p.grads);
    p.ws = calloc((p.ops->workspace ? p.ops->workspace(&p.l, p.batch) : 0) + 1, sizeof *p.ws);
    p.aux = calloc((p.ops->aux ? p.ops->aux(&p.l, p.batch) : 0) + 1, 1);
    p.dropout_seed = 42 + _i;
    Rng rng;
    rng_seed(&rng, 1000 + _i);
    if (p.ops->init)
        p.ops->init(&p.l, p.params, &rng);
    for (size_t i = 0; i < p.l.param_count; i++)
        p.params[i] += 0.1f * (2.0f * rng_uniform(&rng) - 1.0f); /* nonzero biases too */
    /* Distinct inputs, at least 0.05 apart: no ties inside a pooling window. */
    for (size_t i = 0; i < p.nx; i++)
        p.x[i] = -1.0f + 2.0f * (float)((i * 7919) % p.nx) / (float)p.nx + 0.013f;
    for (size_t i = 0; i < p.ny; i++)
        p.r[i] = 2.0f * rng_uniform(&rng) - 1.0f;

    probe_loss(&p);
    memcpy(p.dy, p.r, p.ny * sizeof *p.dy); /* dL/dy = r */
    LayerRun run = {.batch = p.batch, .training = true, .ws = p.ws, .aux = p.aux, .rng = &p.rng};
    rng_seed(&p.rng, p.dropout_seed);
    p.ops->backward(&p.l, p.params, p.grads, p.x, p.y, p.dy, p.dx, &run);
    check_numeric(&p, p.x, p.nx, p.dx, "x", c->name);
    if (p.l.param_count)
        check_numeric(&p, p.params, p.l.param_count, p.grads, "params", c->name);

    /* Gradients accumulate: a second backward doubles them. */
    if (p.l.param_count) {
        float *once = malloc(p.l.param_count * sizeof *once);
        memcpy(once, p.grads, p.l.param_count * sizeof *once);
        probe_loss(&p);
        rng_seed(&p.rng, p.dropout_seed);
        p.ops->backward(&p.l, p.params, p.grads, p.x, p.y, p.dy, p.dx, &run);
        for (size_t i = 0; i < p.l.param_count; i++)
            ck_assert_float_eq_tol(p.grads[i], 2.0f * once[i], 1e-5f + 1e-5f * fabsf(once[i]));
        free(once);
    }
    free(p.x), free(p.dx), free(p.y), free(p.dy), free(p.r), free(p.params), free(p.grads);
    free(p.ws), free(p.aux);
}
END_TEST

static const Activation activations[] = {ACT_LINEAR,  ACT_RELU,  ACT_SIGMOID,    ACT_TANH,
                                         ACT_SOFTMAX, ACT_GELU,  ACT_SWISH,      ACT_LEAKY_RELU,
                                         ACT_ELU};

enum { ACT_ROWS = 3, ACT_N = 5, ACT_CELLS = ACT_ROWS * ACT_N };

/* The loss sum(r * activation(z)) of one activation on a few rows. */
typedef struct {
    Activation act;
    float z[ACT_CELLS], a[ACT_CELLS], r[ACT_CELLS];
} ActProbe;

static double act_probe_loss(void *ctx)
{
    ActProbe *p = ctx;
    memcpy(p->a, p->z, sizeof p->a);
    activation_forward(p->act, p->a, ACT_ROWS, ACT_N);
    double s = 0.0;
    for (int i = 0; i < ACT_CELLS; i++)
        s += (double)p->r[i] * p->a[i];
    return s;
}

START_TEST(test_activation_gradients)
{
    ActProbe p = {.act = activations[_i]};
    float d[ACT_CELLS];
    Rng rng;
    rng_seed(&rng, 77 + _i);
    for (int i = 0; i < ACT_CELLS; i++) {
        p.z[i] = -2.0f + 4.0f * (float)((i * 37) % ACT_CELLS) / ACT_CELLS + 0.11f; /* off 0 */
        p.r[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    }
    act_probe_loss(&p);
    memcpy(d, p.r, sizeof d);
    activation_backward(p.act, activation_needs_input(p.act) ? p.z : NULL, p.a, d, ACT_ROWS,
                        ACT_N);
    for (int i = 0; i < ACT_CELLS; i++) {
        double num = check_util_central_difference(&p.z[i], 1e-2f, act_probe_loss, &p);
        ck_assert_msg(rel_err(num, d[i]) < 1e-2, "%s: dz[%d] analytic %.6g numeric %.6g",
                      activation_name(p.act), i, d[i], num);
    }
}
END_TEST

START_TEST(test_activation_extremes_finite)
{
    float z[6] = {-1000.0f, -90.0f, 0.0f, 90.0f, 1000.0f, 3.0f};
    float a[6];
    memcpy(a, z, sizeof a);
    activation_forward(ACT_SIGMOID, a, 1, 6);
    for (int i = 0; i < 6; i++)
        ck_assert(isfinite(a[i]) && a[i] >= 0.0f && a[i] <= 1.0f);
    memcpy(a, z, sizeof a);
    activation_forward(ACT_SOFTMAX, a, 1, 6);
    float sum = 0.0f;
    for (int i = 0; i < 6; i++) {
        ck_assert(isfinite(a[i]));
        sum += a[i];
    }
    ck_assert_float_eq_tol(sum, 1.0f, 1e-6f);
}
END_TEST

static double activation_in_double(Activation act, double z)
{
    switch (act) {
    case ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-z));
    case ACT_TANH:
        return tanh(z);
    case ACT_GELU: /* Keras's exact gelu */
        return z * 0.5 * (1.0 + erf(z / sqrt(2.0)));
    case ACT_SWISH:
        return z / (1.0 + exp(-z));
    case ACT_ELU:
        return z > 0.0 ? z : expm1(z);
    default:
        return z;
    }
}

static double slope_in_double(Activation act, double z)
{
    if (act == ACT_GELU)
        return 0.5 * (1.0 + erf(z / sqrt(2.0))) + z * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
    double s = 1.0 / (1.0 + exp(-z));
    return s * (1.0 + z * (1.0 - s));
}

/* The vector exp, tanh, erfc and expm1: within a few ulps of double precision, and
 * each value's result its own wherever it sits (a vector block or the
 * padded tail, first or thirty-seventh), so a sample's output does not
 * depend on the batch around it. */
START_TEST(test_activation_values_wherever_they_sit)
{
    enum { N = 37, ROWS = 7, WIDTH = 10 };
    float z[N], all[N], alone;
    for (int i = 0; i < N; i++)
        z[i] = -9.0f + 18.0f * (float)i / (N - 1) + 0.013f;
    Activation acts[] = {ACT_SIGMOID, ACT_TANH, ACT_GELU, ACT_SWISH, ACT_ELU};
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        memcpy(all, z, sizeof all);
        activation_forward(acts[k], all, 1, N);
        for (int i = 0; i < N; i++) {
            double want = activation_in_double(acts[k], z[i]);
            ck_assert_msg(fabs(all[i] - want) <= 4e-7 * fmax(fabs(want), 1e-3), "%s(%g) = %.9g, want %.9g",
                          activation_name(acts[k]), z[i], all[i], want);
            alone = z[i];
            activation_forward(acts[k], &alone, 1, 1);
            ck_assert_msg(alone == all[i], "%s(%g): %.9g alone, %.9g at %d",
                          activation_name(acts[k]), z[i], alone, all[i], i);
        }
    }
    /* The derivatives that take z (gelu, swish), the same way. */
    Activation slopes[] = {ACT_GELU, ACT_SWISH};
    for (size_t k = 0; k < sizeof slopes / sizeof *slopes; k++) {
        float a[N], d[N];
        memcpy(a, z, sizeof a);
        activation_forward(slopes[k], a, 1, N);
        for (int i = 0; i < N; i++)
            d[i] = 1.0f;
        activation_backward(slopes[k], z, a, d, 1, N);
        for (int i = 0; i < N; i++) {
            double want = slope_in_double(slopes[k], z[i]);
            ck_assert_msg(fabs(d[i] - want) <= 1e-6 * fmax(fabs(want), 1e-1),
                          "%s'(%g) = %.9g, want %.9g", activation_name(slopes[k]), z[i], d[i], want);
            float one_d = 1.0f;
            activation_backward(slopes[k], &z[i], &a[i], &one_d, 1, 1);
            ck_assert_msg(one_d == d[i], "%s'(%g): %.9g alone, %.9g at %d",
                          activation_name(slopes[k]), z[i], one_d, d[i], i);
        }
    }
    float rows[ROWS * WIDTH], one[WIDTH];
    for (int i = 0; i < ROWS * WIDTH; i++)
        rows[i] = z[i % N] * (float)(1 + i / WIDTH) * 0.3f;
    memcpy(one, rows + 5 * WIDTH, sizeof one);
    activation_forward(ACT_SOFTMAX, rows, ROWS, WIDTH);
    activation_forward(ACT_SOFTMAX, one, 1, WIDTH);
    ck_assert_mem_eq(one, rows + 5 * WIDTH, sizeof one);
}
END_TEST

/* Naive convolution, written from the definition with Keras's padding. */
static void naive_conv(const Layer *l, const float *params, const float *x, float *y, int batch)
{
    const Conv2dConfig *c = &l->cfg.conv;
    const Window *w = &c->win;
    int cin = l->in.c;
    size_t nw = (size_t)w->kh * w->kw * cin * c->filters;
    int total_h = (l->out.h - 1) * w->sh + w->kh - l->in.h;
    int total_w = (l->out.w - 1) * w->sw + w->kw - l->in.w;
    int top = w->same && total_h > 0 ? total_h / 2 : 0, left = w->same && total_w > 0 ? total_w / 2 : 0;
    for (int b = 0; b < batch; b++)
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++)
                for (int f = 0; f < c->filters; f++) {
                    double s = c->no_bias ? 0.0 : params[nw + f];
                    for (int ky = 0; ky < w->kh; ky++)
                        for (int kx = 0; kx < w->kw; kx++)
                            for (int ci = 0; ci < cin; ci++) {
                                int iy = oy * w->sh + ky - top, ix = ox * w->sw + kx - left;
                                if (iy < 0 || ix < 0 || iy >= l->in.h || ix >= l->in.w)
                                    continue;
                                s += (double)x[((b * l->in.h + iy) * l->in.w + ix) * cin + ci] *
                                     params[((ky * w->kw + kx) * cin + ci) * c->filters + f];
                            }
                    y[((b * l->out.h + oy) * l->out.w + ox) * c->filters + f] = (float)s;
                }
}

/* Max, or average over the window's pixels inside the input (Keras's
 * "same" average pooling does not count the padding). */
static void naive_pool(const Layer *l, const Window *w, bool average, const float *x, float *y,
                       int batch)
{
    int total_h = (l->out.h - 1) * w->sh + w->kh - l->in.h;
    int total_w = (l->out.w - 1) * w->sw + w->kw - l->in.w;
    int top = w->same && total_h > 0 ? total_h / 2 : 0, left = w->same && total_w > 0 ? total_w / 2 : 0;
    int ch = l->in.c;
    for (int b = 0; b < batch; b++)
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++)
                for (int c = 0; c < ch; c++) {
                    float best = -INFINITY;
                    double sum = 0.0;
                    int count = 0;
                    for (int ky = 0; ky < w->kh; ky++)
                        for (int kx = 0; kx < w->kw; kx++) {
                            int iy = oy * w->sh + ky - top, ix = ox * w->sw + kx - left;
                            if (iy < 0 || ix < 0 || iy >= l->in.h || ix >= l->in.w)
                                continue;
                            float v = x[((b * l->in.h + iy) * l->in.w + ix) * ch + c];
                            best = v > best ? v : best;
                            sum += v;
                            count++;
                        }
                    y[((b * l->out.h + oy) * l->out.w + ox) * ch + c] =
                        average ? (float)(sum / count) : best;
                }
}

START_TEST(test_forward_matches_naive)
{
    const GradCase *c = &cases[_i];
    if (c->type != LAYER_CONV2D && c->type != LAYER_MAXPOOL2D && c->type != LAYER_AVGPOOL2D &&
        c->type != LAYER_GLOBAL_AVGPOOL2D)
        return;
    Layer l;
    MnError err = {0};
    configure(c, &l);
    const LayerOps *ops = layer_ops(c->type);
    l.in = c->in;
    ck_assert_int_eq(ops->build(&l, &c->in, 1, &err), 0);
    size_t nx = shape_numel(c->in) * c->batch, ny = shape_numel(l.out) * c->batch;
    float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y), *want = malloc(ny * sizeof *y);
    float *params = malloc((l.param_count + 1) * sizeof *params);
    float *ws = calloc((ops->workspace ? ops->workspace(&l, c->batch) : 0) + 1, sizeof *ws);
    void *aux = calloc((ops->aux ? ops->aux(&l, c->batch) : 0) + 1, 1);
    Rng rng;
    rng_seed(&rng, 5);
    for (size_t i = 0; i < nx; i++)
        x[i] = rng_normal(&rng);
    for (size_t i = 0; i < l.param_count; i++)
        params[i] = rng_normal(&rng);
    LayerRun run = {.batch = c->batch, .ws = ws, .aux = aux};
    ops->forward(&l, params, x, y, &run);
    if (c->type == LAYER_CONV2D)
        naive_conv(&l, params, x, want, c->batch);
    else if (c->type == LAYER_GLOBAL_AVGPOOL2D)
        naive_pool(&l, &l.cfg.global_pool.win, true, x, want, c->batch);
    else
        naive_pool(&l, &l.cfg.pool, c->type == LAYER_AVGPOOL2D, x, want, c->batch);
    for (size_t i = 0; i < ny; i++)
        ck_assert_msg(fabsf(y[i] - want[i]) < 1e-4f * (1.0f + fabsf(want[i])),
                      "%s: y[%zu] = %g, naive %g", c->name, i, y[i], want[i]);
    free(x), free(y), free(want), free(params), free(ws), free(aux);
}
END_TEST

/* conv2d's dX, by phase of the stride (conv2d.c), against the adjoint of
 * the convolution written from its definition: dx[iy][ix][c] = sum of
 * dy[oy][ox][f] w[ky][kx][c][f] over iy = oy*sh + ky - pad_top. Strides
 * 1 to 3 and mixed, kernels smaller than the stride (phases without a
 * tap), explicit padding that starts a phase's reads inside dY, odd sizes,
 * channels off the vector width. dx starts as NaN: every pixel must be
 * written, the zeros of pixels no window reads too. */
typedef struct {
    Shape in;
    int filters, kh, kw, sh, sw;
    int pad; /* 0 valid, 1 same, 2 explicit pads[] */
    int pads[4]; /* top, bottom, left, right */
} InputGradCase;

static const InputGradCase input_grad_cases[] = {
    {{28, 28, 16}, 64, 3, 3, 2, 2, 1, {0}}, /* cnn-basic */
    {{14, 14, 16}, 32, 3, 3, 2, 2, 1, {0}},
    {{7, 5, 3}, 4, 3, 3, 2, 2, 1, {0}},
    {{9, 8, 5}, 17, 3, 3, 2, 2, 0, {0}},
    {{8, 9, 2}, 3, 2, 2, 2, 2, 1, {0}},
    {{11, 10, 3}, 5, 5, 4, 2, 3, 1, {0}},
    {{10, 11, 4}, 6, 3, 3, 3, 3, 0, {0}},   /* pixels no window reads */
    {{7, 7, 2}, 3, 1, 1, 2, 2, 0, {0}},     /* three phases without a tap */
    {{8, 7, 3}, 2, 2, 1, 3, 2, 1, {0}},
    {{6, 7, 2}, 3, 3, 3, 2, 2, 2, {2, 1, 2, 0}}, /* leading zero taps */
    {{9, 6, 3}, 4, 4, 3, 3, 1, 2, {3, 2, 1, 2}},
    {{5, 6, 3}, 17, 2, 3, 1, 1, 1, {0}},    /* stride 1: one phase */
    {{6, 5, 19}, 7, 1, 1, 1, 1, 0, {0}},    /* pointwise */
    {{1, 1, 5}, 3, 1, 1, 2, 2, 0, {0}},
};

START_TEST(test_input_grad_matches_naive)
{
    const InputGradCase *c = &input_grad_cases[_i];
    enum { BATCH = 3 };
    Layer l;
    MnError err = {0};
    memset(&l, 0, sizeof l);
    l.type = LAYER_CONV2D;
    l.cfg.conv.filters = c->filters;
    Window *w = &l.cfg.conv.win;
    *w = (Window){.kh = c->kh, .kw = c->kw, .sh = c->sh, .sw = c->sw, .same = c->pad == 1};
    if (c->pad == 2)
        w->explicit_pad = true, w->pad_top = c->pads[0], w->pad_bottom = c->pads[1],
        w->pad_left = c->pads[2], w->pad_right = c->pads[3];
    l.in = c->in;
    ck_assert_msg(conv2d_ops.build(&l, &c->in, 1, &err) == 0, "case %d: %s", _i, err.msg);
    int cin = l.in.c, f = c->filters;
    size_t nx = shape_numel(l.in) * BATCH, ny = shape_numel(l.out) * BATCH;
    float *x = calloc(nx, sizeof *x), *dx = malloc(nx * sizeof *dx), *dy = malloc(ny * sizeof *dy);
    float *y = calloc(ny, sizeof *y), *params = malloc(l.param_count * sizeof *params);
    float *grads = calloc(l.param_count, sizeof *grads);
    double *want = calloc(nx, sizeof *want), *size = calloc(nx, sizeof *size);
    float *ws = calloc(conv2d_ops.workspace(&l, BATCH) + 1, sizeof *ws);
    Rng rng;
    rng_seed(&rng, 77 + _i);
    for (size_t i = 0; i < ny; i++)
        dy[i] = rng_normal(&rng);
    for (size_t i = 0; i < l.param_count; i++)
        params[i] = rng_normal(&rng);
    for (size_t i = 0; i < nx; i++)
        dx[i] = NAN;
    for (int b = 0; b < BATCH; b++)
        for (int oy = 0; oy < l.out.h; oy++)
            for (int ox = 0; ox < l.out.w; ox++)
                for (int ky = 0; ky < w->kh; ky++)
                    for (int kx = 0; kx < w->kw; kx++) {
                        int iy = oy * w->sh + ky - w->pad_top, ix = ox * w->sw + kx - w->pad_left;
                        if (iy < 0 || ix < 0 || iy >= l.in.h || ix >= l.in.w)
                            continue;
                        for (int ci = 0; ci < cin; ci++)
                            for (int fi = 0; fi < f; fi++) {
                                size_t at = (((size_t)b * l.in.h + iy) * l.in.w + ix) * cin + ci;
                                double t = (double)dy[(((size_t)b * l.out.h + oy) * l.out.w + ox) * f + fi] *
                                           params[(((size_t)ky * w->kw + kx) * cin + ci) * f + fi];
                                want[at] += t, size[at] += fabs(t);
                            }
                    }
    LayerRun run = {.batch = BATCH, .training = true, .ws = ws};
    conv2d_ops.backward(&l, params, grads, x, y, dy, dx, &run);
    for (size_t i = 0; i < nx; i++)
        ck_assert_msg(fabs(dx[i] - want[i]) <= 1e-6 * size[i] + 1e-7,
                      "case %d (%dx%d stride %dx%d, pad %d/%d): dx[%zu] = %g, naive %g", _i, c->kh,
                      c->kw, c->sh, c->sw, w->pad_top, w->pad_left, i, dx[i], want[i]);
    free(x), free(dx), free(dy), free(y), free(params), free(grads), free(want), free(size);
    free(ws);
}
END_TEST

/* Keras: "same" with an even kernel pads only after (bottom/right). */
START_TEST(test_same_padding_placement)
{
    Layer l;
    MnError err = {0};
    Shape mnist = shape_make(28, 28, 1), small = shape_make(7, 7, 1);
    memset(&l, 0, sizeof l);
    l.type = LAYER_CONV2D;
    l.cfg.conv.filters = 1;
    l.cfg.conv.win = (Window){.kh = 2, .kw = 2, .sh = 1, .sw = 1, .same = true};
    ck_assert_int_eq(conv2d_ops.build(&l, &mnist, 1, &err), 0);
    ck_assert_int_eq(l.out.h, 28);
    ck_assert_int_eq(l.cfg.conv.win.pad_top, 0);
    l.cfg.conv.win = (Window){.kh = 3, .kw = 3, .sh = 2, .sw = 2, .same = true};
    ck_assert_int_eq(conv2d_ops.build(&l, &mnist, 1, &err), 0);
    ck_assert_int_eq(l.out.h, 14);
    ck_assert_int_eq(l.cfg.conv.win.pad_top, 0); /* total 1: all of it at the bottom */
    ck_assert_int_eq(conv2d_ops.build(&l, &small, 1, &err), 0);
    ck_assert_int_eq(l.out.h, 4);
    ck_assert_int_eq(l.cfg.conv.win.pad_top, 1);
}
END_TEST

/* Whole graphs through model_forward/model_backward: an output read by
 * several layers gets their gradients summed. First a residual block
 * (conv_a feeds conv_b and the add); then a flatten (a view) read by two
 * dense layers and an add, and adds that read one input twice. tanh and
 * sigmoid keep every function smooth; the loss is the model's own
 * (softmax + cross-entropy). */
static const struct {
    const char *name, *json;
} graph_cases[] = {
    {"residual: conv_a -> add(conv_a, conv_b(conv_a))",
     "{\"name\":\"g\",\"input_shape\":[5,5,1],\"layers\":["
     "{\"type\":\"conv2d\",\"name\":\"conv_a\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\","
     "\"activation\":\"tanh\"},"
     "{\"type\":\"conv2d\",\"name\":\"conv_b\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\","
     "\"activation\":\"tanh\"},"
     "{\"type\":\"add\",\"name\":\"res1\",\"inputs\":[\"conv_a\",\"conv_b\"]},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}"},
    {"a flatten read twice, and add(x, x)",
     "{\"name\":\"g\",\"input_shape\":[3,3,2],\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":2,\"activation\":\"tanh\"},"
     "{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":8,\"activation\":\"tanh\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"tanh\",\"inputs\":[\"flatten\"]},"
     "{\"type\":\"dense\",\"units\":8,\"activation\":\"sigmoid\"},"
     "{\"type\":\"add\",\"inputs\":[\"dense\",\"dense_2\",\"dense\"]},"
     "{\"type\":\"add\",\"inputs\":[\"add\",\"flatten\",\"add\"]},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}"},
    /* conv_a feeds conv_b and the concatenate; average pooling with "same"
     * padding and strides that leave rows and columns unread; gelu and
     * swish (the model keeps their inputs), elu, leaky_relu, and use_bias false. */
    {"concatenate(conv_a, conv_b(conv_a)), average and global pooling",
     "{\"name\":\"g\",\"input_shape\":[7,7,1],\"layers\":["
     "{\"type\":\"conv2d\",\"name\":\"conv_a\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\","
     "\"activation\":\"gelu\"},"
     "{\"type\":\"conv2d\",\"name\":\"conv_b\",\"filters\":3,\"kernel_size\":3,\"padding\":\"same\","
     "\"activation\":\"swish\",\"use_bias\":false},"
     "{\"type\":\"concatenate\",\"inputs\":[\"conv_a\",\"conv_b\"]},"
     "{\"type\":\"average_pooling2d\",\"pool_size\":2,\"strides\":3,\"padding\":\"same\"},"
     "{\"type\":\"activation\",\"activation\":\"elu\"},"
     "{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":2,\"activation\":\"tanh\"},"
     "{\"type\":\"global_average_pooling2d\"},"
     "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}"},
    {"dense without bias, standalone activations, a flat concatenate",
     "{\"name\":\"g\",\"input_shape\":[2,3,1],\"layers\":["
     "{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":6,\"use_bias\":false},"
     "{\"type\":\"activation\",\"activation\":\"gelu\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"silu\"},"
     "{\"type\":\"dense\",\"units\":4,\"activation\":\"leaky_relu\",\"inputs\":[\"activation\"]},"
     "{\"type\":\"concatenate\",\"inputs\":[\"activation\",\"dense_1\",\"dense_2\"]},"
     "{\"type\":\"dense\",\"units\":3,\"use_bias\":false},"
     "{\"type\":\"activation\",\"activation\":\"softmax\"}]}"},
    /* The activation layer applies relu and sigmoid itself, out of place. */
    {"activation layers: relu, and sigmoid after a batch normalization",
     "{\"name\":\"g\",\"input_shape\":[4,4,2],\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3,\"padding\":\"same\",\"activation\":\"tanh\"},"
     "{\"type\":\"activation\",\"activation\":\"relu\"},"
     "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":2,\"use_bias\":false},"
     "{\"type\":\"batch_normalization\"},"
     "{\"type\":\"activation\",\"activation\":\"sigmoid\"},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}"},
};

START_TEST(test_graph_gradients)
{
    enum { N = 3 };
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    MnError err = {0};
    const char *json = graph_cases[_i].json, *name = graph_cases[_i].name;
    ck_assert_msg(spec_parse(json, strlen(json), &lim, &s, &err) == 0, "%s: %s", name, err.msg);
    Model *m = NULL;
    ck_assert_msg(model_build(&s, &lim, &m, &err) == 0, "%s: %s", name, err.msg);
    size_t nx = (size_t)N * shape_numel(s.input);
    float *x = malloc(nx * sizeof *x);
    uint8_t labels[N] = {0, 2, 1};
    Rng rng;
    rng_seed(&rng, 300 + _i);
    for (size_t i = 0; i < nx; i++)
        x[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.1f * (2.0f * rng_uniform(&rng) - 1.0f); /* nonzero biases too */
    check_util_model_gradients(m, x, labels, N, name);
    free(x);
    model_free(m);
}
END_TEST

static Suite *grad_suite(void)
{
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("Layers");
    tcase_add_loop_test(tc, test_layer_gradients, 0, sizeof cases / sizeof *cases);
    tcase_add_loop_test(tc, test_forward_matches_naive, 0, sizeof cases / sizeof *cases);
    tcase_add_test(tc, test_same_padding_placement);
    tcase_add_loop_test(tc, test_input_grad_matches_naive, 0,
                        sizeof input_grad_cases / sizeof *input_grad_cases);
    suite_add_tcase(s, tc);
    TCase *act = tcase_create("Activations");
    tcase_add_loop_test(act, test_activation_gradients, 0,
                        sizeof activations / sizeof *activations);
    tcase_add_test(act, test_activation_extremes_finite);
    tcase_add_test(act, test_activation_values_wherever_they_sit);
    suite_add_tcase(s, act);
    TCase *graph = tcase_create("Graphs");
    tcase_add_loop_test(graph, test_graph_gradients, 0, sizeof graph_cases / sizeof *graph_cases);
    suite_add_tcase(s, graph);
    return s;
}

MN_TEST_MAIN(grad_suite)
