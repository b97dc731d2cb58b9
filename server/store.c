/* store.c - loaded model versions behind a mutex; entries are freed when
 * the last holder releases them after they left the store. A rescan loads
 * the files that appeared since (another process published them) and
 * takes out of service the versions whose files went away. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "model_dir.h"
#include "model_file.h"

typedef struct Slot {
    StoreEntry entry;
    int refs;          /* holders; the store's own reference counts as one */
    struct Slot *next;
} Slot;

/* A file refused once is not read again (nor reported again) until it
 * changes. */
typedef struct Refused {
    char path[4096];
    struct timespec mtime;
    off_t size;
    struct Refused *next;
} Refused;

struct Store {
    pthread_mutex_t lock;
    Slot *slots;
    Refused *refused;  /* touched by the scanning thread only */
    char dir[1024];
    SpecLimits limits;
    int load_errors;
};

static void slot_unref(Slot *slot)
{
    if (--slot->refs == 0) {
        cJSON_Delete((cJSON *)slot->entry.classes);
        run_pool_free(slot->entry.runs);
        model_free(slot->entry.model);
        free(slot);
    }
}

static Slot *find_slot(Store *s, const char *name, int version)
{
    for (Slot *slot = s->slots; slot; slot = slot->next)
        if (slot->entry.version == version && strcmp(slot->entry.name, name) == 0)
            return slot;
    return NULL;
}

static bool is_loaded(Store *s, const char *name, int version)
{
    pthread_mutex_lock(&s->lock);
    bool found = find_slot(s, name, version) != NULL;
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* True when path was refused before and has not changed since; otherwise
 * forgets any old refusal of it. */
static bool refused_unchanged(Store *s, const char *path, const struct stat *st)
{
    for (Refused **link = &s->refused; *link; link = &(*link)->next) {
        Refused *r = *link;
        if (strcmp(r->path, path))
            continue;
        if (r->size == st->st_size && r->mtime.tv_sec == st->st_mtim.tv_sec &&
            r->mtime.tv_nsec == st->st_mtim.tv_nsec)
            return true;
        *link = r->next;
        free(r);
        return false;
    }
    return false;
}

static void remember_refused(Store *s, const char *path, const struct stat *st)
{
    Refused *r = calloc(1, sizeof *r);
    if (!r)
        return;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->mtime = st->st_mtim;
    r->size = st->st_size;
    r->next = s->refused;
    s->refused = r;
}

static int add_slot(Store *s, const char *name, int version, Model *m, const char *path,
                    MnError *err);

/* A version that will not be served: said once, counted, and freed. */
static void not_loaded(Store *s, Model *m, const MnError *err)
{
    model_free(m);
    fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"model not loaded\",\"error\":\"%s\"}\n",
            err->msg);
    s->load_errors++;
}

/* Loads the versions of name that are not loaded yet; the count added. */
static int load_name(Store *s, const char *name)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/%s", s->dir, name);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int added = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int v;
        char tail[8], path[4096];
        struct stat st;
        if (sscanf(e->d_name, "v%d.mn%7s", &v, tail) != 2 || strcmp(tail, "m") || v < 1 ||
            is_loaded(s, name, v))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) || refused_unchanged(s, path, &st))
            continue;
        MnError err = {0};
        Model *m = NULL;
        if (model_load(path, &s->limits, &m, &err)) {
            not_loaded(s, m, &err);
            remember_refused(s, path, &st);
            continue;
        }
        if (add_slot(s, name, v, m, path, &err) == 0)
            added++;
        else
            not_loaded(s, m, &err);
    }
    closedir(d);
    return added;
}

/* Takes out of service the versions whose files are gone; the count. */
static int drop_vanished(Store *s)
{
    int dropped = 0;
    pthread_mutex_lock(&s->lock);
    for (Slot **link = &s->slots; *link;) {
        Slot *slot = *link;
        char path[2200];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/v%d.mnm", s->dir, slot->entry.name,
                 slot->entry.version);
        if (stat(path, &st) != 0 && errno == ENOENT) {
            *link = slot->next;
            slot_unref(slot);
            dropped++;
        } else {
            link = &slot->next;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return dropped;
}

int store_rescan(Store *s, int *added, int *dropped, MnError *err)
{
    *added = *dropped = 0;
    DIR *d = opendir(s->dir);
    if (!d)
        return mn_fail(err, MN_ENOTFOUND, "model store %s cannot be opened: %s", s->dir,
                       strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        char name[64];
        int v;
        if (e->d_name[0] == '.' || model_ref_parse(e->d_name, name, sizeof name, &v, NULL))
            continue;
        *added += load_name(s, name);
    }
    closedir(d);
    *dropped = drop_vanished(s);
    return 0;
}

/* Removes what writers that died left in the model directories (a
 * .publish-XXXXXX or vN.mnm.tmp... file): older than this process and
 * locked by nobody. A live writer, even one in another process sharing the
 * store, holds an exclusive flock on its file, so it is never touched. */
static void remove_stale_temps(Store *s, const struct timespec *start)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char name[64], sub[2048];
        int v;
        if (e->d_name[0] == '.' || model_ref_parse(e->d_name, name, sizeof name, &v, NULL))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", s->dir, name);
        DIR *versions = opendir(sub);
        if (!versions)
            continue;
        struct dirent *f;
        while ((f = readdir(versions))) {
            char path[4096];
            struct stat st;
            if (!model_dir_is_temp(f->d_name))
                continue;
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            bool older = fstat(fd, &st) == 0 &&
                         (st.st_mtim.tv_sec < start->tv_sec ||
                          (st.st_mtim.tv_sec == start->tv_sec && st.st_mtim.tv_nsec < start->tv_nsec));
            if (older && flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path) == 0)
                fprintf(stderr, "{\"level\":\"info\",\"msg\":\"stale temporary file removed\","
                        "\"path\":\"%s\"}\n", path);
            close(fd);
        }
        closedir(versions);
    }
    closedir(d);
}

