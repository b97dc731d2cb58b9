/* model_file.c - the .mnm format (see model_file.h): a JSON header that a
 * person can read with `head -c`, raw float32 LE weights, a CRC32 over all.
 * Loading checks, in order: size, magic, version, header length, CRC,
 * header JSON, spec, parameter count against the bytes present. */
#include "model_file.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char MAGIC[8] = {'M', 'N', 'I', 'S', 'T', 'D', 'M', '\0'};

bool model_file_has_magic(const void *buf, size_t len)
{
    return len >= sizeof MAGIC && memcmp(buf, MAGIC, sizeof MAGIC) == 0;
}
#define PREAMBLE 16 /* magic, version, header length */
#define HEADER_MAX ((size_t)64 << 20)

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static cJSON *header_json(const Model *m)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "format", "mnistd-model");
    cJSON_AddItemToObject(h, "spec", spec_to_json(&m->spec));
    cJSON_AddNumberToObject(h, "n_params", (double)m->n_params);
    cJSON_AddNumberToObject(h, "n_state", (double)m->n_state);
    cJSON *classes = cJSON_AddArrayToObject(h, "classes");
    for (int c = 0; c < m->n_classes; c++)
        cJSON_AddItemToArray(classes, cJSON_CreateString(m->class_names[c]));
    cJSON *pre = cJSON_AddObjectToObject(h, "preprocess");
    size_t d = shape_numel(m->spec.input);
    if (m->input_mean) {
        cJSON_AddStringToObject(pre, "mode", "standardize");
        cJSON_AddItemToObject(pre, "mean", cJSON_CreateFloatArray(m->input_mean, (int)d));
        cJSON_AddItemToObject(pre, "std", cJSON_CreateFloatArray(m->input_std, (int)d));
    } else {
        cJSON_AddStringToObject(pre, "mode", "scale");
    }
    cJSON_AddStringToObject(h, "image_preprocess",
                            image_preprocess_name(m->spec.image_preprocess));
    cJSON *meta = m->meta_json ? cJSON_Parse(m->meta_json) : NULL;
    cJSON_AddItemToObject(h, "meta", meta ? meta : cJSON_CreateObject());
    return h;
}

int model_file_fsync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int model_write(const Model *m, FILE *f, const char *name, MnError *err)
{
    cJSON *h = header_json(m);
    char *text = h ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    if (!text)
        return mn_fail(err, MN_ENOMEM, "%s: out of memory building the header", name);
    size_t hlen = strlen(text);
    unsigned char pre[PREAMBLE], word[4];
    memcpy(pre, MAGIC, 8);
    put_u32(pre + 8, MODEL_FILE_VERSION);
    put_u32(pre + 12, (uint32_t)hlen);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, pre, PREAMBLE);
    crc = crc32(crc, (const Bytef *)text, (uInt)hlen);
    const char *op = "write";
    if (fwrite(pre, 1, PREAMBLE, f) != PREAMBLE || fwrite(text, 1, hlen, f) != hlen)
        goto werr;
    for (size_t i = 0; i < m->n_params + m->n_state; i++) { /* little-endian whatever the host */
        uint32_t bits;
        memcpy(&bits, i < m->n_params ? &m->params[i] : &m->state[i - m->n_params], 4);
        put_u32(word, bits);
        crc = crc32(crc, word, 4);
        if (fwrite(word, 1, 4, f) != 4)
            goto werr;
    }
    put_u32(word, (uint32_t)crc);
    if (fwrite(word, 1, 4, f) != 4)
        goto werr;
    op = "fflush";
    if (fflush(f))
        goto werr;
    op = "fsync";
    if (fsync(fileno(f)))
        goto werr;
    free(text);
    return 0;
werr:
    free(text);
    return mn_fail(err, MN_EIO, "%s: %s failed while saving: %s", name, op, strerror(errno));
}

