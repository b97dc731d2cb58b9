/* onnx_import.c - an ONNX graph as mnistd layers. Nodes are read in their
 * (topological) order; each becomes a layer, becomes part of the layer
 * before it (a Relu after a Gemm is the dense layer's activation, an Add
 * of a constant after a MatMul its bias), or is a name for an earlier value
 * (Identity, Dropout, Flatten of a flat tensor). The layers are written as
 * a spec and checked by the same code that checks a user's spec, then the
 * weights, converted to mnistd's layouts, are copied into the built model.
 * Layouts: ONNX activations are NCHW and mnistd's NHWC; an NCHW tensor
 * with one channel, or 1x1 pixels, is the same bytes in both. A Flatten of
 * a C>1, HxW>1 tensor orders its features C,H,W in ONNX and H,W,C here:
 * the flat value remembers it, and the Gemm/MatMul reading it takes its
 * weight rows in that order. Conv weights OIHW become (kh, kw, cin, f).
 * Three things span several nodes: a zero Pad is a name for its input
 * that the Conv or pool reading it takes as padding; integer shape
 * arithmetic on constants (how torch computes a Pad's pads) is evaluated
 * into constants; and the erf form of GELU (Div, Erf, Add, Mul, Mul) is
 * found before conversion and becomes one gelu. */
#include "onnx_import.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_file.h"
#include "spec_read.h"

/* mnistd's leaky_relu and elu activations (activation.c) have fixed
 * slopes; other slopes become leaky_relu and elu layers (leaky_elu.c). */
#define MNISTD_LEAKY_SLOPE 0.2f
#define MNISTD_ELU_ALPHA 1.0f
/* Values of an integer tensor computed from constants (torch's pads). */
#define FOLD_MAX 64
#define FOLD_RANK 4

typedef struct {
    const char *name;    /* the ONNX value's (borrowed from the proto) */
    int source;          /* the layer that computes it, or LAYER_INPUT_MODEL */
    bool nchw;           /* a 4-D tensor; else flat (N, features) */
    Shape shape;         /* mnistd's (h, w, c); flat: (1, 1, features) */
    /* Flat values from a Flatten of an (h, w, c) tensor with c > 1 and
     * h*w > 1: ONNX's feature order is C,H,W, mnistd's H,W,C. */
    bool chw_order;
    Shape chw;
    /* A Transpose of an NCHW tensor to NHWC (perm 0,2,3,1: what mnistd's
     * export writes before a Flatten): only a Flatten or Reshape may read it,
     * and its features are then in mnistd's order. */
    bool nhwc;
    /* The output of a zero Pad (node pad_node) of the value pad_of: only a
     * Conv or pool may read it, as its padding [top, left, bottom, right]. */
    bool padded;
    int pad_node;
    int pad[4];
    const char *pad_of;
} Value;

typedef struct {
    cJSON *json;         /* the spec's entry (owned until the spec is made) */
    int node;            /* the node it came from */
    const char *out;     /* the ONNX value it computes */
    float *w, *b, *state; /* mnistd layout (owned); b NULL for none */
    size_t nw, nb, ns;
    bool fusable;        /* dense or conv2d: takes an activation and a bias after it */
    bool has_act, has_bias;
} Pending;

typedef struct {
    const Onnx__GraphProto *g;
    int opset;
    MnError *err;
    Value *values;
    size_t n_values, cap_values;
    /* Constant nodes' outputs: name and tensor (borrowed). */
    const char **const_names;
    const Onnx__TensorProto **const_tensors;
    size_t n_consts;
    /* Constants evaluated here (fold_node), owned. */
    Onnx__TensorProto **folded;
    size_t n_folded;
    /* Per node: the last node of the gelu pattern it is part of, or -1;
     * gelu_x[last] is the pattern's input (find_gelus). */
    int *gelu_last;
    const char **gelu_x;
    Pending layers[SPEC_MAX_LAYERS];
    int n_layers;
    int node;            /* the node being converted, for messages */
    Shape input;
} Importer;

void onnx_import_options_default(OnnxImportOptions *opt)
{
    *opt = (OnnxImportOptions){.max_bytes = ONNX_MAX_BYTES_DEFAULT, .name = "imported",
                               .image_preprocess = -1};
}

static const Onnx__NodeProto *cur(const Importer *im) { return im->g->node[im->node]; }

/* "node 3 (\"/fc1/Gemm\", Gemm): ..." */
static int node_fail(Importer *im, int code, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *n = cur(im);
    return mn_fail(im->err, code, "node %d (\"%.60s\", %.30s): %s", im->node,
                   n->name ? n->name : "", n->op_type ? n->op_type : "?", msg);
}

/* --- values, constants, uses --- */

static Value *find_value(Importer *im, const char *name)
{
    for (size_t i = im->n_values; i-- > 0;) /* the latest wins */
        if (strcmp(im->values[i].name, name) == 0)
            return &im->values[i];
    return NULL;
}

static int add_value(Importer *im, Value v)
{
    if (im->n_values == im->cap_values) {
        size_t cap = im->cap_values ? 2 * im->cap_values : 32;
        Value *p = realloc(im->values, cap * sizeof *p);
        if (!p)
            return mn_fail(im->err, MN_ENOMEM, "out of memory");
        im->values = p;
        im->cap_values = cap;
    }
    im->values[im->n_values++] = v;
    return 0;
}

static const Onnx__TensorProto *find_constant(const Importer *im, const char *name)
{
    for (size_t i = 0; i < im->g->n_initializer; i++)
        if (im->g->initializer[i]->name && strcmp(im->g->initializer[i]->name, name) == 0)
            return im->g->initializer[i];
    for (size_t i = 0; i < im->n_consts; i++)
        if (strcmp(im->const_names[i], name) == 0)
            return im->const_tensors[i];
    return NULL;
}

/* How many node inputs and graph outputs read the value; a gelu pattern
 * is one reader, of its x. */
static int uses(const Importer *im, const char *name)
{
    int n = 0;
    for (size_t k = 0; k < im->g->n_node; k++) {
        if (im->gelu_last && im->gelu_last[k] >= 0) {
            n += im->gelu_last[k] == (int)k && !strcmp(im->gelu_x[k], name);
            continue;
        }
        for (size_t i = 0; i < im->g->node[k]->n_input; i++)
            n += strcmp(im->g->node[k]->input[i], name) == 0;
    }
    for (size_t i = 0; i < im->g->n_output; i++)
        n += im->g->output[i]->name && strcmp(im->g->output[i]->name, name) == 0;
    return n;
}

/* Whether the current node may read v: a transposed or padded value is
 * only for the operators that take it in (a Flatten, a Conv or pool). */
static int readable(Importer *im, const Value *v)
{
    const char *op = cur(im)->op_type;
    if (v->nhwc && strcmp(op, "Flatten") && strcmp(op, "Reshape"))
        return node_fail(im, MN_ESPEC, "input \"%.60s\" is transposed to NHWC: only a Flatten "
                         "or Reshape may read it", v->name);
    if (v->padded && strcmp(op, "Conv") && strcmp(op, "MaxPool") && strcmp(op, "AveragePool"))
        return node_fail(im, MN_ESPEC, "input \"%.60s\" is the output of Pad node %d: only a "
                         "Conv, MaxPool or AveragePool may read it (as its padding)", v->name,
                         v->pad_node);
    return 0;
}

/* The value called name, computed earlier. */
static int named_value(Importer *im, const char *name, Value **v)
{
    if (!(*v = find_value(im, name)))
        return node_fail(im, find_constant(im, name) ? MN_ESPEC : MN_EINVAL,
                         find_constant(im, name)
                             ? "input \"%.60s\" is a constant where mnistd needs a computed value"
                             : "input \"%.60s\" is not computed by an earlier node",
                         name);
    return readable(im, *v);
}

/* Input i of the current node as a value computed earlier. */
static int input_value(Importer *im, size_t i, Value **v)
{
    const Onnx__NodeProto *n = cur(im);
    if (i >= n->n_input || !*n->input[i])
        return node_fail(im, MN_EINVAL, "input %zu is missing", i);
    return named_value(im, n->input[i], v);
}

/* Input i as a FLOAT constant of exactly `want` elements (0: any, then *numel). */
static int input_constant(Importer *im, size_t i, size_t want, const Onnx__TensorProto **t,
                          size_t *numel)
{
    const Onnx__NodeProto *n = cur(im);
    if (i >= n->n_input || !*n->input[i])
        return node_fail(im, MN_EINVAL, "input %zu is missing", i);
    if (!(*t = find_constant(im, n->input[i])))
        return node_fail(im, MN_ESPEC, "input \"%.60s\" must be a constant (an initializer)",
                         n->input[i]);
    char what[120];
    snprintf(what, sizeof what, "node %d: tensor \"%.60s\"", im->node, n->input[i]);
    size_t got;
    int rc = onnx_tensor_check_float(*t, (size_t)1 << 28, &got, what, im->err);
    if (rc)
        return rc;
    if (want && got != want)
        return node_fail(im, MN_ESPEC, "tensor \"%.60s\" has %zu values, %zu expected",
                         n->input[i], got, want);
    if (numel)
        *numel = got;
    return 0;
}

/* A constant INT64 tensor (shape arithmetic, pads). */
typedef struct {
    int rank;
    int64_t dims[FOLD_RANK];
    int64_t v[FOLD_MAX];
    size_t n;
} Ints;

/* Input i as a constant INT64 tensor of up to FOLD_MAX values. */
static int input_ints(Importer *im, size_t i, Ints *out)
{
    const Onnx__NodeProto *n = cur(im);
    const Onnx__TensorProto *t = i < n->n_input && *n->input[i] ? find_constant(im, n->input[i]) : NULL;
    if (!t)
        return node_fail(im, MN_ESPEC, "input %zu must be a constant", i);
    if (t->n_dims > FOLD_RANK)
        return node_fail(im, MN_ESPEC, "input %zu has %zu dimensions (at most %d)", i, t->n_dims,
                         FOLD_RANK);
    char what[120];
    snprintf(what, sizeof what, "node %d: tensor \"%.60s\"", im->node, n->input[i]);
    out->rank = (int)t->n_dims;
    for (int d = 0; d < out->rank; d++)
        out->dims[d] = t->dims[d];
    return onnx_tensor_int64s(t, out->v, FOLD_MAX, &out->n, what, im->err);
}

