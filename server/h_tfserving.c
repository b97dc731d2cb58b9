/* h_tfserving.c - TensorFlow Serving's REST API on /v1:
 *   GET  /v1/models/{name}[/versions/{n}]           model status
 *   GET  /v1/models/{name}[/versions/{n}]/metadata  the serving_default signature
 *   POST /v1/models/{name}[/versions/{n}]:predict   row {"instances": [...]} ->
 *        {"predictions": [...]}, or columnar {"inputs": ...} -> {"outputs": [...]}
 *   POST /v1/models/{name}[/versions/{n}]:explain   KServe v1's explain of the
 *        same instances (h_explain.c answers)
 * An instance is numbers (flat or nested, the input's size, in [0, 1]) or
 * {"b64": PNG}. Errors are TF Serving's {"error": "message"} (respond.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "clock.h"
#include "infer.h"
#include "json.h"
#include "respond.h"

/* The one signature, its tensors named as /v2's metadata names them. */
#define TF_SIGNATURE "serving_default"
#define TF_INPUT "input"
#define TF_OUTPUT "probabilities"

/* The path's model and version; the last segment may end in ":verb",
 * which *verb gets (NULL when there is none). */
typedef struct {
    char name[64];
    const char *version; /* NULL: the latest */
    char verb[16];
} TfTarget;

static int tf_target(Request *r, TfTarget *t, MnError *err)
{
    memset(t, 0, sizeof *t);
    char *last = r->params[r->n_params - 1];
    char *colon = strchr(last, ':');
    if (colon) {
        snprintf(t->verb, sizeof t->verb, "%s", colon + 1);
        *colon = '\0'; /* the param is ours: cut the verb off the name or version */
    }
    if (strlen(r->params[0]) >= sizeof t->name)
        return mn_fail(err, MN_ENOTFOUND, "model \"%.64s...\" not found", r->params[0]);
    snprintf(t->name, sizeof t->name, "%s", r->params[0]);
    t->version = r->n_params > 1 ? r->params[1] : NULL;
    return 0;
}

static cJSON *version_status(int version)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", v);
    cJSON_AddStringToObject(o, "state", "AVAILABLE");
    cJSON *s = cJSON_AddObjectToObject(o, "status");
    cJSON_AddStringToObject(s, "error_code", "OK");
    cJSON_AddStringToObject(s, "error_message", "");
    return o;
}

typedef struct {
    const char *name;
    cJSON *list;
} StatusQuery;

static void add_statuses(const char *name, const int *versions, int n, void *ctx)
{
    StatusQuery *q = ctx;
    if (strcmp(name, q->name))
        return;
    for (int i = n - 1; i >= 0; i--) /* newest first, as TF Serving lists them */
        cJSON_AddItemToArray(q->list, version_status(versions[i]));
}

static cJSON *tensor_info(int d0, int d1, int d2, int d3, int nd)
{
    int dims[4] = {d0, d1, d2, d3};
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_AddObjectToObject(o, "tensor_shape");
    cJSON_AddStringToObject(o, "dtype", "DT_FLOAT");
    cJSON *arr = cJSON_AddArrayToObject(shape, "dim");
    for (int i = 0; i < nd; i++) {
        char size[16];
        snprintf(size, sizeof size, "%d", dims[i]);
        cJSON *dim = cJSON_CreateObject();
        cJSON_AddStringToObject(dim, "size", size);
        cJSON_AddStringToObject(dim, "name", "");
        cJSON_AddItemToArray(arr, dim);
    }
    cJSON_AddBoolToObject(shape, "unknown_rank", false);
    return o;
}

