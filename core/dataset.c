/* dataset.c - datasets on disk (DATA_DIR/NAME/dataset.json naming classes,
 * image preprocessing and the IDX files) loaded into memory, and the
 * standardisation statistics that preprocessing "standardize" keeps. */
#include "dataset.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "idx.h"

#define DATASET_MAX_BYTES ((size_t)512 << 20)
#define DESCRIPTOR_MAX_BYTES (64 << 10)

static char *read_small_file(const char *path, size_t max, MnError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mn_fail(err, errno == ENOENT ? MN_ENOTFOUND : MN_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n > max) {
        free(buf);
        mn_fail(err, MN_ELIMIT, "%s: larger than %zu bytes", path, max);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static const char *split_file(const cJSON *desc, const char *split, const char *kind)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(desc, split);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, kind);
    if (!cJSON_IsString(f) || strchr(f->valuestring, '/') || f->valuestring[0] == '.')
        return NULL; /* files live in the dataset's own directory */
    return f->valuestring;
}

static int read_descriptor(const char *dir, const char *name, Dataset *d, cJSON **out,
                           MnError *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/dataset.json", dir, name);
    MnError inner = {0};
    char *text = read_small_file(path, DESCRIPTOR_MAX_BYTES, &inner);
    if (!text) {
        if (inner.code == MN_ENOTFOUND)
            return mn_fail(err, MN_ENOTFOUND, "dataset \"%s\" not found in %s: run `make data`",
                           name, dir);
        return mn_fail(err, inner.code, "%s", inner.msg);
    }
    cJSON *desc = cJSON_Parse(text);
    free(text);
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(desc, "classes");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(desc, "image_preprocess");
    int mode = cJSON_IsString(pre) ? image_preprocess_from_name(pre->valuestring) : -1;
    int n = cJSON_GetArraySize(classes);
    if (!desc || !cJSON_IsArray(classes) || n < 2 || n > DATASET_MAX_CLASSES || mode < 0) {
        cJSON_Delete(desc);
        return mn_fail(err, MN_ECORRUPT,
                       "%s: needs \"classes\" (2 to %d names) and \"image_preprocess\"", path,
                       DATASET_MAX_CLASSES);
    }
    int c = 0;
    for (const cJSON *it = classes->child; it; it = it->next, c++) {
        if (!cJSON_IsString(it)) {
            cJSON_Delete(desc);
            return mn_fail(err, MN_ECORRUPT, "%s: classes[%d] is not a string", path, c);
        }
        snprintf(d->class_names[c], sizeof d->class_names[c], "%s", it->valuestring);
    }
    d->n_classes = n;
    d->image_preprocess = (ImagePreprocess)mode;
    snprintf(d->name, sizeof d->name, "%s", name);
    *out = desc;
    return 0;
}

int dataset_load(const char *data_dir, const char *name, DatasetSplit split, Dataset *out,
                 MnError *err)
{
    memset(out, 0, sizeof *out);
    if (!name[0] || strchr(name, '/') || name[0] == '.')
        return mn_fail(err, MN_EINVAL, "dataset name \"%s\" is not allowed", name);
    cJSON *desc = NULL;
    int rc = read_descriptor(data_dir, name, out, &desc, err);
    if (rc)
        return rc;
    const char *which = split == SPLIT_TRAIN ? "train" : "test";
    const char *images = split_file(desc, which, "images");
    const char *labels = split_file(desc, which, "labels");
    char ipath[4096], lpath[4096];
    IdxArray ia = {0}, la = {0};
    if (!images || !labels) {
        rc = mn_fail(err, MN_ECORRUPT, "%s/%s/dataset.json: %s.images and %s.labels must be file names",
                     data_dir, name, which, which);
        goto done;
    }
    snprintf(ipath, sizeof ipath, "%s/%s/%s", data_dir, name, images);
    snprintf(lpath, sizeof lpath, "%s/%s/%s", data_dir, name, labels);
    if ((rc = idx_load(ipath, DATASET_MAX_BYTES, &ia, err)) ||
        (rc = idx_load(lpath, DATASET_MAX_BYTES, &la, err)))
        goto done;
    if (ia.ndims != 3 || ia.dims[1] == 0 || ia.dims[2] == 0) {
        rc = mn_fail(err, MN_ECORRUPT, "%s: images must be (n, height, width)", ipath);
        goto done;
    }
    if (la.ndims != 1 || la.dims[0] != ia.dims[0]) {
        rc = mn_fail(err, MN_ECORRUPT, "%s: %u labels for %u images", lpath,
                     la.ndims == 1 ? la.dims[0] : 0, ia.dims[0]);
        goto done;
    }
    for (uint32_t i = 0; i < la.dims[0]; i++)
        if (la.data[i] >= out->n_classes) {
            rc = mn_fail(err, MN_ECORRUPT, "%s: label %d at index %u, but there are %d classes",
                         lpath, la.data[i], i, out->n_classes);
            goto done;
        }
    out->n = (int)ia.dims[0];
    out->shape = shape_make((int)ia.dims[1], (int)ia.dims[2], 1);
    out->images = ia.data;
    out->labels = la.data;
    ia.data = la.data = NULL;
done:
    idx_free(&ia);
    idx_free(&la);
    cJSON_Delete(desc);
    return rc;
}

