/* winograd.c - F(2x2, 3x3): the transforms, and the 16 products between
 * them run by the direct kernel. With B, G and A the algorithm's
 * matrices, a 4x4 patch d of one channel and a 3x3 kernel k of one
 * (channel, filter) pair, the 2x2 outputs are A^T [(G k G^T) .* (B^T d B)] A;
 * summed over channels, the 16 elementwise products become, for each of
 * the 16 points, the matrix product of every tile's transformed patch
 * (tiles, in_c) with the transformed kernels (in_c, filters).
 *
 * Tiles are taken a group at a time over the whole batch (a 7x7 image
 * has 16 of them), so that a group's transformed inputs and products stay
 * in L2 between the three passes. The transforms run over the channels,
 * which NHWC keeps contiguous, 16 at a time (one AVX-512 register, two
 * AVX2 ones, four SSE2 ones, by the clone that runs); their arithmetic is
 * adds and halvings, and C11 mode contracts nothing into an FMA here, so
 * they give the same bits whichever clone runs. */
#include "winograd.h"

#include <string.h>

#include "vector_clones.h"

enum {
    POINTS = 16, /* transformed values of a 4x4 patch */
    LANES = 16,  /* channels a transform step takes; in_c and filters are multiples */
    MIN_TILES = 49,             /* an image's: 14x14 outputs */
    MIN_WEIGHT_GRAD_TILES = 16, /* 7x7 */
};
/* A group's transformed inputs and products, in floats: 256 KiB, in L2. */
#define GROUP_FLOATS (64 * 1024)

typedef float Lanes __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));
typedef int LaneInts __attribute__((vector_size(LANES * sizeof(int)), aligned(4)));
#define AT(p) (*(const Lanes *)(p))
#define PUT(p) (*(Lanes *)(p))

typedef struct {
    int tiles_y, tiles_x;   /* 2x2 tiles covering one image's outputs */
    size_t tiles;           /* in the whole batch */
    int group;              /* tiles one pass of the products takes */
    int reach_h, reach_w;   /* input rows and columns a wanted output reads */
} Plan;

/* The 2x2 tiles covering one image's outputs. */
static int image_tiles(const ConvGeometry *g)
{
    return ((g->out_h + 1) / 2) * ((g->out_w + 1) / 2);
}

/* Channels in whole steps of LANES on both sides (every 3x3 layer of the
 * shipped and bench networks has 16, 32 or 64): no tails. */
bool winograd_fits(const ConvGeometry *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->in_c % LANES == 0 &&
           g->filters % LANES == 0;
}

/* Measured against the direct kernel on an AVX-512 Xeon (README,
 * Performance): with 16 channels on either side the products' sums or
 * their filter vectors are too short to gain, and on a 7x7 image's 16
 * tiles transforming the kernels, 16 x in_c x filters floats, costs more
 * than they save. The choice is the geometry's alone, never the batch's:
 * an image gets the same bits however the batch is cut (threads,
 * chunks). */
bool winograd_pays(const ConvGeometry *g)
{
    return winograd_fits(g) && g->in_c >= 2 * LANES && g->filters >= 2 * LANES &&
           image_tiles(g) >= MIN_TILES;
}

/* The weights' gradient transforms no kernels and sums over every tile
 * of the batch: it pays with 16 channels too (28x28, 16 -> 32, batch 32:
 * 1,346 against im2col and GEMM's 3,063 µs), from a 7x7 image up
 * (7x7, 64 -> 64: 817 against 1,021). */
bool winograd_weight_grad_pays(const ConvGeometry *g)
{
    return winograd_fits(g) && image_tiles(g) >= MIN_WEIGHT_GRAD_TILES;
}

static Plan plan_for(const ConvGeometry *g, int n)
{
    Plan p;
    p.tiles_y = (g->out_h + 1) / 2;
    p.tiles_x = (g->out_w + 1) / 2;
    p.tiles = (size_t)n * image_tiles(g);
    size_t group = GROUP_FLOATS / ((size_t)POINTS * (g->in_c + g->filters));
    /* At least one block of the direct kernel. The weights' gradient was
     * slower with groups past L2 (128 tiles, to lengthen its GEMMs' sums:
     * 1.6-1.9 times the time of these on 16 and 32 channels). */
    p.group = group < 12 ? 12 : (int)group;
    /* Rows past these are read only by the tile's outputs past out_h
     * (an odd count): read as zeros, never from memory, which a caller's
     * x need not have there (conv2d.c's input gradient points into a
     * frame). */
    int reach_h = g->out_h + 2 - g->pad_top, reach_w = g->out_w + 2 - g->pad_left;
    p.reach_h = reach_h < g->in_h ? reach_h : g->in_h;
    p.reach_w = reach_w < g->in_w ? reach_w : g->in_w;
    return p;
}

