/* image.c - PNG bytes to a white-on-black h x w float image (see image.h).
 * Before libpng decodes a pixel, png_prescan walks the chunks: the
 * signature, IHDR's dimensions against the limits, and every IDAT inflated
 * into a small scratch buffer with a budget of the bytes the declared image
 * needs, so a decompression bomb stops after that budget, not after a
 * gigabyte. Only then does libpng's simplified API decode. */
#include "image.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DIGIT_BOX 20   /* MNIST fits each digit into 20x20 ... */
#define INK_FRACTION 0.1f /* ... measured from pixels above 10% of the brightest */

void image_limits_default(ImageLimits *lim)
{
    lim->max_bytes = 8u << 20;
    lim->max_width = 4096;
    lim->max_height = 4096;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The filtered image data a PNG of this header inflates to, with room for
 * Adam7's extra filter bytes and row padding. */
static uint64_t raw_budget(uint32_t w, uint32_t h, int depth, int color)
{
    int channels = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : 4;
    uint64_t row = ((uint64_t)w * channels * depth + 7) / 8;
    return (uint64_t)h * (row + 1) + 4ull * h + 64;
}

static int png_prescan(const unsigned char *p, size_t len, const ImageLimits *lim, MnError *err)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (len < 8 || memcmp(p, sig, 8) != 0)
        return mn_fail(err, MN_EFORMAT, "not a PNG file (bad signature)");
    size_t pos = 8;
    uint64_t budget = 0, inflated = 0;
    bool header = false, end = false;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return mn_fail(err, MN_ENOMEM, "out of memory");
    unsigned char scratch[16384];
    int rc = 0, zrc = Z_OK;
    while (!end) {
        if (len - pos < 12) {
            rc = mn_fail(err, MN_ECORRUPT, "truncated PNG (chunk header at byte %zu)", pos);
            break;
        }
        uint32_t n = be32(p + pos);
        const unsigned char *type = p + pos + 4, *data = p + pos + 8;
        if (n > 0x7fffffffu || len - pos - 12 < n) {
            rc = mn_fail(err, MN_ECORRUPT, "truncated PNG (chunk of %u bytes at byte %zu)", n, pos);
            break;
        }
        if (!header) {
            if (memcmp(type, "IHDR", 4) != 0 || n != 13) {
                rc = mn_fail(err, MN_ECORRUPT, "corrupt PNG: IHDR is not the first chunk");
                break;
            }
            uint32_t w = be32(data), h = be32(data + 4);
            if (w == 0 || h == 0) {
                rc = mn_fail(err, MN_ECORRUPT, "corrupt PNG: image is %ux%u", w, h);
                break;
            }
            if (w > (uint32_t)lim->max_width || h > (uint32_t)lim->max_height) {
                rc = mn_fail(err, MN_ELIMIT, "image %ux%u exceeds the %dx%d limit", w, h,
                             lim->max_width, lim->max_height);
                break;
            }
            budget = raw_budget(w, h, data[8], data[9]);
            header = true;
        } else if (memcmp(type, "IDAT", 4) == 0 && zrc != Z_STREAM_END) {
            z.next_in = (Bytef *)data;
            z.avail_in = n;
            while (z.avail_in > 0 && zrc == Z_OK) {
                z.next_out = scratch;
                z.avail_out = sizeof scratch;
                zrc = inflate(&z, Z_NO_FLUSH);
                inflated += sizeof scratch - z.avail_out;
                if (inflated > budget) {
                    rc = mn_fail(err, MN_ELIMIT,
                                 "PNG data inflates past the %llu bytes its header needs "
                                 "(decompression bomb)",
                                 (unsigned long long)budget);
                    break;
                }
                if (zrc == Z_BUF_ERROR && z.avail_out != 0)
                    zrc = Z_OK; /* needs the next IDAT */
            }
            if (rc)
                break;
            if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
                rc = mn_fail(err, MN_ECORRUPT, "corrupt PNG: bad compressed data (%s)",
                             z.msg ? z.msg : "zlib error");
                break;
            }
        } else if (memcmp(type, "IEND", 4) == 0) {
            end = true;
        }
        pos += 12 + (size_t)n;
    }
    inflateEnd(&z);
    return rc;
}

/* Intensity of ink in [0,1] from gray and alpha (both [0,1], gray not
 * premultiplied): transparent pixels are background either way round. */
typedef struct {
    float *gray, *alpha;
    int w, h;
} GrayAlpha;

static int decode(const unsigned char *p, size_t len, GrayAlpha *img, MnError *err)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, p, len))
        return mn_fail(err, MN_ECORRUPT, "corrupt PNG: %s", im.message);
    /* 16-bit files are read linear (no sRGB curve applied to their values);
     * the linear format's alpha comes premultiplied, the 8-bit one's not. */
    bool linear = (im.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    im.format = linear ? PNG_FORMAT_LINEAR_Y_ALPHA : PNG_FORMAT_GA;
    size_t n = (size_t)im.width * im.height;
    void *buf = malloc(PNG_IMAGE_SIZE(im));
    img->gray = malloc(n * sizeof *img->gray);
    img->alpha = malloc(n * sizeof *img->alpha);
    if (!buf || !img->gray || !img->alpha) {
        png_image_free(&im);
        free(buf);
        return mn_fail(err, MN_ENOMEM, "out of memory decoding %ux%u", im.width, im.height);
    }
    if (!png_image_finish_read(&im, NULL, buf, 0, NULL)) {
        free(buf);
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: %s", im.message);
    }
    img->w = (int)im.width;
    img->h = (int)im.height;
    for (size_t i = 0; i < n; i++) {
        float g, a;
        if (linear) {
            const png_uint_16 *px = (const png_uint_16 *)buf + 2 * i;
            a = px[1] / 65535.0f;
            g = a > 0.0f ? px[0] / 65535.0f / a : 0.0f;
        } else {
            const png_byte *px = (const png_byte *)buf + 2 * i;
            g = px[0] / 255.0f;
            a = px[1] / 255.0f;
        }
        img->gray[i] = g > 1.0f ? 1.0f : g;
        img->alpha[i] = a;
    }
    free(buf);
    return 0;
}

