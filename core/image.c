/* image.c - PNG, JPEG or WebP bytes to a white-on-black h x w float image
 * (see image.h): png_decode.c, jpeg_decode.c and webp_decode.c give
 * gray+alpha pixels, photo.c cleans photos, this file chooses the steps
 * and frames. */
#include "image.h"

#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jpeg_decode.h"
#include "photo.h"
#include "png_decode.h"
#include "webp_decode.h"

#define BORDER_SPREAD 51  /* 20% of the gray scale */
#define POLARITY_SIDE WORK_SIDE
#define PAPER_LEVEL_SHARE 30 /* percent of the pixels at one level: a drawing's paper */
#define PURE_LEVEL 8         /* this close to black or white is a drawing's, not a photo's */
#define DIGIT_BOX 20   /* MNIST fits each digit into 20x20 ... */
#define INK_FRACTION 0.1f /* ... measured from pixels above 10% of the brightest */
/* Photos are cleaned at no more than this a side (JPEGs come out of the
 * DCT near it): 12 times MNIST's box, ample for a digit a fifth of the frame. */
#define WORK_SIDE 256
/* Strokes are measured and adjusted with the digit fit into 4 x DIGIT_BOX.
 * There MNIST's pen (2 area / perimeter, measured by this code on its
 * first 1000 test digits) has a median width of 7.5, 2nd-98th percentile
 * 4.3-13.1: a pen outside what MNIST itself holds is brought to the median. */
#define STROKE_SCALE 4
#define STROKE_MNIST 7.5
#define STROKE_MIN 3.0
#define STROKE_MAX 16.0
#define STROKE_ROUNDS 3
#define STROKE_CLOSE 1.5

void image_limits_default(ImageLimits *lim)
{
    lim->max_bytes = 8u << 20;
    lim->max_width = 4096;
    lim->max_height = 4096;
    lim->max_jpeg_scans = 64;
    lim->max_decoder_memory = 256L << 20;
}

const char *image_sniff(const void *bytes, size_t len)
{
    static const unsigned char png_sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (len >= sizeof png_sig && memcmp(bytes, png_sig, sizeof png_sig) == 0)
        return "image/png";
    if (jpeg_sniff(bytes, len))
        return "image/jpeg";
    if (webp_sniff(bytes, len))
        return "image/webp";
    return NULL;
}

int image_check_bytes(size_t len, const ImageLimits *lim, MnError *err)
{
    if (len > lim->max_bytes)
        return mn_fail(err, MN_ELIMIT, "image of %zu bytes exceeds the %zu-byte limit", len,
                       lim->max_bytes);
    return 0;
}

int image_check_dimensions(unsigned long w, unsigned long h, const ImageLimits *lim, MnError *err)
{
    if (w > (unsigned long)lim->max_width || h > (unsigned long)lim->max_height)
        return mn_fail(err, MN_ELIMIT, "image %lux%lu exceeds the %dx%d limit", w, h,
                       lim->max_width, lim->max_height);
    return 0;
}

/* Whether the ink is darker than the background. Mostly transparent
 * border (a canvas export): the ink is what is opaque, dark if its
 * alpha-weighted mean is below mid-gray. Otherwise the background is what
 * most opaque pixels are, and the ink the few far from it: the ink is dark
 * when the median is nearer the brightest pixel than the darkest. The
 * border alone would be fooled by a shadow or a
 * dark table at the edge of a photo. */
static int resample(const float *src, int sw, int sh, size_t stride, float *dst, int dw, int dh,
                    MnError *err);

/* An opaque image's background is light. A border of one level (within
 * BORDER_SPREAD between its 10th and 90th percentiles) says which, as in
 * any drawing or scan; a border of many (a photo's shadow, a table at the
 * edge, a drawing cropped to its ink) does not. Then pure black or white
 * in three corners, or one level held by PAPER_LEVEL_SHARE of the image,
 * is a drawing's paper; failing that, the strokes say:
 * photo_strokes_are_dark, on the image reduced to POLARITY_SIDE at most. */
