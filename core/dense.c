/* dense.c - fully connected layer: y = x W + b over the whole batch.
 * W is (in, units) as a Keras kernel, so one GEMM per pass: forward
 * Y = X W, backward dW += X^T dY, db += sum(dY), dX = dY W^T. */
#include "blas.h"
#include "layer.h"

static int dense_build(Layer *l, Shape in, MnError *err)
{
    int units = l->cfg.dense.units;
    if (units < 1)
        return mn_fail(err, MN_ESPEC, "units must be at least 1, got %d", units);
    if (in.h != 1 || in.w != 1)
        return mn_fail(err, MN_ESPEC,
                       "dense needs a flat input, got %dx%dx%d: add a flatten layer before it",
                       in.h, in.w, in.c);
    l->out = shape_make(1, 1, units);
    l->param_count = (size_t)in.c * units + units;
    return 0;
}

static void dense_init(const Layer *l, float *params, Rng *rng)
{
    int in = l->in.c, units = l->cfg.dense.units;
    init_glorot_uniform(params, (size_t)in * units, in, units, rng);
    for (int j = 0; j < units; j++)
        params[(size_t)in * units + j] = 0.0f;
}

static void dense_forward(const Layer *l, const float *params, const float *x, float *y,
                          const LayerRun *run)
{
    int in = l->in.c, units = l->cfg.dense.units, batch = run->batch;
    const float *w = params, *b = params + (size_t)in * units;
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
    add_column_sums(db, dy, batch, units);
    if (dx)
        blas_gemm(false, true, batch, in, units, 1.0f, dy, params, 0.0f, dx);
}

const LayerOps dense_ops = {
    .name = "dense",
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .wants_whole_batch = true,
};
