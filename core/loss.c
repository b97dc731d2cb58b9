/* loss.c - batch losses and their gradients (see loss.h). Sums run in
 * double: a batch mean of float terms loses digits we report. */
#include "loss.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#define KERAS_EPSILON 1e-7

double loss_softmax_crossentropy(const float *z, const uint8_t *labels, int n, int k, int batch,
                                 float *d)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = z + (size_t)i * k;
        float max = row[0];
        for (int j = 1; j < k; j++)
            if (row[j] > max)
                max = row[j];
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp((double)row[j] - max);
        double lse = max + log(sum);
        total += lse - row[labels[i]];
        if (d)
            for (int j = 0; j < k; j++) {
                double p = exp((double)row[j] - lse);
                d[(size_t)i * k + j] = (float)((p - (j == labels[i])) / batch);
            }
    }
    return total / n;
}

double loss_crossentropy(const float *p, const uint8_t *labels, int n, int k, int batch,
                                 float *d)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = p + (size_t)i * k;
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += row[j];
        if (!(sum > 0.0))
            sum = KERAS_EPSILON;
        double q = row[labels[i]] / sum;
        bool clipped = q < KERAS_EPSILON || q > 1.0 - KERAS_EPSILON;
        q = fmin(fmax(q, KERAS_EPSILON), 1.0 - KERAS_EPSILON);
        total -= log(q);
        if (!d)
            continue;
        /* L = -log(p_y / S): dL/dp_j = 1/S - [j == y] / p_y; the clip stops the gradient. */
        for (int j = 0; j < k; j++) {
            double g = clipped ? 0.0 : 1.0 / sum - (j == labels[i] ? 1.0 / row[j] : 0.0);
            d[(size_t)i * k + j] = (float)(g / batch);
        }
    }
    return total / n;
}

double loss_mse(const float *p, const uint8_t *labels, int n, int k, int batch,
                                 float *d)
{
    double total = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double diff = p[(size_t)i * k + j] - (double)(j == labels[i]);
            total += diff * diff;
            if (d)
                d[(size_t)i * k + j] = (float)(2.0 * diff / ((double)k * batch));
        }
    return total / ((double)k * n);
}
