/* photo.c - photo and scan cleaning steps (see photo.h). Every filter is
 * separable or a single pass with its scratch allocated per call: images
 * reach here already reduced to image.c's working size. */
#include "photo.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HIST_BINS 256
#define LINE_SPAN 0.8   /* a ruled line crosses at least this much of the image */
#define LINE_THICK 40   /* ... and is at most 1/40 of the image thick (1 px at least) */
#define EDGE_SPAN 0.9   /* a frame edge runs along this much of a side ... */
#define EDGE_DEPTH 0.25 /* ... and reaches no deeper than this into the image */
#define SPECK 0.05      /* components under this fraction of the largest are specks */
#define INK_LEVEL 0.25f /* what counts as ink for components and lines */
/* Lines and frame edges are the paper's: an image under LINE_THICK pixels
 * across has no paper around its digit (a drawing, or one cropped to its
 * ink), and there a pen stroke would pass for a line 1/LINE_THICK thick. */
#define PAPER_SIDE LINE_THICK

/* The larger (max) or smaller of a and b; no NaN reaches here. */
static inline float pick(float a, float b, bool max)
{
    return max ? (a > b ? a : b) : (a < b ? a : b);
}

/* One line of a running min or max over a window of 2r+1 (only the pixels
 * inside the image count): n values `stride` apart from src to dst. Van
 * Herk and Gil-Werman's three comparisons a pixel, whatever r: the line,
 * padded with r identities a side, is cut into blocks of the window's
 * length; each window spans the end of one block and the start of the
 * next, whose running extremes from either end are kept in back and fwd.
 * line, fwd and back hold n + 2r floats each. */
static void extreme_line(const float *src, float *dst, int n, size_t stride, int r, bool max,
                         float *line, float *fwd, float *back)
{
    int k = 2 * r + 1, len = n + 2 * r;
    float none = max ? -FLT_MAX : FLT_MAX;
    for (int i = 0; i < len; i++)
        line[i] = i < r || i >= r + n ? none : src[(size_t)(i - r) * stride];
    for (int b = 0; b < len; b += k) { /* block [b, end) */
        int end = b + k < len ? b + k : len;
        fwd[b] = line[b];
        for (int i = b + 1; i < end; i++)
            fwd[i] = pick(fwd[i - 1], line[i], max);
        back[end - 1] = line[end - 1];
        for (int i = end - 2; i >= b; i--)
            back[i] = pick(back[i + 1], line[i], max);
    }
    for (int i = 0; i < n; i++) /* the window [i, i + 2r] of the padded line */
        dst[(size_t)i * stride] = pick(back[i], fwd[i + 2 * r], max);
}

/* Square min or max filter of side 2r+1, in place; tmp holds w*h floats. */
static int extreme_filter(float *img, int w, int h, int r, bool max, float *tmp, MnError *err)
{
    size_t len = (size_t)(w > h ? w : h) + 2 * (size_t)r;
    float *line = malloc(3 * len * sizeof *line);
    if (!line)
        return mn_fail(err, MN_ENOMEM, "out of memory filtering %dx%d", w, h);
    for (int y = 0; y < h; y++)
        extreme_line(img + (size_t)y * w, tmp + (size_t)y * w, w, 1, r, max, line, line + len,
                     line + 2 * len);
    for (int x = 0; x < w; x++)
        extreme_line(tmp + x, img + x, h, (size_t)w, r, max, line, line + len, line + 2 * len);
    free(line);
    return 0;
}

/* Mean over a window of 2r+1 (fewer at the ends), separable, in place. */
static void box_blur(float *img, int w, int h, int r, float *tmp)
{
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? h : w, lines = pass ? w : h;
        size_t stride = pass ? (size_t)w : 1, line = pass ? 1 : (size_t)w;
        const float *src = pass ? tmp : img;
        float *dst = pass ? img : tmp;
        for (int l = 0; l < lines; l++) {
            const float *s = src + (size_t)l * line;
            float *d = dst + (size_t)l * line;
            double sum = 0.0;
            int lo = 0, hi = -1; /* the window [lo, hi] summed */
            for (int i = 0; i < n; i++) {
                int want_lo = i - r < 0 ? 0 : i - r, want_hi = i + r >= n ? n - 1 : i + r;
                while (hi < want_hi)
                    sum += s[(size_t)++hi * stride];
                while (lo < want_lo)
                    sum -= s[(size_t)lo++ * stride];
                d[(size_t)i * stride] = (float)(sum / (hi - lo + 1));
            }
        }
    }
}

