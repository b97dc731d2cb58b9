/* test_protected.c - protected mode, as redis has it: a server bound
 * beyond loopback (0.0.0.0) with no token answers 403 to every route that
 * changes state, naming --token and --insecure-writes, and changes
 * nothing; reads and predictions stay open. A token, --insecure-writes or
 * a loopback address lift it; the start log says which mode is on. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_http.h"
#include "check_server.h"
#include "check_util.h"
#include "server.h"

static Server srv;
static char *store;

/* host, token ("" none) and the opt-out, on a copy of the shipped models. */
static void start(const char *host, const char *token, long insecure_writes)
{
    check_server_config(&srv, store);
    snprintf(srv.cfg.host, sizeof srv.cfg.host, "%s", host);
    snprintf(srv.cfg.token, sizeof srv.cfg.token, "%s", token);
    srv.cfg.insecure_writes = insecure_writes;
    check_server_start(&srv);
}

static void setup(void)
{
    memset(&srv, 0, sizeof srv); /* a test that starts none stops none */
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
}

static void teardown(void) { check_server_stop(&srv, store); }

static HttpReply request(const char *method, const char *path, const char *type,
                         const char *extra, const char *body)
{
    return check_http_request((int)srv.cfg.port, method, path, type, extra, body,
                              body ? strlen(body) : 0);
}

/* The status of one request, the reply freed unless kept. */
static int status_of(const char *method, const char *path, const char *type, const char *body)
{
    HttpReply r = request(method, path, type, NULL, body);
    int status = r.status;
    check_http_free(&r);
    return status;
}

static const char tiny_spec[] =
    "{\"name\":\"protected-probe\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"epochs\":1}";

