/* spec.c - JSON training spec <-> ModelSpec. Strict by design: every key is
 * known, every number finite and in range, integers are integers, and the
 * message names the key path ("layers[2].kernel_size"). Shapes are checked
 * later by model_build, which knows the input. */
#include "spec.h"

#include "json.h"
#include "spec_read.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
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

/* The strict field readers are in spec_read.c. */

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

/* Keras class names and snake_case names both work: "Dense", "MaxPooling2D". */
static int layer_type_value(const cJSON *v, const char *where, MnError *err)
{
    if (!cJSON_IsString(v))
        return mn_fail(err, MN_EINVAL, "%s.type must be a string", where);
    int t = layer_type_from_name(v->valuestring);
    if (t < 0) {
        char known[256];
        layer_type_names(known, sizeof known);
        return mn_fail(err, MN_ESPEC, "%s: unknown layer type \"%.40s\" (known: %s)", where,
                       v->valuestring, known);
    }
    return t;
}

/* The keys every layer may have, then its type's own. */
static int check_layer_keys(const cJSON *obj, const char *where, const LayerOps *ops,
                            MnError *err)
{
    static const char *const common[] = {"type", "name", "inputs"};
    enum { N_COMMON = sizeof common / sizeof *common, MAX_KEYS = 32 };
    const char *allowed[MAX_KEYS + 1];
    size_t n = 0;
    for (; n < N_COMMON; n++)
        allowed[n] = common[n];
    for (const char *const *k = ops->keys; k && *k && n < MAX_KEYS; k++)
        allowed[n++] = *k;
    allowed[n] = NULL;
    return json_check_keys(obj, where, allowed, err);
}

static int parse_layer(const cJSON *obj, int index, Layer *l, MnError *err)
{
    char where[32];
    snprintf(where, sizeof where, "layers[%d]", index);
    if (!cJSON_IsObject(obj))
        return mn_fail(err, MN_EINVAL, "%s must be an object", where);
    const cJSON *type = spec_field(obj, "type");
    if (!type)
        return mn_fail(err, MN_EINVAL, "%s: missing key \"type\"", where);
    int t = layer_type_value(type, where, err);
    if (t < 0)
        return t;
    memset(l, 0, sizeof *l);
    l->type = (LayerType)t;
    const LayerOps *ops = layer_ops(l->type);
    int rc = check_layer_keys(obj, where, ops, err);
    if (rc == 0 && spec_field(obj, "name")) {
        char path[48];
        snprintf(path, sizeof path, "%s.name", where);
        rc = name_value(spec_field(obj, "name"), path, l->name, err);
        l->named = true;
    }
    if (rc == 0 && ops->parse)
        rc = ops->parse(l, obj, where, err);
    return rc;
}

/* --- the graph: names, inputs, and what may connect to what --- */

