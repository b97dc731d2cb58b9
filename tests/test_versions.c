/* test_versions.c - a version number names one set of weights forever:
 * after a delete of the latest, of every version, across a restart of the
 * store, while writers publish at once and a shipped model is seeded, the
 * next version takes a number no version of that name ever had. And the
 * refusal: a mark that is not a number stops publishing and deleting,
 * changing nothing (over HTTP, a 500 naming the file). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "model_dir.h"
#include "model_file.h"
#include "store.h"

static char *dir;
static Model *model;
static Store *store;
static SpecLimits lim;

static void setup(void)
{
    dir = check_util_tmpdir();
    spec_limits_default(&lim);
    model = check_util_build_model(
        "{\"name\":\"v\",\"input_shape\":[4,4,1],\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}]}");
    MnError err = {0};
    store = store_open(dir, &lim, &err);
    ck_assert_msg(store != NULL, "%s", err.msg);
}

static void teardown(void)
{
    store_close(store);
    model_free(model);
    check_util_rmtree(dir);
    free(dir);
}

/* Publishes name's next version, as a job or an upload does: its number. */
static int publish(const char *name)
{
    char path[4200];
    int v = 0;
    MnError err = {0};
    ck_assert_msg(model_dir_publish(model, dir, name, path, sizeof path, &v, &err) == 0, "%s",
                  err.msg);
    return v;
}

/* The store's view caught up with the disk, then version v deleted. */
static void delete_version(const char *name, int v)
{
    int added, dropped;
    MnError err = {0};
    ck_assert_int_eq(store_rescan(store, &added, &dropped, &err), 0);
    ck_assert_msg(store_remove(store, name, v, &err) == 0, "%s v%d: %s", name, v, err.msg);
}

/* root/name/vN.mnm written by hand (model_save), as a store from before
 * marks has it, or the shipped models. */
static void save_version(const char *root, const char *name, int v)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", root, name);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/%s/v%d.mnm", root, name, v);
    MnError err = {0};
    ck_assert_msg(model_save(model, path, &err) == 0, "%s", err.msg);
}

static void restart(void)
{
    store_close(store);
    MnError err = {0};
    store = store_open(dir, &lim, &err);
    ck_assert_msg(store != NULL, "%s", err.msg);
}

START_TEST(test_delete_latest_then_publish)
{
    ck_assert_int_eq(publish("m"), 1);
    ck_assert_int_eq(publish("m"), 2);
    delete_version("m", 2);
    ck_assert_int_eq(publish("m"), 3);
    ck_assert_int_eq(model_dir_latest(dir, "m"), 3);
}
END_TEST

START_TEST(test_delete_all_restart_publish)
{
    for (int v = 1; v <= 3; v++)
        ck_assert_int_eq(publish("m"), v);
    for (int v = 3; v >= 1; v--)
        delete_version("m", v);
    restart();
    ck_assert_int_eq(store_count(store), 0);
    ck_assert_int_eq(publish("m"), 4);
    /* the mark is one file beside the versions, not a version */
    int added, dropped;
    MnError err = {0};
    ck_assert_int_eq(store_rescan(store, &added, &dropped, &err), 0);
    ck_assert_int_eq(store_count(store), 1);
}
END_TEST

/* A store from before marks: its latest deleted still counts. */
START_TEST(test_store_without_mark)
{
    save_version(dir, "old", 5);
    restart();
    delete_version("old", 5);
    ck_assert_int_eq(publish("old"), 6);
}
END_TEST

/* Shipped models seed an empty store, but never under a number the name
 * already had: its deleted versions keep theirs. */
START_TEST(test_seed_skips_numbers_given)
{
    char *shipped = check_util_tmpdir();
    save_version(shipped, "m", 1);
    MnError err = {0};
    ck_assert_int_eq(store_seed(dir, shipped, &err), 0);
    ck_assert_int_eq(model_dir_latest(dir, "m"), 1);
    delete_version("m", 1);
    ck_assert_int_eq(store_seed(dir, shipped, &err), 0);
    ck_assert_int_eq(model_dir_latest(dir, "m"), 0);
    ck_assert_int_eq(publish("m"), 2);
    check_util_rmtree(shipped);
    free(shipped);
}
END_TEST

