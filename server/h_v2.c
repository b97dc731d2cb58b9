/* h_v2.c - the Open Inference Protocol (KServe v2) REST routes. A request
 * has the protocol's keys only (id, model_name, model_version, parameters,
 * inputs, outputs: what KServe's InferRequest.to_rest() and tritonclient
 * send); model_name and model_version must agree with the path. One input
 * tensor named as the metadata names it ("input"), and at most the one
 * output ("probabilities"): FP32 in [0,1] or UINT8 in 0..255, shaped [N,784],
 * [N,28,28] or [N,28,28,1]; or BYTES holding base64 PNG files, shaped [N]
 * or [-1]. Data may be flat or nested, row-major. The output is
 * "probabilities" [N,10] FP32, or with the classification extension
 * ("parameters": {"classification": K}) K "score:index:label" strings.
 * Triton's binary tensor extension works both ways: a JSON header of
 * Inference-Header-Content-Length bytes, then raw little-endian tensors for
 * inputs that give "binary_data_size" (what tritonclient sends by default),
 * and binary outputs when asked with "binary_data": true. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "clock.h"
#include "infer.h"
#include "json.h"
#include "respond.h"
#include "version.h"

/* The tensors' names in the model's metadata (and Triton's config):
 * requests must use them. */
#define V2_INPUT "input"
#define V2_OUTPUT "probabilities"

enum MHD_Result h_v2_server(Request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "mnistd");
    cJSON_AddStringToObject(o, "version", MNISTD_VERSION);
    cJSON *ext = cJSON_AddArrayToObject(o, "extensions");
    cJSON_AddItemToArray(ext, cJSON_CreateString("classification"));
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_v2_live(Request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "live", true);
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_v2_ready(Request *r)
{
    bool ready = store_count(r->srv->store) > 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ready", ready);
    return respond_json(r, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
}

static const StoreEntry *v2_model(Request *r, MnError *err)
{
    return infer_pick_model(r, r->params[0], r->n_params > 1 ? r->params[1] : NULL, err);
}

static cJSON *tensor_meta(const char *name, const char *datatype, const int *shape, int n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "datatype", datatype);
    cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shape, n));
    return o;
}

