/* test_recovery.c - crash recovery of the real `mnistd serve`, run as a
 * child process on a copy of the shipped models: killed (SIGKILL) while a
 * job trains; killed while a version is being written (the moment caught
 * by inotify on the model directory, the server frozen there by SIGSTOP
 * while a second replica opens the same store); and a store that runs out
 * of space (a small tmpfs in a private mount namespace). After each, the
 * restarted server must serve every earlier version byte for byte, show no
 * partial file, list every job from the journal (the killed one as
 * interrupted), and a crashed writer's temporary file must be gone.
 * No timings are asserted: every wait polls with a generous cap. */
#define _GNU_SOURCE
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_http.h"
#include "check_util.h"
#include "model_dir.h"
#include "model_file.h"

/* Small enough to train in a few seconds even under the sanitizers. */
#define SMALL_SPEC(name, units, epochs, batch)                                                 \
    "{\"name\":\"" name "\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"       \
    "{\"type\":\"dense\",\"units\":" #units ",\"activation\":\"relu\"},"                     \
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"epochs\":" #epochs     \
    ",\"batch_size\":" #batch ",\"seed\":7}"

static char *tmp;   /* the test's directory: store, logs */
static char *store; /* tmp/store: a copy of the shipped models */
static int starts;  /* servers started, for log names */

static void setup(void)
{
    tmp = check_util_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    store = malloc(strlen(tmp) + 16);
    sprintf(store, "%s/store", tmp);
    ck_assert_int_eq(mkdir(store, 0755), 0);
}

static void teardown(void)
{
    umount2(store, MNT_DETACH); /* the disk-full test's tmpfs; harmless otherwise */
    check_util_rmtree(tmp);
    free(store);
    free(tmp);
}

static void copy_shipped_models(void)
{
    ck_assert_int_eq(check_util_copy_models(store), 0);
}

typedef struct {
    pid_t pid;
    int port;
    char log[4200];
} Serve;

/* Starts `mnistd serve --port 0` on the store and reads the port from its
 * "listening" line. journal: NULL for the store's own. The child dies with
 * the test process (PR_SET_PDEATHSIG), even when an assertion ends it. */
static Serve serve(const char *journal)
{
    Serve s = {0};
    snprintf(s.log, sizeof s.log, "%s/serve-%d.log", tmp, ++starts);
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/no-shipped-models", tmp);
    s.pid = fork();
    ck_assert_int_ge(s.pid, 0);
    if (s.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(s.log, "w", stderr))
            _exit(126);
        const char *argv[16] = {"mnistd", "serve", "--port", "0", "--models", store, "--data",
                                check_util_data_dir(), "--shipped-models", empty};
        int n = 10;
        if (journal) {
            argv[n++] = "--journal";
            argv[n++] = journal;
        }
        argv[n] = NULL;
        execv(check_util_bin(), (char *const *)argv);
        _exit(127);
    }
    char *text = NULL, *line = NULL;
    for (int i = 0; i < 1200 && !line; i++) { /* 120 s: slow under ASan on a busy machine */
        int status;
        ck_assert_msg(waitpid(s.pid, &status, WNOHANG) == 0, "the server exited: %s",
                      text ? text : "");
        usleep(100 * 1000);
        free(text);
        text = check_util_read_file(s.log, NULL);
        line = text ? strstr(text, "\"msg\":\"listening\"") : NULL;
    }
    ck_assert_msg(line, "the server did not start: %s", text ? text : "");
    char *url = strstr(line, "\"url\":\"http://");
    ck_assert_ptr_nonnull(url);
    char *colon = strchr(url + 14, ':');
    ck_assert_ptr_nonnull(colon);
    s.port = atoi(colon + 1);
    ck_assert_int_gt(s.port, 0);
    free(text);
    return s;
}

