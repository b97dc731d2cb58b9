/* onnx_export.c - an mnistd model as an ONNX graph, built as protobuf-c
 * messages and packed by it. Activations are NHWC here and NCHW in ONNX:
 * each value is tracked as either a 4-D NCHW tensor or a flat (N,
 * features) one in mnistd's H,W,C feature order, and converted (Transpose
 * and Flatten, or Reshape and Transpose) only where a node needs the
 * other. Kernels are written in ONNX's layouts: dense (in, units) is Gemm's
 * B as it is; conv (kh, kw, cin, f) becomes OIHW. Keras's "same" puts the
 * odd pixel of padding at the bottom/right; pads say so explicitly. */
#include "onnx_export.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_file.h"

/* Every message, array and string the graph is made of, freed together. */
typedef struct {
    void **owned;
    size_t n_owned, cap_owned;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int fresh;
    bool failed; /* out of memory somewhere: the result is not used */
} Builder;

typedef struct {
    const char *name;
    bool nchw;   /* else flat, features in H,W,C order */
    Shape shape; /* mnistd's */
} Val;

static bool grow(void ***arr, size_t *n, size_t *cap)
{
    if (*n < *cap)
        return true;
    size_t c = *cap ? 2 * *cap : 64;
    void **p = realloc(*arr, c * sizeof *p);
    if (!p)
        return false;
    *arr = p;
    *cap = c;
    return true;
}

static void *own(Builder *b, void *p)
{
    if (!p || !grow(&b->owned, &b->n_owned, &b->cap_owned)) {
        free(p);
        b->failed = true;
        return NULL;
    }
    b->owned[b->n_owned++] = p;
    return p;
}

static void *zalloc(Builder *b, size_t n) { return own(b, calloc(1, n ? n : 1)); }

static char *str(Builder *b, const char *s)
{
    char *p = zalloc(b, strlen(s) + 1);
    if (p)
        strcpy(p, s);
    return p;
}

static char *fresh(Builder *b, const char *stem)
{
    char name[96];
    snprintf(name, sizeof name, "%s_%d", stem, b->fresh++);
    return str(b, name);
}

/* A float initializer (raw_data, little-endian) of the given dims. */
static const char *tensor(Builder *b, const char *stem, const int64_t *dims, size_t nd,
                          const float *data)
{
    Onnx__TensorProto *t = zalloc(b, sizeof *t);
    int64_t *d = zalloc(b, nd * sizeof *d);
    size_t n = 1;
    for (size_t i = 0; i < nd; i++)
        n *= (size_t)dims[i];
    uint8_t *raw = zalloc(b, 4 * n);
    if (!t || !d || !raw || !grow((void ***)&b->inits, &b->n_inits, &b->cap_inits)) {
        b->failed = true;
        return "";
    }
    onnx__tensor_proto__init(t);
    if (nd) /* a scalar has no dims (and dims may be NULL) */
        memcpy(d, dims, nd * sizeof *d);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &data[i], sizeof u);
        for (int k = 0; k < 4; k++)
            raw[4 * i + (size_t)k] = (uint8_t)(u >> (8 * k));
    }
    t->n_dims = nd;
    t->dims = d;
    t->has_data_type = true;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->has_raw_data = true;
    t->raw_data.len = 4 * n;
    t->raw_data.data = raw;
    t->name = fresh(b, stem);
    b->inits[b->n_inits++] = t;
    return t->name ? t->name : "";
}

static const char *scalar(Builder *b, float v) { return tensor(b, "const", NULL, 0, &v); }

/* An INT64 initializer (Reshape's shape). */
static const char *int64s(Builder *b, const int64_t *v, size_t n)
{
    Onnx__TensorProto *t = zalloc(b, sizeof *t);
    int64_t *d = zalloc(b, sizeof *d), *data = zalloc(b, n * sizeof *data);
    if (!t || !d || !data || !grow((void ***)&b->inits, &b->n_inits, &b->cap_inits)) {
        b->failed = true;
        return "";
    }
    onnx__tensor_proto__init(t);
    *d = (int64_t)n;
    memcpy(data, v, n * sizeof *data);
    t->n_dims = 1;
    t->dims = d;
    t->has_data_type = true;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_int64_data = n;
    t->int64_data = data;
    t->name = fresh(b, "shape");
    b->inits[b->n_inits++] = t;
    return t->name ? t->name : "";
}

