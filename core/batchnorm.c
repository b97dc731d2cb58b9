/* batchnorm.c - Keras's BatchNormalization over the channels (NHWC's last
 * axis; a dense layer's units). Parameters gamma (scale) then beta (center);
 * state moving_mean then moving_variance (Keras's weight order).
 * Training normalises with the mean and biased variance of the whole batch
 * (all samples, all pixels of a channel), from sums the model adds up over
 * every lane (LayerOps.batch_sums); the moving statistics take the same
 * biased variance, as Keras 3 does, after the step. Inference is the
 * affine y = x * scale + shift of the moving statistics; serving folds it
 * into the layer before when it can (fold.c). In training it also does
 * the work of a relu layer that alone reads its output (takes_relu): the
 * relu in forward's affine pass, and its mask, recomputed from x, in
 * backward's two passes, where apart the relu made a pass of its own each
 * way. Never writes Model.state itself: update_state does, between steps. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "layer.h"
#include "spec_read.h"

/* aux in training: this run's own sums (forward's, then backward's), then
 * the batch statistics forward used, for backward and the state update,
 * and the affine it applied, for backward to recompute a relu's mask. */
typedef struct {
    double *own;                  /* 2C + 1 */
    float *mean, *inv_std, *var;  /* C each */
    float *scale, *shift;         /* C each */
} BatchNormAux;

static BatchNormAux aux_view(const Layer *l, void *aux)
{
    size_t c = (size_t)l->in.c;
    double *own = aux;
    float *f = (float *)(own + 2 * c + 1);
    return (BatchNormAux){.own = own, .mean = f, .inv_std = f + c, .var = f + 2 * c,
                          .scale = f + 3 * c, .shift = f + 4 * c};
}

static size_t batchnorm_aux(const Layer *l, int batch)
{
    (void)batch; /* per channel, whatever the batch */
    size_t c = (size_t)l->in.c;
    return (2 * c + 1) * sizeof(double) + 5 * c * sizeof(float);
}

static int batchnorm_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in, (void)err;
    l->out = in[0];
    l->param_count = (size_t)(l->cfg.bn.scale + l->cfg.bn.center) * (size_t)in[0].c;
    l->state_count = 2 * (size_t)in[0].c;
    return 0;
}

static void batchnorm_init(const Layer *l, float *params, Rng *rng)
{
    (void)rng;
    size_t c = (size_t)l->in.c;
    if (l->cfg.bn.scale)
        for (size_t j = 0; j < c; j++)
            params[j] = 1.0f; /* gamma: ones */
    if (l->cfg.bn.center)
        memset(params + (l->cfg.bn.scale ? c : 0), 0, c * sizeof *params); /* beta: zeros */
}

static void batchnorm_init_state(const Layer *l, float *state)
{
    size_t c = (size_t)l->in.c;
    memset(state, 0, c * sizeof *state); /* moving_mean: zeros */
    for (size_t j = 0; j < c; j++)
        state[c + j] = 1.0f;             /* moving_variance: ones */
}

static const float *gamma_of(const Layer *l, const float *params)
{
    return l->cfg.bn.scale ? params : NULL;
}

static const float *beta_of(const Layer *l, const float *params)
{
    return l->cfg.bn.center ? params + (l->cfg.bn.scale ? l->in.c : 0) : NULL;
}

static size_t batchnorm_batch_sums(const Layer *l) { return 2 * (size_t)l->in.c + 1; }

static int rows_of(const Layer *l, int batch) { return batch * l->in.h * l->in.w; }

/* The per-channel loops below keep one accumulator per channel and run
 * rows in order: vectorised across channels, every sum adds its terms in
 * the same order at any vector width. */

/* sum += x, square += x^2 per channel, in double. */
MN_VECTOR_CLONES
static void channel_sums(const float *restrict x, int rows, int c, double *restrict sum,
                         double *restrict square)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < c; j++) {
            double v = x[(size_t)r * c + j];
            sum[j] += v;
            square[j] += v * v;
        }
}

/* The backward passes below come in two forms, chosen once per call: dy
 * as it is, or through the relu after the affine z = x * scale + shift
 * (relu_scale, relu_shift; NULL: no relu), 0 where z is not above 0. The
 * relu layer's own backward tests its output z > 0 ? z : 0 for > 0, the
 * same test as z > 0 here; recomputing z from x, which the passes read
 * anyway, spares reading the output. Each form is its own loop, with the
 * scale and shift read unconditionally where there is a relu: a test
 * inside the loop left GCC's loop scalar. */
