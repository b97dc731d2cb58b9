/* model.c - building a network from its spec, the activation arena, and
 * the flat forward/backward passes over the layer table.
 * model_build is where impossible specs are refused (with the layer named);
 * nothing after it can fail on shapes. A ModelRun's memory is one block
 * carved once; forward and backward only index into it. */
#include "model.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"

/* A per-sample activation over this is refused at build (64 MiB of floats). */
#define MODEL_MAX_ACTIVATION ((size_t)16 << 20)

int model_build(const ModelSpec *spec, const SpecLimits *lim, Model **out, MnError *err)
{
    *out = NULL;
    Model *m = calloc(1, sizeof *m);
    if (!m)
        return mn_fail(err, MN_ENOMEM, "out of memory");
    m->spec = *spec;
    Shape in = spec->input;
    size_t offset = 0, state = 0;
    int rc = 0;
    for (int i = 0; i < spec->n_layers && rc == 0; i++) {
        Layer *l = &m->spec.layers[i];
        const LayerOps *ops = layer_ops(l->type);
        char label[LAYER_NAME_MAX + 48];
        spec_layer_label(&m->spec, i, label, sizeof label);
        Shape ins[LAYER_MAX_INPUTS];
        for (int k = 0; k < l->n_inputs; k++)
            ins[k] = spec_source_shape(&m->spec, l->inputs[k]);
        l->in = ins[0];
        if ((rc = ops->build(l, ins, l->n_inputs, err))) {
            mn_wrap(err, "%s", label);
            break;
        }
        if (shape_numel(l->out) > MODEL_MAX_ACTIVATION) {
            rc = mn_fail(err, MN_ELIMIT, "%s: output %dx%dx%d is over %zu values", label,
                         l->out.h, l->out.w, l->out.c, MODEL_MAX_ACTIVATION);
            break;
        }
        if (l->act == ACT_SOFTMAX && (l->out.h != 1 || l->out.w != 1)) {
            rc = mn_fail(err, MN_ESPEC, "%s: softmax needs a flat output", label);
            break;
        }
        l->param_offset = offset;
        offset += l->param_count;
        l->state_offset = state;
        state += l->state_count;
        /* Keras's total: trainable and not (moving statistics) alike */
        if (offset + state > lim->max_params) {
            rc = mn_fail(err, MN_ELIMIT,
                         "%s: the model reaches %zu parameters, over the limit of %zu", label,
                         offset + state, lim->max_params);
            break;
        }
        in = l->out;
    }
    if (rc == 0 && (in.h != 1 || in.w != 1))
        rc = mn_fail(err, MN_ESPEC,
                     "the last layer's output is %dx%dx%d: end with flatten and dense layers",
                     in.h, in.w, in.c);
    if (rc == 0 && (in.c < 2 || in.c > MODEL_MAX_CLASSES))
        rc = mn_fail(err, MN_ESPEC, "the last layer has %d outputs: a classifier needs 2 to %d",
                     in.c, MODEL_MAX_CLASSES);
    if (rc) {
        free(m);
        return rc;
    }
    m->n_params = offset;
    m->n_classes = in.c;
    m->n_state = state;
    m->params = calloc(offset ? offset : 1, sizeof *m->params);
    m->state = calloc(state ? state : 1, sizeof *m->state);
    if (!m->params || !m->state) {
        model_free(m);
        return mn_fail(err, MN_ENOMEM, "%zu parameters: out of memory", offset);
    }
    Rng rng;
    rng_seed(&rng, spec->seed);
    for (int i = 0; i < spec->n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        const LayerOps *ops = layer_ops(l->type);
        if (ops->init)
            ops->init(l, m->params + l->param_offset, &rng);
        if (ops->init_state)
            ops->init_state(l, m->state + l->state_offset);
    }
    for (int c = 0; c < m->n_classes; c++)
        snprintf(m->class_names[c], MODEL_CLASS_NAME_MAX, "%d", c);
    *out = m;
    return 0;
}

void model_free(Model *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->state);
    free(m->serve_params);
    free(m->input_mean);
    free(m->input_std);
    free(m->meta_json);
    free(m);
}

