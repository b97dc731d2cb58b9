/* fuzz_jpeg.c - libFuzzer target: an uploaded JPEG (fuzz_image.h): the
 * header's limits, libjpeg with every warning fatal, the scan count,
 * libexif's orientation, the turn, the photo steps. Debian's libjpeg and
 * libexif are not instrumented: this fuzzes what mnistd does with them. */
#include "fuzz_image.h"
#include "jpeg_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_image_run(data, size, jpeg_decode_gray_alpha);
}
