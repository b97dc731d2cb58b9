/* fuzz_connections.c - libFuzzer target: the connection table
 * (server/connections.c) driven by a sequence of events read from the
 * input, as the acceptor and libmicrohttpd would send them: admissions
 * from a few addresses with or without their request head, hand-overs MHD
 * takes or refuses, and closes. After every event the table's counts must
 * agree with what this harness holds open (a mismatch aborts), and no
 * limit may be exceeded. Sockets are -1: an eviction's shutdown fails
 * harmlessly. Each input byte pair is one event: op, then argument. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "connections.h"

#define SLOTS 64

/* A connection MHD holds: its record (socket context) and worker. */
typedef struct {
    void *context;
    int worker;
} Held;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    ConnectionLimits lim = {.max = 1 + data[0] % 16, .per_ip = 1 + data[1] % 8,
                            .header_timeout = 3600, .request_timeout = 3600,
                            .evict_idle_ms = data[2] % 2, /* 1 ms: some have waited that long */ .workers = 1 + data[2] % 3};
    Connections *c = connections_new(&lim, NULL);
    if (!c)
        return 0;
    Held held[SLOTS] = {0};
    long evicted_seen = 0;
    for (size_t k = 3; k + 1 < size; k += 2) {
        uint8_t op = data[k], arg = data[k + 1];
        Held *h = &held[arg % SLOTS];
        if (op % 3 == 0 && !h->context) { /* a newcomer from one of 8 addresses */
            Connection *rec;
            int worker;
            uint32_t ip = 0x7f000000u + (arg >> 5);
            ConnectionStats before;
            connections_stats(c, &before);
            Admission a = connections_admit(c, -1, ip, (HeadArrival)(op / 3 % 3), &rec, &worker);
            if (a == ADMITTED) {
                connections_handing(c, worker, rec);
                if (op & 0x80) { /* MHD takes it */
                    connections_on_notify(connections_notify_cls(c, worker), NULL, &h->context,
                                          MHD_CONNECTION_NOTIFY_STARTED);
                    h->worker = worker;
                }
                connections_handed(c, worker); /* else MHD refused it */
                ConnectionStats after;
                connections_stats(c, &after);
                evicted_seen += after.evicted - before.evicted; /* their places given up */
            }
        } else if (op % 3 == 1 && h->context) { /* MHD closes it */
            connections_on_notify(connections_notify_cls(c, h->worker), NULL, &h->context,
                                  MHD_CONNECTION_NOTIFY_CLOSED);
            if (h->context) {
                fprintf(stderr, "a closed connection kept its record\n");
                abort();
            }
        }
        ConnectionStats st;
        connections_stats(c, &st);
        long held_now = 0;
        for (int i = 0; i < SLOTS; i++)
            held_now += held[i].context != NULL;
        /* Evicted ones still held by MHD are not counted, so the table
         * counts at most what MHD holds, and at least that less those evicted. */
        if (st.open > held_now || st.open < held_now - evicted_seen || st.open > lim.max) {
            fprintf(stderr, "open %ld, held %ld (%ld evicted), limit %ld\n", st.open, held_now,
                    evicted_seen, lim.max);
            abort();
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (held[i].context)
            connections_on_notify(connections_notify_cls(c, held[i].worker), NULL,
                                  &held[i].context, MHD_CONNECTION_NOTIFY_CLOSED);
    ConnectionStats st;
    connections_stats(c, &st);
    if (st.open != 0) {
        fprintf(stderr, "open %ld after every close\n", st.open);
        abort();
    }
    connections_free(c);
    return 0;
}