MN_CLONE_INLINE float through_relu(bool relu, float x, float dy, float scale, float shift)
{
    if (!relu)
        return dy;
    /* dy's bits, or none (0.0f): a select GCC vectorises into the double
     * sums of channel_grad_sums, where ?: left the loop scalar */
    uint32_t bits;
    memcpy(&bits, &dy, sizeof bits);
    bits &= -(uint32_t)(x * scale + shift > 0.0f);
    memcpy(&dy, &bits, sizeof dy);
    return dy;
}

/* Element i (channel j): x_hat, and dL/dz, dy through the relu if any. */
MN_CLONE_INLINE float normalised_grad(bool relu, const float *restrict x, const float *restrict dy,
                                size_t i, int j, const float *restrict mean,
                                const float *restrict inv_std, const float *restrict scale,
                                const float *restrict shift, float *x_hat)
{
    *x_hat = (x[i] - mean[j]) * inv_std[j];
    return through_relu(relu, x[i], dy[i], relu ? scale[j] : 0.0f, relu ? shift[j] : 0.0f);
}

/* sum += dz, dot += dz * x_hat per channel, in double. */
MN_CLONE_INLINE void grad_sums_rows(bool relu, const float *restrict x, const float *restrict dy,
                              int rows, int c, const float *restrict mean,
                              const float *restrict inv_std, const float *restrict scale,
                              const float *restrict shift, double *restrict sum,
                              double *restrict dot)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < c; j++) {
            float x_hat;
            float dz = normalised_grad(relu, x, dy, (size_t)r * c + j, j, mean, inv_std, scale,
                                       shift, &x_hat);
            sum[j] += dz;
            dot[j] += (double)dz * x_hat;
        }
}

MN_VECTOR_CLONES
static void channel_grad_sums(const float *restrict x, const float *restrict dy, int rows, int c,
                              const float *restrict mean, const float *restrict inv_std,
                              const float *restrict relu_scale, const float *restrict relu_shift,
                              double *restrict sum, double *restrict dot)
{
    if (relu_scale)
        grad_sums_rows(true, x, dy, rows, c, mean, inv_std, relu_scale, relu_shift, sum, dot);
    else
        grad_sums_rows(false, x, dy, rows, c, mean, inv_std, NULL, NULL, sum, dot);
}

/* dx = k * (dz - mean_dy - x_hat * mean_dyx) per channel. */
MN_CLONE_INLINE void input_gradient_rows(bool relu, const float *restrict x, const float *restrict dy,
                                   float *restrict dx, int rows, int c,
                                   const float *restrict mean, const float *restrict inv_std,
                                   const float *restrict scale, const float *restrict shift,
                                   const float *restrict k, const float *restrict mean_dy,
                                   const float *restrict mean_dyx)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < c; j++) {
            size_t i = (size_t)r * c + j;
            float x_hat;
            float dz = normalised_grad(relu, x, dy, i, j, mean, inv_std, scale, shift, &x_hat);
            dx[i] = k[j] * (dz - mean_dy[j] - x_hat * mean_dyx[j]);
        }
}

MN_VECTOR_CLONES
static void input_gradient(const float *restrict x, const float *restrict dy, float *restrict dx,
                           int rows, int c, const float *restrict mean,
                           const float *restrict inv_std, const float *restrict relu_scale,
                           const float *restrict relu_shift, const float *restrict k,
                           const float *restrict mean_dy, const float *restrict mean_dyx)
{
    if (relu_scale)
        input_gradient_rows(true, x, dy, dx, rows, c, mean, inv_std, relu_scale, relu_shift, k,
                            mean_dy, mean_dyx);
    else
        input_gradient_rows(false, x, dy, dx, rows, c, mean, inv_std, NULL, NULL, k, mean_dy,
                            mean_dyx);
}

/* sums: sum of x per channel, sum of x^2, count. */
static void batchnorm_forward_sums(const Layer *l, const float *x, int batch, double *sums)
{
    int c = l->in.c, rows = rows_of(l, batch);
    memset(sums, 0, (2 * (size_t)c + 1) * sizeof *sums);
    channel_sums(x, rows, c, sums, sums + c);
    sums[2 * c] = rows;
}

