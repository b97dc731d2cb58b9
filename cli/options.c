/* options.c - shared command-line plumbing (see options.h). */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "model_dir.h"
#include "model_file.h"

void cli_env_init(CliEnv *env)
{
    const char *m = getenv("MNISTD_MODELS"), *d = getenv("MNISTD_DATA");
    env->models_dir = m && *m ? m : "models";
    env->data_dir = d && *d ? d : "data";
    spec_limits_default(&env->limits);
    blas_set_threads(blas_threads_wanted());
}

const char *cli_option_value(const char *name, int argc, char **argv, int *i)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0' || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

int cli_env_option(CliEnv *env, int argc, char **argv, int *i, const char *cmd)
{
    const char *v;
    if ((v = cli_option_value("--models", argc, argv, i))) {
        env->models_dir = v;
        return 1;
    }
    if ((v = cli_option_value("--data", argc, argv, i))) {
        env->data_dir = v;
        return 1;
    }
    if ((v = cli_option_value("--max-params", argc, argv, i))) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (*end || x < 1) {
            fprintf(stderr, "mnistd %s: --max-params must be a positive integer\n", cmd);
            return -1;
        }
        env->limits.max_params = (size_t)x;
        return 1;
    }
    return 0;
}

Model *cli_load_model(const CliEnv *env, const char *ref, int *version, const char *cmd)
{
    char name[64], path[4200];
    int v;
    MnError err = {0};
    Model *m = NULL;
    if (model_ref_parse(ref, name, sizeof name, &v, &err) ||
        model_dir_path(env->models_dir, name, v, path, sizeof path, version, &err) ||
        model_load(path, &env->limits, &m, &err) || model_fold_for_serving(m, &err)) {
        fprintf(stderr, "mnistd %s: %s\n", cmd, err.msg);
        model_free(m);
        return NULL;
    }
    return m;
}

unsigned char *cli_read_file(const char *path, size_t max, const char *what, size_t *len,
                             MnError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mn_fail(err, MN_ENOTFOUND, "cannot open");
        return NULL;
    }
    unsigned char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf)
        mn_fail(err, MN_ENOMEM, "out of memory");
    else if (n > max) {
        mn_fail(err, MN_ELIMIT, "larger than the %zu-byte %s limit", max, what);
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}
