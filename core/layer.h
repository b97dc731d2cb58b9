/* layer.h - the layer descriptor and the one table of per-type operations.
 * A Layer is a small descriptor: type, shapes, offsets into the model's one
 * parameter buffer, and a per-type config union. Each type lives in its own
 * file (dense.c, conv2d.c, pool.c, reshape.c, add.c, concatenate.c,
 * activation_layer.c, batchnorm.c, augment.c, leaky_elu.c) and answers every question
 * about itself through LayerOps; the model never looks inside a type
 * (fold.c folds a normalization into the layer before it through them).
 * Forward computes the pre-activation and the model applies the activation,
 * except where a type applies an elementwise one itself while its output is
 * still in cache (LayerOps.fuses_activation), or, in training, the relu of
 * an activation layer after it (LayerOps.takes_relu). */
#ifndef MN_LAYER_H
#define MN_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "vector_clones.h"
#include "rng.h"
#include "tensor.h"

typedef enum {
    LAYER_DENSE,
    LAYER_CONV2D,
    LAYER_MAXPOOL2D,
    LAYER_FLATTEN,
    LAYER_DROPOUT,
    LAYER_ADD,
    LAYER_AVGPOOL2D,
    LAYER_GLOBAL_AVGPOOL2D,
    LAYER_CONCATENATE,
    LAYER_ACTIVATION,
    LAYER_RANDOM_TRANSLATION,
    LAYER_RANDOM_ROTATION,
    LAYER_RANDOM_ZOOM,
    LAYER_RANDOM_FLIP,
    LAYER_BATCHNORM,
    LAYER_LEAKY_RELU,
    LAYER_ELU,
    LAYER_TYPE_COUNT
} LayerType;

#define LAYER_NAME_MAX 64
#define LAYER_MAX_INPUTS 8
/* Layer.inputs[k] for the model's input; a spec names it "input". */
#define LAYER_INPUT_MODEL (-1)
#define LAYER_INPUT_NAME "input"

typedef enum {
    ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX,
    ACT_GELU, ACT_SWISH, ACT_LEAKY_RELU, ACT_ELU,
    ACT_COUNT
} Activation;

typedef struct {
    int units;
    bool no_bias; /* Keras use_bias: false (zero, the default, keeps the bias) */
} DenseConfig;

/* Conv2d and maxpool2d share the window geometry. pad_top/pad_left are
 * derived at build: Keras "same" puts the odd pixel of padding at the
 * bottom/right. An explicit padding (ONNX's pads, PyTorch's padding=1 with
 * stride 2, which puts a pixel on both sides) gives all four instead:
 * "padding": [[top, bottom], [left, right]], each smaller than the window. */
typedef struct {
    int kh, kw;          /* kernel (conv) or pool size */
    int sh, sw;          /* strides */
    bool same;           /* padding "same" (true) or "valid" */
    int pad_top, pad_left;
    bool explicit_pad;   /* all four pads were given */
    int pad_bottom, pad_right; /* explicit_pad only */
} Window;

typedef struct {
    int filters;
    Window win;
    bool no_bias; /* Keras use_bias: false */
} Conv2dConfig;

typedef struct {
    float rate;
} DropoutConfig;

/* global_average_pooling2d: average pooling whose window is the whole
 * input, set at build. keepdims changes only Keras's printed shape: a
 * 1x1xC output is flat here either way. */
typedef struct {
    Window win;
    bool keepdims;
} GlobalPoolConfig;

/* concatenate: each input's channels, in input order, from build. */
typedef struct {
    int channels[LAYER_MAX_INPUTS];
} ConcatConfig;
/* The augmentation layers (augment.c): Keras's fill_mode and interpolation. */
typedef enum { FILL_REFLECT, FILL_CONSTANT, FILL_NEAREST, FILL_WRAP } FillMode;
typedef enum { INTERP_BILINEAR, INTERP_NEAREST } Interpolation;

/* Each sample's transform is drawn from [lower, upper] per axis, in the
 * units Keras gives the type's factor: [0] height (rotation: its factor,
 * in turns), [1] width. */
