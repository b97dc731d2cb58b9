/* loss.h - losses over n rows of k outputs against integer labels. Each
 * returns the mean over its n rows and, when d is not NULL, writes the
 * gradient of a batch mean over `batch` rows (batch >= n) to which these
 * rows belong: per-row gradients divided by batch. A batch computed in
 * parts (lanes) thus sums its parts' gradients; batch == n is one part. */
#ifndef MN_LOSS_H
#define MN_LOSS_H

#include <stdint.h>

/* Softmax + categorical cross-entropy fused over logits z (log-sum-exp):
 * finite for any finite logits; d = (softmax(z) - y) / n, where y is the
 * one-hot label smoothed as Keras does, y (1 - smoothing) + smoothing / k
 * (smoothing 0: the one-hot itself, by the same arithmetic as without it). */
double loss_softmax_crossentropy(const float *z, const uint8_t *labels, int n, int k, int batch,
                                 float smoothing, float *d);

/* Keras's categorical cross-entropy on outputs that are not a softmax
 * (the tutorial's sigmoid head): p is renormalised to sum 1 and clipped to
 * [1e-7, 1 - 1e-7] before the log, as Keras does. */
double loss_crossentropy(const float *p, const uint8_t *labels, int n, int k, int batch,
                         float smoothing, float *d);

/* Mean squared error against one-hot targets: mean over outputs and batch. */
double loss_mse(const float *p, const uint8_t *labels, int n, int k, int batch,
                                 float *d);

#endif
