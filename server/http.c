/* http.c - the libmicrohttpd daemon: request state, body limits, multipart
 * uploads, the route table, and one JSON log line per request.
 * The access handler runs (1) once with *req_cls == NULL: allocate state,
 * refuse early what the headers already condemn; (2) per body chunk:
 * consume it, dropping bytes past the limit but draining the upload; (3)
 * once more with no data: route, or answer 413 (400 for multipart that
 * does not parse). A Content-Length over twice the limit is answered at (1),
 * without reading the body (MHD then closes the connection). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "acceptor.h"
#include "blas.h"
#include "clock.h"
#include "connections.h"
#include "content_coding.h"
#include "json.h"
#include "respond.h"
#include "server.h"
#include "tls.h"
#include "workers.h"

typedef struct {
    const char *method;
    const char *pattern; /* segments; "*" matches one segment, captured as a param */
    enum MHD_Result (*handler)(Request *r);
    bool needs_token;    /* changes state: needs the bearer token when one is set, and
                          * is refused in protected mode (check_token); an upload route
                          * must set it too */
} Route;

static const Route routes[] = {
    {"POST", "/predict", h_predict, false},
    {"GET", "/models", h_models_list, false},
    {"GET", "/models/*", h_model_get, false},
    {"GET", "/models/*/versions/*", h_model_get, false},
    {"DELETE", "/models/*/versions/*", h_model_delete, true},
    {"POST", "/models/*/versions", h_model_upload, true},
    {"GET", "/models/*/versions/*/model.onnx", h_model_onnx, false},
    {"GET", "/models/*/grid", h_model_grid, false},
    /* TF Serving: NAME[/versions/N] with :predict on the last segment;
     * KServe v1: NAME:explain */
    {"POST", "/v1/models/*", h_tf_predict, false},
    {"POST", "/v1/models/*/versions/*", h_tf_predict, false},
    {"GET", "/v1/models/*", h_tf_status, false},
    {"GET", "/v1/models/*/versions/*", h_tf_status, false},
    {"GET", "/v1/models/*/metadata", h_tf_metadata, false},
    {"GET", "/v1/models/*/versions/*/metadata", h_tf_metadata, false},
    {"POST", "/backprop", h_backprop, false},
    {"POST", "/train", h_train, true},
    {"GET", "/jobs", h_jobs_list, false},
    {"GET", "/jobs/*", h_job_get, false},
    {"DELETE", "/jobs/*", h_job_cancel, true},
    {"GET", "/jobs/*/events", h_job_events, false},
    {"GET", "/datasets", h_datasets_list, false},
    {"GET", "/datasets/*/samples/*", h_dataset_sample, false},
    {"GET", "/v2", h_v2_server, false},
    {"GET", "/v2/health/live", h_v2_live, false},
    {"GET", "/v2/health/ready", h_v2_ready, false},
    /* before the model route: as in Triton, "stats" is no model's name here */
    {"GET", "/v2/models/stats", h_v2_stats, false},
    {"GET", "/v2/models/*", h_v2_model, false},
    {"GET", "/v2/models/*/versions/*", h_v2_model, false},
    {"GET", "/v2/models/*/ready", h_v2_model_ready, false},
    {"GET", "/v2/models/*/versions/*/ready", h_v2_model_ready, false},
    {"POST", "/v2/models/*/infer", h_v2_infer, false},
    {"POST", "/v2/models/*/versions/*/infer", h_v2_infer, false},
    {"GET", "/v2/models/*/config", h_v2_model_config, false},
    {"GET", "/v2/models/*/versions/*/config", h_v2_model_config, false},
    {"GET", "/v2/models/*/stats", h_v2_stats, false},
    {"GET", "/v2/models/*/versions/*/stats", h_v2_stats, false},
    {"POST", "/v2/repository/index", h_v2_repository_index, false},
    {"GET", "/ping", h_ping, false},
    {"GET", "/metrics", h_metrics, false},
    {"GET", "/openapi.yaml", h_openapi, false},
    /* TorchServe: curl -T (PUT) and POST, raw or multipart */
    {"POST", "/predictions/*", h_predict, false},
    {"PUT", "/predictions/*", h_predict, false},
    {"POST", "/predictions/*/*", h_predict, false},
    {"PUT", "/predictions/*/*", h_predict, false},
    {"POST", "/explain", h_explain, false},
    {"POST", "/explanations/*", h_explain, false}, /* TorchServe */
    {"GET", "/", h_index, false},
    {"GET", "/static/*", h_static, false},
    {"GET", "/specs", h_specs, false},
};

