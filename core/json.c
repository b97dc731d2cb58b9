/* json.c - strict parsing on top of cJSON (see json.h). */
#include "json.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

cJSON *json_parse_strict(const char *text, size_t len, const char *what, MnError *err)
{
    const char *end = NULL;
    /* The length-bounded parser never reads past len; cJSON_GetErrorPtr is
     * global, so the error position comes from end instead. */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        mn_fail(err, MN_EINVAL, "%s is not valid JSON (error near byte %zu)", what, at);
        return NULL;
    }
    for (const char *p = end; p < text + len; p++)
        if (!isspace((unsigned char)*p) && *p != '\0') {
            cJSON_Delete(root);
            mn_fail(err, MN_EINVAL, "%s: trailing bytes after the JSON document at byte %zu",
                    what, (size_t)(p - text));
            return NULL;
        }
    return root;
}

int json_check_keys(const cJSON *obj, const char *where, const char *const *allowed,
                    MnError *err)
{
    const char *sep = *where ? ": " : "";
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(it->string, *a) == 0;
        if (!ok)
            return mn_fail(err, MN_EINVAL, "%s%sunknown key \"%s\"", where, sep, it->string);
        for (const cJSON *dup = it->next; dup; dup = dup->next)
            if (strcmp(dup->string, it->string) == 0)
                return mn_fail(err, MN_EINVAL, "%s%sduplicate key \"%s\"", where, sep,
                               it->string);
    }
    return 0;
}

cJSON *json_float_array(const float *v, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        char num[32];
        snprintf(num, sizeof num, "%.9g", isfinite(v[i]) ? v[i] : 0.0f);
        cJSON_AddItemToArray(arr, cJSON_CreateRaw(num));
    }
    return arr;
}