/* GetModelMetadata's signature_def, as TF Serving prints it. */
static cJSON *metadata(const StoreEntry *e)
{
    const Model *m = e->model;
    char v[16];
    snprintf(v, sizeof v, "%d", e->version);
    cJSON *o = cJSON_CreateObject(), *spec = cJSON_AddObjectToObject(o, "model_spec");
    cJSON_AddStringToObject(spec, "name", e->name);
    cJSON_AddStringToObject(spec, "signature_name", "");
    cJSON_AddStringToObject(spec, "version", v);
    cJSON *defs = cJSON_AddObjectToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "metadata"), "signature_def"),
        "signature_def");
    cJSON *sig = cJSON_AddObjectToObject(defs, TF_SIGNATURE);
    cJSON *in = tensor_info(-1, m->spec.input.h, m->spec.input.w, m->spec.input.c, 4);
    cJSON_AddStringToObject(in, "name", TF_INPUT ":0");
    cJSON_AddItemToObject(cJSON_AddObjectToObject(sig, "inputs"), TF_INPUT, in);
    cJSON *out = tensor_info(-1, m->n_classes, 0, 0, 2);
    cJSON_AddStringToObject(out, "name", TF_OUTPUT ":0");
    cJSON_AddItemToObject(cJSON_AddObjectToObject(sig, "outputs"), TF_OUTPUT, out);
    cJSON_AddStringToObject(sig, "method_name", "tensorflow/serving/predict");
    return o;
}

/* GET: the status of every version (or the one named), or with /metadata
 * the signature. */
static enum MHD_Result tf_get(Request *r, bool want_metadata)
{
    TfTarget t;
    MnError err = {0};
    if (tf_target(r, &t, &err))
        return respond_mn_error(r, &err);
    if (t.verb[0])
        return respond_v2_error(r, MHD_HTTP_NOT_FOUND, "GET takes no \":%s\": POST "
                                "/v1/models/NAME[/versions/N]:predict", t.verb);
    const StoreEntry *e = infer_pick_model(r, t.name, t.version, &err);
    if (!e)
        return respond_mn_error(r, &err);
    cJSON *o;
    if (want_metadata) {
        o = metadata(e);
    } else if (t.version) {
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "model_version_status"),
                             version_status(e->version));
    } else {
        o = cJSON_CreateObject();
        StatusQuery q = {e->name, cJSON_AddArrayToObject(o, "model_version_status")};
        store_each(r->srv->store, add_statuses, &q);
    }
    store_release(r->srv->store, e);
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_tf_status(Request *r) { return tf_get(r, false); }
enum MHD_Result h_tf_metadata(Request *r) { return tf_get(r, true); }

/* One instance: numbers (flat or nested, input numel of them, in [0, 1])
 * or {"b64": PNG}; where names it in errors ("instances[2]"). */
static int tf_instance(Request *r, const Model *m, const cJSON *inst, const char *where,
                       float *out, MnError *err)
{
    size_t d = shape_numel(m->spec.input);
    if (cJSON_IsObject(inst)) {
        const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(inst, "b64");
        size_t len;
        unsigned char *png = cJSON_IsString(b64) && cJSON_GetArraySize(inst) == 1
                                 ? base64_decode(b64->valuestring, strlen(b64->valuestring), &len)
                                 : NULL;
        if (!png)
            return mn_fail(err, MN_EINVAL, "%s must be numbers or {\"b64\": PNG}", where);
        int rc = infer_png(r->srv, m, NULL, png, len, out, err);
        free(png);
        return rc ? mn_wrap(err, "%s", where) : 0;
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
            return mn_fail(err, MN_EINVAL, "%s must hold %zu numbers in [0, 1]", where, d);
        out[n++] = (float)it->valuedouble;
        while (!it->next && depth > 0)
            it = stack[--depth];
        if (depth == 0)
            break;
        it = it->next;
    }
    return n == d ? 0 : mn_fail(err, MN_EINVAL, "%s holds %zu numbers, not %zu", where, n, d);
}

/* The batch of a predict body: the row form's "instances", or the
 * columnar form's "inputs" (the list itself, or {"input": list} by the
 * signature's input name). *columnar says which came. */
