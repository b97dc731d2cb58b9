/* test_onnx.c - ONNX in and out. Core: every seed spec, the shipped models
 * and a graph with every exported layer type survive export then import
 * with the same probabilities; metadata comes back; bad files are refused
 * naming the problem (not ONNX, over the limit, unsupported operator or
 * attribute, external data, dims that lie about their data, nesting past
 * the limit); weights go into a matching spec and not into another; a zero
 * Pad (constant pads, or computed as torch computes them) becomes the
 * padding of the Conv or MaxPool after it, GELU's erf arithmetic a gelu in
 * either product order, LeakyRelu/Elu of any slope a layer, and each
 * variant mnistd cannot compute is refused naming the node.
 * Torch (make onnx, with MNISTD_ONNX_DIR from tests/onnx/torch_models.py):
 * PyTorch's exports imported give PyTorch's probabilities within 1e-5 on
 * its 1,000 test images; and every seed, shipped and imported model is
 * exported with mnistd's probabilities beside it, for tests/onnx/ort.mjs
 * (ONNX Runtime) and onnx.checker. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check_util.h"
#include "model_file.h"
#include "model_import.h"
#include "onnx.pb-c.h"
#include "onnx_export.h"
#include "onnx_import.h"
#include "spec.h"

#define TOLERANCE 1e-5
#define BATCH 100

static const char *const SEEDS[] = {
    "mnist-mlp64", "mnist-sigmoid16", "mnist-cnn", "fashion-cnn", "fashion-homework-relu",
    "fashion-homework-sigmoid", "fashion-relu50-sgd", "fashion-relu50-50-adam",
    "fashion-sigmoid10",
};

/* The shipped models (models/): the seeds' two and the two at the state of
 * the art for their size (batch normalization and global pooling). */
static const char *const SHIPPED[] = {"mnist-cnn", "fashion-cnn", "digits", "fashion"};

/* A graph with every layer type the exporter writes (and the importer
 * reads back), explicit and "same" padding, and non-trivial statistics. */
static const char *const GRAPH_SPEC =
    "{\"name\": \"graph\", \"dataset\": \"fashion-mnist\", \"image_preprocess\": \"frame\","
    " \"layers\": ["
    "  {\"type\": \"conv2d\", \"name\": \"stem\", \"filters\": 6, \"kernel_size\": 3,"
    "   \"strides\": 2, \"padding\": [[1, 1], [1, 0]], \"activation\": \"relu\"},"
    "  {\"type\": \"batch_normalization\", \"name\": \"bn\"},"
    "  {\"type\": \"conv2d\", \"name\": \"a\", \"filters\": 6, \"kernel_size\": 3, \"padding\": \"same\","
    "   \"activation\": \"tanh\"},"
    "  {\"type\": \"add\", \"name\": \"res\", \"inputs\": [\"bn\", \"a\"]},"
    "  {\"type\": \"maxpool2d\", \"name\": \"mp\", \"pool_size\": 2, \"inputs\": [\"res\"]},"
    "  {\"type\": \"average_pooling2d\", \"name\": \"ap\", \"pool_size\": 3, \"strides\": 2,"
    "   \"padding\": \"same\", \"inputs\": [\"res\"]},"
    "  {\"type\": \"conv2d\", \"name\": \"b\", \"filters\": 4, \"kernel_size\": 1, \"use_bias\": false,"
    "   \"activation\": \"elu\", \"inputs\": [\"ap\"]},"
    "  {\"type\": \"concatenate\", \"name\": \"cat\", \"inputs\": [\"mp\", \"b\"]},"
    "  {\"type\": \"activation\", \"name\": \"lr\", \"activation\": \"leaky_relu\"},"
    "  {\"type\": \"leaky_relu\", \"name\": \"lr1\", \"negative_slope\": 0.1},"
    "  {\"type\": \"elu\", \"name\": \"elu5\", \"alpha\": 0.5},"
    "  {\"type\": \"flatten\", \"name\": \"flat\"},"
    "  {\"type\": \"dense\", \"name\": \"fc\", \"units\": 12, \"activation\": \"sigmoid\"},"
    "  {\"type\": \"dense\", \"name\": \"g\", \"units\": 12, \"activation\": \"gelu\"},"
    "  {\"type\": \"dropout\", \"name\": \"drop\", \"rate\": 0.3},"
    "  {\"type\": \"dense\", \"name\": \"out\", \"units\": 10, \"activation\": \"softmax\"}]}";

static void default_options(OnnxImportOptions *opt)
{
    onnx_import_options_default(opt);
    opt->name = "imported";
}

/* Probabilities of n samples x (unit pixels) through m. */
static float *probabilities(Model *m, const float *x, int n)
{
    MnError err = {0};
    ModelRun *r = model_run_new(m, BATCH, false, &err);
    ck_assert_msg(r, "%s", err.msg);
    size_t d = shape_numel(m->spec.input);
    float *p = malloc((size_t)n * m->n_classes * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < n; i += BATCH) {
        int b = n - i < BATCH ? n - i : BATCH;
        model_prepare_unit_inputs(m, x + (size_t)i * d, b, model_run_input(r));
        memcpy(p + (size_t)i * m->n_classes, model_forward(m, r, b, false),
               (size_t)b * m->n_classes * sizeof *p);
    }
    model_run_free(r);
    return p;
}

static float *random_images(int n, size_t d, unsigned seed)
{
    float *x = malloc((size_t)n * d * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < (size_t)n * d; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 65535.0f;
    }
    return x;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst || isnan(d) ? (isnan(d) ? INFINITY : d) : worst;
    }
    return worst;
}

/* Gives every parameter and statistic a distinct value (trained-like, not
 * the initializer's zeros and ones) so every tensor's layout matters. */
static void perturb(Model *m)
{
    float *x = random_images(1, m->n_params + m->n_state, 7);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.2f * (x[i] - 0.5f);
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        for (size_t j = 0; j < l->state_count; j++) /* mean, then a positive variance */
            m->state[l->state_offset + j] = j < l->state_count / 2
                                                ? 0.3f * (x[m->n_params + j] - 0.5f)
                                                : 0.5f + x[m->n_params + j];
    }
    free(x);
}

