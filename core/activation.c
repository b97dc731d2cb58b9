/* activation.c - elementwise activations and softmax over rows, in place.
 * Backward works from the activation's output a (every derivative here can
 * be written in a), so no pre-activation needs keeping. Softmax subtracts
 * the row maximum; sigmoid is written so exp never overflows. */
#include <math.h>

#include "layer.h"

static float sigmoid(float z)
{
    if (z >= 0.0f)
        return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

static void softmax_rows(float *restrict a, int rows, int n)
{
    for (int r = 0; r < rows; r++) {
        float *row = a + (size_t)r * n;
        float max = row[0];
        for (int j = 1; j < n; j++)
            if (row[j] > max)
                max = row[j];
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
            row[j] = expf(row[j] - max);
            sum += row[j];
        }
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
        for (size_t i = 0; i < total; i++)
            a[i] = sigmoid(a[i]);
        break;
    case ACT_TANH:
        for (size_t i = 0; i < total; i++)
            a[i] = tanhf(a[i]);
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
