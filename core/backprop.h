/* backprop.h - the homework's Problem 2 as a tool: a small dense network
 * with given weights (weights[out][in], z = W a + b), one input and target,
 * a loss ("mse_half" = 1/2 |y_hat - y|^2, or "crossentropy"), evaluated in
 * double precision: every z, a, the loss and every weight and bias
 * gradient. Input and output are JSON (the same text serves POST /backprop). */
#ifndef MN_BACKPROP_H
#define MN_BACKPROP_H

#include <stddef.h>

#include "error.h"

#define BACKPROP_MAX_LAYERS 16
#define BACKPROP_MAX_WIDTH 64

/* Parses json (len bytes), runs forward and backward; *out_json is a
 * malloc'd JSON text {"loss","output","layers":[{"z","a","d_weights","d_biases"}]}. */
int backprop_run_json(const char *json, size_t len, char **out_json, MnError *err);

#endif
