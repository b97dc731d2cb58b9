/* h_explain.c - explanations of predictions: POST /explain (the inputs of
 * /predict), TorchServe's POST /explanations/{name}, and KServe v1's POST
 * /v1/models/{name}:explain (h_tf_predict hands its instances here). Each
 * image gets integrated gradients (core/explain.h) for its predicted class
 * or ?class=K over ?steps= points; --max-explain-steps bounds a request's
 * steps over all its images, since each step costs about three
 * predictions. ?trace=1 adds one image file's preprocessing steps, as
 * /predict's, without the layers' outputs: what the page shows beside an
 * explained photo, in the one request. An Explainer (its arena) is made
 * per request: beside the tens of passes it runs, making it is cheap. */
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "infer.h"
#include "json.h"
#include "respond.h"

#define EXPLAIN_DEFAULT_STEPS 64
/* what ?steps= may say at all; --max-explain-steps (at most this) decides */
#define EXPLAIN_MAX_STEPS 1000000L

/* ?name= as an integer in [lo, hi], or def when absent. */
static int int_arg(Request *r, const char *name, long lo, long hi, long def, long *out,
                   MnError *err)
{
    const char *v = request_arg(r, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return mn_fail(err, MN_EINVAL, "%s must be an integer from %ld to %ld, not \"%.32s\"",
                       name, lo, hi, v);
    *out = x;
    return 0;
}

/* The explanations of n images (unit: n x input numel, in [0, 1]) into
 * ex[n] and attr (n x input numel); *steps gets the steps used. */
static int explain_images(Request *r, const Model *m, const float *unit, int n, Explanation *ex,
                          float *attr, int *steps, MnError *err)
{
    long limit = r->srv->cfg.max_explain_steps, cls, st;
    long def = EXPLAIN_DEFAULT_STEPS < limit ? EXPLAIN_DEFAULT_STEPS : limit;
    int rc = int_arg(r, "class", 0, m->n_classes - 1, -1, &cls, err);
    if (rc == 0)
        rc = int_arg(r, "steps", 1, EXPLAIN_MAX_STEPS, def, &st, err);
    if (rc == 0 && st * n > limit)
        rc = n == 1 ? mn_fail(err, MN_ELIMIT,
                              "%ld steps, over the limit of %ld a request (--max-explain-steps)",
                              st, limit)
                    : mn_fail(err, MN_ELIMIT,
                              "%d images of %ld steps each make %ld steps, over the limit of %ld "
                              "a request (--max-explain-steps)",
                              n, st, st * n, limit);
    if (rc)
        return rc;
    Explainer *ig = explainer_new(m, err);
    if (!ig)
        return err ? err->code : MN_ENOMEM;
    size_t d = shape_numel(m->spec.input);
    for (int i = 0; i < n && rc == 0; i++)
        rc = explain_integrated_gradients(ig, unit + (size_t)i * d, (int)cls, (int)st,
                                          attr + (size_t)i * d, &ex[i], err);
    explainer_free(ig);
    *steps = (int)st;
    return rc;
}

/* An image-shaped map as rows of numbers, channels added up. */
static cJSON *map_json(const Model *m, const float *v)
{
    Shape s = m->spec.input;
    cJSON *rows = cJSON_CreateArray();
    for (int y = 0; y < s.h; y++) {
        cJSON *row = cJSON_CreateArray();
        for (int x = 0; x < s.w; x++) {
            float sum = 0.0f;
            for (int c = 0; c < s.c; c++)
                sum += v[((size_t)y * s.w + x) * s.c + c];
            cJSON_AddItemToArray(row, json_float(sum));
        }
        cJSON_AddItemToArray(rows, row);
    }
    return rows;
}

/* /explain's answer for one image: /predict's, the image the model saw
 * and the explanation with what checks it (score gap and sum). */
static cJSON *result_json(const StoreEntry *e, const Explanation *ex, const float *attr,
                          const float *unit, int steps)
{
    const Model *m = e->model;
    cJSON *o = infer_result_json(e, ex->probs);
    cJSON_AddItemToObject(o, "image", map_json(m, unit));
    cJSON *x = cJSON_AddObjectToObject(o, "explanation");
    cJSON_AddStringToObject(x, "method", "integrated_gradients");
    cJSON_AddStringToObject(x, "baseline", "black");
    cJSON_AddNumberToObject(x, "steps", steps);
    cJSON_AddNumberToObject(x, "class", ex->cls);
    cJSON_AddStringToObject(x, "label", m->class_names[ex->cls]);
    cJSON_AddStringToObject(x, "score", ex->score_kind);
    cJSON_AddItemToObject(x, "score_input", json_float(ex->score));
    cJSON_AddItemToObject(x, "score_baseline", json_float(ex->baseline_score));
    cJSON_AddItemToObject(x, "attribution_sum", json_float((float)ex->sum));
    cJSON_AddItemToObject(x, "delta",
                          json_float((float)(ex->sum - ((double)ex->score - ex->baseline_score))));
    cJSON_AddItemToObject(x, "attributions", map_json(m, attr));
    return o;
}

enum MHD_Result h_explain(Request *r)
{
    MnError err = {0};
    bool torchserve = r->n_params > 0; /* /explanations/{name} */
    const char *name = torchserve ? r->params[0] : request_arg(r, "model");
    const StoreEntry *e = infer_pick_model(r, name, request_arg(r, "version"), &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    size_t d = shape_numel(m->spec.input);
    PredictImages im = {0};
    float *unit = NULL, *attr = NULL;
    Explanation *ex = NULL;
    ImageTrace *trace = NULL; /* the image's preprocessing, with ?trace=1 */
    int steps = 0, rc = predict_collect(r, d, &im, &err);
    if (rc == 0 && infer_wants_trace(r) && !torchserve && !(trace = calloc(1, sizeof *trace)))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0)
        rc = predict_decode(r, m, &im, &unit, trace, &err);
    const float *images = im.pixels ? im.pixels : unit;
    if (rc == 0 && (!(attr = malloc((size_t)im.n * d * sizeof *attr)) ||
                    !(ex = malloc((size_t)im.n * sizeof *ex))))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0)
        rc = explain_images(r, m, images, im.n, ex, attr, &steps, &err);
    enum MHD_Result ret;
    if (rc) {
        ret = respond_mn_error(r, &err);
    } else if (!im.batch) {
        cJSON *o = torchserve ? map_json(m, attr) : result_json(e, ex, attr, images, steps);
        if (trace && !im.pixels) /* JSON pixels have no preprocessing */
            cJSON_AddItemToObject(o, "preprocessing", infer_image_trace_json(trace));
        ret = respond_json(r, MHD_HTTP_OK, o);
    } else {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < im.n; i++) {
            const float *a = attr + (size_t)i * d;
            cJSON_AddItemToArray(arr, torchserve ? map_json(m, a)
                                                 : result_json(e, &ex[i], a,
                                                               images + (size_t)i * d, steps));
        }
        ret = respond_json(r, MHD_HTTP_OK, arr);
    }
    store_release(r->srv->store, e);
    free(im.png);
    free(im.png_len);
    free(im.pixels);
    free(unit);
    free(attr);
    free(ex);
    free(trace);
    return ret;
}

int explain_kserve(Request *r, const StoreEntry *e, const float *unit, int n, cJSON **answer,
                   MnError *err)
{
    const Model *m = e->model;
    size_t d = shape_numel(m->spec.input);
    float *attr = malloc((size_t)n * d * sizeof *attr);
    Explanation *ex = malloc((size_t)n * sizeof *ex);
    int steps, rc = attr && ex ? explain_images(r, m, unit, n, ex, attr, &steps, err)
                               : mn_fail(err, MN_ENOMEM, "out of memory");
    if (rc == 0) {
        *answer = cJSON_CreateObject();
        cJSON *preds = cJSON_AddArrayToObject(*answer, "predictions");
        cJSON *maps = cJSON_AddArrayToObject(*answer, "explanations");
        for (int i = 0; i < n; i++) {
            cJSON_AddItemToArray(preds, json_float_array(ex[i].probs, m->n_classes));
            cJSON_AddItemToArray(maps, map_json(m, attr + (size_t)i * d));
        }
    }
    free(attr);
    free(ex);
    return rc;
}
