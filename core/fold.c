/* fold.c - batch normalization folded into the layer before it, for
 * serving: W' = W * scale and b' = b * scale + shift per output channel,
 * in a copy of the weights (Model.serve_params), so the trained weights,
 * the file and training never see it. A normalization that cannot fold
 * (after a nonlinear activation, a layer read by others too, the model's
 * input, a type that takes no affine, or a layer without a bias) runs as its own per-channel
 * affine from the moving statistics. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* Whether layer i's affine may go into the layer before it: linear, read
 * by i alone, able to take one. */
static bool foldable_into(const ModelSpec *s, int i)
{
    int j = s->layers[i].inputs[0];
    if (j == LAYER_INPUT_MODEL)
        return false;
    const Layer *before = &s->layers[j];
    return layer_ops(before->type)->fold_affine && before->act == ACT_LINEAR &&
           spec_readers(s, j) == 1;
}

int model_fold_for_serving(Model *m, MnError *err)
{
    const ModelSpec *s = &m->spec;
    if (m->serve_params)
        return 0; /* folded already */
    size_t widest = 1;
    for (int i = 0; i < s->n_layers; i++)
        if (layer_ops(s->layers[i].type)->as_affine && (size_t)s->layers[i].out.c > widest)
            widest = (size_t)s->layers[i].out.c;
    float *copy = malloc((m->n_params ? m->n_params : 1) * sizeof *copy);
    float *affine = malloc(2 * widest * sizeof *affine);
    if (!copy || !affine) {
        free(copy), free(affine);
        return mn_fail(err, MN_ENOMEM, "folding for serving: out of memory");
    }
    memcpy(copy, m->params, m->n_params * sizeof *copy);
    bool any = false;
    for (int i = 0; i < s->n_layers; i++) {
        const Layer *l = &s->layers[i];
        const LayerOps *ops = layer_ops(l->type);
        if (!ops->as_affine || !foldable_into(s, i))
            continue;
        const Layer *before = &s->layers[l->inputs[0]];
        float *scale = affine, *shift = affine + widest;
        ops->as_affine(l, m->params + l->param_offset, m->state + l->state_offset, scale, shift);
        m->folded[i] =
            layer_ops(before->type)->fold_affine(before, copy + before->param_offset, scale, shift);
        any = any || m->folded[i];
    }
    free(affine);
    if (!any) { /* nothing folded: serve the trained weights, not a copy of them */
        free(copy);
        return 0;
    }
    m->serve_params = copy;
    return 0;
}
