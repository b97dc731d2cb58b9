/* test_connections.c - the connection table's admission rules without a
 * server: the limits (--max-connections, --max-connections-per-ip) and
 * their counts through many addresses coming and going, the choice of the
 * least loaded worker, and which connection gives way at the limit: only
 * to a newcomer whose request head has arrived, only one that has waited
 * past --evict-idle-ms, the one that has waited longest first. Sockets are
 * socketpairs, so an eviction shows as EOF at the other end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_util.h"
#include "connections.h"

/* Stands in for MHD: the STARTED and CLOSED notifications of one socket. */
typedef struct {
    void *context;
    int worker;
    int fd, peer;
} FakeConn;

static Connections *table(long max, long per_ip, long evict_ms, int workers)
{
    ConnectionLimits lim = {.max = max, .per_ip = per_ip, .header_timeout = 3600,
                            .request_timeout = 3600, .evict_idle_ms = evict_ms,
                            .workers = workers};
    Connections *c = connections_new(&lim, NULL);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Admits a socket from ip and, if admitted, lets its worker "add" it. */
static Admission open_conn(Connections *c, uint32_t ip, HeadArrival head, FakeConn *fc)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fc->fd = sv[0];
    fc->peer = sv[1];
    fc->context = NULL;
    Connection *rec;
    Admission a = connections_admit(c, fc->fd, ip, head, &rec, &fc->worker);
    if (a != ADMITTED) {
        close(sv[0]);
        close(sv[1]);
        fc->fd = fc->peer = -1;
        return a;
    }
    connections_handing(c, fc->worker, rec);
    connections_on_notify(connections_notify_cls(c, fc->worker), NULL, &fc->context,
                          MHD_CONNECTION_NOTIFY_STARTED);
    connections_handed(c, fc->worker);
    ck_assert_ptr_nonnull(fc->context);
    return a;
}

static void close_conn(Connections *c, FakeConn *fc)
{
    connections_on_notify(connections_notify_cls(c, fc->worker), NULL, &fc->context,
                          MHD_CONNECTION_NOTIFY_CLOSED);
    ck_assert_ptr_null(fc->context);
    close(fc->fd);
    close(fc->peer);
}

static long open_count(Connections *c)
{
    ConnectionStats st;
    connections_stats(c, &st);
    return st.open;
}

/* Whether the server side of fc was shut down (EOF at the peer). */
static bool was_cut(const FakeConn *fc)
{
    char b;
    return recv(fc->peer, &b, 1, MSG_DONTWAIT) == 0;
}

/* The address 127.x.y.z of index a: distinct (odd multipliers and a
 * right xorshift are bijections on 24 bits) and scattered unlike the
 * table's own hash, so that they collide and cluster as real ones do (a
 * run the hash maps evenly would hide a wrong deletion). */
static uint32_t address(int a)
{
    uint32_t x = ((uint32_t)a * 0x2545F491u) & 0xffffffu;
    x ^= x >> 11;
    return 0x7f000000u | ((x * 0x5bd1e995u) & 0xffffffu);
}

START_TEST(test_limits_per_address_through_many_addresses)
{
    /* One connection an address, as many addresses as the table is sized
     * for at half load, so that probe runs are long and deletions move
     * entries back along them. */
    enum { ADDRESSES = 4000 };
    Connections *c = table(ADDRESSES + 1, 1, 0, 4);
    static FakeConn conns[ADDRESSES];
    FakeConn extra;
    for (int round = 0; round < 3; round++) {
        for (int a = 0; a < ADDRESSES; a++)
            ck_assert_int_eq(open_conn(c, address(a), HEAD_NOT_YET, &conns[a]), ADMITTED);
        ck_assert_int_eq(open_count(c), ADDRESSES);
        /* Close a scattered half; each address still open is still at its limit. */
        for (int i = 0; i < ADDRESSES; i++) {
            int a = (int)(((long)i * 1597 + round * 31) % ADDRESSES);
            if (a % 2 == round % 2)
                close_conn(c, &conns[a]);
        }
        for (int a = 0; a < ADDRESSES; a++) {
            bool open = a % 2 != round % 2;
            ck_assert_msg(open_conn(c, address(a), HEAD_NOT_YET, &extra) ==
                              (open ? REFUSED_PER_IP : ADMITTED),
                          "round %d: address %d (%s)", round, a, open ? "open" : "closed");
            if (!open)
                conns[a] = extra;
        }
        for (int a = ADDRESSES - 1; a >= 0; a--)
            close_conn(c, &conns[a]);
        ck_assert_int_eq(open_count(c), 0);
    }
    ConnectionStats st;
    connections_stats(c, &st);
    ck_assert_int_eq(st.refused_per_ip, 3 * ADDRESSES / 2);
    connections_free(c);
}
END_TEST

START_TEST(test_least_loaded_worker)
{
    Connections *c = table(64, 64, 0, 3);
    FakeConn f[9];
    int per_worker[3] = {0};
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_NOT_YET, &f[i]), ADMITTED);
        per_worker[f[i].worker]++;
    }
    ck_assert(per_worker[0] == 3 && per_worker[1] == 3 && per_worker[2] == 3);
    /* Worker 1 loses two: the next two go there. */
    int closed = 0;
    for (int i = 0; i < 9 && closed < 2; i++)
        if (f[i].worker == 1) {
            close_conn(c, &f[i]);
            f[i].fd = -1;
            closed++;
        }
    FakeConn g[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_NOT_YET, &g[i]), ADMITTED);
        ck_assert_int_eq(g[i].worker, 1);
    }
    for (int i = 0; i < 9; i++)
        if (f[i].fd >= 0)
            close_conn(c, &f[i]);
    close_conn(c, &g[0]);
    close_conn(c, &g[1]);
    connections_free(c);
}
END_TEST

