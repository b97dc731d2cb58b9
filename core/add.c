/* add.c - Keras's Add: the elementwise sum of two or more inputs of one
 * shape. Forward sums them in input order; backward hands dy to every
 * input (the model adds it to what the input's other readers give). */
#include <string.h>

#include "layer.h"

static int add_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    for (int k = 1; k < n_in; k++)
        if (in[k].h != in[0].h || in[k].w != in[0].w || in[k].c != in[0].c)
            return mn_fail(err, MN_ESPEC,
                           "inputs of different shapes: input 0 is %dx%dx%d, input %d %dx%dx%d",
                           in[0].h, in[0].w, in[0].c, k, in[k].h, in[k].w, in[k].c);
    l->out = in[0];
    l->param_count = 0;
    return 0;
}

MN_VECTOR_CLONES
static void add_forward(const Layer *l, const float *params, const float *x, float *y,
                        const LayerRun *run)
{
    (void)params;
    size_t n = shape_numel(l->out) * (size_t)run->batch;
    memcpy(y, x, n * sizeof *y);
    for (int k = 1; k < run->n_in; k++) {
        const float *restrict xk = run->in[k];
        for (size_t i = 0; i < n; i++)
            y[i] += xk[i];
    }
}

static void add_backward(const Layer *l, const float *params, float *grads, const float *x,
                         const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y, (void)dx;
    size_t n = shape_numel(l->out) * (size_t)run->batch;
    for (int k = 0; k < run->n_in; k++)
        if (run->din[k])
            memcpy(run->din[k], dy, n * sizeof *dy);
}

const LayerOps add_ops = {
    .name = "add",
    .aliases = (const char *const[]){"Add", NULL},
    .keras_name = "add",
    .keras_class = "Add",
    .build = add_build,
    .min_inputs = 2,
    .max_inputs = LAYER_MAX_INPUTS,
    .forward = add_forward,
    .backward = add_backward,
};
