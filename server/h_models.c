/* h_models.c - GET /models and GET /models/{name}[/versions/{n}]: what is
 * served, and for one version its spec, summary table, history and test
 * metrics (from the model file's header); GET /models/{name}/grid, the
 * grid sweep's table of its versions (mnistd grid-report's). */
#include <stdlib.h>
#include <string.h>

#include "grid_report.h"
#include "infer.h"
#include "model_dir.h"
#include "respond.h"

static void add_name(const char *name, const int *versions, int n, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddItemToObject(o, "versions", cJSON_CreateIntArray(versions, n));
    cJSON_AddNumberToObject(o, "latest", versions[n - 1]);
    cJSON_AddItemToArray(ctx, o);
}

enum MHD_Result h_models_list(Request *r)
{
    cJSON *arr = cJSON_CreateArray();
    store_each(r->srv->store, add_name, arr);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "models", arr);
    cJSON_AddStringToObject(o, "default", r->srv->cfg.default_model);
    return respond_json(r, MHD_HTTP_OK, o);
}

/* Keras's names, as the summary table shows them. */
static cJSON *layers_json(const Model *m)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", layer_ops(l->type)->name);
        cJSON_AddStringToObject(o, "activation", activation_name(l->act));
        int shape[3] = {l->out.h, l->out.w, l->out.c};
        bool flat = l->out.h == 1 && l->out.w == 1;
        cJSON_AddItemToObject(o, "output_shape",
                              cJSON_CreateIntArray(flat ? shape + 2 : shape, flat ? 1 : 3));
        cJSON_AddNumberToObject(o, "params", (double)l->param_count);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

typedef struct {
    const char *name;
    cJSON *versions;
} VersionQuery;

static void collect_versions(const char *name, const int *versions, int n, void *ctx)
{
    VersionQuery *q = ctx;
    if (!q->versions && strcmp(name, q->name) == 0)
        q->versions = cJSON_CreateIntArray(versions, n);
}

enum MHD_Result h_model_delete(Request *r)
{
    char *end;
    long v = strtol(r->params[1], &end, 10);
    if (*end || v < 1 || v > MODEL_DIR_VERSION_MAX)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no version \"%s\"", r->params[1]);
    if (!infer_name_ok(r->params[0]))
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "model \"%.64s%s\" not found",
                             r->params[0], strlen(r->params[0]) > 64 ? "..." : "");
    MnError err = {0};
    if (store_remove(r->srv->store, r->params[0], (int)v, &err))
        return respond_mn_error(r, &err);
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "deleted");
    cJSON_AddStringToObject(d, "name", r->params[0]);
    cJSON_AddNumberToObject(d, "version", (double)v);
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_model_get(Request *r)
{
    MnError err = {0};
    const StoreEntry *e =
        infer_pick_model(r, r->params[0], r->n_params > 1 ? r->params[1] : NULL, &err);
    if (!e)
        return respond_mn_error(r, &err);
    const Model *m = e->model;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddNumberToObject(o, "version", e->version);
    VersionQuery q = {e->name, NULL};
    store_each(r->srv->store, collect_versions, &q);
    cJSON_AddItemToObject(o, "versions", q.versions ? q.versions : cJSON_CreateArray());
    cJSON_AddStringToObject(o, "dataset", m->spec.dataset);
    cJSON_AddNumberToObject(o, "params", (double)m->n_params);
    cJSON_AddNumberToObject(o, "non_trainable_params", (double)m->n_state);
    cJSON_AddStringToObject(o, "image_preprocess", image_preprocess_name(m->spec.image_preprocess));
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (int c = 0; c < m->n_classes; c++)
        cJSON_AddItemToArray(classes, cJSON_CreateString(m->class_names[c]));
    cJSON_AddItemToObject(o, "layers", layers_json(m));
    cJSON_AddItemToObject(o, "spec", spec_to_json(&m->spec));
    cJSON *meta = m->meta_json ? cJSON_Parse(m->meta_json) : NULL;
    cJSON *history = cJSON_DetachItemFromObject(meta, "history");
    cJSON *test = cJSON_DetachItemFromObject(meta, "test");
    cJSON_AddItemToObject(o, "history", history ? history : cJSON_CreateArray());
    if (test)
        cJSON_AddItemToObject(o, "test", test);
    if (meta)
        cJSON_AddItemToObject(o, "training", meta);
    store_release(r->srv->store, e);
    return respond_json(r, MHD_HTTP_OK, o);
}

/* The versions served, not the files: each was loaded and checked, and one
 * that failed is not a row (mnistd grid-report names it instead). */
enum MHD_Result h_model_grid(Request *r)
{
    const char *name = r->params[0];
    if (!infer_name_ok(name))
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "model \"%.64s%s\" not found",
                             name, strlen(name) > 64 ? "..." : "");
    VersionQuery q = {name, NULL};
    store_each(r->srv->store, collect_versions, &q);
    if (!q.versions)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "model \"%s\" not found", name);
    GridReport *g = grid_report_new();
    MnError err = {0};
    int rc = g ? 0 : mn_fail(&err, MN_ENOMEM, "out of memory");
    for (const cJSON *v = q.versions->child; v && rc >= 0; v = v->next) {
        const StoreEntry *e = store_acquire(r->srv->store, name, v->valueint, &err);
        if (!e)
            continue; /* deleted since the listing */
        rc = grid_report_add(g, name, e->model->meta_json, e->version, &err);
        store_release(r->srv->store, e);
    }
    cJSON_Delete(q.versions);
    if (rc >= 0)
        rc = grid_report_finish(g, name, &err);
    enum MHD_Result ret;
    if (rc == MN_ELIMIT) /* the store's state, not the request's size */
        ret = respond_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "too_many_versions", "%s",
                            err.msg);
    else
        ret = rc < 0 ? respond_mn_error(r, &err) : respond_json(r, MHD_HTTP_OK,
                                                                grid_report_json(g, name));
    grid_report_free(g);
    return ret;
}
