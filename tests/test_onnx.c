/* test_onnx.c - ONNX in and out. Core: every seed spec, the shipped models
 * and a graph with every exported layer type survive export then import
 * with the same probabilities; metadata comes back; bad files are refused
 * naming the problem (not ONNX, over the limit, unsupported operator or
 * attribute, external data, dims that lie about their data, nesting past
 * the limit); weights go into a matching spec and not into another.
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
    "  {\"type\": \"flatten\", \"name\": \"flat\"},"
    "  {\"type\": \"dense\", \"name\": \"fc\", \"units\": 12, \"activation\": \"sigmoid\"},"
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

/* An exported model's ModelProto, to edit into a bad one. */
static Onnx__ModelProto *exported(const char *spec_name, unsigned char **buf)
{
    Model *m = seed_model(spec_name);
    size_t len;
    MnError err = {0};
    ck_assert_int_eq(onnx_export(m, buf, &len, &err), 0);
    model_free(m);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, *buf);
    ck_assert_ptr_nonnull(mp);
    return mp;
}

static int import_proto(Onnx__ModelProto *mp, MnError *err)
{
    size_t len = onnx__model_proto__get_packed_size(mp);
    unsigned char *buf = malloc(len);
    onnx__model_proto__pack(mp, buf);
    int rc = import_bytes(buf, len, err);
    free(buf);
    return rc;
}

static Onnx__NodeProto *find_node(Onnx__ModelProto *mp, const char *op)
{
    for (size_t i = 0; i < mp->graph->n_node; i++)
        if (!strcmp(mp->graph->node[i]->op_type, op))
            return mp->graph->node[i];
    ck_abort_msg("no %s node", op);
    return NULL;
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
    /* gelu exports as Div, Erf, Add, Mul: Erf has no mnistd layer */
    Model *m = check_util_build_model(
        "{\"name\": \"g\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 8,"
        " \"activation\": \"gelu\"}, {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}");
    unsigned char *buf;
    size_t len;
    MnError err = {0};
    ck_assert_int_eq(onnx_export(m, &buf, &len, &err), 0);
    ck_assert_int_eq(import_bytes(buf, len, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "node ") && strstr(err.msg, "operator Div is not supported"),
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
     * imports as mnistd's gelu; a tanh approximation, PyTorch's LeakyRelu
     * slope 0.01 and an Elu alpha mnistd lacks are refused, naming them */
    unsigned char *buf;
    Onnx__ModelProto *mp = exported("mnist-mlp64", &buf);
    Onnx__NodeProto *act = find_node(mp, "Relu");
    char *saved = act->op_type;
    act->op_type = "Gelu";
    size_t len = onnx__model_proto__get_packed_size(mp);
    unsigned char *bytes = malloc(len);
    onnx__model_proto__pack(mp, bytes);
    OnnxImportOptions opt;
    default_options(&opt);
    SpecLimits lim;
    spec_limits_default(&lim);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_msg(onnx_import(bytes, len, &opt, &lim, &m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m->spec.layers[1].act, ACT_GELU);
    model_free(m);
    free(bytes);
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
    a.f = 0.01f;
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "alpha 0.01 is not supported") && strstr(err.msg, "LeakyRelu"),
                  "%s", err.msg);
    a.f = 0.2f; /* mnistd's slope */
    ck_assert_int_eq(import_proto(mp, &err), 0);
    act->op_type = "Elu";
    a.f = 0.5f;
    ck_assert_int_eq(import_proto(mp, &err), MN_ESPEC);
    ck_assert_msg(strstr(err.msg, "alpha 0.5"), "%s", err.msg);
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
    ck_assert_int_ge(seen, 8);
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
