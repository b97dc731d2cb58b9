/* request_deadline.h - against slow clients (slowloris). libmicrohttpd's
 * --connection-timeout is an idle timeout that every byte received
 * restarts, so a client sending a byte a second holds its connection (and a
 * --max-connections slot) for ever. Here every connection has
 * --request-timeout seconds to deliver each request, headers and body,
 * counted from its accept or the end of its previous request; a thread shuts
 * down the socket of one that overruns, and MHD closes it as on a client's
 * hang-up. */
#ifndef MN_REQUEST_DEADLINE_H
#define MN_REQUEST_DEADLINE_H

#include <microhttpd.h>

typedef struct Deadlines Deadlines;

/* Starts the thread; NULL when it cannot. */
Deadlines *deadlines_start(long timeout_s);
/* After MHD_stop_daemon (every connection has been notified closed): ends
 * the thread and frees it; NULL is a no-op. */
void deadlines_stop(Deadlines *d);

/* MHD_OPTION_NOTIFY_CONNECTION's callback, with the Deadlines as cls:
 * tracks each connection from its start, with a deadline, to its close. */
void deadlines_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode code);
/* The request has arrived whole: no deadline while it is answered (an
 * event stream may last hours). */
void deadline_clear(Deadlines *d, struct MHD_Connection *conn);
/* The answer is done: the next request on the connection has its time. */
void deadline_restart(Deadlines *d, struct MHD_Connection *conn);

#endif
