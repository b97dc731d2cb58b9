/* model_import.c - see model_import.h. */
#include "model_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_file.h"

int model_import_bytes(const void *buf, size_t len, const OnnxImportOptions *opt,
                       const SpecLimits *lim, Model **out, MnError *err)
{
    *out = NULL;
    if (!model_file_has_magic(buf, len))
        return onnx_import(buf, len, opt, lim, out, err);
    if (len > opt->max_bytes)
        return mn_fail(err, MN_ELIMIT, "the model file is %zu bytes, over the limit of %zu", len,
                       opt->max_bytes);
    int rc = model_load_buffer(buf, len, "the uploaded model", lim, out, err);
    if (rc == 0)
        snprintf((*out)->spec.name, sizeof (*out)->spec.name, "%s", opt->name);
    return rc;
}

int model_import_split_classes(char *list, const char **names)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == MODEL_MAX_CLASSES)
            return -1;
        names[n++] = tok;
    }
    return n;
}

/* The next layer at or after *i that has parameters or state; -1 at the end. */
static int next_weighted(const ModelSpec *s, int *i)
{
    for (; *i < s->n_layers; ++*i)
        if (s->layers[*i].param_count || s->layers[*i].state_count)
            return (*i)++;
    return -1;
}

static bool same_shape(Shape a, Shape b) { return a.h == b.h && a.w == b.w && a.c == b.c; }

int model_import_weights(const ModelSpec *spec, const Model *src, const SpecLimits *lim,
                         Model **out, MnError *err)
{
    Model *m = NULL;
    int rc = model_build(spec, lim, &m, err);
    if (rc)
        return rc;
    int i = 0, j = 0, a, b;
    char la[96], lb[96];
    while (rc == 0 && ((a = next_weighted(&m->spec, &i)), (b = next_weighted(&src->spec, &j)),
                       a >= 0 || b >= 0)) {
        if (a >= 0)
            spec_layer_label(&m->spec, a, la, sizeof la);
        if (b >= 0)
            spec_layer_label(&src->spec, b, lb, sizeof lb);
        if (a < 0 || b < 0) {
            rc = mn_fail(err, MN_ESPEC, "%s %s has weights and the file has no layer left for it",
                         a < 0 ? "the file's" : "the spec's", a < 0 ? lb : la);
            break;
        }
        const Layer *d = &m->spec.layers[a], *s = &src->spec.layers[b];
        if (d->type != s->type || d->param_count != s->param_count ||
            d->state_count != s->state_count || !same_shape(d->in, s->in) ||
            !same_shape(d->out, s->out)) {
            rc = mn_fail(err, MN_ESPEC, "the spec's %s (%dx%dx%d -> %dx%dx%d, %zu weights) does "
                         "not match the file's %s (%dx%dx%d -> %dx%dx%d, %zu weights)", la,
                         d->in.h, d->in.w, d->in.c, d->out.h, d->out.w, d->out.c, d->param_count,
                         lb, s->in.h, s->in.w, s->in.c, s->out.h, s->out.w, s->out.c,
                         s->param_count);
            break;
        }
        memcpy(m->params + d->param_offset, src->params + s->param_offset,
               d->param_count * sizeof *m->params);
        memcpy(m->state + d->state_offset, src->state + s->state_offset,
               d->state_count * sizeof *m->state);
    }
    if (rc == 0 && m->n_classes != src->n_classes)
        rc = mn_fail(err, MN_ESPEC, "the spec has %d outputs, the file %d", m->n_classes,
                     src->n_classes);
    if (rc) {
        model_free(m);
        return rc;
    }
    memcpy(m->class_names, src->class_names, sizeof m->class_names);
    *out = m;
    return 0;
}
