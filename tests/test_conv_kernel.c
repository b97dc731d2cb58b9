/* test_conv_kernel.c - mnistd's direct convolution against a plain
 * double-precision loop, in every variant this CPU can run: the shapes the
 * networks have and odd ones (filter counts off the vector width, fewer
 * output pixels than a block, valid windows that do not fit exactly,
 * strides and kernels of every kind), relu, scratch and output of exactly
 * the sizes the kernel asks for (AddressSanitizer sees any write past),
 * and the same bits for the same inputs; the 3x3 stride-1 shapes that go
 * by Winograd's transforms (winograd.h) the same way, and their outputs
 * the same bits whatever the batch around them, and their weights'
 * gradient in every variant; the one-pixel product a dense layer's single
 * row runs on, and the outer products that gradient runs on; and a long
 * sum's rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "conv_kernel.h"
#include "rng.h"
#include "winograd.h"

/* in_h, in_w, in_c, filters, kh, kw, sh, sw, same */
static const int shapes[][9] = {
    {28, 28, 1, 32, 3, 3, 1, 1, 1},  /* cnn-basic */
    {28, 28, 32, 16, 1, 1, 1, 1, 1},
    {28, 28, 16, 64, 3, 3, 2, 2, 1},
    {14, 14, 64, 16, 1, 1, 1, 1, 1},
    {14, 14, 16, 32, 3, 3, 2, 2, 1},
    {7, 7, 32, 16, 1, 1, 1, 1, 1},
    {28, 28, 1, 64, 2, 2, 1, 1, 1},  /* cnn-tutorial: the odd padding row at the bottom */
    {28, 28, 1, 32, 3, 3, 1, 1, 0},  /* the seed CNN */
    {13, 13, 32, 64, 3, 3, 1, 1, 0},
    {28, 28, 3, 7, 5, 5, 1, 1, 0},   /* a tail in every variant */
    {9, 11, 5, 100, 3, 2, 2, 3, 1},  /* more filters than a block, uneven strides */
    {28, 28, 2, 33, 3, 3, 2, 2, 0},  /* a valid window leaving the last row unread */
    {3, 3, 4, 17, 3, 3, 1, 1, 0},    /* one output pixel */
    {2, 5, 8, 130, 4, 4, 1, 1, 1},   /* fewer pixels than a block, kernel past the image */
    {6, 6, 1, 1, 1, 1, 1, 1, 1},     /* one filter */
    {1, 20, 784, 50, 1, 1, 1, 1, 0}, /* a dense layer over a batch of 20 (dense.c) */
    {1, 9, 64, 10, 1, 1, 1, 1, 0},
    {28, 28, 16, 32, 3, 3, 1, 1, 1}, /* cnn-bn and the shipped digits */
    {14, 14, 32, 64, 3, 3, 1, 1, 1}, /* these three by Winograd (winograd_pays) */
    {15, 15, 64, 64, 3, 3, 1, 1, 1}, /* odd sides: the last tiles half outside */
    {25, 19, 32, 48, 3, 3, 1, 1, 0}, /* valid, odd sides */
};
enum { N_SHAPES = sizeof shapes / sizeof *shapes, BATCH = 3 };

static ConvGeometry geometry_of(const int *s, bool relu)
{
    ConvGeometry g = {.in_h = s[0], .in_w = s[1], .in_c = s[2], .filters = s[3], .kh = s[4],
                      .kw = s[5], .sh = s[6], .sw = s[7], .relu = relu};
    if (s[8]) { /* Keras "same": the odd pixel of padding after */
        g.out_h = (g.in_h + g.sh - 1) / g.sh, g.out_w = (g.in_w + g.sw - 1) / g.sw;
        int ph = (g.out_h - 1) * g.sh + g.kh - g.in_h, pw = (g.out_w - 1) * g.sw + g.kw - g.in_w;
        g.pad_top = ph > 0 ? ph / 2 : 0, g.pad_left = pw > 0 ? pw / 2 : 0;
    } else {
        g.out_h = (g.in_h - g.kh) / g.sh + 1, g.out_w = (g.in_w - g.kw) / g.sw + 1;
    }
    return g;
}

static float input_at(const ConvGeometry *g, const float *x, int b, int iy, int ix, int c)
{
    if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
        return 0.0f;
    return x[(((size_t)b * g->in_h + iy) * g->in_w + ix) * g->in_c + c];
}