static Model *export_import(const Model *m, const OnnxImportOptions *opt)
{
    unsigned char *buf;
    size_t len;
    MnError err = {0};
    SpecLimits lim;
    spec_limits_default(&lim);
    ck_assert_msg(onnx_export(m, &buf, &len, &err) == 0, "%s: export: %s", m->spec.name, err.msg);
    Model *back = NULL;
    int rc = onnx_import(buf, len, opt, &lim, &back, &err);
    free(buf);
    ck_assert_msg(rc == 0, "%s: import of its export: %s", m->spec.name, err.msg);
    return back;
}

/* m and import(export(m)) agree on 50 random images. */
static void check_roundtrip(Model *m)
{
    OnnxImportOptions opt;
    default_options(&opt);
    Model *back = export_import(m, &opt);
    ck_assert_int_eq(back->n_params, m->n_params);
    ck_assert_int_eq(back->n_state, m->n_state);
    ck_assert_int_eq(back->n_classes, m->n_classes);
    ck_assert_int_eq(back->spec.image_preprocess, m->spec.image_preprocess);
    ck_assert_str_eq(back->spec.dataset, m->spec.dataset);
    for (int c = 0; c < m->n_classes; c++)
        ck_assert_str_eq(back->class_names[c], m->class_names[c]);
    float *x = random_images(50, shape_numel(m->spec.input), 3);
    float *p = probabilities(m, x, 50), *q = probabilities(back, x, 50);
    double d = max_diff(p, q, (size_t)50 * m->n_classes);
    ck_assert_msg(d < TOLERANCE, "%s: import(export) differs by %g", m->spec.name, d);
    free(x);
    free(p);
    free(q);
    model_free(back);
}

static Model *seed_model(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/%s.json", check_util_src_dir(), name);
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec *s = malloc(sizeof *s);
    MnError err = {0};
    Model *m = NULL;
    ck_assert_msg(spec_load_file(path, &lim, s, &err) == 0, "%s: %s", path, err.msg);
    ck_assert_msg(model_build(s, &lim, &m, &err) == 0, "%s: %s", path, err.msg);
    free(s);
    return m;
}

/* Explicit padding (what PyTorch's pads import as) trains too: every
 * parameter's gradient against central differences. */
START_TEST(test_explicit_padding_gradients)
{
    Model *m = check_util_build_model(
        "{\"name\": \"pads\", \"input_shape\": [7, 6, 1], \"loss\": \"mse\", \"layers\": ["
        " {\"type\": \"conv2d\", \"filters\": 2, \"kernel_size\": 3, \"strides\": 2,"
        "  \"padding\": [[1, 2], [0, 1]], \"activation\": \"tanh\"},"
        " {\"type\": \"maxpool2d\", \"pool_size\": 2, \"strides\": 1, \"padding\": [[1, 0], [0, 1]]},"
        " {\"type\": \"average_pooling2d\", \"pool_size\": 2, \"strides\": 1, \"padding\": [[0, 1], [1, 0]]},"
        " {\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 3, \"activation\": \"softmax\"}]}");
    ck_assert_int_eq(m->spec.layers[0].out.h, 4); /* (7 + 1 + 2 - 3) / 2 + 1 */
    ck_assert_int_eq(m->spec.layers[0].out.w, 3); /* (6 + 0 + 1 - 3) / 2 + 1 */
    float *x = random_images(2, shape_numel(m->spec.input), 11);
    unsigned char labels[2] = {1, 2};
    check_util_model_gradients(m, x, labels, 2, "explicit padding");
    free(x);
    model_free(m);
}
END_TEST

START_TEST(test_seed_roundtrip)
{
    Model *m = seed_model(SEEDS[_i]);
    perturb(m);
    check_roundtrip(m);
    model_free(m);
}
END_TEST

static Model *shipped(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/models/%s/v1.mnm", check_util_src_dir(), name);
    SpecLimits lim;
    spec_limits_default(&lim);
    MnError err = {0};
    Model *m = NULL;
    ck_assert_msg(model_load(path, &lim, &m, &err) == 0, "%s: %s", path, err.msg);
    return m;
}

START_TEST(test_shipped_roundtrip)
{
    Model *m = shipped(SHIPPED[_i]);
    check_roundtrip(m);
    model_free(m);
}
END_TEST

START_TEST(test_graph_roundtrip)
{
    Model *m = check_util_build_model(GRAPH_SPEC);
    perturb(m);
    const char *names[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    MnError err = {0};
    ck_assert_int_eq(model_set_class_names(m, names, 10, &err), 0);
    check_roundtrip(m);
    /* the leaky_relu and elu layers keep their slopes; gelu's erf arithmetic is a gelu again */
    OnnxImportOptions opt;
    default_options(&opt);
    Model *back = export_import(m, &opt);
    int j = 0; /* back's layer; the dropout is not in the ONNX graph */
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *a = &m->spec.layers[i], *b = &back->spec.layers[j];
        if (a->type == LAYER_DROPOUT)
            continue;
        ck_assert_int_lt(j++, back->spec.n_layers);
        ck_assert_msg(a->type == b->type && a->act == b->act, "layer %d (%s) came back as %s %s",
                      i, a->name, layer_ops(b->type)->name, activation_name(b->act));
        if (a->type == LAYER_LEAKY_RELU || a->type == LAYER_ELU)
            ck_assert_float_eq(b->cfg.slope.alpha, a->cfg.slope.alpha);
    }
    model_free(back);
    model_free(m);
}
END_TEST

/* --- the parts of a graph that span nodes: Pad, constant arithmetic, GELU --- */

/* m's export (*buf, free it after the proto), unpacked to edit. */
static Onnx__ModelProto *proto_of(const Model *m, unsigned char **buf)
{
    size_t len;
    MnError err = {0};
    ck_assert_msg(onnx_export(m, buf, &len, &err) == 0, "%s", err.msg);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, *buf);
    ck_assert_ptr_nonnull(mp);
    return mp;
}

/* Edits to an unpacked ModelProto: protobuf-c frees what it unpacked with
 * free(), so what is added is malloc'd and freed with the rest. */
