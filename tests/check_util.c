/* check_util.c - shared test plumbing (see check_util.h). */
#define _GNU_SOURCE
#include "check_util.h"

#include <math.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

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

double check_util_central_difference(float *v, float eps, CheckLoss loss, void *ctx)
{
    float v0 = *v;
    *v = v0 + eps;
    double up = loss(ctx);
    *v = v0 - eps;
    double down = loss(ctx);
    *v = v0;
    return (up - down) / (2.0 * eps);
}

typedef struct {
    const Model *m;
    ModelRun *r;
    const float *x;
    const uint8_t *labels;
    int n;
} ModelLoss;

static double model_loss_at(void *ctx)
{
    ModelLoss *c = ctx;
    size_t values = (size_t)c->n * shape_numel(c->m->spec.input);
    memcpy(model_run_input(c->r), c->x, values * sizeof *c->x);
    model_forward(c->m, c->r, c->n, true);
    return model_loss(c->m, c->r, c->labels, c->n);
}

static double relative_gap(double num, double ana)
{
    return fabs(num - ana) / fmax(1e-3, fabs(num) + fabs(ana));
}

void check_util_model_gradients(Model *m, const float *x, const unsigned char *labels, int n,
                                const char *name)
{
    check_util_model_gradients_every(m, x, labels, n, 1, name);
}

void check_util_model_gradients_every(Model *m, const float *x, const unsigned char *labels,
                                      int n, size_t step, const char *name)
{
    MnError err = {0};
    ModelRun *r = model_run_new(m, n, true, &err);
    ck_assert_msg(r != NULL, "%s: %s", name, err.msg);
    float *grads = calloc(m->n_params ? m->n_params : 1, sizeof *grads);
    memcpy(model_run_input(r), x, (size_t)n * shape_numel(m->spec.input) * sizeof *x);
    model_forward(m, r, n, true);
    model_backward(m, r, labels, n, n, grads);
    const float eps = 1e-2f;
    const double tolerance = 2e-2; /* relative, or absolute 2e-5 under 1e-3 */
    ModelLoss loss = {.m = m, .r = r, .x = x, .labels = labels, .n = n};
    for (size_t i = 0; i < m->n_params; i += step) {
        double num = check_util_central_difference(&m->params[i], eps, model_loss_at, &loss);
        double ana = grads[i];
        /* A central difference errs by eps^2 f'''/6. Where the loss curves
         * sharply along a parameter (batchnorm's seed-4 net on an AVX2
         * kernel: 0.000334 at eps, 0.000357 at eps/2, analytic 0.000355),
         * Richardson's extrapolation from eps and eps/2 cancels that term. */
        if (relative_gap(num, ana) >= tolerance) {
            double half =
                check_util_central_difference(&m->params[i], eps / 2, model_loss_at, &loss);
            num = (4.0 * half - num) / 3.0;
        }
        ck_assert_msg(relative_gap(num, ana) < tolerance,
                      "%s: dparam[%zu] analytic %.6g numeric %.6g", name, i, ana, num);
    }
    free(grads);
    model_run_free(r);
}

void check_util_gray_pattern(unsigned char *px, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            px[y * w + x] = (unsigned char)(40 + 150 * x / (w - 1));
    for (int y = h / 4; y < h / 2; y++)
        for (int x = w / 4; x < w / 2; x++)
            px[y * w + x] = 240;
}

int check_util_decode_none(const unsigned char *bytes, size_t len, int w, int h, float *out,
                           MnError *err)
{
    ImageLimits lim;
    image_limits_default(&lim);
    memset(err, 0, sizeof *err);
    return image_from_bytes(bytes, len, &lim, IMAGE_PRE_NONE, h, w, out, NULL, err);
}

float check_util_max_diff(const float *out, const unsigned char *want, int n)
{
    float d = 0.0f;
    for (int i = 0; i < n; i++)
        d = fmaxf(d, fabsf(out[i] - want[i] / 255.0f));
    return d;
}

void check_util_bar_photo(unsigned char *px)
{
    for (int y = 0; y < CHECK_PHOTO_H; y++)
        for (int x = 0; x < CHECK_PHOTO_W; x++) {
            bool ink = x >= 55 && x < 63 && y >= 20 && y < 80;
            px[y * CHECK_PHOTO_W + x] = ink ? 40 : (unsigned char)(150 + x / 2);
        }
}

