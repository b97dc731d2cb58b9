/* reshape.c - layers that move no weights: flatten (a view: the model
 * aliases its output to its input, NHWC order as Keras's Flatten) and
 * dropout (inverted dropout; a mask from the run's Rng in training, the
 * identity at inference). */
#include <cJSON.h>
#include <string.h>

#include "layer.h"
#include "spec_read.h"

static int flatten_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in, (void)err;
    l->out = shape_make(1, 1, (int)shape_numel(*in));
    l->param_count = 0;
    return 0;
}

const LayerOps flatten_ops = {
    .name = "flatten",
    .aliases = (const char *const[]){"Flatten", NULL},
    .keras_name = "flatten",
    .keras_class = "Flatten",
    .build = flatten_build,
    .is_view = true,
};

static int dropout_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in;
    float rate = l->cfg.dropout.rate;
    if (!(rate >= 0.0f && rate < 1.0f))
        return mn_fail(err, MN_ESPEC, "rate must be in [0, 1), got %g", rate);
    l->out = *in;
    l->param_count = 0;
    return 0;
}

static size_t dropout_aux(const Layer *l, int batch)
{
    return shape_numel(l->in) * (size_t)batch; /* one keep byte per element */
}

static void dropout_forward(const Layer *l, const float *params, const float *x, float *y,
                            const LayerRun *run)
{
    (void)params;
    size_t n = shape_numel(l->in) * (size_t)run->batch;
    float rate = l->cfg.dropout.rate;
    if (!run->training || rate == 0.0f) {
        memcpy(y, x, n * sizeof *y);
        return;
    }
    unsigned char *keep = run->aux;
    float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i++) {
        keep[i] = rng_uniform(run->rng) >= rate;
        y[i] = keep[i] ? x[i] * scale : 0.0f;
    }
}

static void dropout_backward(const Layer *l, const float *params, float *grads, const float *x,
                             const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y;
    if (!dx)
        return;
    size_t n = shape_numel(l->in) * (size_t)run->batch;
    float rate = l->cfg.dropout.rate;
    if (!run->training || rate == 0.0f) {
        memcpy(dx, dy, n * sizeof *dx);
        return;
    }
    const unsigned char *keep = run->aux;
    float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i++)
        dx[i] = keep[i] ? dy[i] * scale : 0.0f;
}

static int dropout_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    if (!spec_field(obj, "rate"))
        return mn_fail(err, MN_EINVAL, "%s (dropout): missing key \"rate\"", where);
    return spec_opt_float(obj, "rate", where, 0.0, 0.99, &l->cfg.dropout.rate, err);
}

static void dropout_write(const Layer *l, cJSON *o)
{
    cJSON_AddNumberToObject(o, "rate", l->cfg.dropout.rate);
}

const LayerOps dropout_ops = {
    .name = "dropout",
    .aliases = (const char *const[]){"Dropout", NULL},
    .keys = (const char *const[]){"rate", NULL},
    .parse = dropout_parse,
    .write = dropout_write,
    .keras_name = "dropout",
    .keras_class = "Dropout",
    .build = dropout_build,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .aux = dropout_aux,
};
