/* h_triton.c - Triton's extensions to the Open Inference Protocol that its
 * clients call (tritonclient's get_model_config, get_inference_statistics,
 * get_model_repository_index; image_client.py reads the config first):
 *   GET  /v2/models/{m}[/versions/{v}]/config   the model configuration
 *   GET  /v2/models[/{m}[/versions/{v}]]/stats  counters per model and version
 *   POST /v2/repository/index                   every version and its state
 * Errors come in the /v2 shape (respond.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "json.h"
#include "respond.h"

/* Triton's model configuration (model_config.proto as JSON): dims leave
 * out the batch dimension, which max_batch_size stands for. */
enum MHD_Result h_v2_model_config(Request *r)
{
    MnError err = {0};
    const StoreEntry *e = infer_pick_model(r, r->params[0], r->n_params > 1 ? r->params[1] : NULL,
                                           &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "platform", "mnistd");
    cJSON_AddStringToObject(o, "backend", "mnistd");
    cJSON *policy = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "version_policy"), "latest");
    cJSON_AddNumberToObject(policy, "num_versions", 1);
    cJSON_AddNumberToObject(o, "max_batch_size", (double)r->srv->cfg.max_batch);
    int in_dims[3] = {m->spec.input.h, m->spec.input.w, m->spec.input.c};
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "name", "input");
    cJSON_AddStringToObject(in, "data_type", "TYPE_FP32");
    cJSON_AddStringToObject(in, "format", "FORMAT_NHWC");
    cJSON_AddItemToObject(in, "dims", cJSON_CreateIntArray(in_dims, 3));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "input"), in);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "name", "probabilities");
    cJSON_AddStringToObject(out, "data_type", "TYPE_FP32");
    cJSON_AddItemToObject(out, "dims", cJSON_CreateIntArray(&m->n_classes, 1));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "output"), out);
    /* the classification extension's labels, in class order */
    cJSON *labels = cJSON_AddArrayToObject(out, "labels");
    for (int c = 0; c < m->n_classes; c++)
        cJSON_AddItemToArray(labels, cJSON_CreateString(m->class_names[c]));
    store_release(r->srv->store, e);
    return respond_json(r, MHD_HTTP_OK, o);
}

static cJSON *duration(uint64_t count, uint64_t ns)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)count);
    cJSON_AddNumberToObject(o, "ns", (double)ns);
    return o;
}

/* One entry of Triton's ModelStatistics. mnistd neither queues nor caches
 * a request apart from computing it: those durations are zero, and
 * compute_infer is the request's whole time, in all and per batch size
 * (batch_stats: each size's successful executions, model_stats.h). */
static cJSON *model_statistics(ModelStats *stats, const char *name, int version)
{
    ModelCounters c = model_stats_get(stats, name, version);
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "version", v);
    cJSON_AddNumberToObject(o, "last_inference", (double)c.last_ms);
    cJSON_AddNumberToObject(o, "inference_count", (double)c.inferences);
    cJSON_AddNumberToObject(o, "execution_count", (double)c.executions);
    cJSON *s = cJSON_AddObjectToObject(o, "inference_stats");
    cJSON_AddItemToObject(s, "success", duration(c.success, c.success_ns));
    cJSON_AddItemToObject(s, "fail", duration(c.fail, c.fail_ns));
    cJSON_AddItemToObject(s, "queue", duration(c.success, 0));
    cJSON_AddItemToObject(s, "compute_input", duration(c.success, 0));
    cJSON_AddItemToObject(s, "compute_infer", duration(c.success, c.success_ns));
    cJSON_AddItemToObject(s, "compute_output", duration(c.success, 0));
    cJSON_AddItemToObject(s, "cache_hit", duration(0, 0));
    cJSON_AddItemToObject(s, "cache_miss", duration(0, 0));
    cJSON *batches = cJSON_AddArrayToObject(o, "batch_stats");
    BatchCounters b[MODEL_STATS_BATCH_SLOTS];
    int n = model_stats_batches(stats, name, version, b);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "batch_size", b[i].batch_size);
        cJSON_AddItemToObject(e, "compute_input", duration(b[i].count, 0));
        cJSON_AddItemToObject(e, "compute_infer", duration(b[i].count, b[i].ns));
        cJSON_AddItemToObject(e, "compute_output", duration(b[i].count, 0));
        cJSON_AddItemToArray(batches, e);
    }
    return o;
}

typedef struct {
    const Request *r;
    const char *name; /* NULL: every model */
    int version;      /* 0: every version */
    cJSON *out;
    int found;
} Listing;

static void add_stats(const char *name, const int *versions, int n, void *ctx)
{
    Listing *l = ctx;
    if (l->name && strcmp(name, l->name))
        return;
    for (int i = 0; i < n; i++)
        if (!l->version || versions[i] == l->version) {
            cJSON_AddItemToArray(l->out, model_statistics(l->r->srv->stats, name, versions[i]));
            l->found++;
        }
}

enum MHD_Result h_v2_stats(Request *r)
{
    Listing l = {r, r->n_params ? r->params[0] : NULL, 0, cJSON_CreateArray(), 0};
    if (l.name) { /* the model (and version) must be there, as Triton says */
        MnError err = {0};
        const StoreEntry *e = infer_pick_model(r, l.name, r->n_params > 1 ? r->params[1] : NULL,
                                               &err);
        if (!e) {
            cJSON_Delete(l.out);
            return respond_mn_error(r, &err);
        }
        l.version = r->n_params > 1 ? e->version : 0;
        store_release(r->srv->store, e);
    }
    store_each(r->srv->store, add_stats, &l);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "model_stats", l.out);
    return respond_json(r, MHD_HTTP_OK, o);
}

static void add_index(const char *name, const int *versions, int n, void *ctx)
{
    for (int i = 0; i < n; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", versions[i]);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "version", v);
        cJSON_AddStringToObject(o, "state", "READY");
        cJSON_AddItemToArray(ctx, o);
    }
}

/* Every version in the store is loaded and served, so every one is READY
 * and {"ready": true} lists the same. The body may be empty (tritonclient
 * sends none). */
enum MHD_Result h_v2_repository_index(Request *r)
{
    MnError err = {0};
    if (r->len) {
        static const char *const keys[] = {"ready", NULL};
        cJSON *req = json_parse_strict(r->body, r->len, "repository index request", &err);
        int rc = !req ? err.code
                 : !cJSON_IsObject(req) ? mn_fail(&err, MN_EINVAL, "the body must be a JSON object")
                                        : json_check_keys(req, "", keys, &err);
        const cJSON *ready = cJSON_GetObjectItemCaseSensitive(req, "ready");
        if (!rc && ready && !cJSON_IsBool(ready))
            rc = mn_fail(&err, MN_EINVAL, "ready must be true or false");
        cJSON_Delete(req);
        if (rc)
            return respond_mn_error(r, &err);
    }
    cJSON *arr = cJSON_CreateArray();
    store_each(r->srv->store, add_index, arr);
    return respond_json(r, MHD_HTTP_OK, arr);
}
