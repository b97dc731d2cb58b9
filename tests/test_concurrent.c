/* test_concurrent.c - the server's threads all busy at once, in-process on
 * a free port: predictions, training jobs on a small dataset (publishing
 * their versions), versions published into the store by another writer,
 * deletes, and rescans (the watcher's and explicit ones) at the same time.
 * Written for ThreadSanitizer (make tsan), which sees every access the
 * threads make; as a plain test it checks that every answer is one the
 * race explains (never a 5xx) and that the store ends as it should. Worker
 * threads only count and record: Check's assertions belong to the main one. */
#include <cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "dataset.h"
#include "server.h"

#define SMALL_TRAIN 256 /* samples of the small dataset's splits */
#define SMALL_TEST 64
#define VERSIONS 6      /* published by the other writer; the odd ones deleted */

static Server srv;
static char *tmp;
static atomic_bool stopping;

/* The first unexplained answer of any thread, and how many there were. */
static atomic_int unexplained;
static pthread_mutex_t first_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_problem[512];

static void note_problem(const char *what, const HttpReply *r)
{
    if (atomic_fetch_add(&unexplained, 1) == 0) {
        pthread_mutex_lock(&first_lock);
        snprintf(first_problem, sizeof first_problem, "%s: %d %.300s", what, r->status,
                 r->body ? r->body : "");
        pthread_mutex_unlock(&first_lock);
    }
}

/* One request; statuses other than ok1/ok2 are noted, not asserted. */
static void expect(const char *what, const char *method, const char *path, const char *type,
                   const void *body, size_t len, int ok1, int ok2)
{
    HttpReply r = check_http_request(srv.cfg.port, method, path, type, NULL, body, len);
    if (r.status != ok1 && r.status != ok2)
        note_problem(what, &r);
    check_http_free(&r);
}

/* An IDX file of the first n records of src (header rewritten for n). */
static void write_idx_head(const char *src, const char *dst, int ndims, uint32_t n)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    ck_assert_msg(in && out, "%s -> %s", src, dst);
    unsigned char head[16];
    size_t head_len = 4 + 4 * (size_t)ndims;
    ck_assert_int_eq(fread(head, 1, head_len, in), head_len);
    size_t record = 1;
    for (int d = 1; d < ndims; d++)
        record *= (size_t)head[4 + 4 * d + 2] << 8 | head[4 + 4 * d + 3];
    for (int b = 0; b < 4; b++)
        head[4 + b] = (unsigned char)(n >> (24 - 8 * b));
    fwrite(head, 1, head_len, out);
    size_t bytes = record * n;
    unsigned char *buf = malloc(bytes);
    ck_assert_int_eq(fread(buf, 1, bytes, in), bytes);
    fwrite(buf, 1, bytes, out);
    free(buf);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* DATA/small: mnist's first SMALL_TRAIN and SMALL_TEST samples, so a job
 * trains in a moment even under ThreadSanitizer. */
static void write_small_dataset(const char *data)
{
    char dir[4200], src[4200], dst[4300];
    ck_assert_int_lt(snprintf(dir, sizeof dir, "%s/small", data), (int)sizeof dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    static const struct {
        const char *file;
        int ndims;
        uint32_t n;
    } files[] = {{"train-images-idx3-ubyte", 3, SMALL_TRAIN}, {"train-labels-idx1-ubyte", 1, SMALL_TRAIN},
                 {"t10k-images-idx3-ubyte", 3, SMALL_TEST}, {"t10k-labels-idx1-ubyte", 1, SMALL_TEST}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(src, sizeof src, "%s/mnist/%s", check_util_data_dir(), files[i].file);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i].file);
        write_idx_head(src, dst, files[i].ndims, files[i].n);
    }
    snprintf(dst, sizeof dst, "%s/dataset.json", dir);
    FILE *f = fopen(dst, "w");
    fputs("{\"name\": \"small\", \"classes\": [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"],"
          " \"image_preprocess\": \"digit\","
          " \"train\": {\"images\": \"train-images-idx3-ubyte\", \"labels\": \"train-labels-idx1-ubyte\"},"
          " \"test\": {\"images\": \"t10k-images-idx3-ubyte\", \"labels\": \"t10k-labels-idx1-ubyte\"}}",
          f);
    ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
    tmp = check_util_tmpdir();
    char store[sizeof srv.cfg.models_dir], data[sizeof srv.cfg.data_dir];
    ck_assert_int_lt(snprintf(store, sizeof store, "%s/store", tmp), (int)sizeof store);
    ck_assert_int_lt(snprintf(data, sizeof data, "%s/data", tmp), (int)sizeof data);
    ck_assert_int_eq(mkdir(store, 0755), 0);
    ck_assert_int_eq(mkdir(data, 0755), 0);
    ck_assert_int_eq(check_util_copy_models(store), 0);
    write_small_dataset(data);
    check_server_config(&srv, store);
    srv.cfg.threads = 2;
    srv.cfg.train_threads = 2; /* two jobs at once, beside the requests */
    srv.cfg.watch_interval = 1;
    memcpy(srv.cfg.data_dir, data, sizeof data);
    check_server_start(&srv);
    atomic_store(&stopping, false);
    atomic_store(&unexplained, 0);
    first_problem[0] = '\0';
}

