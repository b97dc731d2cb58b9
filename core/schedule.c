/* schedule.c - Keras 3's learning-rate schedules (keras/optimizers/schedules/
 * learning_rate_schedule.py): the same formulas, evaluated in double and
 * rounded once to the float the optimizer uses. */
#include "schedule.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "spec_read.h"

#define SCHEDULE_MAX_STEPS 1e12 /* far past any training run, exact in a double */

/* CosineDecay's decay from `from` over decay_steps (step already capped). */
static double cosine_decayed(const LrSchedule *s, double step, double from)
{
    const double pi = 3.14159265358979323846;
    double cosine = 0.5 * (1.0 + cos(pi * (step / s->decay_steps)));
    return from * ((1.0 - s->alpha) * cosine + s->alpha);
}

float schedule_rate(const LrSchedule *s, long long step)
{
    double t = (double)step;
    switch (s->type) {
    case SCHEDULE_COSINE:
        if (!s->has_warmup_target) /* Keras ignores warmup_steps without a target */
            return (float)cosine_decayed(s, fmin(t, s->decay_steps), s->initial_learning_rate);
        t = fmin(t, s->decay_steps + s->warmup_steps);
        if (t < s->warmup_steps) /* linear from initial_learning_rate to warmup_target */
            return (float)(((double)s->warmup_target - s->initial_learning_rate) *
                               (t / s->warmup_steps) +
                           s->initial_learning_rate);
        return (float)cosine_decayed(s, t - s->warmup_steps, s->warmup_target);
    case SCHEDULE_EXPONENTIAL: {
        double p = t / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return (float)(s->initial_learning_rate * pow(s->decay_rate, p));
    }
    case SCHEDULE_PIECEWISE: {
        /* values[0] up to and including boundaries[0], values[i] on (b[i-1], b[i]]. */
        int i = 0;
        while (i < s->n_boundaries && t > s->boundaries[i])
            i++;
        return s->values[i];
    }
    case SCHEDULE_CONSTANT:
        break;
    }
    return s->initial_learning_rate;
}

bool schedule_has_peak(const LrSchedule *s) { return s->type != SCHEDULE_PIECEWISE; }

float schedule_peak(const LrSchedule *s)
{
    return s->type == SCHEDULE_COSINE && s->has_warmup_target ? s->warmup_target
                                                                : s->initial_learning_rate;
}

void schedule_set_peak(LrSchedule *s, float rate)
{
    if (s->type == SCHEDULE_COSINE && s->has_warmup_target)
        s->warmup_target = rate;
    else
        s->initial_learning_rate = rate;
}

/* --- the spec --- */

typedef struct {
    ScheduleType type;
    const char *name, *keras_class;
    const char *const keys[8]; /* the config's, NULL-terminated */
} ScheduleKind;

