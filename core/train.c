/* train.c - model.fit and model.evaluate over in-memory datasets. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "denormal.h"
#include "metrics.h"
#include "optim.h"
#include "plateau.h"
#include "step.h"

#define EVAL_BATCH 256

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int check_dataset(const Model *m, const Dataset *d, MnError *err)
{
    Shape in = m->spec.input;
    if (d->shape.h != in.h || d->shape.w != in.w || d->shape.c != in.c)
        return mn_fail(err, MN_ESPEC, "dataset \"%s\" has %dx%dx%d images but the model takes %dx%dx%d",
                       d->name, d->shape.h, d->shape.w, d->shape.c, in.h, in.w, in.c);
    if (d->n_classes != m->n_classes)
        return mn_fail(err, MN_ESPEC,
                       "dataset \"%s\" has %d classes but the model's last layer has %d outputs",
                       d->name, d->n_classes, m->n_classes);
    return 0;
}

/* Evaluation on samples [first, first + n) of d, through an existing run. */
static void evaluate_range(const Model *m, ModelRun *run, int run_batch, const Dataset *d,
                           size_t first, long n, uint8_t *labels, Metrics *mt)
{
    for (long done = 0; done < n;) {
        int b = n - done < run_batch ? (int)(n - done) : run_batch;
        step_gather(m, d, NULL, first + done, b, model_run_input(run), labels);
        const float *out = model_forward(m, run, b, false);
        metrics_add(mt, out, labels, b, model_loss(m, run, labels, b));
        done += b;
    }
}

/* Keras's EarlyStopping: improvement is a decrease (loss) or an increase
 * (accuracy) by more than min_delta over the best so far. */
static bool improved(const EarlyStopping *es, double current, double best)
{
    if (es->monitor_accuracy)
        return current - es->min_delta > best;
    return current + es->min_delta < best;
}

/* The metric a callback monitors ("val_loss", ...) in an epoch's stats. */
static double monitored(bool accuracy, bool validation, const EpochStats *e)
{
    if (validation)
        return accuracy ? e->val_accuracy : e->val_loss;
    return accuracy ? e->accuracy : e->loss;
}

/* Each layer's Keras variables (kernel, bias) as spans of the buffer. */
static int model_variables(const Model *m, ParamSpan *vars)
{
    int n = 0;
    for (int i = 0; i < m->spec.n_layers; i++) {
        const Layer *l = &m->spec.layers[i];
        size_t sizes[LAYER_MAX_VARIABLES], offset = l->param_offset;
        int k = layer_variables(l, sizes);
        for (int j = 0; j < k && n < OPTIM_MAX_VARIABLES; j++, n++) {
            vars[n] = (ParamSpan){offset, sizes[j]};
            offset += sizes[j];
        }
    }
    return n;
}