static bool light_background(const GrayAlpha *img)
{
    size_t w = (size_t)img->w, h = (size_t)img->h, hist[256] = {0}, n = 0;
    for (size_t y = 0; y < h; y++) {
        size_t step = y == 0 || y == h - 1 || w == 1 ? 1 : w - 1;
        for (size_t x = 0; x < w; x += step)
            if (img->ga[2 * (y * w + x) + 1] >= 128)
                hist[img->ga[2 * (y * w + x)]]++, n++;
    }
    int p10 = -1, p50 = -1, p90 = -1;
    size_t below = 0;
    for (int g = 0; g < 256; g++) {
        below += hist[g];
        p10 = p10 < 0 && below * 10 > n ? g : p10;
        p50 = p50 < 0 && below * 2 > n ? g : p50;
        p90 = p90 < 0 && below * 10 > n * 9 ? g : p90;
    }
    if (p90 - p10 <= BORDER_SPREAD)
        return p50 > 127;
    /* A drawing cropped to its ink: paper of pure black or white in three
     * corners of its box or more (strokes seldom fill the corners, though a
     * thick pen can outweigh the paper), or one level held by much of it */
    int black = 0, white = 0;
    for (int c = 0; c < 4; c++) {
        const unsigned char *px = img->ga + 2 * ((c / 2 ? h - 1 : 0) * w + (c % 2 ? w - 1 : 0));
        black += px[1] >= 128 && px[0] <= PURE_LEVEL;
        white += px[1] >= 128 && px[0] >= 255 - PURE_LEVEL;
    }
    if (black >= 3 || white >= 3)
        return white >= 3;
    size_t all[256] = {0}, opaque = 0;
    for (size_t i = 0; i < w * h; i++)
        if (img->ga[2 * i + 1] >= 128)
            all[img->ga[2 * i]]++, opaque++;
    int mode = 0;
    for (int g = 1; g < 256; g++)
        mode = all[g] > all[mode] ? g : mode;
    if (all[mode] * 100 >= opaque * PAPER_LEVEL_SHARE)
        return mode > 127;
    int side = img->w > img->h ? img->w : img->h;
    int sw = side > POLARITY_SIDE ? (int)lround((double)img->w * POLARITY_SIDE / side) : img->w;
    int sh = side > POLARITY_SIDE ? (int)lround((double)img->h * POLARITY_SIDE / side) : img->h;
    sw = sw < 1 ? 1 : sw, sh = sh < 1 ? 1 : sh;
    float *gray = malloc(w * h * sizeof *gray), *small = malloc((size_t)sw * sh * sizeof *small);
    bool dark = p50 > 127; /* out of memory: the border's word */
    if (gray && small) {
        for (size_t i = 0; i < w * h; i++)
            gray[i] = img->ga[2 * i] / 255.0f;
        if (resample(gray, img->w, img->h, w, small, sw, sh, NULL) ||
            photo_strokes_are_dark(small, sw, sh, &dark, NULL))
            dark = p50 > 127;
    }
    free(gray), free(small);
    return dark;
}

static bool ink_is_dark(const GrayAlpha *img, bool photo)
{
    const unsigned char *ga = img->ga;
    size_t w = (size_t)img->w, h = (size_t)img->h, border = 0, clear = 0;
    double gray = 0.0, alpha = 0.0; /* sums of a*g and a */
    for (size_t y = 0; y < h; y++) {
        size_t step = y == 0 || y == h - 1 || w == 1 ? 1 : w - 1;
        for (size_t x = 0; x < w; x += step) {
            const unsigned char *px = ga + 2 * (y * w + x);
            border++;
            clear += px[1] < 128;
            gray += (double)px[0] * px[1];
            alpha += px[1];
        }
    }
    if (2 * clear <= border)
        return photo ? light_background(img) : gray > 127.5 * alpha;
    gray = alpha = 0.0;
    for (size_t i = 0; i < w * h; i++) {
        gray += (double)ga[2 * i] * ga[2 * i + 1];
        alpha += ga[2 * i + 1];
    }
    return alpha > 0.0 && gray < 127.5 * alpha;
}

/* White ink on black: transparent pixels are background either way round. */
static void ink_from_gray_alpha(const GrayAlpha *img, bool invertible, bool photo, float *out)
{
    bool dark = invertible && ink_is_dark(img, photo);
    for (size_t i = 0; i < (size_t)img->w * img->h; i++) {
        float g = img->ga[2 * i] / 255.0f, a = img->ga[2 * i + 1] / 255.0f;
        out[i] = a * (dark ? 1.0f - g : g);
    }
}

/* Where each output of one resampled axis reads, worked out once for the
 * axis rather than again for every line: box filter when shrinking (the
 * inputs an output covers, each weighted by how much of it), linear
 * interpolation when growing (two inputs). Output o sums taps
 * [start[o], start[o + 1]) of index and weight, then a box divides by scale. */
