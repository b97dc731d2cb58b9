/* image.c - PNG bytes to a white-on-black h x w float image (see image.h).
 * Before libpng sees a byte, png_prescan walks the chunks: the signature,
 * IHDR's dimensions against the limits, every IDAT inflated into scratch
 * with a budget of the bytes the declared image needs, and a copy keeping
 * only the chunks decoding needs. libpng's simplified API alone inflates a
 * whole IDAT bomb (2.5 s a GiB) and every zTXt, so it only sees that copy. */
#include "image.h"

#include <math.h>
#include <png.h>
#include <stdbool.h>
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

/* The bit depths PNG allows for a colour type; anything else would make the
 * inflate budget meaningless (libpng refuses it too, but only after). */
static bool depth_valid(int color, int depth)
{
    switch (color) {
    case 0: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: case 4: case 6: return depth == 8 || depth == 16;
    default: return false;
    }
}

/* Chunks libpng needs for the pixels as stored: every critical one (unknown
 * critical chunks too, so libpng refuses them as it should) and tRNS. The
 * rest go: libpng would inflate each zTXt, iTXt and iCCP (up to 8 MB apiece)
 * for nothing, and without gAMA, sRGB and cHRM it converts no gamma, so we
 * read samples as stored, as MNIST's were, whatever the bit depth. */
static bool chunk_needed(const unsigned char *type)
{
    return !(type[0] & 0x20) || memcmp(type, "tRNS", 4) == 0;
}

typedef struct {
    z_stream z;
    uint64_t budget, inflated;
    bool ended;
} IdatCheck;

/* Inflates one IDAT's bytes into scratch only to count them: the stream
 * may not outgrow the budget by more than one scratch buffer. */
static int idat_check(IdatCheck *c, const unsigned char *data, uint32_t n, MnError *err)
{
    unsigned char scratch[16384];
    c->z.next_in = (Bytef *)data;
    c->z.avail_in = n;
    while (c->z.avail_in > 0 && !c->ended) {
        c->z.next_out = scratch;
        c->z.avail_out = sizeof scratch;
        int zrc = inflate(&c->z, Z_NO_FLUSH);
        c->inflated += sizeof scratch - c->z.avail_out;
        if (c->inflated > c->budget)
            return mn_fail(err, MN_ELIMIT,
                           "PNG data inflates past the %llu bytes its header needs "
                           "(decompression bomb)",
                           (unsigned long long)c->budget);
        if (zrc == Z_STREAM_END)
            c->ended = true;
        else if (zrc != Z_OK) /* with input and room left, anything else is bad data */
            return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: bad image data (%s)",
                           c->z.msg ? c->z.msg : "zlib error");
    }
    return 0;
}

/* Checks the IHDR chunk's 13 bytes and sets the inflate budget. */
static int ihdr_check(const unsigned char *d, const ImageLimits *lim, IdatCheck *c,
                      MnError *err)
{
    uint32_t w = be32(d), h = be32(d + 4);
    int depth = d[8], color = d[9];
    if (w == 0 || h == 0)
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: image is %ux%u", w, h);
    if (w > (uint32_t)lim->max_width || h > (uint32_t)lim->max_height)
        return mn_fail(err, MN_ELIMIT, "image %ux%u exceeds the %dx%d limit", w, h,
                       lim->max_width, lim->max_height);
    if (!depth_valid(color, depth))
        return mn_fail(err, MN_ECORRUPT,
                       "truncated or corrupt PNG: bit depth %d with colour type %d", depth, color);
    c->budget = raw_budget(w, h, depth, color);
    return 0;
}

/* Walks the chunks of p (len bytes) without decoding a pixel, and returns in
 * *kept (malloc'd) the signature and the chunks chunk_needed keeps. */
