/* respond.c - JSON responses and the MnCode -> HTTP status table. */
#include "respond.h"

#include "content_coding.h"
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int code;
    unsigned status;
} status_table[] = {
    {MN_EINVAL, MHD_HTTP_BAD_REQUEST},
    {MN_ESPEC, MHD_HTTP_UNPROCESSABLE_CONTENT},
    {MN_ELIMIT, MHD_HTTP_CONTENT_TOO_LARGE},
    {MN_ENOMEM, MHD_HTTP_SERVICE_UNAVAILABLE},
    {MN_EIO, MHD_HTTP_INTERNAL_SERVER_ERROR},
    {MN_ECORRUPT, MHD_HTTP_BAD_REQUEST},
    {MN_ENOTFOUND, MHD_HTTP_NOT_FOUND},
    {MN_EFORMAT, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE},
    {MN_ECANCELLED, MHD_HTTP_CONFLICT},
};

unsigned respond_status_of(int mn_code)
{
    for (size_t i = 0; i < sizeof status_table / sizeof *status_table; i++)
        if (status_table[i].code == mn_code)
            return status_table[i].status;
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* The request's Origin when --cors-origins lists it (or is "*"). */
static const char *allowed_origin(const Request *r)
{
    const char *list = r->srv->cfg.cors_origins;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!origin || !list[0])
        return NULL;
    if (!strcmp(list, "*"))
        return "*";
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, origin, n))
            return origin;
        p += len + (p[len] == ',');
    }
    return NULL;
}

enum MHD_Result respond_queue(Request *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    const char *origin = allowed_origin(r);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Content-Encoding, Inference-Header-Content-Length");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Location, X-Label, X-Label-Name");
        if (strcmp(origin, "*"))
            MHD_add_response_header(resp, "Vary", "Origin");
    }
    /* A draining server's answers end their connections: keep-alive
     * clients reconnect elsewhere instead of racing the close. */
    if (atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->status = (int)status;
    return ret;
}

struct MHD_Response *respond_body(Request *r, const char *content_type, const void *data,
                                  size_t len)
{
    /* images are compressed already */
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_ACCEPT_ENCODING);
    ContentCoding coding = strncmp(content_type, "image/", 6) && len
                               ? content_coding_accepted(accept) : CODING_IDENTITY;
    unsigned char *packed = NULL;
    size_t packed_len = 0;
    if (coding != CODING_IDENTITY &&
        content_coding_compress(coding, data, len, &packed, &packed_len))
        coding = CODING_IDENTITY; /* out of memory: the answer goes as it is */
    struct MHD_Response *resp =
        packed ? MHD_create_response_from_buffer(packed_len, packed, MHD_RESPMEM_MUST_FREE)
               : MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        free(packed);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (strncmp(content_type, "image/", 6))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (coding != CODING_IDENTITY)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                coding == CODING_GZIP ? "gzip" : "deflate");
    return resp;
}

enum MHD_Result respond_bytes(Request *r, unsigned status, const char *content_type,
                              const void *data, size_t len)
{
    return respond_queue(r, status, respond_body(r, content_type, data, len));
}

enum MHD_Result respond_json(Request *r, unsigned status, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return respond_bytes(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                             "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}", 56);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: the length is passed */
    enum MHD_Result ret = respond_bytes(r, status, "application/json", text, len + 1);
    cJSON_free(text);
    return ret;
}

/* A message may quote what the client sent (a model name, a query
 * argument) or be cut inside a character; a JSON answer must be UTF-8, so
 * every byte that is not becomes U+FFFD. out holds 3 * strlen(msg) + 1. */
static const char *utf8_clean(const char *msg, char *out)
{
    size_t n = strlen(msg), o = 0;
    for (size_t i = 0, k; i < n; i += k ? k : 1) {
        if ((k = json_utf8_char(msg + i, n - i))) {
            memcpy(out + o, msg + i, k);
            o += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        }
    }
    out[o] = '\0';
    return out;
}

/* Whether path is under prefix ("/v2" itself, or "/v2/..."). */
static bool under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

bool respond_protocol_errors(const Request *r)
{
    return under(r->path, "/v2") || under(r->path, "/v1");
}

/* The clients of /v2 (Open Inference Protocol, Triton) and /v1 (TF
 * Serving) read {"error": "message"}: tritonclient raises TypeError on an
 * object there. Every other route answers {"error": {"code", "message"}}. */
static enum MHD_Result error_body(Request *r, unsigned status, const char *code, const char *msg)
{
    char clean[3 * 512 + 1];
    cJSON *o = cJSON_CreateObject();
    if (respond_protocol_errors(r)) {
        cJSON_AddStringToObject(o, "error", utf8_clean(msg, clean));
    } else {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", utf8_clean(msg, clean));
    }
    return respond_json(r, status, o);
}

enum MHD_Result respond_error(Request *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_body(r, status, code, msg);
}

enum MHD_Result respond_mn_error(Request *r, const MnError *err)
{
    return error_body(r, respond_status_of(err->code), mn_code_name(err->code), err->msg);
}

enum MHD_Result respond_v2_error(Request *r, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char clean[3 * sizeof msg + 1];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", utf8_clean(msg, clean));
    return respond_json(r, status, o);
}
