/* bench_core.c - the engine's side of `make bench`, one JSON line per run.
 *   mnistd-bench gemm                       sgemm GFLOP/s on large matrices
 *   mnistd-bench train SPEC [--data DIR] [--epochs N] [--threads N]
 *                                           seconds per epoch, test accuracy,
 *                                           FLOPs, peak memory, then inference
 * Training computes each batch on --threads threads (step.h); BLAS threads
 * come from MNISTD_BLAS_THREADS, as for mnistd itself. Timing
 * mirrors bench/torch_peer.py: seconds per epoch is the median of the
 * epochs after the first; inference is batch-1 latency over 1000 test
 * samples and the throughput of classifying the whole test split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "blas.h"
#include "dataset.h"
#include "model.h"
#include "spec.h"
#include "train.h"

#define MAX_EPOCHS 64
#define LATENCY_SAMPLES 1000
#define INFER_CHUNK 256 /* how mnistd evaluates: chunks that stay in cache */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), sorting v. */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* The best of three timed runs of an n^3 product, each at least 0.3 s. */
static double gemm_gflops(int n)
{
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 97) / 97.0f;
        b[i] = (float)(i % 89) / 89.0f;
    }
    blas_gemm(false, false, n, n, n, 1.0f, a, b, 0.0f, c);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        long iters = 0;
        double t0 = now(), t;
        do {
            blas_gemm(false, false, n, n, n, 1.0f, a, b, 0.0f, c);
            iters++;
        } while ((t = now() - t0) < 0.3);
        double g = 2.0 * n * n * (double)n * iters / t / 1e9;
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best;
}

/* "cpu":..,"isa":..,"kernel":..,"kernel_chosen_by":..: what every line records. */
static const char *kernel_fields(void)
{
    static char s[256];
    blas_info_json(s, sizeof s);
    return s;
}

static int cmd_gemm(void)
{
    printf("{\"tool\":\"mnistd\",\"kind\":\"gemm\",%s,\"threads\":%d,"
           "\"gflops_1024\":%.1f,\"gflops_2048\":%.1f}\n",
           kernel_fields(), blas_threads(), gemm_gflops(1024), gemm_gflops(2048));
    return 0;
}

typedef struct {
    double seconds[MAX_EPOCHS];
    int n;
} EpochTimes;

static void on_epoch(const TrainProgress *p, void *ctx)
{
    EpochTimes *t = ctx;
    if (t->n < MAX_EPOCHS)
        t->seconds[t->n++] = p->seconds;
    fprintf(stderr, "epoch %d: %.3f s  loss %.4f  accuracy %.4f\n", p->epoch, p->seconds,
            p->loss, p->accuracy);
}

/* Batch-1 latency (median, p99 in microseconds) over the first test samples,
 * and samples per second classifying the whole split in chunks. */