/* Checks y against the sum in double, within float rounding of its terms. */
static void check_against_reference(const ConvGeometry *g, const float *w, const float *bias,
                                    const float *x, const float *y, const char *variant)
{
    for (int b = 0; b < BATCH; b++)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++)
                for (int f = 0; f < g->filters; f++) {
                    double sum = bias[f], size = fabs(bias[f]);
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++)
                            for (int c = 0; c < g->in_c; c++) {
                                double t = (double)input_at(g, x, b, oy * g->sh + ky - g->pad_top,
                                                            ox * g->sw + kx - g->pad_left, c) *
                                           w[(((size_t)ky * g->kw + kx) * g->in_c + c) * g->filters + f];
                                sum += t, size += fabs(t);
                            }
                    if (g->relu && sum < 0)
                        sum = 0;
                    float got = y[(((size_t)b * g->out_h + oy) * g->out_w + ox) * g->filters + f];
                    ck_assert_msg(fabs(got - sum) <= 1e-6 * size + 1e-7,
                                  "%s %dx%dx%d k%dx%d s%dx%d f%d: [%d,%d,%d,%d] %.9g, not %.9g",
                                  variant, g->in_h, g->in_w, g->in_c, g->kh, g->kw, g->sh, g->sw,
                                  g->filters, b, oy, ox, f, got, sum);
                }
}

static float *random_floats(Rng *rng, size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = 2 * rng_uniform(rng) - 1;
    return v;
}

/* The variants this CPU can run, widest first. */
static int runnable_variants(const char **out)
{
    int n = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        out[n++] = "avx512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[n++] = "avx2";
    out[n++] = "sse2";
    return n;
}

START_TEST(test_agrees_with_reference)
{
    const int *s = shapes[_i / 2];
    ConvGeometry g = geometry_of(s, _i % 2);
    ck_assert_int_gt(g.out_h, 0);
    Rng rng;
    rng_seed(&rng, 21 + (uint64_t)_i);
    size_t taps = (size_t)g.kh * g.kw * g.in_c;
    size_t in_n = (size_t)BATCH * g.in_h * g.in_w * g.in_c;
    size_t out_n = (size_t)BATCH * g.out_h * g.out_w * g.filters;
    float *x = random_floats(&rng, in_n), *w = random_floats(&rng, taps * g.filters);
    float *bias = random_floats(&rng, g.filters);
    size_t ws_n = conv_kernel_workspace(&g);
    float *ws = malloc((ws_n ? ws_n : 1) * sizeof *ws);
    float *y = malloc(out_n * sizeof *y), *again = malloc(out_n * sizeof *again);
    const char *variants[3];
    int n = runnable_variants(variants);
    for (int v = 0; v < n; v++) {
        ck_assert_str_eq(conv_kernel_use(variants[v]), variants[v]);
        memset(y, 0xff, out_n * sizeof *y); /* NaN: an output never written fails */
        conv_kernel_forward(&g, w, bias, x, y, BATCH, ws);
        check_against_reference(&g, w, bias, x, y, variants[v]);
        memset(ws, 0xff, (ws_n ? ws_n : 1) * sizeof *ws); /* stale scratch must not matter */
        conv_kernel_forward(&g, w, bias, x, again, BATCH, ws);
        ck_assert_msg(memcmp(y, again, out_n * sizeof *y) == 0, "%s: not the same bits",
                      variants[v]);
    }
    free(x), free(w), free(bias), free(ws), free(y), free(again);
}
END_TEST

/* Output strides: the same bits as the dense output, at every other
 * pixel of every other row of a tensor twice as deep, offset by one
 * pixel; the floats between stay as they were (a phase of a strided
 * input gradient writes beside the others, conv2d.c). */
