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
        if (!*v || *end || errno || x < 1 || x > 1000000)
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
    *version = model_dir_latest(models_dir, name) + 1;
    snprintf(path, n, "%s/v%d.mnm", dir, *version);
    return 0;
}

int model_dir_publish(const Model *m, const char *models_dir, const char *name, char *path,
                      size_t n, int *version, MnError *err)
{
    int rc = model_dir_next(models_dir, name, path, n, version, err);
    if (rc)
        return rc;
    /* A private name first (the leading dot keeps scanners off it), written,
     * fsynced and locked by this writer until it is gone, so a store that
     * opens meanwhile tells it from a crashed writer's leftover; then a hard
     * link to vN.mnm, which fails with EEXIST when another writer took N
     * since we looked: try N+1. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/%s/" MODEL_DIR_TEMP_PREFIX "XXXXXX", models_dir, name);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        rc = mn_fail(err, MN_EIO, "%s: cannot create its temporary file: %s", path,
                     strerror(errno));
        if (fd >= 0) {
            unlink(tmp);
            close(fd);
        }
        return rc;
    }
    flock(fd, LOCK_EX);
    fchmod(fd, 0644); /* mkstemp's 0600 would keep other readers of the store out */
    if ((rc = model_write(m, f, path, err))) {
        unlink(tmp);
        fclose(f);
        return rc;
    }
    for (;;) {
        snprintf(path, n, "%s/%s/v%d.mnm", models_dir, name, *version);
        if (link(tmp, path) == 0)
            break;
        if (errno == EEXIST) {
            ++*version;
            continue;
        }
        rc = mn_fail(err, MN_EIO, "%s: cannot publish as %s: %s", tmp, path, strerror(errno));
        break;
    }
    unlink(tmp);
    fclose(f); /* flushed and fsynced; closing releases the lock */
    if (rc == 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
        int dfd = open(dir, O_RDONLY);
        if (dfd >= 0) {
            fsync(dfd); /* the new name survives a crash */
            close(dfd);
        }
    }
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