int model_check_classes(const Model *m, const char *dataset, int n_classes, MnError *err)
{
    if (m->n_classes == n_classes)
        return 0;
    int i = m->spec.n_layers - 1;
    while (i > 0 && shape_numel(m->spec.layers[i].in) == shape_numel(m->spec.layers[i].out))
        i--; /* activations, dropout: they keep the width they are given */
    char label[LAYER_NAME_MAX + 48];
    spec_layer_label(&m->spec, i, label, sizeof label);
    return mn_fail(err, MN_ESPEC, "%s has %d outputs, but dataset \"%s\" has %d classes", label,
                   m->n_classes, dataset, n_classes);
}

int model_set_class_names(Model *m, const char *const *names, int n, MnError *err)
{
    if (n != m->n_classes)
        return mn_fail(err, MN_ESPEC, "%d class names for a model with %d outputs", n,
                       m->n_classes);
    for (int c = 0; c < n; c++)
        snprintf(m->class_names[c], MODEL_CLASS_NAME_MAX, "%s", names[c]);
    return 0;
}

static void shape_text(Shape s, char *buf, size_t n)
{
    if (s.h == 1 && s.w == 1)
        snprintf(buf, n, "(None, %d)", s.c);
    else
        snprintf(buf, n, "(None, %d, %d, %d)", s.h, s.w, s.c);
}

static void thousands(size_t v, char *buf, size_t n)
{
    char raw[32];
    int len = snprintf(raw, sizeof raw, "%zu", v), j = 0;
    for (int i = 0; i < len && (size_t)j + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = raw[i];
    }
    buf[j] = '\0';
}

static void summary_totals(const Model *m, FILE *out, const char *rule)
{
    char total[32], trainable[32], fixed[32];
    thousands(m->n_params + m->n_state, total, sizeof total);
    thousands(m->n_params, trainable, sizeof trainable);
    thousands(m->n_state, fixed, sizeof fixed);
    fprintf(out, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s", total,
            trainable, fixed, rule);
}

/* A chain: Keras's Sequential table. */
static void summary_chain(const Model *m, FILE *out)
{
    static const char *const rule =
        "_________________________________________________________________\n";
    static const char *const thick =
        "=================================================================\n";
    fprintf(out, "Model: \"%s\"\n%s", m->spec.name, rule);
    fprintf(out, "%-29s%-26s%s\n%s", "Layer (type)", "Output Shape", "Param #", thick);
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        char name[LAYER_NAME_MAX + 32], shape[40];
        snprintf(name, sizeof name, "%s (%s)", l->name, layer_ops(l->type)->keras_class);
        shape_text(l->out, shape, sizeof shape);
        fprintf(out, "%-28s %-25s %zu\n%s", name, shape, l->param_count + l->state_count,
                i + 1 < m->spec.n_layers ? rule : thick);
    }
    summary_totals(m, out, rule);
}

/* A graph: Keras's functional table, with the input layer and a
 * "Connected to" column, one line per input. */
static void summary_graph(const Model *m, FILE *out)
{
    static const char *const rule = "___________________________________________________________"
                                    "_______________________________________\n";
    static const char *const thick = "==========================================================="
                                     "=======================================\n";
    const ModelSpec *s = &m->spec;
    char name[LAYER_NAME_MAX + 32], shape[40], source[LAYER_NAME_MAX + 8];
    fprintf(out, "Model: \"%s\"\n%s", s->name, rule);
    fprintf(out, "%-32s%-21s%-13s%s\n%s", "Layer (type)", "Output Shape", "Param #",
            "Connected to", thick);
    shape_text(s->input, shape, sizeof shape);
    fprintf(out, "%-31s %-20s %d\n%s", LAYER_INPUT_NAME " (InputLayer)", shape, 0, rule);
    for (int i = 0; i < s->n_layers; i++) {
        const Layer *l = &s->layers[i];
        snprintf(name, sizeof name, "%s (%s)", l->name, layer_ops(l->type)->keras_class);
        shape_text(l->out, shape, sizeof shape);
        for (int k = 0; k < l->n_inputs; k++) {
            snprintf(source, sizeof source, "%s[0][0]", spec_source_name(s, l->inputs[k]));
            if (k == 0)
                fprintf(out, "%-31s %-20s %-12zu %s\n", name, shape,
                        l->param_count + l->state_count, source);
            else
                fprintf(out, "%-66s%s\n", "", source);
        }
        fputs(i + 1 < s->n_layers ? rule : thick, out);
    }
    summary_totals(m, out, rule);
}

void model_summary(const Model *m, FILE *out)
{
    if (spec_is_chain(&m->spec))
        summary_chain(m, out);
    else
        summary_graph(m, out);
}