START_TEST(test_strided_output_writes_its_sub_grid)
{
    const int *s = shapes[_i];
    ConvGeometry g = geometry_of(s, false);
    Rng rng;
    rng_seed(&rng, 90 + (uint64_t)_i);
    size_t taps = (size_t)g.kh * g.kw * g.in_c, f = (size_t)g.filters;
    size_t in_n = (size_t)BATCH * g.in_h * g.in_w * g.in_c;
    size_t out_n = (size_t)BATCH * g.out_h * g.out_w * f;
    size_t row = (size_t)g.out_w * 2 * f, image = (size_t)2 * g.out_h * row;
    size_t big_n = (size_t)BATCH * image + f;
    float *x = random_floats(&rng, in_n), *w = random_floats(&rng, taps * f);
    float *bias = random_floats(&rng, g.filters);
    size_t ws_n = conv_kernel_workspace(&g);
    float *ws = malloc((ws_n ? ws_n : 1) * sizeof *ws);
    float *dense = malloc(out_n * sizeof *dense), *big = malloc(big_n * sizeof *big);
    const char *variants[3];
    int n = runnable_variants(variants);
    for (int v = 0; v < n; v++) {
        conv_kernel_use(variants[v]);
        conv_kernel_forward(&g, w, bias, x, dense, BATCH, ws);
        ConvGeometry strided = g;
        strided.out_pixel = 2 * f, strided.out_row = 2 * row, strided.out_image = image;
        for (size_t i = 0; i < big_n; i++)
            big[i] = -1234.5f;
        conv_kernel_forward(&strided, w, bias, x, big + f, BATCH, ws);
        for (size_t i = 0; i < big_n; i++) {
            size_t at = i - f, b = at / image, r = at % image / row, p = at % row / f;
            bool ours = i >= f && r % 2 == 0 && p % 2 == 0;
            float want = ours ? dense[((b * g.out_h + r / 2) * g.out_w + p / 2) * f + at % f]
                              : -1234.5f;
            ck_assert_msg(memcmp(&big[i], &want, sizeof want) == 0,
                          "%s, shape %d: float %zu is %g, not %g", variants[v], _i, i, big[i],
                          want);
        }
    }
    free(x), free(w), free(bias), free(ws), free(dense), free(big);
}
END_TEST

/* One pixel (a dense layer's one row): weights read in place, never past
 * the matrix (allocated to the float, for AddressSanitizer), within each
 * variant's width; wider asks are refused and leave y alone. */
START_TEST(test_one_pixel_agrees_with_reference)
{
    static const int cases[][2] = {{12544, 10}, {784, 64}, {64, 10}, {3, 7}, {1, 1},
                                   {5, 16}, {784, 17}, {2, 50}, {16, 8}, {100, 65}};
    int in_c = cases[_i][0], filters = cases[_i][1];
    Rng rng;
    rng_seed(&rng, 70 + (uint64_t)_i);
    float *x = random_floats(&rng, in_c), *w = random_floats(&rng, (size_t)in_c * filters);
    float *bias = random_floats(&rng, filters), *y = malloc(filters * sizeof *y);
    const char *variants[3];
    int n = runnable_variants(variants);
    for (int v = 0; v < n; v++) {
        conv_kernel_use(variants[v]);
        int widest = strcmp(variants[v], "avx512") == 0 ? 64 : strcmp(variants[v], "avx2") == 0 ? 16 : 8;
        memset(y, 0xff, filters * sizeof *y);
        bool took = conv_kernel_one_pixel(x, w, bias, in_c, filters, y);
        ck_assert_int_eq(took, filters <= widest);
        for (int j = 0; j < filters; j++) {
            if (!took) {
                ck_assert(isnan(y[j]));
                continue;
            }
            double sum = bias[j], size = fabs(bias[j]);
            for (int k = 0; k < in_c; k++)
                sum += (double)x[k] * w[(size_t)k * filters + j],
                    size += fabs((double)x[k] * w[(size_t)k * filters + j]);
            ck_assert_msg(fabs(y[j] - sum) <= 1e-6 * size + 1e-7, "%s %dx%d [%d]: %.9g, not %.9g",
                          variants[v], in_c, filters, j, y[j], sum);
        }
    }
    free(x), free(w), free(bias), free(y);
}
END_TEST

/* c += a^T b without packing (Winograd's weight-gradient products): in
 * every variant against the sum in double, column counts of one to five
 * AVX-512 vectors, sums of one term and of many; the same bits again. */
