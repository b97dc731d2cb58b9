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
/* A response of len bytes of data (copied), compressed when the request's
 * Accept-Encoding asks for gzip or deflate and the type is not an image;
 * NULL out of memory. For answers that add headers before respond_queue. */
struct MHD_Response *respond_body(Request *r, const char *content_type, const void *data,
                                  size_t len);
enum MHD_Result respond_bytes(Request *r, unsigned status, const char *content_type,
                              const void *data, size_t len);
enum MHD_Result respond_error(Request *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An engine error: status and code from the MnCode, the message as it is. */
enum MHD_Result respond_mn_error(Request *r, const MnError *err);
/* The Open Inference Protocol's error shape, {"error": "message"}, on
 * any route. respond_error and respond_mn_error use it by themselves on
 * the protocol routes (respond_protocol_errors: /v2 and TF Serving's /v1). */
enum MHD_Result respond_v2_error(Request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
unsigned respond_status_of(int mn_code);
bool respond_protocol_errors(const Request *r);

#endif
