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
#include "grid_report.h"
#include "model_file.h"
#include "options.h"

/* Every version of name on disk, loaded (and so checked) as the server
 * would, into g; a version that does not load is reported, not skipped. */
static int read_rows(const CliEnv *env, const char *name, GridReport *g)
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
    while (rc == 0 && (e = readdir(d))) {
        int v, end = 0;
        if (sscanf(e->d_name, "v%d.mnm%n", &v, &end) != 1 || end == 0 || e->d_name[end])
            continue; /* temporary files and anything else */
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        Model *m = NULL;
        MnError err = {0};
        rc = model_load(path, &env->limits, &m, &err);
        if (rc == 0)
            rc = grid_report_add(g, name, m->meta_json, v, &err) < 0 ? -1 : 0;
        if (rc)
            fprintf(stderr, "mnistd grid-report: %s\n", err.msg);
        model_free(m);
    }
    closedir(d);
    return rc;
}

static void print_table(const char *name, const GridReport *g)
{
    const GridRow *rows = g->rows, *best = &g->rows[g->best];
    int n = g->n;
    printf("grid of %s: %d points, %d versions trained\n\n", name, g->points, n);
    printf("%5s  %13s  %-10s  %6s  %8s  %14s  %13s  %7s\n", "index", "learning_rate",
           "activation", "epochs", "seconds", "best_train_acc", "test_accuracy", "version");
    for (int i = 0; i < n; i++)
        printf("%5d  %13.6g  %-10s  %6d  %8.2f  %14.4f  %13.4f  %7d\n", rows[i].index,
               rows[i].learning_rate, rows[i].activation, rows[i].epochs, rows[i].seconds,
               rows[i].best_train_accuracy, rows[i].test_accuracy, rows[i].version);
    printf("\nnot trained yet:");
    for (int k = 0; k < g->n_missing; k++)
        printf(" %d", g->missing[k]);
    printf("%s\n", g->n_missing ? "" : " none");
    printf("best: index %d (learning_rate %g, %s), test accuracy %.4f, version %d\n",
           best->index, best->learning_rate, best->activation, best->test_accuracy,
           best->version);
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
    GridReport *g = grid_report_new();
    MnError err = {0};
    int rc = !g || read_rows(&env, name, g) ? 1 : 0;
    if (rc == 0 && grid_report_finish(g, name, &err)) {
        fprintf(stderr, "mnistd grid-report: %s\n", err.msg);
        rc = 1;
    }
    if (rc == 0 && json) {
        cJSON *o = grid_report_json(g, name);
        char *text = cJSON_PrintUnformatted(o);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
    } else if (rc == 0) {
        print_table(name, g);
    }
    grid_report_free(g);
    return rc;
}
