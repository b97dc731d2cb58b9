/* spec_read.c - the strict field readers every part of a spec shares
 * (spec.c for the spec itself, each layer type's file for its config):
 * each names the key path in its error ("layers[2].kernel_size"). */
#include "spec_read.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const cJSON *spec_field(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

int spec_number(const cJSON *v, const char *path, double min, double max, double *out,
                MnError *err)
{
    if (!cJSON_IsNumber(v))
        return mn_fail(err, MN_EINVAL, "%s must be a number", path);
    double d = v->valuedouble;
    if (!isfinite(d) || d < min || d > max)
        return mn_fail(err, MN_EINVAL, "%s must be between %g and %g, got %g", path, min, max, d);
    *out = d;
    return 0;
}

int spec_int(const cJSON *v, const char *path, long long min, long long max,
             long long *out, MnError *err)
{
    if (!cJSON_IsNumber(v))
        return mn_fail(err, MN_EINVAL, "%s must be an integer", path);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return mn_fail(err, MN_EINVAL, "%s must be an integer, got %g", path, d);
    if (d < (double)min || d > (double)max)
        return mn_fail(err, MN_EINVAL, "%s must be between %lld and %lld, got %.17g", path, min,
                       max, d);
    *out = (long long)d;
    return 0;
}

int spec_opt_int(const cJSON *obj, const char *key, const char *where, long long min,
                 long long max, int *out, MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", where, *where ? "." : "", key);
    long long x = 0;
    int rc = spec_int(v, path, min, max, &x, err);
    if (rc == 0)
        *out = (int)x;
    return rc;
}

int spec_opt_float(const cJSON *obj, const char *key, const char *where, double min, double max,
                   float *out, MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", where, *where ? "." : "", key);
    double x = 0.0;
    int rc = spec_number(v, path, min, max, &x, err);
    if (rc == 0)
        *out = (float)x;
    return rc;
}

int spec_opt_bool(const cJSON *obj, const char *key, const char *where, bool *out, MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return mn_fail(err, MN_EINVAL, "%s%s%s must be true or false", where, *where ? "." : "",
                       key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A string field matched against a table of names; writes the index. */
int spec_opt_choice(const cJSON *obj, const char *key, const char *where,
                    const char *const *names, const int *values, int *out, MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", where, *where ? "." : "", key);
    if (!cJSON_IsString(v))
        return mn_fail(err, MN_EINVAL, "%s must be a string", path);
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], v->valuestring) == 0) {
            *out = values[i];
            return 0;
        }
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return mn_fail(err, MN_EINVAL, "%s: unknown value \"%.40s\" (expected one of: %s)", path,
                   v->valuestring, list);
}


/* kernel_size, strides, pool_size: an integer or a pair [h, w], as in Keras. */
int spec_opt_pair(const cJSON *obj, const char *key, const char *where, int max, int *h, int *w,
                  MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s.%s", where, key);
    long long a = 0, b = 0;
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2)
            return mn_fail(err, MN_EINVAL, "%s must be an integer or a pair [h, w]", path);
        int rc = spec_int(v->child, path, 1, max, &a, err);
        if (rc == 0)
            rc = spec_int(v->child->next, path, 1, max, &b, err);
        if (rc)
            return rc;
    } else {
        int rc = spec_int(v, path, 1, max, &a, err);
        if (rc)
            return rc;
        b = a;
    }
    *h = (int)a;
    *w = (int)b;
    return 0;
}

int spec_padding(const cJSON *obj, const char *where, Window *win, MnError *err)
{
    const cJSON *v = spec_field(obj, "padding");
    if (v && cJSON_IsArray(v)) {
        /* [[top, bottom], [left, right]], as Keras's ZeroPadding2D spells it */
        char path[96];
        snprintf(path, sizeof path, "%s.padding", where);
        long long pads[4];
        const cJSON *axis = v->child;
        for (int a = 0; a < 2; a++, axis = axis ? axis->next : NULL) {
            if (cJSON_GetArraySize(v) != 2 || !cJSON_IsArray(axis) || cJSON_GetArraySize(axis) != 2)
                return mn_fail(err, MN_EINVAL, "%s must be \"valid\", \"same\" or "
                               "[[top, bottom], [left, right]]", path);
            int rc;
            if ((rc = spec_int(axis->child, path, 0, SPEC_KERNEL_MAX, &pads[2 * a], err)) ||
                (rc = spec_int(axis->child->next, path, 0, SPEC_KERNEL_MAX, &pads[2 * a + 1], err)))
                return rc;
        }
        win->explicit_pad = true;
        win->same = false;
        win->pad_top = (int)pads[0];
        win->pad_bottom = (int)pads[1];
        win->pad_left = (int)pads[2];
        win->pad_right = (int)pads[3];
        return 0;
    }
    static const char *const names[] = {"valid", "same", NULL};
    static const int values[] = {0, 1};
    int same = win->same;
    int rc = spec_opt_choice(obj, "padding", where, names, values, &same, err);
    win->same = same;
    win->explicit_pad = false;
    return rc;
}

int spec_use_bias(const cJSON *obj, const char *where, bool *no_bias, MnError *err)
{
    bool use_bias = true;
    int rc = spec_opt_bool(obj, "use_bias", where, &use_bias, err);
    *no_bias = !use_bias;
    return rc;
}

int spec_monitor(const cJSON *obj, const char *where, bool *accuracy, bool *validation,
                 MnError *err)
{
    static const char *const monitors[] = {"val_loss", "val_accuracy", "loss", "accuracy", NULL};
    static const int values[] = {0, 1, 2, 3};
    int monitor = 0;
    int rc = spec_opt_choice(obj, "monitor", where, monitors, values, &monitor, err);
    *accuracy = monitor == 1 || monitor == 3;
    *validation = monitor < 2;
    return rc;
}

const char *spec_monitor_name(bool accuracy, bool validation)
{
    if (validation)
        return accuracy ? "val_accuracy" : "val_loss";
    return accuracy ? "accuracy" : "loss";
}

/* Only when false: a spec that left it out writes back byte for byte. */
void spec_write_use_bias(bool no_bias, cJSON *o)
{
    if (no_bias)
        cJSON_AddFalseToObject(o, "use_bias");
}

int spec_activation(const cJSON *obj, const char *where, Activation *act, MnError *err)
{
    const cJSON *a = spec_field(obj, "activation");
    *act = ACT_LINEAR; /* absent or null: Keras's activation=None */
    if (!a || cJSON_IsNull(a))
        return 0;
    if (!cJSON_IsString(a))
        return mn_fail(err, MN_EINVAL, "%s.activation must be a string", where);
    int v = activation_from_name(a->valuestring);
    if (v < 0) {
        char known[256];
        activation_names_list(known, sizeof known);
        return mn_fail(err, MN_EINVAL,
                       "%s.activation: unknown value \"%.40s\" (expected one of: %s, silu)", where,
                       a->valuestring, known);
    }
    *act = (Activation)v;
    return 0;
}

