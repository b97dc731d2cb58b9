/* activation_layer.c - Keras's Activation layer: its input, through its
 * "activation". An activation that works from its output alone it applies
 * itself (fuses_activation), relu in the same pass as the copy: after a
 * batch normalization its input is a whole batch of wide maps, and a copy
 * then a pass in place went through memory twice each way. For the others
 * (softmax, gelu, swish) the layer copies, and the model applies them as
 * to any layer's output, keeping the input where their backward needs it. */
#include <cJSON.h>
#include <string.h>

#include "layer.h"
#include "spec_read.h"
#include "vector_clones.h"

static int activation_layer_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in, (void)err;
    l->out = in[0];
    l->param_count = 0;
    return 0;
}

MN_VECTOR_CLONES
static void relu_into(const float *restrict x, float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

MN_VECTOR_CLONES
static void relu_backward_into(const float *restrict y, const float *restrict dy,
                               float *restrict dx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static void activation_layer_forward(const Layer *l, const float *params, const float *x,
                                     float *y, const LayerRun *run)
{
    (void)params;
    int width = (int)shape_numel(l->out);
    size_t n = (size_t)width * run->batch;
    bool applies = layer_applies_activation(l);
    if (applies && l->act == ACT_RELU) {
        relu_into(x, y, n);
        return;
    }
    memcpy(y, x, n * sizeof *y);
    if (applies)
        activation_forward(l->act, y, run->batch, width);
}

/* dy is dL/da; for an activation the model applies, dL/dz already. */
static void activation_layer_backward(const Layer *l, const float *params, float *grads,
                                      const float *x, const float *y, float *dy, float *dx,
                                      const LayerRun *run)
{
    (void)params, (void)grads, (void)x;
    if (!dx)
        return;
    int width = (int)shape_numel(l->out);
    size_t n = (size_t)width * run->batch;
    bool applies = layer_applies_activation(l);
    if (applies && l->act == ACT_RELU) {
        relu_backward_into(y, dy, dx, n);
        return;
    }
    memcpy(dx, dy, n * sizeof *dx);
    if (applies)
        activation_backward(l->act, NULL, y, dx, run->batch, width);
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
    .fuses_activation = true,
    .only_activation = true,
    .build = activation_layer_build,
    .forward = activation_layer_forward,
    .backward = activation_layer_backward,
};
