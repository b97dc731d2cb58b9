/* spec.h - the training spec: what a user writes (Keras names) once parsed
 * and checked. spec_parse is strict: unknown keys, wrong types, fractions
 * where integers belong, non-finite or out-of-range numbers and trailing
 * bytes are refused with a message naming the key or layer. Shapes and the
 * parameter limit are checked by model_build (spec_check runs both). */
#ifndef MN_SPEC_H
#define MN_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layer.h"
#include "plateau.h"
#include "schedule.h"

struct cJSON;

#define SPEC_MAX_LAYERS 64
#define SPEC_GRID_MAX 16
#define SPEC_NAME_MAX 64
#define SPEC_MAX_SEED 9007199254740992LL /* 2^53: a JSON number holds it exactly */

typedef enum { LOSS_CROSSENTROPY, LOSS_MSE } LossType;
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptimType; /* AdamW: Adam with weight decay */
/* How raw uint8 pixels become network inputs. */
typedef enum { INPUT_SCALE, INPUT_STANDARDIZE } InputPreprocess;
/* How an arbitrary image becomes a 28x28 input (see image.h). */
typedef enum { IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME, IMAGE_PRE_NONE } ImagePreprocess;

typedef struct {
    OptimType type;
    float learning_rate;
    float momentum;        /* SGD */
    bool nesterov;         /* SGD */
    float beta_1, beta_2, epsilon; /* Adam, Keras defaults 0.9, 0.999, 1e-7 */
    /* A schedule in "learning_rate"; learning_rate is then its peak
     * (schedule_peak), what the grid sets. SCHEDULE_CONSTANT without one. */
    LrSchedule schedule;
    float weight_decay;    /* decoupled, Keras 3's; 0 is Keras's None; AdamW's default 0.004 */
    float clipnorm;        /* each variable's gradient to this L2 norm; 0: off */
    float global_clipnorm; /* all gradients together; 0: off */
} OptimConfig;

typedef struct {
    bool enabled;
    bool monitor_accuracy;  /* "val_accuracy"/"accuracy" (max) rather than a loss (min) */
    bool monitor_validation; /* val_* rather than the training metric */
    int patience;
    float min_delta;
    bool restore_best;
} EarlyStopping;

typedef struct {
    char name[SPEC_NAME_MAX];
    char dataset[SPEC_NAME_MAX];
    Shape input;                 /* from the dataset; 28x28x1 by default */
    int n_layers;
    Layer layers[SPEC_MAX_LAYERS]; /* type, act, cfg set by the parser; shapes by model_build */
    LossType loss;
    float label_smoothing;       /* categorical cross-entropy: y (1 - ls) + ls / classes */
    OptimConfig optim;
    int epochs, batch_size;
    float validation_split;      /* 0: validate on the test split if validation_data is "test" */
    bool validate_on_test;       /* "validation_data": "test" (the homework notebook) */
    bool shuffle;
    EarlyStopping early_stopping;
    PlateauConfig reduce_lr;     /* "reduce_lr_on_plateau" */
    InputPreprocess preprocess;
    ImagePreprocess image_preprocess; /* default from the dataset */
    bool image_preprocess_set;
    uint64_t seed;
    /* "grid": {"learning_rate": [...], "activation": [...]}: train every
     * combination (the homework's table). An activation replaces that of
     * every layer but the last. Empty lists leave the spec's own value. */
    int grid_rates, grid_activations;
    float grid_rate[SPEC_GRID_MAX];
    Activation grid_activation[SPEC_GRID_MAX];
} ModelSpec;

/* The activation of the first layer that has one (the last layer's when
 * none does): what the grid's activation axis varies, for its table. */
Activation spec_hidden_activation(const ModelSpec *s);
/* True when every layer reads the one before it (the first, the input). */
bool spec_is_chain(const ModelSpec *s);
/* How many inputs of layers read source's output (a layer or LAYER_INPUT_MODEL). */
int spec_readers(const ModelSpec *s, int source);
/* "layer 3 (conv2d)" for messages; with its name, "layer 3 (add, \"res1\")",
 * when the spec gave one or the model is a graph. */
void spec_layer_label(const ModelSpec *s, int i, char *buf, size_t n);
/* What a layer's input k (Layer.inputs[k]) refers to: layer `source`, or
 * the model's input (LAYER_INPUT_MODEL). Shapes once model_build has run. */
Shape spec_source_shape(const ModelSpec *s, int source);
const char *spec_source_name(const ModelSpec *s, int source);

/* Trials in the grid (1 without one). */
int spec_grid_size(const ModelSpec *s);
/* The spec of trial t (0 <= t < spec_grid_size). */
void spec_grid_trial(const ModelSpec *s, int t, ModelSpec *out);

typedef struct {
    size_t max_params;   /* the configured parameter limit */
    int max_epochs;
    int max_batch_size;
} SpecLimits;

/* Fills lim with the defaults (10M params, 1000 epochs, batch 4096). */
void spec_limits_default(SpecLimits *lim);

/* Parses and checks a JSON spec (len bytes, no NUL needed). On error,
 * *out is unspecified and err names the key or layer. */
int spec_parse(const char *json, size_t len, const SpecLimits *lim, ModelSpec *out, MnError *err);
int spec_load_file(const char *path, const SpecLimits *lim, ModelSpec *out, MnError *err);

/* The same from an already parsed document (model file headers). */
int spec_from_json(const struct cJSON *root, const SpecLimits *lim, ModelSpec *out, MnError *err);

/* The spec as JSON (a cJSON object the caller deletes); parses back to the same spec. */
struct cJSON *spec_to_json(const ModelSpec *spec);

const char *loss_name(LossType loss);
const char *image_preprocess_name(ImagePreprocess p);
int image_preprocess_from_name(const char *name);

#endif
