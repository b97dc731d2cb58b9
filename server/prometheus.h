/* prometheus.h - counters and histograms for GET /metrics (Prometheus text
 * format): requests by route and status, request latency by route,
 * predictions by model, training epochs, model load errors, and the build
 * info (version, CPU, instruction set, GEMM kernel). Thread-safe. */
#ifndef MN_METRICS_SERVER_H
#define MN_METRICS_SERVER_H

#include <stdio.h>

typedef struct ServerMetrics ServerMetrics;

ServerMetrics *server_metrics_new(void);
void server_metrics_free(ServerMetrics *m);
/* route: the route pattern ("/predict"), or "unmatched". */
void server_metrics_request(ServerMetrics *m, const char *route, int status, double seconds);
void server_metrics_predictions(ServerMetrics *m, const char *model, int n);
void server_metrics_epoch(ServerMetrics *m);
void server_metrics_load_error(ServerMetrics *m);
/* Writes every series in the text exposition format. */
void server_metrics_write(ServerMetrics *m, FILE *out);

#endif