static int infer(const Model *m, const Dataset *test, double *b1_median, double *b1_p99,
                 double *throughput, MnError *err)
{
    ModelRun *one = model_run_new(m, 1, false, err);
    ModelRun *many = one ? model_run_new(m, INFER_CHUNK, false, err) : NULL;
    if (!many) {
        model_run_free(one);
        return -1;
    }
    size_t numel = shape_numel(test->shape);
    static double lat[LATENCY_SAMPLES];
    for (int i = 0; i < 50; i++) {
        model_prepare_inputs(m, test->images + (size_t)i * numel, 1, model_run_input(one));
        model_forward(m, one, 1, false);
    }
    for (int i = 0; i < LATENCY_SAMPLES; i++) {
        double t0 = now();
        model_prepare_inputs(m, test->images + (size_t)(i % test->n) * numel, 1,
                             model_run_input(one));
        model_forward(m, one, 1, false);
        lat[i] = (now() - t0) * 1e6;
    }
    *b1_p99 = quantile(lat, LATENCY_SAMPLES, 0.99);
    *b1_median = quantile(lat, LATENCY_SAMPLES, 0.5);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (int first = 0; first < test->n; first += INFER_CHUNK) {
            int n = test->n - first < INFER_CHUNK ? test->n - first : INFER_CHUNK;
            model_prepare_inputs(m, test->images + (size_t)first * numel, n,
                                 model_run_input(many));
            model_forward(m, many, n, false);
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    *throughput = test->n / best;
    model_run_free(one);
    model_run_free(many);
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    const char *spec_path = NULL, *data_dir = "data";
    int epochs = 0, threads = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data_dir = argv[++i];
        else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else
            spec_path = argv[i];
    }
    if (!spec_path || epochs < 0 || epochs > MAX_EPOCHS) {
        fprintf(stderr, "usage: mnistd-bench train SPEC.json [--data DIR] [--epochs 1..%d] "
                        "[--threads N]\n",
                MAX_EPOCHS);
        return 2;
    }
    MnError err = {0};
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec spec;
    Dataset train = {0}, test = {0};
    Model *m = NULL;
    TrainResult tr = {0};
    EvalResult ev = {0};
    EpochTimes times = {0};
    double b1_median = 0, b1_p99 = 0, throughput = 0;
    int status = 1;
    if (spec_load_file(spec_path, &lim, &spec, &err))
        goto fail;
    if (epochs)
        spec.epochs = epochs;
    if (dataset_load(data_dir, spec.dataset, SPLIT_TRAIN, &train, &err) ||
        dataset_load(data_dir, spec.dataset, SPLIT_TEST, &test, &err) ||
        model_build(&spec, &lim, &m, &err))
        goto fail;
    TrainCallbacks cb = {.on_epoch = on_epoch, .ctx = &times, .threads = threads};
    if (train_fit(m, &train, &test, &cb, &tr, &err))
        goto fail;
    long train_rss = peak_rss_kb();
    if (train_evaluate(m, &test, 0, &ev, &err) ||
        infer(m, &test, &b1_median, &b1_p99, &throughput, &err))
        goto fail;
    double first = times.seconds[0];
    double per_epoch = times.n > 1 ? quantile(times.seconds + 1, times.n - 1, 0.5) : first;
    long macs = model_forward_macs(m);
    double train_flops = 6.0 * (double)macs; /* forward, dX, dW: 2 FLOPs per MAC each */
    printf("{\"tool\":\"mnistd\",\"kind\":\"train\",\"spec\":\"%s\",\"params\":%zu,"
           "\"batch\":%d,\"threads\":%d,\"lanes\":%d,%s,\"epochs_run\":%d,"
           "\"first_epoch_s\":%.3f,\"sec_per_epoch\":%.4f,\"test_accuracy\":%.4f,"
           "\"fwd_macs_per_sample\":%ld,\"train_flops_per_sample\":%.0f,\"train_gflops\":%.2f,"
           "\"peak_rss_train_kb\":%ld,\"infer_b1_median_us\":%.1f,\"infer_b1_p99_us\":%.1f,"
           "\"infer_samples_per_s\":%.0f}\n",
           spec.name, m->n_params, spec.batch_size, threads, tr.lanes,
           kernel_fields(), tr.epochs_run, first, per_epoch, ev.accuracy, macs,
           train_flops, train_flops * tr.n_train / per_epoch / 1e9, train_rss, b1_median,
           b1_p99, throughput);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "mnistd-bench: %s\n", err.msg);
done:
    eval_result_free(&ev);
    train_result_free(&tr);
    model_free(m);
    dataset_free(&train);
    dataset_free(&test);
    return status;
}

int main(int argc, char **argv)
{
    blas_set_threads(blas_threads_wanted());
    if (argc >= 2 && strcmp(argv[1], "gemm") == 0)
        return cmd_gemm();
    if (argc >= 3 && strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 2, argv + 2);
    fprintf(stderr, "usage: mnistd-bench gemm | train SPEC.json [--data DIR] [--epochs N]\n");
    return 2;
}
