/* json.h - the strict JSON reading every input shares: one document and
 * nothing after it, and objects with only the keys we know. */
#ifndef MN_JSON_H
#define MN_JSON_H

#include <stddef.h>

#include "error.h"

struct cJSON;

/* Parses len bytes of UTF-8 as one JSON document; trailing bytes other
 * than white space (space, tab, LF, CR), raw NULs or other control bytes
 * anywhere, and \u0000 in a string (a C string ends there), are refused. Returns NULL and fills err (naming what) on failure. */
struct cJSON *json_parse_strict(const char *text, size_t len, const char *what, MnError *err);

/* The length (1 to 4) of the UTF-8 character at s, n bytes left; 0 when
 * the bytes there are not UTF-8 (RFC 3629: no overlong forms, surrogates or
 * code points past U+10FFFF). json_parse_strict refuses text that is not. */
size_t json_utf8_char(const char *s, size_t n);

/* Refuses keys outside the NULL-terminated allowed list, and duplicates;
 * where prefixes the message ("layers[2]"), empty for the top level. */
int json_check_keys(const struct cJSON *obj, const char *where, const char *const *allowed,
                    MnError *err);

/* A JSON array of floats printed with the 9 significant digits that give
 * each float back exactly (not the 17 of its double). */
struct cJSON *json_float_array(const float *v, int n);
/* The same array as one raw item holding its text: two allocations, not
 * two an element, for answers that are printed and never read back. */
struct cJSON *json_float_array_raw(const float *v, int n);
/* An integer as a raw item of its digits: the text cJSON prints for the
 * number (|v| < 10^15), without the %1.15g and the sscanf that checks it
 * with which cJSON 1.7.15 prints every number (over half of printing a
 * prediction's answer went there). */
struct cJSON *json_int_raw(long v);
/* A float as the number item of the shortest decimal that gives it back
 * exactly: a spec's 0.99 is written 0.99, not its double's
 * 0.9900000095367432 (and, unlike a raw item, reads back as a number). */
struct cJSON *json_float(float v);

#endif
