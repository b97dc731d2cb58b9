/* cmd_serve.c - `mnistd serve`: load the model store, start the HTTP
 * daemon, and on SIGTERM or SIGINT stop accepting, let requests in flight
 * finish, and exit 0. A watchdog ends the process if stopping takes longer
 * than --drain-timeout (a worker stuck in a request, a job that does not
 * stop) or a second signal comes.
 * Signals reach us through a handler that only writes their number to a
 * pipe, whichever thread the kernel picks: blocking them in every thread
 * cannot work, as libraries start threads of their own before main
 * (OpenBLAS's pool), and in those a SIGTERM would kill us on the spot. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blas.h"
#include "cli.h"
#include "server.h"

/* The handler's only way out; the one mutable global of the program, as a
 * signal handler can reach nothing else. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(signal_pipe[1], &b, 1);
    errno = saved;
}

/* The next signal's number, or 0 when none came within timeout_ms (-1: wait for ever). */
static int next_signal(int timeout_ms)
{
    struct pollfd p = {.fd = signal_pipe[0], .events = POLLIN};
    unsigned char b;
    for (;;) {
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (read(signal_pipe[0], &b, 1) == 1)
            return b;
    }
}

static void *watchdog_main(void *arg)
{
    long seconds = *(const long *)arg;
    int sig = next_signal((int)(seconds * 1000));
    /* Should stderr not take the line, SIGALRM's default action ends us. */
    alarm(1);
    if (sig)
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"a second signal while stopping: "
                        "exiting now\"}\n");
    else
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"stopping took longer than "
                        "--drain-timeout: exiting now\",\"seconds\":%ld}\n", seconds);
    _exit(1);
}

static int catch_stop_signals(void)
{
    if (pipe(signal_pipe))
        return -1;
    fcntl(signal_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(signal_pipe[1], F_SETFD, FD_CLOEXEC);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    Server srv;
    memset(&srv, 0, sizeof srv);
    int rc = config_load(&srv.cfg, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (catch_stop_signals()) {
        fprintf(stderr, "mnistd serve: cannot catch SIGTERM: %s\n", strerror(errno));
        return 1;
    }
    char why[512];
    if (server_start(&srv, why, sizeof why)) {
        fprintf(stderr, "mnistd serve: %s\n", why);
        return 1;
    }
    char kernel[256];
    blas_info_json(kernel, sizeof kernel);
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"kernel\",%s}\n", kernel);
    const char *writes = config_write_mode(&srv.cfg);
    fprintf(stderr,
            "{\"level\":\"info\",\"msg\":\"listening\",\"url\":\"%s://%s:%ld/\",\"models\":%d,"
            "\"writes\":\"%s\"}\n",
            srv.cfg.tls_cert[0] ? "https" : "http", srv.cfg.host, srv.cfg.port,
            store_count(srv.store), writes);
    if (!strcmp(writes, "protected"))
        fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"protected mode: listening beyond "
                        "loopback with no --token, so train, cancel and delete answer 403; set "
                        "--token (MNISTD_TOKEN), or --insecure-writes to open them\"}\n");
    else if (!strcmp(writes, "insecure-writes"))
        fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"--insecure-writes: anyone who reaches "
                        "the port may train, cancel and delete\"}\n");
    int sig = next_signal(-1);
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"stopping\",\"signal\":\"%s\"}\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    static long drain_seconds; /* static: the thread may outlive this frame by a moment */
    drain_seconds = srv.cfg.drain_timeout;
    pthread_t thread;
    if (pthread_create(&thread, NULL, watchdog_main, &drain_seconds) == 0)
        pthread_detach(thread);
    if (!server_stop(&srv))
        fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"requests still in flight at "
                        "--drain-timeout were cut\"}\n");
    return 0;
}