static void set_string(char **field, const char *v)
{
    free(*field);
    *field = strdup(v);
}

static Onnx__NodeProto *insert_node(Onnx__ModelProto *mp, size_t at, const char *op,
                                    const char *const *in, size_t n_in, const char *out)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = strdup(op);
    n->name = strdup(out);
    n->n_input = n_in;
    n->input = malloc((n_in ? n_in : 1) * sizeof *n->input);
    for (size_t i = 0; i < n_in; i++)
        n->input[i] = strdup(in[i]);
    n->n_output = 1;
    n->output = malloc(sizeof *n->output);
    n->output[0] = strdup(out);
    Onnx__GraphProto *g = mp->graph;
    g->node = realloc(g->node, (g->n_node + 1) * sizeof *g->node);
    memmove(&g->node[at + 1], &g->node[at], (g->n_node - at) * sizeof *g->node);
    g->node[at] = n;
    g->n_node++;
    return n;
}

static size_t node_index(Onnx__ModelProto *mp, const char *op)
{
    for (size_t i = 0; i < mp->graph->n_node; i++)
        if (!strcmp(mp->graph->node[i]->op_type, op))
            return i;
    ck_abort_msg("no %s node", op);
    return 0;
}

static Onnx__NodeProto *find_node(Onnx__ModelProto *mp, const char *op)
{
    return mp->graph->node[node_index(mp, op)];
}

/* An initializer: INT64 (v64) or FLOAT (f) values, dims {n} or a scalar (n 0). */
static void add_initializer(Onnx__ModelProto *mp, const char *name, const int64_t *v64,
                            const float *f, size_t n)
{
    Onnx__TensorProto *t = malloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->n_dims = n ? 1 : 0;
    t->dims = malloc(sizeof *t->dims);
    t->dims[0] = (int64_t)n;
    size_t count = n ? n : 1;
    if (v64) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->n_int64_data = count;
        t->int64_data = malloc(count * sizeof *v64);
        memcpy(t->int64_data, v64, count * sizeof *v64);
    } else {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_float_data = count;
        t->float_data = malloc(count * sizeof *f);
        memcpy(t->float_data, f, count * sizeof *f);
    }
    Onnx__GraphProto *g = mp->graph;
    g->initializer = realloc(g->initializer, (g->n_initializer + 1) * sizeof *g->initializer);
    g->initializer[g->n_initializer++] = t;
}

static Onnx__AttributeProto *add_attr(Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->has_type = 1;
    a->type = type;
    n->attribute = realloc(n->attribute, (n->n_attribute + 1) * sizeof *n->attribute);
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void set_ints_attr(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t k)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) {
            ck_assert_int_eq(n->attribute[i]->n_ints, k);
            memcpy(n->attribute[i]->ints, v, k * sizeof *v);
            return;
        }
    ck_abort_msg("no attribute %s", name);
}

/* Imports mp; 0, or the error code with err filled. On success, *out. */
static int import_model(Onnx__ModelProto *mp, Model **out, MnError *err)
{
    size_t len = onnx__model_proto__get_packed_size(mp);
    unsigned char *buf = malloc(len);
    onnx__model_proto__pack(mp, buf);
    OnnxImportOptions opt;
    default_options(&opt);
    SpecLimits lim;
    spec_limits_default(&lim);
    memset(err, 0, sizeof *err);
    *out = NULL;
    int rc = onnx_import(buf, len, &opt, &lim, out, err);
    free(buf);
    return rc;
}

/* The probabilities of a and b agree on 20 random images. */
static void check_same_outputs(Model *a, Model *b, const char *what)
{
    float *x = random_images(20, shape_numel(a->spec.input), 5);
    float *p = probabilities(a, x, 20), *q = probabilities(b, x, 20);
    double d = max_diff(p, q, (size_t)20 * a->n_classes);
    ck_assert_msg(d < TOLERANCE, "%s: differs by %g", what, d);
    free(x);
    free(p);
    free(q);
}

/* A spec's export with a Pad before its Conv taking over the Conv's pads:
 * [0, 0, top, left, 0, 0, bottom, right] as pads_name, computed the way
 * torch 1.13 computes nn.ZeroPad2d's (a Reshape, Slice and Transpose of a
 * Concat of constants) when computed is true. */