Store *store_open(const char *dir, const SpecLimits *lim, MnError *err)
{
    struct timespec start;
    clock_gettime(CLOCK_REALTIME, &start);
    Store *s = calloc(1, sizeof *s);
    if (!s) {
        mn_fail(err, MN_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->limits = *lim;
    remove_stale_temps(s, &start);
    int added, dropped;
    if (store_rescan(s, &added, &dropped, err)) {
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(Store *s)
{
    if (!s)
        return;
    for (Slot *slot = s->slots, *next; slot; slot = next) {
        next = slot->next;
        slot_unref(slot);
    }
    for (Refused *r = s->refused, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const StoreEntry *store_acquire(Store *s, const char *name, int version, MnError *err)
{
    pthread_mutex_lock(&s->lock);
    Slot *best = NULL;
    for (Slot *slot = s->slots; slot; slot = slot->next)
        if (strcmp(slot->entry.name, name) == 0 &&
            (version ? slot->entry.version == version
                     : !best || slot->entry.version > best->entry.version))
            best = slot;
    if (best)
        best->refs++;
    pthread_mutex_unlock(&s->lock);
    if (!best) {
        if (version)
            mn_fail(err, MN_ENOTFOUND, "model \"%s\" has no version %d", name, version);
        else
            mn_fail(err, MN_ENOTFOUND, "model \"%s\" not found", name);
        return NULL;
    }
    return &best->entry;
}

void store_release(Store *s, const StoreEntry *e)
{
    pthread_mutex_lock(&s->lock);
    slot_unref((Slot *)((char *)e - offsetof(Slot, entry)));
    pthread_mutex_unlock(&s->lock);
}

static cJSON *classes_json(const Model *m)
{
    cJSON *arr = cJSON_CreateArray();
    for (int c = 0; arr && c < m->n_classes; c++) {
        cJSON *name = cJSON_CreateString(m->class_names[c]);
        if (!name || !cJSON_AddItemToArray(arr, name)) {
            cJSON_Delete(name);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* Adds the model unless that version is there already; with a path, also
 * unless its file is gone: a rescan that loaded a file a DELETE then
 * removed (the DELETE unlinks under the same lock) must not serve it. */
static int add_slot(Store *s, const char *name, int version, Model *m, const char *path,
                    MnError *err)
{
    /* every version served, loaded or just trained, folded the same way */
    if (model_fold_for_serving(m, err))
        return -1;
    Slot *slot = calloc(1, sizeof *slot);
    RunPool *runs = run_pool_new(m);
    cJSON *classes = classes_json(m);
    if (!slot || !runs || !classes) {
        free(slot);
        run_pool_free(runs);
        cJSON_Delete(classes);
        return mn_fail(err, MN_ENOMEM, "out of memory");
    }
    slot->entry.runs = runs;
    slot->entry.classes = classes;
    snprintf(slot->entry.name, sizeof slot->entry.name, "%s", name);
    slot->entry.version = version;
    slot->entry.model = m;
    slot->refs = 1;
    pthread_mutex_lock(&s->lock);
    bool there = find_slot(s, name, version) != NULL;
    bool gone = path && access(path, F_OK) != 0;
    if (!there && !gone) {
        slot->next = s->slots;
        s->slots = slot;
    }
    pthread_mutex_unlock(&s->lock);
    if (there || gone)
        slot_unref(slot); /* the one there stays; a deleted file is not served */
    return 0;
}

int store_add(Store *s, const char *name, int version, Model *m, MnError *err)
{
    return add_slot(s, name, version, m, NULL, err);
}

const char *store_dir(const Store *s) { return s->dir; }

int store_remove(Store *s, const char *name, int version, MnError *err)
{
    pthread_mutex_lock(&s->lock);
    Slot **link = &s->slots;
    while (*link && !((*link)->entry.version == version && strcmp((*link)->entry.name, name) == 0))
        link = &(*link)->next;
    Slot *slot = *link;
    int rc = 0;
    if (!slot) {
        rc = mn_fail(err, MN_ENOTFOUND, "model \"%s\" has no version %d", name, version);
    } else {
        char path[2200];
        snprintf(path, sizeof path, "%s/%s/v%d.mnm", s->dir, name, version);
        /* the number stays given once its file is gone: the mark is raised
         * first (a version from before marks, or one copied in by hand) */
        rc = model_dir_mark_raise(s->dir, name, version, err);
        if (rc == 0 && unlink(path) != 0 && errno != ENOENT)
            rc = mn_fail(err, MN_EIO, "%s: %s", path, strerror(errno));
        if (rc == 0) {
            *link = slot->next;
            slot_unref(slot);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_load_errors(const Store *s) { return s->load_errors; }

static int copy_file(const char *from, const char *to, MnError *err)
{
    /* a unique name: replicas seeding one shared store may share a pid */
    char tmp[4500];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", to);
    int fd = mkstemp(tmp);
    FILE *in = fopen(from, "rb"), *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !out)
        close(fd);
    if (out) {
        flock(fd, LOCK_EX); /* a live writer's until renamed: see remove_stale_temps */
        fchmod(fd, 0644);   /* as published versions, not mkstemp's 0600 */
    }
    char buf[65536];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in) && fflush(out) == 0 && fsync(fileno(out)) == 0 && rename(tmp, to) == 0;
    int why = errno;
    if (!ok && fd >= 0)
        unlink(tmp);
    if (in)
        fclose(in);
    if (out)
        fclose(out); /* flushed and fsynced: nothing left to fail */
    if (ok)
        return 0;
    return mn_fail(err, MN_EIO, "cannot copy %s to %s: %s", from, to, strerror(why));
}

int store_seed(const char *dir, const char *from, MnError *err)
{
    DIR *d = opendir(from);
    if (!d)
        return mn_fail(err, MN_ENOTFOUND, "no shipped models in %s", from);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        char name[64], src_dir[2200], dst_dir[2200];
        int v;
        if (e->d_name[0] == '.' || model_ref_parse(e->d_name, name, sizeof name, &v, NULL))
            continue;
        snprintf(src_dir, sizeof src_dir, "%s/%s", from, name);
        snprintf(dst_dir, sizeof dst_dir, "%s/%s", dir, name);
        DIR *versions = opendir(src_dir);
        if (!versions)
            continue;
        if (mkdir(dst_dir, 0755) && errno != EEXIST)
            rc = mn_fail(err, MN_EIO, "cannot create %s: %s", dst_dir, strerror(errno));
        /* A shipped version whose number the name already had (its versions
         * were all deleted, or a replica seeding the same store beat us) is
         * not copied: the number would name other weights, or be written twice. */
        int lock = rc ? rc : model_dir_lock(dir, name, err), mark = 0;
        rc = lock < 0 ? lock : model_dir_mark(dir, name, &mark, err);
        struct dirent *f;
        while (rc == 0 && (f = readdir(versions))) {
            char tail[8], src[4400], dst[4400];
            if (sscanf(f->d_name, "v%d.mn%7s", &v, tail) != 2 || strcmp(tail, "m") || v < 1 ||
                v <= mark)
                continue;
            snprintf(src, sizeof src, "%s/%s", src_dir, f->d_name);
            snprintf(dst, sizeof dst, "%s/%s", dst_dir, f->d_name);
            rc = model_dir_mark_raise_locked(dir, name, v, err);
            rc = rc ? rc : copy_file(src, dst, err);
        }
        model_dir_unlock(lock);
        closedir(versions);
    }
    closedir(d);
    return rc;
}

static int compare_ints(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void store_each(Store *s, void (*fn)(const char *name, const int *versions, int n, void *ctx),
                void *ctx)
{
    pthread_mutex_lock(&s->lock);
    int total = 0;
    for (Slot *slot = s->slots; slot; slot = slot->next)
        total++;
    const char **names = malloc((size_t)(total ? total : 1) * sizeof *names);
    int *versions = malloc((size_t)(total ? total : 1) * sizeof *versions);
    int n_names = 0;
    for (Slot *slot = s->slots; names && slot; slot = slot->next) {
        bool seen = false;
        for (int i = 0; i < n_names && !seen; i++)
            seen = strcmp(names[i], slot->entry.name) == 0;
        if (!seen)
            names[n_names++] = slot->entry.name;
    }
    if (names && versions) {
        qsort(names, (size_t)n_names, sizeof *names, compare_names);
        for (int i = 0; i < n_names; i++) {
            int n = 0;
            for (Slot *slot = s->slots; slot; slot = slot->next)
                if (strcmp(slot->entry.name, names[i]) == 0)
                    versions[n++] = slot->entry.version;
            qsort(versions, (size_t)n, sizeof *versions, compare_ints);
            fn(names[i], versions, n, ctx);
        }
    }
    pthread_mutex_unlock(&s->lock);
    free(names);
    free(versions);
}

int store_count(Store *s)
{
    pthread_mutex_lock(&s->lock);
    int n = 0;
    for (Slot *slot = s->slots; slot; slot = slot->next)
        n++;
    pthread_mutex_unlock(&s->lock);
    return n;
}
