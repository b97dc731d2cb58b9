/* activation.c - elementwise activations and softmax over rows, in place.
 * Backward works from the activation's output a (every derivative here can
 * be written in a), so no pre-activation needs keeping. Softmax subtracts
 * the row maximum; sigmoid is written so exp never overflows. */
#include <math.h>
#include <string.h>

#include "layer.h"

/* glibc's vector exp and tanh (libmvec, which -lm brings in): the loops
 * below call them 4, 8 or 16 values at a time, as wide as the clone, at
 * 0.7 ns a sigmoid where the scalar calls took 7 (a third of 784-16-10's
 * forward pass). Each clone's results are its own in the last bits, as
 * each GEMM kernel's are. */
#if defined(__x86_64__) && !defined(__clang__)
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
#endif

/* Values go 16 at a time (the widest vector) through the vector calls, the
 * tail of an array through a padded copy: a scalar tail would round the
 * values that land in it, some samples' and not others', differently. */
#define EXP_BLOCK 16

/* Written so exp never overflows: the same value as 1 / (1 + e^-z), with
 * no branch, so it vectorises. */
static inline float sigmoid(float z)
{
    float e = expf(-fabsf(z));
    return (z >= 0.0f ? 1.0f : e) / (1.0f + e);
}

static inline __attribute__((always_inline)) void exp_block(Activation act, float *v)
{
    /* not unrolled first: unrolled, GCC calls the scalar exp 16 times */
#pragma GCC unroll 1
    for (int i = 0; i < EXP_BLOCK; i++)
        v[i] = act == ACT_SIGMOID ? sigmoid(v[i]) : act == ACT_TANH ? tanhf(v[i]) : expf(v[i]);
}

/* v = f(v) for sigmoid, tanh or (any other act) exp over n values. */
static inline __attribute__((always_inline)) void exp_blocks(Activation act, float *v, size_t n)
{
    size_t whole = n / EXP_BLOCK * EXP_BLOCK;
    for (size_t i = 0; i < whole; i += EXP_BLOCK)
        exp_block(act, v + i);
    if (whole < n) {
        float tail[EXP_BLOCK] = {0};
        memcpy(tail, v + whole, (n - whole) * sizeof *v);
        exp_block(act, tail);
        memcpy(v + whole, tail, (n - whole) * sizeof *v);
    }
}

static inline __attribute__((always_inline)) void softmax_rows(float *restrict a, int rows,
                                                                 int n)
{
    for (int r = 0; r < rows; r++) {
        float *row = a + (size_t)r * n;
        float max = row[0];
        for (int j = 1; j < n; j++)
            if (row[j] > max)
                max = row[j];
        for (int j = 0; j < n; j++)
            row[j] -= max;
        exp_blocks(ACT_SOFTMAX, row, (size_t)n);
        float sum = 0.0f;
        for (int j = 0; j < n; j++)
            sum += row[j];
        for (int j = 0; j < n; j++)
            row[j] /= sum;
    }
}

MN_VECTOR_CLONES
void activation_forward(Activation act, float *restrict a, int rows, int n)
{
    size_t total = (size_t)rows * n;
    switch (act) {
    case ACT_LINEAR:
        break;
    case ACT_RELU:
        for (size_t i = 0; i < total; i++)
            a[i] = a[i] > 0.0f ? a[i] : 0.0f;
        break;
    case ACT_SIGMOID:
    case ACT_TANH:
        exp_blocks(act, a, total);
        break;
    case ACT_SOFTMAX:
        softmax_rows(a, rows, n);
        break;
    case ACT_COUNT:
        break;
    }
}

MN_VECTOR_CLONES
void activation_backward(Activation act, const float *restrict a, float *restrict d, int rows,
                         int n)
{
    size_t total = (size_t)rows * n;
    switch (act) {
    case ACT_LINEAR:
        break;
    case ACT_RELU:
        for (size_t i = 0; i < total; i++)
            d[i] = a[i] > 0.0f ? d[i] : 0.0f;
        break;
    case ACT_SIGMOID:
        for (size_t i = 0; i < total; i++)
            d[i] *= a[i] * (1.0f - a[i]);
        break;
    case ACT_TANH:
        for (size_t i = 0; i < total; i++)
            d[i] *= 1.0f - a[i] * a[i];
        break;
    case ACT_SOFTMAX:
        /* dz_j = a_j (d_j - sum_k d_k a_k): the Jacobian-vector product. */
        for (int r = 0; r < rows; r++) {
            const float *ar = a + (size_t)r * n;
            float *dr = d + (size_t)r * n;
            float dot = 0.0f;
            for (int j = 0; j < n; j++)
                dot += dr[j] * ar[j];
            for (int j = 0; j < n; j++)
                dr[j] = ar[j] * (dr[j] - dot);
        }
        break;
    case ACT_COUNT:
        break;
    }
}
