/* conv_kernel.c - the direct convolution's geometry, its scratch, and the
 * choice of variant. The block kernel itself is conv_kernel_variant.inc,
 * compiled here three times with GCC's vector extensions, each time for
 * one instruction set (#pragma GCC target, clang's attribute push for the
 * fuzzing build) and its own vector width: one
 * 64-byte vector type compiled for AVX2 or SSE2 spills to the stack and
 * ran 35 times slower than the AVX-512 code (README, Performance). The
 * Makefile builds this file with -ffp-contract=fast, so that a multiply
 * and an add become one FMA where the instruction set has it. */
#include "conv_kernel.h"

#include <assert.h>
#include <string.h>

#include "winograd.h"

#define PACK_LEN 16        /* filters are padded to a multiple of this when not one */
#define MAX_BLOCK_PIXELS 12
#define OUTER_ROWS 4 /* rows an outer-product block sums at once */
#define OUTER_CHUNK 128 /* terms it sums before adding them to the output */
#define OUTER_COLS 16 /* columns come in whole vectors of the widest variant (AVX-512's) */
/* Taps one reduction sums before it sets its partial sum aside (a multiple
 * of 4, for one_pixel's four sums): past a few thousand float32 terms, the
 * rounding of one long running sum reached 2.4e-5 in a logit. */
#define SUM_CHUNK 1024
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 12")

/* The image a block reads: the input itself, or a zero-bordered copy of it
 * when taps fall outside, so the reduction needs no bounds checks. */
typedef struct {
    const float *data;
    size_t row_floats; /* from one input row to the next */
} Image;

/* Weights (kh, kw, in_c, filters) and bias, read with weight_stride floats
 * from one tap to the next: the filter count, or it padded to PACK_LEN. */
typedef struct {
    const float *weights, *bias;
    int weight_stride;
} FilterSet;

typedef struct {
    const float *weights, *bias; /* at the slice's first filter */
    int weight_stride, first_filter;
} FilterSlice;

static FilterSlice filter_slice(const FilterSet *f, int first_filter)
{
    FilterSlice s = {f->weights + first_filter, f->bias + first_filter, f->weight_stride,
                     first_filter};
    return s;
}

/* Where the first tap of each of `pixels` output pixels from `first` is,
 * and where that pixel's output goes. */
ALWAYS_INLINE void pixel_offsets(const ConvGeometry *g, const Image *img, int first, int pixels,
                                 size_t *offset, size_t *out_offset)
{
    int oy = first / g->out_w, ox = first % g->out_w;
    UNROLL for (int p = 0; p < pixels; p++) {
        offset[p] = (size_t)oy * g->sh * img->row_floats + (size_t)ox * g->sw * g->in_c;
        out_offset[p] = (size_t)oy * g->out_row + (size_t)ox * g->out_pixel;
        if (++ox == g->out_w) {
            ox = 0;
            oy++;
        }
    }
}

/* AVX-512: 32 registers, up to 24 sums beside the weights. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#endif
#define VARIANT(name) name##_avx512
#define VLEN 16
#define MAX_BLOCK_VECS 4
#define BLOCK_PIXELS(v) ((v) == 1 ? 12 : (v) == 4 ? 6 : 8)
#include "conv_kernel_variant.inc"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* AVX2 and FMA: 16 registers, 12 sums. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define VARIANT(name) name##_avx2
#define VLEN 8
#define MAX_BLOCK_VECS 2
#define BLOCK_PIXELS(v) ((v) == 1 ? 8 : 6)
#include "conv_kernel_variant.inc"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* SSE2, every x86-64: 16 registers, no FMA. */
#define VARIANT(name) name##_sse2
#define VLEN 4
#define MAX_BLOCK_VECS 2
#define BLOCK_PIXELS(v) 6
#include "conv_kernel_variant.inc"

typedef struct {
    void (*forward_image)(const ConvGeometry *, const Image *, const FilterSet *, float *);
    void (*one_pixel)(const float *, const float *, const float *, int, int, float *);
    void (*outer_products)(const float *, const float *, int, int, int, float *);
    int max_one_pixel; /* filters one_pixel takes */
    const char *isa;
} Variant;

static const Variant variants[] = {
    {forward_image_avx512, one_pixel_avx512, outer_products_avx512, 4 * 16, "avx512"},
    {forward_image_avx2, one_pixel_avx2, outer_products_avx2, 2 * 8, "avx2"},
    {forward_image_sse2, one_pixel_sse2, outer_products_sse2, 2 * 4, "sse2"},
};

/* Set once by conv_kernel_use, before main; read-only after. */
static const Variant *variant = &variants[2];

const char *conv_kernel_use(const char *isa)
{
    variant = &variants[2];
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        if (strcmp(isa, variants[i].isa) == 0)
            variant = &variants[i];
    return variant->isa;
}

const char *conv_kernel_isa(void)
{
    return variant->isa;
}

bool conv_kernel_one_pixel(const float *x, const float *weights, const float *bias, int in_c,
                           int filters, float *y)
{
    if (filters > variant->max_one_pixel)
        return false;
    variant->one_pixel(x, weights, bias, in_c, filters, y);
    return true;
}

void conv_kernel_add_outer_products(const float *a, const float *b, int k, int rows, int cols,
                                    float *c)
{
    assert(rows % OUTER_ROWS == 0 && cols % OUTER_COLS == 0); /* blocks have no remainder loop */
    variant->outer_products(a, b, k, rows, cols, c);
}

