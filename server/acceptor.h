/* acceptor.h - the listening socket, accepted by a thread of its own that
 * hands each connection to libmicrohttpd (MHD_add_connection), which
 * spreads them over its worker threads by socket number. MHD's own
 * accepting lets the first worker to wake take up to ten connections at
 * once: 16 keep-alive clients arriving together could all land on one
 * worker and leave the other core idle (measured: half the throughput).
 * At --max-connections it accepts nothing more until one closes: a new
 * client waits in the backlog rather than being accepted and dropped. */
#ifndef MN_ACCEPTOR_H
#define MN_ACCEPTOR_H

#include <stddef.h>
#include <microhttpd.h>

typedef struct Acceptor Acceptor;

/* Binds host:port (port 0: any free one, read back with acceptor_port) and
 * listens; the thread starts with acceptor_run. NULL with a message in err
 * when the address is bad or taken. */
Acceptor *acceptor_open(const char *host, long port, char *err, size_t err_len);
long acceptor_port(const Acceptor *a);
/* Accepts into the daemon (started with MHD_USE_NO_LISTEN_SOCKET), while
 * it holds fewer than max_connections, until stopped; -1 when the thread
 * cannot start. */
int acceptor_run(Acceptor *a, struct MHD_Daemon *daemon, long max_connections);
/* From MHD's connection notification: a connection closed, there may be room. */
void acceptor_connection_closed(Acceptor *a);
/* Stops accepting: new clients are refused. NULL is a no-op. */
void acceptor_stop(Acceptor *a);
/* Frees it, once the daemon has stopped (its connections' notifications
 * reach the acceptor until then). NULL is a no-op. */
void acceptor_free(Acceptor *a);

#endif
