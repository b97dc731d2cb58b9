/* acceptor.h - the listening socket, accepted by a thread of our own that
 * asks the connection table (connections.h) whether there is room, then
 * hands the socket to the least loaded worker (workers.h). A socket there
 * is no room for is answered here, never handed to libmicrohttpd: 503 at
 * --max-connections, 429 at --max-connections-per-ip, both with
 * Retry-After and a JSON error, then closed once the client has had a
 * moment to read it (closing at once, with its request unread, would send
 * a reset that can destroy the answer before the client reads it). */
#ifndef MN_ACCEPTOR_H
#define MN_ACCEPTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "connections.h"
#include "workers.h"

typedef struct Acceptor Acceptor;

/* Refused sockets lingering and newcomers waiting for their request head,
 * at most, each an open file (config.c keeps room for them). */
#define ACCEPTOR_HELD_MAX 1024

/* Binds host:port (port 0: any free one, read back with acceptor_port) and
 * listens; the thread starts with acceptor_run. NULL with a message in err
 * when the address is bad or taken. tls: clients speak TLS first, so a
 * request head cannot be seen here (their hello counts as one) and a
 * refusal cannot be answered in HTTP (the socket is closed instead). */
Acceptor *acceptor_open(const char *host, long port, bool tls, char *err, size_t err_len);
long acceptor_port(const Acceptor *a);
/* Accepts into the workers, as conns admits, until stopped; -1 when the
 * thread cannot start. limits names the numbers in the refusals. */
int acceptor_run(Acceptor *a, Connections *conns, Workers *workers, const ConnectionLimits *lim);
/* Stops accepting and closes the listening socket (new clients are
 * refused by the kernel) and the refused sockets still lingering; frees
 * it. NULL is a no-op. */
void acceptor_free(Acceptor *a);

#endif
