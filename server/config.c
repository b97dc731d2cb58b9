/* config.c - the settings table and its readers (see config.h). */
#include "config.h"
#include "acceptor.h"

/* Where `make install` puts specs, models and the page; the build sets it. */
#ifndef MNISTD_SHARE_DIR
#define MNISTD_SHARE_DIR "/usr/local/share/mnistd"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* --max-connections 0: this many per core. Each costs a socket and up to
 * 32 KiB of libmicrohttpd's memory while a request is read (64 MiB a
 * core at most); epoll's cost does not grow with the count. */
#define CONNECTIONS_PER_CORE 1024
#define TEXT_OF(x) #x
#define TEXT(x) TEXT_OF(x)
/* File descriptors kept for everything but connections: the store, the
 * journal, datasets, and the sockets the acceptor holds. */
#define RESERVED_FDS (64 + ACCEPTOR_HELD_MAX)

typedef struct {
    const char *flag;  /* --flag; the variable is MNISTD_FLAG */
    const char *env;
    long def, min, max;
    size_t offset;
    bool is_string;
    bool is_switch;    /* --flag alone means 1; a value must be 0 or 1 */
    size_t size;       /* of the string field */
    const char *help;
} Setting;

#define NUM(flag, env, field, def, min, max, help) \
    {flag, env, def, min, max, offsetof(ServerConfig, field), false, false, 0, help}
#define STR(flag, env, field, help) \
    {flag, env, 0, 0, 0, offsetof(ServerConfig, field), true, false, \
     sizeof(((ServerConfig *)0)->field), help}
#define SWITCH(flag, env, field, help) \
    {flag, env, 0, 0, 1, offsetof(ServerConfig, field), false, true, 0, help}

