/* error.h - the error codes and message carrier every core/ function uses.
 * core/ never prints or exits on bad input: it returns a negative MnCode and
 * fills an optional MnError whose message names the key, layer, file or limit.
 * server/ maps codes to HTTP statuses in one table. */
#ifndef MN_ERROR_H
#define MN_ERROR_H

typedef enum {
    MN_OK = 0,
    MN_EINVAL = -1,     /* malformed input: bad JSON, wrong type, unknown key (HTTP 400) */
    MN_ESPEC = -2,      /* well-formed but impossible: shape mismatch, unknown layer (422) */
    MN_ELIMIT = -3,     /* over a configured limit: size, dimensions, parameters (413/422) */
    MN_ENOMEM = -4,     /* allocation failed */
    MN_EIO = -5,        /* a file could not be read or written */
    MN_ECORRUPT = -6,   /* a file failed its checks: magic, version, CRC, truncation */
    MN_ENOTFOUND = -7,  /* a named model, version, dataset or file does not exist */
    MN_EFORMAT = -8,    /* unsupported media: not a PNG, not IDX (415) */
    MN_ECANCELLED = -9, /* a job's cancellation flag was seen */
} MnCode;

typedef struct {
    int code;
    char msg[256];
} MnError;

/* Fills err (if not NULL) with code and a printf-style message; returns code
 * so callers can write `return mn_fail(err, MN_EINVAL, "...")`. */
int mn_fail(MnError *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an existing message, for adding the file or layer name. */
int mn_wrap(MnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "invalid_argument", "unprocessable_spec", ...: stable names for JSON error codes. */
const char *mn_code_name(int code);

#endif