/* A node with n_in inputs and one new output; returns it (NULL on OOM). */
static Onnx__NodeProto *node(Builder *b, const char *op, const char *const *in, size_t n_in)
{
    Onnx__NodeProto *n = zalloc(b, sizeof *n);
    char **ins = zalloc(b, n_in * sizeof *ins), **outs = zalloc(b, sizeof *outs);
    if (!n || !ins || !outs || !grow((void ***)&b->nodes, &b->n_nodes, &b->cap_nodes)) {
        b->failed = true;
        return NULL;
    }
    onnx__node_proto__init(n);
    for (size_t i = 0; i < n_in; i++)
        ins[i] = str(b, in[i]);
    n->n_input = n_in;
    n->input = ins;
    outs[0] = fresh(b, op);
    n->n_output = 1;
    n->output = outs;
    n->op_type = str(b, op);
    n->name = fresh(b, op);
    b->nodes[b->n_nodes++] = n;
    return n;
}

static const char *out_of(const Onnx__NodeProto *n) { return n && n->output[0] ? n->output[0] : ""; }

static Onnx__AttributeProto *attribute(Builder *b, Onnx__NodeProto *n, const char *name)
{
    if (!n)
        return NULL;
    Onnx__AttributeProto *a = zalloc(b, sizeof *a);
    Onnx__AttributeProto **list = zalloc(b, (n->n_attribute + 1) * sizeof *list);
    if (!a || !list) {
        b->failed = true;
        return NULL;
    }
    onnx__attribute_proto__init(a);
    a->name = str(b, name);
    if (n->n_attribute)
        memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
    a->has_type = true;
    return a;
}

static void attr_int(Builder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attribute(b, n, name);
    if (a) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = true;
        a->i = v;
    }
}

static void attr_float(Builder *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attribute(b, n, name);
    if (a) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = true;
        a->f = v;
    }
}

static void attr_ints(Builder *b, Onnx__NodeProto *n, const char *name, const int64_t *v,
                      size_t count)
{
    Onnx__AttributeProto *a = attribute(b, n, name);
    int64_t *vals = a ? zalloc(b, count * sizeof *vals) : NULL;
    if (vals) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        memcpy(vals, v, count * sizeof *vals);
        a->n_ints = count;
        a->ints = vals;
    }
}

static const char *op1(Builder *b, const char *op, const char *x)
{
    return out_of(node(b, op, &x, 1));
}

static const char *op2(Builder *b, const char *op, const char *x, const char *y)
{
    const char *in[2] = {x, y};
    return out_of(node(b, op, in, 2));
}

/* --- layouts --- */

static Val as_flat(Builder *b, Val v)
{
    if (!v.nchw)
        return v;
    const char *x = v.name;
    if (v.shape.c > 1 && v.shape.h * v.shape.w > 1) { /* C,H,W -> H,W,C before flattening */
        Onnx__NodeProto *t = node(b, "Transpose", &x, 1);
        attr_ints(b, t, "perm", (const int64_t[]){0, 2, 3, 1}, 4);
        x = out_of(t);
    }
    Onnx__NodeProto *f = node(b, "Flatten", &x, 1);
    attr_int(b, f, "axis", 1);
    return (Val){out_of(f), false, v.shape};
}

static Val as_nchw(Builder *b, Val v)
{
    if (v.nchw)
        return v;
    Shape s = v.shape;
    bool pixels = s.h * s.w > 1;
    int64_t dims[4] = {-1, pixels ? s.h : s.c, pixels ? s.w : 1, pixels ? s.c : 1};
    const char *x = op2(b, "Reshape", v.name, int64s(b, dims, 4));
    if (pixels) {
        Onnx__NodeProto *t = node(b, "Transpose", &x, 1);
        attr_ints(b, t, "perm", (const int64_t[]){0, 3, 1, 2}, 4);
        x = out_of(t);
    }
    return (Val){x, true, s};
}

