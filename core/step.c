/* step.c - one training batch in one or two lanes, each in slices (see step.h).
 * A model with batch normalization runs each lane whole (no slices) and in
 * parts: both lanes stop before each layer that needs the whole batch's
 * sums, lane 0's and lane 1's are added in that order into both, and both
 * go on; the same additions on one thread or two. */
#include "step.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "denormal.h"

/* Below this many multiply-adds per batch a step is over in about 100 us,
 * and handing half of it to another thread gains less than the hand-off
 * costs (784-64-10 at batch 32: 1.6 million; the tutorial's CNN: 10). */
#define LANE_MIN_MACS (4L << 20)
#define GATHER_AHEAD 4 /* samples prefetched ahead while gathering */
/* A lane pushes its samples through the network a slice at a time, few
 * enough that the slice's activations stay in cache from one layer to the
 * next. At batch 128 the first CNN's 64 samples a lane held 14 MB, every
 * layer's pass went out to memory, and an epoch took 15% longer than at
 * batch 32; in slices of 18 it is no slower than batch 32. */
#define SLICE_BYTES (4L << 20)

typedef struct {
    ModelRun *run;
    float *grads;        /* lane 0: the caller's buffer for this step */
    uint8_t *labels;
    size_t first;        /* within the batch */
    int n;
    Metrics mt;          /* this step's samples in this lane */
    enum { PART_START, PART_FORWARD, PART_BACKWARD } part; /* in parts: where it is */
    bool step_done;      /* in parts: the last part ended the step */
} Lane;

struct StepLanes {
    const Model *m;
    int lanes, batch;    /* batch: the current step's size, the loss's divisor */
    int slice;           /* samples a lane pushes through the network at a time */
    bool in_parts;       /* the model needs whole-batch sums: lanes run in parts */
    Lane lane[STEP_MAX_LANES];
    /* the current step, read by the worker */
    const Dataset *d;
    const uint32_t *idx;
    size_t first;
    /* lane 1's thread, when there is one */
    bool has_worker, quit;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long started, finished; /* steps handed to the worker, and done by it */
};

void step_gather(const Model *m, const Dataset *d, const uint32_t *idx, size_t first, int n,
                 float *x, uint8_t *labels)
{
    size_t numel = shape_numel(d->shape);
    for (int i = 0; i < n; i++) {
        size_t s = idx ? idx[first + i] : first + i;
        if (idx && i + GATHER_AHEAD < n) {
            /* shuffled samples are scattered over the whole set: ask for
             * a later one's cache lines now, or every pixel waits on memory */
            const uint8_t *next = d->images + (size_t)idx[first + i + GATHER_AHEAD] * numel;
            for (size_t at = 0; at < numel; at += 64)
                __builtin_prefetch(next + at);
        }
        model_prepare_inputs(m, d->images + s * numel, 1, x + (size_t)i * numel);
        labels[i] = d->labels[s];
    }
}

static void lane_run(StepLanes *s, Lane *l)
{
    const Model *m = s->m;
    memset(l->grads, 0, m->n_params * sizeof *l->grads);
    metrics_reset(&l->mt, m->n_classes, NULL);
    for (int done = 0; done < l->n; done += s->slice) {
        int n = l->n - done < s->slice ? l->n - done : s->slice;
        step_gather(m, s->d, s->idx, s->first + l->first + (size_t)done, n,
                    model_run_input(l->run), l->labels);
        model_forward(m, l->run, n, true);
        double loss = model_backward(m, l->run, l->labels, n, s->batch, l->grads);
        metrics_add(&l->mt, model_run_activation(l->run, m->spec.n_layers - 1), l->labels, n,
                    loss);
    }
}

/* One part of a lane of a model with whole-batch sums: up to its next
 * stop (step_done false) or to the end of its step (step_done true). */
static void lane_part(StepLanes *s, Lane *l)
{
    const Model *m = s->m;
    l->step_done = false;
    if (l->part == PART_START) {
        memset(l->grads, 0, m->n_params * sizeof *l->grads);
        metrics_reset(&l->mt, m->n_classes, NULL);
        step_gather(m, s->d, s->idx, s->first + l->first, l->n, model_run_input(l->run),
                    l->labels);
        l->part = PART_FORWARD;
    }
    if (l->part == PART_FORWARD) {
        if (!model_forward_part(m, l->run, l->n))
            return;
        l->part = PART_BACKWARD;
    }
    double loss;
    if (!model_backward_part(m, l->run, l->labels, l->n, s->batch, l->grads, &loss))
        return;
    metrics_add(&l->mt, model_run_activation(l->run, m->spec.n_layers - 1), l->labels, l->n,
                loss);
    l->part = PART_START;
    l->step_done = true;
}

/* What a lane does when it is handed work: its step, or its next part. */
static void lane_work(StepLanes *s, Lane *l)
{
    if (s->in_parts)
        lane_part(s, l);
    else
        lane_run(s, l);
}

static void *worker_main(void *arg)
{
    StepLanes *s = arg;
    unsigned saved = denormals_flush_begin(); /* a per-thread mode: as the caller's */
    unsigned long seen = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->started == seen && !s->quit)
            pthread_cond_wait(&s->go, &s->mu);
        if (s->quit)
            break;
        seen = s->started;
        pthread_mutex_unlock(&s->mu);
        lane_work(s, &s->lane[1]);
        pthread_mutex_lock(&s->mu);
        s->finished = seen;
        pthread_cond_signal(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
    denormals_flush_end(saved);
    return NULL;
}

