/* error.c - MnError helpers. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mn_fail(MnError *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int mn_wrap(MnError *err, const char *fmt, ...)
{
    if (!err)
        return MN_EINVAL;
    char prefix[128], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncating a long message is fine: its start says what went wrong. */
    int n = snprintf(err->msg, sizeof err->msg, "%s: ", prefix);
    if (n > 0 && (size_t)n < sizeof err->msg)
        memcpy(err->msg + n, old, strnlen(old, sizeof err->msg - (size_t)n - 1) + 1);
    err->msg[sizeof err->msg - 1] = '\0';
    return err->code;
}

const char *mn_code_name(int code)
{
    switch (code) {
    case MN_OK: return "ok";
    case MN_EINVAL: return "invalid_argument";
    case MN_ESPEC: return "unprocessable";
    case MN_ELIMIT: return "limit_exceeded";
    case MN_ENOMEM: return "out_of_memory";
    case MN_EIO: return "io_error";
    case MN_ECORRUPT: return "corrupt_file";
    case MN_ENOTFOUND: return "not_found";
    case MN_EFORMAT: return "unsupported_media_type";
    case MN_ECANCELLED: return "cancelled";
    default: return "internal";
    }
}