/* --- activations --- */

/* LeakyRelu or Elu (op) of v with its alpha: the activations', or the layers'. */
static Val with_slope(Builder *b, Val v, const char *op, float alpha)
{
    Onnx__NodeProto *n = node(b, op, &v.name, 1);
    attr_float(b, n, "alpha", alpha);
    v.name = out_of(n);
    return v;
}

static Val activation(Builder *b, Val v, Activation act)
{
    const char *x = v.name;
    switch (act) {
    case ACT_LINEAR:
    case ACT_COUNT:
        return v;
    case ACT_RELU:
        v.name = op1(b, "Relu", x);
        return v;
    case ACT_SIGMOID:
        v.name = op1(b, "Sigmoid", x);
        return v;
    case ACT_TANH:
        v.name = op1(b, "Tanh", x);
        return v;
    case ACT_SOFTMAX: { /* over all of a sample's outputs, as mnistd's */
        v = as_flat(b, v);
        Onnx__NodeProto *n = node(b, "Softmax", &v.name, 1);
        attr_int(b, n, "axis", -1);
        v.name = out_of(n);
        return v;
    }
    case ACT_GELU: { /* x * 0.5 * (1 + erf(x / sqrt 2)): Gelu itself is opset 20 */
        const char *e = op1(b, "Erf", op2(b, "Div", x, scalar(b, (float)M_SQRT2)));
        const char *p = op2(b, "Mul", x, op2(b, "Add", e, scalar(b, 1.0f)));
        v.name = op2(b, "Mul", p, scalar(b, 0.5f));
        return v;
    }
    case ACT_SWISH:
        v.name = op2(b, "Mul", x, op1(b, "Sigmoid", x));
        return v;
    case ACT_LEAKY_RELU:
        return with_slope(b, v, "LeakyRelu", 0.2f); /* activation.c's LEAKY_RELU_SLOPE */
    case ACT_ELU:
        return with_slope(b, v, "Elu", 1.0f);
    }
    return v;
}

/* --- layers --- */

/* ONNX pads [top, left, bottom, right] that give mnistd's output size. */
static void window_pads(const Window *w, Shape in, Shape out, int64_t pads[4])
{
    pads[0] = w->pad_top;
    pads[1] = w->pad_left;
    long long bottom = (long long)(out.h - 1) * w->sh + w->kh - in.h - w->pad_top;
    long long right = (long long)(out.w - 1) * w->sw + w->kw - in.w - w->pad_left;
    pads[2] = bottom > 0 ? bottom : 0;
    pads[3] = right > 0 ? right : 0;
}

static void window_attrs(Builder *b, Onnx__NodeProto *n, const Window *w, Shape in, Shape out)
{
    int64_t pads[4];
    window_pads(w, in, out, pads);
    attr_ints(b, n, "kernel_shape", (const int64_t[]){w->kh, w->kw}, 2);
    attr_ints(b, n, "strides", (const int64_t[]){w->sh, w->sw}, 2);
    attr_ints(b, n, "pads", pads, 4);
}

static Val dense(Builder *b, const Layer *l, const float *p, Val x)
{
    x = as_flat(b, x);
    int k = l->in.c, units = l->cfg.dense.units;
    const char *in[3] = {x.name, tensor(b, "kernel", (const int64_t[]){k, units}, 2, p), NULL};
    size_t n_in = 2;
    if (!l->cfg.dense.no_bias)
        in[n_in++] = tensor(b, "bias", (const int64_t[]){units}, 1, p + (size_t)k * units);
    return (Val){out_of(node(b, "Gemm", in, n_in)), false, l->out};
}

