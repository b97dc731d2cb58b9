/* image.c - PNG bytes to a white-on-black h x w float image (see image.h):
 * png_decode.c gives gray+alpha pixels, this file the model's framing. */
#include "image.h"

#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "png_decode.h"

#define DIGIT_BOX 20   /* MNIST fits each digit into 20x20 ... */
#define INK_FRACTION 0.1f /* ... measured from pixels above 10% of the brightest */

void image_limits_default(ImageLimits *lim)
{
    lim->max_bytes = 8u << 20;
    lim->max_width = 4096;
    lim->max_height = 4096;
}

/* Whether the ink is darker than the background. The border says what the
 * background is. Mostly transparent (a canvas export): the ink is what is
 * opaque, dark if its alpha-weighted mean is below mid-gray. Otherwise a
 * light border is a light background; transparent corners stay a minority. */
static bool ink_is_dark(const GrayAlpha *img)
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
        return gray > 127.5 * alpha;
    gray = alpha = 0.0;
    for (size_t i = 0; i < w * h; i++) {
        gray += (double)ga[2 * i] * ga[2 * i + 1];
        alpha += ga[2 * i + 1];
    }
    return alpha > 0.0 && gray < 127.5 * alpha;
}

/* White ink on black: transparent pixels are background either way round. */
static void ink_from_gray_alpha(const GrayAlpha *img, bool invertible, float *out)
{
    bool dark = invertible && ink_is_dark(img);
    for (size_t i = 0; i < (size_t)img->w * img->h; i++) {
        float g = img->ga[2 * i] / 255.0f, a = img->ga[2 * i + 1] / 255.0f;
        out[i] = a * (dark ? 1.0f - g : g);
    }
}

/* One axis of a resample: box filter when shrinking (each output averages
 * the input it covers), linear interpolation when growing. */
static void resample_axis(const float *src, int sn, size_t sstride, float *dst, int dn,
                          size_t dstride, int lines, size_t sline, size_t dline)
{
    double scale = (double)sn / dn;
    for (int l = 0; l < lines; l++) {
        const float *s = src + (size_t)l * sline;
        float *d = dst + (size_t)l * dline;
        for (int o = 0; o < dn; o++) {
            double v = 0.0;
            if (scale >= 1.0) {
                double lo = o * scale, hi = lo + scale;
                for (int i = (int)lo; i < sn && i < hi; i++) {
                    double cover = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                    if (cover > 0.0)
                        v += cover * s[(size_t)i * sstride];
                }
                v /= scale;
            } else {
                double pos = (o + 0.5) * scale - 0.5;
                int i0 = (int)floor(pos);
                double t = pos - i0;
                int a = i0 < 0 ? 0 : i0, b = i0 + 1 >= sn ? sn - 1 : i0 + 1;
                v = (1.0 - t) * s[(size_t)a * sstride] + t * s[(size_t)b * sstride];
            }
            d[(size_t)o * dstride] = (float)v;
        }
    }
}

/* src (sh x sw, rows `stride` floats apart, so a crop needs no copy) ->
 * dst (dh x dw), separable; tmp holds sh x dw floats. */
static void resample(const float *src, int sw, int sh, size_t stride, float *dst, int dw, int dh,
                     float *tmp)
{
    resample_axis(src, sw, 1, tmp, dw, 1, sh, stride, (size_t)dw);
    resample_axis(tmp, sh, (size_t)dw, dst, dh, (size_t)dw, dw, 1, 1);
}

/* MNIST-style: crop to the ink, fit into DIGIT_BOX keeping the aspect
 * ratio, then shift so the centre of mass is the frame's centre. */
static int digit_normalise(const float *in, int w, int h, float *out, int ow, int oh,
                           MnError *err)
{
    memset(out, 0, (size_t)ow * oh * sizeof *out);
    float max = 0.0f;
    for (size_t i = 0; i < (size_t)w * h; i++)
        max = in[i] > max ? in[i] : max;
    if (max <= 0.0f)
        return 0; /* a blank image is all background */
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (in[(size_t)y * w + x] > INK_FRACTION * max) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1, side = bw > bh ? bw : bh;
    int box = DIGIT_BOX * (ow < oh ? ow : oh) / 28;
    box = box < 1 ? 1 : box;
    int nw = (int)lround((double)bw * box / side), nh = (int)lround((double)bh * box / side);
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;
    float *fit = malloc((size_t)nw * nh * sizeof *fit);
    float *tmp = malloc((size_t)bh * nw * sizeof *tmp);
    if (!fit || !tmp) {
        free(fit), free(tmp);
        return mn_fail(err, MN_ENOMEM, "out of memory");
    }
    resample(in + (size_t)y0 * w + x0, bw, bh, (size_t)w, fit, nw, nh, tmp);
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
    free(fit), free(tmp);
    return 0;
}

int image_from_png(const void *png, size_t len, const ImageLimits *lim, ImagePreprocess mode,
                   int out_h, int out_w, float *out, MnError *err)
{
    if (out_h <= 0 || out_w <= 0)
        return mn_fail(err, MN_EINVAL, "cannot make a %dx%d input from an image", out_w, out_h);
    GrayAlpha img = {0};
    float *ink = NULL, *tmp = NULL;
    int rc = png_decode_gray_alpha(png, len, lim, &img, err);
    if (rc)
        goto done;
    if (mode == IMAGE_PRE_NONE && (img.w != out_w || img.h != out_h)) {
        rc = mn_fail(err, MN_ESPEC, "image is %dx%d; preprocessing \"none\" needs %dx%d", img.w,
                     img.h, out_w, out_h);
        goto done;
    }
    size_t n = (size_t)img.w * img.h;
    ink = malloc(n * sizeof *ink);
    if (!ink) {
        rc = mn_fail(err, MN_ENOMEM, "out of memory for a %dx%d image", img.w, img.h);
        goto done;
    }
    ink_from_gray_alpha(&img, mode != IMAGE_PRE_NONE, ink);
    free(img.ga);
    img.ga = NULL;
    if (mode == IMAGE_PRE_DIGIT) {
        rc = digit_normalise(ink, img.w, img.h, out, out_w, out_h, err);
    } else if (img.w == out_w && img.h == out_h) {
        memcpy(out, ink, n * sizeof *out);
    } else {
        tmp = malloc((size_t)img.h * out_w * sizeof *tmp);
        if (!tmp)
            rc = mn_fail(err, MN_ENOMEM, "out of memory resizing a %dx%d image", img.w, img.h);
        else
            resample(ink, img.w, img.h, (size_t)img.w, out, out_w, out_h, tmp);
    }
    for (size_t i = 0; rc == 0 && i < (size_t)out_w * out_h; i++)
        out[i] = out[i] < 0.0f ? 0.0f : out[i] > 1.0f ? 1.0f : out[i];
done:
    free(img.ga);
    free(ink);
    free(tmp);
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
