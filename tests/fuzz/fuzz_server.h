/* fuzz_server.h - what the server-side targets share: the default
 * configuration and a small dense model to answer with (one per binary). */
#ifndef MN_FUZZ_SERVER_H
#define MN_FUZZ_SERVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"

static void fuzz_server_setup(Server *srv, Model **model, const char *target)
{
    static const char spec[] =
        "{\"name\": \"fuzz\", \"layers\": [{\"type\": \"flatten\"},"
        " {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}]}";
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    MnError err = {0};
    if (config_load(&srv->cfg, 0, NULL) || spec_parse(spec, strlen(spec), &lim, &s, &err) ||
        model_build(&s, &lim, model, &err)) {
        fprintf(stderr, "%s: setup failed: %s\n", target, err.msg);
        abort();
    }
}

#endif
