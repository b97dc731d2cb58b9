/* schedule.h - learning-rate schedules by Keras's names (keras.optimizers.
 * schedules): the rate as a function of the optimizer step, counted in
 * batches from 0 as Keras's optimizer.iterations. A schedule is a value;
 * it parses from and writes to the spec, and allocates nothing. */
#ifndef MN_SCHEDULE_H
#define MN_SCHEDULE_H

#include <stdbool.h>

#include "error.h"

struct cJSON;

#define SCHEDULE_MAX_BOUNDARIES 32

typedef enum {
    SCHEDULE_CONSTANT,    /* no schedule: the optimizer's learning_rate */
    SCHEDULE_COSINE,      /* CosineDecay */
    SCHEDULE_EXPONENTIAL, /* ExponentialDecay */
    SCHEDULE_PIECEWISE,   /* PiecewiseConstantDecay */
} ScheduleType;

typedef struct {
    ScheduleType type;
    float initial_learning_rate; /* cosine, exponential */
    double decay_steps;          /* cosine, exponential: > 0 */
    float alpha;                 /* cosine: the floor, a fraction of the start */
    double warmup_steps;         /* cosine: used only with a warmup_target */
    bool has_warmup_target;      /* Keras's warmup_target=None when false */
    float warmup_target;
    float decay_rate;            /* exponential */
    bool staircase;              /* exponential */
    int n_boundaries;            /* piecewise: n_boundaries + 1 values */
    double boundaries[SCHEDULE_MAX_BOUNDARIES];
    float values[SCHEDULE_MAX_BOUNDARIES + 1];
} LrSchedule;

/* The rate at optimizer step `step` (0 for the first batch). */
float schedule_rate(const LrSchedule *s, long long step);

/* The rate a learning-rate grid replaces: the cosine decay's warmup_target
 * when it warms up, else initial_learning_rate. false for piecewise
 * constant decay, which has no one rate to replace. */
bool schedule_has_peak(const LrSchedule *s);
float schedule_peak(const LrSchedule *s);
void schedule_set_peak(LrSchedule *s, float rate);

/* Reads a schedule given as "learning_rate": Keras's serialised form,
 * {"class_name": "CosineDecay", "config": {...}} (module and
 * registered_name allowed), or mnistd's flat one, {"type": "cosine_decay",
 * ...the config's keys}. where names the key in messages. */
int schedule_parse(const struct cJSON *v, const char *where, LrSchedule *out, MnError *err);
/* Keras's serialised form (a cJSON the caller deletes); parses back to s. */
struct cJSON *schedule_to_json(const LrSchedule *s);

#endif
