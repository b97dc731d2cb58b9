/* h_v2.c - the Open Inference Protocol (KServe v2) REST routes. One input
 * tensor of any name: FP32 in [0,1] or UINT8 in 0..255, shaped [N,784],
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
#include "infer.h"
#include "json.h"
#include "respond.h"
#include "version.h"

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
    cJSON_AddItemToArray(inputs, tensor_meta("input", "FP32", in_shape, 4));
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    cJSON_AddItemToArray(outputs, tensor_meta("probabilities", "FP32", out_shape, 2));
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
    int rc = json_check_keys(input, "inputs[0]", keys, err);
    if (rc)
        return rc;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(input, "shape");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(input, "datatype");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(input, "data");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(input, "parameters");
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
    struct MHD_Response *resp = MHD_create_response_from_buffer(hlen + blen, body, MHD_RESPMEM_MUST_FREE);
    char hl[32];
    snprintf(hl, sizeof hl, "%zu", hlen);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, "Inference-Header-Content-Length", hl);
    return respond_queue(r, MHD_HTTP_OK, resp);
}

int v2_read_request(Request *r, const Model *m, size_t json_len, cJSON **req, float **unit,
                    int *n, int *k, MnError *err)
{
    int rc = 0;
    Blob bin = {(const unsigned char *)(r->body ? r->body : "") + json_len, r->len - json_len};
    *req = json_parse_strict(r->body ? r->body : "", json_len, "inference request", err);
    static const char *const keys[] = {"id", "parameters", "inputs", "outputs", NULL};
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(*req, "inputs");
    if (!*req)
        rc = err->code;
    else if (!cJSON_IsObject(*req) || (rc = json_check_keys(*req, "", keys, err)))
        rc = rc ? rc : mn_fail(err, MN_EINVAL, "the request must be a JSON object");
    else if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1)
        rc = mn_fail(err, MN_EINVAL, "inputs must hold exactly one tensor");
    else if ((*k = classification_k(*req, m->n_classes, err)) < 0)
        rc = *k;
    else
        rc = read_input(r, m, inputs->child, &bin, unit, n, err);
    return rc;
}

enum MHD_Result h_v2_infer(Request *r)
{
    MnError err = {0};
    const StoreEntry *e = v2_model(r, &err);
    if (!e)
        return respond_v2_error(r, respond_status_of(err.code), "%s", err.msg);
    const Model *m = e->model;
    float *unit = NULL, *probs = NULL;
    int n = 0, k = 0, rc = 0;
    /* Triton's binary extension: the JSON header is the first N bytes. */
    size_t json_len = r->len;
    const char *hl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 "Inference-Header-Content-Length");
    if (hl) {
        char *end;
        unsigned long long v = strtoull(hl, &end, 10);
        if (*end || v > r->len) {
            store_release(r->srv->store, e);
            return respond_v2_error(r, MHD_HTTP_BAD_REQUEST,
                                    "Inference-Header-Content-Length %s exceeds the %zu-byte body",
                                    hl, r->len);
        }
        json_len = (size_t)v;
    }
    /* tritonclient sends no Content-Type: none is taken as the form the
     * header implies; a type given must be that form's. */
    if (r->content_type[0] && !request_is_type(r, "application/json") &&
        !(hl && request_is_type(r, "application/octet-stream"))) {
        store_release(r->srv->store, e);
        return respond_v2_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "Content-Type \"%.64s\" is not application/json%s",
                                r->content_type,
                                hl ? " or application/octet-stream" : "");
    }
    cJSON *req = NULL;
    if (!(rc = v2_read_request(r, m, json_len, &req, &unit, &n, &k, &err)) &&
        !(probs = malloc((size_t)n * m->n_classes * sizeof *probs)))
        rc = mn_fail(&err, MN_ENOMEM, "out of memory");
    if (rc == 0 && (rc = infer_run(e, unit, n, probs, NULL, &err)) == 0)
        server_metrics_predictions(r->srv->metrics, e->name, n);
    enum MHD_Result ret;
    if (rc) {
        ret = respond_v2_error(r, respond_status_of(err.code), "%s", err.msg);
    } else {
        char version[16];
        snprintf(version, sizeof version, "%d", e->version);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model_name", e->name);
        cJSON_AddStringToObject(o, "model_version", version);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
        if (cJSON_IsString(id))
            cJSON_AddStringToObject(o, "id", id->valuestring);
        cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
        const cJSON *asked = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(req, "outputs"), 0);
        const char *out_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(asked, "name"));
        int shape[2] = {n, k ? k : m->n_classes};
        cJSON *t = tensor_meta(out_name ? out_name : "probabilities", k ? "BYTES" : "FP32", shape, 2);
        cJSON_AddItemToObject(t, "data", k ? classification_strings(m, probs, n, k)
                                           : json_float_array(probs, n * m->n_classes));
        cJSON_AddItemToArray(outputs, t);
        ret = wants_binary(req) ? respond_binary(r, o) : respond_json(r, MHD_HTTP_OK, o);
    }
    cJSON_Delete(req);
    free(unit);
    free(probs);
    store_release(r->srv->store, e);
    return ret;
}