static Onnx__ModelProto *padded_conv(Model *m, unsigned char **buf, bool computed)
{
    Onnx__ModelProto *mp = proto_of(m, buf);
    size_t at = node_index(mp, "Conv");
    Onnx__NodeProto *conv = mp->graph->node[at];
    int64_t pads[4] = {0}, none[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < conv->n_attribute; i++)
        if (!strcmp(conv->attribute[i]->name, "pads"))
            memcpy(pads, conv->attribute[i]->ints, sizeof pads);
    set_ints_attr(conv, "pads", none, 4);
    if (computed) {
        /* torch: F.pad's (left, right, top, bottom) pairs, last axis first, padded
         * with zeros to 8, reshaped (-1, 2), rows reversed, transposed, flattened */
        int64_t pairs[4] = {pads[1], pads[3], pads[0], pads[2]}, four = 4, shape[2] = {-1, 2},
                start = -1, end = INT64_MIN + 1, axis = 0, step = -1, flat = -1;
        add_initializer(mp, "pairs", pairs, NULL, 4);
        add_initializer(mp, "four", &four, NULL, 1);
        add_initializer(mp, "shape", shape, NULL, 2);
        add_initializer(mp, "start", &start, NULL, 1);
        add_initializer(mp, "end", &end, NULL, 1);
        add_initializer(mp, "axis", &axis, NULL, 1);
        add_initializer(mp, "step", &step, NULL, 1);
        add_initializer(mp, "flat", &flat, NULL, 1);
        Onnx__NodeProto *zeros = insert_node(mp, at++, "ConstantOfShape", (const char *[]){"four"}, 1, "zeros");
        Onnx__AttributeProto *v = add_attr(zeros, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
        v->t = malloc(sizeof *v->t);
        onnx__tensor_proto__init(v->t);
        v->t->has_data_type = 1;
        v->t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        v->t->n_dims = 1;
        v->t->dims = malloc(sizeof *v->t->dims);
        v->t->dims[0] = 1;
        v->t->n_int64_data = 1;
        v->t->int64_data = calloc(1, sizeof *v->t->int64_data);
        add_attr(insert_node(mp, at++, "Concat", (const char *[]){"pairs", "zeros"}, 2, "eight"),
                 "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
        insert_node(mp, at++, "Reshape", (const char *[]){"eight", "shape"}, 2, "rows");
        insert_node(mp, at++, "Slice", (const char *[]){"rows", "start", "end", "axis", "step"}, 5,
                    "reversed");
        Onnx__AttributeProto *perm = add_attr(insert_node(mp, at++, "Transpose",
                                                          (const char *[]){"reversed"}, 1, "cols"),
                                              "perm", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
        perm->n_ints = 2;
        perm->ints = malloc(2 * sizeof *perm->ints);
        perm->ints[0] = 1;
        perm->ints[1] = 0;
        insert_node(mp, at++, "Reshape", (const char *[]){"cols", "flat"}, 2, "pads64");
        Onnx__AttributeProto *to = add_attr(
            insert_node(mp, at++, "Cast", (const char *[]){"pads64"}, 1, "pads"), "to",
            ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
        to->has_i = 1;
        to->i = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    } else {
        int64_t all[8] = {0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]};
        add_initializer(mp, "pads", all, NULL, 8);
    }
    insert_node(mp, at, "Pad", (const char *[]){conv->input[0], "pads"}, 2, "padded");
    set_string(&conv->input[0], "padded");
    return mp;
}

START_TEST(test_pad_folds)
{
    /* fashion-cnn: Conv 64 k2 "same" (a pixel at the bottom and right), ReLU,
     * MaxPool; and the seed CNN's stride-2 "same" convolutions */
    const char *const specs[] = {"fashion-cnn", "mnist-cnn"};
    for (int s = 0; s < 2; s++)
        for (int computed = 0; computed < 2; computed++) {
            Model *m = seed_model(specs[s]);
            perturb(m);
            unsigned char *buf;
            Onnx__ModelProto *mp = padded_conv(m, &buf, computed);
            Model *back;
            MnError err;
            ck_assert_msg(import_model(mp, &back, &err) == 0, "%s: %s", specs[s], err.msg);
            const Window *w = &back->spec.layers[0].cfg.conv.win;
            ck_assert_msg(w->same && !w->explicit_pad, "%s: the Pad is not the Conv's \"same\"",
                          specs[s]);
            ck_assert_int_eq(back->spec.n_layers, m->spec.n_layers);
            check_same_outputs(m, back, specs[s]);
            model_free(back);
            onnx__model_proto__free_unpacked(mp, NULL);
            free(buf);
            model_free(m);
        }
}
END_TEST

START_TEST(test_pad_into_pool)
{
    /* a Pad of a pixel at the top and left before the tutorial's MaxPool
     * (after a ReLU): the pool's explicit padding; before an AveragePool,
     * or a MaxPool of values that may be negative, refused */
    Model *m = seed_model("fashion-cnn");
    perturb(m);
    unsigned char *buf;
    MnError err = {0};
    Onnx__ModelProto *mp = proto_of(m, &buf);
    size_t at = node_index(mp, "MaxPool");
    Onnx__NodeProto *pool = mp->graph->node[at];
    add_initializer(mp, "pads", (const int64_t[]){0, 0, 1, 1, 0, 0, 0, 0}, NULL, 8);
    insert_node(mp, at, "Pad", (const char *[]){pool->input[0], "pads"}, 2, "padded");
    set_string(&pool->input[0], "padded");
    Model *back;
    ck_assert_msg(import_model(mp, &back, &err) == 0, "%s", err.msg);
    const Window *w = &back->spec.layers[1].cfg.pool;
    ck_assert(w->explicit_pad && w->pad_top == 1 && w->pad_left == 1 && w->pad_bottom == 0 &&
              w->pad_right == 0);
    ck_assert_int_eq(back->spec.layers[1].out.h, 14); /* (28 + 1 - 2) / 2 + 1 */
    model_free(back);
    set_string(&pool->op_type, "AveragePool");
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "before an AveragePool is not supported") &&
                  strstr(err.msg, "Pad (node "), "%s", err.msg);
    set_string(&pool->op_type, "MaxPool");
    Onnx__NodeProto *relu = find_node(mp, "Relu");
    set_string(&relu->op_type, "Tanh");
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "only after a Relu"), "%s", err.msg);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    model_free(m);
}
END_TEST

START_TEST(test_pad_refusals)
{
    Model *m = seed_model("fashion-cnn");
    unsigned char *buf;
    Onnx__ModelProto *mp = padded_conv(m, &buf, false);
    Onnx__NodeProto *pad = find_node(mp, "Pad");
    Onnx__TensorProto *pads = mp->graph->initializer[mp->graph->n_initializer - 1];
    Model *back;
    MnError err;
    /* another mode */
    Onnx__AttributeProto *mode = add_attr(pad, "mode", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    mode->has_s = 1;
    mode->s.data = (uint8_t *)strdup("reflect");
    mode->s.len = 7;
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "mode \"reflect\" is not supported") && strstr(err.msg, "Pad"),
                  "%s", err.msg);
    memcpy(mode->s.data, "constant", 7); /* "constan": still not a mode */
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    onnx__attribute_proto__free_unpacked(mode, NULL); /* back to the default, constant */
    pad->n_attribute = 0;
    /* a value other than zero */
    add_initializer(mp, "one", NULL, (const float[]){1.0f}, 0);
    char **in = realloc(pad->input, 3 * sizeof *in);
    pad->input = in;
    pad->input[2] = strdup("one");
    pad->n_input = 3;
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "constant value 1 is not supported"), "%s", err.msg);
    set_string(&pad->input[2], "");
    ck_assert_msg(import_model(mp, &back, &err) == 0, "%s", err.msg); /* absent: zeros */
    model_free(back);
    /* the channels padded; a crop */
    pads->int64_data[1] = 1;
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "only the height and width"), "%s", err.msg);
    pads->int64_data[1] = 0;
    pads->int64_data[6] = -1;
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "no crops"), "%s", err.msg);
    pads->int64_data[6] = 1;
    /* pads that are not a constant */
    set_string(&pad->input[1], "input");
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "input 1 must be a constant"), "%s", err.msg);
    set_string(&pad->input[1], "pads");
    /* read by something other than a Conv or pool */
    Onnx__NodeProto *conv = find_node(mp, "Conv");
    set_string(&conv->op_type, "Relu");
    conv->n_input = 1;
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "only a Conv, MaxPool or AveragePool may read it"), "%s", err.msg);
    conv->n_input = 3;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    /* pads computed from constants: a Cast to anything but INT64 is not evaluated */
    mp = padded_conv(m, &buf, true);
    Onnx__NodeProto *cast = find_node(mp, "Cast");
    cast->attribute[0]->i = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "Cast of a constant to type 1: only INT64") && strstr(err.msg, "Cast"),
                  "%s", err.msg);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    model_free(m);
}
END_TEST