static const cJSON *tf_batch(const cJSON *req, bool *columnar, MnError *err)
{
    static const char *const keys[] = {"signature_name", "instances", "inputs", NULL};
    if (!cJSON_IsObject(req)) {
        mn_fail(err, MN_EINVAL, "the body must be {\"instances\": [...]} or {\"inputs\": ...}");
        return NULL;
    }
    if (json_check_keys(req, "", keys, err))
        return NULL;
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(req, "signature_name");
    if (sig && (!cJSON_IsString(sig) || strcmp(sig->valuestring, TF_SIGNATURE))) {
        mn_fail(err, MN_EINVAL, "signature_name must be \"" TF_SIGNATURE "\", the only one");
        return NULL;
    }
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(req, "instances");
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(req, "inputs");
    if (inst && cols) {
        mn_fail(err, MN_EINVAL, "give \"instances\" (row form) or \"inputs\" (columnar), not both");
        return NULL;
    }
    *columnar = cols != NULL;
    if (cJSON_IsObject(cols)) {
        const cJSON *named = cJSON_GetObjectItemCaseSensitive(cols, TF_INPUT);
        if (!named || cJSON_GetArraySize(cols) != 1) {
            mn_fail(err, MN_EINVAL, "inputs names the signature's inputs: only \"" TF_INPUT "\"");
            return NULL;
        }
        cols = named;
    }
    const cJSON *batch = cols ? cols : inst;
    if (!cJSON_IsArray(batch) || !batch->child) {
        mn_fail(err, MN_EINVAL, "%s must be a non-empty list of images",
                cols ? "inputs" : "instances");
        return NULL;
    }
    return batch;
}

static enum MHD_Result tf_predict(Request *r, const TfTarget *t, bool explain)
{
    MnError err = {0};
    const StoreEntry *e = infer_pick_model(r, t->name, t->version, &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    size_t d = shape_numel(m->spec.input);
    cJSON *req = request_expect_type(r, "application/json", &err)
                     ? NULL
                     : json_parse_strict(r->body ? r->body : "", r->len, "request body", &err);
    bool columnar = false;
    const cJSON *batch = req ? tf_batch(req, &columnar, &err) : NULL;
    float *unit = NULL, *probs = NULL;
    int n = cJSON_GetArraySize(batch), rc = batch ? 0 : err.code;
    if (rc == 0 && n > r->srv->cfg.max_batch)
        rc = mn_fail(&err, MN_ELIMIT, "%d instances, over the batch limit of %ld (--max-batch)", n,
                     r->srv->cfg.max_batch);
    if (rc == 0 && (!(unit = malloc((size_t)n * d * sizeof *unit)) ||
                    !(probs = malloc((size_t)n * m->n_classes * sizeof *probs))))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    int i = 0;
    for (const cJSON *it = rc ? NULL : batch->child; it && rc == 0; it = it->next, i++) {
        char where[32];
        snprintf(where, sizeof where, "%s[%d]", columnar ? "inputs" : "instances", i);
        rc = tf_instance(r, m, it, where, unit + (size_t)i * d, &err);
    }
    cJSON *explained = NULL;
    if (rc == 0 && explain)
        rc = explain_kserve(r, e, unit, n, &explained, &err);
    else if (rc == 0)
        rc = infer_run(e, unit, n, probs, NULL, &err);
    if (!explain)
        model_stats_record(r->srv->stats, e->name, e->version, n, rc == 0,
                           clock_seconds() - r->started);
    enum MHD_Result ret;
    if (rc) {
        ret = respond_mn_error(r, &err);
    } else if (explained) {
        ret = respond_json(r, MHD_HTTP_OK, explained);
    } else {
        server_metrics_predictions(r->srv->metrics, e->name, n);
        /* one output tensor: TF Serving leaves its name out in both forms */
        cJSON *o = cJSON_CreateObject();
        cJSON *rows = cJSON_AddArrayToObject(o, columnar ? "outputs" : "predictions");
        for (int k = 0; k < n; k++)
            cJSON_AddItemToArray(rows, json_float_array(probs + (size_t)k * m->n_classes, m->n_classes));
        ret = respond_json(r, MHD_HTTP_OK, o);
    }
    cJSON_Delete(req);
    free(unit);
    free(probs);
    store_release(r->srv->store, e);
    return ret;
}

enum MHD_Result h_tf_predict(Request *r)
{
    TfTarget t;
    MnError err = {0};
    if (tf_target(r, &t, &err))
        return respond_mn_error(r, &err);
    bool explain = !strcmp(t.verb, "explain"); /* KServe v1 */
    if (strcmp(t.verb, "predict") && !explain)
        return respond_v2_error(r, MHD_HTTP_NOT_FOUND, "%s%s%s is not served: POST "
                                "/v1/models/NAME[/versions/N]:predict or :explain",
                                t.verb[0] ? "\":" : "a POST without \":predict\"",
                                t.verb[0] ? t.verb : "", t.verb[0] ? "\"" : "");
    return tf_predict(r, &t, explain);
}
