/* backprop.c - one forward and backward pass of a small dense network in
 * double precision, for checking a hand calculation (the homework's
 * Problem 2). Weights are [out][in], z = W a + b, as in the notebook.
 * The ReLU derivative at exactly 0 is taken as 0 (the sub-gradient Keras
 * and PyTorch use). */
#include "backprop.h"

#include "json.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

typedef enum { BP_LINEAR, BP_RELU, BP_SIGMOID, BP_TANH, BP_SOFTMAX } BpActivation;
typedef enum { BP_MSE_HALF, BP_MSE, BP_CROSSENTROPY } BpLoss;

typedef struct {
    int in, out;
    BpActivation act;
    double w[BACKPROP_MAX_WIDTH * BACKPROP_MAX_WIDTH]; /* [out][in] */
    double b[BACKPROP_MAX_WIDTH];
    double z[BACKPROP_MAX_WIDTH], a[BACKPROP_MAX_WIDTH];
    double dw[BACKPROP_MAX_WIDTH * BACKPROP_MAX_WIDTH], db[BACKPROP_MAX_WIDTH];
} BpLayer;

typedef struct {
    int n_layers, n_in, n_out;
    double x[BACKPROP_MAX_WIDTH], t[BACKPROP_MAX_WIDTH];
    BpLoss loss;
    BpLayer layers[BACKPROP_MAX_LAYERS];
} BpNet;

static int read_vector(const cJSON *v, const char *path, double *out, int max, int *n,
                       MnError *err)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
        return mn_fail(err, MN_EINVAL, "%s must be a non-empty array of numbers", path);
    if (cJSON_GetArraySize(v) > max)
        return mn_fail(err, MN_ELIMIT, "%s has %d entries, at most %d", path,
                       cJSON_GetArraySize(v), max);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return mn_fail(err, MN_EINVAL, "%s[%d] must be a finite number", path, i);
        out[i] = it->valuedouble;
    }
    *n = i;
    return 0;
}

static int parse_layer(const cJSON *o, int index, int fan_in, BpLayer *l, MnError *err)
{
    static const char *const keys[] = {"weights", "biases", "activation", NULL};
    static const char *const acts[] = {"linear", "relu", "sigmoid", "tanh", "softmax", NULL};
    char path[64];
    snprintf(path, sizeof path, "layers[%d]", index);
    if (!cJSON_IsObject(o))
        return mn_fail(err, MN_EINVAL, "%s must be an object", path);
    int rc = json_check_keys(o, path, keys, err);
    if (rc)
        return rc;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "weights");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "biases");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "activation");
    if (!cJSON_IsArray(w) || cJSON_GetArraySize(w) < 1)
        return mn_fail(err, MN_EINVAL, "%s.weights must be an array of rows [out][in]", path);
    if (cJSON_GetArraySize(w) > BACKPROP_MAX_WIDTH)
        return mn_fail(err, MN_ELIMIT, "%s.weights has %d rows, at most %d", path,
                       cJSON_GetArraySize(w), BACKPROP_MAX_WIDTH);
    l->out = cJSON_GetArraySize(w);
    l->in = fan_in;
    int row = 0;
    for (const cJSON *r = w->child; r; r = r->next, row++) {
        char rpath[128];
        int n;
        snprintf(rpath, sizeof rpath, "%s.weights[%d]", path, row);
        if ((rc = read_vector(r, rpath, l->w + (size_t)row * fan_in, BACKPROP_MAX_WIDTH, &n, err)))
            return rc;
        if (n != fan_in)
            return mn_fail(err, MN_ESPEC, "%s has %d columns but its input has %d values", rpath,
                           n, fan_in);
    }
    int nb;
    char bpath[128];
    snprintf(bpath, sizeof bpath, "%s.biases", path);
    if ((rc = read_vector(b, bpath, l->b, BACKPROP_MAX_WIDTH, &nb, err)))
        return rc;
    if (nb != l->out)
        return mn_fail(err, MN_ESPEC, "%s.biases has %d entries for %d outputs", path, nb, l->out);
    l->act = BP_LINEAR;
    if (a) {
        int found = -1;
        for (int i = 0; cJSON_IsString(a) && acts[i]; i++)
            if (strcmp(acts[i], a->valuestring) == 0)
                found = i;
        if (found < 0)
            return mn_fail(err, MN_EINVAL,
                           "%s.activation must be linear, relu, sigmoid, tanh or softmax", path);
        l->act = (BpActivation)found;
    }
    return 0;
}