typedef struct {
    bool box;
    double scale;
    int *start, *index;
    double *weight;
} AxisTaps;

/* Taps for dn outputs from sn inputs; at most sn + 2 dn of them. */
static void axis_taps(int sn, int dn, AxisTaps *a)
{
    a->scale = (double)sn / dn;
    a->box = a->scale >= 1.0;
    int k = 0;
    for (int o = 0; o < dn; o++) {
        a->start[o] = k;
        if (a->box) {
            double lo = o * a->scale, hi = lo + a->scale;
            for (int i = (int)lo; i < sn && i < hi; i++) {
                double cover = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                if (cover > 0.0)
                    a->index[k] = i, a->weight[k++] = cover;
            }
        } else {
            double pos = (o + 0.5) * a->scale - 0.5;
            int i0 = (int)floor(pos);
            double t = pos - i0;
            a->index[k] = i0 < 0 ? 0 : i0, a->weight[k++] = 1.0 - t;
            a->index[k] = i0 + 1 >= sn ? sn - 1 : i0 + 1, a->weight[k++] = t;
        }
    }
    a->start[dn] = k;
}

/* src (sh x sw, rows `stride` floats apart, so a crop needs no copy) ->
 * dst (dh x dw), separable: along each row, then down the columns a whole
 * output row at a time, so both passes read memory in order. */
static int resample(const float *src, int sw, int sh, size_t stride, float *dst, int dw, int dh,
                    MnError *err)
{
    size_t across = (size_t)sw + 2 * (size_t)dw, down = (size_t)sh + 2 * (size_t)dh;
    float *tmp = malloc((size_t)sh * dw * sizeof *tmp);
    double *sum = malloc((size_t)dw * sizeof *sum), *weight = malloc((across + down) * sizeof *weight);
    int *ints = malloc(((size_t)dw + 1 + (size_t)dh + 1 + across + down) * sizeof *ints);
    if (!tmp || !sum || !weight || !ints) {
        free(tmp), free(sum), free(weight), free(ints);
        return mn_fail(err, MN_ENOMEM, "out of memory resampling %dx%d to %dx%d", sw, sh, dw, dh);
    }
    /* ints: x's start and index, then y's; weight: x's, then y's */
    AxisTaps x = {.start = ints, .index = ints + dw + 1, .weight = weight};
    AxisTaps y = {.start = x.index + across, .weight = weight + across};
    y.index = y.start + dh + 1;
    axis_taps(sw, dw, &x);
    axis_taps(sh, dh, &y);
    for (int row = 0; row < sh; row++) {
        const float *s = src + (size_t)row * stride;
        for (int o = 0; o < dw; o++) {
            double v = 0.0;
            for (int k = x.start[o]; k < x.start[o + 1]; k++)
                v += x.weight[k] * s[x.index[k]];
            tmp[(size_t)row * dw + o] = (float)(x.box ? v / x.scale : v);
        }
    }
    for (int o = 0; o < dh; o++) {
        for (int col = 0; col < dw; col++)
            sum[col] = 0.0;
        for (int k = y.start[o]; k < y.start[o + 1]; k++) {
            const float *s = tmp + (size_t)y.index[k] * dw;
            for (int col = 0; col < dw; col++)
                sum[col] += y.weight[k] * s[col];
        }
        for (int col = 0; col < dw; col++)
            dst[(size_t)o * dw + col] = (float)(y.box ? sum[col] / y.scale : sum[col]);
    }
    free(tmp), free(sum), free(weight), free(ints);
    return 0;
}

/* Records img (w x h, [0, 1]) as trace step `step`, reduced to fit
 * IMAGE_TRACE_SIDE; no trace, or no room, records nothing. */
static void trace_add(ImageTrace *t, const char *step, const float *img, int w, int h)
{
    if (!t || t->n >= IMAGE_TRACE_STEPS)
        return;
    int side = w > h ? w : h, tw = w, th = h;
    if (side > IMAGE_TRACE_SIDE) {
        tw = (int)lround((double)w * IMAGE_TRACE_SIDE / side);
        th = (int)lround((double)h * IMAGE_TRACE_SIDE / side);
        tw = tw < 1 ? 1 : tw, th = th < 1 ? 1 : th;
    }
    float *small = malloc((size_t)tw * th * sizeof *small);
    if (small && resample(img, w, h, (size_t)w, small, tw, th, NULL) == 0) {
        t->steps[t->n].step = step;
        t->steps[t->n].w = tw;
        t->steps[t->n].h = th;
        for (size_t i = 0; i < (size_t)tw * th; i++) {
            float v = small[i] < 0.0f ? 0.0f : small[i] > 1.0f ? 1.0f : small[i];
            t->steps[t->n].px[i] = (unsigned char)lroundf(v * 255.0f);
        }
        t->n++;
    }
    free(small);
}

