/* h_predict.c - POST /predict (and TorchServe's /predictions/{name}):
 * multipart files in the field "image" (or "data"; several = a batch), a
 * raw image/png, image/jpeg or image/webp body (the bytes say which,
 * whatever the image Content-Type), or JSON {"pixels": [...]} /
 * {"pixels": [[...], ...]} of values in [0, 1]; with no Content-Type or a
 * generic one, the body's first bytes tell an image from JSON. One image
 * answers an object, a batch an array; ?trace=1 adds the layers' outputs
 * and the preprocessing's steps. TorchServe's PUT and POST
 * /predictions/{name}[/{version}] land here too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
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

/* A Content-Type that says nothing of the body: none (curl -T), a file of
 * octets, or what curl --data-binary puts on everything. The body's own
 * first bytes say what it is then. */
static bool generic_type(const Request *r)
{
    return !r->content_type[0] || request_is_type(r, "application/octet-stream") ||
           request_is_type(r, "application/x-www-form-urlencoded");
}

/* An image by its signature (image_sniff), or an empty body, which the
 * image path refuses by name. */
static bool sniffed_image(const Request *r)
{
    return r->len == 0 || image_sniff(r->body, r->len) != NULL;
}

static bool sniffed_json(const Request *r)
{
    size_t i = 0;
    while (i < r->len && strchr(" \t\r\n", r->body[i]))
        i++;
    return i < r->len && r->body[i] == '{';
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
    } else if (request_is_type(r, "image/png") || request_is_type(r, "image/jpeg") ||
               request_is_type(r, "image/webp") || (generic_type(r) && sniffed_image(r))) {
        if (r->len == 0)
            return mn_fail(err, MN_EINVAL,
                           "the request body is empty: send the PNG, JPEG or WebP file");
        im->png = calloc(1, sizeof *im->png);
        im->png_len = calloc(1, sizeof *im->png_len);
        if (!im->png || !im->png_len)
            return mn_fail(err, MN_ENOMEM, "out of memory");
        im->png[0] = (const unsigned char *)r->body;
        im->png_len[0] = r->len;
        im->n = 1;
    } else if (request_is_type(r, "application/json") || (generic_type(r) && sniffed_json(r))) {
        return json_pixels(r, d, im, err);
    } else if (generic_type(r)) {
        return mn_fail(err, MN_EFORMAT,
                       "the body is neither an image (by its first bytes) nor JSON, and its "
                       "Content-Type \"%.64s\" does not say what it is",
                       r->content_type);
    } else {
        return mn_fail(err, MN_EFORMAT,
                       "Content-Type \"%.64s\" is not multipart/form-data, image/png, "
                       "image/jpeg, image/webp or application/json",
                       r->content_type);
    }
    if (im->n > r->srv->cfg.max_batch)
        return mn_fail(err, MN_ELIMIT, "%d images, over the batch limit of %ld (--max-batch)",
                       im->n, r->srv->cfg.max_batch);
    return 0;
}

int predict_decode(Request *r, const Model *m, const PredictImages *im, float **unit,
                   ImageTrace *first_steps, MnError *err)
{
    *unit = NULL;
    if (im->pixels)
        return 0;
    size_t d = shape_numel(m->spec.input);
    if (!(*unit = malloc((size_t)im->n * d * sizeof **unit)))
        return mn_fail(err, MN_ENOMEM, "out of memory");
    for (int i = 0; i < im->n; i++) {
        int rc = infer_image(r->srv, m, request_arg(r, "preprocess"), im->png[i], im->png_len[i],
                             *unit + (size_t)i * d, i == 0 ? first_steps : NULL, err);
        if (rc)
            return im->n > 1 ? mn_wrap(err, "image %d", i) : rc;
    }
    return 0;
}

enum MHD_Result h_predict(Request *r)
{
    MnError err = {0};
    /* TorchServe's /predictions/{name}[/{version}] names the model in the path. */
    const char *name = r->n_params ? r->params[0] : request_arg(r, "model");
    const char *version = r->n_params > 1 ? r->params[1] : request_arg(r, "version");
    const StoreEntry *e = infer_pick_model(r, name, version, &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    size_t d = shape_numel(m->spec.input);
    PredictImages im = {0};
    float *unit = NULL, *probs = NULL;
    cJSON *trace = NULL;
    ImageTrace *steps = NULL; /* the first image's preprocessing, with ?trace=1 */
    enum MHD_Result ret;
    bool tracing = infer_wants_trace(r);
    int rc = predict_collect(r, d, &im, &err);
    if (rc == 0 && tracing && !(steps = calloc(1, sizeof *steps)))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0)
        rc = predict_decode(r, m, &im, &unit, steps, &err);
    if (rc == 0 && tracing)
        trace = cJSON_CreateArray();
    if (rc == 0 && !(probs = malloc((size_t)im.n * m->n_classes * sizeof *probs)))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0)
        rc = infer_run(e, im.pixels ? im.pixels : unit, im.n, probs, trace, &err);
    model_stats_record(r->srv->stats, e->name, e->version, im.n, rc == 0,
                       clock_seconds() - r->started);
    if (rc) {
        ret = respond_mn_error(r, &err);
        cJSON_Delete(trace);
    } else if (server_metrics_predictions(r->srv->metrics, e->name, im.n), !im.batch) {
        cJSON *o = infer_result_json(e, probs);
        if (trace)
            cJSON_AddItemToObject(o, "layers", trace);
        if (steps)
            cJSON_AddItemToObject(o, "preprocessing", infer_image_trace_json(steps));
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
    free(steps);
    return ret;
}