/* The node's only output must be the only one anybody reads. */
static int single_output(Importer *im, const char *what_else)
{
    const Onnx__NodeProto *n = cur(im);
    for (size_t i = 1; i < n->n_output; i++)
        if (*n->output[i] && uses(im, n->output[i]))
            return node_fail(im, MN_ESPEC, "output %zu (%s) is read, and mnistd does not compute "
                             "it", i, what_else);
    if (n->n_output < 1 || !*n->output[0])
        return node_fail(im, MN_EINVAL, "no output");
    return 0;
}

static int alias(Importer *im, const Value *v)
{
    Value a = *v;
    a.name = cur(im)->output[0];
    return add_value(im, a);
}

/* --- attributes --- */

static const Onnx__AttributeProto *attr(const Importer *im, const char *name)
{
    const Onnx__NodeProto *n = cur(im);
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

/* Every attribute the node has must be in `known` (NULL-terminated). */
static int check_attrs(Importer *im, const char *const *known)
{
    const Onnx__NodeProto *n = cur(im);
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *name = n->attribute[i]->name ? n->attribute[i]->name : "";
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, name) == 0;
        if (!ok)
            return node_fail(im, MN_ESPEC, "attribute \"%.40s\" is not supported", name);
    }
    return 0;
}

static int attr_int(Importer *im, const char *name, long long def, long long *out)
{
    const Onnx__AttributeProto *a = attr(im, name);
    *out = def;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return node_fail(im, MN_EINVAL, "attribute \"%s\" must be an integer", name);
    *out = a->i;
    return 0;
}

static int attr_float(Importer *im, const char *name, float def, float *out)
{
    const Onnx__AttributeProto *a = attr(im, name);
    *out = def;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT || !isfinite(a->f))
        return node_fail(im, MN_EINVAL, "attribute \"%s\" must be a finite float", name);
    *out = a->f;
    return 0;
}

/* INTS of exactly n values (when present; else *given false). */
static int attr_ints(Importer *im, const char *name, size_t n, long long *out, bool *given)
{
    const Onnx__AttributeProto *a = attr(im, name);
    *given = a != NULL;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS || a->n_ints != n)
        return node_fail(im, MN_ESPEC, "attribute \"%s\" must be %zu integers (2-D only)", name, n);
    for (size_t i = 0; i < n; i++) {
        if (a->ints[i] < -(1LL << 20) || a->ints[i] > (1LL << 20))
            return node_fail(im, MN_ESPEC, "attribute \"%s\" value %lld is out of range", name,
                             (long long)a->ints[i]);
        out[i] = a->ints[i];
    }
    return 0;
}

static int attr_string(Importer *im, const char *name, const char *def, char *out, size_t n)
{
    const Onnx__AttributeProto *a = attr(im, name);
    snprintf(out, n, "%s", def);
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING || a->s.len >= n)
        return node_fail(im, MN_EINVAL, "attribute \"%s\" must be a short string", name);
    if (a->s.len) /* an empty string may have no data */
        memcpy(out, a->s.data, a->s.len);
    out[a->s.len] = '\0';
    return 0;
}

/* --- layers --- */

static const char *source_name(const Importer *im, int source)
{
    return source == LAYER_INPUT_MODEL
               ? LAYER_INPUT_NAME
               : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(im->layers[source].json,
                                                                       "name"));
}

/* A new layer of spec type `type` reading `in`; its output value is the
 * node's first output, of shape `out`. *made: the Pending to fill. */
