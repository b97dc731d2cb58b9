/* pool.c - max pooling, Keras MaxPooling2D semantics, NHWC. Forward keeps
 * the winning input index of every output in the layer's aux memory so
 * backward routes each gradient to it. Padded positions never win; on a
 * tie the first maximum in scan order wins. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "layer.h"

static int maxpool2d_build(Layer *l, Shape in, MnError *err)
{
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

static void maxpool2d_forward(const Layer *l, const float *params, const float *x, float *y,
                              const LayerRun *run)
{
    (void)params;
    const Window *w = &l->cfg.pool;
    int ih = l->in.h, iw = l->in.w, ch = l->in.c, oh = l->out.h, ow = l->out.w;
    int32_t *arg = run->aux; /* NULL at inference: nothing to remember */
    for (int b = 0; b < run->batch; b++) {
        const float *xb = x + (size_t)b * ih * iw * ch;
        size_t in_base = (size_t)b * ih * iw * ch;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                size_t o = (((size_t)b * oh + oy) * ow + ox) * ch;
                for (int c = 0; c < ch; c++) {
                    float best = -INFINITY;
                    int32_t where = -1;
                    for (int ky = 0; ky < w->kh; ky++) {
                        int iy = window_tap(oy, ky, w->sh, w->pad_top, ih);
                        if (iy < 0)
                            continue;
                        for (int kx = 0; kx < w->kw; kx++) {
                            int ix = window_tap(ox, kx, w->sw, w->pad_left, iw);
                            if (ix < 0)
                                continue;
                            size_t i = ((size_t)iy * iw + ix) * ch + c;
                            if (where < 0 || xb[i] > best) {
                                best = xb[i];
                                where = (int32_t)(in_base + i);
                            }
                        }
                    }
                    y[o + c] = best;
                    if (arg)
                        arg[o + c] = where;
                }
            }
    }
}

static void maxpool2d_backward(const Layer *l, const float *params, float *grads, const float *x,
                               const float *y, const float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y;
    if (!dx)
        return;
    const int32_t *arg = run->aux;
    size_t n_out = shape_numel(l->out) * (size_t)run->batch;
    memset(dx, 0, shape_numel(l->in) * (size_t)run->batch * sizeof *dx);
    for (size_t o = 0; o < n_out; o++)
        dx[arg[o]] += dy[o];
}

const LayerOps maxpool2d_ops = {
    .name = "maxpool2d",
    .build = maxpool2d_build,
    .forward = maxpool2d_forward,
    .backward = maxpool2d_backward,
    .aux = maxpool2d_aux,
};
