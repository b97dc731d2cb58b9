/* fuzz_backprop.c - libFuzzer target: the JSON that `mnistd backprop` and
 * POST /backprop take, through core/backprop.c (backprop_run_json). An
 * answer must be valid JSON (a failure aborts). */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backprop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL;
    MnError err = {0};
    if (backprop_run_json((const char *)data, size, &out, &err) == 0) {
        cJSON *j = cJSON_Parse(out);
        if (!j) {
            fprintf(stderr, "backprop answered invalid JSON:\n%s\n", out);
            abort();
        }
        cJSON_Delete(j);
    }
    free(out);
    return 0;
}