START_TEST(test_outer_products_agree_with_reference)
{
    static const int cases[][3] = {{85, 16, 32}, {32, 64, 64}, {1, 4, 16},
                                   {7, 8, 48},   {300, 12, 80}, {49, 32, 16}};
    int k = cases[_i][0], rows = cases[_i][1], cols = cases[_i][2];
    Rng rng;
    rng_seed(&rng, 90 + (uint64_t)_i);
    size_t c_n = (size_t)rows * cols;
    float *a = random_floats(&rng, (size_t)k * rows), *b = random_floats(&rng, (size_t)k * cols);
    float *before = random_floats(&rng, c_n), *c = malloc(c_n * sizeof *c);
    float *again = malloc(c_n * sizeof *again);
    const char *variants[3];
    int n = runnable_variants(variants);
    for (int v = 0; v < n; v++) {
        conv_kernel_use(variants[v]);
        memcpy(c, before, c_n * sizeof *c);
        conv_kernel_add_outer_products(a, b, k, rows, cols, c);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) {
                double sum = before[(size_t)r * cols + j], size = fabs(sum);
                for (int t = 0; t < k; t++) {
                    double term = (double)a[(size_t)t * rows + r] * b[(size_t)t * cols + j];
                    sum += term, size += fabs(term);
                }
                ck_assert_msg(fabs(c[(size_t)r * cols + j] - sum) <= 1e-6 * size + 1e-7,
                              "%s %dx%dx%d [%d,%d]: %.9g, not %.9g", variants[v], k, rows, cols,
                              r, j, c[(size_t)r * cols + j], sum);
            }
        memcpy(again, before, c_n * sizeof *again);
        conv_kernel_add_outer_products(a, b, k, rows, cols, again);
        ck_assert_msg(memcmp(c, again, c_n * sizeof *c) == 0, "%s: not the same bits",
                      variants[v]);
    }
    free(a), free(b), free(before), free(c), free(again);
}
END_TEST

/* A dense layer over a whole feature map (the tutorial CNN's 12,544
 * features) with terms of one sign, as after a relu: its sums must stay
 * within a chunk's rounding, not grow with one running sum of every term
 * (4.0e-6 of the terms' size here before it was summed in chunks). */
START_TEST(test_long_sums_stay_accurate)
{
    enum { IN_C = 12544, FILTERS = 10, ROWS = 4 };
    Rng rng;
    rng_seed(&rng, 99);
    float *x = malloc(sizeof(float) * ROWS * IN_C), *w = malloc(sizeof(float) * IN_C * FILTERS);
    float bias[FILTERS] = {0}, y[ROWS * FILTERS], one[FILTERS];
    for (int i = 0; i < ROWS * IN_C; i++)
        x[i] = rng_uniform(&rng);
    for (int i = 0; i < IN_C * FILTERS; i++)
        w[i] = rng_uniform(&rng);
    ConvGeometry g = geometry_of((const int[]){1, ROWS, IN_C, FILTERS, 1, 1, 1, 1, 0}, false);
    const char *variants[3];
    int n = runnable_variants(variants);
    for (int v = 0; v < n; v++) {
        conv_kernel_use(variants[v]);
        size_t ws_n = conv_kernel_workspace(&g);
        float *ws = malloc((ws_n ? ws_n : 1) * sizeof *ws);
        conv_kernel_forward(&g, w, bias, x, y, 1, ws);
        free(ws);
        bool took = conv_kernel_one_pixel(x, w, bias, IN_C, FILTERS, one); /* not in sse2 */
        double worst = 0.0;
        for (int r = 0; r < ROWS; r++)
            for (int f = 0; f < FILTERS; f++) {
                double sum = 0.0;
                for (int k = 0; k < IN_C; k++)
                    sum += (double)x[(size_t)r * IN_C + k] * w[(size_t)k * FILTERS + f];
                worst = fmax(worst, fabs(y[r * FILTERS + f] - sum) / sum);
                if (r == 0 && took)
                    worst = fmax(worst, fabs(one[f] - sum) / sum);
            }
        printf("%s: a sum of %d positive terms within %.2g of its size\n", variants[v], IN_C, worst);
        ck_assert_msg(worst < 1e-6, "%s: %d terms summed %.3g off", variants[v], IN_C, worst);
    }
    free(x), free(w);
}
END_TEST

static ConvGeometry with_dense_strides(ConvGeometry g)
{
    g.out_pixel = (size_t)g.filters, g.out_row = (size_t)g.out_w * g.filters;
    g.out_image = (size_t)g.out_h * g.out_row;
    return g;
}

/* winograd_forward itself, also where the direct kernel would run:
 * images smaller than a tile, one pixel (all border), 16 channels. */
