/* infer.c - shared prediction plumbing (see infer.h). */
#include "infer.h"

#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "model_dir.h"

int infer_image(const Server *srv, const Model *m, const char *mode, const void *bytes, size_t len,
                float *out, ImageTrace *trace, MnError *err)
{
    ImageLimits lim = {(size_t)srv->cfg.max_image_bytes, (int)srv->cfg.max_image_side,
                       (int)srv->cfg.max_image_side, (int)srv->cfg.max_jpeg_scans,
                       srv->cfg.max_decoder_memory};
    ImagePreprocess pre = m->spec.image_preprocess;
    if (mode) {
        int p = image_preprocess_from_name(mode);
        if (p < 0)
            return mn_fail(err, MN_EINVAL, "preprocess must be digit, frame or none, not \"%.32s\"",
                           mode);
        pre = (ImagePreprocess)p;
    }
    return image_from_bytes(bytes, len, &lim, pre, m->spec.input.h, m->spec.input.w, out, trace,
                            err);
}

int infer_png(const Server *srv, const Model *m, const char *mode, const void *png, size_t len,
              float *out, MnError *err)
{
    return infer_image(srv, m, mode, png, len, out, NULL, err);
}

cJSON *infer_image_trace_json(const ImageTrace *t)
{
    cJSON *steps = cJSON_CreateArray();
    for (int i = 0; i < t->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "step", t->steps[i].step);
        cJSON_AddNumberToObject(o, "width", t->steps[i].w);
        cJSON_AddNumberToObject(o, "height", t->steps[i].h);
        cJSON *px = cJSON_AddArrayToObject(o, "pixels");
        for (int k = 0; k < t->steps[i].w * t->steps[i].h; k++)
            cJSON_AddItemToArray(px, cJSON_CreateNumber(t->steps[i].px[k]));
        cJSON_AddItemToArray(steps, o);
    }
    return steps;
}

bool infer_wants_trace(Request *r)
{
    const char *v = request_arg(r, "trace");
    return v && strcmp(v, "0") && strcmp(v, "false");
}

static void add_trace(cJSON *trace, const Model *m, const ModelRun *run)
{
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        size_t n = shape_numel(l->out);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "type", layer_ops(l->type)->name);
        cJSON_AddStringToObject(o, "activation", activation_name(l->act));
        int shape[3] = {l->out.h, l->out.w, l->out.c};
        cJSON_AddItemToObject(o, "output_shape", cJSON_CreateIntArray(shape, 3));
        cJSON_AddItemToObject(o, "values", json_float_array(model_run_activation(run, i), (int)n));
        /* served folded: this layer's values are already the normalization's */
        for (int j = i + 1; j < m->spec.n_layers; j++)
            if (m->folded[j] && m->spec.layers[j].inputs[0] == i)
                cJSON_AddStringToObject(o, "folded_with", m->spec.layers[j].name);
        cJSON_AddItemToArray(trace, o);
    }
}

int infer_run(const StoreEntry *e, const float *unit, int n, float *probs, cJSON *trace,
              MnError *err)
{
    const Model *m = e->model;
    ModelRun *run = run_pool_take(e->runs, err);
    if (!run)
        return err ? err->code : MN_ENOMEM;
    size_t d = shape_numel(m->spec.input);
    for (int done = 0; done < n; done += RUN_POOL_BATCH) {
        int b = n - done < RUN_POOL_BATCH ? n - done : RUN_POOL_BATCH;
        model_prepare_unit_inputs(m, unit + (size_t)done * d, b, model_run_input(run));
        const float *out = model_forward(m, run, b, false);
        memcpy(probs + (size_t)done * m->n_classes, out, (size_t)b * m->n_classes * sizeof *out);
        if (trace && done == 0)
            add_trace(trace, m, run);
    }
    run_pool_give(e->runs, run);
    return 0;
}

cJSON *infer_result_json(const StoreEntry *e, const float *probs)
{
    const Model *m = e->model;
    int best = metrics_argmax(probs, m->n_classes);
    /* Literal keys (the CS calls), references to e's names and class
     * list, and the probabilities as one raw item: 8 allocations where a
     * node and a copy for each key, name and number made 55. */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "model", cJSON_CreateStringReference(e->name));
    cJSON_AddItemToObjectCS(o, "version", json_int_raw(e->version));
    cJSON_AddItemToObjectCS(o, "prediction", json_int_raw(best));
    cJSON_AddItemToObjectCS(o, "label", cJSON_CreateStringReference(m->class_names[best]));
    cJSON_AddItemToObjectCS(o, "probabilities", json_float_array_raw(probs, m->n_classes));
    cJSON_AddItemToObjectCS(o, "classes", cJSON_CreateArrayReference(e->classes->child));
    return o;
}

bool infer_name_ok(const char *name)
{
    size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.");
    return n >= 1 && n <= 63 && !name[n] && name[0] != '.';
}

const StoreEntry *infer_pick_model(Request *r, const char *name, const char *version,
                                   MnError *err)
{
    /* No store name is other than this, so "../x", "a/b" or 4000 bytes
     * are simply not found; the message quotes the start of it. */
    if (name && !infer_name_ok(name)) {
        mn_fail(err, MN_ENOTFOUND, "model \"%.64s%s\" not found: a name is 1 to 63 letters, "
                "digits, '_', '-' or '.'", name, strlen(name) > 64 ? "..." : "");
        return NULL;
    }
    int v = 0;
    if (version) {
        char *end;
        long x = strtol(version, &end, 10);
        if (!*version || *end || x < 1 || x > MODEL_DIR_VERSION_MAX) {
            mn_fail(err, MN_EINVAL, "version must be a positive integer, not \"%.32s\"", version);
            return NULL;
        }
        v = (int)x;
    }
    return store_acquire(r->srv->store, name ? name : r->srv->cfg.default_model, v, err);
}
