/* respond.h - the one place statuses and bodies are made. Errors are
 * {"error": {"code", "message"}} (the /v2 routes use the protocol's own
 * {"error": "message"}); MnCode maps to a status in one table. */
#ifndef MN_RESPOND_H
#define MN_RESPOND_H

#include <cJSON.h>

#include "error.h"
#include "server.h"

/* Queues resp (destroyed here) with the status, adding the CORS headers
 * the configured origins allow; every response goes out through here. */
enum MHD_Result respond_queue(Request *r, unsigned status, struct MHD_Response *resp);
/* Sends body (deleted here) with the status. */
enum MHD_Result respond_json(Request *r, unsigned status, cJSON *body);
enum MHD_Result respond_bytes(Request *r, unsigned status, const char *content_type,
                              const void *data, size_t len);
enum MHD_Result respond_error(Request *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An engine error: status and code from the MnCode, the message as it is. */
enum MHD_Result respond_mn_error(Request *r, const MnError *err);
/* The Open Inference Protocol's error shape. */
enum MHD_Result respond_v2_error(Request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
unsigned respond_status_of(int mn_code);

#endif
