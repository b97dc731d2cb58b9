/* conv2d.c - 2-D convolution, Keras Conv2D semantics, NHWC.
 * The kernel is stored as Keras does, (kh, kw, cin, filters), then the
 * biases (none with use_bias false). Forward is mnistd's direct convolution (conv_kernel.h), with
 * bias and relu applied as it stores. Backward lays samples out as im2col
 * rows (n*oh*ow, kh*kw*cin) in the workspace, in chunks whose im2col and
 * output fit in cache (a whole batch would not fit, and passes over memory
 * then cost more than the GEMMs: the tutorial's 28x28x64 output is 200 KB
 * a sample): dY through the activation, db += column sums of dY,
 * dW += Col^T dY. dX of a stride-1 kernel is a convolution of dY, run by
 * the direct kernel (input_grad_is_convolution); with strides, dCol =
 * dY W^T, then col2im adds into dx. A 1x1 kernel with stride 1 needs no
 * im2col: the input already is that matrix. */
#include <cJSON.h>
#include <string.h>

#include "blas.h"
#include "conv_kernel.h"
#include "layer.h"
#include "spec_read.h"

static int conv2d_build(Layer *l, const Shape *inputs, int n_in, MnError *err)
{
    (void)n_in;
    Shape in = inputs[0];
    Conv2dConfig *c = &l->cfg.conv;
    int oh, ow;
    if (c->filters < 1)
        return mn_fail(err, MN_ESPEC, "filters must be at least 1, got %d", c->filters);
    int rc = window_build(&c->win, in, &oh, &ow, err);
    if (rc)
        return rc;
    l->out = shape_make(oh, ow, c->filters);
    l->param_count = (size_t)c->win.kh * c->win.kw * in.c * c->filters +
                     (c->no_bias ? 0 : (size_t)c->filters);
    return 0;
}

static void conv2d_init(const Layer *l, float *params, Rng *rng)
{
    const Conv2dConfig *c = &l->cfg.conv;
    int receptive = c->win.kh * c->win.kw;
    size_t nw = (size_t)receptive * l->in.c * c->filters;
    init_glorot_uniform(params, nw, receptive * l->in.c, receptive * c->filters, rng);
    if (!c->no_bias)
        memset(params + nw, 0, (size_t)c->filters * sizeof *params);
}

/* 1x1, stride 1, no padding: the input rows are the im2col rows. */
static bool is_pointwise(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    return w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1;
}

static size_t col_floats(const Layer *l, int samples)
{
    const Window *w = &l->cfg.conv.win;
    return (size_t)samples * l->out.h * l->out.w * w->kh * w->kw * l->in.c;
}

#define CHUNK_FLOATS (64 * 1024) /* 256 KiB of im2col and output per GEMM: stays in L2 */

/* Samples per chunk: at least one. */
static int chunk_samples(const Layer *l, int batch)
{
    size_t per = col_floats(l, 1) + shape_numel(l->out);
    int n = (int)(CHUNK_FLOATS / per);
    return n < 1 ? 1 : n > batch ? batch : n;
}

static ConvGeometry geometry(const Layer *l)
{
    const Conv2dConfig *c = &l->cfg.conv;
    ConvGeometry g = {
        .in_h = l->in.h, .in_w = l->in.w, .in_c = l->in.c,
        .out_h = l->out.h, .out_w = l->out.w, .filters = c->filters,
        .kh = c->win.kh, .kw = c->win.kw, .sh = c->win.sh, .sw = c->win.sw,
        .pad_top = c->win.pad_top, .pad_left = c->win.pad_left,
        .relu = l->act == ACT_RELU && layer_applies_activation(l),
    };
    return g;
}

/* dX of a stride-1 convolution is itself a convolution: dY with the kernel
 * turned half a circle and its channels swapped, padded by what forward's
 * window left out. The direct kernel runs it at forward's speed, where
 * dCol = dY W^T and col2im went through memory twice. */
static bool input_grad_is_convolution(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    return w->sh == 1 && w->sw == 1 && !is_pointwise(l);
}

static ConvGeometry input_grad_geometry(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    ConvGeometry g = {
        .in_h = l->out.h, .in_w = l->out.w, .in_c = l->out.c,
        .out_h = l->in.h, .out_w = l->in.w, .filters = l->in.c,
        .kh = w->kh, .kw = w->kw, .sh = 1, .sw = 1,
        .pad_top = w->kh - 1 - w->pad_top, .pad_left = w->kw - 1 - w->pad_left,
    };
    return g;
}

