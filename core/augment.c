/* augment.c - Keras's image augmentation layers: random_translation,
 * random_rotation, random_zoom, random_flip. In training each sample gets
 * its own affine map drawn from the run's Rng (kept in aux for backward);
 * at inference each is the identity. One file for the four: they differ
 * only in how a map is drawn and which keys they read, and share the
 * sampler (map + fill mode + interpolation) and its exact adjoint.
 * Sampling follows Keras 3's map_coordinates (the JAX/NumPy backends): the
 * fill mode is applied to each interpolation node's integer index. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"
#include "spec_read.h"

#define TWO_PI 6.283185307179586

/* One sample's map from output pixel (x, y) to the input point it reads. */
typedef struct {
    float xx, xy, x0; /* x_in = xx * x + xy * y + x0 */
    float yx, yy, y0; /* y_in = yx * x + yy * y + y0 */
} AffineMap;

/* The input pixels one output pixel blends, and the weight of fill_value. */
typedef struct {
    int n;
    int pixel[4]; /* y * w + x */
    float weight[4];
    float fill_weight;
} Taps;

/* An index outside [0, size) folded back per fill mode, or -1 for "constant". */
static int fill_index(int i, int size, FillMode mode)
{
    if (i >= 0 && i < size)
        return i;
    switch (mode) {
    case FILL_NEAREST:
        return i < 0 ? 0 : size - 1;
    case FILL_WRAP:
        return (i % size + size) % size;
    case FILL_REFLECT: { /* d c b a | a b c d | d c b a: period 2 * size */
        int m = (i % (2 * size) + 2 * size) % (2 * size);
        return m < size ? m : 2 * size - 1 - m;
    }
    case FILL_CONSTANT:
    default:
        return -1;
    }
}

/* Interpolation nodes along one axis: their indices and weights. */
static int axis_nodes(float coord, Interpolation interp, int index[2], float weight[2])
{
    if (interp == INTERP_NEAREST) {
        index[0] = (int)roundf(coord); /* half away from zero, as Keras's round */
        weight[0] = 1.0f;
        return 1;
    }
    float lower = floorf(coord);
    index[0] = (int)lower;
    index[1] = index[0] + 1;
    weight[1] = coord - lower;
    weight[0] = 1.0f - weight[1];
    return 2;
}

/* Forward and backward both read the taps from here, so backward is the
 * exact adjoint of forward. Zero weights are dropped: a flip or a whole
 * pixel's shift copies values exactly. */
static void sample_taps(const AugmentConfig *c, const AffineMap *m, int h, int w, int oy, int ox,
                        Taps *t)
{
    float fx = (float)ox, fy = (float)oy;
    int iy[2], ix[2];
    float wy[2], wx[2];
    int ny = axis_nodes(m->yx * fx + m->yy * fy + m->y0, c->interpolation, iy, wy);
    int nx = axis_nodes(m->xx * fx + m->xy * fy + m->x0, c->interpolation, ix, wx);
    t->n = 0;
    t->fill_weight = 0.0f;
    for (int a = 0; a < ny; a++)
        for (int b = 0; b < nx; b++) {
            float weight = wy[a] * wx[b];
            if (weight == 0.0f)
                continue;
            int y = fill_index(iy[a], h, c->fill_mode), x = fill_index(ix[b], w, c->fill_mode);
            if (y < 0 || x < 0) {
                t->fill_weight += weight;
                continue;
            }
            t->pixel[t->n] = y * w + x;
            t->weight[t->n++] = weight;
        }
}

/* y (h, w, ch) = x resampled through m. */
static void sample_forward(const AugmentConfig *c, const AffineMap *m, Shape s,
                           const float *restrict x, float *restrict y)
{
    Taps t;
    for (int oy = 0; oy < s.h; oy++)
        for (int ox = 0; ox < s.w; ox++) {
            sample_taps(c, m, s.h, s.w, oy, ox, &t);
            float *out = y + ((size_t)oy * s.w + ox) * s.c;
            for (int ch = 0; ch < s.c; ch++) {
                float v = t.fill_weight * c->fill_value;
                for (int k = 0; k < t.n; k++)
                    v += t.weight[k] * x[(size_t)t.pixel[k] * s.c + ch];
                out[ch] = v;
            }
        }
}