enum MHD_Result h_v2_model(Request *r)
{
    MnError err = {0};
    const StoreEntry *e = v2_model(r, &err);
    if (!e)
        return respond_v2_error(r, respond_status_of(err.code), "%s", err.msg);
    const Model *m = e->model;
    char version[16];
    snprintf(version, sizeof version, "%d", e->version);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON *versions = cJSON_AddArrayToObject(o, "versions");
    cJSON_AddItemToArray(versions, cJSON_CreateString(version));
    cJSON_AddStringToObject(o, "platform", "mnistd");
    int in_shape[4] = {-1, m->spec.input.h, m->spec.input.w, m->spec.input.c};
    int out_shape[2] = {-1, m->n_classes};
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    cJSON_AddItemToArray(inputs, tensor_meta(V2_INPUT, "FP32", in_shape, 4));
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    cJSON_AddItemToArray(outputs, tensor_meta(V2_OUTPUT, "FP32", out_shape, 2));
    store_release(r->srv->store, e);
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_v2_model_ready(Request *r)
{
    MnError err = {0};
    const StoreEntry *e = v2_model(r, &err);
    if (!e)
        return respond_v2_error(r, respond_status_of(err.code), "%s", err.msg);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddBoolToObject(o, "ready", true);
    store_release(r->srv->store, e);
    return respond_json(r, MHD_HTTP_OK, o);
}

/* Walks nested arrays in row-major order, calling fn on each leaf. */
static int flatten(const cJSON *v, int (*fn)(const cJSON *leaf, size_t i, void *ctx), void *ctx,
                   size_t *count)
{
    if (cJSON_IsArray(v)) {
        for (const cJSON *it = v->child; it; it = it->next) {
            int rc = flatten(it, fn, ctx, count);
            if (rc)
                return rc;
        }
        return 0;
    }
    return fn(v, (*count)++, ctx);
}

typedef struct {
    float *out;
    size_t cap;
    double scale;      /* 1 for FP32, 1/255 for UINT8 */
    bool integer;
    MnError *err;
} NumberSink;

static int take_number(const cJSON *leaf, size_t i, void *ctx)
{
    NumberSink *s = ctx;
    if (i >= s->cap)
        return mn_fail(s->err, MN_EINVAL, "data has more values than its shape");
    if (!cJSON_IsNumber(leaf))
        return mn_fail(s->err, MN_EINVAL, "data[%zu] is not a number", i);
    double v = leaf->valuedouble;
    if (s->integer && (v != floor(v) || v < 0 || v > 255))
        return mn_fail(s->err, MN_EINVAL, "data[%zu] = %g is not a UINT8", i, v);
    v *= s->scale;
    if (!(v >= 0.0 && v <= 1.0))
        return mn_fail(s->err, MN_EINVAL, "data[%zu] = %g is outside [0, 1]", i, v);
    s->out[i] = (float)v;
    return 0;
}

typedef struct {
    const Server *srv;
    const Model *m;
    float *out;
    size_t cap, d;
    MnError *err;
} PngSink;

static int take_png(const cJSON *leaf, size_t i, void *ctx)
{
    PngSink *s = ctx;
    if (i >= s->cap)
        return mn_fail(s->err, MN_ELIMIT, "more images than the batch limit");
    if (!cJSON_IsString(leaf))
        return mn_fail(s->err, MN_EINVAL, "data[%zu] must be a base64 string", i);
    size_t len;
    unsigned char *png = base64_decode(leaf->valuestring, strlen(leaf->valuestring), &len);
    if (!png)
        return mn_fail(s->err, MN_EINVAL, "data[%zu] is not base64", i);
    int rc = infer_png(s->srv, s->m, NULL, png, len, s->out + i * s->d, s->err);
    free(png);
    if (rc)
        mn_wrap(s->err, "data[%zu]", i);
    return rc;
}

/* The raw tensor bytes after the JSON header of a binary request. */
typedef struct {
    const unsigned char *data;
    size_t len;
} Blob;

static float le_float(const unsigned char *p)
{
    uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Binary input data: FP32 (4 bytes LE), UINT8, or BYTES (4-byte LE length + bytes each). */
static int read_binary(Request *r, const Model *m, const char *dt, const Blob *bin, size_t size,
                       float *unit, size_t count, long batch, MnError *err)
{
    if (size != bin->len) /* one input: its bytes are all that follow */
        return mn_fail(err, MN_EINVAL, "binary_data_size %zu but %zu bytes follow the header", size,
                       bin->len);
    size_t d = shape_numel(m->spec.input);
    if (!strcmp(dt, "BYTES")) {
        size_t off = 0;
        for (long i = 0; i < batch; i++) {
            if (off + 4 > size)
                return mn_fail(err, MN_EINVAL, "binary BYTES element %ld is truncated", i);
            size_t len = (size_t)bin->data[off] | (size_t)bin->data[off + 1] << 8 |
                  (size_t)bin->data[off + 2] << 16 | (size_t)bin->data[off + 3] << 24;
            off += 4;
            if (len > size - off)
                return mn_fail(err, MN_EINVAL, "binary BYTES element %ld is truncated", i);
            int rc = infer_png(r->srv, m, NULL, bin->data + off, len, unit + (size_t)i * d, err);
            if (rc)
                return mn_wrap(err, "element %ld", i);
            off += len;
        }
        if (off != size)
            return mn_fail(err, MN_EINVAL, "binary BYTES: %zu trailing bytes after element %ld",
                           size - off, batch - 1);
        return 0;
    }
    size_t elem = !strcmp(dt, "UINT8") ? 1 : 4;
    if (!strcmp(dt, "FP64"))
        return mn_fail(err, MN_EINVAL, "binary FP64 is not supported: send FP32");
    if (size != count * elem)
        return mn_fail(err, MN_EINVAL, "binary_data_size %zu, the shape needs %zu bytes", size,
                       count * elem);
    for (size_t i = 0; i < count; i++) {
        double v = elem == 1 ? bin->data[i] / 255.0 : le_float(bin->data + 4 * i);
        if (!(v >= 0.0 && v <= 1.0))
            return mn_fail(err, MN_EINVAL, "binary data[%zu] = %g is outside [0, 1]", i, v);
        unit[i] = (float)v;
    }
    return 0;
}

/* Reads the one input tensor into unit images; *n gets the batch size. */
static int read_input(Request *r, const Model *m, const cJSON *input, const Blob *bin,
                      float **unit, int *n, MnError *err)
{
    static const char *const keys[] = {"name", "shape", "datatype", "data", "parameters", NULL};
    static const char *const param_keys[] = {"binary_data_size", NULL};
    int rc = json_check_keys(input, "inputs[0]", keys, err);
    if (rc)
        return rc;
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(input, "name"));
    if (!name)
        return mn_fail(err, MN_EINVAL, "inputs[0] needs a name: the model's input is \"" V2_INPUT
                       "\"");
    if (strcmp(name, V2_INPUT))
        return mn_fail(err, MN_EINVAL, "inputs[0]: unknown input \"%.64s\": the model's input is "
                       "\"" V2_INPUT "\"", name);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(input, "shape");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(input, "datatype");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(input, "data");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(input, "parameters");
    if (params && (!cJSON_IsObject(params) ||
                   (rc = json_check_keys(params, "inputs[0].parameters", param_keys, err))))
        return rc ? rc : mn_fail(err, MN_EINVAL, "inputs[0].parameters must be an object");
    const cJSON *bsize = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    bool binary = cJSON_IsNumber(bsize);
    if (binary && (bsize->valuedouble < 0 || bsize->valuedouble > 1e12 || data))
        return mn_fail(err, MN_EINVAL, "inputs[0]: binary_data_size must be a size, without data");
    if (!binary && bin->len)
        return mn_fail(err, MN_EINVAL,
                       "%zu bytes follow the JSON header, but inputs[0] has no binary_data_size",
                       bin->len);
    if (!cJSON_IsArray(shape) || !cJSON_IsString(type) || (!data && !binary))
        return mn_fail(err, MN_EINVAL, "inputs[0] needs name, shape, datatype and data");
    long dims[8];
    int nd = 0;
    for (const cJSON *it = shape->child; it; it = it->next) {
        if (nd == 8 || !cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < -1 || it->valuedouble > 1e9)
            return mn_fail(err, MN_EINVAL, "inputs[0].shape must be up to 8 integers");
        dims[nd++] = (long)it->valuedouble;
    }
    size_t d = shape_numel(m->spec.input);
    const char *dt = type->valuestring;
    long batch = nd ? dims[0] : 0;
    if (!strcmp(dt, "BYTES")) {
        if (nd != 1)
            return mn_fail(err, MN_EINVAL, "BYTES input: shape must be [N] or [-1]");
        batch = binary ? dims[0] : cJSON_IsArray(data) ? cJSON_GetArraySize(data) : 1;
        if (binary && batch < 1)
            return mn_fail(err, MN_EINVAL, "binary BYTES input: shape must be [N]");
        if (dims[0] != -1 && dims[0] != batch)
            return mn_fail(err, MN_EINVAL, "shape [%ld] but %ld strings in data", dims[0], batch);
    } else if (!strcmp(dt, "FP32") || !strcmp(dt, "FP64") || !strcmp(dt, "UINT8")) {
        size_t per = 1;
        for (int i = 1; i < nd; i++)
            per *= (size_t)(dims[i] > 0 ? dims[i] : 0);
        bool fits = nd >= 2 && per == d && dims[0] >= 1;
        if (!fits)
            return mn_fail(err, MN_EINVAL,
                           "%s input: shape must be [N,%zu], [N,%d,%d] or [N,%d,%d,%d]", dt, d,
                           m->spec.input.h, m->spec.input.w, m->spec.input.h, m->spec.input.w,
                           m->spec.input.c);
    } else {
        return mn_fail(err, MN_EINVAL, "datatype %.16s is not supported (FP32, UINT8, BYTES)", dt);
    }
    if (batch < 1 || batch > r->srv->cfg.max_batch)
        return mn_fail(err, MN_ELIMIT, "batch of %ld images; the limit is %ld (--max-batch)",
                       batch, r->srv->cfg.max_batch);
    *n = (int)batch;
    *unit = malloc((size_t)batch * d * sizeof **unit);
    if (!*unit)
        return mn_fail(err, MN_ENOMEM, "out of memory");
    size_t count = 0;
    if (binary)
        return read_binary(r, m, dt, bin, (size_t)bsize->valuedouble, *unit, (size_t)batch * d,
                           batch, err);
    if (!strcmp(dt, "BYTES")) {
        PngSink sink = {r->srv, m, *unit, (size_t)batch, d, err};
        return flatten(data, take_png, &sink, &count);
    }
    NumberSink sink = {*unit, (size_t)batch * d, strcmp(dt, "UINT8") ? 1.0 : 1.0 / 255.0,
                       !strcmp(dt, "UINT8"), err};
    if ((rc = flatten(data, take_number, &sink, &count)))
        return rc;
    if (count != (size_t)batch * d)
        return mn_fail(err, MN_EINVAL, "data has %zu values, the shape needs %zu", count,
                       (size_t)batch * d);
    return 0;
}

/* "parameters": {"classification": K} on the requested output, or 0. */
static int classification_k(const cJSON *req, int n_classes, MnError *err)
{
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(req, "outputs");
    const cJSON *first = cJSON_IsArray(outputs) ? outputs->child : NULL;
    const cJSON *params = first ? cJSON_GetObjectItemCaseSensitive(first, "parameters") : NULL;
    const cJSON *k = params ? cJSON_GetObjectItemCaseSensitive(params, "classification") : NULL;
    if (!k)
        return 0;
    if (!cJSON_IsNumber(k) || k->valuedouble != floor(k->valuedouble) || k->valuedouble < 1 ||
        k->valuedouble > n_classes)
        return mn_fail(err, MN_EINVAL, "classification must be an integer from 1 to %d",
                       n_classes);
    return (int)k->valuedouble;
}

static cJSON *classification_strings(const Model *m, const float *probs, int n, int k)
{
    cJSON *data = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * m->n_classes;
        bool used[MODEL_MAX_CLASSES] = {false};
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int c = 0; c < m->n_classes; c++)
                if (!used[c] && (best < 0 || p[c] > p[best]))
                    best = c;
            used[best] = true;
            char s[128];
            snprintf(s, sizeof s, "%f:%d:%s", p[best], best, m->class_names[best]);
            cJSON_AddItemToArray(data, cJSON_CreateString(s));
        }
    }
    return data;
}

