/* cmd_serve.c - `mnistd serve`: load the model store, start the HTTP
 * daemon, and on SIGTERM or SIGINT stop accepting, let requests in flight
 * finish, and exit 0. Signals are taken by sigwait in this thread, so no
 * handler runs inside the daemon's threads. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "cli.h"
#include "server.h"

int cmd_serve(int argc, char **argv)
{
    Server srv;
    memset(&srv, 0, sizeof srv);
    int rc = config_load(&srv.cfg, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    /* Blocked before any thread starts, so every thread inherits the mask. */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char why[512];
    if (server_start(&srv, why, sizeof why)) {
        fprintf(stderr, "mnistd serve: %s\n", why);
        return 1;
    }
    char kernel[256];
    blas_info_json(kernel, sizeof kernel);
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"kernel\",%s}\n", kernel);
    fprintf(stderr,
            "{\"level\":\"info\",\"msg\":\"listening\",\"url\":\"http://%s:%ld/\",\"models\":%d}\n",
            srv.cfg.host, srv.cfg.port, store_count(srv.store));
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"stopping\",\"signal\":\"%s\"}\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server_stop(&srv);
    return 0;
}
