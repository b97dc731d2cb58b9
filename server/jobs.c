/* jobs.c - the job table, its workers and its journal (see jobs.h).
 * DESIGN: one mutex guards the table; workers sleep on a condition variable
 * until a job is queued; training itself runs outside the lock and reports
 * through callbacks that take it briefly. Journal records: submit (spec),
 * start, epoch (stats), finish (state, error, result). */
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "clock.h"
#include "journal.h"
#include "model_dir.h"
#include "model_file.h"
#include "train.h"
#include "train_report.h"

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_INTERRUPTED } JobState;

static const char *const state_names[] = {"queued",    "running",   "succeeded",
                                          "failed",    "cancelled", "interrupted"};

#define PROGRESS_EVERY 0.25 /* seconds between progress events */

struct JobStream {
    Jobs *jobs;
    int id;
    struct MHD_Connection *conn;
    int epochs_sent;
    int last_epoch, last_batch;
    double last_progress;
    bool done_sent, waiting, ended;
    char *pending;      /* an event not yet fully written */
    size_t pending_len, pending_off;
    struct JobStream *next;
};

typedef struct {
    int id;
    JobState state;
    cJSON *spec;
    int epoch, epochs, batch, batches;
    int trial, trials;  /* grid search: which combination, of how many */
    cJSON *history;     /* every epoch of every trial */
    cJSON *grid;        /* one row per finished trial */
    char error[256];
    bool has_result;
    char model[64];
    int version;
    double test_accuracy, test_loss, best_train_accuracy;
    double created, started, finished;
    atomic_bool cancel;
} Job;

struct Jobs {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    Job **jobs;
    int n, cap, next_id, queued;
    bool stopping;
    pthread_t *workers;
    int n_workers;
    Journal journal;
    const ServerConfig *cfg;
    Store *store;
    DatasetCache *datasets;
    ServerMetrics *metrics;
    JobStream *streams;
    bool streams_ended;
    double last_wake;
};

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static Job *find(Jobs *j, int id)
{
    for (int i = 0; i < j->n; i++)
        if (j->jobs[i]->id == id)
            return j->jobs[i];
    return NULL;
}

static Job *add_job(Jobs *j, int id)
{
    if (j->n == j->cap) {
        int cap = j->cap ? j->cap * 2 : 16;
        Job **grown = realloc(j->jobs, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        j->jobs = grown;
        j->cap = cap;
    }
    Job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->id = id;
    job->history = cJSON_CreateArray();
    job->grid = cJSON_CreateArray();
    job->trials = 1;
    j->jobs[j->n++] = job;
    if (id >= j->next_id)
        j->next_id = id + 1;
    return job;
}

static void free_job(Job *job)
{
    cJSON_Delete(job->spec);
    cJSON_Delete(job->history);
    cJSON_Delete(job->grid);
    free(job);
}

static cJSON *record(const char *event, const Job *job)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddNumberToObject(o, "id", job->id);
    return o;
}

/* Appends under the lock; a journal that fails is reported, and only a
 * submission refused for it (jobs_submit). errno tells why on failure. */
static int journal_write(Jobs *j, cJSON *rec)
{
    int rc = journal_append(&j->journal, rec);
    int why = errno;
    if (rc)
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"journal append failed\",\"path\":\"%s\","
                "\"error\":\"%s\"}\n", j->journal.path, strerror(why));
    cJSON_Delete(rec);
    errno = why;
    return rc;
}

/* Resumes the streams parked on this job (lock held). */
static void wake_streams(Jobs *j, int id)
{
    for (JobStream *s = j->streams; s; s = s->next)
        if (s->id == id && s->waiting) {
            s->waiting = false;
            MHD_resume_connection(s->conn);
        }
}

static void finish(Jobs *j, Job *job, JobState state, const char *error)
{
    job->state = state;
    job->finished = wall_seconds();
    snprintf(job->error, sizeof job->error, "%s", error ? error : "");
    cJSON *rec = record("finish", job);
    cJSON_AddStringToObject(rec, "state", state_names[state]);
    cJSON_AddNumberToObject(rec, "finished", job->finished);
    if (error)
        cJSON_AddStringToObject(rec, "error", error);
    if (job->has_result) {
        cJSON_AddStringToObject(rec, "model", job->model);
        cJSON_AddNumberToObject(rec, "version", job->version);
        cJSON_AddNumberToObject(rec, "test_accuracy", job->test_accuracy);
        cJSON_AddNumberToObject(rec, "test_loss", job->test_loss);
        cJSON_AddNumberToObject(rec, "best_train_accuracy", job->best_train_accuracy);
    }
    journal_write(j, rec);
    wake_streams(j, job->id);
}