/* "binary_data": true on the requested output, or the request's
 * "binary_data_output": true. */
static bool wants_binary(const cJSON *req)
{
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(req, "outputs");
    const cJSON *first = cJSON_IsArray(outputs) ? outputs->child : NULL;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(first, "parameters");
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(req, "parameters");
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(op, "binary_data")) ||
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rp, "binary_data_output"));
}

/* The output tensor's raw bytes: FP32 LE, or BYTES as length-prefixed strings. */
static unsigned char *binary_output(const cJSON *data, bool strings, size_t *len)
{
    size_t cap = 64, n = 0;
    for (const cJSON *it = data->child; it; it = it->next)
        cap += strings ? 4 + strlen(it->valuestring) : 4;
    unsigned char *out = malloc(cap);
    for (const cJSON *it = data->child; out && it; it = it->next) {
        uint32_t v;
        if (strings) {
            v = (uint32_t)strlen(it->valuestring);
        } else {
            /* json_float_array's items are raw text of 9 digits: exact floats */
            float f = cJSON_IsRaw(it) ? strtof(it->valuestring, NULL) : (float)it->valuedouble;
            memcpy(&v, &f, 4);
        }
        for (int b = 0; b < 4; b++)
            out[n++] = (unsigned char)(v >> (8 * b));
        if (strings) {
            memcpy(out + n, it->valuestring, strlen(it->valuestring));
            n += strlen(it->valuestring);
        }
    }
    *len = n;
    return out;
}

