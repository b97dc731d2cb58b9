/* winograd.h - 3x3 stride-1 convolutions by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015): each 2x2 block of outputs comes from a 4x4 block of
 * inputs in 16 multiplies per pair of channels, where the direct sum takes
 * 36. The multiplies are 16 matrix products, (tiles, in_c) x (in_c,
 * filters), which the direct kernel runs as 1x1 convolutions at its usual
 * rate; the transforms around them are adds and halvings. conv_kernel.c
 * routes the convolutions where winograd_pays to here, forward and (a 3x3
 * stride-1 layer's input gradient being such a convolution too) backward;
 * conv2d.c takes its weights' gradient from here too.
 * Nothing here allocates. */
#ifndef MN_WINOGRAD_H
#define MN_WINOGRAD_H

#include "conv_kernel.h"

/* A 3x3 kernel, stride 1, and channels in whole vectors on both sides. */
bool winograd_fits(const ConvGeometry *g);

/* It fits, and the transforms cost less than the multiplies they save. */
bool winograd_pays(const ConvGeometry *g);

/* Floats of scratch winograd_forward needs, for a geometry it fits. */
size_t winograd_workspace(const ConvGeometry *g);

/* What conv_kernel_forward computes, for a geometry winograd_fits, its out_
 * strides set:
 * the same sums in another order, so within float rounding of it, and
 * the same bits for the same inputs (every tile's sums run in one fixed
 * order, whatever the batch or the tiles around it). */
void winograd_forward(const ConvGeometry *g, const float *weights, const float *bias,
                      const float *x, float *y, int n, float *ws);

/* It fits, and the weights' gradient by the transforms costs less than by
 * im2col and a GEMM. */
bool winograd_weight_grad_pays(const ConvGeometry *g);

/* Floats of scratch winograd_weight_grad needs, for a geometry it fits. */
size_t winograd_weight_grad_workspace(const ConvGeometry *g);

/* dw (3, 3, in_c, filters) += the weights' gradient of the convolution
 * of n images x with output gradient dy (n, out_h, out_w, filters) (bias
 * and relu aside), by the same transforms run backwards; within float
 * rounding of im2col's GEMM, and the same bits for the same inputs and
 * batch (the sum runs over the batch's tiles a group at a time, in one
 * fixed order). */
void winograd_weight_grad(const ConvGeometry *g, const float *x, const float *dy, float *dw,
                          int n, float *ws);

#endif