static const int winograd_shapes[][9] = {
    {7, 7, 64, 64, 3, 3, 1, 1, 1}, {14, 14, 32, 64, 3, 3, 1, 1, 1}, {5, 3, 16, 32, 3, 3, 1, 1, 0},
    {1, 1, 16, 16, 3, 3, 1, 1, 1}, {2, 3, 32, 16, 3, 3, 1, 1, 1},   {28, 28, 16, 32, 3, 3, 1, 1, 1},
};
enum { N_WINOGRAD = sizeof winograd_shapes / sizeof *winograd_shapes };

START_TEST(test_winograd_agrees_with_reference)
{
    ConvGeometry g = with_dense_strides(geometry_of(winograd_shapes[_i / 2], _i % 2));
    ck_assert(winograd_fits(&g));
    Rng rng;
    rng_seed(&rng, 60 + (uint64_t)_i);
    size_t out_n = (size_t)BATCH * g.out_h * g.out_w * g.filters;
    float *x = random_floats(&rng, (size_t)BATCH * g.in_h * g.in_w * g.in_c);
    float *w = random_floats(&rng, (size_t)9 * g.in_c * g.filters);
    float *bias = random_floats(&rng, g.filters);
    size_t ws_n = winograd_workspace(&g);
    float *ws = malloc(ws_n * sizeof *ws), *y = malloc(out_n * sizeof *y);
    memset(y, 0xff, out_n * sizeof *y);
    winograd_forward(&g, w, bias, x, y, BATCH, ws);
    check_against_reference(&g, w, bias, x, y, "winograd");
    free(x), free(w), free(bias), free(ws), free(y);
}
END_TEST

/* The weights' gradient by Winograd's transforms run backwards, added to
 * what dw held, against the sum over every output in double; worst
 * error printed. */
START_TEST(test_winograd_weight_grad_agrees_with_reference)
{
    ConvGeometry g = with_dense_strides(geometry_of(winograd_shapes[_i], false));
    Rng rng;
    rng_seed(&rng, 80 + (uint64_t)_i);
    size_t taps = (size_t)9 * g.in_c * g.filters;
    float *x = random_floats(&rng, (size_t)BATCH * g.in_h * g.in_w * g.in_c);
    float *dy = random_floats(&rng, (size_t)BATCH * g.out_h * g.out_w * g.filters);
    float *dw = random_floats(&rng, taps), *before = malloc(taps * sizeof *before);
    memcpy(before, dw, taps * sizeof *dw);
    float *ws = malloc(winograd_weight_grad_workspace(&g) * sizeof *ws);
    double *want = malloc(taps * sizeof *want), *size = malloc(taps * sizeof *size);
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++)
            for (int c = 0; c < g.in_c; c++)
                for (int f = 0; f < g.filters; f++) {
                    size_t at = (((size_t)ky * 3 + kx) * g.in_c + c) * g.filters + f;
                    want[at] = before[at], size[at] = fabs(before[at]);
                    for (int b = 0; b < BATCH; b++)
                        for (int oy = 0; oy < g.out_h; oy++)
                            for (int ox = 0; ox < g.out_w; ox++) {
                                double t = (double)input_at(&g, x, b, oy + ky - g.pad_top,
                                                            ox + kx - g.pad_left, c) *
                                           dy[(((size_t)b * g.out_h + oy) * g.out_w + ox) *
                                                  g.filters + f];
                                want[at] += t, size[at] += fabs(t);
                            }
                }
    const char *variants[3];
    int n = runnable_variants(variants);
    for (int v = 0; v < n; v++) { /* its products run on the variant's outer products */
        conv_kernel_use(variants[v]);
        memcpy(dw, before, taps * sizeof *dw);
        winograd_weight_grad(&g, x, dy, dw, BATCH, ws);
        double worst = 0.0;
        for (size_t at = 0; at < taps; at++) {
            worst = fmax(worst, fabs(dw[at] - want[at]) / (size[at] + 1e-30));
            ck_assert_msg(fabs(dw[at] - want[at]) <= 1e-6 * size[at] + 1e-7,
                          "%s, shape %d: dw[%zu] %.9g, not %.9g", variants[v], _i, at, dw[at],
                          want[at]);
        }
        printf("winograd dW, %s, shape %d: within %.2g of the terms' size\n", variants[v], _i,
               worst);
    }
    free(want), free(size);
    free(x), free(dy), free(dw), free(before), free(ws);
}
END_TEST

/* Winograd's tiles are taken in groups over the whole batch: each
 * image's outputs must not depend on the images grouped with it. */