static enum MHD_Result respond_binary(Request *r, cJSON *o)
{
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "outputs"), 0);
    cJSON *data = cJSON_DetachItemFromObject(t, "data");
    bool strings = !strcmp(cJSON_GetObjectItem(t, "datatype")->valuestring, "BYTES");
    size_t blen;
    unsigned char *raw = binary_output(data, strings, &blen);
    cJSON_Delete(data);
    cJSON *params = cJSON_AddObjectToObject(t, "parameters");
    cJSON_AddNumberToObject(params, "binary_data_size", (double)blen);
    char *header = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t hlen = header ? strlen(header) : 0;
    char *body = raw && header ? malloc(hlen + blen) : NULL;
    if (!body) {
        free(raw);
        cJSON_free(header);
        return respond_v2_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    }
    memcpy(body, header, hlen);
    memcpy(body + hlen, raw, blen);
    free(raw);
    cJSON_free(header);
    /* the header length counts the bytes before any compression, as tritonclient reads it */
    struct MHD_Response *resp = respond_body(r, "application/octet-stream", body, hlen + blen);
    free(body);
    char hl[32];
    snprintf(hl, sizeof hl, "%zu", hlen);
    if (resp)
        MHD_add_response_header(resp, "Inference-Header-Content-Length", hl);
    return respond_queue(r, MHD_HTTP_OK, resp);
}

