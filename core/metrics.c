/* metrics.c - accumulators for loss, accuracy and confusion. */
#include "metrics.h"

#include <stddef.h>
#include <string.h>

int metrics_argmax(const float *row, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

void metrics_reset(Metrics *mt, int k, long *confusion)
{
    mt->k = k;
    mt->n = mt->correct = 0;
    mt->loss_sum = 0.0;
    mt->confusion = confusion;
    if (confusion)
        memset(confusion, 0, (size_t)k * k * sizeof *confusion);
}

void metrics_add(Metrics *mt, const float *out, const uint8_t *labels, int n, double mean_loss)
{
    for (int i = 0; i < n; i++) {
        int pred = metrics_argmax(out + (size_t)i * mt->k, mt->k);
        mt->correct += pred == labels[i];
        if (mt->confusion)
            mt->confusion[(size_t)labels[i] * mt->k + pred]++;
    }
    mt->n += n;
    mt->loss_sum += mean_loss * n;
}

void metrics_merge(Metrics *mt, const Metrics *from)
{
    mt->n += from->n;
    mt->correct += from->correct;
    mt->loss_sum += from->loss_sum;
    if (mt->confusion && from->confusion)
        for (int i = 0; i < mt->k * mt->k; i++)
            mt->confusion[i] += from->confusion[i];
}

double metrics_loss(const Metrics *mt) { return mt->n ? mt->loss_sum / mt->n : 0.0; }

double metrics_accuracy(const Metrics *mt) { return mt->n ? (double)mt->correct / mt->n : 0.0; }
