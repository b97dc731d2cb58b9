/* train.h - fitting a model to a dataset, and evaluating it.
 * train_fit is Keras's model.fit: shuffle with the spec's seed, mini-
 * batches, validation on the last validation_split of the training data
 * (before shuffling, as Keras takes it) or on the test split, early
 * stopping, per-batch and per-epoch callbacks, and a cancellation flag
 * checked every batch. Everything it needs is allocated before the first
 * batch; the loop itself allocates nothing. */
#ifndef MN_TRAIN_H
#define MN_TRAIN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "dataset.h"
#include "error.h"
#include "model.h"

typedef struct {
    double loss, accuracy;
    double val_loss, val_accuracy; /* meaningful when has_val */
    double seconds;
    double learning_rate;    /* the optimizer's at the epoch's end, as Keras logs it */
} EpochStats;

typedef struct {
    int epoch, epochs;       /* 1-based epoch */
    int batch, batches;      /* 1-based batch within the epoch */
    long samples, total_samples;
    double loss, accuracy;   /* running means over the epoch so far */
    bool has_val;
    double val_loss, val_accuracy; /* on_epoch only */
    double seconds;          /* since the epoch began */
    double learning_rate;    /* on_epoch only: EpochStats.learning_rate */
} TrainProgress;

typedef struct {
    void (*on_batch)(const TrainProgress *p, void *ctx);
    void (*on_epoch)(const TrainProgress *p, void *ctx);
    void *ctx;
    atomic_bool *cancel;     /* set from another thread to stop after the batch */
    int threads;             /* to compute a batch with (step.h); 0 or 1: the caller's alone */
} TrainCallbacks;

typedef struct {
    int epochs_run;
    int best_epoch;          /* 1-based epoch whose weights were kept (0: the last) */
    bool stopped_early;
    bool has_val;
    int n_train, n_val;
    int lanes;               /* each batch was computed in this many parts (step.h) */
    EpochStats *history;     /* epochs_run entries, owned: train_result_free */
    double seconds;
} TrainResult;

int train_fit(Model *m, const Dataset *train, const Dataset *test, const TrainCallbacks *cb,
              TrainResult *res, MnError *err);
void train_result_free(TrainResult *res);

typedef struct {
    double loss, accuracy;
    long n;
    int k;
    long *confusion;         /* k*k, owned: eval_result_free */
} EvalResult;

/* Evaluates the first n samples of d (all when n <= 0). */
int train_evaluate(const Model *m, const Dataset *d, int n, EvalResult *out, MnError *err);
void eval_result_free(EvalResult *r);

#endif