int photo_strokes_are_dark(const float *gray, int w, int h, bool *dark, MnError *err)
{
    size_t n = (size_t)w * h;
    float *mean = malloc(n * sizeof *mean), *tmp = malloc(n * sizeof *tmp);
    if (!mean || !tmp) {
        free(mean), free(tmp);
        return mn_fail(err, MN_ENOMEM, "out of memory on %dx%d", w, h);
    }
    int side = w > h ? w : h, r = side / 10 > 2 ? side / 10 : 2;
    memcpy(mean, gray, n * sizeof *mean);
    box_blur(mean, w, h, r, tmp);
    /* the deviations' strength: their 99.9th percentile */
    size_t hist[HIST_BINS] = {0};
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(gray[i] - mean[i]);
        hist[(int)lroundf((d > 1 ? 1 : d) * (HIST_BINS - 1))]++;
    }
    int p = HIST_BINS - 1;
    for (size_t above = hist[p]; p > 0 && above * 1000 < n; above += hist[--p])
        ;
    float strong = 0.5f * p / (HIST_BINS - 1);
    size_t darker = 0, lighter = 0;
    for (size_t i = 0; i < n; i++) {
        darker += gray[i] - mean[i] < -strong;
        lighter += gray[i] - mean[i] > strong;
    }
    *dark = darker > lighter;
    free(mean), free(tmp);
    return 0;
}

bool photo_is_drawing(const float *ink, int w, int h)
{
    size_t black = 0, n = (size_t)w * h;
    for (size_t i = 0; i < n; i++)
        black += ink[i] == 0.0f;
    return 2 * black >= n;
}

