/* cmd_summary.c - `mnistd summary`: the Keras-like table for a saved model
 * or for a spec (built, not trained: no data needed). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"

int cmd_summary(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    const char *ref = NULL, *spec_path = NULL, *v;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "summary");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if ((v = cli_option_value("--model", argc, argv, &i)))
            ref = v;
        else if (argv[i][0] != '-' && !spec_path)
            spec_path = argv[i];
        else {
            fprintf(stderr, "mnistd summary: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!ref == !spec_path) {
        fprintf(stderr, "usage: mnistd summary (--model NAME[:VERSION] | SPEC.json)\n");
        return 2;
    }
    Model *m = NULL;
    if (ref) {
        int version;
        if (!(m = cli_load_model(&env, ref, &version, "summary")))
            return 1;
    } else {
        MnError err = {0};
        ModelSpec spec;
        if (spec_load_file(spec_path, &env.limits, &spec, &err) ||
            model_build(&spec, &env.limits, &m, &err)) {
            fprintf(stderr, "mnistd summary: %s\n", err.msg);
            return 1;
        }
    }
    model_summary(m, stdout);
    model_free(m);
    return 0;
}
