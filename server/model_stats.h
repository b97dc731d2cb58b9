/* model_stats.h - inference counters per model and version, for Triton's
 * statistics extension (GET /v2/models[/{m}[/versions/{v}]]/stats): how
 * many requests succeeded and failed and their time, how many images and
 * forward passes, when the last one was. Every prediction route records
 * here. Thread-safe. */
#ifndef MN_MODEL_STATS_H
#define MN_MODEL_STATS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ModelStats ModelStats;

typedef struct {
    uint64_t success, success_ns; /* requests answered, and their time */
    uint64_t fail, fail_ns;       /* requests refused after the model was found */
    uint64_t inferences;          /* images predicted */
    uint64_t executions;          /* forward passes (one per request) */
    uint64_t last_ms;             /* the last success, ms since the epoch; 0: never */
} ModelCounters;

ModelStats *model_stats_new(void);
void model_stats_free(ModelStats *s);
/* One request on name's version: batch images, ok or not, taking seconds. */
void model_stats_record(ModelStats *s, const char *name, int version, int batch, bool ok,
                        double seconds);
/* The counters of name's version (all zero when it has served nothing). */
ModelCounters model_stats_get(ModelStats *s, const char *name, int version);

#endif