/* The rows and columns every tap of every output pixel can reach. */
static int padded_h(const ConvGeometry *g)
{
    int h = (g->out_h - 1) * g->sh + g->kh;
    return h > g->in_h ? h : g->in_h;
}

static int padded_w(const ConvGeometry *g)
{
    int w = (g->out_w - 1) * g->sw + g->kw;
    return w > g->in_w ? w : g->in_w;
}

/* Whether some tap falls outside the input, which then needs a border. */
static bool needs_border(const ConvGeometry *g)
{
    return g->pad_top || g->pad_left || padded_h(g) > g->in_h || padded_w(g) > g->in_w;
}

static size_t border_floats(const ConvGeometry *g)
{
    return needs_border(g) ? (size_t)padded_h(g) * padded_w(g) * g->in_c : 0;
}

static int padded_filters(const ConvGeometry *g)
{
    return (g->filters + PACK_LEN - 1) / PACK_LEN * PACK_LEN;
}

/* Filters not a multiple of PACK_LEN: weights and bias copied with zero
 * columns, so every vector load is whole. */
static size_t packed_floats(const ConvGeometry *g)
{
    if (g->filters % PACK_LEN == 0)
        return 0;
    return ((size_t)g->kh * g->kw * g->in_c + 1) * padded_filters(g);
}

size_t conv_kernel_workspace(const ConvGeometry *g)
{
    size_t direct = border_floats(g) + packed_floats(g);
    if (!winograd_pays(g))
        return direct;
    size_t winograd = winograd_workspace(g);
    return winograd > direct ? winograd : direct;
}

static FilterSet filter_set(const ConvGeometry *g, const float *weights, const float *bias,
                            float *packed)
{
    FilterSet f = {weights, bias, g->filters};
    if (!packed_floats(g))
        return f;
    int stride = padded_filters(g);
    size_t taps = (size_t)g->kh * g->kw * g->in_c;
    memset(packed, 0, packed_floats(g) * sizeof *packed);
    for (size_t k = 0; k < taps; k++)
        memcpy(packed + k * stride, weights + k * g->filters, (size_t)g->filters * sizeof *packed);
    memcpy(packed + taps * stride, bias, (size_t)g->filters * sizeof *packed);
    f.weights = packed;
    f.bias = packed + taps * stride;
    f.weight_stride = stride;
    return f;
}

/* The input rows and columns the bordered buffer holds: all but those no
 * tap reaches (a "valid" window that does not fit exactly). */
static int interior_rows(const ConvGeometry *g)
{
    int room = padded_h(g) - g->pad_top;
    return g->in_h < room ? g->in_h : room;
}

static int interior_cols(const ConvGeometry *g)
{
    int room = padded_w(g) - g->pad_left;
    return g->in_w < room ? g->in_w : room;
}

/* Zeroes the buffer around its interior, once per call: every image
 * rewrites the interior and nothing writes the border. */
static void clear_border(const ConvGeometry *g, float *buf)
{
    int ph = padded_h(g), pw = padded_w(g), rows = interior_rows(g), cols = interior_cols(g);
    size_t row = (size_t)pw * g->in_c, left = (size_t)g->pad_left * g->in_c;
    size_t right = (size_t)(pw - g->pad_left - cols) * g->in_c;
    memset(buf, 0, (size_t)g->pad_top * row * sizeof *buf);
    for (int r = g->pad_top; r < g->pad_top + rows; r++) {
        memset(buf + r * row, 0, left * sizeof *buf);
        memset(buf + (r + 1) * row - right, 0, right * sizeof *buf);
    }
    memset(buf + (size_t)(g->pad_top + rows) * row, 0,
           (size_t)(ph - g->pad_top - rows) * row * sizeof *buf);
}

/* Copies one image into the bordered buffer's interior. */
static Image bordered(const ConvGeometry *g, const float *x, float *buf)
{
    Image img = {x, (size_t)g->in_w * g->in_c};
    if (!buf)
        return img;
    int pw = padded_w(g), rows = interior_rows(g), cols = interior_cols(g);
    img.row_floats = (size_t)pw * g->in_c;
    for (int r = 0; r < rows; r++)
        memcpy(buf + ((size_t)(r + g->pad_top) * pw + g->pad_left) * g->in_c,
               x + (size_t)r * g->in_w * g->in_c, (size_t)cols * g->in_c * sizeof *buf);
    img.data = buf;
    return img;
}

void conv_kernel_forward(const ConvGeometry *given, const float *weights, const float *bias,
                         const float *x, float *y, int n, float *ws)
{
    ConvGeometry dense = *given, *g = &dense;
    if (!g->out_pixel) { /* the strides of the dense tensor */
        g->out_pixel = (size_t)g->filters;
        g->out_row = (size_t)g->out_w * g->filters;
        g->out_image = (size_t)g->out_h * g->out_row;
    }
    if (winograd_pays(g)) {
        winograd_forward(g, weights, bias, x, y, n, ws);
        return;
    }
    float *border = needs_border(g) ? ws : NULL;
    FilterSet f = filter_set(g, weights, bias, ws + border_floats(g));
    if (border)
        clear_border(g, border);
    size_t in_per = (size_t)g->in_h * g->in_w * g->in_c;
    for (int b = 0; b < n; b++) {
        Image img = bordered(g, x + b * in_per, border);
        variant->forward_image(g, &img, &f, y + b * g->out_image);
    }
}