long model_forward_macs(const Model *m)
{
    long macs = 0;
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        const LayerOps *ops = layer_ops(l->type);
        if (ops->macs)
            macs += ops->macs(l);
    }
    return macs;
}

size_t model_activation_floats(const Model *m)
{
    size_t floats = shape_numel(m->spec.input);
    for (int i = 0; i < m->spec.n_layers; i++)
        if (!layer_ops(m->spec.layers[i].type)->is_view)
            floats += shape_numel(m->spec.layers[i].out);
    return floats;
}

/* k / 255 rounded once, as a division gives it, for k = 0..255: k times
 * the float nearest 1/255 is an ulp off for half the k, and one fused
 * correction brings every one back (all 256 checked: tests/test_model.c).
 * Vectorised, 140 ns an image here against 220 for the division and 650
 * for a table lookup. */
static inline float unit_pixel(uint8_t k)
{
    const float inverse = 1.0f / 255.0f;
    float x = (float)k, q = x * inverse;
    return fmaf(fmaf(-q, 255.0f, x), inverse, q);
}

MN_VECTOR_CLONES
void model_prepare_inputs(const Model *m, const uint8_t *pixels, int n, float *x)
{
    size_t d = shape_numel(m->spec.input), total = (size_t)n * d;
    if (m->input_mean) {
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                x[(size_t)i * d + j] =
                    ((float)pixels[(size_t)i * d + j] - m->input_mean[j]) / m->input_std[j];
        return;
    }
    /* fmaf is a library call where the CPU has no FMA: divide there. The
     * n images are one run of bytes, so the vector loop leaves one short
     * tail for all, not one an image (784 = 12 x 64 + 16). */
    if (__builtin_cpu_supports("fma"))
        for (size_t j = 0; j < total; j++)
            x[j] = unit_pixel(pixels[j]);
    else
        for (size_t j = 0; j < total; j++)
            x[j] = (float)pixels[j] / 255.0f;
}

void model_prepare_unit_inputs(const Model *m, const float *unit, int n, float *x)
{
    size_t d = shape_numel(m->spec.input);
    for (size_t i = 0; i < (size_t)n * d; i++) {
        size_t j = i % d;
        /* Same arithmetic as from uint8 pixels, so a decoded image and its IDX twin agree. */
        float pixel = unit[i] * 255.0f;
        x[i] = m->input_mean ? (pixel - m->input_mean[j]) / m->input_std[j] : pixel / 255.0f;
    }
}

/* ---- runs ---- */

/* How a run executes the layer table, worked out once per run: which
 * layers pass their input on as their output and run nothing (a view, a
 * layer folded for serving, and in training a relu activation layer whose
 * work the layer before it does: LayerOps.takes_relu), and which layers do
 * the relu of the one after them. The spec, summary, files and exports
 * never see it. */
typedef struct {
    bool alias[SPEC_MAX_LAYERS];
    bool relu[SPEC_MAX_LAYERS];
} ExecPlan;

static void plan_execution(const Model *m, bool training, ExecPlan *p)
{
    const ModelSpec *s = &m->spec;
    for (int i = 0; i < s->n_layers; i++) {
        p->alias[i] = layer_ops(s->layers[i].type)->is_view || m->folded[i];
        p->relu[i] = false;
    }
    if (!training)
        return; /* inference keeps each layer's own output: a request may ask for it */
    for (int j = 0; j < s->n_layers; j++) {
        const Layer *l = &s->layers[j];
        int i = l->inputs[0];
        if (!layer_ops(l->type)->only_activation || l->act != ACT_RELU || i == LAYER_INPUT_MODEL)
            continue;
        if (layer_ops(s->layers[i].type)->takes_relu && !p->alias[i] && spec_readers(s, i) == 1)
            p->alias[j] = p->relu[i] = true;
    }
}

/* Where backward puts each gradient, worked out once per run from the
 * graph: dL/d(each output) lives in a slot (a (max_batch, widest) buffer)
 * from the first write by its last reader until its own layer's backward,
 * then the slot is reused. A chain needs two, ping-pong. An output read by
 * several layers gets the gradient of the last reader written and the
 * others' added, reader by reader from the last, input by input: a fixed
 * order, so the sums are the same on every run. */