/* y = x * scale + shift, row by row; then, with relu, z > 0 ? z : 0 as
 * the relu layer writes it. */
MN_VECTOR_CLONES
static void apply_affine(const float *restrict x, float *restrict y, int rows, int c,
                         const float *restrict scale, const float *restrict shift, bool relu)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < c; j++) {
            float z = x[(size_t)r * c + j] * scale[j] + shift[j];
            y[(size_t)r * c + j] = relu && !(z > 0.0f) ? 0.0f : z;
        }
}

/* Inference: the moving statistics as scale and shift per channel. */
static void batchnorm_as_affine(const Layer *l, const float *params, const float *state,
                                float *scale, float *shift)
{
    const float *gamma = gamma_of(l, params), *beta = beta_of(l, params);
    int c = l->in.c;
    for (int j = 0; j < c; j++) {
        double a = (gamma ? gamma[j] : 1.0) / sqrt((double)state[c + j] + l->cfg.bn.epsilon);
        scale[j] = (float)a;
        shift[j] = (float)((beta ? beta[j] : 0.0) - state[j] * a);
    }
}

static size_t batchnorm_workspace(const Layer *l, int batch)
{
    (void)batch;
    return 3 * (size_t)l->in.c; /* forward: scale, shift; backward: three per channel */
}

static void batchnorm_forward(const Layer *l, const float *params, const float *x, float *y,
                              const LayerRun *run)
{
    int c = l->in.c, rows = rows_of(l, run->batch);
    float *scale = run->ws, *shift = run->ws + c;
    if (!run->training) {
        batchnorm_as_affine(l, params, run->state, scale, shift);
        apply_affine(x, y, rows, c, scale, shift, false);
        return;
    }
    BatchNormAux a = aux_view(l, run->aux);
    const double *sums = run->sums;
    if (!sums) { /* the whole batch is here: its own sums are the total */
        batchnorm_forward_sums(l, x, run->batch, a.own);
        sums = a.own;
    }
    const float *gamma = gamma_of(l, params), *beta = beta_of(l, params);
    double n = sums[2 * c];
    for (int j = 0; j < c; j++) {
        double mean = sums[j] / n, var = fmax(sums[c + j] / n - mean * mean, 0.0);
        double inv_std = 1.0 / sqrt(var + l->cfg.bn.epsilon), g = gamma ? gamma[j] : 1.0;
        a.mean[j] = (float)mean;
        a.inv_std[j] = (float)inv_std;
        a.var[j] = (float)var;
        a.scale[j] = (float)(g * inv_std);
        a.shift[j] = (float)((beta ? beta[j] : 0.0) - mean * g * inv_std);
    }
    apply_affine(x, y, rows, c, a.scale, a.shift, run->relu);
}

/* Inference's y = x * scale + shift backward: dx = dy * scale. Only the
 * input's gradient: nothing trains on an inference pass. */
static void affine_backward(const Layer *l, const float *params, const float *dy, float *dx,
                            int rows, const LayerRun *run)
{
    int c = l->in.c;
    float *scale = run->ws, *shift = run->ws + c;
    batchnorm_as_affine(l, params, run->state, scale, shift);
    memset(shift, 0, (size_t)c * sizeof *shift);
    apply_affine(dy, dx, rows, c, scale, shift, false);
}

/* sums: sum of dy per channel, sum of dy * x_hat, count; kept in aux as
 * this run's share of dbeta and dgamma. */
static void batchnorm_backward_sums(const Layer *l, const float *params, const float *x,
                                    const float *dy, const LayerRun *run, double *sums)
{
    (void)params;
    int c = l->in.c, rows = rows_of(l, run->batch);
    BatchNormAux a = aux_view(l, run->aux);
    memset(sums, 0, (2 * (size_t)c + 1) * sizeof *sums);
    channel_grad_sums(x, dy, rows, c, a.mean, a.inv_std, run->relu ? a.scale : NULL,
                      run->relu ? a.shift : NULL, sums, sums + c);
    sums[2 * c] = rows;
    if (sums != a.own)
        memcpy(a.own, sums, (2 * (size_t)c + 1) * sizeof *sums);
}

/* dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)), the
 * means over the whole batch; dbeta, dgamma: this run's own sums. */