static int png_prescan(const unsigned char *p, size_t len, const ImageLimits *lim,
                       unsigned char **kept, size_t *kept_len, MnError *err)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (len < 8 || memcmp(p, sig, 8) != 0)
        return mn_fail(err, MN_EFORMAT, "not a PNG file (bad signature)");
    IdatCheck idat;
    memset(&idat, 0, sizeof idat);
    unsigned char *out = malloc(len);
    if (!out || inflateInit(&idat.z) != Z_OK) {
        free(out);
        return mn_fail(err, MN_ENOMEM, "out of memory reading a PNG of %zu bytes", len);
    }
    memcpy(out, p, 8);
    size_t pos = 8, n_out = 8;
    int rc = 0;
    for (bool header = false;;) {
        if (len - pos < 12) {
            rc = mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: the file ends at byte %zu "
                         "without an IEND chunk", len);
            break;
        }
        uint32_t n = be32(p + pos);
        const unsigned char *type = p + pos + 4, *data = p + pos + 8;
        if (n > 0x7fffffffu || len - pos - 12 < n) {
            rc = mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: a chunk of %u bytes at "
                         "byte %zu runs past the end of the file", n, pos);
            break;
        }
        if (!header) {
            if (memcmp(type, "IHDR", 4) != 0 || n != 13) {
                rc = mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: IHDR is not the "
                             "first chunk");
                break;
            }
            if ((rc = ihdr_check(data, lim, &idat, err)))
                break;
            header = true;
        } else if (memcmp(type, "IDAT", 4) == 0 && !idat.ended) {
            if ((rc = idat_check(&idat, data, n, err)))
                break;
        }
        if (chunk_needed(type)) {
            memcpy(out + n_out, p + pos, 12 + (size_t)n);
            n_out += 12 + (size_t)n;
        }
        pos += 12 + (size_t)n;
        if (memcmp(type, "IEND", 4) == 0)
            break;
    }
    /* Nothing follows IEND: bytes there would be taken without a look. */
    if (rc == 0 && pos != len)
        rc = mn_fail(err, MN_ECORRUPT, "corrupt PNG: %zu trailing bytes after the IEND chunk",
                     len - pos);
    inflateEnd(&idat.z);
    if (rc) {
        free(out);
        return rc;
    }
    *kept = out;
    *kept_len = n_out;
    return 0;
}

/* A decoded image: gray and alpha per pixel, 8 bits each, not premultiplied. */
typedef struct {
    png_byte *ga; /* (h, w, 2) */
    int w, h;
} GrayAlpha;

/* 16-bit files come out of libpng as linear, premultiplied 16-bit (as
 * stored, with no gamma chunk left); this unpremultiplies and narrows them to
 * 8-bit gray+alpha in place (pixel i's 2 bytes never pass pixel i's 4). */
static void narrow_linear(png_byte *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        png_uint_16 px[2];
        memcpy(px, buf + 4 * i, sizeof px);
        uint32_t a = px[1], y = px[0];
        uint32_t g = a ? (y * 65535u + a / 2) / a : 0;
        g = g > 65535u ? 65535u : g;
        buf[2 * i] = (png_byte)((g * 255u + 32767u) / 65535u);
        buf[2 * i + 1] = (png_byte)((a * 255u + 32767u) / 65535u);
    }
}

static int png_decode(const unsigned char *p, size_t len, GrayAlpha *img, MnError *err)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, p, len))
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: %s", im.message);
    /* 16-bit files are read as 16-bit: libpng 1.6's narrowing to 8 bits
     * garbles Adam7-interlaced ones (pnggroup/libpng#853). */
    bool wide = (im.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    im.format = wide ? PNG_FORMAT_LINEAR_Y_ALPHA : PNG_FORMAT_GA;
    img->ga = malloc(PNG_IMAGE_SIZE(im));
    if (!img->ga) {
        png_image_free(&im);
        return mn_fail(err, MN_ENOMEM, "out of memory decoding a %ux%u image", im.width,
                       im.height);
    }
    /* No background: alpha stays, ink_is_dark decides what it means. */
    if (!png_image_finish_read(&im, NULL, img->ga, 0, NULL))
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt PNG: %s", im.message);
    img->w = (int)im.width;
    img->h = (int)im.height;
    if (wide)
        narrow_linear(img->ga, (size_t)im.width * im.height);
    return 0;
}

/* Whether the ink is darker than the background. The border says what the
 * background is. Mostly transparent (a canvas export): the ink is what is
 * opaque, dark if its alpha-weighted mean is below mid-gray. Otherwise a
 * light border is a light background; transparent corners stay a minority. */
static bool ink_is_dark(const GrayAlpha *img)
{
    const png_byte *ga = img->ga;
    size_t w = (size_t)img->w, h = (size_t)img->h, border = 0, clear = 0;
    double gray = 0.0, alpha = 0.0; /* sums of a*g and a */
    for (size_t y = 0; y < h; y++) {
        size_t step = y == 0 || y == h - 1 || w == 1 ? 1 : w - 1;
        for (size_t x = 0; x < w; x += step) {
            const png_byte *px = ga + 2 * (y * w + x);
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
    if (len > lim->max_bytes)
        return mn_fail(err, MN_ELIMIT, "image of %zu bytes exceeds the %zu-byte limit", len,
                       lim->max_bytes);
    unsigned char *kept = NULL;
    size_t kept_len = 0;
    int rc = png_prescan(png, len, lim, &kept, &kept_len, err);
    if (rc)
        return rc;
    GrayAlpha img = {0};
    float *ink = NULL, *tmp = NULL;
    rc = png_decode(kept, kept_len, &img, err);
    free(kept);
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
