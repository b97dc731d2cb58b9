/* jobs.h - training jobs: a bounded queue, worker threads (train_threads,
 * default one), states queued -> running -> succeeded | failed | cancelled,
 * and every change appended to the journal, so that after a restart every
 * job is listed and the ones that were running show as interrupted. The
 * model a job trains is saved as the next version and served at once. */
#ifndef MN_JOBS_H
#define MN_JOBS_H

#include <cJSON.h>

#include "config.h"
#include "dataset_cache.h"
#include "prometheus.h"
#include "spec.h"
#include "store.h"

typedef struct Jobs Jobs;

Jobs *jobs_open(const ServerConfig *cfg, Store *store, DatasetCache *datasets,
                ServerMetrics *metrics, MnError *err);
/* Jobs per state, for /metrics: fn(state name, count) for each state. */
void jobs_count(Jobs *j, void (*fn)(const char *state, int n, void *ctx), void *ctx);
/* Cancels what runs, waits for the workers, frees everything. */
void jobs_close(Jobs *j);

/* Queues a checked spec; *job gets the job as JSON as it was queued (a
 * worker may start it at once). MN_ELIMIT when the queue is full. */
int jobs_submit(Jobs *j, const ModelSpec *spec, cJSON **job, MnError *err);
/* The job as JSON, or NULL when there is no such id. */
cJSON *jobs_get(Jobs *j, int id);
cJSON *jobs_list(Jobs *j);
/* Cancels a queued or running job; MN_ENOTFOUND, or MN_ECANCELLED when it
 * had already finished. *job gets the job as JSON. */
int jobs_cancel(Jobs *j, int id, cJSON **job, MnError *err);

/* ---- event streams (GET /jobs/{id}/events) ----
 * A stream reads a job's events as Server-Sent Events: its history first,
 * then "progress" (a few a second), "epoch", and a final "done". When
 * there is nothing to send, the stream suspends its connection; the job's
 * next change resumes it, so no HTTP thread ever waits on training. */
struct MHD_Connection;
typedef struct JobStream JobStream;

JobStream *jobs_stream_open(Jobs *j, int id, struct MHD_Connection *conn);
/* MHD_ContentReaderCallback semantics: bytes written, 0 after suspending,
 * or MHD_CONTENT_READER_END_OF_STREAM. */
long jobs_stream_read(JobStream *s, char *buf, size_t max);
void jobs_stream_close(JobStream *s);
/* Ends every stream (server shutdown), before the daemon stops. */
void jobs_streams_end(Jobs *j);

#endif