static const ScheduleKind kinds[] = {
    {SCHEDULE_COSINE, "cosine_decay", "CosineDecay",
     {"initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps", "name",
      "type", NULL}},
    {SCHEDULE_EXPONENTIAL, "exponential_decay", "ExponentialDecay",
     {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name", "type", NULL}},
    {SCHEDULE_PIECEWISE, "piecewise_constant_decay", "PiecewiseConstantDecay",
     {"boundaries", "values", "name", "type", NULL}},
};
enum { N_KINDS = sizeof kinds / sizeof *kinds };

static const ScheduleKind *kind_of(ScheduleType type)
{
    for (int i = 0; i < N_KINDS; i++)
        if (kinds[i].type == type)
            return &kinds[i];
    return NULL;
}

static const ScheduleKind *kind_named(const char *name)
{
    for (int i = 0; i < N_KINDS; i++)
        if (!strcmp(kinds[i].name, name) || !strcmp(kinds[i].keras_class, name))
            return &kinds[i];
    return NULL;
}

static const cJSON *required(const cJSON *obj, const char *key, const char *where, MnError *err)
{
    const cJSON *v = spec_field(obj, key);
    if (!v)
        mn_fail(err, MN_EINVAL, "%s: missing key \"%s\"", where, key);
    return v;
}

/* A whole number of steps, at least min; absent: an error when needed, else *out stays. */
static int read_steps(const cJSON *obj, const char *key, const char *where, long long min,
                      bool needed, double *out, MnError *err)
{
    if (!spec_field(obj, key))
        return needed ? mn_fail(err, MN_EINVAL, "%s: missing key \"%s\"", where, key) : 0;
    char path[96];
    snprintf(path, sizeof path, "%s.%s", where, key);
    long long n;
    int rc = spec_int(spec_field(obj, key), path, min, (long long)SCHEDULE_MAX_STEPS, &n, err);
    if (rc == 0)
        *out = (double)n;
    return rc;
}

/* A needed number in [min, 100]: rates, and the decay rate (> 0). */
static int read_needed(const cJSON *obj, const char *key, const char *where, double min,
                       float *out, MnError *err)
{
    if (!required(obj, key, where, err))
        return MN_EINVAL;
    return spec_opt_float(obj, key, where, min, 100.0, out, err);
}

static int parse_cosine(const cJSON *c, const char *where, LrSchedule *s, MnError *err)
{
    int rc;
    if ((rc = read_needed(c, "initial_learning_rate", where, 0.0, &s->initial_learning_rate, err)) ||
        (rc = read_steps(c, "decay_steps", where, 1, true, &s->decay_steps, err)) ||
        (rc = spec_opt_float(c, "alpha", where, 0.0, 1.0, &s->alpha, err)) ||
        (rc = read_steps(c, "warmup_steps", where, 0, false, &s->warmup_steps, err)))
        return rc;
    const cJSON *target = spec_field(c, "warmup_target");
    if (target && !cJSON_IsNull(target)) {
        if ((rc = spec_opt_float(c, "warmup_target", where, 0.0, 100.0, &s->warmup_target, err)))
            return rc;
        s->has_warmup_target = true;
    }
    return 0;
}

static int parse_exponential(const cJSON *c, const char *where, LrSchedule *s, MnError *err)
{
    int rc;
    if ((rc = read_needed(c, "initial_learning_rate", where, 0.0, &s->initial_learning_rate, err)) ||
        (rc = read_steps(c, "decay_steps", where, 1, true, &s->decay_steps, err)) ||
        (rc = read_needed(c, "decay_rate", where, 1e-12, &s->decay_rate, err)) ||
        (rc = spec_opt_bool(c, "staircase", where, &s->staircase, err)))
        return rc;
    return 0;
}

static int parse_piecewise(const cJSON *c, const char *where, LrSchedule *s, MnError *err)
{
    const cJSON *b = required(c, "boundaries", where, err), *v = b ? required(c, "values", where, err) : NULL;
    if (!b || !v)
        return MN_EINVAL;
    int nb = cJSON_IsArray(b) ? cJSON_GetArraySize(b) : -1, nv = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (nb < 1 || nb > SCHEDULE_MAX_BOUNDARIES)
        return mn_fail(err, MN_EINVAL, "%s.boundaries must be an array of 1 to %d steps", where,
                       SCHEDULE_MAX_BOUNDARIES);
    if (nv != nb + 1)
        return mn_fail(err, MN_EINVAL,
                       "%s.values must have one more entry than boundaries (%d), got %d", where,
                       nb, nv);
    char path[96];
    int rc, i = 0;
    snprintf(path, sizeof path, "%s.boundaries[]", where);
    for (const cJSON *it = b->child; it; it = it->next, i++) {
        if ((rc = spec_number(it, path, 0.0, SCHEDULE_MAX_STEPS, &s->boundaries[i], err)))
            return rc;
        if (i && !(s->boundaries[i] > s->boundaries[i - 1]))
            return mn_fail(err, MN_EINVAL, "%s must increase", path);
    }
    snprintf(path, sizeof path, "%s.values[]", where);
    i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        double x;
        if ((rc = spec_number(it, path, 0.0, 100.0, &x, err)))
            return rc;
        s->values[i] = (float)x;
    }
    s->n_boundaries = nb;
    return 0;
}

int schedule_parse(const cJSON *v, const char *where, LrSchedule *out, MnError *err)
{
    static const char *const keras_keys[] = {"class_name", "config", "module", "registered_name",
                                             NULL};
    char cwhere[80];
    const cJSON *config = v, *name;
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(v))
        return mn_fail(err, MN_EINVAL, "%s must be a number or a schedule object", where);
    int rc;
    if ((name = spec_field(v, "class_name"))) {
        if ((rc = json_check_keys(v, where, keras_keys, err)))
            return rc;
        config = spec_field(v, "config");
        if (!cJSON_IsObject(config))
            return mn_fail(err, MN_EINVAL, "%s.config must be an object", where);
        if (spec_field(config, "type"))
            return mn_fail(err, MN_EINVAL, "%s.config: unknown key \"type\"", where);
        snprintf(cwhere, sizeof cwhere, "%s.config", where);
    } else if (!(name = spec_field(v, "type"))) {
        return mn_fail(err, MN_EINVAL, "%s: missing key \"class_name\" (or \"type\")", where);
    } else {
        snprintf(cwhere, sizeof cwhere, "%s", where);
    }
    const ScheduleKind *kind = cJSON_IsString(name) ? kind_named(name->valuestring) : NULL;
    if (!kind)
        return mn_fail(err, MN_EINVAL,
                       "%s: unknown schedule (known: cosine_decay, exponential_decay, "
                       "piecewise_constant_decay, or their Keras class names)",
                       where);
    if ((rc = json_check_keys(config, cwhere, kind->keys, err)))
        return rc;
    out->type = kind->type;
    switch (kind->type) {
    case SCHEDULE_COSINE:
        return parse_cosine(config, cwhere, out, err);
    case SCHEDULE_EXPONENTIAL:
        return parse_exponential(config, cwhere, out, err);
    case SCHEDULE_PIECEWISE:
        return parse_piecewise(config, cwhere, out, err);
    case SCHEDULE_CONSTANT:
        break;
    }
    return 0;
}

