/* plateau.c - ReduceLROnPlateau as Keras 3 computes it
 * (keras/callbacks/reduce_lr_on_plateau.py). */
#include "plateau.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "spec_read.h"

void plateau_start(Plateau *p, const PlateauConfig *cfg)
{
    p->cfg = *cfg;
    p->best = cfg->maximize ? -INFINITY : INFINITY;
    p->wait = p->cooldown_counter = 0;
}

float plateau_epoch_end(Plateau *p, double current, float lr)
{
    const PlateauConfig *c = &p->cfg;
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--;
        p->wait = 0;
    }
    bool better = c->maximize ? current > p->best + c->min_delta : current < p->best - c->min_delta;
    if (better) {
        p->best = current;
        p->wait = 0;
    } else if (p->cooldown_counter == 0 && ++p->wait >= c->patience) {
        if (lr > (float)c->min_lr) {
            lr = (float)fmax((double)lr * c->factor, c->min_lr);
            p->cooldown_counter = c->cooldown;
            p->wait = 0;
        }
    }
    return lr;
}

static int opt_double(const cJSON *v, const char *key, double min, double max, double *out,
                      MnError *err)
{
    const cJSON *x = spec_field(v, key);
    char path[64];
    snprintf(path, sizeof path, "reduce_lr_on_plateau.%s", key);
    return x ? spec_number(x, path, min, max, out, err) : 0;
}

int plateau_parse(const cJSON *v, PlateauConfig *c, MnError *err)
{
    static const char *const keys[] = {"monitor", "factor",  "patience", "min_delta",
                                       "cooldown", "min_lr", "mode",     NULL};
    static const char *const modes[] = {"auto", "min", "max", NULL};
    static const int mode_values[] = {0, 1, 2};
    const char *where = "reduce_lr_on_plateau";
    int rc, mode = 0;
    memset(c, 0, sizeof *c);
    if (cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (!cJSON_IsObject(v))
        return mn_fail(err, MN_EINVAL, "%s must be an object or null", where);
    c->factor = 0.1;
    c->patience = 10;
    c->min_delta = 1e-4;
    if ((rc = json_check_keys(v, where, keys, err)) ||
        (rc = spec_monitor(v, where, &c->monitor_accuracy, &c->monitor_validation, err)) ||
        (rc = opt_double(v, "factor", 0.0, 1.0, &c->factor, err)) ||
        (rc = spec_opt_int(v, "patience", where, 0, 10000, &c->patience, err)) ||
        (rc = opt_double(v, "min_delta", 0.0, 1e6, &c->min_delta, err)) ||
        (rc = spec_opt_int(v, "cooldown", where, 0, 10000, &c->cooldown, err)) ||
        (rc = opt_double(v, "min_lr", 0.0, 100.0, &c->min_lr, err)) ||
        (rc = spec_opt_choice(v, "mode", where, modes, mode_values, &mode, err)))
        return rc;
    if (!(c->factor > 0.0 && c->factor < 1.0)) /* Keras refuses factor >= 1 */
        return mn_fail(err, MN_EINVAL, "%s.factor must be above 0 and below 1, got %g", where,
                       c->factor);
    c->enabled = true;
    c->mode_given = mode != 0;
    c->maximize = mode == 2 || (mode == 0 && c->monitor_accuracy);
    return 0;
}

void plateau_write(const PlateauConfig *c, cJSON *o)
{
    if (!c->enabled)
        return;
    cJSON *p = cJSON_AddObjectToObject(o, "reduce_lr_on_plateau");
    cJSON_AddStringToObject(p, "monitor", spec_monitor_name(c->monitor_accuracy, c->monitor_validation));
    cJSON_AddNumberToObject(p, "factor", c->factor);
    cJSON_AddNumberToObject(p, "patience", c->patience);
    cJSON_AddNumberToObject(p, "min_delta", c->min_delta);
    cJSON_AddNumberToObject(p, "cooldown", c->cooldown);
    cJSON_AddNumberToObject(p, "min_lr", c->min_lr);
    cJSON_AddStringToObject(p, "mode", !c->mode_given ? "auto" : c->maximize ? "max" : "min");
}
