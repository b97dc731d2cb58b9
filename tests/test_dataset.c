/* test_dataset.c - IDX files (plain and gzip, refusals of bad headers,
 * truncation, trailing bytes, sizes over the limit), the dataset directory
 * layout, and the real datasets that `make data` prepares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "check_util.h"
#include "dataset.h"
#include "idx.h"

static char *tmpdir;
static void setup(void) { tmpdir = check_util_tmpdir(); }
static void teardown(void)
{
    check_util_rmtree(tmpdir);
    free(tmpdir);
}

/* Writes an IDX file: header for dims, then n data bytes (n may disagree, on purpose). */
static void write_idx(const char *path, bool gz, int type, int ndims, const uint32_t *dims,
                      const uint8_t *data, size_t n)
{
    unsigned char head[4 + 4 * 4] = {0, 0, (unsigned char)type, (unsigned char)ndims};
    for (int i = 0; i < ndims; i++) {
        head[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        head[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        head[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        head[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, head, (unsigned)(4 + 4 * ndims));
        if (n)
            gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(head, 1, (size_t)(4 + 4 * ndims), f);
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static char *path_in(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

START_TEST(test_idx_round_trip)
{
    uint8_t data[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        data[i] = (uint8_t)(i * 10);
    uint32_t dims[3] = {2, 3, 4};
    for (int gz = 0; gz < 2; gz++) {
        write_idx(path_in("a.idx"), gz, 8, 3, dims, data, sizeof data);
        IdxArray a;
        MnError err = {0};
        ck_assert_msg(idx_load(path_in("a.idx"), 1 << 20, &a, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(a.ndims, 3);
        ck_assert_uint_eq(a.dims[0], 2);
        ck_assert_uint_eq(a.dims[2], 4);
        ck_assert_uint_eq(a.size, 24);
        ck_assert(memcmp(a.data, data, 24) == 0);
        idx_free(&a);
    }
}
END_TEST

START_TEST(test_idx_refusals)
{
    uint8_t data[128] = {0};
    uint32_t dims[3] = {2, 3, 4};
    IdxArray a;
    MnError err = {0};

    write_idx(path_in("short.idx"), true, 8, 3, dims, data, 23);
    ck_assert_int_eq(idx_load(path_in("short.idx"), 1 << 20, &a, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "truncated") && strstr(err.msg, "short.idx"), "%s", err.msg);

    write_idx(path_in("long.idx"), false, 8, 3, dims, data, 25);
    ck_assert_int_eq(idx_load(path_in("long.idx"), 1 << 20, &a, &err), MN_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "trailing bytes"));

    write_idx(path_in("float.idx"), false, 0x0D, 3, dims, data, 24 * 4);
    ck_assert_int_eq(idx_load(path_in("float.idx"), 1 << 20, &a, &err), MN_EFORMAT);

    write_idx(path_in("dims.idx"), false, 8, 0, dims, data, 0);
    ck_assert_int_eq(idx_load(path_in("dims.idx"), 1 << 20, &a, &err), MN_EFORMAT);

    uint32_t huge[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    write_idx(path_in("huge.idx"), false, 8, 3, huge, data, 16);
    ck_assert_int_eq(idx_load(path_in("huge.idx"), 1 << 20, &a, &err), MN_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "limit"));

    write_idx(path_in("limit.idx"), false, 8, 3, dims, data, 24);
    ck_assert_int_eq(idx_load(path_in("limit.idx"), 23, &a, &err), MN_ELIMIT);

    FILE *f = fopen(path_in("tiny.idx"), "wb");
    fputs("\0\0", f);
    fclose(f);
    ck_assert_int_eq(idx_load(path_in("tiny.idx"), 1 << 20, &a, &err), MN_ECORRUPT);

    ck_assert_int_eq(idx_load(path_in("missing.idx"), 1 << 20, &a, &err), MN_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.idx"));
}
END_TEST

/* A tiny dataset directory: 5 images of 2x3, 3 classes. */
static void make_fake(const char *name, const uint8_t *labels, int n_labels)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/dataset.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\": \"fake\", \"classes\": [\"a\", \"b\", \"c\"], \"image_preprocess\": \"frame\","
          " \"train\": {\"images\": \"ti\", \"labels\": \"tl\"},"
          " \"test\": {\"images\": \"ti\", \"labels\": \"tl\"}}",
          f);
    fclose(f);
    uint8_t px[5 * 6];
    for (int i = 0; i < 30; i++)
        px[i] = (uint8_t)i;
    uint32_t idims[3] = {5, 2, 3}, ldims[1] = {(uint32_t)n_labels};
    snprintf(path, sizeof path, "%s/ti", dir);
    write_idx(path, false, 8, 3, idims, px, sizeof px);
    snprintf(path, sizeof path, "%s/tl", dir);
    write_idx(path, false, 8, 1, ldims, labels, (size_t)n_labels);
}

START_TEST(test_dataset_directory)
{
    uint8_t good[5] = {0, 1, 2, 1, 0}, bad[5] = {0, 1, 3, 1, 0};
    make_fake("fake", good, 5);
    make_fake("badlabel", bad, 5);
    make_fake("fewlabels", good, 4);
    Dataset d;
    MnError err = {0};
    ck_assert_msg(dataset_load(tmpdir, "fake", SPLIT_TRAIN, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d.n, 5);
    ck_assert_int_eq(d.shape.h, 2);
    ck_assert_int_eq(d.shape.w, 3);
    ck_assert_int_eq(d.n_classes, 3);
    ck_assert_str_eq(d.class_names[2], "c");
    ck_assert_int_eq(d.image_preprocess, IMAGE_PRE_FRAME);
    ck_assert_int_eq(d.images[29], 29);
    float mean[6], std[6];
    dataset_standardize_stats(&d, 5, mean, std);
    ck_assert_float_eq_tol(mean[0], 12.0f, 1e-5f); /* pixel 0 of the images: 0, 6, 12, 18, 24 */
    ck_assert_float_eq_tol(std[0], 8.485281f, 1e-4f);
    dataset_free(&d);

    ck_assert_int_eq(dataset_load(tmpdir, "badlabel", SPLIT_TRAIN, &d, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "label 3 at index 2"), "%s", err.msg);
    ck_assert_int_eq(dataset_load(tmpdir, "fewlabels", SPLIT_TEST, &d, &err), MN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "4 labels for 5 images"), "%s", err.msg);
    ck_assert_int_eq(dataset_load(tmpdir, "nothere", SPLIT_TEST, &d, &err), MN_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "make data"), "%s", err.msg);
    ck_assert_int_eq(dataset_load(tmpdir, "../etc", SPLIT_TEST, &d, &err), MN_EINVAL);

    char **names = dataset_list(tmpdir);
    ck_assert_str_eq(names[0], "badlabel");
    ck_assert_str_eq(names[1], "fake");
    ck_assert_str_eq(names[2], "fewlabels");
    ck_assert_ptr_null(names[3]);
    dataset_list_free(names);
}
END_TEST

START_TEST(test_real_datasets)
{
    static const int mnist_test_counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    Dataset d;
    MnError err = {0};
    const char *dir = check_util_data_dir();
    ck_assert_msg(dataset_load(dir, "fashion-mnist", SPLIT_TRAIN, &d, &err) == 0,
                  "%s (make test runs make data first)", err.msg);
    ck_assert_int_eq(d.n, 60000);
    ck_assert_int_eq(d.shape.h, 28);
    ck_assert_str_eq(d.class_names[0], "T-shirt/top");
    ck_assert_str_eq(d.class_names[9], "Ankle boot");
    ck_assert_int_eq(d.image_preprocess, IMAGE_PRE_FRAME);
    float mean[784], std[784];
    dataset_standardize_stats(&d, 1000, mean, std);
    for (int i = 0; i < 784; i++)
        ck_assert(mean[i] >= 0.0f && mean[i] <= 255.0f && std[i] > 0.0f);
    dataset_free(&d);
    ck_assert_int_eq(dataset_load(dir, "fashion-mnist", SPLIT_TEST, &d, &err), 0);
    ck_assert_int_eq(d.n, 10000);
    dataset_free(&d);

    ck_assert_msg(dataset_load(dir, "mnist", SPLIT_TEST, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d.n, 10000);
    ck_assert_int_eq(d.image_preprocess, IMAGE_PRE_DIGIT);
    int counts[10] = {0};
    for (int i = 0; i < d.n; i++)
        counts[d.labels[i]]++;
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], mnist_test_counts[c]);
    dataset_free(&d);
    ck_assert_int_eq(dataset_load(dir, "mnist", SPLIT_TRAIN, &d, &err), 0);
    ck_assert_int_eq(d.n, 60000);
    ck_assert_int_eq(d.labels[0], 5); /* the famous first training digit */
    dataset_free(&d);

    char **names = dataset_list(dir);
    ck_assert_str_eq(names[0], "fashion-mnist");
    ck_assert_str_eq(names[1], "mnist");
    dataset_list_free(names);
}
END_TEST

static Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_idx_round_trip);
    tcase_add_test(tc, test_dataset_directory);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_add_test(lim, test_idx_refusals);
    suite_add_tcase(s, lim);
    TCase *real = tcase_create("Data");
    tcase_set_timeout(real, 60);
    tcase_add_test(real, test_real_datasets);
    suite_add_tcase(s, real);
    return s;
}

MN_TEST_MAIN(dataset_suite)