/* ---- replay ---- */

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static void replay(const cJSON *rec, void *ctx)
{
    Jobs *j = ctx;
    const char *event = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "event"));
    int id = (int)num(rec, "id");
    if (!event || id < 1)
        return;
    Job *job = find(j, id);
    if (!strcmp(event, "submit") && !job && (job = add_job(j, id))) {
        job->spec = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, "spec"), true);
        job->epochs = (int)num(job->spec, "epochs");
        job->trials = (int)num(rec, "trials");
        job->trials = job->trials > 0 ? job->trials : 1;
        job->created = num(rec, "created");
        job->state = JOB_QUEUED;
    } else if (job && !strcmp(event, "start")) {
        job->state = JOB_RUNNING;
        job->started = num(rec, "started");
    } else if (job && !strcmp(event, "trial")) {
        cJSON *row = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, "row"), true);
        if (row)
            cJSON_AddItemToArray(job->grid, row);
    } else if (job && !strcmp(event, "epoch")) {
        cJSON *e = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, "stats"), true);
        if (e)
            cJSON_AddItemToArray(job->history, e);
        job->epoch = (int)num(e, "epoch");
    } else if (job && !strcmp(event, "finish")) {
        const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "state"));
        for (int s = 0; state && s < 6; s++)
            if (!strcmp(state, state_names[s]))
                job->state = (JobState)s;
        job->finished = num(rec, "finished");
        const char *error = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "error"));
        snprintf(job->error, sizeof job->error, "%s", error ? error : "");
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "model"));
        if (model) {
            job->has_result = true;
            snprintf(job->model, sizeof job->model, "%s", model);
            job->version = (int)num(rec, "version");
            job->test_accuracy = num(rec, "test_accuracy");
            job->test_loss = num(rec, "test_loss");
            job->best_train_accuracy = num(rec, "best_train_accuracy");
        }
    }
}

/* ---- training ---- */

typedef struct {
    Jobs *jobs;
    Job *job;
} Progress;

static void on_batch(const TrainProgress *p, void *ctx)
{
    Progress *pr = ctx;
    pthread_mutex_lock(&pr->jobs->lock);
    pr->job->epoch = p->epoch;
    pr->job->batch = p->batch;
    pr->job->batches = p->batches;
    double now = clock_seconds();
    if (now - pr->jobs->last_wake >= PROGRESS_EVERY) {
        pr->jobs->last_wake = now;
        wake_streams(pr->jobs, pr->job->id);
    }
    pthread_mutex_unlock(&pr->jobs->lock);
}

static void on_epoch(const TrainProgress *p, void *ctx)
{
    Progress *pr = ctx;
    EpochStats e = {p->loss, p->accuracy, p->val_loss, p->val_accuracy, p->seconds,
                    p->learning_rate};
    cJSON *stats = train_report_epoch(p->epoch, &e, p->has_val);
    pthread_mutex_lock(&pr->jobs->lock);
    if (pr->job->trials > 1)
        cJSON_AddNumberToObject(stats, "trial", pr->job->trial);
    cJSON *rec = record("epoch", pr->job);
    cJSON_AddItemToObject(rec, "stats", cJSON_Duplicate(stats, true));
    journal_write(pr->jobs, rec);
    cJSON_AddItemToArray(pr->job->history, stats);
    wake_streams(pr->jobs, pr->job->id);
    pthread_mutex_unlock(&pr->jobs->lock);
    server_metrics_epoch(pr->jobs->metrics);
}

/* One trained and evaluated model, while a grid search compares them. */
typedef struct {
    Model *model;
    ModelSpec spec;
    TrainResult tr;
    EvalResult ev;
    double score; /* final val_accuracy when there is validation, else best training accuracy */
} Trial;

static void trial_free(Trial *t)
{
    model_free(t->model);
    train_result_free(&t->tr);
    eval_result_free(&t->ev);
    memset(t, 0, sizeof *t);
}