/* dx (h, w, ch) = the transpose of the sampling applied to dy. */
static void sample_backward(const AugmentConfig *c, const AffineMap *m, Shape s,
                            const float *restrict dy, float *restrict dx)
{
    memset(dx, 0, shape_numel(s) * sizeof *dx);
    Taps t;
    for (int oy = 0; oy < s.h; oy++)
        for (int ox = 0; ox < s.w; ox++) {
            sample_taps(c, m, s.h, s.w, oy, ox, &t);
            const float *d = dy + ((size_t)oy * s.w + ox) * s.c;
            for (int k = 0; k < t.n; k++)
                for (int ch = 0; ch < s.c; ch++)
                    dx[(size_t)t.pixel[k] * s.c + ch] += t.weight[k] * d[ch];
        }
}

/* --- drawing one sample's map, per type --- */

typedef void (*DrawMap)(const AugmentConfig *c, Shape s, Rng *rng, AffineMap *m);

static float draw_between(float lower, float upper, Rng *rng)
{
    return lower + (upper - lower) * rng_uniform(rng);
}

static const AffineMap identity_map = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};

/* Keras: a positive factor shifts the image down (height) or right (width). */
static void draw_translation(const AugmentConfig *c, Shape s, Rng *rng, AffineMap *m)
{
    float dy = draw_between(c->lower[0], c->upper[0], rng) * (float)s.h;
    float dx = draw_between(c->lower[1], c->upper[1], rng) * (float)s.w;
    *m = identity_map;
    m->x0 = -dx;
    m->y0 = -dy;
}

/* About the image's centre; a positive angle turns it counter-clockwise
 * (Keras's rotation matrix). */
static void draw_rotation(const AugmentConfig *c, Shape s, Rng *rng, AffineMap *m)
{
    float angle = draw_between(c->lower[0], c->upper[0], rng) * (float)TWO_PI;
    float cs = cosf(angle), sn = sinf(angle);
    float cx = (float)(s.w - 1) / 2.0f, cy = (float)(s.h - 1) / 2.0f;
    *m = (AffineMap){cs, -sn, cx - (cs * cx - sn * cy), sn, cs, cy - (sn * cx + cs * cy)};
}

/* Keras: the map scales by 1 + factor about the centre, so a positive
 * factor reads a larger region (zooms out). */
static void draw_zoom(const AugmentConfig *c, Shape s, Rng *rng, AffineMap *m)
{
    float zy = 1.0f + draw_between(c->lower[0], c->upper[0], rng);
    float zx = c->width_given ? 1.0f + draw_between(c->lower[1], c->upper[1], rng) : zy;
    *m = identity_map;
    m->xx = zx;
    m->x0 = (float)(s.w - 1) / 2.0f * (1.0f - zx);
    m->yy = zy;
    m->y0 = (float)(s.h - 1) / 2.0f * (1.0f - zy);
}

/* Each enabled flip with probability one half, horizontal first (Keras). */
static void draw_flip(const AugmentConfig *c, Shape s, Rng *rng, AffineMap *m)
{
    *m = identity_map;
    if (c->flip_h && rng_uniform(rng) < 0.5f) {
        m->xx = -1.0f;
        m->x0 = (float)(s.w - 1);
    }
    if (c->flip_v && rng_uniform(rng) < 0.5f) {
        m->yy = -1.0f;
        m->y0 = (float)(s.h - 1);
    }
}

static DrawMap draw_for(LayerType type)
{
    switch (type) {
    case LAYER_RANDOM_TRANSLATION:
        return draw_translation;
    case LAYER_RANDOM_ROTATION:
        return draw_rotation;
    case LAYER_RANDOM_ZOOM:
        return draw_zoom;
    default:
        return draw_flip;
    }
}

/* --- the LayerOps the four share --- */

static int augment_build(Layer *l, const Shape *in, int n_in, MnError *err)
{
    (void)n_in, (void)err;
    l->out = *in;
    l->param_count = 0;
    return 0;
}

static size_t augment_aux(const Layer *l, int batch)
{
    (void)l;
    return sizeof(AffineMap) * (size_t)batch; /* the maps drawn in forward */
}

static void augment_forward(const Layer *l, const float *params, const float *x, float *y,
                            const LayerRun *run)
{
    (void)params;
    size_t per = shape_numel(l->in);
    if (!run->training) {
        memcpy(y, x, per * (size_t)run->batch * sizeof *y);
        return;
    }
    AffineMap *maps = run->aux;
    DrawMap draw = draw_for(l->type);
    for (int i = 0; i < run->batch; i++) {
        draw(&l->cfg.augment, l->in, run->rng, &maps[i]);
        sample_forward(&l->cfg.augment, &maps[i], l->in, x + i * per, y + i * per);
    }
}

