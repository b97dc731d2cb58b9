/* cmd_grid_report.c - `mnistd grid-report NAME`: the table of a grid sweep
 * read back from the store, one row per version of NAME trained with
 * `mnistd train --grid-index` (its meta's "grid"), however many machines
 * trained them: rate, activation, epochs, time, accuracies, and the
 * version; the points not trained yet, and the best by test accuracy.
 * Every version is loaded (and so checked) as the server would. */
#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model_file.h"
#include "options.h"

#define GRID_ROWS_MAX 1024 /* versions of one name read; more are refused */

typedef struct {
    int index, points, version, epochs;
    double learning_rate, seconds, best_train_accuracy, test_accuracy;
    char activation[16];
} Row;

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* The grid point of NAME/vN.mnm into row: 1, 0 when it is no grid point,
 * -1 when the file does not load (reported). */
static int read_row(const CliEnv *env, const char *name, int version, Row *row)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/v%d.mnm", env->models_dir, name, version);
    Model *m = NULL;
    MnError err = {0};
    if (model_load(path, &env->limits, &m, &err)) {
        fprintf(stderr, "mnistd grid-report: %s\n", err.msg);
        return -1;
    }
    cJSON *meta = m->meta_json ? cJSON_Parse(m->meta_json) : NULL;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(meta, "grid");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(g, "activation");
    int found = cJSON_IsObject(g) && cJSON_IsString(act);
    if (found) {
        *row = (Row){.index = (int)num(g, "index"), .points = (int)num(g, "points"),
                     .version = version, .epochs = (int)num(meta, "epochs"),
                     .learning_rate = num(g, "learning_rate"), .seconds = num(meta, "seconds"),
                     .best_train_accuracy = num(meta, "best_train_accuracy"),
                     .test_accuracy = num(cJSON_GetObjectItemCaseSensitive(meta, "test"),
                                          "accuracy")};
        snprintf(row->activation, sizeof row->activation, "%s", act->valuestring);
    }
    cJSON_Delete(meta);
    model_free(m);
    return found;
}

static int by_index(const void *a, const void *b)
{
    const Row *x = a, *y = b;
    return x->index != y->index ? (x->index > y->index) - (x->index < y->index)
                                : (x->version > y->version) - (x->version < y->version);
}

/* Every version of name that is a grid point, sorted by index then version. */
static int read_rows(const CliEnv *env, const char *name, Row *rows, int *n)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", env->models_dir, name);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "mnistd grid-report: no model \"%s\" in %s\n", name, env->models_dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    *n = 0;
    while (rc == 0 && (e = readdir(d))) {
        int v, end = 0;
        if (sscanf(e->d_name, "v%d.mnm%n", &v, &end) != 1 || end == 0 || e->d_name[end])
            continue; /* temporary files and anything else */
        if (*n == GRID_ROWS_MAX) {
            fprintf(stderr, "mnistd grid-report: %s has more than %d versions\n", name,
                    GRID_ROWS_MAX);
            rc = -1;
            break;
        }
        int found = read_row(env, name, v, &rows[*n]);
        rc = found < 0 ? -1 : 0;
        *n += found > 0;
    }
    closedir(d);
    qsort(rows, (size_t)*n, sizeof *rows, by_index);
    return rc;
}

/* The indices 0..points-1 no row has, into out (room for points); how many. */
static int missing_points(const Row *rows, int n, int points, int *out)
{
    int k = 0;
    for (int p = 0, i = 0; p < points; p++) {
        while (i < n && rows[i].index < p)
            i++;
        if (i == n || rows[i].index != p)
            out[k++] = p;
    }
    return k;
}

static void print_json(const char *name, int points, const Row *rows, int n, int best,
                       const int *missing, int n_missing)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "points", points);
    cJSON *list = cJSON_AddArrayToObject(o, "rows");
    for (int i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "index", rows[i].index);
        cJSON_AddNumberToObject(r, "learning_rate", rows[i].learning_rate);
        cJSON_AddStringToObject(r, "activation", rows[i].activation);
        cJSON_AddNumberToObject(r, "epochs", rows[i].epochs);
        cJSON_AddNumberToObject(r, "seconds", rows[i].seconds);
        cJSON_AddNumberToObject(r, "best_train_accuracy", rows[i].best_train_accuracy);
        cJSON_AddNumberToObject(r, "test_accuracy", rows[i].test_accuracy);
        cJSON_AddNumberToObject(r, "version", rows[i].version);
        cJSON_AddItemToArray(list, r);
    }
    cJSON_AddItemToObject(o, "missing", cJSON_CreateIntArray(missing, n_missing));
    cJSON_AddNumberToObject(o, "best_version", rows[best].version);
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
}

static void print_table(const char *name, int points, const Row *rows, int n, int best,
                        const int *missing, int n_missing)
{
    printf("grid of %s: %d points, %d versions trained\n\n", name, points, n);
    printf("%5s  %13s  %-10s  %6s  %8s  %14s  %13s  %7s\n", "index", "learning_rate",
           "activation", "epochs", "seconds", "best_train_acc", "test_accuracy", "version");
    for (int i = 0; i < n; i++)
        printf("%5d  %13.6g  %-10s  %6d  %8.2f  %14.4f  %13.4f  %7d\n", rows[i].index,
               rows[i].learning_rate, rows[i].activation, rows[i].epochs, rows[i].seconds,
               rows[i].best_train_accuracy, rows[i].test_accuracy, rows[i].version);
    printf("\nnot trained yet:");
    for (int k = 0; k < n_missing; k++)
        printf(" %d", missing[k]);
    printf("%s\n", n_missing ? "" : " none");
    printf("best: index %d (learning_rate %g, %s), test accuracy %.4f, version %d\n",
           rows[best].index, rows[best].learning_rate, rows[best].activation,
           rows[best].test_accuracy, rows[best].version);
}

int cmd_grid_report(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    const char *name = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "grid-report");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-' || name) {
            fprintf(stderr, "mnistd grid-report: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        } else {
            name = argv[i];
        }
    }
    if (!name || strchr(name, '/') || name[0] == '.') {
        fprintf(stderr, "usage: mnistd grid-report NAME [--models DIR] [--json]\n");
        return 2;
    }
    Row *rows = malloc(GRID_ROWS_MAX * sizeof *rows);
    int n = 0;
    if (!rows || read_rows(&env, name, rows, &n)) {
        free(rows);
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "mnistd grid-report: no version of \"%s\" was trained with "
                        "`mnistd train --grid-index`\n", name);
        free(rows);
        return 1;
    }
    int points = 0, best = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].points > points && rows[i].points <= SPEC_GRID_MAX * SPEC_GRID_MAX)
            points = rows[i].points;
        if (rows[i].test_accuracy > rows[best].test_accuracy)
            best = i;
    }
    int missing[SPEC_GRID_MAX * SPEC_GRID_MAX];
    int n_missing = missing_points(rows, n, points, missing);
    if (json)
        print_json(name, points, rows, n, best, missing, n_missing);
    else
        print_table(name, points, rows, n, best, missing, n_missing);
    free(rows);
    return 0;
}
