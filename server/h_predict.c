/* h_predict.c - POST /predict (and TorchServe's /predictions/{name}):
 * multipart files in the field "image" (or "data"; several = a batch), a
 * raw image/png body, or JSON {"pixels": [...]} / {"pixels": [[...], ...]}
 * of values in [0, 1]. One image answers an object, a batch an array. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "infer.h"
#include "json.h"
#include "respond.h"

static int json_pixels(const Request *r, size_t d, PredictImages *im, MnError *err)
{
    cJSON *root = json_parse_strict(r->body ? r->body : "", r->len, "request body", err);
    if (!root)
        return MN_EINVAL;
    static const char *const keys[] = {"pixels", NULL};
    int rc = cJSON_IsObject(root) ? json_check_keys(root, "", keys, err)
                                  : mn_fail(err, MN_EINVAL, "the body must be a JSON object");
    const cJSON *px = cJSON_GetObjectItemCaseSensitive(root, "pixels");
    if (rc == 0 && (!cJSON_IsArray(px) || !px->child))
        rc = mn_fail(err, MN_EINVAL, "pixels must be an array of %zu numbers, or of such arrays", d);
    if (rc == 0) {
        im->batch = cJSON_IsArray(px->child);
        im->n = im->batch ? cJSON_GetArraySize(px) : 1;
        if (im->n > r->srv->cfg.max_batch)
            rc = mn_fail(err, MN_ELIMIT, "%d images, over the batch limit of %ld (--max-batch)",
                         im->n, r->srv->cfg.max_batch);
    }
    if (rc == 0 && !(im->pixels = malloc((size_t)im->n * d * sizeof *im->pixels)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    int i = 0;
    for (const cJSON *row = im->batch ? px->child : px; rc == 0 && row; row = row->next, i++) {
        if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) != d) {
            rc = mn_fail(err, MN_EINVAL, "pixels%s must hold %zu numbers", im->batch ? "[i]" : "", d);
            break;
        }
        size_t j = 0;
        for (const cJSON *v = row->child; v; v = v->next, j++) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble <= 1.0)) {
                rc = mn_fail(err, MN_EINVAL, "pixels[%d][%zu] must be a number in [0, 1]", i, j);
                break;
            }
            im->pixels[(size_t)i * d + j] = (float)v->valuedouble;
        }
        if (!im->batch)
            break;
    }
    cJSON_Delete(root);
    return rc;
}

int predict_collect(Request *r, size_t d, PredictImages *im, MnError *err)
{
    if (request_is_type(r, "multipart/form-data")) {
        im->png = calloc((size_t)r->n_parts + 1, sizeof *im->png);
        im->png_len = calloc((size_t)r->n_parts + 1, sizeof *im->png_len);
        if (!im->png || !im->png_len)
            return mn_fail(err, MN_ENOMEM, "out of memory");
        for (int i = 0; i < r->n_parts; i++)
            if (!strcmp(r->parts[i].field, "image") || !strcmp(r->parts[i].field, "data")) {
                im->png[im->n] = r->parts[i].data;
                im->png_len[im->n++] = r->parts[i].len;
            }
        if (im->n == 0)
            return mn_fail(err, MN_EINVAL, "no file in the multipart field \"image\"");
        im->batch = im->n > 1;
    } else if (request_is_type(r, "image/png") || request_is_type(r, "application/octet-stream")) {
        if (r->len == 0)
            return mn_fail(err, MN_EINVAL, "the request body is empty: send the PNG file");
        im->png = calloc(1, sizeof *im->png);
        im->png_len = calloc(1, sizeof *im->png_len);
        if (!im->png || !im->png_len)
            return mn_fail(err, MN_ENOMEM, "out of memory");
        im->png[0] = (const unsigned char *)r->body;
        im->png_len[0] = r->len;
        im->n = 1;
    } else if (request_is_type(r, "application/json")) {
        return json_pixels(r, d, im, err);
    } else {
        return mn_fail(err, MN_EFORMAT,
                       "Content-Type \"%.64s\" is not multipart/form-data, image/png or "
                       "application/json",
                       r->content_type);
    }
    if (im->n > r->srv->cfg.max_batch)
        return mn_fail(err, MN_ELIMIT, "%d images, over the batch limit of %ld (--max-batch)",
                       im->n, r->srv->cfg.max_batch);
    return 0;
}

int predict_decode(Request *r, const Model *m, const PredictImages *im, float **unit, MnError *err)
{
    *unit = NULL;
    if (im->pixels)
        return 0;
    size_t d = shape_numel(m->spec.input);
    if (!(*unit = malloc((size_t)im->n * d * sizeof **unit)))
        return mn_fail(err, MN_ENOMEM, "out of memory");
    for (int i = 0; i < im->n; i++) {
        int rc = infer_png(r->srv, m, request_arg(r, "preprocess"), im->png[i], im->png_len[i],
                           *unit + (size_t)i * d, err);
        if (rc)
            return im->n > 1 ? mn_wrap(err, "image %d", i) : rc;
    }
    return 0;
}

enum MHD_Result h_predict(Request *r)
{
    MnError err = {0};
    /* /predictions/{name} names the model in the path. */
    const char *name = r->n_params ? r->params[0] : request_arg(r, "model");
    const StoreEntry *e = infer_pick_model(r, name, request_arg(r, "version"), &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    size_t d = shape_numel(m->spec.input);
    PredictImages im = {0};
    float *unit = NULL, *probs = NULL;
    cJSON *trace = NULL;
    enum MHD_Result ret;
    int rc = predict_collect(r, d, &im, &err);
    if (rc == 0)
        rc = predict_decode(r, m, &im, &unit, &err);
    const char *want_trace = request_arg(r, "trace");
    if (rc == 0 && want_trace && strcmp(want_trace, "0") && strcmp(want_trace, "false"))
        trace = cJSON_CreateArray();
    if (rc == 0 && !(probs = malloc((size_t)im.n * m->n_classes * sizeof *probs)))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0)
        rc = infer_run(e, im.pixels ? im.pixels : unit, im.n, probs, trace, &err);
    if (rc) {
        ret = respond_mn_error(r, &err);
        cJSON_Delete(trace);
    } else if (server_metrics_predictions(r->srv->metrics, e->name, im.n), !im.batch) {
        cJSON *o = infer_result_json(e, probs);
        if (trace)
            cJSON_AddItemToObject(o, "layers", trace);
        ret = respond_json(r, MHD_HTTP_OK, o);
    } else {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < im.n; i++)
            cJSON_AddItemToArray(arr, infer_result_json(e, probs + (size_t)i * m->n_classes));
        cJSON_Delete(trace);
        ret = respond_json(r, MHD_HTTP_OK, arr);
    }
    store_release(r->srv->store, e);
    free(im.png);
    free(im.png_len);
    free(im.pixels);
    free(unit);
    free(probs);
    return ret;
}

