/* fuzz_onnx.c - libFuzzer target: ONNX bytes through core/onnx_import.c
 * (the bounded unpack, every operator's checks, the layout conversion).
 * A graph that imports is run once and exported again (onnx_export).
 * Parameter limit 65536 and a 1 MiB file limit, so a run stays fast;
 * the corpus (tests/fuzz/corpus/onnx) is mnistd's own exports of small
 * graphs covering every operator the importer reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_export.h"
#include "onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = 65536;
    OnnxImportOptions opt;
    onnx_import_options_default(&opt);
    opt.max_bytes = 1u << 20;
    opt.name = "fuzz";
    Model *m = NULL;
    MnError err = {0};
    if (onnx_import(data, size, &opt, &lim, &m, &err))
        return 0;
    ModelRun *run = model_run_new(m, 1, false, &err);
    if (run) {
        memset(model_run_input(run), 0, shape_numel(m->spec.input) * sizeof(float));
        model_forward(m, run, 1, false);
        model_run_free(run);
    }
    unsigned char *buf;
    size_t len;
    if (onnx_export(m, &buf, &len, &err) == 0)
        free(buf);
    model_free(m);
    return 0;
}