START_TEST(test_winograd_outputs_do_not_depend_on_the_batch)
{
    enum { IMAGES = 7 };
    ConvGeometry g = with_dense_strides(geometry_of(winograd_shapes[_i], true));
    Rng rng;
    rng_seed(&rng, 40 + (uint64_t)_i);
    size_t in_one = (size_t)g.in_h * g.in_w * g.in_c;
    size_t out_one = (size_t)g.out_h * g.out_w * g.filters;
    float *x = random_floats(&rng, IMAGES * in_one);
    float *w = random_floats(&rng, (size_t)9 * g.in_c * g.filters);
    float *bias = random_floats(&rng, g.filters);
    float *ws = malloc(winograd_workspace(&g) * sizeof *ws);
    float *all = malloc(IMAGES * out_one * sizeof *all), *one = malloc(out_one * sizeof *one);
    winograd_forward(&g, w, bias, x, all, IMAGES, ws);
    for (int b = 0; b < IMAGES; b++) {
        winograd_forward(&g, w, bias, x + b * in_one, one, 1, ws);
        ck_assert_msg(memcmp(one, all + b * out_one, out_one * sizeof *one) == 0,
                      "shape %d: image %d alone gives other bits", _i, b);
    }
    free(x), free(w), free(bias), free(ws), free(all), free(one);
}
END_TEST

/* Winograd where it fits and pays: 3x3, stride 1, whole vectors of
 * channels, 32 or more each side, 14x14 outputs or more; never by the
 * batch. The weights' gradient from 16 channels and 7x7 outputs. */
START_TEST(test_winograd_takes_what_pays)
{
    ConvGeometry g = geometry_of((const int[]){14, 14, 32, 64, 3, 3, 1, 1, 1}, false);
    ck_assert(winograd_fits(&g) && winograd_pays(&g));
    ConvGeometry strided = g, wide = g, odd = g, sixteen = g;
    strided.sh = 2, wide.kw = 5, odd.filters = 40, sixteen.in_c = 16;
    ck_assert(!winograd_fits(&strided) && !winograd_fits(&wide) && !winograd_fits(&odd));
    ck_assert(winograd_fits(&sixteen) && !winograd_pays(&sixteen));
    ck_assert(winograd_weight_grad_pays(&sixteen)); /* its sums run over tiles, not channels */
    ConvGeometry small = geometry_of((const int[]){12, 12, 64, 64, 3, 3, 1, 1, 1}, false);
    ck_assert(winograd_fits(&small) && !winograd_pays(&small) && winograd_weight_grad_pays(&small));
    ConvGeometry tiny = geometry_of((const int[]){6, 6, 64, 64, 3, 3, 1, 1, 1}, false);
    ck_assert(!winograd_weight_grad_pays(&tiny) && !winograd_weight_grad_pays(&strided));
}
END_TEST

/* A name it has no variant for runs the one every x86-64 has. */
START_TEST(test_other_names_run_sse2)
{
    ck_assert_str_eq(conv_kernel_use("sse3"), "sse2");
    ck_assert_str_eq(conv_kernel_isa(), "sse2");
    ck_assert_str_eq(conv_kernel_use("unknown"), "sse2");
}
END_TEST

static Suite *conv_kernel_suite(void)
{
    Suite *s = suite_create("conv_kernel");
    TCase *t = tcase_create("Core");
    tcase_add_loop_test(t, test_agrees_with_reference, 0, 2 * N_SHAPES);
    tcase_add_loop_test(t, test_strided_output_writes_its_sub_grid, 0, N_SHAPES);
    tcase_add_loop_test(t, test_one_pixel_agrees_with_reference, 0, 10);
    tcase_add_loop_test(t, test_outer_products_agree_with_reference, 0, 6);
    tcase_add_test(t, test_long_sums_stay_accurate);
    tcase_add_test(t, test_other_names_run_sse2);
    tcase_add_loop_test(t, test_winograd_agrees_with_reference, 0, 2 * N_WINOGRAD);
    tcase_add_loop_test(t, test_winograd_outputs_do_not_depend_on_the_batch, 0, N_WINOGRAD);
    tcase_add_loop_test(t, test_winograd_weight_grad_agrees_with_reference, 0, N_WINOGRAD);
    tcase_add_test(t, test_winograd_takes_what_pays);
    tcase_set_timeout(t, 120);
    suite_add_tcase(s, t);
    return s;
}

MN_TEST_MAIN(conv_kernel_suite)
