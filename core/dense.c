/* dense.c - fully connected layer: y = x W + b over the whole batch.
 * W is (in, units) as a Keras kernel, so one product per pass: forward
 * Y = X W, backward dW += X^T dY, db += sum(dY), dX = dY W^T; no b nor db
 * with use_bias false. Forward over
 * a batch is a 1x1 convolution over a row of `batch` pixels, and runs as
 * one (conv_kernel.h): at these widths (10-64 units) it beat OpenBLAS's
 * GEMM by a fifth to a half on the test split. One row of a narrow layer
 * too: OpenBLAS's matrix-vector product took 37 us for the tutorial CNN's
 * 12544 x 10 (a vector of ten per input), ours a few. Backward stays
 * OpenBLAS's GEMMs. */
#include <cJSON.h>

#include "blas.h"
#include "conv_kernel.h"
#include "layer.h"
#include "spec_read.h"

#define DIRECT_MIN_ROWS 8 /* fewer rows: the kernel's blocks would run short */

static int dense_build(Layer *l, const Shape *inputs, int n_in, MnError *err)
{
    (void)n_in;
    Shape in = inputs[0];
    int units = l->cfg.dense.units;
    if (units < 1)
        return mn_fail(err, MN_ESPEC, "units must be at least 1, got %d", units);
    if (in.h != 1 || in.w != 1)
        return mn_fail(err, MN_ESPEC,
                       "dense needs a flat input, got %dx%dx%d: add a flatten layer before it",
                       in.h, in.w, in.c);
    l->out = shape_make(1, 1, units);
    l->param_count = (size_t)in.c * units + (l->cfg.dense.no_bias ? 0 : (size_t)units);
    return 0;
}

static void dense_init(const Layer *l, float *params, Rng *rng)
{
    int in = l->in.c, units = l->cfg.dense.units;
    init_glorot_uniform(params, (size_t)in * units, in, units, rng);
    for (int j = 0; j < units && !l->cfg.dense.no_bias; j++)
        params[(size_t)in * units + j] = 0.0f;
}

/* The batch as a row of pixels with `in` channels, a 1x1 window over it;
 * the model applies the activation after (dense fuses none). */
static ConvGeometry as_pointwise(const Layer *l, int batch)
{
    ConvGeometry g = {.in_h = 1, .in_w = batch, .in_c = l->in.c, .out_h = 1, .out_w = batch,
                      .filters = l->cfg.dense.units, .kh = 1, .kw = 1, .sh = 1, .sw = 1};
    return g;
}

static size_t dense_workspace(const Layer *l, int batch)
{
    ConvGeometry g = as_pointwise(l, batch);
    return zero_bias_room(l->cfg.dense.no_bias, l->cfg.dense.units) +
           conv_kernel_workspace(&g);
}

static void dense_forward(const Layer *l, const float *params, const float *x, float *y,
                          const LayerRun *run)
{
    int in = l->in.c, units = l->cfg.dense.units, batch = run->batch;
    const float *w = params;
    const float *b = l->cfg.dense.no_bias ? zero_bias(run->ws, units) : params + (size_t)in * units;
    if (batch >= DIRECT_MIN_ROWS) {
        ConvGeometry g = as_pointwise(l, batch);
        float *scratch = run->ws + zero_bias_room(l->cfg.dense.no_bias, units);
        conv_kernel_forward(&g, w, b, x, y, 1, scratch);
        return;
    }
    if (batch == 1 && conv_kernel_one_pixel(x, w, b, in, units, y))
        return;
    fill_bias(y, b, batch, units);
    blas_gemm(false, false, batch, units, in, 1.0f, x, w, 1.0f, y);
}

static void dense_backward(const Layer *l, const float *params, float *grads, const float *x,
                           const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)y;
    int in = l->in.c, units = l->cfg.dense.units, batch = run->batch;
    float *dw = grads, *db = grads + (size_t)in * units;
    blas_gemm(true, false, in, units, batch, 1.0f, x, dy, 1.0f, dw);
    if (!l->cfg.dense.no_bias)
        add_column_sums(db, dy, batch, units);
    if (dx)
        blas_gemm(false, true, batch, in, units, 1.0f, dy, params, 0.0f, dx);
}

static int dense_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    if (!spec_field(obj, "units"))
        return mn_fail(err, MN_EINVAL, "%s (dense): missing key \"units\"", where);
    int rc = spec_opt_int(obj, "units", where, 1, 1 << 24, &l->cfg.dense.units, err);
    if (rc || (rc = spec_use_bias(obj, where, &l->cfg.dense.no_bias, err)))
        return rc;
    return spec_activation(obj, where, &l->act, err);
}

static void dense_write(const Layer *l, cJSON *o)
{
    cJSON_AddNumberToObject(o, "units", l->cfg.dense.units);
    cJSON_AddStringToObject(o, "activation", activation_name(l->act));
    spec_write_use_bias(l->cfg.dense.no_bias, o);
}

/* A batch normalization after a linear dense layer, folded into W and b. */
static bool dense_fold_affine(const Layer *l, float *params, const float *scale,
                              const float *shift)
{
    int units = l->cfg.dense.units;
    size_t kernel = (size_t)l->in.c * units;
    if (l->param_count != kernel + (size_t)units)
        return false; /* no bias (use_bias false) to take the shift */
    fold_affine_columns(params, params + kernel, (size_t)l->in.c, units, scale, shift);
    return true;
}

static long dense_macs(const Layer *l)
{
    return (long)l->in.c * l->cfg.dense.units;
}

static size_t dense_bias_floats(const Layer *l)
{
    return l->cfg.dense.no_bias ? 0 : (size_t)l->cfg.dense.units;
}

const LayerOps dense_ops = {
    .name = "dense",
    .aliases = (const char *const[]){"Dense", NULL},
    .keys = (const char *const[]){"units", "activation", "use_bias", NULL},
    .parse = dense_parse,
    .write = dense_write,
    .keras_name = "dense",
    .keras_class = "Dense",
    .macs = dense_macs,
    .takes_activation = true,
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .workspace = dense_workspace,
    .bias_floats = dense_bias_floats,
    .wants_whole_batch = true,
    .fold_affine = dense_fold_affine,
};
