/* test_access_log.c - the request log's buffer and writer thread: lines
 * come out whole and in order; a reader that stops never makes a caller
 * wait, and every line is either written or counted as dropped, the count
 * logged when the reader is back. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access_log.h"
#include "check_pipe.h"
#include "check_util.h"

START_TEST(test_lines_arrive_whole_and_in_order)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    CheckPipe *reader = check_pipe_start(p[0]);
    AccessLog *log = access_log_start(p[1], 1 << 20); /* room for every line */
    ck_assert_ptr_nonnull(log);
    enum { LINES = 5000 };
    for (int i = 0; i < LINES; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "{\"line\":%d}\n", i);
        access_log_line(log, line, (size_t)n);
    }
    ck_assert_uint_eq(access_log_dropped(log), 0);
    access_log_stop(log); /* writes what is left */
    close(p[1]);
    char *text = check_pipe_finish(reader);
    int next = 0;
    for (char *s = strtok(text, "\n"); s; s = strtok(NULL, "\n"), next++) {
        cJSON *j = cJSON_Parse(s);
        ck_assert_msg(j && cJSON_GetObjectItem(j, "line"), "not a whole line: %s", s);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "line")->valueint, next);
        cJSON_Delete(j);
    }
    ck_assert_int_eq(next, LINES);
    free(text);
}
END_TEST

/* Nobody reads the pipe: it fills (64 KiB), the writer blocks in write(),
 * the 4 KiB buffer fills, and lines are dropped while every call returns
 * at once (a call that waited would hang this test until its timeout). */
START_TEST(test_a_stalled_reader_costs_lines_not_waits)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    AccessLog *log = access_log_start(p[1], 4096);
    ck_assert_ptr_nonnull(log);
    enum { LINES = 20000 };
    char line[101];
    memset(line, 'x', sizeof line);
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(line, sizeof line, "{\"line\":%d,\"pad\":\"", i);
        memset(line + n, 'x', sizeof line - (size_t)n);
        memcpy(line + sizeof line - 3, "\"}\n", 3);
        access_log_line(log, line, sizeof line);
    }
    unsigned long dropped = access_log_dropped(log);
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_lt(dropped, LINES);

    /* the reader comes back: what was kept comes out, then the count */
    CheckPipe *reader = check_pipe_start(p[0]);
    access_log_stop(log);
    close(p[1]);
    char *text = check_pipe_finish(reader);
    long written = 0, reported = 0, last = -1;
    for (char *s = strtok(text, "\n"); s; s = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(s);
        ck_assert_msg(j != NULL, "not a whole line: %.120s", s);
        cJSON *n = cJSON_GetObjectItem(j, "line"), *drops = cJSON_GetObjectItem(j, "dropped");
        if (n) {
            ck_assert_int_gt(n->valueint, last); /* in order, gaps where lines were dropped */
            last = n->valueint;
            written++;
        } else {
            ck_assert_ptr_nonnull(drops);
            ck_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
            reported += (long)drops->valuedouble;
        }
        cJSON_Delete(j);
    }
    ck_assert_int_eq(reported, (long)dropped);
    ck_assert_int_eq(written + reported, LINES);
    free(text);
}
END_TEST

static Suite *access_log_suite(void)
{
    Suite *s = suite_create("access_log");
    TCase *tc = tcase_create("AccessLog");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lines_arrive_whole_and_in_order);
    tcase_add_test(tc, test_a_stalled_reader_costs_lines_not_waits);
    suite_add_tcase(s, tc);
    return s;
}

MN_TEST_MAIN(access_log_suite)
