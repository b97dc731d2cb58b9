/* pool.c - pooling windows, NHWC: max, average and global average, with
 * Keras MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D
 * semantics. The three share the window geometry, keys and defaults and
 * differ only in the reduction; global average pooling is average pooling
 * with the whole input as its window.
 * Max pooling's forward keeps
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

/* The window a pooling layer reduces over (global: the whole input). */
static const Window *pool_window(const Layer *l)
{
    return l->type == LAYER_GLOBAL_AVGPOOL2D ? &l->cfg.global_pool.win : &l->cfg.pool;
}

static int pool_build_window(Layer *l, Window *w, Shape in, MnError *err)
{
    int oh, ow;
    int rc = window_build(w, in, &oh, &ow, err);
    if (rc)
        return rc;
    l->out = shape_make(oh, ow, in.c);
    l->param_count = 0;
    return 0;
}

static int pool_build(Layer *l, const Shape *inputs, int n_in, MnError *err)
{
    (void)n_in;
    return pool_build_window(l, &l->cfg.pool, inputs[0], err);
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
MN_CLONE_INLINE void pool_pixel(const Layer *l, const float *xb, int oy, int ox, float *restrict y,
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

static int pool_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
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
    return spec_padding(obj, where, w, err);
}

static void pool_write(const Layer *l, cJSON *o)
{
    window_write(&l->cfg.pool, "pool_size", o);
}

const LayerOps maxpool2d_ops = {
    .name = "maxpool2d",
    .aliases = (const char *const[]){"MaxPooling2D", "max_pooling2d", "MaxPool2D", NULL},
    .keys = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .parse = pool_parse,
    .write = pool_write,
    .keras_name = "max_pooling2d",
    .keras_class = "MaxPooling2D",
    .build = pool_build,
    .forward = maxpool2d_forward,
    .backward = maxpool2d_backward,
    .aux = maxpool2d_aux,
};

/* ---- average pooling ---- */

/* Input pixels window tap range [*first, *end) along one axis reads. */
static void window_span(int o, int k, int stride, int pad_lead, int size, int *first, int *end)
{
    int lo = o * stride - pad_lead, hi = lo + k;
    *first = lo > 0 ? lo : 0;
    *end = hi < size ? hi : size;
}

/* Keras (TensorFlow's avg_pool) divides by the inputs inside the window,
 * not its size: with "same", padding does not count. */
MN_VECTOR_CLONES
static void avgpool2d_forward(const Layer *l, const float *params, const float *x, float *y,
                              const LayerRun *run)
{
    (void)params;
    const Window *w = pool_window(l);
    int ih = l->in.h, iw = l->in.w, ch = l->in.c, oh = l->out.h, ow = l->out.w;
    for (int b = 0; b < run->batch; b++) {
        const float *xb = x + (size_t)b * ih * iw * ch;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *restrict yo = y + (((size_t)b * oh + oy) * ow + ox) * ch;
                int y0, y1, x0, x1;
                window_span(oy, w->kh, w->sh, w->pad_top, ih, &y0, &y1);
                window_span(ox, w->kw, w->sw, w->pad_left, iw, &x0, &x1);
                memset(yo, 0, (size_t)ch * sizeof *yo);
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const float *restrict xi = xb + ((size_t)iy * iw + ix) * ch;
                        for (int c = 0; c < ch; c++)
                            yo[c] += xi[c];
                    }
                float count = (float)((y1 - y0) * (x1 - x0));
                for (int c = 0; c < ch; c++)
                    yo[c] /= count;
            }
    }
}

/* Each output's gradient shared equally by the inputs it averaged; pixels
 * no window reads (strides past the pool) get zero. */
MN_VECTOR_CLONES
static void avgpool2d_backward(const Layer *l, const float *params, float *grads, const float *x,
                               const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y;
    if (!dx)
        return;
    const Window *w = pool_window(l);
    int ih = l->in.h, iw = l->in.w, ch = l->in.c, oh = l->out.h, ow = l->out.w;
    memset(dx, 0, shape_numel(l->in) * (size_t)run->batch * sizeof *dx);
    for (int b = 0; b < run->batch; b++) {
        float *dxb = dx + (size_t)b * ih * iw * ch;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *restrict g = dy + (((size_t)b * oh + oy) * ow + ox) * ch;
                int y0, y1, x0, x1;
                window_span(oy, w->kh, w->sh, w->pad_top, ih, &y0, &y1);
                window_span(ox, w->kw, w->sw, w->pad_left, iw, &x0, &x1);
                float count = (float)((y1 - y0) * (x1 - x0));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float *restrict di = dxb + ((size_t)iy * iw + ix) * ch;
                        for (int c = 0; c < ch; c++)
                            di[c] += g[c] / count;
                    }
            }
    }
}

const LayerOps avgpool2d_ops = {
    .name = "average_pooling2d",
    .aliases = (const char *const[]){"AveragePooling2D", "AvgPool2D", "avgpool2d", NULL},
    .keys = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .parse = pool_parse,
    .write = pool_write,
    .keras_name = "average_pooling2d",
    .keras_class = "AveragePooling2D",
    .build = pool_build,
    .forward = avgpool2d_forward,
    .backward = avgpool2d_backward,
};

/* ---- global average pooling: the window is the whole input ---- */

static int global_avgpool2d_build(Layer *l, const Shape *inputs, int n_in, MnError *err)
{
    (void)n_in;
    Window *w = &l->cfg.global_pool.win;
    *w = (Window){.kh = inputs[0].h, .kw = inputs[0].w, .sh = 1, .sw = 1, .same = false};
    return pool_build_window(l, w, inputs[0], err);
}

static int global_avgpool2d_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    l->cfg.global_pool.keepdims = false; /* Keras's default */
    return spec_opt_bool(obj, "keepdims", where, &l->cfg.global_pool.keepdims, err);
}

static void global_avgpool2d_write(const Layer *l, cJSON *o)
{
    cJSON_AddBoolToObject(o, "keepdims", l->cfg.global_pool.keepdims);
}

const LayerOps global_avgpool2d_ops = {
    .name = "global_average_pooling2d",
    .aliases = (const char *const[]){"GlobalAveragePooling2D", "GlobalAvgPool2D", NULL},
    .keys = (const char *const[]){"keepdims", NULL},
    .parse = global_avgpool2d_parse,
    .write = global_avgpool2d_write,
    .keras_name = "global_average_pooling2d",
    .keras_class = "GlobalAveragePooling2D",
    .build = global_avgpool2d_build,
    .forward = avgpool2d_forward,
    .backward = avgpool2d_backward,
};