typedef struct {
    float lower[2], upper[2];
    bool width_given;     /* zoom: else the height's draw serves both axes */
    FillMode fill_mode;
    Interpolation interpolation;
    float fill_value;     /* fill_mode "constant" */
    bool flip_h, flip_v;  /* flip: which flips are drawn */
} AugmentConfig;
/* Keras's BatchNormalization over the channels (the last axis). */
typedef struct {
    float momentum, epsilon;
    bool center, scale; /* beta, gamma */
} BatchNormConfig;

/* Keras's LeakyReLU (negative_slope) and ELU (alpha) layers: the slope
 * below zero, 0 to LAYER_SLOPE_MAX. */
typedef struct {
    float alpha;
} SlopeConfig;
#define LAYER_SLOPE_MAX 100.0f

/* A model is a graph of layers in topological order: each reads the
 * outputs of earlier layers (the previous one unless the spec names its
 * inputs, as Keras's functional API does), the last one is the output. */
typedef struct {
    LayerType type;
    Activation act;
    char name[LAYER_NAME_MAX]; /* the spec's, or Keras's default ("dense_1") */
    bool named;                /* the spec gave the name: written back only then */
    int n_inputs;
    int inputs[LAYER_MAX_INPUTS]; /* earlier layers' indices, or LAYER_INPUT_MODEL */
    bool inputs_given;         /* the spec named them: written back only then */
    Shape in, out;         /* one sample; in: the first input's */
    size_t param_offset;   /* into Model.params: weights first, then biases */
    size_t param_count;
    /* Non-trainable values (batch normalization's moving statistics), in
     * Model.state: training updates them between steps, inference reads them. */
    size_t state_offset, state_count;
    union {
        DenseConfig dense;
        Conv2dConfig conv;
        Window pool;
        GlobalPoolConfig global_pool;
        DropoutConfig dropout;
        ConcatConfig concat;
        AugmentConfig augment;
        BatchNormConfig bn;
        SlopeConfig slope;
    } cfg;
} Layer;

/* What one forward/backward call gets besides the tensors. */
typedef struct {
    int batch;
    bool training;
    float *ws;     /* scratch shared by all layers: LayerOps.workspace floats */
    void *aux;     /* this layer's memory from forward to backward: LayerOps.aux bytes */
    Rng *rng;      /* dropout masks, augmentation; NULL when not training */
    /* Every input (n_in of them; x and dx are the first), for the types
     * that take several: in[k] (batch, its shape), and din[k] to overwrite
     * with dL/d(in[k]) in backward, NULL where nobody needs it. */
    const float *const *in;
    float *const *din;
    int n_in;
    const float *state; /* this layer's slice of Model.state */
    /* Training, for a type with batch_sums: the whole batch's sums (every
     * lane's, added in lane order), from forward_sums before forward and
     * from backward_sums before backward. */
    const double *sums;
    /* Training, for a type that takes_relu: forward writes relu of its
     * output into y, and backward's y is that and dy is dL/d(it); the
     * model runs the relu layer after as a view of this one's output. */
    bool relu;
} LayerRun;

struct cJSON;

