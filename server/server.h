/* server.h - what the HTTP side shares: the server (config, model store)
 * and one request's state, which lives in libmicrohttpd's *req_cls from the
 * first call of the access handler to the completion callback. */
#ifndef MN_SERVER_H
#define MN_SERVER_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "dataset_cache.h"
#include "jobs.h"
#include "model_stats.h"
#include "prometheus.h"
#include "store.h"
#include "store_watch.h"

typedef struct {
    ServerConfig cfg;
    Store *store;
    StoreWatch *watch;      /* rescans the store for versions others publish */
    DatasetCache *datasets;
    Jobs *jobs;
    ServerMetrics *metrics;
    ModelStats *stats;      /* per model and version, for Triton's statistics */
    struct Acceptor *acceptor;       /* the listening socket (acceptor.h says why) */
    struct Workers *workers;         /* the HTTP threads, a libmicrohttpd daemon each */
    struct Connections *connections; /* limits and deadlines of every connection */
    struct AccessLog *log;           /* request log lines on their way to stderr */
    struct Tls *tls;                 /* HTTPS's certificate and key; NULL: plain HTTP */
    atomic_bool draining;            /* stopping: answers close their connections */
} Server;

#define REQUEST_MAX_PARAMS 4
#define REQUEST_MAX_PARTS 4096

/* One uploaded file of a multipart body. */
typedef struct {
    char field[32];
    unsigned char *data;
    size_t len, cap;
} Part;

typedef struct {
    Server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char path[512];
    char *params[REQUEST_MAX_PARAMS];  /* {segments} of the route, owned */
    int n_params;
    char content_type[128];
    char *body;                        /* raw body (not multipart), NUL-terminated */
    size_t len, cap;
    struct MHD_PostProcessor *pp;
    Part *parts;
    int n_parts;
    long body_limit;                   /* max_body, or max_upload on the upload route */
    const char *limit_flag;            /* the flag that sets it, for messages */
    bool too_large;                    /* body over body_limit: answered 413 at the end */
    bool malformed;                    /* multipart body that does not parse: 400 at the end */
    int coding;                        /* the body's Content-Encoding (content_coding.h) */
    int status;                        /* the status sent, for the log */
    const char *route;                 /* the matched route's pattern, for metrics */
    double started;                    /* seconds, monotonic */
} Request;

/* Opens the model store and starts serving per cfg; the bound port is
 * written back to cfg.port. server_stop refuses new clients, lets requests
 * in flight finish for up to --drain-timeout and frees it all; false when
 * some were still in flight at the deadline (they were cut). */
int server_start(Server *srv, char *err, size_t err_len);
bool server_stop(Server *srv);

/* The route handlers (h_*.c). Each returns an MHD_Result from respond_*. */
enum MHD_Result h_predict(Request *r);
enum MHD_Result h_explain(Request *r);
enum MHD_Result h_models_list(Request *r);
enum MHD_Result h_model_get(Request *r);
enum MHD_Result h_model_delete(Request *r);
enum MHD_Result h_model_upload(Request *r);
enum MHD_Result h_model_onnx(Request *r);
enum MHD_Result h_model_grid(Request *r);
/* True for POST /models/NAME/versions: the upload, with its own body limit. */
bool h_model_is_upload(const char *method, const char *path);
enum MHD_Result h_tf_predict(Request *r);
enum MHD_Result h_tf_status(Request *r);
enum MHD_Result h_tf_metadata(Request *r);
enum MHD_Result h_backprop(Request *r);
enum MHD_Result h_v2_server(Request *r);
enum MHD_Result h_v2_live(Request *r);
enum MHD_Result h_v2_ready(Request *r);
enum MHD_Result h_v2_model(Request *r);
enum MHD_Result h_v2_model_ready(Request *r);
enum MHD_Result h_v2_infer(Request *r);
enum MHD_Result h_v2_model_config(Request *r);
enum MHD_Result h_v2_stats(Request *r);
enum MHD_Result h_v2_repository_index(Request *r);
enum MHD_Result h_ping(Request *r);
enum MHD_Result h_datasets_list(Request *r);
enum MHD_Result h_train(Request *r);
enum MHD_Result h_jobs_list(Request *r);
enum MHD_Result h_job_get(Request *r);
enum MHD_Result h_job_cancel(Request *r);
enum MHD_Result h_job_events(Request *r);
enum MHD_Result h_metrics(Request *r);
enum MHD_Result h_openapi(Request *r);
enum MHD_Result h_dataset_sample(Request *r);
enum MHD_Result h_index(Request *r);
enum MHD_Result h_static(Request *r);
enum MHD_Result h_specs(Request *r);

/* A query argument, or NULL. */
const char *request_arg(Request *r, const char *name);

/* Whether the request's Content-Type is type (case-insensitive), with or
 * without parameters ("application/json; charset=utf-8"), and not merely
 * starting with it ("application/jsonp"). */
bool request_is_type(const Request *r, const char *type);
/* 0, or MN_EFORMAT (415) naming the Content-Type sent and type. */
int request_expect_type(const Request *r, const char *type, MnError *err);

/* libmicrohttpd's post processor calls this (cls = the Request) with each
 * chunk of a multipart body: a part starts at off 0; parts beyond
 * REQUEST_MAX_PARTS or bytes beyond max_body set too_large (http.c). */
enum MHD_Result request_on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size);

#endif
