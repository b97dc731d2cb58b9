/* conv2d.c - 2-D convolution, Keras Conv2D semantics, NHWC.
 * The kernel is stored as Keras does, (kh, kw, cin, filters), then the
 * biases (none with use_bias false). Forward is mnistd's direct convolution (conv_kernel.h), with
 * bias and relu applied as it stores. Backward lays samples out as im2col
 * rows (n*oh*ow, kh*kw*cin) in the workspace, in chunks whose im2col and
 * output fit in cache (a whole batch would not fit, and passes over memory
 * then cost more than the GEMMs: the tutorial's 28x28x64 output is 200 KB
 * a sample): dY through the activation, db += column sums of dY,
 * dW += Col^T dY. dX is a convolution of dY too, one per phase of the
 * stride, run by the direct kernel (input_grad_phase). A 1x1 kernel with
 * stride 1 needs no im2col: the input already is that matrix; a 3x3
 * stride-1 one that Winograd's transforms pay for takes dW from them
 * (winograd.h), over the whole batch at once. */
#include <cJSON.h>
#include <string.h>

#include "blas.h"
#include "conv_kernel.h"
#include "layer.h"
#include "spec_read.h"
#include "winograd.h"

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
/* OpenBLAS's SkylakeX build multiplies products of up to 100^3
 * multiply-adds in place (its small-matrix kernel) and packs bigger ones
 * first; for dW's shapes the packed path took longer for more work: the
 * 7x7 conv of cnn-basic took 197 us a batch in chunks of 7 samples, 113 us
 * in chunks of 4 (bench of blas_gemm alone, min of 15). */
#define SMALL_GEMM_MACS (100L * 100 * 100)

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

/* n floats rounded up to whole 64-byte lines, so what follows them in the
 * workspace stays aligned for the kernel. */
static size_t whole_lines(size_t n) { return (n + 15) / 16 * 16; }

/* dX is a sum over the taps that reached each input pixel. With a stride
 * s, the taps reaching row iy are those with ky = (iy + pad) mod s, then
 * every s-th: each phase (py, px) of the input (its rows and columns one
 * residue apart) is a stride-1 convolution of dY with those taps, the
 * kernel turned half a circle and its channels swapped. The direct kernel
 * runs each at forward's speed and writes its sub-grid of dx in place;
 * dCol = dY W^T and col2im went through memory twice, and OpenBLAS
 * cleared dCol first (a tenth of an epoch in GEMM, memset and col2im).
 * Stride 1 has one phase, the whole kernel. */
typedef struct {
    int first, count; /* the phase's first input row (column), how many, s apart */
    int taps, lead;   /* its kernel's taps along the axis: `lead` zeros first */
    int pad;          /* the padding of dY before them */
} PhaseAxis;

/* Phase p of one axis: input index i = s*u + p - pad for u from u0. Tap j
 * of the phase (ky = p + s*j) reads dY[u - j]. A phase whose first reads
 * start inside dY (u0 more than its taps less one, possible with
 * explicit padding) gets leading zero taps instead of a negative padding;
 * one with no taps at all (kernel smaller than the stride) is all zero
 * taps, which writes the zeros its pixels' gradient is. */
static PhaseAxis phase_axis(int in, int k, int s, int pad, int p)
{
    int real = p < k ? (k - p + s - 1) / s : 0;
    int u0 = pad > p ? (pad - p + s - 1) / s : 0;
    PhaseAxis a = {.first = s * u0 + p - pad};
    a.count = a.first < in ? (in - 1 - a.first) / s + 1 : 0;
    a.taps = real > u0 ? real : u0 + 1;
    a.lead = a.taps - real;
    a.pad = a.taps - 1 - u0;
    return a;
}

/* Every phase reads dY inside one zero-bordered copy of it, h by w, dY
 * `top` rows and `left` columns in: the border the most padded phase
 * needs before, room for the furthest reads after. The kernel then copies
 * nothing; left to it, each phase reading past an edge copied dY again
 * (three of the four of a 3x3 kernel with stride 2). */
typedef struct {
    int top, left, h, w;
} DyFrame;

static void frame_axis(int in, int out, int k, int s, int pad, int *before, int *size)
{
    *before = 0;
    for (int p = 0; p < s; p++) {
        PhaseAxis a = phase_axis(in, k, s, pad, p);
        if (a.count && a.pad > *before)
            *before = a.pad;
    }
    *size = *before + out;
    for (int p = 0; p < s; p++) {
        PhaseAxis a = phase_axis(in, k, s, pad, p);
        int end = *before - a.pad + a.count - 1 + a.taps;
        if (a.count && end > *size)
            *size = end;
    }
}

