/* test_photo.c - the photo steps of digit preprocessing (core/photo.c) on
 * synthetic images whose answer is known: the strokes' polarity under a
 * shadow, uneven light and a shadow
 * divided out, noisy paper to black and faint ink to full, ruled lines,
 * a frame edge and specks dropped while the digit (even touching the
 * frame, even crossing a line) stays, stroke width measured and changed
 * by exact amounts; then the whole digit preprocessing of a photo-like
 * image against the clean drawing of the same digit, with its trace. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "image.h"
#include "photo.h"

/* A deterministic noise source (an LCG): the same image every run. */
static float noise(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) - 0.5f; /* [-0.5, 0.5) */
}

static void bar(float *img, int w, int x0, int x1, int y0, int y1, float v)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            img[y * w + x] = v;
}

enum { W = 160, H = 120 };

/* A "1" with a foot, white on black, as ink (no paper). */
static void digit_ink(float *ink)
{
    memset(ink, 0, sizeof(float) * W * H);
    bar(ink, W, 76, 84, 20, 100, 1.0f);
    bar(ink, W, 64, 96, 92, 100, 1.0f);
}

START_TEST(test_illumination_removed)
{
    /* Paper lit from the left (its darkness 0.05 -> 0.45 across), a soft
     * shadow over the bottom-right quarter, a pen of reflectance 0.15. */
    float *img = malloc(sizeof(float) * W * H), *ink = malloc(sizeof(float) * W * H);
    digit_ink(ink);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float light = 0.95f - 0.4f * x / (W - 1);
            float shade = 1.0f / (1.0f + expf(-(x - 110) / 6.0f)) * 1.0f / (1.0f + expf(-(y - 80) / 6.0f));
            light *= 1.0f - 0.4f * shade;
            float reflect = ink[y * W + x] > 0 ? 0.15f : 1.0f;
            img[y * W + x] = 1.0f - light * reflect; /* as image.c's ink map: dark paper, bright ink */
        }
    MnError err = {0};
    ck_assert_int_eq(photo_remove_illumination(img, W, H, &err), 0);
    double paper_max = 0.0, ink_min = 1.0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            /* the paper more than a stroke away from the digit */
            bool near = x > 56 && x < 104 && y > 12 && y < 108;
            if (ink[y * W + x] > 0)
                ink_min = fmin(ink_min, img[y * W + x]);
            else if (!near)
                paper_max = fmax(paper_max, img[y * W + x]);
        }
    /* what is left is at the shadow's corner, which an opening rounds;
     * step 2 takes it below the paper's floor */
    ck_assert_msg(paper_max < 0.1, "paper left at %g", paper_max);
    ck_assert_msg(ink_min > 0.75, "ink down to %g", ink_min);
    free(img);
    free(ink);
}
END_TEST

START_TEST(test_separate_noisy_paper_and_faint_ink)
{
    /* paper at 0.1 with noise (sd ~0.03), ink at 0.55: the ink's median goes to 1 */
    float *img = malloc(sizeof(float) * W * H), *ink = malloc(sizeof(float) * W * H);
    digit_ink(ink);
    uint32_t s = 7;
    for (int i = 0; i < W * H; i++)
        img[i] = (ink[i] > 0 ? 0.55f : 0.1f) + 0.1f * noise(&s);
    ck_assert(!photo_is_drawing(img, W, H));
    photo_separate_ink(img, W, H);
    int paper = 0, paper_black = 0, strokes = 0, strokes_full = 0;
    for (int i = 0; i < W * H; i++) {
        if (ink[i] > 0)
            strokes++, strokes_full += img[i] > 0.9f;
        else
            paper++, paper_black += img[i] == 0.0f;
    }
    ck_assert_msg(paper_black > 0.99 * paper, "%d of %d paper pixels black", paper_black, paper);
    ck_assert_msg(strokes_full > 0.75 * strokes, "%d of %d ink pixels at full strength", strokes_full,
                  strokes);
    free(img);
    free(ink);
}
END_TEST

