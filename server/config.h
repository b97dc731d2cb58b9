/* config.h - every setting of `mnistd serve`: one table of {name, env,
 * default, min, max} (redis config.c), read from flags over MNISTD_*
 * environment variables over defaults. Every limit the server enforces
 * is here, so each is explicit, configurable and tested. */
#ifndef MN_SERVER_CONFIG_H
#define MN_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char host[64];
    long port;
    char models_dir[1024];
    char data_dir[1024];
    char shipped_models[1024]; /* copied into an empty store at start */
    char static_dir[1024];     /* the page's files: GET / and /static/... */
    char specs_dir[1024];      /* the seed networks' specs: GET /specs */
    char journal[1024];        /* the job journal; empty: MODELS/.jobs.journal */
    char token[256];          /* empty: no auth */
    long insecure_writes;     /* 1: write routes open without a token on any address */
    char tls_cert[1024];      /* PEM files; both set: HTTPS only */
    char tls_key[1024];
    char default_model[64];
    char cors_origins[1024];  /* comma-separated, or "*"; empty: no CORS headers */
    long threads;             /* HTTP worker threads; 0 = one per core */
    long max_body;            /* bytes of a request body */
    long max_upload;          /* bytes of a model upload's body (its own limit) */
    long max_image_bytes;
    long max_image_side;      /* pixels, width and height */
    long max_jpeg_scans;      /* a progressive JPEG's scans */
    long max_decoder_memory;  /* bytes libjpeg or libwebp may hold for one image */
    long max_batch;           /* images per predict request */
    long max_explain_steps;   /* integration steps of one explain request, all its images */
    long max_params;          /* of a model loaded or trained */
    long max_jobs;            /* queued jobs */
    long train_threads;       /* concurrent training jobs */
    long job_threads;         /* threads per job's batch (core/step.h) */
    long max_connections;     /* 0 in the table: config_load sizes it for the machine */
    long max_connections_per_ip; /* 0 in the table: a quarter of max_connections */
    long connection_timeout;  /* seconds idle */
    long header_timeout;      /* seconds to receive a request head */
    long request_timeout;     /* seconds to receive a whole request */
    long evict_idle_ms;       /* waiting for a head that long, a connection gives way to one ready */
    long drain_timeout;       /* seconds SIGTERM waits for requests in flight */
    long log_buffer;          /* bytes of request log lines waiting for stderr */
    long watch_interval;      /* seconds between store rescans; 0 = off */
} ServerConfig;

/* Defaults, then environment, then flags (argv after "serve"). Returns 0,
 * or prints the problem (naming the flag and its range) and returns 2.
 * Limits left at 0 ("auto") are sized for the machine (config.c says how). */
int config_load(ServerConfig *cfg, int argc, char **argv);
void config_usage(FILE *out);
/* Whether host is a loopback address (127.0.0.0/8): only this machine's
 * processes can reach it. */
bool config_host_is_loopback(const char *host);
/* Protected mode, as redis has it: bound beyond loopback with no token and
 * no --insecure-writes, the routes that change state answer 403. */
bool config_writes_protected(const ServerConfig *cfg);
/* What the start log says of who may write: "token", "protected",
 * "insecure-writes" (opted out) or "loopback". */
const char *config_write_mode(const ServerConfig *cfg);

/* File descriptors the server may need at cfg's limits (serve raises its
 * soft RLIMIT_NOFILE to this, as far as the hard limit allows). */
long config_files_needed(const ServerConfig *cfg);

#endif