cJSON *schedule_to_json(const LrSchedule *s)
{
    const ScheduleKind *kind = kind_of(s->type);
    if (!kind)
        return cJSON_CreateNumber(s->initial_learning_rate);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "class_name", kind->keras_class);
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    switch (s->type) {
    case SCHEDULE_COSINE:
        cJSON_AddNumberToObject(c, "initial_learning_rate", s->initial_learning_rate);
        cJSON_AddNumberToObject(c, "decay_steps", s->decay_steps);
        cJSON_AddNumberToObject(c, "alpha", s->alpha);
        if (s->has_warmup_target)
            cJSON_AddNumberToObject(c, "warmup_target", s->warmup_target);
        else
            cJSON_AddNullToObject(c, "warmup_target");
        cJSON_AddNumberToObject(c, "warmup_steps", s->warmup_steps);
        break;
    case SCHEDULE_EXPONENTIAL:
        cJSON_AddNumberToObject(c, "initial_learning_rate", s->initial_learning_rate);
        cJSON_AddNumberToObject(c, "decay_steps", s->decay_steps);
        cJSON_AddNumberToObject(c, "decay_rate", s->decay_rate);
        cJSON_AddBoolToObject(c, "staircase", s->staircase);
        break;
    case SCHEDULE_PIECEWISE: {
        cJSON *b = cJSON_AddArrayToObject(c, "boundaries");
        for (int i = 0; i < s->n_boundaries; i++)
            cJSON_AddItemToArray(b, cJSON_CreateNumber(s->boundaries[i]));
        cJSON_AddItemToObject(c, "values", json_float_array(s->values, s->n_boundaries + 1));
        break;
    }
    case SCHEDULE_CONSTANT:
        break;
    }
    return o;
}