START_TEST(test_clean_drawing_unchanged)
{
    /* ink at full strength with antialiased edges on black: every step a no-op */
    float *img = malloc(sizeof(float) * W * H), *ink = malloc(sizeof(float) * W * H);
    digit_ink(ink);
    for (int y = 20; y < 92; y++)
        ink[y * W + 75] = ink[y * W + 84] = 0.4f;
    memcpy(img, ink, sizeof(float) * W * H);
    ck_assert(photo_is_drawing(img, W, H));
    MnError err = {0};
    ck_assert_int_eq(photo_remove_illumination(img, W, H, &err), 0);
    photo_separate_ink(img, W, H);
    ck_assert_int_eq(photo_keep_digit(img, W, H, &err), 0);
    for (int i = 0; i < W * H; i++)
        ck_assert_msg(fabsf(img[i] - ink[i]) < 1e-6f, "pixel %d: %g, was %g", i, img[i], ink[i]);
    free(img);
    free(ink);
}
END_TEST

START_TEST(test_black_paper_illumination_exact)
{
    /* On black paper the opening is zero everywhere, the paper lit at 1:
     * every pixel stays as it was, bit for bit. */
    float *img = malloc(sizeof(float) * W * H), *ink = malloc(sizeof(float) * W * H);
    digit_ink(ink);
    for (int i = 0; i < W * H; i++)
        ink[i] *= 0.3f + 0.7f * (float)(i % 7) / 6.0f; /* gray levels, not only 0 and 1 */
    memcpy(img, ink, sizeof(float) * W * H);
    MnError err = {0};
    ck_assert_int_eq(photo_remove_illumination(img, W, H, &err), 0);
    ck_assert_int_eq(memcmp(img, ink, sizeof(float) * W * H), 0);
    free(img);
    free(ink);
}
END_TEST

START_TEST(test_lines_edges_and_specks_dropped)
{
    float *img = calloc(W * H, sizeof *img), *want = malloc(sizeof(float) * W * H);
    for (int y = 10; y < H; y += 24)
        bar(img, W, 0, W, y, y + 1, 0.6f); /* ruled lines, across the whole page */
    bar(img, W, 20, 21, 0, H, 0.6f);       /* a margin line */
    digit_ink(want);                       /* the digit on top, crossing three lines */
    for (int i = 0; i < W * H; i++)
        img[i] = want[i] > 0 ? want[i] : img[i];
    bar(img, W, 0, W, 0, 4, 1.0f);         /* the frame's top edge: a table beyond the paper */
    bar(img, W, 140, 142, 30, 32, 1.0f);   /* specks */
    bar(img, W, 40, 43, 60, 62, 1.0f);
    MnError err = {0};
    ck_assert_int_eq(photo_keep_digit(img, W, H, &err), 0);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_msg(img[y * W + x] == want[y * W + x], "(%d, %d) = %g, want %g", x, y,
                          img[y * W + x], want[y * W + x]);
    free(img);
    free(want);
}
END_TEST

START_TEST(test_digit_touching_the_frame_kept)
{
    /* a "1" from the top edge to the bottom one, and a thinner piece
     * beside it touching the left edge: both the digit's */
    float *img = calloc(W * H, sizeof *img);
    bar(img, W, 70, 78, 0, H, 1.0f);
    bar(img, W, 0, 30, 50, 58, 1.0f);
    float *want = malloc(sizeof(float) * W * H);
    memcpy(want, img, sizeof(float) * W * H);
    MnError err = {0};
    ck_assert_int_eq(photo_keep_digit(img, W, H, &err), 0);
    ck_assert_int_eq(memcmp(img, want, sizeof(float) * W * H), 0);
    free(img);
    free(want);
    /* a drawing cropped to its ink, too small to have paper around it:
     * a hairline stroke down its whole height and a bar along its top
     * (a "7" of two pieces) are the digit's, not a margin and an edge */
    enum { CW = 14, CH = 20 };
    float crop[CW * CH] = {0}, kept[CW * CH];
    bar(crop, CW, 0, CW, 0, 2, 1.0f);
    bar(crop, CW, 9, 10, 3, CH, 1.0f);
    memcpy(kept, crop, sizeof crop);
    ck_assert_int_eq(photo_keep_digit(crop, CW, CH, &err), 0);
    ck_assert_int_eq(memcmp(crop, kept, sizeof crop), 0);
}
END_TEST

