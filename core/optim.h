/* optim.h - optimizers over the model's one flat parameter buffer and its
 * gradient twin: one loop each, state (velocity, Adam's m and v) in twins
 * allocated once. Update rules and defaults are Keras's. */
#ifndef MN_OPTIM_H
#define MN_OPTIM_H

#include <stddef.h>

#include "error.h"
#include "spec.h"

typedef struct {
    OptimConfig cfg;
    size_t n;
    float *m; /* SGD velocity, or Adam's first moment */
    float *v; /* Adam's second moment; NULL for SGD */
    long long t;
} Optimizer;

int optim_init(Optimizer *o, const OptimConfig *cfg, size_t n, MnError *err);
void optim_free(Optimizer *o);
/* One step: params -= update(grads). */
void optim_step(Optimizer *o, float *restrict params, const float *restrict grads);

#endif
