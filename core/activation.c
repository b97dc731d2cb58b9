/* activation.c - elementwise activations and softmax over rows, in place.
 * Backward works from the activation's output a where the derivative can
 * be written in a (relu, sigmoid, tanh, softmax, leaky_relu, elu), so
 * nothing more is kept for them; gelu's and swish's cannot, and take the
 * input z as well (activation_needs_input). Softmax subtracts the row
 * maximum; sigmoid is written so exp never overflows. */
#include <math.h>
#include <string.h>

#include "layer.h"

/* glibc's vector exp, tanh, erfc and expm1 (libmvec, which -lm brings in): the loops
 * below call them 4, 8 or 16 values at a time, as wide as the clone, at
 * 0.7 ns a sigmoid where the scalar calls took 7 (a third of 784-16-10's
 * forward pass). Each clone's results are its own in the last bits, as
 * each GEMM kernel's are. */
#if defined(__x86_64__) && !defined(__clang__)
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) float erfcf(float);
__attribute__((simd("notinbranch"))) float expm1f(float);
#endif

/* Keras 3's string activations: leaky_relu's negative_slope is 0.2 (the
 * LeakyReLU layer's default, 0.3, is not the string's); elu's alpha 1.
 * The LeakyReLU and ELU layers (leaky_elu.c) take any. */
#define LEAKY_RELU_SLOPE 0.2f
#define ELU_ALPHA 1.0f
#define SQRT1_2 0.70710678118654752f     /* 1 / sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143268f /* 1 / sqrt(2 pi) */

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

/* Phi(z), the standard normal CDF, as TensorFlow's gelu writes it: erfc
 * keeps the negative tail's few significant bits that 1 + erf(z / sqrt 2)
 * cancels away (gelu(-5) is -1.4e-6; 1 + erf would be off by a tenth). */
static inline float normal_cdf(float z) { return 0.5f * erfcf(-z * SQRT1_2); }

/* f(v) for the activations that call libm; any other act: exp. */
MN_CLONE_INLINE float vector_one(Activation act, float v)
{
    switch (act) {
    case ACT_SIGMOID:
        return sigmoid(v);
    case ACT_TANH:
        return tanhf(v);
    case ACT_GELU:
        return v * normal_cdf(v);
    case ACT_SWISH:
        return v * sigmoid(v);
    case ACT_ELU: {
        float e = expm1f(v); /* called for every lane, so the loop stays branch-free */
        return v > 0.0f ? v : e;
    }
    default:
        return expf(v);
    }
}

/* f'(z) for the activations whose derivative needs z. */
MN_CLONE_INLINE float vector_slope(Activation act, float z)
{
    if (act == ACT_GELU)
        return normal_cdf(z) + z * expf(-0.5f * z * z) * INV_SQRT_2PI;
    float s = sigmoid(z); /* swish: s + z s (1 - s) */
    return s * (1.0f + z * (1.0f - s));
}

MN_CLONE_INLINE void exp_block(Activation act, float *v)
{
    /* not unrolled first: unrolled, GCC calls the scalar exp 16 times */
#pragma GCC unroll 1
    for (int i = 0; i < EXP_BLOCK; i++)
        v[i] = vector_one(act, v[i]);
}

MN_CLONE_INLINE void slope_block(Activation act, const float *z,
                                                                float *d)
{
#pragma GCC unroll 1
    for (int i = 0; i < EXP_BLOCK; i++)
        d[i] *= vector_slope(act, z[i]);
}

/* v = f(v) over n values (see vector_one). */
MN_CLONE_INLINE void exp_blocks(Activation act, float *v, size_t n)
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

/* d *= f'(z) over n values, the tail padded as exp_blocks pads it. */
MN_CLONE_INLINE void slope_blocks(Activation act, const float *z,
                                                                 float *d, size_t n)
{
    size_t whole = n / EXP_BLOCK * EXP_BLOCK;
    for (size_t i = 0; i < whole; i += EXP_BLOCK)
        slope_block(act, z + i, d + i);
    if (whole < n) {
        float zt[EXP_BLOCK] = {0}, dt[EXP_BLOCK] = {0};
        memcpy(zt, z + whole, (n - whole) * sizeof *z);
        memcpy(dt, d + whole, (n - whole) * sizeof *d);
        slope_block(act, zt, dt);
        memcpy(d + whole, dt, (n - whole) * sizeof *d);
    }
}

