/* step.h - the gradient of one training batch, computed in lanes.
 * A big network's batch is cut in two halves (lanes), each pushed through
 * its own ModelRun into its own gradient buffer; the buffers are then
 * summed, lane 0 first. With two threads the lanes run at once; with one
 * they run in turn, and the sums are the same either way, so a seed gives
 * the same weights on any number of cores. Small networks keep one lane:
 * their whole step takes about as long as waking a thread.
 * A lane with more samples than fit in cache between layers runs them in
 * slices, forward and backward, adding each slice's gradient to its
 * buffer: the batch's gradient either way, in a few more roundings.
 * A model with batch normalization couples the samples: its lanes run
 * their halves whole, and stop before each such layer (forward and
 * backward) to add their per-channel sums, lane 0's then lane 1's, so the
 * layer sees the whole batch's statistics on any number of threads.
 * Lanes beat threads inside BLAS here: at these sizes OpenBLAS on two
 * threads made the CNN's epoch twice as slow, not twice as fast. */
#ifndef MN_STEP_H
#define MN_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "metrics.h"
#include "model.h"

#define STEP_MAX_LANES 2

typedef struct StepLanes StepLanes;

/* Lanes for batches of up to max_batch samples, run on up to `threads`
 * threads (the caller's and threads - 1 more, started here). */
StepLanes *step_lanes_new(const Model *m, int max_batch, int threads, MnError *err);
void step_lanes_free(StepLanes *s);
/* How many lanes the model gets: a property of the model and batch size,
 * never of the thread count. */
int step_lanes_count(const StepLanes *s);
/* Samples a lane runs at a time (its whole share when they fit). */
int step_lanes_slice(const StepLanes *s);

/* One batch: samples idx[first .. first + n) of d (n <= max_batch) are
 * gathered, run forward and backward; grads is overwritten with dL/dparams
 * of the batch's mean loss, and the batch is added to mt. Returns the
 * batch's mean loss. */
double step_lanes_run(StepLanes *s, const Dataset *d, const uint32_t *idx, size_t first, int n,
                      float *grads, Metrics *mt);

/* After a step of a model with batch normalization: its moving
 * statistics from the whole batch's (m is the model the lanes run). */
void step_lanes_update_state(const StepLanes *s, Model *m);

/* Fills x (n samples) and labels from d's samples idx[first..first+n), or
 * first..first+n when idx is NULL, through the model's preprocessing. */
void step_gather(const Model *m, const Dataset *d, const uint32_t *idx, size_t first, int n,
                 float *x, uint8_t *labels);

#endif
