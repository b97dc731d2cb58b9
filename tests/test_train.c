/* test_train.c - real training on Fashion-MNIST must reach a floor, and the
 * command line does what the README says: train saves versions and prints
 * JSON last; summary, evaluate and predict read the saved model. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "dataset.h"
#include "image.h"
#include "model.h"
#include "model_file.h"
#include "train.h"

static const char *const MLP_SPEC =
    "{\"name\":\"floor\",\"dataset\":\"fashion-mnist\",\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":64,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
    "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.001},\"epochs\":1,\"batch_size\":32,"
    "\"seed\":1151998}";

START_TEST(test_fashion_training_reaches_floor)
{
    Dataset train, test;
    MnError err = {0};
    ck_assert_msg(dataset_load(check_util_data_dir(), "fashion-mnist", SPLIT_TRAIN, &train,
                               &err) == 0,
                  "%s (run `make data`)", err.msg);
    ck_assert_msg(dataset_load(check_util_data_dir(), "fashion-mnist", SPLIT_TEST, &test, &err) ==
                      0,
                  "%s", err.msg);
    if (check_util_quick())
        train.n = 20000; /* sanitizers are slow: a third of an epoch still clears the floor */
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    Model *m = NULL;
    ck_assert_int_eq(spec_parse(MLP_SPEC, strlen(MLP_SPEC), &lim, &s, &err), 0);
    ck_assert_int_eq(model_build(&s, &lim, &m, &err), 0);
    TrainResult tr;
    ck_assert_msg(train_fit(m, &train, &test, NULL, &tr, &err) == 0, "%s", err.msg);
    EvalResult ev;
    ck_assert_int_eq(train_evaluate(m, &test, 0, &ev, &err), 0);
    ck_assert_int_eq(ev.n, 10000);
    long total = 0, diagonal = 0;
    for (int t = 0; t < 10; t++)
        for (int p = 0; p < 10; p++) {
            total += ev.confusion[t * 10 + p];
            diagonal += t == p ? ev.confusion[t * 10 + p] : 0;
        }
    ck_assert_int_eq(total, 10000);
    ck_assert_double_eq_tol((double)diagonal / total, ev.accuracy, 1e-12);
    ck_assert_msg(ev.accuracy >= 0.80, "test accuracy %.4f after one epoch, floor 0.80",
                  ev.accuracy);
    eval_result_free(&ev);
    train_result_free(&tr);
    model_free(m);
    dataset_free(&train);
    dataset_free(&test);
}
END_TEST

/* ---- the command line ---- */

static char *tmpdir;
static void cli_setup(void) { tmpdir = check_util_tmpdir(); }
static void cli_teardown(void)
{
    check_util_rmtree(tmpdir);
    free(tmpdir);
}

static char *run(const char *args, int *status)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s --models %s/models --data %s 2>%s/stderr", check_util_bin(),
             args, tmpdir, check_util_data_dir(), tmpdir);
    char *out = check_util_run_cmd(cmd, status);
    ck_assert_msg(out != NULL, "could not run %s", cmd);
    return out;
}

static char *stderr_text(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/stderr", tmpdir);
    return check_util_read_file(path, NULL);
}

/* The last non-empty line of out, parsed. */
static cJSON *last_json_line(char *out)
{
    char *end = out + strlen(out);
    while (end > out && end[-1] == '\n')
        *--end = '\0';
    char *line = strrchr(out, '\n');
    line = line ? line + 1 : out;
    cJSON *j = cJSON_Parse(line);
    ck_assert_msg(j != NULL, "not JSON: %s", line);
    return j;
}

static void write_spec(const char *name, const char *json)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
}

static const char *const CLI_SPEC =
    "{\"name\":\"cli-mlp\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":32,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
    "\"epochs\":1,\"batch_size\":64,\"validation_split\":0.1,\"seed\":1}";

