/* fuzz_v2.c - libFuzzer target: a KServe v2 inference request as
 * server/h_v2.c reads it (v2_read_request: the JSON header, the input
 * tensor in every datatype, Triton's binary data after the header, base64
 * PNGs), against a 28x28 model and the server's default config.
 * An input starting with '{' is a JSON body. Otherwise its first two bytes
 * (little-endian) are the Inference-Header-Content-Length and the rest the
 * body: JSON header, then binary tensor data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_server.h"

static Server srv;
static Model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_server_setup(&srv, &model, "fuzz_v2");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t skip = 0, json_len;
    if (size >= 1 && data[0] == '{') {
        json_len = size;
    } else if (size >= 2) {
        skip = 2;
        json_len = (size_t)data[0] | (size_t)data[1] << 8;
        if (json_len > size - 2) /* h_v2_infer answers 400 before reading the body */
            return 0;
    } else {
        return 0;
    }
    Request r = {0};
    r.srv = &srv;
    r.method = "POST";
    snprintf(r.path, sizeof r.path, "/v2/models/fuzz/infer");
    snprintf(r.content_type, sizeof r.content_type, "application/json");
    /* http.c keeps a raw body NUL-terminated */
    r.len = size - skip;
    r.body = malloc(r.len + 1);
    memcpy(r.body, data + skip, r.len);
    r.body[r.len] = '\0';
    cJSON *req = NULL;
    float *unit = NULL;
    int n = 0, k = 0;
    MnError err = {0};
    v2_read_request(&r, model, json_len, &req, &unit, &n, &k, &err);
    cJSON_Delete(req);
    free(unit);
    free(r.body);
    return 0;
}
