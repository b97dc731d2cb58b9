/* prometheus.c - a few small tables under one mutex; scrapes are rare and
 * updates are a lookup and an add, so a lock costs nothing measurable. */
#include "prometheus.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "version.h"

#define MAX_SERIES 256
#define N_BUCKETS 12

static const double buckets[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

typedef struct {
    const char *route; /* route patterns are static strings */
    int status;
    long count;
} RequestCount;

typedef struct {
    const char *route;
    long bucket[N_BUCKETS];
    long count;
    double sum;
} Latency;

typedef struct {
    char model[64];
    long count;
} PredictionCount;

struct ServerMetrics {
    pthread_mutex_t lock;
    RequestCount requests[MAX_SERIES];
    int n_requests;
    Latency latency[MAX_SERIES];
    int n_latency;
    PredictionCount predictions[MAX_SERIES];
    int n_predictions;
    long epochs, load_errors;
};

ServerMetrics *server_metrics_new(void)
{
    ServerMetrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void server_metrics_free(ServerMetrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void server_metrics_request(ServerMetrics *m, const char *route, int status, double seconds)
{
    pthread_mutex_lock(&m->lock);
    int i = 0;
    while (i < m->n_requests && !(m->requests[i].route == route && m->requests[i].status == status))
        i++;
    if (i == m->n_requests && i < MAX_SERIES)
        m->requests[m->n_requests++] = (RequestCount){route, status, 0};
    if (i < MAX_SERIES)
        m->requests[i].count++;
    int k = 0;
    while (k < m->n_latency && m->latency[k].route != route)
        k++;
    if (k == m->n_latency && k < MAX_SERIES) {
        memset(&m->latency[k], 0, sizeof m->latency[k]);
        m->latency[m->n_latency++].route = route;
    }
    if (k < MAX_SERIES) {
        Latency *l = &m->latency[k];
        for (int b = 0; b < N_BUCKETS; b++)
            l->bucket[b] += seconds <= buckets[b];
        l->count++;
        l->sum += seconds;
    }
    pthread_mutex_unlock(&m->lock);
}

void server_metrics_predictions(ServerMetrics *m, const char *model, int n)
{
    pthread_mutex_lock(&m->lock);
    int i = 0;
    while (i < m->n_predictions && strcmp(m->predictions[i].model, model))
        i++;
    if (i == m->n_predictions && i < MAX_SERIES) {
        snprintf(m->predictions[i].model, sizeof m->predictions[i].model, "%s", model);
        m->predictions[m->n_predictions++].count = 0;
    }
    if (i < MAX_SERIES)
        m->predictions[i].count += n;
    pthread_mutex_unlock(&m->lock);
}

void server_metrics_epoch(ServerMetrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->epochs++;
    pthread_mutex_unlock(&m->lock);
}

void server_metrics_load_error(ServerMetrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->load_errors++;
    pthread_mutex_unlock(&m->lock);
}

/* The version, the CPU, the kernel GEMMs run on and our convolution's variant (blas.h). */
static void write_build_info(FILE *out)
{
    const BlasInfo *b = blas_info();
    fprintf(out, "# HELP mnistd_build_info The version, the CPU, and the GEMM kernel chosen "
                 "for its instruction set.\n# TYPE mnistd_build_info gauge\n"
                 "mnistd_build_info{version=\"%s\",cpu=\"%s\",isa=\"%s\",kernel=\"%s\","
                 "kernel_chosen_by=\"%s\",conv_kernel=\"direct-%s+winograd\"} 1\n",
            MNISTD_VERSION, b->cpu.brand, b->isa, b->kernel, b->chosen_by, b->conv_isa);
}

void server_metrics_write(ServerMetrics *m, FILE *out)
{
    write_build_info(out);
    pthread_mutex_lock(&m->lock);
    fprintf(out, "# HELP mnistd_http_requests_total HTTP requests by route and status.\n"
                 "# TYPE mnistd_http_requests_total counter\n");
    for (int i = 0; i < m->n_requests; i++)
        fprintf(out, "mnistd_http_requests_total{route=\"%s\",status=\"%d\"} %ld\n",
                m->requests[i].route, m->requests[i].status, m->requests[i].count);
    fprintf(out, "# HELP mnistd_http_request_duration_seconds Time from the first byte of a "
                 "request to the end of its response.\n"
                 "# TYPE mnistd_http_request_duration_seconds histogram\n");
    for (int k = 0; k < m->n_latency; k++) {
        const Latency *l = &m->latency[k];
        for (int b = 0; b < N_BUCKETS; b++)
            fprintf(out, "mnistd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %ld\n",
                    l->route, buckets[b], l->bucket[b]);
        fprintf(out, "mnistd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %ld\n",
                l->route, l->count);
        fprintf(out, "mnistd_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n", l->route,
                l->sum);
        fprintf(out, "mnistd_http_request_duration_seconds_count{route=\"%s\"} %ld\n", l->route,
                l->count);
    }
    fprintf(out, "# HELP mnistd_predictions_total Images classified, by model.\n"
                 "# TYPE mnistd_predictions_total counter\n");
    for (int i = 0; i < m->n_predictions; i++)
        fprintf(out, "mnistd_predictions_total{model=\"%s\"} %ld\n", m->predictions[i].model,
                m->predictions[i].count);
    fprintf(out, "# HELP mnistd_training_epochs_total Epochs trained by jobs.\n"
                 "# TYPE mnistd_training_epochs_total counter\nmnistd_training_epochs_total %ld\n",
            m->epochs);
    fprintf(out, "# HELP mnistd_model_load_errors_total Model files refused at load.\n"
                 "# TYPE mnistd_model_load_errors_total counter\n"
                 "mnistd_model_load_errors_total %ld\n",
            m->load_errors);
    pthread_mutex_unlock(&m->lock);
}
