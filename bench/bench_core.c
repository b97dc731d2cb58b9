/* bench_core.c - the engine's side of `make bench`, one JSON line per run.
 *   mnistd-bench gemm                       sgemm GFLOP/s on large matrices
 *   mnistd-bench train SPEC [--data DIR] [--epochs N] [--threads N]
 *                                           seconds per epoch, test accuracy,
 *                                           FLOPs, peak memory, then inference
 *   mnistd-bench infer SPEC [--data DIR] [--threads N]
 *                                           inference alone, untrained weights
 *                                           (its speed does not depend on them)
 * Training computes each batch on --threads threads (step.h); BLAS threads
 * come from MNISTD_BLAS_THREADS, as for mnistd itself. Timing
 * mirrors bench/torch_peer.py: seconds per epoch is the median of the
 * epochs after the first; inference is batch-1 latency over 1000 test
 * samples on the caller's thread and the throughput of classifying the
 * whole test split, once on one thread and once cut into --threads
 * contiguous parts run at once (bench/ort/ort_peer.mjs, ONNX Runtime's
 * side, gives its two intra-op threads the same split). */
#include <pthread.h>
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
#define MN_STR_(x) #x
#define MN_STR(x) MN_STR_(x)
#define MAX_INFER_THREADS 16
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

/* One thread's part of the test split: samples [first, first + n). */
typedef struct {
    const Model *m;
    const Dataset *test;
    ModelRun *run; /* for INFER_CHUNK samples, owned by the caller */
    int first, n;
} InferPart;

static void *infer_part(void *arg)
{
    const InferPart *p = arg;
    size_t numel = shape_numel(p->test->shape);
    for (int first = p->first; first < p->first + p->n; first += INFER_CHUNK) {
        int left = p->first + p->n - first;
        int n = left < INFER_CHUNK ? left : INFER_CHUNK;
        model_prepare_inputs(p->m, p->test->images + (size_t)first * numel, n,
                             model_run_input(p->run));
        model_forward(p->m, p->run, n, false);
    }
    return NULL;
}

/* Samples per second classifying the whole split on `threads` threads (the
 * caller's and threads - 1 more), each its own contiguous part: best of 3,
 * after one pass untimed, as bench/ort/ort_peer.mjs times ONNX Runtime. */
static int infer_throughput(const Model *m, const Dataset *test, int threads, double *out,
                            MnError *err)
{
    InferPart parts[MAX_INFER_THREADS];
    pthread_t tid[MAX_INFER_THREADS];
    int made = 0, status = -1;
    for (; made < threads; made++) {
        int lo = (int)((long)test->n * made / threads);
        int hi = (int)((long)test->n * (made + 1) / threads);
        parts[made] = (InferPart){.m = m, .test = test, .first = lo, .n = hi - lo,
                                  .run = model_run_new(m, INFER_CHUNK, false, err)};
        if (!parts[made].run)
            goto done;
    }
    double best = 1e30;
    for (int rep = -1; rep < 3; rep++) { /* -1: the untimed pass */
        double t0 = now();
        int started = 1;
        for (; started < threads; started++)
            if (pthread_create(&tid[started], NULL, infer_part, &parts[started]))
                break;
        infer_part(&parts[0]);
        for (int i = 1; i < started; i++)
            pthread_join(tid[i], NULL);
        if (started < threads) {
            mn_fail(err, MN_ENOMEM, "cannot start inference thread %d", started);
            goto done;
        }
        double t = now() - t0;
        if (rep >= 0 && t < best)
            best = t;
    }
    *out = test->n / best;
    status = 0;
done:
    while (made > 0)
        model_run_free(parts[--made].run);
    return status;
}

typedef struct {
    double b1_median, b1_p99; /* microseconds per call */
    double throughput;        /* samples/s on one thread */
    double throughput_n;      /* samples/s on `threads` threads */
    int threads;
} InferFigures;

/* Batch-1 latency (median, p99 in microseconds) over the first test samples,
 * and samples per second classifying the whole split in chunks. */
static int infer(const Model *m, const Dataset *test, int threads, InferFigures *f,
                 MnError *err)
{
    ModelRun *one = model_run_new(m, 1, false, err);
    if (!one)
        return -1;
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
    model_run_free(one);
    f->b1_p99 = quantile(lat, LATENCY_SAMPLES, 0.99);
    f->b1_median = quantile(lat, LATENCY_SAMPLES, 0.5);
    f->threads = threads < 1 ? 1 : threads > MAX_INFER_THREADS ? MAX_INFER_THREADS : threads;
    if (infer_throughput(m, test, 1, &f->throughput, err))
        return -1;
    if (f->threads == 1) {
        f->throughput_n = f->throughput;
        return 0;
    }
    return infer_throughput(m, test, f->threads, &f->throughput_n, err);
}

/* The inference fields of a train or infer line. */
static void print_infer(const InferFigures *f)
{
    printf("\"infer_b1_median_us\":%.1f,\"infer_b1_p99_us\":%.1f,\"infer_samples_per_s\":%.0f,"
           "\"infer_threads\":%d,\"infer_samples_per_s_threads\":%.0f}\n",
           f->b1_median, f->b1_p99, f->throughput, f->threads, f->throughput_n);
}

