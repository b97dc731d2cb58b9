/* conv_kernel.h - mnistd's own direct convolution (forward), NHWC, for the
 * small shapes these networks have: a 3x3 kernel over one input channel,
 * 1x1 kernels to 16 filters, where im2col's copies and a GEMM packed for
 * big matrices cost more than the products (README, Performance). One
 * variant per instruction set (AVX-512, AVX2+FMA, SSE2), each with its
 * native vector width; the one that runs is chosen once, before main,
 * from what the CPU can do (blas.c). The 3x3 stride-1 convolutions that
 * Winograd's transforms pay for go through them (winograd.h), their
 * products on this kernel; and weight gradients' small products, by the
 * same variants. Nothing here allocates. */
#ifndef MN_CONV_KERNEL_H
#define MN_CONV_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

/* One convolution's geometry, Keras rules: out-of-range taps read zero,
 * the padding before each axis is pad_top / pad_left. */
typedef struct {
    int in_h, in_w, in_c;
    int out_h, out_w, filters;
    int kh, kw, sh, sw;
    int pad_top, pad_left;
    bool relu; /* max(0, .) applied as each output is stored */
    /* Where output (b, oy, ox) starts, in floats from y: b * out_image +
     * oy * out_row + ox * out_pixel. All 0 (the default) for the dense
     * (n, out_h, out_w, filters) tensor; others write a sub-grid of a
     * bigger one, as a strided convolution's input gradient does, one
     * phase of it at a time (conv2d.c), without a copy to scatter. */
    size_t out_pixel, out_row, out_image;
} ConvGeometry;

/* Floats of scratch conv_kernel_forward needs, for any variant. */
size_t conv_kernel_workspace(const ConvGeometry *g);

/* y (n, out_h, out_w, filters), or where the out_ strides say, = bias +
 * x (n, in_h, in_w, in_c) convolved with weights stored (kh, kw, in_c,
 * filters), then relu if asked. The sum over taps runs in one fixed
 * order: the same inputs give the same bits. */
void conv_kernel_forward(const ConvGeometry *g, const float *weights, const float *bias,
                         const float *x, float *y, int n, float *ws);

/* y (filters) = bias + x (in_c) times weights (in_c, filters): one pixel
 * of a 1x1 convolution, or one row of a dense layer, with the weights read
 * in place whatever the filter count. False, doing nothing, when filters
 * is more than the variant's registers hold (64 for AVX-512, 16 for AVX2,
 * 8 for SSE2). */
bool conv_kernel_one_pixel(const float *x, const float *weights, const float *bias, int in_c,
                           int filters, float *y);

/* c (rows, cols) += a^T b for a (k, rows) and b (k, cols), all row-major
 * and read in place: a GEMM's sum of k outer products without its
 * packing, which cost more than the products at the shapes of Winograd's
 * weight gradient (16 per group of tiles, winograd.c) and of a conv
 * layer's dW with 16 or 32 filters (conv2d.c). The sum over k runs in
 * order, in chunks: the same inputs give the same bits. rows a multiple
 * of 4, cols of 16. */
void conv_kernel_add_outer_products(const float *a, const float *b, int k, int rows, int cols,
                                    float *c);
/* Chooses the variant for an instruction set as blas.h names them
 * ("avx512", "avx2", others get SSE2) and returns its name. Called once by
 * blas.c's constructor, before any thread; calling it later is not safe. */
const char *conv_kernel_use(const char *isa);
/* The variant in use: "avx512", "avx2" or "sse2". */
const char *conv_kernel_isa(void);

#endif
