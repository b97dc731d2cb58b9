/* spec_read.h - strict readers for the fields of a JSON spec, shared by
 * spec.c and the layer types' files (each parses its own config). Every
 * reader names the key path in its error: `where` is the object's path
 * ("layers[2]", "" at the top level). The spec_opt_* readers leave *out
 * alone when the key is absent. */
#ifndef MN_SPEC_READ_H
#define MN_SPEC_READ_H

#include <stdbool.h>

#include "error.h"
#include "layer.h"

struct cJSON;

/* Window sizes and strides (kernel_size, pool_size) stop here. */
#define SPEC_KERNEL_MAX 64

const struct cJSON *spec_field(const struct cJSON *obj, const char *key);
int spec_number(const struct cJSON *v, const char *path, double min, double max, double *out,
                MnError *err);
int spec_int(const struct cJSON *v, const char *path, long long min, long long max,
             long long *out, MnError *err);
int spec_opt_int(const struct cJSON *obj, const char *key, const char *where, long long min,
                 long long max, int *out, MnError *err);
int spec_opt_float(const struct cJSON *obj, const char *key, const char *where, double min,
                   double max, float *out, MnError *err);
int spec_opt_bool(const struct cJSON *obj, const char *key, const char *where, bool *out,
                  MnError *err);
/* A string matched against NULL-terminated names; writes values[i]. */
int spec_opt_choice(const struct cJSON *obj, const char *key, const char *where,
                    const char *const *names, const int *values, int *out, MnError *err);
/* kernel_size, strides, pool_size: an integer or a pair [h, w], as in Keras. */
int spec_opt_pair(const struct cJSON *obj, const char *key, const char *where, int max, int *h,
                  int *w, MnError *err);
/* "padding": "valid", "same" or [[top, bottom], [left, right]]. */
int spec_padding(const struct cJSON *obj, const char *where, Window *win, MnError *err);
/* "use_bias" (Keras's default true) into *no_bias; written back only when false. */
int spec_use_bias(const struct cJSON *obj, const char *where, bool *no_bias, MnError *err);
void spec_write_use_bias(bool no_bias, struct cJSON *o);
/* "activation", linear when absent or null (Keras's activation=None). */
int spec_activation(const struct cJSON *obj, const char *where, Activation *act, MnError *err);

/* "monitor" of early_stopping and reduce_lr_on_plateau: val_loss (when
 * absent), val_accuracy, loss or accuracy. */
int spec_monitor(const struct cJSON *obj, const char *where, bool *accuracy, bool *validation,
                 MnError *err);
const char *spec_monitor_name(bool accuracy, bool validation);

#endif