__attribute__((format(printf, 5, 6)))
static int graph_fail(const ModelSpec *s, int i, int code, MnError *err, const char *fmt, ...)
{
    char label[LAYER_NAME_MAX + 48], what[200];
    const Layer *l = &s->layers[i];
    snprintf(label, sizeof label, "layer %d (%s, \"%s\")", i, layer_ops(l->type)->name, l->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mn_fail(err, code, "%s: %s", label, what);
}

/* Keras's names for the layers the spec leaves unnamed: the type's name,
 * then _1, _2, ... as more of the type come; no two layers share one. */
static int name_layers(ModelSpec *s, MnError *err)
{
    int counts[LAYER_TYPE_COUNT] = {0};
    for (int i = 0; i < s->n_layers; i++) {
        Layer *l = &s->layers[i];
        if (l->named)
            continue;
        const char *base = layer_ops(l->type)->keras_name;
        int k = counts[l->type]++;
        if (k)
            snprintf(l->name, sizeof l->name, "%s_%d", base, k);
        else
            snprintf(l->name, sizeof l->name, "%s", base);
    }
    for (int i = 0; i < s->n_layers; i++) {
        if (strcmp(s->layers[i].name, LAYER_INPUT_NAME) == 0)
            return graph_fail(s, i, MN_ESPEC, err, "\"%s\" is the model's input: choose another name",
                              LAYER_INPUT_NAME);
        for (int j = 0; j < i; j++)
            if (strcmp(s->layers[i].name, s->layers[j].name) == 0)
                return graph_fail(s, i, MN_ESPEC, err, "its name is also layer %d's", j);
    }
    return 0;
}

/* The index of the layer called name, or -2 (not LAYER_INPUT_MODEL) when none is. */
static int find_layer(const ModelSpec *s, const char *name)
{
    for (int j = 0; j < s->n_layers; j++)
        if (strcmp(s->layers[j].name, name) == 0)
            return j;
    return -2;
}

static int resolve_input(ModelSpec *s, int i, const cJSON *v, int *out, MnError *err)
{
    if (!cJSON_IsString(v))
        return graph_fail(s, i, MN_EINVAL, err, "inputs must be a list of layer names");
    const char *name = v->valuestring;
    if (strcmp(name, LAYER_INPUT_NAME) == 0) {
        *out = LAYER_INPUT_MODEL;
        return 0;
    }
    int j = find_layer(s, name);
    if (j == i)
        return graph_fail(s, i, MN_ESPEC, err, "input \"%.64s\" is the layer itself", name);
    if (j > i)
        return graph_fail(s, i, MN_ESPEC, err,
                          "input \"%.64s\" comes after it: a layer reads only layers before it",
                          name);
    if (j < 0)
        return graph_fail(s, i, MN_ESPEC, err, "input \"%.64s\" is no layer's name", name);
    *out = j;
    return 0;
}

/* Each layer's inputs: the ones it names, or the layer before it. Every
 * layer but the last must feed another: the last is the model's output. */
static int connect_layers(const cJSON *layers, ModelSpec *s, MnError *err)
{
    int i = 0, rc;
    bool read[SPEC_MAX_LAYERS] = {false};
    for (const cJSON *it = layers->child; it; it = it->next, i++) {
        Layer *l = &s->layers[i];
        const LayerOps *ops = layer_ops(l->type);
        const cJSON *names = spec_field(it, "inputs");
        if (names) {
            int n = cJSON_IsArray(names) ? cJSON_GetArraySize(names) : 0;
            if (n < 1 || n > LAYER_MAX_INPUTS)
                return graph_fail(s, i, MN_EINVAL, err, "inputs must be a list of 1 to %d layer names",
                                  LAYER_MAX_INPUTS);
            l->n_inputs = 0;
            for (const cJSON *v = names->child; v; v = v->next)
                if ((rc = resolve_input(s, i, v, &l->inputs[l->n_inputs++], err)))
                    return rc;
            l->inputs_given = true;
        } else {
            l->n_inputs = 1;
            l->inputs[0] = i ? i - 1 : LAYER_INPUT_MODEL;
        }
        int lo = ops->min_inputs ? ops->min_inputs : 1, hi = ops->max_inputs ? ops->max_inputs : 1;
        if (l->n_inputs < lo || l->n_inputs > hi)
            return lo == hi ? graph_fail(s, i, MN_ESPEC, err, "takes %d input%s, got %d", lo,
                                         lo == 1 ? "" : "s", l->n_inputs)
                            : graph_fail(s, i, MN_ESPEC, err,
                                         "takes %d to %d inputs, got %d: name them with \"inputs\"",
                                         lo, hi, l->n_inputs);
        for (int k = 0; k < l->n_inputs; k++)
            if (l->inputs[k] >= 0)
                read[l->inputs[k]] = true;
    }
    for (int j = 0; j + 1 < s->n_layers; j++)
        if (!read[j])
            return graph_fail(s, j, MN_ESPEC, err,
                              "no layer reads its output: only the last layer's is the model's");
    return 0;
}

bool spec_is_chain(const ModelSpec *s)
{
    for (int i = 0; i < s->n_layers; i++) {
        const Layer *l = &s->layers[i];
        if (l->n_inputs != 1 || l->inputs[0] != (i ? i - 1 : LAYER_INPUT_MODEL))
            return false;
    }
    return true;
}

int spec_readers(const ModelSpec *s, int source)
{
    int n = 0;
    for (int i = 0; i < s->n_layers; i++)
        for (int k = 0; k < s->layers[i].n_inputs; k++)
            n += s->layers[i].inputs[k] == source;
    return n;
}

void spec_layer_label(const ModelSpec *s, int i, char *buf, size_t n)
{
    const Layer *l = &s->layers[i];
    if (l->named || !spec_is_chain(s))
        snprintf(buf, n, "layer %d (%s, \"%s\")", i, layer_ops(l->type)->name, l->name);
    else
        snprintf(buf, n, "layer %d (%s)", i, layer_ops(l->type)->name);
}

Shape spec_source_shape(const ModelSpec *s, int source)
{
    return source == LAYER_INPUT_MODEL ? s->input : s->layers[source].out;
}

const char *spec_source_name(const ModelSpec *s, int source)
{
    return source == LAYER_INPUT_MODEL ? LAYER_INPUT_NAME : s->layers[source].name;
}

static int parse_optimizer(const cJSON *v, OptimConfig *o, MnError *err)
{
    static const char *const names[] = {"adam", "sgd", "adamw", "Adam", "SGD", "AdamW", NULL};
    static const int values[] = {OPT_ADAM, OPT_SGD, OPT_ADAMW, OPT_ADAM, OPT_SGD, OPT_ADAMW};
    static const char *const keys[] = {"type",     "learning_rate",   "momentum",     "nesterov",
                                       "beta_1",   "beta_2",          "epsilon",      "weight_decay",
                                       "clipnorm", "global_clipnorm", NULL};
    int type = OPT_ADAM, rc;
    if (cJSON_IsString(v)) { /* optimizer="adam", as model.compile allows */
        cJSON *wrap = cJSON_CreateObject();
        if (!wrap)
            return mn_fail(err, MN_ENOMEM, "out of memory");
        cJSON_AddItemToObject(wrap, "type", cJSON_CreateString(v->valuestring));
        rc = spec_opt_choice(wrap, "type", "optimizer", names, values, &type, err);
        cJSON_Delete(wrap);
    } else if (cJSON_IsObject(v)) {
        if ((rc = json_check_keys(v, "optimizer", keys, err)))
            return rc;
        if (!spec_field(v, "type"))
            return mn_fail(err, MN_EINVAL, "optimizer: missing key \"type\"");
        rc = spec_opt_choice(v, "type", "optimizer", names, values, &type, err);
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
    memset(&o->schedule, 0, sizeof o->schedule);
    o->weight_decay = type == OPT_ADAMW ? 0.004f : 0.0f;
    o->clipnorm = o->global_clipnorm = 0.0f;
    if (!cJSON_IsObject(v))
        return 0;
    const cJSON *rate = spec_field(v, "learning_rate");
    if (cJSON_IsObject(rate)) {
        if ((rc = schedule_parse(rate, "optimizer.learning_rate", &o->schedule, err)))
            return rc;
        o->learning_rate = schedule_peak(&o->schedule);
    } else if ((rc = spec_opt_float(v, "learning_rate", "optimizer", 1e-12, 100.0,
                                    &o->learning_rate, err))) {
        return rc;
    }
    if ((rc = spec_opt_float(v, "weight_decay", "optimizer", 0.0, 1e3, &o->weight_decay, err)) ||
        (rc = spec_opt_float(v, "clipnorm", "optimizer", 0.0, 1e9, &o->clipnorm, err)) ||
        (rc = spec_opt_float(v, "global_clipnorm", "optimizer", 0.0, 1e9, &o->global_clipnorm, err)))
        return rc;
    if (o->clipnorm > 0.0f && o->global_clipnorm > 0.0f) /* as Keras refuses both */
        return mn_fail(err, MN_EINVAL, "optimizer: give clipnorm or global_clipnorm, not both");
    if (o->type == OPT_SGD) {
        if (spec_field(v, "beta_1") || spec_field(v, "beta_2") || spec_field(v, "epsilon"))
            return mn_fail(err, MN_EINVAL, "optimizer: beta_1, beta_2 and epsilon belong to adam");
        if ((rc = spec_opt_float(v, "momentum", "optimizer", 0.0, 0.999999, &o->momentum, err)) ||
            (rc = spec_opt_bool(v, "nesterov", "optimizer", &o->nesterov, err)))
            return rc;
    } else {
        if (spec_field(v, "momentum") || spec_field(v, "nesterov"))
            return mn_fail(err, MN_EINVAL, "optimizer: momentum and nesterov belong to sgd");
        if ((rc = spec_opt_float(v, "beta_1", "optimizer", 0.0, 0.999999, &o->beta_1, err)) ||
            (rc = spec_opt_float(v, "beta_2", "optimizer", 0.0, 0.999999999, &o->beta_2, err)) ||
            (rc = spec_opt_float(v, "epsilon", "optimizer", 1e-12, 1.0, &o->epsilon, err)))
            return rc;
    }
    return 0;
}

static int parse_early_stopping(const cJSON *v, EarlyStopping *es, MnError *err)
{
    static const char *const keys[] = {"monitor",      "patience",             "min_delta",
                                       "restore_best", "restore_best_weights", NULL};
    int rc;
    memset(es, 0, sizeof *es);
    if (cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (!cJSON_IsObject(v))
        return mn_fail(err, MN_EINVAL, "early_stopping must be an object or null");
    if ((rc = json_check_keys(v, "early_stopping", keys, err)))
        return rc;
    if (spec_field(v, "restore_best") && spec_field(v, "restore_best_weights"))
        return mn_fail(err, MN_EINVAL,
                       "early_stopping: give restore_best or restore_best_weights, not both");
    if ((rc = spec_monitor(v, "early_stopping", &es->monitor_accuracy, &es->monitor_validation,
                           err)) ||
        (rc = spec_opt_int(v, "patience", "early_stopping", 0, 10000, &es->patience, err)) ||
        (rc = spec_opt_float(v, "min_delta", "early_stopping", 0.0, 1e6, &es->min_delta, err)) ||
        (rc = spec_opt_bool(v, "restore_best", "early_stopping", &es->restore_best, err)) ||
        (rc = spec_opt_bool(v, "restore_best_weights", "early_stopping", &es->restore_best, err)))
        return rc;
    es->enabled = true;
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
    const cJSON *rates = spec_field(g, "learning_rate"), *acts = spec_field(g, "activation");
    if ((rates && (!cJSON_IsArray(rates) || cJSON_GetArraySize(rates) < 1)) ||
        (acts && (!cJSON_IsArray(acts) || cJSON_GetArraySize(acts) < 1)))
        return mn_fail(err, MN_EINVAL, "grid.learning_rate and grid.activation must be non-empty arrays");
    if (cJSON_GetArraySize(rates) > SPEC_GRID_MAX || cJSON_GetArraySize(acts) > SPEC_GRID_MAX)
        return mn_fail(err, MN_ELIMIT, "grid: at most %d values per key", SPEC_GRID_MAX);
    for (const cJSON *it = rates ? rates->child : NULL; it; it = it->next) {
        double v = 0.0;
        if ((rc = spec_number(it, "grid.learning_rate[]", 1e-12, 100.0, &v, err)))
            return rc;
        s->grid_rate[s->grid_rates++] = (float)v;
    }
    for (const cJSON *it = acts ? acts->child : NULL; it; it = it->next) {
        int a = cJSON_IsString(it) ? activation_from_name(it->valuestring) : -1;
        if (a < 0) {
            char known[256];
            activation_names_list(known, sizeof known);
            return mn_fail(err, MN_EINVAL, "grid.activation[] must be one of: %s, silu", known);
        }
        s->grid_activation[s->grid_activations++] = (Activation)a;
    }
    return 0;
}

Activation spec_hidden_activation(const ModelSpec *s)
{
    int i = 0; /* the first layer with an activation: flatten has none to show */
    while (i + 1 < s->n_layers && !layer_ops(s->layers[i].type)->takes_activation)
        i++;
    return s->layers[i].act;
}

int spec_grid_size(const ModelSpec *s)
{
    return (s->grid_rates ? s->grid_rates : 1) * (s->grid_activations ? s->grid_activations : 1);
}

void spec_grid_trial(const ModelSpec *s, int t, ModelSpec *out)
{
    *out = *s;
    int n_rates = s->grid_rates ? s->grid_rates : 1;
    if (s->grid_rates) { /* with a schedule, its peak rate (schedule_peak) */
        out->optim.learning_rate = s->grid_rate[t % n_rates];
        schedule_set_peak(&out->optim.schedule, out->optim.learning_rate);
    }
    if (s->grid_activations) {
        Activation a = s->grid_activation[t / n_rates];
        for (int i = 0; i + 1 < out->n_layers; i++)
            if (layer_ops(out->layers[i].type)->takes_activation)
                out->layers[i].act = a;
    }
    out->grid_rates = out->grid_activations = 0;
}

/* A callback that monitors a val_ metric needs validation data. */
static int check_validation(const ModelSpec *s, const char *key, bool monitors_val, MnError *err)
{
    if (monitors_val && s->validation_split == 0.0f && !s->validate_on_test)
        return mn_fail(err, MN_EINVAL,
                       "%s monitors a val_ metric but there is no validation data: "
                       "set validation_split or \"validation_data\": \"test\"", key);
    return 0;
}

int spec_from_json(const cJSON *root, const SpecLimits *lim, ModelSpec *s, MnError *err)
{
    static const char *const keys[] = {
        "name",   "dataset",          "input_shape",     "layers",         "loss",
        "optimizer", "epochs",        "batch_size",      "validation_split", "validation_data",
        "shuffle", "early_stopping",  "preprocess",      "image_preprocess", "seed",
        "metrics", "grid", "reduce_lr_on_plateau", NULL};
    int rc;
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(root))
        return mn_fail(err, MN_EINVAL, "the spec must be a JSON object");
    if ((rc = json_check_keys(root, "", keys, err)))
        return rc;
    if (!spec_field(root, "name") || !spec_field(root, "layers"))
        return mn_fail(err, MN_EINVAL, "the spec needs \"name\" and \"layers\"");
    if ((rc = name_value(spec_field(root, "name"), "name", s->name, err)))
        return rc;
    strcpy(s->dataset, "mnist");
    if (spec_field(root, "dataset") &&
        (rc = name_value(spec_field(root, "dataset"), "dataset", s->dataset, err)))
        return rc;

    s->input = shape_make(28, 28, 1);
    const cJSON *shape = spec_field(root, "input_shape");
    if (shape) {
        if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 3)
            return mn_fail(err, MN_EINVAL, "input_shape must be [height, width, channels]");
        long long d[3];
        int i = 0;
        for (const cJSON *it = shape->child; it; it = it->next, i++)
            if ((rc = spec_int(it, "input_shape", 1, 4096, &d[i], err)))
                return rc;
        s->input = shape_make((int)d[0], (int)d[1], (int)d[2]);
    }

    const cJSON *layers = spec_field(root, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return mn_fail(err, MN_EINVAL, "layers must be a non-empty array");
    if (cJSON_GetArraySize(layers) > SPEC_MAX_LAYERS)
        return mn_fail(err, MN_ELIMIT, "layers: %d layers, over the limit of %d",
                       cJSON_GetArraySize(layers), SPEC_MAX_LAYERS);
    for (const cJSON *it = layers->child; it; it = it->next, s->n_layers++)
        if ((rc = parse_layer(it, s->n_layers, &s->layers[s->n_layers], err)))
            return rc;
    if ((rc = name_layers(s, err)) || (rc = connect_layers(layers, s, err)))
        return rc;

    static const char *const losses[] = {"categorical_crossentropy",
                                         "sparse_categorical_crossentropy", "mean_squared_error",
                                         "mse", NULL};
    static const int loss_values[] = {LOSS_CROSSENTROPY, LOSS_CROSSENTROPY, LOSS_MSE, LOSS_MSE};
    int loss = LOSS_CROSSENTROPY;
    const cJSON *loss_obj = spec_field(root, "loss");
    if (cJSON_IsObject(loss_obj)) { /* {"type": ..., "label_smoothing": 0.1}, as Keras's loss objects */
        static const char *const loss_keys[] = {"type", "label_smoothing", NULL};
        if ((rc = json_check_keys(loss_obj, "loss", loss_keys, err)))
            return rc;
        if (!spec_field(loss_obj, "type"))
            return mn_fail(err, MN_EINVAL, "loss: missing key \"type\"");
        if ((rc = spec_opt_choice(loss_obj, "type", "loss", losses, loss_values, &loss, err)) ||
            (rc = spec_opt_float(loss_obj, "label_smoothing", "loss", 0.0, 1.0, &s->label_smoothing,
                                 err)))
            return rc;
        if (loss != LOSS_CROSSENTROPY && s->label_smoothing > 0.0f)
            return mn_fail(err, MN_EINVAL, "loss.label_smoothing belongs to categorical_crossentropy");
    } else if ((rc = spec_opt_choice(root, "loss", "", losses, loss_values, &loss, err))) {
        return rc;
    }
    s->loss = (LossType)loss;

    cJSON *adam = NULL;
    const cJSON *opt = spec_field(root, "optimizer");
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
    if ((rc = spec_opt_int(root, "epochs", "", 1, lim->max_epochs, &s->epochs, err)) ||
        (rc = spec_opt_int(root, "batch_size", "", 1, lim->max_batch_size, &s->batch_size, err)) ||
        (rc = spec_opt_float(root, "validation_split", "", 0.0, 0.9, &s->validation_split, err)) ||
        (rc = spec_opt_bool(root, "shuffle", "", &s->shuffle, err)))
        return rc;
    if (spec_field(root, "seed")) {
        if ((rc = spec_int(spec_field(root, "seed"), "seed", 0, SPEC_MAX_SEED, &seed, err)))
            return rc;
        s->seed = (uint64_t)seed;
    }
    static const char *const val_data[] = {"test", NULL};
    static const int val_values[] = {1};
    int on_test = 0;
    if ((rc = spec_opt_choice(root, "validation_data", "", val_data, val_values, &on_test, err)))
        return rc;
    s->validate_on_test = on_test;
    if (s->validate_on_test && s->validation_split > 0.0f)
        return mn_fail(err, MN_EINVAL, "give validation_split or validation_data, not both");

    if (spec_field(root, "early_stopping") &&
        (rc = parse_early_stopping(spec_field(root, "early_stopping"), &s->early_stopping, err)))
        return rc;
    if (spec_field(root, "reduce_lr_on_plateau") &&
        (rc = plateau_parse(spec_field(root, "reduce_lr_on_plateau"), &s->reduce_lr, err)))
        return rc;
    if ((rc = check_validation(s, "early_stopping",
                               s->early_stopping.enabled && s->early_stopping.monitor_validation,
                               err)) ||
        (rc = check_validation(s, "reduce_lr_on_plateau",
                               s->reduce_lr.enabled && s->reduce_lr.monitor_validation, err)))
        return rc;
    if (s->reduce_lr.enabled && s->optim.schedule.type != SCHEDULE_CONSTANT) /* Keras: not settable */
        return mn_fail(err, MN_EINVAL,
                       "reduce_lr_on_plateau needs a number as optimizer.learning_rate, not a schedule");

    static const char *const pre[] = {"scale", "standardize", NULL};
    static const int pre_values[] = {INPUT_SCALE, INPUT_STANDARDIZE};
    int p = INPUT_SCALE;
    if ((rc = spec_opt_choice(root, "preprocess", "", pre, pre_values, &p, err)))
        return rc;
    s->preprocess = (InputPreprocess)p;
    static const char *const img[] = {"digit", "frame", "none", NULL};
    static const int img_values[] = {IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME, IMAGE_PRE_NONE};
    int ip = IMAGE_PRE_DIGIT;
    if (spec_field(root, "image_preprocess")) {
        if ((rc = spec_opt_choice(root, "image_preprocess", "", img, img_values, &ip, err)))
            return rc;
        s->image_preprocess_set = true;
    }
    s->image_preprocess = (ImagePreprocess)ip;

    if (spec_field(root, "grid") && (rc = parse_grid(spec_field(root, "grid"), s, err)))
        return rc;
    if (s->grid_rates && !schedule_has_peak(&s->optim.schedule))
        return mn_fail(err, MN_EINVAL,
                       "grid.learning_rate: piecewise_constant_decay has no one rate to replace");

    const cJSON *metrics = spec_field(root, "metrics"); /* Keras habit: only accuracy is offered */
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

static cJSON *layer_to_json(const ModelSpec *s, const Layer *l)
{
    cJSON *o = cJSON_CreateObject();
    const LayerOps *ops = layer_ops(l->type);
    cJSON_AddStringToObject(o, "type", ops->name);
    if (l->named)
        cJSON_AddStringToObject(o, "name", l->name);
    if (ops->write)
        ops->write(l, o);
    if (l->inputs_given) {
        cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
        for (int k = 0; k < l->n_inputs; k++)
            cJSON_AddItemToArray(inputs, cJSON_CreateString(spec_source_name(s, l->inputs[k])));
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
        cJSON_AddItemToArray(layers, layer_to_json(s, &s->layers[i]));
    if (s->label_smoothing > 0.0f) {
        cJSON *loss = cJSON_AddObjectToObject(o, "loss");
        cJSON_AddStringToObject(loss, "type", loss_name(s->loss));
        cJSON_AddNumberToObject(loss, "label_smoothing", s->label_smoothing);
    } else {
        cJSON_AddStringToObject(o, "loss", loss_name(s->loss));
    }
    static const char *const optim_names[] = {[OPT_SGD] = "sgd", [OPT_ADAM] = "adam",
                                              [OPT_ADAMW] = "adamw"};
    const OptimConfig *oc = &s->optim;
    cJSON *opt = cJSON_AddObjectToObject(o, "optimizer");
    cJSON_AddStringToObject(opt, "type", optim_names[oc->type]);
    if (oc->schedule.type != SCHEDULE_CONSTANT)
        cJSON_AddItemToObject(opt, "learning_rate", schedule_to_json(&oc->schedule));
    else
        cJSON_AddNumberToObject(opt, "learning_rate", oc->learning_rate);
    if (oc->weight_decay > 0.0f || oc->type == OPT_ADAMW)
        cJSON_AddNumberToObject(opt, "weight_decay", oc->weight_decay);
    if (oc->clipnorm > 0.0f)
        cJSON_AddNumberToObject(opt, "clipnorm", oc->clipnorm);
    if (oc->global_clipnorm > 0.0f)
        cJSON_AddNumberToObject(opt, "global_clipnorm", oc->global_clipnorm);
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
                                spec_monitor_name(es->monitor_accuracy, es->monitor_validation));
        cJSON_AddNumberToObject(e, "patience", es->patience);
        cJSON_AddNumberToObject(e, "min_delta", es->min_delta);
        cJSON_AddBoolToObject(e, "restore_best", es->restore_best);
    }
    plateau_write(&s->reduce_lr, o);
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