static int fit(Model *m, const Dataset *train, const Dataset *test, const TrainCallbacks *cb,
               TrainResult *res, MnError *err)
{
    const ModelSpec *s = &m->spec;
    memset(res, 0, sizeof *res);
    int rc = check_dataset(m, train, err);
    if (rc)
        return rc;
    const Dataset *val = NULL;
    long n_train = train->n, n_val = 0;
    size_t val_first = 0;
    if (s->validate_on_test) {
        if (!test)
            return mn_fail(err, MN_EINVAL, "validation_data \"test\" needs the test split");
        if ((rc = check_dataset(m, test, err)))
            return rc;
        val = test;
        n_val = test->n;
    } else if (s->validation_split > 0.0f) {
        /* Keras: the last fraction of the data, taken before any shuffling. */
        n_train = (long)((double)train->n * (1.0 - (double)s->validation_split));
        n_val = train->n - n_train;
        val = train;
        val_first = (size_t)n_train;
    }
    if (n_train < 1)
        return mn_fail(err, MN_EINVAL, "no training samples left after the validation split");

    size_t numel = shape_numel(s->input);
    if (s->preprocess == INPUT_STANDARDIZE) {
        free(m->input_mean);
        free(m->input_std);
        m->input_mean = malloc(numel * sizeof(float));
        m->input_std = malloc(numel * sizeof(float));
        if (!m->input_mean || !m->input_std)
            return mn_fail(err, MN_ENOMEM, "out of memory");
        dataset_standardize_stats(train, (int)n_train, m->input_mean, m->input_std);
    }

    int batch = s->batch_size < n_train ? s->batch_size : (int)n_train;
    int eval_batch = EVAL_BATCH > batch ? EVAL_BATCH : batch;
    StepLanes *lanes = step_lanes_new(m, batch, cb ? cb->threads : 1, err);
    ModelRun *eval_run = val ? model_run_new(m, eval_batch, false, err) : NULL;
    float *grads = calloc(m->n_params ? m->n_params : 1, sizeof *grads);
    /* the best epoch's parameters and moving statistics, restored together */
    float *best = s->early_stopping.restore_best
                      ? malloc((m->n_params + m->n_state) * sizeof *best + 1) : NULL;
    uint32_t *idx = malloc((size_t)n_train * sizeof *idx);
    uint8_t *labels = malloc((size_t)eval_batch);
    res->history = calloc((size_t)s->epochs, sizeof *res->history);
    Optimizer opt = {0};
    if (!lanes || (val && !eval_run) || !grads || (s->early_stopping.restore_best && !best) ||
        !idx || !labels || !res->history) {
        rc = mn_fail(err, MN_ENOMEM, "training buffers for %zu parameters: out of memory", m->n_params);
        goto done;
    }
    ParamSpan vars[OPTIM_MAX_VARIABLES];
    if ((rc = optim_init(&opt, &s->optim, m->n_params, vars, model_variables(m, vars), err)))
        goto done;
    Plateau plateau;
    plateau_start(&plateau, &s->reduce_lr);
    for (long i = 0; i < n_train; i++)
        idx[i] = (uint32_t)i;

    Rng rng;
    rng_seed(&rng, s->seed);
    const EarlyStopping *es = &s->early_stopping;
    double best_value = es->monitor_accuracy ? -INFINITY : INFINITY, t_fit = now_seconds();
    int wait = 0, batches = (int)((n_train + batch - 1) / batch);
    res->has_val = val != NULL;
    res->lanes = step_lanes_count(lanes);
    res->n_train = (int)n_train;
    res->n_val = (int)n_val;
    for (int epoch = 1; epoch <= s->epochs; epoch++) {
        double t0 = now_seconds();
        if (s->shuffle)
            rng_shuffle(&rng, idx, (size_t)n_train);
        Metrics mt;
        metrics_reset(&mt, m->n_classes, NULL);
        TrainProgress p = {.epoch = epoch, .epochs = s->epochs, .batches = batches,
                           .total_samples = n_train, .has_val = false};
        for (int b = 0; b < batches; b++) {
            if (cb && cb->cancel && atomic_load(cb->cancel)) {
                rc = mn_fail(err, MN_ECANCELLED, "cancelled in epoch %d", epoch);
                goto done;
            }
            size_t first = (size_t)b * batch;
            int n = n_train - (long)first < batch ? (int)(n_train - (long)first) : batch;
            double loss = step_lanes_run(lanes, train, idx, first, n, grads, &mt);
            if (!isfinite(loss)) {
                rc = mn_fail(err, MN_ESPEC,
                             "the loss became %g in epoch %d, batch %d: lower the learning rate",
                             loss, epoch, b + 1);
                goto done;
            }
            optim_step(&opt, m->params, grads);
            step_lanes_update_state(lanes, m);
            if (cb && cb->on_batch) {
                p.batch = b + 1;
                p.samples = (long)first + n;
                p.loss = metrics_loss(&mt);
                p.accuracy = metrics_accuracy(&mt);
                p.seconds = now_seconds() - t0;
                cb->on_batch(&p, cb->ctx);
            }
        }
        EpochStats *e = &res->history[epoch - 1];
        e->loss = metrics_loss(&mt);
        e->accuracy = metrics_accuracy(&mt);
        if (val) {
            Metrics vm;
            metrics_reset(&vm, m->n_classes, NULL);
            evaluate_range(m, eval_run, eval_batch, val, val_first, n_val, labels, &vm);
            e->val_loss = metrics_loss(&vm);
            e->val_accuracy = metrics_accuracy(&vm);
        }
        e->seconds = now_seconds() - t0;
        e->learning_rate = optim_learning_rate(&opt);
        res->epochs_run = epoch;
        if (cb && cb->on_epoch) {
            p.batch = batches;
            p.samples = n_train;
            p.loss = e->loss;
            p.accuracy = e->accuracy;
            p.has_val = val != NULL;
            p.val_loss = e->val_loss;
            p.val_accuracy = e->val_accuracy;
            p.seconds = e->seconds;
            p.learning_rate = e->learning_rate;
            cb->on_epoch(&p, cb->ctx);
        }
        if (s->reduce_lr.enabled)
            opt.lr = plateau_epoch_end(
                &plateau, monitored(s->reduce_lr.monitor_accuracy, s->reduce_lr.monitor_validation, e),
                opt.lr);
        if (!es->enabled)
            continue;
        double current = monitored(es->monitor_accuracy, es->monitor_validation, e);
        if (improved(es, current, best_value)) {
            best_value = current;
            wait = 0;
            res->best_epoch = epoch;
            if (best) {
                memcpy(best, m->params, m->n_params * sizeof *best);
                memcpy(best + m->n_params, m->state, m->n_state * sizeof *best);
            }
        } else if (++wait >= es->patience) {
            res->stopped_early = epoch < s->epochs;
            break;
        }
    }
    if (best && res->best_epoch && res->best_epoch != res->epochs_run) {
        memcpy(m->params, best, m->n_params * sizeof *best);
        memcpy(m->state, best + m->n_params, m->n_state * sizeof *best);
    } else
        res->best_epoch = 0;
    res->seconds = now_seconds() - t_fit;
    rc = 0;
done:
    optim_free(&opt);
    step_lanes_free(lanes);
    model_run_free(eval_run);
    free(grads);
    free(best);
    free(idx);
    free(labels);
    if (rc) {
        free(res->history);
        res->history = NULL;
    }
    return rc;
}