START_TEST(test_who_gives_way_at_the_limit)
{
    Connections *c = table(3, 3, 200, 2);
    FakeConn idle[3], newcomer;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(open_conn(c, 0x7f000002u + (uint32_t)i, HEAD_NOT_YET, &idle[i]),
                         ADMITTED);
        usleep(20 * 1000); /* idle[0] has waited longest */
    }
    /* Before --evict-idle-ms: refused, whatever the newcomer has sent. */
    ck_assert_int_eq(open_conn(c, 0x7f000009u, HEAD_READY, &newcomer), REFUSED_FULL);
    usleep(250 * 1000);
    /* Past it: one without its head is told to wait for it, one late is refused... */
    ck_assert_int_eq(open_conn(c, 0x7f000009u, HEAD_NOT_YET, &newcomer), WAIT_FOR_HEAD);
    ck_assert_int_eq(open_conn(c, 0x7f000009u, HEAD_OVERDUE, &newcomer), REFUSED_FULL);
    for (int i = 0; i < 3; i++)
        ck_assert(!was_cut(&idle[i]));
    /* ...and one whose head has arrived takes the place of the one that waited longest. */
    ck_assert_int_eq(open_conn(c, 0x7f000009u, HEAD_READY, &newcomer), ADMITTED);
    ck_assert(was_cut(&idle[0]));
    ck_assert(!was_cut(&idle[1]) && !was_cut(&idle[2]));
    ck_assert_int_eq(open_count(c), 3); /* the evicted one gave its place up at once */
    ConnectionStats st;
    connections_stats(c, &st);
    ck_assert_int_eq(st.evicted, 1);
    ck_assert_int_eq(st.refused_full, 2);
    /* Its close, when MHD gets to it, does not count twice. */
    close_conn(c, &idle[0]);
    ck_assert_int_eq(open_count(c), 3);
    for (int i = 1; i < 3; i++)
        close_conn(c, &idle[i]);
    close_conn(c, &newcomer);
    ck_assert_int_eq(open_count(c), 0);
    connections_free(c);

    /* --evict-idle-ms 0: nobody gives way. */
    c = table(1, 1, 0, 1);
    FakeConn one, other;
    ck_assert_int_eq(open_conn(c, 0x7f000002u, HEAD_NOT_YET, &one), ADMITTED);
    usleep(50 * 1000);
    ck_assert_int_eq(open_conn(c, 0x7f000003u, HEAD_READY, &other), REFUSED_FULL);
    close_conn(c, &one);
    connections_free(c);
}
END_TEST

/* An address at its share: its own connection that has waited longest
 * gives way to its own request, not another address's. */
START_TEST(test_an_address_at_its_share_displaces_its_own)
{
    Connections *c = table(16, 2, 100, 1);
    FakeConn other, mine[2], newcomer;
    ck_assert_int_eq(open_conn(c, 0x7f000005u, HEAD_NOT_YET, &other), ADMITTED);
    usleep(20 * 1000);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_NOT_YET, &mine[i]), ADMITTED);
        usleep(20 * 1000);
    }
    ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_READY, &newcomer), REFUSED_PER_IP);
    usleep(150 * 1000);
    ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_NOT_YET, &newcomer), WAIT_FOR_HEAD);
    ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_READY, &newcomer), ADMITTED);
    ck_assert(was_cut(&mine[0]));
    ck_assert(!was_cut(&mine[1]) && !was_cut(&other));
    /* The address's list goes on in order: mine[1] is the next to give way. */
    FakeConn again;
    ck_assert_int_eq(open_conn(c, 0x7f000001u, HEAD_READY, &again), ADMITTED);
    ck_assert(was_cut(&mine[1]));
    ck_assert(!was_cut(&other) && !was_cut(&newcomer));
    close_conn(c, &mine[0]);
    close_conn(c, &mine[1]);
    ck_assert_int_eq(open_count(c), 3);
    close_conn(c, &other);
    close_conn(c, &newcomer);
    close_conn(c, &again);
    ck_assert_int_eq(open_count(c), 0);
    connections_free(c);
}
END_TEST

/* A socket MHD refuses (closed before it started) leaves no count behind. */
START_TEST(test_a_socket_mhd_refused_is_forgotten)
{
    Connections *c = table(2, 2, 0, 1);
    for (int i = 0; i < 5; i++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        Connection *rec;
        int worker;
        ck_assert_int_eq(connections_admit(c, sv[0], 0x7f000001u, HEAD_NOT_YET, &rec, &worker),
                         ADMITTED);
        connections_handing(c, worker, rec);
        connections_handed(c, worker); /* no STARTED came */
        ck_assert_int_eq(open_count(c), 0);
        close(sv[0]);
        close(sv[1]);
    }
    connections_free(c);
}
END_TEST

static Suite *connections_suite(void)
{
    Suite *s = suite_create("connections");
    TCase *tc = tcase_create("Admission");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_limits_per_address_through_many_addresses);
    tcase_add_test(tc, test_least_loaded_worker);
    tcase_add_test(tc, test_who_gives_way_at_the_limit);
    tcase_add_test(tc, test_an_address_at_its_share_displaces_its_own);
    tcase_add_test(tc, test_a_socket_mhd_refused_is_forgotten);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(connections_suite)