/* Each row less its maximum, then e^ over all rows at once (a row of 10
 * alone would be one padded vector call, its copies in and out), then
 * each row over its sum. The vector exp works lane by lane, so a value's
 * e^ does not depend on where in the block it lands. */
MN_CLONE_INLINE void softmax_rows(float *restrict a, int rows,
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
    }
    exp_blocks(ACT_SOFTMAX, a, (size_t)rows * n);
    for (int r = 0; r < rows; r++) {
        float *row = a + (size_t)r * n;
        float sum = 0.0f;
        for (int j = 0; j < n; j++)
            sum += row[j];
        for (int j = 0; j < n; j++)
            row[j] /= sum;
    }
}

MN_CLONE_INLINE void leaky_relu(float *restrict a, size_t n,
                                                              float slope)
{
    for (size_t i = 0; i < n; i++)
        a[i] = a[i] > 0.0f ? a[i] : slope * a[i];
}

/* alpha (e^z - 1) below 0: e^z - 1 first, then the slope as leaky_relu's
 * (skipped at 1, which changes nothing). */
MN_CLONE_INLINE void elu(float *restrict a, size_t n, float alpha)
{
    exp_blocks(ACT_ELU, a, n);
    if (alpha != 1.0f)
        leaky_relu(a, n, alpha);
}

/* a > 0 exactly where z > 0 (slope >= 0). */
MN_CLONE_INLINE void leaky_relu_backward(const float *restrict a,
                                                                       float *restrict d, size_t n,
                                                                       float slope)
{
    for (size_t i = 0; i < n; i++)
        d[i] = a[i] > 0.0f ? d[i] : slope * d[i];
}

/* For z <= 0, a = alpha (e^z - 1): the slope alpha e^z is a + alpha. */
MN_CLONE_INLINE void elu_backward(const float *restrict a,
                                                                float *restrict d, size_t n,
                                                                float alpha)
{
    for (size_t i = 0; i < n; i++)
        d[i] *= a[i] > 0.0f ? 1.0f : a[i] + alpha;
}

MN_VECTOR_CLONES
void activation_leaky_relu(float *restrict a, size_t n, float slope) { leaky_relu(a, n, slope); }

MN_VECTOR_CLONES
void activation_elu(float *restrict a, size_t n, float alpha) { elu(a, n, alpha); }

MN_VECTOR_CLONES
void activation_leaky_relu_backward(const float *restrict a, float *restrict d, size_t n,
                                    float slope)
{
    leaky_relu_backward(a, d, n, slope);
}

MN_VECTOR_CLONES
void activation_elu_backward(const float *restrict a, float *restrict d, size_t n, float alpha)
{
    elu_backward(a, d, n, alpha);
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
    case ACT_GELU: /* constant acts: each loop vectorised on its own */
        exp_blocks(ACT_GELU, a, total);
        break;
    case ACT_SWISH:
        exp_blocks(ACT_SWISH, a, total);
        break;
    case ACT_ELU:
        elu(a, total, ELU_ALPHA);
        break;
    case ACT_LEAKY_RELU:
        leaky_relu(a, total, LEAKY_RELU_SLOPE);
        break;
    case ACT_COUNT:
        break;
    }
}

bool activation_needs_input(Activation act) { return act == ACT_GELU || act == ACT_SWISH; }

MN_VECTOR_CLONES
void activation_backward(Activation act, const float *restrict z, const float *restrict a,
                         float *restrict d, int rows, int n)
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
    case ACT_GELU:
        slope_blocks(ACT_GELU, z, d, total);
        break;
    case ACT_SWISH:
        slope_blocks(ACT_SWISH, z, d, total);
        break;
    case ACT_LEAKY_RELU:
        leaky_relu_backward(a, d, total, LEAKY_RELU_SLOPE);
        break;
    case ACT_ELU:
        elu_backward(a, d, total, ELU_ALPHA);
        break;
    case ACT_COUNT:
        break;
    }
}
