/* options.h - what the subcommands share: the --models/--data directories
 * (flags over MNISTD_MODELS/MNISTD_DATA over ./models and ./data), the
 * parameter limit, and loading a model by NAME[:VERSION]. */
#ifndef MN_CLI_OPTIONS_H
#define MN_CLI_OPTIONS_H

#include <stdbool.h>

#include "model.h"

typedef struct {
    const char *models_dir;
    const char *data_dir;
    SpecLimits limits;
} CliEnv;

/* Also sets the BLAS threads (MNISTD_BLAS_THREADS, default 1). */
void cli_env_init(CliEnv *env);

/* Takes the option at argv[*i] if it is one of the shared ones (--models,
 * --data, --max-params, as "--x V" or "--x=V"); returns 1 if taken, 0 if
 * not, -1 on a bad value (reported). */
int cli_env_option(CliEnv *env, int argc, char **argv, int *i, const char *cmd);

/* For a command's own "--name V"/"--name=V": the value or NULL. */
const char *cli_option_value(const char *name, int argc, char **argv, int *i);

/* Loads NAME[:VERSION] from the models directory, folded for serving
 * (model_fold_for_serving); reports to stderr. */
Model *cli_load_model(const CliEnv *env, const char *ref, int *version, const char *cmd);

/* The whole file into a malloc'd buffer (the caller frees), refused when
 * larger than max bytes (what = "image", "model": for the message). */
unsigned char *cli_read_file(const char *path, size_t max, const char *what, size_t *len,
                             MnError *err);

#endif