/* libmicrohttpd's memory per connection: the request line and headers (so
 * their limit; over it MHD answers 431), read buffers and the multipart
 * parser's buffer. MHD clears all of it after every request, so its size is
 * paid per request: 128 KiB cost 14% of the server's time under load. */
#define CONNECTION_POOL_BYTES ((size_t)32 * 1024)
/* The multipart parser's buffer for a part's headers and data: a file is
 * handed over in pieces of at most this. */
#define POST_BUFFER_BYTES (8 * 1024)

/* src into dst[cap], cut short to fit: snprintf's "%s" without its
 * format machinery (about 1k instructions a call, on every request). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    if (!memccpy(dst, src, '\0', cap))
        dst[cap - 1] = '\0';
}

/* Matches path against pattern segment by segment, capturing "*" segments
 * into r->params (only when the whole path matches). */
static bool route_match(const char *pattern, const char *path, Request *r)
{
    int n = 0;
    char *captured[REQUEST_MAX_PARAMS];
    const char *p = pattern, *s = path;
    bool ok = true;
    while (ok && *p && *s) {
        if (*p != '/' || *s != '/') {
            ok = false;
            break;
        }
        p++, s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (plen == 1 && *p == '*' && slen > 0 && n < REQUEST_MAX_PARAMS)
            captured[n++] = strndup(s, slen);
        else if (plen != slen || strncmp(p, s, plen) != 0)
            ok = false;
        p += plen, s += slen;
    }
    ok = ok && !*p && !*s;
    for (int i = 0; i < n; i++) {
        if (ok)
            r->params[i] = captured[i];
        else
            free(captured[i]);
    }
    if (ok)
        r->n_params = n;
    return ok;
}

const char *request_arg(Request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool request_is_type(const Request *r, const char *type)
{
    size_t n = strlen(type);
    const char *ct = r->content_type;
    /* strchr also finds the terminator: the type alone matches */
    return strncasecmp(ct, type, n) == 0 && strchr("; \t", ct[n]);
}

int request_expect_type(const Request *r, const char *type, MnError *err)
{
    if (request_is_type(r, type))
        return 0;
    return mn_fail(err, MN_EFORMAT, "Content-Type \"%.64s\" is not %s", r->content_type, type);
}

/* Compares every byte whatever the first difference, so timing tells nothing. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
    return diff == 0;
}

/* A route that changes state: with a token, the bearer must hold it;
 * without one, protected mode (config.h) refuses it beyond loopback, as
 * anyone who reaches the port could otherwise train (burn the CPU) and
 * delete every model. */
static enum MHD_Result check_token(Request *r, bool *ok)
{
    *ok = true;
    const char *token = r->srv->cfg.token;
    if (!token[0] && config_writes_protected(&r->srv->cfg)) {
        *ok = false;
        return respond_error(r, MHD_HTTP_FORBIDDEN, "protected_mode",
                             "%s %s is refused: the server listens on %s, beyond loopback, with "
                             "no --token (MNISTD_TOKEN). Set a token, or pass --insecure-writes "
                             "(MNISTD_INSECURE_WRITES=1) to let anyone who reaches it write",
                             r->method, r->path, r->srv->cfg.host);
    }
    if (!token[0])
        return MHD_YES;
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    *ok = false;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) /* the scheme is case-insensitive */
        return respond_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                             "%s %s needs Authorization: Bearer TOKEN", r->method, r->path);
    if (!same_secret(auth + 7, token))
        return respond_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "the bearer token is not valid");
    *ok = true;
    return MHD_YES;
}

