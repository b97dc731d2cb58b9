/* config.h - every setting of `mnistd serve`: one table of {name, env,
 * default, min, max} (redis config.c), read from flags over MNISTD_*
 * environment variables over defaults. Every limit the server enforces
 * is here, so each is explicit, configurable and tested. */
#ifndef MN_SERVER_CONFIG_H
#define MN_SERVER_CONFIG_H

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
    char default_model[64];
    char cors_origins[1024];  /* comma-separated, or "*"; empty: no CORS headers */
    long threads;             /* HTTP worker threads; 0 = one per core */
    long max_body;            /* bytes of a request body */
    long max_upload;          /* bytes of a model upload's body (its own limit) */
    long max_image_bytes;
    long max_image_side;      /* pixels, width and height */
    long max_batch;           /* images per predict request */
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
/* File descriptors the server may need at cfg's limits (serve raises its
 * soft RLIMIT_NOFILE to this, as far as the hard limit allows). */
long config_files_needed(const ServerConfig *cfg);

#endif
