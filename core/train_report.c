/* train_report.c - training metadata as JSON (see train_report.h). */
#include "train_report.h"

#include <cJSON.h>
#include <time.h>

cJSON *train_report_epoch(int epoch, const EpochStats *e, bool has_val)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "loss", e->loss);
    cJSON_AddNumberToObject(o, "accuracy", e->accuracy);
    if (has_val) {
        cJSON_AddNumberToObject(o, "val_loss", e->val_loss);
        cJSON_AddNumberToObject(o, "val_accuracy", e->val_accuracy);
    }
    cJSON_AddNumberToObject(o, "seconds", e->seconds);
    cJSON_AddNumberToObject(o, "learning_rate", e->learning_rate); /* Keras 3's history key */
    return o;
}

cJSON *train_report_confusion(const EvalResult *ev)
{
    cJSON *rows = cJSON_CreateArray();
    for (int t = 0; t < ev->k; t++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < ev->k; p++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ev->confusion[t * ev->k + p]));
        cJSON_AddItemToArray(rows, row);
    }
    return rows;
}

double train_report_best_accuracy(const TrainResult *tr)
{
    double best = 0.0;
    for (int e = 0; e < tr->epochs_run; e++)
        if (tr->history[e].accuracy > best)
            best = tr->history[e].accuracy;
    return best;
}

char *train_report_json(const ModelSpec *s, const TrainResult *tr, const EvalResult *ev)
{
    return train_report_json_at(s, tr, ev, NULL);
}

char *train_report_json_at(const ModelSpec *s, const TrainResult *tr, const EvalResult *ev,
                           const TrainGridPoint *point)
{
    cJSON *meta = cJSON_CreateObject();
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    cJSON_AddStringToObject(meta, "trained_at", when);
    cJSON_AddStringToObject(meta, "dataset", s->dataset);
    cJSON_AddNumberToObject(meta, "train_samples", tr->n_train);
    cJSON_AddNumberToObject(meta, "validation_samples", tr->n_val);
    cJSON_AddNumberToObject(meta, "epochs", tr->epochs_run);
    cJSON_AddBoolToObject(meta, "stopped_early", tr->stopped_early);
    cJSON_AddNumberToObject(meta, "restored_epoch", tr->best_epoch);
    cJSON_AddNumberToObject(meta, "seconds", tr->seconds);
    cJSON_AddNumberToObject(meta, "best_train_accuracy", train_report_best_accuracy(tr));
    cJSON *hist = cJSON_AddArrayToObject(meta, "history");
    for (int e = 0; e < tr->epochs_run; e++)
        cJSON_AddItemToArray(hist, train_report_epoch(e + 1, &tr->history[e], tr->has_val));
    cJSON *test = cJSON_AddObjectToObject(meta, "test");
    cJSON_AddNumberToObject(test, "loss", ev->loss);
    cJSON_AddNumberToObject(test, "accuracy", ev->accuracy);
    cJSON_AddNumberToObject(test, "samples", (double)ev->n);
    cJSON_AddItemToObject(test, "confusion_matrix", train_report_confusion(ev));
    if (point) {
        cJSON *g = cJSON_AddObjectToObject(meta, "grid");
        cJSON_AddNumberToObject(g, "index", point->index);
        cJSON_AddNumberToObject(g, "points", point->points);
        cJSON_AddNumberToObject(g, "learning_rate", s->optim.learning_rate);
        cJSON_AddStringToObject(g, "activation", activation_name(spec_hidden_activation(s)));
    }
    char *text = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    return text;
}
