/* test_tls.c - HTTPS (--tls-cert, --tls-key): the server on a free port
 * with a certificate made at test time by openssl, driven by curl (which
 * checks the chain against that certificate) and by Triton's own Python
 * client over https; plain HTTP to it gets no answer; a key of another
 * certificate, a file that is not PEM or not there stop the start with a
 * message naming the file; `mnistd health --tls` asks over TLS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check_http.h"
#include "check_util.h"
#include "server.h"

static Server srv;
static char *dir;        /* the test's: certificates, the store */
static char store[512], cert[512], key[512], other_cert[512], other_key[512];

/* A self-signed P-256 certificate for 127.0.0.1 and localhost (fast to make). */
static void make_cert(const char *cert_path, const char *key_path, const char *cn)
{
    char cmd[10000];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=%s "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>&1",
             key_path, cert_path, cn);
    int status;
    char *out = check_util_run_cmd(cmd, &status);
    ck_assert_msg(status == 0, "openssl: %s", out ? out : "");
    free(out);
}

static void setup(void)
{
    memset(&srv, 0, sizeof srv);
    dir = check_util_tmpdir();
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(other_cert, sizeof other_cert, "%s/other-cert.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/other-key.pem", dir);
    ck_assert_int_eq(mkdir(store, 0755), 0);
    ck_assert_int_eq(check_util_copy_models(store), 0);
    make_cert(cert, key, "mnistd-test");
}

static void teardown(void)
{
    server_stop(&srv);
    check_util_rmtree(dir);
    free(dir);
}

/* server_start's result with this pair; its message in why. */
static int start(const char *cert_path, const char *key_path, char *why, size_t n)
{
    memset(&srv, 0, sizeof srv);
    ck_assert_int_eq(config_load(&srv.cfg, 0, NULL), 0);
    srv.cfg.port = 0;
    snprintf(srv.cfg.models_dir, sizeof srv.cfg.models_dir, "%s", store);
    snprintf(srv.cfg.data_dir, sizeof srv.cfg.data_dir, "%s", check_util_data_dir());
    snprintf(srv.cfg.tls_cert, sizeof srv.cfg.tls_cert, "%s", cert_path);
    snprintf(srv.cfg.tls_key, sizeof srv.cfg.tls_key, "%s", key_path);
    return server_start(&srv, why, n);
}

static void start_ok(void)
{
    char why[512];
    ck_assert_msg(start(cert, key, why, sizeof why) == 0, "%s", why);
}

/* curl's output (-w adds the status last); the chain is verified. */
static char *curl(const char *args, int *status)
{
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 20 --cacert %s %s -w ' %%{http_code}' 2>&1",
             cert, args);
    char *out = check_util_run_cmd(cmd, status);
    ck_assert_ptr_nonnull(out);
    return out;
}

START_TEST(curl_over_https)
{
    start_ok();
    int status;
    char args[2048];
    snprintf(args, sizeof args, "https://127.0.0.1:%ld/v2/health/ready", srv.cfg.port);
    char *out = curl(args, &status);
    ck_assert_msg(status == 0 && strstr(out, "{\"ready\":true}") && strstr(out, " 200"), "%s",
                  out);
    free(out);
    /* a prediction, its body sent through the encrypted stream */
    char body[1024];
    snprintf(body, sizeof body, "%s/pixels.json", dir);
    FILE *f = fopen(body, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"pixels\":[0", f);
    for (int i = 1; i < 784; i++)
        fputs(",0", f);
    fputs("]}", f);
    fclose(f);
    snprintf(args, sizeof args,
             "-H 'Content-Type: application/json' --data-binary @%s https://localhost:%ld/predict",
             body, srv.cfg.port);
    out = curl(args, &status);
    ck_assert_msg(status == 0 && strstr(out, "\"probabilities\"") && strstr(out, " 200"), "%s",
                  out);
    free(out);
}
END_TEST

/* Plain HTTP to the HTTPS port: no HTTP answer of any kind. */
START_TEST(plain_http_gets_no_answer)
{
    start_ok();
    HttpReply r = check_http_request((int)srv.cfg.port, "GET", "/v2/health/live", NULL, NULL,
                                     NULL, 0);
    ck_assert_msg(r.status == 0, "answered %d: %s", r.status, r.raw ? r.raw : "");
    check_http_free(&r);
    /* and the server goes on serving HTTPS */
    int status;
    char args[512];
    snprintf(args, sizeof args, "https://127.0.0.1:%ld/v2/health/live", srv.cfg.port);
    char *out = curl(args, &status);
    ck_assert_msg(strstr(out, " 200"), "%s", out);
    free(out);
}
END_TEST

