/* check_pipe.h - reading a pipe to its end on a thread of its own, for
 * tests that hand a pipe's write end to code that may block on it (the
 * request log): what has come can be looked at while the pipe is open. */
#ifndef MN_CHECK_PIPE_H
#define MN_CHECK_PIPE_H

#include <stdbool.h>

typedef struct CheckPipe CheckPipe;

/* Starts reading fd (a pipe's read end) until EOF. */
CheckPipe *check_pipe_start(int fd);
/* True once what has come so far contains what. */
bool check_pipe_has(CheckPipe *p, const char *what);
/* Waits for EOF (every write end closed), closes fd and frees the reader:
 * all that came, NUL-terminated (malloc'd; "" when nothing came). */
char *check_pipe_finish(CheckPipe *p);

#endif
