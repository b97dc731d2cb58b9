/* concatenate.c - Keras's Concatenate along the channels (axis -1, the
 * only axis here): inputs of one height and width, their channels side by
 * side in input order. Backward hands each input its own channels of dy. */
#include <cJSON.h>
#include <string.h>

#include "layer.h"
#include "spec_read.h"

static int concatenate_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    int channels = 0;
    for (int k = 0; k < n_in; k++) {
        if (in[k].h != in[0].h || in[k].w != in[0].w)
            return mn_fail(err, MN_ESPEC,
                           "inputs of different heights and widths: input 0 is %dx%dx%d, input %d "
                           "%dx%dx%d (only the channels may differ)",
                           in[0].h, in[0].w, in[0].c, k, in[k].h, in[k].w, in[k].c);
        l->cfg.concat.channels[k] = in[k].c;
        channels += in[k].c;
    }
    l->out = shape_make(in[0].h, in[0].w, channels);
    l->param_count = 0;
    return 0;
}

static void concatenate_forward(const Layer *l, const float *params, const float *x, float *y,
                                const LayerRun *run)
{
    (void)params, (void)x;
    size_t pixels = (size_t)run->batch * l->out.h * l->out.w;
    int width = l->out.c;
    for (int k = 0, first = 0; k < run->n_in; first += l->cfg.concat.channels[k++]) {
        int ck = l->cfg.concat.channels[k];
        for (size_t p = 0; p < pixels; p++)
            memcpy(y + p * width + first, run->in[k] + p * ck, (size_t)ck * sizeof *y);
    }
}

static void concatenate_backward(const Layer *l, const float *params, float *grads,
                                 const float *x, const float *y, float *dy, float *dx,
                                 const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y, (void)dx;
    size_t pixels = (size_t)run->batch * l->out.h * l->out.w;
    int width = l->out.c;
    for (int k = 0, first = 0; k < run->n_in; first += l->cfg.concat.channels[k++]) {
        int ck = l->cfg.concat.channels[k];
        if (run->din[k])
            for (size_t p = 0; p < pixels; p++)
                memcpy(run->din[k] + p * ck, dy + p * width + first, (size_t)ck * sizeof *dy);
    }
}

static int concatenate_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    (void)l;
    int axis = -1;
    int rc = spec_opt_int(obj, "axis", where, -4, 3, &axis, err);
    if (rc == 0 && axis != -1)
        rc = mn_fail(err, MN_ESPEC,
                     "%s (concatenate).axis: %d is not supported: only -1, the channels", where,
                     axis);
    return rc;
}

static void concatenate_write(const Layer *l, cJSON *o)
{
    (void)l;
    cJSON_AddNumberToObject(o, "axis", -1);
}

const LayerOps concatenate_ops = {
    .name = "concatenate",
    .aliases = (const char *const[]){"Concatenate", NULL},
    .keys = (const char *const[]){"axis", NULL},
    .parse = concatenate_parse,
    .write = concatenate_write,
    .keras_name = "concatenate",
    .keras_class = "Concatenate",
    .build = concatenate_build,
    .min_inputs = 2,
    .max_inputs = LAYER_MAX_INPUTS,
    .forward = concatenate_forward,
    .backward = concatenate_backward,
};