/* n floats rounded up to whole 64-byte lines, so what follows them in the
 * workspace stays aligned for the kernel. */
static size_t whole_lines(size_t n) { return (n + 15) / 16 * 16; }

static size_t turned_kernel_floats(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    return whole_lines((size_t)w->kh * w->kw * l->in.c * l->cfg.conv.filters);
}

/* After Col: the turned kernel, zeros for its bias, the kernel's scratch. */
static size_t input_grad_floats(const Layer *l)
{
    ConvGeometry g = input_grad_geometry(l);
    return turned_kernel_floats(l) + zero_bias_floats(g.filters) + conv_kernel_workspace(&g);
}

/* turned (kh, kw, filters, cin) [ky][kx][f][c] = w (kh, kw, cin, filters)
 * [kh-1-ky][kw-1-kx][c][f]. */
static void turn_kernel(const Layer *l, const float *restrict w, float *restrict turned)
{
    const Window *win = &l->cfg.conv.win;
    int cin = l->in.c, filters = l->cfg.conv.filters;
    for (int ky = 0; ky < win->kh; ky++)
        for (int kx = 0; kx < win->kw; kx++) {
            const float *src = w + ((size_t)(win->kh - 1 - ky) * win->kw + (win->kw - 1 - kx)) *
                                       cin * filters;
            float *dst = turned + ((size_t)ky * win->kw + kx) * filters * cin;
            for (int f = 0; f < filters; f++)
                for (int c = 0; c < cin; c++)
                    dst[(size_t)f * cin + c] = src[(size_t)c * filters + f];
        }
}

static size_t conv2d_workspace(const Layer *l, int batch)
{
    /* Forward: the kernel's scratch. Backward: Col, then dCol or what the
     * convolution giving dX needs; none for pointwise. The two never run
     * at once. */
    ConvGeometry g = geometry(l);
    size_t forward =
        zero_bias_room(l->cfg.conv.no_bias, g.filters) + conv_kernel_workspace(&g);
    size_t col = whole_lines(col_floats(l, chunk_samples(l, batch)));
    size_t backward = is_pointwise(l)                 ? 0
                      : input_grad_is_convolution(l) ? col + input_grad_floats(l)
                                                      : 2 * col;
    return forward > backward ? forward : backward;
}

/* Copies, zeros and adds of a few floats: inline loops the compiler
 * vectorises (and, by the Makefile's flag for this file, leaves loops). A
 * libc call for each row of taps cost more than the copy (three floats
 * when cin is 1: a seventh of a training epoch went to memmove). */
static inline void copy_floats(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

static inline void zero_floats(float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = 0.0f;
}

static inline void add_floats(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* col (batch*oh*ow, kh*kw*cin), row order (b, oy, ox), column order (ky, kx, ci). */
MN_VECTOR_CLONES
static void im2col(const Layer *l, const float *restrict x, float *restrict col, int batch)
{
    const Window *w = &l->cfg.conv.win;
    int ih = l->in.h, iw = l->in.w, cin = l->in.c, oh = l->out.h, ow = l->out.w;
    size_t row_len = (size_t)w->kh * w->kw * cin, taps_row = (size_t)w->kw * cin;
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * ih * iw * cin;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *row = col + (((size_t)b * oh + oy) * ow + ox) * row_len;
                int ix0 = ox * w->sw - w->pad_left;
                bool inside = ix0 >= 0 && ix0 + w->kw <= iw;
                for (int ky = 0; ky < w->kh; ky++) {
                    int iy = window_tap(oy, ky, w->sh, w->pad_top, ih);
                    float *dst = row + (size_t)ky * taps_row;
                    if (iy < 0) {
                        zero_floats(dst, taps_row);
                    } else if (inside) { /* the whole row of taps: one copy */
                        copy_floats(dst, xb + ((size_t)iy * iw + ix0) * cin, taps_row);
                    } else {
                        for (int kx = 0; kx < w->kw; kx++) {
                            int ix = window_tap(ox, kx, w->sw, w->pad_left, iw);
                            if (ix < 0)
                                zero_floats(dst + (size_t)kx * cin, (size_t)cin);
                            else
                                copy_floats(dst + (size_t)kx * cin,
                                            xb + ((size_t)iy * iw + ix) * cin, (size_t)cin);
                        }
                    }
                }
            }
    }
}

