/* pool.c - max pooling, Keras MaxPooling2D semantics, NHWC. Forward keeps
 * where in the sample each output's winning input was, in the layer's aux
 * memory, so backward routes each gradient to it. Padded positions never
 * win; on a tie the first maximum in scan order wins.
 * Positions count from the start of the sample: a layer's input is at most
 * 2^24 values (MODEL_MAX_ACTIVATION), so they fit an int32. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cJSON.h>

#include "layer.h"
#include "spec_read.h"

static int maxpool2d_build(Layer *l, const Shape *inputs, int n_in, MnError *err)
{
    (void)n_in;
    Shape in = inputs[0];
    int oh, ow;
    int rc = window_build(&l->cfg.pool, in, &oh, &ow, err);
    if (rc)
        return rc;
    l->out = shape_make(oh, ow, in.c);
    l->param_count = 0;
    return 0;
}

static size_t maxpool2d_aux(const Layer *l, int batch)
{
    return shape_numel(l->out) * (size_t)batch * sizeof(int32_t);
}

/* One output pixel, all channels at once: the first tap inside the input
 * is copied, each later one replaces the channels it beats (strictly, so a
 * tie keeps the earlier tap). The channel loops are branch-free and contiguous,
 * so they vectorise; comparing channel by channel with a branch mispredicted
 * half the time, and took most of an epoch of the tutorial's CNN. */
static void pool_pixel(const Layer *l, const float *xb, int oy, int ox, float *restrict y,
                       int32_t *restrict arg)
{
    const Window *w = &l->cfg.pool;
    int ih = l->in.h, iw = l->in.w, ch = l->in.c;
    bool first = true;
    for (int ky = 0; ky < w->kh; ky++) {
        int iy = window_tap(oy, ky, w->sh, w->pad_top, ih);
        if (iy < 0)
            continue;
        for (int kx = 0; kx < w->kw; kx++) {
            int ix = window_tap(ox, kx, w->sw, w->pad_left, iw);
            if (ix < 0)
                continue;
            size_t at = ((size_t)iy * iw + ix) * ch;
            const float *restrict xi = xb + at;
            int32_t where = (int32_t)at;
            if (first) {
                memcpy(y, xi, (size_t)ch * sizeof *y);
                if (arg)
                    for (int c = 0; c < ch; c++)
                        arg[c] = where + c;
                first = false;
            } else if (arg) {
                for (int c = 0; c < ch; c++) {
                    /* the position is chosen by mask, not by ?: which GCC
                     * will not vectorise for a float test and int result */
                    int32_t wins = -(int32_t)(xi[c] > y[c]);
                    y[c] = xi[c] > y[c] ? xi[c] : y[c];
                    arg[c] = ((where + c) & wins) | (arg[c] & ~wins);
                }
            } else {
                for (int c = 0; c < ch; c++)
                    y[c] = xi[c] > y[c] ? xi[c] : y[c];
            }
        }
    }
}

MN_VECTOR_CLONES
static void maxpool2d_forward(const Layer *l, const float *params, const float *x, float *y,
                              const LayerRun *run)
{
    (void)params;
    int ih = l->in.h, iw = l->in.w, ch = l->in.c, oh = l->out.h, ow = l->out.w;
    int32_t *arg = run->aux; /* NULL at inference: nothing to remember */
    for (int b = 0; b < run->batch; b++) {
        const float *xb = x + (size_t)b * ih * iw * ch;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                size_t o = (((size_t)b * oh + oy) * ow + ox) * ch;
                pool_pixel(l, xb, oy, ox, y + o, arg ? arg + o : NULL);
            }
    }
}

static void maxpool2d_backward(const Layer *l, const float *params, float *grads, const float *x,
                               const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y;
    if (!dx)
        return;
    const int32_t *arg = run->aux;
    size_t in_per = shape_numel(l->in), out_per = shape_numel(l->out);
    for (int b = 0; b < run->batch; b++) {
        /* cleared a sample at a time, so the scatter finds it in cache */
        float *dxb = dx + (size_t)b * in_per;
        memset(dxb, 0, in_per * sizeof *dxb);
        size_t first = (size_t)b * out_per;
        for (size_t o = first; o < first + out_per; o++)
            dxb[arg[o]] += dy[o];
    }
}

static int maxpool2d_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    Window *w = &l->cfg.pool;
    w->kh = w->kw = 2;
    int rc = spec_opt_pair(obj, "pool_size", where, SPEC_KERNEL_MAX, &w->kh, &w->kw, err);
    if (rc)
        return rc;
    w->sh = w->kh; /* Keras: strides default to pool_size */
    w->sw = w->kw;
    if ((rc = spec_opt_pair(obj, "strides", where, SPEC_KERNEL_MAX, &w->sh, &w->sw, err)))
        return rc;
    return spec_padding(obj, where, &w->same, err);
}

static void maxpool2d_write(const Layer *l, cJSON *o)
{
    window_write(&l->cfg.pool, "pool_size", o);
}

const LayerOps maxpool2d_ops = {
    .name = "maxpool2d",
    .aliases = (const char *const[]){"MaxPooling2D", "max_pooling2d", "MaxPool2D", NULL},
    .keys = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .parse = maxpool2d_parse,
    .write = maxpool2d_write,
    .keras_name = "max_pooling2d",
    .keras_class = "MaxPooling2D",
    .build = maxpool2d_build,
    .forward = maxpool2d_forward,
    .backward = maxpool2d_backward,
    .aux = maxpool2d_aux,
};
