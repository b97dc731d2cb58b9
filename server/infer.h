/* infer.h - what every prediction route shares: images into model inputs,
 * a forward pass on a pooled run, and the answer as JSON. */
#ifndef MN_INFER_H
#define MN_INFER_H

#include <cJSON.h>

#include "image.h"
#include "server.h"

/* Decodes a PNG into the model's input size with the model's preprocessing
 * (or mode, when not NULL), under the server's image limits. */
int infer_png(const Server *srv, const Model *m, const char *mode, const void *png, size_t len,
              float *out, MnError *err);

/* Forward n images given in [0,1] (n x input numel) through e's model on a
 * pooled run; probs gets n x classes. trace (may be NULL) receives each
 * layer's output of the first image. */
int infer_run(const StoreEntry *e, const float *unit, int n, float *probs, cJSON *trace,
              MnError *err);

/* {model, version, prediction, label, probabilities, classes} for one row. */
cJSON *infer_result_json(const StoreEntry *e, const float *probs);

/* The model named by ?model=&version= (default model, latest version). */
const StoreEntry *infer_pick_model(Request *r, const char *name, const char *version,
                                   MnError *err);

#endif
