/* test_grid_index.c - a grid sweep as one Kubernetes Indexed Job would run
 * it: `mnistd train SPEC --grid-index N` for some of the points, each
 * publishing a version of the same name into one store, then
 * `mnistd grid-report NAME` reading the table back: each row the point's
 * own rate and activation (spec_grid_trial's), the points not trained yet,
 * the best; and the refusals (no grid, an index past it, a bad value, a
 * version that does not load). The server answers the same table at GET
 * /models/{name}/grid, from the versions it serves. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "spec.h"

static char *dir;
static char spec_path[512];

/* 2 rates x 2 activations: trial t is rate[t % 2], activation[t / 2]. */
static const char grid_spec[] =
    "{\"name\":\"sweep\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":8,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
    "\"epochs\":1,\"batch_size\":512,\"seed\":3,"
    "\"grid\":{\"learning_rate\":[0.002,0.02],\"activation\":[\"relu\",\"tanh\"]}}";

static void setup(void)
{
    dir = check_util_tmpdir();
    snprintf(spec_path, sizeof spec_path, "%s/grid.json", dir);
    FILE *f = fopen(spec_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(grid_spec, f);
    fclose(f);
}

static void teardown(void)
{
    check_util_rmtree(dir);
    free(dir);
}

/* `mnistd ARGS` with the test's store and data: its output (stderr too
 * unless quiet) and exit status. */
static char *mnistd(const char *args, bool quiet, int *status)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s --models %s/store --data %s %s", check_util_bin(), args,
             dir, check_util_data_dir(), quiet ? "2>/dev/null" : "2>&1");
    char *out = check_util_run_cmd(cmd, status);
    ck_assert_ptr_nonnull(out);
    return out;
}

static void train_point(int index, int want_version)
{
    char args[1024];
    snprintf(args, sizeof args, "train %s --grid-index %d --threads 1", spec_path, index);
    int status;
    char *out = mnistd(args, true, &status);
    ck_assert_msg(status == 0, "point %d: %s", index, out);
    char want[64];
    snprintf(want, sizeof want, "\"version\":%d", want_version);
    ck_assert_msg(strstr(out, want), "point %d: %s", index, out);
    free(out);
}

static HttpReply get(const Server *srv, const char *method, const char *path)
{
    return check_http_request(srv->cfg.port, method, path, NULL, NULL, NULL, 0);
}

/* The server on store (the shipped models beside the sweep) answers
 * want, the CLI's --json, for the sweep, and names what it refuses. */
static void server_table(const char *store, const char *want)
{
    ck_assert_int_eq(check_util_copy_models(store), 0);
    Server srv;
    check_server_config(&srv, store);
    check_server_start(&srv);
    HttpReply r = get(&srv, "GET", "/models/sweep/grid");
    ck_assert_msg(r.status == 200 && strstr(r.raw, "Content-Type: application/json"), "%d %s",
                  r.status, r.raw);
    cJSON *got = cJSON_Parse(r.body), *cli = cJSON_Parse(want);
    ck_assert_msg(cJSON_Compare(got, cli, 1), "server %s\ncli %s", r.body, want);
    cJSON_Delete(got);
    cJSON_Delete(cli);
    check_http_free(&r);
    const struct {
        const char *method, *path, *says;
        int status;
    } refused[] = {
        {"GET", "/models/digits/grid", "of \\\"digits\\\" was trained with", 404},
        {"GET", "/models/absent/grid", "model \\\"absent\\\" not found", 404},
        {"GET", "/models/.sweep/grid", "not found", 404},
        {"POST", "/models/sweep/grid", "\"error\"", 405},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        r = get(&srv, refused[i].method, refused[i].path);
        ck_assert_msg(r.status == refused[i].status && strstr(r.body, refused[i].says),
                      "%s %s: %d %s", refused[i].method, refused[i].path, r.status, r.raw);
        check_http_free(&r);
    }
    check_server_stop(&srv, strdup(store));
}