/* outputs: at most the one the model has, by its name, with Triton's and
 * the classification extension's parameters. */
static int check_outputs(const cJSON *outputs, MnError *err)
{
    static const char *const keys[] = {"name", "parameters", NULL};
    static const char *const param_keys[] = {"binary_data", "classification", NULL};
    if (!cJSON_IsArray(outputs))
        return mn_fail(err, MN_EINVAL, "outputs must be an array of requested outputs");
    int i = 0, rc;
    for (const cJSON *o = outputs->child; o; o = o->next, i++) {
        char where[32];
        snprintf(where, sizeof where, "outputs[%d]", i);
        if (!cJSON_IsObject(o))
            return mn_fail(err, MN_EINVAL, "%s must be an object", where);
        if ((rc = json_check_keys(o, where, keys, err)))
            return rc;
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
        if (!name)
            return mn_fail(err, MN_EINVAL, "%s needs a name: the model's output is \"" V2_OUTPUT
                           "\"", where);
        if (strcmp(name, V2_OUTPUT))
            return mn_fail(err, MN_EINVAL, "%s: unknown output \"%.64s\": the model's output is "
                           "\"" V2_OUTPUT "\"", where, name);
        if (i > 0)
            return mn_fail(err, MN_EINVAL, "%s: output \"" V2_OUTPUT "\" is requested twice",
                           where);
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        snprintf(where, sizeof where, "outputs[%d].parameters", i);
        if (params && !cJSON_IsObject(params))
            return mn_fail(err, MN_EINVAL, "%s must be an object", where);
        if (params && (rc = json_check_keys(params, where, param_keys, err)))
            return rc;
    }
    return 0;
}

/* The request's own keys (the Open Inference Protocol's, as KServe's
 * InferRequest.to_rest() and tritonclient send them) and parameters. */
static int check_header(const cJSON *req, MnError *err)
{
    static const char *const keys[] = {"id",     "model_name", "model_version", "parameters",
                                       "inputs", "outputs",    NULL};
    /* Triton's: binary outputs, and scheduling hints a single queue has no use for */
    static const char *const param_keys[] = {"binary_data_output", "priority", "timeout", NULL};
    int rc;
    if (!cJSON_IsObject(req))
        return mn_fail(err, MN_EINVAL, "the request must be a JSON object");
    if ((rc = json_check_keys(req, "", keys, err)))
        return rc;
    static const char *const strings[] = {"id", "model_name", "model_version"};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, strings[i]);
        if (v && !cJSON_IsString(v))
            return mn_fail(err, MN_EINVAL, "%s must be a string", strings[i]);
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "parameters");
    if (params && !cJSON_IsObject(params))
        return mn_fail(err, MN_EINVAL, "parameters must be an object");
    if (cJSON_GetObjectItemCaseSensitive(params, "sequence_id"))
        return mn_fail(err, MN_EINVAL, "parameters: sequence_id is not supported: the models "
                       "keep no state from one request to the next");
    if (params && (rc = json_check_keys(params, "parameters", param_keys, err)))
        return rc;
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(req, "outputs");
    if (outputs && (rc = check_outputs(outputs, err)))
        return rc;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(req, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1)
        return mn_fail(err, MN_EINVAL, "inputs must hold exactly one tensor, \"" V2_INPUT "\"");
    return 0;
}

static int parse_header(Request *r, size_t json_len, cJSON **req, MnError *err)
{
    *req = json_parse_strict(r->body ? r->body : "", json_len, "inference request", err);
    return *req ? check_header(*req, err) : err->code;
}

/* The checked header's tensors into *unit, with the binary data after it. */
static int read_tensors(Request *r, const Model *m, size_t json_len, const cJSON *req,
                        float **unit, int *n, int *k, MnError *err)
{
    Blob bin = {(const unsigned char *)(r->body ? r->body : "") + json_len, r->len - json_len};
    if ((*k = classification_k(req, m->n_classes, err)) < 0)
        return *k;
    return read_input(r, m, cJSON_GetObjectItemCaseSensitive(req, "inputs")->child, &bin, unit,
                      n, err);
}

int v2_read_request(Request *r, const Model *m, size_t json_len, cJSON **req, float **unit,
                    int *n, int *k, MnError *err)
{
    int rc = parse_header(r, json_len, req, err);
    return rc ? rc : read_tensors(r, m, json_len, *req, unit, n, k, err);
}