static void teardown(void)
{
    server_stop(&srv);
    check_util_rmtree(tmp);
    free(tmp);
}

/* ---- the threads ---- */

static char *pixels_body(size_t *n)
{
    char *s = malloc(16 + 2 * 784);
    size_t o = (size_t)sprintf(s, "{\"pixels\": [");
    for (int i = 0; i < 784; i++)
        o += (size_t)sprintf(s + o, i ? ",%d" : "%d", (i / 28 + i % 28) % 2);
    o += (size_t)sprintf(s + o, "]}");
    *n = o;
    return s;
}

/* Predictions on a shipped model (always there) and on "pub", whose
 * versions come and go (404 when none is served at that moment). */
static void *predictor(void *arg)
{
    (void)arg;
    size_t n;
    char *body = pixels_body(&n);
    for (int i = 0; !atomic_load(&stopping); i++) {
        if (i % 3)
            expect("predict mnist-cnn", "POST", "/predict?model=mnist-cnn", "application/json",
                   body, n, 200, 200);
        else
            expect("predict pub", "POST", "/predict?model=pub", "application/json", body, n, 200,
                   404);
    }
    free(body);
    return NULL;
}

/* Another process's way to publish: the file under a temporary name, then
 * renamed into place, for the watcher (or a rescan) to find. */
static void *publisher(void *arg)
{
    (void)arg;
    char src[4200], dir[4200], part[4300], dst[4300];
    snprintf(src, sizeof src, "%s/mnist-cnn/v1.mnm", srv.cfg.models_dir);
    snprintf(dir, sizeof dir, "%s/pub", srv.cfg.models_dir);
    mkdir(dir, 0755);
    size_t len;
    char *file = check_util_read_file(src, &len);
    for (int v = 1; file && v <= VERSIONS && !atomic_load(&stopping); v++) {
        snprintf(part, sizeof part, "%s/.part-v%d", dir, v);
        snprintf(dst, sizeof dst, "%s/v%d.mnm", dir, v);
        FILE *f = fopen(part, "wb");
        if (!f || fwrite(file, 1, len, f) != len || fclose(f) || rename(part, dst)) {
            HttpReply none = {0};
            note_problem("publishing pub", &none);
        }
        usleep(150 * 1000);
    }
    free(file);
    return NULL;
}

/* Deletes pub's odd versions once served (before that: 404). */
static void *deleter(void *arg)
{
    (void)arg;
    for (int v = 1; v <= VERSIONS && !atomic_load(&stopping); v += 2) {
        char path[64];
        snprintf(path, sizeof path, "/models/pub/versions/%d", v);
        for (;;) {
            HttpReply r = check_http_request(srv.cfg.port, "DELETE", path, NULL, NULL, NULL, 0);
            int status = r.status;
            if (status != 200 && status != 404)
                note_problem("delete", &r);
            check_http_free(&r);
            if (status != 404 || atomic_load(&stopping))
                break;
            usleep(50 * 1000);
        }
    }
    return NULL;
}

