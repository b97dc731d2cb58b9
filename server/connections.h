/* connections.h - every connection the server holds, from its admission by
 * the acceptor to libmicrohttpd's close: the limits on them
 * (--max-connections, --max-connections-per-ip), the deadlines of each
 * request (--header-timeout for its head, --request-timeout for all of it),
 * and, at the limit, which connection gives way to a newcomer whose request
 * head has arrived: the one that has waited longest for its own head, once
 * past --evict-idle-ms. A newcomer still without its head takes no place
 * at the limit: a client that trickles its head (slowloris) never
 * displaces anyone, while one that sends a request at once displaces the
 * trickler that has waited longest.
 * A thread shuts down the sockets of connections past a deadline, and MHD
 * closes them as on a client's hang-up. MHD notifies a connection's end
 * under this table's lock before it closes the socket, and a socket is only
 * shut down under that lock while MHD holds it, so no socket number is
 * touched after MHD has let go of it. Never touches MHD's state itself. */
#ifndef MN_CONNECTIONS_H
#define MN_CONNECTIONS_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "access_log.h"

typedef struct Connections Connections;
typedef struct Connection Connection;

typedef struct {
    long max;              /* connections open at once */
    long per_ip;           /* of them from one client address */
    long header_timeout;   /* seconds from accept (or the last answer) to a whole request head */
    long request_timeout;  /* seconds from the same start to the whole request, body too */
    long evict_idle_ms;    /* waiting for a head that long, a connection gives way; 0: never */
    int workers;           /* event loops the connections are spread over */
} ConnectionLimits;

typedef enum {
    ADMITTED,
    WAIT_FOR_HEAD,  /* full, but one would give way to this one's request head: ask again */
    REFUSED_FULL,   /* at --max-connections, none idle long enough to give way */
    REFUSED_PER_IP, /* the address holds --max-connections-per-ip */
} Admission;

/* What /metrics shows; counters since start. */
typedef struct {
    long open;
    long refused_full, refused_per_ip, evicted, header_timeouts, request_timeouts;
} ConnectionStats;

/* Starts the deadline thread, which reports the connections it closes to
 * log (NULL: nowhere); NULL when out of memory or threads. */
Connections *connections_new(const ConnectionLimits *lim, AccessLog *log);
/* After every daemon has stopped (each connection was notified closed). */
void connections_free(Connections *c);

/* The acceptor's question for a new socket from ip (IPv4, network order),
 * whose whole request head has arrived or not (head): ADMITTED with
 * *rec and the least loaded *worker to hand it to, perhaps after evicting
 * an idle connection; else the socket is the caller's to refuse, or to
 * ask about again once its head is here (WAIT_FOR_HEAD). */
typedef enum {
    HEAD_NOT_YET, /* not (yet) looked at */
    HEAD_READY,   /* a whole request head is in the socket */
    HEAD_OVERDUE, /* it was waited for and did not come */
} HeadArrival;
Admission connections_admit(Connections *c, int fd, uint32_t ip, HeadArrival head,
                            Connection **rec, int *worker);

/* The worker's hand-over of rec to its daemon: call before and after
 * MHD_add_connection. A socket MHD refused (closed) is forgotten. */
void connections_handing(Connections *c, int worker, Connection *rec);
void connections_handed(Connections *c, int worker);

/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls from connections_notify_cls. */
void connections_on_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode code);
void *connections_notify_cls(Connections *c, int worker);

/* A request's progress, from the access handler and completion callback:
 * the head arrived (now the body's deadline); all of it arrived (no
 * deadline while it is answered: an event stream may last hours); the
 * answer is done (the next request's clock starts). */
void connections_head_received(Connections *c, struct MHD_Connection *conn);
void connections_request_received(Connections *c, struct MHD_Connection *conn);
void connections_answered(Connections *c, struct MHD_Connection *conn);

/* Connections whose request has arrived and is not yet answered: a drain
 * waits for these. */
long connections_busy(Connections *c);
void connections_stats(Connections *c, ConnectionStats *out);

#endif