/* A dense gelu's export: its Div, Erf, Add, Mul, Mul (in mnistd's order). */
static const char *const GELU_SPEC =
    "{\"name\": \"g\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 8,"
    " \"activation\": \"gelu\"}, {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}";

static Onnx__TensorProto *initializer(Onnx__ModelProto *mp, const char *name)
{
    for (size_t i = 0; i < mp->graph->n_initializer; i++)
        if (!strcmp(mp->graph->initializer[i]->name, name))
            return mp->graph->initializer[i];
    ck_abort_msg("no initializer %s", name);
    return NULL;
}

static void set_scalar(Onnx__ModelProto *mp, const char *name, float v)
{
    Onnx__TensorProto *t = initializer(mp, name);
    ck_assert(t->has_raw_data && t->raw_data.len == 4);
    memcpy(t->raw_data.data, &v, 4); /* little-endian hosts only, as the tests' data */
}

START_TEST(test_gelu_pattern)
{
    Model *m = check_util_build_model(GELU_SPEC);
    perturb(m);
    unsigned char *buf;
    MnError err = {0};
    Onnx__ModelProto *mp = proto_of(m, &buf);
    Model *back;
    ck_assert_msg(import_model(mp, &back, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(back->spec.n_layers, 3); /* the gelu is the dense layer's */
    ck_assert_int_eq(back->spec.layers[1].act, ACT_GELU);
    check_same_outputs(m, back, "gelu");
    model_free(back);
    /* the products the other way round: x * 0.5 first, then times 1 + erf */
    Onnx__NodeProto *div = find_node(mp, "Div");
    size_t e = node_index(mp, "Erf");
    Onnx__NodeProto *m1 = mp->graph->node[e + 2], *m2 = mp->graph->node[e + 3];
    ck_assert_str_eq(m1->op_type, "Mul");
    char *half = strdup(m2->input[1]), *plus = strdup(m1->input[1]), *x = strdup(m1->input[0]);
    set_string(&m1->input[1], half);
    set_string(&m2->input[0], plus);
    set_string(&m2->input[1], m1->output[0]);
    ck_assert_msg(import_model(mp, &back, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(back->spec.layers[1].act, ACT_GELU);
    check_same_outputs(m, back, "gelu, (x * 0.5) * (1 + erf)");
    model_free(back);
    /* not sqrt(2), not a half, not 1: refused, naming the Erf */
    set_scalar(mp, div->input[1], 2.0f);
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "Erf is supported only in gelu's erf form") &&
                  strstr(err.msg, "is not x / sqrt(2)") && strstr(err.msg, "Erf):"), "%s", err.msg);
    set_scalar(mp, div->input[1], (float)M_SQRT2);
    set_scalar(mp, half, 0.4f);
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "not multiplied by x and 0.5"), "%s", err.msg);
    set_scalar(mp, half, 0.5f);
    Onnx__NodeProto *add = mp->graph->node[e + 1];
    set_scalar(mp, add->input[1], 2.0f);
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "not added to 1"), "%s", err.msg);
    set_scalar(mp, add->input[1], 1.0f);
    /* an Erf of a one-input node: refused, and that node's inputs are not
     * read past (fuzz_onnx found the read) */
    free(div->input[1]);
    div->n_input = 1;
    div->input = realloc(div->input, sizeof *div->input);
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "is not x / sqrt(2)"), "%s", err.msg);
    /* a stray Erf: of the dense's output itself */
    set_string(&mp->graph->node[e]->input[0], x);
    ck_assert_int_eq(import_model(mp, &back, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "Erf is supported only in gelu's erf form"), "%s", err.msg);
    free(half);
    free(plus);
    free(x);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    model_free(m);
}
END_TEST

/* --- refusals --- */

static int import_bytes(const void *buf, size_t len, MnError *err)
{
    OnnxImportOptions opt;
    default_options(&opt);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    memset(err, 0, sizeof *err);
    int rc = onnx_import(buf, len, &opt, &lim, &m, err);
    model_free(m);
    ck_assert(rc != 0 || m != NULL);
    return rc;
}

/* An exported seed's ModelProto, to edit into a bad one. */
static Onnx__ModelProto *exported(const char *spec_name, unsigned char **buf)
{
    Model *m = seed_model(spec_name);
    Onnx__ModelProto *mp = proto_of(m, buf);
    model_free(m);
    return mp;
}

/* Imports mp, refused or not, keeping nothing. */
static int import_proto(Onnx__ModelProto *mp, MnError *err)
{
    Model *m;
    int rc = import_model(mp, &m, err);
    ck_assert(rc != 0 || m != NULL);
    model_free(m);
    return rc;
}

START_TEST(test_refuses_garbage)
{
    MnError err;
    ck_assert_int_eq(import_bytes("\x08\x07\xff\xff\xff", 5, &err), MN_EINVAL);
    ck_assert_msg(strstr(err.msg, "not an ONNX model"), "%s", err.msg);
    ck_assert_int_eq(import_bytes("", 0, &err), MN_EINVAL);
    /* a valid message with no graph */
    ck_assert_int_eq(import_bytes("\x08\x07", 2, &err), MN_EINVAL);
    ck_assert_msg(strstr(err.msg, "no graph"), "%s", err.msg);
}
END_TEST

