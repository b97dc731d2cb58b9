/* model.h - a built network: layers with shapes, all parameters in one
 * buffer, and the runs that push batches through it.
 * A Model is immutable while it serves: every thread that runs it owns a
 * ModelRun (the activation arena, sized once for max_batch), so concurrent
 * predictions share weights and nothing else. The training loop allocates
 * nothing: the run, the gradient twin and the optimizer state exist before
 * the first batch. */
#ifndef MN_MODEL_H
#define MN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "layer.h"
#include "spec.h"

#define MODEL_MAX_CLASSES 64
#define MODEL_CLASS_NAME_MAX 32

typedef struct {
    ModelSpec spec;         /* layers' shapes and offsets filled by model_build */
    size_t n_params;
    float *params;          /* owned: the trainable parameters */
    size_t n_state;
    float *state;           /* owned: non-trainable values (moving statistics) */
    /* Serving only (model_fold_for_serving): params with each foldable
     * batch normalization folded into the layer before it (owned, NULL
     * otherwise), and the layers that folding made the identity. */
    float *serve_params;
    bool folded[SPEC_MAX_LAYERS];
    int n_classes;          /* output units */
    char class_names[MODEL_MAX_CLASSES][MODEL_CLASS_NAME_MAX];
    /* INPUT_STANDARDIZE: per-input mean and std from the training set (owned,
     * shape_numel(spec.input) each); NULL with INPUT_SCALE. */
    float *input_mean, *input_std;
    /* Training history and test metrics as a JSON text (owned, may be NULL):
     * carried in the model file's header untouched by core. */
    char *meta_json;
} Model;

/* Builds shapes and offsets from spec, checks them and lim->max_params
 * (errors name the layer: "layer 3 (conv2d): ..."), allocates params and
 * initialises them from spec->seed. Class names default to "0".."n-1". */
int model_build(const ModelSpec *spec, const SpecLimits *lim, Model **out, MnError *err);
void model_free(Model *m);

/* Keras-like model.summary() table. */
void model_summary(const Model *m, FILE *out);

/* Multiply-adds of one sample's forward pass (a training step costs about
 * three times as many: forward, dX and dW). */
long model_forward_macs(const Model *m);

/* Floats of one sample's activations: its input and every layer's output
 * that is not a view of another's (what a run keeps between layers). */
size_t model_activation_floats(const Model *m);

/* 0 when the model's outputs are dataset's n_classes; else MN_ESPEC naming
 * the layer that sets the output width (the last one that changes it, so a
 * dense before a softmax) and the class count. */
int model_check_classes(const Model *m, const char *dataset, int n_classes, MnError *err);

/* Sets class names (n must equal n_classes). */
int model_set_class_names(Model *m, const char *const *names, int n, MnError *err);

/* Converts raw uint8 pixels (n samples) into network inputs per the model's
 * preprocessing: /255, or standardize with input_mean/std. */
void model_prepare_inputs(const Model *m, const uint8_t *pixels, int n, float *x);
/* The same for pixels already in [0, 1] (decoded images). */
void model_prepare_unit_inputs(const Model *m, const float *unit, int n, float *x);

typedef struct ModelRun ModelRun;

/* An activation arena for up to max_batch samples; training runs also hold
 * the backward buffers, per-layer aux memory and a dropout Rng. */
ModelRun *model_run_new(const Model *m, int max_batch, bool training, MnError *err);
/* An inference run (the served weights, inference behaviour of every
 * layer) that also keeps what backward needs, for model_input_gradient. */
ModelRun *model_run_new_input_gradient(const Model *m, int max_batch, MnError *err);
/* A training run that runs every layer on its own, as the spec lists
 * them (model_run_new's may do a relu layer's work in the layer before it,
 * LayerOps.takes_relu): the reference that fused runs must equal bit for bit. */
ModelRun *model_run_new_unfused(const Model *m, int max_batch, MnError *err);
void model_run_free(ModelRun *r);
/* Restarts the run's dropout masks from seed (at creation: the spec's). */
void model_run_reseed(ModelRun *r, uint64_t seed);
/* The run's input buffer: (max_batch, input numel); fill it, then forward. */
float *model_run_input(ModelRun *r);
/* Activations of layer i's output (i < n_layers) from the last forward. */
const float *model_run_activation(const ModelRun *r, int layer);

/* Forward n <= max_batch samples from the run's input buffer; returns the
 * output rows (n, n_classes), probabilities for a softmax head. */
const float *model_forward(const Model *m, ModelRun *r, int n, bool training);

/* After a training forward of n samples: their mean loss against labels,
 * and dL/dparams accumulated into grads, where L is the mean loss of a
 * batch of `batch` samples (n of them here: batch == n unless the batch is
 * computed in parts). Softmax + cross-entropy is fused (log-sum-exp over
 * the logits). */
double model_backward(const Model *m, ModelRun *r, const uint8_t *labels, int n, int batch,
                      float *grads);

/* Whether a layer couples the samples of a batch in training (batch
 * normalization): its statistics must come from the whole batch. */
bool model_needs_batch_sums(const Model *m);
/* A training forward or backward in parts, for a batch split over lanes:
 * each stops before a layer that needs sums over the whole batch and
 * returns false, with this run's partial sums in model_run_sums; the
 * caller replaces them with the whole batch's (every lane's, added in lane
 * order) and calls again with the same arguments, until true. Without
 * lanes, model_forward and model_backward do the same in one call. */
bool model_forward_part(const Model *m, ModelRun *r, int n);
bool model_backward_part(const Model *m, ModelRun *r, const uint8_t *labels, int n, int batch,
                         float *grads, double *loss);
double *model_run_sums(ModelRun *r, size_t *count);
/* After a training step: the moving statistics from the batch statistics
 * r's last forward used (the whole batch's when it ran in parts). */
void model_update_state(Model *m, const ModelRun *r);

/* For serving and prediction, never training: folds each batch
 * normalization that follows a linear conv2d or dense read by nothing else
 * into a copy of that layer's weights (serve_params), so inference skips
 * it; the others run as a per-channel affine. */
int model_fold_for_serving(Model *m, MnError *err);

/* A class's score after a forward, the value explanations attribute: the
 * logit (the last layer's output before its softmax) for a softmax head,
 * else the last layer's output itself. */
float model_class_score(const Model *m, const ModelRun *r, int sample, int cls);
/* Whether that score is a logit: the model ends in softmax. */
bool model_score_is_logit(const Model *m);

/* After a forward of n samples (no more than it ran) on a run from
 * model_run_new_input_gradient: the gradient of each sample's score of
 * classes[i] (model_class_score) with respect to its input, from the
 * layers' backward passes, into dx (n, input numel). */
void model_input_gradient(const Model *m, ModelRun *r, int n, const int *classes, float *dx);

/* Loss only (validation/evaluation), from the last forward. */
double model_loss(const Model *m, ModelRun *r, const uint8_t *labels, int n);

#endif