static int parse_net(const cJSON *root, BpNet *net, MnError *err)
{
    static const char *const keys[] = {"input", "target", "loss", "layers", NULL};
    if (!cJSON_IsObject(root))
        return mn_fail(err, MN_EINVAL, "the document must be a JSON object");
    int rc = json_check_keys(root, "backprop", keys, err);
    if (rc)
        return rc;
    if ((rc = read_vector(cJSON_GetObjectItemCaseSensitive(root, "input"), "input", net->x,
                          BACKPROP_MAX_WIDTH, &net->n_in, err)))
        return rc;
    int n_t;
    if ((rc = read_vector(cJSON_GetObjectItemCaseSensitive(root, "target"), "target", net->t,
                          BACKPROP_MAX_WIDTH, &n_t, err)))
        return rc;
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(root, "loss");
    net->loss = BP_MSE_HALF;
    if (loss) {
        if (!cJSON_IsString(loss))
            return mn_fail(err, MN_EINVAL, "loss must be \"mse_half\", \"mse\" or \"crossentropy\"");
        if (!strcmp(loss->valuestring, "mse_half"))
            net->loss = BP_MSE_HALF;
        else if (!strcmp(loss->valuestring, "mse"))
            net->loss = BP_MSE;
        else if (!strcmp(loss->valuestring, "crossentropy") ||
                 !strcmp(loss->valuestring, "categorical_crossentropy"))
            net->loss = BP_CROSSENTROPY;
        else
            return mn_fail(err, MN_EINVAL, "loss must be \"mse_half\", \"mse\" or \"crossentropy\"");
    }
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 1)
        return mn_fail(err, MN_EINVAL, "layers must be a non-empty array");
    if (cJSON_GetArraySize(layers) > BACKPROP_MAX_LAYERS)
        return mn_fail(err, MN_ELIMIT, "layers: %d layers, at most %d",
                       cJSON_GetArraySize(layers), BACKPROP_MAX_LAYERS);
    int fan_in = net->n_in;
    for (const cJSON *it = layers->child; it; it = it->next, net->n_layers++) {
        BpLayer *l = &net->layers[net->n_layers];
        if ((rc = parse_layer(it, net->n_layers, fan_in, l, err)))
            return rc;
        if (l->act == BP_SOFTMAX && it->next)
            return mn_fail(err, MN_ESPEC, "layers[%d]: softmax only on the last layer",
                           net->n_layers);
        fan_in = l->out;
    }
    net->n_out = fan_in;
    if (n_t != net->n_out)
        return mn_fail(err, MN_ESPEC, "target has %d values but the last layer has %d outputs", n_t,
                       net->n_out);
    return 0;
}

static double activate(BpActivation act, double z)
{
    switch (act) {
    case BP_RELU: return z > 0.0 ? z : 0.0;
    case BP_SIGMOID: return z >= 0.0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
    case BP_TANH: return tanh(z);
    default: return z;
    }
}

/* da/dz from z and a, for the elementwise activations. */
static double derivative(BpActivation act, double z, double a)
{
    switch (act) {
    case BP_RELU: return z > 0.0 ? 1.0 : 0.0;
    case BP_SIGMOID: return a * (1.0 - a);
    case BP_TANH: return 1.0 - a * a;
    default: return 1.0;
    }
}

