/* spec.c - JSON training spec <-> ModelSpec. Strict by design: every key is
 * known, every number finite and in range, integers are integers, and the
 * message names the key path ("layers[2].kernel_size"). Shapes are checked
 * later by model_build, which knows the input. */
#include "spec.h"

#include "json.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void spec_limits_default(SpecLimits *lim)
{
    lim->max_params = 10 * 1000 * 1000;
    lim->max_epochs = 1000;
    lim->max_batch_size = 4096;
}

static const char *const loss_names[] = {[LOSS_CROSSENTROPY] = "categorical_crossentropy",
                                         [LOSS_MSE] = "mean_squared_error"};
static const char *const image_pre_names[] = {
    [IMAGE_PRE_DIGIT] = "digit", [IMAGE_PRE_FRAME] = "frame", [IMAGE_PRE_NONE] = "none"};

const char *loss_name(LossType loss) { return loss_names[loss]; }
const char *image_preprocess_name(ImagePreprocess p) { return image_pre_names[p]; }

int image_preprocess_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(image_pre_names[i], name) == 0)
            return i;
    return -1;
}

/* --- strict field readers: each names the key path in its error --- */

static const cJSON *field(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int number_value(const cJSON *v, const char *path, double min, double max, double *out,
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

static int int_value(const cJSON *v, const char *path, long long min, long long max,
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

static int opt_int(const cJSON *obj, const char *key, const char *where, long long min,
                   long long max, int *out, MnError *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", where, *where ? "." : "", key);
    long long x = 0;
    int rc = int_value(v, path, min, max, &x, err);
    if (rc == 0)
        *out = (int)x;
    return rc;
}

static int opt_float(const cJSON *obj, const char *key, const char *where, double min, double max,
                     float *out, MnError *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", where, *where ? "." : "", key);
    double x = 0.0;
    int rc = number_value(v, path, min, max, &x, err);
    if (rc == 0)
        *out = (float)x;
    return rc;
}

static int opt_bool(const cJSON *obj, const char *key, const char *where, bool *out, MnError *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return mn_fail(err, MN_EINVAL, "%s%s%s must be true or false", where, *where ? "." : "",
                       key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A string field matched against a table of names; writes the index. */
static int opt_choice(const cJSON *obj, const char *key, const char *where,
                      const char *const *names, const int *values, int *out, MnError *err)
{
    const cJSON *v = field(obj, key);
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

/* A name safe for a directory: letters, digits, '-', '_', '.', not starting with '.'. */
static int name_value(const cJSON *v, const char *path, char *out, MnError *err)
{
    if (!cJSON_IsString(v))
        return mn_fail(err, MN_EINVAL, "%s must be a string", path);
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n == 0 || n >= SPEC_NAME_MAX)
        return mn_fail(err, MN_EINVAL, "%s must be 1 to %d characters", path, SPEC_NAME_MAX - 1);
    if (s[0] == '.')
        return mn_fail(err, MN_EINVAL, "%s must not start with '.'", path);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return mn_fail(err, MN_EINVAL,
                           "%s: character '%c' not allowed (letters, digits, '-', '_', '.')",
                           path, isprint((unsigned char)s[i]) ? s[i] : '?');
    memcpy(out, s, n + 1);
    return 0;
}

/* kernel_size, strides, pool_size: an integer or a pair [h, w], as in Keras. */
static int opt_pair(const cJSON *obj, const char *key, const char *where, int max, int *h, int *w,
                    MnError *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s.%s", where, key);
    long long a = 0, b = 0;
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2)
            return mn_fail(err, MN_EINVAL, "%s must be an integer or a pair [h, w]", path);
        int rc = int_value(v->child, path, 1, max, &a, err);
        if (rc == 0)
            rc = int_value(v->child->next, path, 1, max, &b, err);
        if (rc)
            return rc;
    } else {
        int rc = int_value(v, path, 1, max, &a, err);
        if (rc)
            return rc;
        b = a;
    }
    *h = (int)a;
    *w = (int)b;
    return 0;
}

static int padding_value(const cJSON *obj, const char *where, bool *same, MnError *err)
{
    static const char *const names[] = {"valid", "same", NULL};
    static const int values[] = {0, 1};
    int v = *same;
    int rc = opt_choice(obj, "padding", where, names, values, &v, err);
    *same = v;
    return rc;
}

static int activation_value(const cJSON *obj, const char *where, Activation *act, MnError *err)
{
    static const char *const names[] = {"linear", "relu", "sigmoid", "tanh", "softmax", NULL};
    static const int values[] = {ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX};
    int v = ACT_LINEAR;
    const cJSON *a = field(obj, "activation");
    if (a && cJSON_IsNull(a))
        a = NULL; /* Keras's activation=None */
    if (!a) {
        *act = ACT_LINEAR;
        return 0;
    }
    int rc = opt_choice(obj, "activation", where, names, values, &v, err);
    *act = (Activation)v;
    return rc;
}

/* Keras class names and snake_case names both work: "Dense", "MaxPooling2D". */
static int layer_type_value(const cJSON *v, const char *where, MnError *err)
{
    static const struct {
        const char *alias;
        LayerType type;
    } aliases[] = {
        {"Dense", LAYER_DENSE},       {"Conv2D", LAYER_CONV2D},           {"conv2D", LAYER_CONV2D},
        {"MaxPooling2D", LAYER_MAXPOOL2D}, {"max_pooling2d", LAYER_MAXPOOL2D},
        {"MaxPool2D", LAYER_MAXPOOL2D}, {"Flatten", LAYER_FLATTEN},     {"Dropout", LAYER_DROPOUT},
    };
    if (!cJSON_IsString(v))
        return mn_fail(err, MN_EINVAL, "%s.type must be a string", where);
    int t = layer_type_from_name(v->valuestring);
    for (size_t i = 0; t < 0 && i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(aliases[i].alias, v->valuestring) == 0)
            t = aliases[i].type;
    if (t < 0)
        return mn_fail(err, MN_ESPEC,
                       "%s: unknown layer type \"%.40s\" (known: dense, conv2d, maxpool2d, "
                       "flatten, dropout)",
                       where, v->valuestring);
    return t;
}

#define KERNEL_MAX 64

static int parse_layer(const cJSON *obj, int index, Layer *l, MnError *err)
{
    char where[32];
    snprintf(where, sizeof where, "layers[%d]", index);
    if (!cJSON_IsObject(obj))
        return mn_fail(err, MN_EINVAL, "%s must be an object", where);
    const cJSON *type = field(obj, "type");
    if (!type)
        return mn_fail(err, MN_EINVAL, "%s: missing key \"type\"", where);
    int t = layer_type_value(type, where, err);
    if (t < 0)
        return t;
    memset(l, 0, sizeof *l);
    l->type = (LayerType)t;
    int rc = 0;
    switch (l->type) {
    case LAYER_DENSE: {
        static const char *const keys[] = {"type", "name", "units", "activation", NULL};
        if ((rc = json_check_keys(obj, where, keys, err)))
            return rc;
        if (!field(obj, "units"))
            return mn_fail(err, MN_EINVAL, "%s (dense): missing key \"units\"", where);
        if ((rc = opt_int(obj, "units", where, 1, 1 << 24, &l->cfg.dense.units, err)))
            return rc;
        return activation_value(obj, where, &l->act, err);
    }
    case LAYER_CONV2D: {
        static const char *const keys[] = {"type",    "name",    "filters",    "kernel_size",
                                           "strides", "padding", "activation", NULL};
        if ((rc = json_check_keys(obj, where, keys, err)))
            return rc;
        if (!field(obj, "filters") || !field(obj, "kernel_size"))
            return mn_fail(err, MN_EINVAL, "%s (conv2d): needs \"filters\" and \"kernel_size\"",
                           where);
        Window *w = &l->cfg.conv.win;
        w->sh = w->sw = 1;
        if ((rc = opt_int(obj, "filters", where, 1, 1 << 16, &l->cfg.conv.filters, err)) ||
            (rc = opt_pair(obj, "kernel_size", where, KERNEL_MAX, &w->kh, &w->kw, err)) ||
            (rc = opt_pair(obj, "strides", where, KERNEL_MAX, &w->sh, &w->sw, err)) ||
            (rc = padding_value(obj, where, &w->same, err)))
            return rc;
        return activation_value(obj, where, &l->act, err);
    }
    case LAYER_MAXPOOL2D: {
        static const char *const keys[] = {"type", "name", "pool_size", "strides", "padding", NULL};
        if ((rc = json_check_keys(obj, where, keys, err)))
            return rc;
        Window *w = &l->cfg.pool;
        w->kh = w->kw = 2;
        if ((rc = opt_pair(obj, "pool_size", where, KERNEL_MAX, &w->kh, &w->kw, err)))
            return rc;
        w->sh = w->kh; /* Keras: strides default to pool_size */
        w->sw = w->kw;
        if ((rc = opt_pair(obj, "strides", where, KERNEL_MAX, &w->sh, &w->sw, err)) ||
            (rc = padding_value(obj, where, &w->same, err)))
            return rc;
        return 0;
    }
    case LAYER_FLATTEN: {
        static const char *const keys[] = {"type", "name", NULL};
        return json_check_keys(obj, where, keys, err);
    }
    case LAYER_DROPOUT: {
        static const char *const keys[] = {"type", "name", "rate", NULL};
        if ((rc = json_check_keys(obj, where, keys, err)))
            return rc;
        if (!field(obj, "rate"))
            return mn_fail(err, MN_EINVAL, "%s (dropout): missing key \"rate\"", where);
        return opt_float(obj, "rate", where, 0.0, 0.99, &l->cfg.dropout.rate, err);
    }
    case LAYER_TYPE_COUNT:
        break;
    }
    return mn_fail(err, MN_ESPEC, "%s: unsupported layer", where);
}

static int parse_optimizer(const cJSON *v, OptimConfig *o, MnError *err)
{
    static const char *const names[] = {"adam", "sgd", "Adam", "SGD", NULL};
    static const int values[] = {OPT_ADAM, OPT_SGD, OPT_ADAM, OPT_SGD};
    static const char *const keys[] = {"type",   "learning_rate", "momentum", "nesterov",
                                       "beta_1", "beta_2",        "epsilon",  NULL};
    int type = OPT_ADAM, rc;
    if (cJSON_IsString(v)) { /* optimizer="adam", as model.compile allows */
        cJSON *wrap = cJSON_CreateObject();
        if (!wrap)
            return mn_fail(err, MN_ENOMEM, "out of memory");
        cJSON_AddItemToObject(wrap, "type", cJSON_CreateString(v->valuestring));
        rc = opt_choice(wrap, "type", "optimizer", names, values, &type, err);
        cJSON_Delete(wrap);
    } else if (cJSON_IsObject(v)) {
        if ((rc = json_check_keys(v, "optimizer", keys, err)))
            return rc;
        if (!field(v, "type"))
            return mn_fail(err, MN_EINVAL, "optimizer: missing key \"type\"");
        rc = opt_choice(v, "type", "optimizer", names, values, &type, err);
    } else {
        return mn_fail(err, MN_EINVAL, "optimizer must be a string or an object");
    }
    if (rc)
        return rc;
    /* Keras defaults: SGD(0.01), Adam(0.001, 0.9, 0.999, 1e-7). */
    o->type = (OptimType)type;
    o->learning_rate = type == OPT_SGD ? 0.01f : 0.001f;
    o->momentum = 0.0f;
    o->nesterov = false;
    o->beta_1 = 0.9f;
    o->beta_2 = 0.999f;
    o->epsilon = 1e-7f;
    if (!cJSON_IsObject(v))
        return 0;
    if ((rc = opt_float(v, "learning_rate", "optimizer", 1e-12, 100.0, &o->learning_rate, err)))
        return rc;
    if (o->type == OPT_SGD) {
        if (field(v, "beta_1") || field(v, "beta_2") || field(v, "epsilon"))
            return mn_fail(err, MN_EINVAL, "optimizer: beta_1, beta_2 and epsilon belong to adam");
        if ((rc = opt_float(v, "momentum", "optimizer", 0.0, 0.999999, &o->momentum, err)) ||
            (rc = opt_bool(v, "nesterov", "optimizer", &o->nesterov, err)))
            return rc;
    } else {
        if (field(v, "momentum") || field(v, "nesterov"))
            return mn_fail(err, MN_EINVAL, "optimizer: momentum and nesterov belong to sgd");
        if ((rc = opt_float(v, "beta_1", "optimizer", 0.0, 0.999999, &o->beta_1, err)) ||
            (rc = opt_float(v, "beta_2", "optimizer", 0.0, 0.999999999, &o->beta_2, err)) ||
            (rc = opt_float(v, "epsilon", "optimizer", 1e-12, 1.0, &o->epsilon, err)))
            return rc;
    }
    return 0;
}

static int parse_early_stopping(const cJSON *v, EarlyStopping *es, MnError *err)
{
    static const char *const keys[] = {"monitor",      "patience",             "min_delta",
                                       "restore_best", "restore_best_weights", NULL};
    static const char *const monitors[] = {"val_loss", "val_accuracy", "loss", "accuracy", NULL};
    static const int monitor_values[] = {0, 1, 2, 3};
    int rc;
    memset(es, 0, sizeof *es);
    if (cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (!cJSON_IsObject(v))
        return mn_fail(err, MN_EINVAL, "early_stopping must be an object or null");
    if ((rc = json_check_keys(v, "early_stopping", keys, err)))
        return rc;
    if (field(v, "restore_best") && field(v, "restore_best_weights"))
        return mn_fail(err, MN_EINVAL,
                       "early_stopping: give restore_best or restore_best_weights, not both");
    int monitor = 0;
    if ((rc = opt_choice(v, "monitor", "early_stopping", monitors, monitor_values, &monitor,
                         err)) ||
        (rc = opt_int(v, "patience", "early_stopping", 0, 10000, &es->patience, err)) ||
        (rc = opt_float(v, "min_delta", "early_stopping", 0.0, 1e6, &es->min_delta, err)) ||
        (rc = opt_bool(v, "restore_best", "early_stopping", &es->restore_best, err)) ||
        (rc = opt_bool(v, "restore_best_weights", "early_stopping", &es->restore_best, err)))
        return rc;
    es->enabled = true;
    es->monitor_accuracy = monitor == 1 || monitor == 3;
    es->monitor_validation = monitor < 2;
    return 0;
}

static int parse_grid(const cJSON *g, ModelSpec *s, MnError *err)
{
    static const char *const keys[] = {"learning_rate", "activation", NULL};
    int rc;
    if (!cJSON_IsObject(g))
        return mn_fail(err, MN_EINVAL, "grid must be an object");
    if ((rc = json_check_keys(g, "grid", keys, err)))
        return rc;
    const cJSON *rates = field(g, "learning_rate"), *acts = field(g, "activation");
    if ((rates && (!cJSON_IsArray(rates) || cJSON_GetArraySize(rates) < 1)) ||
        (acts && (!cJSON_IsArray(acts) || cJSON_GetArraySize(acts) < 1)))
        return mn_fail(err, MN_EINVAL, "grid.learning_rate and grid.activation must be non-empty arrays");
    if (cJSON_GetArraySize(rates) > SPEC_GRID_MAX || cJSON_GetArraySize(acts) > SPEC_GRID_MAX)
        return mn_fail(err, MN_ELIMIT, "grid: at most %d values per key", SPEC_GRID_MAX);
    for (const cJSON *it = rates ? rates->child : NULL; it; it = it->next) {
        double v = 0.0;
        if ((rc = number_value(it, "grid.learning_rate[]", 1e-12, 100.0, &v, err)))
            return rc;
        s->grid_rate[s->grid_rates++] = (float)v;
    }
    for (const cJSON *it = acts ? acts->child : NULL; it; it = it->next) {
        int a = cJSON_IsString(it) ? activation_from_name(it->valuestring) : -1;
        if (a < 0)
            return mn_fail(err, MN_EINVAL,
                           "grid.activation[] must be relu, sigmoid, tanh, softmax or linear");
        s->grid_activation[s->grid_activations++] = (Activation)a;
    }
    return 0;
}

int spec_grid_size(const ModelSpec *s)
{
    return (s->grid_rates ? s->grid_rates : 1) * (s->grid_activations ? s->grid_activations : 1);
}

void spec_grid_trial(const ModelSpec *s, int t, ModelSpec *out)
{
    *out = *s;
    int n_rates = s->grid_rates ? s->grid_rates : 1;
    if (s->grid_rates)
        out->optim.learning_rate = s->grid_rate[t % n_rates];
    if (s->grid_activations) {
        Activation a = s->grid_activation[t / n_rates];
        for (int i = 0; i + 1 < out->n_layers; i++)
            if (out->layers[i].type == LAYER_DENSE || out->layers[i].type == LAYER_CONV2D)
                out->layers[i].act = a;
    }
    out->grid_rates = out->grid_activations = 0;
}

int spec_from_json(const cJSON *root, const SpecLimits *lim, ModelSpec *s, MnError *err)
{
    static const char *const keys[] = {
        "name",   "dataset",          "input_shape",     "layers",         "loss",
        "optimizer", "epochs",        "batch_size",      "validation_split", "validation_data",
        "shuffle", "early_stopping",  "preprocess",      "image_preprocess", "seed",
        "metrics", "grid", NULL};
    int rc;
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(root))
        return mn_fail(err, MN_EINVAL, "the spec must be a JSON object");
    if ((rc = json_check_keys(root, "", keys, err)))
        return rc;
    if (!field(root, "name") || !field(root, "layers"))
        return mn_fail(err, MN_EINVAL, "the spec needs \"name\" and \"layers\"");
    if ((rc = name_value(field(root, "name"), "name", s->name, err)))
        return rc;
    strcpy(s->dataset, "mnist");
    if (field(root, "dataset") &&
        (rc = name_value(field(root, "dataset"), "dataset", s->dataset, err)))
        return rc;

    s->input = shape_make(28, 28, 1);
    const cJSON *shape = field(root, "input_shape");
    if (shape) {
        if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 3)
            return mn_fail(err, MN_EINVAL, "input_shape must be [height, width, channels]");
        long long d[3];
        int i = 0;
        for (const cJSON *it = shape->child; it; it = it->next, i++)
            if ((rc = int_value(it, "input_shape", 1, 4096, &d[i], err)))
                return rc;
        s->input = shape_make((int)d[0], (int)d[1], (int)d[2]);
    }

    const cJSON *layers = field(root, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return mn_fail(err, MN_EINVAL, "layers must be a non-empty array");
    if (cJSON_GetArraySize(layers) > SPEC_MAX_LAYERS)
        return mn_fail(err, MN_ELIMIT, "layers: %d layers, over the limit of %d",
                       cJSON_GetArraySize(layers), SPEC_MAX_LAYERS);
    for (const cJSON *it = layers->child; it; it = it->next, s->n_layers++)
        if ((rc = parse_layer(it, s->n_layers, &s->layers[s->n_layers], err)))
            return rc;

    static const char *const losses[] = {"categorical_crossentropy",
                                         "sparse_categorical_crossentropy", "mean_squared_error",
                                         "mse", NULL};
    static const int loss_values[] = {LOSS_CROSSENTROPY, LOSS_CROSSENTROPY, LOSS_MSE, LOSS_MSE};
    int loss = LOSS_CROSSENTROPY;
    if ((rc = opt_choice(root, "loss", "", losses, loss_values, &loss, err)))
        return rc;
    s->loss = (LossType)loss;

    cJSON *adam = NULL;
    const cJSON *opt = field(root, "optimizer");
    if (!opt)
        opt = adam = cJSON_CreateString("adam");
    rc = parse_optimizer(opt, &s->optim, err);
    cJSON_Delete(adam);
    if (rc)
        return rc;

    s->epochs = 10;
    s->batch_size = 32;
    s->shuffle = true;
    s->seed = 1151998; /* the seed notebooks' np.random.seed */
    long long seed;
    if ((rc = opt_int(root, "epochs", "", 1, lim->max_epochs, &s->epochs, err)) ||
        (rc = opt_int(root, "batch_size", "", 1, lim->max_batch_size, &s->batch_size, err)) ||
        (rc = opt_float(root, "validation_split", "", 0.0, 0.9, &s->validation_split, err)) ||
        (rc = opt_bool(root, "shuffle", "", &s->shuffle, err)))
        return rc;
    if (field(root, "seed")) {
        if ((rc = int_value(field(root, "seed"), "seed", 0, SPEC_MAX_SEED, &seed, err)))
            return rc;
        s->seed = (uint64_t)seed;
    }
    static const char *const val_data[] = {"test", NULL};
    static const int val_values[] = {1};
    int on_test = 0;
    if ((rc = opt_choice(root, "validation_data", "", val_data, val_values, &on_test, err)))
        return rc;
    s->validate_on_test = on_test;
    if (s->validate_on_test && s->validation_split > 0.0f)
        return mn_fail(err, MN_EINVAL, "give validation_split or validation_data, not both");

    if (field(root, "early_stopping") &&
        (rc = parse_early_stopping(field(root, "early_stopping"), &s->early_stopping, err)))
        return rc;
    if (s->early_stopping.enabled && s->early_stopping.monitor_validation &&
        s->validation_split == 0.0f && !s->validate_on_test)
        return mn_fail(err, MN_EINVAL,
                       "early_stopping monitors a val_ metric but there is no validation data: "
                       "set validation_split or \"validation_data\": \"test\"");

    static const char *const pre[] = {"scale", "standardize", NULL};
    static const int pre_values[] = {INPUT_SCALE, INPUT_STANDARDIZE};
    int p = INPUT_SCALE;
    if ((rc = opt_choice(root, "preprocess", "", pre, pre_values, &p, err)))
        return rc;
    s->preprocess = (InputPreprocess)p;
    static const char *const img[] = {"digit", "frame", "none", NULL};
    static const int img_values[] = {IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME, IMAGE_PRE_NONE};
    int ip = IMAGE_PRE_DIGIT;
    if (field(root, "image_preprocess")) {
        if ((rc = opt_choice(root, "image_preprocess", "", img, img_values, &ip, err)))
            return rc;
        s->image_preprocess_set = true;
    }
    s->image_preprocess = (ImagePreprocess)ip;

    if (field(root, "grid") && (rc = parse_grid(field(root, "grid"), s, err)))
        return rc;

    const cJSON *metrics = field(root, "metrics"); /* Keras habit: only accuracy is offered */
    if (metrics) {
        if (!cJSON_IsArray(metrics))
            return mn_fail(err, MN_EINVAL, "metrics must be an array");
        for (const cJSON *it = metrics->child; it; it = it->next)
            if (!cJSON_IsString(it) ||
                (strcmp(it->valuestring, "accuracy") && strcmp(it->valuestring, "acc")))
                return mn_fail(err, MN_EINVAL, "metrics: only \"accuracy\" is supported");
    }
    return 0;
}

int spec_parse(const char *json, size_t len, const SpecLimits *lim, ModelSpec *out, MnError *err)
{
    cJSON *root = json_parse_strict(json, len, "spec", err);
    if (!root)
        return MN_EINVAL;
    int rc = spec_from_json(root, lim, out, err);
    cJSON_Delete(root);
    return rc;
}

int spec_load_file(const char *path, const SpecLimits *lim, ModelSpec *out, MnError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mn_fail(err, MN_ENOTFOUND, "%s: cannot open", path);
    enum { SPEC_MAX_BYTES = 1 << 20 };
    char *buf = malloc(SPEC_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return mn_fail(err, MN_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, SPEC_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad)
        rc = mn_fail(err, MN_EIO, "%s: read error", path);
    else if (n > SPEC_MAX_BYTES)
        rc = mn_fail(err, MN_ELIMIT, "%s: larger than %d bytes", path, SPEC_MAX_BYTES);
    else if ((rc = spec_parse(buf, n, lim, out, err)))
        mn_wrap(err, "%s", path);
    free(buf);
    return rc;
}

static cJSON *pair_json(int h, int w)
{
    int v[2] = {h, w};
    return cJSON_CreateIntArray(v, 2);
}

static cJSON *layer_to_json(const Layer *l)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", layer_ops(l->type)->name);
    switch (l->type) {
    case LAYER_DENSE:
        cJSON_AddNumberToObject(o, "units", l->cfg.dense.units);
        cJSON_AddStringToObject(o, "activation", activation_name(l->act));
        break;
    case LAYER_CONV2D: {
        const Window *w = &l->cfg.conv.win;
        cJSON_AddNumberToObject(o, "filters", l->cfg.conv.filters);
        cJSON_AddItemToObject(o, "kernel_size", pair_json(w->kh, w->kw));
        cJSON_AddItemToObject(o, "strides", pair_json(w->sh, w->sw));
        cJSON_AddStringToObject(o, "padding", w->same ? "same" : "valid");
        cJSON_AddStringToObject(o, "activation", activation_name(l->act));
        break;
    }
    case LAYER_MAXPOOL2D: {
        const Window *w = &l->cfg.pool;
        cJSON_AddItemToObject(o, "pool_size", pair_json(w->kh, w->kw));
        cJSON_AddItemToObject(o, "strides", pair_json(w->sh, w->sw));
        cJSON_AddStringToObject(o, "padding", w->same ? "same" : "valid");
        break;
    }
    case LAYER_DROPOUT:
        cJSON_AddNumberToObject(o, "rate", l->cfg.dropout.rate);
        break;
    case LAYER_FLATTEN:
    case LAYER_TYPE_COUNT:
        break;
    }
    return o;
}

cJSON *spec_to_json(const ModelSpec *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddStringToObject(o, "dataset", s->dataset);
    int shape[3] = {s->input.h, s->input.w, s->input.c};
    cJSON_AddItemToObject(o, "input_shape", cJSON_CreateIntArray(shape, 3));
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < s->n_layers; i++)
        cJSON_AddItemToArray(layers, layer_to_json(&s->layers[i]));
    cJSON_AddStringToObject(o, "loss", loss_name(s->loss));
    cJSON *opt = cJSON_AddObjectToObject(o, "optimizer");
    cJSON_AddStringToObject(opt, "type", s->optim.type == OPT_ADAM ? "adam" : "sgd");
    cJSON_AddNumberToObject(opt, "learning_rate", s->optim.learning_rate);
    if (s->optim.type == OPT_SGD) {
        cJSON_AddNumberToObject(opt, "momentum", s->optim.momentum);
        cJSON_AddBoolToObject(opt, "nesterov", s->optim.nesterov);
    } else {
        cJSON_AddNumberToObject(opt, "beta_1", s->optim.beta_1);
        cJSON_AddNumberToObject(opt, "beta_2", s->optim.beta_2);
        cJSON_AddNumberToObject(opt, "epsilon", s->optim.epsilon);
    }
    cJSON_AddNumberToObject(o, "epochs", s->epochs);
    cJSON_AddNumberToObject(o, "batch_size", s->batch_size);
    cJSON_AddNumberToObject(o, "validation_split", s->validation_split);
    if (s->validate_on_test)
        cJSON_AddStringToObject(o, "validation_data", "test");
    cJSON_AddBoolToObject(o, "shuffle", s->shuffle);
    if (s->early_stopping.enabled) {
        const EarlyStopping *es = &s->early_stopping;
        cJSON *e = cJSON_AddObjectToObject(o, "early_stopping");
        cJSON_AddStringToObject(e, "monitor",
                                es->monitor_validation
                                    ? (es->monitor_accuracy ? "val_accuracy" : "val_loss")
                                    : (es->monitor_accuracy ? "accuracy" : "loss"));
        cJSON_AddNumberToObject(e, "patience", es->patience);
        cJSON_AddNumberToObject(e, "min_delta", es->min_delta);
        cJSON_AddBoolToObject(e, "restore_best", es->restore_best);
    }
    cJSON_AddStringToObject(o, "preprocess",
                            s->preprocess == INPUT_STANDARDIZE ? "standardize" : "scale");
    if (s->image_preprocess_set)
        cJSON_AddStringToObject(o, "image_preprocess", image_preprocess_name(s->image_preprocess));
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    if (s->grid_rates || s->grid_activations) {
        cJSON *g = cJSON_AddObjectToObject(o, "grid");
        if (s->grid_rates)
            cJSON_AddItemToObject(g, "learning_rate", cJSON_CreateFloatArray(s->grid_rate, s->grid_rates));
        if (s->grid_activations) {
            cJSON *acts = cJSON_AddArrayToObject(g, "activation");
            for (int i = 0; i < s->grid_activations; i++)
                cJSON_AddItemToArray(acts, cJSON_CreateString(activation_name(s->grid_activation[i])));
        }
    }
    return o;
}