static const Setting settings[] = {
    STR("host", "MNISTD_HOST", host, "address to listen on (127.0.0.1)"),
    NUM("port", "MNISTD_PORT", port, 8080, 0, 65535, "TCP port (0: any free port)"),
    STR("models", "MNISTD_MODELS", models_dir, "model store directory (./models)"),
    STR("data", "MNISTD_DATA", data_dir, "data directory (./data)"),
    STR("shipped-models", "MNISTD_SHIPPED_MODELS", shipped_models,
        "default models copied into an empty store (" MNISTD_SHARE_DIR "/models)"),
    STR("static", "MNISTD_STATIC", static_dir, "the page's files (" MNISTD_SHARE_DIR "/static)"),
    STR("specs", "MNISTD_SPECS", specs_dir, "training spec presets (" MNISTD_SHARE_DIR "/specs)"),
    STR("journal", "MNISTD_JOURNAL", journal,
        "job journal file (MODELS/.jobs.journal; one per replica when replicas share a store)"),
    STR("token", "MNISTD_TOKEN", token, "bearer token for train, cancel and delete (none)"),
    SWITCH("insecure-writes", "MNISTD_INSECURE_WRITES", insecure_writes,
           "let anyone who reaches a non-loopback --host train, cancel and delete without "
           "--token (protected mode refuses them with 403)"),
    STR("tls-cert", "MNISTD_TLS_CERT", tls_cert,
        "PEM certificate chain: serve HTTPS only (with --tls-key)"),
    STR("tls-key", "MNISTD_TLS_KEY", tls_key, "PEM private key of --tls-cert"),
    STR("default-model", "MNISTD_DEFAULT_MODEL", default_model, "model for /predict (digits)"),
    STR("cors-origins", "MNISTD_CORS_ORIGINS", cors_origins,
        "origins allowed to call the API from a page, comma-separated or * (none)"),
    NUM("threads", "MNISTD_THREADS", threads, 0, 0, 256, "HTTP worker threads (0: one per core)"),
    NUM("max-body", "MNISTD_MAX_BODY", max_body, 16 << 20, 1024, 1L << 30, "request body bytes"),
    NUM("max-upload", "MNISTD_MAX_UPLOAD", max_upload, 64 << 20, 1024, 1L << 30,
        "bytes of a model uploaded to POST /models/NAME/versions (ONNX or .mnm)"),
    NUM("max-image-bytes", "MNISTD_MAX_IMAGE_BYTES", max_image_bytes, 8 << 20, 64, 1L << 30,
        "bytes of one PNG, JPEG or WebP"),
    NUM("max-image-side", "MNISTD_MAX_IMAGE_SIDE", max_image_side, 4096, 1, 65535,
        "image width and height"),
    NUM("max-jpeg-scans", "MNISTD_MAX_JPEG_SCANS", max_jpeg_scans, 64, 1, 10000,
        "scans of a progressive JPEG"),
    NUM("max-decoder-memory", "MNISTD_MAX_DECODER_MEMORY", max_decoder_memory, 256L << 20,
        1L << 20, 1L << 32, "bytes a JPEG or WebP decoder may hold for one image"),
    NUM("max-batch", "MNISTD_MAX_BATCH", max_batch, 256, 1, 65536, "images per request"),
    NUM("max-explain-steps", "MNISTD_MAX_EXPLAIN_STEPS", max_explain_steps, 4096, 1, 1000000,
        "integrated-gradients steps of one explain request, over all its images (each step "
        "costs about three predictions)"),
    NUM("max-params", "MNISTD_MAX_PARAMS", max_params, 10000000, 1, 1000000000,
        "parameters of a model"),
    NUM("max-jobs", "MNISTD_MAX_JOBS", max_jobs, 16, 1, 100000, "queued training jobs"),
    NUM("train-threads", "MNISTD_TRAIN_THREADS", train_threads, 1, 1, 64,
        "training jobs at a time"),
    NUM("job-threads", "MNISTD_JOB_THREADS", job_threads, 1, 1, 64,
        "threads each training job computes a batch with (1 leaves a core to serving)"),
    NUM("max-connections", "MNISTD_MAX_CONNECTIONS", max_connections, 0, 0, 1000000,
        "open connections; past them a client is answered 503 with Retry-After (0: "
        TEXT(CONNECTIONS_PER_CORE) " per core, as far as the open-file limit allows)"),
    NUM("max-connections-per-ip", "MNISTD_MAX_CONNECTIONS_PER_IP", max_connections_per_ip, 0, 0,
        1000000, "open connections from one client address; past them 429 (0: a quarter of "
        "--max-connections)"),
    NUM("connection-timeout", "MNISTD_CONNECTION_TIMEOUT", connection_timeout, 30, 1, 3600,
        "seconds a connection may idle, even while its answer is sent"),
    NUM("header-timeout", "MNISTD_HEADER_TIMEOUT", header_timeout, 5, 1, 3600,
        "seconds a client has to send a request head, from its connect or its previous answer "
        "(so also how long an idle keep-alive connection stays)"),
    NUM("request-timeout", "MNISTD_REQUEST_TIMEOUT", request_timeout, 60, 1, 86400,
        "seconds a client has to send a whole request, head and body, however it trickles"),
    NUM("evict-idle-ms", "MNISTD_EVICT_IDLE_MS", evict_idle_ms, 250, 0, 3600000,
        "at --max-connections, a new connection whose request head has arrived takes the place "
        "of the one that has waited longest for its own, once that one has waited this many "
        "milliseconds (0: never; a newcomer without its head is answered 503)"),
    NUM("drain-timeout", "MNISTD_DRAIN_TIMEOUT", drain_timeout, 10, 1, 3600,
        "seconds SIGTERM waits for requests in flight; then the server exits regardless"),
    NUM("log-buffer", "MNISTD_LOG_BUFFER", log_buffer, 1 << 20, 4096, 1L << 30,
        "bytes of request log lines held while stderr is slow to take them (then dropped, "
        "counted)"),
    NUM("watch-interval", "MNISTD_WATCH_INTERVAL", watch_interval, 2, 0, 86400,
        "seconds between rescans of the store for versions other processes publish (0: off)"),
};

#define N_SETTINGS (sizeof settings / sizeof *settings)