static void batchnorm_backward(const Layer *l, const float *params, float *grads, const float *x,
                               const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)y;
    int c = l->in.c, rows = rows_of(l, run->batch);
    if (!run->training) { /* the affine of inference: an input gradient run's */
        if (dx)
            affine_backward(l, params, dy, dx, rows, run);
        return;
    }
    BatchNormAux a = aux_view(l, run->aux);
    const double *sums = run->sums;
    if (!sums) {
        batchnorm_backward_sums(l, params, x, dy, run, a.own);
        sums = a.own;
    }
    const float *gamma = gamma_of(l, params);
    if (l->cfg.bn.scale)
        for (int j = 0; j < c; j++)
            grads[j] += (float)a.own[c + j];
    if (l->cfg.bn.center)
        for (int j = 0; j < c; j++)
            grads[(l->cfg.bn.scale ? c : 0) + j] += (float)a.own[j];
    if (!dx)
        return;
    double n = sums[2 * c];
    /* per channel: gamma * inv_std, mean(dy), mean(dy * x_hat) */
    float *k = run->ws, *mean_dy = run->ws + c, *mean_dyx = run->ws + 2 * c;
    for (int j = 0; j < c; j++) {
        k[j] = (float)((gamma ? gamma[j] : 1.0) * a.inv_std[j]);
        mean_dy[j] = (float)(sums[j] / n);
        mean_dyx[j] = (float)(sums[c + j] / n);
    }
    input_gradient(x, dy, dx, rows, c, a.mean, a.inv_std, run->relu ? a.scale : NULL,
                   run->relu ? a.shift : NULL, k, mean_dy, mean_dyx);
}

/* Keras: moving = moving * momentum + batch * (1 - momentum). */
static void batchnorm_update_state(const Layer *l, const void *aux, float *state)
{
    int c = l->in.c;
    BatchNormAux a = aux_view(l, (void *)aux);
    float m = l->cfg.bn.momentum;
    for (int j = 0; j < c; j++) {
        state[j] = state[j] * m + a.mean[j] * (1.0f - m);
        state[c + j] = state[c + j] * m + a.var[j] * (1.0f - m);
    }
}

static int batchnorm_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    BatchNormConfig *b = &l->cfg.bn;
    *b = (BatchNormConfig){.momentum = 0.99f, .epsilon = 0.001f, .center = true, .scale = true};
    int rc;
    if ((rc = spec_opt_float(obj, "momentum", where, 0.0, 1.0, &b->momentum, err)) ||
        (rc = spec_opt_float(obj, "epsilon", where, 1e-10, 1.0, &b->epsilon, err)) ||
        (rc = spec_opt_bool(obj, "center", where, &b->center, err)) ||
        (rc = spec_opt_bool(obj, "scale", where, &b->scale, err)))
        return rc;
    return 0;
}

static void batchnorm_write(const Layer *l, cJSON *o)
{
    const BatchNormConfig *b = &l->cfg.bn;
    cJSON_AddItemToObject(o, "momentum", json_float(b->momentum));
    cJSON_AddItemToObject(o, "epsilon", json_float(b->epsilon));
    cJSON_AddBoolToObject(o, "center", b->center);
    cJSON_AddBoolToObject(o, "scale", b->scale);
}

/* beta, when gamma comes before it: Keras's two variables, clipped apart */
static size_t batchnorm_bias_floats(const Layer *l)
{
    return l->cfg.bn.scale && l->cfg.bn.center ? (size_t)l->out.c : 0;
}

const LayerOps batchnorm_ops = {
    .name = "batch_normalization",
    .aliases = (const char *const[]){"BatchNormalization", NULL},
    .keys = (const char *const[]){"momentum", "epsilon", "center", "scale", NULL},
    .parse = batchnorm_parse,
    .write = batchnorm_write,
    .keras_name = "batch_normalization",
    .keras_class = "BatchNormalization",
    .build = batchnorm_build,
    .init = batchnorm_init,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .workspace = batchnorm_workspace,
    .aux = batchnorm_aux,
    .bias_floats = batchnorm_bias_floats,
    .wants_whole_batch = true,
    .takes_relu = true,
    .init_state = batchnorm_init_state,
    .update_state = batchnorm_update_state,
    .batch_sums = batchnorm_batch_sums,
    .forward_sums = batchnorm_forward_sums,
    .backward_sums = batchnorm_backward_sums,
    .as_affine = batchnorm_as_affine,
};
