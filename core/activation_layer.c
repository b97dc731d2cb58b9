/* activation_layer.c - Keras's Activation layer: its input, through its
 * "activation". The layer itself is the identity; the model applies the
 * activation to its output as to any layer's (and keeps the input where
 * the activation's backward needs it), so every activation works here. */
#include <cJSON.h>
#include <string.h>

#include "layer.h"
#include "spec_read.h"

static int activation_layer_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in, (void)err;
    l->out = in[0];
    l->param_count = 0;
    return 0;
}

static void activation_layer_forward(const Layer *l, const float *params, const float *x,
                                     float *y, const LayerRun *run)
{
    (void)params;
    memcpy(y, x, shape_numel(l->out) * (size_t)run->batch * sizeof *y);
}

/* dy is dL/dz already (the model took it through the activation). */
static void activation_layer_backward(const Layer *l, const float *params, float *grads,
                                      const float *x, const float *y, float *dy, float *dx,
                                      const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y;
    if (dx)
        memcpy(dx, dy, shape_numel(l->out) * (size_t)run->batch * sizeof *dx);
}

static int activation_layer_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    if (!spec_field(obj, "activation"))
        return mn_fail(err, MN_EINVAL, "%s (activation): missing key \"activation\"", where);
    return spec_activation(obj, where, &l->act, err);
}

static void activation_layer_write(const Layer *l, cJSON *o)
{
    cJSON_AddStringToObject(o, "activation", activation_name(l->act));
}

const LayerOps activation_ops = {
    .name = "activation",
    .aliases = (const char *const[]){"Activation", NULL},
    .keys = (const char *const[]){"activation", NULL},
    .parse = activation_layer_parse,
    .write = activation_layer_write,
    .keras_name = "activation",
    .keras_class = "Activation",
    .takes_activation = true,
    .build = activation_layer_build,
    .forward = activation_layer_forward,
    .backward = activation_layer_backward,
};