/* A query argument with a NUL byte would be read only up to it. */
static enum MHD_Result find_nul(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    if (strlen(key) == key_size && (!value || strlen(value) == value_size))
        return MHD_YES;
    *(const char **)cls = key;
    return MHD_NO;
}

static enum MHD_Result dispatch(Request *r)
{
    const char *nul = NULL;
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, find_nul, &nul);
    if (nul)
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "query argument \"%.64s\" holds a NUL byte", nul);
    if (!strcmp(r->method, "OPTIONS")) /* CORS preflight: headers only */
        return respond_bytes(r, MHD_HTTP_NO_CONTENT, "text/plain", "", 0);
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        if (!route_match(routes[i].pattern, r->path, r))
            continue;
        if (strcmp(routes[i].method, r->method) == 0) {
            r->route = routes[i].pattern;
            bool ok = true;
            enum MHD_Result ret = routes[i].needs_token ? check_token(r, &ok) : MHD_YES;
            return ok ? routes[i].handler(r) : ret;
        }
        path_known = true;
        for (int k = 0; k < r->n_params; k++) {
            free(r->params[k]);
            r->params[k] = NULL;
        }
        r->n_params = 0;
    }
    if (path_known)
        return respond_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                             "%s is not allowed on %s", r->method, r->path);
    return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no route for %s %s", r->method,
                         r->path);
}

enum MHD_Result request_on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    Request *r = cls;
    if (r->too_large)
        return MHD_YES;
    /* A new part starts at offset 0; parts of other fields are skipped but counted. */
    if (off == 0) {
        if (r->n_parts == REQUEST_MAX_PARTS) {
            r->too_large = true;
            return MHD_YES;
        }
        Part *bigger = realloc(r->parts, (size_t)(r->n_parts + 1) * sizeof *bigger);
        if (!bigger)
            return MHD_NO;
        r->parts = bigger;
        Part *p = &r->parts[r->n_parts++];
        memset(p, 0, sizeof *p);
        copy_cut(p->field, sizeof p->field, key ? key : "");
    }
    /* An empty chunk (an empty part) adds nothing: p->data may still be NULL. */
    if (r->n_parts == 0 || size == 0)
        return MHD_YES;
    Part *p = &r->parts[r->n_parts - 1];
    size_t total = 0;
    for (int i = 0; i < r->n_parts; i++)
        total += r->parts[i].len;
    if (total + size > (size_t)r->body_limit) {
        r->too_large = true;
        return MHD_YES;
    }
    if (p->len + size > p->cap) {
        size_t cap = (p->len + size) * 2;
        unsigned char *grown = realloc(p->data, cap);
        if (!grown)
            return MHD_NO;
        p->data = grown;
        p->cap = cap;
    }
    memcpy(p->data + p->len, data, size);
    p->len += size;
    return MHD_YES;
}

/* The length of the multipart boundary in a Content-Type (quotes aside);
 * 0 when there is none. RFC 2046 allows 1 to 70 characters. */
static size_t boundary_len(const char *type)
{
    for (const char *p = type; (p = strchr(p, ';')); ) {
        p += strspn(p + 1, " \t") + 1;
        if (strncasecmp(p, "boundary=", 9) == 0) {
            p += 9;
            bool quoted = *p == '"';
            return quoted ? strcspn(p + 1, "\"") : strcspn(p, " \t;");
        }
    }
    return 0;
}

/* A gzip or deflate body inflated in place of the one sent; what comes out
 * is held to the same limit (--max-body, or --max-upload for a model). -1
 * when answered (413, 400). */