/* SIGTERM: the clean way out, status 0. */
static void stop(Serve *s)
{
    kill(s->pid, SIGTERM);
    int status;
    ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

static void crash(Serve *s)
{
    ck_assert_int_eq(kill(s->pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* One request over a fresh connection (check_http.h), with a JSON body or none. */
static HttpReply http(int port, const char *method, const char *path, const char *body)
{
    return check_http_request(port, method, path, body ? "application/json" : NULL, NULL, body,
                              body ? strlen(body) : 0);
}

/* GET path as JSON, asserting 200. */
static cJSON *get_json(int port, const char *path)
{
    HttpReply r = http(port, "GET", path, NULL);
    ck_assert_msg(r.status == 200, "GET %s: %d %s", path, r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_msg(j != NULL, "GET %s: not JSON: %s", path, r.body);
    check_http_free(&r);
    return j;
}

static int submit(int port, const char *spec)
{
    HttpReply r = http(port, "POST", "/train", spec);
    ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    int id = cJSON_GetObjectItem(j, "id")->valueint;
    cJSON_Delete(j);
    check_http_free(&r);
    return id;
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

static bool is_final(const char *status)
{
    return !strcmp(status, "succeeded") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled") || !strcmp(status, "interrupted");
}

/* Polls the job until it has finished (10 minutes at most); the job. */
static cJSON *wait_final(int port, int id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    for (int i = 0; i < 6000; i++) {
        cJSON *j = get_json(port, path);
        if (is_final(str(j, "status")))
            return j;
        cJSON_Delete(j);
        usleep(100 * 1000);
    }
    ck_abort_msg("job %d never finished", id);
    return NULL;
}

static cJSON *wait_succeeded(int port, int id)
{
    cJSON *j = wait_final(port, id);
    ck_assert_msg(!strcmp(str(j, "status"), "succeeded"), "job %d: %s %s", id, str(j, "status"),
                  str(j, "error"));
    return j;
}

/* Polls until the job is running and has trained at least one batch. */
static void wait_training(int port, int id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    for (int i = 0; i < 6000; i++) {
        cJSON *j = get_json(port, path);
        bool running = !strcmp(str(j, "status"), "running") &&
                       cJSON_GetObjectItem(j, "batch")->valueint > 0;
        ck_assert_msg(!is_final(str(j, "status")), "job %d ended: %s", id, str(j, "status"));
        cJSON_Delete(j);
        if (running)
            return;
        usleep(50 * 1000);
    }
    ck_abort_msg("job %d never started training", id);
}

/* ---- the store on disk ---- */

#define MAX_FILES 64

typedef struct {
    char name[64];
    int version;
    char *bytes;
    size_t len;
} Version;

typedef struct {
    Version v[MAX_FILES];
    int n;
} Snapshot;

static void snapshot_free(Snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i].bytes);
    s->n = 0;
}

/* Every NAME/vN.mnm in the store with its bytes; fails on any other file in
 * a model directory (a temporary or partial file) but allow (or NULL). */
static void snapshot(Snapshot *s, const char *allow)
{
    snapshot_free(s);
    DIR *d = opendir(store);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char dir[4200];
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof dir, "%s/%s", store, e->d_name);
        DIR *versions = opendir(dir);
        if (!versions)
            continue;
        struct dirent *f;
        while ((f = readdir(versions))) {
            int v, end = 0;
            if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..") ||
                !strcmp(f->d_name, MODEL_DIR_MARK) || !strcmp(f->d_name, MODEL_DIR_LOCK) ||
                (allow && !strcmp(f->d_name, allow)))
                continue;
            sscanf(f->d_name, "v%d.mnm%n", &v, &end);
            ck_assert_msg(end > 0 && f->d_name[end] == '\0', "%s/%s: not a version", dir,
                          f->d_name);
            ck_assert_int_lt(s->n, MAX_FILES);
            Version *x = &s->v[s->n++];
            snprintf(x->name, sizeof x->name, "%.63s", e->d_name);
            x->version = v;
            char path[4500];
            snprintf(path, sizeof path, "%s/%s", dir, f->d_name);
            x->bytes = check_util_read_file(path, &x->len);
            ck_assert_ptr_nonnull(x->bytes);
        }
        closedir(versions);
    }
    closedir(d);
}

static const Version *find_version(const Snapshot *s, const char *name, int version)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i].version == version && !strcmp(s->v[i].name, name))
            return &s->v[i];
    return NULL;
}

/* {"pixels": [784 zeros]}: a blank image, for /predict. */
static const char *zero_pixels(void)
{
    static char body[8192];
    if (!body[0]) {
        size_t off = (size_t)sprintf(body, "{\"pixels\":[0");
        for (int i = 1; i < 784; i++)
            off += (size_t)sprintf(body + off, ",0");
        sprintf(body + off, "]}");
    }
    return body;
}

/* What a restarted server must show: every version of before still on
 * disk byte for byte, and loadable; nothing but whole versions in the model
 * directories (allow: a live writer's file, or NULL); GET /models listing
 * exactly the versions on disk, and each one answering /predict. */