START_TEST(test_refuses_over_limit)
{
    unsigned char *buf;
    Onnx__ModelProto *mp = exported("mnist-sigmoid16", &buf);
    size_t len = onnx__model_proto__get_packed_size(mp);
    OnnxImportOptions opt;
    default_options(&opt);
    opt.max_bytes = len - 1;
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_int_eq(onnx_import(buf, len, &opt, &lim, &m, &err), MN_ELIMIT);
    ck_assert_msg(strstr(err.msg, "over the limit"), "%s", err.msg);
    opt.max_bytes = len;
    ck_assert_int_eq(onnx_import(buf, len, &opt, &lim, &m, &err), 0);
    model_free(m);
    /* the parameter limit holds for imports as for specs */
    lim.max_params = 1000;
    m = NULL;
    ck_assert_int_eq(onnx_import(buf, len, &opt, &lim, &m, &err), MN_ELIMIT);
    ck_assert_ptr_null(m);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}
END_TEST

START_TEST(test_refuses_unsupported_operator)
{
    /* swish exports as Mul of x and its Sigmoid: a Mul mnistd does not import */
    Model *m = check_util_build_model(
        "{\"name\": \"s\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 8,"
        " \"activation\": \"swish\"}, {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}");
    unsigned char *buf;
    size_t len;
    MnError err = {0};
    ck_assert_int_eq(onnx_export(m, &buf, &len, &err), 0);
    ck_assert_int_eq(import_bytes(buf, len, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "node ") && strstr(err.msg, "operator Mul is not supported"),
                  "%s", err.msg);
    free(buf);
    model_free(m);
}
END_TEST

START_TEST(test_refuses_unsupported_attributes)
{
    unsigned char *buf;
    Onnx__ModelProto *mp = exported("mnist-cnn", &buf);
    Onnx__NodeProto *conv = find_node(mp, "Conv");
    /* dilations 2: a value mnistd does not have */
    Onnx__AttributeProto *a = NULL;
    for (size_t i = 0; i < conv->n_attribute; i++)
        if (!strcmp(conv->attribute[i]->name, "strides"))
            a = conv->attribute[i];
    ck_assert_ptr_nonnull(a);
    char *saved = a->name;
    a->name = "dilations";
    a->ints[0] = a->ints[1] = 2;
    MnError err;
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "dilations 2x2") && strstr(err.msg, "Conv"), "%s", err.msg);
    /* an attribute mnistd does not know at all */
    a->name = "bogus";
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "attribute \"bogus\" is not supported") && strstr(err.msg, "node "),
                  "%s", err.msg);
    a->name = saved;
    a->ints[0] = a->ints[1] = 1;
    /* group 2 */
    Onnx__AttributeProto group = ONNX__ATTRIBUTE_PROTO__INIT, *extra[16];
    group.name = "group";
    group.has_type = 1;
    group.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    group.has_i = 1;
    group.i = 2;
    memcpy(extra, conv->attribute, conv->n_attribute * sizeof *extra);
    extra[conv->n_attribute] = &group;
    Onnx__AttributeProto **old = conv->attribute;
    conv->attribute = extra;
    conv->n_attribute++;
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "group 2 is not supported"), "%s", err.msg);
    conv->n_attribute--;
    conv->attribute = old;
    ck_assert_int_eq(import_proto(mp, &err), 0); /* restored: imports again */
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}
END_TEST

START_TEST(test_activation_attributes)
{
    /* mnist-mlp64's export with its Relu replaced: Gelu (ONNX opset 20's)
     * imports as mnistd's gelu, a tanh approximation is refused; LeakyRelu
     * and Elu of any slope import, a negative one is refused */
    unsigned char *buf;
    Onnx__ModelProto *mp = exported("mnist-mlp64", &buf);
    Onnx__NodeProto *act = find_node(mp, "Relu");
    char *saved = act->op_type;
    act->op_type = "Gelu";
    Model *m;
    MnError err;
    ck_assert_msg(import_model(mp, &m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m->spec.layers[1].act, ACT_GELU);
    model_free(m);
    Onnx__AttributeProto a = ONNX__ATTRIBUTE_PROTO__INIT, *list[1] = {&a};
    a.name = "approximate";
    a.has_type = 1;
    a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    a.has_s = 1;
    a.s.data = (uint8_t *)"tanh";
    a.s.len = 4;
    act->n_attribute = 1;
    act->attribute = list;
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "approximate \"tanh\" is not supported"), "%s", err.msg);
    act->op_type = "LeakyRelu";
    a.name = "alpha";
    a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a.has_s = 0;
    a.has_f = 1;
    /* mnistd's slopes are the dense layer's activation; others a layer of their own */
    const struct {
        const char *op;
        float alpha;
        LayerType type;
        Activation act;
    } slopes[] = {{"LeakyRelu", 0.2f, LAYER_DENSE, ACT_LEAKY_RELU},
                  {"LeakyRelu", 0.01f, LAYER_LEAKY_RELU, ACT_LINEAR},
                  {"Elu", 1.0f, LAYER_DENSE, ACT_ELU},
                  {"Elu", 0.5f, LAYER_ELU, ACT_LINEAR}};
    for (size_t i = 0; i < sizeof slopes / sizeof *slopes; i++) {
        act->op_type = (char *)slopes[i].op;
        a.f = slopes[i].alpha;
        import_model(mp, &m, &err);
        ck_assert_msg(m, "%s %g: %s", slopes[i].op, slopes[i].alpha, err.msg);
        const Layer *l = &m->spec.layers[m->spec.n_layers - 2];
        ck_assert_int_eq(l->type, slopes[i].type);
        ck_assert_int_eq(l->act, slopes[i].act);
        if (l->type != LAYER_DENSE)
            ck_assert_float_eq(l->cfg.slope.alpha, slopes[i].alpha);
        model_free(m);
    }
    a.f = -0.1f; /* a slope the layers do not take */
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "alpha -0.1 is not supported (0 to 100)") && strstr(err.msg, "Elu"),
                  "%s", err.msg);
    act->n_attribute = 0;
    act->attribute = NULL;
    act->op_type = saved;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}
END_TEST

