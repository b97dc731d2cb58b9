/* fuzz_image.h - what the photo decoders' targets (fuzz_jpeg, fuzz_webp)
 * share: an upload through core/image.c as the server runs it (the byte
 * and header limits, the decode scaled toward the work side, then the
 * photo steps with a trace, and the framing), and the decoder on its own
 * at full size. Sides are capped at 512 and the decoder's memory at
 * 32 MiB to keep an execution in milliseconds. */
#ifndef MN_FUZZ_IMAGE_H
#define MN_FUZZ_IMAGE_H

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "image.h"

typedef int (*FuzzDecoder)(const unsigned char *bytes, size_t len, const ImageLimits *lim,
                           int min_side, GrayAlpha *img, MnError *err);

static int fuzz_image_run(const uint8_t *data, size_t size, FuzzDecoder decode)
{
    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_width = lim.max_height = 512;
    lim.max_decoder_memory = 32L << 20;
    static const ImagePreprocess modes[] = {IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME};
    ImageTrace *trace = malloc(sizeof *trace);
    float out[28 * 28];
    for (int i = 0; i < 2; i++) {
        MnError err = {0};
        image_from_bytes(data, size, &lim, modes[i], 28, 28, out, i == 0 ? trace : NULL, &err);
    }
    free(trace);
    GrayAlpha img;
    MnError err = {0};
    if (decode(data, size, &lim, INT_MAX, &img, &err) == 0)
        free(img.ga);
    return 0;
}

#endif