static void augment_backward(const Layer *l, const float *params, float *grads, const float *x,
                             const float *y, float *dy, float *dx, const LayerRun *run)
{
    (void)params, (void)grads, (void)x, (void)y;
    if (!dx)
        return;
    size_t per = shape_numel(l->in);
    if (!run->training) {
        memcpy(dx, dy, per * (size_t)run->batch * sizeof *dx);
        return;
    }
    const AffineMap *maps = run->aux;
    for (int i = 0; i < run->batch; i++)
        sample_backward(&l->cfg.augment, &maps[i], l->in, dy + i * per, dx + i * per);
}

/* --- spec keys --- */

static const char *const fill_mode_names[] = {"reflect", "constant", "nearest", "wrap", NULL};
static const int fill_mode_values[] = {FILL_REFLECT, FILL_CONSTANT, FILL_NEAREST, FILL_WRAP};
static const char *const interpolation_names[] = {"bilinear", "nearest", NULL};
static const int interpolation_values[] = {INTERP_BILINEAR, INTERP_NEAREST};

/* Keras refuses a shift or zoom beyond the whole image: factors in [-1, 1].
 * Rotation takes no more than a turn either way (Keras sets no bound;
 * beyond one, angles only repeat). */
#define FACTOR_LIMIT 1.0

/* A factor as Keras takes it: f for [-|f|, |f|], or a pair [lower, upper]. */
static int read_factor(const cJSON *obj, const char *key, const char *where, float *lower,
                       float *upper, MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    char path[96];
    snprintf(path, sizeof path, "%s.%s", where, key);
    if (!v)
        return mn_fail(err, MN_EINVAL, "%s: missing key \"%s\"", where, key);
    double lo, hi;
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2)
            return mn_fail(err, MN_EINVAL, "%s must be a number or a pair [lower, upper]", path);
        int rc = spec_number(v->child, path, -FACTOR_LIMIT, FACTOR_LIMIT, &lo, err);
        if (rc == 0)
            rc = spec_number(v->child->next, path, -FACTOR_LIMIT, FACTOR_LIMIT, &hi, err);
        if (rc)
            return rc;
        if (lo > hi)
            return mn_fail(err, MN_EINVAL, "%s: lower bound %g above upper bound %g", path, lo,
                           hi);
    } else {
        int rc = spec_number(v, path, -FACTOR_LIMIT, FACTOR_LIMIT, &hi, err);
        if (rc)
            return rc;
        hi = fabs(hi);
        lo = -hi;
    }
    *lower = (float)lo;
    *upper = (float)hi;
    return 0;
}

static cJSON *factor_json(float lower, float upper)
{
    double v[2] = {lower, upper};
    return cJSON_CreateDoubleArray(v, 2);
}

/* fill_mode, interpolation and fill_value, with Keras's defaults. */
static int read_fill(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    AugmentConfig *c = &l->cfg.augment;
    c->fill_mode = FILL_REFLECT;
    c->interpolation = INTERP_BILINEAR;
    c->fill_value = 0.0f;
    int mode = c->fill_mode, interp = c->interpolation;
    int rc = spec_opt_choice(obj, "fill_mode", where, fill_mode_names, fill_mode_values, &mode, err);
    if (rc == 0)
        rc = spec_opt_choice(obj, "interpolation", where, interpolation_names,
                             interpolation_values, &interp, err);
    if (rc == 0)
        rc = spec_opt_float(obj, "fill_value", where, -1e9, 1e9, &c->fill_value, err);
    c->fill_mode = (FillMode)mode;
    c->interpolation = (Interpolation)interp;
    return rc;
}

static void write_fill(const Layer *l, cJSON *o)
{
    const AugmentConfig *c = &l->cfg.augment;
    cJSON_AddStringToObject(o, "fill_mode", fill_mode_names[c->fill_mode]);
    cJSON_AddStringToObject(o, "interpolation", interpolation_names[c->interpolation]);
    cJSON_AddNumberToObject(o, "fill_value", c->fill_value);
}

/* Translation and zoom: height_factor, then width_factor, which zoom may
 * leave absent or null (Keras's None: the height's draw for both axes). */