static int decode_body(Request *r)
{
    char *plain;
    size_t n;
    MnError err = {0};
    if (content_coding_inflate((ContentCoding)r->coding, r->body ? r->body : "", r->len,
                               (size_t)r->body_limit, &plain, &n, &err)) {
        respond_mn_error(r, &err);
        return -1;
    }
    free(r->body);
    r->body = plain;
    r->len = n;
    r->cap = n + 1;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    Server *srv = cls;
    Request *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->started = clock_seconds();
        copy_cut(r->path, sizeof r->path, url);
        bool upload = h_model_is_upload(method, url);
        r->body_limit = upload ? srv->cfg.max_upload : srv->cfg.max_body;
        r->limit_flag = upload ? "--max-upload" : "--max-body";
        *req_cls = r;
        connections_head_received(srv->connections, conn); /* now the body's deadline */
        /* No route is this long; cut short, the path could match another. */
        if (strlen(url) >= sizeof r->path)
            return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                                 "no route for %s %.64s... (a path of %zu bytes)", method, url,
                                 strlen(url));
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        copy_cut(r->content_type, sizeof r->content_type, ct ? ct : "");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        /* A body a little over the limit is read and dropped, so that the
         * client, still sending, sees the 413 and not a reset; one far over
         * it (a gigabyte) is answered now and the connection closed. */
        if (upload) { /* a model is large: refuse a stranger before reading it */
            bool ok;
            enum MHD_Result ret = check_token(r, &ok);
            if (!ok)
                return ret;
        }
        if (declared > 2ull * (unsigned long long)r->body_limit)
            return respond_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                 "request body of %llu bytes, larger than the %ld-byte limit "
                                 "(%s)", declared, r->body_limit, r->limit_flag);
        const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_ENCODING);
        int coding = ce ? content_coding_from_name(ce) : CODING_IDENTITY;
        bool multipart = strncasecmp(r->content_type, "multipart/form-data", 19) == 0;
        if (coding < 0 || (multipart && coding != CODING_IDENTITY))
            return respond_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                                 "Content-Encoding \"%.32s\" is not supported%s", ce,
                                 coding < 0 ? " (gzip, deflate or identity)"
                                            : " on multipart/form-data");
        r->coding = coding;
        if (declared > (unsigned long long)r->body_limit)
            r->too_large = true; /* drained below, answered at the end */
        else if (multipart) {
            size_t blen = boundary_len(ct);
            if (blen >= 1 && blen <= 70)
                r->pp = MHD_create_post_processor(conn, POST_BUFFER_BYTES, request_on_part, r);
            r->malformed = !r->pp; /* drained below, answered at the end */
        }
        return MHD_YES;
    }
    if (r->status) /* answered at the first call: MHD discards the body */
        return MHD_YES;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->malformed)
            return MHD_YES;
        if (r->pp) { /* a body that does not parse is drained, then answered 400 */
            r->malformed = MHD_post_process(r->pp, upload_data, n) != MHD_YES && !r->too_large;
            return MHD_YES;
        }
        if (r->len + n > (size_t)r->body_limit) {
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = (r->len + n + 1) * 2;
            char *grown = realloc(r->body, cap);
            if (!grown)
                return MHD_NO;
            r->body = grown;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    connections_request_received(srv->connections, conn); /* answering may take long (streams) */
    if (r->too_large)
        return respond_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "request body larger than the %ld-byte limit (%s)", r->body_limit,
                             r->limit_flag);
    if (r->malformed && !r->pp)
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "multipart/form-data needs a boundary of 1 to 70 characters "
                             "(RFC 2046)");
    /* The post processor says whether the body ended where multipart must. */
    bool parsed = !r->pp || MHD_destroy_post_processor(r->pp) == MHD_YES;
    r->pp = NULL;
    if (!parsed || r->malformed)
        return respond_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
                             "malformed multipart/form-data body (unterminated, or not in "
                             "parts of the boundary given)");
    if (r->coding != CODING_IDENTITY && decode_body(r) != 0)
        return MHD_YES; /* answered */
    return dispatch(r);
}

/* The client's bytes (at most max of them) as the inside of a JSON string:
 * a path may hold quotes, newlines (%0A) or bytes that are not UTF-8, and
 * must not forge or break a log line. out holds 6 * max + 1. */