START_TEST(test_refuses_external_data)
{
    unsigned char *buf;
    Onnx__ModelProto *mp = exported("mnist-mlp64", &buf);
    Onnx__TensorProto *t = mp->graph->initializer[0];
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    MnError err;
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "external data"), "%s", err.msg);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}
END_TEST

START_TEST(test_refuses_lying_dims)
{
    unsigned char *buf;
    Onnx__ModelProto *mp = exported("mnist-mlp64", &buf);
    Onnx__TensorProto *t = mp->graph->initializer[0]; /* the first kernel, 784 x 64 */
    int64_t saved[2] = {t->dims[0], t->dims[1]};
    t->dims[0] = (int64_t)1 << 40; /* claims 2^46 floats, carries 50,176 */
    MnError err;
    ck_assert_int_eq(import_proto(mp, &err), MN_ELIMIT);
    ck_assert_msg(strstr(err.msg, "more than"), "%s", err.msg);
    t->dims[0] = saved[0] + 1; /* one row more than the data holds */
    ck_assert_int_eq(import_proto(mp, &err), MN_EINVAL);
    ck_assert_msg(strstr(err.msg, "the data holds 50176"), "%s", err.msg);
    t->dims[0] = -saved[0];
    ck_assert(import_proto(mp, &err) != 0);
    t->dims[0] = saved[0];
    t->dims[1] = saved[1];
    ck_assert_int_eq(import_proto(mp, &err), 0);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}
END_TEST

/* A node whose attribute holds a graph whose node holds an attribute...:
 * protobuf-c would recurse once per level. */
static size_t varint(unsigned char *p, size_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

START_TEST(test_refuses_deep_nesting)
{
    /* From the inside out: AttributeProto.g (field 6) in NodeProto.attribute
     * (5) in GraphProto.node (1), again and again, in ModelProto.graph (7). */
    enum { LEVELS = 100000, WRAPS = 3 * LEVELS + 1 };
    static const int tags[3] = {6, 5, 1};
    size_t *len = malloc((WRAPS + 1) * sizeof *len);
    unsigned char tmp[10];
    len[0] = 0;
    for (int k = 0; k < WRAPS; k++)
        len[k + 1] = len[k] + 1 + varint(tmp, len[k]);
    unsigned char *buf = malloc(len[WRAPS]), *p = buf;
    for (int k = WRAPS - 1; k >= 0; k--) {
        *p++ = (unsigned char)((k == WRAPS - 1 ? 7 : tags[k % 3]) << 3 | 2);
        p += varint(p, len[k]);
    }
    ck_assert_int_eq((size_t)(p - buf), len[WRAPS]);
    MnError err;
    ck_assert_int_eq(import_bytes(buf, len[WRAPS], &err), MN_ELIMIT);
    ck_assert_msg(strstr(err.msg, "nest deeper"), "%s", err.msg);
    free(buf);
    free(len);
}
END_TEST

/* --- weights into a spec (--into) --- */

START_TEST(test_weights_into_spec)
{
    Model *src = seed_model("mnist-mlp64");
    perturb(src);
    OnnxImportOptions opt;
    default_options(&opt);
    Model *onnx = export_import(src, &opt);
    Model *target = seed_model("mnist-mlp64"), *into = NULL, *wrong = NULL;
    MnError err = {0};
    SpecLimits lim;
    spec_limits_default(&lim);
    ck_assert_int_eq(model_import_weights(&target->spec, onnx, &lim, &into, &err), 0);
    ck_assert_int_eq(into->n_params, src->n_params);
    ck_assert(memcmp(into->params, src->params, src->n_params * sizeof *src->params) == 0);
    ck_assert_int_eq(into->spec.epochs, target->spec.epochs); /* the spec's, not the file's */
    Model *other = seed_model("mnist-sigmoid16");
    ck_assert_int_eq(model_import_weights(&other->spec, onnx, &lim, &wrong, &err), MN_ESPEC);
    ck_assert_ptr_null(wrong);
    ck_assert_msg(strstr(err.msg, "does not match the file's layer"), "%s", err.msg);
    model_free(src);
    model_free(onnx);
    model_free(target);
    model_free(into);
    model_free(other);
}
END_TEST

START_TEST(test_mnm_bytes)
{
    /* an .mnm upload is told by its magic and loaded, renamed */
    char path[4096];
    snprintf(path, sizeof path, "%s/models/mnist-cnn/v1.mnm", check_util_src_dir());
    size_t len;
    char *buf = check_util_read_file(path, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert(model_file_has_magic(buf, len));
    OnnxImportOptions opt;
    default_options(&opt);
    opt.name = "uploaded";
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_int_eq(model_import_bytes(buf, len, &opt, &lim, &m, &err), 0);
    ck_assert_str_eq(m->spec.name, "uploaded");
    model_free(m);
    buf[len / 2] ^= 1; /* its CRC catches this */
    ck_assert_int_eq(model_import_bytes(buf, len, &opt, &lim, &m, &err), MN_ECORRUPT);
    free(buf);
}
END_TEST

/* --- PyTorch's exports, and exports for ONNX Runtime (make onnx) --- */

static const char *onnx_dir(void)
{
    const char *d = getenv("MNISTD_ONNX_DIR");
    return d && *d ? d : NULL;
}

static float *read_floats(const char *path, size_t want)
{
    size_t len;
    char *buf = check_util_read_file(path, &len);
    ck_assert_msg(buf, "cannot read %s", path);
    ck_assert_msg(len == want * sizeof(float), "%s: %zu bytes, %zu floats expected", path, len,
                  want);
    return (float *)buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0, "cannot write %s", path);
}

#define TORCH_IMAGES 1000

/* Writes DIR/export/NAME.onnx and NAME.probs (mnistd's probabilities). */
static void export_for_ort(Model *m, const char *name, const float *images)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/export", onnx_dir());
    mkdir(path, 0755);
    unsigned char *buf;
    size_t len;
    MnError err = {0};
    ck_assert_msg(onnx_export(m, &buf, &len, &err) == 0, "%s: %s", name, err.msg);
    snprintf(path, sizeof path, "%s/export/%s.onnx", onnx_dir(), name);
    write_file(path, buf, len);
    free(buf);
    float *p = probabilities(m, images, TORCH_IMAGES);
    snprintf(path, sizeof path, "%s/export/%s.probs", onnx_dir(), name);
    write_file(path, p, (size_t)TORCH_IMAGES * m->n_classes * sizeof *p);
    free(p);
}

