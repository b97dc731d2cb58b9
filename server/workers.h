/* workers.h - the HTTP worker threads: each runs one libmicrohttpd daemon
 * of its own in an epoll loop of ours, and adds the sockets the acceptor
 * hands it from that same thread. Not MHD's thread pool, because
 * libmicrohttpd 0.9.75 has two defects there (SECURITY.md has the code
 * paths): a socket added from another thread that finds its worker full
 * leaves that worker holding a mutex it later locks again (the server
 * deadlocks for good), and an epoll pass that gets exactly 128 events
 * waits again with the full idle timeout before it serves any of them
 * (throughput fell 20x at 512 connections). Run this way, MHD_run never
 * waits, and a socket is added where the daemon's count cannot move. */
#ifndef MN_WORKERS_H
#define MN_WORKERS_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "connections.h"

typedef struct Workers Workers;

/* Starts worker i's daemon (no thread, no listening socket of its own:
 * MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET); NULL on failure. */
typedef struct MHD_Daemon *(*WorkerDaemonStart)(void *cls, int worker);

/* Starts n workers; NULL (message in err) when a daemon or thread cannot start. */
Workers *workers_start(int n, Connections *conns, WorkerDaemonStart start, void *cls, char *err,
                       size_t err_len);
/* Gives an admitted socket (rec, from connections_admit) to its worker. */
void workers_hand(Workers *w, int worker, int fd, const struct sockaddr_in *peer,
                  Connection *rec);
/* Lets requests in flight finish (no connection busy) until deadline
 * (monotonic seconds), then stops the loops and the daemons, which close
 * what is left; frees it all. true when nothing was in flight at the end.
 * NULL is a no-op. */
bool workers_stop(Workers *w, double deadline);

#endif
