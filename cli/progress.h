/* progress.h - Keras-like training output on stderr: on a terminal a
 * progress bar with ETA redrawn in place (at most ten times a second),
 * then one line per epoch with loss, accuracy, val_loss, val_accuracy and
 * seconds; off a terminal only the epoch lines. */
#ifndef MN_CLI_PROGRESS_H
#define MN_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "train.h"

typedef struct {
    FILE *out;
    bool tty;
    double last_draw;
} Progress;

void progress_init(Progress *p, FILE *out);
void progress_on_batch(const TrainProgress *tp, void *ctx);
void progress_on_epoch(const TrainProgress *tp, void *ctx);

#endif