static DyFrame dy_frame(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    DyFrame f;
    frame_axis(l->in.h, l->out.h, w->kh, w->sh, w->pad_top, &f.top, &f.h);
    frame_axis(l->in.w, l->out.w, w->kw, w->sw, w->pad_left, &f.left, &f.w);
    return f;
}

/* Whether the frame differs from dY itself (a pointwise kernel's does not). */
static bool framed(const Layer *l, const DyFrame *f)
{
    return f->top || f->left || f->h > l->out.h || f->w > l->out.w;
}

static size_t frame_floats(const Layer *l, const DyFrame *f, int samples)
{
    return framed(l, f) ? whole_lines((size_t)samples * f->h * f->w * l->out.c) : 0;
}

/* dY's images into the frame's interior; nothing writes its border. */
static void frame_dy(const Layer *l, const DyFrame *f, const float *dy, float *frame, int n)
{
    size_t c = l->out.c, row = (size_t)l->out.w * c;
    for (int b = 0; b < n; b++)
        for (int r = 0; r < l->out.h; r++)
            memcpy(frame + (((size_t)b * f->h + f->top + r) * f->w + f->left) * c,
                   dy + ((size_t)b * l->out.h + r) * row, row * sizeof *frame);
}

typedef struct {
    PhaseAxis y, x;
    ConvGeometry g;   /* the frame of dY to the phase's dX pixels */
    size_t dy_offset; /* of its first read in one image of the frame */
    size_t offset;    /* of its first pixel in one image of dX */
    size_t kernel;    /* floats of its turned kernel, in whole lines */
} InputGradPhase;

/* Phase (py, px); false when it holds no pixel (an input smaller than
 * the stride). */
static bool input_grad_phase(const Layer *l, const DyFrame *f, int py, int px,
                             InputGradPhase *ph)
{
    const Window *w = &l->cfg.conv.win;
    int cin = l->in.c;
    ph->y = phase_axis(l->in.h, w->kh, w->sh, w->pad_top, py);
    ph->x = phase_axis(l->in.w, w->kw, w->sw, w->pad_left, px);
    if (!ph->y.count || !ph->x.count)
        return false;
    ConvGeometry g = {
        .in_h = f->h, .in_w = f->w, .in_c = l->out.c,
        .out_h = ph->y.count, .out_w = ph->x.count, .filters = cin,
        .kh = ph->y.taps, .kw = ph->x.taps, .sh = 1, .sw = 1,
        .out_pixel = (size_t)w->sw * cin,
        .out_row = (size_t)w->sh * l->in.w * cin,
        .out_image = shape_numel(l->in),
    };
    ph->g = g;
    ph->dy_offset = ((size_t)(f->top - ph->y.pad) * f->w + (f->left - ph->x.pad)) * l->out.c;
    ph->offset = ((size_t)ph->y.first * l->in.w + ph->x.first) * cin;
    ph->kernel = whole_lines((size_t)g.kh * g.kw * g.in_c * g.filters);
    return true;
}

/* After Col: every phase's turned kernel, zeros for their bias, the
 * frame of dY for `samples`, then the scratch of the phase needing most. */
static size_t input_grad_floats(const Layer *l, int samples)
{
    const Window *w = &l->cfg.conv.win;
    DyFrame f = dy_frame(l);
    size_t kernels = 0, scratch = 0;
    InputGradPhase ph;
    for (int py = 0; py < w->sh; py++)
        for (int px = 0; px < w->sw; px++)
            if (input_grad_phase(l, &f, py, px, &ph)) {
                size_t need = conv_kernel_workspace(&ph.g);
                kernels += ph.kernel;
                scratch = need > scratch ? need : scratch;
            }
    return kernels + zero_bias_floats(l->in.c) + frame_floats(l, &f, samples) + scratch;
}

/* The phase's kernel (taps_y, taps_x, filters, cin) [my][mx][f][c] = w
 * (kh, kw, cin, filters) [py + sh*(taps_y-1-my)][px + sw*(taps_x-1-mx)]
 * [c][f], and zero for the lead taps. */