static const char *log_escape(const char *s, size_t max, char *out)
{
    size_t n = strnlen(s, max), o = 0;
    for (size_t i = 0, k; i < n; i += k ? k : 1) {
        unsigned char c = (unsigned char)s[i];
        k = json_utf8_char(s + i, n - i);
        if (k > 1 || (k == 1 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)) {
            memcpy(out + o, s + i, k);
            o += k;
        } else {
            o += (size_t)sprintf(out + o, "\\u%04x", k ? c : 0xfffdu);
        }
    }
    out[o] = '\0';
    return out;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    Request *r = *req_cls;
    if (!r)
        return;
    connections_answered(r->srv->connections, conn);
    double ms = (clock_seconds() - r->started) * 1e3;
    server_metrics_request(r->srv->metrics, r->route ? r->route : "unmatched", r->status, ms / 1e3);
    time_t t = time(NULL);
    struct tm tm;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    char method[6 * 32 + 1], path[6 * sizeof r->path + 1], line[sizeof method + sizeof path + 128];
    int n = snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
                     "\"ms\":%.3f%s}\n",
                     when, log_escape(r->method, 32, method),
                     log_escape(r->path, sizeof r->path, path), r->status, ms,
                     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true");
    access_log_line(r->srv->log, line, (size_t)n);
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    for (int i = 0; i < r->n_parts; i++)
        free(r->parts[i].data);
    free(r->parts);
    for (int i = 0; i < r->n_params; i++)
        free(r->params[i]);
    free(r->body);
    free(r);
    *req_cls = NULL;
}

/* Worker i's daemon: no thread or listening socket of its own
 * (workers.h says why). Its connection limit is a backstop set above
 * ours, with room for evicted connections not yet closed: the acceptor
 * admits, so MHD never refuses a socket for being full. */
static struct MHD_Daemon *start_worker_daemon(void *cls, int worker)
{
    Server *srv = cls;
    /* With TLS, each daemon runs the handshake on the sockets it is handed. */
    struct MHD_OptionItem tls[] = {
        {srv->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0,
         srv->tls ? (void *)tls_cert_pem(srv->tls) : NULL},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls ? (void *)tls_key_pem(srv->tls) : NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET |
            MHD_USE_ERROR_LOG | (srv->tls ? MHD_USE_TLS : 0), 0, NULL, NULL, on_request, srv,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * srv->cfg.max_connections + 16),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_POOL_BYTES, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, connections_on_notify,
        connections_notify_cls(srv->connections, worker), MHD_OPTION_END);
}

/* A soft open-file limit below what the connection limit needs is raised
 * as far as the hard one allows; short of it, the server says so. */
static void raise_file_limit(const ServerConfig *cfg)
{
    struct rlimit files;
    rlim_t want = (rlim_t)config_files_needed(cfg);
    if (getrlimit(RLIMIT_NOFILE, &files) || files.rlim_cur >= want)
        return;
    files.rlim_cur = files.rlim_max == RLIM_INFINITY || files.rlim_max > want ? want
                                                                              : files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < want)
        fprintf(stderr,
                "{\"level\":\"warn\",\"msg\":\"the open-file limit (%llu) is below what "
                "--max-connections %ld needs (%llu): accepting may fail before the limit\"}\n",
                (unsigned long long)files.rlim_cur, cfg->max_connections,
                (unsigned long long)want);
}

/* The model store and dataset cache, then the HTTP side: the request log,
 * the connection table, the workers and, last, the acceptor. */