StepLanes *step_lanes_new(const Model *m, int max_batch, int threads, MnError *err)
{
    StepLanes *s = calloc(1, sizeof *s);
    if (!s)
        return mn_fail(err, MN_ENOMEM, "out of memory"), NULL;
    s->m = m;
    s->lanes = max_batch >= 2 && model_forward_macs(m) * max_batch >= LANE_MIN_MACS ? 2 : 1;
    int per_lane = (max_batch + s->lanes - 1) / s->lanes;
    size_t fit = SLICE_BYTES / (model_activation_floats(m) * sizeof(float));
    s->slice = fit < 1 ? 1 : fit < (size_t)per_lane ? (int)fit : per_lane;
    /* slices would each see part of the batch: a lane's whole share at once */
    s->in_parts = model_needs_batch_sums(m);
    if (s->in_parts)
        s->slice = per_lane;
    for (int i = 0; i < s->lanes; i++) {
        Lane *l = &s->lane[i];
        l->run = model_run_new(m, s->slice, true, err);
        l->labels = malloc((size_t)s->slice);
        l->grads = i ? malloc((m->n_params ? m->n_params : 1) * sizeof *l->grads) : NULL;
        if (!l->run || !l->labels || (i && !l->grads)) {
            step_lanes_free(s);
            return mn_fail(err, MN_ENOMEM, "training lanes: out of memory"), NULL;
        }
        model_run_reseed(l->run, m->spec.seed + (uint64_t)i); /* dropout: a stream per lane */
    }
    if (s->lanes > 1 && threads > 1) {
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->go, NULL);
        pthread_cond_init(&s->done, NULL);
        if (pthread_create(&s->worker, NULL, worker_main, s) == 0) {
            s->has_worker = true;
        } else { /* one thread will do: the same numbers, later */
            pthread_cond_destroy(&s->go);
            pthread_cond_destroy(&s->done);
            pthread_mutex_destroy(&s->mu);
        }
    }
    return s;
}

void step_lanes_free(StepLanes *s)
{
    if (!s)
        return;
    if (s->has_worker) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_cond_signal(&s->go);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->worker, NULL);
        pthread_cond_destroy(&s->go);
        pthread_cond_destroy(&s->done);
        pthread_mutex_destroy(&s->mu);
    }
    for (int i = 0; i < s->lanes; i++) {
        model_run_free(s->lane[i].run);
        free(s->lane[i].labels);
        if (i)
            free(s->lane[i].grads);
    }
    free(s);
}

int step_lanes_count(const StepLanes *s) { return s->lanes; }

int step_lanes_slice(const StepLanes *s) { return s->slice; }

/* Each lane's step, or each lane's next part, on two threads or in turn. */
static void lanes_work(StepLanes *s, bool split)
{
    Lane *a = &s->lane[0], *b = &s->lane[1];
    if (split && s->has_worker) {
        pthread_mutex_lock(&s->mu);
        s->started++;
        pthread_cond_signal(&s->go);
        pthread_mutex_unlock(&s->mu);
        lane_work(s, a);
        pthread_mutex_lock(&s->mu);
        while (s->finished != s->started)
            pthread_cond_wait(&s->done, &s->mu);
        pthread_mutex_unlock(&s->mu);
    } else {
        lane_work(s, a);
        if (split)
            lane_work(s, b);
    }
}

/* Both lanes stopped at the same layer: the whole batch's sums, lane 0's
 * plus lane 1's, into both. */
static void add_lane_sums(StepLanes *s)
{
    size_t n, nb;
    double *sa = model_run_sums(s->lane[0].run, &n), *sb = model_run_sums(s->lane[1].run, &nb);
    assert(n == nb); /* one model's runs */
    for (size_t k = 0; k < n; k++)
        sa[k] = sb[k] = sa[k] + sb[k];
}

void step_lanes_update_state(const StepLanes *s, Model *m)
{
    model_update_state(m, s->lane[0].run);
}

double step_lanes_run(StepLanes *s, const Dataset *d, const uint32_t *idx, size_t first, int n,
                      float *grads, Metrics *mt)
{
    s->d = d;
    s->idx = idx;
    s->first = first;
    s->batch = n;
    Lane *a = &s->lane[0], *b = &s->lane[1];
    a->grads = grads;
    a->first = 0;
    a->n = s->lanes > 1 ? (n + 1) / 2 : n;
    bool split = s->lanes > 1 && n - a->n > 0;
    if (split) {
        b->first = (size_t)a->n;
        b->n = n - a->n;
    }
    do {
        lanes_work(s, split);
        if (split && s->in_parts && !a->step_done)
            add_lane_sums(s);
    } while (s->in_parts && !a->step_done);
    metrics_merge(mt, &a->mt);
    double loss = a->mt.loss_sum;
    if (split) {
        for (size_t i = 0; i < s->m->n_params; i++)
            grads[i] += b->grads[i];
        metrics_merge(mt, &b->mt);
        loss += b->mt.loss_sum;
    }
    return loss / n;
}
