/* tensor.h - shapes of one sample, and the one activation layout.
 * Activations are NHWC (Keras channels_last): a batch of n samples is n
 * contiguous blocks of h*w*c floats, channel fastest. A dense layer's output
 * is the shape (1, 1, units). Owns nothing, allocates nothing. */
#ifndef MN_TENSOR_H
#define MN_TENSOR_H

#include <stddef.h>

typedef struct {
    int h, w, c;
} Shape;

static inline size_t shape_numel(Shape s)
{
    return (size_t)s.h * (size_t)s.w * (size_t)s.c;
}

static inline Shape shape_make(int h, int w, int c)
{
    Shape s = {h, w, c};
    return s;
}

#endif