void train_result_free(TrainResult *res)
{
    free(res->history);
    res->history = NULL;
}

int train_evaluate(const Model *m, const Dataset *d, int n, EvalResult *out, MnError *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_dataset(m, d, err);
    if (rc)
        return rc;
    long count = n > 0 && n < d->n ? n : d->n;
    int k = m->n_classes;
    ModelRun *run = model_run_new(m, EVAL_BATCH, false, err);
    uint8_t *labels = malloc(EVAL_BATCH);
    out->confusion = calloc((size_t)k * k, sizeof *out->confusion);
    if (!run || !labels || !out->confusion) {
        model_run_free(run);
        free(labels);
        eval_result_free(out);
        return mn_fail(err, MN_ENOMEM, "evaluation buffers: out of memory");
    }
    Metrics mt;
    metrics_reset(&mt, k, out->confusion);
    evaluate_range(m, run, EVAL_BATCH, d, 0, count, labels, &mt);
    out->loss = metrics_loss(&mt);
    out->accuracy = metrics_accuracy(&mt);
    out->n = mt.n;
    out->k = k;
    model_run_free(run);
    free(labels);
    return 0;
}

void eval_result_free(EvalResult *r)
{
    free(r->confusion);
    r->confusion = NULL;
}

int train_fit(Model *m, const Dataset *train, const Dataset *test, const TrainCallbacks *cb,
              TrainResult *res, MnError *err)
{
    unsigned saved = denormals_flush_begin();
    int rc = fit(m, train, test, cb, res, err);
    denormals_flush_end(saved);
    return rc;
}
