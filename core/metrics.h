/* metrics.h - running loss, accuracy and the confusion matrix over batches.
 * The confusion matrix is rows = true class, columns = predicted class. */
#ifndef MN_METRICS_H
#define MN_METRICS_H

#include <stdint.h>

typedef struct {
    int k;
    long n, correct;
    double loss_sum;   /* sum of per-batch mean losses times batch sizes */
    long *confusion;   /* k*k, not owned; NULL when not wanted */
} Metrics;

int metrics_argmax(const float *row, int k);
void metrics_reset(Metrics *mt, int k, long *confusion);
/* Adds a batch of n output rows with its mean loss. */
void metrics_add(Metrics *mt, const float *out, const uint8_t *labels, int n, double mean_loss);
/* Adds another running total (of the same k) into mt. */
void metrics_merge(Metrics *mt, const Metrics *from);
double metrics_loss(const Metrics *mt);
double metrics_accuracy(const Metrics *mt);

#endif