/* train and infer: the spec, the data and the model, or a message. */
typedef struct {
    const char *spec_path, *data_dir;
    int epochs, threads;
    ModelSpec spec;
    SpecLimits lim;
    Dataset train, test;
    Model *m;
} Bench;

static int bench_open(Bench *b, int argc, char **argv, bool training, MnError *err)
{
    b->data_dir = "data";
    b->threads = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            b->data_dir = argv[++i];
        else if (training && strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            b->epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            b->threads = atoi(argv[++i]);
        else
            b->spec_path = argv[i];
    }
    if (!b->spec_path || b->epochs < 0 || b->epochs > MAX_EPOCHS || b->threads < 1 ||
        b->threads > MAX_INFER_THREADS)
        return mn_fail(err, MN_EINVAL,
                       "usage: mnistd-bench %s SPEC.json [--data DIR]%s [--threads 1..%d]",
                       training ? "train" : "infer",
                       training ? " [--epochs 1.." MN_STR(MAX_EPOCHS) "]" : "",
                       MAX_INFER_THREADS);
    spec_limits_default(&b->lim);
    if (spec_load_file(b->spec_path, &b->lim, &b->spec, err))
        return -1;
    if (b->epochs)
        b->spec.epochs = b->epochs;
    if ((training && dataset_load(b->data_dir, b->spec.dataset, SPLIT_TRAIN, &b->train, err)) ||
        dataset_load(b->data_dir, b->spec.dataset, SPLIT_TEST, &b->test, err))
        return -1;
    return model_build(&b->spec, &b->lim, &b->m, err);
}

static void bench_close(Bench *b)
{
    model_free(b->m);
    dataset_free(&b->train);
    dataset_free(&b->test);
}

static int cmd_train(int argc, char **argv)
{
    MnError err = {0};
    Bench b = {0};
    TrainResult tr = {0};
    EvalResult ev = {0};
    EpochTimes times = {0};
    InferFigures inf = {0};
    int status = 1;
    if (bench_open(&b, argc, argv, true, &err))
        goto fail;
    TrainCallbacks cb = {.on_epoch = on_epoch, .ctx = &times, .threads = b.threads};
    if (train_fit(b.m, &b.train, &b.test, &cb, &tr, &err))
        goto fail;
    long train_rss = peak_rss_kb();
    if (train_evaluate(b.m, &b.test, 0, &ev, &err) || infer(b.m, &b.test, b.threads, &inf, &err))
        goto fail;
    double first = times.seconds[0];
    double per_epoch = times.n > 1 ? quantile(times.seconds + 1, times.n - 1, 0.5) : first;
    long macs = model_forward_macs(b.m);
    double train_flops = 6.0 * (double)macs; /* forward, dX, dW: 2 FLOPs per MAC each */
    printf("{\"tool\":\"mnistd\",\"kind\":\"train\",\"spec\":\"%s\",\"params\":%zu,"
           "\"batch\":%d,\"threads\":%d,\"lanes\":%d,%s,\"epochs_run\":%d,"
           "\"first_epoch_s\":%.3f,\"sec_per_epoch\":%.4f,\"test_accuracy\":%.4f,"
           "\"fwd_macs_per_sample\":%ld,\"train_flops_per_sample\":%.0f,\"train_gflops\":%.2f,"
           "\"peak_rss_train_kb\":%ld,",
           b.spec.name, b.m->n_params, b.spec.batch_size, b.threads, tr.lanes,
           kernel_fields(), tr.epochs_run, first, per_epoch, ev.accuracy, macs,
           train_flops, train_flops * tr.n_train / per_epoch / 1e9, train_rss);
    print_infer(&inf);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "mnistd-bench: %s\n", err.msg);
done:
    eval_result_free(&ev);
    train_result_free(&tr);
    bench_close(&b);
    return status;
}

/* Inference alone, on the model's initial weights: the figures an ONNX
 * Runtime session of the same network (random weights too) is set beside. */
static int cmd_infer(int argc, char **argv)
{
    MnError err = {0};
    Bench b = {0};
    InferFigures inf = {0};
    int status = 1;
    if (bench_open(&b, argc, argv, false, &err) || infer(b.m, &b.test, b.threads, &inf, &err)) {
        fprintf(stderr, "mnistd-bench: %s\n", err.msg);
    } else {
        printf("{\"tool\":\"mnistd\",\"kind\":\"infer\",\"spec\":\"%s\",\"params\":%zu,"
               "%s,\"blas_threads\":%d,\"test_samples\":%d,\"fwd_macs_per_sample\":%ld,",
               b.spec.name, b.m->n_params, kernel_fields(), blas_threads(), b.test.n,
               model_forward_macs(b.m));
        print_infer(&inf);
        status = 0;
    }
    bench_close(&b);
    return status;
}

int main(int argc, char **argv)
{
    blas_set_threads(blas_threads_wanted());
    if (argc >= 2 && strcmp(argv[1], "gemm") == 0)
        return cmd_gemm();
    if (argc >= 3 && strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "infer") == 0)
        return cmd_infer(argc - 2, argv + 2);
    fprintf(stderr, "usage: mnistd-bench gemm | train SPEC.json [--data DIR] [--epochs N] "
                    "[--threads N] | infer SPEC.json [--data DIR] [--threads N]\n");
    return 2;
}