static Val conv(Builder *b, const Layer *l, const float *p, Val x)
{
    x = as_nchw(b, x);
    const Window *w = &l->cfg.conv.win;
    int f = l->cfg.conv.filters, c = l->in.c;
    size_t nw = (size_t)w->kh * w->kw * c * f;
    float *oihw = own(b, malloc(nw * sizeof *oihw));
    if (!oihw)
        return x;
    for (int o = 0; o < f; o++)
        for (int ci = 0; ci < c; ci++)
            for (int ky = 0; ky < w->kh; ky++)
                for (int kx = 0; kx < w->kw; kx++)
                    oihw[(((size_t)o * c + ci) * w->kh + ky) * w->kw + kx] =
                        p[(((size_t)ky * w->kw + kx) * c + ci) * f + o];
    const char *in[3] = {x.name, tensor(b, "kernel", (const int64_t[]){f, c, w->kh, w->kw}, 4, oihw),
                         NULL};
    size_t n_in = 2;
    if (!l->cfg.conv.no_bias)
        in[n_in++] = tensor(b, "bias", (const int64_t[]){f}, 1, p + nw);
    Onnx__NodeProto *n = node(b, "Conv", in, n_in);
    window_attrs(b, n, w, l->in, l->out);
    return (Val){out_of(n), true, l->out};
}

static Val pool(Builder *b, const Layer *l, Val x, bool max)
{
    x = as_nchw(b, x);
    Onnx__NodeProto *n = node(b, max ? "MaxPool" : "AveragePool", &x.name, 1);
    window_attrs(b, n, &l->cfg.pool, l->in, l->out);
    if (!max)
        attr_int(b, n, "count_include_pad", 0); /* mnistd averages the pixels inside */
    return (Val){out_of(n), true, l->out};
}

static Val batchnorm(Builder *b, const Layer *l, const float *p, const float *state, Val x)
{
    if (!x.nchw && x.shape.h * x.shape.w > 1)
        x = as_nchw(b, x);
    int c = l->in.c;
    float *ones = own(b, malloc((size_t)c * sizeof *ones));
    float *zeros = zalloc(b, (size_t)c * sizeof *zeros);
    if (!ones || !zeros)
        return x;
    for (int j = 0; j < c; j++)
        ones[j] = 1.0f;
    const float *gamma = l->cfg.bn.scale ? p : ones;
    const float *beta = l->cfg.bn.center ? p + (l->cfg.bn.scale ? c : 0) : zeros;
    const int64_t dims[1] = {c};
    const char *in[5] = {x.name, tensor(b, "gamma", dims, 1, gamma), tensor(b, "beta", dims, 1, beta),
                         tensor(b, "moving_mean", dims, 1, state),
                         tensor(b, "moving_variance", dims, 1, state + c)};
    Onnx__NodeProto *n = node(b, "BatchNormalization", in, 5);
    attr_float(b, n, "epsilon", l->cfg.bn.epsilon);
    return (Val){out_of(n), x.nchw, l->out};
}

/* Inputs of an add or concatenate in one layout: NCHW if all are. */
static bool all_nchw(const Val *in, int n)
{
    for (int k = 0; k < n; k++)
        if (!in[k].nchw)
            return false;
    return true;
}

static Val add(Builder *b, const Layer *l, Val *in, int n)
{
    bool nchw = all_nchw(in, n);
    Val acc = nchw ? in[0] : as_flat(b, in[0]);
    for (int k = 1; k < n; k++)
        acc.name = op2(b, "Add", acc.name, (nchw ? in[k] : as_flat(b, in[k])).name);
    acc.shape = l->out;
    return acc;
}

static Val concat(Builder *b, const Layer *l, Val *in, int n)
{
    const char *names[LAYER_MAX_INPUTS];
    bool flat = l->out.h == 1 && l->out.w == 1 && !all_nchw(in, n);
    for (int k = 0; k < n; k++)
        names[k] = (flat ? as_flat(b, in[k]) : as_nchw(b, in[k])).name;
    Onnx__NodeProto *c = node(b, "Concat", names, (size_t)n);
    attr_int(b, c, "axis", 1);
    return (Val){out_of(c), !flat, l->out};
}

