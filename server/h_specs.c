/* h_specs.c - GET /specs: the training specs in --specs (the seed
 * notebooks' networks), parsed and checked, as presets for the page and for
 * anyone who wants to start from a known network. A file that does not
 * parse is skipped: a preset that cannot train is no preset. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "respond.h"

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum MHD_Result h_specs(Request *r)
{
    DIR *d = opendir(r->srv->cfg.specs_dir);
    char *names[256];
    int n = 0;
    struct dirent *e;
    while (d && n < 256 && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] != '.' && len > 5 && !strcmp(e->d_name + len - 5, ".json"))
            names[n++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof *names, compare_names);
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = (size_t)r->srv->cfg.max_params;
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", r->srv->cfg.specs_dir, names[i]);
        ModelSpec spec;
        MnError err = {0};
        if (names[i] && spec_load_file(path, &lim, &spec, &err) == 0)
            cJSON_AddItemToArray(arr, spec_to_json(&spec));
        free(names[i]);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "specs", arr);
    return respond_json(r, MHD_HTTP_OK, o);
}
