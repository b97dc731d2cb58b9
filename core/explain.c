/* explain.c - integrated gradients over a model's input gradient (see
 * explain.h). The path is walked EXPLAIN_BATCH images at a time; the
 * gradients are summed in double, so a thousand steps lose nothing to
 * rounding that a few do not. */
#include "explain.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct Explainer {
    const Model *m;
    ModelRun *run;
    size_t d;            /* input numel */
    float *x, *x0;       /* the input and the baseline, preprocessed: (d) each */
    float *grad;         /* (EXPLAIN_BATCH, d) */
    double *sum;         /* (d): the gradients along the path, added up */
};

Explainer *explainer_new(const Model *m, MnError *err)
{
    Explainer *e = calloc(1, sizeof *e);
    if (!e)
        return mn_fail(err, MN_ENOMEM, "out of memory"), NULL;
    e->m = m;
    e->d = shape_numel(m->spec.input);
    e->run = model_run_new_input_gradient(m, EXPLAIN_BATCH, err);
    e->x = malloc(2 * e->d * sizeof *e->x);
    e->grad = malloc(EXPLAIN_BATCH * e->d * sizeof *e->grad);
    e->sum = malloc(e->d * sizeof *e->sum);
    if (!e->run || !e->x || !e->grad || !e->sum) {
        explainer_free(e);
        return mn_fail(err, MN_ENOMEM, "explanation buffers: out of memory"), NULL;
    }
    e->x0 = e->x + e->d;
    return e;
}

void explainer_free(Explainer *e)
{
    if (!e)
        return;
    model_run_free(e->run);
    free(e->x);
    free(e->grad);
    free(e->sum);
    free(e);
}

/* Forward of one preprocessed image; its outputs stay in the run. */
static const float *forward_one(Explainer *e, const float *x)
{
    memcpy(model_run_input(e->run), x, e->d * sizeof *x);
    return model_forward(e->m, e->run, 1, false);
}

int explain_integrated_gradients(Explainer *e, const float *unit, int cls, int steps, float *attr,
                                 Explanation *out, MnError *err)
{
    const Model *m = e->m;
    if (steps < 1)
        return mn_fail(err, MN_EINVAL, "steps must be at least 1, got %d", steps);
    if (cls < -1 || cls >= m->n_classes)
        return mn_fail(err, MN_EINVAL, "class must be from 0 to %d, got %d", m->n_classes - 1,
                       cls);
    size_t d = e->d;
    model_prepare_unit_inputs(m, unit, 1, e->x);
    memset(e->grad, 0, d * sizeof *e->grad); /* black: every pixel 0 */
    model_prepare_unit_inputs(m, e->grad, 1, e->x0);

    memset(out, 0, sizeof *out);
    memcpy(out->probs, forward_one(e, e->x), (size_t)m->n_classes * sizeof *out->probs);
    out->predicted = metrics_argmax(out->probs, m->n_classes);
    out->cls = cls < 0 ? out->predicted : cls;
    out->score_kind = model_score_is_logit(m) ? "logit" : "output";
    out->score = model_class_score(m, e->run, 0, out->cls);
    forward_one(e, e->x0);
    out->baseline_score = model_class_score(m, e->run, 0, out->cls);

    int classes[EXPLAIN_BATCH];
    for (int i = 0; i < EXPLAIN_BATCH; i++)
        classes[i] = out->cls;
    memset(e->sum, 0, d * sizeof *e->sum);
    for (int done = 0; done < steps; done += EXPLAIN_BATCH) {
        int n = steps - done < EXPLAIN_BATCH ? steps - done : EXPLAIN_BATCH;
        float *in = model_run_input(e->run);
        for (int i = 0; i < n; i++) {
            float a = (float)((done + i + 0.5) / steps);
            for (size_t j = 0; j < d; j++)
                in[(size_t)i * d + j] = e->x0[j] + a * (e->x[j] - e->x0[j]);
        }
        model_forward(m, e->run, n, false);
        model_input_gradient(m, e->run, n, classes, e->grad);
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                e->sum[j] += e->grad[(size_t)i * d + j];
    }
    out->sum = 0.0;
    for (size_t j = 0; j < d; j++) {
        attr[j] = (float)((e->x[j] - e->x0[j]) * (e->sum[j] / steps));
        out->sum += attr[j];
    }
    return 0;
}
