/* loss.c - batch losses and their gradients (see loss.h). Sums run in
 * double: a batch mean of float terms loses digits we report. */
#include "loss.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#define KERAS_EPSILON 1e-7

/* Keras's smoothed target: y (1 - ls) + ls / k, for class j of a row labelled y. */
static double smoothed_target(int j, int label, double ls, int k)
{
    return (j == label) * (1.0 - ls) + ls / k;
}

/* The fused row with smoothed targets: L = lse - sum_j t_j z_j (the t_j sum
 * to 1), dL/dz_j = softmax_j - t_j, exact as without smoothing. */
static double smoothed_logits_row(const float *row, int label, double lse, int k, double ls,
                                  int batch, float *d)
{
    double loss = lse;
    for (int j = 0; j < k; j++) {
        double t = smoothed_target(j, label, ls, k);
        loss -= t * row[j];
        if (d)
            d[j] = (float)((exp((double)row[j] - lse) - t) / batch);
    }
    return loss;
}

double loss_softmax_crossentropy(const float *z, const uint8_t *labels, int n, int k, int batch,
                                 float smoothing, float *d)
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
        if (smoothing > 0.0f) {
            total += smoothed_logits_row(row, labels[i], lse, k, smoothing, batch,
                                         d ? d + (size_t)i * k : NULL);
            continue;
        }
        total += lse - row[labels[i]];
        if (d)
            for (int j = 0; j < k; j++) {
                double p = exp((double)row[j] - lse);
                d[(size_t)i * k + j] = (float)((p - (j == labels[i])) / batch);
            }
    }
    return total / n;
}

/* -sum_j t_j log q_j with q = p / S clipped to [eps, 1 - eps]: a clipped
 * class passes no gradient, an unclipped one t_j (1/S - [i == j] / p_j). */
static double smoothed_probs_row(const float *row, double sum, int label, int k, double ls,
                                 int batch, float *d)
{
    double loss = 0.0, through = 0.0; /* through: sum of t_j over unclipped j */
    for (int j = 0; j < k; j++) {
        double t = smoothed_target(j, label, ls, k), q = row[j] / sum;
        bool clipped = q < KERAS_EPSILON || q > 1.0 - KERAS_EPSILON;
        loss -= t * log(fmin(fmax(q, KERAS_EPSILON), 1.0 - KERAS_EPSILON));
        if (!clipped)
            through += t;
        if (d) /* the own-class term now, the shared 1/S one below */
            d[j] = clipped ? 0.0f : (float)(-t / row[j]);
    }
    if (d)
        for (int j = 0; j < k; j++)
            d[j] = (float)(((double)d[j] + through / sum) / batch);
    return loss;
}

double loss_crossentropy(const float *p, const uint8_t *labels, int n, int k, int batch,
                         float smoothing, float *d)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = p + (size_t)i * k;
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += row[j];
        if (!(sum > 0.0))
            sum = KERAS_EPSILON;
        if (smoothing > 0.0f) {
            total += smoothed_probs_row(row, sum, labels[i], k, smoothing, batch,
                                        d ? d + (size_t)i * k : NULL);
            continue;
        }
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