static void check_store(int port, const Snapshot *before, const char *allow)
{
    Snapshot now = {0};
    snapshot(&now, allow); /* fails on any leftover file */
    SpecLimits lim;
    spec_limits_default(&lim);
    for (int i = 0; i < before->n; i++) {
        const Version *b = &before->v[i];
        const Version *x = find_version(&now, b->name, b->version);
        ck_assert_msg(x && x->len == b->len && !memcmp(x->bytes, b->bytes, b->len),
                      "%s v%d changed or vanished", b->name, b->version);
    }
    for (int i = 0; i < now.n; i++) {
        Model *m = NULL;
        MnError err = {0};
        ck_assert_msg(model_load_buffer(now.v[i].bytes, now.v[i].len, now.v[i].name, &lim, &m,
                                        &err) == 0,
                      "%s v%d: %s", now.v[i].name, now.v[i].version, err.msg);
        model_free(m);
        char path[256];
        snprintf(path, sizeof path, "/predict?model=%s&version=%d", now.v[i].name,
                 now.v[i].version);
        HttpReply r = http(port, "POST", path, zero_pixels());
        ck_assert_msg(r.status == 200, "%s: %d %s", path, r.status, r.body);
        check_http_free(&r);
    }
    /* the listing: the versions on disk, no more, no less */
    cJSON *models = get_json(port, "/models");
    int listed = 0;
    cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(models, "models"))
    {
        cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(m, "versions"))
        {
            ck_assert_msg(find_version(&now, str(m, "name"), v->valueint), "%s v%d listed",
                          str(m, "name"), v->valueint);
            listed++;
        }
    }
    ck_assert_int_eq(listed, now.n);
    cJSON_Delete(models);
    snapshot_free(&now);
}

/* GET /jobs: ids 1..n in order with these states ("a/b": either). */
static cJSON *check_jobs(int port, int n, const char *const *states)
{
    cJSON *j = get_json(port, "/jobs");
    cJSON *jobs = cJSON_GetObjectItem(j, "jobs");
    ck_assert_int_eq(cJSON_GetArraySize(jobs), n);
    for (int i = 0; i < n; i++) {
        cJSON *job = cJSON_GetArrayItem(jobs, i);
        ck_assert_int_eq(cJSON_GetObjectItem(job, "id")->valueint, i + 1);
        const char *at = strstr(states[i], str(job, "status"));
        size_t len = strlen(str(job, "status"));
        ck_assert_msg(len && at && (at[len] == '\0' || at[len] == '/'), "job %d: %s, want %s (%s)", i + 1,
                      str(job, "status"), states[i], str(job, "error"));
    }
    return j;
}

/* ---- 1. killed while training ---- */

START_TEST(test_sigkill_while_training)
{
    copy_shipped_models();
    Serve s = serve(NULL);
    int first = submit(s.port, SMALL_SPEC("rec", 16, 1, 128));
    cJSON_Delete(wait_succeeded(s.port, first));
    Snapshot before = {0};
    snapshot(&before, NULL);
    ck_assert_ptr_nonnull(find_version(&before, "rec", 1));
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/rec/v1.mnm", store);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644); /* readable by every reader of the store */
    ck_assert_ptr_nonnull(find_version(&before, "mnist-cnn", 1));

    int id = submit(s.port, SMALL_SPEC("rec", 16, 50, 16));
    wait_training(s.port, id);
    crash(&s);

    s = serve(NULL);
    check_store(s.port, &before, NULL);
    const char *const states[] = {"succeeded", "interrupted"};
    cJSON *jobs = check_jobs(s.port, 2, states);
    cJSON *killed = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 1);
    ck_assert_ptr_nonnull(strstr(str(killed, "error"), "stopped before the job finished"));
    cJSON_Delete(jobs);
    /* the journal takes new records after the replay, and ids go on */
    int next = submit(s.port, SMALL_SPEC("rec", 16, 1, 128));
    ck_assert_int_eq(next, 3);
    cJSON *done = wait_succeeded(s.port, next);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(done, "result"), "version")->valueint,
                     2);
    cJSON_Delete(done);
    stop(&s);
    snapshot_free(&before);
}
END_TEST

/* ---- 2. killed while a version is being written ---- */

/* Waits for the first write into a .publish-* file in dir (inotify, set up
 * before the job could publish) and freezes the server that instant; fails
 * the test if the job fails first. */
static bool freeze_at_publish(int fd, Serve *s, int id, char *file, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%d", id);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int i = 0; i < 6000; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1) {
            ssize_t len = read(fd, buf, sizeof buf);
            for (char *at = buf; len > 0 && at < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)at;
                if (ev->len && !strncmp(ev->name, MODEL_DIR_TEMP_PREFIX,
                                        strlen(MODEL_DIR_TEMP_PREFIX))) {
                    kill(s->pid, SIGSTOP);
                    snprintf(file, n, "%s", ev->name);
                    return true;
                }
                at += sizeof *ev + ev->len;
            }
            continue;
        }
        if (i % 10 == 0) {
            cJSON *j = get_json(s->port, path);
            ck_assert_msg(strcmp(str(j, "status"), "failed"), "job %d failed: %s", id,
                          str(j, "error"));
            cJSON_Delete(j);
        }
    }
    ck_abort_msg("job %d never published", id);
    return false;
}

