/* layer.c - the table from LayerType to its operations, names, and the
 * helpers more than one layer type needs (window geometry, Glorot init). */
#include "layer.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const LayerOps *const ops_by_type[LAYER_TYPE_COUNT] = {
    [LAYER_DENSE] = &dense_ops,
    [LAYER_CONV2D] = &conv2d_ops,
    [LAYER_MAXPOOL2D] = &maxpool2d_ops,
    [LAYER_FLATTEN] = &flatten_ops,
    [LAYER_DROPOUT] = &dropout_ops,
    [LAYER_ADD] = &add_ops,
    [LAYER_AVGPOOL2D] = &avgpool2d_ops,
    [LAYER_GLOBAL_AVGPOOL2D] = &global_avgpool2d_ops,
    [LAYER_CONCATENATE] = &concatenate_ops,
    [LAYER_ACTIVATION] = &activation_ops,
    [LAYER_RANDOM_TRANSLATION] = &random_translation_ops,
    [LAYER_RANDOM_ROTATION] = &random_rotation_ops,
    [LAYER_RANDOM_ZOOM] = &random_zoom_ops,
    [LAYER_RANDOM_FLIP] = &random_flip_ops,
    [LAYER_BATCHNORM] = &batchnorm_ops,
    [LAYER_LEAKY_RELU] = &leaky_relu_ops,
    [LAYER_ELU] = &elu_ops,
};

static const char *const activation_names[ACT_COUNT] = {
    [ACT_LINEAR] = "linear", [ACT_RELU] = "relu",       [ACT_SIGMOID] = "sigmoid",
    [ACT_TANH] = "tanh",     [ACT_SOFTMAX] = "softmax",    [ACT_GELU] = "gelu",
    [ACT_SWISH] = "swish",   [ACT_LEAKY_RELU] = "leaky_relu", [ACT_ELU] = "elu",
};

const LayerOps *layer_ops(LayerType type)
{
    return (unsigned)type < LAYER_TYPE_COUNT ? ops_by_type[type] : NULL;
}

int layer_type_from_name(const char *name)
{
    for (int t = 0; t < LAYER_TYPE_COUNT; t++)
        if (strcmp(ops_by_type[t]->name, name) == 0)
            return t;
    for (int t = 0; t < LAYER_TYPE_COUNT; t++)
        for (const char *const *a = ops_by_type[t]->aliases; a && *a; a++)
            if (strcmp(*a, name) == 0)
                return t;
    return -1;
}

void layer_type_names(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int t = 0; t < LAYER_TYPE_COUNT && used < n; t++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", t ? ", " : "", ops_by_type[t]->name);
}

int activation_from_name(const char *name)
{
    if (strcmp(name, "silu") == 0) /* Keras 3's name for swish */
        return ACT_SWISH;
    for (int a = 0; a < ACT_COUNT; a++)
        if (strcmp(activation_names[a], name) == 0)
            return a;
    return -1;
}

const char *activation_name(Activation act)
{
    return (unsigned)act < ACT_COUNT ? activation_names[act] : "?";
}

void activation_names_list(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int a = 0; a < ACT_COUNT && used < n; a++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", a ? ", " : "", activation_names[a]);
}

/* Not an activation whose backward needs its input: the model keeps that
 * input for the layers it applies activations to. */
bool layer_applies_activation(const Layer *l)
{
    return layer_ops(l->type)->fuses_activation && l->act != ACT_SOFTMAX &&
           !activation_needs_input(l->act);
}

int layer_variables(const Layer *l, size_t sizes[LAYER_MAX_VARIABLES])
{
    if (l->param_count == 0)
        return 0;
    const LayerOps *ops = layer_ops(l->type);
    size_t bias = ops->bias_floats ? ops->bias_floats(l) : 0;
    if (bias && l->param_count > bias) {
        sizes[0] = l->param_count - bias;
        sizes[1] = bias;
        return 2;
    }
    sizes[0] = l->param_count;
    return 1;
}

static int window_axis(int in, int k, int s, const Window *win, bool rows, int *pad_lead,
                       int *out)
{
    bool same = win->same;
    if (win->explicit_pad) {
        int lead = rows ? win->pad_top : win->pad_left;
        int trail = rows ? win->pad_bottom : win->pad_right;
        if (k > in + lead + trail)
            return -1;
        *out = (in + lead + trail - k) / s + 1;
        *pad_lead = lead;
    } else if (same) {
        *out = (in + s - 1) / s;
        int total = (*out - 1) * s + k - in;
        *pad_lead = total > 0 ? total / 2 : 0;
    } else {
        if (k > in)
            return -1;
        *out = (in - k) / s + 1;
        *pad_lead = 0;
    }
    return 0;
}

int window_build(Window *win, Shape in, int *out_h, int *out_w, MnError *err)
{
    if (win->kh < 1 || win->kw < 1 || win->sh < 1 || win->sw < 1)
        return mn_fail(err, MN_ESPEC, "window %dx%d stride %dx%d must be positive", win->kh,
                       win->kw, win->sh, win->sw);
    if (win->explicit_pad &&
        (win->pad_top < 0 || win->pad_bottom < 0 || win->pad_left < 0 || win->pad_right < 0 ||
         win->pad_top >= win->kh || win->pad_bottom >= win->kh || win->pad_left >= win->kw ||
         win->pad_right >= win->kw))
        /* a window wholly in the padding would pool nothing */
        return mn_fail(err, MN_ESPEC, "padding [[%d, %d], [%d, %d]] must be 0 up to the window "
                       "%dx%d less one", win->pad_top, win->pad_bottom, win->pad_left,
                       win->pad_right, win->kh, win->kw);
    if (window_axis(in.h, win->kh, win->sh, win, true, &win->pad_top, out_h) < 0 ||
        window_axis(in.w, win->kw, win->sw, win, false, &win->pad_left, out_w) < 0)
        return mn_fail(err, MN_ESPEC, "window %dx%d larger than input %dx%d with padding \"%s\"",
                       win->kh, win->kw, in.h, in.w, win->explicit_pad ? "explicit" : "valid");
    return 0;
}

static cJSON *pair_json(int h, int w)
{
    int v[2] = {h, w};
    return cJSON_CreateIntArray(v, 2);
}

void window_write(const Window *win, const char *size_key, cJSON *o)
{
    cJSON_AddItemToObject(o, size_key, pair_json(win->kh, win->kw));
    cJSON_AddItemToObject(o, "strides", pair_json(win->sh, win->sw));
    if (win->explicit_pad) {
        cJSON *pad = cJSON_AddArrayToObject(o, "padding");
        cJSON_AddItemToArray(pad, pair_json(win->pad_top, win->pad_bottom));
        cJSON_AddItemToArray(pad, pair_json(win->pad_left, win->pad_right));
    } else {
        cJSON_AddStringToObject(o, "padding", win->same ? "same" : "valid");
    }
}

void fold_affine_columns(float *w, float *bias, size_t rows, int n, const float *scale,
                         const float *shift)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++)
            w[r * (size_t)n + j] *= scale[j];
    for (int j = 0; j < n; j++)
        bias[j] = bias[j] * scale[j] + shift[j];
}

void init_glorot_uniform(float *w, size_t n, int fan_in, int fan_out, Rng *rng)
{
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * rng_uniform(rng) - 1.0f) * limit;
}
