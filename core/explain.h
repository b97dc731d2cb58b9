/* explain.h - integrated gradients (Sundararajan, Taly and Yan, 2017):
 * how much of a class's score each input value accounts for, measured from
 * a baseline, the black image (every pixel 0) through the model's own
 * preprocessing. Input j's attribution is
 *     (x_j - x0_j) * mean over k of d score / d x_j at x0 + a_k (x - x0),
 * with a_k = (k + 1/2) / steps (the midpoint rule). The score is
 * model_class_score's: the logit for a softmax head. Completeness: the
 * attributions add up to score(x) - score(x0), the closer the more steps.
 * An Explainer owns one input gradient run; one thread uses it at a time. */
#ifndef MN_EXPLAIN_H
#define MN_EXPLAIN_H

#include "model.h"

/* Interpolated images pushed through the model at once. */
#define EXPLAIN_BATCH 16

typedef struct Explainer Explainer;

Explainer *explainer_new(const Model *m, MnError *err);
void explainer_free(Explainer *e);

typedef struct {
    int cls;                          /* the class explained */
    int predicted;                    /* the model's answer for the input */
    float probs[MODEL_MAX_CLASSES];   /* the model's output for the input */
    float score, baseline_score;      /* the class's score at the input and at the baseline */
    double sum;                       /* of the attributions: near score - baseline_score */
    const char *score_kind;           /* "logit" (a softmax head's) or "output" */
} Explanation;

/* Attributions for one image of pixels in [0, 1] (the model's input
 * numel), into attr (as many floats), for class cls (-1: the predicted
 * class) with `steps` points on the path (>= 1). MN_EINVAL for a class or
 * a step count out of range. */
int explain_integrated_gradients(Explainer *e, const float *unit, int cls, int steps, float *attr,
                                 Explanation *out, MnError *err);

#endif