static void turn_kernel(const Layer *l, int py, int px, const InputGradPhase *ph,
                        const float *restrict w, float *restrict turned)
{
    const Window *win = &l->cfg.conv.win;
    int cin = l->in.c, filters = l->cfg.conv.filters;
    size_t tap = (size_t)filters * cin;
    for (int my = 0; my < ph->y.taps; my++)
        for (int mx = 0; mx < ph->x.taps; mx++) {
            float *dst = turned + ((size_t)my * ph->x.taps + mx) * tap;
            if (my < ph->y.lead || mx < ph->x.lead) {
                memset(dst, 0, tap * sizeof *dst);
                continue;
            }
            int ky = py + win->sh * (ph->y.taps - 1 - my);
            int kx = px + win->sw * (ph->x.taps - 1 - mx);
            const float *src = w + ((size_t)ky * win->kw + kx) * tap;
            for (int f = 0; f < filters; f++)
                for (int c = 0; c < cin; c++)
                    dst[(size_t)f * cin + c] = src[(size_t)c * filters + f];
        }
}

/* Every phase's kernel into ws, and the zeros after them; returns those. */
static float *turn_kernels(const Layer *l, const DyFrame *f, const float *w, float *ws)
{
    const Window *win = &l->cfg.conv.win;
    InputGradPhase ph;
    for (int py = 0; py < win->sh; py++)
        for (int px = 0; px < win->sw; px++)
            if (input_grad_phase(l, f, py, px, &ph)) {
                turn_kernel(l, py, px, &ph, w, ws);
                ws += ph.kernel;
            }
    memset(ws, 0, (size_t)l->in.c * sizeof *ws);
    return ws;
}

/* dx (n, in) = the input gradient of dy (n, out), every phase in turn,
 * dy read from the frame when there is one. */
static void input_grad(const Layer *l, const DyFrame *f, const float *turned, const float *zeros,
                       const float *dy, float *dx, int n, float *scratch)
{
    const Window *win = &l->cfg.conv.win;
    InputGradPhase ph;
    for (int py = 0; py < win->sh; py++)
        for (int px = 0; px < win->sw; px++)
            if (input_grad_phase(l, f, py, px, &ph)) {
                conv_kernel_forward(&ph.g, turned, zeros, dy + ph.dy_offset, dx + ph.offset, n,
                                    scratch);
                turned += ph.kernel;
            }
}

/* dW of a one-channel kernel with stride 1 (a network's first layer) is
 * a convolution too: each image, the window's padding around it,
 * correlated with its dY, whose (oy, ox, f) layout is a kernel's (kh, kw,
 * in_c 1, filters), gives (ky, kx, f). The direct kernel runs it where
 * im2col copied 3 floats a call and the GEMM had 9 rows. */
static bool weight_grad_is_convolution(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    return l->in.c == 1 && w->sh == 1 && w->sw == 1 && !is_pointwise(l);
}

static ConvGeometry weight_grad_geometry(const Layer *l)
{
    const Window *w = &l->cfg.conv.win;
    ConvGeometry g = {
        .in_h = l->in.h, .in_w = l->in.w, .in_c = 1,
        .out_h = w->kh, .out_w = w->kw, .filters = l->cfg.conv.filters,
        .kh = l->out.h, .kw = l->out.w, .sh = 1, .sw = 1,
        .pad_top = w->pad_top, .pad_left = w->pad_left,
    };
    return g;
}

/* One image's dW, its zero bias, the kernel's scratch. */
static size_t weight_grad_floats(const Layer *l)
{
    ConvGeometry g = weight_grad_geometry(l);
    return whole_lines((size_t)g.out_h * g.out_w * g.filters) + zero_bias_floats(g.filters) +
           conv_kernel_workspace(&g);
}

/* dw += the weight gradient of n images x and their dy, one at a time
 * (each has its own dY for a kernel). */
static void weight_grad(const Layer *l, const float *x, const float *dy, float *restrict dw,
                        int n, float *ws)
{
    ConvGeometry g = weight_grad_geometry(l);
    size_t floats = (size_t)g.out_h * g.out_w * g.filters;
    float *one = ws, *zeros = ws + whole_lines(floats);
    float *scratch = zeros + zero_bias_floats(g.filters);
    memset(zeros, 0, (size_t)g.filters * sizeof *zeros);
    for (int b = 0; b < n; b++) {
        conv_kernel_forward(&g, dy + (size_t)b * shape_numel(l->out), zeros,
                            x + (size_t)b * shape_numel(l->in), one, 1, scratch);
        for (size_t i = 0; i < floats; i++)
            dw[i] += one[i];
    }
}

/* dw (k, filters) += col^T dY over `terms` rows of each. With 16 or 32
 * filters OpenBLAS's packing cost more than its reuse gave
 * (cnn-basic's 1x1 layers took 1.3-1.5 times conv_kernel's unpacked
 * outer products on Zen 3, 144 x 32 1.1 times); with 64, as its 3x3
 * strided 16 -> 64 layer has, SGEMM was 1.2 times faster. */
