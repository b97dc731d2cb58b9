/* train_report.h - a finished training as the JSON kept in the model
 * file's header (meta): when, on what, the per-epoch history and the test
 * metrics with the confusion matrix. The CLI and the server's jobs both
 * write it, so a model reads the same however it was trained. */
#ifndef MN_TRAIN_REPORT_H
#define MN_TRAIN_REPORT_H

#include "train.h"

struct cJSON;

/* One epoch as {epoch, loss, accuracy[, val_loss, val_accuracy], seconds}. */
struct cJSON *train_report_epoch(int epoch, const EpochStats *e, bool has_val);
/* The confusion matrix as rows (true class) of counts. */
struct cJSON *train_report_confusion(const EvalResult *ev);
/* The whole report as a JSON text (malloc'd), or NULL when out of memory. */
char *train_report_json(const ModelSpec *s, const TrainResult *tr, const EvalResult *ev);
/* One point of a spec's grid, trained on its own (mnistd train --grid-index,
 * one Kubernetes Indexed Job pod per point). */
typedef struct {
    int index;  /* 0 <= index < points, spec_grid_trial's t */
    int points; /* spec_grid_size of the whole spec */
} TrainGridPoint;
/* The same with "grid": {index, points, learning_rate, activation} of s,
 * the point's spec (NULL point: none), so the sweep's table can be read
 * back from the versions it published (mnistd grid-report). */
char *train_report_json_at(const ModelSpec *s, const TrainResult *tr, const EvalResult *ev,
                           const TrainGridPoint *point);
/* The highest training accuracy of any epoch (the homework's figure). */
double train_report_best_accuracy(const TrainResult *tr);

#endif