void check_util_expect_bar_read(const unsigned char *bytes, size_t len)
{
    ImageLimits lim;
    image_limits_default(&lim);
    float out[28 * 28];
    ImageTrace *trace = calloc(1, sizeof *trace);
    MnError err = {0};
    ck_assert_msg(image_from_bytes(bytes, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, trace, &err) == 0,
                  "%s", err.msg);
    ck_assert_float_eq_tol(out[14 * 28 + 14], 1.0f, 0.05f); /* the bar, centred */
    ck_assert_float_eq_tol(out[14 * 28 + 3], 0.0f, 0.02f);  /* the paper, black */
    ck_assert_int_ge(trace->n, 5);
    ck_assert_str_eq(trace->steps[0].step, "decoded");
    ck_assert_str_eq(trace->steps[trace->n - 1].step, "input");
    free(trace);
}

void check_util_expect_ramp_framed(const unsigned char *bytes, size_t len)
{
    ImageLimits lim;
    image_limits_default(&lim);
    float out[28 * 28];
    MnError err = {0};
    ck_assert_msg(image_from_bytes(bytes, len, &lim, IMAGE_PRE_FRAME, 28, 28, out, NULL, &err) == 0,
                  "%s", err.msg);
    /* dark on the left (not inverted): the columns' means */
    ck_assert_float_eq_tol(out[14 * 28 + 27], (40 + 150 * 27.5f / 28) / 255, 0.02f);
    ck_assert_float_eq_tol(out[14 * 28 + 0], (40 + 150 * 0.5f / 28) / 255, 0.02f);
}

void check_util_expect_bomb_refused(const unsigned char *bytes, size_t len, const char *says)
{
    ImageLimits lim;
    image_limits_default(&lim);
    float out[28 * 28];
    MnError err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = image_from_bytes(bytes, len, &lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(rc == MN_ELIMIT, "rc %d (%s)", rc, err.msg);
    ck_assert_str_eq(err.msg, says);
    ck_assert_double_lt((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, 50.0);
}

/* image_from_bytes under lim, digit preprocessing: its code; err.msg the message. */
static int digit_under(const unsigned char *bytes, size_t len, const ImageLimits *lim,
                       MnError *err)
{
    float out[28 * 28];
    memset(err, 0, sizeof *err);
    return image_from_bytes(bytes, len, lim, IMAGE_PRE_DIGIT, 28, 28, out, NULL, err);
}

void check_util_expect_limits_exact(const unsigned char *bytes, size_t len, int w, int h)
{
    ImageLimits lim;
    image_limits_default(&lim);
    MnError err;
    char want[128];
    lim.max_width = w - 1;
    ck_assert_int_eq(digit_under(bytes, len, &lim, &err), MN_ELIMIT);
    snprintf(want, sizeof want, "image %dx%d exceeds the %dx%d limit", w, h, w - 1, lim.max_height);
    ck_assert_str_eq(err.msg, want);
    lim.max_width = w;
    lim.max_height = h - 1;
    ck_assert_int_eq(digit_under(bytes, len, &lim, &err), MN_ELIMIT);
    snprintf(want, sizeof want, "image %dx%d exceeds the %dx%d limit", w, h, w, h - 1);
    ck_assert_str_eq(err.msg, want);
    lim.max_height = h;
    ck_assert_msg(digit_under(bytes, len, &lim, &err) == 0, "%s", err.msg);
    lim.max_bytes = len - 1;
    ck_assert_int_eq(digit_under(bytes, len, &lim, &err), MN_ELIMIT);
    snprintf(want, sizeof want, "image of %zu bytes exceeds the %zu-byte limit", len, len - 1);
    ck_assert_str_eq(err.msg, want);
    lim.max_bytes = len;
    ck_assert_msg(digit_under(bytes, len, &lim, &err) == 0, "%s", err.msg);
}

void check_util_expect_cuts_refused(const unsigned char *bytes, size_t len, size_t from, int w,
                                    int h, const char *says)
{
    float *out = malloc((size_t)w * h * sizeof *out);
    for (size_t cut = from; cut < len; cut += cut < 40 || cut + 3 >= len ? 1 : 17) {
        MnError err;
        int rc = check_util_decode_none(bytes, cut, w, h, out, &err);
        ck_assert_msg(rc == MN_ECORRUPT, "cut at %zu of %zu: rc %d (%s)", cut, len, rc, err.msg);
        ck_assert_msg(strstr(err.msg, says), "cut at %zu: %s", cut, err.msg);
    }
    free(out);
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
