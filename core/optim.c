/* optim.c - SGD (momentum, Nesterov) and Adam, as tf.keras computes them. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

#include "vector_clones.h"

int optim_init(Optimizer *o, const OptimConfig *cfg, size_t n, MnError *err)
{
    o->cfg = *cfg;
    o->n = n;
    o->t = 0;
    o->m = calloc(n ? n : 1, sizeof *o->m);
    o->v = cfg->type == OPT_ADAM ? calloc(n ? n : 1, sizeof *o->v) : NULL;
    if (!o->m || (cfg->type == OPT_ADAM && !o->v)) {
        optim_free(o);
        return mn_fail(err, MN_ENOMEM, "optimizer state for %zu parameters: out of memory", n);
    }
    return 0;
}

void optim_free(Optimizer *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

MN_VECTOR_CLONES
static void sgd_step(Optimizer *o, float *restrict p, const float *restrict g)
{
    float lr = o->cfg.learning_rate, mu = o->cfg.momentum;
    float *restrict vel = o->m;
    if (mu == 0.0f) {
        for (size_t i = 0; i < o->n; i++)
            p[i] -= lr * g[i];
        return;
    }
    for (size_t i = 0; i < o->n; i++) {
        vel[i] = mu * vel[i] - lr * g[i];
        p[i] += o->cfg.nesterov ? mu * vel[i] - lr * g[i] : vel[i];
    }
}

MN_VECTOR_CLONES
static void adam_step(Optimizer *o, float *restrict p, const float *restrict g)
{
    float b1 = o->cfg.beta_1, b2 = o->cfg.beta_2, eps = o->cfg.epsilon;
    o->t++;
    /* Bias correction folded into the step size, as Keras does: eps is not rescaled. */
    double lr_t = o->cfg.learning_rate * sqrt(1.0 - pow(b2, (double)o->t)) /
                  (1.0 - pow(b1, (double)o->t));
    float step = (float)lr_t;
    float *restrict m = o->m, *restrict v = o->v;
    for (size_t i = 0; i < o->n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) + eps);
    }
}

void optim_step(Optimizer *o, float *restrict params, const float *restrict grads)
{
    if (o->cfg.type == OPT_ADAM)
        adam_step(o, params, grads);
    else
        sgd_step(o, params, grads);
}