static int train_trial(Jobs *j, Job *job, const ModelSpec *spec, const Dataset *train,
                       const Dataset *test, const SpecLimits *lim, Trial *t, MnError *err)
{
    memset(t, 0, sizeof *t);
    t->spec = *spec;
    const char *names[DATASET_MAX_CLASSES];
    for (int c = 0; c < train->n_classes; c++)
        names[c] = train->class_names[c];
    Progress pr = {j, job};
    TrainCallbacks cb = {on_batch, on_epoch, &pr, &job->cancel, (int)j->cfg->job_threads};
    int rc;
    if ((rc = model_build(spec, lim, &t->model, err)) ||
        (rc = model_set_class_names(t->model, names, train->n_classes, err)) ||
        (rc = train_fit(t->model, train, test, &cb, &t->tr, err)) ||
        (rc = train_evaluate(t->model, test, 0, &t->ev, err)))
        return rc;
    t->score = t->tr.has_val ? t->tr.history[t->tr.epochs_run - 1].val_accuracy
                             : train_report_best_accuracy(&t->tr);
    return 0;
}

/* The homework's table row: rate, activation, seconds, accuracies. */
static cJSON *trial_row(const Trial *t, int index)
{
    cJSON *row = cJSON_CreateObject();
    cJSON_AddNumberToObject(row, "trial", index);
    cJSON_AddNumberToObject(row, "learning_rate", t->spec.optim.learning_rate);
    cJSON_AddStringToObject(row, "activation", activation_name(spec_hidden_activation(&t->spec)));
    cJSON_AddNumberToObject(row, "epochs", t->tr.epochs_run);
    cJSON_AddNumberToObject(row, "seconds", t->tr.seconds);
    cJSON_AddNumberToObject(row, "best_train_accuracy", train_report_best_accuracy(&t->tr));
    cJSON_AddNumberToObject(row, "test_accuracy", t->ev.accuracy);
    cJSON_AddNumberToObject(row, "test_loss", t->ev.loss);
    return row;
}

/* Trains every trial of the spec (one without a grid), evaluates, keeps the
 * best and saves it as the next version; 0, or an error with err filled. */
