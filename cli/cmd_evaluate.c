/* cmd_evaluate.c - `mnistd evaluate --model NAME[:VERSION]`: loss,
 * accuracy and the confusion matrix on a dataset's test split, as JSON. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dataset.h"
#include "options.h"
#include "train.h"
#include "train_report.h"

int cmd_evaluate(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    const char *ref = NULL, *dataset = NULL, *v;
    int limit = 0;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "evaluate");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if ((v = cli_option_value("--model", argc, argv, &i)))
            ref = v;
        else if ((v = cli_option_value("--dataset", argc, argv, &i)))
            dataset = v;
        else if ((v = cli_option_value("--limit", argc, argv, &i)))
            limit = atoi(v);
        else {
            fprintf(stderr, "mnistd evaluate: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!ref) {
        fprintf(stderr, "usage: mnistd evaluate --model NAME[:VERSION] [--dataset D] [--limit N]\n");
        return 2;
    }
    int version;
    Model *m = cli_load_model(&env, ref, &version, "evaluate");
    if (!m)
        return 1;
    MnError err = {0};
    Dataset test = {0};
    EvalResult ev = {0};
    int status = 1;
    if (!dataset)
        dataset = m->spec.dataset;
    if (dataset_load(env.data_dir, dataset, SPLIT_TEST, &test, &err) ||
        train_evaluate(m, &test, limit, &ev, &err)) {
        fprintf(stderr, "mnistd evaluate: %s\n", err.msg);
        goto done;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->spec.name);
    cJSON_AddNumberToObject(o, "version", version);
    cJSON_AddStringToObject(o, "dataset", dataset);
    cJSON_AddNumberToObject(o, "samples", (double)ev.n);
    cJSON_AddNumberToObject(o, "loss", ev.loss);
    cJSON_AddNumberToObject(o, "accuracy", ev.accuracy);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (int c = 0; c < m->n_classes; c++)
        cJSON_AddItemToArray(classes, cJSON_CreateString(m->class_names[c]));
    cJSON_AddItemToObject(o, "confusion_matrix", train_report_confusion(&ev));
    char *text = cJSON_PrintUnformatted(o);
    puts(text);
    free(text);
    cJSON_Delete(o);
    status = 0;
done:
    eval_result_free(&ev);
    dataset_free(&test);
    model_free(m);
    return status;
}
