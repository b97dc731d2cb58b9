/* grid_report.h - the table of a grid sweep read back from a model's
 * versions: one row per version whose meta has "grid" (`mnistd train
 * --grid-index`), however many machines trained them, sorted by index then
 * version; the points not trained yet, and the best by test accuracy.
 * `mnistd grid-report` feeds it the versions' files, the server (GET
 * /models/{name}/grid) the versions it serves: one table, one JSON shape. */
#ifndef MN_GRID_REPORT_H
#define MN_GRID_REPORT_H

#include <cJSON.h>

#include "error.h"
#include "spec.h"

#define GRID_REPORT_ROWS_MAX 1024 /* versions of one name read; more are refused */

typedef struct {
    int index, points, version, epochs;
    double learning_rate, seconds, best_train_accuracy, test_accuracy;
    char activation[16];
} GridRow;

typedef struct {
    GridRow *rows;  /* n of them, room for GRID_REPORT_ROWS_MAX */
    int n;
    int points;     /* the grid's size, from its rows */
    int best;       /* the row with the highest test accuracy */
    int missing[SPEC_GRID_MAX * SPEC_GRID_MAX]; /* indices no row has, ascending */
    int n_missing;
} GridReport;

/* NULL when out of memory; free with grid_report_free. */
GridReport *grid_report_new(void);
void grid_report_free(GridReport *g);
/* The row of the version whose meta (a model's meta_json, may be NULL) is
 * given: 1 when it is a grid point, 0 when not; MN_ELIMIT past
 * GRID_REPORT_ROWS_MAX rows (name is for the message). */
int grid_report_add(GridReport *g, const char *name, const char *meta_json, int version,
                    MnError *err);
/* Sorts the rows, then finds the grid's size, the best and the missing
 * points; MN_ENOTFOUND, naming name, when no version was a grid point. */
int grid_report_finish(GridReport *g, const char *name, MnError *err);
/* {"name", "points", "rows": [{index, learning_rate, activation, epochs,
 * seconds, best_train_accuracy, test_accuracy, version}], "missing",
 * "best_version"}, the caller's to delete. */
cJSON *grid_report_json(const GridReport *g, const char *name);

#endif