int photo_remove_illumination(float *ink, int w, int h, MnError *err)
{
    size_t n = (size_t)w * h;
    float *paper = malloc(n * sizeof *paper), *tmp = malloc(n * sizeof *tmp);
    if (!paper || !tmp) {
        free(paper), free(tmp);
        return mn_fail(err, MN_ENOMEM, "out of memory removing the illumination of %dx%d", w, h);
    }
    /* Wider than a stroke, even a thick pen on a tight crop: a fifth of
     * the longer side, and never under 9 pixels. */
    int side = w > h ? w : h, r = side / 10 > 4 ? side / 10 : 4;
    memcpy(paper, ink, n * sizeof *paper);
    /* opening: strokes go, the paper's level stays */
    int rc = extreme_filter(paper, w, h, r, false, tmp, err);
    /* A drawing's black paper: every window holds a black pixel, so the
     * erosion is 0 everywhere, and its dilation and blur would be too. */
    bool black_paper = rc == 0;
    for (size_t i = 0; black_paper && i < n; i++)
        black_paper = paper[i] == 0.0f;
    if (rc == 0 && !black_paper)
        rc = extreme_filter(paper, w, h, r, true, tmp, err);
    if (!black_paper)
        box_blur(paper, w, h, r / 3, tmp); /* the opening's plateaus smoothed, its edges kept */
    for (size_t i = 0; i < n; i++) {
        /* in paper terms: reflectance = (1 - ink) / (1 - paper level) */
        float lit = 1.0f - paper[i];
        float v = (ink[i] - paper[i]) / (lit > 0.05f ? lit : 0.05f);
        ink[i] = rc ? ink[i] : v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    free(paper), free(tmp);
    return rc;
}

/* Otsu's threshold (a bin index) over a histogram of `total` values. */
static int otsu(const double *hist, double total)
{
    double sum = 0.0, sum_b = 0.0, w_b = 0.0, best = -1.0;
    for (int i = 0; i < HIST_BINS; i++)
        sum += i * hist[i];
    int t = HIST_BINS / 2;
    for (int i = 0; i < HIST_BINS; i++) {
        w_b += hist[i];
        if (w_b == 0.0 || w_b == total)
            continue;
        sum_b += i * hist[i];
        double m_b = sum_b / w_b, m_f = (sum - sum_b) / (total - w_b);
        double between = w_b * (total - w_b) * (m_b - m_f) * (m_b - m_f);
        if (between > best)
            best = between, t = i;
    }
    return t;
}

void photo_separate_ink(float *ink, int w, int h)
{
    size_t n = (size_t)w * h;
    double hist[HIST_BINS] = {0};
    for (size_t i = 0; i < n; i++)
        hist[(int)lroundf(ink[i] * (HIST_BINS - 1))]++;
    int t = otsu(hist, (double)n);
    double n_bg = 0.0, n_ink = 0.0;
    for (int i = 0; i <= t; i++)
        n_bg += hist[i];
    for (int i = t + 1; i < HIST_BINS; i++)
        n_ink += hist[i];
    if (n_ink == 0.0)
        return; /* one level: nothing to separate */
    /* The paper's level and noise, robustly (median and MAD): a clean
     * drawing's antialiased edge is not paper noise, sensor noise is. */
    int median = 0;
    for (double below = hist[0]; below < n_bg / 2; below += hist[++median])
        ;
    double dev[HIST_BINS] = {0};
    for (int i = 0; i <= t; i++)
        dev[abs(i - median)] += hist[i];
    int mad = 0;
    for (double below = dev[0]; below < n_bg / 2; below += dev[++mad])
        ;
    double floor = fmin((median + 3.0 * 1.4826 * mad) / (HIST_BINS - 1),
                        t / (double)(HIST_BINS - 1));
    int p = HIST_BINS - 1;
    for (double above = 0.0; p > t && (above += hist[p]) < 0.5 * n_ink;)
        p--;
    double peak = p / (double)(HIST_BINS - 1);
    if (peak - floor < 1.0 / HIST_BINS)
        return;
    for (size_t i = 0; i < n; i++) {
        double v = (ink[i] - floor) / (peak - floor);
        ink[i] = v < 0.0 ? 0.0f : v > 1.0 ? 1.0f : (float)v;
    }
}

/* Marks thin runs of ink that cross most of the image along one axis
 * (lines: `lines` of `n` pixels, `step` apart inside a line, `across`
 * between lines), then unmarks where a stroke crosses the line: ink right
 * above and below the marked band. */
static void mark_ruled(const float *ink, unsigned char *mark, int n, int lines, size_t step,
                       size_t across)
{
    int span = (int)ceil(LINE_SPAN * n), thick = lines / LINE_THICK > 1 ? lines / LINE_THICK : 1;
    unsigned char *cand = calloc((size_t)n * lines, 1);
    if (!cand)
        return; /* no lines removed is a safe answer */
    for (int l = 0; l < lines; l++)
        for (int i = 0; i < n;) {
            int j = i;
            while (j < n && ink[l * across + j * step] > INK_LEVEL)
                j++;
            for (int k = i; j - i >= span && k < j; k++)
                cand[l * across + k * step] = 1;
            i = j > i ? j : i + 1;
        }
    /* across the lines: a band of candidates no thicker than `thick` is a line */
    for (int i = 0; i < n; i++)
        for (int l = 0; l < lines;) {
            if (!cand[l * across + i * step]) {
                l++;
                continue;
            }
            int e = l;
            while (e < lines && cand[e * across + i * step])
                e++;
            bool above = l > 0 && ink[(l - 1) * across + i * step] > INK_LEVEL;
            bool below = e < lines && ink[e * across + i * step] > INK_LEVEL;
            if (e - l <= thick && !(above && below))
                for (int k = l; k < e; k++)
                    mark[k * across + i * step] = 1;
            l = e;
        }
    free(cand);
}

typedef struct {
    size_t area;
    int x0, y0, x1, y1;
} Component;

/* Whether c is a thin strip lying along a side of the w x h frame. */
static bool is_frame_edge(const Component *c, int w, int h)
{
    if (w < PAPER_SIDE || h < PAPER_SIDE)
        return false;
    int bw = c->x1 - c->x0 + 1, bh = c->y1 - c->y0 + 1;
    bool along_top = c->y0 == 0 || c->y1 == h - 1, along_side = c->x0 == 0 || c->x1 == w - 1;
    return (along_top && bw >= EDGE_SPAN * w && bh <= EDGE_DEPTH * h) ||
           (along_side && bh >= EDGE_SPAN * h && bw <= EDGE_DEPTH * w);
}

int photo_keep_digit(float *ink, int w, int h, MnError *err)
{
    size_t n = (size_t)w * h;
    unsigned char *mark = calloc(n, 1);
    int *label = malloc(n * sizeof *label);
    size_t *stack = malloc(n * sizeof *stack);
    Component *comp = NULL;
    if (!mark || !label || !stack) {
        free(mark), free(label), free(stack);
        return mn_fail(err, MN_ENOMEM, "out of memory separating the digit in %dx%d", w, h);
    }
    if (h >= PAPER_SIDE)
        mark_ruled(ink, mark, w, h, 1, (size_t)w); /* horizontal lines */
    if (w >= PAPER_SIDE)
        mark_ruled(ink, mark, h, w, (size_t)w, 1); /* vertical (a margin) */
    for (size_t i = 0; i < n; i++)
        if (mark[i])
            ink[i] = 0.0f;
    /* 8-connected components of what is left */
    int count = 0, cap = 0, rc = 0;
    for (size_t i = 0; i < n; i++)
        label[i] = -1;
    for (size_t s = 0; s < n && rc == 0; s++) {
        if (label[s] >= 0 || ink[s] <= INK_LEVEL)
            continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            Component *grown = realloc(comp, (size_t)cap * sizeof *comp);
            if (!grown) {
                rc = mn_fail(err, MN_ENOMEM, "out of memory labelling ink in %dx%d", w, h);
                break;
            }
            comp = grown;
        }
        Component *c = &comp[count];
        *c = (Component){0, w, h, -1, -1};
        size_t top = 0;
        stack[top++] = s;
        label[s] = count;
        while (top) {
            size_t p = stack[--top];
            int x = (int)(p % w), y = (int)(p / w);
            c->area++;
            c->x0 = x < c->x0 ? x : c->x0, c->x1 = x > c->x1 ? x : c->x1;
            c->y0 = y < c->y0 ? y : c->y0, c->y1 = y > c->y1 ? y : c->y1;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                        continue;
                    size_t q = (size_t)ny * w + nx;
                    if (label[q] < 0 && ink[q] > INK_LEVEL) {
                        label[q] = count;
                        stack[top++] = q;
                    }
                }
        }
        count++;
    }
    size_t largest = 0;
    for (int c = 0; rc == 0 && c < count; c++)
        if (!is_frame_edge(&comp[c], w, h) && comp[c].area > largest)
            largest = comp[c].area;
    /* Drop edges and specks, but never every component: a frame edge is
     * all there is only when nothing else is ink. */
    for (size_t i = 0; rc == 0 && largest && i < n; i++) {
        int c = label[i];
        if (c < 0) {
            if (ink[i] > 0.0f && ink[i] <= INK_LEVEL) {
                /* faint fringe: kept only next to a kept component */
                bool near = false;
                int x = (int)(i % w), y = (int)(i / w);
                for (int dy = -1; dy <= 1 && !near; dy++)
                    for (int dx = -1; dx <= 1 && !near; dx++) {
                        int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                            continue;
                        int k = label[(size_t)ny * w + nx];
                        near = k >= 0 && !is_frame_edge(&comp[k], w, h) &&
                               comp[k].area >= SPECK * largest;
                    }
                if (!near)
                    ink[i] = 0.0f;
            }
            continue;
        }
        if (is_frame_edge(&comp[c], w, h) || comp[c].area < SPECK * largest)
            ink[i] = 0.0f;
    }
    free(mark), free(label), free(stack), free(comp);
    return rc;
}

