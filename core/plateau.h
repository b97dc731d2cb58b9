/* plateau.h - Keras's ReduceLROnPlateau callback: when the monitored
 * metric has not improved for `patience` epochs, multiply the rate by
 * `factor`, no lower than min_lr, then wait `cooldown` epochs. The state
 * is a value updated once per epoch; it allocates nothing. */
#ifndef MN_PLATEAU_H
#define MN_PLATEAU_H

#include <stdbool.h>

#include "error.h"

struct cJSON;

typedef struct {
    bool enabled;
    bool monitor_accuracy;   /* val_accuracy/accuracy rather than a loss */
    bool monitor_validation; /* val_* rather than the training metric */
    bool maximize;           /* mode "max", or "auto" on an accuracy */
    bool mode_given;         /* "min"/"max" given rather than "auto": written back */
    double factor;           /* Keras defaults: 0.1, 10, 1e-4, 0, 0 */
    int patience;
    double min_delta;
    int cooldown;
    double min_lr;
} PlateauConfig;

typedef struct {
    PlateauConfig cfg;
    double best;
    int wait, cooldown_counter;
} Plateau;

void plateau_start(Plateau *p, const PlateauConfig *cfg);
/* Keras's on_epoch_end with the epoch's monitored value: the rate for the
 * epochs that follow (lr itself unless it is time to reduce). */
float plateau_epoch_end(Plateau *p, double current, float lr);

/* "reduce_lr_on_plateau": {monitor, factor, patience, min_delta, cooldown,
 * min_lr, mode}, or null/false for none. */
int plateau_parse(const struct cJSON *v, PlateauConfig *out, MnError *err);
/* Adds "reduce_lr_on_plateau" to o when enabled. */
void plateau_write(const PlateauConfig *c, struct cJSON *o);

#endif
