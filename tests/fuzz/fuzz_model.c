/* fuzz_model.c - libFuzzer target: a .mnm model file through
 * core/model_file.c (model_load_buffer, as model_load and uploads use it).
 * A mutation almost always breaks the trailing CRC32, so the input is also
 * loaded with its last 4 bytes replaced by the right CRC. A model that
 * loads runs one forward pass. Parameter limit 65536 (the default 10M
 * would spend the run initialising weights). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "model_file.h"

static void load(const uint8_t *data, size_t size)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = 65536;
    Model *m = NULL;
    MnError err = {0};
    if (model_load_buffer(data, size, "fuzz.mnm", &lim, &m, &err))
        return;
    ModelRun *run = model_run_new(m, 1, false, &err);
    if (run) {
        memset(model_run_input(run), 0, shape_numel(m->spec.input) * sizeof(float));
        model_forward(m, run, 1, false);
        model_run_free(run);
    }
    model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(data, size);
    if (size < 4)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    uint32_t crc = (uint32_t)crc32(0L, copy, (uInt)(size - 4));
    uint8_t le[4] = {crc, crc >> 8, crc >> 16, crc >> 24};
    if (memcmp(copy + size - 4, le, 4)) {
        memcpy(copy + size - 4, le, 4);
        load(copy, size);
    }
    free(copy);
    return 0;
}