/* The box of in (w x h) holding its ink: pixels above INK_FRACTION of the
 * brightest. False for a blank image. */
static bool ink_box(const float *in, int w, int h, int *x0, int *y0, int *bw, int *bh)
{
    float max = 0.0f;
    for (size_t i = 0; i < (size_t)w * h; i++)
        max = in[i] > max ? in[i] : max;
    if (max <= 0.0f)
        return false;
    int lx = w, ly = h, hx = -1, hy = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (in[(size_t)y * w + x] > INK_FRACTION * max) {
                lx = x < lx ? x : lx;
                hx = x > hx ? x : hx;
                ly = y < ly ? y : ly;
                hy = y > hy ? y : hy;
            }
    *x0 = lx, *y0 = ly, *bw = hx - lx + 1, *bh = hy - ly + 1;
    return true;
}

/* The crop (bw x bh, rows `stride` apart) resampled so its longer side is
 * `box`, keeping the aspect ratio: *fit (malloc'd) is *nw x *nh. */
static int fit_into(const float *crop, int bw, int bh, size_t stride, int box, float **fit,
                    int *nw, int *nh, MnError *err)
{
    int side = bw > bh ? bw : bh;
    *nw = (int)lround((double)bw * box / side), *nh = (int)lround((double)bh * box / side);
    *nw = *nw < 1 ? 1 : *nw;
    *nh = *nh < 1 ? 1 : *nh;
    *fit = malloc((size_t)*nw * *nh * sizeof **fit);
    int rc = *fit ? resample(crop, bw, bh, stride, *fit, *nw, *nh, err)
                  : mn_fail(err, MN_ENOMEM, "out of memory fitting a %dx%d crop", bw, bh);
    if (rc) {
        free(*fit);
        *fit = NULL;
    }
    return rc;
}

/* The digit (the crop at x0, y0, bw x bh of in, w wide) fit into the box
 * (*fit, *nw x *nh), its pen brought toward MNIST's when it is thinner or
 * thicker than MNIST's own: measured and adjusted at STROKE_SCALE times
 * the box, the adjusted ink cropped and fit again (which changes its width
 * again: up to STROKE_ROUNDS rounds, until within STROKE_CLOSE of MNIST's
 * median). A pen MNIST has is fit straight from the crop. */
static int fit_digit(const float *in, int w, int x0, int y0, int bw, int bh, int box, float **fit,
                     int *nw, int *nh, ImageTrace *trace, MnError *err)
{
    const float *crop = in + (size_t)y0 * w + x0;
    float *fine;
    int fw, fh, rc = fit_into(crop, bw, bh, (size_t)w, STROKE_SCALE * box, &fine, &fw, &fh, err);
    if (rc)
        return rc;
    /* in MNIST's units: the fine image as if the box were DIGIT_BOX */
    double width = photo_stroke_width(fine, fw, fh) * DIGIT_BOX / box;
    if (width == 0.0 || (width >= STROKE_MIN && width <= STROKE_MAX)) {
        free(fine);
        return fit_into(crop, bw, bh, (size_t)w, box, fit, nw, nh, err);
    }
    bool gone = false; /* thinned away: keep the pen as it was */
    for (int round = 0; rc == 0 && round < STROKE_ROUNDS && fabs(width - STROKE_MNIST) > STROKE_CLOSE;
         round++) {
        /* half the difference on each side of the stroke */
        int radius = (int)lround((STROKE_MNIST - width) * box / DIGIT_BOX / 2.0);
        if (radius == 0 || (rc = photo_adjust_stroke(fine, fw, fh, radius, err)))
            break;
        /* a pen too faint for its width after the fit comes back to full strength */
        float max = 0.0f;
        for (size_t i = 0; i < (size_t)fw * fh; i++)
            max = fine[i] > max ? fine[i] : max;
        for (size_t i = 0; max > 0.0f && i < (size_t)fw * fh; i++)
            fine[i] /= max;
        int fx, fy, cw, ch;
        if ((gone = !ink_box(fine, fw, fh, &fx, &fy, &cw, &ch)))
            break;
        float *again;
        int aw, ah;
        rc = fit_into(fine + (size_t)fy * fw + fx, cw, ch, (size_t)fw, STROKE_SCALE * box, &again,
                      &aw, &ah, err);
        free(fine);
        fine = again, fw = aw, fh = ah;
        width = rc ? 0.0 : photo_stroke_width(fine, fw, fh) * DIGIT_BOX / box;
    }
    if (rc == 0 && !gone) {
        trace_add(trace, "stroke", fine, fw, fh);
        rc = fit_into(fine, fw, fh, (size_t)fw, box, fit, nw, nh, err);
    } else if (rc == 0) {
        rc = fit_into(crop, bw, bh, (size_t)w, box, fit, nw, nh, err);
    }
    free(fine);
    return rc;
}

