/* check_server.c - see check_server.h. */
#include "check_server.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"

void check_server_config(Server *srv, const char *store)
{
    memset(srv, 0, sizeof *srv);
    ck_assert_int_eq(config_load(&srv->cfg, 0, NULL), 0);
    srv->cfg.port = 0;
    snprintf(srv->cfg.models_dir, sizeof srv->cfg.models_dir, "%s", store);
    snprintf(srv->cfg.data_dir, sizeof srv->cfg.data_dir, "%s", check_util_data_dir());
}

void check_server_start(Server *srv)
{
    char why[512];
    ck_assert_msg(server_start(srv, why, sizeof why) == 0, "%s", why);
}

void check_server_stop(Server *srv, char *store)
{
    server_stop(srv);
    check_util_rmtree(store);
    free(store);
}
