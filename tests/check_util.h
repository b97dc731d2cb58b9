/* check_util.h - what every Check test binary shares: the main that runs one
 * suite, where to find test data, and the finite-difference helpers. */
#ifndef MN_CHECK_UTIL_H
#define MN_CHECK_UTIL_H

#include <check.h>
#include <stdbool.h>

#include "model.h"

/* Runs the suite, prints Check's summary line, exits non-zero on failure. */
int check_util_run(Suite *s);
#define MN_TEST_MAIN(suite_fn) \
    int main(void) { return check_util_run(suite_fn()); }

/* The data directory (MNISTD_DATA, default "data"). */
const char *check_util_data_dir(void);
/* The source tree (MNISTD_SRC, default "."), for specs/ and fixtures. */
const char *check_util_src_dir(void);
/* The built binary (MNISTD_BIN, default "build/mnistd"). */
const char *check_util_bin(void);
/* True under `make asan`: long trainings are shortened. */
bool check_util_quick(void);
/* How many times slower than plain code the tests run: Check's own
 * CK_TIMEOUT_MULTIPLIER (make tsan sets it), at least 1. Waits that poll
 * with a cap scale the cap by it, never what they assert about timing. */
int check_util_slowdown(void);
/* A fresh temporary directory (malloc'd path); removed by the caller. */
char *check_util_tmpdir(void);
void check_util_rmtree(const char *path);
/* Copies the shipped models (the source tree's models/) into dir: 0 on success. */
int check_util_copy_models(const char *dir);
/* Reads a whole file (malloc'd, NUL-terminated); NULL on failure. */
char *check_util_read_file(const char *path, size_t *len);
/* Runs a shell command, captures stdout (malloc'd) and the exit status. */
char *check_util_run_cmd(const char *cmd, int *status);

/* MNIST test digit `index` as PNG bytes (malloc'd), its label in *label
 * (may be NULL). */
unsigned char *check_util_digit_png(int index, size_t *len, int *label);

/* Image fixtures: a smooth gray ramp (40 to 190, left to right) with a
 * bright (240) square in the second quarter, w x h; an encoded image
 * decoded with the default limits and no preprocessing into out (h x w);
 * the largest difference between out and want/255. */
void check_util_gray_pattern(unsigned char *px, int w, int h);
int check_util_decode_none(const unsigned char *bytes, size_t len, int w, int h, float *out,
                           MnError *err);
float check_util_max_diff(const float *out, const unsigned char *want, int n);
/* The photo-decoder suites' common checks (test_jpeg, test_webp):
 * - a dark bar on paper lit from one side, CHECK_PHOTO_W x CHECK_PHOTO_H,
 *   and its encoded file read by the digit preprocessing with a trace:
 *   the bar centred at full ink, the paper black, the steps from
 *   "decoded" to "input";
 * - a big check_util_gray_pattern file framed into 28x28 (any decode
 *   scaling keeps the ramp, not inverted). */
enum { CHECK_PHOTO_W = 120, CHECK_PHOTO_H = 100 };
void check_util_bar_photo(unsigned char *px);
void check_util_expect_bar_read(const unsigned char *bytes, size_t len);
void check_util_expect_ramp_framed(const unsigned char *bytes, size_t len);
/* A file whose header claims huge dimensions: refused in under 50 ms
 * with exactly `says`. A real w x h file: refused by a side limit one
 * short of it, each named, and by a byte limit one short of its size;
 * taken at exactly them. */
void check_util_expect_bomb_refused(const unsigned char *bytes, size_t len, const char *says);
void check_util_expect_limits_exact(const unsigned char *bytes, size_t len, int w, int h);
/* An encoded w x h file cut at every few bytes from `from` to its last
 * byte: each cut refused as MN_ECORRUPT with `says` in the message. */
void check_util_expect_cuts_refused(const unsigned char *bytes, size_t len, size_t from, int w,
                                    int h, const char *says);

/* A model built from a JSON spec with the default limits; fails the test
 * with the error otherwise. */
Model *check_util_build_model(const char *json);

/* The central difference (loss(v + eps) - loss(v - eps)) / 2 eps along
 * one value *v that loss(ctx) reads; *v is left as it was. */
typedef double (*CheckLoss)(void *ctx);
double check_util_central_difference(float *v, float eps, CheckLoss loss, void *ctx);

/* Every parameter's gradient from model_backward against central
 * differences of model_loss, for n samples x (the model's input shape)
 * with labels; `name` heads the message of a mismatch. The _every form
 * checks only every step-th parameter, for models too big for all. */
void check_util_model_gradients(Model *m, const float *x, const unsigned char *labels,
                                int n, const char *name);
void check_util_model_gradients_every(Model *m, const float *x, const unsigned char *labels,
                                      int n, size_t step, const char *name);

#endif
