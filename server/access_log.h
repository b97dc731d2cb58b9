/* access_log.h - the request log, written out by a thread of its own.
 * A worker that wrote its line to stderr itself paid a system call a
 * request and waited whenever stderr did: on a file, for the page cache's
 * writeback; on a pipe, for whoever reads it (a log collector that stalls
 * would stall every request), and the other workers waited for it on
 * stderr's lock. Workers copy their line into a buffer instead, and the
 * thread writes the lines out in batches. When the buffer is full a line
 * is dropped and counted, never waited for; the count is logged once there
 * is room, and exported in /metrics. */
#ifndef MN_ACCESS_LOG_H
#define MN_ACCESS_LOG_H

#include <stddef.h>

typedef struct AccessLog AccessLog;

/* Starts the thread writing to fd, with two buffers of buffer_bytes (one
 * filling while the other is written); NULL when it cannot. */
AccessLog *access_log_start(int fd, size_t buffer_bytes);
/* Writes what is buffered, ends the thread and frees it; NULL is a no-op. */
void access_log_stop(AccessLog *log);

/* Queues one line (ending in '\n'), or drops it when the buffer is full. */
void access_log_line(AccessLog *log, const char *line, size_t len);
/* Lines dropped since the start. */
unsigned long access_log_dropped(AccessLog *log);

#endif