/* m's version 1 published, then its mark overwritten with text. */
static void publish_then_spoil_mark(const char *text)
{
    ck_assert_int_eq(publish("m"), 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/m/" MODEL_DIR_MARK, dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_bad_mark_refused)
{
    publish_then_spoil_mark("seven\n");
    char out[4200], path[4200];
    int v = 0;
    MnError err = {0};
    ck_assert_int_eq(model_dir_publish(model, dir, "m", out, sizeof out, &v, &err), MN_EIO);
    ck_assert_msg(strstr(err.msg, MODEL_DIR_MARK) && strstr(err.msg, "not a version number"),
                  "%s", err.msg);
    ck_assert_int_eq(model_dir_latest(dir, "m"), 1);
    int added, dropped;
    ck_assert_int_eq(store_rescan(store, &added, &dropped, &err), 0);
    ck_assert_int_eq(store_remove(store, "m", 1, &err), MN_EIO);
    snprintf(path, sizeof path, "%s/m/v1.mnm", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

/* The same over HTTP: the store's fault, so a 500, and the version stays. */
START_TEST(test_bad_mark_delete_over_http)
{
    publish_then_spoil_mark("-");
    char path[4200];
    char *root = check_util_tmpdir(); /* the server's own store: dir is the fixture's */
    snprintf(path, sizeof path, "cp -a %s/m %s/", dir, root);
    ck_assert_int_eq(system(path), 0);
    Server srv;
    check_server_config(&srv, root);
    check_server_start(&srv);
    HttpReply r = check_http_request(srv.cfg.port, "DELETE", "/models/m/versions/1", NULL, NULL,
                                     NULL, 0);
    ck_assert_msg(r.status == 500 && strstr(r.body, MODEL_DIR_MARK " is not a version number"),
                  "%d %s", r.status, r.raw);
    check_http_free(&r);
    snprintf(path, sizeof path, "%s/m/v1.mnm", root);
    ck_assert_int_eq(access(path, F_OK), 0);
    r = check_http_request(srv.cfg.port, "GET", "/models/m/versions/1", NULL, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 200);
    check_http_free(&r);
    check_server_stop(&srv, root);
}
END_TEST

/* Writers publishing one name while the latest is deleted again and again
 * (server jobs, training Jobs and replicas on one volume): every number
 * given once, whatever was deleted meanwhile. */
enum { WRITERS = 3, EACH = 6 };

typedef struct {
    int versions[EACH];
} Writer;

static void *write_versions(void *arg)
{
    Writer *w = arg;
    for (int i = 0; i < EACH; i++)
        w->versions[i] = publish("shared");
    return NULL;
}

static volatile int writers_done;

static void *delete_latest(void *arg)
{
    int *deleted = arg;
    while (!__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE)) {
        int added, dropped;
        MnError err = {0};
        store_rescan(store, &added, &dropped, &err);
        const StoreEntry *e = store_acquire(store, "shared", 0, &err);
        if (!e)
            continue;
        int v = e->version;
        store_release(store, e);
        *deleted += store_remove(store, "shared", v, &err) == 0;
        usleep(1000);
    }
    return NULL;
}

START_TEST(test_concurrent_publishers_and_deletes)
{
    Writer w[WRITERS];
    pthread_t t[WRITERS], d;
    int deleted = 0;
    writers_done = 0;
    ck_assert_int_eq(pthread_create(&d, NULL, delete_latest, &deleted), 0);
    for (int i = 0; i < WRITERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, write_versions, &w[i]), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&writers_done, 1, __ATOMIC_RELEASE);
    pthread_join(d, NULL);
    bool seen[WRITERS * EACH + 1] = {false};
    for (int i = 0; i < WRITERS; i++)
        for (int k = 0; k < EACH; k++) {
            int v = w[i].versions[k];
            ck_assert_msg(v >= 1 && v <= WRITERS * EACH && !seen[v], "version %d given twice "
                          "(or out of 1..%d)", v, WRITERS * EACH);
            seen[v] = true;
        }
    ck_assert_msg(deleted > 0, "the deleter never deleted: the test checked nothing");
    ck_assert_int_eq(publish("shared"), WRITERS * EACH + 1);
}
END_TEST

static Suite *versions_suite(void)
{
    Suite *s = suite_create("versions");
    TCase *tc = tcase_create("Monotonic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_delete_latest_then_publish);
    tcase_add_test(tc, test_delete_all_restart_publish);
    tcase_add_test(tc, test_store_without_mark);
    tcase_add_test(tc, test_seed_skips_numbers_given);
    tcase_add_test(tc, test_bad_mark_refused);
    tcase_add_test(tc, test_bad_mark_delete_over_http);
    tcase_add_test(tc, test_concurrent_publishers_and_deletes);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(versions_suite)