static int set(ServerConfig *cfg, const Setting *s, const char *value, const char *source)
{
    char *field = (char *)cfg + s->offset;
    if (s->is_string) {
        if (strlen(value) >= s->size) {
            fprintf(stderr, "mnistd serve: %s: longer than %zu characters\n", source, s->size - 1);
            return 2;
        }
        strcpy(field, value);
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (!*value || *end || errno || v < s->min || v > s->max) {
        fprintf(stderr, "mnistd serve: %s: \"%s\" must be an integer from %ld to %ld\n", source,
                value, s->min, s->max);
        return 2;
    }
    *(long *)field = v;
    return 0;
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: mnistd serve [--FLAG VALUE]...\n\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const Setting *s = &settings[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", s->flag);
        if (s->is_string || s->is_switch)
            fprintf(out, "  %-22s %-26s %s\n", flag, s->env, s->help);
        else
            fprintf(out, "  %-22s %-26s %s [%ld..%ld, default %ld]\n", flag, s->env, s->help,
                    s->min, s->max, s->def);
    }
}

/* The limits left at 0: as many connections as the cores serve and the
 * process may open files for (its hard limit: serve raises the soft one). */
static void size_auto_limits(ServerConfig *cfg)
{
    if (cfg->max_connections == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long n = CONNECTIONS_PER_CORE * (cores > 0 ? cores : 1);
        struct rlimit files;
        if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_max != RLIM_INFINITY &&
            (long)files.rlim_max - RESERVED_FDS < n)
            n = (long)files.rlim_max - RESERVED_FDS;
        cfg->max_connections = n > 16 ? n : 16;
    }
    if (cfg->max_connections_per_ip == 0)
        cfg->max_connections_per_ip =
            cfg->max_connections >= 4 ? cfg->max_connections / 4 : cfg->max_connections;
}

long config_files_needed(const ServerConfig *cfg)
{
    return cfg->max_connections + RESERVED_FDS;
}

int config_load(ServerConfig *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->host, "127.0.0.1");
    strcpy(cfg->models_dir, "models");
    strcpy(cfg->data_dir, "data");
    strcpy(cfg->default_model, "digits");
    snprintf(cfg->shipped_models, sizeof cfg->shipped_models, "%s/models", MNISTD_SHARE_DIR);
    snprintf(cfg->static_dir, sizeof cfg->static_dir, "%s/static", MNISTD_SHARE_DIR);
    snprintf(cfg->specs_dir, sizeof cfg->specs_dir, "%s/specs", MNISTD_SHARE_DIR);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const Setting *s = &settings[i];
        if (!s->is_string) {
            char def[32];
            snprintf(def, sizeof def, "%ld", s->def);
            set(cfg, s, def, "default");
        }
        const char *env = getenv(s->env);
        if (env && *env && set(cfg, s, env, s->env))
            return 2;
    }
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            config_usage(stdout);
            return 1;
        }
        const Setting *found = NULL;
        const char *value = NULL;
        for (size_t k = 0; k < N_SETTINGS && !found; k++) {
            size_t n = strlen(settings[k].flag);
            if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, settings[k].flag, n))
                continue;
            if (argv[i][2 + n] == '=')
                value = argv[i] + 3 + n;
            else if (argv[i][2 + n] == '\0' && settings[k].is_switch)
                value = "1";
            else if (argv[i][2 + n] == '\0' && i + 1 < argc)
                value = argv[++i];
            else
                continue;
            found = &settings[k];
        }
        if (!found) {
            fprintf(stderr, "mnistd serve: unknown or incomplete option \"%s\"\n", argv[i]);
            config_usage(stderr);
            return 2;
        }
        char source[64];
        snprintf(source, sizeof source, "--%s", found->flag);
        if (set(cfg, found, value, source))
            return 2;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        fprintf(stderr, "mnistd serve: --tls-cert and --tls-key (MNISTD_TLS_CERT, "
                        "MNISTD_TLS_KEY) go together: %s is missing\n",
                cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
        return 2;
    }
    size_auto_limits(cfg);
    return 0;
}

bool config_host_is_loopback(const char *host)
{
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

bool config_writes_protected(const ServerConfig *cfg)
{
    return !cfg->token[0] && !cfg->insecure_writes && !config_host_is_loopback(cfg->host);
}

const char *config_write_mode(const ServerConfig *cfg)
{
    if (cfg->token[0])
        return "token";
    if (config_host_is_loopback(cfg->host))
        return "loopback";
    return cfg->insecure_writes ? "insecure-writes" : "protected";
}