double photo_stroke_width(const float *ink, int w, int h)
{
    float max = 0.0f;
    for (size_t i = 0; i < (size_t)w * h; i++)
        max = ink[i] > max ? ink[i] : max;
    if (max <= 0.0f)
        return 0.0;
    float half = 0.5f * max; /* a faint pen is a pen too */
    /* An exposed side is an ink pixel beside paper, or at the frame: every
     * change between ink and paper along a row or a column is one, and so
     * is every ink pixel on the border. Counted so, with no branches. */
    size_t area = 0, perimeter = 0;
    for (int y = 0; y < h; y++) {
        const float *row = ink + (size_t)y * w, *next = y + 1 < h ? row + w : row;
        int inked = 0, changes = 0; /* this row's, as ints: a loop the compiler vectorises */
        for (int x = 0; x < w; x++)
            inked += row[x] > half;
        for (int x = 0; x + 1 < w; x++)
            changes += (row[x] > half) != (row[x + 1] > half);
        for (int x = 0; x < w; x++) /* the last row against itself: no change */
            changes += (row[x] > half) != (next[x] > half);
        area += (size_t)inked;
        perimeter += (size_t)changes + (row[0] > half) + (row[w - 1] > half);
    }
    for (int x = 0; x < w; x++)
        perimeter += (ink[x] > half) + (ink[(size_t)(h - 1) * w + x] > half);
    return perimeter ? 2.0 * (double)area / (double)perimeter : 0.0;
}

int photo_adjust_stroke(float *ink, int w, int h, int radius, MnError *err)
{
    if (radius == 0)
        return 0;
    size_t n = (size_t)w * h;
    float *tmp = malloc(n * sizeof *tmp), *src = malloc(n * sizeof *src);
    if (!tmp || !src) {
        free(tmp), free(src);
        return mn_fail(err, MN_ENOMEM, "out of memory adjusting strokes in %dx%d", w, h);
    }
    bool max = radius > 0;
    int r = abs(radius);
    /* a 3x3 square, then a cross, in turn: an octagon of radius r */
    int rc = 0;
    for (int k = 0; k < r && rc == 0; k++) {
        if (k % 2 == 0) {
            rc = extreme_filter(ink, w, h, 1, max, tmp, err);
            continue;
        }
        memcpy(src, ink, n * sizeof *src);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = src[(size_t)y * w + x];
                const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
                for (int d = 0; d < 4; d++) {
                    int nx = x + dx[d], ny = y + dy[d];
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                        continue;
                    float s = src[(size_t)ny * w + nx];
                    v = max ? (s > v ? s : v) : (s < v ? s : v);
                }
                ink[(size_t)y * w + x] = v;
            }
    }
    free(tmp), free(src);
    return rc;
}