typedef struct {
    int n_slots;
    int out[SPEC_MAX_LAYERS];                    /* the slot of dL/d(layer i's output) */
    int input;                                   /* the slot of dL/d(the model's input), or -1 */
    int in[SPEC_MAX_LAYERS][LAYER_MAX_INPUTS];   /* where layer i writes dL/d(input k), or -1 */
    bool add[SPEC_MAX_LAYERS][LAYER_MAX_INPUTS]; /* in[i][k] is scratch to add to the input's */
} GradPlan;

#define GRAD_MAX_SLOTS (SPEC_MAX_LAYERS + LAYER_MAX_INPUTS + 1)

/* Whether backward must reach each layer's output (wanted[i]): a gradient
 * is wanted for parameters, or for the model's input when to_input, so
 * only where a layer with parameters, or the input then, is at or before
 * it. The augmentation layers that read the data have none: their
 * backward was a pass over the batch that nobody read. */
static void plan_wanted(const Model *m, bool to_input, bool *wanted)
{
    const ModelSpec *s = &m->spec;
    for (int i = 0; i < s->n_layers; i++) {
        const Layer *l = &s->layers[i];
        wanted[i] = l->param_count > 0;
        for (int k = 0; k < l->n_inputs; k++)
            wanted[i] = wanted[i] || (l->inputs[k] == LAYER_INPUT_MODEL ? to_input
                                                                        : wanted[l->inputs[k]]);
    }
}

typedef struct {
    int free[GRAD_MAX_SLOTS], n_free, n_slots;
} SlotPool;

static int slot_take(SlotPool *p) { return p->n_free ? p->free[--p->n_free] : p->n_slots++; }
static void slot_give(SlotPool *p, int slot) { p->free[p->n_free++] = slot; }

/* Where dL/d(source's output) goes: a layer's slot, or the input's. */
static int *grad_slot(GradPlan *g, int source)
{
    return source == LAYER_INPUT_MODEL ? &g->input : &g->out[source];
}

/* to_input: the model's input gets a slot too (input gradients), never
 * given back, so it holds the whole sum at the end. */
static void plan_gradients(const Model *m, const ExecPlan *p, bool to_input, GradPlan *g)
{
    const ModelSpec *s = &m->spec;
    SlotPool pool = {.n_free = 0};
    bool wanted[SPEC_MAX_LAYERS];
    plan_wanted(m, to_input, wanted);
    int last = s->n_layers - 1;
    for (int i = 0; i < s->n_layers; i++)
        g->out[i] = -1;
    g->input = -1;
    g->out[last] = slot_take(&pool);
    for (int i = last; i >= 0; i--) {
        const Layer *l = &s->layers[i];
        bool view = p->alias[i]; /* a folded or fused layer passes its gradient on as a view */
        if (g->out[i] < 0)
            continue; /* nothing upstream wants a gradient (plan_wanted) */
        for (int k = 0; k < l->n_inputs; k++) {
            int j = l->inputs[k], *to = grad_slot(g, j);
            g->in[i][k] = -1;
            g->add[i][k] = false;
            if (!(j == LAYER_INPUT_MODEL ? to_input : wanted[j]))
                continue;
            if (*to < 0) /* the first gradient to reach j: written in place */
                *to = view ? g->out[i] : slot_take(&pool);
            else
                g->add[i][k] = true;
            g->in[i][k] = g->add[i][k] ? (view ? g->out[i] : slot_take(&pool)) : *to;
        }
        for (int k = 0; k < l->n_inputs; k++)
            if (g->add[i][k] && g->in[i][k] != g->out[i])
                slot_give(&pool, g->in[i][k]);
        /* a view that handed its slot on keeps it alive under its input's name */
        if (!(view && g->in[i][0] == g->out[i] && !g->add[i][0]))
            slot_give(&pool, g->out[i]);
    }
    g->n_slots = pool.n_slots;
}