/* The scratch, in order: the transformed kernels (POINTS, in_c, filters),
 * zeros for the products' bias, a group's transformed inputs (POINTS,
 * group, in_c) and products (POINTS, group, filters), one edge tile's
 * outputs or output gradients (2, 2, filters), and the framed image
 * (frame_image). */
typedef struct {
    float *kernels, *zeros, *inputs, *products, *patch, *frame;
    int framed; /* the image of the batch the frame holds, -1 before the first */
} Scratch;

static int frame_w(const Plan *p) { return 2 * p->tiles_x + 2; }

static size_t frame_floats(const ConvGeometry *g, const Plan *p)
{
    return (size_t)(2 * p->tiles_y + 2) * frame_w(p) * g->in_c;
}

static size_t scratch_floats(const ConvGeometry *g, const Plan *p, Scratch *s, float *ws)
{
    size_t c = (size_t)g->in_c, f = (size_t)g->filters, group = (size_t)p->group;
    size_t sizes[] = {POINTS * c * f,     f, POINTS * group * c, POINTS * group * f,
                      4 * f, frame_floats(g, p)};
    float **parts[] = {&s->kernels, &s->zeros, &s->inputs, &s->products, &s->patch, &s->frame};
    s->framed = -1;
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (ws)
            *parts[i] = ws + total;
        total += (sizes[i] + 15) / 16 * 16; /* each part on a 64-byte line */
    }
    return total;
}

size_t winograd_workspace(const ConvGeometry *g)
{
    Plan p = plan_for(g, 1);
    Scratch s;
    return scratch_floats(g, &p, &s, NULL);
}

/* U = G k G^T for every (channel, filter), G = [1 0 0; 1/2 1/2 1/2;
 * 1/2 -1/2 1/2; 0 0 1]; kernels (3, 3, in_c, filters) as Keras stores
 * them, U (POINTS, in_c, filters). */
MN_VECTOR_CLONES
static void transform_kernels(const ConvGeometry *g, const float *restrict w, float *restrict u)
{
    size_t c_count = (size_t)g->in_c, fs = (size_t)g->filters;
    size_t point = c_count * fs; /* also from one tap to the next in w */
    for (size_t at = 0; at < point; at += LANES) {
        Lanes a[4][3]; /* G k, down each column of the kernel */
        for (int kx = 0; kx < 3; kx++) {
            Lanes k0 = AT(w + kx * point + at), k1 = AT(w + (3 + kx) * point + at),
                  k2 = AT(w + (6 + kx) * point + at);
            a[0][kx] = k0;
            a[1][kx] = 0.5f * (k0 + k1 + k2);
            a[2][kx] = 0.5f * (k0 - k1 + k2);
            a[3][kx] = k2;
        }
        for (int r = 0; r < 4; r++) { /* (G k) G^T along each row */
            PUT(u + (4 * r + 0) * point + at) = a[r][0];
            PUT(u + (4 * r + 1) * point + at) = 0.5f * (a[r][0] + a[r][1] + a[r][2]);
            PUT(u + (4 * r + 2) * point + at) = 0.5f * (a[r][0] - a[r][1] + a[r][2]);
            PUT(u + (4 * r + 3) * point + at) = a[r][2];
        }
    }
}

/* Tile t of the batch: its image and the top-left output it covers. */
typedef struct {
    int image, oy, ox;
} Tile;

static Tile tile_at(const Plan *p, size_t t)
{
    size_t per_image = (size_t)p->tiles_y * p->tiles_x, r = t % per_image;
    Tile tile = {(int)(t / per_image), (int)(r / p->tiles_x) * 2, (int)(r % p->tiles_x) * 2};
    return tile;
}

/* V = B^T d B of one patch for every channel, B^T = [1 0 -1 0; 0 1 1 0;
 * 0 -1 1 0; 0 1 0 -1]; d's rows row_floats apart, its pixels in_c apart;
 * point i's channels go to v + i * point_stride. */
