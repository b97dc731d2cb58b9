/* webp_decode.c - WebP bytes to 8-bit gray+alpha (see webp_decode.h).
 * WebPGetFeatures reads the headers only (VP8X's canvas, VP8's or VP8L's
 * frame header); the dimensions and the memory libwebp will hold are
 * checked against the limits before WebPDecode sees the data. libwebp
 * decodes into our own buffer (external memory) as non-premultiplied RGBA;
 * gray is BT.601 luma, as JPEG's Y plane is. libwebp has no allocator hook,
 * so its memory is bounded by estimate: a lossy frame needs a few rows of
 * macroblocks, but a lossless one (and a lossy one's alpha plane, itself
 * lossless-coded) is decoded whole, 4 bytes a pixel, before any row comes
 * out, whatever the output scale. An EXIF chunk's orientation is not
 * applied (libwebp does not read metadata). */
#include "webp_decode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>

bool webp_sniff(const unsigned char *p, size_t len)
{
    return len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0;
}

/* libwebp's answer as ours; what says where it stopped. */
static int status_error(VP8StatusCode st, const char *what, MnError *err)
{
    switch (st) {
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt WebP: the file ends inside its %s",
                       what);
    case VP8_STATUS_BITSTREAM_ERROR:
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt WebP: bad %s", what);
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return mn_fail(err, MN_EFORMAT, "WebP %s uses a feature libwebp cannot decode", what);
    case VP8_STATUS_OUT_OF_MEMORY:
        return mn_fail(err, MN_ENOMEM, "out of memory decoding a WebP");
    default:
        return mn_fail(err, MN_ECORRUPT, "truncated or corrupt WebP: libwebp status %d in its %s",
                       (int)st, what);
    }
}

/* Bytes libwebp holds for a whole w x h image while decoding it (see the
 * file comment); a lossy frame's row buffers are not counted. */
static uint64_t decoder_bytes(const WebPBitstreamFeatures *f)
{
    uint64_t px = (uint64_t)f->width * (uint64_t)f->height;
    if (f->format == 2)
        return 4 * px;
    return f->has_alpha ? 5 * px : 0; /* the alpha plane, and its lossless decode */
}

/* Gray (BT.601 luma, rounded) and alpha from non-premultiplied RGBA. */
static void gray_from_rgba(const unsigned char *rgba, size_t n, unsigned char *ga)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = rgba + 4 * i;
        ga[2 * i] = (unsigned char)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u);
        ga[2 * i + 1] = p[3];
    }
}

int webp_decode_gray_alpha(const unsigned char *webp, size_t len, const ImageLimits *lim,
                           int min_side, GrayAlpha *img, MnError *err)
{
    img->ga = NULL;
    int rc = image_check_bytes(len, lim, err);
    if (rc)
        return rc;
    if (!webp_sniff(webp, len))
        return mn_fail(err, MN_EFORMAT, "not a WebP file (no RIFF WEBP header)");
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg))
        return mn_fail(err, MN_EIO, "libwebp's decoder is not the version mnistd was built with");
    VP8StatusCode st = WebPGetFeatures(webp, len, &cfg.input);
    if (st != VP8_STATUS_OK)
        return status_error(st, "header", err);
    const WebPBitstreamFeatures *f = &cfg.input;
    if (f->has_animation)
        return mn_fail(err, MN_EFORMAT, "animated WebP (%dx%d canvas) is not supported: send one "
                       "frame as a still image", f->width, f->height);
    rc = image_check_dimensions((unsigned long)f->width, (unsigned long)f->height, lim, err);
    if (rc)
        return rc;
    if (decoder_bytes(f) > (uint64_t)lim->max_decoder_memory)
        return mn_fail(err, MN_ELIMIT, "%s WebP %dx%d needs %llu bytes decoded whole, over the "
                       "%ld-byte decoder memory limit", f->format == 2 ? "lossless" : "transparent",
                       f->width, f->height, (unsigned long long)decoder_bytes(f),
                       lim->max_decoder_memory);
    int w = f->width, h = f->height, side = w > h ? w : h;
    if (!f->has_alpha && side > min_side) {
        /* the longer side to min_side, the shorter in proportion, rounded */
        cfg.options.use_scaling = 1;
        w = (int)(((uint64_t)f->width * (uint64_t)min_side + side / 2) / side);
        h = (int)(((uint64_t)f->height * (uint64_t)min_side + side / 2) / side);
        w = w < 1 ? 1 : w, h = h < 1 ? 1 : h;
        cfg.options.scaled_width = w;
        cfg.options.scaled_height = h;
    }
    size_t n = (size_t)w * h;
    unsigned char *rgba = malloc(n * 4);
    img->ga = malloc(n * 2);
    if (!rgba || !img->ga) {
        free(rgba);
        free(img->ga);
        img->ga = NULL;
        return mn_fail(err, MN_ENOMEM, "out of memory decoding a %dx%d WebP", w, h);
    }
    cfg.output.colorspace = MODE_RGBA;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = rgba;
    cfg.output.u.RGBA.stride = w * 4;
    cfg.output.u.RGBA.size = n * 4;
    st = WebPDecode(webp, len, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* nothing of ours: the memory is external */
    if (st != VP8_STATUS_OK) {
        free(rgba);
        free(img->ga);
        img->ga = NULL;
        return status_error(st, f->format == 2 ? "lossless image data" : "image data", err);
    }
    gray_from_rgba(rgba, n, img->ga);
    free(rgba);
    img->w = w;
    img->h = h;
    return 0;
}