struct ModelRun {
    const Model *m;
    int max_batch;
    bool training;
    /* An inference run that also goes backward, to the input
     * (model_run_new_input_gradient): it keeps what backward needs. */
    bool input_gradient;
    float *scratch_grads; /* input gradient runs: the parameters' gradients, unread */
    void *block;       /* the one allocation */
    float *input;      /* (max_batch, input numel) */
    float **act;       /* per layer output; views alias their input */
    float *logits;     /* last layer before its softmax, for the fused loss */
    float *ws;         /* shared scratch */
    void **aux;        /* per layer, training only */
    float **pre;       /* per layer, training only: the output before an activation
                        * whose backward needs it (activation_needs_input), else NULL */
    ExecPlan exec;
    GradPlan plan;     /* training and input gradient runs only, as slot */
    float *slot[GRAD_MAX_SLOTS]; /* dL/d(activation) buffers */
    int n;             /* samples in the last forward */
    Rng rng;           /* dropout masks */
    /* A pass in parts (model_forward_part): where it stopped, and the
     * sums it stopped for (training only). */
    bool paused;
    int resume;
    double loss;
    double *sums;
    size_t n_sums;
};

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* The buffer that holds source's output: a layer's, or the run's input. */
static float *source_buffer(const ModelRun *r, int source)
{
    return source == LAYER_INPUT_MODEL ? r->input : r->act[source];
}

/* backward: keep aux, the inputs of activations that need them and the
 * gradient slots (training, and input gradient runs). fuse: a training run
 * may hand a layer's work to the one before it (plan_execution). */
static ModelRun *run_new(const Model *m, int max_batch, bool training, bool to_input, bool fuse,
                         MnError *err)
{
    assert(!(training && m->serve_params)); /* a model folded for serving never trains */
    bool backward = training || to_input;
    const ModelSpec *s = &m->spec;
    int nl = s->n_layers;
    size_t b = (size_t)max_batch, bytes = 0, ws = 0, widest = shape_numel(s->input), sums = 0;
    size_t act_off[SPEC_MAX_LAYERS], aux_off[SPEC_MAX_LAYERS], aux_len[SPEC_MAX_LAYERS];
    size_t pre_off[SPEC_MAX_LAYERS], pre_len[SPEC_MAX_LAYERS];
    size_t input_off = bytes;
    bytes += align64(b * shape_numel(s->input) * sizeof(float));
    ExecPlan exec;
    plan_execution(m, training && fuse, &exec);
    for (int i = 0; i < nl; i++) {
        const Layer *l = &s->layers[i];
        const LayerOps *ops = layer_ops(l->type);
        size_t numel = shape_numel(l->out);
        widest = numel > widest ? numel : widest;
        act_off[i] = bytes;
        if (!exec.alias[i])
            bytes += align64(b * numel * sizeof(float));
        if (training && ops->batch_sums && ops->batch_sums(l) > sums)
            sums = ops->batch_sums(l);
        if (ops->workspace) {
            size_t w = ops->workspace(l, max_batch);
            ws = w > ws ? w : ws;
        }
        aux_len[i] = backward && ops->aux ? ops->aux(l, max_batch) : 0;
        aux_off[i] = bytes;
        bytes += align64(aux_len[i]);
        pre_len[i] = backward && activation_needs_input(l->act) ? b * numel * sizeof(float) : 0;
        pre_off[i] = bytes;
        bytes += align64(pre_len[i]);
    }
    size_t logits_off = bytes;
    bytes += align64(b * m->n_classes * sizeof(float));
    size_t ws_off = bytes;
    bytes += align64(ws * sizeof(float));
    size_t sums_off = bytes;
    bytes += align64(sums * sizeof(double));
    size_t grad_off = bytes, slot_bytes = align64(b * widest * sizeof(float));
    GradPlan plan = {.n_slots = 0};
    if (backward) {
        plan_gradients(m, &exec, to_input, &plan);
        bytes += (size_t)plan.n_slots * slot_bytes;
    }
    size_t scratch_off = bytes;
    if (to_input)
        bytes += align64((m->n_params ? m->n_params : 1) * sizeof(float));

    ModelRun *r = calloc(1, sizeof *r);
    float **act = calloc((size_t)nl, sizeof *act);
    void **aux = calloc((size_t)nl, sizeof *aux);
    float **pre = calloc((size_t)nl, sizeof *pre);
    void *block = aligned_alloc(64, bytes ? bytes : 64);
    if (!r || !act || !aux || !pre || !block) {
        free(r), free(act), free(aux), free(pre), free(block);
        return mn_fail(err, MN_ENOMEM, "activation arena of %zu bytes: out of memory", bytes),
               NULL;
    }
    memset(block, 0, bytes);
    char *base = block;
    r->m = m;
    r->max_batch = max_batch;
    r->training = training;
    r->input_gradient = to_input;
    r->scratch_grads = to_input ? (float *)(base + scratch_off) : NULL;
    r->block = block;
    r->input = (float *)(base + input_off);
    r->act = act;
    r->aux = aux;
    r->pre = pre;
    for (int i = 0; i < nl; i++) {
        const Layer *l = &s->layers[i];
        act[i] = exec.alias[i] ? source_buffer(r, l->inputs[0])
                                     : (float *)(base + act_off[i]);
        aux[i] = aux_len[i] ? base + aux_off[i] : NULL;
        pre[i] = pre_len[i] ? (float *)(base + pre_off[i]) : NULL;
    }
    r->logits = (float *)(base + logits_off);
    r->ws = (float *)(base + ws_off);
    r->exec = exec;
    r->plan = plan;
    r->sums = (double *)(base + sums_off);
    r->n_sums = sums;
    for (int k = 0; k < plan.n_slots; k++)
        r->slot[k] = (float *)(base + grad_off + (size_t)k * slot_bytes);
    model_run_reseed(r, s->seed);
    return r;
}