/* The descriptor of a dataset named by a client, the name checked first. */
static int read_named_descriptor(const char *dir, const char *name, Dataset *d, cJSON **out,
                                 MnError *err)
{
    memset(d, 0, sizeof *d);
    if (!name[0] || strchr(name, '/') || name[0] == '.')
        return mn_fail(err, MN_EINVAL, "dataset name \"%s\" is not allowed", name);
    return read_descriptor(dir, name, d, out, err);
}

int dataset_class_count(const char *data_dir, const char *name, int *n_classes, MnError *err)
{
    Dataset d;
    cJSON *desc = NULL;
    int rc = read_named_descriptor(data_dir, name, &d, &desc, err);
    if (rc == 0)
        *n_classes = d.n_classes;
    cJSON_Delete(desc);
    return rc;
}

int dataset_count(const char *data_dir, const char *name, DatasetSplit split, int *n,
                  MnError *err)
{
    Dataset d;
    cJSON *desc = NULL;
    int rc = read_named_descriptor(data_dir, name, &d, &desc, err);
    if (rc)
        return rc;
    const char *labels = split_file(desc, split == SPLIT_TRAIN ? "train" : "test", "labels");
    char path[4096];
    IdxArray la = {0};
    if (!labels)
        rc = mn_fail(err, MN_ECORRUPT, "%s/%s/dataset.json: no labels file", data_dir, name);
    else {
        snprintf(path, sizeof path, "%s/%s/%s", data_dir, name, labels);
        if ((rc = idx_load(path, DATASET_MAX_BYTES, &la, err)) == 0)
            *n = (int)la.dims[0];
    }
    idx_free(&la);
    cJSON_Delete(desc);
    return rc;
}

void dataset_free(Dataset *d)
{
    free(d->images);
    free(d->labels);
    d->images = d->labels = NULL;
    d->n = 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **dataset_list(const char *data_dir)
{
    DIR *dir = opendir(data_dir);
    size_t n = 0, cap = 8;
    char **names = calloc(cap + 1, sizeof *names);
    if (!dir || !names) {
        if (dir)
            closedir(dir);
        return names;
    }
    struct dirent *e;
    while ((e = readdir(dir))) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s/dataset.json", data_dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (n == cap) {
            char **bigger = realloc(names, (cap * 2 + 1) * sizeof *names);
            if (!bigger)
                break;
            names = bigger;
            cap *= 2;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
        names[n] = NULL;
    }
    closedir(dir);
    qsort(names, n, sizeof *names, compare_names);
    return names;
}

void dataset_list_free(char **names)
{
    for (char **p = names; p && *p; p++)
        free(*p);
    free(names);
}

void dataset_standardize_stats(const Dataset *d, int n, float *mean, float *std)
{
    size_t numel = shape_numel(d->shape);
    for (size_t j = 0; j < numel; j++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < n; i++) {
            double v = d->images[(size_t)i * numel + j];
            sum += v;
            sq += v * v;
        }
        double mu = n ? sum / n : 0.0;
        double var = n ? sq / n - mu * mu : 0.0;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        mean[j] = (float)mu;
        std[j] = sd > 1e-12 ? (float)sd : 1.0f; /* sklearn: a constant pixel keeps scale 1 */
    }
}
