/* check_pipe.c - see check_pipe.h. */
#include "check_pipe.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct CheckPipe {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock; /* text and len, read by check_pipe_has meanwhile */
    char *text;
    size_t len;
};

static void *read_to_eof(void *arg)
{
    CheckPipe *p = arg;
    char buf[1 << 16];
    ssize_t r;
    while ((r = read(p->fd, buf, sizeof buf)) > 0) {
        pthread_mutex_lock(&p->lock);
        p->text = realloc(p->text, p->len + (size_t)r + 1);
        memcpy(p->text + p->len, buf, (size_t)r);
        p->len += (size_t)r;
        p->text[p->len] = '\0';
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

CheckPipe *check_pipe_start(int fd)
{
    CheckPipe *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    p->fd = fd;
    p->text = calloc(1, 1);
    pthread_mutex_init(&p->lock, NULL);
    ck_assert_int_eq(pthread_create(&p->thread, NULL, read_to_eof, p), 0);
    return p;
}

bool check_pipe_has(CheckPipe *p, const char *what)
{
    pthread_mutex_lock(&p->lock);
    bool has = strstr(p->text, what) != NULL;
    pthread_mutex_unlock(&p->lock);
    return has;
}

char *check_pipe_finish(CheckPipe *p)
{
    pthread_join(p->thread, NULL);
    close(p->fd);
    pthread_mutex_destroy(&p->lock);
    char *text = p->text;
    free(p);
    return text;
}
