/* check_server.h - a real server on a scratch store for the HTTP suites:
 * the defaults of config_load, a free port, the test data. A suite sets
 * what it tests between check_server_config and check_server_start. */
#ifndef MN_CHECK_SERVER_H
#define MN_CHECK_SERVER_H

#include "server.h"

/* srv's configuration: the defaults, port 0 (the kernel picks a free one),
 * models from store, the test data. */
void check_server_config(Server *srv, const char *store);
/* Starts srv, failing the test with the server's reason. */
void check_server_start(Server *srv);
/* Stops srv and removes store (freed). */
void check_server_stop(Server *srv, char *store);

#endif