static int read_height_width(Layer *l, const cJSON *obj, const char *where, bool width_required,
                             MnError *err)
{
    AugmentConfig *c = &l->cfg.augment;
    const cJSON *width = spec_field(obj, "width_factor");
    c->width_given = width_required || (width && !cJSON_IsNull(width));
    int rc = read_factor(obj, "height_factor", where, &c->lower[0], &c->upper[0], err);
    if (rc == 0 && c->width_given)
        rc = read_factor(obj, "width_factor", where, &c->lower[1], &c->upper[1], err);
    return rc ? rc : read_fill(l, obj, where, err);
}

static int translation_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    return read_height_width(l, obj, where, true, err);
}

static int zoom_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    return read_height_width(l, obj, where, false, err);
}

static void write_height_width(const Layer *l, cJSON *o)
{
    const AugmentConfig *c = &l->cfg.augment;
    cJSON_AddItemToObject(o, "height_factor", factor_json(c->lower[0], c->upper[0]));
    if (c->width_given)
        cJSON_AddItemToObject(o, "width_factor", factor_json(c->lower[1], c->upper[1]));
    write_fill(l, o);
}

static int rotation_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    AugmentConfig *c = &l->cfg.augment;
    int rc = read_factor(obj, "factor", where, &c->lower[0], &c->upper[0], err);
    return rc ? rc : read_fill(l, obj, where, err);
}

static void rotation_write(const Layer *l, cJSON *o)
{
    const AugmentConfig *c = &l->cfg.augment;
    cJSON_AddItemToObject(o, "factor", factor_json(c->lower[0], c->upper[0]));
    write_fill(l, o);
}

static const char *const flip_mode_names[] = {"horizontal", "vertical", "horizontal_and_vertical",
                                              NULL};
enum { FLIP_HORIZONTAL = 1, FLIP_VERTICAL = 2 }; /* bits */
static const int flip_mode_values[] = {FLIP_HORIZONTAL, FLIP_VERTICAL,
                                       FLIP_HORIZONTAL | FLIP_VERTICAL};

static int flip_parse(Layer *l, const cJSON *obj, const char *where, MnError *err)
{
    AugmentConfig *c = &l->cfg.augment;
    int mode = FLIP_HORIZONTAL | FLIP_VERTICAL; /* Keras's default */
    int rc = spec_opt_choice(obj, "mode", where, flip_mode_names, flip_mode_values, &mode, err);
    c->flip_h = mode & FLIP_HORIZONTAL;
    c->flip_v = mode & FLIP_VERTICAL;
    c->interpolation = INTERP_NEAREST; /* whole pixels: the sampler copies */
    c->fill_mode = FILL_REFLECT;       /* never reached: a flip stays inside */
    return rc;
}

static void flip_write(const Layer *l, cJSON *o)
{
    const AugmentConfig *c = &l->cfg.augment;
    int mode = (c->flip_h ? FLIP_HORIZONTAL : 0) | (c->flip_v ? FLIP_VERTICAL : 0);
    cJSON_AddStringToObject(o, "mode", flip_mode_names[mode - 1]);
}

/* The four types' entries differ in their names, keys and parsing only. */
#define AUGMENT_LAYER(spec_name, class_name, parse_fn, write_fn, ...)                       \
    {                                                                                       \
        .name = spec_name, .aliases = (const char *const[]){class_name, NULL},              \
        .keys = (const char *const[]){__VA_ARGS__, NULL}, .parse = parse_fn,                \
        .write = write_fn, .keras_name = spec_name, .keras_class = class_name,        \
        .build = augment_build, .forward = augment_forward, .backward = augment_backward,   \
        .aux = augment_aux,                                                                 \
    }

#define FILL_KEYS "fill_mode", "interpolation", "fill_value"

const LayerOps random_translation_ops =
    AUGMENT_LAYER("random_translation", "RandomTranslation", translation_parse, write_height_width,
                  "height_factor", "width_factor", FILL_KEYS);
const LayerOps random_rotation_ops = AUGMENT_LAYER("random_rotation", "RandomRotation",
                                                   rotation_parse, rotation_write, "factor", FILL_KEYS);
const LayerOps random_zoom_ops =
    AUGMENT_LAYER("random_zoom", "RandomZoom", zoom_parse, write_height_width, "height_factor",
                  "width_factor", FILL_KEYS);
const LayerOps random_flip_ops =
    AUGMENT_LAYER("random_flip", "RandomFlip", flip_parse, flip_write, "mode");
