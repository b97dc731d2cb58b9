/* fuzz_webp.c - libFuzzer target: an uploaded WebP (fuzz_image.h):
 * WebPGetFeatures' header against the dimension and decoder memory
 * limits, the animation refusal, libwebp's rescaled decode, the photo
 * steps. Debian's libwebp is not instrumented: this fuzzes what mnistd
 * does with it. */
#include "fuzz_image.h"
#include "webp_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_image_run(data, size, webp_decode_gray_alpha);
}
