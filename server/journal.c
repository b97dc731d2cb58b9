/* journal.c - append-only JSON lines with fsync (see journal.h). */
#include "journal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int journal_open(Journal *j, const char *path, void (*fn)(const cJSON *rec, void *ctx),
                 void *ctx, MnError *err)
{
    snprintf(j->path, sizeof j->path, "%s", path);
    FILE *in = fopen(j->path, "r");
    if (in) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long complete = 0; /* bytes up to the last whole line */
        while ((n = getline(&line, &cap, in)) > 0) {
            if (line[n - 1] != '\n')
                break; /* torn by a crash mid-write: the record never happened */
            complete += n;
            cJSON *rec = cJSON_ParseWithLength(line, (size_t)n);
            if (rec)
                fn(rec, ctx);
            cJSON_Delete(rec);
        }
        free(line);
        fclose(in);
        /* Cut a torn tail so the next record starts on a line of its own. */
        if (truncate(j->path, complete) != 0)
            return mn_fail(err, MN_EIO, "%s: %s", j->path, strerror(errno));
    }
    j->f = fopen(j->path, "a");
    if (!j->f)
        return mn_fail(err, MN_EIO, "%s: %s", j->path, strerror(errno));
    return 0;
}

int journal_append(Journal *j, const cJSON *rec)
{
    char *text = cJSON_PrintUnformatted(rec);
    if (!text)
        return MN_ENOMEM;
    /* One write(2) of the whole line, no stdio buffer: a record that does
     * not fit (a full disk) is cut off again, so the file always ends on a
     * whole line and the next record does not run into a torn one. */
    size_t n = strlen(text) + 1, off = 0;
    text[n - 1] = '\n';
    int fd = fileno(j->f);
    struct stat st;
    int rc = fstat(fd, &st) ? MN_EIO : 0;
    while (rc == 0 && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = MN_EIO;
        else
            off += (size_t)w;
    }
    int why = errno;
    if (rc && off > 0 && ftruncate(fd, st.st_size) != 0)
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"torn journal record not removed\","
                "\"path\":\"%s\"}\n", j->path);
    if (rc == 0 && fsync(fd)) {
        rc = MN_EIO;
        why = errno;
    }
    cJSON_free(text);
    errno = why;
    return rc;
}

void journal_close(Journal *j)
{
    if (j->f)
        fclose(j->f);
    j->f = NULL;
}
