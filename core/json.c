/* json.c - strict parsing on top of cJSON (see json.h). */
/* strfromf (ISO/IEC TS 18661-1, in glibc since 2.25) */
#define __STDC_WANT_IEC_60559_BFP_EXT__ 1
#include "json.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t json_utf8_char(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    size_t k = (u[0] & 0xe0) == 0xc0 ? 2 : (u[0] & 0xf0) == 0xe0 ? 3 : (u[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (k == 0 || n < k)
        return 0;
    uint32_t v = u[0] & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (u[i] & 0x3f);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000}; /* no overlongs */
    if (v < least[k] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return k;
}

/* RFC 8259's white space: the only bytes below 0x20 JSON text may hold raw. */
static bool json_is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool json_byte_allowed(char c) { return (unsigned char)c >= 0x20 || json_is_space(c); }

/* The offset of a \u0000 escape inside a string, or len: cJSON decodes it
 * to a NUL that ends the C string, and the rest of the value would vanish
 * ("m\u0000../x" read as "m"). */
static size_t escaped_nul(const char *text, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
        } else if (text[i] == '"') {
            in_string = false;
        } else if (text[i] == '\\' && i + 1 < len) {
            if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0)
                return i;
            i++; /* the escaped character, a quote perhaps */
        }
    }
    return len;
}

cJSON *json_parse_strict(const char *text, size_t len, const char *what, MnError *err)
{
    /* RFC 8259: JSON between systems is UTF-8. cJSON passes any byte
     * through, and a message naming a bad key would echo it. */
    for (size_t i = 0, k; i < len; i += k)
        if (!(k = json_utf8_char(text + i, len - i))) {
            mn_fail(err, MN_EINVAL, "%s is not valid UTF-8 (byte %zu)", what, i);
            return NULL;
        } else if (!json_byte_allowed(text[i])) {
            /* cJSON skips every byte up to 0x20 as white space and keeps raw
             * control bytes in strings: a NUL would hide what follows it. */
            mn_fail(err, MN_EINVAL, "%s holds %s at byte %zu (JSON allows none outside escapes)",
                    what, text[i] ? "a control byte" : "a NUL byte", i);
            return NULL;
        }
    size_t nul = escaped_nul(text, len);
    if (nul < len) {
        mn_fail(err, MN_EINVAL, "%s holds an escaped NUL (\\u0000) at byte %zu", what, nul);
        return NULL;
    }
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
        if (!json_is_space(*p)) {
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

/* The longest %.9g of a float, "-1.17549435e-38", and its NUL. */
#define FLOAT_TEXT_MAX 16

/* v as %.9g (0 for NaN and Inf) into out[FLOAT_TEXT_MAX]; its length. */
static size_t float_text(char *out, float v)
{
    /* printf's %.9g without printf's format parsing: a third of its
     * cost on an answer's ten probabilities */
    return (size_t)strfromf(out, FLOAT_TEXT_MAX, "%.9g", isfinite(v) ? v : 0.0f);
}

cJSON *json_float_array(const float *v, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        char num[FLOAT_TEXT_MAX];
        float_text(num, v[i]);
        cJSON_AddItemToArray(arr, cJSON_CreateRaw(num));
    }
    return arr;
}

cJSON *json_float_array_raw(const float *v, int n)
{
    /* "[", each number and a comma (the last one becomes "]"), the NUL */
    size_t cap = 3 + (size_t)n * FLOAT_TEXT_MAX;
    char small[3 + 16 * FLOAT_TEXT_MAX]; /* an answer's probabilities */
    char *text = cap <= sizeof small ? small : malloc(cap);
    if (!text)
        return NULL;
    size_t len = 0;
    text[len++] = '[';
    for (int i = 0; i < n; i++) {
        len += float_text(text + len, v[i]);
        text[len++] = ',';
    }
    len -= n > 0;
    text[len++] = ']';
    text[len] = '\0';
    cJSON *raw = cJSON_CreateRaw(text);
    if (text != small)
        free(text);
    return raw;
}

cJSON *json_int_raw(long v)
{
    char num[24];
    snprintf(num, sizeof num, "%ld", v);
    return cJSON_CreateRaw(num);
}

cJSON *json_float(float v)
{
    char num[32];
    v = isfinite(v) ? v : 0.0f;
    for (int digits = 1; digits <= 9; digits++) { /* 9 always gives a float back */
        snprintf(num, sizeof num, "%.*g", digits, v);
        if (strtof(num, NULL) == v)
            break;
    }
    return cJSON_CreateNumber(strtod(num, NULL)); /* a number: read back as one */
}
