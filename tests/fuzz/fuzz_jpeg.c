/* fuzz_jpeg.c - libFuzzer target: an uploaded JPEG through core/image.c as
 * the server runs it (image_from_bytes: the header's limits, libjpeg with
 * every warning fatal, the scan count, libexif's orientation, the turn,
 * then the photo steps with a trace and the framing), and the decoder on
 * its own at full size. Sides are capped at 512 and the decoder's memory
 * at 32 MiB to keep an execution in milliseconds. Debian's libjpeg and
 * libexif are not instrumented: this fuzzes what mnistd does with them. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "image.h"
#include "jpeg_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
    if (jpeg_decode_gray_alpha(data, size, &lim, INT_MAX, &img, &err) == 0)
        free(img.ga);
    return 0;
}