static int forward_backward(BpNet *net, double *loss, MnError *err)
{
    const double *in = net->x;
    for (int li = 0; li < net->n_layers; li++) {
        BpLayer *l = &net->layers[li];
        for (int o = 0; o < l->out; o++) {
            double z = l->b[o];
            for (int i = 0; i < l->in; i++)
                z += l->w[(size_t)o * l->in + i] * in[i];
            l->z[o] = z;
        }
        if (l->act == BP_SOFTMAX) {
            double max = l->z[0], sum = 0.0;
            for (int o = 1; o < l->out; o++)
                max = fmax(max, l->z[o]);
            for (int o = 0; o < l->out; o++)
                sum += exp(l->z[o] - max);
            for (int o = 0; o < l->out; o++)
                l->a[o] = exp(l->z[o] - max) / sum;
        } else {
            for (int o = 0; o < l->out; o++)
                l->a[o] = activate(l->act, l->z[o]);
        }
        in = l->a;
    }
    BpLayer *last = &net->layers[net->n_layers - 1];
    const double *y = last->a, *t = net->t;
    int k = net->n_out;
    double da[BACKPROP_MAX_WIDTH], dz[BACKPROP_MAX_WIDTH];
    double total = 0.0;
    for (int o = 0; o < k; o++) {
        double diff = y[o] - t[o];
        if (net->loss == BP_MSE_HALF) {
            total += 0.5 * diff * diff;
            da[o] = diff;
        } else if (net->loss == BP_MSE) {
            total += diff * diff / k;
            da[o] = 2.0 * diff / k;
        } else {
            if (t[o] != 0.0 && !(y[o] > 0.0))
                return mn_fail(err, MN_ESPEC,
                               "crossentropy needs outputs above 0 where the target is not 0 "
                               "(output %d is %g)", o, y[o]);
            total -= t[o] != 0.0 ? t[o] * log(y[o]) : 0.0;
            da[o] = t[o] != 0.0 ? -t[o] / y[o] : 0.0;
        }
    }
    *loss = total;
    for (int li = net->n_layers - 1; li >= 0; li--) {
        BpLayer *l = &net->layers[li];
        if (l->act == BP_SOFTMAX) { /* Jacobian-vector product: dz = a (da - a.da) */
            double dot = 0.0;
            for (int o = 0; o < l->out; o++)
                dot += da[o] * l->a[o];
            for (int o = 0; o < l->out; o++)
                dz[o] = l->a[o] * (da[o] - dot);
        } else {
            for (int o = 0; o < l->out; o++)
                dz[o] = da[o] * derivative(l->act, l->z[o], l->a[o]);
        }
        const double *a_in = li ? net->layers[li - 1].a : net->x;
        for (int o = 0; o < l->out; o++) {
            l->db[o] = dz[o];
            for (int i = 0; i < l->in; i++)
                l->dw[(size_t)o * l->in + i] = dz[o] * a_in[i];
        }
        for (int i = 0; i < l->in; i++) {
            double s = 0.0;
            for (int o = 0; o < l->out; o++)
                s += l->w[(size_t)o * l->in + i] * dz[o];
            da[i] = s;
        }
    }
    return 0;
}

static cJSON *vector_json(const double *v, int n)
{
    return cJSON_CreateDoubleArray(v, n);
}

static char *result_json(const BpNet *net, double loss)
{
    cJSON *o = cJSON_CreateObject();
    const BpLayer *last = &net->layers[net->n_layers - 1];
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON_AddItemToObject(o, "output", vector_json(last->a, last->out));
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int li = 0; li < net->n_layers; li++) {
        const BpLayer *l = &net->layers[li];
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddItemToObject(lo, "z", vector_json(l->z, l->out));
        cJSON_AddItemToObject(lo, "a", vector_json(l->a, l->out));
        cJSON *dw = cJSON_AddArrayToObject(lo, "d_weights");
        for (int r = 0; r < l->out; r++)
            cJSON_AddItemToArray(dw, vector_json(l->dw + (size_t)r * l->in, l->in));
        cJSON_AddItemToObject(lo, "d_biases", vector_json(l->db, l->out));
        cJSON_AddItemToArray(layers, lo);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int backprop_run_json(const char *json, size_t len, char **out_json, MnError *err)
{
    *out_json = NULL;
    cJSON *root = json_parse_strict(json, len, "backprop input", err);
    if (!root)
        return MN_EINVAL;
    BpNet *net = calloc(1, sizeof *net);
    if (!net) {
        cJSON_Delete(root);
        return mn_fail(err, MN_ENOMEM, "out of memory");
    }
    double loss = 0.0;
    int rc = parse_net(root, net, err);
    cJSON_Delete(root);
    if (rc == 0)
        rc = forward_backward(net, &loss, err);
    if (rc == 0 && !(*out_json = result_json(net, loss)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    free(net);
    return rc;
}
