/* model_stats.c - a short table of counters under one lock (see model_stats.h).
 * It holds one row per version that has served a request, so its size is
 * bounded by the store's. */
#include "model_stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint64_t count, ns;
} Slot;

typedef struct {
    char name[64];
    int version;
    ModelCounters c;
    Slot batches[MODEL_STATS_BATCH_SLOTS]; /* see batch_slot */
} Row;

/* Sizes up to MODEL_STATS_EXACT_BATCH have a slot each; then one per power of two. */
static int batch_slot(int batch)
{
    if (batch <= MODEL_STATS_EXACT_BATCH)
        return batch < 1 ? 0 : batch - 1;
    int slot = MODEL_STATS_EXACT_BATCH, top = 2 * MODEL_STATS_EXACT_BATCH;
    while (top < batch && slot < MODEL_STATS_BATCH_SLOTS - 1) {
        top *= 2;
        slot++;
    }
    return slot;
}

/* The largest batch a slot covers. */
static int slot_batch(int slot)
{
    return slot < MODEL_STATS_EXACT_BATCH ? slot + 1
                                          : (2 * MODEL_STATS_EXACT_BATCH) << (slot - MODEL_STATS_EXACT_BATCH);
}

struct ModelStats {
    pthread_mutex_t lock;
    Row *rows;
    size_t n, cap;
};

ModelStats *model_stats_new(void)
{
    ModelStats *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->lock, NULL);
    return s;
}

void model_stats_free(ModelStats *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->rows);
    free(s);
}

static Row *find(ModelStats *s, const char *name, int version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->rows[i].version == version && !strcmp(s->rows[i].name, name))
            return &s->rows[i];
    return NULL;
}

void model_stats_record(ModelStats *s, const char *name, int version, int batch, bool ok,
                        double seconds)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ns = seconds > 0 ? (uint64_t)(seconds * 1e9) : 0;
    pthread_mutex_lock(&s->lock);
    Row *row = find(s, name, version);
    if (!row && s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        Row *grown = realloc(s->rows, cap * sizeof *grown);
        if (grown) {
            s->rows = grown;
            s->cap = cap;
        }
    }
    if (!row && s->n < s->cap) { /* out of memory: this request goes uncounted */
        row = &s->rows[s->n++];
        memset(row, 0, sizeof *row);
        strncpy(row->name, name, sizeof row->name - 1);
        row->version = version;
    }
    if (row && ok) {
        row->c.success++;
        row->c.success_ns += ns;
        row->c.inferences += (uint64_t)batch;
        row->c.executions++;
        row->c.last_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
        Slot *b = &row->batches[batch_slot(batch)];
        b->count++;
        b->ns += ns;
    } else if (row) {
        row->c.fail++;
        row->c.fail_ns += ns;
    }
    pthread_mutex_unlock(&s->lock);
}

ModelCounters model_stats_get(ModelStats *s, const char *name, int version)
{
    ModelCounters c = {0};
    pthread_mutex_lock(&s->lock);
    const Row *row = find(s, name, version);
    if (row)
        c = row->c;
    pthread_mutex_unlock(&s->lock);
    return c;
}

int model_stats_batches(ModelStats *s, const char *name, int version,
                        BatchCounters out[MODEL_STATS_BATCH_SLOTS])
{
    int n = 0;
    pthread_mutex_lock(&s->lock);
    const Row *row = find(s, name, version);
    for (int i = 0; row && i < MODEL_STATS_BATCH_SLOTS; i++)
        if (row->batches[i].count)
            out[n++] = (BatchCounters){slot_batch(i), row->batches[i].count, row->batches[i].ns};
    pthread_mutex_unlock(&s->lock);
    return n;
}