START_TEST(test_sigkill_while_publishing)
{
    copy_shipped_models();
    Serve s = serve(NULL);
    /* a larger model, so that writing it takes a while */
    const char *spec = SMALL_SPEC("pub", 128, 1, 128);
    cJSON_Delete(wait_succeeded(s.port, submit(s.port, spec)));
    Snapshot before = {0};
    snapshot(&before, NULL);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/pub", store);
    int fd = inotify_init1(IN_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(inotify_add_watch(fd, dir, IN_MODIFY), 0);

    /* Caught at its first write, the writer is usually still writing; if
     * the stop came after the whole publish (the temporary name already
     * gone), the version is a whole one like the others: try again. */
    char file[256], temp[4500];
    int jobs = 1;
    bool caught = false;
    for (int attempt = 0; attempt < 8 && !caught; attempt++) {
        int id = submit(s.port, spec);
        jobs++;
        ck_assert(freeze_at_publish(fd, &s, id, file, sizeof file));
        snprintf(temp, sizeof temp, "%s/%s", dir, file);
        struct stat st;
        int probe = open(temp, O_RDONLY);
        caught = probe >= 0 && fstat(probe, &st) == 0;
        if (caught) /* a live writer's file is locked, so no store takes it for a leftover */
            ck_assert_msg(flock(probe, LOCK_EX | LOCK_NB) != 0, "%s: not locked by its writer",
                          temp);
        if (probe >= 0)
            close(probe);
        if (caught) {
            fprintf(stderr, "test_recovery: server stopped on attempt %d with %s at %lld bytes\n",
                    attempt + 1, file, (long long)st.st_size);
            break;
        }
        kill(s.pid, SIGCONT);
        cJSON_Delete(wait_succeeded(s.port, id));
        snapshot(&before, NULL);
    }
    ck_assert_msg(caught, "the server was never stopped while publishing");
    close(fd);

    /* While it is frozen mid-publish, a second replica opens the same store:
     * the file is not a version there, and being locked by a live writer it
     * is left alone. */
    char journal[4200];
    snprintf(journal, sizeof journal, "%s/replica.journal", tmp);
    Serve replica = serve(journal);
    cJSON *models = get_json(replica.port, "/models");
    char *listing = cJSON_PrintUnformatted(models);
    ck_assert_ptr_null(strstr(listing, MODEL_DIR_TEMP_PREFIX));
    free(listing);
    cJSON_Delete(models);
    check_store(replica.port, &before, file);
    stop(&replica);
    ck_assert_int_eq(access(temp, F_OK), 0);

    crash(&s);
    ck_assert_int_eq(access(temp, F_OK), 0); /* what a crashed writer leaves */

    s = serve(NULL);
    ck_assert_int_ne(access(temp, F_OK), 0);
    char *log = check_util_read_file(s.log, NULL);
    ck_assert_ptr_nonnull(strstr(log, "stale temporary file removed"));
    free(log);
    check_store(s.port, &before, NULL);
    const char *states[10];
    for (int i = 0; i < jobs; i++)
        states[i] = i < jobs - 1 ? "succeeded" : "interrupted";
    cJSON_Delete(check_jobs(s.port, jobs, states));
    stop(&s);
    snapshot_free(&before);
}
END_TEST

/* ---- 3. out of space ---- */

/* A private mount namespace with a small tmpfs over the store; false (with
 * why) where this process may not mount. */
static bool mount_small_store(size_t bytes, char *why, size_t n)
{
    char opts[64];
    snprintf(opts, sizeof opts, "size=%zu,mode=0755", bytes);
    if (unshare(CLONE_NEWNS) != 0) {
        snprintf(why, n, "unshare(CLONE_NEWNS): %s", strerror(errno));
        return false;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        snprintf(why, n, "mount --make-rprivate /: %s", strerror(errno));
        return false;
    }
    if (mount("tmpfs", store, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
        snprintf(why, n, "mount -t tmpfs -o %s: %s", opts, strerror(errno));
        return false;
    }
    return true;
}

/* Fills the filesystem, then gives back all but free_bytes. */
static void fill_store(const char *filler, size_t free_bytes)
{
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    static char block[65536];
    ssize_t w;
    off_t size = 0;
    while ((w = write(fd, block, sizeof block)) > 0)
        size += w;
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert_int_eq(ftruncate(fd, size > (off_t)free_bytes ? size - (off_t)free_bytes : 0), 0);
    close(fd);
}

START_TEST(test_disk_full)
{
    char why[512];
    if (!mount_small_store(2 << 20, why, sizeof why)) {
        fprintf(stderr, "test_recovery: disk-full test NOT RUN: %s\n", why);
        return;
    }
    Serve s = serve(NULL);
    const char *spec = SMALL_SPEC("full", 16, 1, 128);
    cJSON_Delete(wait_succeeded(s.port, submit(s.port, spec)));
    Snapshot before = {0};
    snapshot(&before, NULL);
    const Version *v1 = find_version(&before, "full", 1);
    ck_assert_ptr_nonnull(v1);

    /* Room for the journal's records, not for another version. */
    char filler[4200];
    snprintf(filler, sizeof filler, "%s/.filler", store);
    fill_store(filler, v1->len / 2);
    struct statvfs vfs;
    ck_assert_int_eq(statvfs(store, &vfs), 0);
    ck_assert_uint_lt(vfs.f_bavail * vfs.f_bsize, v1->len);

    int id = submit(s.port, spec);
    cJSON *job = wait_final(s.port, id);
    ck_assert_str_eq(str(job, "status"), "failed");
    const char *error = str(job, "error");
    ck_assert_msg(strstr(error, "No space left on device") && strstr(error, "full/v2.mnm"), "%s",
                  error);
    ck_assert(!cJSON_GetObjectItem(job, "result"));
    cJSON_Delete(job);
    check_store(s.port, &before, NULL);

    /* Not a byte left: a job the journal cannot record is refused (it would
     * vanish at the next start); the ones it can are accepted and fail. A
     * record that does not fit leaves no torn line behind. */
    char filler2[4200];
    snprintf(filler2, sizeof filler2, "%s/.filler2", store);
    fill_store(filler2, 0);
    const char *states[16] = {"succeeded", "failed"};
    int n_jobs = 2;
    bool refused = false;
    while (!refused && n_jobs < 12) {
        HttpReply r = http(s.port, "POST", "/train", spec);
        if (r.status == 202) {
            cJSON *j = cJSON_Parse(r.body);
            int accepted = cJSON_GetObjectItem(j, "id")->valueint;
            ck_assert_int_eq(accepted, ++n_jobs);
            cJSON_Delete(j);
            job = wait_final(s.port, accepted);
            ck_assert_msg(!strcmp(str(job, "status"), "failed") &&
                              strstr(str(job, "error"), "No space left on device"),
                          "%s %s", str(job, "status"), str(job, "error"));
            cJSON_Delete(job);
            states[n_jobs - 1] = "failed/interrupted"; /* its finish may not fit */
        } else {
            /* 503 and Retry-After, as a full queue: try again when there is room */
            ck_assert_msg(r.status == 503 && strstr(r.body, "\"journal_unwritable\"") &&
                              strstr(r.body, "cannot be recorded") &&
                              strstr(r.body, "No space left on device"),
                          "%d %s", r.status, r.body);
            refused = true;
        }
        check_http_free(&r);
    }
    ck_assert(refused);
    fprintf(stderr, "test_recovery: on the full disk %d job(s) accepted and failed, then one refused\n",
            n_jobs - 2);
    check_store(s.port, &before, NULL);

    /* space again: the next job publishes, no restart needed */
    ck_assert_int_eq(unlink(filler), 0);
    ck_assert_int_eq(unlink(filler2), 0);
    int last = submit(s.port, spec);
    ck_assert_int_eq(last, ++n_jobs);
    states[n_jobs - 1] = "succeeded";
    job = wait_succeeded(s.port, last);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "result"), "version")->valueint, 2);
    cJSON_Delete(job);
    stop(&s);

    /* every accepted job, the failure and its reason came back from the journal */
    s = serve(NULL);
    cJSON *jobs = check_jobs(s.port, n_jobs, states);
    ck_assert_ptr_nonnull(strstr(str(cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 1), "error"),
                                 "No space left on device"));
    cJSON_Delete(jobs);
    snapshot(&before, NULL);
    ck_assert_ptr_nonnull(find_version(&before, "full", 2));
    check_store(s.port, &before, NULL);
    stop(&s);
    snapshot_free(&before);
}
END_TEST

static Suite *recovery_suite(void)
{
    Suite *s = suite_create("recovery");
    TCase *tc = tcase_create("Crash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_sigkill_while_training);
    tcase_add_test(tc, test_sigkill_while_publishing);
    tcase_add_test(tc, test_disk_full);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(recovery_suite)