typedef struct {
    const char *name; /* "dense", "conv2d", ... as in the spec */
    /* Other spellings of the type in a spec (Keras's class name, ...), NULL-terminated. */
    const char *const *aliases;
    /* Config keys besides "type", "name" and "inputs", NULL-terminated; parse reads
     * them into l->cfg and l->act (where: "layers[2]" for messages) and
     * checks values, not shapes; write puts them back, so a written spec
     * parses to the same layer. Both NULL for a type with no config. */
    const char *const *keys;
    int (*parse)(Layer *l, const struct cJSON *obj, const char *where, MnError *err);
    void (*write)(const Layer *l, struct cJSON *o);
    /* Keras's default layer name ("max_pooling2d") and class ("MaxPooling2D"). */
    const char *keras_name, *keras_class;
    /* Multiply-adds of one sample's forward pass, or NULL: none to count. */
    long (*macs)(const Layer *l);
    /* True when the type has an "activation" key (the grid's activation axis sets it). */
    bool takes_activation;
    /* Output shape and parameter count from l->cfg and the n_in input
     * shapes; reject impossible geometry here (never in the training
     * loop), naming the problem. */
    int (*build)(Layer *l, const Shape *in, int n_in, MnError *err);
    /* How many inputs the type takes; 0 for both means exactly one. */
    int min_inputs, max_inputs;
    /* Keras initializers: Glorot uniform weights, zero biases. */
    void (*init)(const Layer *l, float *params, Rng *rng);
    /* x: (batch, in), y: (batch, out), pre-activation. */
    void (*forward)(const Layer *l, const float *params, const float *x, float *y,
                    const LayerRun *run);
    /* dy: dL/dy (batch, out), where y is the output after the activation;
     * a type that applies its activation turns dy into dL/dz in place
     * first. grads accumulate (+=) into this layer's slice; dx (batch, in)
     * is overwritten, and is NULL when nothing before needs it (the
     * model's input). */
    void (*backward)(const Layer *l, const float *params, float *grads, const float *x,
                     const float *y, float *dy, float *dx, const LayerRun *run);
    size_t (*workspace)(const Layer *l, int batch); /* floats of scratch, or NULL */
    size_t (*aux)(const Layer *l, int batch);       /* bytes kept forward->backward, or NULL */
    /* Floats of bias at the end of the parameter slice, a variable of its
     * own for clipnorm (layer_variables); NULL for none. */
    size_t (*bias_floats)(const Layer *l);
    /* True when y is x itself (flatten): the model aliases the buffers and
     * calls neither forward nor backward. */
    bool is_view;
    /* True when forward and backward apply l->act themselves if it is
     * elementwise and works from its output alone (not softmax, gelu or
     * swish): per chunk, while the chunk is in cache. */
    bool fuses_activation;
    /* True when, in training, forward and backward can do the work of a
     * relu activation layer that alone reads the output (LayerRun.relu),
     * in the passes they make anyway (batch normalization): the same
     * float operations on each element as the two layers apart. */
    bool takes_relu;
    /* True when the output is the input through l->act and nothing else
     * (Keras's Activation layer): what takes_relu may take over. */
    bool only_activation;
    /* True for a GEMM over the batch (dense) or batch statistics (batch
     * normalization): it runs on the whole batch at once rather than in
     * the model's sample chunks (model.c, stages). aux of any other type
     * grows with the batch: a chunk's is at its first sample's offset. */
    bool wants_whole_batch;
    /* Model.state values: their starting values (moving variance 1), and
     * the update after a training step from what forward left in aux. */
    void (*init_state)(const Layer *l, float *state);
    void (*update_state)(const Layer *l, const void *aux, float *state);
    /* A type that couples the samples of a batch (batch normalization)
     * needs sums over the whole batch, however lanes split it: the model
     * stops before its forward and its backward, the lanes' partial sums
     * (batch_sums doubles each) are added in a fixed order, and the layer
     * continues with the total in LayerRun.sums. Such a type wants the
     * whole batch (no slices). */
    size_t (*batch_sums)(const Layer *l);
    void (*forward_sums)(const Layer *l, const float *x, int batch, double *sums);
    void (*backward_sums)(const Layer *l, const float *params, const float *x, const float *dy,
                          const LayerRun *run, double *sums);
    /* Inference as a per-channel affine y = x * scale + shift (batch
     * normalization's moving statistics): what serving folds into the layer
     * before (fold.c). */
    void (*as_affine)(const Layer *l, const float *params, const float *state, float *scale,
                      float *shift);
    /* Folding a per-channel affine y*scale + shift that follows this layer
     * into its weights (serving copies only): false, params untouched,
     * when the layer cannot take the whole of it (no bias to take the
     * shift: use_bias false), and the affine then runs as its own layer.
     * NULL: never folded into. */
    bool (*fold_affine)(const Layer *l, float *params, const float *scale, const float *shift);
} LayerOps;

const LayerOps *layer_ops(LayerType type);
/* Lookup by spec name or alias; -1 when unknown. */
int layer_type_from_name(const char *name);
/* The spec names of every type, ", " between them: for "unknown layer type" messages. */
void layer_type_names(char *buf, size_t n);
int activation_from_name(const char *name); /* "silu" too: swish */
/* Every activation's name, ", " between them: for messages. */
void activation_names_list(char *buf, size_t n);
const char *activation_name(Activation act);
/* Whether forward has already applied l's activation (see fuses_activation). */
bool layer_applies_activation(const Layer *l);
/* The sizes of the Keras variables in l's parameter slice, in order (a
 * kernel, then a bias of one float per output channel): what clipnorm
 * clips one by one. Returns how many (0 to LAYER_MAX_VARIABLES). */
