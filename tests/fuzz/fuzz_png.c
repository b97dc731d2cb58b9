/* fuzz_png.c - libFuzzer target: an uploaded PNG through core/image.c as
 * the server runs it (image_from_bytes: chunk walk, libpng's progressive reader,
 * preprocessing into 28x28), in each preprocessing mode. libpng refuses a
 * chunk whose CRC is wrong, which almost every mutation makes it, so a
 * copy with the chunk CRCs recomputed is decoded too. Sides are capped at
 * 1024 (the server allows 4096) to keep an execution in milliseconds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites each whole chunk's CRC in place; returns whether any changed. */
static int fix_crcs(uint8_t *p, size_t len)
{
    int changed = 0;
    for (size_t pos = 8; len >= 12 && pos <= len - 12;) {
        uint32_t n = be32(p + pos);
        if (n > len - pos - 12)
            break;
        uint32_t crc = (uint32_t)crc32(0L, p + pos + 4, (uInt)n + 4);
        uint8_t *c = p + pos + 8 + n;
        uint8_t want[4] = {crc >> 24, crc >> 16, crc >> 8, crc};
        if (memcmp(c, want, 4)) {
            memcpy(c, want, 4);
            changed = 1;
        }
        pos += 12 + (size_t)n;
    }
    return changed;
}

static void decode(const uint8_t *data, size_t size, int n_modes)
{
    static const ImagePreprocess modes[] = {IMAGE_PRE_DIGIT, IMAGE_PRE_FRAME, IMAGE_PRE_NONE};
    ImageLimits lim;
    image_limits_default(&lim);
    lim.max_width = lim.max_height = 1024;
    float out[28 * 28];
    for (int i = 0; i < n_modes; i++) {
        MnError err = {0};
        image_from_bytes(data, size, &lim, modes[i], 28, 28, out, NULL, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (fix_crcs(copy, size))
        decode(data, size, 1); /* as given: the CRC error path */
    decode(copy, size, 3);
    free(copy);
    return 0;
}