static int run_job(Jobs *j, Job *job, cJSON *spec_json, MnError *err)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = (size_t)j->cfg->max_params;
    ModelSpec spec;
    int rc = spec_from_json(spec_json, &lim, &spec, err);
    if (rc)
        return rc;
    const Dataset *train = dataset_cache_get(j->datasets, spec.dataset, SPLIT_TRAIN, err);
    const Dataset *test = train ? dataset_cache_get(j->datasets, spec.dataset, SPLIT_TEST, err) : NULL;
    if (!test)
        return err->code;
    if (!spec.image_preprocess_set) {
        spec.image_preprocess = train->image_preprocess;
        spec.image_preprocess_set = true;
    }
    int trials = spec_grid_size(&spec);
    Trial best = {0}, t;
    for (int i = 0; i < trials && rc == 0; i++) {
        ModelSpec trial_spec;
        spec_grid_trial(&spec, i, &trial_spec);
        pthread_mutex_lock(&j->lock);
        job->trial = i + 1;
        job->trials = trials;
        pthread_mutex_unlock(&j->lock);
        if ((rc = train_trial(j, job, &trial_spec, train, test, &lim, &t, err))) {
            trial_free(&t);
            break;
        }
        pthread_mutex_lock(&j->lock);
        cJSON *row = trial_row(&t, i + 1), *rec = record("trial", job);
        cJSON_AddItemToObject(rec, "row", cJSON_Duplicate(row, true));
        journal_write(j, rec);
        cJSON_AddItemToArray(job->grid, row);
        pthread_mutex_unlock(&j->lock);
        if (!best.model || t.score > best.score) {
            trial_free(&best);
            best = t;
        } else {
            trial_free(&t);
        }
    }
    char path[4200];
    int version = 0;
    if (rc == 0 && !(best.model->meta_json = train_report_json(&best.spec, &best.tr, &best.ev)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    if (rc == 0) {
        /* never over a version that another job or process published */
        rc = model_dir_publish(best.model, store_dir(j->store), spec.name, path, sizeof path,
                               &version, err);
    }
    if (rc == 0 && (rc = store_add(j->store, spec.name, version, best.model, err)) == 0) {
        pthread_mutex_lock(&j->lock);
        job->has_result = true;
        snprintf(job->model, sizeof job->model, "%s", spec.name);
        job->version = version;
        job->test_accuracy = best.ev.accuracy;
        job->test_loss = best.ev.loss;
        job->best_train_accuracy = train_report_best_accuracy(&best.tr);
        pthread_mutex_unlock(&j->lock);
        best.model = NULL; /* the store owns it now */
    }
    trial_free(&best);
    return rc;
}

static void *worker(void *arg)
{
    Jobs *j = arg;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (!j->stopping && j->queued == 0)
            pthread_cond_wait(&j->wake, &j->lock);
        if (j->stopping)
            break;
        Job *job = NULL; /* the oldest queued job */
        for (int i = 0; i < j->n && !job; i++)
            if (j->jobs[i]->state == JOB_QUEUED)
                job = j->jobs[i];
        j->queued--;
        if (!job)
            continue;
        job->state = JOB_RUNNING;
        job->started = wall_seconds();
        wake_streams(j, job->id);
        cJSON *rec = record("start", job);
        cJSON_AddNumberToObject(rec, "started", job->started);
        journal_write(j, rec);
        cJSON *spec = cJSON_Duplicate(job->spec, true);
        pthread_mutex_unlock(&j->lock);

        MnError err = {0};
        int rc = run_job(j, job, spec, &err);
        cJSON_Delete(spec);

        pthread_mutex_lock(&j->lock);
        if (rc == 0)
            finish(j, job, JOB_SUCCEEDED, NULL);
        else if (rc == MN_ECANCELLED)
            finish(j, job, JOB_CANCELLED, j->stopping ? "the server stopped" : "cancelled");
        else
            finish(j, job, JOB_FAILED, err.msg);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

Jobs *jobs_open(const ServerConfig *cfg, Store *store, DatasetCache *datasets,
                ServerMetrics *metrics, MnError *err)
{
    Jobs *j = calloc(1, sizeof *j);
    if (!j) {
        mn_fail(err, MN_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->wake, NULL);
    j->cfg = cfg;
    j->store = store;
    j->datasets = datasets;
    j->metrics = metrics;
    j->next_id = 1;
    /* Beside the store unless set: replicas sharing one store each keep their own. */
    char journal[2100];
    if (cfg->journal[0])
        snprintf(journal, sizeof journal, "%s", cfg->journal);
    else
        snprintf(journal, sizeof journal, "%s/.jobs.journal", store_dir(store));
    if (journal_open(&j->journal, journal, replay, j, err)) {
        jobs_close(j);
        return NULL;
    }
    /* Whatever was queued or running when the last process ended did not finish. */
    for (int i = 0; i < j->n; i++)
        if (j->jobs[i]->state == JOB_QUEUED || j->jobs[i]->state == JOB_RUNNING)
            finish(j, j->jobs[i], JOB_INTERRUPTED, "the server stopped before the job finished");
    j->workers = calloc((size_t)cfg->train_threads, sizeof *j->workers);
    for (long i = 0; j->workers && i < cfg->train_threads; i++)
        if (pthread_create(&j->workers[i], NULL, worker, j) == 0)
            j->n_workers++;
    if (j->n_workers == 0) {
        mn_fail(err, MN_ENOMEM, "cannot start training threads");
        jobs_close(j);
        return NULL;
    }
    return j;
}

void jobs_close(Jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    for (int i = 0; i < j->n; i++)
        atomic_store(&j->jobs[i]->cancel, true);
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < j->n_workers; i++)
        pthread_join(j->workers[i], NULL);
    free(j->workers);
    journal_close(&j->journal);
    for (int i = 0; i < j->n; i++)
        free_job(j->jobs[i]);
    free(j->jobs);
    pthread_cond_destroy(&j->wake);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static cJSON *job_json(const Job *job);

int jobs_submit(Jobs *j, const ModelSpec *spec, cJSON **out, MnError *err)
{
    pthread_mutex_lock(&j->lock);
    int rc = 0;
    Job *job = NULL;
    if (j->queued >= j->cfg->max_jobs)
        rc = mn_fail(err, MN_ELIMIT, "the job queue is full (%ld queued, --max-jobs)",
                     j->cfg->max_jobs);
    else if (!(job = add_job(j, j->next_id)))
        rc = mn_fail(err, MN_ENOMEM, "out of memory");
    if (rc == 0) {
        job->spec = spec_to_json(spec);
        job->epochs = spec->epochs;
        job->trials = spec_grid_size(spec);
        job->created = wall_seconds();
        job->state = JOB_QUEUED;
        cJSON *rec = record("submit", job);
        cJSON_AddNumberToObject(rec, "created", job->created);
        cJSON_AddNumberToObject(rec, "trials", spec_grid_size(spec));
        cJSON_AddItemToObject(rec, "spec", cJSON_Duplicate(job->spec, true));
        /* A job the journal does not know would vanish at the next start:
         * refused instead (a full disk, say). */
        if (journal_write(j, rec)) {
            rc = mn_fail(err, MN_EIO, "the job cannot be recorded in %s: %s", j->journal.path,
                         strerror(errno));
            j->n--;
            j->next_id = job->id;
            free_job(job);
        }
    }
    if (rc == 0) {
        j->queued++;
        *out = job_json(job);
        pthread_cond_signal(&j->wake);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

static void add_time(cJSON *o, const char *key, double t)
{
    if (t <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char when[32];
    time_t s = (time_t)t;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&s, &tm));
    cJSON_AddStringToObject(o, key, when);
}

static cJSON *job_json(const Job *job)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", job->id);
    cJSON_AddStringToObject(o, "status", state_names[job->state]);
    cJSON_AddItemToObject(o, "spec", cJSON_Duplicate(job->spec, true));
    cJSON_AddNumberToObject(o, "epoch", job->epoch);
    cJSON_AddNumberToObject(o, "epochs", job->epochs);
    cJSON_AddNumberToObject(o, "batch", job->batch);
    cJSON_AddNumberToObject(o, "batches", job->batches);
    cJSON_AddNumberToObject(o, "trial", job->trial);
    cJSON_AddNumberToObject(o, "trials", job->trials);
    cJSON_AddItemToObject(o, "history", cJSON_Duplicate(job->history, true));
    if (cJSON_GetArraySize(job->grid))
        cJSON_AddItemToObject(o, "grid", cJSON_Duplicate(job->grid, true));
    if (job->error[0])
        cJSON_AddStringToObject(o, "error", job->error);
    if (job->has_result) {
        cJSON *r = cJSON_AddObjectToObject(o, "result");
        cJSON_AddStringToObject(r, "model", job->model);
        cJSON_AddNumberToObject(r, "version", job->version);
        cJSON_AddNumberToObject(r, "test_accuracy", job->test_accuracy);
        cJSON_AddNumberToObject(r, "test_loss", job->test_loss);
        cJSON_AddNumberToObject(r, "best_train_accuracy", job->best_train_accuracy);
    }
    add_time(o, "created_at", job->created);
    add_time(o, "started_at", job->started);
    add_time(o, "finished_at", job->finished);
    return o;
}

void jobs_count(Jobs *j, void (*fn)(const char *state, int n, void *ctx), void *ctx)
{
    int counts[6] = {0};
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < j->n; i++)
        counts[j->jobs[i]->state]++;
    pthread_mutex_unlock(&j->lock);
    for (int s = 0; s < 6; s++)
        fn(state_names[s], counts[s], ctx);
}

cJSON *jobs_get(Jobs *j, int id)
{
    pthread_mutex_lock(&j->lock);
    Job *job = find(j, id);
    cJSON *o = job ? job_json(job) : NULL;
    pthread_mutex_unlock(&j->lock);
    return o;
}

cJSON *jobs_list(Jobs *j)
{
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < j->n; i++)
        cJSON_AddItemToArray(arr, job_json(j->jobs[i]));
    pthread_mutex_unlock(&j->lock);
    return arr;
}

int jobs_cancel(Jobs *j, int id, cJSON **out, MnError *err)
{
    pthread_mutex_lock(&j->lock);
    Job *job = find(j, id);
    int rc = 0;
    if (!job)
        rc = mn_fail(err, MN_ENOTFOUND, "job %d not found", id);
    else if (job->state == JOB_QUEUED) {
        j->queued--;
        finish(j, job, JOB_CANCELLED, "cancelled");
    } else if (job->state == JOB_RUNNING) {
        atomic_store(&job->cancel, true); /* the worker stops after this batch */
    } else {
        rc = mn_fail(err, MN_ECANCELLED, "job %d already %s", id, state_names[job->state]);
    }
    *out = job ? job_json(job) : NULL;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- event streams ---- */

JobStream *jobs_stream_open(Jobs *j, int id, struct MHD_Connection *conn)
{
    JobStream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_lock(&j->lock);
    if (!find(j, id)) {
        pthread_mutex_unlock(&j->lock);
        free(s);
        return NULL;
    }
    s->jobs = j;
    s->id = id;
    s->conn = conn;
    s->ended = j->streams_ended;
    s->next = j->streams;
    j->streams = s;
    pthread_mutex_unlock(&j->lock);
    return s;
}

static void set_event(JobStream *s, const char *event, cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    size_t n = strlen(event) + (text ? strlen(text) : 2) + 32;
    s->pending = malloc(n);
    if (s->pending)
        s->pending_len = (size_t)snprintf(s->pending, n, "event: %s\ndata: %s\n\n", event,
                                          text ? text : "{}");
    s->pending_off = 0;
    cJSON_free(text);
}

/* Picks the next event to send (lock held); false when there is none yet. */
static bool next_event(JobStream *s, Job *job)
{
    int history = cJSON_GetArraySize(job->history);
    if (s->epochs_sent < history) {
        set_event(s, "epoch", cJSON_Duplicate(cJSON_GetArrayItem(job->history, s->epochs_sent++), true));
        return true;
    }
    if (job->state >= JOB_SUCCEEDED) {
        if (s->done_sent)
            return false;
        s->done_sent = true;
        set_event(s, "done", job_json(job));
        return true;
    }
    double now = clock_seconds();
    if (job->state == JOB_RUNNING && (job->epoch != s->last_epoch || job->batch != s->last_batch) &&
        now - s->last_progress >= PROGRESS_EVERY) {
        s->last_epoch = job->epoch;
        s->last_batch = job->batch;
        s->last_progress = now;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "status", state_names[job->state]);
        cJSON_AddNumberToObject(p, "epoch", job->epoch);
        cJSON_AddNumberToObject(p, "epochs", job->epochs);
        cJSON_AddNumberToObject(p, "batch", job->batch);
        cJSON_AddNumberToObject(p, "batches", job->batches);
        set_event(s, "progress", p);
        return true;
    }
    return false;
}

long jobs_stream_read(JobStream *s, char *buf, size_t max)
{
    Jobs *j = s->jobs;
    pthread_mutex_lock(&j->lock);
    long ret;
    Job *job = find(j, s->id);
    if (!s->pending && !s->ended && job && !next_event(s, job)) {
        if (s->done_sent || !job) {
            ret = MHD_CONTENT_READER_END_OF_STREAM;
        } else {
            /* Parked until the job changes: suspend under the lock that
             * wake_streams takes, so no wake-up is lost in between. */
            s->waiting = true;
            MHD_suspend_connection(s->conn);
            ret = 0;
        }
    } else if (!s->pending) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        size_t n = s->pending_len - s->pending_off < max ? s->pending_len - s->pending_off : max;
        memcpy(buf, s->pending + s->pending_off, n);
        s->pending_off += n;
        if (s->pending_off == s->pending_len) {
            free(s->pending);
            s->pending = NULL;
        }
        ret = (long)n;
    }
    pthread_mutex_unlock(&j->lock);
    return ret;
}

void jobs_stream_close(JobStream *s)
{
    if (!s)
        return;
    Jobs *j = s->jobs;
    pthread_mutex_lock(&j->lock);
    for (JobStream **link = &j->streams; *link; link = &(*link)->next)
        if (*link == s) {
            *link = s->next;
            break;
        }
    pthread_mutex_unlock(&j->lock);
    free(s->pending);
    free(s);
}

void jobs_streams_end(Jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->streams_ended = true;
    for (JobStream *s = j->streams; s; s = s->next) {
        s->ended = true;
        if (s->waiting) {
            s->waiting = false;
            MHD_resume_connection(s->conn);
        }
    }
    pthread_mutex_unlock(&j->lock);
}
