/* connections.c - see connections.h. A record per connection; those that
 * wait for a request head are in one list in the order they began to wait
 * (so the first is the one to evict and the first to time out), and in
 * one such list of their address's; those receiving a body in another.
 * Counts per worker and per client address (an open-addressing table
 * sized for --max-connections) are kept as connections are admitted and
 * closed, so admission costs O(1). */
#include "connections.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "access_log.h"
#include "clock.h"

typedef enum { PENDING, WAITING, IN_BODY, ANSWERING } ConnState;

typedef struct List List;

/* A record's place in one list; a record is in a list of each kind at most. */
typedef struct Link {
    struct Link *prev, *next;
    List *list; /* NULL: in none */
    Connection *owner;
} Link;

struct List {
    Link *head, *tail;
};

struct Connection {
    Link by_state;   /* in c->waiting or c->in_body */
    Link by_address; /* in its address's waiting list, while in c->waiting */
    int fd;
    uint32_t ip;
    int worker;
    ConnState state;
    double since;    /* monotonic seconds: when the current request's clock started */
    bool in_mhd;     /* MHD took it: its socket is MHD's until notified closed */
    bool counted;    /* holds a place under the limits (an evicted one gives it up at once) */
    bool leaving;    /* cut or evicted: its socket is shut down, MHD closes it */
};

/* One worker's share: the notification callback's cls. */
typedef struct {
    Connections *c;
    long open;
    Connection *adding; /* between connections_handing and connections_handed */
} Slot;

typedef struct {
    uint32_t ip;
    int32_t count;  /* 0: the slot is free */
    List waiting;   /* its connections waiting for a head, oldest first */
} IpCount;

struct Connections {
    ConnectionLimits lim;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    AccessLog *log;
    List waiting, in_body;
    long open, busy;
    ConnectionStats stats;
    IpCount *ips;
    size_t ips_mask;
    Slot *slots;
};

/* How often the deadline thread looks: the deadlines' resolution. */
#define TICK_MS 100

static void list_unlink(Link *k)
{
    List *l = k->list;
    if (!l)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
    k->list = NULL;
}

static void list_append(List *l, Link *k, Connection *owner)
{
    *k = (Link){.prev = l->tail, .list = l, .owner = owner};
    if (l->tail)
        l->tail->next = k;
    else
        l->head = k;
    l->tail = k;
}

static Connection *list_first(const List *l)
{
    return l->head ? l->head->owner : NULL;
}

/* ---- counts per client address: linear probing, backward-shift deletion ---- */

static size_t ip_home(const Connections *c, uint32_t ip)
{
    return (size_t)((ip * 2654435761u) >> 7) & c->ips_mask;
}

static IpCount *ip_find(Connections *c, uint32_t ip)
{
    for (size_t i = ip_home(c, ip);; i = (i + 1) & c->ips_mask)
        if (c->ips[i].count == 0 || c->ips[i].ip == ip)
            return &c->ips[i];
}

static void ip_release(Connections *c, uint32_t ip)
{
    IpCount *e = ip_find(c, ip);
    if (e->count == 0 || --e->count > 0)
        return;
    /* Its waiting list is empty now (only counted connections are in it).
     * Pull later entries of the probe run back over the hole; a slot left
     * free is cleared, so no list of an earlier address lingers in it. */
    *e = (IpCount){0};
    size_t hole = (size_t)(e - c->ips);
    for (size_t i = (hole + 1) & c->ips_mask; c->ips[i].count; i = (i + 1) & c->ips_mask) {
        size_t home = ip_home(c, c->ips[i].ip);
        bool movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i);
        if (movable) {
            c->ips[hole] = c->ips[i];
            c->ips[i] = (IpCount){0};
            hole = i;
        }
    }
}

/* ---- a record's state and counts ---- */

static bool is_busy(ConnState s)
{
    return s == IN_BODY || s == ANSWERING;
}

/* Takes r out of its lists. The address's list is found again by address:
 * its table entry may have moved since r joined it (ip_release). */
static void unlink_record(Connections *c, Connection *r)
{
    if (r->by_address.list) {
        r->by_address.list = &ip_find(c, r->ip)->waiting;
        list_unlink(&r->by_address);
    }
    list_unlink(&r->by_state);
}

