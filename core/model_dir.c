/* model_dir.c - version numbering in the model directory, and publishing a
 * new version safely while other processes publish into the same store. */
#include "model_dir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_file.h"

static int check_name(const char *name, MnError *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63 || name[0] == '.')
        return mn_fail(err, MN_EINVAL, "model name \"%.64s\" must be 1 to 63 characters, not "
                       "starting with '.'", name);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
            return mn_fail(err, MN_EINVAL,
                           "model name \"%.64s\": only letters, digits, '-', '_' and '.'", name);
    return 0;
}

int model_ref_parse(const char *ref, char *name, size_t name_len, int *version, MnError *err)
{
    const char *colon = strchr(ref, ':');
    size_t n = colon ? (size_t)(colon - ref) : strlen(ref);
    if (n >= name_len)
        return mn_fail(err, MN_EINVAL, "model name too long");
    memcpy(name, ref, n);
    name[n] = '\0';
    *version = 0;
    if (colon) {
        const char *v = colon + 1;
        if (*v == 'v')
            v++;
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < 1 || x > MODEL_DIR_VERSION_MAX)
            return mn_fail(err, MN_EINVAL, "model version \"%.20s\" must be a positive integer",
                           colon + 1);
        *version = (int)x;
    }
    return check_name(name, err);
}

int model_dir_latest(const char *models_dir, const char *name)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int v;
        char tail[8];
        /* exactly vN.mnm: temporary files (vN.mnm.tmp.PID) never count */
        if (sscanf(e->d_name, "v%d.mn%7s", &v, tail) == 2 && strcmp(tail, "m") == 0 && v > best)
            best = v;
    }
    closedir(d);
    return best;
}

int model_dir_path(const char *models_dir, const char *name, int version, char *path, size_t n,
                   int *resolved, MnError *err)
{
    int rc = check_name(name, err);
    if (rc)
        return rc;
    if (version == 0 && (version = model_dir_latest(models_dir, name)) == 0)
        return mn_fail(err, MN_ENOTFOUND, "model \"%s\" not found in %s", name, models_dir);
    snprintf(path, n, "%s/%s/v%d.mnm", models_dir, name, version);
    struct stat st;
    if (stat(path, &st) != 0)
        return mn_fail(err, MN_ENOTFOUND, "model \"%s\" has no version %d in %s", name, version,
                       models_dir);
    if (resolved)
        *resolved = version;
    return 0;
}

/* A writer's private file in dir, .publish-XXXXXX (the leading dot keeps
 * scanners off it), locked by this writer until it is gone, so a store that
 * opens meanwhile tells it from a crashed writer's leftover. NULL with
 * errno set when it cannot be made. */
static FILE *open_temp(const char *dir, char *tmp, size_t n)
{
    snprintf(tmp, n, "%s/" MODEL_DIR_TEMP_PREFIX "XXXXXX", dir);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int why = errno;
        if (fd >= 0) {
            unlink(tmp);
            close(fd);
        }
        errno = why;
        return NULL;
    }
    flock(fd, LOCK_EX);
    fchmod(fd, 0644); /* mkstemp's 0600 would keep other readers of the store out */
    return f;
}

int model_dir_lock(const char *models_dir, const char *name, MnError *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/" MODEL_DIR_LOCK, models_dir, name);
    /* read-write: flock over NFS is a POSIX lock, exclusive only on a
     * writable descriptor; read-only when another user made the file (a
     * local flock needs no more) */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EACCES)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mn_fail(err, MN_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc;
    while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc) {
        rc = mn_fail(err, MN_EIO, "%s: cannot lock: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    return fd;
}

void model_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing releases the flock */
}

/* The mark as written (0 when there is none yet). */
static int read_mark(const char *models_dir, const char *name, int *mark, MnError *err)
{
    char path[4200], buf[32];
    snprintf(path, sizeof path, "%s/%s/" MODEL_DIR_MARK, models_dir, name);
    *mark = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : mn_fail(err, MN_EIO, "%s: %s", path, strerror(errno));
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (end == buf || (*end && strcmp(end, "\n")) || errno || v < 0 || v > MODEL_DIR_VERSION_MAX)
        /* the store's fault, not a request's: EIO (a 500), not ECORRUPT (an upload's 400) */
        return mn_fail(err, MN_EIO, "%s is not a version number (\"%.20s\"): no number is "
                       "given out until it is mended", path, buf);
    *mark = (int)v;
    return 0;
}

int model_dir_mark(const char *models_dir, const char *name, int *mark, MnError *err)
{
    int rc = read_mark(models_dir, name, mark, err);
    int latest = model_dir_latest(models_dir, name);
    if (latest > *mark)
        *mark = latest;
    return rc;
}

