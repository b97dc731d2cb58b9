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

/* A model built from a JSON spec with the default limits; fails the test
 * with the error otherwise. */
Model *check_util_build_model(const char *json);

/* Every parameter's gradient from model_backward against central
 * differences of model_loss, for n samples x (the model's input shape)
 * with labels; `name` heads the message of a mismatch. */
void check_util_model_gradients(Model *m, const float *x, const unsigned char *labels,
                                int n, const char *name);

#endif