/* MNIST-style: crop to the ink, fit into DIGIT_BOX keeping the aspect
 * ratio, then shift so the centre of mass is the frame's centre. */
static int digit_normalise(const float *in, int w, int h, float *out, int ow, int oh,
                           ImageTrace *trace, MnError *err)
{
    memset(out, 0, (size_t)ow * oh * sizeof *out);
    int x0, y0, bw, bh;
    if (!ink_box(in, w, h, &x0, &y0, &bw, &bh))
        return 0; /* a blank image is all background */
    int box = DIGIT_BOX * (ow < oh ? ow : oh) / 28;
    box = box < 1 ? 1 : box;
    float *fit;
    int nw, nh, rc = fit_digit(in, w, x0, y0, bw, bh, box, &fit, &nw, &nh, trace, err);
    if (rc)
        return rc;
    /* MNIST's pen is saturated at its core: a faint stroke (a small drawing
     * grown to the box, a gray pen) is brought to full strength. MNIST's own
     * digits, which peak at 255, stay as they are. */
    float peak = 0.0f;
    for (size_t i = 0; i < (size_t)nw * nh; i++)
        peak = fit[i] > peak ? fit[i] : peak;
    if (peak > 0.0f && peak < 1.0f)
        for (size_t i = 0; i < (size_t)nw * nh; i++)
            fit[i] /= peak;
    double mass = 0.0, mx = 0.0, my = 0.0;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            double v = fit[(size_t)y * nw + x];
            mass += v;
            mx += v * x;
            my += v * y;
        }
    /* MNIST's digits have their centre of mass at pixel (14, 14) of 28x28. */
    int dx = (int)lround(ow / 2.0 - (mass > 0 ? mx / mass : (nw - 1) / 2.0));
    int dy = (int)lround(oh / 2.0 - (mass > 0 ? my / mass : (nh - 1) / 2.0));
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            int tx = x + dx, ty = y + dy;
            if (tx >= 0 && tx < ow && ty >= 0 && ty < oh)
                out[(size_t)ty * ow + tx] = fit[(size_t)y * nw + x];
        }
    free(fit);
    return 0;
}

/* The decoder the first bytes call for; JPEGs (by the DCT) and WebPs (by
 * libwebp's rescaler) come out scaled down toward min_side. */
static int decode_gray_alpha(const void *bytes, size_t len, const ImageLimits *lim, int min_side,
                             GrayAlpha *img, MnError *err)
{
    int rc = image_check_bytes(len, lim, err);
    if (rc)
        return rc;
    const char *type = image_sniff(bytes, len);
    if (!type)
        return mn_fail(err, MN_EFORMAT, "not a PNG, JPEG or WebP file (unrecognised first bytes)");
    if (!strcmp(type, "image/jpeg"))
        return jpeg_decode_gray_alpha(bytes, len, lim, min_side, img, err);
    if (!strcmp(type, "image/webp"))
        return webp_decode_gray_alpha(bytes, len, lim, min_side, img, err);
    return png_decode_gray_alpha(bytes, len, lim, img, err);
}

/* Photos and scans, at WORK_SIDE at most: the paper's light, noise,
 * lines and edges taken out of the ink map (photo.h), each step traced.
 * *ink may be replaced by a smaller image. */