MN_CLONE_INLINE void transform_patch(const float *restrict d, size_t row_floats, size_t c_count,
                                     float *restrict v, size_t point_stride)
{
    for (size_t c = 0; c < c_count; c += LANES) {
        Lanes t[4][4]; /* B^T d, down each column of the patch */
        for (int j = 0; j < 4; j++) {
            const float *x = d + j * c_count + c;
            Lanes x0 = AT(x), x1 = AT(x + row_floats), x2 = AT(x + 2 * row_floats),
                  x3 = AT(x + 3 * row_floats);
            t[0][j] = x0 - x2;
            t[1][j] = x1 + x2;
            t[2][j] = x2 - x1;
            t[3][j] = x1 - x3;
        }
        for (int r = 0; r < 4; r++) { /* (B^T d) B along each row */
            float *out = v + (size_t)(4 * r) * point_stride + c;
            PUT(out) = t[r][0] - t[r][2];
            PUT(out + point_stride) = t[r][1] + t[r][2];
            PUT(out + 2 * point_stride) = t[r][2] - t[r][1];
            PUT(out + 3 * point_stride) = t[r][1] - t[r][3];
        }
    }
}

/* One image of the batch into the frame, (2 tiles_y + 2, 2 tiles_x + 2,
 * in_c) with the input at (pad_top, pad_left) and zeros around it (set
 * once a call: every image rewrites the same interior), so that no tile
 * needs a bounds check; one copy of each image where bordering each edge
 * tile's patch copied a quarter of the tiles pixel by pixel. */
static void frame_image(const ConvGeometry *g, const Plan *p, const float *x, int image,
                        Scratch *s)
{
    size_t c_count = (size_t)g->in_c, row = (size_t)g->in_w * c_count;
    const float *src = x + (size_t)image * g->in_h * row;
    float *dst = s->frame + ((size_t)g->pad_top * frame_w(p) + g->pad_left) * c_count;
    for (int r = 0; r < p->reach_h; r++)
        memcpy(dst + (size_t)r * frame_w(p) * c_count, src + (size_t)r * row,
               (size_t)p->reach_w * c_count * sizeof *dst);
    s->framed = image;
}

/* The transformed patches of tiles [first, first + count) into v (POINTS,
 * count, in_c). */
MN_VECTOR_CLONES
static void transform_inputs(const ConvGeometry *g, const Plan *p, const float *x, size_t first,
                             int count, Scratch *s)
{
    size_t c_count = (size_t)g->in_c, row = (size_t)frame_w(p) * c_count;
    size_t point_stride = (size_t)count * c_count;
    for (int i = 0; i < count; i++) {
        Tile t = tile_at(p, first + (size_t)i);
        if (t.image != s->framed)
            frame_image(g, p, x, t.image, s);
        transform_patch(s->frame + (size_t)t.oy * row + (size_t)t.ox * c_count, row, c_count,
                        s->inputs + (size_t)i * c_count, point_stride);
    }
}

/* Y = A^T M A + bias of one tile for every filter, A^T = [1 1 1 0;
 * 0 1 -1 -1], relu if asked; point i's products at m + i * point_stride;
 * the 2x2 outputs to out (row 0) and out + row_floats (row 1),
 * pixel_floats apart. */
MN_CLONE_INLINE void transform_products(const ConvGeometry *g, const float *restrict m,
                                        size_t point_stride, const float *restrict bias,
                                        float *restrict out, size_t row_floats,
                                        size_t pixel_floats)
{
    for (size_t f = 0; f < (size_t)g->filters; f += LANES) {
        Lanes s[4][2]; /* M A, along each row */
        for (int r = 0; r < 4; r++) {
            const float *p = m + (size_t)(4 * r) * point_stride + f;
            Lanes m0 = AT(p), m1 = AT(p + point_stride), m2 = AT(p + 2 * point_stride),
                  m3 = AT(p + 3 * point_stride);
            s[r][0] = m0 + m1 + m2;
            s[r][1] = m1 - m2 - m3;
        }
        Lanes b = AT(bias + f);
        for (int j = 0; j < 2; j++) { /* A^T (M A), down each column */
            Lanes y0 = b + (s[0][j] + s[1][j] + s[2][j]);
            Lanes y1 = b + (s[1][j] - s[2][j] - s[3][j]);
            if (g->relu) {
                y0 = (Lanes)((LaneInts)y0 & (y0 > 0.0f)); /* max(0, y), as the kernel's */
                y1 = (Lanes)((LaneInts)y1 & (y1 > 0.0f));
            }
            PUT(out + j * pixel_floats + f) = y0;
            PUT(out + row_floats + j * pixel_floats + f) = y1;
        }
    }
}

