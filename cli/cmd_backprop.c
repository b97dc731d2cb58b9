/* cmd_backprop.c - `mnistd backprop FILE.json` (or - for stdin): the
 * homework's Problem 2 as a tool; the JSON result goes to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backprop.h"
#include "cli.h"

#define BACKPROP_INPUT_MAX (1 << 20)

int cmd_backprop(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: mnistd backprop FILE.json (or - for stdin)\n");
        return 2;
    }
    const char *path = argv[0];
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "mnistd backprop: %s: cannot open\n", path);
        return 1;
    }
    char *buf = malloc(BACKPROP_INPUT_MAX + 1);
    size_t n = buf ? fread(buf, 1, BACKPROP_INPUT_MAX + 1, f) : 0;
    if (f != stdin)
        fclose(f);
    if (!buf || n > BACKPROP_INPUT_MAX) {
        fprintf(stderr, "mnistd backprop: %s: larger than %d bytes\n", path, BACKPROP_INPUT_MAX);
        free(buf);
        return 1;
    }
    MnError err = {0};
    char *out = NULL;
    int rc = backprop_run_json(buf, n, &out, &err);
    free(buf);
    if (rc) {
        fprintf(stderr, "mnistd backprop: %s: %s\n", path, err.msg);
        return 1;
    }
    puts(out);
    free(out);
    return 0;
}