/* The adjoint of im2col: adds each column entry back to its input pixel. */
MN_VECTOR_CLONES
static void col2im(const Layer *l, const float *restrict col, float *restrict dx, int batch)
{
    const Window *w = &l->cfg.conv.win;
    int ih = l->in.h, iw = l->in.w, cin = l->in.c, oh = l->out.h, ow = l->out.w;
    size_t row_len = (size_t)w->kh * w->kw * cin, taps_row = (size_t)w->kw * cin;
    memset(dx, 0, (size_t)batch * ih * iw * cin * sizeof *dx);
    for (int b = 0; b < batch; b++) {
        float *db = dx + (size_t)b * ih * iw * cin;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *row = col + (((size_t)b * oh + oy) * ow + ox) * row_len;
                int ix0 = ox * w->sw - w->pad_left;
                bool inside = ix0 >= 0 && ix0 + w->kw <= iw;
                for (int ky = 0; ky < w->kh; ky++) {
                    int iy = window_tap(oy, ky, w->sh, w->pad_top, ih);
                    if (iy < 0)
                        continue;
                    const float *src = row + (size_t)ky * taps_row;
                    if (inside) {
                        add_floats(db + ((size_t)iy * iw + ix0) * cin, src, taps_row);
                        continue;
                    }
                    for (int kx = 0; kx < w->kw; kx++) {
                        int ix = window_tap(ox, kx, w->sw, w->pad_left, iw);
                        if (ix >= 0)
                            add_floats(db + ((size_t)iy * iw + ix) * cin, src + (size_t)kx * cin,
                                       (size_t)cin);
                    }
                }
            }
    }
}

static void conv2d_forward(const Layer *l, const float *params, const float *x, float *y,
                           const LayerRun *run)
{
    ConvGeometry g = geometry(l);
    const float *bias = l->cfg.conv.no_bias ? zero_bias(run->ws, g.filters)
                                            : params + (size_t)g.kh * g.kw * g.in_c * g.filters;
    float *scratch = run->ws + zero_bias_room(l->cfg.conv.no_bias, g.filters);
    conv_kernel_forward(&g, params, bias, x, y, run->batch, scratch);
    if (layer_applies_activation(l) && !g.relu)
        activation_forward(l->act, y, run->batch * g.out_h * g.out_w, g.filters);
}

/* dY through relu and db += its column sums in one pass, not two: the
 * same sums in the same order as activation_backward then add_column_sums. */
MN_VECTOR_CLONES
static void relu_backward_and_bias_grad(const float *restrict y, float *restrict dy,
                                        float *restrict db, int rows, int n)
{
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * n;
        float *dr = dy + (size_t)r * n;
        for (int j = 0; j < n; j++) {
            dr[j] = yr[j] > 0.0f ? dr[j] : 0.0f;
            db[j] += dr[j];
        }
    }
}

static void conv2d_backward(const Layer *l, const float *params, float *grads, const float *x,
                            const float *y, float *dy, float *dx, const LayerRun *run)
{
    const Conv2dConfig *c = &l->cfg.conv;
    int per = l->out.h * l->out.w, k = c->win.kh * c->win.kw * l->in.c;
    size_t in_per = shape_numel(l->in), out_per = shape_numel(l->out);
    float *dw = grads, *db = c->no_bias ? NULL : grads + (size_t)k * c->filters;
    int chunk = chunk_samples(l, run->batch);
    bool pointwise = is_pointwise(l), direct = dx && input_grad_is_convolution(l);
    float *col = run->ws;
    float *dcol = pointwise ? NULL : run->ws + whole_lines(col_floats(l, chunk));
    ConvGeometry dx_geometry = input_grad_geometry(l);
    float *turned = dcol, *zeros = NULL, *dx_scratch = NULL;
    if (direct) { /* dcol's room holds these instead */
        turn_kernel(l, params, turned);
        zeros = turned + turned_kernel_floats(l);
        memset(zeros, 0, (size_t)dx_geometry.filters * sizeof *zeros);
        dx_scratch = zeros + zero_bias_floats(dx_geometry.filters);
    }
    for (int b = 0; b < run->batch; b += chunk) {
        int n = run->batch - b < chunk ? run->batch - b : chunk;
        const float *xb = x + (size_t)b * in_per;
        float *dyb = dy + (size_t)b * out_per, *dxb = dx ? dx + (size_t)b * in_per : NULL;
        if (db && l->act == ACT_RELU && layer_applies_activation(l)) {
            relu_backward_and_bias_grad(y + (size_t)b * out_per, dyb, db, n * per, c->filters);
        } else {
            if (layer_applies_activation(l))
                activation_backward(l->act, NULL, y + (size_t)b * out_per, dyb, n * per,
                                    c->filters);
            if (db)
                add_column_sums(db, dyb, n * per, c->filters);
        }
        if (!pointwise) {
            im2col(l, xb, col, n); /* the workspace is shared: rebuild it */
            xb = col;
        }
        blas_gemm(true, false, k, c->filters, n * per, 1.0f, xb, dyb, 1.0f, dw);
        if (!dx)
            continue;
        if (direct) {
            conv_kernel_forward(&dx_geometry, turned, zeros, dyb, dxb, n, dx_scratch);
            continue;
        }
        blas_gemm(false, true, n * per, k, c->filters, 1.0f, dyb, params, 0.0f,
                  pointwise ? dxb : dcol);
        if (!pointwise)
            col2im(l, dcol, dxb, n);
    }
}

