/* leaky_elu.c - Keras's LeakyReLU and ELU layers: the leaky_relu and elu
 * activations with a slope of the spec's below zero (negative_slope,
 * Keras 2's alpha, default 0.3; alpha, default 1), where the activation
 * strings have Keras's fixed 0.2 and 1. No weights; backward works from
 * the output, as the activations' does (activation.c). */
#include <cJSON.h>
#include <string.h>

#include "layer.h"
#include "spec_read.h"

#define LEAKY_RELU_DEFAULT 0.3f /* Keras's LeakyReLU layer */
#define ELU_DEFAULT 1.0f

static int slope_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in, (void)err;
    l->out = in[0];
    l->param_count = 0;
    return 0;
}

static void slope_forward(const Layer *l, const float *params, const float *x, float *y,
                          const LayerRun *run)
{
    (void)params;
    size_t n = shape_numel(l->out) * (size_t)run->batch;
    memcpy(y, x, n * sizeof *y);
    if (l->type == LAYER_ELU)
        activation_elu(y, n, l->cfg.slope.alpha);
    else
        activation_leaky_relu(y, n, l->cfg.slope.alpha);
}

static void slope_backward(const Layer *l, const float *params, float *grads, const float *x,
                           const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x;
    if (!dx)
        return;
    size_t n = shape_numel(l->out) * (size_t)run->batch;
    memcpy(dx, dy, n * sizeof *dx);
    if (l->type == LAYER_ELU)
        activation_elu_backward(y, dx, n, l->cfg.slope.alpha);
    else
        activation_leaky_relu_backward(y, dx, n, l->cfg.slope.alpha);
}

/* LeakyReLU: Keras 3's negative_slope, or Keras 2's alpha (not both). */
static int leaky_relu_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    const char *key = spec_field(obj, "alpha") ? "alpha" : "negative_slope";
    if (spec_field(obj, "alpha") && spec_field(obj, "negative_slope"))
        return mn_fail(err, MN_EINVAL, "%s (leaky_relu): \"negative_slope\" and \"alpha\" (its "
                       "Keras 2 name) are the same key: give one", where);
    l->cfg.slope.alpha = LEAKY_RELU_DEFAULT;
    return spec_opt_float(obj, key, where, 0.0, LAYER_SLOPE_MAX, &l->cfg.slope.alpha, err);
}

static void leaky_relu_write(const Layer *l, cJSON *o)
{
    cJSON_AddNumberToObject(o, "negative_slope", l->cfg.slope.alpha);
}

static int elu_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    l->cfg.slope.alpha = ELU_DEFAULT;
    return spec_opt_float(obj, "alpha", where, 0.0, LAYER_SLOPE_MAX, &l->cfg.slope.alpha, err);
}

static void elu_write(const Layer *l, cJSON *o)
{
    cJSON_AddNumberToObject(o, "alpha", l->cfg.slope.alpha);
}

const LayerOps leaky_relu_ops = {
    .name = "leaky_relu",
    .aliases = (const char *const[]){"LeakyReLU", NULL},
    .keys = (const char *const[]){"negative_slope", "alpha", NULL},
    .parse = leaky_relu_parse,
    .write = leaky_relu_write,
    .keras_name = "leaky_re_lu",
    .keras_class = "LeakyReLU",
    .build = slope_build,
    .forward = slope_forward,
    .backward = slope_backward,
};

const LayerOps elu_ops = {
    .name = "elu",
    .aliases = (const char *const[]){"ELU", NULL},
    .keys = (const char *const[]){"alpha", NULL},
    .parse = elu_parse,
    .write = elu_write,
    .keras_name = "elu",
    .keras_class = "ELU",
    .build = slope_build,
    .forward = slope_forward,
    .backward = slope_backward,
};
