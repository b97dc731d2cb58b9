/* model_stats.h - inference counters per model and version, for Triton's
 * statistics extension (GET /v2/models[/{m}[/versions/{v}]]/stats): how
 * many requests succeeded and failed and their time, how many images and
 * forward passes, when the last one was, and the successes per batch
 * size. Every prediction route records here. Thread-safe. */
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

/* Successful forward passes of one batch size (Triton's batch_stats). Sizes
 * 1 to MODEL_STATS_EXACT_BATCH count each on their own; larger ones by
 * powers of two, batch_size the largest the entry covers (128: 65 to 128),
 * so a version holds at most MODEL_STATS_BATCH_SLOTS entries whatever
 * --max-batch is (the last, 2^16, takes anything larger). */
#define MODEL_STATS_EXACT_BATCH 64
#define MODEL_STATS_BATCH_SLOTS (MODEL_STATS_EXACT_BATCH + 10)
typedef struct {
    int batch_size;
    uint64_t count, ns;
} BatchCounters;

ModelStats *model_stats_new(void);
void model_stats_free(ModelStats *s);
/* One request on name's version: batch images, ok or not, taking seconds. */
void model_stats_record(ModelStats *s, const char *name, int version, int batch, bool ok,
                        double seconds);
/* The counters of name's version (all zero when it has served nothing). */
ModelCounters model_stats_get(ModelStats *s, const char *name, int version);
/* The batch sizes name's version has run, ascending, into out (room for
 * MODEL_STATS_BATCH_SLOTS); returns how many. */
int model_stats_batches(ModelStats *s, const char *name, int version,
                        BatchCounters out[MODEL_STATS_BATCH_SLOTS]);

#endif