ModelRun *model_run_new(const Model *m, int max_batch, bool training, MnError *err)
{
    return run_new(m, max_batch, training, false, true, err);
}

ModelRun *model_run_new_unfused(const Model *m, int max_batch, MnError *err)
{
    return run_new(m, max_batch, true, false, false, err);
}

ModelRun *model_run_new_input_gradient(const Model *m, int max_batch, MnError *err)
{
    return run_new(m, max_batch, false, true, true, err);
}

void model_run_free(ModelRun *r)
{
    if (!r)
        return;
    free(r->block);
    free(r->act);
    free(r->aux);
    free(r->pre);
    free(r);
}

float *model_run_input(ModelRun *r) { return r->input; }

void model_run_reseed(ModelRun *r, uint64_t seed) { rng_seed(&r->rng, seed ^ 0xd50b5eedULL); }

const float *model_run_activation(const ModelRun *r, int layer) { return r->act[layer]; }

static bool fused_head(const Model *m)
{
    return m->spec.layers[m->spec.n_layers - 1].act == ACT_SOFTMAX;
}

/* Forward of layer i over samples [from, from + n); sums: the whole
 * batch's for a layer that needs them, NULL when this run holds it all. */
static void forward_layer(const Model *m, ModelRun *r, int i, int from, int n, bool training,
                          const double *sums)
{
    const ModelSpec *s = &m->spec;
    const Layer *l = &s->layers[i];
    const LayerOps *ops = layer_ops(l->type);
    size_t width = shape_numel(l->out);
    const float *in[LAYER_MAX_INPUTS];
    for (int k = 0; k < l->n_inputs; k++)
        in[k] = source_buffer(r, l->inputs[k]) +
                (size_t)from * shape_numel(spec_source_shape(s, l->inputs[k]));
    float *y = r->act[i] + (size_t)from * width;
    if (!r->exec.alias[i]) {
        void *aux = r->aux[i] ? (char *)r->aux[i] + (size_t)from * ops->aux(l, 1) : NULL;
        LayerRun run = {.batch = n, .training = training, .ws = r->ws, .aux = aux,
                        .rng = training ? &r->rng : NULL, .in = in, .n_in = l->n_inputs,
                        .state = m->state + l->state_offset, .sums = sums,
                        .relu = r->exec.relu[i]};
        const float *params = !training && m->serve_params ? m->serve_params : m->params;
        ops->forward(l, params + l->param_offset, in[0], y, &run);
    }
    if (i == s->n_layers - 1 && l->act == ACT_SOFTMAX)
        memcpy(r->logits + (size_t)from * width, y, (size_t)n * width * sizeof *y);
    if (!layer_applies_activation(l)) {
        if ((training || r->input_gradient) && r->pre[i])
            memcpy(r->pre[i] + (size_t)from * width, y, (size_t)n * width * sizeof *y);
        activation_forward(l->act, y, n, (int)width);
    }
}

#define STAGE_BYTES (512 * 1024) /* a chunk's outputs through a stage: within L2 */

/* Layers that work sample by sample anyway (convolution, pooling, the
 * views, dropout) run as a stage: a few samples at a time through all of
 * its layers, so each layer reads what the one before wrote while it is
 * still in cache (a batch of the tutorial's 28x28x64 outputs is megabytes).
 * A dense layer is a stage of its own over the whole batch, its GEMM as
 * wide as can be. Returns the stage's end from `first`; *chunk samples. */