static int emit(Importer *im, const char *type, Value *const *in, int n_in, bool nchw, Shape out,
                Pending **made)
{
    if (im->n_layers == SPEC_MAX_LAYERS)
        return node_fail(im, MN_ELIMIT, "more than %d layers", SPEC_MAX_LAYERS);
    Pending *p = &im->layers[im->n_layers];
    *p = (Pending){.node = im->node, .out = cur(im)->output[0]};
    if (!(p->json = cJSON_CreateObject()))
        return mn_fail(im->err, MN_ENOMEM, "out of memory");
    char name[LAYER_NAME_MAX], op[32];
    snprintf(op, sizeof op, "%s", cur(im)->op_type);
    for (char *c = op; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    snprintf(name, sizeof name, "%s_%d", op, im->node);
    cJSON_AddStringToObject(p->json, "type", type);
    cJSON_AddStringToObject(p->json, "name", name);
    cJSON *inputs = cJSON_AddArrayToObject(p->json, "inputs");
    for (int k = 0; k < n_in; k++)
        cJSON_AddItemToArray(inputs, cJSON_CreateString(source_name(im, in[k]->source)));
    Value v = {.name = p->out, .source = im->n_layers, .nchw = nchw, .shape = out};
    im->n_layers++;
    *made = p;
    return add_value(im, v);
}

static float *alloc_floats(Importer *im, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        mn_fail(im->err, MN_ENOMEM, "out of memory for %zu weights", n);
    return p;
}

/* The layer that computes v, when v is its own output and nothing else
 * reads it: what a following activation or bias may become part of. */
static Pending *fusable(Importer *im, const Value *v)
{
    if (v->source == LAYER_INPUT_MODEL)
        return NULL;
    Pending *p = &im->layers[v->source];
    return p->fusable && strcmp(p->out, v->name) == 0 && uses(im, v->name) == 1 ? p : NULL;
}

/* --- operators --- */

/* act (a spec activation) of x, as the node's output: the activation of
 * the dense or conv2d that computes x when nothing else reads x, else an
 * activation layer. */
static int activation_of(Importer *im, Value *x, const char *act)
{
    Pending *p = fusable(im, x);
    if (p && !p->has_act && (strcmp(act, "softmax") || !x->nchw)) {
        cJSON_ReplaceItemInObject(p->json, "activation", cJSON_CreateString(act));
        p->has_act = true;
        p->out = cur(im)->output[0]; /* a bias can no longer follow */
        p->fusable = false;
        return alias(im, x);
    }
    Pending *made;
    int rc = emit(im, "activation", &x, 1, x->nchw, x->shape, &made);
    if (rc)
        return rc;
    cJSON_AddStringToObject(made->json, "activation", act);
    im->values[im->n_values - 1].chw_order = x->chw_order;
    im->values[im->n_values - 1].chw = x->chw;
    return 0;
}

/* LeakyRelu and Elu: mnistd's activation at its fixed slope, else a
 * leaky_relu or elu layer with the node's (Keras's LeakyReLU and ELU). */
static int op_slope(Importer *im, Value *x, bool leaky)
{
    const char *const alpha[] = {"alpha", NULL};
    float a;
    int rc;
    if ((rc = check_attrs(im, alpha)) || (rc = attr_float(im, "alpha", leaky ? 0.01f : 1.0f, &a)))
        return rc;
    if (a == (leaky ? MNISTD_LEAKY_SLOPE : MNISTD_ELU_ALPHA))
        return activation_of(im, x, leaky ? "leaky_relu" : "elu");
    if (!(a >= 0.0f && a <= LAYER_SLOPE_MAX))
        return node_fail(im, MN_ESPEC, "alpha %g is not supported (0 to %g)", a, LAYER_SLOPE_MAX);
    Pending *p;
    if ((rc = emit(im, leaky ? "leaky_relu" : "elu", &x, 1, x->nchw, x->shape, &p)))
        return rc;
    cJSON_AddNumberToObject(p->json, leaky ? "negative_slope" : "alpha", a);
    im->values[im->n_values - 1].chw_order = x->chw_order;
    im->values[im->n_values - 1].chw = x->chw;
    return 0;
}

static int op_activation(Importer *im, const char *act)
{
    const char *const none[] = {NULL};
    const char *const axis[] = {"axis", NULL};
    const char *const approx[] = {"approximate", NULL};
    Value *x;
    int rc;
    if ((rc = input_value(im, 0, &x)) || (rc = single_output(im, "")))
        return rc;
    if (!strcmp(act, "leaky_relu") || !strcmp(act, "elu")) {
        return op_slope(im, x, act[0] == 'l');
    } else if (!strcmp(act, "softmax")) {
        long long ax;
        if ((rc = check_attrs(im, axis)) || (rc = attr_int(im, "axis", im->opset < 13 ? 1 : -1, &ax)))
            return rc;
        if (x->nchw && (x->shape.h != 1 || x->shape.w != 1))
            return node_fail(im, MN_ESPEC, "Softmax over a 4-D tensor is not supported: flatten "
                             "it first");
        if (ax != 1 && ax != -1)
            return node_fail(im, MN_ESPEC, "axis %lld is not supported (1 or -1)", ax);
    } else if (!strcmp(act, "gelu")) {
        char a[16];
        if ((rc = check_attrs(im, approx)) || (rc = attr_string(im, "approximate", "none", a, sizeof a)))
            return rc;
        if (strcmp(a, "none"))
            return node_fail(im, MN_ESPEC, "approximate \"%s\" is not supported (mnistd's gelu "
                             "is the exact one)", a);
    } else if ((rc = check_attrs(im, none))) {
        return rc;
    }
    return activation_of(im, x, act);
}

/* Mnistd's row i of a dense kernel reads feature i in H,W,C order; in
 * ONNX's order, when x came from flattening a C,H,W tensor, it is: */
static size_t onnx_feature(const Value *x, size_t i)
{
    if (!x->chw_order)
        return i;
    int h = x->chw.h, w = x->chw.w, c = x->chw.c;
    size_t y = i / ((size_t)w * c), xx = i / (size_t)c % (size_t)w, ch = i % (size_t)c;
    return (ch * (size_t)h + y) * (size_t)w + xx;
}

static int flat_input(Importer *im, Value *x)
{
    if (x->nchw && (x->shape.h != 1 || x->shape.w != 1))
        return node_fail(im, MN_ESPEC, "needs a flat input, got %dx%dx%d (NCHW %d,%d,%d): "
                         "add a Flatten before it", x->shape.h, x->shape.w, x->shape.c,
                         x->shape.c, x->shape.h, x->shape.w);
    return 0;
}

/* Gemm (transB 0 or 1, alpha, beta) and MatMul: a dense layer. */
static int op_dense(Importer *im, bool gemm)
{
    const char *const gemm_attrs[] = {"alpha", "beta", "transA", "transB", NULL};
    const char *const none[] = {NULL};
    Value *x;
    int rc;
    long long trans_a = 0, trans_b = 0;
    float alpha = 1.0f, beta = 1.0f;
    if ((rc = check_attrs(im, gemm ? gemm_attrs : none)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")) || (rc = flat_input(im, x)))
        return rc;
    if (gemm && ((rc = attr_int(im, "transA", 0, &trans_a)) ||
                 (rc = attr_int(im, "transB", 0, &trans_b)) ||
                 (rc = attr_float(im, "alpha", 1.0f, &alpha)) ||
                 (rc = attr_float(im, "beta", 1.0f, &beta))))
        return rc;
    if (trans_a)
        return node_fail(im, MN_ESPEC, "transA 1 is not supported");
    const Onnx__TensorProto *bt;
    size_t k = shape_numel(x->shape), numel;
    if ((rc = input_constant(im, 1, 0, &bt, &numel)))
        return rc;
    if (bt->n_dims != 2 || bt->dims[trans_b ? 1 : 0] != (int64_t)k)
        return node_fail(im, MN_ESPEC, "weights \"%.60s\" must be %s for %zu inputs",
                         cur(im)->input[1], trans_b ? "[units, inputs]" : "[inputs, units]", k);
    size_t units = (size_t)bt->dims[trans_b ? 0 : 1];
    if (units < 1 || units > (1u << 16))
        return node_fail(im, MN_ESPEC, "%zu units (1 to 65536)", units);
    Pending *p;
    if ((rc = emit(im, "dense", &x, 1, false, shape_make(1, 1, (int)units), &p)))
        return rc;
    cJSON_AddNumberToObject(p->json, "units", (double)units);
    cJSON_AddStringToObject(p->json, "activation", "linear");
    p->fusable = true;
    if (!(p->w = alloc_floats(im, k * units)))
        return MN_ENOMEM;
    p->nw = k * units;
    for (size_t i = 0; i < k; i++) {
        size_t r = onnx_feature(x, i);
        for (size_t j = 0; j < units; j++)
            p->w[i * units + j] =
                alpha * onnx_tensor_float(bt, trans_b ? j * k + r : r * units + j);
    }
    const Onnx__NodeProto *n = cur(im);
    if (gemm && n->n_input > 2 && *n->input[2]) {
        const Onnx__TensorProto *ct;
        if ((rc = input_constant(im, 2, 0, &ct, &numel)))
            return rc;
        if (numel != units && numel != 1)
            return node_fail(im, MN_ESPEC, "bias \"%.60s\" has %zu values for %zu units",
                             n->input[2], numel, units);
        if (!(p->b = alloc_floats(im, units)))
            return MN_ENOMEM;
        p->nb = units;
        for (size_t j = 0; j < units; j++)
            p->b[j] = beta * onnx_tensor_float(ct, numel == 1 ? 0 : j);
        p->has_bias = true;
    } else {
        cJSON_AddBoolToObject(p->json, "use_bias", false);
    }
    return 0;
}

/* Keras's "same" padding along one axis: the total that keeps ceil(size / s) outputs. */
static long long same_total(long long size, long long s, long long k)
{
    long long out = (size + s - 1) / s, total = (out - 1) * s + k - size;
    return total > 0 ? total : 0;
}

/* Kernel, strides and pads of Conv and the pools into w, from the
 * attributes and the input's size; the input's Pad, if any, added to the
 * pads (its pads resolve the node's auto_pad on the padded size). */
static int window_attrs(Importer *im, const Value *x, Window *w, bool have_kernel)
{
    long long k[2] = {w->kh, w->kw}, s[2] = {1, 1}, d[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    bool given;
    int rc;
    char auto_pad[16];
    if ((rc = attr_ints(im, "kernel_shape", 2, k, &given)))
        return rc;
    if (!given && !have_kernel)
        return node_fail(im, MN_EINVAL, "kernel_shape is missing");
    if (have_kernel && given && (k[0] != w->kh || k[1] != w->kw))
        return node_fail(im, MN_ESPEC, "kernel_shape %lldx%lld does not match the weights' %dx%d",
                         k[0], k[1], w->kh, w->kw);
    if ((rc = attr_ints(im, "strides", 2, s, &given)) ||
        (rc = attr_ints(im, "dilations", 2, d, &given)) ||
        (rc = attr_ints(im, "pads", 4, pads, &given)) ||
        (rc = attr_string(im, "auto_pad", "NOTSET", auto_pad, sizeof auto_pad)))
        return rc;
    if (d[0] != 1 || d[1] != 1)
        return node_fail(im, MN_ESPEC, "dilations %lldx%lld are not supported (1 only)", d[0], d[1]);
    if (k[0] < 1 || k[1] < 1 || k[0] > 64 || k[1] > 64 || s[0] < 1 || s[1] < 1 || s[0] > 64 ||
        s[1] > 64)
        return node_fail(im, MN_ESPEC, "kernel %lldx%lld, strides %lldx%lld: each 1 to 64", k[0],
                         k[1], s[0], s[1]);
    *w = (Window){.kh = (int)k[0], .kw = (int)k[1], .sh = (int)s[0], .sw = (int)s[1]};
    bool upper = !strcmp(auto_pad, "SAME_UPPER"), lower = !strcmp(auto_pad, "SAME_LOWER");
    if (!upper && !lower && strcmp(auto_pad, "VALID") && strcmp(auto_pad, "NOTSET"))
        return node_fail(im, MN_ESPEC, "auto_pad \"%s\" is not supported", auto_pad);
    if (upper && !x->padded) { /* Keras's "same": the odd pixel at the end */
        w->same = true;
        return 0;
    }
    if (!strcmp(auto_pad, "VALID"))
        pads[0] = pads[1] = pads[2] = pads[3] = 0;
    const int *e = x->padded ? x->pad : (const int[4]){0, 0, 0, 0}; /* top, left, bottom, right */
    int size[2] = {x->shape.h, x->shape.w};
    for (int a = 0; a < 2; a++) {
        if (upper || lower) {
            long long total = same_total(size[a] + e[a] + e[a + 2], s[a], k[a]);
            pads[a] = upper ? total / 2 : total - total / 2;
            pads[a + 2] = total - pads[a];
        }
        pads[a] += e[a];
        pads[a + 2] += e[a + 2];
    }
    /* ONNX pads: [top, left, bottom, right] */
    if (!pads[0] && !pads[1] && !pads[2] && !pads[3])
        return 0;
    bool same = true;
    for (int a = 0; a < 2; a++) {
        long long total = same_total(size[a], s[a], k[a]);
        same = same && pads[a] == total / 2 && pads[a + 2] == total - total / 2;
    }
    if (same) {
        w->same = true;
        return 0;
    }
    w->explicit_pad = true;
    w->pad_top = (int)pads[0];
    w->pad_left = (int)pads[1];
    w->pad_bottom = (int)pads[2];
    w->pad_right = (int)pads[3];
    return 0;
}

/* The window's out size (window_build's rules, its errors on this node). */
static int window_out(Importer *im, Window w, Shape in, Shape *out, int channels)
{
    MnError e = {0};
    int oh, ow;
    if (window_build(&w, in, &oh, &ow, &e))
        return node_fail(im, MN_ESPEC, "%s", e.msg);
    *out = shape_make(oh, ow, channels);
    return 0;
}

static cJSON *window_json(const Window *w, const char *size_key, cJSON *o)
{
    window_write(w, size_key, o);
    return o;
}

static int op_conv(Importer *im)
{
    const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads",
                                 "strides", NULL};
    Value *x;
    int rc;
    long long group;
    if ((rc = check_attrs(im, known)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")) || (rc = attr_int(im, "group", 1, &group)))
        return rc;
    if (group != 1)
        return node_fail(im, MN_ESPEC, "group %lld is not supported (1 only)", group);
    if (!x->nchw)
        return node_fail(im, MN_ESPEC, "needs a 4-D (N, C, H, W) input");
    const Onnx__TensorProto *wt;
    size_t numel;
    if ((rc = input_constant(im, 1, 0, &wt, &numel)))
        return rc;
    if (wt->n_dims != 4 || wt->dims[1] != x->shape.c || wt->dims[0] < 1 || wt->dims[0] > (1 << 16))
        return node_fail(im, MN_ESPEC, "weights \"%.60s\" must be [filters, %d, kh, kw]",
                         cur(im)->input[1], x->shape.c);
    int f = (int)wt->dims[0], c = x->shape.c;
    Window w = {.kh = (int)wt->dims[2], .kw = (int)wt->dims[3]};
    Shape out;
    if ((rc = window_attrs(im, x, &w, true)) || (rc = window_out(im, w, x->shape, &out, f)))
        return rc;
    Pending *p;
    if ((rc = emit(im, "conv2d", &x, 1, true, out, &p)))
        return rc;
    cJSON_AddNumberToObject(p->json, "filters", f);
    window_json(&w, "kernel_size", p->json);
    cJSON_AddStringToObject(p->json, "activation", "linear");
    p->fusable = true;
    if (!(p->w = alloc_floats(im, numel)))
        return MN_ENOMEM;
    p->nw = numel;
    for (int o = 0; o < f; o++) /* OIHW -> (kh, kw, cin, f) */
        for (int ci = 0; ci < c; ci++)
            for (int ky = 0; ky < w.kh; ky++)
                for (int kx = 0; kx < w.kw; kx++)
                    p->w[(((size_t)ky * w.kw + kx) * c + ci) * f + o] = onnx_tensor_float(
                        wt, (((size_t)o * c + ci) * w.kh + ky) * w.kw + kx);
    const Onnx__NodeProto *n = cur(im);
    if (n->n_input > 2 && *n->input[2]) {
        const Onnx__TensorProto *bt;
        if ((rc = input_constant(im, 2, (size_t)f, &bt, NULL)))
            return rc;
        if (!(p->b = alloc_floats(im, (size_t)f)))
            return MN_ENOMEM;
        p->nb = (size_t)f;
        for (int o = 0; o < f; o++)
            p->b[o] = onnx_tensor_float(bt, (size_t)o);
        p->has_bias = true;
    } else {
        cJSON_AddBoolToObject(p->json, "use_bias", false);
    }
    return 0;
}

/* Whether v is a layer's output after an activation that is never negative. */
static bool nonnegative(const Importer *im, const Value *v)
{
    if (v->source == LAYER_INPUT_MODEL)
        return false;
    const Pending *p = &im->layers[v->source];
    const char *act = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p->json, "activation"));
    return !strcmp(p->out, v->padded ? v->pad_of : v->name) && act &&
           (!strcmp(act, "relu") || !strcmp(act, "sigmoid") || !strcmp(act, "softmax"));
}

static int op_pool(Importer *im, bool max)
{
    const char *const max_attrs[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                     "pads", "storage_order", "strides", NULL};
    const char *const avg_attrs[] = {"auto_pad", "ceil_mode", "count_include_pad",
                                     "kernel_shape", "pads", "strides", NULL};
    Value *x;
    int rc;
    long long ceil_mode, include_pad, order;
    if ((rc = check_attrs(im, max ? max_attrs : avg_attrs)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "the indices")) || (rc = attr_int(im, "ceil_mode", 0, &ceil_mode)) ||
        (rc = attr_int(im, "count_include_pad", 0, &include_pad)) ||
        (rc = attr_int(im, "storage_order", 0, &order)))
        return rc;
    if (ceil_mode)
        return node_fail(im, MN_ESPEC, "ceil_mode 1 is not supported");
    if (order)
        return node_fail(im, MN_ESPEC, "storage_order 1 is not supported");
    if (!x->nchw)
        return node_fail(im, MN_ESPEC, "needs a 4-D (N, C, H, W) input");
    if (x->padded && !max)
        return node_fail(im, MN_ESPEC, "a Pad (node %d) before an AveragePool is not supported: "
                         "ONNX averages its zeros, mnistd leaves padding out of the average",
                         x->pad_node);
    if (x->padded && !nonnegative(im, x))
        return node_fail(im, MN_ESPEC, "a Pad (node %d) before a MaxPool folds into the pool "
                         "only after a Relu, Sigmoid or Softmax: the pool's padding never wins a "
                         "max, a zero would over negative inputs", x->pad_node);
    Window w = {0};
    Shape out;
    if ((rc = window_attrs(im, x, &w, false)) ||
        (rc = window_out(im, w, x->shape, &out, x->shape.c)))
        return rc;
    if (include_pad && (w.same || w.explicit_pad))
        return node_fail(im, MN_ESPEC, "count_include_pad 1 with padding is not supported "
                         "(mnistd averages the pixels inside)");
    Pending *p;
    if ((rc = emit(im, max ? "maxpool2d" : "average_pooling2d", &x, 1, true, out, &p)))
        return rc;
    window_json(&w, "pool_size", p->json);
    return 0;
}

static int op_global_avgpool(Importer *im)
{
    const char *const none[] = {NULL};
    Value *x;
    Pending *p;
    int rc;
    if ((rc = check_attrs(im, none)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")))
        return rc;
    if (!x->nchw)
        return node_fail(im, MN_ESPEC, "needs a 4-D (N, C, H, W) input");
    return emit(im, "global_average_pooling2d", &x, 1, true, shape_make(1, 1, x->shape.c), &p);
}

static int op_batchnorm(Importer *im)
{
    const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", NULL};
    Value *x;
    int rc;
    long long training, spatial;
    float eps, momentum;
    if ((rc = check_attrs(im, known)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "the batch statistics")) ||
        (rc = attr_int(im, "training_mode", 0, &training)) ||
        (rc = attr_int(im, "spatial", 1, &spatial)) ||
        (rc = attr_float(im, "epsilon", 1e-5f, &eps)) ||
        (rc = attr_float(im, "momentum", 0.9f, &momentum)))
        return rc;
    if (training)
        return node_fail(im, MN_ESPEC, "training_mode 1 is not supported (inference graphs only)");
    if (!spatial)
        return node_fail(im, MN_ESPEC, "spatial 0 is not supported");
    if (eps < 1e-10f || eps > 1.0f)
        return node_fail(im, MN_ESPEC, "epsilon %g is outside 1e-10..1", eps);
    if (x->chw_order)
        return node_fail(im, MN_ESPEC, "BatchNormalization over features flattened from C,H,W "
                         "is not supported");
    size_t c = (size_t)x->shape.c;
    if (!x->nchw && (x->shape.h != 1 || x->shape.w != 1))
        return node_fail(im, MN_ESPEC, "needs a 4-D or a flat input");
    const Onnx__TensorProto *t[4];
    for (size_t i = 0; i < 4; i++)
        if ((rc = input_constant(im, i + 1, c, &t[i], NULL)))
            return rc;
    Pending *p;
    if ((rc = emit(im, "batch_normalization", &x, 1, x->nchw, x->shape, &p)))
        return rc;
    cJSON_AddNumberToObject(p->json, "epsilon", eps);
    if (!(p->w = alloc_floats(im, c)) || !(p->b = alloc_floats(im, c)) ||
        !(p->state = alloc_floats(im, 2 * c)))
        return MN_ENOMEM;
    p->nw = p->nb = c;
    p->ns = 2 * c;
    for (size_t j = 0; j < c; j++) {
        p->w[j] = onnx_tensor_float(t[0], j);      /* gamma */
        p->b[j] = onnx_tensor_float(t[1], j);      /* beta */
        p->state[j] = onnx_tensor_float(t[2], j);  /* moving mean */
        float var = onnx_tensor_float(t[3], j);
        if (!(var >= 0.0f) || !isfinite(var))
            return node_fail(im, MN_EINVAL, "variance %g of channel %zu is not a variance", var, j);
        p->state[c + j] = var;
    }
    return 0;
}

/* Flatten (axis 1) and Reshape to (N, features): a flatten layer. */
static int to_flat(Importer *im, Value *x)
{
    if (x->nhwc) { /* already in mnistd's order */
        Pending *p;
        return emit(im, "flatten", &x, 1, false, shape_make(1, 1, (int)shape_numel(x->shape)), &p);
    }
    if (!x->nchw || (x->shape.h == 1 && x->shape.w == 1)) {
        Value flat = *x; /* 1x1 pixels: the same features in either order */
        flat.nchw = false;
        return alias(im, &flat);
    }
    Pending *p;
    int rc = emit(im, "flatten", &x, 1, false, shape_make(1, 1, (int)shape_numel(x->shape)), &p);
    if (rc)
        return rc;
    Value *v = &im->values[im->n_values - 1];
    if (x->shape.c > 1 && x->shape.h * x->shape.w > 1) {
        v->chw_order = true;
        v->chw = x->shape;
    }
    return 0;
}

static int op_flatten(Importer *im)
{
    const char *const known[] = {"axis", NULL};
    Value *x;
    int rc;
    long long axis;
    if ((rc = check_attrs(im, known)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")) || (rc = attr_int(im, "axis", 1, &axis)))
        return rc;
    if (axis != 1)
        return node_fail(im, MN_ESPEC, "axis %lld is not supported (1: keep the batch)", axis);
    return to_flat(im, x);
}

static int op_reshape(Importer *im)
{
    const char *const known[] = {"allowzero", NULL};
    Value *x;
    int rc;
    long long allowzero;
    if ((rc = check_attrs(im, known)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")) || (rc = attr_int(im, "allowzero", 0, &allowzero)))
        return rc;
    const Onnx__NodeProto *n = cur(im);
    const Onnx__TensorProto *st = n->n_input > 1 ? find_constant(im, n->input[1]) : NULL;
    if (!st)
        return node_fail(im, MN_ESPEC, "the shape must be a constant");
    int64_t shape[2];
    size_t count;
    char what[120];
    snprintf(what, sizeof what, "node %d: shape \"%.60s\"", im->node, n->input[1]);
    if ((rc = onnx_tensor_int64s(st, shape, 2, &count, what, im->err)))
        return rc;
    int64_t numel = (int64_t)shape_numel(x->shape);
    bool batch_kept = shape[0] == -1 ? shape[1] == numel : (shape[0] == 0 && !allowzero) || shape[0] == 1;
    if (count != 2 || !batch_kept || (shape[1] != -1 && shape[1] != numel) ||
        (shape[0] == -1 && shape[1] == -1))
        return node_fail(im, MN_ESPEC, "only a Reshape to a flat (N, %lld) vector is supported",
                         (long long)numel);
    return to_flat(im, x);
}

static int op_identity(Importer *im, bool dropout)
{
    const char *const seed[] = {"seed", "ratio", NULL};
    const char *const none[] = {NULL};
    Value *x;
    int rc;
    if ((rc = check_attrs(im, dropout ? seed : none)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "the mask")))
        return rc;
    const Onnx__NodeProto *n = cur(im);
    if (dropout && n->n_input > 2 && *n->input[2]) {
        const Onnx__TensorProto *t = find_constant(im, n->input[2]);
        bool off = t && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL &&
                   ((t->has_raw_data && t->raw_data.len == 1 && !t->raw_data.data[0]) ||
                    (t->n_int32_data == 1 && !t->int32_data[0]));
        if (!off)
            return node_fail(im, MN_ESPEC, "training_mode must be a constant false");
    }
    return alias(im, x);
}

static int op_transpose(Importer *im)
{
    const char *const known[] = {"perm", NULL};
    Value *x;
    long long perm[4] = {0, 0, 0, 0};
    bool given;
    int rc;
    if ((rc = check_attrs(im, known)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")) || (rc = attr_ints(im, "perm", 4, perm, &given)))
        return rc;
    if (!x->nchw || x->nhwc || !given || perm[0] != 0 || perm[1] != 2 || perm[2] != 3 ||
        perm[3] != 1)
        return node_fail(im, MN_ESPEC, "only a Transpose of a 4-D tensor with perm [0, 2, 3, 1] "
                         "(to NHWC, before a Flatten) is supported");
    Value t = *x;
    t.nhwc = true;
    return alias(im, &t);
}

static bool same_layout(const Value *a, const Value *b)
{
    return a->nchw == b->nchw && a->shape.h == b->shape.h && a->shape.w == b->shape.w &&
           a->chw_order == b->chw_order &&
           (!a->chw_order || (a->chw.h == b->chw.h && a->chw.w == b->chw.w && a->chw.c == b->chw.c));
}

/* Add: two computed values (a residual add), or the bias of the layer before. */
static int op_add(Importer *im)
{
    const char *const none[] = {NULL};
    int rc;
    if ((rc = check_attrs(im, none)) || (rc = single_output(im, "")))
        return rc;
    const Onnx__NodeProto *n = cur(im);
    if (n->n_input != 2)
        return node_fail(im, MN_EINVAL, "Add takes 2 inputs, got %zu", n->n_input);
    Value *a = find_value(im, n->input[0]), *b = find_value(im, n->input[1]);
    if (a && b) {
        if ((rc = readable(im, a)) || (rc = readable(im, b)))
            return rc;
        if (!same_layout(a, b) || a->shape.c != b->shape.c)
            return node_fail(im, MN_ESPEC, "inputs of shapes %dx%dx%d and %dx%dx%d: only same "
                             "shapes add (no broadcasting)", a->shape.h, a->shape.w, a->shape.c,
                             b->shape.h, b->shape.w, b->shape.c);
        Value *in[2] = {a, b};
        Pending *p;
        if ((rc = emit(im, "add", in, 2, a->nchw, a->shape, &p)))
            return rc;
        im->values[im->n_values - 1].chw_order = a->chw_order;
        im->values[im->n_values - 1].chw = a->chw;
        return 0;
    }
    size_t ci = a ? 1 : 0;
    Value *x = a ? a : b;
    Pending *p = x ? fusable(im, x) : NULL;
    if (!x || !find_constant(im, n->input[ci]))
        return input_value(im, a ? 1 : 0, &x); /* names the missing input */
    if (!p || p->has_bias)
        return node_fail(im, MN_ESPEC, "Add of a constant is supported only as the bias of the "
                         "Gemm, MatMul or Conv just before it");
    const Onnx__TensorProto *t;
    size_t c = (size_t)x->shape.c;
    if ((rc = input_constant(im, ci, c, &t, NULL)))
        return rc;
    if (!(p->b = alloc_floats(im, c)))
        return MN_ENOMEM;
    p->nb = c;
    for (size_t j = 0; j < c; j++)
        p->b[j] = onnx_tensor_float(t, j);
    p->has_bias = true;
    cJSON_DeleteItemFromObject(p->json, "use_bias");
    p->out = n->output[0];
    return alias(im, x);
}

static int op_concat(Importer *im)
{
    const char *const known[] = {"axis", NULL};
    int rc;
    long long axis;
    if ((rc = check_attrs(im, known)) || (rc = single_output(im, "")) ||
        (rc = attr_int(im, "axis", 1, &axis)))
        return rc;
    const Onnx__NodeProto *n = cur(im);
    if (n->n_input < 2 || n->n_input > LAYER_MAX_INPUTS)
        return node_fail(im, MN_ESPEC, "%zu inputs (2 to %d)", n->n_input, LAYER_MAX_INPUTS);
    Value *in[LAYER_MAX_INPUTS];
    int channels = 0;
    for (size_t i = 0; i < n->n_input; i++) {
        if ((rc = input_value(im, i, &in[i])))
            return rc;
        Value *v = in[i];
        if (v->nchw != in[0]->nchw || v->shape.h != in[0]->shape.h || v->shape.w != in[0]->shape.w ||
            v->chw_order)
            return node_fail(im, MN_ESPEC, "inputs must all be 4-D of one height and width, or "
                             "all flat");
        channels += v->shape.c;
    }
    if (axis != 1 && !(in[0]->nchw ? axis == -3 : axis == -1))
        return node_fail(im, MN_ESPEC, "axis %lld is not supported (the channels: 1)", axis);
    Pending *p;
    return emit(im, "concatenate", in, (int)n->n_input, in[0]->nchw,
                shape_make(in[0]->shape.h, in[0]->shape.w, channels), &p);
}

static int add_constant(Importer *im, const char *name, const Onnx__TensorProto *t)
{
    const char **names = realloc(im->const_names, (im->n_consts + 1) * sizeof *names);
    if (names)
        im->const_names = names;
    const Onnx__TensorProto **ts = realloc(im->const_tensors, (im->n_consts + 1) * sizeof *ts);
    if (ts)
        im->const_tensors = ts;
    if (!names || !ts)
        return mn_fail(im->err, MN_ENOMEM, "out of memory");
    im->const_names[im->n_consts] = name;
    im->const_tensors[im->n_consts++] = t;
    return 0;
}

static int op_constant(Importer *im)
{
    const char *const known[] = {"value", NULL};
    int rc;
    if ((rc = check_attrs(im, known)) || (rc = single_output(im, "")))
        return rc;
    const Onnx__AttributeProto *a = attr(im, "value");
    if (!a || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !a->t)
        return node_fail(im, MN_ESPEC, "only a tensor \"value\" is supported");
    return add_constant(im, cur(im)->output[0], a->t);
}

/* --- Pad: zeros around the height and width, taken in by the reader --- */

static int op_pad(Importer *im)
{
    const char *const input_attrs[] = {"mode", NULL};
    const char *const old_attrs[] = {"mode", "pads", "value", NULL};
    bool inputs = im->opset >= 11; /* the pads and the value became inputs in opset 11 */
    Value *x;
    char mode[16];
    int rc;
    if ((rc = check_attrs(im, inputs ? input_attrs : old_attrs)) || (rc = input_value(im, 0, &x)) ||
        (rc = single_output(im, "")) || (rc = attr_string(im, "mode", "constant", mode, sizeof mode)))
        return rc;
    if (strcmp(mode, "constant"))
        return node_fail(im, MN_ESPEC, "mode \"%s\" is not supported (constant zeros only, which "
                         "the Conv or MaxPool after it takes as padding)", mode);
    if (!x->nchw)
        return node_fail(im, MN_ESPEC, "needs a 4-D (N, C, H, W) input: only a height and "
                         "width are padded");
    long long pads[8] = {0}; /* begins of N, C, H, W, then their ends */
    float value = 0.0f;
    if (inputs) {
        const Onnx__NodeProto *n = cur(im);
        Ints p, axes = {.n = 4, .v = {0, 1, 2, 3}};
        if ((rc = input_ints(im, 1, &p)) || (n->n_input > 3 && *n->input[3] &&
                                             (rc = input_ints(im, 3, &axes))))
            return rc;
        if (axes.n > 4 || p.n != 2 * axes.n)
            return node_fail(im, MN_ESPEC, "%zu pads for %zu axes (two per axis of 4)", p.n, axes.n);
        for (size_t j = 0; j < axes.n; j++) {
            int64_t a = axes.v[j] < 0 ? axes.v[j] + 4 : axes.v[j];
            if (a < 0 || a > 3)
                return node_fail(im, MN_ESPEC, "axis %lld is not one of the 4", (long long)axes.v[j]);
            pads[a] = p.v[j];
            pads[a + 4] = p.v[axes.n + j];
        }
        const Onnx__TensorProto *t;
        if (n->n_input > 2 && *n->input[2]) {
            if ((rc = input_constant(im, 2, 1, &t, NULL)))
                return rc;
            value = onnx_tensor_float(t, 0);
        }
    } else {
        bool given;
        if ((rc = attr_ints(im, "pads", 8, pads, &given)) || (rc = attr_float(im, "value", 0, &value)))
            return rc;
    }
    if (value != 0.0f)
        return node_fail(im, MN_ESPEC, "constant value %g is not supported (zeros only: the "
                         "padding of the Conv or MaxPool after it)", value);
    for (int i = 0; i < 8; i++)
        if (pads[i] < 0 || pads[i] > SPEC_KERNEL_MAX)
            return node_fail(im, MN_ESPEC, "pad %lld is not supported (0 to %d: no crops)",
                             pads[i], SPEC_KERNEL_MAX);
    if (pads[0] || pads[1] || pads[4] || pads[5])
        return node_fail(im, MN_ESPEC, "pads the batch or channel axis: only the height and "
                         "width are padded");
    Value v = *x;
    v.name = cur(im)->output[0];
    if (!pads[2] && !pads[3] && !pads[6] && !pads[7])
        return add_value(im, v); /* nothing added: the input itself */
    v.padded = true;
    v.pad_node = im->node;
    v.pad_of = x->name;
    int top_left_bottom_right[4] = {(int)pads[2], (int)pads[3], (int)pads[6], (int)pads[7]};
    memcpy(v.pad, top_left_bottom_right, sizeof v.pad);
    return add_value(im, v);
}

/* --- integer arithmetic on constants ---
 * torch 1.13 computes nn.ZeroPad2d's pads from constants with
 * ConstantOfShape, Concat, Reshape, Slice, Transpose and Cast: such a node
 * whose inputs are all constants is evaluated here into a constant. */

static bool foldable(const Importer *im, const char *op)
{
    static const char *const ops[] = {"ConstantOfShape", "Concat", "Reshape", "Slice",
                                      "Transpose", "Cast", NULL};
    bool known = false;
    for (const char *const *o = ops; *o && !known; o++)
        known = !strcmp(*o, op);
    const Onnx__NodeProto *n = cur(im);
    for (size_t i = 0; known && i < n->n_input; i++)
        known = !*n->input[i] || find_constant(im, n->input[i]);
    return known && n->n_input > 0;
}

/* The flat index of multi-index idx in dims. */
static size_t ints_at(const int64_t *dims, int rank, const int64_t *idx)
{
    size_t at = 0;
    for (int d = 0; d < rank; d++)
        at = at * (size_t)dims[d] + (size_t)idx[d];
    return at;
}

/* Flat index i of dims as a multi-index. */
static void ints_index(const int64_t *dims, int rank, size_t i, int64_t *idx)
{
    for (int d = rank; d-- > 0;) {
        idx[d] = (int64_t)(i % (size_t)dims[d]);
        i /= (size_t)dims[d];
    }
}

static void free_folded(Onnx__TensorProto *t)
{
    if (t) {
        free(t->dims);
        free(t->int64_data);
        free(t);
    }
}

/* r as the constant the current node computes. */
static int put_ints(Importer *im, const Ints *r)
{
    Onnx__TensorProto *t = malloc(sizeof *t);
    Onnx__TensorProto **list = realloc(im->folded, (im->n_folded + 1) * sizeof *list);
    if (list)
        im->folded = list;
    if (t) {
        onnx__tensor_proto__init(t);
        t->dims = malloc(FOLD_RANK * sizeof *t->dims);
        t->int64_data = malloc((r->n ? r->n : 1) * sizeof *t->int64_data);
    }
    if (!t || !list || !t->dims || !t->int64_data) {
        free_folded(t);
        return mn_fail(im->err, MN_ENOMEM, "out of memory");
    }
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_dims = (size_t)r->rank;
    memcpy(t->dims, r->dims, sizeof r->dims);
    t->n_int64_data = r->n;
    memcpy(t->int64_data, r->v, r->n * sizeof *r->v);
    im->folded[im->n_folded++] = t;
    return add_constant(im, cur(im)->output[0], t);
}

/* Output dims from attribute values: each 0 up to FOLD_MAX in all. */
static int fold_dims(Importer *im, const int64_t *dims, size_t rank, Ints *r)
{
    if (rank > FOLD_RANK)
        return node_fail(im, MN_ESPEC, "a result of %zu dimensions (at most %d)", rank, FOLD_RANK);
    double n = 1;
    for (size_t d = 0; d < rank; d++) {
        if (dims[d] < 0)
            return node_fail(im, MN_EINVAL, "dimension %zu is %lld", d, (long long)dims[d]);
        n *= (double)dims[d];
        r->dims[d] = dims[d];
    }
    if (n > FOLD_MAX)
        return node_fail(im, MN_ELIMIT, "a result of more than %d values", FOLD_MAX);
    r->rank = (int)rank;
    r->n = (size_t)n;
    return 0;
}

static int fold_slice(Importer *im, const Ints *a, Ints *r)
{
    const Onnx__NodeProto *n = cur(im);
    Ints st, en, ax = {.n = (size_t)a->rank, .v = {0, 1, 2, 3}}, sp = {.n = (size_t)a->rank, .v = {1, 1, 1, 1}};
    int rc;
    if (n->n_input < 3)
        return node_fail(im, MN_ESPEC, "Slice needs starts and ends inputs (opset 10)");
    if ((rc = input_ints(im, 1, &st)) || (rc = input_ints(im, 2, &en)) ||
        (n->n_input > 3 && *n->input[3] && (rc = input_ints(im, 3, &ax))) ||
        (n->n_input > 4 && *n->input[4] && (rc = input_ints(im, 4, &sp))))
        return rc;
    if (st.n != en.n || (n->n_input > 3 && *n->input[3] && ax.n != st.n) ||
        (n->n_input > 4 && *n->input[4] && sp.n != st.n) || st.n > (size_t)a->rank)
        return node_fail(im, MN_EINVAL, "starts, ends, axes and steps of different lengths");
    int64_t from[FOLD_RANK] = {0}, step[FOLD_RANK] = {1, 1, 1, 1}, dims[FOLD_RANK];
    memcpy(dims, a->dims, sizeof dims);
    for (size_t j = 0; j < st.n; j++) {
        int64_t d = ax.v[j] < 0 ? ax.v[j] + a->rank : ax.v[j];
        if (d < 0 || d >= a->rank || sp.v[j] == 0 || sp.v[j] == INT64_MIN)
            return node_fail(im, MN_EINVAL, "axis %lld or step %lld is not valid",
                             (long long)ax.v[j], (long long)sp.v[j]);
        int64_t size = a->dims[d];
        int64_t s = st.v[j] < 0 ? st.v[j] + size : st.v[j], e = en.v[j] < 0 ? en.v[j] + size : en.v[j];
        bool up = sp.v[j] > 0; /* ONNX clamps: [0, size] going up, [-1, size - 1] going down */
        s = s < 0 ? 0 : s > size - !up ? size - !up : s;
        e = e < -!up ? -!up : e > size - !up ? size - !up : e;
        int64_t span = up ? e - s : s - e, by = up ? sp.v[j] : -sp.v[j];
        dims[d] = span > 0 ? (span - 1) / by + 1 : 0; /* no overflow for any step */
        from[d] = s;
        step[d] = sp.v[j];
    }
    if ((rc = fold_dims(im, dims, (size_t)a->rank, r)))
        return rc;
    for (size_t i = 0; i < r->n; i++) {
        int64_t idx[FOLD_RANK];
        ints_index(r->dims, r->rank, i, idx);
        for (int d = 0; d < r->rank; d++)
            idx[d] = from[d] + idx[d] * step[d];
        r->v[i] = a->v[ints_at(a->dims, a->rank, idx)];
    }
    return 0;
}

static int fold_reshape(Importer *im, const Ints *a, Ints *r)
{
    Ints shape;
    long long allowzero;
    int rc;
    if ((rc = input_ints(im, 1, &shape)) || (rc = attr_int(im, "allowzero", 0, &allowzero)))
        return rc;
    if (shape.n > FOLD_RANK)
        return node_fail(im, MN_ESPEC, "a result of %zu dimensions (at most %d)", shape.n, FOLD_RANK);
    int64_t dims[FOLD_RANK];
    int unknown = -1;
    size_t known = 1;
    for (size_t d = 0; d < shape.n; d++) {
        dims[d] = shape.v[d] == 0 && !allowzero ? ((int)d < a->rank ? a->dims[d] : -2) : shape.v[d];
        if (dims[d] == -1 && unknown < 0)
            unknown = (int)d;
        else if (dims[d] < 0 || dims[d] > FOLD_MAX)
            return node_fail(im, MN_EINVAL, "shape value %lld is not valid", (long long)shape.v[d]);
        else
            known *= (size_t)dims[d];
    }
    if (unknown >= 0)
        dims[unknown] = known ? (int64_t)(a->n / known) : 0;
    if ((rc = fold_dims(im, dims, shape.n, r)))
        return rc;
    if (r->n != a->n)
        return node_fail(im, MN_EINVAL, "%zu values do not reshape to %zu", a->n, r->n);
    memcpy(r->v, a->v, a->n * sizeof *a->v);
    return 0;
}

static int fold_transpose(Importer *im, const Ints *a, Ints *r)
{
    long long perm[FOLD_RANK];
    int64_t dims[FOLD_RANK];
    bool given, seen[FOLD_RANK] = {false};
    int rc = attr_ints(im, "perm", (size_t)a->rank, perm, &given);
    if (rc)
        return rc;
    for (int d = 0; d < a->rank; d++) {
        if (!given)
            perm[d] = a->rank - 1 - d; /* ONNX's default: reversed */
        if (perm[d] < 0 || perm[d] >= a->rank || seen[perm[d]])
            return node_fail(im, MN_EINVAL, "perm is not a permutation");
        seen[perm[d]] = true;
        dims[d] = a->dims[perm[d]];
    }
    if ((rc = fold_dims(im, dims, (size_t)a->rank, r)))
        return rc;
    for (size_t i = 0; i < r->n; i++) {
        int64_t idx[FOLD_RANK], from[FOLD_RANK];
        ints_index(r->dims, r->rank, i, idx);
        for (int d = 0; d < r->rank; d++)
            from[perm[d]] = idx[d];
        r->v[i] = a->v[ints_at(a->dims, a->rank, from)];
    }
    return 0;
}

static int fold_node(Importer *im)
{
    const Onnx__NodeProto *n = cur(im);
    const char *op = n->op_type;
    const char *const value[] = {"value", NULL}, *const axis[] = {"axis", NULL},
                      *const allowzero[] = {"allowzero", NULL}, *const perm[] = {"perm", NULL},
                      *const to[] = {"to", NULL}, *const none[] = {NULL};
    const char *const *known = !strcmp(op, "ConstantOfShape") ? value
                               : !strcmp(op, "Concat")        ? axis
                               : !strcmp(op, "Reshape")       ? allowzero
                               : !strcmp(op, "Transpose")     ? perm
                               : !strcmp(op, "Cast")          ? to
                                                              : none;
    Ints a, r = {0};
    int rc;
    if ((rc = check_attrs(im, known)) || (rc = single_output(im, "")) || (rc = input_ints(im, 0, &a)))
        return rc;
    if (!strcmp(op, "ConstantOfShape")) {
        const Onnx__AttributeProto *v = attr(im, "value");
        Ints fill;
        size_t one;
        char what[80];
        snprintf(what, sizeof what, "node %d: value", im->node);
        if (!v || v->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !v->t)
            return node_fail(im, MN_ESPEC, "only an INT64 tensor \"value\" is evaluated");
        if ((rc = onnx_tensor_int64s(v->t, fill.v, 1, &one, what, im->err)) ||
            (rc = fold_dims(im, a.v, a.n, &r)))
            return rc;
        if (one != 1)
            return node_fail(im, MN_EINVAL, "value must hold one value");
        for (size_t i = 0; i < r.n; i++)
            r.v[i] = fill.v[0];
    } else if (!strcmp(op, "Concat")) {
        long long ax;
        if ((rc = attr_int(im, "axis", 0, &ax)))
            return rc;
        if (a.rank != 1 || (ax != 0 && ax != -1))
            return node_fail(im, MN_ESPEC, "only vectors are concatenated here (axis 0)");
        for (size_t i = 0; i < n->n_input; i++) {
            Ints b;
            if ((rc = input_ints(im, i, &b)))
                return rc;
            if (b.rank != 1 || r.n + b.n > FOLD_MAX)
                return node_fail(im, MN_ESPEC, "only vectors of up to %d values in all are "
                                 "concatenated here", FOLD_MAX);
            memcpy(r.v + r.n, b.v, b.n * sizeof *b.v);
            r.n += b.n;
        }
        r.rank = 1;
        r.dims[0] = (int64_t)r.n;
    } else if (!strcmp(op, "Reshape")) {
        rc = fold_reshape(im, &a, &r);
    } else if (!strcmp(op, "Slice")) {
        rc = fold_slice(im, &a, &r);
    } else if (!strcmp(op, "Transpose")) {
        rc = fold_transpose(im, &a, &r);
    } else { /* Cast */
        long long type;
        if ((rc = attr_int(im, "to", 0, &type)))
            return rc;
        if (type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
            return node_fail(im, MN_ESPEC, "Cast of a constant to type %lld: only INT64 (7)", type);
        r = a;
    }
    return rc ? rc : put_ints(im, &r);
}

/* --- GELU's erf form: x * 0.5 * (1 + erf(x / sqrt 2)) ---
 * What torch exports for nn.GELU and mnistd's own export writes (opset 13
 * has no Gelu): Div, Erf, Add, Mul, Mul, the products in any order. Found
 * before conversion: its nodes are then skipped, and the last is a gelu. */

/* A scalar FLOAT constant, an initializer or a Constant node's, within
 * float rounding of want. */
static bool scalar_is(const Importer *im, const char *name, double want)
{
    const Onnx__TensorProto *t = find_constant(im, name);
    for (size_t k = 0; !t && k < im->g->n_node; k++) {
        const Onnx__NodeProto *n = im->g->node[k];
        if (n->op_type && !strcmp(n->op_type, "Constant") && n->n_output && !strcmp(n->output[0], name))
            for (size_t i = 0; i < n->n_attribute; i++)
                if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, "value"))
                    t = n->attribute[i]->t;
    }
    size_t numel;
    return t && onnx_tensor_check_float(t, 1, &numel, "", NULL) == 0 && numel == 1 &&
           fabs(onnx_tensor_float(t, 0) - want) <= 1e-6 * want;
}

static int producer(const Importer *im, const char *name)
{
    for (size_t k = 0; k < im->g->n_node; k++)
        if (im->g->node[k]->n_output && !strcmp(im->g->node[k]->output[0], name))
            return (int)k;
    return -1;
}

/* The node that is the only reader of name, or -1. */
static int only_reader(const Importer *im, const char *name)
{
    if (uses(im, name) != 1)
        return -1;
    for (size_t k = 0; k < im->g->n_node; k++)
        for (size_t i = 0; i < im->g->node[k]->n_input; i++)
            if (!strcmp(im->g->node[k]->input[i], name))
                return (int)k;
    return -1;
}

/* Node k is op of two inputs, one of them `in` (the first, for Div), with
 * no attributes and one output; *other: its other input. */
static bool binary(const Importer *im, int k, const char *op, const char *in, const char **other)
{
    if (k < 0)
        return false;
    const Onnx__NodeProto *n = im->g->node[k];
    if (!n->op_type || strcmp(n->op_type, op) || n->n_input != 2 || n->n_output != 1 ||
        n->n_attribute)
        return false;
    bool first = !strcmp(n->input[0], in);
    if (!first && (op[0] == 'D' || strcmp(n->input[1], in)))
        return false;
    *other = n->input[first ? 1 : 0];
    return true;
}

/* The pattern around Erf node e: NULL and nodes[5] (the last computes
 * gelu(x)), or what does not match. */
static const char *match_gelu(const Importer *im, int e, int nodes[5], const char **x)
{
    const Onnx__NodeProto *erf = im->g->node[e];
    const char *c;
    if (erf->n_input != 1 || erf->n_output != 1 || erf->n_attribute)
        return "one input and one output";
    int d = producer(im, erf->input[0]);
    if (d < 0 || only_reader(im, erf->input[0]) != e)
        return "its input is not x / sqrt(2), read by the Erf alone";
    const Onnx__NodeProto *dn = im->g->node[d];
    if (dn->n_input != 2) /* binary() says so too, but dn's inputs are read first */
        return "its input is not x / sqrt(2)";
    if (binary(im, d, "Div", dn->input[0], &c) && scalar_is(im, c, M_SQRT2))
        *x = dn->input[0];
    else if (binary(im, d, "Mul", dn->input[0], &c) && scalar_is(im, c, M_SQRT1_2))
        *x = dn->input[0];
    else if (binary(im, d, "Mul", dn->input[1], &c) && scalar_is(im, c, M_SQRT1_2))
        *x = dn->input[1];
    else
        return "its input is not x / sqrt(2)";
    int a = only_reader(im, erf->output[0]);
    if (!binary(im, a, "Add", erf->output[0], &c) || !scalar_is(im, c, 1.0))
        return "its output is not added to 1, and read by nothing else";
    const char *plus = im->g->node[a]->output[0];
    int m1 = only_reader(im, plus), m2;
    if (!binary(im, m1, "Mul", plus, &c))
        return "1 + erf(x / sqrt(2)) is not multiplied by x and 0.5";
    bool by_x = !strcmp(c, *x);
    if (by_x || scalar_is(im, c, 0.5)) { /* (x * A) * 0.5, or (A * 0.5) * x */
        const char *p = im->g->node[m1]->output[0];
        m2 = only_reader(im, p);
        if (!binary(im, m2, "Mul", p, &c) || !(by_x ? scalar_is(im, c, 0.5) : !strcmp(c, *x)))
            return "1 + erf(x / sqrt(2)) is not multiplied by x and 0.5";
    } else { /* (x * 0.5) * A */
        m2 = m1;
        m1 = producer(im, c);
        if (only_reader(im, c) != m2 || !binary(im, m1, "Mul", *x, &c) || !scalar_is(im, c, 0.5))
            return "1 + erf(x / sqrt(2)) is not multiplied by x and 0.5";
    }
    int found[5] = {d, e, a, m1, m2};
    for (int i = 0; i < 5; i++)
        if (found[i] > m2)
            return "its nodes are out of order";
    memcpy(nodes, found, sizeof found);
    return NULL;
}

/* Every Erf must be part of a gelu: marks each pattern's nodes. */
static int find_gelus(Importer *im)
{
    size_t n = im->g->n_node;
    if (!(im->gelu_last = malloc((n ? n : 1) * sizeof *im->gelu_last)) ||
        !(im->gelu_x = calloc(n ? n : 1, sizeof *im->gelu_x)))
        return mn_fail(im->err, MN_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++)
        im->gelu_last[k] = -1;
    for (size_t k = 0; k < n; k++) {
        if (!im->g->node[k]->op_type || strcmp(im->g->node[k]->op_type, "Erf"))
            continue;
        int nodes[5];
        const char *x = NULL;
        im->node = (int)k;
        const char *why = match_gelu(im, (int)k, nodes, &x);
        if (why)
            return node_fail(im, MN_ESPEC, "Erf is supported only in gelu's erf form, x * 0.5 * "
                             "(1 + erf(x / sqrt(2))): %s", why);
        for (int i = 0; i < 5; i++)
            im->gelu_last[nodes[i]] = nodes[4];
        im->gelu_x[nodes[4]] = x;
    }
    return 0;
}

/* The last node of a gelu pattern: gelu of its x. */
static int op_gelu_pattern(Importer *im)
{
    Value *x;
    int rc = named_value(im, im->gelu_x[im->node], &x);
    return rc ? rc : activation_of(im, x, "gelu");
}

static int convert_node(Importer *im)
{
    const Onnx__NodeProto *n = cur(im);
    const char *op = n->op_type ? n->op_type : "";
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return node_fail(im, MN_ESPEC, "domain \"%.40s\" is not supported (ONNX's own operators "
                         "only)", n->domain);
    if (im->gelu_last[im->node] >= 0)
        return op_gelu_pattern(im);
    if (foldable(im, op))
        return fold_node(im);
    static const struct {
        const char *op, *act;
    } acts[] = {{"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"Softmax", "softmax"},
                {"LeakyRelu", "leaky_relu"}, {"Elu", "elu"}, {"Gelu", "gelu"}};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (!strcmp(op, acts[i].op))
            return op_activation(im, acts[i].act);
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        return op_dense(im, op[0] == 'G');
    if (!strcmp(op, "Conv"))
        return op_conv(im);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return op_pool(im, op[0] == 'M');
    if (!strcmp(op, "GlobalAveragePool"))
        return op_global_avgpool(im);
    if (!strcmp(op, "BatchNormalization"))
        return op_batchnorm(im);
    if (!strcmp(op, "Flatten"))
        return op_flatten(im);
    if (!strcmp(op, "Reshape"))
        return op_reshape(im);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout"))
        return op_identity(im, op[0] == 'D');
    if (!strcmp(op, "Add"))
        return op_add(im);
    if (!strcmp(op, "Concat"))
        return op_concat(im);
    if (!strcmp(op, "Constant"))
        return op_constant(im);
    if (!strcmp(op, "Transpose"))
        return op_transpose(im);
    if (!strcmp(op, "Pad"))
        return op_pad(im);
    /* the list would not fit in a message: README.md's ONNX table has it */
    return node_fail(im, MN_ESPEC, "operator %.30s is not supported (README.md lists the ONNX "
                     "operators mnistd imports)", op);
}

/* --- the graph's input and output --- */

static int read_input(Importer *im)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < im->g->n_input; i++) {
        if (!im->g->input[i]->name)
            return mn_fail(im->err, MN_EINVAL, "graph input %zu has no name", i);
        if (find_constant(im, im->g->input[i]->name))
            continue; /* old exporters list initializers as inputs too */
        if (in)
            return mn_fail(im->err, MN_ESPEC, "the graph has inputs \"%.60s\" and \"%.60s\": "
                           "mnistd models take one image", in->name, im->g->input[i]->name);
        in = im->g->input[i];
    }
    if (!in)
        return mn_fail(im->err, MN_ESPEC, "the graph has no input");
    const Onnx__TypeProto *t = in->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type ||
        t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || !t->tensor_type->shape)
        return mn_fail(im->err, MN_ESPEC, "input \"%.60s\" must be a float tensor of known shape",
                       in->name);
    const Onnx__TensorShapeProto *s = t->tensor_type->shape;
    long long d[4] = {0};
    for (size_t i = 1; i < s->n_dim && i < 4; i++) {
        if (s->dim[i]->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            s->dim[i]->dim_value < 1 || s->dim[i]->dim_value > 4096)
            return mn_fail(im->err, MN_ESPEC, "input \"%.60s\": dimension %zu must be a number "
                           "1 to 4096", in->name, i);
        d[i] = s->dim[i]->dim_value;
    }
    Value v = {.name = in->name, .source = LAYER_INPUT_MODEL, .nchw = true};
    if (s->n_dim == 4 && d[1] == 1) {
        v.shape = im->input = shape_make((int)d[2], (int)d[3], 1);
    } else if (s->n_dim == 3) {
        v.shape = im->input = shape_make((int)d[1], (int)d[2], 1);
    } else if (s->n_dim == 2) {
        /* (N, features) of a square grayscale image: mnistd flattens it */
        int side = (int)lround(sqrt((double)d[1]));
        if ((long long)side * side != d[1])
            return mn_fail(im->err, MN_ESPEC, "input \"%.60s\" has %lld features: not a square "
                           "image", in->name, d[1]);
        v.shape = im->input = shape_make(side, side, 1);
        /* the image as mnistd's input, then a flatten that computes the graph's input */
        v.name = "";
        if (im->g->n_node == 0)
            return mn_fail(im->err, MN_ESPEC, "the graph has no nodes");
        int rc = add_value(im, v);
        if (rc)
            return rc;
        Value *x = &im->values[im->n_values - 1];
        Pending *p;
        im->node = 0; /* emit names the layer after a node: renamed below */
        if ((rc = emit(im, "flatten", &x, 1, false, shape_make(1, 1, (int)d[1]), &p)))
            return rc;
        cJSON_ReplaceItemInObject(p->json, "name", cJSON_CreateString("input_flatten"));
        p->out = in->name;
        im->values[im->n_values - 1].name = in->name;
        return 0;
    } else {
        return mn_fail(im->err, MN_ESPEC, "input \"%.60s\" must be (N, 1, H, W), (N, H, W) or "
                       "(N, H*W): one grayscale image per sample", in->name);
    }
    return add_value(im, v);
}

static int check_output(Importer *im)
{
    if (im->g->n_output != 1 || !im->g->output[0]->name)
        return mn_fail(im->err, MN_ESPEC, "the graph has %zu outputs: mnistd models have one",
                       im->g->n_output);
    Value *v = find_value(im, im->g->output[0]->name);
    if (!v || v->source == LAYER_INPUT_MODEL || v->padded)
        return mn_fail(im->err, MN_ESPEC, "output \"%.60s\" is not computed by any layer",
                       im->g->output[0]->name);
    if (v->source != im->n_layers - 1)
        return mn_fail(im->err, MN_ESPEC, "output \"%.60s\" is not the last layer's (nodes after "
                       "it compute something nobody reads)", im->g->output[0]->name);
    return 0;
}

/* --- the model --- */

static const char *metadata_value(const Onnx__ModelProto *mp, const char *key)
{
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (mp->metadata_props[i]->key && mp->metadata_props[i]->value &&
            !strcmp(mp->metadata_props[i]->key, key))
            return mp->metadata_props[i]->value;
    return NULL;
}

static int make_spec(Importer *im, const Onnx__ModelProto *mp, const OnnxImportOptions *opt,
                     const SpecLimits *lim, ModelSpec *spec)
{
    int pre = opt->image_preprocess;
    const char *meta_pre = metadata_value(mp, ONNX_META_PREPROCESS);
    if (pre < 0 && meta_pre && (pre = image_preprocess_from_name(meta_pre)) < 0)
        return mn_fail(im->err, MN_EINVAL, "metadata %s \"%.20s\" is not digit, frame or none",
                       ONNX_META_PREPROCESS, meta_pre);
    if (pre < 0)
        pre = IMAGE_PRE_DIGIT;
    const char *dataset = opt->dataset ? opt->dataset : metadata_value(mp, ONNX_META_DATASET);
    if (!dataset)
        dataset = pre == IMAGE_PRE_FRAME ? "fashion-mnist" : "mnist";
    cJSON *root = cJSON_CreateObject();
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    cJSON_AddStringToObject(root, "name", opt->name);
    cJSON_AddStringToObject(root, "dataset", dataset);
    cJSON *shape = cJSON_AddArrayToObject(root, "input_shape");
    int dims[3] = {im->input.h, im->input.w, im->input.c};
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(dims[i]));
    cJSON_AddStringToObject(root, "image_preprocess", image_preprocess_name((ImagePreprocess)pre));
    for (int i = 0; i < im->n_layers; i++) {
        cJSON_AddItemToArray(layers, im->layers[i].json);
        im->layers[i].json = NULL;
    }
    MnError e = {0};
    int rc = spec_from_json(root, lim, spec, &e);
    cJSON_Delete(root);
    if (rc)
        return mn_fail(im->err, rc, "the graph as mnistd layers: %s", e.msg);
    return 0;
}

static int copy_weights(Importer *im, Model *m)
{
    for (int i = 0; i < im->n_layers; i++) {
        const Pending *p = &im->layers[i];
        const Layer *l = &m->spec.layers[i];
        if (p->nw + p->nb != l->param_count || p->ns != l->state_count)
            return mn_fail(im->err, MN_ESPEC, "layer %d (%s): %zu weights from node %d, the layer "
                           "has %zu", i, l->name, p->nw + p->nb, p->node, l->param_count);
        if (p->nw)
            memcpy(m->params + l->param_offset, p->w, p->nw * sizeof *p->w);
        if (p->nb)
            memcpy(m->params + l->param_offset + p->nw, p->b, p->nb * sizeof *p->b);
        if (p->ns)
            memcpy(m->state + l->state_offset, p->state, p->ns * sizeof *p->state);
    }
    return 0;
}

/* Class names: the options', the metadata's JSON array, or model_build's "0".."n-1". */
static int set_classes(Importer *im, const Onnx__ModelProto *mp, const OnnxImportOptions *opt,
                       Model *m)
{
    if (opt->class_names)
        return model_set_class_names(m, opt->class_names, opt->n_class_names, im->err);
    const char *text = metadata_value(mp, ONNX_META_CLASSES);
    if (!text)
        return 0;
    cJSON *arr = cJSON_ParseWithLength(text, strlen(text));
    const char *names[MODEL_MAX_CLASSES];
    int n = 0, rc = 0;
    for (const cJSON *it = cJSON_IsArray(arr) ? arr->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsString(it) || n == MODEL_MAX_CLASSES)
            rc = mn_fail(im->err, MN_EINVAL, "metadata %s must be an array of up to %d strings",
                         ONNX_META_CLASSES, MODEL_MAX_CLASSES);
        else
            names[n++] = it->valuestring;
    }
    if (rc == 0 && !cJSON_IsArray(arr))
        rc = mn_fail(im->err, MN_EINVAL, "metadata %s is not a JSON array", ONNX_META_CLASSES);
    if (rc == 0)
        rc = model_set_class_names(m, names, n, im->err);
    cJSON_Delete(arr);
    return rc;
}

static char *source_json(const Onnx__ModelProto *mp, int opset)
{
    cJSON *o = cJSON_CreateObject(), *src = cJSON_AddObjectToObject(o, "imported");
    cJSON_AddStringToObject(src, "format", "onnx");
    cJSON_AddNumberToObject(src, "opset", opset);
    if (mp->producer_name)
        cJSON_AddStringToObject(src, "producer", mp->producer_name);
    if (mp->producer_version)
        cJSON_AddStringToObject(src, "producer_version", mp->producer_version);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int read_opset(const Onnx__ModelProto *mp, MnError *err, int *opset)
{
    *opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            *opset = (int)(o->version > 1000 ? 1000 : o->version);
    }
    if (*opset < 7 || *opset > 22)
        return mn_fail(err, MN_ESPEC, "opset %d is not supported (7 to 22)", *opset);
    return 0;
}

int onnx_import(const void *buf, size_t len, const OnnxImportOptions *opt, const SpecLimits *lim,
                Model **out, MnError *err)
{
    *out = NULL;
    if (len > opt->max_bytes)
        return mn_fail(err, MN_ELIMIT, "the ONNX file is %zu bytes, over the limit of %zu", len,
                       opt->max_bytes);
    Onnx__ModelProto *mp = onnx_file_unpack(buf, len, err);
    if (!mp)
        return err ? err->code : MN_EINVAL;
    Importer im = {.g = mp->graph, .err = err};
    ModelSpec *spec = NULL;
    Model *m = NULL;
    int rc = read_opset(mp, err, &im.opset);
    if (rc == 0 && im.g->n_node > ONNX_MAX_NODES)
        rc = mn_fail(err, MN_ELIMIT, "the graph has %zu nodes, over the limit of %d",
                     im.g->n_node, ONNX_MAX_NODES);
    for (size_t k = 0; rc == 0 && k < im.g->n_node; k++) {
        im.node = (int)k;
        if (!im.g->node[k]->op_type || im.g->node[k]->n_output < 1)
            rc = node_fail(&im, MN_EINVAL, "no operator or no output");
    }
    if (rc == 0)
        rc = find_gelus(&im);
    if (rc == 0)
        rc = read_input(&im);
    for (size_t k = 0; rc == 0 && k < im.g->n_node; k++) {
        im.node = (int)k;
        if (im.gelu_last[k] < 0 || im.gelu_last[k] == (int)k) /* the rest of a gelu: skipped */
            rc = convert_node(&im);
    }
    if (rc == 0)
        rc = check_output(&im);
    if (rc == 0 && !(spec = malloc(sizeof *spec)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    if (rc == 0)
        rc = make_spec(&im, mp, opt, lim, spec);
    if (rc == 0)
        rc = model_build(spec, lim, &m, err);
    if (rc == 0 && (rc = copy_weights(&im, m)) == 0 && (rc = set_classes(&im, mp, opt, m)) == 0 &&
        !(m->meta_json = source_json(mp, im.opset)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    for (int i = 0; i < im.n_layers; i++) {
        cJSON_Delete(im.layers[i].json);
        free(im.layers[i].w);
        free(im.layers[i].b);
        free(im.layers[i].state);
    }
    for (size_t i = 0; i < im.n_folded; i++)
        free_folded(im.folded[i]);
    free(im.folded);
    free(im.gelu_last);
    free(im.gelu_x);
    free(im.values);
    free(im.const_names);
    free(im.const_tensors);
    free(spec);
    onnx_file_free(mp);
    if (rc) {
        model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
