/* cmd_train.c - `mnistd train SPEC.json`: train, evaluate on the test
 * split, save the next version, and print one JSON summary line last on
 * stdout. Progress goes to stderr. With --grid-index N, only the N-th
 * point of the spec's grid (spec_grid_trial), recorded in the version's
 * meta: one pod of a Kubernetes Indexed Job each, grid-report reads the
 * table back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "model_dir.h"
#include "model_file.h"
#include "options.h"
#include "progress.h"
#include "step.h"
#include "train.h"
#include "train_report.h"

/* Both lanes of a big network's batch at once when there are two cores
 * (step.h); the weights come out the same on one. */
static int train_threads_default(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores >= STEP_MAX_LANES ? STEP_MAX_LANES : 1;
}

int cmd_train(int argc, char **argv)
{
    CliEnv env;
    cli_env_init(&env);
    const char *spec_path = NULL, *v;
    int epochs_override = 0, threads = train_threads_default(), grid_index = -1;
    long long seed_override = -1;
    for (int i = 0; i < argc; i++) {
        int taken = cli_env_option(&env, argc, argv, &i, "train");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if ((v = cli_option_value("--epochs", argc, argv, &i))) {
            epochs_override = atoi(v);
            if (epochs_override < 1) {
                fprintf(stderr, "mnistd train: --epochs must be a positive integer\n");
                return 2;
            }
        } else if ((v = cli_option_value("--seed", argc, argv, &i))) {
            char *end;
            seed_override = strtoll(v, &end, 10);
            if (*v < '0' || *v > '9' || *end || seed_override > SPEC_MAX_SEED) {
                fprintf(stderr, "mnistd train: --seed must be an integer 0..%lld\n", SPEC_MAX_SEED);
                return 2;
            }
        } else if ((v = cli_option_value("--grid-index", argc, argv, &i))) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*v < '0' || *v > '9' || *end || n >= SPEC_GRID_MAX * SPEC_GRID_MAX) {
                fprintf(stderr, "mnistd train: --grid-index must be an integer 0..%d, not \"%s\"\n",
                        SPEC_GRID_MAX * SPEC_GRID_MAX - 1, v);
                return 2;
            }
            grid_index = (int)n;
        } else if ((v = cli_option_value("--threads", argc, argv, &i))) {
            threads = atoi(v);
            if (threads < 1 || threads > 64) {
                fprintf(stderr, "mnistd train: --threads must be 1..64\n");
                return 2;
            }
        } else if (argv[i][0] == '-' || spec_path) {
            fprintf(stderr, "mnistd train: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        } else {
            spec_path = argv[i];
        }
    }
    if (!spec_path) {
        fprintf(stderr, "usage: mnistd train SPEC.json [--models DIR] [--data DIR] [--epochs N] "
                        "[--seed N] [--threads N] [--grid-index N]\n");
        return 2;
    }

    MnError err = {0};
    ModelSpec spec;
    Dataset train = {0}, test = {0};
    Model *m = NULL;
    TrainResult tr = {0};
    EvalResult ev = {0};
    int status = 1, version = 0;
    char path[4200];
    if (spec_load_file(spec_path, &env.limits, &spec, &err))
        goto fail;
    TrainGridPoint point = {grid_index, spec_grid_size(&spec)};
    if (grid_index >= 0) {
        if (!spec.grid_rates && !spec.grid_activations) {
            mn_fail(&err, MN_EINVAL, "--grid-index %d: %s has no \"grid\"", grid_index, spec_path);
            goto fail;
        }
        if (grid_index >= point.points) {
            mn_fail(&err, MN_EINVAL, "--grid-index %d: the grid of %s has %d points (0..%d)",
                    grid_index, spec_path, point.points, point.points - 1);
            goto fail;
        }
        ModelSpec whole = spec;
        spec_grid_trial(&whole, grid_index, &spec);
    }
    if (epochs_override)
        spec.epochs = epochs_override;
    if (seed_override >= 0)
        spec.seed = (uint64_t)seed_override;
    if (dataset_load(env.data_dir, spec.dataset, SPLIT_TRAIN, &train, &err) ||
        dataset_load(env.data_dir, spec.dataset, SPLIT_TEST, &test, &err))
        goto fail;
    if (!spec.image_preprocess_set) {
        spec.image_preprocess = train.image_preprocess;
        spec.image_preprocess_set = true;
    }
    if (model_build(&spec, &env.limits, &m, &err))
        goto fail;
    const char *names[DATASET_MAX_CLASSES];
    for (int c = 0; c < train.n_classes; c++)
        names[c] = train.class_names[c];
    if (model_check_classes(m, spec.dataset, train.n_classes, &err) ||
        model_set_class_names(m, names, train.n_classes, &err))
        goto fail;

    fprintf(stderr, "Train on %d samples (%s), %zu parameters\n", train.n, spec.dataset,
            m->n_params);
    Progress progress;
    progress_init(&progress, stderr);
    TrainCallbacks cb = {progress_on_batch, progress_on_epoch, &progress, NULL, threads};
    if (train_fit(m, &train, &test, &cb, &tr, &err) ||
        train_evaluate(m, &test, 0, &ev, &err))
        goto fail;
    if (!(m->meta_json = train_report_json_at(&spec, &tr, &ev, grid_index >= 0 ? &point : NULL))) {
        mn_fail(&err, MN_ENOMEM, "out of memory");
        goto fail;
    }
    if (model_dir_publish(m, env.models_dir, spec.name, path, sizeof path, &version, &err))
        goto fail;
    fprintf(stderr, "test_loss: %.4f - test_accuracy: %.4f - saved %s\n", ev.loss, ev.accuracy,
            path);
    printf("{\"model\":\"%s\",\"version\":%d,\"params\":%zu,\"seed\":%llu,\"epochs\":%d,"
           "\"seconds\":%.2f,\"best_train_accuracy\":%.4f,\"test_loss\":%.4f,"
           "\"test_accuracy\":%.4f}\n",
           spec.name, version, m->n_params, (unsigned long long)spec.seed, tr.epochs_run,
           tr.seconds, train_report_best_accuracy(&tr), ev.loss, ev.accuracy);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "mnistd train: %s\n", err.msg);
done:
    eval_result_free(&ev);
    train_result_free(&tr);
    model_free(m);
    dataset_free(&train);
    dataset_free(&test);
    return status;
}