START_TEST(points_and_their_table)
{
    char store[600];
    snprintf(store, sizeof store, "%s/store", dir);
    ck_assert_int_eq(mkdir(store, 0755), 0);
    train_point(3, 1);
    train_point(0, 2);
    int status;
    char *out = mnistd("grid-report sweep --json", true, &status);
    ck_assert_msg(status == 0, "%s", out);
    cJSON *report = cJSON_Parse(out);
    ck_assert_msg(report != NULL, "%s", out);
    ck_assert_int_eq(cJSON_GetObjectItem(report, "points")->valueint, 4);
    cJSON *rows = cJSON_GetObjectItem(report, "rows");
    ck_assert_int_eq(cJSON_GetArraySize(rows), 2);
    /* the rows in index order, each with its own trial's settings */
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec whole, trial;
    MnError err = {0};
    ck_assert_msg(spec_parse(grid_spec, strlen(grid_spec), &lim, &whole, &err) == 0, "%s",
                  err.msg);
    const int index[] = {0, 3}, version[] = {2, 1};
    for (int i = 0; i < 2; i++) {
        cJSON *row = cJSON_GetArrayItem(rows, i);
        spec_grid_trial(&whole, index[i], &trial);
        ck_assert_int_eq(cJSON_GetObjectItem(row, "index")->valueint, index[i]);
        ck_assert_int_eq(cJSON_GetObjectItem(row, "version")->valueint, version[i]);
        ck_assert_float_eq_tol(cJSON_GetObjectItem(row, "learning_rate")->valuedouble,
                               trial.optim.learning_rate, 1e-9);
        ck_assert_str_eq(cJSON_GetObjectItem(row, "activation")->valuestring,
                         index[i] < 2 ? "relu" : "tanh");
        double acc = cJSON_GetObjectItem(row, "test_accuracy")->valuedouble;
        ck_assert_msg(acc > 0.5 && acc <= 1.0, "point %d: test accuracy %g", index[i], acc);
    }
    cJSON *missing = cJSON_GetObjectItem(report, "missing");
    ck_assert_int_eq(cJSON_GetArraySize(missing), 2);
    ck_assert_int_eq(cJSON_GetArrayItem(missing, 0)->valueint, 1);
    ck_assert_int_eq(cJSON_GetArrayItem(missing, 1)->valueint, 2);
    double a0 = cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "test_accuracy")->valuedouble;
    double a3 = cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 1), "test_accuracy")->valuedouble;
    ck_assert_int_eq(cJSON_GetObjectItem(report, "best_version")->valueint, a0 >= a3 ? 2 : 1);
    cJSON_Delete(report);
    char *json = out;
    /* the table for people says the same */
    out = mnistd("grid-report sweep", true, &status);
    ck_assert_msg(status == 0 && strstr(out, "4 points, 2 versions trained") &&
                      strstr(out, "not trained yet: 1 2"),
                  "%s", out);
    free(out);
    /* a version that does not load is named, not skipped */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/sweep/v9.mnm", store);
    FILE *f = fopen(bad, "w");
    fputs("not a model", f);
    fclose(f);
    out = mnistd("grid-report sweep", false, &status);
    ck_assert_msg(status == 1 && strstr(out, "v9.mnm"), "%s", out);
    free(out);
    /* the server does not serve v9, so its table is the one before it */
    server_table(store, json);
    free(json);
}
END_TEST

START_TEST(refusals)
{
    int status;
    char args[1024];
    snprintf(args, sizeof args, "train %s --grid-index 4", spec_path);
    char *out = mnistd(args, false, &status);
    ck_assert_msg(status == 1 && strstr(out, "--grid-index 4: the grid of") &&
                      strstr(out, "has 4 points (0..3)"),
                  "%s", out);
    free(out);
    const char *bad_values[] = {"-1", "x", "1x", ""};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "train %s --grid-index '%s'", spec_path, bad_values[i]);
        out = mnistd(args, false, &status);
        ck_assert_msg(status == 2 && strstr(out, "--grid-index must be an integer"), "%s: %s",
                      bad_values[i], out);
        free(out);
    }
    snprintf(args, sizeof args, "train %s/specs/mnist-mlp64.json --grid-index 0",
             check_util_src_dir());
    out = mnistd(args, false, &status);
    ck_assert_msg(status == 1 && strstr(out, "has no \"grid\""), "%s", out);
    free(out);
    out = mnistd("grid-report absent", false, &status);
    ck_assert_msg(status == 1 && strstr(out, "no model \"absent\""), "%s", out);
    free(out);
    out = mnistd("grid-report ../x", false, &status);
    ck_assert_int_eq(status, 2);
    free(out);
}
END_TEST

static Suite *grid_index_suite(void)
{
    Suite *s = suite_create("GridIndex");
    TCase *tc = tcase_create("Cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* two short trainings on MNIST, slower under the sanitizers */
    tcase_add_test(tc, points_and_their_table);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(grid_index_suite)