static void add_weight_products(int k, int filters, int terms, const float *col, const float *dy,
                                float *dw)
{
    if (k % 4 == 0 && filters % 16 == 0 && filters <= 32)
        conv_kernel_add_outer_products(col, dy, terms, k, filters, dw);
    else
        blas_gemm(true, false, k, filters, terms, 1.0f, col, dy, 1.0f, dw);
}

/* dW by Winograd's transforms, where they pay for it. */
static bool weight_grad_is_winograd(const Layer *l)
{
    ConvGeometry g = geometry(l);
    return winograd_weight_grad_pays(&g);
}

/* Samples per chunk of the backward pass: at least one; no more than keep
 * dW's product small when one sample's is. Winograd's dW runs over the
 * whole batch after the chunks, which then hold no im2col: their dX
 * convolutions then take more samples a call. */
static int chunk_samples(const Layer *l, int batch)
{
    bool col = !weight_grad_is_winograd(l);
    size_t per = (col ? col_floats(l, 1) : 0) + shape_numel(l->out);
    int n = (int)(CHUNK_FLOATS / per);
    long macs = (long)col_floats(l, 1) * l->cfg.conv.filters;
    if (col && macs <= SMALL_GEMM_MACS && n > SMALL_GEMM_MACS / macs)
        n = (int)(SMALL_GEMM_MACS / macs);
    return n < 1 ? 1 : n > batch ? batch : n;
}

/* The start of the backward workspace, for dW: Col for a chunk, one
 * image's dW for a direct one, nothing for a pointwise kernel (x is its
 * own Col) or Winograd's (which runs after dX, in the whole workspace).
 * What follows it is input_grad_floats'. */
static size_t weight_grad_room(const Layer *l, int chunk)
{
    if (weight_grad_is_winograd(l))
        return 0;
    if (weight_grad_is_convolution(l))
        return whole_lines(weight_grad_floats(l));
    return is_pointwise(l) ? 0 : whole_lines(col_floats(l, chunk));
}

static size_t conv2d_workspace(const Layer *l, int batch)
{
    /* Forward: the kernel's scratch. Backward: dW's room, then what the
     * convolutions giving dX need. The two never run at once. */
    ConvGeometry g = geometry(l);
    size_t forward =
        zero_bias_room(l->cfg.conv.no_bias, g.filters) + conv_kernel_workspace(&g);
    int chunk = chunk_samples(l, batch);
    size_t backward = weight_grad_room(l, chunk) + input_grad_floats(l, chunk);
    if (weight_grad_is_winograd(l)) {
        size_t winograd = winograd_weight_grad_workspace(&g);
        backward = winograd > backward ? winograd : backward;
    }
    return forward > backward ? forward : backward;
}

/* Copies and zeros of a few floats: inline loops the compiler
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
    bool pointwise = is_pointwise(l);
    bool dw_direct = weight_grad_is_convolution(l), dw_winograd = weight_grad_is_winograd(l);
    float *col = run->ws;
    float *turned = run->ws + weight_grad_room(l, chunk);
    DyFrame frame = dy_frame(l);
    /* after the kernels: their zero bias, dY's frame (none when dY is its
     * own), the kernel's scratch (input_grad_floats) */
    float *zeros = NULL, *dy_copy = NULL, *dx_scratch = NULL;
    if (dx) {
        zeros = turn_kernels(l, &frame, params, turned);
        float *after = zeros + zero_bias_floats(l->in.c);
        size_t frame_n = frame_floats(l, &frame, chunk);
        dy_copy = frame_n ? after : NULL;
        dx_scratch = after + frame_n;
        if (dy_copy) /* its border, once: each chunk rewrites only the interior */
            memset(dy_copy, 0, frame_n * sizeof *dy_copy);
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
        if (dw_direct) {
            weight_grad(l, xb, dyb, dw, n, col);
        } else if (!dw_winograd) {
            if (!pointwise) {
                im2col(l, xb, col, n); /* the workspace is shared: rebuild it */
                xb = col;
            }
            add_weight_products(k, c->filters, n * per, xb, dyb, dw);
        }
        if (!dx)
            continue;
        if (dy_copy)
            frame_dy(l, &frame, dyb, dy_copy, n);
        input_grad(l, &frame, turned, zeros, dy_copy ? dy_copy : dyb, dxb, n, dx_scratch);
    }
    if (dw_winograd) { /* dY is through the activation now, every chunk of it */
        ConvGeometry g = geometry(l);
        winograd_weight_grad(&g, x, dy, dw, run->batch, run->ws);
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
