/* h_misc.c - the small routes: POST /backprop, TorchServe's GET /ping, and
 * GET /metrics and GET /openapi.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "backprop.h"
#include "connections.h"
#include "respond.h"

enum MHD_Result h_backprop(Request *r)
{
    MnError err = {0};
    char *out = NULL;
    if (request_expect_type(r, "application/json", &err) ||
        backprop_run_json(r->body ? r->body : "", r->len, &out, &err))
        return respond_mn_error(r, &err);
    enum MHD_Result ret = respond_bytes(r, MHD_HTTP_OK, "application/json", out, strlen(out));
    free(out);
    return ret;
}

extern const char openapi_yaml[];
extern const unsigned long openapi_yaml_len;

enum MHD_Result h_openapi(Request *r)
{
    return respond_bytes(r, MHD_HTTP_OK, "application/yaml", openapi_yaml, openapi_yaml_len);
}

enum MHD_Result h_ping(Request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "Healthy");
    return respond_json(r, MHD_HTTP_OK, o);
}


static void write_job_gauge(const char *state, int n, void *ctx)
{
    fprintf(ctx, "mnistd_jobs{state=\"%s\"} %d\n", state, n);
}

static void write_connection_metrics(Server *srv, FILE *out)
{
    ConnectionStats st;
    connections_stats(srv->connections, &st);
    fprintf(out,
            "# HELP mnistd_connections Connections open, and the limit (--max-connections).\n"
            "# TYPE mnistd_connections gauge\n"
            "mnistd_connections{kind=\"open\"} %ld\nmnistd_connections{kind=\"limit\"} %ld\n"
            "# HELP mnistd_connections_refused_total New connections answered 503 at "
            "--max-connections (full) or 429 at --max-connections-per-ip (per_ip).\n"
            "# TYPE mnistd_connections_refused_total counter\n"
            "mnistd_connections_refused_total{reason=\"full\"} %ld\n"
            "mnistd_connections_refused_total{reason=\"per_ip\"} %ld\n"
            "# HELP mnistd_connections_evicted_total Connections closed at --max-connections "
            "for a new one whose request head had arrived, after waiting --evict-idle-ms for "
            "their own.\n"
            "# TYPE mnistd_connections_evicted_total counter\n"
            "mnistd_connections_evicted_total %ld\n"
            "# HELP mnistd_connections_timed_out_total Connections closed for not sending a "
            "request head within --header-timeout, or a whole request within "
            "--request-timeout.\n"
            "# TYPE mnistd_connections_timed_out_total counter\n"
            "mnistd_connections_timed_out_total{phase=\"header\"} %ld\n"
            "mnistd_connections_timed_out_total{phase=\"request\"} %ld\n",
            st.open, srv->cfg.max_connections, st.refused_full, st.refused_per_ip, st.evicted,
            st.header_timeouts, st.request_timeouts);
}

enum MHD_Result h_metrics(Request *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory", "out of memory");
    server_metrics_write(r->srv->metrics, out);
    fprintf(out, "# HELP mnistd_jobs Training jobs by state.\n# TYPE mnistd_jobs gauge\n");
    jobs_count(r->srv->jobs, write_job_gauge, out);
    fprintf(out, "# HELP mnistd_models Model versions loaded.\n# TYPE mnistd_models gauge\n"
                 "mnistd_models %d\n",
            store_count(r->srv->store));
    fprintf(out, "# HELP mnistd_log_lines_dropped_total Request log lines dropped because "
                 "stderr did not take them as fast as requests came.\n"
                 "# TYPE mnistd_log_lines_dropped_total counter\n"
                 "mnistd_log_lines_dropped_total %lu\n",
            access_log_dropped(r->srv->log));
    write_connection_metrics(r->srv, out);
    fclose(out);
    enum MHD_Result ret =
        respond_bytes(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return ret;
}
