/* cmd_import.c - `mnistd import FILE.onnx --name NAME`: an ONNX graph (or
 * an .mnm file) published as NAME's next version, as a trained one is;
 * with --into SPEC.json, its weights loaded into that spec instead (Keras's
 * model.load_weights). Prints the version as one JSON line. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model_dir.h"
#include "model_import.h"
#include "options.h"

#define USAGE                                                                                  \
    "usage: mnistd import FILE.onnx --name NAME [--preprocess digit|frame|none] "             \
    "[--classes A,B,...] [--dataset D] [--into SPEC.json] [--max-bytes N] [--models DIR]\n"

static int publish(const CliEnv *env, Model *m, const char *name)
{
    MnError err = {0};
    char path[4200];
    int version;
    if (model_dir_publish(m, env->models_dir, name, path, sizeof path, &version, &err)) {
        fprintf(stderr, "mnistd import: %s\n", err.msg);
        return 1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", name);
    cJSON_AddNumberToObject(o, "version", version);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "layers", m->spec.n_layers);
    cJSON_AddNumberToObject(o, "params", (double)m->n_params);
    cJSON_AddNumberToObject(o, "classes", m->n_classes);
    char *text = cJSON_PrintUnformatted(o);
    puts(text);
    free(text);
    cJSON_Delete(o);
    return 0;
}

int cmd_import(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    OnnxImportOptions opt;
    onnx_import_options_default(&opt);
    opt.name = NULL;
    const char *file = NULL, *into = NULL, *pre = NULL, *v;
    char *classes = NULL;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "import");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if ((v = cli_option_value("--name", argc, argv, &i)))
            opt.name = v;
        else if ((v = cli_option_value("--preprocess", argc, argv, &i)))
            pre = v;
        else if ((v = cli_option_value("--classes", argc, argv, &i)))
            classes = (char *)v;
        else if ((v = cli_option_value("--dataset", argc, argv, &i)))
            opt.dataset = v;
        else if ((v = cli_option_value("--into", argc, argv, &i)))
            into = v;
        else if ((v = cli_option_value("--max-bytes", argc, argv, &i))) {
            char *end;
            long long x = strtoll(v, &end, 10);
            if (*end || x < 1) {
                fprintf(stderr, "mnistd import: --max-bytes must be a positive integer\n");
                return 2;
            }
            opt.max_bytes = (size_t)x;
        } else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else {
            fprintf(stderr, "mnistd import: unexpected argument \"%s\"\n%s", argv[i], USAGE);
            return 2;
        }
    }
    if (!file || !opt.name) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (pre && (opt.image_preprocess = image_preprocess_from_name(pre)) < 0) {
        fprintf(stderr, "mnistd import: --preprocess must be digit, frame or none\n");
        return 2;
    }
    const char *names[MODEL_MAX_CLASSES];
    if (classes) {
        if ((opt.n_class_names = model_import_split_classes(classes, names)) < 0) {
            fprintf(stderr, "mnistd import: --classes: more than %d names\n", MODEL_MAX_CLASSES);
            return 2;
        }
        opt.class_names = names;
    }
    MnError err = {0};
    size_t len;
    Model *m = NULL, *loaded = NULL;
    ModelSpec *spec = NULL;
    int status = 1;
    unsigned char *buf = cli_read_file(file, opt.max_bytes, "model file", &len, &err);
    if (!buf || model_import_bytes(buf, len, &opt, &env.limits, &m, &err))
        goto fail;
    if (into) {
        if (!(spec = malloc(sizeof *spec))) {
            mn_fail(&err, MN_ENOMEM, "out of memory");
            goto fail;
        }
        if (spec_load_file(into, &env.limits, spec, &err))
            goto fail;
        snprintf(spec->name, sizeof spec->name, "%s", opt.name);
        if (pre)
            spec->image_preprocess = (ImagePreprocess)opt.image_preprocess;
        if (model_import_weights(spec, m, &env.limits, &loaded, &err))
            goto fail;
        model_free(m);
        m = loaded;
    }
    if (m->spec.layers[m->spec.n_layers - 1].act != ACT_SOFTMAX)
        fprintf(stderr, "mnistd import: %s: the graph does not end in a Softmax: its outputs are "
                "served as they are (logits?), not as probabilities\n", file);
    status = publish(&env, m, opt.name);
    goto done;
fail:
    fprintf(stderr, "mnistd import: %s: %s\n", into && err.code == MN_ENOTFOUND ? into : file,
            err.msg);
done:
    free(spec);
    free(buf);
    model_free(m);
    return status;
}