static void set_state(Connections *c, Connection *r, ConnState s)
{
    c->busy += (long)is_busy(s) - (long)is_busy(r->state);
    unlink_record(c, r);
    r->state = s;
    if (r->leaving)
        return;
    if (s == WAITING) {
        list_append(&c->waiting, &r->by_state, r);
        list_append(&ip_find(c, r->ip)->waiting, &r->by_address, r);
    } else if (s == IN_BODY) {
        list_append(&c->in_body, &r->by_state, r);
    }
}

static void uncount(Connections *c, Connection *r)
{
    if (!r->counted)
        return;
    r->counted = false;
    c->open--;
    c->slots[r->worker].open--;
    ip_release(c, r->ip);
}

/* Shuts its socket down (MHD holds it); MHD closes it and notifies. */
static void cut(Connections *c, Connection *r)
{
    shutdown(r->fd, SHUT_RDWR);
    r->leaving = true;
    unlink_record(c, r);
}

static void forget(Connections *c, Connection *r)
{
    set_state(c, r, PENDING);
    uncount(c, r);
    free(r);
}

/* ---- the deadline thread ---- */

static void warn(Connections *c, const char *what, long n, long seconds)
{
    char line[256];
    int len = snprintf(line, sizeof line,
                       "{\"level\":\"warn\",\"msg\":\"connections closed: %s\",\"count\":%ld,"
                       "\"seconds\":%ld}\n",
                       what, n, seconds);
    if (c->log)
        access_log_line(c->log, line, (size_t)len);
}

static void *deadlines_main(void *arg)
{
    Connections *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        cond_wait_ms(&c->wake, &c->lock, TICK_MS);
        double now = clock_seconds();
        long heads = 0, requests = 0;
        /* In the order they began to wait: the first still in time ends the search. */
        Connection *r;
        while ((r = list_first(&c->waiting)) && now - r->since > (double)c->lim.header_timeout) {
            cut(c, r);
            heads++;
        }
        for (Link *next, *b = c->in_body.head; b; b = next) {
            next = b->next;
            if (now - b->owner->since > (double)c->lim.request_timeout) {
                cut(c, b->owner);
                requests++;
            }
        }
        c->stats.header_timeouts += heads;
        c->stats.request_timeouts += requests;
        /* The log takes lines without waiting (a stalled stderr costs lines, not deadlines). */
        if (heads)
            warn(c, "request head not received within --header-timeout", heads,
                 c->lim.header_timeout);
        if (requests)
            warn(c, "request not received within --request-timeout", requests,
                 c->lim.request_timeout);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- who gives way ---- */

/* Looked at, oldest first, for one that is idle indeed. */
#define EVICT_CANDIDATES 8

/* Bytes in the socket that MHD has not read yet: a request that came while
 * the worker was busy, not an idle connection, however long it seems to
 * have waited. */
static bool has_unread_bytes(int fd)
{
    char b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* The connection of l (oldest first) that has waited at least min_ms for a
 * request head and has nothing unread; NULL when none of the first few. */
static Connection *longest_idle(const List *l, double min_ms)
{
    double now = clock_seconds();
    int looked = 0;
    for (Link *k = l->head; k && looked < EVICT_CANDIDATES; k = k->next, looked++) {
        if ((now - k->owner->since) * 1e3 < min_ms)
            return NULL; /* the rest began to wait later still */
        if (!has_unread_bytes(k->owner->fd))
            return k->owner;
    }
    return NULL;
}

/* ---- the API ---- */

Connections *connections_new(const ConnectionLimits *lim, AccessLog *log)
{
    Connections *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lim = *lim;
    c->log = log;
    size_t cap = 16;
    while (cap < 2 * (size_t)lim->max)
        cap *= 2;
    c->ips = calloc(cap, sizeof *c->ips);
    c->ips_mask = cap - 1;
    c->slots = calloc((size_t)lim->workers, sizeof *c->slots);
    if (!c->ips || !c->slots) {
        free(c->ips);
        free(c->slots);
        free(c);
        return NULL;
    }
    for (int i = 0; i < lim->workers; i++)
        c->slots[i].c = c;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, deadlines_main, c) != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c->ips);
        free(c->slots);
        free(c);
        return NULL;
    }
    return c;
}

void connections_free(Connections *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c->ips);
    free(c->slots);
    free(c);
}

