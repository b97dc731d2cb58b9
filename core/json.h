/* json.h - the strict JSON reading every input shares: one document and
 * nothing after it, and objects with only the keys we know. */
#ifndef MN_JSON_H
#define MN_JSON_H

#include <stddef.h>

#include "error.h"

struct cJSON;

/* Parses len bytes as one JSON document; trailing bytes other than white
 * space are refused. Returns NULL and fills err (naming what) on failure. */
struct cJSON *json_parse_strict(const char *text, size_t len, const char *what, MnError *err);

/* Refuses keys outside the NULL-terminated allowed list, and duplicates;
 * where prefixes the message ("layers[2]"), empty for the top level. */
int json_check_keys(const struct cJSON *obj, const char *where, const char *const *allowed,
                    MnError *err);

/* A JSON array of floats printed with the 9 significant digits that give
 * each float back exactly (not the 17 of its double). */
struct cJSON *json_float_array(const float *v, int n);

#endif