/* Rescans beside the watcher's, and the reads that walk the store and jobs. */
static void *rescanner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        int added, dropped;
        MnError err = {0};
        if (store_rescan(srv.store, &added, &dropped, &err)) {
            HttpReply none = {0, err.msg, err.msg, 0};
            note_problem("store_rescan", &none);
        }
        expect("GET /models", "GET", "/models", NULL, NULL, 0, 200, 200);
        expect("GET /models/pub", "GET", "/models/pub", NULL, NULL, 0, 200, 404);
        expect("GET /jobs", "GET", "/jobs", NULL, NULL, 0, 200, 200);
        expect("GET /metrics", "GET", "/metrics", NULL, NULL, 0, 200, 200);
        usleep(20 * 1000);
    }
    return NULL;
}

static int submit(const char *name)
{
    char spec[512];
    snprintf(spec, sizeof spec,
             "{\"name\":\"%s\",\"dataset\":\"small\",\"layers\":[{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":16,\"activation\":\"relu\"},"
             "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],"
             "\"epochs\":1,\"batch_size\":32,\"validation_split\":0.25,\"seed\":5}",
             name);
    HttpReply r = check_http_request(srv.cfg.port, "POST", "/train", "application/json", NULL,
                                     spec, strlen(spec));
    ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    int id = cJSON_GetObjectItem(j, "id")->valueint;
    cJSON_Delete(j);
    check_http_free(&r);
    return id;
}

/* The job's final status (it must end within the cap). */
static char *job_end(int id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    for (int tries = 0; tries < 3000; tries++) {
        HttpReply r = check_http_request(srv.cfg.port, "GET", path, NULL, NULL, NULL, 0);
        cJSON *j = cJSON_Parse(r.body);
        check_http_free(&r);
        const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status"));
        char *copy = status && strcmp(status, "queued") && strcmp(status, "running")
                         ? strdup(status)
                         : NULL;
        cJSON_Delete(j);
        if (copy)
            return copy;
        usleep(100 * 1000);
    }
    ck_abort_msg("job %d never ended", id);
    return NULL;
}

/* The versions of name the server lists, as a bit set (bit v). */
static unsigned listed_versions(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/models/%s", name);
    HttpReply r = check_http_request(srv.cfg.port, "GET", path, NULL, NULL, NULL, 0);
    cJSON *j = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    unsigned set = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(j, "versions"))
    {
        const cJSON *n = cJSON_IsObject(v) ? cJSON_GetObjectItem(v, "version") : v;
        if (cJSON_IsNumber(n) && n->valueint > 0 && n->valueint < 32)
            set |= 1u << n->valueint;
    }
    cJSON_Delete(j);
    check_http_free(&r);
    return set;
}

START_TEST(test_everything_at_once)
{
    pthread_t threads[6];
    void *(*mains[6])(void *) = {predictor, predictor, publisher, deleter, rescanner, rescanner};
    int first = submit("busy-a");
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, mains[i], NULL), 0);
    int second = submit("busy-b"); /* while everything runs */
    int third = submit("busy-a");  /* a second version of the first */
    char *ends[3] = {job_end(first), job_end(second), job_end(third)};
    /* the writer's versions all published, and the deletes done, before stopping */
    for (int tries = 0; tries < 600 && listed_versions("pub") != (1u << 2 | 1u << 4 | 1u << 6);
         tries++)
        usleep(100 * 1000);
    atomic_store(&stopping, true);
    for (int i = 0; i < 6; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(!strcmp(ends[i], "succeeded"), "job %d ended %s", i + 1, ends[i]);
        free(ends[i]);
    }
    ck_assert_msg(atomic_load(&unexplained) == 0, "%d unexplained answers; the first: %s",
                  atomic_load(&unexplained), first_problem);
    ck_assert_uint_eq(listed_versions("pub"), 1u << 2 | 1u << 4 | 1u << 6);
    ck_assert_uint_eq(listed_versions("busy-a"), 1u << 1 | 1u << 2);
    ck_assert_uint_eq(listed_versions("busy-b"), 1u << 1);
}
END_TEST

static Suite *concurrent_suite(void)
{
    Suite *s = suite_create("concurrent");
    TCase *tc = tcase_create("AllAtOnce");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_everything_at_once);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(concurrent_suite)