/* A folded layer (nothing to run) does not end a stage. */
static bool whole_batch(const Model *m, const ExecPlan *p, int i)
{
    return layer_ops(m->spec.layers[i].type)->wants_whole_batch && !p->alias[i];
}

static int stage_end(const Model *m, const ExecPlan *p, int first, int n, int *chunk)
{
    const ModelSpec *s = &m->spec;
    *chunk = n;
    if (whole_batch(m, p, first))
        return first + 1;
    size_t per = 0;
    int end = first;
    for (; end < s->n_layers && !whole_batch(m, p, end); end++)
        if (!p->alias[end])
            per += shape_numel(s->layers[end].out) * sizeof(float);
    int fits = (int)(STAGE_BYTES / (per ? per : 1));
    *chunk = fits < 1 ? 1 : fits < n ? fits : n;
    return end;
}

bool model_needs_batch_sums(const Model *m)
{
    for (int i = 0; i < m->spec.n_layers; i++)
        if (layer_ops(m->spec.layers[i].type)->batch_sums)
            return true;
    return false;
}

double *model_run_sums(ModelRun *r, size_t *count)
{
    *count = r->n_sums;
    return r->sums;
}

/* The stages from r->resume on; in parts, stops before a layer that needs
 * the whole batch's sums with this run's in r->sums, and returns false. */
static bool forward_from(const Model *m, ModelRun *r, int n, bool training, bool in_parts)
{
    const ModelSpec *s = &m->spec;
    for (int first = r->resume, end, chunk; first < s->n_layers; first = end) {
        end = stage_end(m, &r->exec, first, n, &chunk);
        const Layer *l = &s->layers[first];
        const LayerOps *ops = layer_ops(l->type);
        const double *sums = NULL;
        if (in_parts && training && ops->batch_sums) { /* a stage of its own: whole batch */
            if (!r->paused) {
                ops->forward_sums(l, source_buffer(r, l->inputs[0]), n, r->sums);
                r->paused = true;
                r->resume = first;
                return false;
            }
            r->paused = false;
            sums = r->sums;
        }
        for (int from = 0; from < n; from += chunk)
            for (int i = first; i < end; i++)
                forward_layer(m, r, i, from, n - from < chunk ? n - from : chunk, training, sums);
    }
    r->resume = 0;
    return true;
}

const float *model_forward(const Model *m, ModelRun *r, int n, bool training)
{
    r->n = n;
    r->resume = 0;
    r->paused = false;
    forward_from(m, r, n, training && r->training, false);
    return r->act[m->spec.n_layers - 1];
}

bool model_forward_part(const Model *m, ModelRun *r, int n)
{
    r->n = n;
    return forward_from(m, r, n, r->training, true);
}

static double head_loss(const Model *m, ModelRun *r, const uint8_t *labels, int n, int batch,
                        float *d)
{
    int k = m->n_classes;
    const float *out = r->act[m->spec.n_layers - 1];
    if (m->spec.loss == LOSS_MSE)
        return loss_mse(out, labels, n, k, batch, d);
    if (fused_head(m))
        return loss_softmax_crossentropy(r->logits, labels, n, k, batch, m->spec.label_smoothing, d);
    return loss_crossentropy(out, labels, n, k, batch, m->spec.label_smoothing, d);
}

double model_loss(const Model *m, ModelRun *r, const uint8_t *labels, int n)
{
    return head_loss(m, r, labels, n, n, NULL);
}