/* One TF Serving instance: numbers (flat or nested, input numel of them,
 * in [0, 1]) or {"b64": PNG}. */
static int tf_instance(Request *r, const Model *m, const cJSON *inst, int i, float *out,
                       MnError *err)
{
    size_t d = shape_numel(m->spec.input);
    if (cJSON_IsObject(inst)) {
        const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(inst, "b64");
        size_t len;
        unsigned char *png = cJSON_IsString(b64)
                                 ? base64_decode(b64->valuestring, strlen(b64->valuestring), &len)
                                 : NULL;
        if (!png)
            return mn_fail(err, MN_EINVAL, "instances[%d] must be numbers or {\"b64\": PNG}", i);
        int rc = infer_png(r->srv, m, NULL, png, len, out, err);
        free(png);
        return rc ? mn_wrap(err, "instances[%d]", i) : 0;
    }
    size_t n = 0;
    const cJSON *stack[8];
    int depth = 0;
    const cJSON *it = inst;
    /* Walk the nested arrays row-major without recursion. */
    for (;;) {
        if (cJSON_IsArray(it) && it->child && depth < 8) {
            stack[depth++] = it;
            it = it->child;
            continue;
        }
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0.0 && it->valuedouble <= 1.0) || n >= d)
            return mn_fail(err, MN_EINVAL, "instances[%d] must hold %zu numbers in [0, 1]", i, d);
        out[n++] = (float)it->valuedouble;
        while (!it->next && depth > 0)
            it = stack[--depth];
        if (depth == 0)
            break;
        it = it->next;
    }
    return n == d ? 0 : mn_fail(err, MN_EINVAL, "instances[%d] holds %zu numbers, not %zu", i, n, d);
}

