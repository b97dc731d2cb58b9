/* cmd_export.c - `mnistd export --model NAME[:VERSION] [-o FILE.onnx]`: a
 * saved model (or, with --spec, a spec's freshly initialised one) written
 * as ONNX; "-o -" writes to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "onnx_export.h"
#include "options.h"

#define USAGE "usage: mnistd export (--model NAME[:VERSION] | --spec SPEC.json) [-o FILE.onnx]\n"

static int write_file(const char *path, const unsigned char *buf, size_t len)
{
    bool out = strcmp(path, "-") == 0;
    FILE *f = out ? stdout : fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fflush(f) || (!out && fclose(f))) {
        perror(path);
        if (f && !out)
            fclose(f);
        return 1;
    }
    return 0;
}

int cmd_export(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    const char *ref = NULL, *spec_path = NULL, *path = NULL, *v;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "export");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if ((v = cli_option_value("--model", argc, argv, &i)))
            ref = v;
        else if ((v = cli_option_value("--spec", argc, argv, &i)))
            spec_path = v;
        else if ((v = cli_option_value("-o", argc, argv, &i)) ||
                 (v = cli_option_value("--output", argc, argv, &i)))
            path = v;
        else {
            fprintf(stderr, "mnistd export: unexpected argument \"%s\"\n%s", argv[i], USAGE);
            return 2;
        }
    }
    if (!ref == !spec_path) {
        fputs(USAGE, stderr);
        return 2;
    }
    MnError err = {0};
    Model *m = NULL;
    if (ref) {
        int version;
        if (!(m = cli_load_model(&env, ref, &version, "export")))
            return 1;
    } else {
        ModelSpec *spec = malloc(sizeof *spec);
        int rc = spec ? spec_load_file(spec_path, &env.limits, spec, &err)
                      : mn_fail(&err, MN_ENOMEM, "out of memory");
        if (rc == 0)
            rc = model_build(spec, &env.limits, &m, &err);
        free(spec);
        if (rc) {
            fprintf(stderr, "mnistd export: %s: %s\n", spec_path, err.msg);
            return 1;
        }
    }
    char name[96];
    snprintf(name, sizeof name, "%s.onnx", m->spec.name);
    unsigned char *buf;
    size_t len;
    int status = 1;
    if (onnx_export(m, &buf, &len, &err))
        fprintf(stderr, "mnistd export: %s\n", err.msg);
    else
        status = write_file(path ? path : name, buf, len);
    if (status == 0 && !(path && strcmp(path, "-") == 0))
        fprintf(stderr, "mnistd export: %s: %zu bytes\n", path ? path : name, len);
    free(buf);
    model_free(m);
    return status;
}
