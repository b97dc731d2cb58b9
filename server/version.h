/* version.h - mnistd's version, as /v2 and /metrics report it. */
#ifndef MN_VERSION_H
#define MN_VERSION_H

#define MNISTD_VERSION "0.1.0"

#endif