/* A 403 that names the way out, in the JSON error shape. */
static void assert_protected(const char *method, const char *path, const char *type,
                             const char *body)
{
    HttpReply r = request(method, path, type, NULL, body);
    ck_assert_msg(r.status == 403, "%s %s: %d %s", method, path, r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    cJSON *err = cJSON_GetObjectItem(j, "error");
    ck_assert_str_eq(cJSON_GetObjectItem(err, "code")->valuestring, "protected_mode");
    const char *msg = cJSON_GetObjectItem(err, "message")->valuestring;
    ck_assert_msg(strstr(msg, "--token") && strstr(msg, "--insecure-writes") &&
                      strstr(msg, "0.0.0.0"),
                  "%s", msg);
    cJSON_Delete(j);
    check_http_free(&r);
}

START_TEST(protected_refuses_writes)
{
    start("0.0.0.0", "", 0);
    ck_assert(config_writes_protected(&srv.cfg));
    ck_assert_str_eq(config_write_mode(&srv.cfg), "protected");
    assert_protected("POST", "/train", "application/json", tiny_spec);
    assert_protected("DELETE", "/jobs/1", NULL, NULL);
    assert_protected("DELETE", "/models/mnist-cnn/versions/1", NULL, NULL);
    /* nothing changed: no job queued, the version still served */
    HttpReply jobs = request("GET", "/jobs", NULL, NULL, NULL);
    ck_assert_int_eq(jobs.status, 200);
    ck_assert_msg(!strstr(jobs.body, "protected-probe"), "%s", jobs.body);
    check_http_free(&jobs);
    ck_assert_int_eq(status_of("GET", "/models/mnist-cnn/versions/1", NULL, NULL), 200);
    /* reads and predictions stay open */
    ck_assert_int_eq(status_of("GET", "/models", NULL, NULL), 200);
    char pixels[8192] = "{\"pixels\":[0";
    for (int i = 1; i < 784; i++)
        strcat(pixels, ",0");
    strcat(pixels, "]}");
    ck_assert_int_eq(status_of("POST", "/predict", "application/json", pixels), 200);
}
END_TEST

/* A bearer token is asked for only once protection is not the answer. */
START_TEST(token_lifts_protection)
{
    start("0.0.0.0", "s3cret", 0);
    ck_assert(!config_writes_protected(&srv.cfg));
    ck_assert_str_eq(config_write_mode(&srv.cfg), "token");
    ck_assert_int_eq(status_of("DELETE", "/jobs/99", NULL, NULL), 401);
    HttpReply r = request("DELETE", "/jobs/99", NULL, "Authorization: Bearer s3cret\r\n", NULL);
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
}
END_TEST

START_TEST(insecure_writes_opens_them)
{
    start("0.0.0.0", "", 1);
    ck_assert_str_eq(config_write_mode(&srv.cfg), "insecure-writes");
    ck_assert_int_eq(status_of("DELETE", "/jobs/99", NULL, NULL), 404);
    ck_assert_int_eq(status_of("POST", "/train", "text/plain", tiny_spec), 415);
}
END_TEST

START_TEST(loopback_is_not_protected)
{
    start("127.0.0.1", "", 0);
    ck_assert_str_eq(config_write_mode(&srv.cfg), "loopback");
    ck_assert_int_eq(status_of("DELETE", "/jobs/99", NULL, NULL), 404);
}
END_TEST

START_TEST(loopback_addresses)
{
    ck_assert(config_host_is_loopback("127.0.0.1"));
    ck_assert(config_host_is_loopback("127.8.9.10"));
    ck_assert(!config_host_is_loopback("0.0.0.0"));
    ck_assert(!config_host_is_loopback("10.0.0.1"));
    ck_assert(!config_host_is_loopback("128.0.0.1"));
    ck_assert(!config_host_is_loopback("localhost")); /* not an address: bind refuses it */
}
END_TEST

/* The switch: alone, =0/=1, or MNISTD_INSECURE_WRITES; nothing else. */
START_TEST(switch_parsing)
{
    ServerConfig cfg;
    char *alone[] = {"--insecure-writes"};
    ck_assert_int_eq(config_load(&cfg, 1, alone), 0);
    ck_assert_int_eq(cfg.insecure_writes, 1);
    char *off[] = {"--insecure-writes=0", "--port", "9"};
    ck_assert_int_eq(config_load(&cfg, 3, off), 0);
    ck_assert_int_eq(cfg.insecure_writes, 0);
    ck_assert_int_eq(cfg.port, 9);
    char *bad[] = {"--insecure-writes=yes"};
    ck_assert_int_eq(config_load(&cfg, 1, bad), 2);
    setenv("MNISTD_INSECURE_WRITES", "1", 1);
    ck_assert_int_eq(config_load(&cfg, 0, NULL), 0);
    ck_assert_int_eq(cfg.insecure_writes, 1);
    setenv("MNISTD_INSECURE_WRITES", "2", 1);
    ck_assert_int_eq(config_load(&cfg, 0, NULL), 2);
    unsetenv("MNISTD_INSECURE_WRITES");
}
END_TEST

/* The binary's start log names the mode and warns of the two open ones. */
static char *start_log(const char *flags)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "d=$(mktemp -d); %s serve --port 0 --models %s --data %s %s 2>$d/log & pid=$!; "
             "i=0; while [ $i -lt 300 ] && ! grep -q listening $d/log; do sleep 0.1; "
             "i=$((i+1)); done; kill $pid; wait $pid; cat $d/log; rm -rf $d",
             check_util_bin(), store, check_util_data_dir(), flags);
    int status;
    char *out = check_util_run_cmd(cmd, &status);
    ck_assert_ptr_nonnull(out);
    return out;
}

START_TEST(start_log_says_the_mode)
{
    char *log = start_log("--host 0.0.0.0");
    ck_assert_msg(strstr(log, "\"writes\":\"protected\"") && strstr(log, "protected mode"), "%s",
                  log);
    free(log);
    log = start_log("--host 0.0.0.0 --insecure-writes");
    ck_assert_msg(strstr(log, "\"writes\":\"insecure-writes\""), "%s", log);
    free(log);
    log = start_log("--host 127.0.0.1");
    ck_assert_msg(strstr(log, "\"writes\":\"loopback\"") && !strstr(log, "protected mode"), "%s", log);
    free(log);
}
END_TEST

static Suite *protected_suite(void)
{
    Suite *s = suite_create("Protected");
    TCase *tc = tcase_create("Server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, protected_refuses_writes);
    tcase_add_test(tc, token_lifts_protection);
    tcase_add_test(tc, insecure_writes_opens_them);
    tcase_add_test(tc, loopback_is_not_protected);
    tcase_add_test(tc, start_log_says_the_mode);
    suite_add_tcase(s, tc);
    TCase *cfg = tcase_create("Config");
    tcase_add_test(cfg, loopback_addresses);
    tcase_add_test(cfg, switch_parsing);
    suite_add_tcase(s, cfg);
    return s;
}

MN_TEST_MAIN(protected_suite)