Admission connections_admit(Connections *c, int fd, uint32_t ip, HeadArrival head,
                            Connection **rec, int *worker)
{
    Connection *r = calloc(1, sizeof *r);
    if (!r)
        return REFUSED_FULL;
    pthread_mutex_lock(&c->lock);
    Admission verdict = ADMITTED;
    IpCount *e = ip_find(c, ip);
    bool full = c->open >= c->lim.max, at_share = e->count >= c->lim.per_ip;
    if (full || at_share) {
        /* The connection that has waited longest for a request head gives
         * way to one whose head is here: the address's own, when it holds
         * its share, else any. */
        Connection *idle = c->lim.evict_idle_ms > 0
            ? longest_idle(at_share ? &e->waiting : &c->waiting, (double)c->lim.evict_idle_ms)
            : NULL;
        bool evictable = idle != NULL;
        if (evictable && head == HEAD_READY) {
            cut(c, idle);
            uncount(c, idle);
            c->stats.evicted++;
            e = ip_find(c, ip); /* releasing an address may have moved entries */
        } else if (evictable && head == HEAD_NOT_YET) {
            verdict = WAIT_FOR_HEAD;
        } else if (full) { /* the server's limit is the one to name */
            verdict = REFUSED_FULL;
            c->stats.refused_full++;
        } else {
            verdict = REFUSED_PER_IP;
            c->stats.refused_per_ip++;
        }
    }
    if (verdict == ADMITTED) {
        int best = 0;
        for (int i = 1; i < c->lim.workers; i++)
            if (c->slots[i].open < c->slots[best].open)
                best = i;
        if (e->count == 0)
            *e = (IpCount){.ip = ip};
        e->count++;
        c->open++;
        c->slots[best].open++;
        *r = (Connection){.fd = fd, .ip = ip, .worker = best, .state = PENDING, .counted = true};
        *rec = r;
        *worker = best;
    }
    pthread_mutex_unlock(&c->lock);
    if (verdict != ADMITTED)
        free(r);
    return verdict;
}

void connections_handing(Connections *c, int worker, Connection *rec)
{
    pthread_mutex_lock(&c->lock);
    c->slots[worker].adding = rec;
    pthread_mutex_unlock(&c->lock);
}

void connections_handed(Connections *c, int worker)
{
    pthread_mutex_lock(&c->lock);
    Connection *r = c->slots[worker].adding;
    c->slots[worker].adding = NULL;
    if (r && !r->in_mhd) /* MHD refused it before it started: the socket is closed */
        forget(c, r);
    pthread_mutex_unlock(&c->lock);
}

void *connections_notify_cls(Connections *c, int worker)
{
    return &c->slots[worker];
}

void connections_on_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    Slot *slot = cls;
    Connections *c = slot->c;
    pthread_mutex_lock(&c->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        Connection *r = slot->adding;
        if (r) {
            r->in_mhd = true;
            r->since = clock_seconds();
            set_state(c, r, WAITING);
            *socket_context = r;
        }
    } else if (*socket_context) {
        Connection *r = *socket_context;
        if (slot->adding == r) /* closed while being added */
            slot->adding = NULL;
        forget(c, r);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}

static Connection *record_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* A request's head always comes to a record waiting for it (from its
 * start or its previous answer), so each step moves it unconditionally. */
static void move_to(Connections *c, struct MHD_Connection *conn, ConnState to)
{
    Connection *r = record_of(conn);
    if (!r)
        return;
    pthread_mutex_lock(&c->lock);
    if (to == WAITING)
        r->since = clock_seconds();
    set_state(c, r, to);
    pthread_mutex_unlock(&c->lock);
}

void connections_head_received(Connections *c, struct MHD_Connection *conn)
{
    move_to(c, conn, IN_BODY);
}

void connections_request_received(Connections *c, struct MHD_Connection *conn)
{
    move_to(c, conn, ANSWERING);
}

void connections_answered(Connections *c, struct MHD_Connection *conn)
{
    move_to(c, conn, WAITING);
}

long connections_busy(Connections *c)
{
    pthread_mutex_lock(&c->lock);
    long n = c->busy;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void connections_stats(Connections *c, ConnectionStats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->open = c->open;
    pthread_mutex_unlock(&c->lock);
}
