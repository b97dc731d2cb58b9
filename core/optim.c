/* optim.c - SGD (momentum, Nesterov), Adam and AdamW, as Keras computes
 * them, with Keras 3's clipnorm, global_clipnorm and decoupled weight
 * decay (keras/optimizers/base_optimizer.py). Without them, and with a
 * constant rate, a step is the same arithmetic as before they existed. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vector_clones.h"

int optim_init(Optimizer *o, const OptimConfig *cfg, size_t n, const ParamSpan *vars, int n_vars,
               MnError *err)
{
    bool adam = cfg->type != OPT_SGD;
    o->cfg = *cfg;
    o->n = n;
    o->t = 0;
    o->lr = cfg->learning_rate;
    if (n_vars > OPTIM_MAX_VARIABLES)
        return mn_fail(err, MN_ELIMIT, "optimizer: %d variables, over the limit of %d", n_vars,
                       OPTIM_MAX_VARIABLES);
    o->n_vars = n_vars;
    if (n_vars)
        memcpy(o->vars, vars, (size_t)n_vars * sizeof *vars);
    o->m = calloc(n ? n : 1, sizeof *o->m);
    o->v = adam ? calloc(n ? n : 1, sizeof *o->v) : NULL;
    if (!o->m || (adam && !o->v)) {
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

float optim_learning_rate(const Optimizer *o)
{
    if (o->cfg.schedule.type == SCHEDULE_CONSTANT)
        return o->lr;
    return schedule_rate(&o->cfg.schedule, o->t);
}

static double sum_of_squares(const float *restrict g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return s;
}

/* Keras's _clip_by_norm: g * clipnorm / max(||g||, clipnorm), per variable. */
static void clip_each(const Optimizer *o, float *restrict g)
{
    float c = o->cfg.clipnorm;
    for (int k = 0; k < o->n_vars; k++) {
        float *restrict x = g + o->vars[k].offset;
        size_t n = o->vars[k].count;
        float norm = (float)sqrt(sum_of_squares(x, n));
        if (!(norm > c))
            continue; /* the ratio is 1 */
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] * c / norm;
    }
}

/* Keras's clip_by_global_norm: every gradient times c * min(1/norm, 1/c). */
static void clip_global(const Optimizer *o, float *restrict g)
{
    float c = o->cfg.global_clipnorm;
    float norm = (float)sqrt(sum_of_squares(g, o->n));
    float scale = c * fminf(1.0f / norm, 1.0f / c);
    for (size_t i = 0; i < o->n; i++)
        g[i] *= scale;
}

/* Keras 3's _apply_weight_decay: variable - variable * wd * lr, on every
 * trainable variable, before the update and with the step's rate. */
MN_VECTOR_CLONES
static void decay_weights(const Optimizer *o, float *restrict p, float lr)
{
    float wd = o->cfg.weight_decay;
    for (size_t i = 0; i < o->n; i++)
        p[i] = p[i] - p[i] * wd * lr;
}

MN_VECTOR_CLONES
static void sgd_step(Optimizer *o, float *restrict p, const float *restrict g, float lr)
{
    float mu = o->cfg.momentum;
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
static void adam_step(Optimizer *o, float *restrict p, const float *restrict g, float lr)
{
    float b1 = o->cfg.beta_1, b2 = o->cfg.beta_2, eps = o->cfg.epsilon;
    double t = (double)(o->t + 1);
    /* Bias correction folded into the step size, as Keras does: eps is not rescaled. */
    double lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
    float step = (float)lr_t;
    float *restrict m = o->m, *restrict v = o->v;
    for (size_t i = 0; i < o->n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) + eps);
    }
}

void optim_step(Optimizer *o, float *restrict params, float *restrict grads)
{
    float lr = optim_learning_rate(o);
    if (o->cfg.clipnorm > 0.0f)
        clip_each(o, grads);
    else if (o->cfg.global_clipnorm > 0.0f)
        clip_global(o, grads);
    if (o->cfg.weight_decay > 0.0f)
        decay_weights(o, params, lr);
    if (o->cfg.type == OPT_SGD)
        sgd_step(o, params, grads, lr);
    else
        adam_step(o, params, grads, lr);
    o->t++;
}