/* The version a request is for: the path's, or the body's model_version,
 * which must agree when both are given; NULL for the latest. */
static int request_version(Request *r, const cJSON *req, const char **version, MnError *err)
{
    const char *path = r->n_params > 1 ? r->params[1] : NULL;
    const char *body = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "model_version"));
    if (body && !*body)
        body = NULL; /* "" is the protocol's "any version" */
    if (path && body && strcmp(path, body))
        return mn_fail(err, MN_EINVAL, "model_version \"%.32s\" but the path names version %.32s",
                       body, path);
    *version = path ? path : body;
    return 0;
}

/* The request's Inference-Header-Content-Length (Triton's binary tensor
 * extension: the JSON header is the first N bytes), else the whole body. */
static int header_length(Request *r, size_t *json_len, MnError *err)
{
    *json_len = r->len;
    const char *hl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 "Inference-Header-Content-Length");
    if (hl) {
        char *end;
        unsigned long long v = strtoull(hl, &end, 10);
        if (!*hl || *end || v > r->len)
            return mn_fail(err, MN_EINVAL, "Inference-Header-Content-Length %.32s exceeds the "
                           "%zu-byte body", hl, r->len);
        *json_len = (size_t)v;
    }
    /* tritonclient sends no Content-Type: none is taken as the form the
     * header implies; a type given must be that form's. */
    if (r->content_type[0] && !request_is_type(r, "application/json") &&
        !(hl && request_is_type(r, "application/octet-stream")))
        return mn_fail(err, MN_EFORMAT, "Content-Type \"%.64s\" is not application/json%s",
                       r->content_type, hl ? " or application/octet-stream" : "");
    return 0;
}

static cJSON *infer_answer(const StoreEntry *e, const cJSON *req, const float *probs, int n, int k)
{
    const Model *m = e->model;
    char version[16];
    snprintf(version, sizeof version, "%d", e->version);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_name", e->name);
    cJSON_AddStringToObject(o, "model_version", version);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (cJSON_IsString(id))
        cJSON_AddStringToObject(o, "id", id->valuestring);
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    int shape[2] = {n, k ? k : m->n_classes};
    cJSON *t = tensor_meta(V2_OUTPUT, k ? "BYTES" : "FP32", shape, 2);
    cJSON_AddItemToObject(t, "data", k ? classification_strings(m, probs, n, k)
                                       : json_float_array(probs, n * m->n_classes));
    cJSON_AddItemToArray(outputs, t);
    return o;
}

enum MHD_Result h_v2_infer(Request *r)
{
    MnError err = {0};
    size_t json_len;
    cJSON *req = NULL;
    const char *version = NULL;
    int rc = header_length(r, &json_len, &err);
    if (!rc)
        rc = parse_header(r, json_len, &req, &err);
    if (!rc)
        rc = request_version(r, req, &version, &err);
    const StoreEntry *e = rc ? NULL : infer_pick_model(r, r->params[0], version, &err);
    if (!e) {
        cJSON_Delete(req);
        return respond_mn_error(r, &err);
    }
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "model_name"));
    if (name && strcmp(name, e->name))
        rc = mn_fail(&err, MN_EINVAL, "model_name \"%.64s\" but the path names model \"%s\"",
                     name, e->name);
    const Model *m = e->model;
    float *unit = NULL, *probs = NULL;
    int n = 0, k = 0;
    if (!rc && !(rc = read_tensors(r, m, json_len, req, &unit, &n, &k, &err)) &&
        !(probs = malloc((size_t)n * m->n_classes * sizeof *probs)))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0 && (rc = infer_run(e, unit, n, probs, NULL, &err)) == 0)
        server_metrics_predictions(r->srv->metrics, e->name, n);
    model_stats_record(r->srv->stats, e->name, e->version, n, rc == 0,
                       clock_seconds() - r->started);
    enum MHD_Result ret;
    if (rc)
        ret = respond_mn_error(r, &err);
    else if (wants_binary(req))
        ret = respond_binary(r, infer_answer(e, req, probs, n, k));
    else
        ret = respond_json(r, MHD_HTTP_OK, infer_answer(e, req, probs, n, k));
    cJSON_Delete(req);
    free(unit);
    free(probs);
    store_release(r->srv->store, e);
    return ret;
}