static int conv2d_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    if (!spec_field(obj, "filters") || !spec_field(obj, "kernel_size"))
        return mn_fail(err, MN_EINVAL, "%s (conv2d): needs \"filters\" and \"kernel_size\"",
                       where);
    Window *w = &l->cfg.conv.win;
    w->sh = w->sw = 1;
    int rc;
    if ((rc = spec_opt_int(obj, "filters", where, 1, 1 << 16, &l->cfg.conv.filters, err)) ||
        (rc = spec_opt_pair(obj, "kernel_size", where, SPEC_KERNEL_MAX, &w->kh, &w->kw, err)) ||
        (rc = spec_opt_pair(obj, "strides", where, SPEC_KERNEL_MAX, &w->sh, &w->sw, err)) ||
        (rc = spec_padding(obj, where, w, err)) ||
        (rc = spec_use_bias(obj, where, &l->cfg.conv.no_bias, err)))
        return rc;
    return spec_activation(obj, where, &l->act, err);
}

static void conv2d_write(const Layer *l, cJSON *o)
{
    cJSON_AddNumberToObject(o, "filters", l->cfg.conv.filters);
    window_write(&l->cfg.conv.win, "kernel_size", o);
    cJSON_AddStringToObject(o, "activation", activation_name(l->act));
    spec_write_use_bias(l->cfg.conv.no_bias, o);
}

/* A batch normalization after a linear conv, folded into the kernel. */
static bool conv2d_fold_affine(const Layer *l, float *params, const float *scale,
                               const float *shift)
{
    const Conv2dConfig *c = &l->cfg.conv;
    size_t rows = (size_t)c->win.kh * c->win.kw * l->in.c;
    if (l->param_count != rows * c->filters + (size_t)c->filters)
        return false; /* no bias (use_bias false) to take the shift */
    fold_affine_columns(params, params + rows * c->filters, rows, c->filters, scale, shift);
    return true;
}

/* Every weight once per output position. */
static long conv2d_macs(const Layer *l)
{
    const Conv2dConfig *c = &l->cfg.conv;
    return (long)c->win.kh * c->win.kw * l->in.c * c->filters * l->out.h * l->out.w;
}

static size_t conv2d_bias_floats(const Layer *l)
{
    return l->cfg.conv.no_bias ? 0 : (size_t)l->cfg.conv.filters;
}

const LayerOps conv2d_ops = {
    .name = "conv2d",
    .aliases = (const char *const[]){"Conv2D", "conv2D", NULL},
    .keys = (const char *const[]){"filters", "kernel_size", "strides", "padding", "activation",
                                  "use_bias", NULL},
    .parse = conv2d_parse,
    .write = conv2d_write,
    .keras_name = "conv2d",
    .keras_class = "Conv2D",
    .macs = conv2d_macs,
    .takes_activation = true,
    .build = conv2d_build,
    .init = conv2d_init,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .workspace = conv2d_workspace,
    .bias_floats = conv2d_bias_floats,
    .fuses_activation = true,
    .fold_affine = conv2d_fold_affine,
};