/* The outputs of tiles [first, first + count) from their products
 * (POINTS, count, filters); a tile half past the output's edge
 * (an odd side) goes through `patch`, and only its wanted outputs on. */
MN_VECTOR_CLONES
static void transform_outputs(const ConvGeometry *g, const Plan *p, const float *bias,
                              size_t first, int count, const Scratch *s, float *y)
{
    size_t fs = (size_t)g->filters, point_stride = (size_t)count * fs;
    for (int i = 0; i < count; i++) {
        Tile t = tile_at(p, first + (size_t)i);
        int rows = g->out_h - t.oy < 2 ? 1 : 2, cols = g->out_w - t.ox < 2 ? 1 : 2;
        const float *m = s->products + (size_t)i * fs;
        float *out = y + t.image * g->out_image + (size_t)t.oy * g->out_row +
                     (size_t)t.ox * g->out_pixel;
        if (rows == 2 && cols == 2) {
            transform_products(g, m, point_stride, bias, out, g->out_row, g->out_pixel);
            continue;
        }
        transform_products(g, m, point_stride, bias, s->patch, 2 * fs, fs);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                memcpy(out + r * g->out_row + c * g->out_pixel, s->patch + (size_t)(2 * r + c) * fs,
                       fs * sizeof *out);
    }
}

void winograd_forward(const ConvGeometry *g, const float *weights, const float *bias,
                      const float *x, float *y, int n, float *ws)
{
    Plan p = plan_for(g, n);
    Scratch s;
    scratch_floats(g, &p, &s, ws);
    memset(s.frame, 0, frame_floats(g, &p) * sizeof *s.frame);
    transform_kernels(g, weights, s.kernels);
    memset(s.zeros, 0, (size_t)g->filters * sizeof *s.zeros);
    size_t kernel_floats = (size_t)g->in_c * g->filters;
    for (size_t first = 0; first < p.tiles; first += (size_t)p.group) {
        int count = p.tiles - first < (size_t)p.group ? (int)(p.tiles - first) : p.group;
        transform_inputs(g, &p, x, first, count, &s);
        /* Each point's product as a 1x1 convolution of a 1 x count image. */
        ConvGeometry product = {
            .in_h = 1, .in_w = count, .in_c = g->in_c,
            .out_h = 1, .out_w = count, .filters = g->filters,
            .kh = 1, .kw = 1, .sh = 1, .sw = 1,
        };
        for (int i = 0; i < POINTS; i++)
            conv_kernel_forward(&product, s.kernels + i * kernel_floats, s.zeros,
                                s.inputs + (size_t)i * count * g->in_c,
                                s.products + (size_t)i * count * g->filters, 1, s.patch);
        transform_outputs(g, &p, bias, first, count, &s, y);
    }
}

/* The weights' gradient is the forward's products run backwards: with
 * dM = A dY A^T of each tile's output gradient, the transformed kernels'
 * gradient is dU = V^T dM for each point (a product whose sum runs over
 * the tiles, 16 multiplies a tile where im2col's GEMM takes 36; run by
 * conv_kernel_add_outer_products on the transforms' layouts as they are:
 * OpenBLAS's SGEMM spent 15-20% of its time packing them), and dW =
 * G^T dU G. */

/* dM = A dY A^T of tiles [first, first + count) for every filter into
 * (POINTS, count, filters); outputs past the edge (an odd side) have no
 * gradient: zeros. dy (n, out_h, out_w, filters), dense. */
