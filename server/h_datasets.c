/* h_datasets.c - GET /datasets (names, class names, sizes) and
 * GET /datasets/{name}/samples/{index}?split=test|train: the sample as a
 * PNG with its label in X-Label headers, or ?format=json for pixels and
 * label. The page's CORRECT/INCORRECT gallery draws from here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_cache.h"
#include "image.h"
#include "respond.h"

enum MHD_Result h_datasets_list(Request *r)
{
    char **names = dataset_list(r->srv->cfg.data_dir);
    cJSON *arr = cJSON_CreateArray();
    for (char **p = names; p && *p; p++) {
        MnError err = {0};
        int n_train = 0, n_test = 0;
        const Dataset *test = dataset_cache_get(r->srv->datasets, *p, SPLIT_TEST, &err);
        if (!test || dataset_count(r->srv->cfg.data_dir, *p, SPLIT_TRAIN, &n_train, &err))
            continue; /* listed only when usable */
        n_test = test->n;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", *p);
        cJSON_AddNumberToObject(o, "train_samples", n_train);
        cJSON_AddNumberToObject(o, "test_samples", n_test);
        int shape[3] = {test->shape.h, test->shape.w, test->shape.c};
        cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shape, 3));
        cJSON_AddStringToObject(o, "image_preprocess", image_preprocess_name(test->image_preprocess));
        cJSON *classes = cJSON_AddArrayToObject(o, "classes");
        for (int c = 0; c < test->n_classes; c++)
            cJSON_AddItemToArray(classes, cJSON_CreateString(test->class_names[c]));
        cJSON_AddItemToArray(arr, o);
    }
    dataset_list_free(names);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "datasets", arr);
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_dataset_sample(Request *r)
{
    const char *split_arg = request_arg(r, "split"), *format = request_arg(r, "format");
    DatasetSplit split = SPLIT_TEST;
    if (split_arg && !strcmp(split_arg, "train"))
        split = SPLIT_TRAIN;
    else if (split_arg && strcmp(split_arg, "test"))
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "split must be test or train, not \"%.16s\"", split_arg);
    MnError err = {0};
    const Dataset *d = dataset_cache_get(r->srv->datasets, r->params[0], split, &err);
    if (!d)
        return respond_mn_error(r, &err);
    char *end;
    long i = strtol(r->params[1], &end, 10);
    if (*end || i < 0 || i >= d->n)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                             "sample index must be an integer from 0 to %d", d->n - 1);
    size_t numel = shape_numel(d->shape);
    const uint8_t *px = d->images + (size_t)i * numel;
    int label = d->labels[i];
    if (format && !strcmp(format, "json")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", d->name);
        cJSON_AddStringToObject(o, "split", split == SPLIT_TEST ? "test" : "train");
        cJSON_AddNumberToObject(o, "index", (double)i);
        cJSON_AddNumberToObject(o, "label", label);
        cJSON_AddStringToObject(o, "label_name", d->class_names[label]);
        int shape[3] = {d->shape.h, d->shape.w, d->shape.c};
        cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shape, 3));
        cJSON *pixels = cJSON_AddArrayToObject(o, "pixels");
        for (size_t k = 0; k < numel; k++)
            cJSON_AddItemToArray(pixels, cJSON_CreateNumber(px[k]));
        return respond_json(r, MHD_HTTP_OK, o);
    }
    if (format && strcmp(format, "png"))
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "format must be png or json, not \"%.16s\"", format);
    uint8_t *png;
    size_t len;
    if (image_encode_png_gray8(px, d->shape.h, d->shape.w, &png, &len, &err))
        return respond_mn_error(r, &err);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, png, MHD_RESPMEM_MUST_FREE);
    char label_text[16];
    snprintf(label_text, sizeof label_text, "%d", label);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "image/png");
    MHD_add_response_header(resp, "X-Label", label_text);
    MHD_add_response_header(resp, "X-Label-Name", d->class_names[label]);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=86400");
    return respond_queue(r, MHD_HTTP_OK, resp);
}