#define LAYER_MAX_VARIABLES 2
int layer_variables(const Layer *l, size_t sizes[LAYER_MAX_VARIABLES]);

/* Shared by conv2d and maxpool2d: output size of a window along one axis
 * and its leading padding, Keras rules. Returns 0 or fills err. */
int window_build(Window *win, Shape in, int *out_h, int *out_w, MnError *err);
/* Adds size_key ("kernel_size", "pool_size"), "strides" and "padding" to o. */
void window_write(const Window *win, const char *size_key, struct cJSON *o);

/* The input row (or column) that window tap k of output o reads along one
 * axis, or -1 when it falls in the padding. */
static inline int window_tap(int o, int k, int stride, int pad_lead, int size)
{
    int i = o * stride + k - pad_lead;
    return i >= 0 && i < size ? i : -1;
}

/* y (rows x n) = bias in every row, for a GEMM to add into with beta 1:
 * with beta 0 OpenBLAS clears y first, and adding the bias after is
 * another pass, two trips over y that this one replaces. The rows are
 * doubled by copying what is filled, a few long copies rather than a short
 * one per row. */
static inline void fill_bias(float *restrict y, const float *restrict bias, int rows, int n)
{
    if (rows < 1)
        return;
    memcpy(y, bias, (size_t)n * sizeof *y);
    for (int done = 1; done < rows; done *= 2) {
        int more = rows - done < done ? rows - done : done;
        memcpy(y + (size_t)done * n, y, (size_t)more * n * sizeof *y);
    }
}

/* A layer with use_bias false hands its kernel zeros for a bias: they lead
 * its workspace, a whole number of 64-byte lines so the kernel's scratch
 * after them stays aligned. */
static inline size_t zero_bias_floats(int n) { return ((size_t)n + 15) / 16 * 16; }

static inline const float *zero_bias(float *ws, int n)
{
    memset(ws, 0, (size_t)n * sizeof *ws);
    return ws;
}

/* Where the kernel's own scratch starts in such a layer's workspace. */
static inline size_t zero_bias_room(bool no_bias, int n) { return no_bias ? zero_bias_floats(n) : 0; }

/* db (n) += the column sums of dy (rows x n): the bias gradient. */
static inline void add_column_sums(float *restrict db, const float *restrict dy, int rows, int n)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++)
            db[j] += dy[(size_t)r * n + j];
}

/* Scales column j of w (rows x n, a Keras kernel) by scale[j], and
 * bias[j] to bias[j] * scale[j] + shift[j]: an affine after the layer,
 * folded in (fold_affine of dense and conv2d). */
void fold_affine_columns(float *w, float *bias, size_t rows, int n, const float *scale,
                         const float *shift);

/* Glorot (Xavier) uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)). */
void init_glorot_uniform(float *w, size_t n, int fan_in, int fan_out, Rng *rng);

extern const LayerOps dense_ops, conv2d_ops, maxpool2d_ops, flatten_ops, dropout_ops, add_ops,
    avgpool2d_ops, global_avgpool2d_ops, concatenate_ops, activation_ops, batchnorm_ops;
extern const LayerOps random_translation_ops, random_rotation_ops, random_zoom_ops, random_flip_ops;
extern const LayerOps leaky_relu_ops, elu_ops;

/* activation.c: in place over a whole batch of rows of width n. */
void activation_forward(Activation act, float *a, int rows, int n);
/* Whether act's derivative needs its input z: gelu's and swish's cannot
 * be written in the output a alone. The model keeps z for them. */
bool activation_needs_input(Activation act);
/* Turns dL/da into dL/dz in place, from the activation's output a, and
 * its input z where activation_needs_input (NULL for the others). */
void activation_backward(Activation act, const float *z, const float *a, float *d, int rows,
                         int n);
/* leaky_relu of any slope and elu of any alpha (>= 0), in place over n
 * values; the backward passes turn dL/da into dL/dz from the output a. */
void activation_leaky_relu(float *a, size_t n, float slope);
void activation_elu(float *a, size_t n, float alpha);
void activation_leaky_relu_backward(const float *a, float *d, size_t n, float slope);
void activation_elu_backward(const float *a, float *d, size_t n, float alpha);

#endif