START_TEST(test_stroke_width_measured)
{
    /* a 6 x 60 bar: 2 * 360 / (2 * 66) */
    float *img = calloc(W * H, sizeof *img);
    bar(img, W, 50, 56, 20, 80, 1.0f);
    ck_assert_double_eq_tol(photo_stroke_width(img, W, H), 720.0 / 132.0, 1e-9);
    /* the same at 30% (a faint pen): half of the brightest is the edge */
    bar(img, W, 50, 56, 20, 80, 0.3f);
    ck_assert_double_eq_tol(photo_stroke_width(img, W, H), 720.0 / 132.0, 1e-9);
    memset(img, 0, sizeof(float) * W * H);
    ck_assert_double_eq(photo_stroke_width(img, W, H), 0.0);
    free(img);
}
END_TEST

/* The width of the ink on row y. */
static int row_width(const float *img, int y)
{
    int n = 0;
    for (int x = 0; x < W; x++)
        n += img[y * W + x] > 0.5f;
    return n;
}

START_TEST(test_stroke_adjusted)
{
    float *img = calloc(W * H, sizeof *img);
    MnError err = {0};
    bar(img, W, 50, 54, 20, 80, 1.0f); /* 4 wide */
    ck_assert_int_eq(photo_adjust_stroke(img, W, H, 2, &err), 0);
    ck_assert_int_eq(row_width(img, 50), 8);
    ck_assert_int_eq(photo_adjust_stroke(img, W, H, -3, &err), 0);
    ck_assert_int_eq(row_width(img, 50), 2);
    ck_assert_int_eq(photo_adjust_stroke(img, W, H, 0, &err), 0);
    ck_assert_int_eq(row_width(img, 50), 2);
    free(img);
}
END_TEST

static void preprocess(const float *gray, int w, int h, float *out, ImageTrace *trace)
{
    uint8_t *px = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        px[i] = (uint8_t)lroundf(fminf(1.0f, fmaxf(0.0f, gray[i])) * 255.0f);
    uint8_t *png;
    size_t len;
    MnError err = {0};
    ck_assert_int_eq(image_encode_png_gray8(px, h, w, &png, &len, &err), 0);
    ImageLimits lim;
    image_limits_default(&lim);
    ck_assert_msg(image_from_bytes(png, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, trace, &err) == 0,
                  "%s", err.msg);
    free(png);
    free(px);
}

START_TEST(test_photo_comes_out_as_the_drawing)
{
    /* The digit drawn clean (white on black), and photographed: dark ink on
     * paper lit from one side, noise, a ruled line. Digit preprocessing
     * must give the same 28x28 within a small difference. */
    float *clean = malloc(sizeof(float) * W * H), *photo = malloc(sizeof(float) * W * H);
    digit_ink(clean);
    uint32_t s = 11;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float light = 0.9f - 0.3f * x / (W - 1);
            float reflect = clean[y * W + x] > 0 ? 0.2f : y == 50 ? 0.7f : 1.0f;
            photo[y * W + x] = light * reflect + 0.06f * noise(&s);
        }
    float a[28 * 28], b[28 * 28];
    ImageTrace *trace = calloc(1, sizeof *trace);
    preprocess(clean, W, H, a, NULL);
    preprocess(photo, W, H, b, trace);
    double diff = 0.0;
    for (int i = 0; i < 28 * 28; i++)
        diff += fabs(a[i] - b[i]);
    ck_assert_msg(diff / (28 * 28) < 0.02, "mean difference %g per pixel", diff / (28 * 28));
    static const char *const steps[] = {"decoded", "illumination", "ink", "digit", "input"};
    ck_assert_int_eq(trace->n, 5);
    for (int i = 0; i < trace->n; i++) {
        ck_assert_str_eq(trace->steps[i].step, steps[i]);
        ck_assert_int_le(trace->steps[i].w, IMAGE_TRACE_SIDE);
        ck_assert_int_le(trace->steps[i].h, IMAGE_TRACE_SIDE);
    }
    ck_assert_int_eq(trace->steps[0].w, 64); /* 160 x 120, reduced */
    ck_assert_int_eq(trace->steps[0].h, 48);
    ck_assert_int_eq(trace->steps[4].w, 28);
    for (int i = 0; i < 28 * 28; i++)
        ck_assert_int_eq(trace->steps[4].px[i], (int)lroundf(b[i] * 255.0f));
    free(trace);
    free(clean);
    free(photo);
}
END_TEST

