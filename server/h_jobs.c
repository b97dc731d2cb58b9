/* h_jobs.c - POST /train (a spec, checked in full before it is queued:
 * 415 unless application/json, 400 for malformed, 422 for impossible (an
 * output layer that does not fit the dataset's classes too), 404 for an
 * unknown dataset, 503 with Retry-After when the queue is full), GET /jobs, GET /jobs/{id} and
 * DELETE /jobs/{id}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "json.h"
#include "respond.h"

static int job_id(const Request *r)
{
    char *end;
    long id = strtol(r->params[0], &end, 10);
    return *end || id < 1 || id > 1000000000 ? -1 : (int)id;
}

enum MHD_Result h_train(Request *r)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = (size_t)r->srv->cfg.max_params;
    ModelSpec spec;
    MnError err = {0};
    Model *m = NULL;
    int rc = request_expect_type(r, "application/json", &err);
    if (rc == 0)
        rc = spec_parse(r->body ? r->body : "", r->len, &lim, &spec, &err);
    if (rc == 0)
        rc = model_build(&spec, &lim, &m, &err); /* shapes and the parameter limit, now */
    int n, classes;
    if (rc == 0)
        rc = dataset_count(r->srv->cfg.data_dir, spec.dataset, SPLIT_TRAIN, &n, &err);
    if (rc == 0)
        rc = dataset_class_count(r->srv->cfg.data_dir, spec.dataset, &classes, &err);
    if (rc == 0) /* the output layer against the dataset's classes, before queueing */
        rc = model_check_classes(m, spec.dataset, classes, &err);
    model_free(m);
    if (rc == MN_ELIMIT && strstr(err.msg, "parameters"))
        return respond_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "limit_exceeded", "%s", err.msg);
    if (rc)
        return respond_mn_error(r, &err);
    cJSON *job = NULL;
    if (jobs_submit(r->srv->jobs, &spec, &job, &err)) {
        struct MHD_Response *resp;
        cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
        /* both pass: the queue drains, space is freed; so 503 and Retry-After */
        cJSON_AddStringToObject(e, "code", err.code == MN_EIO ? "journal_unwritable" : "queue_full");
        cJSON_AddStringToObject(e, "message", err.msg);
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "30");
        return respond_queue(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
    }
    int id = cJSON_GetObjectItem(job, "id")->valueint;
    char *text = cJSON_PrintUnformatted(job);
    cJSON_Delete(job);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    char location[64];
    snprintf(location, sizeof location, "/jobs/%d", id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    return respond_queue(r, MHD_HTTP_ACCEPTED, resp);
}

enum MHD_Result h_jobs_list(Request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "jobs", jobs_list(r->srv->jobs));
    return respond_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result h_job_get(Request *r)
{
    int id = job_id(r);
    cJSON *job = id > 0 ? jobs_get(r->srv->jobs, id) : NULL;
    if (!job)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "job %s not found", r->params[0]);
    return respond_json(r, MHD_HTTP_OK, job);
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    return (ssize_t)jobs_stream_read(cls, buf, max);
}

static void close_events(void *cls) { jobs_stream_close(cls); }

enum MHD_Result h_job_events(Request *r)
{
    int id = job_id(r);
    JobStream *s = id > 0 ? jobs_stream_open(r->srv->jobs, id, r->conn) : NULL;
    if (!s)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "job %s not found", r->params[0]);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_events, s, close_events);
    if (!resp) {
        jobs_stream_close(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return respond_queue(r, MHD_HTTP_OK, resp);
}

enum MHD_Result h_job_cancel(Request *r)
{
    int id = job_id(r);
    if (id < 0)
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "job %s not found", r->params[0]);
    MnError err = {0};
    cJSON *job = NULL;
    if (jobs_cancel(r->srv->jobs, id, &job, &err)) {
        cJSON_Delete(job);
        if (err.code == MN_ECANCELLED)
            return respond_error(r, MHD_HTTP_CONFLICT, "conflict", "%s", err.msg);
        return respond_mn_error(r, &err);
    }
    return respond_json(r, MHD_HTTP_OK, job);
}