/* dst += src, n floats: a second reader's share of a gradient. */
static void add_into(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* From the last layer down, or on from where a pass in parts stopped
 * (before a layer's backward, its dL/dz ready, this run's sums out); the
 * last layer's slot holds dL/d(its output) first, or dL/dz when have_dz.
 * An inference run goes back through what its forward ran: the served
 * weights, folded layers passed over as views. */
static bool backward_from(const Model *m, ModelRun *r, int n, float *grads, bool have_dz,
                          bool in_parts)
{
    const ModelSpec *s = &m->spec;
    GradPlan *g = &r->plan;
    int last = s->n_layers - 1, start = r->paused ? r->resume : last;
    const float *params = !r->training && m->serve_params ? m->serve_params : m->params;
    for (int i = start; i >= 0; i--) {
        const Layer *l = &s->layers[i];
        const LayerOps *ops = layer_ops(l->type);
        if (g->out[i] < 0)
            continue; /* see plan_gradients */
        float *d = r->slot[g->out[i]];
        bool resumed = r->paused && i == start;
        if (!resumed && !(i == last && have_dz) && !layer_applies_activation(l))
            activation_backward(l->act, r->pre[i], r->act[i], d, n, (int)shape_numel(l->out));
        const float *in[LAYER_MAX_INPUTS];
        float *din[LAYER_MAX_INPUTS];
        for (int k = 0; k < l->n_inputs; k++) {
            in[k] = source_buffer(r, l->inputs[k]);
            din[k] = g->in[i][k] >= 0 ? r->slot[g->in[i][k]] : NULL;
        }
        /* a view's gradient is its input's: same numbers, another shape */
        if (!r->exec.alias[i]) {
            LayerRun run = {.batch = n, .training = r->training, .ws = r->ws, .aux = r->aux[i],
                            .rng = r->training ? &r->rng : NULL, .in = in, .din = din,
                            .n_in = l->n_inputs, .state = m->state + l->state_offset,
                            .relu = r->exec.relu[i]};
            if (in_parts && ops->batch_sums) {
                if (!resumed) {
                    ops->backward_sums(l, params + l->param_offset, in[0], d, &run, r->sums);
                    r->paused = true;
                    r->resume = i;
                    return false;
                }
                r->paused = false;
                run.sums = r->sums;
            }
            ops->backward(l, params + l->param_offset, grads + l->param_offset, in[0],
                          r->act[i], d, din[0], &run);
        }
        for (int k = 0; k < l->n_inputs; k++)
            if (g->add[i][k])
                add_into(r->slot[*grad_slot(g, l->inputs[k])], din[k],
                         (size_t)n * shape_numel(spec_source_shape(s, l->inputs[k])));
    }
    r->resume = 0; /* the next forward starts at the top */
    return true;
}

/* The loss's gradient into the last layer's slot, unless a pass in parts
 * is resuming (it is there already). The fused loss gives dL/dz for the
 * softmax head. */
static bool backward_loss(const Model *m, ModelRun *r, const uint8_t *labels, int n, int batch,
                          float *grads, bool in_parts)
{
    if (!r->paused)
        r->loss = head_loss(m, r, labels, n, batch, r->slot[r->plan.out[m->spec.n_layers - 1]]);
    bool have_dz = m->spec.loss == LOSS_CROSSENTROPY && fused_head(m);
    return backward_from(m, r, n, grads, have_dz, in_parts);
}

double model_backward(const Model *m, ModelRun *r, const uint8_t *labels, int n, int batch,
                      float *grads)
{
    r->paused = false;
    backward_loss(m, r, labels, n, batch, grads, false);
    return r->loss;
}

bool model_backward_part(const Model *m, ModelRun *r, const uint8_t *labels, int n, int batch,
                         float *grads, double *loss)
{
    if (!backward_loss(m, r, labels, n, batch, grads, true))
        return false;
    *loss = r->loss;
    return true;
}

bool model_score_is_logit(const Model *m) { return fused_head(m); }

float model_class_score(const Model *m, const ModelRun *r, int sample, int cls)
{
    size_t at = (size_t)sample * m->n_classes + cls;
    return fused_head(m) ? r->logits[at] : r->act[m->spec.n_layers - 1][at];
}

void model_input_gradient(const Model *m, ModelRun *r, int n, const int *classes, float *dx)
{
    assert(r->input_gradient && n <= r->n);
    const GradPlan *g = &r->plan;
    int k = m->n_classes;
    size_t d = shape_numel(m->spec.input);
    float *seed = r->slot[g->out[m->spec.n_layers - 1]];
    memset(seed, 0, (size_t)n * k * sizeof *seed);
    for (int i = 0; i < n; i++)
        seed[(size_t)i * k + classes[i]] = 1.0f; /* d score / d score */
    memset(r->scratch_grads, 0, m->n_params * sizeof *r->scratch_grads);
    r->paused = false;
    /* the score of a softmax head is its logit: the seed is already dL/dz */
    backward_from(m, r, n, r->scratch_grads, fused_head(m), false);
    assert(g->input >= 0); /* the output depends on the input through some layer */
    memcpy(dx, r->slot[g->input], (size_t)n * d * sizeof *dx);
}

void model_update_state(Model *m, const ModelRun *r)
{
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        const LayerOps *ops = layer_ops(l->type);
        if (ops->update_state && r->aux[i])
            ops->update_state(l, r->aux[i], m->state + l->state_offset);
    }
}