START_TEST(test_cli_train_saves_versions)
{
    write_spec("spec.json", CLI_SPEC);
    char args[4200];
    snprintf(args, sizeof args, "train %s/spec.json", tmpdir);
    int status;
    char *out = run(args, &status);
    char *err = stderr_text();
    ck_assert_msg(status == 0, "train failed: %s", err);
    ck_assert_msg(strstr(err, "Epoch 1/1") && strstr(err, "val_accuracy"), "stderr: %s", err);
    cJSON *j = last_json_line(out);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "cli-mlp");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "version")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "params")->valueint, 25450);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "epochs")->valueint, 1);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "seconds")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "test_loss")));
    double acc = cJSON_GetObjectItem(j, "test_accuracy")->valuedouble;
    ck_assert_msg(acc > 0.85, "MNIST test accuracy %.4f after one epoch", acc);
    cJSON_Delete(j);
    free(out);
    free(err);

    out = run(args, &status);
    ck_assert_int_eq(status, 0);
    j = last_json_line(out);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "version")->valueint, 2);
    cJSON_Delete(j);
    free(out);

    /* summary of the saved model */
    out = run("summary --model cli-mlp:1", &status);
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(strstr(out, "Total params: 25,450"));
    ck_assert_ptr_nonnull(strstr(out, "dense_1 (Dense)"));
    free(out);

    /* evaluate: loss, accuracy and a 10x10 confusion matrix summing to 10000 */
    out = run("evaluate --model cli-mlp --dataset mnist", &status);
    ck_assert_msg(status == 0, "%s", out);
    j = last_json_line(out);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "version")->valueint, 2);
    cJSON *cm = cJSON_GetObjectItem(j, "confusion_matrix");
    ck_assert_int_eq(cJSON_GetArraySize(cm), 10);
    long sum = 0;
    for (cJSON *row = cm->child; row; row = row->next) {
        ck_assert_int_eq(cJSON_GetArraySize(row), 10);
        for (cJSON *c = row->child; c; c = c->next)
            sum += c->valueint;
    }
    ck_assert_int_eq(sum, 10000);
    cJSON_Delete(j);
    free(out);

    /* predict: MNIST test images written as PNG files get their labels back (mostly) */
    Dataset test;
    MnError e = {0};
    ck_assert_int_eq(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &e), 0);
    char files[4096] = "";
    for (int i = 0; i < 20; i++) {
        uint8_t *png;
        size_t len;
        ck_assert_int_eq(image_encode_png_gray8(test.images + i * 784, 28, 28, &png, &len, &e), 0);
        char path[4096];
        snprintf(path, sizeof path, "%s/digit%d.png", tmpdir, i);
        FILE *f = fopen(path, "wb");
        fwrite(png, 1, len, f);
        fclose(f);
        free(png);
        strncat(files, " ", sizeof files - strlen(files) - 1);
        strncat(files, path, sizeof files - strlen(files) - 1);
    }
    snprintf(args, sizeof args, "predict --model cli-mlp:1 %s", files);
    out = run(args, &status);
    ck_assert_int_eq(status, 0);
    int right = 0, lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *p = cJSON_Parse(line);
        ck_assert_msg(p != NULL, "not JSON: %s", line);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(p, "probabilities")), 10);
        ck_assert(cJSON_IsString(cJSON_GetObjectItem(p, "label")));
        ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(p, "file")->valuestring, "digit"));
        int pred = cJSON_GetObjectItem(p, "prediction")->valueint;
        right += pred == test.labels[lines];
        cJSON_Delete(p);
    }
    ck_assert_int_eq(lines, 20);
    ck_assert_msg(right >= 16, "%d of 20 MNIST test digits right", right);
    free(out);
    dataset_free(&test);
}
END_TEST

