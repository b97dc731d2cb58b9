/* optim.h - optimizers over the model's one flat parameter buffer and its
 * gradient twin: one loop each, state (velocity, Adam's m and v) in twins
 * allocated once. Update rules and defaults are Keras's; so is the order
 * of one step (Keras 3's BaseOptimizer.apply): clip the gradients, decay
 * the weights, update, then count the step. */
#ifndef MN_OPTIM_H
#define MN_OPTIM_H

#include <stddef.h>

#include "error.h"
#include "spec.h"

/* A kernel, a bias: each is clipped to clipnorm on its own, as Keras
 * clips each variable. */
#define OPTIM_MAX_VARIABLES (4 * SPEC_MAX_LAYERS)

typedef struct {
    size_t offset, count; /* floats into the parameter buffer */
} ParamSpan;

typedef struct {
    OptimConfig cfg;
    size_t n;
    float *m; /* SGD velocity, or Adam's first moment */
    float *v; /* Adam's second moment; NULL for SGD */
    long long t; /* steps taken: Keras's optimizer.iterations */
    float lr;    /* the rate without a schedule; ReduceLROnPlateau lowers it */
    int n_vars;
    ParamSpan vars[OPTIM_MAX_VARIABLES];
} Optimizer;

/* vars: the model's variables in its buffer (what clipnorm clips one by
 * one); n_vars <= OPTIM_MAX_VARIABLES. */
int optim_init(Optimizer *o, const OptimConfig *cfg, size_t n, const ParamSpan *vars, int n_vars,
               MnError *err);
void optim_free(Optimizer *o);
/* The rate of the next step (Keras's optimizer.learning_rate). */
float optim_learning_rate(const Optimizer *o);
/* One step: params -= update(grads). grads is clipped in place. */
void optim_step(Optimizer *o, float *restrict params, float *restrict grads);

#endif