/* Decides which way round the ink is and writes intensity (white ink on black). */
static void to_intensity(const GrayAlpha *img, bool invertible, float *out)
{
    size_t n = (size_t)img->w * img->h;
    size_t transparent = 0, opaque = 0;
    double opaque_gray = 0.0, border = 0.0;
    int border_n = 0;
    for (size_t i = 0; i < n; i++) {
        if (img->alpha[i] < 0.5f)
            transparent++;
        else {
            opaque++;
            opaque_gray += img->gray[i];
        }
    }
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++)
            if (y == 0 || x == 0 || y == img->h - 1 || x == img->w - 1) {
                size_t i = (size_t)y * img->w + x;
                border += img->alpha[i] * img->gray[i]; /* over black */
                border_n++;
            }
    bool dark_ink;
    if (transparent > 0) /* the background is what is transparent; the ink is the rest */
        dark_ink = opaque > 0 && opaque_gray / opaque < 0.5;
    else /* opaque: a light border means a light background */
        dark_ink = border / border_n > 0.5;
    if (!invertible)
        dark_ink = false;
    for (size_t i = 0; i < n; i++) {
        float a = img->alpha[i], g = img->gray[i];
        out[i] = dark_ink ? a * (1.0f - g) : a * g;
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

/* src (sh x sw) -> dst (dh x dw), separable; tmp holds sh x dw floats. */
static void resample(const float *src, int sw, int sh, float *dst, int dw, int dh, float *tmp)
{
    resample_axis(src, sw, 1, tmp, dw, 1, sh, (size_t)sw, (size_t)dw);
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
    float *crop = malloc((size_t)bw * bh * sizeof *crop);
    float *fit = malloc((size_t)nw * nh * sizeof *fit);
    float *tmp = malloc((size_t)bh * nw * sizeof *tmp);
    if (!crop || !fit || !tmp) {
        free(crop), free(fit), free(tmp);
        return mn_fail(err, MN_ENOMEM, "out of memory");
    }
    for (int y = 0; y < bh; y++)
        memcpy(crop + (size_t)y * bw, in + (size_t)(y0 + y) * w + x0, (size_t)bw * sizeof *crop);
    resample(crop, bw, bh, fit, nw, nh, tmp);
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
    free(crop), free(fit), free(tmp);
    return 0;
}

int image_from_png(const void *png, size_t len, const ImageLimits *lim, ImagePreprocess mode,
                   int out_h, int out_w, float *out, MnError *err)
{
    if (len > lim->max_bytes)
        return mn_fail(err, MN_ELIMIT, "image of %zu bytes exceeds the %zu-byte limit", len,
                       lim->max_bytes);
    int rc = png_prescan(png, len, lim, err);
    if (rc)
        return rc;
    GrayAlpha img = {0};
    float *ink = NULL, *tmp = NULL;
    if ((rc = decode(png, len, &img, err)))
        goto done;
    if (mode == IMAGE_PRE_NONE && (img.w != out_w || img.h != out_h)) {
        rc = mn_fail(err, MN_ESPEC, "image is %dx%d; preprocessing \"none\" needs %dx%d", img.w,
                     img.h, out_w, out_h);
        goto done;
    }
    size_t n = (size_t)img.w * img.h;
    ink = malloc(n * sizeof *ink);
    tmp = malloc((size_t)img.h * out_w * sizeof *tmp);
    if (!ink || !tmp) {
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
        goto done;
    }
    to_intensity(&img, mode != IMAGE_PRE_NONE, ink);
    if (mode == IMAGE_PRE_DIGIT)
        rc = digit_normalise(ink, img.w, img.h, out, out_w, out_h, err);
    else if (img.w == out_w && img.h == out_h)
        memcpy(out, ink, n * sizeof *out);
    else
        resample(ink, img.w, img.h, out, out_w, out_h, tmp);
    for (size_t i = 0; rc == 0 && i < (size_t)out_w * out_h; i++)
        out[i] = out[i] < 0.0f ? 0.0f : out[i] > 1.0f ? 1.0f : out[i];
done:
    free(img.gray);
    free(img.alpha);
    free(ink);
    free(tmp);
    return rc;
}

int image_encode_png_gray8(const uint8_t *pixels, int h, int w, uint8_t **png, size_t *len,
                           MnError *err)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    if (!png_image_write_get_memory_size(im, size, 0, pixels, 0, NULL))
        return mn_fail(err, MN_EINVAL, "PNG encoding failed: %s", im.message);
    *png = malloc(size);
    if (!*png)
        return mn_fail(err, MN_ENOMEM, "out of memory");
    if (!png_image_write_to_memory(&im, *png, &size, 0, pixels, 0, NULL)) {
        free(*png);
        *png = NULL;
        return mn_fail(err, MN_EINVAL, "PNG encoding failed: %s", im.message);
    }
    *len = size;
    return 0;
}