/* Triton's client, as its users run it, verifying the chain: PYTHONPATH names where
 * tritonclient is (MNISTD_TRITON_CLIENTS, default /work/shared/clients). */
START_TEST(triton_client_over_https)
{
    start_ok();
    const char *clients = getenv("MNISTD_TRITON_CLIENTS");
    char cmd[10000];
    snprintf(cmd, sizeof cmd, "PYTHONPATH=%s /usr/bin/python3 %s/tests/tls/triton_https.py "
                              "127.0.0.1:%ld mnist-cnn %s 2>&1",
             clients && *clients ? clients : "/work/shared/clients", check_util_src_dir(),
             srv.cfg.port, cert);
    int status;
    char *out = check_util_run_cmd(cmd, &status);
    ck_assert_msg(status == 0 && out && strstr(out, "infer (JSON and binary) ok"),
                  "tritonclient over https (set MNISTD_TRITON_CLIENTS to where tritonclient "
                  "is): %s", out ? out : "");
    free(out);
}
END_TEST

/* The container's HEALTHCHECK: `mnistd health` speaks TLS with --tls (or
 * MNISTD_TLS_CERT set, as the container's environment has it). */
START_TEST(health_check_over_tls)
{
    start_ok();
    const char *forms[][2] = {{"", "--tls"}, {"MNISTD_TLS_CERT=x ", "--ready"}, {"", ""}};
    for (int i = 0; i < 3; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%sMNISTD_PORT=%ld %s health %s 2>&1", forms[i][0],
                 srv.cfg.port, check_util_bin(), forms[i][1]);
        int status;
        char *out = check_util_run_cmd(cmd, &status);
        ck_assert_msg(status == (i < 2 ? 0 : 1), "%s: exit %d: %s", cmd, status, out);
        free(out);
    }
}
END_TEST

static void assert_refused(const char *cert_path, const char *key_path, const char *says)
{
    char why[512] = "";
    ck_assert_int_eq(start(cert_path, key_path, why, sizeof why), -1);
    ck_assert_msg(strstr(why, says), "expected \"%s\" in: %s", says, why);
    ck_assert_ptr_null(srv.acceptor); /* nothing listens */
}

START_TEST(bad_pairs_stop_the_start)
{
    make_cert(other_cert, other_key, "someone-else");
    char why[2048];
    snprintf(why, sizeof why, "--tls-key %s is not the key of the certificate in --tls-cert %s",
             other_key, cert);
    assert_refused(cert, other_key, why);
    snprintf(why, sizeof why, "--tls-cert %s: not a PEM certificate", key);
    assert_refused(key, key, why);
    snprintf(why, sizeof why, "--tls-key %s: not an unencrypted PEM private key", cert);
    assert_refused(cert, cert, why);
    snprintf(why, sizeof why, "%s/none.pem", dir);
    assert_refused(why, key, "No such file or directory");
    char empty[1024];
    snprintf(empty, sizeof empty, "%s/empty.pem", dir);
    fclose(fopen(empty, "w"));
    assert_refused(cert, empty, "is empty");
}
END_TEST

/* One of the two alone is refused; the variables are read like the flags. */
START_TEST(config_pairs_them)
{
    ServerConfig cfg;
    char *only_cert[] = {"--tls-cert", "c.pem"};
    ck_assert_int_eq(config_load(&cfg, 2, only_cert), 2);
    setenv("MNISTD_TLS_CERT", "c.pem", 1);
    setenv("MNISTD_TLS_KEY", "k.pem", 1);
    ck_assert_int_eq(config_load(&cfg, 0, NULL), 0);
    ck_assert_str_eq(cfg.tls_cert, "c.pem");
    ck_assert_str_eq(cfg.tls_key, "k.pem");
    unsetenv("MNISTD_TLS_KEY");
    ck_assert_int_eq(config_load(&cfg, 0, NULL), 2);
    unsetenv("MNISTD_TLS_CERT");
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("TLS");
    TCase *tc = tcase_create("Server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30); /* openssl, curl and a Python interpreter per test */
    tcase_add_test(tc, curl_over_https);
    tcase_add_test(tc, plain_http_gets_no_answer);
    tcase_add_test(tc, triton_client_over_https);
    tcase_add_test(tc, bad_pairs_stop_the_start);
    tcase_add_test(tc, health_check_over_tls);
    suite_add_tcase(s, tc);
    TCase *cfg = tcase_create("Config");
    tcase_add_test(cfg, config_pairs_them);
    suite_add_tcase(s, cfg);
    return s;
}

MN_TEST_MAIN(tls_suite)