static int clean_photo(float **ink, int *w, int *h, ImageTrace *trace, MnError *err)
{
    int side = *w > *h ? *w : *h;
    if (side > WORK_SIDE) {
        int nw = (int)lround((double)*w * WORK_SIDE / side), nh = (int)lround((double)*h * WORK_SIDE / side);
        nw = nw < 1 ? 1 : nw, nh = nh < 1 ? 1 : nh;
        float *small = malloc((size_t)nw * nh * sizeof *small);
        int rc = small ? resample(*ink, *w, *h, (size_t)*w, small, nw, nh, err)
                       : mn_fail(err, MN_ENOMEM, "out of memory reducing a %dx%d image", *w, *h);
        if (rc) {
            free(small);
            return rc;
        }
        free(*ink);
        *ink = small, *w = nw, *h = nh;
    }
    trace_add(trace, "decoded", *ink, *w, *h);
    bool drawing = photo_is_drawing(*ink, *w, *h);
    int rc = photo_remove_illumination(*ink, *w, *h, err);
    if (rc)
        return rc;
    trace_add(trace, "illumination", *ink, *w, *h);
    if (!drawing)
        photo_separate_ink(*ink, *w, *h);
    trace_add(trace, "ink", *ink, *w, *h);
    rc = photo_keep_digit(*ink, *w, *h, err);
    trace_add(trace, "digit", *ink, *w, *h);
    return rc;
}

int image_from_bytes(const void *bytes, size_t len, const ImageLimits *lim, ImagePreprocess mode,
                     int out_h, int out_w, float *out, ImageTrace *trace, MnError *err)
{
    if (out_h <= 0 || out_w <= 0)
        return mn_fail(err, MN_EINVAL, "cannot make a %dx%d input from an image", out_w, out_h);
    if (trace)
        trace->n = 0;
    GrayAlpha img = {0};
    float *ink = NULL;
    int rc = decode_gray_alpha(bytes, len, lim, mode == IMAGE_PRE_NONE ? INT_MAX : WORK_SIDE, &img,
                               err);
    if (rc)
        goto done;
    if (mode == IMAGE_PRE_NONE && (img.w != out_w || img.h != out_h)) {
        rc = mn_fail(err, MN_ESPEC, "image is %dx%d; preprocessing \"none\" needs %dx%d", img.w,
                     img.h, out_w, out_h);
        goto done;
    }
    int w = img.w, h = img.h;
    size_t n = (size_t)w * h;
    ink = malloc(n * sizeof *ink);
    if (!ink) {
        rc = mn_fail(err, MN_ENOMEM, "out of memory for a %dx%d image", w, h);
        goto done;
    }
    ink_from_gray_alpha(&img, mode != IMAGE_PRE_NONE, mode == IMAGE_PRE_DIGIT, ink);
    free(img.ga);
    img.ga = NULL;
    if (mode == IMAGE_PRE_DIGIT) {
        rc = clean_photo(&ink, &w, &h, trace, err);
        if (rc == 0)
            rc = digit_normalise(ink, w, h, out, out_w, out_h, trace, err);
    } else if (w == out_w && h == out_h) {
        trace_add(trace, "decoded", ink, w, h);
        memcpy(out, ink, n * sizeof *out);
    } else {
        trace_add(trace, "decoded", ink, w, h);
        rc = resample(ink, w, h, (size_t)w, out, out_w, out_h, err);
    }
    for (size_t i = 0; rc == 0 && i < (size_t)out_w * out_h; i++)
        out[i] = out[i] < 0.0f ? 0.0f : out[i] > 1.0f ? 1.0f : out[i];
    if (rc == 0)
        trace_add(trace, "input", out, out_w, out_h);
done:
    free(img.ga);
    free(ink);
    return rc;
}

int image_encode_png_gray8(const uint8_t *pixels, int h, int w, uint8_t **png, size_t *len,
                           MnError *err)
{
    *png = NULL;
    if (!pixels || h <= 0 || w <= 0)
        return mn_fail(err, MN_EINVAL, "cannot encode a %dx%d image as PNG", w, h);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    if (!png_image_write_get_memory_size(im, size, 0, pixels, 0, NULL))
        return mn_fail(err, MN_EINVAL, "PNG encoding of a %dx%d image failed: %s", w, h,
                       im.message);
    *png = malloc(size);
    if (!*png)
        return mn_fail(err, MN_ENOMEM, "out of memory encoding a %dx%d PNG", w, h);
    if (!png_image_write_to_memory(&im, *png, &size, 0, pixels, 0, NULL)) {
        free(*png);
        *png = NULL;
        return mn_fail(err, MN_EINVAL, "PNG encoding of a %dx%d image failed: %s", w, h,
                       im.message);
    }
    *len = size;
    return 0;
}
