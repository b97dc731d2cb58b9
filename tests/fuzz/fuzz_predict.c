/* fuzz_predict.c - libFuzzer target: the body of POST /predict as
 * server/h_predict.c reads it (predict_collect), then every PNG found
 * through infer_png, against a 28x28 model and the server's default
 * config. Byte 0 picks the Content-Type (bits 0-1: JSON pixels, multipart,
 * image/png, something else) and the ?preprocess= (bits 2-3: none given,
 * digit, frame, none). For multipart, libmicrohttpd splits the body, so
 * the rest of the input is the parts as its post processor hands them to
 * request_on_part (server/http.c): parts separated by "\n--\n", each led
 * by one byte: bits 0-1 the field ("image", "data", "other", ""), bits 2-7
 * the chunk size (x 16 bytes; 0: the whole part at once). */
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
    fuzz_server_setup(&srv, &model, "fuzz_predict");
    srv.cfg.max_body = 64 * 1024; /* small enough to reach the 413 path */
    return 0;
}

/* Feeds one part to request_on_part in chunks, as the post processor does. */
static void feed_part(Request *r, const uint8_t *p, size_t n)
{
    static const char *const fields[] = {"image", "data", "other", ""};
    if (n == 0)
        return;
    const char *field = fields[p[0] & 3];
    size_t chunk = (size_t)(p[0] >> 2) * 16;
    p++, n--;
    if (chunk == 0 || chunk > n)
        chunk = n;
    size_t off = 0;
    do {
        size_t k = n - off < chunk ? n - off : chunk;
        if (request_on_part(r, MHD_POSTDATA_KIND, field, "x.png", "image/png", NULL,
                            (const char *)p + off, off, k) != MHD_YES)
            return;
        off += k;
    } while (off < n);
}

static void parse_parts(Request *r, const uint8_t *p, size_t n)
{
    for (;;) {
        size_t k = 0;
        while (k + 4 <= n && memcmp(p + k, "\n--\n", 4))
            k++;
        if (k + 4 > n) {
            feed_part(r, p, n);
            return;
        }
        feed_part(r, p, k);
        p += k + 4, n -= k + 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {"application/json", "multipart/form-data; boundary=b",
                                        "image/png", "text/plain"};
    static const char *const modes[] = {NULL, "digit", "frame", "none"};
    if (size < 1)
        return 0;
    Request r = {0};
    r.srv = &srv;
    r.method = "POST";
    snprintf(r.path, sizeof r.path, "/predict");
    snprintf(r.content_type, sizeof r.content_type, "%s", types[data[0] & 3]);
    const char *mode = modes[(data[0] >> 2) & 3];
    if ((data[0] & 3) == 1) {
        parse_parts(&r, data + 1, size - 1);
    } else if (size - 1 <= (size_t)srv.cfg.max_body) {
        /* http.c keeps a raw body NUL-terminated */
        r.body = malloc(size);
        memcpy(r.body, data + 1, size - 1);
        r.body[size - 1] = '\0';
        r.len = size - 1;
    } else {
        r.too_large = true;
    }
    if (!r.too_large) {
        size_t d = shape_numel(model->spec.input);
        PredictImages im = {0};
        MnError err = {0};
        if (predict_collect(&r, d, &im, &err) == 0 && !im.pixels) {
            float *unit = malloc((size_t)im.n * d * sizeof *unit);
            for (int i = 0; unit && i < im.n; i++)
                if (infer_png(&srv, model, mode, im.png[i], im.png_len[i], unit + (size_t)i * d,
                              &err))
                    break;
            free(unit);
        }
        free(im.png);
        free(im.png_len);
        free(im.pixels);
    }
    for (int i = 0; i < r.n_parts; i++)
        free(r.parts[i].data);
    free(r.parts);
    free(r.body);
    return 0;
}
