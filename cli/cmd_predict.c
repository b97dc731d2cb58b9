/* cmd_predict.c - `mnistd predict FILE.png...`: one JSON line per file,
 * through the model's own image preprocessing (or the one asked for). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image.h"
#include "json.h"
#include "metrics.h"
#include "options.h"

#define DEFAULT_MODEL "digits"

static int predict_file(const Model *m, ModelRun *run, const char *path, ImagePreprocess mode,
                        const ImageLimits *lim)
{
    MnError err = {0};
    size_t len;
    Shape in = m->spec.input;
    unsigned char *png = cli_read_file(path, lim->max_bytes, "image", &len, &err);
    float *pixels = malloc(shape_numel(in) * sizeof *pixels);
    int rc = png && pixels ? image_from_bytes(png, len, lim, mode, in.h, in.w, pixels, NULL, &err)
                           : (png ? mn_fail(&err, MN_ENOMEM, "out of memory") : err.code);
    if (rc == 0) {
        model_prepare_unit_inputs(m, pixels, 1, model_run_input(run));
        const float *p = model_forward(m, run, 1, false);
        int best = metrics_argmax(p, m->n_classes);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddNumberToObject(o, "prediction", best);
        cJSON_AddStringToObject(o, "label", m->class_names[best]);
        cJSON_AddItemToObject(o, "probabilities", json_float_array(p, m->n_classes));
        char *text = cJSON_PrintUnformatted(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        fprintf(stderr, "mnistd predict: %s: %s\n", path, err.msg);
    }
    free(png);
    free(pixels);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    const char *ref = getenv("MNISTD_MODEL"), *v, *pre = NULL;
    if (!ref || !*ref)
        ref = DEFAULT_MODEL;
    int first_file = -1, n_files = 0;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    if (!files)
        return 1;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "predict");
        if (taken < 0) {
            free(files);
            return 2;
        }
        if (taken)
            continue;
        if ((v = cli_option_value("--model", argc, argv, &i)))
            ref = v;
        else if ((v = cli_option_value("--preprocess", argc, argv, &i)))
            pre = v;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "mnistd predict: unknown option \"%s\"\n", argv[i]);
            free(files);
            return 2;
        } else
            files[n_files++] = argv[i];
    }
    (void)first_file;
    if (n_files == 0) {
        fprintf(stderr, "usage: mnistd predict [--model NAME[:VERSION]] "
                        "[--preprocess digit|frame|none] FILE.png...\n");
        free(files);
        return 2;
    }
    int version;
    Model *m = cli_load_model(&env, ref, &version, "predict");
    if (!m) {
        free(files);
        return 1;
    }
    ImagePreprocess mode = m->spec.image_preprocess;
    if (pre) {
        int p = image_preprocess_from_name(pre);
        if (p < 0) {
            fprintf(stderr, "mnistd predict: --preprocess must be digit, frame or none\n");
            model_free(m);
            free(files);
            return 2;
        }
        mode = (ImagePreprocess)p;
    }
    ImageLimits lim;
    image_limits_default(&lim);
    MnError err = {0};
    ModelRun *run = model_run_new(m, 1, false, &err);
    int failures = 0;
    for (int i = 0; run && i < n_files; i++)
        failures += predict_file(m, run, files[i], mode, &lim) != 0;
    if (!run)
        fprintf(stderr, "mnistd predict: %s\n", err.msg);
    model_run_free(run);
    model_free(m);
    free(files);
    return failures || !run ? 1 : 0;
}
