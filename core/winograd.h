/* winograd.h - 3x3 stride-1 convolutions by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015): each 2x2 block of outputs comes from a 4x4 block of
 * inputs in 16 multiplies per pair of channels, where the direct sum takes
 * 36. The multiplies are 16 matrix products, (tiles, in_c) x (in_c,
 * filters), which the direct kernel runs as 1x1 convolutions at its usual
 * rate; the transforms around them are adds and halvings. conv_kernel.c
 * routes the convolutions where winograd_pays to here, forward and (a 3x3
 * stride-1 layer's input gradient being such a convolution too) backward.
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

#endif
