/* check_util.c - shared test plumbing (see check_util.h). */
#define _GNU_SOURCE
#include "check_util.h"

#include <math.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dataset.h"
#include "image.h"

int check_util_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

const char *check_util_data_dir(void) { return env_or("MNISTD_DATA", "data"); }
const char *check_util_src_dir(void) { return env_or("MNISTD_SRC", "."); }
const char *check_util_bin(void) { return env_or("MNISTD_BIN", "build/mnistd"); }
bool check_util_quick(void) { return getenv("MNISTD_QUICK") != NULL; }

int check_util_slowdown(void)
{
    int k = atoi(env_or("CK_TIMEOUT_MULTIPLIER", "1"));
    return k > 1 ? k : 1;
}

char *check_util_tmpdir(void)
{
    char tmpl[] = "/tmp/mnistd-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

int check_util_copy_models(const char *dir)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -R '%s/models/.' '%s/'", check_util_src_dir(), dir);
    return system(cmd);
}

void check_util_rmtree(const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

/* Reads a stream to its end into a NUL-terminated malloc'd buffer. */
static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

char *check_util_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = read_stream(f, len);
    fclose(f);
    return buf;
}

char *check_util_run_cmd(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char *buf = read_stream(p, NULL);
    int st = pclose(p);
    if (status)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

Model *check_util_build_model(const char *json)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    MnError err = {0};
    Model *m = NULL;
    ck_assert_msg(spec_parse(json, strlen(json), &lim, &s, &err) == 0, "%s", err.msg);
    ck_assert_msg(model_build(&s, &lim, &m, &err) == 0, "%s", err.msg);
    return m;
}

static double loss_at(const Model *m, ModelRun *r, const float *x, const uint8_t *labels, int n)
{
    memcpy(model_run_input(r), x, (size_t)n * shape_numel(m->spec.input) * sizeof *x);
    model_forward(m, r, n, true);
    return model_loss(m, r, labels, n);
}

void check_util_model_gradients(Model *m, const float *x, const unsigned char *labels, int n,
                                const char *name)
{
    MnError err = {0};
    ModelRun *r = model_run_new(m, n, true, &err);
    ck_assert_msg(r != NULL, "%s: %s", name, err.msg);
    float *grads = calloc(m->n_params ? m->n_params : 1, sizeof *grads);
    memcpy(model_run_input(r), x, (size_t)n * shape_numel(m->spec.input) * sizeof *x);
    model_forward(m, r, n, true);
    model_backward(m, r, labels, n, n, grads);
    const float eps = 1e-2f;
    for (size_t i = 0; i < m->n_params; i++) {
        float p0 = m->params[i];
        m->params[i] = p0 + eps;
        double lp = loss_at(m, r, x, labels, n);
        m->params[i] = p0 - eps;
        double lm = loss_at(m, r, x, labels, n);
        m->params[i] = p0;
        double num = (lp - lm) / (2.0 * eps), ana = grads[i];
        double rel = fabs(num - ana) / fmax(1e-3, fabs(num) + fabs(ana));
        ck_assert_msg(rel < 2e-2, "%s: dparam[%zu] analytic %.6g numeric %.6g", name, i, ana,
                      num);
    }
    free(grads);
    model_run_free(r);
}

unsigned char *check_util_digit_png(int index, size_t *len, int *label)
{
    static Dataset test; /* loaded once per test process */
    MnError err = {0};
    if (!test.n)
        ck_assert_msg(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &test, &err) == 0,
                      "%s", err.msg);
    size_t numel = shape_numel(test.shape);
    uint8_t *png;
    ck_assert_int_eq(image_encode_png_gray8(test.images + (size_t)index * numel, test.shape.h,
                                            test.shape.w, &png, len, &err),
                     0);
    if (label)
        *label = test.labels[index];
    return png;
}