/* An "L" drawn `pen` pixels thick in a 28x28 frame, through digit mode;
 * *in_width is the drawing's own stroke width. */
static double l_width(int pen, double *in_width, ImageTrace *trace)
{
    float ink[28 * 28] = {0}, out[28 * 28];
    for (int y = 4; y < 24; y++)
        for (int x = 8; x < 8 + pen; x++)
            ink[y * 28 + x] = 1.0f;
    for (int y = 24 - pen; y < 24; y++)
        for (int x = 8; x < 22; x++)
            ink[y * 28 + x] = 1.0f;
    *in_width = photo_stroke_width(ink, 28, 28);
    preprocess(ink, 28, 28, out, trace);
    return photo_stroke_width(out, 28, 28);
}

START_TEST(test_pen_width_normalised)
{
    /* A 5-pixel pen comes out at least halfway to the 2-pixel one (an
     * MNIST-like pen, left alone), and shows its stroke step. */
    ImageTrace *trace = calloc(1, sizeof *trace);
    double ref_in, thick_in;
    double ref = l_width(2, &ref_in, trace);
    ck_assert_str_ne(trace->steps[trace->n - 2].step, "stroke");
    double thick = l_width(5, &thick_in, trace);
    ck_assert_str_eq(trace->steps[trace->n - 2].step, "stroke");
    ck_assert_msg(fabs(thick - ref) < 0.5 * fabs(thick_in - ref),
                  "5-pixel pen: width %g -> %g, a 2-pixel pen's %g", thick_in, thick, ref);
    /* A one-pixel pen on a 200x200 page (1/8 of a pixel in the 20x20 box)
     * comes out a stroke at full strength, not a faint hairline. */
    enum { S = 200 };
    float *page = malloc(S * S * sizeof *page), out[28 * 28];
    for (int i = 0; i < S * S; i++)
        page[i] = 1.0f; /* dark on white */
    for (int y = 20; y < 180; y++)
        page[y * S + 100 + (y - 20) / 8] = 0.0f;
    preprocess(page, S, S, out, NULL);
    double thin = photo_stroke_width(out, 28, 28);
    float max = 0.0f;
    for (int i = 0; i < 28 * 28; i++)
        max = fmaxf(max, out[i]);
    ck_assert_msg(thin > 0.6 * ref && max > 0.9f, "1-pixel pen: width %g (a 2-pixel pen's %g), "
                  "brightest %g", thin, ref, max);
    free(page);
    free(trace);
}
END_TEST

START_TEST(test_stroke_polarity_under_a_shadow)
{
    /* A "0" (a ring: its inside is paper enclosed by ink) in dark ink on
     * paper half in shadow, then the same negated: the strokes' side is
     * told both times, though the border is half dark. */
    float *img = malloc(sizeof(float) * W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double r = hypot((x - 80) / 1.2, y - 60);
            bool ink = r > 22 && r < 30;
            float paper = x + y < 150 ? 0.9f : 0.45f;
            img[y * W + x] = ink ? 0.1f : paper;
        }
    bool dark = false;
    MnError err = {0};
    ck_assert_int_eq(photo_strokes_are_dark(img, W, H, &dark, &err), 0);
    ck_assert(dark);
    for (int i = 0; i < W * H; i++)
        img[i] = 1.0f - img[i];
    ck_assert_int_eq(photo_strokes_are_dark(img, W, H, &dark, &err), 0);
    ck_assert(!dark);
    free(img);
}
END_TEST

static Suite *photo_suite(void)
{
    Suite *s = suite_create("photo");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_stroke_polarity_under_a_shadow);
    tcase_add_test(tc, test_illumination_removed);
    tcase_add_test(tc, test_separate_noisy_paper_and_faint_ink);
    tcase_add_test(tc, test_clean_drawing_unchanged);
    tcase_add_test(tc, test_black_paper_illumination_exact);
    tcase_add_test(tc, test_lines_edges_and_specks_dropped);
    tcase_add_test(tc, test_digit_touching_the_frame_kept);
    tcase_add_test(tc, test_stroke_width_measured);
    tcase_add_test(tc, test_stroke_adjusted);
    tcase_add_test(tc, test_photo_comes_out_as_the_drawing);
    tcase_add_test(tc, test_pen_width_normalised);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(photo_suite)