static Val layer(Builder *b, const Model *m, int i, Val *in)
{
    const Layer *l = &m->spec.layers[i];
    const float *p = m->params + l->param_offset, *state = m->state + l->state_offset;
    Val y = in[0];
    switch (l->type) {
    case LAYER_DENSE:
        y = dense(b, l, p, in[0]);
        break;
    case LAYER_CONV2D:
        y = conv(b, l, p, in[0]);
        break;
    case LAYER_MAXPOOL2D:
    case LAYER_AVGPOOL2D:
        y = pool(b, l, in[0], l->type == LAYER_MAXPOOL2D);
        break;
    case LAYER_GLOBAL_AVGPOOL2D:
        y = (Val){op1(b, "GlobalAveragePool", as_nchw(b, in[0]).name), true, l->out};
        break;
    case LAYER_FLATTEN:
        y = as_flat(b, in[0]);
        break;
    case LAYER_BATCHNORM:
        y = batchnorm(b, l, p, state, in[0]);
        break;
    case LAYER_ADD:
        y = add(b, l, in, l->n_inputs);
        break;
    case LAYER_CONCATENATE:
        y = concat(b, l, in, l->n_inputs);
        break;
    case LAYER_LEAKY_RELU:
    case LAYER_ELU:
        y = with_slope(b, in[0], l->type == LAYER_ELU ? "Elu" : "LeakyRelu", l->cfg.slope.alpha);
        break;
    case LAYER_ACTIVATION:
    case LAYER_DROPOUT: /* inference: the identity, as the augmentations */
    case LAYER_RANDOM_TRANSLATION:
    case LAYER_RANDOM_ROTATION:
    case LAYER_RANDOM_ZOOM:
    case LAYER_RANDOM_FLIP:
    case LAYER_TYPE_COUNT:
        break;
    }
    y.shape = l->out;
    return activation(b, y, l->act);
}

/* The graph's input: pixels in [0, 1], standardized in the graph when the model is. */
static Val model_input(Builder *b, const Model *m)
{
    Shape s = m->spec.input;
    Val v = {"input", true, s};
    if (!m->input_mean)
        return v;
    size_t n = shape_numel(s);
    float *mean = own(b, malloc(n * sizeof *mean)), *std = own(b, malloc(n * sizeof *std));
    if (!mean || !std)
        return v;
    for (int y = 0; y < s.h; y++) /* H,W,C -> C,H,W */
        for (int x = 0; x < s.w; x++)
            for (int c = 0; c < s.c; c++) {
                size_t from = ((size_t)y * s.w + x) * s.c + c, to = ((size_t)c * s.h + y) * s.w + x;
                mean[to] = m->input_mean[from];
                std[to] = m->input_std[from];
            }
    const int64_t dims[4] = {1, s.c, s.h, s.w};
    /* mnistd's statistics are of 0..255 pixels: the same arithmetic as
     * model_prepare_unit_inputs, (x * 255 - mean) / std */
    const char *pixels = op2(b, "Mul", v.name, scalar(b, 255.0f));
    v.name = op2(b, "Div", op2(b, "Sub", pixels, tensor(b, "input_mean", dims, 4, mean)),
                 tensor(b, "input_std", dims, 4, std));
    return v;
}

/* value_info of a float tensor: the batch symbolic ("N"), the rest given. */
static Onnx__ValueInfoProto *value_info(Builder *b, const char *name, const int64_t *dims, size_t nd)
{
    Onnx__ValueInfoProto *vi = zalloc(b, sizeof *vi);
    Onnx__TypeProto *t = zalloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = zalloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = zalloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dim = zalloc(b, (nd + 1) * sizeof *dim);
    if (!vi || !t || !tt || !sh || !dim)
        return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (size_t i = 0; i <= nd; i++) {
        Onnx__TensorShapeProto__Dimension *d = zalloc(b, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = str(b, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i - 1];
        }
        dim[i] = d;
    }
    sh->n_dim = nd + 1;
    sh->dim = dim;
    tt->has_elem_type = true;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    vi->name = str(b, name);
    vi->type = t;
    return vi;
}