START_TEST(test_cli_errors)
{
    int status;
    char *out = run("train /nonexistent/spec.json", &status);
    char *err = stderr_text();
    ck_assert_int_eq(status, 1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/spec.json"));
    free(out);
    free(err);

    write_spec("bad.json", "{\"name\":\"x\",\"layers\":[{\"type\":\"dense\",\"units\":16.5}]}");
    char args[4200];
    snprintf(args, sizeof args, "train %s/bad.json", tmpdir);
    out = run(args, &status);
    err = stderr_text();
    ck_assert_int_eq(status, 1);
    ck_assert_msg(strstr(err, "layers[0].units must be an integer"), "%s", err);
    free(out);
    free(err);

    /* a 7-unit head for mnist's 10 classes: the server's message, before training */
    write_spec("seven.json", "{\"name\":\"x\",\"dataset\":\"mnist\",\"layers\":[{\"type\":"
                             "\"flatten\"},{\"type\":\"dense\",\"units\":7,\"activation\":\"softmax\"}]}");
    snprintf(args, sizeof args, "train %s/seven.json", tmpdir);
    out = run(args, &status);
    err = stderr_text();
    ck_assert_int_eq(status, 1);
    ck_assert_msg(strstr(err, "layer 1 (dense) has 7 outputs, but dataset \"mnist\" has 10 classes"),
                  "%s", err);
    ck_assert_msg(!strstr(err, "Train on"), "training started: %s", err);
    free(out);
    free(err);

    out = run("predict --model nosuchmodel x.png", &status);
    err = stderr_text();
    ck_assert_int_eq(status, 1);
    ck_assert_msg(strstr(err, "nosuchmodel"), "%s", err);
    free(out);
    free(err);

    out = run("frobnicate", &status);
    ck_assert_int_eq(status, 2);
    free(out);

    /* nothing was saved by the failures */
    char models[4200];
    snprintf(models, sizeof models, "%s/models/x", tmpdir);
    ck_assert_int_ne(access(models, F_OK), 0);
}
END_TEST

/* The JSON line of `train` with extra arguments; asserts success. */
static cJSON *train_line(const char *extra)
{
    char args[4200];
    snprintf(args, sizeof args, "train %s/seed.json --epochs 1 %s", tmpdir, extra);
    int status;
    char *out = run(args, &status);
    ck_assert_msg(status == 0, "train %s failed", extra);
    cJSON *j = last_json_line(out);
    free(out);
    return j;
}

/* --seed replaces the spec's seed: the run is the one that seed gives, the
 * JSON line and the saved model record it, and a bad value saves nothing. */
START_TEST(test_cli_seed_override)
{
    write_spec("seed.json",
               "{\"name\":\"seeded\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
               "{\"type\":\"dense\",\"units\":8,\"activation\":\"relu\"},"
               "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
               "\"batch_size\":256,\"seed\":1}");
    cJSON *own = train_line(""), *same = train_line("--seed 1"), *other = train_line("--seed=2");
    ck_assert_int_eq(cJSON_GetObjectItem(own, "seed")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(other, "seed")->valueint, 2);
    double loss_own = cJSON_GetObjectItem(own, "test_loss")->valuedouble;
    ck_assert(loss_own == cJSON_GetObjectItem(same, "test_loss")->valuedouble);
    ck_assert(loss_own != cJSON_GetObjectItem(other, "test_loss")->valuedouble);
    cJSON_Delete(own);
    cJSON_Delete(same);
    cJSON_Delete(other);

    char path[4200];
    snprintf(path, sizeof path, "%s/models/seeded/v3.mnm", tmpdir);
    SpecLimits limits;
    spec_limits_default(&limits);
    Model *m = NULL;
    MnError err = {0};
    ck_assert_msg(model_load(path, &limits, &m, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(m->spec.seed, 2);
    model_free(m);

    static const char *const bad[] = {"--seed 1.5", "--seed -1", "--seed x", "--seed ''",
                                      "--seed 9007199254740993"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[4200];
        snprintf(args, sizeof args, "train %s/seed.json %s", tmpdir, bad[i]);
        int status;
        free(run(args, &status));
        char *text = stderr_text();
        ck_assert_int_eq(status, 2);
        ck_assert_msg(strstr(text, "--seed must be an integer"), "%s: %s", bad[i], text);
        free(text);
    }
    snprintf(path, sizeof path, "%s/models/seeded/v4.mnm", tmpdir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_cli_summary_of_spec)
{
    char args[4200];
    snprintf(args, sizeof args, "summary %s/specs/mnist-cnn.json", check_util_src_dir());
    int status;
    char *out = run(args, &status);
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(strstr(out, "Total params: 24,186"));
    ck_assert_ptr_nonnull(strstr(out, "(None, 7, 7, 16)"));
    free(out);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *real = tcase_create("Fashion-MNIST");
    tcase_set_timeout(real, 600);
    tcase_add_test(real, test_fashion_training_reaches_floor);
    suite_add_tcase(s, real);
    TCase *cli = tcase_create("CommandLine");
    tcase_add_checked_fixture(cli, cli_setup, cli_teardown);
    tcase_set_timeout(cli, 600);
    tcase_add_test(cli, test_cli_train_saves_versions);
    tcase_add_test(cli, test_cli_errors);
    tcase_add_test(cli, test_cli_seed_override);
    tcase_add_test(cli, test_cli_summary_of_spec);
    suite_add_tcase(s, cli);
    return s;
}

MN_TEST_MAIN(train_suite)