/* TF Serving's POST /v1/models/{name}:predict, {"instances": [...]} ->
 * {"predictions": [[probabilities], ...]}; KServe v1's NAME:explain takes
 * the same instances (h_explain.c answers). */
enum MHD_Result h_tf_predict(Request *r)
{
    char name[64];
    const char *colon = strrchr(r->params[0], ':');
    bool explain = colon && !strcmp(colon, ":explain"); /* KServe v1 */
    if (!colon || (strcmp(colon, ":predict") && !explain) ||
        (size_t)(colon - r->params[0]) >= sizeof name)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                             "TF Serving routes are /v1/models/NAME:predict and NAME:explain");
    memcpy(name, r->params[0], (size_t)(colon - r->params[0]));
    name[colon - r->params[0]] = '\0';
    MnError err = {0};
    const StoreEntry *e = infer_pick_model(r, name, NULL, &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    size_t d = shape_numel(m->spec.input);
    cJSON *req = request_expect_type(r, "application/json", &err)
                     ? NULL
                     : json_parse_strict(r->body ? r->body : "", r->len, "request body", &err);
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(req, "instances");
    float *unit = NULL, *probs = NULL;
    int n = cJSON_GetArraySize(inst), rc = req ? 0 : err.code;
    if (rc == 0 && (!cJSON_IsArray(inst) || n < 1))
        rc = mn_fail(&err, MN_EINVAL, "the body must be {\"instances\": [...]}");
    else if (rc == 0 && n > r->srv->cfg.max_batch)
        rc = mn_fail(&err, MN_ELIMIT, "%d instances, over the batch limit of %ld", n,
                     r->srv->cfg.max_batch);
    if (rc == 0 && (!(unit = malloc((size_t)n * d * sizeof *unit)) ||
                    !(probs = malloc((size_t)n * m->n_classes * sizeof *probs))))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    int i = 0;
    for (const cJSON *it = rc ? NULL : inst->child; it && rc == 0; it = it->next, i++)
        rc = tf_instance(r, m, it, i, unit + (size_t)i * d, &err);
    cJSON *explained = NULL;
    if (rc == 0)
        rc = explain ? explain_kserve(r, e, unit, n, &explained, &err)
                     : infer_run(e, unit, n, probs, NULL, &err);
    enum MHD_Result ret;
    if (rc) {
        ret = respond_mn_error(r, &err);
    } else if (explained) {
        ret = respond_json(r, MHD_HTTP_OK, explained);
    } else {
        server_metrics_predictions(r->srv->metrics, e->name, n);
        cJSON *o = cJSON_CreateObject(), *preds = cJSON_AddArrayToObject(o, "predictions");
        for (int k = 0; k < n; k++)
            cJSON_AddItemToArray(preds, json_float_array(probs + (size_t)k * m->n_classes, m->n_classes));
        ret = respond_json(r, MHD_HTTP_OK, o);
    }
    cJSON_Delete(req);
    free(unit);
    free(probs);
    store_release(r->srv->store, e);
    return ret;
}