MN_VECTOR_CLONES
static void transform_output_grads(const ConvGeometry *g, const Plan *p, const float *dy,
                                   size_t first, int count, const Scratch *s)
{
    size_t fs = (size_t)g->filters, point_stride = (size_t)count * fs;
    size_t row = (size_t)g->out_w * fs, image = (size_t)g->out_h * row;
    for (int i = 0; i < count; i++) {
        Tile t = tile_at(p, first + (size_t)i);
        const float *src = dy + t.image * image + (size_t)t.oy * row + (size_t)t.ox * fs;
        size_t right = fs, below = row; /* where the tile's other three outputs are */
        if (g->out_h - t.oy < 2 || g->out_w - t.ox < 2) {
            memset(s->patch, 0, 4 * fs * sizeof *s->patch); /* (2, 2, filters) */
            for (int r = 0; r < 2 && t.oy + r < g->out_h; r++)
                for (int c = 0; c < 2 && t.ox + c < g->out_w; c++)
                    memcpy(s->patch + (size_t)(2 * r + c) * fs, src + r * row + c * fs,
                           fs * sizeof *src);
            src = s->patch, below = 2 * fs;
        }
        float *m = s->products + (size_t)i * fs;
        for (size_t f = 0; f < fs; f += LANES) {
            Lanes a = AT(src + f), b = AT(src + right + f), c = AT(src + below + f),
                  d = AT(src + below + right + f);
            Lanes rows[4][2] = {{a, b}, {a + c, b + d}, {a - c, b - d}, {-c, -d}}; /* A dY */
            for (int r = 0; r < 4; r++) { /* (A dY) A^T along each row */
                float *out = m + (size_t)(4 * r) * point_stride + f;
                Lanes u = rows[r][0], v = rows[r][1];
                PUT(out) = u;
                PUT(out + point_stride) = u + v;
                PUT(out + 2 * point_stride) = u - v;
                PUT(out + 3 * point_stride) = -v;
            }
        }
    }
}

/* dw (3, 3, in_c, filters) += G^T dU G, dU (POINTS, in_c, filters). */
MN_VECTOR_CLONES
static void add_kernel_grads(const ConvGeometry *g, const float *restrict du, float *restrict dw)
{
    size_t point = (size_t)g->in_c * g->filters; /* also from one tap to the next in dw */
    for (size_t at = 0; at < point; at += LANES) {
        Lanes t[3][4]; /* G^T dU, down each column */
        for (int j = 0; j < 4; j++) {
            Lanes u0 = AT(du + j * point + at), u1 = AT(du + (4 + j) * point + at),
                  u2 = AT(du + (8 + j) * point + at), u3 = AT(du + (12 + j) * point + at);
            t[0][j] = u0 + 0.5f * (u1 + u2);
            t[1][j] = 0.5f * (u1 - u2);
            t[2][j] = 0.5f * (u1 + u2) + u3;
        }
        for (int ky = 0; ky < 3; ky++) { /* (G^T dU) G along each row */
            float *out = dw + (size_t)ky * 3 * point + at;
            PUT(out) = AT(out) + (t[ky][0] + 0.5f * (t[ky][1] + t[ky][2]));
            PUT(out + point) = AT(out + point) + 0.5f * (t[ky][1] - t[ky][2]);
            PUT(out + 2 * point) = AT(out + 2 * point) + (0.5f * (t[ky][1] + t[ky][2]) + t[ky][3]);
        }
    }
}

size_t winograd_weight_grad_workspace(const ConvGeometry *g)
{
    Plan p = plan_for(g, 1);
    Scratch s;
    return scratch_floats(g, &p, &s, NULL);
}

void winograd_weight_grad(const ConvGeometry *g, const float *x, const float *dy, float *dw,
                          int n, float *ws)
{
    Plan p = plan_for(g, n);
    Scratch s;
    scratch_floats(g, &p, &s, ws);
    memset(s.frame, 0, frame_floats(g, &p) * sizeof *s.frame);
    size_t c_count = (size_t)g->in_c, fs = (size_t)g->filters;
    /* dU where the forward keeps the transformed kernels, dM where it keeps
     * the products */
    memset(s.kernels, 0, POINTS * c_count * fs * sizeof *s.kernels);
    for (size_t first = 0; first < p.tiles; first += (size_t)p.group) {
        int count = p.tiles - first < (size_t)p.group ? (int)(p.tiles - first) : p.group;
        transform_inputs(g, &p, x, first, count, &s);
        transform_output_grads(g, &p, dy, first, count, &s);
        for (int i = 0; i < POINTS; i++)
            conv_kernel_add_outer_products(s.inputs + (size_t)i * count * c_count,
                                           s.products + (size_t)i * count * fs, count, g->in_c,
                                           g->filters, s.kernels + (size_t)i * c_count * fs);
    }
    add_kernel_grads(g, s.kernels, dw);
}
