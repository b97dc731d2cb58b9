/* h_upload.c - models in and out over HTTP. POST /models/NAME/versions
 * takes an ONNX file (or an .mnm, told by its magic) as the raw body,
 * behind the token and under its own size limit (--max-upload, applied by
 * http.c before the body is read), and publishes it as NAME's next version
 * exactly as a finished training job does (model_dir_publish, then
 * store_add), so other replicas watching the store pick it up too.
 * GET /models/NAME/versions/N/model.onnx writes any served version as ONNX. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infer.h"
#include "model_dir.h"
#include "model_file.h"
#include "model_import.h"
#include "onnx_export.h"
#include "respond.h"
#include "server.h"
#include "store.h"

bool h_model_is_upload(const char *method, const char *path)
{
    static const char prefix[] = "/models/", suffix[] = "/versions";
    if (strcmp(method, "POST") || strncmp(path, prefix, sizeof prefix - 1))
        return false;
    const char *name = path + sizeof prefix - 1, *slash = strchr(name, '/');
    return slash && slash > name && strcmp(slash, suffix) == 0;
}

/* The media types a model body may come as; anything else is 415. */
static bool model_media_type(const char *ct)
{
    static const char *const ok[] = {"application/octet-stream", "application/onnx",
                                     "application/x-onnx", "application/x-protobuf", NULL};
    if (!*ct)
        return true;
    for (const char *const *t = ok; *t; t++) {
        size_t n = strlen(*t);
        if (strncasecmp(ct, *t, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
            return true;
    }
    return false;
}

static const char *query(Request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

enum MHD_Result h_model_upload(Request *r)
{
    const char *name = r->params[0];
    if (!model_media_type(r->content_type))
        return respond_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             "Content-Type %.60s: send the model file as the raw body "
                             "(application/octet-stream)", r->content_type);
    if (r->len == 0)
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "the body is empty: send an ONNX or .mnm file");
    OnnxImportOptions opt;
    onnx_import_options_default(&opt);
    opt.name = name;
    opt.max_bytes = (size_t)r->srv->cfg.max_upload;
    opt.dataset = query(r, "dataset");
    const char *pre = query(r, "preprocess"), *classes = query(r, "classes");
    if (pre && (opt.image_preprocess = image_preprocess_from_name(pre)) < 0)
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "preprocess \"%.20s\" must be digit, frame or none", pre);
    char class_buf[MODEL_MAX_CLASSES * MODEL_CLASS_NAME_MAX];
    const char *names[MODEL_MAX_CLASSES];
    if (classes) {
        snprintf(class_buf, sizeof class_buf, "%s", classes);
        if (strlen(classes) >= sizeof class_buf ||
            (opt.n_class_names = model_import_split_classes(class_buf, names)) < 0)
            return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                                 "classes: at most %d names", MODEL_MAX_CLASSES);
        opt.class_names = names;
    }
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = (size_t)r->srv->cfg.max_params;
    MnError err = {0};
    Model *m = NULL;
    char path[4200];
    int version = 0;
    /* the name is checked before anything is parsed, and by publish again */
    if (model_ref_parse(name, path, sizeof path, &version, &err) || version != 0) {
        if (version)
            mn_fail(&err, MN_EINVAL, "model name \"%.64s\" must not name a version", name);
        return respond_mn_error(r, &err);
    }
    if (model_import_bytes(r->body, r->len, &opt, &lim, &m, &err) ||
        model_dir_publish(m, store_dir(r->srv->store), name, path, sizeof path, &version, &err)) {
        model_free(m);
        return respond_mn_error(r, &err);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "version", version);
    cJSON_AddStringToObject(o, "format", model_file_has_magic(r->body, r->len) ? "mnm" : "onnx");
    cJSON_AddNumberToObject(o, "layers", m->spec.n_layers);
    cJSON_AddNumberToObject(o, "params", (double)m->n_params);
    cJSON_AddNumberToObject(o, "classes", m->n_classes);
    if (store_add(r->srv->store, name, version, m, &err)) /* owns m either way */
        cJSON_AddStringToObject(o, "warning", err.msg); /* published: the watcher loads it */
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    char location[160];
    snprintf(location, sizeof location, "/models/%s/versions/%d", name, version);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    } else {
        free(text);
    }
    return respond_queue(r, MHD_HTTP_CREATED, resp);
}

enum MHD_Result h_model_onnx(Request *r)
{
    MnError err = {0};
    const StoreEntry *e = infer_pick_model(r, r->params[0], r->params[1], &err);
    if (!e)
        return respond_mn_error(r, &err);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = onnx_export(e->model, &buf, &len, &err);
    char disposition[160];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s-v%d.onnx\"", e->name,
             e->version);
    store_release(r->srv->store, e);
    if (rc)
        return respond_mn_error(r, &err);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    } else {
        free(buf);
    }
    return respond_queue(r, MHD_HTTP_OK, resp);
}
