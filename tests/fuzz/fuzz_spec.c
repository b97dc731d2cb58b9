/* fuzz_spec.c - libFuzzer target: a training spec through core/spec.c
 * (spec_parse), then what the server and trainer do with one that parses:
 * every grid trial, the spec back to JSON (which must parse again to the
 * same JSON: a failure aborts), and model_build under a parameter limit of
 * 65536 (the default 10M would spend the run initialising weights). */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "spec.h"

static char *to_text(const ModelSpec *s)
{
    cJSON *j = spec_to_json(s);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = 65536;
    static ModelSpec spec, trial, again;
    MnError err = {0};
    if (spec_parse((const char *)data, size, &lim, &spec, &err))
        return 0;
    for (int t = 0; t < spec_grid_size(&spec); t++)
        spec_grid_trial(&spec, t, &trial);
    char *text = to_text(&spec);
    if (!text)
        return 0;
    if (spec_parse(text, strlen(text), &lim, &again, &err)) {
        fprintf(stderr, "spec_to_json gave a spec that does not parse: %s\n%s\n", err.msg, text);
        abort();
    }
    char *text2 = to_text(&again);
    if (!text2 || strcmp(text, text2)) {
        fprintf(stderr, "spec round trip differs:\n%s\n%s\n", text, text2 ? text2 : "(null)");
        abort();
    }
    cJSON_free(text);
    cJSON_free(text2);
    Model *m;
    if (model_build(&spec, &lim, &m, &err) == 0)
        model_free(m);
    return 0;
}
