/* grid_report.c - see grid_report.h. Reads meta only: whoever loaded the
 * version (and so checked its file) hands its meta_json in. */
#include "grid_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

GridReport *grid_report_new(void)
{
    GridReport *g = calloc(1, sizeof *g);
    if (g && !(g->rows = malloc(GRID_REPORT_ROWS_MAX * sizeof *g->rows))) {
        free(g);
        return NULL;
    }
    return g;
}

void grid_report_free(GridReport *g)
{
    if (g)
        free(g->rows);
    free(g);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

int grid_report_add(GridReport *g, const char *name, const char *meta_json, int version,
                    MnError *err)
{
    cJSON *meta = meta_json ? cJSON_Parse(meta_json) : NULL;
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(meta, "grid");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(grid, "activation");
    int found = cJSON_IsObject(grid) && cJSON_IsString(act);
    if (found && g->n == GRID_REPORT_ROWS_MAX)
        found = mn_fail(err, MN_ELIMIT, "model \"%s\" has more than %d grid versions", name,
                        GRID_REPORT_ROWS_MAX);
    if (found > 0) {
        GridRow *row = &g->rows[g->n++];
        *row = (GridRow){.index = (int)num(grid, "index"), .points = (int)num(grid, "points"),
                         .version = version, .epochs = (int)num(meta, "epochs"),
                         .learning_rate = num(grid, "learning_rate"),
                         .seconds = num(meta, "seconds"),
                         .best_train_accuracy = num(meta, "best_train_accuracy"),
                         .test_accuracy = num(cJSON_GetObjectItemCaseSensitive(meta, "test"),
                                              "accuracy")};
        snprintf(row->activation, sizeof row->activation, "%s", act->valuestring);
    }
    cJSON_Delete(meta);
    return found;
}

static int by_index(const void *a, const void *b)
{
    const GridRow *x = a, *y = b;
    return x->index != y->index ? (x->index > y->index) - (x->index < y->index)
                                : (x->version > y->version) - (x->version < y->version);
}

int grid_report_finish(GridReport *g, const char *name, MnError *err)
{
    if (g->n == 0)
        return mn_fail(err, MN_ENOTFOUND, "no version of \"%s\" was trained with "
                       "`mnistd train --grid-index`", name);
    qsort(g->rows, (size_t)g->n, sizeof *g->rows, by_index);
    g->points = 0;
    g->best = 0;
    for (int i = 0; i < g->n; i++) {
        /* a meta claiming more points than any grid has is not believed */
        if (g->rows[i].points > g->points && g->rows[i].points <= SPEC_GRID_MAX * SPEC_GRID_MAX)
            g->points = g->rows[i].points;
        if (g->rows[i].test_accuracy > g->rows[g->best].test_accuracy)
            g->best = i;
    }
    g->n_missing = 0;
    for (int p = 0, i = 0; p < g->points; p++) {
        while (i < g->n && g->rows[i].index < p)
            i++;
        if (i == g->n || g->rows[i].index != p)
            g->missing[g->n_missing++] = p;
    }
    return 0;
}

cJSON *grid_report_json(const GridReport *g, const char *name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "points", g->points);
    cJSON *list = cJSON_AddArrayToObject(o, "rows");
    for (int i = 0; i < g->n; i++) {
        const GridRow *row = &g->rows[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "index", row->index);
        cJSON_AddNumberToObject(r, "learning_rate", row->learning_rate);
        cJSON_AddStringToObject(r, "activation", row->activation);
        cJSON_AddNumberToObject(r, "epochs", row->epochs);
        cJSON_AddNumberToObject(r, "seconds", row->seconds);
        cJSON_AddNumberToObject(r, "best_train_accuracy", row->best_train_accuracy);
        cJSON_AddNumberToObject(r, "test_accuracy", row->test_accuracy);
        cJSON_AddNumberToObject(r, "version", row->version);
        cJSON_AddItemToArray(list, r);
    }
    cJSON_AddItemToObject(o, "missing", cJSON_CreateIntArray(g->missing, g->n_missing));
    cJSON_AddNumberToObject(o, "best_version", g->rows[g->best].version);
    return o;
}