int server_start(Server *srv, char *err, size_t err_len)
{
    /* A bad certificate or key stops the start before anything is opened. */
    if (srv->cfg.tls_cert[0] &&
        !(srv->tls = tls_load(srv->cfg.tls_cert, srv->cfg.tls_key, err, err_len)))
        return -1;
    /* The server's parallelism is its HTTP workers, not BLAS's. */
    blas_set_threads(blas_threads_wanted());
    raise_file_limit(&srv->cfg);
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = (size_t)srv->cfg.max_params;
    MnError e = {0};
    if (!(srv->store = store_open(srv->cfg.models_dir, &lim, &e))) {
        snprintf(err, err_len, "%s", e.msg);
        goto fail;
    }
    /* An empty store starts with the shipped models, so predictions work at once. */
    if (store_count(srv->store) == 0 && srv->cfg.shipped_models[0] &&
        store_seed(srv->cfg.models_dir, srv->cfg.shipped_models, &e) == 0) {
        store_close(srv->store);
        if (!(srv->store = store_open(srv->cfg.models_dir, &lim, &e))) {
            snprintf(err, err_len, "%s", e.msg);
            goto fail;
        }
    }
    srv->watch = store_watch_start(srv->store, srv->cfg.watch_interval);
    if (!(srv->datasets = dataset_cache_new(srv->cfg.data_dir)) ||
        !(srv->metrics = server_metrics_new()) || !(srv->stats = model_stats_new())) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    for (int i = store_load_errors(srv->store); i > 0; i--)
        server_metrics_load_error(srv->metrics);
    if (!(srv->jobs = jobs_open(&srv->cfg, srv->store, srv->datasets, srv->metrics, &e))) {
        snprintf(err, err_len, "%s", e.msg);
        goto fail;
    }
    if (!(srv->acceptor = acceptor_open(srv->cfg.host, srv->cfg.port, srv->tls != NULL, err,
                                        err_len)))
        goto fail;
    if (!(srv->log = access_log_start(STDERR_FILENO, (size_t)srv->cfg.log_buffer))) {
        snprintf(err, err_len, "cannot start the request log thread");
        goto fail;
    }
    long threads = srv->cfg.threads ? srv->cfg.threads : sysconf(_SC_NPROCESSORS_ONLN);
    ConnectionLimits limits = {
        .max = srv->cfg.max_connections,
        .per_ip = srv->cfg.max_connections_per_ip,
        .header_timeout = srv->cfg.header_timeout,
        .request_timeout = srv->cfg.request_timeout,
        .evict_idle_ms = srv->cfg.evict_idle_ms,
        .workers = threads > 0 ? (int)threads : 1,
    };
    if (!(srv->connections = connections_new(&limits, srv->log))) {
        snprintf(err, err_len, "cannot start the connection deadline thread");
        goto fail;
    }
    if (!(srv->workers = workers_start(limits.workers, srv->connections, start_worker_daemon,
                                       srv, err, err_len)))
        goto fail;
    if (acceptor_run(srv->acceptor, srv->connections, srv->workers, &limits)) {
        snprintf(err, err_len, "cannot start the accepting thread on %s:%ld", srv->cfg.host,
                 srv->cfg.port);
        goto fail;
    }
    srv->cfg.port = acceptor_port(srv->acceptor);
    return 0;
fail:
    server_stop(srv);
    return -1;
}

bool server_stop(Server *srv)
{
    atomic_store(&srv->draining, true); /* answers from now on close their connections */
    acceptor_free(srv->acceptor);       /* new clients are refused */
    srv->acceptor = NULL;
    /* End the event streams (they would hold the drain), then let the
     * requests in flight finish, for at most --drain-timeout. */
    if (srv->jobs)
        jobs_streams_end(srv->jobs);
    double budget = (double)srv->cfg.drain_timeout;
    /* A second of the budget is kept for what follows (jobs, the store). */
    bool drained = workers_stop(srv->workers, clock_seconds() + (budget > 2 ? budget - 1 : budget / 2));
    srv->workers = NULL;
    connections_free(srv->connections); /* after the daemons: every connection was notified */
    srv->connections = NULL;
    access_log_stop(srv->log); /* after the daemon: every request has its line */
    srv->log = NULL;
    jobs_close(srv->jobs); /* cancels running jobs: they end "cancelled", journalled */
    store_watch_stop(srv->watch);
    srv->watch = NULL;
    store_close(srv->store);
    dataset_cache_free(srv->datasets);
    server_metrics_free(srv->metrics);
    srv->metrics = NULL;
    model_stats_free(srv->stats);
    srv->stats = NULL;
    srv->jobs = NULL;
    srv->store = NULL;
    srv->datasets = NULL;
    tls_free(srv->tls); /* after the daemons, which read it */
    srv->tls = NULL;
    return drained;
}