START_TEST(test_torch_imports)
{
    ck_assert_msg(onnx_dir(), "MNISTD_ONNX_DIR is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/images.f32", onnx_dir());
    float *images = read_floats(path, (size_t)TORCH_IMAGES * 784);
    snprintf(path, sizeof path, "%s/torch", onnx_dir());
    DIR *d = opendir(path);
    ck_assert_msg(d, "no %s", path);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".onnx"))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
        snprintf(path, sizeof path, "%s/torch/%s", onnx_dir(), e->d_name);
        size_t len;
        char *buf = check_util_read_file(path, &len);
        ck_assert_ptr_nonnull(buf);
        OnnxImportOptions opt;
        default_options(&opt);
        opt.name = name;
        SpecLimits lim;
        spec_limits_default(&lim);
        Model *m = NULL;
        MnError err = {0};
        ck_assert_msg(onnx_import(buf, len, &opt, &lim, &m, &err) == 0, "%s: %s", path, err.msg);
        free(buf);
        ck_assert_msg(model_fold_for_serving(m, &err) == 0, "%s: %s", name, err.msg);
        float *p = probabilities(m, images, TORCH_IMAGES);
        snprintf(path, sizeof path, "%s/torch/%s.probs", onnx_dir(), name);
        float *want = read_floats(path, (size_t)TORCH_IMAGES * m->n_classes);
        double diff = max_diff(p, want, (size_t)TORCH_IMAGES * m->n_classes);
        printf("onnx: torch %s imported: %d layers, max |mnistd - torch| = %.3g over %d images\n",
               name, m->spec.n_layers, diff, TORCH_IMAGES);
        ck_assert_msg(diff < TOLERANCE, "%s: mnistd and PyTorch differ by %g", name, diff);
        snprintf(path, sizeof path, "torch-%s", name);
        export_for_ort(m, path, images);
        free(p);
        free(want);
        model_free(m);
        seen++;
    }
    closedir(d);
    ck_assert_int_ge(seen, 10);
    free(images);
}
END_TEST

START_TEST(test_exports_for_ort)
{
    ck_assert_msg(onnx_dir(), "MNISTD_ONNX_DIR is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/images.f32", onnx_dir());
    float *images = read_floats(path, (size_t)TORCH_IMAGES * 784);
    for (size_t i = 0; i < sizeof SEEDS / sizeof *SEEDS; i++) {
        Model *m = seed_model(SEEDS[i]);
        perturb(m);
        snprintf(path, sizeof path, "seed-%s", SEEDS[i]);
        export_for_ort(m, path, images);
        model_free(m);
    }
    for (size_t i = 0; i < sizeof SHIPPED / sizeof *SHIPPED; i++) {
        Model *m = shipped(SHIPPED[i]);
        snprintf(path, sizeof path, "shipped-%s", SHIPPED[i]);
        export_for_ort(m, path, images);
        model_free(m);
    }
    Model *g = check_util_build_model(GRAPH_SPEC);
    perturb(g);
    export_for_ort(g, "graph", images);
    model_free(g);
    /* what the importer cannot read back, ONNX Runtime still runs */
    g = check_util_build_model(
        "{\"name\": \"g\", \"input_shape\": [28, 28, 1], \"preprocess\": \"standardize\","
        " \"layers\": [{\"type\": \"conv2d\", \"filters\": 4, \"kernel_size\": 3, \"activation\": \"gelu\"},"
        " {\"type\": \"activation\", \"activation\": \"swish\"}, {\"type\": \"flatten\"},"
        " {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}");
    perturb(g);
    size_t d = shape_numel(g->spec.input);
    g->input_mean = malloc(d * sizeof *g->input_mean);
    g->input_std = malloc(d * sizeof *g->input_std);
    for (size_t j = 0; j < d; j++) {
        g->input_mean[j] = 20.0f + 50.0f * (float)(j % 7) / 7.0f; /* of 0..255 pixels */
        g->input_std[j] = 60.0f + 10.0f * (float)(j % 5);
    }
    export_for_ort(g, "gelu-swish-standardized", images);
    model_free(g);
    free(images);
}
END_TEST

static Suite *onnx_suite(void)
{
    Suite *s = suite_create("onnx");
    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 20);
    tcase_add_loop_test(core, test_seed_roundtrip, 0, (int)(sizeof SEEDS / sizeof *SEEDS));
    tcase_add_loop_test(core, test_shipped_roundtrip, 0, sizeof SHIPPED / sizeof *SHIPPED);
    tcase_add_test(core, test_graph_roundtrip);
    tcase_add_test(core, test_explicit_padding_gradients);
    tcase_add_test(core, test_weights_into_spec);
    tcase_add_test(core, test_mnm_bytes);
    tcase_add_test(core, test_pad_folds);
    tcase_add_test(core, test_pad_into_pool);
    tcase_add_test(core, test_gelu_pattern);
    suite_add_tcase(s, core);
    TCase *bad = tcase_create("Refused");
    tcase_add_test(bad, test_refuses_garbage);
    tcase_add_test(bad, test_refuses_over_limit);
    tcase_add_test(bad, test_refuses_unsupported_operator);
    tcase_add_test(bad, test_refuses_unsupported_attributes);
    tcase_add_test(bad, test_activation_attributes);
    tcase_add_test(bad, test_refuses_external_data);
    tcase_add_test(bad, test_refuses_lying_dims);
    tcase_add_test(bad, test_refuses_deep_nesting);
    tcase_add_test(bad, test_pad_refusals);
    suite_add_tcase(s, bad);
    if (onnx_dir()) {
        TCase *torch = tcase_create("Torch");
        tcase_set_timeout(torch, 120);
        tcase_add_test(torch, test_torch_imports);
        tcase_add_test(torch, test_exports_for_ort);
        suite_add_tcase(s, torch);
    }
    return s;
}

MN_TEST_MAIN(onnx_suite)