int model_dir_mark_raise_locked(const char *models_dir, const char *name, int version,
                                MnError *err)
{
    int mark;
    int rc = read_mark(models_dir, name, &mark, err);
    if (rc || mark >= version)
        return rc;
    char dir[4200], tmp[4300], path[4300];
    snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
    snprintf(path, sizeof path, "%s/" MODEL_DIR_MARK, dir);
    FILE *f = open_temp(dir, tmp, sizeof tmp);
    if (!f)
        return mn_fail(err, MN_EIO, "%s: cannot create its temporary file: %s", path,
                       strerror(errno));
    /* the whole number or the old one: a rename of what is fsynced */
    bool ok = fprintf(f, "%d\n", version) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0 &&
              rename(tmp, path) == 0;
    int why = errno;
    if (!ok)
        unlink(tmp);
    fclose(f);
    if (!ok)
        return mn_fail(err, MN_EIO, "%s: cannot write: %s", path, strerror(why));
    model_file_fsync_dir(path);
    return 0;
}

int model_dir_mark_raise(const char *models_dir, const char *name, int version, MnError *err)
{
    int lock = model_dir_lock(models_dir, name, err);
    if (lock < 0)
        return lock;
    int rc = model_dir_mark_raise_locked(models_dir, name, version, err);
    model_dir_unlock(lock);
    return rc;
}

int model_dir_next(const char *models_dir, const char *name, char *path, size_t n, int *version,
                   MnError *err)
{
    int rc = check_name(name, err);
    if (rc)
        return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
    if ((mkdir(models_dir, 0755) && errno != EEXIST) || (mkdir(dir, 0755) && errno != EEXIST))
        return mn_fail(err, MN_EIO, "cannot create %s: %s", dir, strerror(errno));
    int mark;
    if ((rc = model_dir_mark(models_dir, name, &mark, err)))
        return rc;
    *version = mark + 1;
    snprintf(path, n, "%s/v%d.mnm", dir, *version);
    return 0;
}

int model_dir_publish(const Model *m, const char *models_dir, const char *name, char *path,
                      size_t n, int *version, MnError *err)
{
    int rc = model_dir_next(models_dir, name, path, n, version, err);
    if (rc)
        return rc;
    /* The file is written and fsynced before the name's lock is taken, so
     * the lock is held for a few renames, not a whole write. */
    char dir[4200], tmp[4300];
    snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
    FILE *f = open_temp(dir, tmp, sizeof tmp);
    if (!f)
        return mn_fail(err, MN_EIO, "%s: cannot create its temporary file: %s", path,
                       strerror(errno));
    if ((rc = model_write(m, f, path, err))) {
        unlink(tmp);
        fclose(f);
        return rc;
    }
    /* Under the lock: the number above the mark, recorded in the mark
     * before it is used (a crash in between skips a number, never repeats
     * one), then a hard link to vN.mnm, which fails with EEXIST when a
     * writer that takes no lock (model_save) took N: try N+1. */
    int lock = model_dir_lock(models_dir, name, err);
    rc = lock < 0 ? lock : model_dir_mark(models_dir, name, version, err);
    for (++*version; rc == 0; ++*version) {
        if (*version > MODEL_DIR_VERSION_MAX) {
            rc = mn_fail(err, MN_ELIMIT, "model \"%s\" has used every version number up to %d",
                         name, MODEL_DIR_VERSION_MAX);
            break;
        }
        if ((rc = model_dir_mark_raise_locked(models_dir, name, *version, err)))
            break;
        snprintf(path, n, "%s/v%d.mnm", dir, *version);
        if (link(tmp, path) == 0)
            break;
        if (errno != EEXIST)
            rc = mn_fail(err, MN_EIO, "%s: cannot publish as %s: %s", tmp, path, strerror(errno));
    }
    model_dir_unlock(lock);
    unlink(tmp);
    fclose(f); /* flushed and fsynced; closing releases its flock */
    if (rc == 0)
        model_file_fsync_dir(path); /* the new name survives a crash */
    return rc;
}

bool model_dir_is_temp(const char *file)
{
    int v, end = 0;
    if (strncmp(file, MODEL_DIR_TEMP_PREFIX, strlen(MODEL_DIR_TEMP_PREFIX)) == 0)
        return true;
    /* model_save's vN.mnm.tmp.PID, store_seed's vN.mnm.tmp-XXXXXX */
    return sscanf(file, "v%d.mnm.tmp%n", &v, &end) == 1 && end > 0;
}