static Onnx__StringStringEntryProto *entry(Builder *b, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = zalloc(b, sizeof *e);
    if (e) {
        onnx__string_string_entry_proto__init(e);
        e->key = str(b, key);
        e->value = str(b, value ? value : "");
    }
    return e;
}

static char *own_json(Builder *b, cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return own(b, text);
}

int onnx_export(const Model *m, unsigned char **buf, size_t *len, MnError *err)
{
    *buf = NULL;
    *len = 0;
    Builder b = {0};
    Val outs[SPEC_MAX_LAYERS];
    Val input = model_input(&b, m);
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        Val in[LAYER_MAX_INPUTS];
        for (int k = 0; k < l->n_inputs; k++)
            in[k] = l->inputs[k] == LAYER_INPUT_MODEL ? input : outs[l->inputs[k]];
        outs[i] = layer(&b, m, i, in);
    }
    Val last = as_flat(&b, m->spec.n_layers ? outs[m->spec.n_layers - 1] : input);
    Onnx__NodeProto *final = node(&b, "Identity", &last.name, 1);
    if (final)
        final->output[0] = str(&b, "probabilities");

    Shape s = m->spec.input;
    Onnx__ValueInfoProto *vin = value_info(&b, "input", (const int64_t[]){s.c, s.h, s.w}, 3);
    Onnx__ValueInfoProto *vout = value_info(&b, "probabilities", (const int64_t[]){m->n_classes}, 1);
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = m->spec.name[0] ? (char *)m->spec.name : "mnistd";
    g.n_node = b.n_nodes;
    g.node = b.nodes;
    g.n_initializer = b.n_inits;
    g.initializer = b.inits;
    g.n_input = 1;
    g.input = &vin;
    g.n_output = 1;
    g.output = &vout;

    cJSON *classes = cJSON_CreateArray();
    for (int c = 0; c < m->n_classes; c++)
        cJSON_AddItemToArray(classes, cJSON_CreateString(m->class_names[c]));
    char input_text[160];
    snprintf(input_text, sizeof input_text,
             "float (N, %d, %d, %d): grayscale pixels in [0, 1], 0 the background, after "
             "mnistd's \"%s\" image preprocessing", s.c, s.h, s.w,
             image_preprocess_name(m->spec.image_preprocess));
    Onnx__StringStringEntryProto *meta[5] = {
        entry(&b, ONNX_META_CLASSES, own_json(&b, classes)),
        entry(&b, ONNX_META_PREPROCESS, image_preprocess_name(m->spec.image_preprocess)),
        entry(&b, ONNX_META_DATASET, m->spec.dataset),
        entry(&b, ONNX_META_INPUT, input_text),
        entry(&b, "mnistd.spec", own_json(&b, spec_to_json(&m->spec))),
    };
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets = &opset;
    opset.domain = "";
    opset.has_version = true;
    opset.version = ONNX_EXPORT_OPSET;
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = true;
    mp.ir_version = ONNX_EXPORT_IR_VERSION;
    mp.n_opset_import = 1;
    mp.opset_import = &opsets;
    mp.producer_name = "mnistd";
    mp.graph = &g;
    mp.n_metadata_props = 5;
    mp.metadata_props = meta;
    for (int i = 0; i < 5; i++)
        b.failed |= meta[i] == NULL;

    int rc = 0;
    if (b.failed || !vin || !vout || !final) {
        rc = mn_fail(err, MN_ENOMEM, "out of memory while writing the ONNX graph");
    } else {
        *len = onnx__model_proto__get_packed_size(&mp);
        if (!(*buf = malloc(*len ? *len : 1)))
            rc = mn_fail(err, MN_ENOMEM, "out of memory for %zu bytes of ONNX", *len);
        else
            onnx__model_proto__pack(&mp, *buf);
    }
    for (size_t i = 0; i < b.n_owned; i++)
        free(b.owned[i]);
    free(b.owned);
    free(b.nodes);
    free(b.inits);
    return rc;
}