int model_save(const Model *m, const char *path, MnError *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return mn_fail(err, MN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    /* Locked until renamed: a store opening meanwhile sees a live writer and
     * leaves the file alone (store.c removes only unlocked leftovers). */
    flock(fileno(f), LOCK_EX);
    int rc = model_write(m, f, path, err);
    /* Rename only what is on the disk: readers see the old file or the whole new one. */
    if (rc == 0 && rename(tmp, path))
        rc = mn_fail(err, MN_EIO, "%s: rename failed while saving: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    fclose(f); /* flushed and fsynced: nothing left to fail */
    if (rc == 0)
        model_file_fsync_dir(path);
    return rc;
}

static int float_array(const cJSON *a, size_t n, float **out, const char *what, MnError *err)
{
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
        return mn_fail(err, MN_ECORRUPT, "header: preprocess.%s must be %zu numbers", what, n);
    float *v = malloc(n * sizeof *v);
    if (!v)
        return mn_fail(err, MN_ENOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *it = a->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it)) {
            free(v);
            return mn_fail(err, MN_ECORRUPT, "header: preprocess.%s[%zu] is not a number", what,
                           i);
        }
        v[i] = (float)it->valuedouble;
    }
    *out = v;
    return 0;
}

static int model_from_header(const cJSON *h, uint32_t version, const SpecLimits *lim,
                             Model **out, MnError *err)
{
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(h, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "mnistd-model"))
        return mn_fail(err, MN_ECORRUPT, "header: not an mnistd model");
    ModelSpec spec;
    int rc = spec_from_json(cJSON_GetObjectItemCaseSensitive(h, "spec"), lim, &spec, err);
    if (rc) {
        mn_wrap(err, "header spec");
        return rc == MN_ELIMIT ? rc : MN_ECORRUPT;
    }
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(h, "image_preprocess");
    int mode = cJSON_IsString(ip) ? image_preprocess_from_name(ip->valuestring) : -1;
    if (mode < 0)
        return mn_fail(err, MN_ECORRUPT, "header: image_preprocess missing or unknown");
    spec.image_preprocess = (ImagePreprocess)mode;
    spec.image_preprocess_set = true;
    Model *m;
    if ((rc = model_build(&spec, lim, &m, err))) {
        mn_wrap(err, "header spec");
        return rc == MN_ELIMIT ? rc : MN_ECORRUPT;
    }
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(h, "n_params");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(h, "n_state");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(h, "classes");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(h, "preprocess");
    const cJSON *pmode = cJSON_GetObjectItemCaseSensitive(pre, "mode");
    if (!cJSON_IsNumber(np) || np->valuedouble != (double)m->n_params)
        rc = mn_fail(err, MN_ECORRUPT, "header: n_params does not match the spec's %zu",
                     m->n_params);
    else if (version == 1 && m->n_state) /* version 1 knew no layer with state */
        rc = mn_fail(err, MN_ECORRUPT, "header: a version 1 file cannot hold %zu moving statistics",
                     m->n_state);
    else if (version > 1 && (!cJSON_IsNumber(ns) || ns->valuedouble != (double)m->n_state))
        rc = mn_fail(err, MN_ECORRUPT, "header: n_state does not match the spec's %zu",
                     m->n_state);
    else if (!cJSON_IsArray(classes) || cJSON_GetArraySize(classes) != m->n_classes)
        rc = mn_fail(err, MN_ECORRUPT, "header: classes must name the %d outputs", m->n_classes);
    else if (!cJSON_IsString(pmode))
        rc = mn_fail(err, MN_ECORRUPT, "header: preprocess.mode missing");
    for (int c = 0; rc == 0 && c < m->n_classes; c++) {
        const cJSON *name = cJSON_GetArrayItem(classes, c);
        if (!cJSON_IsString(name))
            rc = mn_fail(err, MN_ECORRUPT, "header: classes[%d] is not a string", c);
        else
            snprintf(m->class_names[c], MODEL_CLASS_NAME_MAX, "%s", name->valuestring);
    }
    if (rc == 0 && strcmp(pmode->valuestring, "standardize") == 0) {
        size_t d = shape_numel(m->spec.input);
        rc = float_array(cJSON_GetObjectItemCaseSensitive(pre, "mean"), d, &m->input_mean, "mean",
                         err);
        if (rc == 0)
            rc = float_array(cJSON_GetObjectItemCaseSensitive(pre, "std"), d, &m->input_std,
                             "std", err);
        for (size_t i = 0; rc == 0 && i < d; i++)
            if (!(m->input_std[i] > 0.0f))
                rc = mn_fail(err, MN_ECORRUPT, "header: preprocess.std[%zu] is not positive", i);
    } else if (rc == 0 && strcmp(pmode->valuestring, "scale") != 0) {
        rc = mn_fail(err, MN_ECORRUPT, "header: unknown preprocess.mode");
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "meta");
    if (rc == 0 && cJSON_IsObject(meta) && !(m->meta_json = cJSON_PrintUnformatted(meta)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    if (rc) {
        model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int model_load_buffer(const void *buf, size_t len, const char *name, const SpecLimits *lim,
                      Model **out, MnError *err)
{
    const unsigned char *p = buf;
    int rc;
    *out = NULL;
    if (len < PREAMBLE + 4)
        return mn_fail(err, MN_ECORRUPT, "%s: truncated (%zu bytes)", name, len);
    if (memcmp(p, MAGIC, 8) != 0)
        return mn_fail(err, MN_ECORRUPT, "%s: not an mnistd model file (bad magic)", name);
    uint32_t version = get_u32(p + 8), hlen = get_u32(p + 12);
    if (version < MODEL_FILE_VERSION_OLDEST || version > MODEL_FILE_VERSION)
        return mn_fail(err, MN_ECORRUPT,
                       "%s: format version %u, this mnistd reads versions %d to %d", name,
                       version, MODEL_FILE_VERSION_OLDEST, MODEL_FILE_VERSION);
    if (hlen > HEADER_MAX || hlen > len - PREAMBLE - 4)
        return mn_fail(err, MN_ECORRUPT, "%s: truncated (header of %u bytes, file of %zu)", name,
                       hlen, len);
    uint32_t stored = get_u32(p + len - 4);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), p, (uInt)(len - 4));
    if ((uint32_t)crc != stored)
        return mn_fail(err, MN_ECORRUPT, "%s: checksum mismatch (truncated or corrupted)", name);
    const char *end = NULL;
    cJSON *h = cJSON_ParseWithLengthOpts((const char *)p + PREAMBLE, hlen, &end, false);
    if (!h)
        return mn_fail(err, MN_ECORRUPT, "%s: header is not valid JSON", name);
    Model *m = NULL;
    if ((rc = model_from_header(h, version, lim, &m, err))) {
        cJSON_Delete(h);
        mn_wrap(err, "%s", name);
        return rc;
    }
    cJSON_Delete(h);
    size_t weights = len - PREAMBLE - hlen - 4, values = m->n_params + m->n_state;
    if (weights != values * 4) {
        rc = mn_fail(err, MN_ECORRUPT, "%s: %zu bytes of weights, the spec needs %zu", name,
                     weights, values * 4);
        model_free(m);
        return rc;
    }
    const unsigned char *w = p + PREAMBLE + hlen;
    for (size_t i = 0; i < values; i++) {
        uint32_t bits = get_u32(w + 4 * i);
        memcpy(i < m->n_params ? &m->params[i] : &m->state[i - m->n_params], &bits, 4);
    }
    *out = m;
    return 0;
}

int model_load(const char *path, const SpecLimits *lim, Model **out, MnError *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mn_fail(err, errno == ENOENT ? MN_ENOTFOUND : MN_EIO, "%s: %s", path,
                       strerror(errno));
    struct stat st;
    /* parameters and moving statistics together are within max_params (model_build) */
    size_t max = lim->max_params * sizeof(float) + HEADER_MAX + PREAMBLE + 4;
    if (fstat(fileno(f), &st) || st.st_size < 0 || (size_t)st.st_size > max) {
        fclose(f);
        return mn_fail(err, MN_ELIMIT, "%s: larger than a model within the limits", path);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return mn_fail(err, MN_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    int rc = got == len ? model_load_buffer(buf, len, path, lim, out, err)
                        : mn_fail(err, MN_EIO, "%s: read error", path);
    free(buf);
    return rc;
}
