/* infer.h - what every prediction route shares: images into model inputs,
 * a forward pass on a pooled run, and the answer as JSON. */
#ifndef MN_INFER_H
#define MN_INFER_H

#include <cJSON.h>

#include "image.h"
#include "server.h"

/* Decodes a PNG, JPEG or WebP (told by its bytes) into the model's input size
 * with the model's preprocessing (or mode, when not NULL), under the
 * server's image limits; trace (may be NULL) gets the preprocessing's
 * intermediate images. infer_png is the same without a trace. */
int infer_image(const Server *srv, const Model *m, const char *mode, const void *bytes, size_t len,
                float *out, ImageTrace *trace, MnError *err);
int infer_png(const Server *srv, const Model *m, const char *mode, const void *png, size_t len,
              float *out, MnError *err);

/* [{step, width, height, pixels: [0-255, row-major]}, ...] for ?trace=1. */
cJSON *infer_image_trace_json(const ImageTrace *t);

/* Whether ?trace= asks for a trace (anything but absent, 0 or false). */
bool infer_wants_trace(Request *r);

/* Forward n images given in [0,1] (n x input numel) through e's model on a
 * pooled run; probs gets n x classes. trace (may be NULL) receives each
 * layer's output of the first image. */
int infer_run(const StoreEntry *e, const float *unit, int n, float *probs, cJSON *trace,
              MnError *err);

/* {model, version, prediction, label, probabilities, classes} for one row.
 * The names and the class list are e's, referred to, not copied: print the
 * answer before releasing e. */
cJSON *infer_result_json(const StoreEntry *e, const float *probs);

/* Whether name can be a model's (openapi.yaml's ModelName pattern). */
bool infer_name_ok(const char *name);

/* The model named by ?model=&version= (default model, latest version). */
const StoreEntry *infer_pick_model(Request *r, const char *name, const char *version,
                                   MnError *err);

/* The images of a /predict body (h_predict.c), by Content-Type: the
 * multipart parts in the fields "image" or "data", a raw PNG, JPEG or WebP
 * body, or JSON pixels of d numbers each. png[] and png_len[] (malloc'd) point into r;
 * pixels (malloc'd) holds parsed JSON pixels. The caller frees all three. */
typedef struct {
    int n;
    bool batch;        /* answer with an array */
    const unsigned char **png;
    size_t *png_len;
    float *pixels;     /* JSON pixels, already [0, 1] */
} PredictImages;

int predict_collect(Request *r, size_t d, PredictImages *im, MnError *err);
/* The collected images as the model's input in [0, 1]: PNGs, JPEGs and
 * WebPs decoded with the model's preprocessing (or ?preprocess=) into *unit
 * (malloc'd, the caller frees it, also on error), NULL when im holds JSON
 * pixels; first_steps (may be NULL) gets the first image's steps. */
int predict_decode(Request *r, const Model *m, const PredictImages *im, float **unit,
                   ImageTrace *first_steps, MnError *err);

/* KServe v1's :explain (h_explain.c) of n images already in [0, 1]:
 * *answer (the caller's) gets {"predictions", "explanations"}. */
int explain_kserve(Request *r, const StoreEntry *e, const float *unit, int n, cJSON **answer,
                   MnError *err);

/* A KServe v2 inference request (h_v2.c): the JSON header in the first
 * json_len bytes of r's body, binary tensor data after it. *req (the
 * parsed header, may be set on error) is the caller's to delete; *unit
 * (malloc'd, may be set on error) gets *n images; *k the classification
 * count, 0 for probabilities. */
int v2_read_request(Request *r, const Model *m, size_t json_len, cJSON **req, float **unit,
                    int *n, int *k, MnError *err);

#endif
